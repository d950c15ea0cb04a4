"""TLS (issue 11, item 4): TLS 1.0 and 1.1 are refused; TLS 1.2 only with ECDHE
and AES-GCM or CHACHA20-POLY1305 (CBC and RSA key exchange refused), TLS 1.3
as OpenSSL has it; HTTP/2 by ALPN; --tls-min-version and --tls-cipher-suites;
and the serving certificate and key reloaded when their files change, without
a restart, while a broken replacement keeps the old pair served.

Each refusal is checked twice: a permissive local TLS server first accepts the
same client settings (so the client really offers that version or cipher),
then the apiserver must refuse them."""

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import unittest

import harness
from harness import GEN_CERTS, FlagServerTestCase, ServerTestCase

RELOAD_WAIT = 10.0      # the server checks its files every 2 s
KEEP_WAIT = 5.0         # two and a half checks: long enough for a wrong reload to happen


def client_context(ca=None, min_version=None, max_version=None, ciphers=None, alpn=None):
    """A client context; with ca it verifies the server (127.0.0.1 is an IP SAN)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=str(ca))
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx


def handshake(ctx, port, timeout=5):
    """Connects and shakes hands; returns (version, cipher, alpn, DER certificate) or raises."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.version(), s.cipher()[0], s.selected_alpn_protocol(), s.getpeercert(binary_form=True)


def fingerprint(der):
    return hashlib.sha256(der).hexdigest()


def file_fingerprint(pem_path):
    return fingerprint(ssl.PEM_cert_to_DER_cert(open(pem_path).read()))


def permissive_handshake(ctx, cert, key):
    """Whether ctx completes a handshake with a local server that allows every
    version and cipher OpenSSL has: proof that the client offers what it should."""
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    srv_ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    srv_ctx.load_cert_chain(str(cert), str(key))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        listener.settimeout(5)
        try:
            conn, _ = listener.accept()
            with srv_ctx.wrap_socket(conn, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        handshake(ctx, port)
        return True
    except (OSError, ssl.SSLError):
        return False
    finally:
        t.join(6)
        listener.close()


class TlsCase:
    """Mixin: assertions on handshakes with self.server."""

    def assertRefused(self, ctx, what):
        s = self.server
        self.assertTrue(permissive_handshake(ctx, s.certs / "apiserver.crt", s.certs / "apiserver.key"),
                        f"{what}: this client cannot shake hands even with a permissive server")
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError), msg=f"{what} was accepted") as cm:
            handshake(ctx, s.port)
        # a refusal by the server, not a client that could not even say hello
        self.assertNotIn("NO_PROTOCOLS_AVAILABLE", str(cm.exception))
        self.assertNotIn("NO_CIPHERS_AVAILABLE", str(cm.exception))

    def assertAccepted(self, ctx, version, cipher=None):
        v, c, _, _ = handshake(ctx, self.server.port)
        self.assertEqual(v, version)
        if cipher is not None:
            self.assertEqual(c, cipher)

    def readyz_over(self, ctx):
        import http.client
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, timeout=10, context=ctx)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status
        finally:
            conn.close()


class TlsPolicyTest(TlsCase, ServerTestCase):
    """The default policy, with the EC (ECDSA) certificate of gen-certs.sh."""

    def test_tls10_and_tls11_refused(self):
        for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with self.subTest(version=v.name):
                ctx = client_context(min_version=v, max_version=v, ciphers="DEFAULT:@SECLEVEL=0")
                self.assertRefused(ctx, v.name)

    def test_tls12_cbc_refused(self):
        for cipher in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
                       "ECDHE-ECDSA-AES256-SHA384"):
            with self.subTest(cipher=cipher):
                ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2, ciphers=cipher + ":@SECLEVEL=0")
                self.assertRefused(ctx, cipher)

    def test_tls12_ecdhe_aead_accepted(self):
        for cipher in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                       "ECDHE-ECDSA-CHACHA20-POLY1305"):
            with self.subTest(cipher=cipher):
                ctx = client_context(ca=self.server.ca, max_version=ssl.TLSVersion.TLSv1_2, ciphers=cipher)
                self.assertAccepted(ctx, "TLSv1.2", cipher)
                self.assertEqual(self.readyz_over(ctx), 200)

    def test_tls13_works(self):
        ctx = client_context(ca=self.server.ca, min_version=ssl.TLSVersion.TLSv1_3)
        self.assertAccepted(ctx, "TLSv1.3")
        self.assertEqual(self.readyz_over(ctx), 200)

    def test_alpn_h2_and_http11(self):
        for offer, want in ((["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")):
            with self.subTest(offer=offer):
                _, _, alpn, _ = handshake(client_context(ca=self.server.ca, alpn=offer), self.server.port)
                self.assertEqual(alpn, want)


class TlsRsaPolicyTest(TlsCase, ServerTestCase):
    """An RSA serving certificate: RSA key exchange is possible, and refused."""

    @classmethod
    def setUpClass(cls):
        import tempfile
        from pathlib import Path
        cls.tmp = Path(tempfile.mkdtemp(prefix="langop-it-"))
        cls.kube_cache = cls.tmp / "kube-cache"
        cls._dyn = None
        cls.server = harness.Server(cls.tmp)
        certs = cls.server.certs
        subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                        "-keyout", str(certs / "apiserver.key"), "-out", str(certs / "rsa.csr")],
                       check=True, capture_output=True)
        (certs / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                       "extendedKeyUsage=serverAuth\n")
        subprocess.run(["openssl", "x509", "-req", "-in", str(certs / "rsa.csr"), "-CA", str(certs / "ca.crt"),
                        "-CAkey", str(certs / "ca.key"), "-CAcreateserial", "-days", "2",
                        "-extfile", str(certs / "san.ext"), "-out", str(certs / "apiserver.crt")],
                       check=True, capture_output=True)
        try:
            cls.server.start()
        except Exception:
            cls.server.stop()
            raise

    def test_rsa_key_exchange_and_cbc_refused(self):
        for cipher in ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "ECDHE-RSA-AES128-SHA"):
            with self.subTest(cipher=cipher):
                ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2, ciphers=cipher + ":@SECLEVEL=0")
                self.assertRefused(ctx, cipher)

    def test_ecdhe_rsa_aead_accepted(self):
        for cipher in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"):
            with self.subTest(cipher=cipher):
                ctx = client_context(ca=self.server.ca, max_version=ssl.TLSVersion.TLSv1_2, ciphers=cipher)
                self.assertAccepted(ctx, "TLSv1.2", cipher)
                self.assertEqual(self.readyz_over(ctx), 200)


class TlsMinVersionFlagTest(TlsCase, FlagServerTestCase):
    server_flags = ("--tls-min-version=VersionTLS13",)

    def test_tls12_refused_tls13_accepted(self):
        ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertRefused(ctx, "TLS 1.2 under --tls-min-version=VersionTLS13")
        self.assertAccepted(client_context(ca=self.server.ca), "TLSv1.3")


class TlsCipherSuitesFlagTest(TlsCase, FlagServerTestCase):
    server_flags = ("--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",)

    def test_only_the_named_suite(self):
        ctx = client_context(max_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertRefused(ctx, "a suite not in --tls-cipher-suites")
        ctx = client_context(ca=self.server.ca, max_version=ssl.TLSVersion.TLSv1_2)
        self.assertAccepted(ctx, "TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305")
        # TLS 1.3 suites stay at OpenSSL's defaults
        self.assertAccepted(client_context(ca=self.server.ca), "TLSv1.3")


class TlsBadFlagsTest(unittest.TestCase):
    def test_bad_values_stop_the_server(self):
        for flag, message in (("--tls-min-version=VersionTLS11", "VersionTLS12 or VersionTLS13"),
                              ("--tls-min-version=tls12", "VersionTLS12 or VersionTLS13"),
                              ("--tls-cipher-suites=TLS_NO_SUCH_SUITE", "unknown cipher suite TLS_NO_SUCH_SUITE")):
            with self.subTest(flag=flag):
                r = subprocess.run([harness.BINARY, flag, "--secure-port=1"], capture_output=True, text=True,
                                   timeout=10, stdin=subprocess.DEVNULL)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(message, r.stderr)


class TlsReloadTest(TlsCase, ServerTestCase):
    """Certificate rotation: new files, same process."""

    def served_fingerprint(self):
        return fingerprint(handshake(client_context(ca=self.server.ca), self.server.port)[3])

    def new_pair(self, name):
        """A new serving certificate and key from the same CA, in a directory of their own."""
        d = self.tmp / name
        d.mkdir()
        for f in ("ca.crt", "ca.key"):
            shutil.copy(self.server.certs / f, d / f)
        subprocess.run(["bash", str(GEN_CERTS), str(d)], check=True, capture_output=True)
        return d / "apiserver.crt", d / "apiserver.key"

    def install(self, cert_bytes, key_bytes):
        """Moves a pair over the served files atomically, key first, as a rotation tool would."""
        certs = self.server.certs
        for data, name in ((key_bytes, "apiserver.key"), (cert_bytes, "apiserver.crt")):
            tmp = certs / (name + ".new")
            tmp.write_bytes(data)
            os.replace(tmp, certs / name)

    def wait_served(self, want, timeout=RELOAD_WAIT):
        deadline = time.monotonic() + timeout
        while True:
            got = self.served_fingerprint()
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def assertStillServing(self, want, pid, why):
        time.sleep(KEEP_WAIT)
        self.assertIsNone(self.server.proc.poll(), f"server died after {why}")
        self.assertEqual(self.server.proc.pid, pid)
        self.assertEqual(self.served_fingerprint(), want, f"certificate changed after {why}")
        self.assertEqual(self.server.request("GET", "/readyz").status, 200)

    def test_rotation_and_broken_replacements(self):
        pid = self.server.proc.pid
        old = file_fingerprint(self.server.certs / "apiserver.crt")
        self.assertEqual(self.served_fingerprint(), old)
        kept = self.server.connection()           # an open connection across the rotation
        kept.request("GET", "/readyz")
        self.assertEqual(kept.getresponse().read(), b"ok")
        kept_fp = fingerprint(kept.sock.getpeercert(binary_form=True))

        # a good new pair: served to new connections, the process is the same
        cert, key = self.new_pair("second")
        new = file_fingerprint(cert)
        self.assertNotEqual(new, old)
        self.install(cert.read_bytes(), key.read_bytes())
        self.assertEqual(self.wait_served(new), new, "the new certificate is not served")
        self.assertEqual(self.server.proc.pid, pid)
        self.assertEqual(self.server.request("GET", "/readyz").status, 200)
        _, _, alpn, _ = handshake(client_context(ca=self.server.ca, alpn=["h2", "http/1.1"]), self.server.port)
        self.assertEqual(alpn, "h2", "ALPN after the reload")
        # the open connection goes on, with the certificate it started with
        kept.request("GET", "/readyz")
        self.assertEqual(kept.getresponse().read(), b"ok")
        self.assertEqual(fingerprint(kept.sock.getpeercert(binary_form=True)), kept_fp)
        kept.close()

        # garbage in place of the certificate: the last good one stays
        good_key = key.read_bytes()
        self.install(b"this is no certificate\n", good_key)
        self.assertStillServing(new, pid, "a garbage certificate")

        # a valid certificate whose key does not match: the last good one stays
        third_cert, third_key = self.new_pair("third")
        self.install(third_cert.read_bytes(), good_key)
        self.assertStillServing(new, pid, "a certificate with a key that does not match")
        self.assertIn("not reloaded", self.server.log_text())

        # and the check goes on: a good pair after the broken ones is served
        want = file_fingerprint(third_cert)
        self.install(third_cert.read_bytes(), third_key.read_bytes())
        self.assertEqual(self.wait_served(want), want, "a good pair after broken ones is not served")
        self.assertEqual(self.server.proc.pid, pid)


if __name__ == "__main__":
    unittest.main()
