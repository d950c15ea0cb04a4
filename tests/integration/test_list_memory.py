"""A LIST's memory does not grow with the list: it is read from the store in
pages at one resourceVersion, each page encoded and sent as the client takes
it. 8 clients list 50 000 objects at once, twice each, while the server's
RSS (VmRSS in /proc/PID/status) is sampled: it stays under 64 MB and falls
back after. kubectl gets the whole list as one streamed Table, limit and
continue pages still walk the same list, clients that leave half way cost
nothing, and a list whose resourceVersion is compacted away while it is
sent is cut off rather than ended as if complete.

LANGOP_LIST_MEMORY_OBJECTS and LANGOP_LIST_MEMORY_ROUNDS change the size
(default 50 000 objects, 2 lists per client)."""

import json
import os
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import harness
from harness import API_VERSION, FlagServerTestCase, ServerTestCase, collection_path, obj, persona

N = int(os.environ.get("LANGOP_LIST_MEMORY_OBJECTS", "50000"))
ROUNDS = int(os.environ.get("LANGOP_LIST_MEMORY_ROUNDS", "2"))
CLIENTS = 8
RSS_LIMIT_MB = 64
# after the lists: what a server may keep of them (the workers' SQLite page caches fill up, 2 MB each,
# and each arena keeps some free memory); the peak itself must not stay
RSS_KEPT_MB = 12
# the start of every item of a persona List, as the server encodes it
ITEM = b'{"apiVersion":"' + API_VERSION.encode() + b'","kind":"LanguagePersona","metadata":'


def create_personas(server, ns, n, threads=16):
    """n personas p00000.. in ns, by concurrent creates on keep-alive connections."""
    path = collection_path("LanguagePersona", ns)

    def create_range(start):
        conn = server.connection(timeout=60)
        try:
            for i in range(start, n, threads):
                r = server.request("POST", path, persona(f"p{i:05d}", ns), conn=conn)
                if r.status != 201:
                    raise AssertionError(f"create p{i}: {r}")
        finally:
            conn.close()

    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(create_range, range(threads)))


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class RssSampler:
    """The peak of the server's RSS, sampled every 10 ms while it runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.samples = pid, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self.samples += 1
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class ScanBody:
    """Counts the items of a List as its body arrives, without keeping it."""

    def __init__(self):
        self.items, self.bytes, self.head, self._carry = 0, 0, b"", b""

    def feed(self, chunk):
        if len(self.head) < 300:
            self.head += chunk[:300 - len(self.head)]
        # an item's start cut by the chunk's end is whole with the next chunk: the bytes before it come
        # along (too few to hold a whole one, which was counted already)
        data = self._carry + chunk
        self.items += data.count(ITEM)
        self._carry = data[-(len(ITEM) - 1):]
        self.bytes += len(chunk)
        self.end = data[-2:]

    def rv(self):
        return json.loads(self.head.split(b',"items":', 1)[0] + b"}")["metadata"]["resourceVersion"]


class ListMemoryTest(ServerTestCase):
    """50 000 small objects, listed whole by 8 clients at once."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ns = "mem"
        cls.path = collection_path("LanguagePersona", cls.ns)
        t0 = time.monotonic()
        try:
            r = cls.server.request("POST", collection_path("LanguageCluster"),
                                   obj("LanguageCluster", cls.ns, spec={"domain": "mem.example.com"}))
            if r.status != 201:
                raise AssertionError(f"creating LanguageCluster {cls.ns}: {r}")
            create_personas(cls.server, cls.ns, N)
        except Exception:
            cls.tearDownClass()
            raise
        cls.create_s = time.monotonic() - t0

    def list_whole(self, times):
        """One client: `times` full lists on one connection; their (items, bytes, end, rv, seconds)."""
        conn = self.server.connection(timeout=120)
        out = []
        try:
            for _ in range(times):
                t0 = time.monotonic()
                conn.request("GET", self.path, headers={"Authorization": f"Bearer {self.server.token}",
                                                        "Accept": "application/json"})
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                scan = ScanBody()
                while True:
                    chunk = r.read(256 * 1024)
                    if not chunk:
                        break
                    scan.feed(chunk)
                out.append((scan.items, scan.bytes, scan.end, scan.rv(), time.monotonic() - t0))
        finally:
            conn.close()
        return out

    def test_eight_clients_list_everything_at_once(self):
        pid = self.server.proc.pid
        time.sleep(0.5)
        before = rss_mb(pid)
        t0 = time.monotonic()
        with RssSampler(pid) as sampler, ThreadPoolExecutor(CLIENTS) as ex:
            results = [x for per in ex.map(lambda _: self.list_whole(ROUNDS), range(CLIENTS)) for x in per]
        wall = time.monotonic() - t0
        after = rss_mb(pid)
        for _ in range(30):  # what the lists took is handed back within a moment
            if after <= before + RSS_KEPT_MB:
                break
            time.sleep(0.1)
            after = rss_mb(pid)
        times = sorted(r[4] for r in results)
        size = results[0][1] / 1e6
        print(f"\n    list memory: {N} objects created in {self.create_s:.1f}s; {CLIENTS} clients x {ROUNDS} lists "
              f"of {size:.1f} MB in {wall:.1f}s (one list {times[0]:.1f}-{times[-1]:.1f}s); RSS before "
              f"{before:.0f} MB, peak {sampler.peak:.0f} MB ({sampler.samples} samples), after {after:.0f} MB",
              flush=True)
        for items, nbytes, end, rv, _ in results:
            self.assertEqual(items, N)
            self.assertEqual(end, b"]}")
            self.assertEqual(nbytes, results[0][1])
            self.assertEqual(rv, results[0][3])
        if harness.sanitized(harness.BINARY):
            print("    (a sanitizer build: its RSS is not bounded, only the answers are checked)")
            return
        self.assertLess(sampler.peak, RSS_LIMIT_MB, "the lists' memory grew with them")
        self.assertLessEqual(after, before + RSS_KEPT_MB, "the server kept what the lists took")

    def test_kubectl_gets_the_whole_list(self):
        """kubectl's Table of everything at once (--chunk-size=0: one streamed LIST over HTTP/2)."""
        t0 = time.monotonic()
        out = self.kubectl("get", "lpersona", "-n", self.ns, "--chunk-size=0", "--no-headers", timeout=120)
        rows = out.lines()
        print(f"\n    kubectl get of {N} objects in one list: {time.monotonic() - t0:.1f}s", flush=True)
        self.assertEqual(len(rows), N)
        self.assertEqual(rows[0].split()[0], "p00000")
        self.assertEqual(rows[-1].split()[0], f"p{N - 1:05d}")

    def test_limit_and_continue_walk_the_same_list(self):
        """Pages of 7 000 (more than the server's own pages): every object once, in order, at one
        resourceVersion, with the count of what is left."""
        names, token, rv, pages = [], None, None, 0
        while True:
            q = "?limit=7000" + (f"&continue={token}" if token else "")
            page = self.api("GET", self.path + q, expect=200).json()
            meta = page["metadata"]
            rv = rv or meta["resourceVersion"]
            self.assertEqual(meta["resourceVersion"], rv)
            names += [i["metadata"]["name"] for i in page["items"]]
            pages += 1
            token = meta.get("continue")
            if not token:
                self.assertNotIn("remainingItemCount", meta)
                break
            self.assertEqual(len(page["items"]), 7000)
            self.assertEqual(meta["remainingItemCount"], N - len(names))
        self.assertEqual(names, [f"p{i:05d}" for i in range(N)])
        self.assertEqual(pages, (N + 6999) // 7000)

    def test_clients_that_leave_half_way(self):
        """8 clients read 300 kB of the list and go; the server stays small and answers."""
        pid = self.server.proc.pid

        def leave(_):
            conn = self.server.connection(timeout=30)
            conn.request("GET", self.path, headers={"Authorization": f"Bearer {self.server.token}"})
            r = conn.getresponse()
            r.read(300_000)
            conn.sock.shutdown(socket.SHUT_RDWR)
            conn.close()

        with RssSampler(pid) as sampler:
            for _ in range(3):
                with ThreadPoolExecutor(CLIENTS) as ex:
                    list(ex.map(leave, range(CLIENTS)))
        if not harness.sanitized(harness.BINARY):
            self.assertLess(sampler.peak, RSS_LIMIT_MB)
        r = self.api("GET", self.path + "?limit=1", expect=200).json()
        self.assertEqual(r["metadata"]["remainingItemCount"], N - 1)
        head = self.api("HEAD", self.path, expect=200)
        self.assertEqual(head.body, b"")


class ListCutOffTest(FlagServerTestCase):
    """A list whose resourceVersion is compacted while it is being sent ends
    without its last chunk: the client sees an incomplete answer."""

    server_flags = ("--compaction-interval=1s", "--history-min-revisions=1", "--history-min-age=0s")

    def test_compacted_list_is_cut_off(self):
        ns = self.new_namespace("cut")
        n = 10_000
        create_personas(self.server, ns, n)
        path = collection_path("LanguagePersona", ns)
        raw = socket.create_connection(("127.0.0.1", self.server.port))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # the server can run ahead only a little
        sock = self.server.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
        sock.settimeout(30)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.server.token}\r\n"
                     f"Accept: application/json\r\n\r\n".encode())
        got = sock.recv(65536)
        self.assertIn(b"200 OK", got.split(b"\r\n", 1)[0])
        # the store moves on and compaction passes the list's resourceVersion
        self.api("PUT", f"{path}/p00000", {**persona("p00000", ns), "spec": {"tone": "stern"}}, expect=200)
        time.sleep(3)
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except (ConnectionError, ssl.SSLError):
                break
            if not chunk:
                break
            got += chunk
        sock.close()
        body = got.split(b"\r\n\r\n", 1)[1]
        self.assertFalse(body.endswith(b"\r\n0\r\n\r\n"), "the cut list was ended as if complete")
        self.assertLess(body.count(ITEM), n)
        self.assertIn("cut off", self.server.log_text())
        # a new list is whole
        self.assertEqual(len(self.api("GET", path, expect=200).json()["items"]), n)
