"""The hostile catalogue (hostile_catalogue.py), run against one server: each
row's request, then its answer checked against the status and Status reason
kube-apiserver gives, then proof that the server is alive (a LIST answers)
and that the store did not move (the LIST's resourceVersion, which every
committed write advances, and its items are those before the row).

API rows share one keep-alive HTTPS/1.1 connection (opened again when the
server closes it, as it may after a refusal); raw rows each get a fresh TLS
connection, HTTP/1.1 or HTTP/2 by ALPN. The last line printed says how many
rows were checked; a failure lists every row whose answer or effect was
wrong, with what came back.
"""

import http.client
import json
import socket
import ssl
import time

from harness import Response, ServerTestCase, agent, collection_path, obj
import hostile_catalogue as cat

READ_TIMEOUT = 20          # seconds for one answer: every row is answered far sooner
QUIET = 0.5                # seconds of silence that prove an incomplete request is not answered


def header_safe(value):
    raw = value.encode("latin-1")   # http.client decodes header bytes as latin-1
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(b < 0x20 and b != 0x09 or b == 0x7F for b in raw)


def status_problem(status, body, want_status, want_reason):
    """None if the answer is want_status with (for a failure) a Status of want_reason."""
    if status != want_status:
        return f"HTTP {status}, expected {want_status}: {body[:300]!r}"
    if want_reason is None:
        return None
    try:
        st = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return f"not a JSON Status: {body[:300]!r}"
    got = (st.get("kind"), st.get("apiVersion"), st.get("status"), st.get("code"), st.get("reason"))
    if got != ("Status", "v1", "Failure", want_status, want_reason) or not isinstance(st.get("message"), str):
        return f"Status {got}, expected reason {want_reason}: {body[:300]!r}"
    return None


# ------------------------------------------------------------ HTTP/1.1 on a raw socket

class RawReader:
    """Reads HTTP/1.1 answers off a socket: status, headers, body (Content-Length or chunked)."""

    def __init__(self, sock):
        self.sock, self.buf, self.eof = sock, b"", False

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
        self.buf += data
        return bool(data)

    def _until(self, mark):
        while mark not in self.buf:
            if not self._fill():
                raise EOFError
        head, self.buf = self.buf.split(mark, 1)
        return head

    def _take(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def answer(self):
        head = self._until(b"\r\n\r\n").split(b"\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                body += self._take(size)
                self._until(b"\r\n")
                if size == 0:
                    break
        else:
            body = self._take(int(headers.get("content-length", "0")))
        return status, headers, body

    def silent(self, seconds):
        """True if nothing arrives for seconds (the connection open or closed)."""
        self.sock.settimeout(seconds)
        try:
            return not self._fill() and not self.buf
        except (socket.timeout, TimeoutError):
            return not self.buf
        except (OSError, ssl.SSLError):
            return not self.buf

    def closed_soon(self, seconds):
        """True if the peer closes within seconds (what it sends meanwhile is dropped)."""
        self.sock.settimeout(seconds)
        try:
            while self._fill():
                pass
            return True
        except (socket.timeout, TimeoutError):
            return False
        except (OSError, ssl.SSLError):
            return True


# ------------------------------------------------------------ HTTP/2 frames

STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}
HUFFMAN_DIGITS = {"00000": "0", "00001": "1", "00010": "2", "011001": "3", "011010": "4", "011011": "5",
                  "011100": "6", "011101": "7", "011110": "8", "011111": "9"}   # RFC 7541 Appendix B


def hpack_status(block):
    """The :status of a response header block, which servers put first (RFC 9113 8.3.2)."""
    first = block[0]
    if first & 0x80:
        return STATIC_STATUS.get(first & 0x7F)
    if first & 0x0F != 8 and first & 0x3F != 8:
        return None                    # not a literal with the :status name
    huffman, n = block[1] & 0x80, block[1] & 0x7F
    raw = block[2:2 + n]
    if not huffman:
        return int(raw)
    bits, text, code = "".join(f"{b:08b}" for b in raw), "", ""
    for bit in bits:
        code += bit
        if code in HUFFMAN_DIGITS:
            text, code = text + HUFFMAN_DIGITS[code], ""
    return int(text)


def h2_frames(data):
    frames = []
    while len(data) >= 9:
        n = int.from_bytes(data[:3], "big")
        if len(data) < 9 + n:
            break
        frames.append((data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF, data[9:9 + n]))
        data = data[9 + n:]
    return frames


class HostileCatalogueTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        for path, body in ((collection_path("LanguageCluster"),
                            obj("LanguageCluster", cat.NS, spec={"domain": "hostile-cat.example.com"})),
                           (cat.COLL, cat.model(cat.M1)), (cat.COLL, cat.model(cat.M2)),
                           (collection_path("LanguageAgent", cat.NS), agent(cat.A1, cat.NS))):
            r = s.request("POST", path, body)
            assert r.status == 201, r
        cls.conn = None

    @classmethod
    def tearDownClass(cls):
        if cls.conn is not None:
            cls.conn.close()
        super().tearDownClass()

    # ------------------------------------------------------------ the shared connection

    def send(self, method, path, body=None, headers=None):
        """(status, headers, body) over the shared connection; a server that closes
        it gets a fresh one for the next request. Raises when no answer comes."""
        hdrs = {"Authorization": f"Bearer {self.server.token}", "Accept": "application/json"}
        hdrs.update(headers or {})
        for attempt in range(2):
            if self.conn is None:
                type(self).conn = self.server.connection(timeout=READ_TIMEOUT)
            c = self.conn
            try:
                c.putrequest(method, path, skip_accept_encoding=True)
                for k, v in hdrs.items():
                    c.putheader(k, v)
                if body is not None:
                    c.putheader("Content-Length", str(len(body)))
                c.endheaders()
                if body:
                    try:
                        c.send(body)
                    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                        pass   # answered before the whole body was read: the answer is what counts
                r = c.getresponse()
                data = r.read()
                out = r.status, {k.lower(): v for k, v in r.getheaders()}, data
                if r.will_close:
                    self.drop_connection()
                return out
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # a keep-alive connection the server had closed before this request
                self.drop_connection()
                if attempt == 1:
                    raise e
        raise AssertionError("unreachable")

    def drop_connection(self):
        if self.conn is not None:
            self.conn.close()
        type(self).conn = None

    # ------------------------------------------------------------ the checks after every row

    def store_state(self):
        """(resourceVersion, items) of the catalogue namespace's models, or raises."""
        status, _, body = self.send("GET", cat.COLL)
        if status != 200:
            raise AssertionError(f"LIST answered {status}: {body[:300]!r}")
        doc = json.loads(body)
        return doc["metadata"]["resourceVersion"], json.dumps(doc["items"], sort_keys=True)

    def after_row(self, baseline):
        """(None, or what is wrong with the server or the store after a row; the
        store's state now, so that one row's write is not blamed on the next)."""
        if self.server.proc.poll() is not None:
            return f"the server exited with {self.server.proc.returncode}", baseline
        try:
            state = self.store_state()
        except (OSError, http.client.HTTPException, AssertionError, ValueError) as e:
            return f"no LIST afterwards: {e!r}", baseline
        if state[0] != baseline[0]:
            return f"the store moved: resourceVersion {baseline[0]} -> {state[0]}", state
        if state[1] != baseline[1]:
            return "the objects changed though the resourceVersion did not", state
        return None, state

    # ------------------------------------------------------------ one row of each kind

    def run_api(self, row):
        try:
            status, headers, body = self.send(row.method, row.path, row.body, row.headers)
        except (OSError, http.client.HTTPException) as e:
            return f"no answer: {e!r}"
        for k, v in headers.items():
            if not header_safe(v):
                return f"unsafe response header {k}: {v!r}"
        if "x-injected" in headers:
            return "a header was injected"
        problem = status_problem(status, body, row.status, row.reason)
        if problem is None and row.check is not None:
            problem = row.check(Response(status, headers, body))
        return problem

    def tls(self, alpn):
        ctx = self.server.ssl_context(alpn=(alpn,))
        raw = socket.create_connection(("127.0.0.1", self.server.port), timeout=READ_TIMEOUT)
        sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        if sock.selected_alpn_protocol() != alpn:
            sock.close()
            raise AssertionError(f"ALPN chose {sock.selected_alpn_protocol()}, not {alpn}")
        return sock

    def run_raw1(self, row):
        sock = self.tls("http/1.1")
        reader = RawReader(sock)
        try:
            try:
                sock.sendall(row.data)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass   # refused before all was read
            got = []
            for _ in row.statuses:
                try:
                    got.append(reader.answer()[0])
                except (EOFError, OSError, ssl.SSLError, ValueError, IndexError) as e:
                    return f"answers {got}, then none ({e!r}); expected {row.statuses}"
            if got != row.statuses:
                return f"answers {got}, expected {row.statuses}"
            if not row.statuses:   # the server waits for the rest, or gives up on it: either way, no answer
                if not reader.silent(QUIET):
                    return f"an incomplete request was answered: {reader.buf[:200]!r}"
                return None
            if row.closed is True and not reader.closed_soon(5):
                return "the connection stayed open"
            if row.closed is False:
                # still usable: the next request on it is answered
                sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    status = reader.answer()[0]
                except (EOFError, OSError, ssl.SSLError) as e:
                    return f"the connection was closed ({e!r})"
                if status != 200:
                    return f"the next request on the connection got {status}"
            return None
        finally:
            sock.close()

    def run_raw2(self, row):
        sock = self.tls("h2")
        data, deadline = b"", time.monotonic() + 5
        try:
            try:
                sock.sendall(row.data)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass
            sock.settimeout(1)
            while time.monotonic() < deadline:
                try:
                    piece = sock.recv(65536)
                except (socket.timeout, TimeoutError):
                    if h2_done(h2_frames(data)):
                        break
                    continue
                except (OSError, ssl.SSLError):
                    break
                if not piece:
                    break
                data += piece
                if h2_done(h2_frames(data)):
                    break
        finally:
            sock.close()
        frames = h2_frames(data)
        if row.closed and not data:
            return None    # closed without a frame, which that row allows
        seen = []
        for typ, flags, stream, payload in frames:
            if typ == 7:
                code = int.from_bytes(payload[4:8], "big")
                seen.append(f"GOAWAY({code})")
                if row.goaway and code in row.goaway:
                    return None
            elif typ == 3 and stream == 1:
                code = int.from_bytes(payload[:4], "big")
                seen.append(f"RST_STREAM({code})")
                if row.rst and code in row.rst:
                    return None
            elif typ == 1 and stream == 1:
                status = hpack_status(payload)
                seen.append(f"HEADERS(:status {status})")
                if row.status is not None and status == row.status:
                    body = b"".join(p for t, _, s, p in frames if t == 0 and s == 1)
                    return status_problem(status, body, row.status, row.reason) if row.reason else None
        want = [f"GOAWAY{sorted(row.goaway)}" if row.goaway else "", f"RST_STREAM{sorted(row.rst)}" if row.rst else "",
                f":status {row.status}" if row.status else ""]
        return f"frames {seen or 'none'}; expected one of {' '.join(w for w in want if w)}"

    # ------------------------------------------------------------ the catalogue

    def test_catalogue(self):
        first_page = self.server.request("GET", cat.COLL + "?limit=1").json()
        rows = cat.catalogue(self.server.token, first_page["metadata"]["continue"])
        runners = {cat.Api: self.run_api, cat.Raw1: self.run_raw1, cat.Raw2: self.run_raw2}
        baseline = first = self.store_state()
        failures, counts, differs = [], {}, 0
        t0 = time.monotonic()
        for n, row in enumerate(rows):
            kind = type(row).__name__
            counts[kind] = counts.get(kind, 0) + 1
            differs += row.differs is not None
            try:
                problem = runners[type(row)](row)
            except (OSError, AssertionError) as e:
                problem = f"could not run: {e!r}"
            after, baseline = self.after_row(baseline)
            if problem or after:
                failures.append(f"#{n} [{kind}] {row.what}: {'; '.join(p for p in (problem, after) if p)}")
            if self.server.proc.poll() is not None:
                failures.append("the server is dead: the rows after this one were not run")
                break
        took = time.monotonic() - t0
        print(f"    hostile catalogue: {sum(counts.values())} entries checked ({counts.get('Api', 0)} API requests, "
              f"{counts.get('Raw1', 0)} raw HTTP/1.1, {counts.get('Raw2', 0)} raw HTTP/2) in {took:.1f}s; "
              f"after each the server answered and the store stayed at resourceVersion {first[0]}; "
              f"{differs} answers deliberately differ from kube-apiserver's (see their rows); "
              f"{len(failures)} wrong", flush=True)
        log = self.server.log_text()
        for word in ("AddressSanitizer", "runtime error", "LeakSanitizer", "fatal"):
            if word in log:   # a sanitizer build's report, or the server's own last words
                at = log.index(word)
                failures.append(f"the server log has {word!r}: {log[max(0, at - 200):at + 2000]}")
        self.assertEqual(failures, [], "\n" + "\n".join(failures))


def h2_done(frames):
    """A GOAWAY, an RST_STREAM on stream 1, or the end of stream 1's answer."""
    return any(t == 7 or (t == 3 and s == 1) or (s == 1 and t in (0, 1) and f & 0x1) for t, f, s, _ in frames)
