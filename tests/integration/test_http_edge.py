"""The HTTP edge, in front of h2o 2.2.5 (README "HTTP edge"): raw HTTP/1.1
framing that could smuggle a request, clients that go away before their
request runs, HTTP/2 stream limits and the "rapid reset" attack
(CVE-2023-44487), slow clients, and kube's in-flight limits.

HTTP/1.1 is written on raw TLS sockets; HTTP/2 with python3-h2 (Debian), and
by hand where a client must break its rules (10 000 streams reset at once,
without flow control). Every figure a test measures is printed."""

import json
import re
import shutil
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import os
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import hpack

import harness
from harness import API, REPO, Server, ServerTestCase, collection_path, item_path, model

sys.path.insert(0, str(REPO / "tests" / "standin"))
from kube_standin import start_standin  # noqa: E402

TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
FRAME_HEADERS, FRAME_RST, FRAME_SETTINGS, FRAME_GOAWAY = 1, 3, 4, 7


def latency_bound():
    """What another client may wait at p99: 100 ms; three times that for a sanitizer build,
    whose every request runs several times slower (the real bound is the real build's)."""
    return 0.100 * (3 if harness.sanitized(harness.BINARY) else 1)


def p99(samples):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def tls_socket(server, alpn, timeout=10):
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls between small writes
    return server.ssl_context(alpn=alpn).wrap_socket(raw, server_hostname="127.0.0.1")


def read_until_closed(sock, limit=10.0):
    """Everything the server sends until it closes the connection (or limit s pass)."""
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            break
        if not chunk:
            return data, True
        data += chunk
    return data, False


def raw_h1(server, data, limit=10.0):
    """data (bytes) over one TLS connection: (what came back, whether the server closed it)."""
    s = tls_socket(server, ("http/1.1",))
    s.settimeout(0.5)
    try:
        s.sendall(data)
        return read_until_closed(s, limit)
    finally:
        s.close()


def responses_of(data):
    """[(status, headers, body)] of a byte stream of HTTP/1.1 responses with Content-Length."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        n = int(headers.get("content-length", len(rest)))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


class H2:
    """One HTTP/2 client connection (python3-h2): requests, and their answers by stream."""

    def __init__(self, server, token):
        self.sock = tls_socket(server, ("h2",))
        self.token = token
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.streams = {}
        self.goaway = None
        self.settings_seen = False
        self.closed = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method, path, body=None, send=True):
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", method), (":path", path), (":scheme", "https"), (":authority", "127.0.0.1"),
                   ("authorization", f"Bearer {self.token}"), ("accept", "application/json")]
        if body is not None:
            data = json.dumps(body).encode()
            headers += [("content-type", "application/json"), ("content-length", str(len(data)))]
            self.conn.send_headers(sid, headers)
            self.conn.send_data(sid, data, end_stream=True)
        else:
            self.conn.send_headers(sid, headers, end_stream=True)
        self.streams[sid] = {"status": None, "headers": {}, "body": b"", "ended": False, "reset": None}
        if send:
            self.flush()
        return sid

    def reset(self, sid, send=True):
        self.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        if send:
            self.flush()

    def pump(self, done, timeout=10.0):
        """Reads until done() or timeout; returns done()."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.2)
        while not done() and not self.closed and time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                data = b""
            if not data:
                self.closed = True
                break
            for ev in self.conn.receive_data(data):
                self.on_event(ev)
            self.flush()
        return done()

    def on_event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived) and st is not None:
            st["headers"] = dict(ev.headers)
            st["status"] = int(st["headers"][":status"])
        elif isinstance(ev, h2.events.DataReceived) and st is not None:
            st["body"] += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and st is not None:
            st["ended"] = True
        elif isinstance(ev, h2.events.StreamReset) and st is not None:
            st["reset"] = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            self.settings_seen = True

    def answered(self, sids):
        return lambda: all(self.streams[s]["ended"] or self.streams[s]["reset"] is not None for s in sids)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class EdgeCase(ServerTestCase):
    """A server with extra flags and a second, ordinary user (bob, not system:masters)."""

    FLAGS = ()

    @classmethod
    def prepare(cls):
        return list(cls.FLAGS)

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="langop-it-edge-"))
        cls.kube_cache = cls.tmp / "kube-cache"
        cls._dyn = None
        cls.standin = None
        cls.server = None
        try:
            cls.server = Server(cls.tmp, cls.prepare())
            with open(cls.tmp / "tokens.csv", "a") as f:
                f.write('bob-token,bob,bob-uid,"devs"\n')
            cls.server.start()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()
        if cls.standin is not None:
            cls.standin.stop()
        if os.environ.get("LANGOP_IT_KEEP"):
            print(f"    (kept {cls.tmp})")
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def h2(self, token=None):
        c = H2(self.server, token or self.server.token)
        self.addCleanup(c.close)
        return c

    def exists(self, ns, name):
        r = self.server.request("GET", item_path("LanguageModel", name, ns))
        self.assertIn(r.status, (200, 404), r)
        return r.status == 200

    def count_models(self, ns):
        r = self.api("GET", collection_path("LanguageModel", ns), expect=200)
        return len(r.json()["items"])

    def assertKubeStatus(self, body, code, reason):
        st = json.loads(body)
        self.assertEqual((st.get("kind"), st.get("code"), st.get("reason")), ("Status", code, reason), st)
        return st

    def measure_latency(self, stop, out, path="/readyz"):
        """GETs on one keep-alive HTTP/1.1 connection until stop is set: their latencies (s) into out
        (inf for an answer other than 200)."""
        s = tls_socket(self.server, ("http/1.1",))
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.server.token}\r\n"
               "Accept: application/json\r\n\r\n").encode()
        buf = b""
        try:
            while not stop.is_set():
                t0 = time.monotonic()
                s.sendall(req)
                while True:
                    head, sep, rest = buf.partition(b"\r\n\r\n")
                    m = re.search(rb"(?i)content-length: *(\d+)", head) if sep else None
                    if m and len(rest) >= int(m.group(1)):
                        break
                    chunk = s.recv(65536)
                    if not chunk:
                        raise AssertionError("the probe's connection was closed")
                    buf += chunk
                out.append(time.monotonic() - t0 if head.startswith(b"HTTP/1.1 200") else float("inf"))
                buf = rest[int(m.group(1)):]
                time.sleep(0.005)
        finally:
            s.close()


# ------------------------------------------------------------------ framing

class FramingTest(EdgeCase):
    """RFC 9112: a request whose length or host is ambiguous is refused with
    400 and its connection closed; what follows it is never served."""

    def send_smuggling(self, headers, body=b""):
        """A POST with headers, body, then a second, pipelined request: the responses, and whether it closed."""
        path = collection_path("LanguageModel", "default")
        req = (f"POST {path} HTTP/1.1\r\n{headers}Authorization: Bearer {self.server.token}\r\n"
               f"Content-Type: application/json\r\n\r\n").encode() + body
        smuggled = (f"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.server.token}\r\n"
                    "Connection: close\r\n\r\n")
        data, closed = raw_h1(self.server, req + smuggled.encode())
        return responses_of(data), closed

    def assertRefused(self, headers, body=b"", why=None):
        rs, closed = self.send_smuggling(headers, body)
        self.assertEqual(len(rs), 1, f"one answer, the smuggled request is not served: {rs}")
        status, hdrs, rbody = rs[0]
        self.assertEqual(status, 400, rs)
        self.assertTrue(hdrs.get("content-type", "").startswith("application/json"), hdrs)
        st = self.assertKubeStatus(rbody, 400, "BadRequest")
        if why:
            self.assertIn(why, st["message"])
        self.assertTrue(closed, "the server closes the connection after the 400")
        print(f"      {headers.strip()!r}: 400 {st['message']!r}, closed")

    def test_content_length_and_transfer_encoding(self):
        self.assertRefused("Host: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                           b"0\r\n\r\n", "Content-Length and Transfer-Encoding")
        self.assertRefused("Host: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                           b"0\r\n\r\n", "Content-Length and Transfer-Encoding")

    def test_conflicting_content_lengths(self):
        self.assertRefused("Host: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n", b"{}", "Content-Length")
        # a list is refused by h2o itself: its answer gets a Status body here too
        self.assertRefused("Host: 127.0.0.1\r\nContent-Length: 2, 3\r\n", b"{}")

    def test_missing_or_repeated_host(self):
        self.assertRefused("Content-Length: 2\r\n", b"{}", "missing required Host")
        self.assertRefused("Host: 127.0.0.1\r\nHost: evil.example\r\nContent-Length: 2\r\n", b"{}", "Host")

    def test_repeated_transfer_encoding_and_folding(self):
        self.assertRefused("Host: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                           b"0\r\n\r\n", "Transfer-Encoding")
        self.assertRefused("Host: 127.0.0.1\r\nContent-Length: 2\r\nX-Folded: a\r\n b\r\n", b"{}", "folding")

    def test_unambiguous_requests_are_served_with_the_pipelined_one(self):
        # the control: the same pipelining with sound framing gets both answers, so the tests above can fail
        for headers, body in (("Host: 127.0.0.1\r\nContent-Length: 2\r\n", b"{}"),
                              ("Host: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n", b"{}"),
                              ("Host: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n")):
            rs, _ = self.send_smuggling(headers, body)
            self.assertEqual([s for s, _, _ in rs], [400, 200], (headers, rs))
            self.assertIn("Kind", json.loads(rs[0][2])["message"], "the API's answer to an empty object")
        # HTTP/1.0 needs no Host
        rs = responses_of(raw_h1(self.server, b"GET /readyz HTTP/1.0\r\n\r\n")[0])
        self.assertEqual([s for s, _, _ in rs], [200], rs)


# ------------------------------------------------------------------ clients gone before their turn

class GoneBeforeRunTest(EdgeCase):
    """A request whose client went away before a worker took it is not run.
    The single worker is held by a request whose TokenReview the stand-in
    answers after 1.5 s: what queues behind it meanwhile is deterministic."""

    @classmethod
    def prepare(cls):
        cls.standin, paths = start_standin(cls.tmp / "standin")
        for i in range(4):
            cls.standin.set_token(f"slow-{i}", f"slow-{i}")
        return ["--workers=1", f"--authentication-kubeconfig={paths['kubeconfig']}"]

    def hold_the_worker(self, n):
        """Starts a request that keeps the only worker in a TokenReview for 1.5 s; returns once it does."""
        fault = self.standin.add_fault("delay", path=TOKENREVIEWS, method="POST", delay=1.5)
        t = threading.Thread(target=self.server.request, args=("GET", "/version"),
                             kwargs={"token": f"slow-{n}", "timeout": 20}, daemon=True)
        t.start()
        deadline = time.monotonic() + 5
        while fault["hits"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(fault["hits"], 1, "the worker is in the TokenReview")
        self.addCleanup(t.join, 10)
        return t

    def cancelled_lines(self, ns):
        return [l for l in self.server.log_text().splitlines() if f"/namespaces/{ns}/" in l and "cancelled=" in l]

    def test_reset_http2_streams_are_not_run(self):
        ns = self.new_namespace("reset-h2")
        self.hold_the_worker(0)
        c = self.h2()
        reset = []
        for i in range(40):
            sid = c.request("POST", collection_path("LanguageModel", ns), model(f"reset-{i}", ns), send=False)
            c.reset(sid, send=False)
            reset.append(sid)
        kept = [c.request("POST", collection_path("LanguageModel", ns), model(f"kept-{i}", ns), send=False)
                for i in range(5)]
        c.flush()
        self.assertTrue(c.pump(c.answered(kept), timeout=15), c.streams)
        self.assertEqual([c.streams[s]["status"] for s in kept], [201] * 5)
        landed = [i for i in range(40) if self.exists(ns, f"reset-{i}")]
        self.assertEqual(landed, [], "creates reset before a worker took them did not land")
        self.assertEqual(self.count_models(ns), 5)
        lines = self.cancelled_lines(ns)
        self.assertEqual(len(lines), 40, "\n".join(lines[:5]))
        print(f"      40 creates reset while the worker was busy: 0 landed, 40 logged as cancelled; 5 kept: 201")

    def test_closed_http1_connection_is_not_run(self):
        ns = self.new_namespace("closed-h1")
        self.hold_the_worker(1)
        body = json.dumps(model("closed-0", ns)).encode()
        s = tls_socket(self.server, ("http/1.1",))
        s.sendall((f"POST {collection_path('LanguageModel', ns)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: Bearer {self.server.token}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        time.sleep(0.2)  # the loop has queued it behind the held worker
        s.close()
        kept = self.server.request("POST", collection_path("LanguageModel", ns), model("kept", ns), timeout=15)
        self.assertEqual(kept.status, 201, kept)
        self.assertFalse(self.exists(ns, "closed-0"), "the create of a client that hung up did not land")
        self.assertEqual(len(self.cancelled_lines(ns)), 1, self.server.log_tail())

    def test_a_connection_has_at_most_100_requests_with_the_workers(self):
        """With the worker held, 10 000 streams opened and reset: of those the
        loop accepted, at most 100 reached the workers' queue (a worker later
        skipped them); the rest waited on the connection and were dropped there."""
        ns = self.new_namespace("conn-cap")
        held = self.hold_the_worker(2)
        last_id, goaway_code = rapid_reset(self.server, ns, 10000)
        self.assertEqual(goaway_code, 11, "GOAWAY ENHANCE_YOUR_CALM")
        held.join(10)
        self.api("GET", "/version", expect=200)  # queued last: the worker has been through the rest
        lines = self.cancelled_lines(ns)
        by_worker = [l for l in lines if 'before it ran' in l]
        waited = [l for l in lines if 'waited on its connection' in l]
        print(f"      held worker, 10000 streams reset: GOAWAY after stream {last_id}; "
              f"{len(by_worker)} skipped by the worker, {len(waited)} dropped from the connection's line")
        self.assertLessEqual(len(by_worker), 100)
        self.assertGreater(len(waited), 0)
        self.assertEqual(self.count_models(ns), 0)


# ------------------------------------------------------------------ HTTP/2 streams and resets

def rapid_reset(server, ns, n):
    """n streams, each a create opened and at once reset, written as fast as the
    socket takes them (frames by hand: a real client would obey flow control).
    Returns (last stream id of the server's first GOAWAY, its error code), or (None, None)."""
    return send_attack(server, attack_bytes(server, ns, n))


def attack_bytes(server, ns, n):
    enc = hpack.Encoder()
    path = collection_path("LanguageModel", ns)
    out = [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", struct.pack(">I", 0)[1:] + bytes([FRAME_SETTINGS, 0]) + b"\0\0\0\0"]

    def frame(ftype, flags, sid, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload

    for i in range(n):
        sid = 2 * i + 1
        body = json.dumps(model(f"rr-{i}", ns)).encode()
        block = enc.encode([(":method", "POST"), (":path", path), (":scheme", "https"),
                            (":authority", "127.0.0.1"), ("authorization", f"Bearer {server.token}"),
                            ("content-type", "application/json"), ("content-length", str(len(body)))])
        out.append(frame(FRAME_HEADERS, 0x4, sid, block))
        out.append(frame(0, 0x1, sid, body))
        out.append(frame(FRAME_RST, 0, sid, struct.pack(">I", 8)))  # CANCEL
    return b"".join(out)


def send_attack(server, data):
    s = tls_socket(server, ("h2",))
    got = {"goaway": (None, None)}

    def reader():
        buf = b""
        s.settimeout(0.5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                break
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 9:
                length = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + length:
                    break
                ftype, payload = buf[3], buf[9:9 + length]
                if ftype == FRAME_GOAWAY and got["goaway"] == (None, None):  # the first says why
                    got["goaway"] = (struct.unpack(">I", payload[:4])[0] & 0x7fffffff,
                                     struct.unpack(">I", payload[4:8])[0])
                buf = buf[9 + length:]

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        s.sendall(data)
    except (ssl.SSLError, OSError):
        pass  # closed by the server after its GOAWAY
    t.join(25)
    s.close()
    return got["goaway"]


class StreamsTest(EdgeCase):
    """At most 100 streams per connection; the reset budget; GOAWAY."""

    def test_more_than_100_open_streams_are_refused(self):
        ns = self.new_namespace("streams")
        c = self.h2()
        self.assertTrue(c.pump(lambda: c.settings_seen, timeout=5))
        self.assertEqual(c.conn.remote_settings.max_concurrent_streams, 100)
        # the client library keeps the limit; lift it to show the server keeps it too
        c.conn.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 1000
        c.conn.remote_settings.acknowledge()
        sids = []
        for i in range(110):  # bodies that never come: each stream stays open
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "POST"), (":path", collection_path("LanguageModel", ns)),
                                      (":scheme", "https"), (":authority", "127.0.0.1"),
                                      ("authorization", f"Bearer {self.server.token}")])
            c.streams[sid] = {"status": None, "headers": {}, "body": b"", "ended": False, "reset": None}
            sids.append(sid)
        c.flush()
        c.pump(lambda: sum(c.streams[s]["reset"] is not None for s in sids) >= 10, timeout=5)
        refused = [s for s in sids if c.streams[s]["reset"] == h2.errors.ErrorCodes.REFUSED_STREAM]
        self.assertEqual(len(refused), 10, f"streams beyond 100 are refused: {len(refused)}")
        self.assertEqual(refused, sids[100:])
        print(f"      SETTINGS_MAX_CONCURRENT_STREAMS=100; 110 open streams: the last {len(refused)} REFUSED_STREAM")

    def test_rapid_reset(self):
        ns = self.new_namespace("rapid-reset")
        self.api("POST", collection_path("LanguageModel", ns), model("probe", ns), expect=201)
        attack = attack_bytes(self.server, ns, 10000)  # built first: the probe shares this process
        stop, lat = threading.Event(), []
        probe = threading.Thread(target=self.measure_latency, args=(stop, lat, item_path("LanguageModel", "probe", ns)))
        probe.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        last_id, code = send_attack(self.server, attack)
        attack_s = time.monotonic() - t0
        time.sleep(0.3)
        stop.set()
        probe.join()
        created = self.count_models(ns) - 1
        print(f"      10000 streams opened and reset: GOAWAY code {code} after stream {last_id} ({attack_s:.2f} s); "
              f"{created} creates ran; other client: {len(lat)} GETs, p99 {p99(lat) * 1000:.1f} ms, "
              f"max {max(lat) * 1000:.1f} ms")
        self.assertEqual(code, 11, "GOAWAY ENHANCE_YOUR_CALM")
        self.assertLess(last_id, 2 * 1000, "the connection was stopped long before its 10000th stream")
        self.assertLess(created, 1000)
        self.assertGreater(len(lat), 20)
        self.assertLessEqual(p99(lat), latency_bound(), "a client on another connection keeps getting answers fast")
        self.api("GET", "/readyz", expect=200)

    def test_a_normal_connection_keeps_its_budget(self):
        """Answered requests give back what resets cost: 400 requests reset at
        once (twice the budget), each followed by one answered, on one connection
        get no GOAWAY."""
        ns = self.new_namespace("budget")
        c = self.h2()
        answered = []
        for i in range(400):
            sid = c.request("GET", item_path("LanguageModel", f"r{i}", ns), send=False)
            c.reset(sid)
            sid = c.request("GET", item_path("LanguageModel", f"a{i}", ns))
            answered.append(sid)
            self.assertTrue(c.pump(c.answered([sid]), timeout=5), f"request {i}: {c.goaway}")
        self.assertIsNone(c.goaway)
        self.assertEqual({c.streams[s]["status"] for s in answered}, {404})
        cancelled = sum(f"/namespaces/{ns}/languagemodels/r" in l and "cancelled=" in l
                        for l in self.server.log_text().splitlines())
        print(f"      400 resets between 400 answered requests: {cancelled} cancelled before their answer, no GOAWAY")
        self.assertGreater(cancelled, 200, "more resets counted than the budget alone allows")


# ------------------------------------------------------------------ slow clients

class SlowClientsTest(EdgeCase):
    """200 silent connections and clients trickling a request byte by byte
    never delay others by more than 100 ms, and are closed after h2o's 10 s
    (TLS handshake, HTTP/1.1 request) or the edge's (HTTP/2: no request in 10 s)."""

    def trickle(self, alpn, results, key):
        s = tls_socket(self.server, (alpn,))
        s.settimeout(0.05)
        t0 = time.monotonic()
        if alpn == "h2":
            enc = hpack.Encoder()
            block = enc.encode([(":method", "GET"), (":path", "/version"), (":scheme", "https"),
                                (":authority", "127.0.0.1"), ("x-pad", "p" * 2000)])
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            payload = struct.pack(">I", len(block))[1:] + bytes([FRAME_HEADERS, 0x5]) + struct.pack(">I", 1) + block
        else:
            payload = b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"p" * 2000 + b"\r\n\r\n"
        got = b""
        for b in payload:
            try:
                s.sendall(bytes([b]))
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                break
            if time.monotonic() - t0 > 20:
                break
        results[key] = (time.monotonic() - t0, got)
        s.close()

    def test_silent_and_trickling_clients(self):
        silent = [socket.create_connection(("127.0.0.1", self.server.port)) for _ in range(200)]
        self.addCleanup(lambda: [x.close() for x in silent])
        results, threads = {}, []
        for i, alpn in enumerate(("http/1.1", "http/1.1", "h2", "h2")):
            t = threading.Thread(target=self.trickle, args=(alpn, results, f"{alpn}-{i}"), daemon=True)
            t.start()
            threads.append(t)
        stop, lat = threading.Event(), []
        probe = threading.Thread(target=self.measure_latency, args=(stop, lat, "/version"))
        probe.start()
        for t in threads:
            t.join(25)
        stop.set()
        probe.join()
        closed = 0
        for x in silent:
            x.settimeout(0.5)
            try:
                closed += x.recv(1) == b""
            except (socket.timeout, OSError):
                pass
        tricklers = {k: round(v[0], 1) for k, v in sorted(results.items())}
        print(f"      200 silent: {closed} closed by the server; tricklers closed after {tricklers} s; "
              f"other client: {len(lat)} GETs, p99 {p99(lat) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms")
        self.assertEqual(closed, 200, "silent connections are closed (TLS handshake timeout)")
        self.assertEqual(len(results), 4)
        for k, (secs, got) in results.items():
            self.assertLess(secs, 13, f"{k} was closed by a request timeout")
            self.assertGreater(secs, 8, f"{k} had h2o's 10 s")
            if k.startswith("h2"):
                self.assertIn(b"no request within the request timeout", got, "GOAWAY says why")
        self.assertGreater(len(lat), 100)
        self.assertLessEqual(p99(lat), latency_bound())


# ------------------------------------------------------------------ in-flight limits

class InflightLimitsTest(EdgeCase):
    """--max-requests-inflight, --max-mutating-requests-inflight and --max-watches."""

    FLAGS = ("--max-requests-inflight=1", "--max-mutating-requests-inflight=1", "--max-watches=2", "--workers=2")

    def burst(self, token, n, make):
        c = self.h2(token)
        sids = [make(c, i) for i in range(n)]
        c.flush()
        self.assertTrue(c.pump(c.answered(sids), timeout=20))
        return [(c.streams[s]["status"], c.streams[s]["headers"], c.streams[s]["body"]) for s in sids]

    def assertTooMany(self, status, headers, body):
        self.assertEqual(status, 429)
        self.assertEqual(headers.get("retry-after"), "1")
        st = self.assertKubeStatus(body, 429, "TooManyRequests")
        self.assertEqual(st.get("details", {}).get("retryAfterSeconds"), 1, st)

    def test_mutating_requests_over_the_limit_get_429(self):
        ns = self.new_namespace("mutating")
        path = collection_path("LanguageModel", ns)
        rs = self.burst("bob-token", 30, lambda c, i: c.request("POST", path, model(f"b{i}", ns), send=False))
        codes = [s for s, _, _ in rs]
        print(f"      30 creates at once, limit 1: {codes.count(201)} x 201, {codes.count(429)} x 429")
        self.assertEqual(set(codes), {201, 429}, codes)
        for s, h, b in rs:
            if s == 429:
                self.assertTooMany(s, h, b)
        self.assertEqual(self.count_models(ns), codes.count(201), "a 429 wrote nothing")

    def test_answered_writes_give_their_place_back(self):
        """One write after another never meets the limit of 1, however many: each answered
        write (whichever thread finished it) gives its place back."""
        ns = self.new_namespace("sequential")
        path = collection_path("LanguageModel", ns)
        codes = []
        for i in range(20):
            r = self.server.request("POST", path, model(f"s{i}", ns), token="bob-token")
            codes.append(r.status)
        self.assertEqual(codes, [201] * 20)

    def test_read_only_requests_over_the_limit_get_429(self):
        path = collection_path("LanguageModel")
        for attempt in range(5):  # two workers must overlap once: they do at once in practice
            rs = self.burst("bob-token", 100, lambda c, i: c.request("GET", path, send=False))
            codes = [s for s, _, _ in rs]
            if 429 in codes:
                break
        print(f"      100 lists at once, limit 1, 2 workers: {codes.count(200)} x 200, {codes.count(429)} x 429")
        self.assertEqual(set(codes), {200, 429}, codes)
        self.assertTooMany(*next(r for r in rs if r[0] == 429))

    def test_system_masters_are_never_refused(self):
        ns = self.new_namespace("masters")
        path = collection_path("LanguageModel", ns)
        rs = self.burst(self.server.token, 30, lambda c, i: c.request("POST", path, model(f"a{i}", ns), send=False))
        self.assertEqual([s for s, _, _ in rs], [201] * 30)

    def test_watches_are_not_counted_and_are_capped(self):
        c = self.h2("bob-token")
        path = collection_path("LanguageModel") + "?watch=true"
        w1, w2 = c.request("GET", path), c.request("GET", path)
        self.assertTrue(c.pump(lambda: c.streams[w1]["status"] and c.streams[w2]["status"], timeout=5))
        self.assertEqual((c.streams[w1]["status"], c.streams[w2]["status"]), (200, 200))
        # two watches open, read-only limit 1: a get still gets in (watches are long-running, not counted)
        self.assertEqual(self.server.request("GET", collection_path("LanguageModel"), token="bob-token").status, 200)
        w3 = c.request("GET", path)
        self.assertTrue(c.pump(c.answered([w3]), timeout=5))
        self.assertTooMany(c.streams[w3]["status"], c.streams[w3]["headers"], c.streams[w3]["body"])
        self.assertIn("watches", json.loads(c.streams[w3]["body"])["message"])
        c.reset(w1)
        time.sleep(0.2)
        w4 = c.request("GET", path)
        self.assertTrue(c.pump(lambda: c.streams[w4]["status"] is not None, timeout=5))
        self.assertEqual(c.streams[w4]["status"], 200, "a watch that ended frees its place")
