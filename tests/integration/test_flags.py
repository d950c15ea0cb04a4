"""The command line (issue 2, item 2): --help lists the flags and exits 0, an
unknown flag or a bad --token-auth-file stops the server with a message,
--cert-dir makes a self-signed serving certificate once and reuses it,
--secure-port and --bind-address decide where it listens, and each request
leaves one log line with verb, URI, user, code and latency."""

import http.client
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import harness
from harness import free_port

FLAGS = ("--secure-port", "--bind-address", "--tls-cert-file", "--tls-private-key-file", "--tls-min-version",
         "--tls-cipher-suites",
         "--cert-dir", "--storage-path", "--token-auth-file", "--cluster-domain", "--help",
         "--reconcile", "--kubeconfig", "--gateway-image", "--reconcile-workers", "--reconcile-resync-period")


def run_binary(*args, cwd=None, timeout=10):
    return subprocess.run([harness.BINARY, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class Process:
    """A langop-apiserver started with exactly the flags a test gives it."""

    def __init__(self, workdir, flags, host="127.0.0.1", port=None):
        self.dir = Path(workdir)
        self.host = host
        self.port = port or free_port()
        self.log_path = self.dir / f"server-{self.port}.log"
        self.flags = [f"--secure-port={self.port}", *flags]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([harness.BINARY, *self.flags], cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def log_tail(self, n=15):
        return "\n".join(self.log_text().splitlines()[-n:])

    def context(self, cafile):
        ctx = ssl.create_default_context(cafile=str(cafile))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def get(self, path, cafile, token=None, host=None, timeout=5):
        c = http.client.HTTPSConnection(host or self.host, self.port, timeout=timeout,
                                        context=self.context(cafile))
        try:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def wait_ready(self, cafile, timeout=20):
        """Wait for /readyz; the certificate file may appear only once the server runs."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if Path(cafile).exists():
                try:
                    if self.get("/readyz", cafile, timeout=2)[0] == 200:
                        return
                except (OSError, http.client.HTTPException) as e:
                    last = e
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout}s ({last}):\n{self.log_tail()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class FlagsTest(unittest.TestCase):

    def setUp(self):
        if not os.access(harness.BINARY, os.X_OK):
            self.fail(f"server binary {harness.BINARY} is missing")
        self.tmp = Path(tempfile.mkdtemp(prefix="langop-flags-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.token = secrets.token_hex(16)
        self.tokens = self.tmp / "tokens.csv"
        self.tokens.write_text(f'{self.token},flag-admin,flag-uid,"system:masters"\n')

    def start(self, *flags, host="127.0.0.1"):
        p = Process(self.tmp, [f"--storage-path={self.tmp / 'langop.db'}",
                               f"--token-auth-file={self.tokens}", *flags], host=host)
        self.addCleanup(p.stop)
        return p

    def test_help_lists_the_flags_and_exits_0(self):
        for arg in ("--help", "-h"):
            with self.subTest(arg=arg):
                r = run_binary(arg)
                self.assertEqual(r.returncode, 0, r)
                for flag in FLAGS:
                    self.assertIn(flag, r.stdout, f"{flag} missing from --help:\n{r.stdout}")
                self.assertIn("Usage: langop-apiserver", r.stdout)

    def test_unknown_flag_exits_non_zero_with_a_message(self):
        r = run_binary("--no-such-flag", cwd=self.tmp)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("--no-such-flag", r.stderr, r)
        self.assertEqual(r.stdout, "", r)              # usage errors belong on stderr
        self.assertFalse((self.tmp / "langop.db").exists(), "it must not start serving")

    def test_bad_token_auth_file_exits_non_zero_with_a_message(self):
        missing = self.tmp / "missing.csv"
        malformed = self.tmp / "malformed.csv"
        malformed.write_text("only-a-token\n")
        for path, words in ((missing, ("cannot open", str(missing))), (malformed, ("line 1",))):
            with self.subTest(file=path.name):
                r = run_binary(f"--token-auth-file={path}", f"--storage-path={self.tmp / 'x.db'}",
                               f"--cert-dir={self.tmp / 'certs'}", f"--secure-port={free_port()}",
                               "--bind-address=127.0.0.1", cwd=self.tmp)
                self.assertNotEqual(r.returncode, 0, r)
                self.assertIn("token", r.stderr.lower(), r)
                for w in words:
                    self.assertIn(w, r.stderr, r)

    def test_reconcile_flags_are_checked_before_serving(self):
        common = (f"--token-auth-file={self.tokens}", f"--storage-path={self.tmp / 'r.db'}",
                  f"--cert-dir={self.tmp / 'certs'}", f"--secure-port={free_port()}", "--bind-address=127.0.0.1")
        for args, words in ((("--reconcile=sometimes",), ("--reconcile", "auto, on or off")),
                            (("--reconcile-workers=0",), ("--reconcile-workers",)),
                            (("--reconcile-resync-period=soon",), ("reconcile-resync-period",)),
                            # asked for, with no cluster to reconcile: it says so instead of serving without
                            (("--reconcile=on",), ("reconcile",)),
                            (("--reconcile=on", f"--kubeconfig={self.tmp / 'none.yaml'}"), ("none.yaml",))):
            with self.subTest(args=args):
                env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
                r = subprocess.run([harness.BINARY, *common, *args], capture_output=True, text=True,
                                   cwd=self.tmp, timeout=10, stdin=subprocess.DEVNULL, env=env)
                self.assertNotEqual(r.returncode, 0, r)
                for w in words:
                    self.assertIn(w, r.stderr, r)
                self.assertNotIn("Serving securely", r.stderr, r)

    def test_reconcile_auto_without_a_cluster_serves_and_says_it_does_not_reconcile(self):
        p = self.start(f"--cert-dir={self.tmp / 'certs'}")
        p.wait_ready(self.tmp / "certs" / "apiserver.crt")
        self.assertIn("Not reconciling the cluster (--reconcile=auto)", p.log_text())

    def test_cert_dir_generates_a_certificate_once_and_reuses_it(self):
        certs = self.tmp / "certs"
        crt, key = certs / "apiserver.crt", certs / "apiserver.key"
        p = self.start(f"--cert-dir={certs}", "--bind-address=127.0.0.1")
        p.wait_ready(crt)
        self.assertTrue(crt.is_file() and key.is_file(), list(certs.iterdir()))
        self.assertEqual(key.stat().st_mode & 0o077, 0, "the private key must not be readable by others")
        first = crt.read_bytes()
        self.assertIn(b"BEGIN CERTIFICATE", first)

        # verified against the generated certificate, by IP and by name
        self.assertEqual(p.get("/healthz", crt), (200, b"ok"))
        self.assertEqual(p.get("/healthz", crt, host="localhost")[0], 200)
        status, body = p.get(f"{harness.API}/languageclusters", crt, token=self.token)
        self.assertEqual(status, 200, body)
        # the peer certificate is the generated file
        raw = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        with p.context(crt).wrap_socket(raw, server_hostname="127.0.0.1") as s:
            peer = s.getpeercert(binary_form=True)
        self.assertEqual(ssl.DER_cert_to_PEM_cert(peer).strip(), first.decode().strip())
        p.stop()

        # a second start reuses the same files
        key_bytes = key.read_bytes()
        p2 = self.start(f"--cert-dir={certs}", "--bind-address=127.0.0.1")
        p2.wait_ready(crt)
        self.assertEqual(crt.read_bytes(), first)
        self.assertEqual(key.read_bytes(), key_bytes)
        self.assertEqual(p2.get("/healthz", crt), (200, b"ok"))

    def test_secure_port_and_bind_address_are_honoured(self):
        certs = self.tmp / "certs"
        crt = certs / "apiserver.crt"
        # 127.0.0.2 is loopback too on Linux, but a different address from 127.0.0.1
        p = self.start(f"--cert-dir={certs}", "--bind-address=127.0.0.2", host="127.0.0.2")
        deadline = time.monotonic() + 20
        while not crt.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        ctx = p.context(crt)
        ctx.check_hostname = False          # the generated certificate names 127.0.0.1, not .2
        last = None
        while time.monotonic() < deadline:
            self.assertIsNone(p.proc.poll(), p.log_tail())
            try:
                c = http.client.HTTPSConnection("127.0.0.2", p.port, timeout=2, context=ctx)
                c.request("GET", "/healthz")
                r = c.getresponse()
                self.assertEqual((r.status, r.read()), (200, b"ok"))
                c.close()
                break
            except (OSError, http.client.HTTPException) as e:
                last = e
                time.sleep(0.1)
        else:
            self.fail(f"nothing served on 127.0.0.2:{p.port} ({last}):\n{p.log_tail()}")
        # the same port on another address is not ours
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", p.port), timeout=2).close()

    def test_request_log_line(self):
        certs = self.tmp / "certs"
        crt = certs / "apiserver.crt"
        p = self.start(f"--cert-dir={certs}", "--bind-address=127.0.0.1")
        p.wait_ready(crt)
        path = f"{harness.API}/namespaces/default/languagemodels/log-probe-{secrets.token_hex(4)}"
        self.assertEqual(p.get(path, crt, token=self.token)[0], 404)
        self.assertEqual(p.get(path + "?anon=1", crt)[0], 401)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = [l for l in p.log_text().splitlines() if path in l]
            if len(lines) >= 2:
                break
            time.sleep(0.1)
        self.assertEqual(len(lines), 2, p.log_tail())
        authed, anon = lines
        line_re = re.compile(r'verb="(?P<verb>[A-Z]+)" URI="(?P<uri>[^"]*)" user="(?P<user>[^"]*)" '
                             r'code=(?P<code>[0-9]{3}) latency="(?P<lat>[0-9.]+(ns|us|µs|ms|s))"')
        m = line_re.search(authed)
        self.assertIsNotNone(m, authed)
        self.assertEqual((m["verb"], m["uri"], m["user"], m["code"]), ("GET", path, "flag-admin", "404"))
        m = line_re.search(anon)
        self.assertIsNotNone(m, anon)
        self.assertEqual((m["uri"], m["code"]), (path + "?anon=1", "401"))
        self.assertNotEqual(m["user"], "flag-admin")
        self.assertNotIn(self.token, p.log_text(), "the bearer token must never be logged")
