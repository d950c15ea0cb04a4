"""The reconcile thread when things go wrong, and when nothing happens:
kube-apiserver unavailable for 30 s (the requests the server sends meanwhile
stay within what its backoffs allow, and the cluster converges once it is
back), the server killed half way through applying a world (after a restart
on the same database nothing is duplicated or recreated), and a converged
minute with resyncs in it (not one write). Each test asserts what the
stand-in holds, or was sent, afterwards.

One server for the three, with --reconcile-resync-period=20s: the idle
minute needs resyncs in it; the outage's bound counts them. They do not
overlap in time (unittest runs a class's tests one after the other) and
each leaves its cluster converged."""

import math
import time

import harness
from harness import collection_path
from reconcile_base import MANAGED, ReconcileCase, keyed_model

RESYNC_S = 20
OUTAGE_S = 30

# What the server watches, one informer each (apiserver/reconcile/reconciler.c):
# the Secrets and the six kinds it manages.
INFORMER_PATHS = {"/api/v1/secrets", "/api/v1/namespaces", "/api/v1/configmaps", "/api/v1/services",
                  "/apis/apps/v1/deployments", "/apis/batch/v1/cronjobs", "/apis/batch/v1/jobs"}

# The retry schedules the headers document; every wait is drawn from
# [d/2, d], so the fastest a client can go takes d/2 each time.
#   kubeclient.h: a GET (a watch's opening too) is retried 4 times on a 5xx,
#     d = 0.2 s doubling (cap 5 s): 5 attempts, >= 0.1+0.2+0.4+0.8 = 1.5 s;
#     a PATCH is not retried on a 5xx (one request per attempt).
#   informer.h: after a failed call, d = 0.5 s doubling to 30 s.
#   workqueue.h / reconciler.h: a failed key comes back after d = 0.5 s
#     doubling to 5 min.
KUBE_GET_RETRY_WAITS = (0.1, 0.2, 0.4, 0.8)
INFORMER_BACKOFF = (0.5, 30.0)
KEY_BACKOFF = (0.5, 300.0)


def informer_requests_bound(window):
    """The most requests one informer can send in window seconds of failures:
    calls of 5 attempts, each call followed by the informer's backoff, all at
    their fastest. 35 for 30 s: 7 calls (starting at 0, 1.75, 3.75, 6.25,
    9.75, 15.25 and 24.75 s; the 8th could not start before 41.25 s)."""
    start, n, k = 0.0, 0, 0
    while start <= window:
        t = start
        for wait in (0.0, *KUBE_GET_RETRY_WAITS):
            t += wait
            n += t <= window
        start = t + min(INFORMER_BACKOFF[0] * 2 ** k, INFORMER_BACKOFF[1]) / 2
        k += 1
    return n


def key_backoff_attempts(window):
    """The most attempts one failing key gets from its backoff alone in window
    seconds: 7 for 30 s (at 0, 0.25, 0.75, 1.75, 3.75, 7.75 and 15.75 s)."""
    t, n = 0.0, 0
    while t <= window:
        t += min(KEY_BACKOFF[0] * 2 ** n, KEY_BACKOFF[1]) / 2
        n += 1
    return n


# What make_world's objects give in the cluster (desired.h).
WORLD_OBJECTS = {("ConfigMap", "gateway-config"), ("Deployment", "gateway"), ("Service", "gateway"),
                 ("Deployment", "t"), ("Service", "t"), ("ConfigMap", "a-agent"), ("Deployment", "a")}
PATHS = {"ConfigMap": "/api/v1/namespaces/{ns}/configmaps/{name}",
         "Service": "/api/v1/namespaces/{ns}/services/{name}",
         "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
         "Namespace": "/api/v1/namespaces/{name}"}


class ReconcileFaultsTest(ReconcileCase):

    reconcile_flags = (f"--reconcile-resync-period={RESYNC_S}s",)

    def expected(self, ns, extra=()):
        return WORLD_OBJECTS | {("Namespace", ns)} | set(extra)

    def reconciled(self, ns):
        c = self.get("LanguageCluster", ns)
        return c if any(x["type"] == "Reconciled" and x["status"] == "True"
                        for x in c.get("status", {}).get("conditions", [])) else None

    def writes_in(self, ns):
        """The non-GET requests to the stand-in since its counters were reset
        that name namespace ns (or are the Namespace itself), but the Events
        the server records there (what it did, not what it manages)."""
        return {k: n for k, n in self.writes().items()
                if (k.endswith(f"/namespaces/{ns}") or f"/namespaces/{ns}/" in k) and f"/namespaces/{ns}/events" not in k}

    # ---------------------------------------------------------------- tests

    def test_a_restart_half_way_duplicates_nothing(self):
        ns = self.new_namespace()
        # every write of this cluster takes 0.4 s, so the kill lands half way
        self.standin.add_fault("delay", path=f"*/namespaces/{ns}*", method="PATCH", count=1000, delay=0.4)
        self.standin.reset_calls()
        self.make_world(ns)
        self.wait_for("the gateway's Service", lambda: self.held("services", "gateway", ns))
        self.server.kill9()
        self.standin.clear_faults()
        time.sleep(0.6)  # a write in flight when the server died still lands
        before = self.managed_in(ns)
        self.assertIn(("Service", "gateway"), before)
        self.assertLess(set(before), self.expected(ns), "the kill was not half way")
        self.assertEqual(self.writes_in(ns).keys() - {f"PATCH {PATHS[k].format(ns=ns, name=n)}"
                                                      for k, n in self.expected(ns)}, set(),
                         "the server writes with server-side apply only")

        self.standin.reset_calls()
        self.server.start()  # same database, new process
        self.wait_for("the cluster to hold what the API renders", lambda: self.converged(ns), timeout=20)
        self.wait_for("Reconciled", lambda: self.reconciled(ns))
        after = self.managed_in(ns)
        # exactly the world's objects, one each
        self.assertEqual(set(after), self.expected(ns))
        with self.standin.store.lock:
            deployments = sorted(o["metadata"]["name"] for (res, ons, _), o in self.standin.store.objects.items()
                                 if res.plural == "deployments" and ons == ns)
            jobs = [o for (res, ons, _), o in self.standin.store.objects.items()
                    if res.plural in ("jobs", "cronjobs") and ons == ns]
        self.assertEqual(deployments, ["a", "gateway", "t"])
        self.assertEqual(jobs, [])
        self.assertEqual([n for (k, n), o in after.items() if k == "Deployment"
                          and o["metadata"]["labels"].get("langop.io/languagecluster") == ns], ["gateway"])
        for (k, n), o in after.items():
            self.assertLessEqual(MANAGED.items(), o["metadata"]["labels"].items(), (k, n))
        with self.standin.store.lock:  # and nothing else in the namespace but the test's Secret (and Events)
            others = sorted((o["kind"], o["metadata"]["name"]) for (_, ons, _), o in self.standin.store.objects.items()
                            if ons == ns and (o["kind"], o["metadata"]["name"]) not in after and o["kind"] != "Event")
        self.assertEqual(others, [("Secret", "k1")])
        # what was there before the restart was updated in place, never recreated
        for key, o in before.items():
            self.assertEqual(after[key]["metadata"]["uid"], o["metadata"]["uid"], f"{key} was recreated")
            self.assertEqual(after[key]["metadata"]["creationTimestamp"], o["metadata"]["creationTimestamp"], key)
        writes = self.writes_in(ns)
        self.assertFalse([k for k in writes if not k.startswith("PATCH ")],
                         f"only server-side applies after the restart: {writes}")
        # and what was already right (the Namespace at least) was not even written again
        right = [(k, n) for (k, n), o in before.items()
                 if o["metadata"]["annotations"]["langop.io/applied-hash"]
                 == after[(k, n)]["metadata"]["annotations"]["langop.io/applied-hash"]]
        self.assertIn(("Namespace", ns), right)
        for k, n in right:
            self.assertNotIn(f"PATCH {PATHS[k].format(ns=ns, name=n)}", writes,
                             f"{k} {n} held what was desired and was applied again")
        # the status lists the same objects
        listed = {(m["kind"], m["name"]) for m in self.reconciled(ns)["status"]["managedResources"]}
        self.assertEqual(listed, self.expected(ns))

    def test_an_outage_is_retried_with_backoff_then_converges(self):
        # The bound. Each informer: informer_requests_bound(30) = 35 requests
        # (7 calls of 5 attempts), and in the last 10 s at most 2 calls (10
        # requests): the 4th call starts by 3*3 + 0.5+1+2 = 12.5 s and its
        # attempts end by 15.5 s, so a call with a request after 20 s is the
        # 5th or a later one; from the 5th on the backoffs are >= 4 s, 8 s,
        # ..., so a third call in the window could not start before
        # 20 + 4 + 1.5 + 8 > 30 s (a few ms a request change nothing). With
        # its backoff held at the first step, an informer sends about 18 in
        # those 10 s.
        per_informer = informer_requests_bound(OUTAGE_S)
        self.assertEqual(per_informer, 35)
        # The changed cluster's key: one PATCH an attempt (the first object
        # that differs fails, and the attempt ends there); its backoff gives
        # 7 attempts in 30 s, plus the adds that bypass the backoff: the 2
        # changes, the status write after the first failure and after each
        # change (its feed event names the cluster again), and each resync (2
        # at most in 30 s, each at most twice: it adds the key once per
        # object, and an add while a worker holds the key queues it once more).
        key_bound = key_backoff_attempts(OUTAGE_S) + 2 + (1 + 2) + 2 * math.ceil(OUTAGE_S / RESYNC_S)
        self.assertEqual(key_bound, 16)
        # Each failed attempt also records its Warning ReconcileFailed: one
        # Event request (a POST, then PATCHes of its count), never retried.
        # 7 * 35 + 2 * 16 = 277 in 30 s: 9.2 a second for 8 retrying loops,
        # each slowing down (the other clusters are converged: no writes to retry)
        bound = len(INFORMER_PATHS) * per_informer + 2 * key_bound

        ns = self.world()
        time.sleep(1.5)  # the informers' echoes of its own writes
        self.standin.reset_calls()
        outage = self.standin.outage(OUTAGE_S)  # every request 503, the open watches cut
        t0 = outage["until"] - OUTAGE_S
        # changes made while kube-apiserver is away: a model, and an agent of it
        time.sleep(2)
        self.create(keyed_model("m3", ns, "k1"))
        time.sleep(2)
        b = harness.agent("b", ns)
        b["spec"]["models"] = [{"name": "m3"}]
        self.create(b)
        time.sleep(max(0.0, outage["until"] + 0.05 - time.monotonic()))
        hits = outage["hits"]
        self.assertLessEqual(hits, bound, self.writes())
        with self.standin.mu:
            sent = [e for e in self.standin.log if e["time"] < outage["until"]]
        self.assertEqual(len(sent), hits, "the request log lost requests of the outage")
        by_path = {}
        for e in sent:
            by_path.setdefault((e["method"], e["path"]), []).append(e["time"] - t0)
        summary = {f"{m} {p}": len(ts) for (m, p), ts in sorted(by_path.items())}
        # every request is an informer's (a list or watch of its collection),
        # a write of the changed cluster or an Event about it: what the bound counts
        def is_event(k):
            return k[1].startswith("/api/v1/namespaces/default/events") and k[0] in ("POST", "PATCH")
        others = [k for k in by_path if not ((k[0] == "GET" and k[1] in INFORMER_PATHS) or is_event(k)
                                             or (k[0] == "PATCH" and f"/namespaces/{ns}/" in k[1]))]
        self.assertEqual(others, [], summary)
        for p in INFORMER_PATHS:
            ts = by_path.get(("GET", p), [])
            self.assertLessEqual(len(ts), per_informer, f"GET {p}: {summary}")
            self.assertLessEqual(len([t for t in ts if t >= OUTAGE_S - 10]), 10, f"GET {p}, last 10 s: {summary}")
        events = sum(len(ts) for k, ts in by_path.items() if is_event(k))
        self.assertLessEqual(events, key_bound, f"Events: {summary}")
        patches = sum(len(ts) for k, ts in by_path.items() if k[0] == "PATCH" and not is_event(k))
        self.assertGreaterEqual(patches, 2, f"the changes were tried during the outage: {summary}")
        self.assertLessEqual(patches, key_bound, summary)

        # Back: within a resync period (the key's backoff may be longer by
        # now, and nothing else brings it back: the watches resume with no
        # event), the cluster holds the world and the changes.
        t_end = time.monotonic()
        self.wait_for("convergence after the outage", lambda: self.converged(ns, ("a", "b")),
                      timeout=RESYNC_S + 8)
        converged_after = time.monotonic() - t_end
        self.assertIn("m3", self.held("configmaps", "gateway-config", ns)["data"]["config.yaml"])
        self.assertEqual(set(self.managed_in(ns)),
                         self.expected(ns, {("ConfigMap", "b-agent"), ("Deployment", "b")}))
        self.wait_for("Reconciled", lambda: self.reconciled(ns))
        self.assertFalse([k for k in self.writes() if not k.startswith("PATCH ") and "/events" not in k], self.writes())
        print(f"    (outage: {hits} requests in {OUTAGE_S} s, bound {bound}, {patches} of them writes; "
              f"converged {converged_after:.1f} s after it)")

    def test_converged_idle_minute_with_resyncs_writes_nothing(self):
        self.assertIn(f"resync every {RESYNC_S}s", self.server.log_text())
        ns = self.world()
        time.sleep(1.5)  # the informers' echoes of its own writes
        clusters = {c["metadata"]["name"]: c["metadata"]["resourceVersion"] for c in
                    self.api("GET", collection_path("LanguageCluster"), expect=200).json()["items"]}
        self.assertIn(ns, clusters)
        self.standin.reset_calls()
        t0 = time.monotonic()
        time.sleep(60)  # 2 or 3 resyncs of every cluster of this server, all converged
        with self.standin.mu:
            log = [f'{e["time"] - t0:5.1f}s {e["method"]} {e["path"]}' for e in self.standin.log
                   if e["method"] != "GET" or "watch" not in e.get("query", "")]
        with self.standin.store.lock:
            events = [(e["involvedObject"]["kind"], e["involvedObject"]["name"], e["reason"], e["message"], e["count"])
                      for (res, _, _), e in self.standin.store.objects.items()
                      if res.plural == "events" and ns in (e["involvedObject"]["name"], e["metadata"]["namespace"])]
        self.assertEqual(self.writes(), {}, f"writes in the idle minute after {time.monotonic() - t0:.0f} s; "
                         f"its Events: {events}; its requests: {log}")
        # nor did our own API change: no status rewritten by a resync
        now = {c["metadata"]["name"]: c["metadata"]["resourceVersion"] for c in
               self.api("GET", collection_path("LanguageCluster"), expect=200).json()["items"]}
        self.assertEqual(now, clusters)
        self.assertTrue(self.converged(ns))
