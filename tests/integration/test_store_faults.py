"""Faults below the store: the database's writes and syncs fail (ENOSPC, EIO)
while several clients create, patch and delete, and the server must lose
nothing it acknowledged, keep nothing it refused, say so with a 500
InternalError Status (what kube-apiserver answers for a storage error), go
on serving reads and watches, and write again by itself once the disk is
well; the database stays sound throughout, and after a kill -9.

The faults come from tests/shim/faultfs.c, preloaded into the server
(LD_PRELOAD) and switched through a control file while the writers run."""

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import harness
from harness import ServerTestCase, collection_path, item_path, obj
from test_watch import WatchStream, summary

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
WRITERS = 6
GRACE = 0.3          # s after a fault is switched off in which a batch begun under it may still fail
RECOVERY_BOUND = 2.0  # s after a fault ends by which a write must succeed again

# (name, control line, seconds): the faults in turn, each followed by a healthy second
PHASES = [
    ("enospc-writes", "mode=enospc ops=write files=all", 1.5),
    ("eio-syncs", "mode=eio ops=sync files=all", 1.5),
    ("eio-every-3rd", "mode=eio ops=write,sync,truncate every=3", 1.5),
    ("eio-db-file", "mode=eio ops=write,sync,truncate files=db", 1.5),
]
HEALTHY = 1.0


def persona(name, ns, **meta):
    return obj("LanguagePersona", name, ns, {"tone": "friendly"}, **meta)


def shim_path():
    return Path(harness.BINARY).resolve().parent / "tests" / "faultfs.so"


class Outcome:
    """One write as its client saw it."""

    def __init__(self, op, name, value, sent, status, body):
        self.op, self.name, self.value, self.sent = op, name, value, sent
        self.answered = time.monotonic()
        self.status, self.body = status, body
        md = body.get("metadata", {}) if isinstance(body, dict) else {}
        self.rv = md.get("resourceVersion") if self.ok else None
        self.uid = md.get("uid") if self.ok else None

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300

    def __repr__(self):
        return f"<{self.op} {self.name} {self.value} -> {self.status} rv={self.rv}>"


class StoreFaultsTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.tmp = Path(tempfile.mkdtemp(prefix="langop-it-"))
        cls.kube_cache = cls.tmp / "kube-cache"
        cls._dyn = None
        cls.control = cls.tmp / "faults"
        cls.fault_log = cls.tmp / "faults.log"
        cls.control.write_text("mode=off\n")
        if not shim_path().exists():
            raise RuntimeError(f"the fault shim {shim_path()} is not built (tests/meson.build)")
        env = {
            "LD_PRELOAD": str(shim_path()),
            "FAULTFS_PREFIX": str(cls.tmp / "langop.db"),
            "FAULTFS_CONTROL": str(cls.control),
            "FAULTFS_LOG": str(cls.fault_log),
            # a sanitizer runtime wants to be first; the shim only wraps a few libc calls
            "ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                   "verify_asan_link_order=0"])),
        }
        # every commit synced: sync faults hit commits too, not only checkpoints
        cls.server = harness.Server(cls.tmp, ["--storage-fsync"], env=env)
        try:
            cls.server.start()
        except Exception:
            cls.server.stop()
            raise

    # ------------------------------------------------------------ helpers

    def set_faults(self, line):
        tmp = self.control.with_suffix(".new")
        tmp.write_text(line + "\n")
        os.replace(tmp, self.control)   # the shim never reads half a line
        time.sleep(0.005)               # it re-reads the file every 2 ms

    def faults_injected(self):
        try:
            return self.fault_log.read_text().splitlines()
        except OSError:
            return []

    def integrity(self):
        db = sqlite3.connect(f"file:{self.server.db}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("PRAGMA integrity_check").fetchall()
        finally:
            db.close()

    def check_log(self, since, where):
        """Every change after since has its own rv, with no gap: the rvs of
        failed batches were given again, none lost, none used twice."""
        db = sqlite3.connect(f"file:{self.server.db}?mode=ro", uri=True, timeout=5)
        try:
            n, lo, hi = db.execute("SELECT COUNT(*), MIN(id), MAX(id) FROM events WHERE id > ?",
                                   (int(since),)).fetchone()
            seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()[0]
        finally:
            db.close()
        self.assertEqual((lo, hi, seq), (int(since) + 1, int(since) + n, int(since) + n),
                         f"{where}: the event log after {since} has gaps or a counter ahead of it")

    def list_all(self, ns):
        out, cont = {}, ""
        while True:
            r = self.api("GET", collection_path("LanguagePersona", ns) + f"?limit=100&continue={cont}",
                         expect=200).json()
            out.update({i["metadata"]["name"]: i for i in r["items"]})
            cont = r["metadata"].get("continue")
            if not cont:
                return out, r["metadata"]["resourceVersion"]

    def send(self, conn, method, path, body, headers=None):
        """(status, decoded body); status None when the request itself failed."""
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        r = self.server.request(method, path, json.dumps(body).encode() if body is not None else None,
                                headers=hdrs, conn=conn)
        try:
            return r.status, r.json()
        except ValueError:
            return r.status, {"undecodable": r.text()[:300]}

    # ---------------------------------------------------------- the workers

    def writer(self, t, ns, stop, outcomes, lock):
        """Creates p<t>-<i>, patches tgt-<t> (annotation seq = i), deletes
        what it created every third round: each outcome is recorded."""
        conn = self.server.connection(timeout=20)
        i = 0
        last_created = None
        while not stop.is_set():
            i += 1
            step = i % 3
            if step == 1:
                name = f"p{t}-{i}"
                op, method, path, body, hdrs = ("create", "POST", collection_path("LanguagePersona", ns),
                                                persona(name, ns), None)
            elif step == 2:
                name = f"tgt-{t}"
                op, method, path, hdrs = "patch", "PATCH", item_path("LanguagePersona", name, ns), MERGE_PATCH
                body = {"metadata": {"annotations": {"seq": str(i)}}}
            elif last_created is not None:
                name = last_created
                op, method, path, body, hdrs = "delete", "DELETE", item_path("LanguagePersona", name, ns), \
                    None, None
            else:
                continue
            sent = time.monotonic()
            try:
                status, answer = self.send(conn, method, path, body, hdrs)
            except Exception as e:  # the server is gone, or did not answer in time
                status, answer = None, {"exception": repr(e)}
                conn.close()
                conn = self.server.connection(timeout=20)
            out = Outcome(op, name, i, sent, status, answer)
            with lock:
                outcomes.append(out)
            if op == "create":
                last_created = name if out.ok else None
            elif op == "delete":
                last_created = None
        conn.close()

    def model_writer(self, ns, stop, outcomes, lock):
        """Creates two models m-<i>, deletes the second, and so on: each
        write changes the derived status of the namespace's LanguageCluster
        in the same commit."""
        conn = self.server.connection(timeout=20)
        i = 0
        while not stop.is_set():
            i += 1
            last = outcomes[-1] if outcomes else None
            if i % 3 != 0:
                name = f"m-{i}"
                op, method, path, body = "create", "POST", collection_path("LanguageModel", ns), \
                    obj("LanguageModel", name, ns, {"provider": "openai", "modelName": f"gpt-{i}"})
            elif last.ok and last.op == "create":
                name = last.name
                op, method, path, body = "delete", "DELETE", item_path("LanguageModel", name, ns), None
            else:
                continue
            sent = time.monotonic()
            try:
                status, answer = self.send(conn, method, path, body)
            except Exception as e:  # noqa: BLE001 - an unanswered write, reported by the test
                status, answer = None, {"exception": repr(e)}
                conn.close()
                conn = self.server.connection(timeout=20)
            with lock:
                outcomes.append(Outcome(op, name, i, sent, status, answer))
        conn.close()

    def check_derived(self, ns, models, personas, where):
        """The LanguageCluster's derived status counts what is stored: the
        models that were acknowledged and not deleted, and the personas."""
        want = set()
        for o in models:
            if o.ok:
                (want.add if o.op == "create" else want.discard)(o.name)
        r = self.api("GET", collection_path("LanguageModel", ns), expect=200).json()
        stored = sorted(i["metadata"]["name"] for i in r["items"])
        self.assertEqual(stored, sorted(want), f"{where}: models")
        status = self.get("LanguageCluster", ns).get("status", {})
        self.assertEqual((status.get("models", []), status.get("modelCount"), status.get("personaCount")),
                         (stored, len(stored), len(personas)), f"{where}: the cluster's derived status")

    def reader(self, kind, path, stop, reads, lock):
        """One kind of read, again and again as long as the writers run: each
        is recorded with when it was sent and when it was answered."""
        conn = self.server.connection(timeout=20)
        while not stop.is_set():
            sent = time.monotonic()
            try:
                status = self.server.request("GET", path, conn=conn).status
            except Exception as e:  # noqa: BLE001 - recorded as a failed read
                status = repr(e)
                conn.close()
                conn = self.server.connection(timeout=20)
            with lock:
                reads.append((kind, sent, time.monotonic(), status))
            time.sleep(0.02)
        conn.close()

    def watch_probe(self, ns, since):
        """A new watch from before the faults: its first events (the log
        replayed) arrive. Recorded as a read."""
        sent = time.monotonic()
        w = WatchStream(self.server, collection_path("LanguagePersona", ns)
                        + f"?watch=true&resourceVersion={since}", timeout=20)
        try:
            status = w.status
            if status == 200:
                first = w.take(3)
                if not all(e["type"] in ("ADDED", "MODIFIED", "DELETED") for e in first):
                    status = f"replay starts with {[summary(e) for e in first]}"
        except Exception as e:  # noqa: BLE001 - recorded as a failed read
            status = repr(e)
        finally:
            w.close()
        return ("watch", sent, time.monotonic(), status)

    def checker(self, stop, results):
        """PRAGMA integrity_check on a read-only connection, every 0.4 s."""
        while not stop.wait(0.4):
            try:
                results.append((time.monotonic(), self.integrity()))
            except sqlite3.Error as e:
                results.append((time.monotonic(), repr(e)))

    # ------------------------------------------------------------- checks

    def check_state(self, ns, outcomes, where):
        """The store holds every acknowledged write and nothing of a refused
        one. A write left without an answer (the server was killed) may be
        either way."""
        objects, _ = self.list_all(ns)
        created = {o.name: o for o in outcomes if o.op == "create"}
        deleted = {o.name: o for o in outcomes if o.op == "delete"}
        for name, c in created.items():
            d = deleted.get(name)
            if c.status is None or (d is not None and d.status is None):
                continue
            want = c.ok and not (d is not None and d.ok)
            with self.subTest(where=where, name=name):
                if want:
                    self.assertTrue(name in objects, f"{where}: acknowledged create {c} lost (delete: {d})")
                    self.assertEqual(objects[name]["metadata"]["uid"], c.uid)
                    self.assertEqual(objects[name]["metadata"]["resourceVersion"], c.rv)
                else:
                    self.assertFalse(name in objects, f"{where}: {c} then {d}, but it is there")
        for t in range(WRITERS):
            name = f"tgt-{t}"
            patches = [o for o in outcomes if o.op == "patch" and o.name == name]
            acked = [o for o in patches if o.ok]
            last = acked[-1] if acked else None
            allowed = {str(last.value) if last else None} | {
                str(o.value) for o in patches if o.status is None and (last is None or o.sent > last.sent)}
            with self.subTest(where=where, target=name):
                md = objects[name]["metadata"]
                seq = md.get("annotations", {}).get("seq")
                self.assertIn(seq, allowed, f"{where}: {name} holds seq {seq}, last acknowledged {last}")
                if last and seq == str(last.value):
                    self.assertEqual(md["resourceVersion"], last.rv)
        return objects

    def check_events(self, events, outcomes, where):
        """A watch sees exactly the acknowledged writes, in rv order, none of
        the refused ones: creates and patches by the rv of their answer,
        deletes (answered with a Status) by name. An unanswered write may
        have its event or not."""
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        self.assertEqual(rvs, sorted(rvs), f"{where}: events out of order")
        self.assertEqual(len(set(rvs)), len(rvs), f"{where}: an rv twice")
        unknown = {(o.op, o.name, None if o.op == "create" else str(o.value))
                   for o in outcomes if o.status is None}

        def unanswered(e):
            md = e["object"]["metadata"]
            if e["type"] == "ADDED":
                return ("create", md["name"], None) in unknown
            return ("patch", md["name"], md.get("annotations", {}).get("seq")) in unknown

        acked = {int(o.rv): o for o in outcomes if o.ok and o.op != "delete"}
        seen = {int(e["object"]["metadata"]["resourceVersion"]): e for e in events if e["type"] != "DELETED"}
        unexpected = {rv: (e["type"], e["object"]["metadata"]["name"],
                           e["object"]["metadata"].get("annotations", {}).get("seq"))
                      for rv, e in seen.items() if rv not in acked and not unanswered(e)}
        self.assertEqual(unexpected, {}, f"{where}: events of no acknowledged write")
        missing = sorted(set(acked) - set(seen))
        self.assertEqual(missing, [], f"{where}: acknowledged writes without event: "
                                      f"{[acked[rv] for rv in missing[:5]]}")
        for rv, o in acked.items():
            e = seen[rv]
            want_type = {"create": "ADDED", "patch": "MODIFIED"}[o.op]
            self.assertEqual((e["type"], e["object"]["metadata"]["name"]), (want_type, o.name), where)
        deleted = {e["object"]["metadata"]["name"] for e in events if e["type"] == "DELETED"}
        acked_deletes = {o.name for o in outcomes if o.ok and o.op == "delete"}
        unknown_deletes = {name for op, name, _ in unknown if op == "delete"}
        self.assertEqual(deleted - unknown_deletes, acked_deletes,
                         f"{where}: DELETED events and acknowledged deletes differ")

    # --------------------------------------------------------------- test

    def test_faults_during_concurrent_writes(self):
        ns = self.new_namespace("store-faults")
        for t in range(WRITERS):
            self.create(persona(f"tgt-{t}", ns))
        _, since = self.list_all(ns)
        watch = WatchStream(self.server, collection_path("LanguagePersona", ns)
                            + f"?watch=true&resourceVersion={since}&timeoutSeconds=300", timeout=20)
        self.addCleanup(watch.close)
        self.assertEqual(watch.status, 200)
        live = []
        watch_done = threading.Event()

        def consume():
            try:
                while (ev := watch.next()) is not None:
                    live.append(ev)
                    if ev["object"]["metadata"]["name"] == "fence":
                        break
            except Exception as e:  # noqa: BLE001 - reported below
                live.append({"error": repr(e)})
            watch_done.set()

        outcomes, reads, integrity = [], [], []
        lock = threading.Lock()
        stop, stop_checker = threading.Event(), threading.Event()
        models = []
        workers = [threading.Thread(target=self.writer, args=(t, ns, stop, outcomes, lock), daemon=True)
                   for t in range(WRITERS)]
        workers.append(threading.Thread(target=self.model_writer, args=(ns, stop, models, lock), daemon=True))
        read_paths = {"get": item_path("LanguagePersona", "tgt-0", ns),
                      "list": collection_path("LanguagePersona", ns) + "?limit=20"}
        workers += [threading.Thread(target=self.reader, args=(kind, path, stop, reads, lock), daemon=True)
                    for kind, path in read_paths.items()]
        aux = [threading.Thread(target=consume, daemon=True),
               threading.Thread(target=self.checker, args=(stop_checker, integrity), daemon=True)]
        for th in workers + aux:
            th.start()

        windows = []  # (name, start, end) of each fault
        time.sleep(HEALTHY)
        for name, line, seconds in PHASES:
            start = time.monotonic()
            self.set_faults(line)
            time.sleep(0.3)
            reads.append(self.watch_probe(ns, since))
            time.sleep(max(0.0, start + seconds - time.monotonic()))
            self.set_faults("mode=off")
            windows.append((name, start, time.monotonic()))
            time.sleep(HEALTHY)
        stop.set()
        for th in workers:
            th.join(30)
        self.assertFalse(any(th.is_alive() for th in workers), "a client hangs")
        fence = self.create(persona("fence", ns))
        self.assertTrue(watch_done.wait(20), "the watch did not deliver the fence")
        stop_checker.set()
        aux[1].join(10)

        injected = self.faults_injected()
        self.report(outcomes, reads, windows, injected, integrity)
        print(f"    model writes {len(models)}: acknowledged {sum(1 for o in models if o.ok)}; models left "
              f"{len(self.api('GET', collection_path('LanguageModel', ns), expect=200).json()['items'])}", flush=True)

        # the server stayed up and answered every request
        self.assertIsNone(self.server.proc.poll(), "the server exited")
        unanswered = [o for o in outcomes if o.status is None]
        self.assertEqual(unanswered, [], f"writes without an answer: {[o.body for o in unanswered[:3]]}")

        # refusals are 500 InternalError Status objects, and only while a fault was on
        def in_fault(o):
            return any(s <= o.answered and o.sent <= e + GRACE for _, s, e in windows)
        for o in outcomes:
            if o.ok:
                continue
            with self.subTest(failed=repr(o)):
                self.assertEqual(o.status, 500, o.body)
                self.assertEqual((o.body.get("kind"), o.body.get("reason"), o.body.get("code")),
                                 ("Status", "InternalError", 500), o.body)
                self.assertTrue(in_fault(o), f"{o} failed with no fault on")

        # each fault that hits commits made writes fail; a fault of the database file alone
        # (the checkpoint's) does not reach the writer at all
        for name, s, e in windows:
            failed = [o for o in outcomes if not o.ok and s <= o.answered and o.sent <= e + GRACE]
            if name == "eio-db-file":
                self.assertEqual(failed, [], f"{name}: writes failed though only checkpoints could")
            else:
                self.assertGreater(len(failed), 0, f"{name}: no write failed: the fault missed the store")
        self.assertTrue(any(" db " in line for line in injected), "no checkpoint met a fault")

        # it writes again by itself: every write sent after a fault's grace succeeded, and soon
        for k, (name, s, e) in enumerate(windows):
            next_fault = windows[k + 1][1] if k + 1 < len(windows) else float("inf")
            after = [o for o in outcomes if o.sent >= e + GRACE and o.answered < next_fault]
            self.assertTrue(after, f"no write sent after {name}")
            self.assertEqual([o for o in after if not o.ok], [], f"writes failed after {name} ended")
            first_ok = min(o.answered for o in outcomes if o.ok and o.sent >= e)
            self.assertLess(first_ok - e, RECOVERY_BOUND, f"no write succeeded within the bound after {name}")

        # reads, lists and watches were answered throughout, faults or not
        bad_reads = [r for r in reads if r[3] != 200]
        self.assertEqual(bad_reads, [], "reads that failed")
        for name, s, e in windows:
            kinds = {r[0] for r in reads if s <= r[1] and r[2] <= e}  # sent and answered in it
            self.assertEqual(kinds, {"get", "list", "watch"}, f"{name}: reads answered during the fault")

        # the database was sound at every check
        self.assertGreater(len(integrity), 5)
        self.assertEqual([r for _, r in integrity if r != [("ok",)]], [], "PRAGMA integrity_check")

        # the store and the watch agree with what the clients were told
        self.assertNotIn("error", live[-1])
        self.assertEqual(live[-1]["object"]["metadata"]["name"], "fence")
        self.assertEqual([o for o in models if o.status is None], [], "model writes without an answer")
        self.assertEqual([o for o in models if not o.ok and (o.status != 500 or not in_fault(o))], [],
                         "model writes refused otherwise than with a 500 under a fault")
        personas = self.check_state(ns, outcomes, "live")
        self.check_derived(ns, models, personas, "live")
        self.check_log(since, "live")
        self.check_events(live[:-1], outcomes, "live watch")

        # a crash after the faults: every acknowledged write is still there, nothing of a refused one
        self.server.kill9()
        self.server.start()
        self.assertEqual(self.integrity(), [("ok",)])
        personas = self.check_state(ns, outcomes, "after kill -9")
        self.check_derived(ns, models, personas, "after kill -9")
        self.check_log(since, "after kill -9")
        replay = WatchStream(self.server, collection_path("LanguagePersona", ns)
                             + f"?watch=true&resourceVersion={since}&timeoutSeconds=1", timeout=20)
        self.addCleanup(replay.close)
        replayed = replay.rest()
        self.assertEqual(replayed[-1]["object"]["metadata"]["resourceVersion"], fence["metadata"]["resourceVersion"])
        self.check_events(replayed[:-1], outcomes, "replay after kill -9")
        after = self.create(persona("after-crash", ns))
        self.assertGreater(int(after["metadata"]["resourceVersion"]), int(fence["metadata"]["resourceVersion"]))

    def test_kill9_while_syncs_fail(self):
        """A commit whose sync failed was answered 500: its bytes may be in
        the log all the same, and a crash before the next commit must not
        bring it back."""
        ns = self.new_namespace("store-faults-crash")
        for t in range(WRITERS):
            self.create(persona(f"tgt-{t}", ns))
        _, since = self.list_all(ns)
        outcomes, lock, stop = [], threading.Lock(), threading.Event()
        workers = [threading.Thread(target=self.writer, args=(t, ns, stop, outcomes, lock), daemon=True)
                   for t in range(WRITERS)]
        for th in workers:
            th.start()
        time.sleep(0.5)
        self.set_faults("mode=eio ops=sync files=wal")
        time.sleep(0.8)
        stop.set()
        for th in workers:             # every write answered: the last batch is one that failed
            th.join(30)
        self.server.kill9()            # the fault still on
        self.set_faults("mode=off")
        refused = [o for o in outcomes if o.status is not None and not o.ok]
        acked = [o for o in outcomes if o.ok]
        print(f"\n    before the crash: acknowledged {len(acked)}, refused {len(refused)},"
              f" unanswered {len(outcomes) - len(acked) - len(refused)}", flush=True)
        self.assertGreater(len(refused), 10, "the sync fault refused too few writes to prove anything")
        self.assertEqual([o for o in refused if o.status != 500], [])

        self.server.start()
        self.assertEqual(self.integrity(), [("ok",)])
        self.check_state(ns, outcomes, "after kill -9 under the fault")
        self.check_log(since, "after kill -9 under the fault")
        replay = WatchStream(self.server, collection_path("LanguagePersona", ns)
                             + f"?watch=true&resourceVersion={since}&timeoutSeconds=1", timeout=20)
        self.addCleanup(replay.close)
        self.check_events(replay.rest(), outcomes, "replay after kill -9 under the fault")

    def report(self, outcomes, reads, windows, injected, integrity):
        """The figures of the run, in the test's output."""
        print()
        for name, s, e in windows:
            during = [o for o in outcomes if s <= o.answered and o.sent <= e + GRACE]
            print(f"    {name:14s} {e - s:.1f}s: writes answered {len(during)}, failed "
                  f"{sum(1 for o in during if not o.ok)}; reads {sum(1 for r in reads if s <= r[1] <= e)}")
        ok = sum(1 for o in outcomes if o.ok)
        print(f"    writes {len(outcomes)}: acknowledged {ok}, refused {len(outcomes) - ok}; reads {len(reads)};"
              f" faults injected {len(injected)} ("
              + ", ".join(f"{k} {sum(1 for l in injected if l.split()[1] == k)}" for k in ("db", "wal", "shm"))
              + f"); integrity checks {len(integrity)}", flush=True)
