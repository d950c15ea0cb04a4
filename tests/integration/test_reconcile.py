"""The reconcile thread (issue 12) against the kube-apiserver stand-in: the
objects a LanguageCluster gets in the cluster, which of them change when a
model is added or a key rotated, pruning, the cluster's finalizer and
status. Each test asserts what the stand-in holds afterwards; the helpers
are in reconcile_base.py. Faults (an outage, a restart half way) and a
converged minute without writes are in test_reconcile_faults.py."""

import time

from harness import item_path
from reconcile_base import MANAGED, ReconcileCase, keyed_model


class ReconcileTest(ReconcileCase):

    def test_a_cluster_gets_its_gateway_agents_and_tools(self):
        ns = self.world()
        for plural, name, group in (("configmaps", "gateway-config", ""), ("deployments", "gateway", "apps"),
                                    ("services", "gateway", ""), ("deployments", "t", "apps"),
                                    ("services", "t", ""), ("configmaps", "a-agent", ""),
                                    ("deployments", "a", "apps")):
            o = self.held(plural, name, ns, group)
            self.assertIsNotNone(o, f"{plural}/{name}")
            self.assertLessEqual(MANAGED.items(), o["metadata"]["labels"].items())
            self.assertEqual(o["metadata"]["labels"]["langop.io/cluster"], ns)
        self.assertEqual(self.held("namespaces", ns, None)["metadata"]["labels"]["langop.io/cluster"], ns)
        # what a user reads is what runs
        gc = self.api("GET", item_path("LanguageCluster", ns) + "/gatewayconfig", expect=200).json()
        cm = self.held("configmaps", "gateway-config", ns)
        self.assertEqual(cm["data"]["config.yaml"], gc["config"])
        c = self.held("deployments", "gateway", ns, "apps")["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(c["env"], gc["env"])
        self.assertEqual(c["ports"][0]["containerPort"], 4000)
        self.assertEqual(self.held("services", "gateway", ns)["spec"]["ports"][0]["port"], 8000)
        ac = self.api("GET", item_path("LanguageAgent", "a", ns) + "/agentconfig", expect=200).json()
        pod = self.held("deployments", "a", ns, "apps")["spec"]["template"]["spec"]
        self.assertEqual(pod["containers"][0]["env"], ac["env"])
        self.assertEqual(self.held("configmaps", "a-agent", ns)["data"]["config.yaml"], ac["config"])
        # the cluster's status says so, and its finalizer holds its deletion
        cl = self.wait_for("Reconciled", lambda: (lambda c: c if any(
            x["type"] == "Reconciled" and x["status"] == "True" for x in c.get("status", {}).get("conditions", []))
            else None)(self.get("LanguageCluster", ns)))
        self.assertIn("langop.io/cluster-resources", cl["metadata"]["finalizers"])
        self.assertIs(cl["status"]["gatewayReady"], False)
        kinds = {(m["kind"], m["name"]) for m in cl["status"]["managedResources"]}
        self.assertIn(("Deployment", "gateway"), kinds)
        self.assertIn(("Deployment", "a"), kinds)

    def test_a_new_model_changes_the_gateway_not_the_agent(self):
        ns = self.world()
        agent_rv = self.held("deployments", "a", ns, "apps")["metadata"]["resourceVersion"]
        before = self.gateway_hash(ns)
        self.create(keyed_model("m3", ns, "k1"))
        self.wait_for("m3 in the gateway config",
                      lambda: "m3" in self.held("configmaps", "gateway-config", ns)["data"]["config.yaml"])
        self.wait_for("a new gateway hash", lambda: self.gateway_hash(ns) != before)
        time.sleep(0.5)
        self.assertEqual(self.held("deployments", "a", ns, "apps")["metadata"]["resourceVersion"], agent_rv)

    def test_a_rotated_key_rolls_the_gateway_only(self):
        ns = self.world()
        agent_rv = self.held("deployments", "a", ns, "apps")["metadata"]["resourceVersion"]
        cm_rv = self.held("configmaps", "gateway-config", ns)["metadata"]["resourceVersion"]
        before = self.gateway_hash(ns)
        self.secret(ns, "k1", "sk-rotated")
        self.wait_for("a new gateway hash", lambda: self.gateway_hash(ns) != before)
        time.sleep(0.5)
        self.assertEqual(self.held("deployments", "a", ns, "apps")["metadata"]["resourceVersion"], agent_rv)
        self.assertEqual(self.held("configmaps", "gateway-config", ns)["metadata"]["resourceVersion"], cm_rv)

    def test_a_deleted_agent_is_pruned(self):
        ns = self.world()
        self.api("DELETE", item_path("LanguageAgent", "a", ns), expect=200)
        self.wait_for("the agent's Deployment gone", lambda: self.held("deployments", "a", ns, "apps") is None)
        self.wait_for("the agent's ConfigMap gone", lambda: self.held("configmaps", "a-agent", ns) is None)
        self.assertIsNotNone(self.held("deployments", "gateway", ns, "apps"))

    def test_a_deleted_cluster_takes_its_objects_then_goes(self):
        ns = self.world()
        self.api("DELETE", item_path("LanguageCluster", ns), expect=200)
        self.wait_for("the cluster gone",
                      lambda: self.api("GET", item_path("LanguageCluster", ns)).status == 404, timeout=20)
        for plural, name, group in (("deployments", "gateway", "apps"), ("configmaps", "gateway-config", ""),
                                    ("deployments", "a", "apps"), ("services", "t", "")):
            self.assertIsNone(self.held(plural, name, ns, group), f"{plural}/{name}")
        self.assertIsNotNone(self.held("namespaces", ns, None), "a namespace is never deleted")
