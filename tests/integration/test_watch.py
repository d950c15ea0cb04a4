"""Watch, as clients see it: raw HTTP streams (state then live, resume from a
resourceVersion, selector transitions, bookmarks and timeouts, Table watches,
HTTP/1.1 chunked and HTTP/2), 410 Expired after compaction (watch, exact
list, continue token), python3-kubernetes' watch.Watch() streaming and
resuming, and no event lost or duplicated across 10 000 concurrent writes
with watchers that keep reconnecting."""

import json
import queue
import random
import subprocess
import threading
import time

from harness import (API_VERSION, RV_RE, FlagServerTestCase, ServerTestCase, collection_path,
                     item_path, model)

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


class WatchStream:
    """One watch request over HTTPS/1.1, read line by line as it arrives.
    timeout bounds each read: a missing event fails instead of hanging."""

    def __init__(self, server, path, accept="application/json", timeout=15):
        self.conn = server.connection(timeout)
        self.conn.request("GET", path, headers={"Accept": accept,
                                                "Authorization": f"Bearer {server.token}"})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.raw_lines = []

    def next(self):
        """The next event (a dict), or None when the server ended the stream."""
        line = self.resp.readline()
        if not line:
            return None
        self.raw_lines.append(line)
        try:
            ev = json.loads(line)
            if isinstance(ev, dict) and isinstance(ev.get("type"), str) \
                    and isinstance(ev.get("object"), dict):
                return ev
            problem = "not an event"
        except ValueError as e:
            problem = f"not JSON: {e}"
        before = self.raw_lines[-2][-200:] if len(self.raw_lines) > 1 else b""
        raise AssertionError(f"line #{len(self.raw_lines)} of the watch is {problem}: {line[:300]!r}"
                             f" after ...{before!r}; headers {self.headers}")

    def take(self, n):
        out = []
        for _ in range(n):
            ev = self.next()
            if ev is None:
                raise AssertionError(f"the stream ended after {out}")
            out.append(ev)
        return out

    def rest(self):
        """Every event until the server ends the stream (cleanly: a broken
        chunked body raises http.client.IncompleteRead)."""
        out = []
        while (ev := self.next()) is not None:
            out.append(ev)
        return out

    def close(self):
        self.conn.close()


def summary(ev):
    """(type, name, resourceVersion) of an event."""
    md = ev["object"].get("metadata", {})
    return ev["type"], md.get("name"), md.get("resourceVersion")


def rv_of(o):
    return o["metadata"]["resourceVersion"]


class WatchHttpTest(ServerTestCase):

    def watch(self, ns, query="", **kw):
        path = collection_path("LanguageModel", ns) + "?watch=true" + (f"&{query}" if query else "")
        w = WatchStream(self.server, path, **kw)
        self.addCleanup(w.close)
        return w

    def put_model(self, o, model_name):
        o = json.loads(json.dumps(o))
        o["spec"]["modelName"] = model_name
        return self.api("PUT", item_path("LanguageModel", o["metadata"]["name"], o["metadata"]["namespace"]),
                        o, expect=200).json()

    def test_no_resource_version_sends_state_then_live(self):
        ns = self.new_namespace()
        a = self.create(model("a", ns))
        b = self.create(model("b", ns))
        w = self.watch(ns)
        self.assertEqual(w.status, 200)
        self.assertEqual(w.headers.get("content-type"), "application/json", w.headers)
        self.assertEqual(w.headers.get("transfer-encoding"), "chunked", w.headers)
        first = w.take(2)
        self.assertEqual(sorted(summary(e) for e in first),
                         [("ADDED", "a", rv_of(a)), ("ADDED", "b", rv_of(b))])

        # live: each event arrives while the stream stays open (flushed per event)
        c = self.create(model("c", ns))
        self.assertEqual(summary(w.next()), ("ADDED", "c", rv_of(c)))
        a2 = self.put_model(a, "gpt-4o-mini")
        ev = w.next()
        self.assertEqual(summary(ev), ("MODIFIED", "a", rv_of(a2)))
        self.assertEqual(ev["object"]["spec"]["modelName"], "gpt-4o-mini")
        self.assertEqual(ev["object"]["apiVersion"], API_VERSION)
        self.assertEqual(ev["object"]["kind"], "LanguageModel")
        self.api("DELETE", item_path("LanguageModel", "b", ns), expect=200)
        ev = w.next()
        self.assertEqual(summary(ev)[:2], ("DELETED", "b"))
        # the DELETED object carries the deletion's own, newer revision
        self.assertRegex(rv_of(ev["object"]), RV_RE)
        self.assertGreater(int(rv_of(ev["object"])), int(rv_of(a2)))
        # the list covers the deletion (the cluster's derived model count followed it in the same commit)
        after = self.api("GET", collection_path("LanguageModel", ns), expect=200).json()
        self.assertGreaterEqual(int(after["metadata"]["resourceVersion"]), int(rv_of(ev["object"])))

    def test_resource_version_zero_is_like_unset(self):
        ns = self.new_namespace()
        a = self.create(model("zero", ns))
        w = self.watch(ns, "resourceVersion=0&timeoutSeconds=1")
        self.assertEqual([summary(e) for e in w.rest()], [("ADDED", "zero", rv_of(a))])

    def test_from_resource_version_only_later_events(self):
        ns = self.new_namespace()
        a = self.create(model("early", ns))
        mark = self.api("GET", collection_path("LanguageModel", ns), expect=200).json()
        mark_rv = mark["metadata"]["resourceVersion"]
        b = self.create(model("late", ns))
        a2 = self.put_model(a, "gpt-4.1")

        w = self.watch(ns, f"resourceVersion={mark_rv}")
        self.assertEqual([summary(e) for e in w.take(2)],
                         [("ADDED", "late", rv_of(b)), ("MODIFIED", "early", rv_of(a2))])
        # then live, with nothing replayed twice
        self.api("DELETE", item_path("LanguageModel", "late", ns), expect=200)
        c = self.create(model("live", ns))
        evs = w.take(2)
        self.assertEqual(summary(evs[0])[:2], ("DELETED", "late"))
        self.assertEqual(summary(evs[1]), ("ADDED", "live", rv_of(c)))

        # from the rv of the MODIFIED: exactly the two events after it
        w2 = self.watch(ns, f"resourceVersion={rv_of(a2)}&timeoutSeconds=1")
        self.assertEqual([summary(e)[:2] for e in w2.rest()], [("DELETED", "late"), ("ADDED", "live")])

    def test_label_selector_leaving_is_deleted_entering_is_added(self):
        ns = self.new_namespace()
        g = self.create(model("g", ns, labels={"tier": "gold"}))
        s = self.create(model("s", ns, labels={"tier": "silver"}))
        w = self.watch(ns, "labelSelector=tier%3Dgold")
        self.assertEqual(summary(w.next()), ("ADDED", "g", rv_of(g)))

        # s moves into the selector: ADDED
        s["metadata"]["labels"] = {"tier": "gold"}
        s2 = self.api("PUT", item_path("LanguageModel", "s", ns), s, expect=200).json()
        self.assertEqual(summary(w.next()), ("ADDED", "s", rv_of(s2)))
        # g moves out of it: DELETED, carrying the new revision
        g["metadata"]["labels"] = {"tier": "bronze"}
        g2 = self.api("PUT", item_path("LanguageModel", "g", ns), g, expect=200).json()
        self.assertEqual(summary(w.next()), ("DELETED", "g", rv_of(g2)))
        # changes outside the selector are not sent; one inside is MODIFIED
        self.put_model(g2, "outside")
        s3 = self.put_model(s2, "inside")
        self.assertEqual(summary(w.next()), ("MODIFIED", "s", rv_of(s3)))

        # the same transitions replayed from history
        w2 = self.watch(ns, f"labelSelector=tier%3Dgold&resourceVersion={rv_of(g)}&timeoutSeconds=1")
        self.assertEqual([summary(e) for e in w2.rest()],
                         [("ADDED", "s", rv_of(s2)), ("DELETED", "g", rv_of(g2)),
                          ("MODIFIED", "s", rv_of(s3))])

    def test_field_selector_metadata_name(self):
        ns = self.new_namespace()
        self.create(model("one", ns))
        two = self.create(model("two", ns))
        w = self.watch(ns, "fieldSelector=metadata.name%3Dtwo&timeoutSeconds=2")
        self.assertEqual(summary(w.next()), ("ADDED", "two", rv_of(two)))
        self.api("DELETE", item_path("LanguageModel", "one", ns), expect=200)
        self.api("DELETE", item_path("LanguageModel", "two", ns), expect=200)
        self.assertEqual([summary(e)[:2] for e in w.rest()], [("DELETED", "two")])

    def test_cluster_wide_watch(self):
        ns1, ns2 = self.new_namespace("wide-a"), self.new_namespace("wide-b")
        mark = self.api("GET", collection_path("LanguageModel"), expect=200).json()["metadata"]
        a = self.create(model("w1", ns1))
        b = self.create(model("w2", ns2))
        w = WatchStream(self.server, collection_path("LanguageModel")
                        + f"?watch=true&resourceVersion={mark['resourceVersion']}")
        self.addCleanup(w.close)
        evs = w.take(2)
        self.assertEqual([(summary(e), e["object"]["metadata"]["namespace"]) for e in evs],
                         [(("ADDED", "w1", rv_of(a)), ns1), (("ADDED", "w2", rv_of(b)), ns2)])

    def test_bookmark_before_timeout_ends_stream(self):
        ns = self.new_namespace()
        a = self.create(model("bm", ns))
        t0 = time.monotonic()
        w = self.watch(ns, f"resourceVersion={rv_of(a)}&allowWatchBookmarks=true&timeoutSeconds=2")
        # kube sends the 200 and its headers at once, not with the first event
        self.assertLess(time.monotonic() - t0, 1.0, "the watch's headers waited for an event")
        c = self.create(model("bm2", ns))
        evs = w.rest()      # ends cleanly: a chunked body cut short raises IncompleteRead
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 1.5, evs)
        self.assertLess(took, 6, evs)
        self.assertEqual(summary(evs[0]), ("ADDED", "bm2", rv_of(c)), evs)
        self.assertEqual(evs[-1]["type"], "BOOKMARK", evs)
        self.assertEqual([e["type"] for e in evs[1:-1]], ["BOOKMARK"] * (len(evs) - 2), evs)
        bm = evs[-1]["object"]
        self.assertEqual(bm["kind"], "LanguageModel", bm)
        self.assertEqual(bm["apiVersion"], API_VERSION, bm)
        self.assertRegex(bm["metadata"]["resourceVersion"], RV_RE)
        self.assertGreaterEqual(int(bm["metadata"]["resourceVersion"]), int(rv_of(c)), bm)
        self.assertNotIn("spec", bm)

        # without allowWatchBookmarks: no BOOKMARK, and the stream still ends on time
        w = self.watch(ns, f"resourceVersion={rv_of(c)}&timeoutSeconds=1")
        self.assertEqual(w.rest(), [])

    def test_table_watch_columns_only_in_first_event(self):
        ns = self.new_namespace()
        self.create(model("t1", ns))
        w = self.watch(ns, accept=TABLE_ACCEPT)
        self.assertEqual(w.status, 200)
        first = w.next()
        self.assertEqual(first["type"], "ADDED")
        tbl = first["object"]
        self.assertEqual((tbl["kind"], tbl["apiVersion"]), ("Table", "meta.k8s.io/v1"), tbl)
        cols = [c["name"] for c in tbl.get("columnDefinitions") or []]
        self.assertEqual(cols[0], "Name", tbl)
        self.assertIn("Age", cols, tbl)
        self.assertEqual(len(tbl["rows"]), 1, tbl)
        self.assertEqual(tbl["rows"][0]["cells"][0], "t1", tbl)
        self.assertEqual(len(tbl["rows"][0]["cells"]), len(cols), tbl)

        t2 = self.create(model("t2", ns))
        ev = w.next()
        self.assertEqual(ev["type"], "ADDED")
        self.assertEqual(ev["object"]["kind"], "Table")
        self.assertFalse(ev["object"].get("columnDefinitions"), ev)
        self.assertEqual(ev["object"]["rows"][0]["cells"][0], "t2", ev)
        row_md = ev["object"]["rows"][0]["object"]["metadata"]
        self.assertEqual((row_md["name"], row_md["resourceVersion"]), ("t2", rv_of(t2)), ev)

    def test_http2_stream(self):
        ns = self.new_namespace()
        url = self.server.url + collection_path("LanguageModel", ns) + "?watch=true&timeoutSeconds=4"
        p = subprocess.Popen(["curl", "-sS", "-N", "--http2", "--cacert", str(self.server.ca),
                              "-H", f"Authorization: Bearer {self.server.token}",
                              "-w", "%{http_version} %{http_code}\n", url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in p.stdout] + [lines.put(None)],
                         daemon=True).start()
        time.sleep(0.5)   # curl connects; the watch has no rv, so nothing is lost either way
        h1 = self.create(model("h2-one", ns))
        self.assertEqual(summary(json.loads(lines.get(timeout=10))), ("ADDED", "h2-one", rv_of(h1)))
        h2 = self.create(model("h2-two", ns))
        # the second event arrives while curl still streams: flushed, not buffered to the end
        self.assertEqual(summary(json.loads(lines.get(timeout=5))), ("ADDED", "h2-two", rv_of(h2)))
        self.assertIsNone(p.poll(), "curl ended before the watch timeout")
        self.assertEqual(lines.get(timeout=15).strip(), "2 200")
        p.wait(10)
        self.assertEqual(p.returncode, 0, p.stderr.read())


class CompactionTest(FlagServerTestCase):
    """A server that compacts every second and keeps only 20 revisions."""

    server_flags = ("--compaction-interval=1s", "--history-min-revisions=20", "--history-min-age=0s")

    def test_expired_after_compaction(self):
        ns = self.new_namespace()
        path = collection_path("LanguageModel", ns)
        self.create(model("c0", ns))
        self.create(model("c1", ns))
        page = self.api("GET", path + "?limit=1", expect=200).json()
        early = page["metadata"]["resourceVersion"]
        token = page["metadata"]["continue"]
        self.assertTrue(token, page)
        self.api("GET", f"{path}?resourceVersion={early}&resourceVersionMatch=Exact", expect=200)

        cur = self.get("LanguageModel", "c0", ns)
        for i in range(60):
            cur["spec"]["modelName"] = f"gpt-{i}"
            cur = self.api("PUT", item_path("LanguageModel", "c0", ns), cur, expect=200).json()

        # wait for the compactor to pass the early revision
        deadline = time.monotonic() + 15
        while True:
            r = self.api("GET", f"{path}?resourceVersion={early}&resourceVersionMatch=Exact")
            if r.status != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertStatus(r, 410, "Expired")

        # a watch from before the horizon: 200, one ERROR event (410 Expired), then the end
        w = WatchStream(self.server, path + f"?watch=true&resourceVersion={early}")
        self.addCleanup(w.close)
        self.assertEqual(w.status, 200)
        evs = w.rest()
        self.assertEqual(len(evs), 1, evs)
        self.assertEqual(evs[0]["type"], "ERROR", evs)
        st = evs[0]["object"]
        self.assertEqual((st["kind"], st["apiVersion"], st["status"], st["code"], st["reason"]),
                         ("Status", "v1", "Failure", 410, "Expired"), st)
        self.assertIn(f"too old resource version: {early}", st["message"])

        # the continue token of a list from before the horizon
        r = self.api("GET", f"{path}?limit=1&continue={token}")
        self.assertStatus(r, 410, "Expired")

        # python3-kubernetes with a timeout does not retry: it raises the 410
        from kubernetes import watch
        from kubernetes.client.rest import ApiException
        with self.assertRaises(ApiException) as cm:
            list(watch.Watch().stream(self.resource("LanguageModel").get, namespace=ns,
                                      resource_version=early, timeout_seconds=2, serialize=False))
        self.assertEqual(cm.exception.status, 410)

        # recent history is still there: the last 5 writes replay from 5 revisions back
        last = int(rv_of(cur))
        w = WatchStream(self.server, path + f"?watch=true&resourceVersion={last - 5}&timeoutSeconds=1")
        self.addCleanup(w.close)
        got = [summary(e) for e in w.rest()]
        self.assertEqual([(t, n) for t, n, _ in got], [("MODIFIED", "c0")] * 5, got)
        self.assertEqual(got[-1][2], str(last))
        self.api("GET", f"{path}?resourceVersion={last - 5}&resourceVersionMatch=Exact", expect=200)


class PythonWatchTest(ServerTestCase):
    """kubernetes.watch.Watch().stream() over the DynamicClient, as
    controllers written in Python use it."""

    def stream(self, ns, **kw):
        from kubernetes import watch
        w = watch.Watch()
        return w, w.stream(self.resource("LanguageModel").get, namespace=ns, serialize=False, **kw)

    def test_stream_live_then_resume(self):
        lm = self.resource("LanguageModel")
        ns = self.new_namespace()
        mark = lm.get(namespace=ns).metadata.resourceVersion

        got = queue.Queue()
        w, events = self.stream(ns, resource_version=mark, timeout_seconds=10)

        def consume():
            try:
                for ev in events:
                    got.put(ev)
                    if ev["type"] == "DELETED":
                        w.stop()
            except Exception as e:      # surfaces in the main thread
                got.put(e)
        t = threading.Thread(target=consume, daemon=True)
        t.start()

        a = lm.create(body=model("py-a", ns), namespace=ns).to_dict()
        a2 = lm.patch(body={"spec": {"modelName": "gpt-4o-mini"}}, name="py-a", namespace=ns,
                      content_type="application/merge-patch+json").to_dict()
        b = lm.create(body=model("py-b", ns), namespace=ns).to_dict()
        lm.delete(name="py-a", namespace=ns)
        want = [("ADDED", "py-a", rv_of(a)), ("MODIFIED", "py-a", rv_of(a2)),
                ("ADDED", "py-b", rv_of(b))]
        seen = []
        for _ in range(4):
            ev = got.get(timeout=10)
            if isinstance(ev, Exception):
                raise ev
            seen.append(ev)
        self.assertEqual([summary(e) for e in seen[:3]], want)
        self.assertEqual(summary(seen[3])[:2], ("DELETED", "py-a"))
        self.assertEqual(seen[1]["raw_object"]["spec"]["modelName"], "gpt-4o-mini")
        t.join(15)
        self.assertFalse(t.is_alive(), "Watch.stop() did not end the stream")
        deleted_rv = rv_of(seen[3]["object"])

        # resuming from the MODIFIED's rv gives exactly the two later events
        _, events = self.stream(ns, resource_version=rv_of(a2), timeout_seconds=1)
        self.assertEqual([summary(e) for e in events],
                         [("ADDED", "py-b", rv_of(b)), ("DELETED", "py-a", deleted_rv)])
        # and from the last one, nothing
        _, events = self.stream(ns, resource_version=deleted_rv, timeout_seconds=1)
        self.assertEqual([e["type"] for e in events if e["type"] != "BOOKMARK"], [])


# ------------------------------------------------------------ the stress test

STRESS_WRITES = 10_000
STRESS_WRITERS = 8
STRESS_NAMES_PER_WRITER = 40        # 320 objects
STRESS_WATCHERS = 4


class Writer(threading.Thread):
    """Creates, updates and deletes its own objects over one keep-alive
    connection. Owning its names, it knows each object's exact history:
    ops[name] = [(type, rv)] in order, rv None for a delete (whose response
    is a Status without one)."""

    def __init__(self, server, ns, index, count, progress):
        super().__init__(daemon=True)
        self.server, self.ns, self.count, self.progress = server, ns, count, progress
        self.names = [f"w{index}-{k}" for k in range(STRESS_NAMES_PER_WRITER)]
        self.rng = random.Random(index)
        self.ops = {n: [] for n in self.names}
        self.error = None

    def run(self):
        conn = self.server.connection(60)
        live = {}                              # name -> last rv
        try:
            for i in range(self.count):
                name = self.rng.choice(self.names)
                if name not in live:
                    self.create(conn, name, live, i)
                elif self.rng.random() < 0.75:
                    self.update(conn, name, live, i)
                else:
                    self.delete(conn, name, live)
                self.progress.tick(live.get(name))
        except Exception as e:                  # reported by the test
            self.error = e
        finally:
            conn.close()

    def send(self, conn, method, path, body, want):
        r = self.server.request(method, path, body, conn=conn)
        if r.status != want:
            raise AssertionError(f"{method} {path}: want {want}, got {r}")
        return r.json()

    def body(self, name, i, rv=None):
        o = model(name, self.ns)
        o["spec"]["modelName"] = f"m-{name}-{i}"       # every write is a real change
        if rv:
            o["metadata"]["resourceVersion"] = rv
        return o

    def create(self, conn, name, live, i):
        o = self.send(conn, "POST", collection_path("LanguageModel", self.ns), self.body(name, i), 201)
        live[name] = rv_of(o)
        self.ops[name].append(("ADDED", live[name]))

    def update(self, conn, name, live, i):
        # the writer knows the current rv: a 409 here would be a server bug
        o = self.send(conn, "PUT", item_path("LanguageModel", name, self.ns),
                      self.body(name, i, live[name]), 200)
        live[name] = rv_of(o)
        self.ops[name].append(("MODIFIED", live[name]))

    def delete(self, conn, name, live):
        st = self.send(conn, "DELETE", item_path("LanguageModel", name, self.ns), None, 200)
        if st.get("kind") == "Status":
            if st.get("status") != "Success":
                raise AssertionError(f"DELETE {name}: {st}")
        del live[name]
        self.ops[name].append(("DELETED", None))


class Progress:
    """Acknowledged writes so far, and the highest rv acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done = 0
        self.max_rv = 0

    def tick(self, rv):
        with self.lock:
            self.done += 1
            if rv is not None:
                self.max_rv = max(self.max_rv, int(rv))

    def snapshot(self):
        with self.lock:
            return self.done, self.max_rv


class Watcher(threading.Thread):
    """Starts from the rv acknowledged when `start_at` writes are done, and
    watches in short requests (timeoutSeconds 1-3, or until it hangs up
    after 50-1500 events), resuming each time from the last rv it saw (an
    event's or a bookmark's) until it has reached `final_rv`, set once the
    writers are done."""

    def __init__(self, server, path, index, start_at, progress, bookmarks):
        super().__init__(daemon=True)
        self.server, self.path, self.progress = server, path, progress
        self.start_at, self.bookmarks = start_at, bookmarks
        self.rng = random.Random(100 + index)
        self.final_rv = None                     # set by the test when writing is over
        self.start_rv = None
        self.events = []                         # (type, name, rv, modelName)
        self.streams = 0
        self.error = None

    def run(self):
        try:
            while self.progress.snapshot()[0] < self.start_at:
                time.sleep(0.01)
            self.start_rv = rv = self.progress.snapshot()[1]
            while self.final_rv is None or rv < self.final_rv:
                rv = self.one_stream(rv)
        except Exception as e:
            self.error = e

    def one_stream(self, rv):
        q = f"?watch=true&resourceVersion={rv}&timeoutSeconds={self.rng.randint(1, 3)}"
        if self.bookmarks:
            q += "&allowWatchBookmarks=true"
        w = WatchStream(self.server, self.path + q, timeout=30)
        self.streams += 1
        budget = self.rng.randint(50, 1500)
        try:
            if w.status != 200:
                raise AssertionError(f"watch from {rv}: HTTP {w.status}")
            while (ev := w.next()) is not None:
                o = ev["object"]
                new_rv = int(o["metadata"]["resourceVersion"])
                if ev["type"] == "ERROR":
                    raise AssertionError(f"watch from {rv}: {ev}")
                if ev["type"] != "BOOKMARK":
                    self.events.append((ev["type"], o["metadata"]["name"], new_rv,
                                        o["spec"]["modelName"]))
                if new_rv < rv or (new_rv == rv and ev["type"] != "BOOKMARK"):
                    raise AssertionError(f"rv went from {rv} to {new_rv} in {ev['type']}")
                rv = new_rv
                budget -= 1
                if budget == 0 or (self.final_rv is not None and rv >= self.final_rv):
                    break      # the client hangs up mid-stream, and resumes from rv
        finally:
            w.close()
        return rv


class WatchStressTest(ServerTestCase):

    def test_no_event_lost_or_duplicated_under_concurrent_writes(self):
        ns = self.new_namespace("stress")
        progress = Progress()
        mark = self.api("GET", collection_path("LanguageModel", ns), expect=200).json()
        progress.max_rv = int(mark["metadata"]["resourceVersion"])
        per = STRESS_WRITES // STRESS_WRITERS
        writers = [Writer(self.server, ns, i, per, progress) for i in range(STRESS_WRITERS)]
        rng = random.Random(7)
        watchers = [Watcher(self.server,
                            collection_path("LanguageModel", ns if i % 2 == 0 else None),
                            i, rng.randint(STRESS_WRITES // 20, STRESS_WRITES * 3 // 4), progress,
                            bookmarks=i < 2)
                    for i in range(STRESS_WATCHERS)]
        t0 = time.monotonic()
        for t in writers + watchers:
            t.start()
        for t in writers:
            t.join(180)
        t_write = time.monotonic() - t0
        for t in writers:
            self.assertFalse(t.is_alive(), "a writer hangs")
            self.assertIsNone(t.error, t.error)
        done, _ = progress.snapshot()
        self.assertEqual(done, per * STRESS_WRITERS)

        # the final revision: one last model write once every writer is done (the store's newest
        # rv may be a derived change of the LanguageCluster, which a model watch never sees)
        final_rv = int(rv_of(self.create(model("zz-final", ns))))
        for w in watchers:
            w.final_rv = final_rv
        for w in watchers:
            w.join(60)
            self.assertFalse(w.is_alive(), f"watcher from {w.start_rv} did not reach rv {final_rv}")
            self.assertIsNone(w.error, w.error)
        t_all = time.monotonic() - t0

        # the store's change log after the earliest start, read in one watch
        first = min(w.start_rv for w in watchers)
        ref = WatchStream(self.server, collection_path("LanguageModel", ns)
                          + f"?watch=true&resourceVersion={first}&timeoutSeconds=20", timeout=30)
        self.addCleanup(ref.close)
        log = []
        while (ev := ref.next()) is not None:
            o = ev["object"]
            log.append((ev["type"], o["metadata"]["name"], int(o["metadata"]["resourceVersion"]),
                        o["spec"]["modelName"]))
            if log[-1][2] >= final_rv:
                break
        self.assertTrue(log and log[-1][2] == final_rv, f"the log ends at {log[-1:]}, not {final_rv}")
        rvs = [e[2] for e in log]
        self.assertEqual(rvs, sorted(set(rvs)), "the log's rvs are not strictly increasing")

        self.check_log_against_acknowledged_writes([e for e in log if e[1] != "zz-final"], first, writers)

        # every watcher saw exactly the log after its start: nothing lost, nothing twice
        for i, w in enumerate(watchers):
            want = [e for e in log if e[2] > w.start_rv]
            with self.subTest(watcher=i, start_rv=w.start_rv, streams=w.streams):
                self.assertGreater(len(want), 0)
                self.assertGreater(w.streams, 1, "the watcher never had to resume")
                if w.events != want:
                    self.fail(first_difference(w.events, want))
        print(f"\n    stress: {done} writes by {STRESS_WRITERS} writers in {t_write:.1f}s "
              f"({done / t_write:.0f}/s), {STRESS_WATCHERS} watchers "
              f"({sum(w.streams for w in watchers)} streams), {t_all:.1f}s in all", flush=True)

    def check_log_against_acknowledged_writes(self, log, first, writers):
        """Per object, the log after `first` is the writer's acknowledged
        history from its first write after `first` on (a delete just before
        may fall on either side: its rv is not known)."""
        by_name = {}
        for typ, name, rv, _ in log:
            by_name.setdefault(name, []).append((typ, rv))
        acked = {}
        for w in writers:
            acked.update(w.ops)
        self.assertEqual(set(by_name) - set(acked), set(), "events for objects nobody wrote")
        for name, ops in acked.items():
            k = next((i for i, (_, rv) in enumerate(ops) if rv is not None and int(rv) > first),
                     len(ops))
            starts = [k] + ([k - 1] if k > 0 and ops[k - 1][0] == "DELETED" else [])
            got = by_name.get(name, [])
            ok = any(len(got) == len(ops) - s and
                     all(g[0] == o[0] and (o[1] is None or g[1] == int(o[1]))
                         for g, o in zip(got, ops[s:]))
                     for s in starts)
            if not ok:
                self.fail(f"{name}: log after {first} {got}\n  acknowledged {ops}")


def first_difference(got, want):
    i = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
    return (f"{len(got)} events, want {len(want)}; first difference at #{i}: "
            f"got {got[i:i + 3]}, want {want[i:i + 3]}")
