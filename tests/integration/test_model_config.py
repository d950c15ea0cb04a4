"""A LanguageModel's config as a user meets it with kubectl: provider custom
with its own litellmParams (credentials only by Secret reference), configs
that cannot work refused with one 422 cause per field (nothing stored),
alternative deployments (upstreams) under one gateway model_name with the
cluster's routing strategy, and problems shown where users look: the derived
Ready condition and phase of a model (PHASE and READY columns, `kubectl
wait`, watch events, a lastTransitionTime that moves only on a flip) and the
LanguageCluster's list of the models its gateway really serves."""

import json
import time

from harness import API, collection_path, item_path, obj
from test_derived import DerivedBase, env_of, gateway_url, lagent, lmodel
from test_patch_apply import Background


def causes(status):
    return [(c.get("field"), c.get("reason")) for c in (status.get("details") or {}).get("causes") or []]


def condition(o, ctype="Ready"):
    found = [c for c in (o.get("status") or {}).get("conditions") or [] if c.get("type") == ctype]
    return found[0] if len(found) == 1 else None


def entries(config, name):
    """The litellm_params of every model_list entry named name, in order."""
    return [m["litellm_params"] for m in config.get("model_list") or [] if m["model_name"] == name]


class CustomProviderTest(DerivedBase):

    def test_litellm_params_as_given_with_secret_references(self):
        ns = self.new_namespace("custom")
        self.apply(obj("LanguageModel", "vllm", ns, {
            "provider": "custom", "modelName": "llama-3.1-70b", "timeout": "2m",
            "litellmParams": {"model": "hosted_vllm/meta-llama/Llama-3.1-70B-Instruct",
                              "api_base": "http://vllm.inference.svc:8000/v1",
                              "api_key": {"secretKeyRef": {"name": "vllm-token", "key": "token"}},
                              "max_retries": 2, "extra_headers": {"X-Team": "t"}}}))
        g, config = self.gateway(ns)
        (params,) = entries(config, "vllm")
        self.assertEqual(params, {"model": "hosted_vllm/meta-llama/Llama-3.1-70B-Instruct",
                                  "api_base": "http://vllm.inference.svc:8000/v1",
                                  "api_key": "os.environ/LANGOP_API_KEY_VLLM", "max_retries": 2,
                                  "extra_headers": {"X-Team": "t"}, "timeout": 120}, g["config"])
        self.assertEqual(env_of(g)["LANGOP_API_KEY_VLLM"]["valueFrom"],
                         {"secretKeyRef": {"name": "vllm-token", "key": "token"}}, g)
        self.assertNotIn("token", g["config"].replace("vllm-token", ""))   # the key itself is nowhere
        # the model is served: Ready, and the cluster lists it
        m = self.kget("lmodel", "vllm", ns)
        self.assertEqual((m["status"]["phase"], condition(m)["status"]), ("Ready", "True"), m)
        r = self.kubectl("explain", "lmodel.spec.litellmParams")
        self.assertIn("secretKeyRef", r.out, r)

    def test_literal_credentials_and_guesses_are_refused(self):
        ns = self.new_namespace("custom-bad")
        spec = {"provider": "custom", "modelName": "x",
                "litellmParams": {"model": "gpt-4o", "api_base": "http://h:1/v1", "api_key": "sk-live-123",
                                  "extra_body": {"ref": {"secretKeyRef": {"name": "s", "key": "k"}}},
                                  "headers": {"Authorization": "Bearer abc"}},
                "params": {"temperature": 0}}
        r = self.api("POST", collection_path("LanguageModel", ns), obj("LanguageModel", "bad", ns, spec))
        s = self.assertStatus(r, 422, "Invalid")
        self.assertEqual(sorted(causes(s)), sorted([
            ("spec.litellmParams.model", "FieldValueInvalid"),
            ("spec.litellmParams.api_key", "FieldValueForbidden"),
            ("spec.litellmParams.extra_body.ref", "FieldValueForbidden"),
            ("spec.litellmParams.headers.Authorization", "FieldValueForbidden"),
            ("spec.params", "FieldValueForbidden")]), s)
        self.assertNotIn("sk-live-123", json.dumps(s))
        self.api("GET", item_path("LanguageModel", "bad", ns), expect=404)
        # kubectl prints the same refusal, and litellmParams on another provider is refused too
        r = self.kubectl("create", "-f", self.write_yaml(lmodel("other", ns, litellmParams={"model": "openai/x"})),
                         ok=False)
        self.assertIn("spec.litellmParams: Forbidden: litellmParams is only read with provider custom", r.err, r)


class RefusedConfigTest(DerivedBase):

    CASES = [
        ("openai-compatible without endpoint", {"provider": "openai-compatible", "modelName": "llama3"},
         [("spec.endpoint", "FieldValueRequired")]),
        ("custom without any endpoint", {"provider": "custom", "modelName": "m",
                                         "litellmParams": {"model": "hosted_vllm/m"}},
         [("spec.endpoint", "FieldValueRequired")]),
        ("azure without endpoint and version", {"provider": "azure", "modelName": "d",
                                                "apiKeySecretRef": {"name": "az"}},
         [("spec.endpoint", "FieldValueRequired"), ("spec.apiVersion", "FieldValueRequired")]),
        ("bedrock without region", {"provider": "bedrock", "modelName": "anthropic.claude-3-haiku"},
         [("spec.region", "FieldValueRequired")]),
        ("vertex without project and location", {"provider": "vertex", "modelName": "gemini-1.5-pro"},
         [("spec.project", "FieldValueRequired"), ("spec.location", "FieldValueRequired")]),
        ("an endpoint that is not http", {"provider": "openai-compatible", "modelName": "m",
                                          "endpoint": "ftp://models.local/v1"},
         [("spec.endpoint", "FieldValueInvalid")]),
        ("an endpoint without a host", {"provider": "openai", "modelName": "m", "endpoint": "https:///v1"},
         [("spec.endpoint", "FieldValueInvalid")]),
        ("an endpoint with userinfo", {"provider": "openai-compatible", "modelName": "m",
                                       "endpoint": "https://user:s3cr3t@models.local/v1"},
         [("spec.endpoint", "FieldValueForbidden")]),
        ("an upstream with userinfo", {"provider": "openai", "modelName": "m",
                                       "upstreams": [{"name": "b", "endpoint": "http://u:s3cr3t@b/v1"}]},
         [("spec.upstreams[0].endpoint", "FieldValueForbidden")]),
        ("an upstream field of another provider", {"provider": "openai", "modelName": "m",
                                                   "upstreams": [{"name": "b", "region": "us-east-1"}]},
         [("spec.upstreams[0].region", "FieldValueForbidden")]),
    ]

    def test_each_case_is_refused_with_one_cause_per_field_and_nothing_stored(self):
        ns = self.new_namespace("refused")
        for i, (what, spec, want) in enumerate(self.CASES):
            with self.subTest(what):
                name = f"bad-{i}"
                r = self.api("POST", collection_path("LanguageModel", ns), obj("LanguageModel", name, ns, spec))
                s = self.assertStatus(r, 422, "Invalid")
                self.assertEqual(sorted(causes(s)), sorted(want), s)
                self.assertNotIn("s3cr3t", json.dumps(s))   # a credential in a URL is not echoed
                self.api("GET", item_path("LanguageModel", name, ns), expect=404)
        # kubectl apply shows the reason in kube's words
        r = self.kubectl("apply", "-f", self.write_yaml(obj("LanguageModel", "oc", ns, self.CASES[0][1])),
                         ok=False)
        self.assertIn('The LanguageModel "oc" is invalid: spec.endpoint: Required value: provider '
                      'openai-compatible needs the server\'s base URL', r.err, r)

    def test_an_update_that_breaks_the_config_is_refused(self):
        ns = self.new_namespace("refused-upd")
        self.apply(lmodel("az", ns, "azure", "d", endpoint="https://x.openai.azure.com", apiVersion="2024-06-01"))
        r = self.kubectl("patch", "lmodel", "az", "-n", ns, "--type=json",
                         "-p", '[{"op":"remove","path":"/spec/apiVersion"}]', ok=False)
        self.assertIn("spec.apiVersion: Required value", r.err, r)
        self.assertEqual(self.kget("lmodel", "az", ns)["spec"]["apiVersion"], "2024-06-01")


class UpstreamsTest(DerivedBase):

    def test_one_model_name_several_deployments_and_the_routing_strategy(self):
        ns = self.new_namespace("upstreams")
        self.kubectl("patch", "lcluster", ns, "--type=merge",
                     "-p", '{"spec":{"gateway":{"routingStrategy":"least-busy"}}}')
        self.apply(lmodel("gpt", ns, "azure", "gpt-4o", endpoint="https://eu.openai.azure.com",
                          apiVersion="2024-06-01", apiKeySecretRef={"name": "azure-eu"},
                          upstreams=[{"name": "us", "endpoint": "https://us.openai.azure.com",
                                      "apiKeySecretRef": {"name": "azure-us"}},
                                     {"name": "eu-2", "endpoint": "https://eu2.openai.azure.com"}]),
                   lagent("bot", ns, models=["gpt"]))
        g, config = self.gateway(ns)
        got = [(p["api_base"], p["api_key"]) for p in entries(config, "gpt")]
        self.assertEqual(got, [("https://eu.openai.azure.com", "os.environ/LANGOP_API_KEY_GPT"),
                               ("https://us.openai.azure.com", "os.environ/LANGOP_API_KEY_GPT__US"),
                               ("https://eu2.openai.azure.com", "os.environ/LANGOP_API_KEY_GPT")], g["config"])
        self.assertEqual(config["router_settings"], {"routing_strategy": "least-busy"}, g["config"])
        env = env_of(g)
        self.assertEqual(sorted(env), ["LANGOP_API_KEY_GPT", "LANGOP_API_KEY_GPT__US"], g)
        self.assertEqual(env["LANGOP_API_KEY_GPT__US"]["valueFrom"]["secretKeyRef"]["name"], "azure-us")
        # agents still name one model
        a, _ = self.agent_config(ns, "bot")
        self.assertEqual(env_of(a)["LLM_MODEL"]["value"], "gpt", a)
        m = self.kget("lmodel", "gpt", ns)
        self.assertIn("3 deployments", condition(m)["message"], m)
        r = self.kubectl("explain", "lmodel.spec.upstreams")
        self.assertIn("same model_name", r.out.replace("\n", " ").replace("  ", " "), r)


class ReadyConditionTest(DerivedBase):

    def test_phase_and_ready_columns_wait_and_watch_follow_a_missing_fallback(self):
        ns = self.new_namespace("ready")
        self.apply(lmodel("main", ns, fallbacks=["spare"]))
        m = self.kget("lmodel", "main", ns)
        c = condition(m)
        self.assertEqual((m["status"]["phase"], c["status"], c["reason"]), ("Pending", "False", "FallbackNotFound"), m)
        self.assertIn("spare", c["message"])
        first = c["lastTransitionTime"]
        rows = self.kubectl("get", "lmodel", "main", "-n", ns, "--no-headers").out.split()
        self.assertEqual(rows[3:5], ["Pending", "False"], rows)

        watch = Background(self, "get", "lmodel", "main", "-n", ns, "-w", "-o", "json")
        self.assertEqual(condition(watch.json_object(timeout=15))["status"], "False")
        wait = Background(self, "wait", "lmodel/main", "-n", ns, "--for=condition=Ready", "--timeout=30s")
        time.sleep(1.1)   # RFC 3339 seconds: a new lastTransitionTime is visible
        self.apply(lmodel("spare", ns))
        self.assertIn("condition met", wait.line(timeout=30))
        changed = watch.json_object(timeout=15)   # the watch sees the derived change as an event of its own
        self.assertGreater(int(changed["metadata"]["resourceVersion"]), int(m["metadata"]["resourceVersion"]))
        c = condition(changed)
        self.assertEqual((changed["status"]["phase"], c["status"], c["reason"]), ("Ready", "True", "Served"))
        self.assertGreater(c["lastTransitionTime"], first)

        # a change that does not flip it keeps the time
        self.kubectl("patch", "lmodel", "main", "-n", ns, "--type=merge", "-p", '{"spec":{"modelName":"gpt-4.1"}}')
        c2 = condition(self.kget("lmodel", "main", ns))
        self.assertEqual((c2["status"], c2["lastTransitionTime"]), ("True", c["lastTransitionTime"]))
        self.assertEqual(c2["observedGeneration"], 2)

    def test_a_clash_is_shown_on_the_model_and_the_cluster(self):
        ns = self.new_namespace("clash")
        self.apply(lmodel("a-b", ns, apiKeySecretRef={"name": "one"}),
                   lmodel("a.b", ns, apiKeySecretRef={"name": "two"}))
        m = self.kget("lmodel", "a.b", ns)
        c = condition(m)
        self.assertEqual((m["status"]["phase"], c["status"], c["reason"]), ("Failed", "False", "EnvNameClash"), m)
        self.assertIn("LANGOP_API_KEY_A_B", c["message"])
        st = self.kget("lcluster", ns)["status"]
        self.assertEqual((st["models"], st["modelCount"]), (["a-b"], 1), st)
        self.assertEqual([(u["name"], u["reason"]) for u in st["unservedModels"]], [("a.b", "EnvNameClash")], st)
        # the gateway config agrees
        _, config = self.gateway(ns)
        self.assertEqual([e["model_name"] for e in config["model_list"]], ["a-b"])
        self.assertEqual(self.kget("lmodel", "a-b", ns)["status"]["gatewayEndpoint"], gateway_url(ns))
