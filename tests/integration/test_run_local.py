"""deploy/run-local.sh (issue 2, item 1), run for real in a copy of the
checkout: it builds a release binary, makes a CA, a serving certificate and
a token under .langop/, starts the server on LANGOP_PORT, writes a
kubeconfig carrying the CA and prints only the `export KUBECONFIG=...` line.
Run again, it keeps the CA, the token and the database, and restarts the
server. The copy is a temp dir, so the checkout's own .langop/ and
build-release/ are never touched."""

import base64
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from harness import KUBECTL, REPO, free_port

STATE_FILES = ("ca.crt", "apiserver.crt", "apiserver.key", "token", "tokens.csv", "langop.db",
               "kubeconfig", "apiserver.pid")
BUILD_BUDGET_S = 90          # the first run, a release build from scratch included


def missing_packages():
    """What run-local.sh would apt-get install; the test does not install packages."""
    p = subprocess.run(["bash", "-c", f". {REPO}/deploy/lib.sh && lo_missing_packages"],
                       capture_output=True, text=True)
    return p.stdout.split()


class RunLocalTest(unittest.TestCase):

    def setUp(self):
        if missing_packages():
            self.skipTest(f"run-local.sh would install packages: {missing_packages()}")
        self.tmp = Path(tempfile.mkdtemp(prefix="langop-runlocal-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.root = self.tmp / "checkout"
        self.state = self.root / ".langop"
        self.port = free_port()
        self.addCleanup(self.stop_server)
        self.copy_checkout()

    def copy_checkout(self):
        """The checkout's files as they are now (tracked, and new ones not ignored)."""
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, check=True).stdout
        for rel in filter(None, out.decode().split("\0")):
            src = REPO / rel
            if not src.is_file():           # deleted in the working tree
                continue
            dst = self.root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)

    def run_script(self):
        env = dict(os.environ, LANGOP_PORT=str(self.port))
        t0 = time.monotonic()
        p = subprocess.run(["bash", str(self.root / "deploy" / "run-local.sh")], cwd=self.tmp,
                           env=env, capture_output=True, text=True, timeout=600,
                           stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, f"run-local.sh failed:\n{p.stderr[-3000:]}")
        return p, elapsed

    def server_pid(self):
        return int((self.state / "apiserver.pid").read_text().strip())

    def stop_server(self):
        """Stop the server the script left running, if it is the one built here."""
        try:
            pid = self.server_pid()
            exe = os.readlink(f"/proc/{pid}/exe")
        except (OSError, ValueError):
            return
        if not exe.startswith(str(self.root)):
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def kubectl(self, *args, input=None):
        p = subprocess.run([KUBECTL, f"--kubeconfig={self.state / 'kubeconfig'}",
                            f"--cache-dir={self.tmp / 'kube-cache'}", *args],
                           input=input, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, f"kubectl {' '.join(args)}:\n{p.stdout}\n{p.stderr}")
        return p

    def kubeconfig_ca(self):
        cfg = yaml.safe_load((self.state / "kubeconfig").read_text())
        cluster = cfg["clusters"][0]["cluster"]
        self.assertNotIn("insecure-skip-tls-verify", cluster)
        self.assertEqual(cluster["server"], f"https://127.0.0.1:{self.port}")
        return base64.b64decode(cluster["certificate-authority-data"])

    def test_run_local_twice(self):
        p, elapsed = self.run_script()
        print(f"    (run-local.sh, first run with a release build: {elapsed:.1f}s)",
              file=sys.stderr, flush=True)
        self.assertLess(elapsed, BUILD_BUDGET_S, "run-local.sh is too slow on its first run")
        self.assertEqual(p.stdout, f"export KUBECONFIG={self.state}/kubeconfig\n", p.stdout)
        for f in STATE_FILES:
            self.assertTrue((self.state / f).is_file(), f"missing .langop/{f}")
        self.assertEqual(self.state.stat().st_mode & 0o077, 0, ".langop/ must be private")
        self.assertTrue(os.access(self.root / "build-release" / "langop-apiserver", os.X_OK))
        token = (self.state / "token").read_text()
        self.assertRegex(token.strip(), r"^[0-9a-f]{64}$")
        self.assertIn(token.strip(), (self.state / "tokens.csv").read_text())
        ca = (self.state / "ca.crt").read_bytes()
        self.assertEqual(self.kubeconfig_ca(), ca)

        # the server presents a certificate that the kubeconfig's CA verifies...
        ctx = ssl.create_default_context(cadata=self.kubeconfig_ca().decode())
        with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/readyz", context=ctx,
                                    timeout=5) as r:
            self.assertEqual((r.status, r.read()), (200, b"ok"))
        # ...and that the system's CAs do not, so the CA really is what verifies it
        with self.assertRaises(ssl.SSLCertVerificationError):
            try:
                urllib.request.urlopen(f"https://127.0.0.1:{self.port}/readyz",
                                       context=ssl.create_default_context(), timeout=5)
            except urllib.error.URLError as e:
                raise e.reason

        r = self.kubectl("get", "languagemodels", "-A")
        self.assertIn("No resources found", r.stderr + r.stdout)
        cluster = yaml.safe_dump({"apiVersion": "langop.io/v1alpha1", "kind": "LanguageCluster",
                                  "metadata": {"name": "local"},
                                  "spec": {"domain": "local.example.com"}})
        self.kubectl("apply", "-f", "-", input=cluster)
        uid = self.kubectl("get", "lcluster", "local", "-o", "jsonpath={.metadata.uid}").stdout
        self.assertTrue(uid)
        first_pid = self.server_pid()

        # second run: same CA, token and database, a new server process
        p, elapsed = self.run_script()
        print(f"    (run-local.sh, second run: {elapsed:.1f}s)", file=sys.stderr, flush=True)
        self.assertEqual(p.stdout, f"export KUBECONFIG={self.state}/kubeconfig\n", p.stdout)
        self.assertEqual((self.state / "token").read_text(), token)
        self.assertEqual((self.state / "ca.crt").read_bytes(), ca)
        self.assertEqual(self.kubeconfig_ca(), ca)
        self.assertNotEqual(self.server_pid(), first_pid)
        self.assertFalse(Path(f"/proc/{first_pid}").exists() and
                         os.readlink(f"/proc/{first_pid}/exe").startswith(str(self.root)),
                         "the first server still runs")
        self.assertEqual(self.kubectl("get", "lcluster", "local", "-o",
                                      "jsonpath={.metadata.uid}").stdout, uid)
        r = self.kubectl("get", "languagemodels", "-A")
        self.assertIn("No resources found", r.stderr + r.stdout)
