"""A 2xx answer means the change survives `kill -9`: acknowledged creates,
updates and deletes are all there after a crash and restart on the same
database, and resourceVersions keep growing across restarts."""

import threading
import time

from harness import ServerTestCase, collection_path, item_path, model


class DurabilityTest(ServerTestCase):

    def list_models(self, ns):
        r = self.api("GET", collection_path("LanguageModel", ns), expect=200).json()
        return r, {i["metadata"]["name"]: i for i in r["items"]}

    def crash_and_restart(self):
        self.server.kill9()
        self.server.start()

    def test_sequential_writes_survive_kill9(self):
        ns = self.new_namespace()
        conn = self.server.connection()
        acked = {}
        for i in range(10):
            r = self.server.request("POST", collection_path("LanguageModel", ns),
                                    model(f"seq-{i}", ns), conn=conn)
            self.assertEqual(r.status, 201, r)
            acked[f"seq-{i}"] = r.json()["metadata"]
        # an acknowledged update and an acknowledged delete
        upd = self.get("LanguageModel", "seq-0", ns)
        upd["spec"]["modelName"] = "updated-before-crash"
        r = self.server.request("PUT", item_path("LanguageModel", "seq-0", ns), upd, conn=conn)
        self.assertEqual(r.status, 200, r)
        updated_rv = r.json()["metadata"]["resourceVersion"]
        r = self.server.request("DELETE", item_path("LanguageModel", "seq-9", ns), conn=conn)
        self.assertEqual(r.status, 200, r)
        conn.close()
        self.crash_and_restart()       # right after the last 2xx

        lst, byname = self.list_models(ns)
        self.assertEqual(sorted(byname), sorted(f"seq-{i}" for i in range(9)))
        for name, md in acked.items():
            if name == "seq-9":
                continue
            self.assertEqual(byname[name]["metadata"]["uid"], md["uid"])
        self.assertEqual(byname["seq-0"]["spec"]["modelName"], "updated-before-crash")
        self.assertEqual(byname["seq-0"]["metadata"]["resourceVersion"], updated_rv)
        self.assertGreaterEqual(int(lst["metadata"]["resourceVersion"]), int(updated_rv))

        # the next write gets a larger resourceVersion than anything before the crash
        highest = max(int(lst["metadata"]["resourceVersion"]),
                      *(int(m["resourceVersion"]) for m in acked.values()))
        new = self.create(model("after-crash", ns))
        self.assertGreater(int(new["metadata"]["resourceVersion"]), highest)

    def test_concurrent_writers_killed_mid_stream(self):
        ns = self.new_namespace()
        acked = {}              # name -> metadata of every 201 received
        lock = threading.Lock()
        stop = threading.Event()

        def writer(t):
            conn = self.server.connection(timeout=10)
            i = 0
            while not stop.is_set():
                name = f"w{t}-{i}"
                try:
                    r = self.server.request("POST", collection_path("LanguageModel", ns),
                                            model(name, ns), conn=conn)
                except Exception:
                    return              # the server is gone
                if r.status == 201:
                    with lock:
                        acked[name] = r.json()["metadata"]
                i += 1

        threads = [threading.Thread(target=writer, args=(t,), daemon=True) for t in range(4)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                if len(acked) >= 40:
                    break
            time.sleep(0.02)
        self.server.kill9()             # while the writers are still sending
        stop.set()
        for th in threads:
            th.join(15)
        with lock:
            acked_now = dict(acked)
        self.assertGreaterEqual(len(acked_now), 40, "too few writes acknowledged before the crash")

        self.server.start()
        lst, byname = self.list_models(ns)
        missing = sorted(set(acked_now) - set(byname))
        self.assertEqual(missing, [], f"{len(missing)} acknowledged objects lost")
        for name, md in acked_now.items():
            self.assertEqual(byname[name]["metadata"]["uid"], md["uid"])
            self.assertEqual(byname[name]["metadata"]["resourceVersion"], md["resourceVersion"])
        rvs = [int(md["resourceVersion"]) for md in acked_now.values()]
        self.assertEqual(len(set(rvs)), len(rvs), "two writes share a resourceVersion")
        new = self.create(model("after-crash", ns))
        self.assertGreater(int(new["metadata"]["resourceVersion"]), max(rvs))

    def test_clean_restart_keeps_everything(self):
        ns = self.new_namespace()
        before = self.create(model("kept", ns))
        self.server.stop()              # SIGTERM
        self.server.start()
        after = self.get("LanguageModel", "kept", ns)
        self.assertEqual(after["metadata"], before["metadata"])
        self.assertEqual(after["spec"], before["spec"])
        new = self.create(model("next", ns))
        self.assertGreater(int(new["metadata"]["resourceVersion"]),
                           int(before["metadata"]["resourceVersion"]))
