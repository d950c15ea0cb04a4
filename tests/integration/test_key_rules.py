"""API keys never reach agents, as users meet the rule: `kubectl apply` of an
agent or tool whose spec.deployment.env sets a variable the server sets
(MODEL_ENDPOINT ...), a literal provider key (OPENAI_API_KEY: sk-...) or a
secretKeyRef to a Secret a LanguageModel of the namespace names is refused
422 Invalid with one FieldValueForbidden cause per offending entry, on create
and on update, also through python3-kubernetes; the other direction too (a
model naming a Secret an agent's or tool's env reads); an envFrom in the body
does not get through; and the agentconfig env is the env the agent container
gets: the server's seven, then spec.deployment.env in order."""

import json

from harness import API, ServerTestCase, collection_path, item_path, obj

SERVER_VARS = ["MODEL_ENDPOINT", "LLM_MODEL", "MCP_SERVERS", "AGENT_NAME", "AGENT_NAMESPACE", "AGENT_UID",
               "AGENT_CLUSTER_NAME"]
LITERAL_KEY_WHY = ("{} is a provider credential; API keys stay in the gateway "
                   "(reference a Secret with a LanguageModel's apiKeySecretRef)")


def lmodel(name, ns, provider="openai", model_name="gpt-4o", **spec):
    return obj("LanguageModel", name, ns, {"provider": provider, "modelName": model_name, **spec})


def lagent(name, ns, env=None, models=("gpt",)):
    spec = {"image": "ghcr.io/langop/agent:v1", "models": [{"name": m} for m in models]}
    if env is not None:
        spec["deployment"] = {"env": env}
    return obj("LanguageAgent", name, ns, spec)


def ltool(name, ns, env=None):
    spec = {"image": "ghcr.io/langop/web-tool:v1"}
    if env is not None:
        spec["deployment"] = {"env": env}
    return obj("LanguageTool", name, ns, spec)


def secret_env(var, secret, key="api-key"):
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


class KeyRulesTest(ServerTestCase):

    # ----------------------------------------------------------- helpers

    def apply(self, *docs, ok=True):
        """kubectl apply -f with every document in one file (kubectl's default, strict, validation)."""
        return self.kubectl("apply", "-f", self.write_yaml(*docs), ok=ok)

    def post(self, o, query=""):
        return self.api("POST", collection_path(o["kind"], o["metadata"]["namespace"]) + query, o)

    def causes(self, r):
        """The causes of a 422 Invalid answer, as (field, reason, message)."""
        s = self.assertStatus(r, 422, "Invalid")
        return [(c.get("field"), c.get("reason"), c.get("message")) for c in s["details"]["causes"]]

    def assertForbidden(self, causes, field, why):
        self.assertIn((field, "FieldValueForbidden", f"Forbidden: {why}"), causes)

    def assertInvalid(self, res, kind, name, field, why):
        """kubectl printed the 422: `The <Kind> "<name>" is invalid: <field>: Forbidden: <why>`
        (one cause) or the same under a `* ` bullet (several)."""
        self.assertIn(f'The {kind} "{name}" is invalid: ', res.err, res)
        line = f"{field}: Forbidden: {why}"
        found = [l for l in res.err.splitlines() if l.endswith(line) or l.endswith(line + "]")]
        self.assertEqual(len(found), 1, f"{line!r} in {res.err}")

    def assertAbsent(self, kind, name, ns):
        self.api("GET", item_path(kind, name, ns), expect=404)

    def stored(self, kind, name, ns):
        return self.api("GET", item_path(kind, name, ns), expect=200).json()

    def agent_env(self, ns, name):
        a = json.loads(self.kubectl("get", "--raw", f"{API}/namespaces/{ns}/languageagents/{name}/agentconfig").out)
        return a["env"]

    # ----------------------------------------------------------- the container env

    def test_kubectl_apply_of_a_literal_key_is_refused_422(self):
        ns = self.new_namespace("literal")
        agent = lagent("bot", ns, env=[{"name": "LOG_LEVEL", "value": "debug"},
                                       {"name": "OPENAI_API_KEY", "value": "sk-live-abcdef0123456789"}])
        r = self.apply(lmodel("gpt", ns), agent, ok=False)
        self.assertInvalid(r, "LanguageAgent", "bot", "spec.deployment.env[1].value",
                           LITERAL_KEY_WHY.format("OPENAI_API_KEY"))
        self.assertIn("languagemodel.langop.io/gpt created", r.out, r)
        self.assertAbsent("LanguageAgent", "bot", ns)
        # over HTTP: exactly one cause, for the key
        self.assertEqual(self.causes(self.post(agent)),
                         [("spec.deployment.env[1].value", "FieldValueForbidden",
                           "Forbidden: " + LITERAL_KEY_WHY.format("OPENAI_API_KEY"))])
        # the key reached nowhere: not the store's files
        for suffix in ("", "-wal"):
            path = str(self.server.db) + suffix
            try:
                with open(path, "rb") as f:
                    self.assertNotIn(b"sk-live-abcdef", f.read(), path)
            except FileNotFoundError:
                pass

    def test_literal_keys_of_every_provider_are_refused_one_cause_each(self):
        ns = self.new_namespace("literals")
        names = ["ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AZURE_API_KEY",
                 "GEMINI_API_KEY", "AWS_BEARER_TOKEN_BEDROCK", "LITELLM_MASTER_KEY", "mistral_api_key"]
        env = [{"name": "PLAIN", "value": "x"}] + [{"name": n, "value": "secret-value"} for n in names]
        # allowed: no value, an empty one, a Secret of the agent's own, a file path
        env += [{"name": "OPENAI_API_KEY"}, {"name": "GROQ_API_KEY", "value": ""},
                secret_env("COHERE_API_KEY", "own-cohere"),
                {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/var/run/gcp/key.json"}]
        causes = self.causes(self.post(lagent("bot", ns, env=env)))
        self.assertEqual(len(causes), len(names), causes)
        for i, n in enumerate(names, start=1):
            self.assertForbidden(causes, f"spec.deployment.env[{i}].value", LITERAL_KEY_WHY.format(n))
        del env[1:1 + len(names)]
        self.assertEqual(self.post(lagent("bot", ns, env=env)).status, 201)

    def test_variables_the_server_sets_are_refused(self):
        ns = self.new_namespace("server-vars")
        env = [{"name": v, "value": "mine"} for v in SERVER_VARS] + [{"name": "LOG_LEVEL", "value": "info"}]
        r = self.apply(lagent("bot", ns, env=env), ok=False)
        self.assertInvalid(r, "LanguageAgent", "bot", "spec.deployment.env[0].name",
                           "MODEL_ENDPOINT is set by the server (the gateway's address)")
        self.assertInvalid(r, "LanguageAgent", "bot", "spec.deployment.env[1].name",
                           "LLM_MODEL is set by the server (the agent's models)")
        causes = self.causes(self.post(lagent("bot", ns, env=env)))
        self.assertEqual([c[0] for c in causes], [f"spec.deployment.env[{i}].name" for i in range(7)], causes)
        self.assertTrue(all(c[1] == "FieldValueForbidden" for c in causes), causes)
        self.assertAbsent("LanguageAgent", "bot", ns)

    def test_a_tool_too(self):
        ns = self.new_namespace("tool")
        env = [{"name": "AGENT_NAME", "value": "fine for a tool"}, {"name": "MODEL_ENDPOINT", "value": "http://x"},
               {"name": "LLM_MODEL", "value": "m"}, {"name": "ANTHROPIC_API_KEY", "value": "sk-ant-123"}]
        r = self.apply(ltool("web", ns, env=env), ok=False)
        self.assertIn('The LanguageTool "web" is invalid', r.err, r)
        causes = self.causes(self.post(ltool("web", ns, env=env)))
        self.assertEqual(len(causes), 3, causes)
        self.assertForbidden(causes, "spec.deployment.env[1].name",
                             "MODEL_ENDPOINT is reserved for the server (the gateway's address)")
        self.assertForbidden(causes, "spec.deployment.env[2].name",
                             "LLM_MODEL is reserved for the server (the agent's models)")
        self.assertForbidden(causes, "spec.deployment.env[3].value", LITERAL_KEY_WHY.format("ANTHROPIC_API_KEY"))

        # a tool's env may not read a model's Secret, and a model may not name a tool's
        self.apply(lmodel("gpt", ns, apiKeySecretRef={"name": "openai"}),
                   ltool("search", ns, env=[secret_env("SEARCH_KEY", "search-api")]))
        r = self.apply(ltool("web", ns, env=[secret_env("K", "openai")]), ok=False)
        self.assertInvalid(r, "LanguageTool", "web", "spec.deployment.env[0].valueFrom.secretKeyRef.name",
                           'Secret "openai" holds the key of LanguageModel "gpt"; tools never hold API keys')
        r = self.apply(lmodel("claude", ns, "anthropic", "claude-3-haiku", apiKeySecretRef={"name": "search-api"}),
                       ok=False)
        self.assertInvalid(r, "LanguageModel", "claude", "spec.apiKeySecretRef.name",
                           'Secret "search-api" is referenced by LanguageTool "search" '
                           "(spec.deployment.env[0].valueFrom.secretKeyRef.name); tools never hold API keys: "
                           "give the model a Secret of its own")
        self.assertAbsent("LanguageModel", "claude", ns)

    def test_python_client_sees_the_422(self):
        from kubernetes.client.exceptions import ApiException
        ns = self.new_namespace("dyn")
        body = lagent("bot", ns, env=[{"name": "MODEL_ENDPOINT", "value": "http://elsewhere"}])
        with self.assertRaises(ApiException) as cm:
            self.resource("LanguageAgent").create(body=body, namespace=ns)
        self.assertEqual(cm.exception.status, 422)
        s = json.loads(cm.exception.body)
        self.assertEqual(s["reason"], "Invalid", s)
        self.assertEqual(s["details"]["causes"],
                         [{"reason": "FieldValueForbidden", "field": "spec.deployment.env[0].name",
                           "message": "Forbidden: MODEL_ENDPOINT is set by the server (the gateway's address)"}])

    # ----------------------------------------------------------- Secrets shared with a model

    def test_agent_reading_a_models_secret_is_refused(self):
        ns = self.new_namespace("agent-second")
        self.apply(lmodel("gpt", ns, apiKeySecretRef={"name": "openai"}),
                   lmodel("br", ns, "bedrock", "anthropic.claude-3-haiku", region="eu-west-1",
                          credentialsSecretRef={"name": "aws"}))
        env = [secret_env("SEARCH_KEY", "search-api"), secret_env("OPENAI_API_KEY", "openai"),
               {"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "openai", "key": "x"}}},
               secret_env("AWS_SECRET_ACCESS_KEY", "aws", "AWS_SECRET_ACCESS_KEY")]
        r = self.apply(lagent("bot", ns, env=env), ok=False)
        self.assertInvalid(r, "LanguageAgent", "bot", "spec.deployment.env[1].valueFrom.secretKeyRef.name",
                           'Secret "openai" holds the key of LanguageModel "gpt"; agents never hold API keys')
        self.assertInvalid(r, "LanguageAgent", "bot", "spec.deployment.env[3].valueFrom.secretKeyRef.name",
                           'Secret "aws" holds the key of LanguageModel "br"; agents never hold API keys')
        self.assertEqual(len(self.causes(self.post(lagent("bot", ns, env=env)))), 2)
        self.assertAbsent("LanguageAgent", "bot", ns)
        # the same Secret name in another namespace is another Secret
        other = self.new_namespace("agent-second-other")
        self.apply(lagent("bot", other, env=env))

    def test_model_naming_an_agents_secret_is_refused(self):
        ns = self.new_namespace("model-second")
        self.apply(lagent("bot", ns, env=[{"name": "A", "value": "1"}, secret_env("TOKEN", "shared")]))
        why = ('Secret "shared" is referenced by LanguageAgent "bot" '
               "(spec.deployment.env[1].valueFrom.secretKeyRef.name); agents never hold API keys: "
               "give the model a Secret of its own")
        r = self.apply(lmodel("gpt", ns, apiKeySecretRef={"name": "shared"}), ok=False)
        self.assertInvalid(r, "LanguageModel", "gpt", "spec.apiKeySecretRef.name", why)
        self.assertAbsent("LanguageModel", "gpt", ns)
        causes = self.causes(self.post(lmodel("br", ns, "bedrock", "m", region="eu-west-1",
                                              credentialsSecretRef={"name": "shared"})))
        self.assertEqual(causes, [("spec.credentialsSecretRef.name", "FieldValueForbidden", "Forbidden: " + why)])
        # the new places a model names Secrets: an upstream's refs, a custom model's litellmParams
        causes = self.causes(self.post(lmodel(
            "multi", ns, upstreams=[{"name": "eu", "apiKeySecretRef": {"name": "fine"}},
                                    {"name": "us", "apiKeySecretRef": {"name": "shared"}}])))
        self.assertEqual(causes, [("spec.upstreams[1].apiKeySecretRef.name", "FieldValueForbidden",
                                   "Forbidden: " + why)])
        causes = self.causes(self.post(obj("LanguageModel", "cust", ns, {
            "provider": "custom", "modelName": "m",
            "litellmParams": {"model": "openai/m", "api_base": "https://llm.example.com/v1",
                              "api_key": {"secretKeyRef": {"name": "shared", "key": "k"}}}})))
        self.assertIn(("spec.litellmParams.api_key.secretKeyRef.name", "FieldValueForbidden", "Forbidden: " + why),
                      causes)
        # a Secret of its own is fine
        self.apply(lmodel("gpt", ns, apiKeySecretRef={"name": "openai"}))

    def test_updates_are_refused_too(self):
        ns = self.new_namespace("updates")
        self.apply(lmodel("gpt", ns, apiKeySecretRef={"name": "openai"}),
                   lagent("bot", ns, env=[{"name": "LOG_LEVEL", "value": "info"}]))
        before = self.stored("LanguageAgent", "bot", ns)

        # kubectl apply of a changed agent: a literal key
        r = self.apply(lagent("bot", ns, env=[{"name": "LOG_LEVEL", "value": "info"},
                                              {"name": "OPENAI_API_KEY", "value": "sk-live-1"}]), ok=False)
        self.assertInvalid(r, "LanguageAgent", "bot", "spec.deployment.env[1].value",
                           LITERAL_KEY_WHY.format("OPENAI_API_KEY"))
        # a merge patch reading the model's Secret (a cross rule, checked in the store's writer)
        r = self.kubectl("patch", "lagent", "bot", "-n", ns, "--type=merge", "-p",
                         json.dumps({"spec": {"deployment": {"env": [secret_env("K", "openai")]}}}), ok=False)
        self.assertInvalid(r, "LanguageAgent", "bot", "spec.deployment.env[0].valueFrom.secretKeyRef.name",
                           'Secret "openai" holds the key of LanguageModel "gpt"; agents never hold API keys')
        # a PUT setting MODEL_ENDPOINT
        put = json.loads(json.dumps(before))
        put["spec"]["deployment"]["env"] = [{"name": "MODEL_ENDPOINT", "value": "http://elsewhere"}]
        self.assertEqual(self.causes(self.api("PUT", item_path("LanguageAgent", "bot", ns), put))[0][0],
                         "spec.deployment.env[0].name")
        after = self.stored("LanguageAgent", "bot", ns)
        self.assertEqual(after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"])
        self.assertEqual(after["spec"], before["spec"])

        # the model, patched to a Secret the agent reads
        self.kubectl("patch", "lagent", "bot", "-n", ns, "--type=merge", "-p",
                     json.dumps({"spec": {"deployment": {"env": [secret_env("SEARCH_KEY", "search-api")]}}}))
        r = self.kubectl("patch", "lmodel", "gpt", "-n", ns, "--type=merge", "-p",
                         '{"spec":{"apiKeySecretRef":{"name":"search-api"}}}', ok=False)
        self.assertInvalid(r, "LanguageModel", "gpt", "spec.apiKeySecretRef.name",
                           'Secret "search-api" is referenced by LanguageAgent "bot" '
                           "(spec.deployment.env[0].valueFrom.secretKeyRef.name); agents never hold API keys: "
                           "give the model a Secret of its own")
        self.assertEqual(self.stored("LanguageModel", "gpt", ns)["spec"]["apiKeySecretRef"]["name"], "openai")

    def test_env_from_in_the_body_does_not_get_through(self):
        ns = self.new_namespace("envfrom")
        self.apply(lmodel("gpt", ns, apiKeySecretRef={"name": "openai"}))
        agent = lagent("bot", ns, env=[{"name": "A", "value": "1"}])
        agent["spec"]["deployment"]["envFrom"] = [{"secretRef": {"name": "openai"}}]
        # kubectl's default (strict) validation: refused as an unknown field
        r = self.apply(agent, ok=False)
        self.assertIn('unknown field "spec.deployment.envFrom"', r.err, r)
        self.assertAbsent("LanguageAgent", "bot", ns)
        # a client that does not ask for strict: the field is pruned, with a warning
        r = self.post(agent)
        self.assertEqual(r.status, 201, r)
        self.assertIn("spec.deployment.envFrom", r.headers.get("warning", ""), r)
        self.assertNotIn("envFrom", self.stored("LanguageAgent", "bot", ns)["spec"]["deployment"])
        env = self.agent_env(ns, "bot")
        self.assertEqual([e["name"] for e in env], SERVER_VARS + ["A"], env)
        self.assertNotIn("openai", json.dumps(env))

    # ----------------------------------------------------------- the env the container gets

    def test_agentconfig_env_is_the_servers_seven_then_deployment_env_in_order(self):
        ns = self.new_namespace("env-order")
        user_env = [
            {"name": "LOG_LEVEL", "value": "debug"},
            secret_env("SEARCH_KEY", "search-api", "token"),
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "FEATURES", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "all"}}},
            {"name": "EMPTY"},
            {"name": "LOG_LEVEL", "value": "info"},
        ]
        self.apply(lmodel("gpt", ns, apiKeySecretRef={"name": "openai"}), lagent("bot", ns, env=user_env))
        env = self.agent_env(ns, "bot")
        self.assertEqual([e["name"] for e in env[:7]], SERVER_VARS, env)
        self.assertEqual(env[0]["value"], f"http://gateway.{ns}.svc.cluster.local:8000")
        self.assertEqual(env[1]["value"], "gpt")
        self.assertEqual(env[7:], user_env)

        # an edit of the env is a new env, in the new order, and a new hash
        p = f"{API}/namespaces/{ns}/languageagents/bot/agentconfig"
        h1 = self.api("GET", p, expect=200).json()["hash"]
        self.kubectl("patch", "lagent", "bot", "-n", ns, "--type=merge", "-p",
                     json.dumps({"spec": {"deployment": {"env": list(reversed(user_env))}}}))
        got = self.api("GET", p, expect=200).json()
        self.assertEqual(got["env"][7:], list(reversed(user_env)))
        self.assertNotEqual(got["hash"], h1)
