"""What the reconcile tests share (test_reconcile.py, test_reconcile_faults.py):
a server reconciling into an in-process kube-apiserver stand-in, one per
test class, and helpers that read what the stand-in holds."""

import base64
import copy
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import item_path, obj

sys.path.insert(0, str(harness.REPO / "tests" / "standin"))
from kube_standin import start_standin  # noqa: E402

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED = {MANAGED_BY: "langop-apiserver"}


def keyed_model(name, ns, secret=None):
    spec = {"provider": "openai", "modelName": "gpt-4o"}
    if secret:
        spec["apiKeySecretRef"] = {"name": secret, "key": "api-key"}
    return obj("LanguageModel", name, ns, spec)


class ReconcileCase(harness.ServerTestCase):
    """A server with --reconcile=on against a stand-in of its own;
    reconcile_flags are added to its command line."""

    reconcile_flags = ("--reconcile-resync-period=1h",)

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="langop-it-reconcile-"))
        cls.kube_cache = cls.tmp / "kube-cache"
        cls._dyn = None
        cls.standin, paths = start_standin(cls.tmp / "standin")
        cls.server = harness.Server(cls.tmp, [f"--kubeconfig={paths['kubeconfig']}", "--reconcile=on",
                                              *cls.reconcile_flags])
        try:
            cls.server.start()
        except Exception:
            cls.server.stop()
            cls.standin.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.standin.stop()

    # ------------------------------------------------------------ helpers

    def held(self, plural, name, ns, group=""):
        return self.standin.get_object(plural, name, ns, group=group)

    def wait_for(self, what, fn, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting for {what}\n{self.server.log_tail()}")
            time.sleep(0.1)

    def secret(self, ns, name, value):
        return self.standin.put_object({"apiVersion": "v1", "kind": "Secret",
                                        "metadata": {"name": name, "namespace": ns},
                                        "data": {"api-key": base64.b64encode(value.encode()).decode()}})

    def gateway_hash(self, ns):
        d = self.held("deployments", "gateway", ns, "apps")
        return d and d["spec"]["template"]["metadata"]["annotations"]["langop.io/config-hash"]

    def make_world(self, ns):
        """Into ns (its LanguageCluster exists): two models (one with a key),
        an agent of the first and a service tool. Waits for nothing."""
        self.secret(ns, "k1", "sk-one")
        self.create(keyed_model("m1", ns, "k1"))
        self.create(keyed_model("m2", ns))
        a = harness.agent("a", ns)
        a["spec"]["models"] = [{"name": "m1"}]
        self.create(a)
        self.create(harness.tool("t", ns))

    def world(self):
        """A new namespace with make_world's objects, once the cluster holds them."""
        ns = self.new_namespace()
        self.make_world(ns)
        self.wait_for("the agent's Deployment", lambda: self.held("deployments", "a", ns, "apps"))
        self.wait_for("the tool's Deployment and Service", lambda: self.held("deployments", "t", ns, "apps")
                      and self.held("services", "t", ns))
        self.wait_for("the gateway", lambda: self.gateway_hash(ns))
        # the Secret may reach the server's informer after the model (one
        # still relisting after an outage, say): m1 is left out, consistently,
        # until it does. The world is both models served, and running.
        self.wait_for("both models served, and the cluster holding what the API renders",
                      lambda: self.models_served(ns, ("m1", "m2")) and self.converged(ns))
        return ns

    def models_served(self, ns, names):
        for name in names:
            m = self.api("GET", item_path("LanguageModel", name, ns), expect=200).json()
            ready = [c for c in m.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
            if not ready or ready[0]["reason"] != "Served":
                return False
        return True

    def converged(self, ns, agents=("a",)):
        """The gateway and the agents run exactly what gatewayconfig and agentconfig say."""
        gc = self.api("GET", item_path("LanguageCluster", ns) + "/gatewayconfig", expect=200).json()
        cm = self.held("configmaps", "gateway-config", ns)
        gw = self.held("deployments", "gateway", ns, "apps")
        if not (cm and gw and cm["data"]["config.yaml"] == gc["config"]
                and gw["spec"]["template"]["spec"]["containers"][0]["env"] == gc["env"]):
            return False
        for name in agents:
            ac = self.api("GET", item_path("LanguageAgent", name, ns) + "/agentconfig", expect=200).json()
            agent = self.held("deployments", name, ns, "apps")
            acm = self.held("configmaps", f"{name}-agent", ns)
            if not (agent and acm and agent["spec"]["template"]["spec"]["containers"][0]["env"] == ac["env"]
                    and acm["data"]["config.yaml"] == ac["config"]):
                return False
        return True

    def writes(self):
        with self.standin.mu:
            calls = dict(self.standin.calls)
        return {k: n for k, n in calls.items() if not k.startswith("GET ")}

    def managed_in(self, ns):
        """{(kind, name): object} of what the stand-in holds with the managed-by
        label in namespace ns, and the Namespace ns itself when it has it."""
        st = self.standin
        with st.store.lock:
            return {(o["kind"], o["metadata"]["name"]): copy.deepcopy(o)
                    for (res, ons, _), o in st.store.objects.items()
                    if (ons == ns or (res.plural == "namespaces" and o["metadata"]["name"] == ns))
                    and (o["metadata"].get("labels") or {}).get(MANAGED_BY) == MANAGED[MANAGED_BY]}
