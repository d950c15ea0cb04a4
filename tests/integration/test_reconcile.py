"""The reconcile thread (issue 12) against the kube-apiserver stand-in: the
objects a LanguageCluster gets in the cluster, which of them change when a
model is added or a key rotated, pruning, the cluster's finalizer and
status. Each test asserts what the stand-in holds afterwards; the helpers
are in reconcile_base.py. Faults (an outage, a restart half way) and a
converged minute without writes are in test_reconcile_faults.py."""

import json
import signal
import subprocess
import time

import harness
from harness import item_path, obj
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

    def held_all(self, plural, ns, group=""):
        """Every object of one kind the stand-in holds in namespace ns."""
        res = self.standin._res(group, plural)
        with self.standin.store.lock:
            return [json.loads(json.dumps(o)) for (r, n, _), o in self.standin.store.objects.items()
                    if r is res and n == ns]

    def events(self, kind, name, ns):
        """(type, reason, message, count) of the core/v1 Events about one langop object, as kubectl describe
        finds them: by involvedObject; a LanguageCluster's are in namespace default."""
        where = "default" if kind == "LanguageCluster" else ns
        uid = self.get(kind, name, ns if kind != "LanguageCluster" else None)["metadata"]["uid"]
        return [(e["type"], e["reason"], e["message"], e["count"]) for e in self.held_all("events", where)
                if e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name
                and e["involvedObject"].get("uid") == uid
                and e["involvedObject"]["apiVersion"] == "langop.io/v1alpha1"]

    def test_events_tell_what_happened(self):
        ns = self.world()
        self.wait_for("Created events", lambda: ("Normal", "Created", "created Deployment gateway", 1)
                      in self.events("LanguageCluster", ns, ns))
        # recorded once the object is written: a moment after the test sees it
        self.wait_for("the agent's Created event", lambda: ("Normal", "Created", "created Deployment a", 1)
                      in self.events("LanguageAgent", "a", ns))
        self.wait_for("the tool's Created event", lambda: ("Normal", "Created", "created Deployment t", 1)
                      in self.events("LanguageTool", "t", ns))
        self.create(keyed_model("m5", ns, "k1"))
        self.wait_for("a GatewayRollout event", lambda: [e for e in self.events("LanguageCluster", ns, ns)
                                                         if e[1] == "GatewayRollout"])
        self.create(keyed_model("m6", ns, "missing"))
        ev = self.wait_for("a SecretNotFound event", lambda: [e for e in self.events("LanguageModel", "m6", ns)
                                                              if e[1] == "SecretNotFound"])
        self.assertEqual(ev[0][0], "Warning")
        self.assertIn("missing", ev[0][2])
        self.assertEqual([e for e in self.events("LanguageAgent", "a", ns) if e[1] != "Created"], [],
                         "models and keys leave the agent alone")

    def test_a_missing_secret_leaves_its_model_out_until_it_appears(self):
        ns = self.world()
        self.create(keyed_model("m4", ns, "k4"))

        def model_ready(reason):
            m = self.get("LanguageModel", "m4", ns)
            c = [x for x in m.get("status", {}).get("conditions", []) if x["type"] == "Ready"]
            return m if c and c[0]["reason"] == reason else None

        m = self.wait_for("m4 Ready=False SecretNotFound", lambda: model_ready("SecretNotFound"))
        ready = [x for x in m["status"]["conditions"] if x["type"] == "Ready"][0]
        self.assertEqual(ready["status"], "False")
        self.assertIn("k4", ready["message"])
        self.wait_for("the cluster to hold what the API renders", lambda: self.converged(ns))
        cm = self.held("configmaps", "gateway-config", ns)["data"]["config.yaml"]
        self.assertNotIn("m4", cm)
        self.assertIn("m1", cm, "the gateway goes on serving the other models")
        env = self.held("deployments", "gateway", ns, "apps")["spec"]["template"]["spec"]["containers"][0]["env"]
        self.assertNotIn("k4", str(env))
        unserved = self.get("LanguageCluster", ns)["status"].get("unservedModels", [])
        self.assertEqual([(u["name"], u["reason"]) for u in unserved], [("m4", "SecretNotFound")])
        # it comes back by itself
        self.secret(ns, "k4", "sk-four")
        self.wait_for("m4 served", lambda: model_ready("Served"))
        self.wait_for("m4 in the gateway", lambda: "m4" in self.held("configmaps", "gateway-config", ns)["data"]["config.yaml"])
        self.wait_for("the cluster to hold what the API renders", lambda: self.converged(ns))
        self.assertNotIn("unservedModels", self.get("LanguageCluster", ns)["status"])

    def test_workload_status_comes_back_into_the_api(self):
        ns = self.world()
        agent = self.get("LanguageAgent", "a", ns)
        self.assertEqual(agent["status"]["phase"], "Pending", "no replica is available yet")
        d = self.held("deployments", "a", ns, "apps")
        self.standin.set_status("deployments", "a", {"observedGeneration": d["metadata"].get("generation", 1),
                                                     "replicas": 1, "readyReplicas": 1, "availableReplicas": 1},
                                namespace=ns, group="apps")
        agent = self.wait_for("the agent Running", lambda: (lambda a: a if a["status"].get("phase") == "Running"
                                                            else None)(self.get("LanguageAgent", "a", ns)))
        ready = [x for x in agent["status"]["conditions"] if x["type"] == "Ready"][0]
        self.assertEqual((ready["status"], ready["reason"]), ("True", "Available"))
        self.assertEqual(self.get("LanguageTool", "t", ns)["status"]["phase"], "Pending", "its Deployment has none")
        td = self.held("deployments", "t", ns, "apps")
        self.standin.set_status("deployments", "t", {"observedGeneration": td["metadata"].get("generation", 1),
                                                     "replicas": 1, "availableReplicas": 1}, namespace=ns, group="apps")
        self.wait_for("the tool Running", lambda: self.get("LanguageTool", "t", ns)["status"].get("phase") == "Running")
        g = self.held("deployments", "gateway", ns, "apps")
        self.standin.set_status("deployments", "gateway", {"observedGeneration": g["metadata"].get("generation", 1),
                                                           "replicas": 1, "readyReplicas": 1, "availableReplicas": 1},
                                namespace=ns, group="apps")
        cl = self.wait_for("the cluster Ready", lambda: (lambda c: c if c["status"].get("gatewayReady") is True
                                                         else None)(self.get("LanguageCluster", ns)))
        self.assertEqual(cl["status"]["phase"], "Ready")
        gr = [x for x in cl["status"]["conditions"] if x["type"] == "GatewayReady"][0]
        self.assertEqual(gr["status"], "True")
        # a rollout that cannot finish degrades the agent
        self.standin.set_status("deployments", "a", {
            "observedGeneration": d["metadata"].get("generation", 1), "replicas": 1, "availableReplicas": 0,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                            "message": "ReplicaSet \"a-1\" has timed out progressing."}]},
            namespace=ns, group="apps")
        agent = self.wait_for("the agent Degraded", lambda: (lambda a: a if a["status"].get("phase") == "Degraded"
                                                             else None)(self.get("LanguageAgent", "a", ns)))
        ready = [x for x in agent["status"]["conditions"] if x["type"] == "Ready"][0]
        self.assertEqual(ready["reason"], "ProgressDeadlineExceeded")

    def test_an_existing_namespace_is_adopted_and_kept(self):
        ns = f"adopted-{int(time.monotonic() * 1000) % 100000}"
        self.standin.put_object({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": ns, "labels": {"team": "blue"}}})
        uid = self.held("namespaces", ns, None)["metadata"]["uid"]
        self.create(obj("LanguageCluster", ns, None, {}))
        held = self.wait_for("the namespace labelled", lambda: (lambda n: n if n["metadata"].get("labels", {}).get(
            "langop.io/cluster") == ns else None)(self.held("namespaces", ns, None)))
        self.assertEqual(held["metadata"]["uid"], uid, "adopted, not replaced")
        self.assertEqual(held["metadata"]["labels"]["team"], "blue", "its own labels stay")
        self.wait_for("the gateway", lambda: self.gateway_hash(ns))
        self.api("DELETE", item_path("LanguageCluster", ns), expect=200)
        self.wait_for("the cluster gone",
                      lambda: self.api("GET", item_path("LanguageCluster", ns)).status == 404, timeout=20)
        self.assertEqual(self.held("namespaces", ns, None)["metadata"]["uid"], uid)

    def test_a_task_agent_runs_as_a_job_replaced_when_its_config_changes(self):
        ns = self.world()
        t = harness.agent("job", ns)
        t["spec"]["models"] = [{"name": "m1"}]
        t["spec"]["execution"] = {"mode": "task"}
        self.create(t)

        def jobs():
            return sorted(j["metadata"]["name"] for j in self.held_all("jobs", ns, "batch")
                          if j["metadata"].get("labels", {}).get("langop.io/languageagent") == "job")

        first = self.wait_for("one Job", lambda: jobs() if len(jobs()) == 1 else None)
        self.assertTrue(first[0].startswith("job-"), first)
        # kubectl patch (a merge patch: the reconcile thread writes the agent's status meanwhile)
        merge = {"Content-Type": "application/merge-patch+json"}
        self.api("PATCH", item_path("LanguageAgent", "job", ns),
                 json.dumps({"spec": {"instructions": "Answer at length."}}), headers=merge, expect=200)
        second = self.wait_for("the new Job alone", lambda: (lambda j: j if len(j) == 1 and j != first else None)(jobs()))
        self.assertNotEqual(second, first)
        # with a schedule it is a CronJob, and the Job goes
        self.api("PATCH", item_path("LanguageAgent", "job", ns),
                 json.dumps({"spec": {"execution": {"mode": "task", "schedule": "*/5 * * * *"}}}), headers=merge,
                 expect=200)
        cj = self.wait_for("the CronJob", lambda: self.held("cronjobs", "job", ns, "batch"))
        self.assertEqual(cj["spec"]["schedule"], "*/5 * * * *")
        self.wait_for("no Job left", lambda: jobs() == [])

    def test_drift_is_repaired(self):
        ns = self.world()
        # kubectl edit: the image changed, the hash annotation kept
        d = self.held("deployments", "gateway", ns, "apps")
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "attacker/litellm:latest"
        d["spec"]["replicas"] = 5
        self.standin.put_object(d)
        self.wait_for("the gateway's image back", lambda: self.held("deployments", "gateway", ns, "apps")[
            "spec"]["template"]["spec"]["containers"][0]["image"] != "attacker/litellm:latest")
        self.assertEqual(self.held("deployments", "gateway", ns, "apps")["spec"]["replicas"], 1)
        # an object deleted behind its back comes back
        with self.standin.store.lock:
            res = self.standin._res("", "services")
            uid = self.standin.store.objects[(res, ns, "gateway")]["metadata"]["uid"]
        self.standin_delete("services", "gateway", ns)
        self.wait_for("the gateway Service back", lambda: (lambda o: o and o["metadata"]["uid"] != uid)(
            self.held("services", "gateway", ns)))
        self.wait_for("the cluster to hold what the API renders", lambda: self.converged(ns))
        self.wait_for("a DriftRepaired event", lambda: (
            "Normal", "DriftRepaired", "Deployment gateway was changed in the cluster: applied again", 1)
            in self.events("LanguageCluster", ns, ns))

    def standin_delete(self, plural, name, ns, group=""):
        """Another client deletes one of its objects (the stand-in's watch says DELETED)."""
        res = self.standin._res(group, plural)
        with self.standin.store.lock:
            o = self.standin.store.objects.pop((res, ns, name))
            o["metadata"]["resourceVersion"] = self.standin.store.next_rv()
            self.standin.store.record("DELETED", res, o)


class ReconcileShutdownTest(ReconcileCase):
    """SIGTERM while every call to kube-apiserver hangs: the server still exits promptly."""

    reconcile_flags = ("--shutdown-grace-period=1s",)

    def test_sigterm_with_a_hanging_kube_apiserver(self):
        deadline = time.monotonic() + 10
        while self.standin.calls_to("/api/v1/secrets", "GET") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.standin.add_fault("delay", path="*", count=1000, delay=25)
        ns = self.new_namespace()  # a reconcile that now waits on the stand-in
        self.create(keyed_model("m", ns))
        time.sleep(1)
        proc = self.server.proc
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(8)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.fail(f"still running 8 s after SIGTERM\n{self.server.log_tail()}")
        self.server.proc = None
        self.assertEqual(proc.returncode, 0, self.server.log_tail())
        self.assertLess(time.monotonic() - t0, 8)
