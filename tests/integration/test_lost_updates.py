"""No lost updates: 32 clients race to increment one counter annotation 50
times each, by GET + PUT retrying on 409 Conflict, by a JSON patch whose
`test` guards its `replace` (retrying on the 422 a failed test gets, as from
kube-apiserver), and by server-side apply: 32 managers each applying their
own annotation, and 32 managers taking one shared annotation with force and
a resourceVersion precondition. The final count equals the successful
writes, no two successful writes started from the same value, and the
counter only grows with the resourceVersion."""

import random
import threading
import time
from collections import Counter

from harness import API_VERSION, ServerTestCase, item_path, persona

CLIENTS = 32
INCREMENTS = 50
COUNTER = "example.com/counter"


def backoff(retries):
    """A jittered pause before retrying, as client-go's retry.RetryOnConflict
    makes: 32 clients that retry at once mostly conflict again."""
    time.sleep(random.uniform(0, 0.002 * min(retries, 10)))


class LostUpdatesTest(ServerTestCase):

    def setUp(self):
        self.ns = self.new_namespace("lost")
        self.name = "counted"
        p = persona(self.name, self.ns)
        p["metadata"]["annotations"] = {COUNTER: "0"}
        self.create(p)
        self.path = item_path("LanguagePersona", self.name, self.ns)

    def race(self, worker):
        """Runs worker(i, conn) in CLIENTS threads at once; returns their results."""
        results = [None] * CLIENTS
        errors = []
        start = threading.Barrier(CLIENTS)

        def run(i):
            conn = self.server.connection(timeout=30)
            try:
                start.wait()
                results[i] = worker(i, conn)
            except Exception as e:  # noqa: BLE001 - reported below with the thread's number
                errors.append(f"client {i}: {e!r}")
            finally:
                conn.close()

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(CLIENTS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertTrue(all(r is not None for r in results), "a client did not finish")
        return results, time.monotonic() - t0

    def check_increments(self, how, results, elapsed):
        """results: per client (list of (value written, rv) of its successes, retries)."""
        writes = sorted((rv, v) for wins, _ in results for v, rv in wins)
        retries = sum(r for _, r in results)
        final = self.get("LanguagePersona", self.name, self.ns)
        print(f"    {how}: {len(writes)} successful increments, {retries} retries, final counter "
              f"{final['metadata']['annotations'][COUNTER]}, {elapsed:.1f} s", flush=True)
        self.assertEqual(len(writes), CLIENTS * INCREMENTS)
        self.assertEqual(final["metadata"]["annotations"][COUNTER], str(len(writes)))
        # every success started from the value the one before it wrote
        self.assertEqual([v for _, v in writes], list(range(1, len(writes) + 1)),
                         "two successful writes started from the same value, or the counter went back")
        self.assertEqual(len({rv for rv, _ in writes}), len(writes), "two writes share a resourceVersion")
        self.assertEqual(int(final["metadata"]["resourceVersion"]), writes[-1][0])

    def increments(self, conn, write, refusal=(409, "Conflict")):
        """INCREMENTS increments of the counter: write(cur, n) writes n from the object cur last
        read or answered; a refusal (status, reason) reads it again after a backoff. Returns
        (wins, retries): wins are (n, resourceVersion) of the successful writes."""
        wins, retries, cur = [], 0, None
        while len(wins) < INCREMENTS:
            if cur is None:
                r = self.server.request("GET", self.path, conn=conn)
                self.assertEqual(r.status, 200, r)
                cur = r.json()
            n = int(cur["metadata"]["annotations"][COUNTER]) + 1
            r = write(cur, n)
            if r.status == refusal[0]:
                self.assertStatus(r, *refusal)
                retries += 1
                backoff(retries)
                cur = None
                continue
            self.assertEqual(r.status, 200, r)
            cur = r.json()
            self.assertEqual(cur["metadata"]["annotations"][COUNTER], str(n))
            wins.append((n, int(cur["metadata"]["resourceVersion"])))
        return wins, retries

    def test_get_put_retrying_on_conflict(self):
        def worker(i, conn):
            def put(cur, n):
                cur["metadata"]["annotations"][COUNTER] = str(n)
                return self.server.request("PUT", self.path, cur, conn=conn)
            return self.increments(conn, put)

        self.check_increments("GET + PUT", *self.race(worker))

    def test_json_patch_test_and_replace_retrying_on_failed_test(self):
        pointer = "/metadata/annotations/" + COUNTER.replace("/", "~1")

        def worker(i, conn):
            def test_and_replace(cur, n):
                patch = [{"op": "test", "path": pointer, "value": str(n - 1)},
                         {"op": "replace", "path": pointer, "value": str(n)}]
                return self.server.request("PATCH", self.path, patch, conn=conn,
                                           headers={"Content-Type": "application/json-patch+json"})
            # kube's answer to a failed test: 422 Invalid
            return self.increments(conn, test_and_replace, refusal=(422, "Invalid"))

        self.check_increments("JSON patch test + replace", *self.race(worker))

    def test_unconditional_patches_all_succeed(self):
        """Client i sets its own annotation patch-i = 1..50 by merge patch and
        JSON patch in turn, with no resourceVersion: the server's own
        compare-and-swap losing to another client is retried (kube's
        GuaranteedUpdate retries until it succeeds), never answered 409, and
        no patch lands on a stale object (no value goes back)."""
        key = lambda i: f"example.com/patch-{i}"
        pointer = lambda i: "/metadata/annotations/" + key(i).replace("/", "~1")

        def worker(i, conn):
            seen, refused = [], []
            for k in range(1, INCREMENTS + 1):
                if k % 2:
                    r = self.server.request("PATCH", self.path, {"metadata": {"annotations": {key(i): str(k)}}},
                                            conn=conn, headers={"Content-Type": "application/merge-patch+json"})
                else:
                    r = self.server.request("PATCH", self.path, [{"op": "add", "path": pointer(i), "value": str(k)}],
                                            conn=conn, headers={"Content-Type": "application/json-patch+json"})
                if r.status != 200:
                    refused.append(f"{r.status} {r.json().get('reason')}")
                    continue
                o = r.json()
                seen.append((int(o["metadata"]["resourceVersion"]), o["metadata"]["annotations"]))
            return seen, refused

        results, elapsed = self.race(worker)
        answers = sorted(a for per, _ in results for a in per)
        refused = Counter(r for _, per in results for r in per)
        ann = self.get("LanguagePersona", self.name, self.ns)["metadata"]["annotations"]
        print(f"    unconditional merge and JSON patches: {len(answers)} answered 200, refused {dict(refused)}, "
              f"{sum(ann.get(key(i)) == str(INCREMENTS) for i in range(CLIENTS))} of {CLIENTS} fields at "
              f"{INCREMENTS}, {elapsed:.1f} s", flush=True)
        self.assertEqual(refused, Counter(), "patches without a precondition were refused")
        self.assertEqual(len({rv for rv, _ in answers}), len(answers), "two patches share a resourceVersion")
        self.assert_never_back(answers, key)
        self.assertEqual({k: v for k, v in ann.items() if k != COUNTER},
                         {key(i): str(INCREMENTS) for i in range(CLIENTS)})

    def assert_never_back(self, answers, key):
        """In resourceVersion order no client's value goes back: no write
        started from a stale object."""
        last = {}
        for rv, a in answers:
            for i in range(CLIENTS):
                v = int(a.get(key(i), "0"))
                self.assertGreaterEqual(v, last.get(i, 0), f"{key(i)} went back at rv {rv}")
                last[i] = v

    def apply(self, conn, manager, annotations, force=False, rv=None):
        md = {"name": self.name, "namespace": self.ns, "annotations": annotations}
        if rv is not None:
            md["resourceVersion"] = rv
        body = {"apiVersion": API_VERSION, "kind": "LanguagePersona", "metadata": md}
        query = f"?fieldManager={manager}" + ("&force=true" if force else "")
        return self.server.request("PATCH", self.path + query, body, conn=conn,
                                   headers={"Content-Type": "application/apply-patch+yaml"})

    def test_server_side_apply_by_32_managers_of_their_own_fields(self):
        """Manager i applies annotation counter-i = 1..50. Applies are not
        conditional, so all succeed; none may undo another manager's."""
        key = lambda i: f"example.com/counter-{i}"

        def worker(i, conn):
            seen = []
            for k in range(1, INCREMENTS + 1):
                r = self.apply(conn, f"manager-{i}", {key(i): str(k)})
                self.assertEqual(r.status, 200, r)
                o = r.json()
                seen.append((int(o["metadata"]["resourceVersion"]), o["metadata"]["annotations"]))
            return seen

        results, elapsed = self.race(worker)
        answers = sorted(a for per in results for a in per)
        final = self.get("LanguagePersona", self.name, self.ns)
        ann = final["metadata"]["annotations"]
        managers = {m["manager"]: m for m in final["metadata"]["managedFields"]}
        print(f"    server-side apply, 32 managers of their own fields: {len(answers)} applies, "
              f"{sum(ann.get(key(i)) == str(INCREMENTS) for i in range(CLIENTS))} of {CLIENTS} fields at "
              f"{INCREMENTS}, {sum(m.startswith('manager-') for m in managers)} managers listed, "
              f"{elapsed:.1f} s", flush=True)
        self.assertEqual(len(answers), CLIENTS * INCREMENTS)
        self.assertEqual(len({rv for rv, _ in answers}), len(answers), "two applies share a resourceVersion")
        self.assert_never_back(answers, key)
        self.assertEqual({k: v for k, v in ann.items() if k != COUNTER},
                         {key(i): str(INCREMENTS) for i in range(CLIENTS)})
        for i in range(CLIENTS):
            m = managers.get(f"manager-{i}")
            self.assertIsNotNone(m, f"manager-{i} is not in managedFields")
            self.assertEqual(m["operation"], "Apply")
            self.assertEqual(m["fieldsV1"], {"f:metadata": {"f:annotations": {f"f:{key(i)}": {}}}})

    def test_server_side_apply_of_one_field_by_32_managers(self):
        """32 managers take the shared counter with force, each apply
        conditional on the resourceVersion it read (409 Conflict when stale)."""
        def worker(i, conn):
            return self.increments(conn, lambda cur, n: self.apply(
                conn, f"manager-{i}", {COUNTER: str(n)}, force=True, rv=cur["metadata"]["resourceVersion"]))

        results, elapsed = self.race(worker)
        self.check_increments("server-side apply of one field, forced, resourceVersion-conditional",
                              results, elapsed)
        final = self.get("LanguagePersona", self.name, self.ns)
        last_rv = max(rv for wins, _ in results for _, rv in wins)
        winner = next(i for i, (wins, _) in enumerate(results) if any(rv == last_rv for _, rv in wins))
        owners = [m["manager"] for m in final["metadata"]["managedFields"]
                  if f"f:{COUNTER}" in m.get("fieldsV1", {}).get("f:metadata", {}).get("f:annotations", {})]
        self.assertEqual(owners, [f"manager-{winner}"], "the last forced apply owns the field alone")
