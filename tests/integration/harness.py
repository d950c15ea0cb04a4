"""Harness for the integration tests: the real langop-apiserver, real clients.

Each test class gets its own server (ServerTestCase.setUpClass): a free port,
a temp dir with its own database, CA and serving certificate (made by
deploy/gen-certs.sh), token file and kubeconfig. Tests drive it with the
installed kubectl, with python3-kubernetes' DynamicClient and with raw HTTPS
requests, and assert on what those print and return.

Only the standard library plus Debian's python3-yaml and python3-kubernetes;
run it with /usr/bin/python3 (run.py re-executes itself there if needed).
"""

import functools
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
GEN_CERTS = REPO / "deploy" / "gen-certs.sh"
GROUP = "langop.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
API = f"/apis/{GROUP}/{VERSION}"

# Set by run.py (--binary); the environment variable lets a module run alone.
BINARY = os.environ.get("LANGOP_APISERVER_BIN", str(REPO / "build" / "langop-apiserver"))
KUBECTL = os.environ.get("LANGOP_KUBECTL") or shutil.which("kubectl") or "kubectl"

# Kind -> (plural, shortName, namespaced), as the server must serve them.
KINDS = {
    "LanguageCluster": ("languageclusters", "lcluster", False),
    "LanguageModel": ("languagemodels", "lmodel", True),
    "LanguageAgent": ("languageagents", "lagent", True),
    "LanguageTool": ("languagetools", "ltool", True),
    "LanguagePersona": ("languagepersonas", "lpersona", True),
}

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
RV_RE = re.compile(r"^[1-9][0-9]*$")


@functools.lru_cache(maxsize=None)
def sanitized(binary):
    """Whether binary is a sanitizer build: several times slower, and its RSS (shadow memory,
    quarantine) says nothing of the server's own."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def free_port():
    """A port that was free a moment ago (the server cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    """One HTTP response: status, lower-cased headers, raw body."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<HTTP {self.status} {self.headers.get('content-type', '')} {self.body[:300]!r}>"


class Server:
    """A langop-apiserver process with its own state directory; flags are
    extra command-line flags (compaction tuning and the like), env extra
    environment variables of the process (a shim to preload)."""

    def __init__(self, workdir, flags=(), env=None):
        self.flags = list(flags)
        self.env = dict(env or {})
        self.dir = Path(workdir)
        self.certs = self.dir / "certs"
        self.db = self.dir / "langop.db"
        self.log_path = self.dir / "apiserver.log"
        self.kubeconfig = self.dir / "kubeconfig"
        self.token = secrets.token_hex(24)
        self.proc = None
        self.port = None
        subprocess.run(["bash", str(GEN_CERTS), str(self.certs)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.ca = self.certs / "ca.crt"
        # kube's static token CSV: token,user,uid,"group1,group2"
        (self.dir / "tokens.csv").write_text(f'{self.token},admin,admin-uid,"system:masters"\n')

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout=20.0):
        """Start on a fresh free port and wait for /readyz; retry if the port was taken."""
        if not os.access(BINARY, os.X_OK):
            raise RuntimeError(f"server binary {BINARY} is missing or not executable")
        last = None
        for _ in range(3):
            self.port = free_port()
            log = open(self.log_path, "ab")
            log.write(f"---- start on port {self.port}{' with ' + str(self.flags) if self.flags else ''}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [BINARY, f"--secure-port={self.port}", "--bind-address=127.0.0.1",
                 f"--tls-cert-file={self.certs / 'apiserver.crt'}",
                 f"--tls-private-key-file={self.certs / 'apiserver.key'}",
                 f"--storage-path={self.db}",
                 f"--token-auth-file={self.dir / 'tokens.csv'}", "-v=2", *self.flags],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env={**os.environ, **self.env})
            log.close()
            try:
                self._wait_ready(timeout)
                self._write_kubeconfig()
                return
            except RuntimeError as e:
                last = e
                self.stop()
        raise last

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.request("GET", "/readyz", token=None, timeout=2).status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_tail()}")

    def _write_kubeconfig(self):
        import base64
        ca = base64.b64encode(self.ca.read_bytes()).decode()
        cfg = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "it", "cluster": {"server": self.url,
                                                    "certificate-authority-data": ca}}],
            "users": [{"name": "it-admin", "user": {"token": self.token}}],
            "contexts": [{"name": "it", "context": {"cluster": "it", "user": "it-admin",
                                                    "namespace": "default"}}],
            "current-context": "it",
        }
        self.kubeconfig.write_text(yaml.safe_dump(cfg))

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self):
        """Crash the server: no chance to flush or close anything."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=25):
        return "\n".join(self.log_text().splitlines()[-n:])

    def ssl_context(self, alpn=("http/1.1",)):
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx

    def connection(self, timeout=30):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.ssl_context())

    def request(self, method, path, body=None, headers=None, token="default",
                timeout=30, conn=None):
        """One HTTPS/1.1 request. body: dict/list (sent as JSON), str or bytes.
        token: "default" = the admin token, None = no Authorization header."""
        hdrs = {"Accept": "application/json"}
        if token == "default":
            token = self.token
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode()
        hdrs.update(headers or {})
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            if own:
                c.close()


# ---------------------------------------------------------------- sample objects

def obj(kind, name=None, namespace=None, spec=None, labels=None, **meta):
    """A langop.io object as a client would send it."""
    m = dict(meta)
    if name is not None:
        m["name"] = name
    if namespace is not None:
        m["namespace"] = namespace
    if labels:
        m["labels"] = dict(labels)
    o = {"apiVersion": API_VERSION, "kind": kind, "metadata": m}
    if spec is not None:
        o["spec"] = spec
    return o


def model(name=None, namespace=None, labels=None, **meta):
    return obj("LanguageModel", name, namespace,
               {"provider": "openai", "modelName": "gpt-4o"}, labels, **meta)


def agent(name, namespace=None, **meta):
    return obj("LanguageAgent", name, namespace,
               {"image": "ghcr.io/langop/agent:v1", "models": [{"name": "gpt"}],
                "instructions": "Answer briefly."}, **meta)


def tool(name, namespace=None, **meta):
    return obj("LanguageTool", name, namespace, {"image": "ghcr.io/langop/web-tool:v1"}, **meta)


def persona(name, namespace=None, **meta):
    return obj("LanguagePersona", name, namespace, {"tone": "friendly"}, **meta)


def collection_path(kind, namespace=None):
    plural, _, namespaced = KINDS[kind]
    if namespaced and namespace:
        return f"{API}/namespaces/{namespace}/{plural}"
    return f"{API}/{plural}"


def item_path(kind, name, namespace=None):
    return f"{collection_path(kind, namespace)}/{name}"


class KubectlResult:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    def lines(self):
        return [l for l in self.out.splitlines() if l.strip()]

    def __repr__(self):
        return (f"kubectl {' '.join(self.args)}\n  exit {self.rc}\n  stdout: {self.out[-1500:]}"
                f"\n  stderr: {self.err[-1500:]}")


def table(text):
    """Parse kubectl's column output by the header's column positions, so that
    an empty cell (a field the object does not set) stays an empty cell."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return [], []
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    bounds = list(zip(starts, starts[1:] + [None]))
    cells = lambda l: [l[a:b].strip() for a, b in bounds]
    return cells(lines[0]), [cells(l) for l in lines[1:]]


class ServerTestCase(unittest.TestCase):
    """Base class: one server per test class, shared by its tests. Tests keep
    out of each other's way by using their own namespaces (new_namespace)."""

    server = None
    _ns_counter = 0

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="langop-it-"))
        cls.kube_cache = cls.tmp / "kube-cache"
        cls._dyn = None
        cls.server = Server(cls.tmp)
        try:
            cls.server.start()
        except Exception:
            cls.server.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()
        if os.environ.get("LANGOP_IT_KEEP"):
            print(f"    (kept {cls.tmp})")
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ----------------------------------------------------------- helpers

    def new_namespace(self, hint=None):
        """A namespace no other test uses, with its LanguageCluster (a
        namespaced object needs a LanguageCluster named like its namespace)."""
        ServerTestCase._ns_counter += 1
        base = re.sub(r"[^a-z0-9]+", "-", (hint or self._testMethodName).lower()).strip("-")
        base = base.replace("test-", "", 1)[:40].strip("-")
        ns = f"{base}-{ServerTestCase._ns_counter}"
        self.ensure_cluster(ns)
        return ns

    def ensure_cluster(self, name):
        r = self.server.request("POST", collection_path("LanguageCluster"),
                                obj("LanguageCluster", name, spec={"domain": f"{name}.example.com"}))
        self.assertIn(r.status, (201, 409), f"creating LanguageCluster {name}: {r}")
        if r.status == 409:
            self.assertEqual(r.json().get("reason"), "AlreadyExists", r)

    def api(self, method, path, body=None, expect=None, **kw):
        """A raw request; with expect, assert the status code."""
        r = self.server.request(method, path, body, **kw)
        if expect is not None:
            self.assertEqual(r.status, expect, f"{method} {path}: {r}")
        return r

    def create(self, o, namespace=None):
        ns = namespace or o["metadata"].get("namespace")
        r = self.api("POST", collection_path(o["kind"], ns), o, expect=201)
        return r.json()

    def get(self, kind, name, namespace=None, expect=200):
        return self.api("GET", item_path(kind, name, namespace), expect=expect).json()

    def kubectl(self, *args, input=None, ok=True, timeout=45):
        """Run the installed kubectl against this class's server. ok=True asserts
        exit 0, ok=False asserts a non-zero exit, ok=None asserts nothing."""
        cmd = [KUBECTL, f"--kubeconfig={self.server.kubeconfig}",
               f"--cache-dir={self.kube_cache}", *args]
        try:
            p = subprocess.run(cmd, input=input, capture_output=True, text=True,
                               timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        except FileNotFoundError:
            self.fail(f"kubectl not found ({KUBECTL}); the integration tests need a kubectl >= 1.27")
        res = KubectlResult(args, p.returncode, p.stdout, p.stderr)
        if ok is True:
            self.assertEqual(p.returncode, 0, repr(res))
        elif ok is False:
            self.assertNotEqual(p.returncode, 0, repr(res))
        return res

    def write_yaml(self, *docs):
        """Write objects to a YAML file (multi-document) and return its path."""
        fd, path = tempfile.mkstemp(suffix=".yaml", dir=self.tmp)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump_all(docs, f)
        return path

    @property
    def dyn(self):
        """python3-kubernetes DynamicClient for this class's server."""
        if type(self)._dyn is None:
            from kubernetes import client, dynamic
            cfg = client.Configuration()
            cfg.host = self.server.url
            cfg.ssl_ca_cert = str(self.server.ca)
            cfg.verify_ssl = True
            cfg.api_key = {"authorization": "Bearer " + self.server.token}
            type(self)._dyn = dynamic.DynamicClient(
                client.ApiClient(cfg), cache_file=str(self.tmp / "dyn-discovery.json"))
        return type(self)._dyn

    def resource(self, kind):
        return self.dyn.resources.get(api_version=API_VERSION, kind=kind)

    def assertStatus(self, r, code, reason):
        """r is a Response that must carry a Kubernetes Status failure."""
        self.assertEqual(r.status, code, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
        s = r.json()
        self.assertEqual(s.get("kind"), "Status", s)
        self.assertEqual(s.get("apiVersion"), "v1", s)
        self.assertEqual(s.get("status"), "Failure", s)
        self.assertEqual(s.get("code"), code, s)
        self.assertEqual(s.get("reason"), reason, s)
        self.assertIsInstance(s.get("message"), str, s)
        return s


# ------------------------------------------------- servers with extra flags

# The name the tests that pass flags use; Server takes them itself.
FlagServer = Server


class FlagServerTestCase(ServerTestCase):
    """ServerTestCase whose server gets the class attribute server_flags."""

    server_flags = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="langop-it-"))
        cls.kube_cache = cls.tmp / "kube-cache"
        cls._dyn = None
        cls.server = FlagServer(cls.tmp, cls.server_flags)
        try:
            cls.server.start()
        except Exception:
            cls.server.stop()
            raise
