#!/usr/bin/python3
"""A small HTTPS server that answers as kube-apiserver would, for test_kubeclient.

Usage: kube_fake_server.py DIR
Makes, in DIR, with the openssl CLI: a CA (ca.crt), a server certificate
signed by it for 127.0.0.1 and localhost, a client certificate signed by
it (CN=kc-client), and a second, unrelated CA (other-ca.crt). Then serves
HTTPS on 127.0.0.1 (an ephemeral port), asking for an optional client
certificate signed by the CA; and the same on a second port with a
certificate of that CA for another name (elsewhere.invalid), to check host
name verification. Prints one line on stdout: "PORT WRONG_NAME_PORT".

Paths (the query picks the behaviour; key= names a call counter):
  /echo                  200 {method, path, contentType, body, authorization, clientCN}
  /status/CODE           a Status with that code (reason from the code)
  /flaky/CODE?key=K&n=N  the first N calls answer CODE (429 with Retry-After: 1),
                         then 200 {calls}
  /count?key=K           200 {calls}: how many requests key K has had
  /slow?ms=M             waits M ms, then 200
  /notjson               200 with a body that is not JSON
  /watch?...             a chunked watch stream; resourceVersion picks it:
                           gone    -> 410 Status
                           expired -> 200, one ADDED then an ERROR event with code 410
                           hang    -> one ADDED then silence until the client leaves
                           other   -> 3 events and a bookmark split across chunks, end
"""

import json
import os
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
           410: "Expired", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable"}
COUNTS = {}
LOCK = threading.Lock()


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=" + name,
            "-keyout", name + ".key", "-out", name + ".crt", cwd=d)


def make_leaf(d, name, cn, ca, ext):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=" + cn, "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext + "\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", "2", "-extfile", name + ".ext",
            "-out", name + ".crt", cwd=d)


def make_certs(d):
    if os.path.exists(os.path.join(d, "client.crt")):
        return
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_leaf(d, "server", "localhost", "ca",
              "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
    make_leaf(d, "client", "kc-client", "ca", "extendedKeyUsage=clientAuth")
    make_leaf(d, "wrongname", "elsewhere.invalid", "ca",
              "subjectAltName=DNS:elsewhere.invalid\nextendedKeyUsage=serverAuth")


def status(code, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": REASONS.get(code, "Unknown"), "code": code,
            "details": {"name": "x", "kind": "things"}}


def count(key):
    with LOCK:
        COUNTS[key] = COUNTS.get(key, 0) + 1
        return COUNTS[key]


def event(kind, rv, name):
    obj = {"kind": "Thing", "apiVersion": "v1",
           "metadata": {"name": name, "resourceVersion": str(rv)}}
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, code, obj, headers=()):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data, pause=0.05):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
        time.sleep(pause)

    def client_cn(self):
        cert = self.connection.getpeercert()
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    def handle_any(self):
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else None
        parts = url.path.strip("/").split("/")
        key = q.get("key")
        if key:
            n = count(key)
        if parts[0] == "echo":
            self.answer(200, {"kind": "Echo", "method": self.command, "path": self.path,
                              "contentType": self.headers.get("Content-Type"),
                              "body": body,
                              "authorization": self.headers.get("Authorization"),
                              "clientCN": self.client_cn()})
        elif parts[0] == "status":
            code = int(parts[1])
            self.answer(code, status(code, "thing x: fake %d" % code))
        elif parts[0] == "flaky":
            code = int(parts[1])
            if n <= int(q.get("n", "1")):
                hdrs = [("Retry-After", "1")] if code == 429 else []
                self.answer(code, status(code, "try again"), hdrs)
            else:
                self.answer(200, {"kind": "Calls", "calls": n})
        elif parts[0] == "count":
            with LOCK:
                self.answer(200, {"kind": "Calls", "calls": COUNTS.get(q.get("of"), 0)})
        elif parts[0] == "slow":
            time.sleep(int(q.get("ms", "1000")) / 1000)
            self.answer(200, {"kind": "Slow"})
        elif parts[0] == "notjson":
            self.answer(200, b"<html>no</html>")
        elif parts[0] == "watch":
            self.watch(q)
        else:
            self.answer(404, status(404, "no such path"))

    def watch(self, q):
        rv = q.get("resourceVersion", "")
        if q.get("watch") != "1" or q.get("allowWatchBookmarks") != "true":
            self.answer(400, status(400, "not a watch request: " + self.path))
            return
        if rv == "gone":
            self.answer(410, status(410, "too old resource version: 1 (5)"))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if rv == "expired":
            self.chunk(event("ADDED", 11, "a"))
            err = {"type": "ERROR", "object": status(410, "too old resource version")}
            self.chunk(json.dumps(err).encode() + b"\n")
        elif rv == "hang":
            self.chunk(event("ADDED", 11, "a"))
            try:
                for _ in range(600):
                    time.sleep(0.1)
                    self.wfile.write(b"")
            except OSError:
                pass
            return
        else:
            e1, e2, e3 = event("ADDED", 11, "a"), event("MODIFIED", 12, "a"), \
                event("DELETED", 13, "b")
            bm = json.dumps({"type": "BOOKMARK", "object": {
                "kind": "Thing", "metadata": {"resourceVersion": "20"}}}).encode() + b"\n"
            # e1 cut in three, e2 and most of e3 together, the rest of e3 with the bookmark
            self.chunk(e1[:7])
            self.chunk(e1[7:30])
            self.chunk(e1[30:])
            self.chunk(e2 + e3[:-5])
            self.chunk(e3[-5:] + bm)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that left early (timeouts, stop, refused TLS) is expected


def listen(d, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, name + ".crt"), os.path.join(d, name + ".key"))
    ctx.load_verify_locations(os.path.join(d, "ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    srv = Server(("127.0.0.1", 0), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    return srv


def main():
    d = sys.argv[1]
    make_certs(d)
    srv, wrong = listen(d, "server"), listen(d, "wrongname")
    threading.Thread(target=wrong.serve_forever, daemon=True).start()
    print(srv.server_address[1], wrong.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
