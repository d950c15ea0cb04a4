"""Graceful shutdown: SIGTERM with a watch open and writes in flight.

What a user (or the kubelet stopping a pod) checks: the server stops taking
requests, answers the ones it took, ends every watch with a proper end of
stream (the last chunk of HTTP/1.1, END_STREAM of HTTP/2) after the events
of every write it acknowledged, checkpoints its WAL into the database and
exits 0 within 5 s; after a restart every acknowledged write is there.
"""

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

from harness import ServerTestCase, collection_path, persona

STOP_BOUND_S = 5.0


class WatchReader(threading.Thread):
    """An HTTP/1.1 watch read to its end: records the names of ADDED objects
    and whether the stream ended cleanly (the terminating chunk came)."""

    def __init__(self, server, path):
        super().__init__(daemon=True)
        self.conn = server.connection(timeout=30)
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {server.token}",
                                                "Accept": "application/json"})
        self.resp = self.conn.getresponse()
        self.added = set()
        self.clean_end = None
        self.error = None

    def run(self):
        buf = b""
        try:
            while True:
                # read1, not readline: readline's peek hides an incomplete chunked body
                data = self.resp.read1(65536)
                if not data:
                    break
                buf += data
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        ev = json.loads(line)
                        if ev["type"] == "ADDED":
                            self.added.add(ev["object"]["metadata"]["name"])
            # http.client reads the chunked framing: an EOF before the last
            # chunk raises IncompleteRead, a clean end returns b"" here
            self.clean_end = True
        except (http.client.IncompleteRead, OSError, ValueError) as e:
            self.clean_end = False
            self.error = e
        finally:
            self.conn.close()


class GracefulShutdownTest(ServerTestCase):

    def test_sigterm_with_watches_open_and_writes_in_flight(self):
        ns = self.new_namespace("stop")
        path = collection_path("LanguagePersona", ns)
        rv = self.api("GET", path, expect=200).json()["metadata"]["resourceVersion"]
        watch_path = f"{path}?watch=1&resourceVersion={rv}"
        h1 = WatchReader(self.server, watch_path)
        h1.start()
        h2_out = self.tmp / "h2-watch.out"
        h2 = subprocess.Popen(
            ["curl", "-sS", "--http2", "-N", "--cacert", str(self.server.ca),
             "-H", f"Authorization: Bearer {self.server.token}", "-o", str(h2_out),
             f"{self.server.url}{watch_path}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        acked, lock, stop = [], threading.Lock(), threading.Event()

        def keep_writing(k):
            conn = self.server.connection(timeout=10)
            i = 0
            while not stop.is_set():
                name = f"w{k}-{i}"
                i += 1
                try:
                    r = self.server.request("POST", path, persona(name, ns), conn=conn)
                except (OSError, http.client.HTTPException):
                    return  # the server closed the connection: it is stopping
                if r.status == 201:
                    with lock:
                        acked.append(name)

        writers = [threading.Thread(target=keep_writing, args=(k,), daemon=True) for k in range(4)]
        for t in writers:
            t.start()
        time.sleep(0.7)
        with lock:
            before = len(acked)
        self.assertGreater(before, 0, "no write was acknowledged before the signal")

        proc = self.server.proc
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(STOP_BOUND_S + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.fail(f"still running {STOP_BOUND_S + 5} s after SIGTERM")
        took = time.monotonic() - t0
        self.server.proc = None
        stop.set()
        for t in writers:
            t.join(15)
        h1.join(10)
        try:
            _, h2_err = h2.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            h2.kill()
            _, h2_err = h2.communicate()
        print(f"    SIGTERM to exit {took:.2f} s, exit status {rc}; {len(acked)} writes acknowledged "
              f"({before} before the signal); HTTP/1.1 watch saw {len(h1.added)}")

        self.assertEqual(rc, 0, self.server.log_tail())
        self.assertLessEqual(took, STOP_BOUND_S)
        self.assertTrue(h1.clean_end, f"HTTP/1.1 watch ended without its last chunk: {h1.error!r}")
        self.assertEqual(h2.returncode, 0, f"HTTP/2 watch (curl) did not end cleanly: {h2_err.decode()}")
        h2_added = {json.loads(l)["object"]["metadata"]["name"]
                    for l in h2_out.read_text().splitlines() if l.strip() and json.loads(l)["type"] == "ADDED"}
        # every acknowledged write was committed before its answer, and the watches end after that
        self.assertEqual(set(acked) - h1.added, set(), "acknowledged writes missing from the HTTP/1.1 watch")
        self.assertEqual(set(acked) - h2_added, set(), "acknowledged writes missing from the HTTP/2 watch")

        wal = f"{self.server.db}-wal"
        wal_size = os.path.getsize(wal) if os.path.exists(wal) else 0
        self.assertEqual(wal_size, 0, "the WAL was not checkpointed into the database at exit")
        with sqlite3.connect(f"file:{self.server.db}?mode=ro", uri=True) as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")

        self.server.start()
        items = {o["metadata"]["name"] for o in self.api("GET", path, expect=200).json()["items"]}
        self.assertEqual(set(acked) - items, set(), "acknowledged writes lost across the restart")


if __name__ == "__main__":
    unittest.main()
