"""The write path and the event feed as clients see them: derived status is
part of the object's history (kubectl wait and informers see it change),
watch replays of any size are delivered whole, a crash during batched
concurrent writes loses no acknowledged write and leaves the
resourceVersions gap-free, and a full write queue answers 429."""

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import (API, API_VERSION, FlagServerTestCase, ServerTestCase, collection_path, item_path,
                     model, obj, persona)
from test_watch import WatchStream

GROUP, VERSION = API_VERSION.split("/")


def agent(name, ns, models=(), persona_name=None):
    spec = {"image": "ghcr.io/langop/agent:v1", "models": [{"name": m} for m in models]}
    if persona_name:
        spec["persona"] = persona_name
    return obj("LanguageAgent", name, ns, spec)


def condition(o, ctype="ReferencesResolved"):
    return next((c for c in o.get("status", {}).get("conditions", []) if c["type"] == ctype), None)


def rv_of(o):
    return int(o["metadata"]["resourceVersion"])


class DerivedHistoryTest(ServerTestCase):
    """When what a GET returns changes, the object has a new resourceVersion
    and watchers get MODIFIED."""

    def test_kubectl_wait_sees_an_agent_resolve(self):
        ns = self.new_namespace("wait")
        self.create(agent("x", ns, models=["m"]))
        self.assertEqual(condition(self.get("LanguageAgent", "x", ns))["status"], "False")
        waiter = subprocess.Popen(
            ["kubectl", f"--kubeconfig={self.server.kubeconfig}", f"--cache-dir={self.kube_cache}",
             "wait", "--for=condition=ReferencesResolved", "lagent/x", "-n", ns, "--timeout=30s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.5)                 # kubectl has read the agent and is watching it
            self.assertIsNone(waiter.poll(), "kubectl wait ended before the model existed")
            t0 = time.monotonic()
            self.create(model("m", ns))
            out, err = waiter.communicate(timeout=30)
        finally:
            if waiter.poll() is None:
                waiter.kill()
        self.assertEqual(waiter.returncode, 0, f"kubectl wait: {out} {err}")
        self.assertIn("condition met", out)
        self.assertLess(time.monotonic() - t0, 10, "kubectl wait took too long to see the change")

    def test_same_resource_version_same_object(self):
        """A LanguageCluster whose model count moves gets a new revision each
        time; reads at one resourceVersion always return the same bytes."""
        ns = self.new_namespace("same-rv")
        seen = {}
        for i in range(4):
            cl = self.get("LanguageCluster", ns)
            seen.setdefault(cl["metadata"]["resourceVersion"], []).append(json.dumps(cl, sort_keys=True))
            self.create(model(f"m{i}", ns))
            cl2 = self.get("LanguageCluster", ns)
            self.assertEqual(cl2["status"]["modelCount"], i + 1)
            self.assertGreater(rv_of(cl2), rv_of(cl), "the count moved but the resourceVersion did not")
        for rv, bodies in seen.items():
            self.assertEqual(len(set(bodies)), 1, f"two different objects at resourceVersion {rv}")

    def test_python_informer_sees_every_derived_change(self):
        """list, then watch from the list's resourceVersion (what client-go's
        informers and python3-kubernetes' Watch do): every change of derived
        status arrives as MODIFIED, with the same body a GET then returns."""
        from kubernetes import client, watch
        ns = self.new_namespace("informer")
        self.create(agent("a1", ns, models=["m"], persona_name="p"))
        self.create(agent("a2", ns, models=["other"]))
        api = client.CustomObjectsApi(self.dyn.client)
        lst = api.list_namespaced_custom_object(GROUP, VERSION, ns, "languageagents")
        rv = lst["metadata"]["resourceVersion"]
        events = []

        def follow():
            w = watch.Watch()
            for ev in w.stream(api.list_namespaced_custom_object, GROUP, VERSION, ns, "languageagents",
                               resource_version=rv, timeout_seconds=10):
                events.append((ev["type"], ev["object"]))
                if len(events) == 3:
                    w.stop()

        t = threading.Thread(target=follow, daemon=True)
        t.start()
        time.sleep(0.5)
        self.create(model("m", ns))                                        # a1: still missing p
        self.create(persona("p", ns))                                      # a1: resolved
        self.api("DELETE", item_path("LanguageModel", "m", ns), expect=200)  # a1: unresolved again
        t.join(15)
        got = [(typ, o["metadata"]["name"], condition(o)["status"], condition(o)["reason"]) for typ, o in events]
        self.assertEqual(got, [("MODIFIED", "a1", "False", "PersonaNotFound"),
                               ("MODIFIED", "a1", "True", "AllReferencesResolved"),
                               ("MODIFIED", "a1", "False", "ModelNotFound")], got)
        rvs = [rv_of(o) for _, o in events]
        self.assertEqual(rvs, sorted(set(rvs)))
        self.assertGreater(rvs[0], int(rv))
        # the last event is what a GET returns now, byte for byte the same object
        self.assertEqual(self.get("LanguageAgent", "a1", ns), events[-1][1])
        # a2 names none of them: it was not rewritten
        self.assertLess(rv_of(self.get("LanguageAgent", "a2", ns)), rvs[0])

    def test_paginated_list_shows_derived_status_as_of_its_revision(self):
        ns = self.new_namespace("paged")
        for i in range(3):
            self.create(agent(f"a{i}", ns, models=["m"]))
        first = self.api("GET", collection_path("LanguageAgent", ns) + "?limit=1", expect=200).json()
        self.create(model("m", ns))                  # every agent resolves, as new revisions
        rest = self.api("GET", collection_path("LanguageAgent", ns) + "?limit=5&continue="
                        + first["metadata"]["continue"], expect=200).json()
        for o in first["items"] + rest["items"]:
            self.assertEqual(condition(o)["status"], "False", o)   # as of the list's revision
            self.assertLessEqual(rv_of(o), int(first["metadata"]["resourceVersion"]))
        now = self.api("GET", collection_path("LanguageAgent", ns), expect=200).json()
        self.assertEqual({condition(o)["status"] for o in now["items"]}, {"True"})


class FinalizerDeleteTest(ServerTestCase):

    def test_update_that_empties_the_finalizers_deletes_the_stored_object(self):
        """The update that removes the last finalizer of an object being
        deleted deletes it: the answer, and the DELETED event a selecting
        watch gets, carry the object as it was stored (with its derived
        status), also when the same update changes the labels the watch
        selects on, as kube does."""
        ns = self.new_namespace("fin")
        o = model("m", ns, labels={"tier": "gold"})
        o["metadata"]["finalizers"] = ["example.com/hold"]
        created = self.create(o)
        path = collection_path("LanguageModel", ns)
        w = WatchStream(self.server, path + f"?watch=1&labelSelector=tier%3Dgold&resourceVersion={rv_of(created)}"
                        "&timeoutSeconds=10", timeout=15)
        self.api("DELETE", item_path("LanguageModel", "m", ns), expect=200)
        ev = w.next()
        self.assertEqual(ev["type"], "MODIFIED")
        marked = ev["object"]
        self.assertIn("deletionTimestamp", marked["metadata"])
        upd = dict(marked)
        upd["metadata"] = dict(marked["metadata"], finalizers=[], labels={"tier": "bronze"})
        r = self.api("PUT", item_path("LanguageModel", "m", ns), upd, expect=200).json()
        self.assertEqual(r["metadata"]["labels"], {"tier": "gold"}, r)      # the stored state went
        self.assertIn("gatewayEndpoint", r.get("status", {}), r)
        ev = w.next()
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("DELETED", "m"), ev)
        self.assertEqual(ev["object"]["metadata"]["labels"], {"tier": "gold"})
        self.assertIn("gatewayEndpoint", ev["object"].get("status", {}))
        w.close()
        self.api("GET", item_path("LanguageModel", "m", ns), expect=404)


class LargeReplayTest(ServerTestCase):
    """Replays of any size, streamed: every object or event, however large."""

    def big_model(self, name, ns, size):
        o = model(name, ns)
        o["spec"]["params"] = {"blob": "x" * size}
        return o

    def create_big_models(self, ns, prefix, n=50, size=200_000):
        conn = self.server.connection(timeout=60)
        for i in range(n):
            r = self.server.request("POST", collection_path("LanguageModel", ns),
                                    self.big_model(f"{prefix}{i:02d}", ns, size), conn=conn)
            self.assertEqual(r.status, 201, r)
        conn.close()

    def test_fifty_objects_of_200kB(self):
        ns = self.new_namespace("big")
        self.create_big_models(ns, "b")
        first_rv = rv_of(self.get("LanguageModel", "b00", ns))
        for query, expect in ((f"?watch=1&timeoutSeconds=3", "ADDED"),
                              (f"?watch=1&timeoutSeconds=3&resourceVersion={first_rv - 1}", "ADDED")):
            with self.subTest(query=query):
                w = WatchStream(self.server, collection_path("LanguageModel", ns) + query, timeout=30)
                evs = w.take(50)
                self.assertEqual([e["type"] for e in evs], [expect] * 50)
                self.assertEqual(sorted(e["object"]["metadata"]["name"] for e in evs),
                                 [f"b{i:02d}" for i in range(50)])
                self.assertTrue(all(len(e["object"]["spec"]["params"]["blob"]) == 200_000 for e in evs))
                # then it is live: a change after the replay arrives
                self.api("DELETE", item_path("LanguageModel", "b07", ns), expect=200)
                ev = w.next()
                self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("DELETED", "b07"))
                w.close()
                self.create(self.big_model("b07", ns, 200_000))

    def test_a_slow_reader_gets_the_whole_replay(self):
        """A client that reads the big replay slowly is not cut off: only live
        events it does not read count against it."""
        ns = self.new_namespace("slow-big")
        self.create_big_models(ns, "s")
        w = WatchStream(self.server, collection_path("LanguageModel", ns) + "?watch=1&timeoutSeconds=20",
                        timeout=30)
        got = []
        for _ in range(50):
            got.append(w.next())
            time.sleep(0.05)
        self.assertEqual(len({e["object"]["metadata"]["name"] for e in got}), 50)
        w.close()

    def test_twenty_thousand_small_objects(self):
        ns = self.new_namespace("many")
        n = 20_000
        path = collection_path("LanguagePersona", ns)

        def create_range(start):
            conn = self.server.connection(timeout=60)
            try:
                for i in range(start, n, 16):
                    r = self.server.request("POST", path, persona(f"p{i:05d}", ns), conn=conn)
                    if r.status != 201:
                        raise AssertionError(f"create p{i}: {r}")
            finally:
                conn.close()

        with ThreadPoolExecutor(16) as ex:
            list(ex.map(create_range, range(16)))
        w = WatchStream(self.server, path + "?watch=1&timeoutSeconds=30", timeout=60)
        names = set()
        while len(names) < n:
            ev = w.next()
            self.assertIsNotNone(ev, f"the stream ended after {len(names)} objects")
            self.assertEqual(ev["type"], "ADDED")
            names.add(ev["object"]["metadata"]["name"])
        self.assertEqual(len(names), n)
        self.create(persona("after", ns))
        ev = w.next()
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "after"))
        w.close()


class BatchedCrashTest(FlagServerTestCase):
    """kill -9 while many writers are committed in shared batches."""

    server_flags = ("--compaction-interval=0",)

    def test_kill9_during_batched_writes(self):
        ns = self.new_namespace("crash")
        acked = {}                # name -> (rv, modelName) of the latest 2xx
        lock = threading.Lock()
        stop = threading.Event()

        def writer(t):
            conn = self.server.connection(timeout=10)
            i = 0
            while not stop.is_set():
                name = f"w{t}-{i % 5}"
                o = model(name, ns)
                o["spec"]["modelName"] = f"v{i}"
                try:
                    r = self.server.request("POST", collection_path("LanguageModel", ns), o, conn=conn)
                    if r.status == 409:       # exists: move it on instead
                        cur = self.server.request("GET", item_path("LanguageModel", name, ns), conn=conn).json()
                        cur["spec"]["modelName"] = f"v{i}"
                        r = self.server.request("PUT", item_path("LanguageModel", name, ns), cur, conn=conn)
                except Exception:
                    return                     # the server is gone
                if r.status in (200, 201):
                    with lock:
                        acked[name] = (rv_of(r.json()), f"v{i}")
                i += 1

        threads = [threading.Thread(target=writer, args=(t,), daemon=True) for t in range(24)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with lock:
                if len(acked) >= 100:         # every name written at least once
                    break
            time.sleep(0.05)
        time.sleep(0.5)                        # in full flight
        self.server.kill9()
        stop.set()
        for th in threads:
            th.join(15)
        with lock:
            acked_now = dict(acked)
        self.assertGreaterEqual(len(acked_now), 100, "too few writes acknowledged before the crash")

        # the database, read directly: the event log's ids are gap-free up to the newest rv
        db = sqlite3.connect(str(self.server.db))
        ids = [r[0] for r in db.execute("SELECT id FROM events ORDER BY id")]
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()[0]
        db.close()
        self.assertEqual(ids, list(range(1, seq + 1)), "the resourceVersions have a gap")

        self.server.start()
        items = self.api("GET", collection_path("LanguageModel", ns), expect=200).json()["items"]
        byname = {i["metadata"]["name"]: i for i in items}
        for name, (rv, value) in acked_now.items():
            with self.subTest(name=name):
                self.assertIn(name, byname, "an acknowledged object is lost")
                self.assertGreaterEqual(rv_of(byname[name]), rv)
                if rv_of(byname[name]) == rv:
                    self.assertEqual(byname[name]["spec"]["modelName"], value)
        new = self.create(model("after-crash", ns))
        self.assertGreater(rv_of(new), seq)


class ShutdownTest(FlagServerTestCase):

    # no grace: the writes still queued at the end are committed by the store's own close
    server_flags = ("--shutdown-grace-period=0s",)

    def test_sigterm_while_writes_are_queued(self):
        """SIGTERM while a large collection delete is being committed: the
        server stops its writer (which commits what is queued) before what
        the writer uses, and exits cleanly (under the sanitizers a use after
        free would end it otherwise); what it acknowledged is there after."""
        ns = self.new_namespace("stop")
        path = collection_path("LanguagePersona", ns)

        def create_range(start):
            conn = self.server.connection(timeout=60)
            try:
                for i in range(start, 3000, 8):
                    r = self.server.request("POST", path, persona(f"p{i:04d}", ns), conn=conn)
                    if r.status != 201:
                        raise AssertionError(f"create p{i}: {r}")
            finally:
                conn.close()

        with ThreadPoolExecutor(8) as ex:
            list(ex.map(create_range, range(8)))
        answer = {}

        def delete_all():
            try:
                answer["r"] = self.server.request("DELETE", path, timeout=60)
            except Exception as e:  # noqa: BLE001 - the server may close the connection first
                answer["error"] = e

        stop = threading.Event()

        def keep_writing(k):
            """Writes on an open connection through the shutdown, so that the drain ends by its bound."""
            conn = self.server.connection(timeout=10)
            i = 0
            try:
                while not stop.is_set():
                    self.server.request("POST", path, persona(f"late-{k}-{i}", ns), conn=conn)
                    i += 1
            except Exception:  # noqa: BLE001 - the server goes away under it
                pass

        threads = [threading.Thread(target=delete_all, daemon=True)]
        threads += [threading.Thread(target=keep_writing, args=(k,), daemon=True) for k in range(4)]
        for th in threads:
            th.start()
        time.sleep(0.05)
        proc = self.server.proc
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.server.proc = None
        stop.set()
        for th in threads:
            th.join(30)
        self.assertEqual(proc.returncode, 0, self.server.log_tail(30))
        log = self.server.log_text()
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("runtime error", log)
        self.server.start()
        left = {o["metadata"]["name"] for o in self.api("GET", path, expect=200).json()["items"]
                if o["metadata"]["name"].startswith("p")}
        if "r" in answer and answer["r"].status == 200:
            self.assertEqual(left, set(), "the delete was answered but objects are left")


class FullQueueTest(FlagServerTestCase):
    """A full write queue answers 429 with Retry-After, and loses nothing it
    accepted: every 201 is stored, no 429 left anything behind."""

    server_flags = ("--max-queued-writes=1", "--workers=8")

    def test_full_queue_answers_429(self):
        ns = self.new_namespace("full")
        path = collection_path("LanguagePersona", ns)
        results = []
        lock = threading.Lock()

        def burst(t):
            conn = self.server.connection(timeout=30)
            try:
                for i in range(40):
                    name = f"q{t}-{i}"
                    r = self.server.request("POST", path, persona(name, ns), conn=conn)
                    with lock:
                        results.append((name, r))
            finally:
                conn.close()

        with ThreadPoolExecutor(24) as ex:
            list(ex.map(burst, range(24)))
        codes = {r.status for _, r in results}
        self.assertLessEqual(codes, {201, 429}, codes)
        refused = [(n, r) for n, r in results if r.status == 429]
        self.assertGreater(len(refused), 0, "no write met a full queue")
        for _, r in refused[:5]:
            s = self.assertStatus(r, 429, "TooManyRequests")
            self.assertEqual(r.headers.get("retry-after"), "1", r.headers)
            self.assertEqual(s["details"]["retryAfterSeconds"], 1, s)
        stored = {o["metadata"]["name"] for o in
                  self.api("GET", path, expect=200).json()["items"]}
        self.assertEqual(stored, {n for n, r in results if r.status == 201})
