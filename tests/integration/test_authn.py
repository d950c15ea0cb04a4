"""Authentication in kube's order: front proxy (requestheader CA, allowed
names, X-Remote-* headers), client certificates, bearer tokens (static file,
then TokenReview against the kube-apiserver stand-in, cached), anonymous.

Who the server thinks the caller is shows in its request log line:
user="..." groups="..." extra="{...}". Certificates are made here, with the
stand-in's make_ca / make_client_cert."""

import http.client
import json
import re
import shutil
import ssl
import sys
import tempfile
import time
import unittest
import os
from pathlib import Path

import harness
from harness import API, REPO, Server, ServerTestCase

sys.path.insert(0, str(REPO / "tests" / "standin"))
from kube_standin import make_ca, make_client_cert, start_standin  # noqa: E402

TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
LINE_RE = re.compile(r'URI="(?P<uri>[^"]*)" user="(?P<user>(?:[^"\\]|\\.)*)" code=(?P<code>[0-9]{3}) .*'
                     r'groups="(?P<groups>(?:[^"\\]|\\.)*)"(?: extra="(?P<extra>(?:[^"\\]|\\.)*)")?')


class AuthnCase(ServerTestCase):
    """A server started with flags that name files made in setUpClass
    (prepare() returns the flags); helpers for requests with a client
    certificate, repeated headers, and reading the log line of a request."""

    @classmethod
    def prepare(cls):
        return []

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="langop-it-authn-"))
        cls.kube_cache = cls.tmp / "kube-cache"
        cls._dyn = None
        cls.standin = None
        cls.pki = cls.tmp / "pki"
        cls.server = None
        try:
            flags = cls.prepare()
            cls.server = Server(cls.tmp, flags)
            with open(cls.tmp / "tokens.csv", "a") as f:
                f.write('alice-token,alice,alice-uid,"devs"\n')
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

    def send(self, path, headers=(), cert=None, token=None, method="GET"):
        """One request; headers is a list of (name, value), names may repeat."""
        ctx = ssl.create_default_context(cafile=str(self.server.ca))
        if cert:
            ctx.load_cert_chain(*cert)
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, timeout=30, context=ctx)
        try:
            conn.putrequest(method, path)
            conn.putheader("Accept", "application/json")
            if token:
                conn.putheader("Authorization", f"Bearer {token}")
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders()
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def unique_path(self):
        return f"{API}/namespaces/default/languagemodels/authn-{time.monotonic_ns()}"

    def logged(self, path):
        """user, groups (list), extra (dict or None) and code of the request to path, from the log."""
        deadline = time.monotonic() + 5
        while True:
            lines = [l for l in self.server.log_text().splitlines() if f'URI="{path}"' in l]
            if lines or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), 1, self.server.log_tail())
        m = LINE_RE.search(lines[0])
        self.assertIsNotNone(m, lines[0])
        unq = lambda s: re.sub(r'\\(.)', r'\1', s)
        groups = [g for g in unq(m["groups"]).split(",") if g]
        extra = json.loads(unq(m["extra"])) if m["extra"] else None
        return unq(m["user"]), groups, extra, int(m["code"])

    def who(self, **kw):
        """Sends a request to a fresh path and returns (status, user, groups, extra) as logged."""
        path = self.unique_path()
        status, _ = self.send(path, **kw)
        user, groups, extra, code = self.logged(path)
        self.assertEqual(code, status)
        return status, user, groups, extra


class FrontProxyAndClientCertTest(AuthnCase):
    """--requestheader-client-ca-file with allowed names, --client-ca-file."""

    @classmethod
    def prepare(cls):
        p = cls.pki
        make_ca(p, "rh-ca")
        make_ca(p, "client-ca")
        make_ca(p, "rogue-ca")
        cls.proxy = make_client_cert(p, "rh-ca", "proxy", "front-proxy-client")
        cls.other_proxy = make_client_cert(p, "rh-ca", "other-proxy", "not-the-proxy")
        cls.rogue_proxy = make_client_cert(p, "rogue-ca", "rogue-proxy", "front-proxy-client")
        cls.carol = make_client_cert(p, "client-ca", "carol", "carol", orgs=("devs", "ops"))
        cls.rogue_carol = make_client_cert(p, "rogue-ca", "rogue-carol", "carol", orgs=("system:masters",))
        return [f"--requestheader-client-ca-file={p / 'rh-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client,aggregator",
                f"--client-ca-file={p / 'client-ca.crt'}"]

    IDENTITY = [("X-Remote-User", "bob"), ("X-Remote-Uid", "bob-uid"), ("X-Remote-Group", "g1"),
                ("X-Remote-Group", "g2"), ("X-Remote-Extra-Scopes", "read"), ("X-Remote-Extra-Scopes", "write"),
                ("X-Remote-Extra-Authentication.kubernetes.io%2fpod-Name", "pod-1")]

    def test_front_proxy_identity_from_headers(self):
        status, user, groups, extra = self.who(headers=self.IDENTITY, cert=self.proxy)
        self.assertEqual(status, 404)
        self.assertEqual(user, "bob")
        self.assertEqual(groups, ["g1", "g2", "system:authenticated"])
        self.assertEqual(extra, {"scopes": ["read", "write"], "authentication.kubernetes.io/pod-name": ["pod-1"]})

    def test_remote_user_without_certificate_is_ignored(self):
        # with a token: the token's user, none of the header's claims
        status, user, groups, extra = self.who(headers=self.IDENTITY + [("X-Remote-User", "admin")],
                                               token="alice-token")
        self.assertEqual((status, user), (404, "alice"))
        self.assertEqual(groups, ["devs", "system:authenticated"])
        self.assertIsNone(extra)
        # without credentials: 401, the header is nobody
        status, user, _, _ = self.who(headers=[("X-Remote-User", "admin"), ("X-Remote-Group", "system:masters")])
        self.assertEqual(status, 401)
        self.assertNotEqual(user, "admin")

    def test_front_proxy_from_another_ca_is_not_trusted(self):
        status, user, _, _ = self.who(headers=self.IDENTITY, cert=self.rogue_proxy)
        self.assertEqual(status, 401)
        self.assertNotEqual(user, "bob")
        # nor does a token make the headers believable: the token's user, not bob
        status, user, _, extra = self.who(headers=self.IDENTITY, cert=self.rogue_proxy, token="alice-token")
        self.assertEqual((status, user, extra), (404, "alice", None))

    def test_front_proxy_name_not_allowed(self):
        status, user, _, _ = self.who(headers=self.IDENTITY, cert=self.other_proxy)
        self.assertEqual(status, 401)
        self.assertNotEqual(user, "bob")

    def test_client_certificate_user(self):
        status, user, groups, extra = self.who(cert=self.carol)
        self.assertEqual((status, user, extra), (404, "carol", None))
        self.assertEqual(groups, ["devs", "ops", "system:authenticated"])

    def test_client_certificate_cannot_assert_headers(self):
        # a user certificate is no front proxy: X-Remote-* stay ignored
        status, user, groups, _ = self.who(cert=self.carol, headers=self.IDENTITY)
        self.assertEqual((status, user), (404, "carol"))
        self.assertNotIn("g1", groups)

    def test_client_certificate_from_unknown_ca(self):
        status, user, _, _ = self.who(cert=self.rogue_carol)
        self.assertEqual(status, 401)
        self.assertNotEqual(user, "carol")

    def test_front_proxy_certificate_is_not_a_user(self):
        # verified and allowed, but no user header: its CN is not a user (not signed by the client CA)
        status, user, _, _ = self.who(cert=self.proxy)
        self.assertEqual(status, 401)
        self.assertNotEqual(user, "front-proxy-client")

    def test_health_with_an_untrusted_certificate(self):
        status, _ = self.send("/readyz", cert=self.rogue_proxy, headers=[("X-Remote-User", "bob")])
        self.assertEqual(status, 200)

    def test_kubectl_with_client_certificate(self):
        """A real client: kubectl with a client certificate in its kubeconfig."""
        import base64
        import yaml
        cfg = yaml.safe_load(self.server.kubeconfig.read_text())
        user = cfg["users"][0]["user"]
        user.pop("token")
        user["client-certificate-data"] = base64.b64encode(Path(self.carol[0]).read_bytes()).decode()
        user["client-key-data"] = base64.b64encode(Path(self.carol[1]).read_bytes()).decode()
        kc = self.tmp / "kubeconfig-carol"
        kc.write_text(yaml.safe_dump(cfg))
        r = self.kubectl(f"--kubeconfig={kc}", "get", "languageclusters", "-o", "name")
        self.assertEqual(r.rc, 0, r)
        self.assertIn('user="carol"', self.server.log_text())


class TokenReviewTest(AuthnCase):
    """Bearer tokens the token file does not know go to kube-apiserver (the
    stand-in) as TokenReviews, cached for --authentication-token-webhook-cache-ttl."""

    TTL = 2

    @classmethod
    def prepare(cls):
        cls.standin, paths = start_standin(cls.tmp / "standin")
        st = cls.standin
        st.set_token("tr-dave", "dave", uid="dave-uid", groups=["reviewers"],
                     extra={"scopes": ["a", "b"]}, audiences=["langop"])
        for name in ("tr-cache", "tr-error", "tr-deny-later"):
            st.set_token(name, name + "-user", audiences=["langop"])
        st.set_token("tr-elsewhere", "eve", audiences=["elsewhere"])
        return [f"--authentication-kubeconfig={paths['kubeconfig']}",
                f"--authentication-token-webhook-cache-ttl={cls.TTL}s", "--api-audiences=langop"]

    def reviews(self):
        return self.standin.calls_to(TOKENREVIEWS, "POST")

    def test_review_allows(self):
        status, user, groups, extra = self.who(token="tr-dave")
        self.assertEqual((status, user), (404, "dave"))
        self.assertEqual(groups, ["reviewers", "system:authenticated"])
        self.assertEqual(extra, {"scopes": ["a", "b"]})

    def test_review_denies(self):
        status, user, _, _ = self.who(token="no-such-token")
        self.assertEqual(status, 401)
        self.assertEqual(user, "")

    def test_wrong_audience_is_denied(self):
        self.assertEqual(self.who(token="tr-elsewhere")[0], 401)

    def test_review_error_is_401_and_not_cached(self):
        before = self.reviews()
        self.standin.add_fault("500", path=TOKENREVIEWS, method="POST")
        self.assertEqual(self.send(self.unique_path(), token="tr-error")[0], 401)
        self.assertEqual(self.send("/readyz")[0], 200, "the server stays up")
        # the error was not cached: the next request asks again, and gets in
        self.assertEqual(self.send(self.unique_path(), token="tr-error")[0], 404)
        self.assertEqual(self.reviews(), before + 2)

    def test_answers_are_cached_for_the_ttl(self):
        before = self.reviews()
        for _ in range(3):
            self.assertEqual(self.send(self.unique_path(), token="tr-cache")[0], 404)
        for _ in range(3):
            self.assertEqual(self.send(self.unique_path(), token="never-valid")[0], 401)
        self.assertEqual(self.reviews(), before + 2, "one review per token within the TTL")
        time.sleep(self.TTL + 0.5)
        self.assertEqual(self.send(self.unique_path(), token="tr-cache")[0], 404)
        self.assertEqual(self.reviews(), before + 3, "asked again after the TTL")

    def test_cached_allow_outlives_revocation_only_for_the_ttl(self):
        self.assertEqual(self.send(self.unique_path(), token="tr-deny-later")[0], 404)
        del self.standin.tokens["tr-deny-later"]
        self.assertEqual(self.send(self.unique_path(), token="tr-deny-later")[0], 404)
        time.sleep(self.TTL + 0.5)
        self.assertEqual(self.send(self.unique_path(), token="tr-deny-later")[0], 401)

    def test_static_token_needs_no_review(self):
        before = self.reviews()
        status, user, _, _ = self.who(token=self.server.token)
        self.assertEqual((status, user), (404, "admin"))
        self.assertEqual(self.reviews(), before)

    def test_kubectl_with_a_reviewed_token(self):
        import yaml
        cfg = yaml.safe_load(self.server.kubeconfig.read_text())
        cfg["users"][0]["user"]["token"] = "tr-dave"
        kc = self.tmp / "kubeconfig-dave"
        kc.write_text(yaml.safe_dump(cfg))
        r = self.kubectl(f"--kubeconfig={kc}", "get", "languageclusters", "-o", "name")
        self.assertEqual(r.rc, 0, r)


class ClusterConfigMapTest(AuthnCase):
    """No CA flags but a kube-apiserver: the CAs, allowed names and header
    names come from kube-system/extension-apiserver-authentication."""

    @classmethod
    def prepare(cls):
        p = cls.pki
        make_ca(p, "rh-ca")
        make_ca(p, "client-ca")
        cls.proxy = make_client_cert(p, "rh-ca", "proxy", "front-proxy-client")
        cls.other_proxy = make_client_cert(p, "rh-ca", "other-proxy", "not-the-proxy")
        cls.carol = make_client_cert(p, "client-ca", "carol", "carol", orgs=("devs",))
        cls.standin, paths = start_standin(cls.tmp / "standin")
        cls.standin.auth_config.update({
            "client-ca-file": (p / "client-ca.crt").read_text(),
            "requestheader-client-ca-file": (p / "rh-ca.crt").read_text(),
            "requestheader-username-headers": '["X-Proxy-User"]',
            "requestheader-group-headers": '["X-Proxy-Group"]',
            "requestheader-allowed-names": '["front-proxy-client"]',
        })
        cls.standin.auth_configmap()
        return [f"--authentication-kubeconfig={paths['kubeconfig']}",
                f"--authentication-config-refresh-interval={cls.REFRESH}s"]

    REFRESH = 1

    def test_front_proxy_headers_named_by_the_configmap(self):
        status, user, groups, _ = self.who(cert=self.proxy, headers=[
            ("X-Proxy-User", "zed"), ("X-Proxy-Group", "z1"), ("X-Remote-User", "admin")])
        self.assertEqual((status, user, groups), (404, "zed", ["z1", "system:authenticated"]))

    def test_allowed_names_from_the_configmap(self):
        self.assertEqual(self.who(cert=self.other_proxy, headers=[("X-Proxy-User", "zed")])[0], 401)

    def set_allowed_names(self, names):
        self.standin.auth_config["requestheader-allowed-names"] = json.dumps(names)
        self.standin.auth_configmap()

    def test_changes_are_followed(self):
        """The ConfigMap is read again: a new allowed name (or CA) applies without a restart."""
        zed = [("X-Proxy-User", "zed")]
        self.assertEqual(self.who(cert=self.other_proxy, headers=zed)[0], 401)
        try:
            self.set_allowed_names(["not-the-proxy"])
            time.sleep(self.REFRESH * 2 + 0.5)
            self.assertEqual(self.who(cert=self.other_proxy, headers=zed)[:2], (404, "zed"))
            self.assertEqual(self.who(cert=self.proxy, headers=zed)[0], 401)
        finally:
            self.set_allowed_names(["front-proxy-client"])
            time.sleep(self.REFRESH * 2 + 0.5)
        self.assertEqual(self.who(cert=self.proxy, headers=zed)[:2], (404, "zed"))

    def test_client_ca_from_the_configmap(self):
        status, user, groups, _ = self.who(cert=self.carol)
        self.assertEqual((status, user, groups), (404, "carol", ["devs", "system:authenticated"]))


class CAsArriveLaterTest(AuthnCase):
    """The ConfigMap names no CA when the server starts (a cluster still
    being set up, or one that gains a front proxy later): the listener must
    ask for client certificates anyway, so that the CAs read later apply
    without a restart."""

    REFRESH = 1

    @classmethod
    def prepare(cls):
        make_ca(cls.pki, "rh-ca")
        cls.proxy = make_client_cert(cls.pki, "rh-ca", "proxy", "front-proxy-client")
        cls.standin, paths = start_standin(cls.tmp / "standin")
        cls.standin.auth_configmap()  # header names only, no CA
        return [f"--authentication-kubeconfig={paths['kubeconfig']}",
                f"--authentication-config-refresh-interval={cls.REFRESH}s"]

    def test_front_proxy_ca_added_later_applies(self):
        zed = [("X-Remote-User", "zed")]
        self.assertEqual(self.who(cert=self.proxy, headers=zed)[0], 401)
        self.standin.auth_config["requestheader-client-ca-file"] = (self.pki / "rh-ca.crt").read_text()
        self.standin.auth_configmap()
        deadline = time.monotonic() + self.REFRESH * 4 + 2
        while time.monotonic() < deadline:
            status, user, _, _ = self.who(cert=self.proxy, headers=zed)
            if status != 401:
                break
            time.sleep(0.3)
        self.assertEqual((status, user), (404, "zed"))


class ConfigMapLookupTest(unittest.TestCase):
    """Start-up when the cluster's authentication ConfigMap cannot be read:
    kube's delegating servers stop (they would answer every aggregated
    request 401 while looking ready) unless told to tolerate it; a ConfigMap
    that does not exist is no error."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="langop-it-authcm-"))
        cls.standin, cls.paths = start_standin(cls.tmp / "standin")

    @classmethod
    def tearDownClass(cls):
        cls.standin.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_server(self, *flags):
        import subprocess
        port = harness.free_port()
        args = [harness.BINARY, f"--secure-port={port}", "--bind-address=127.0.0.1",
                f"--storage-path={self.tmp / f'db-{port}'}", f"--cert-dir={self.tmp / 'certs'}",
                f"--authentication-kubeconfig={self.paths['kubeconfig']}", *flags]
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=4)
            return p.returncode, out
        except subprocess.TimeoutExpired:  # still serving: it started
            p.terminate()
            out, _ = p.communicate(timeout=10)
            return None, out

    def test_unreadable_configmap_stops_the_start(self):
        self.standin.clear_faults()
        self.standin.add_fault("500", path="/api/v1/namespaces/kube-system/configmaps/*", count=1000)
        try:
            rc, out = self.run_server()
            self.assertNotIn(rc, (None, 0), out)
            self.assertIn("cannot read /api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication", out)
            self.assertIn("--authentication-tolerate-lookup-failure", out)
            rc, out = self.run_server("--authentication-tolerate-lookup-failure")
            self.assertIsNone(rc, out)  # tolerated: it serves
            self.assertIn("Warning: cannot read", out)
        finally:
            self.standin.clear_faults()

    def test_missing_configmap_is_no_error(self):
        with self.standin.store.lock:
            self.standin.store.objects = {k: v for k, v in self.standin.store.objects.items()
                                          if k[2] != "extension-apiserver-authentication"}
        rc, out = self.run_server()
        self.assertIsNone(rc, out)


class AnonymousTest(AuthnCase):
    """--anonymous-auth: no credentials is system:anonymous; bad ones stay 401."""

    @classmethod
    def prepare(cls):
        return ["--anonymous-auth"]

    def test_no_credentials_is_anonymous(self):
        status, user, groups, _ = self.who()
        self.assertEqual((status, user, groups), (404, "system:anonymous", ["system:unauthenticated"]))

    def test_rejected_token_is_401(self):
        self.assertEqual(self.who(token="wrong")[0], 401)

    def test_remote_user_is_still_ignored(self):
        status, user, _, _ = self.who(headers=[("X-Remote-User", "admin")])
        self.assertEqual((status, user), (404, "system:anonymous"))


class DefaultsTest(AuthnCase):
    """Without the flags: no anonymous access, no certificate asked for."""

    def test_no_credentials_is_401(self):
        self.assertEqual(self.who()[0], 401)

    def test_remote_user_is_ignored(self):
        status, user, _, _ = self.who(headers=[("X-Remote-User", "admin")], token="alice-token")
        self.assertEqual((status, user), (404, "alice"))


if __name__ == "__main__":
    unittest.main()
