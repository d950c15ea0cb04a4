"""Deleting a LanguageCluster deletes its namespace's langop objects, as
deleting a Namespace deletes its contents (include/langop/registry/cascade.h):
`kubectl delete lcluster X --wait` returns once the cluster and everything in
namespace X are gone; objects with finalizers hold the cluster, which carries
the finalizer langop.io/namespace-contents and a deletionTimestamp until
they go; while it is terminating, creates in the namespace are 403
(NamespaceTerminating) and a new cluster of that name is 409; watchers see
every step in order; dry run, propagationPolicy, preconditions and
deletecollection; and after kill -9 and a restart the job is finished, all
or nothing, also for a terminating cluster whose namespace was emptied
behind the server's back."""

import json
import sqlite3
import subprocess
import time

from harness import (KINDS, KUBECTL, ServerTestCase, agent, collection_path, item_path, model, obj,
                     persona, tool)

FINALIZER = "langop.io/namespace-contents"
HOLD = "example.com/hold"
CONTENT_KINDS = [k for k, (_, _, namespaced) in KINDS.items() if namespaced]
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


class WatchStream:
    """One raw watch over HTTPS/1.1, read event by event; a read that waits
    longer than timeout fails instead of hanging."""

    def __init__(self, server, path, timeout=15):
        self.conn = server.connection(timeout)
        self.conn.request("GET", path, headers={"Accept": "application/json",
                                                "Authorization": f"Bearer {server.token}"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, (self.resp.status, self.resp.read())

    def next(self):
        line = self.resp.readline()
        if not line:
            raise AssertionError("the watch ended")
        return json.loads(line)

    def close(self):
        self.conn.close()


def summary(ev):
    """(type, kind, name, deleting, finalizers, rv) of a watch event."""
    o = ev["object"]
    md = o["metadata"]
    return (ev["type"], o["kind"], md["name"], "deletionTimestamp" in md, tuple(md.get("finalizers") or ()),
            int(md["resourceVersion"]))


class ClusterDeleteBase(ServerTestCase):

    def cluster(self, name, **meta):
        """A LanguageCluster of its own (new_namespace makes one too; this one may carry metadata)."""
        return self.create(obj("LanguageCluster", name, spec={"domain": f"{name}.example.com"}, **meta))

    def populate(self, ns, held=()):
        """One object of every namespaced kind; those named in held carry the finalizer HOLD."""
        made = {"LanguageModel": model("gpt", ns), "LanguageAgent": agent("bot", ns),
                "LanguageTool": tool("web", ns), "LanguagePersona": persona("kind", ns)}
        for kind, o in made.items():
            if kind in held:
                o["metadata"]["finalizers"] = [HOLD]
            self.create(o)
        return {kind: o["metadata"]["name"] for kind, o in made.items()}

    def status_of(self, kind, name, ns=None):
        return self.server.request("GET", item_path(kind, name, ns)).status

    def contents(self, ns):
        """{kind: [names]} of what namespace ns holds."""
        out = {}
        for kind in CONTENT_KINDS:
            items = self.api("GET", collection_path(kind, ns), expect=200).json()["items"]
            out[kind] = sorted(i["metadata"]["name"] for i in items)
        return out

    def release(self, kind, name, ns):
        """What a controller does when it is done: removes its finalizer."""
        return self.api("PATCH", item_path(kind, name, ns), {"metadata": {"finalizers": None}},
                        headers=MERGE_PATCH, expect=200)

    def wait_gone(self, kind, name, ns=None, timeout=10):
        deadline = time.monotonic() + timeout
        while self.status_of(kind, name, ns) != 404:
            if time.monotonic() > deadline:
                self.fail(f"{kind} {ns}/{name} still there after {timeout}s: {self.get(kind, name, ns)}")
            time.sleep(0.05)

    def start_kubectl(self, *args):
        p = subprocess.Popen([KUBECTL, f"--kubeconfig={self.server.kubeconfig}", f"--cache-dir={self.kube_cache}",
                              *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        return p

    def assertTerminating(self, name, finalizers=(FINALIZER,)):
        c = self.get("LanguageCluster", name)
        self.assertTrue(c["metadata"].get("deletionTimestamp"), c["metadata"])
        self.assertEqual(c["metadata"].get("finalizers"), list(finalizers), c["metadata"])
        return c


class ClusterDeleteTest(ClusterDeleteBase):

    def test_kubectl_delete_wait_deletes_everything_in_the_namespace(self):
        ns = self.new_namespace("wipe")
        other = self.new_namespace("bystander")
        self.populate(ns)
        kept = self.populate(other)
        r = self.kubectl("delete", "lcluster", ns, "--wait", "--timeout=30s")
        self.assertIn(f'languagecluster.langop.io "{ns}" deleted', r.out)
        self.assertEqual(self.status_of("LanguageCluster", ns), 404)
        self.assertEqual(self.contents(ns), {k: [] for k in CONTENT_KINDS})
        r = self.kubectl("get", "lmodel,lagent,ltool,lpersona", "-n", ns)
        self.assertIn(f"No resources found in {ns} namespace", r.err + r.out)
        # another namespace is not touched
        self.assertEqual(self.contents(other), {k: [v] for k, v in kept.items()})
        self.assertEqual(self.status_of("LanguageCluster", other), 200)

    def test_an_empty_cluster_goes_at_once(self):
        ns = self.new_namespace("empty")
        r = self.api("DELETE", item_path("LanguageCluster", ns), expect=200).json()
        self.assertEqual((r["kind"], r["status"]), ("Status", "Success"), r)
        self.assertEqual(self.status_of("LanguageCluster", ns), 404)

    def test_finalizers_hold_the_cluster_until_its_namespace_is_empty(self):
        ns = self.new_namespace("held")
        self.populate(ns, held=("LanguageAgent", "LanguageTool"))
        d = self.start_kubectl("delete", "lcluster", ns, "--wait", "--timeout=40s")
        deadline = time.monotonic() + 10
        while not self.get("LanguageCluster", ns)["metadata"].get("deletionTimestamp"):
            self.assertLess(time.monotonic(), deadline, "the cluster was never marked")
            time.sleep(0.05)
        time.sleep(0.5)
        self.assertIsNone(d.poll(), "kubectl delete --wait returned while the namespace's objects hold it")
        # the cluster says why it stays, as kubectl -o yaml shows it
        y = self.kubectl("get", "lcluster", ns, "-o", "yaml").out
        self.assertIn(FINALIZER, y)
        self.assertIn("deletionTimestamp", y)
        self.assertTerminating(ns)
        # what has no finalizer went; what has one is marked and waits
        self.assertEqual(self.contents(ns), {"LanguageModel": [], "LanguageAgent": ["bot"],
                                             "LanguageTool": ["web"], "LanguagePersona": []})
        bot = self.get("LanguageAgent", "bot", ns)
        self.assertTrue(bot["metadata"].get("deletionTimestamp"), bot["metadata"])
        self.assertEqual(bot["metadata"]["finalizers"], [HOLD])
        # the agent's derived status follows: its model is gone (it no longer claims it resolved)
        cond = [c for c in bot["status"]["conditions"] if c["type"] == "ReferencesResolved"]
        self.assertEqual([(c["status"], c["reason"]) for c in cond], [("False", "ModelNotFound")], bot["status"])
        self.assertEqual(bot["status"].get("models"), [], bot["status"])
        # one released: still held by the other
        self.release("LanguageAgent", "bot", ns)
        time.sleep(0.3)
        self.assertTerminating(ns)
        self.assertIsNone(d.poll())
        # the last one released: the cluster goes in that same commit, and kubectl returns
        self.release("LanguageTool", "web", ns)
        self.assertEqual(self.status_of("LanguageCluster", ns), 404)
        self.assertEqual(d.wait(15), 0, d.stderr.read())
        self.assertIn(f'languagecluster.langop.io "{ns}" deleted', d.stdout.read())

    def test_the_last_object_may_go_by_any_update_that_empties_its_finalizers(self):
        for how in ("json-patch", "put", "kubectl-patch"):
            with self.subTest(how=how):
                ns = self.new_namespace(f"last-{how}")
                self.populate(ns, held=("LanguagePersona",))
                self.api("DELETE", item_path("LanguageCluster", ns), expect=200)
                self.assertTerminating(ns)
                path = item_path("LanguagePersona", "kind", ns)
                if how == "json-patch":
                    self.api("PATCH", path, [{"op": "remove", "path": "/metadata/finalizers"}],
                             headers=JSON_PATCH, expect=200)
                elif how == "put":
                    p = self.get("LanguagePersona", "kind", ns)
                    p["metadata"]["finalizers"] = []
                    self.api("PUT", path, p, expect=200)
                else:
                    self.kubectl("patch", "lpersona", "kind", "-n", ns, "--type=merge",
                                 "-p", '{"metadata":{"finalizers":null}}')
                self.assertEqual(self.status_of("LanguagePersona", "kind", ns), 404)
                self.assertEqual(self.status_of("LanguageCluster", ns), 404)

    def test_creates_are_refused_while_it_terminates_and_a_new_cluster_waits(self):
        ns = self.new_namespace("closing")
        self.populate(ns, held=("LanguageModel",))
        old_uid = self.get("LanguageCluster", ns)["metadata"]["uid"]
        self.api("DELETE", item_path("LanguageCluster", ns), expect=200)
        self.assertTerminating(ns)
        for kind, o in (("LanguageModel", model("new", ns)), ("LanguageAgent", agent("new", ns)),
                        ("LanguageTool", tool("new", ns)), ("LanguagePersona", persona("new", ns))):
            with self.subTest(kind=kind):
                r = self.server.request("POST", collection_path(kind, ns), o)
                s = self.assertStatus(r, 403, "Forbidden")
                self.assertIn(f"unable to create new content in namespace {ns} because it is being terminated",
                              s["message"])
                causes = s["details"]["causes"]
                self.assertIn({"reason": "NamespaceTerminating", "field": "metadata.namespace"},
                              [{"reason": c.get("reason"), "field": c.get("field")} for c in causes], s)
        # the same through kubectl, a server-side apply that would create, and a dry run
        r = self.kubectl("create", "-f", self.write_yaml(model("by-kubectl", ns)), ok=False)
        self.assertIn("because it is being terminated", r.err)
        r = self.kubectl("apply", "--server-side", "-f", self.write_yaml(model("by-apply", ns)), ok=False)
        self.assertIn("because it is being terminated", r.err)
        r = self.server.request("POST", collection_path("LanguageModel", ns) + "?dryRun=All", model("dry", ns))
        self.assertStatus(r, 403, "Forbidden")
        self.assertEqual(self.contents(ns)["LanguageModel"], ["gpt"])
        # the objects being deleted may still be updated (a controller finishing its work)
        self.api("PATCH", item_path("LanguageModel", "gpt", ns), {"metadata": {"labels": {"step": "2"}}},
                 headers=MERGE_PATCH, expect=200)
        # a new cluster of that name: 409 while the old one exists, as for a terminating namespace
        r = self.server.request("POST", collection_path("LanguageCluster"),
                                obj("LanguageCluster", ns, spec={"domain": "x.example.com"}))
        self.assertStatus(r, 409, "AlreadyExists")
        r = self.kubectl("create", "-f", self.write_yaml(obj("LanguageCluster", ns, spec={})), ok=False)
        self.assertIn("AlreadyExists", r.err)
        self.assertEqual(self.get("LanguageCluster", ns)["metadata"]["uid"], old_uid)
        # once the old one is gone: a new cluster, an empty namespace, creates work again
        self.release("LanguageModel", "gpt", ns)
        self.assertEqual(self.status_of("LanguageCluster", ns), 404)
        new = self.cluster(ns)
        self.assertNotEqual(new["metadata"]["uid"], old_uid)
        self.assertNotIn("deletionTimestamp", new["metadata"])
        self.assertEqual(self.contents(ns), {k: [] for k in CONTENT_KINDS})
        self.create(model("again", ns))

    def test_watchers_see_every_step_in_order(self):
        ns = self.new_namespace("watched")
        self.populate(ns, held=("LanguageAgent",))
        start = self.api("GET", collection_path("LanguageCluster"), expect=200).json()["metadata"]["resourceVersion"]
        watches = {kind: WatchStream(self.server, f"{collection_path(kind, ns)}?watch=1&resourceVersion={start}"
                                     + (f"&fieldSelector=metadata.name%3D{ns}" if kind == "LanguageCluster" else ""))
                   for kind in KINDS}
        for w in watches.values():
            self.addCleanup(w.close)
        self.api("DELETE", item_path("LanguageCluster", ns), expect=200)
        marked = summary(watches["LanguageCluster"].next())
        self.assertEqual(marked[:5], ("MODIFIED", "LanguageCluster", ns, True, (FINALIZER,)), marked)
        gone = {kind: summary(watches[kind].next()) for kind in ("LanguageModel", "LanguageTool",
                                                                 "LanguagePersona")}
        for kind, ev in gone.items():
            self.assertEqual(ev[:3], ("DELETED", kind, ev[2]), ev)
        held = summary(watches["LanguageAgent"].next())
        self.assertEqual(held[:5], ("MODIFIED", "LanguageAgent", "bot", True, (HOLD,)), held)
        # one commit: the marking, then the namespace's objects, each with its own rv, in order
        rvs = [marked[5]] + sorted(ev[5] for ev in list(gone.values()) + [held])
        self.assertEqual(rvs, list(range(marked[5], marked[5] + 5)), rvs)
        # the derived status that follows (the cluster's counts, the agent's references) comes after
        counts = watches["LanguageCluster"].next()
        self.assertEqual(counts["type"], "MODIFIED")
        self.assertEqual(counts["object"]["status"]["modelCount"], 0, counts["object"]["status"])
        self.assertGreater(summary(counts)[5], rvs[-1])
        resolved = summary(watches["LanguageAgent"].next())
        self.assertEqual(resolved[0], "MODIFIED")
        self.assertGreater(resolved[5], rvs[-1])
        # the last finalizer goes: the agent's DELETED, then the cluster's, back to back
        self.release("LanguageAgent", "bot", ns)
        released = summary(watches["LanguageAgent"].next())   # an update that empties them deletes it
        self.assertEqual(released[:3], ("DELETED", "LanguageAgent", "bot"), released)
        last = summary(watches["LanguageCluster"].next())
        self.assertEqual(last[:3], ("DELETED", "LanguageCluster", ns), last)
        self.assertEqual(last[5], released[5] + 1, (released, last))

    def test_dry_run_deletes_nothing_and_says_what_would_happen(self):
        ns = self.new_namespace("dry")
        self.populate(ns, held=("LanguageAgent",))
        before = self.get("LanguageCluster", ns)
        contents = self.contents(ns)
        r = self.api("DELETE", item_path("LanguageCluster", ns) + "?dryRun=All", expect=200).json()
        # the agent would hold it: the answer is the cluster as it would wait
        self.assertEqual(r["kind"], "LanguageCluster", r)
        self.assertTrue(r["metadata"].get("deletionTimestamp"), r["metadata"])
        self.assertEqual(r["metadata"]["finalizers"], [FINALIZER])
        self.assertEqual(r["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"])
        r = self.kubectl("delete", "lcluster", ns, "--dry-run=server")
        self.assertIn("(server dry run)", r.out)
        self.assertEqual(self.get("LanguageCluster", ns), before)
        self.assertEqual(self.contents(ns), contents)
        self.assertNotIn("deletionTimestamp", self.get("LanguageAgent", "bot", ns)["metadata"])
        # nothing would hold it: a dry run answers as a delete that completes
        free = self.new_namespace("dry-free")
        self.populate(free)
        r = self.api("DELETE", item_path("LanguageCluster", free), {"dryRun": ["All"]}, expect=200).json()
        self.assertEqual((r["kind"], r["status"]), ("Status", "Success"), r)
        self.assertEqual(self.status_of("LanguageCluster", free), 200)
        self.assertEqual(sum(len(v) for v in self.contents(free).values()), 4)

    def test_every_propagation_policy_deletes_the_contents(self):
        for policy in ("Orphan", "Background", "Foreground"):
            with self.subTest(policy=policy):
                ns = self.new_namespace(f"policy-{policy}")
                self.populate(ns)
                r = self.api("DELETE", item_path("LanguageCluster", ns), {"propagationPolicy": policy},
                             expect=200).json()
                self.assertEqual(r.get("status"), "Success", r)
                self.assertEqual(self.contents(ns), {k: [] for k in CONTENT_KINDS})
        ns = self.new_namespace("cascade-orphan")
        self.populate(ns)
        self.kubectl("delete", "lcluster", ns, "--cascade=orphan", "--wait")
        self.assertEqual(self.contents(ns), {k: [] for k in CONTENT_KINDS})

    def test_preconditions_are_the_clusters(self):
        ns = self.new_namespace("pre")
        self.populate(ns)
        c = self.get("LanguageCluster", ns)
        contents = self.contents(ns)
        for pre in ({"uid": "00000000-0000-0000-0000-000000000000"}, {"resourceVersion": "1"}):
            with self.subTest(pre=pre):
                r = self.server.request("DELETE", item_path("LanguageCluster", ns), {"preconditions": pre})
                self.assertStatus(r, 409, "Conflict")
                self.assertEqual(self.get("LanguageCluster", ns), c)
                self.assertEqual(self.contents(ns), contents)
        r = self.api("DELETE", item_path("LanguageCluster", ns),
                     {"preconditions": {"uid": c["metadata"]["uid"],
                                        "resourceVersion": c["metadata"]["resourceVersion"]}}, expect=200)
        self.assertEqual(r.json().get("status"), "Success", r)
        self.assertEqual(self.contents(ns), {k: [] for k in CONTENT_KINDS})

    def test_deletecollection_of_clusters(self):
        a = self.cluster("dc-a", labels={"wave": "dc"})["metadata"]["name"]
        b = self.cluster("dc-b", labels={"wave": "dc"})["metadata"]["name"]
        keep = self.new_namespace("dc-keep")
        self.populate(a, held=("LanguageTool",))
        self.populate(b)
        self.populate(keep)
        d = self.start_kubectl("delete", "lcluster", "-l", "wave=dc", "--wait", "--timeout=40s")
        self.wait_gone("LanguageCluster", b)
        self.assertTerminating(a)
        self.assertEqual(self.contents(a)["LanguageTool"], ["web"])
        self.assertEqual(sum(len(v) for v in self.contents(b).values()), 0)
        self.assertIsNone(d.poll())
        self.release("LanguageTool", "web", a)
        self.assertEqual(d.wait(15), 0, d.stderr.read())
        self.assertEqual(self.status_of("LanguageCluster", a), 404)
        self.assertEqual(sum(len(v) for v in self.contents(keep).values()), 4)
        # a collection dry run deletes nothing
        r = self.api("DELETE", collection_path("LanguageCluster") + f"?dryRun=All&labelSelector=keep%3D1",
                     expect=200)
        self.assertEqual(r.json()["items"], [])
        self.api("PATCH", item_path("LanguageCluster", keep), {"metadata": {"labels": {"keep": "1"}}},
                 headers=MERGE_PATCH, expect=200)
        r = self.api("DELETE", collection_path("LanguageCluster") + "?dryRun=All&labelSelector=keep%3D1",
                     expect=200).json()
        self.assertEqual([i["metadata"]["name"] for i in r["items"]], [keep])
        self.assertEqual(sum(len(v) for v in self.contents(keep).values()), 4)
        self.assertNotIn("deletionTimestamp", self.get("LanguageCluster", keep)["metadata"])

    def test_deletecollection_answer_lists_each_cluster_as_the_cascade_left_it(self):
        went = self.cluster("dca-went", labels={"wave": "dca"})["metadata"]["name"]
        waits = self.cluster("dca-waits", labels={"wave": "dca"})["metadata"]["name"]
        self.populate(went)
        self.populate(waits, held=("LanguageModel",))
        r = self.api("DELETE", collection_path("LanguageCluster") + "?labelSelector=wave%3Ddca", expect=200).json()
        items = {i["metadata"]["name"]: i["metadata"] for i in r["items"]}
        self.assertEqual(sorted(items), [waits, went])
        # gone in that commit: no finalizer left (a client reading the list must not wait for it)
        self.assertTrue(items[went].get("deletionTimestamp"), items[went])
        self.assertNotIn("finalizers", items[went])
        self.assertEqual(self.status_of("LanguageCluster", went), 404)
        # held by its namespace: the finalizer says so
        self.assertEqual(items[waits].get("finalizers"), [FINALIZER], items[waits])
        self.assertTerminating(waits)
        self.release("LanguageModel", "gpt", waits)
        self.assertEqual(self.status_of("LanguageCluster", waits), 404)

    def test_a_finalizer_of_its_own_keeps_the_cluster_after_its_namespace(self):
        ns = self.cluster("own-fin", finalizers=[HOLD])["metadata"]["name"]
        self.populate(ns)
        r = self.api("DELETE", item_path("LanguageCluster", ns), expect=200).json()
        # the namespace went in that commit, and our finalizer with it: the cluster's own holds it
        self.assertEqual(r["kind"], "LanguageCluster", r)
        self.assertEqual(r["metadata"]["finalizers"], [HOLD], r["metadata"])
        self.assertTerminating(ns, finalizers=(HOLD,))
        self.assertEqual(self.contents(ns), {k: [] for k in CONTENT_KINDS})
        # a DELETE again changes nothing and answers the object
        again = self.api("DELETE", item_path("LanguageCluster", ns), expect=200).json()
        self.assertEqual(again["metadata"]["resourceVersion"], self.get("LanguageCluster", ns)["metadata"]
                         ["resourceVersion"])
        self.release("LanguageCluster", ns, None)
        self.assertEqual(self.status_of("LanguageCluster", ns), 404)

    def test_removing_the_finalizer_by_hand_forces_the_cluster_out(self):
        ns = self.new_namespace("forced")
        self.populate(ns, held=("LanguageModel",))
        self.api("DELETE", item_path("LanguageCluster", ns), expect=200)
        self.release("LanguageCluster", ns, None)
        self.assertEqual(self.status_of("LanguageCluster", ns), 404)
        # what is left is still being deleted, and goes with its own finalizer
        m = self.get("LanguageModel", "gpt", ns)
        self.assertTrue(m["metadata"].get("deletionTimestamp"))
        self.release("LanguageModel", "gpt", ns)
        self.assertEqual(self.status_of("LanguageModel", "gpt", ns), 404)


class ClusterDeleteRestartTest(ClusterDeleteBase):
    """kill -9 and restarts on the same database."""

    def test_an_acknowledged_delete_survives_kill9_and_finishes_after_restart(self):
        ns = self.new_namespace("crash")
        self.populate(ns, held=("LanguageAgent",))
        self.api("DELETE", item_path("LanguageCluster", ns), expect=200)
        self.server.kill9()
        self.server.start()
        self.assertTerminating(ns)
        self.assertEqual(self.contents(ns)["LanguageAgent"], ["bot"])
        self.assertStatus(self.server.request("POST", collection_path("LanguageModel", ns), model("x", ns)),
                          403, "Forbidden")
        self.release("LanguageAgent", "bot", ns)
        self.assertEqual(self.status_of("LanguageCluster", ns), 404)

    def test_kill9_during_a_large_delete_is_all_or_nothing(self):
        ns = self.new_namespace("big")
        conn = self.server.connection()
        for i in range(300):
            r = self.server.request("POST", collection_path("LanguageModel", ns), model(f"m{i:03d}", ns), conn=conn)
            self.assertEqual(r.status, 201, r)
        held = model("held", ns)
        held["metadata"]["finalizers"] = [HOLD]
        self.create(held)
        conn.request("DELETE", item_path("LanguageCluster", ns),
                     headers={"Authorization": f"Bearer {self.server.token}"})
        time.sleep(0.005)
        self.server.kill9()
        conn.close()
        self.server.start()
        c = self.get("LanguageCluster", ns)
        names = self.contents(ns)["LanguageModel"]
        if "deletionTimestamp" in c["metadata"]:        # the delete committed: all of it
            self.assertEqual(c["metadata"]["finalizers"], [FINALIZER])
            self.assertEqual(names, ["held"])
            self.assertTrue(self.get("LanguageModel", "held", ns)["metadata"].get("deletionTimestamp"))
        else:                                           # it did not: none of it
            self.assertEqual(len(names), 301)
            self.api("DELETE", item_path("LanguageCluster", ns), expect=200)
        self.release("LanguageModel", "held", ns)
        self.assertEqual(self.status_of("LanguageCluster", ns), 404)
        self.assertEqual(self.contents(ns)["LanguageModel"], [])

    def empty_behind_the_servers_back(self, ns, kind, name):
        """Removes an object from the database file while the server is stopped (as an older binary that
        knew no cascade could have left it): the cluster then waits on an empty namespace."""
        plural = KINDS[kind][0]
        self.server.stop()
        with sqlite3.connect(self.server.db) as db:
            n = db.execute("DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
                           (plural, ns, name)).rowcount
            self.assertEqual(n, 1)
            db.execute("UPDATE counts SET n = n - 1 WHERE resource = ? AND namespace = ?", (plural, ns))
        self.server.start()
        self.assertTerminating(ns)
        self.assertEqual(self.contents(ns), {k: [] for k in CONTENT_KINDS})

    def test_a_cluster_left_waiting_on_an_empty_namespace_goes_at_its_next_delete(self):
        ns = self.new_namespace("stuck")
        self.populate(ns, held=("LanguageTool",))
        self.api("DELETE", item_path("LanguageCluster", ns), expect=200)
        self.empty_behind_the_servers_back(ns, "LanguageTool", "web")
        r = self.kubectl("delete", "lcluster", ns, "--wait", "--timeout=20s")
        self.assertIn("deleted", r.out)
        self.assertEqual(self.status_of("LanguageCluster", ns), 404)

    def test_a_cluster_left_waiting_on_an_empty_namespace_goes_at_its_next_update(self):
        ns = self.new_namespace("stuck-upd")
        self.populate(ns, held=("LanguageTool",))
        self.api("DELETE", item_path("LanguageCluster", ns), expect=200)
        self.empty_behind_the_servers_back(ns, "LanguageTool", "web")
        self.kubectl("label", "lcluster", ns, "touched=yes")
        self.assertEqual(self.status_of("LanguageCluster", ns), 404)
