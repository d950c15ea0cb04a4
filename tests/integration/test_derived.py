"""Derived config on read, as users see it: the GatewayConfig of a
LanguageCluster and the AgentConfig of a LanguageAgent read with
`kubectl get --raw` (models by name with explicit provider prefixes, API keys
only as os.environ/ references with their secretKeyRef, fallbacks, tool and
gateway endpoints, the agent's env, unresolved references, a hash that
follows the spec and nothing else, byte-identical reads, --cluster-domain),
and the computed status (cluster endpoint, model names and counts; model
gateway endpoint; agent model endpoint, models and ReferencesResolved) on
get, list, Table and watch, never stored: not after a client writes a bogus
status, not in the database file."""

import json
import re
import subprocess

import yaml

from harness import (API, KINDS, FlagServerTestCase, ServerTestCase, collection_path, item_path, obj,
                     table)

GATEWAY_PORT = 8000
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
HASH_RE = re.compile(r"^[0-9a-f]{64}$")
# every status field the server computes on read (derive.h), by kind
DERIVED_STATUS = {
    "languageclusters": ("gatewayEndpoint", "models", "agentCount", "modelCount", "toolCount",
                         "personaCount"),
    "languagemodels": ("gatewayEndpoint",),
    "languageagents": ("modelEndpoint", "models"),
    "languagetools": ("endpoint",),
}


def gateway_url(ns, domain="cluster.local"):
    return f"http://gateway.{ns}.svc.{domain}:{GATEWAY_PORT}"


def lmodel(name, ns, provider="openai", model_name="gpt-4o", **spec):
    return obj("LanguageModel", name, ns, {"provider": provider, "modelName": model_name, **spec})


def lagent(name, ns, models=(), tools=(), persona=None, instructions="Answer briefly."):
    spec = {"image": "ghcr.io/langop/agent:v1", "instructions": instructions,
            "models": [m if isinstance(m, dict) else {"name": m} for m in models]}
    if tools:
        spec["tools"] = [t if isinstance(t, dict) else {"name": t} for t in tools]
    if persona:
        spec["persona"] = persona
    return obj("LanguageAgent", name, ns, spec)


def ltool(name, ns, **spec):
    return obj("LanguageTool", name, ns, {"image": "ghcr.io/langop/web-tool:v1", **spec})


def lpersona(name, ns, **spec):
    return obj("LanguagePersona", name, ns, spec or {"tone": "friendly"})


def env_of(cfg):
    """The env list of a GatewayConfig/AgentConfig as {name: entry}."""
    return {e["name"]: e for e in cfg["env"]}


def condition(o, ctype="ReferencesResolved"):
    found = [c for c in (o.get("status") or {}).get("conditions") or [] if c.get("type") == ctype]
    return found[0] if len(found) == 1 else None


class DerivedBase(ServerTestCase):

    def apply(self, *docs):
        """kubectl create -f with every document in one file."""
        return self.kubectl("create", "-f", self.write_yaml(*docs))

    def raw(self, path):
        return json.loads(self.kubectl("get", "--raw", path).out)

    def gateway(self, cluster):
        """(GatewayConfig object, its config parsed as YAML)."""
        g = self.raw(f"{API}/languageclusters/{cluster}/gatewayconfig")
        self.assertEqual((g.get("apiVersion"), g.get("kind")), ("langop.io/v1alpha1", "GatewayConfig"), g)
        self.assertEqual(g["metadata"]["name"], cluster, g)
        self.assertRegex(g.get("hash", ""), HASH_RE, g)
        self.assertIsInstance(g.get("config"), str, g)
        return g, yaml.safe_load(g["config"])

    def agent_config(self, ns, name):
        a = self.raw(f"{API}/namespaces/{ns}/languageagents/{name}/agentconfig")
        self.assertEqual((a.get("apiVersion"), a.get("kind")), ("langop.io/v1alpha1", "AgentConfig"), a)
        self.assertEqual((a["metadata"]["name"], a["metadata"].get("namespace")), (name, ns), a)
        self.assertRegex(a.get("hash", ""), HASH_RE, a)
        self.assertIsInstance(a.get("config"), str, a)
        return a, yaml.safe_load(a["config"])

    def kget(self, short, name=None, ns=None):
        args = ["get", short] + ([name] if name else []) + (["-n", ns] if ns else []) + ["-o", "json"]
        return json.loads(self.kubectl(*args).out)

    def model_entries(self, config):
        """model_list as {model_name: litellm_params}; a name appears once."""
        names = [m["model_name"] for m in config.get("model_list") or []]
        self.assertEqual(len(names), len(set(names)), config)
        return {m["model_name"]: m["litellm_params"] for m in config.get("model_list") or []}

    def assertUnresolved(self, cfg, kind, name, reason=None):
        hits = [u for u in cfg.get("unresolved") or []
                if u.get("kind") == kind and u.get("name") == name
                and (reason is None or u.get("reason") == reason)]
        self.assertEqual(len(hits), 1, f"{kind} {name} ({reason}) in unresolved: {cfg.get('unresolved')}")


# ======================================================================== gateway config

class GatewayConfigTest(DerivedBase):

    def test_models_by_name_with_prefixes_key_references_and_fallbacks(self):
        ns = self.new_namespace("gw-models")
        self.apply(
            lmodel("gpt", ns, "openai", "gpt-4o",
                   apiKeySecretRef={"name": "openai-creds", "key": "token"},
                   fallbacks=["claude-sonnet", "ghost"]),
            lmodel("claude-sonnet", ns, "anthropic", "claude-3-5-sonnet-20241022",
                   apiKeySecretRef={"name": "anthropic"}),
            lmodel("local", ns, "openai-compatible", "llama3", endpoint="http://vllm.models:8000/v1"),
            lmodel("az", ns, "azure", "my-deployment", endpoint="https://x.openai.azure.com",
                   apiVersion="2024-06-01", apiKeySecretRef={"name": "azure", "key": "k"}),
            lmodel("br", ns, "bedrock", "anthropic.claude-3-haiku", region="eu-west-1"),
            lmodel("vx", ns, "vertex", "gemini-1.5-pro", project="proj-1", location="europe-west4"),
            lmodel("gm", ns, "gemini", "gemini-1.5-flash"),
            obj("LanguageModel", "grq", ns, {"litellmProvider": "groq", "modelName": "llama3-70b"}),
        )
        g, config = self.gateway(ns)
        models = self.model_entries(config)
        self.assertEqual(set(models), {"gpt", "claude-sonnet", "local", "az", "br", "vx", "gm", "grq"},
                         g["config"])
        want_model = {"gpt": "openai/gpt-4o", "claude-sonnet": "anthropic/claude-3-5-sonnet-20241022",
                      "local": "openai/llama3", "az": "azure/my-deployment",
                      "br": "bedrock/anthropic.claude-3-haiku", "vx": "vertex_ai/gemini-1.5-pro",
                      "gm": "gemini/gemini-1.5-flash", "grq": "groq/llama3-70b"}
        self.assertEqual({n: p.get("model") for n, p in models.items()}, want_model, g["config"])
        self.assertEqual(models["local"].get("api_base"), "http://vllm.models:8000/v1", g["config"])
        self.assertEqual(models["az"].get("api_base"), "https://x.openai.azure.com", g["config"])
        self.assertEqual(models["az"].get("api_version"), "2024-06-01", g["config"])
        self.assertEqual(models["br"].get("aws_region_name"), "eu-west-1", g["config"])
        self.assertEqual((models["vx"].get("vertex_project"), models["vx"].get("vertex_location")),
                         ("proj-1", "europe-west4"), g["config"])

        # keys: only os.environ/ references, each with its secretKeyRef beside the config
        env = env_of(g)
        self.assertEqual(models["gpt"].get("api_key"), "os.environ/LANGOP_API_KEY_GPT", g["config"])
        self.assertEqual(models["claude-sonnet"].get("api_key"), "os.environ/LANGOP_API_KEY_CLAUDE_SONNET")
        self.assertEqual(models["az"].get("api_key"), "os.environ/LANGOP_API_KEY_AZ")
        self.assertEqual(env["LANGOP_API_KEY_GPT"].get("valueFrom"),
                         {"secretKeyRef": {"name": "openai-creds", "key": "token"}}, g["env"])
        self.assertEqual(env["LANGOP_API_KEY_CLAUDE_SONNET"]["valueFrom"]["secretKeyRef"],
                         {"name": "anthropic", "key": "api-key"}, g["env"])   # the schema's default key
        self.assertEqual(env["LANGOP_API_KEY_AZ"]["valueFrom"]["secretKeyRef"], {"name": "azure", "key": "k"})
        # no key variable for a model without apiKeySecretRef, and no value held anywhere
        self.assertNotIn("LANGOP_API_KEY_LOCAL", env)
        self.assertNotIn("os.environ/", str(models["local"].get("api_key", "")))
        for e in g["env"]:
            self.assertNotIn("value", e, f"a literal value in the gateway's env: {e}")
            self.assertIn("secretKeyRef", e.get("valueFrom", {}), e)
        referenced = set(re.findall(r"os\.environ/([A-Za-z0-9_]+)", g["config"]))
        self.assertLessEqual(referenced, set(env), "an os.environ/ variable without a secret reference")

        # fallbacks by model_name; the missing one is left out and reported
        fallbacks = (config.get("router_settings") or {}).get("fallbacks")
        self.assertEqual(fallbacks, [{"gpt": ["claude-sonnet"]}], g["config"])
        self.assertNotIn("ghost", g["config"])
        self.assertUnresolved(g, "LanguageModel", "ghost")

    def test_hash_follows_the_spec_not_labels_and_delete_removes_the_model(self):
        ns = self.new_namespace("gw-hash")
        self.apply(lmodel("main", ns, "openai", "gpt-4o", fallbacks=["backup"]),
                   lmodel("backup", ns, "anthropic", "claude-3-haiku"))
        g1, c1 = self.gateway(ns)
        self.assertEqual(c1["router_settings"]["fallbacks"], [{"main": ["backup"]}], g1["config"])
        self.assertEqual(g1["unresolved"], [], g1)

        # a label reaches nothing the gateway sees
        self.kubectl("label", "lmodel", "main", "-n", ns, "tier=gold")
        self.assertEqual(self.kget("lmodel", "main", ns)["metadata"]["labels"], {"tier": "gold"})
        g2, _ = self.gateway(ns)
        self.assertEqual((g2["config"], g2["hash"]), (g1["config"], g1["hash"]))

        # a new modelName does
        self.kubectl("patch", "lmodel", "main", "-n", ns, "--type=merge",
                     "-p", '{"spec":{"modelName":"gpt-4o-mini"}}')
        g3, c3 = self.gateway(ns)
        self.assertNotEqual(g3["hash"], g1["hash"])
        self.assertEqual(self.model_entries(c3)["main"]["model"], "openai/gpt-4o-mini", g3["config"])

        # deleting the fallback target: gone from model_list and from the fallbacks, reported
        self.kubectl("delete", "lmodel", "backup", "-n", ns)
        g4, c4 = self.gateway(ns)
        self.assertEqual(set(self.model_entries(c4)), {"main"}, g4["config"])
        self.assertNotIn("backup", g4["config"])
        self.assertUnresolved(g4, "LanguageModel", "backup")
        self.assertNotEqual(g4["hash"], g3["hash"])

        # and the last model: an empty model_list, no env
        self.kubectl("delete", "lmodel", "main", "-n", ns)
        g5, c5 = self.gateway(ns)
        self.assertEqual(self.model_entries(c5), {}, g5["config"])
        self.assertEqual(g5["env"], [], g5)

    def test_reads_are_byte_identical_and_independent_of_creation_order(self):
        models = [lmodel("m-a", None, "openai", "gpt-4o", apiKeySecretRef={"name": "s"},
                         fallbacks=["m-c", "m-b"], rateLimits={"requestsPerMinute": 60},
                         params={"temperature": 0.2, "max_tokens": 100}),
                  lmodel("m-b", None, "anthropic", "claude-3-haiku", timeout="90s"),
                  lmodel("m-c", None, "bedrock", "amazon.titan", region="us-east-1")]
        ns1, ns2 = self.new_namespace("gw-order-a"), self.new_namespace("gw-order-b")
        for ns, order in ((ns1, models), (ns2, list(reversed(models)))):
            docs = [json.loads(json.dumps(m)) for m in order]
            for d in docs:
                d["metadata"]["namespace"] = ns
            self.apply(*docs)

        path = f"{API}/languageclusters/{ns1}/gatewayconfig"
        r1, r2 = self.api("GET", path, expect=200), self.api("GET", path, expect=200)
        self.assertEqual(r1.body, r2.body, "two reads with no write between differ")
        a, b = r1.json(), self.api("GET", f"{API}/languageclusters/{ns2}/gatewayconfig", expect=200).json()
        self.assertEqual(a["config"], b["config"], "the same models created in another order")
        self.assertEqual((a["env"], a["hash"]), (b["env"], b["hash"]))

        # agent config: two reads, same bytes
        self.apply(lagent("bot", ns1, models=["m-b", "m-a", "nope"]))
        p = f"{API}/namespaces/{ns1}/languageagents/bot/agentconfig"
        r1, r2 = self.api("GET", p, expect=200), self.api("GET", p, expect=200)
        self.assertEqual(r1.body, r2.body)
        self.assertEqual(self.agent_config(ns1, "bot")[0]["hash"], r1.json()["hash"])

    def test_missing_cluster_or_agent_is_404(self):
        r = self.kubectl("get", "--raw", f"{API}/languageclusters/no-such-cluster/gatewayconfig", ok=False)
        self.assertIn("NotFound", r.err, r)
        self.assertStatus(self.api("GET", f"{API}/languageclusters/no-such-cluster/gatewayconfig"),
                          404, "NotFound")
        ns = self.new_namespace("gw-404")
        r = self.kubectl("get", "--raw", f"{API}/namespaces/{ns}/languageagents/nobody/agentconfig",
                         ok=False)
        self.assertIn("NotFound", r.err, r)
        self.assertStatus(self.api("GET", f"{API}/namespaces/{ns}/languageagents/nobody/agentconfig"),
                          404, "NotFound")


# ======================================================================== agent config

class AgentConfigTest(DerivedBase):

    def test_agent_config_with_models_tools_persona(self):
        ns = self.new_namespace("ac-full")
        self.apply(lmodel("gpt", ns, "openai", "gpt-4o", apiKeySecretRef={"name": "openai"}),
                   lmodel("claude", ns, "anthropic", "claude-3-5-sonnet"),
                   ltool("web", ns),
                   ltool("files", ns, deploymentMode="sidecar", port=3000),
                   lpersona("helper", ns, tone="friendly", personality="patient",
                            expertise="kubernetes"),
                   lagent("bot", ns, models=[{"name": "claude", "role": "primary", "priority": 1},
                                             {"name": "gpt", "role": "fallback", "priority": 2}],
                          tools=["web", "files"], persona="helper",
                          instructions="Help with clusters."))
        uid = self.kget("lagent", "bot", ns)["metadata"]["uid"]
        a, config = self.agent_config(ns, "bot")
        self.assertEqual(config["agent"], {"name": "bot", "namespace": ns}, a["config"])
        self.assertEqual(config["instructions"], "Help with clusters.", a["config"])
        persona = config["persona"]
        self.assertEqual({k: persona.get(k) for k in ("tone", "personality", "expertise")},
                         {"tone": "friendly", "personality": "patient", "expertise": "kubernetes"},
                         a["config"])
        web_url = f"http://web.{ns}.svc.cluster.local:8080"
        self.assertEqual(config["tools"], {"web": {"endpoint": web_url, "protocol": "mcp"},
                                           "files": {"endpoint": "http://localhost:3000",
                                                     "protocol": "mcp"}}, a["config"])
        gw = gateway_url(ns)
        self.assertEqual(config["models"], {
            "claude": {"role": "primary", "priority": 1, "provider": "anthropic",
                       "model": "claude-3-5-sonnet", "endpoint": gw},
            "gpt": {"role": "fallback", "priority": 2, "provider": "openai", "model": "gpt-4o",
                    "endpoint": gw}}, a["config"])
        # the agent holds no credential, not even a reference to one
        self.assertNotIn("api_key", a["config"])
        self.assertNotIn("secretKeyRef", json.dumps(a["env"]))

        env = {e["name"]: e.get("value") for e in a["env"]}
        self.assertEqual(env["MODEL_ENDPOINT"], gw, a["env"])
        self.assertEqual(env["LLM_MODEL"], "claude,gpt", a["env"])     # the agent's order
        self.assertEqual(sorted(env["MCP_SERVERS"].split(",")), sorted([web_url, "http://localhost:3000"]))
        self.assertEqual((env["AGENT_NAME"], env["AGENT_NAMESPACE"], env["AGENT_UID"],
                          env["AGENT_CLUSTER_NAME"]), ("bot", ns, uid, ns), a["env"])
        self.assertEqual(a["unresolved"], [], a)

    def test_missing_references_are_left_out_then_resolve(self):
        ns = self.new_namespace("ac-missing")
        self.apply(lmodel("gpt", ns), ltool("web", ns),
                   lagent("lonely", ns, models=["gpt", "ghost-model"], tools=["web", "ghost-tool"],
                          persona="ghost-persona"))
        a1, c1 = self.agent_config(ns, "lonely")
        self.assertEqual(set(c1["models"]), {"gpt"}, a1["config"])
        self.assertEqual(set(c1["tools"]), {"web"}, a1["config"])
        self.assertNotIn("persona", c1, a1["config"])
        self.assertNotIn("ghost", a1["config"])
        env = {e["name"]: e.get("value") for e in a1["env"]}
        self.assertEqual(env["LLM_MODEL"], "gpt", a1["env"])
        self.assertEqual(env["MCP_SERVERS"], f"http://web.{ns}.svc.cluster.local:8080", a1["env"])
        self.assertUnresolved(a1, "LanguageModel", "ghost-model", "ModelNotFound")
        self.assertUnresolved(a1, "LanguageTool", "ghost-tool", "ToolNotFound")
        self.assertUnresolved(a1, "LanguagePersona", "ghost-persona", "PersonaNotFound")
        self.assertEqual(len(a1["unresolved"]), 3, a1["unresolved"])

        # the missing objects appear: the next read has them
        self.apply(lmodel("ghost-model", ns, "gemini", "gemini-1.5-pro"),
                   ltool("ghost-tool", ns, port=9000),
                   lpersona("ghost-persona", ns, tone="dry"))
        a2, c2 = self.agent_config(ns, "lonely")
        self.assertEqual(a2["unresolved"], [], a2)
        self.assertEqual(c2["models"]["ghost-model"]["model"], "gemini-1.5-pro", a2["config"])
        self.assertEqual(c2["models"]["ghost-model"]["endpoint"], gateway_url(ns), a2["config"])
        self.assertEqual(c2["tools"]["ghost-tool"]["endpoint"],
                         f"http://ghost-tool.{ns}.svc.cluster.local:9000", a2["config"])
        self.assertEqual(c2["persona"]["tone"], "dry", a2["config"])
        env = {e["name"]: e.get("value") for e in a2["env"]}
        self.assertEqual(env["LLM_MODEL"], "gpt,ghost-model", a2["env"])
        self.assertNotEqual(a2["hash"], a1["hash"])

        # and a deleted one goes again
        self.kubectl("delete", "lpersona", "ghost-persona", "-n", ns)
        a3, c3 = self.agent_config(ns, "lonely")
        self.assertNotIn("persona", c3, a3["config"])
        self.assertUnresolved(a3, "LanguagePersona", "ghost-persona", "PersonaNotFound")


# ======================================================================== computed status

class ComputedStatusTest(DerivedBase):

    def cluster_status(self, name):
        return self.kget("lcluster", name).get("status") or {}

    def assertClusterStatus(self, name, models, agents, tools, personas):
        st = self.cluster_status(name)
        self.assertEqual(st.get("gatewayEndpoint"), gateway_url(name), st)
        self.assertEqual(st.get("models", []), models, st)
        self.assertEqual({k: st.get(k) for k in ("modelCount", "agentCount", "toolCount", "personaCount")},
                         {"modelCount": len(models), "agentCount": agents, "toolCount": tools,
                          "personaCount": personas}, st)

    def test_cluster_status_follows_its_objects(self):
        ns, other = self.new_namespace("st-cluster"), self.new_namespace("st-other")
        self.assertClusterStatus(ns, [], 0, 0, 0)
        self.apply(lmodel("zeta", ns), lmodel("alpha", ns), lmodel("mid", ns), ltool("web", ns),
                   lpersona("p", ns), lagent("a1", ns, models=["alpha"]),
                   lagent("a2", ns, models=["zeta"]), lmodel("elsewhere", other))
        self.assertClusterStatus(ns, ["alpha", "mid", "zeta"], 2, 1, 1)
        self.assertClusterStatus(other, ["elsewhere"], 0, 0, 0)

        # a change that does not add or remove anything leaves the status as it was
        self.kubectl("patch", "lmodel", "mid", "-n", ns, "--type=merge", "-p", '{"spec":{"modelName":"o1"}}')
        self.assertClusterStatus(ns, ["alpha", "mid", "zeta"], 2, 1, 1)

        self.kubectl("delete", "lmodel", "zeta", "-n", ns)
        self.kubectl("delete", "lagent", "a2", "-n", ns)
        self.kubectl("delete", "ltool", "web", "-n", ns)
        self.kubectl("delete", "lpersona", "p", "-n", ns)
        self.assertClusterStatus(ns, ["alpha", "mid"], 1, 0, 0)

        # the list shows the same
        items = {i["metadata"]["name"]: i for i in self.kget("lcluster")["items"]}
        self.assertEqual(items[ns]["status"].get("models"), ["alpha", "mid"])
        self.assertEqual(items[ns]["status"].get("agentCount"), 1)
        self.assertEqual(items[other]["status"].get("gatewayEndpoint"), gateway_url(other))

    def test_model_status_shows_the_gateway(self):
        ns = self.new_namespace("st-model")
        self.apply(lmodel("a", ns), lmodel("b", ns, "anthropic", "claude-3-haiku"))
        self.assertEqual(self.kget("lmodel", "a", ns)["status"].get("gatewayEndpoint"), gateway_url(ns))
        items = self.kget("lmodel", ns=ns)["items"]
        self.assertEqual({i["metadata"]["name"]: (i.get("status") or {}).get("gatewayEndpoint")
                          for i in items}, {"a": gateway_url(ns), "b": gateway_url(ns)})

    def test_agent_references_condition_follows_models_tools_personas(self):
        ns = self.new_namespace("st-agent")
        self.apply(lagent("bot", ns, models=["mdl-x"], tools=["tl-y"], persona="prs-z"))

        def check(status_word, reason, missing, present, models):
            o = self.kget("lagent", "bot", ns)
            st = o.get("status") or {}
            c = condition(o)
            self.assertIsNotNone(c, st)
            self.assertEqual((c.get("status"), c.get("reason")), (status_word, reason), c)
            for name in missing:
                self.assertIn(name, c.get("message", ""), c)
            for name in present:
                self.assertNotIn(name, c.get("message", ""), c)
            self.assertEqual(st.get("modelEndpoint"), gateway_url(ns), st)
            self.assertEqual(st.get("models", []), models, st)

        check("False", "ModelNotFound", ["mdl-x", "tl-y", "prs-z"], [], [])
        self.apply(lmodel("mdl-x", ns))
        check("False", "ToolNotFound", ["tl-y", "prs-z"], ["mdl-x"], ["mdl-x"])
        self.apply(ltool("tl-y", ns))
        check("False", "PersonaNotFound", ["prs-z"], ["mdl-x", "tl-y"], ["mdl-x"])
        self.apply(lpersona("prs-z", ns))
        check("True", "AllReferencesResolved", [], ["mdl-x", "tl-y", "prs-z"], ["mdl-x"])

        self.kubectl("delete", "lmodel", "mdl-x", "-n", ns)
        check("False", "ModelNotFound", ["mdl-x"], ["tl-y", "prs-z"], [])

        # changing the agent: it now asks for a model that exists, and a second one
        self.apply(lmodel("mdl-w", ns), lmodel("mdl-v", ns))
        self.kubectl("patch", "lagent", "bot", "-n", ns, "--type=merge",
                     "-p", '{"spec":{"models":[{"name":"mdl-w"},{"name":"mdl-v"}]}}')
        check("True", "AllReferencesResolved", [], ["mdl-x"], ["mdl-w", "mdl-v"])

    def test_list_and_table_show_the_computed_status(self):
        ns = self.new_namespace("st-list")
        self.apply(lmodel("gpt", ns), lagent("ok", ns, models=["gpt"]),
                   lagent("broken", ns, models=["gpt", "missing-mdl"]))
        items = {i["metadata"]["name"]: i for i in self.kget("lagent", ns=ns)["items"]}
        self.assertEqual(set(items), {"ok", "broken"})
        ok, broken = condition(items["ok"]), condition(items["broken"])
        self.assertEqual((ok["status"], ok["reason"]), ("True", "AllReferencesResolved"), ok)
        self.assertEqual((broken["status"], broken["reason"]), ("False", "ModelNotFound"), broken)
        self.assertIn("missing-mdl", broken["message"], broken)
        for name in ("ok", "broken"):
            self.assertEqual(items[name]["status"].get("modelEndpoint"), gateway_url(ns))
            self.assertEqual(items[name]["status"].get("models"), ["gpt"])

        # the same list through python3-kubernetes
        got = self.resource("LanguageAgent").get(namespace=ns).to_dict()["items"]
        py = {i["metadata"]["name"]: condition(i) for i in got}
        self.assertEqual(py["broken"]["reason"], "ModelNotFound")
        self.assertEqual(py["ok"]["status"], "True")

        # the server-side Table: each row's object carries the computed status
        r = self.api("GET", collection_path("LanguageAgent", ns) + "?includeObject=Object",
                     headers={"Accept": TABLE_ACCEPT}, expect=200)
        t = r.json()
        self.assertEqual(t.get("kind"), "Table", t)
        rows = {row["object"]["metadata"]["name"]: row["object"] for row in t["rows"]}
        self.assertEqual(condition(rows["broken"])["reason"], "ModelNotFound", rows["broken"])
        self.assertEqual(condition(rows["ok"])["status"], "True", rows["ok"])
        self.assertEqual(rows["ok"]["status"].get("modelEndpoint"), gateway_url(ns))

    def test_printer_column_shows_reference_resolution(self):
        """The issue asks for a printer column with the agent's resolution."""
        ns = self.new_namespace("st-column")
        self.apply(lmodel("gpt", ns), lagent("ok", ns, models=["gpt"]),
                   lagent("broken", ns, models=["missing-mdl"]))
        r = self.kubectl("get", "lagent", "-n", ns, "-o", "wide")
        header, rows = table(r.out)
        cells = {row[0]: dict(zip(header, row)) for row in rows}
        self.assertEqual(set(cells), {"ok", "broken"}, r)
        shows = [h for h in header
                 if cells["ok"][h] in ("True", "AllReferencesResolved")
                 and cells["broken"][h] in ("False", "ModelNotFound")]
        self.assertTrue(shows, f"no column of `kubectl get lagent -o wide` shows whether the agent's "
                               f"references resolve (ok: True, broken: False):\n{r.out}")

    def open_watch(self, ns, rv):
        """A raw watch of the agents of ns from rv, read line by line as events arrive."""
        conn = self.server.connection(15)
        self.addCleanup(conn.close)
        conn.request("GET", f"{collection_path('LanguageAgent', ns)}?watch=true&resourceVersion={rv}"
                            f"&timeoutSeconds=10",
                     headers={"Accept": "application/json",
                              "Authorization": f"Bearer {self.server.token}"})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        return resp

    def test_live_watch_events_carry_the_computed_status(self):
        ns = self.new_namespace("st-watch")
        mark = self.api("GET", collection_path("LanguageAgent", ns),
                        expect=200).json()["metadata"]["resourceVersion"]
        resp = self.open_watch(ns, mark)

        # created while its model is missing: the ADDED event says so
        self.apply(lagent("late", ns, models=["later-model"]))
        ev = json.loads(resp.readline())
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "late"), ev)
        c = condition(ev["object"])
        self.assertIsNotNone(c, ev)
        self.assertEqual((c["status"], c["reason"]), ("False", "ModelNotFound"), ev)
        self.assertIn("later-model", c["message"])
        self.assertEqual(ev["object"]["status"].get("modelEndpoint"), gateway_url(ns), ev)

        # once the model exists, the agent's next event is resolved
        self.apply(lmodel("later-model", ns))
        self.kubectl("label", "lagent", "late", "-n", ns, "seen=yes")
        ev = json.loads(resp.readline())
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("MODIFIED", "late"), ev)
        c = condition(ev["object"])
        self.assertIsNotNone(c, ev)
        self.assertEqual((c["status"], c["reason"]), ("True", "AllReferencesResolved"), ev)
        self.assertEqual(ev["object"]["status"].get("models"), ["later-model"], ev)

    def test_watch_replayed_from_a_resource_version_carries_the_computed_status(self):
        ns = self.new_namespace("st-replay")
        mark = self.api("GET", collection_path("LanguageAgent", ns),
                        expect=200).json()["metadata"]["resourceVersion"]
        self.apply(lagent("late", ns, models=["later-model"]))

        # python3-kubernetes' watch, resuming from before the agent was created
        from kubernetes import watch
        events = list(watch.Watch().stream(self.resource("LanguageAgent").get, namespace=ns,
                                           resource_version=mark, timeout_seconds=1,
                                           serialize=False))
        added = [e for e in events if e["type"] == "ADDED"]
        self.assertEqual(len(added), 1, events)
        o = added[0]["raw_object"]
        self.assertEqual(o["metadata"]["name"], "late")
        c = condition(o)
        self.assertIsNotNone(c, f"the replayed ADDED event has no ReferencesResolved condition: {o}")
        self.assertEqual((c["status"], c["reason"]), ("False", "ModelNotFound"), o)
        self.assertEqual(o["status"].get("modelEndpoint"), gateway_url(ns), o)


class StoredStatusTest(DerivedBase):

    def test_status_writes_do_not_override_the_computed_values(self):
        ns = self.new_namespace("st-write")
        self.apply(lmodel("m", ns), lagent("bot", ns, models=["m", "gone"]))

        # kubectl patch --subresource=status on a model
        self.kubectl("patch", "lmodel", "m", "-n", ns, "--subresource=status", "--type=merge",
                     "-p", '{"status":{"gatewayEndpoint":"http://bogus:1","phase":"Ready"}}')
        o = self.kget("lmodel", "m", ns)
        self.assertEqual(o["status"].get("phase"), "Ready", o)       # the written status is stored
        self.assertEqual(o["status"].get("gatewayEndpoint"), gateway_url(ns), o)
        self.assertEqual(self.kget("lmodel", ns=ns)["items"][0]["status"]["gatewayEndpoint"], gateway_url(ns))

        # python3-kubernetes replace_status on an agent: a bogus endpoint and condition
        ra = self.resource("LanguageAgent")
        body = ra.get(name="bot", namespace=ns).to_dict()
        body["status"] = {"phase": "Failed", "modelEndpoint": "http://bogus:2", "models": ["x", "y"],
                          "conditions": [{"type": "ReferencesResolved", "status": "True",
                                          "reason": "AllReferencesResolved", "message": "lie",
                                          "lastTransitionTime": "2024-01-01T00:00:00Z"},
                                         {"type": "Ready", "status": "True", "reason": "Available",
                                          "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
        ra.status.replace(body=body, namespace=ns)
        o = self.kget("lagent", "bot", ns)
        # phase is derived from the Ready condition its runner reports (kept), not taken as written
        self.assertEqual(o["status"].get("phase"), "Running", o)
        self.assertEqual(condition(o, "Ready")["reason"], "Available", o)
        self.assertEqual(o["status"].get("modelEndpoint"), gateway_url(ns), o)
        self.assertEqual(o["status"].get("models"), ["m"], o)
        c = condition(o)
        self.assertEqual((c["status"], c["reason"]), ("False", "ModelNotFound"), o)
        self.assertIn("gone", c["message"])

        # a cluster's counts over HTTP PUT .../status
        cl = self.get("LanguageCluster", ns)
        cl["status"] = {"gatewayEndpoint": "http://bogus:3", "models": ["fake"], "modelCount": 99,
                        "agentCount": 99, "toolCount": 99, "personaCount": 99}
        self.api("PUT", item_path("LanguageCluster", ns) + "/status", cl, expect=200)
        st = self.kget("lcluster", ns)["status"]
        self.assertEqual((st.get("gatewayEndpoint"), st.get("models"), st.get("modelCount"),
                          st.get("agentCount"), st.get("toolCount"), st.get("personaCount")),
                         (gateway_url(ns), ["m"], 1, 1, 0, 0), st)

    def stored(self, sql):
        """Rows of the server's database as dicts (sqlite3 -json: an empty result prints nothing)."""
        p = subprocess.run(["sqlite3", "-json", str(self.server.db), sql], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout) if p.stdout.strip() else []

    def test_the_store_holds_what_reads_return(self):
        """Derived status is part of the object's history: what a GET returns
        is exactly what is stored at that resourceVersion (same rv, same
        bytes), and the newest event of each object carries the same body."""
        ns = self.new_namespace("st-store")
        self.apply(lmodel("m", ns), ltool("t", ns), lpersona("p", ns),
                   lagent("bot", ns, models=["m", "gone"], tools=["t"], persona="p"))
        self.kubectl("patch", "lagent", "bot", "-n", ns, "--subresource=status", "--type=merge",
                     "-p", '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Available",'
                     '"lastTransitionTime":"2024-01-01T00:00:00Z"}]}}')
        self.kubectl("patch", "lmodel", "m", "-n", ns, "--type=merge", "-p", '{"spec":{"modelName":"o1"}}')
        self.kubectl("label", "lcluster", ns, "x=y")

        where = f"(namespace = '{ns}' or (resource = 'languageclusters' and name = '{ns}'))"
        rows = self.stored(f"select resource, namespace, name, rv, body from objects where {where}")
        self.assertEqual({(r["resource"], r["name"]) for r in rows},
                         {("languageclusters", ns), ("languagemodels", "m"), ("languagetools", "t"),
                          ("languagepersonas", "p"), ("languageagents", "bot")}, rows)
        kinds = {plural: kind for kind, (plural, _, _) in KINDS.items()}
        for r in rows:
            stored = json.loads(r["body"])
            with self.subTest(resource=r["resource"], name=r["name"]):
                got = self.get(kinds[r["resource"]], r["name"], r["namespace"] or None)
                self.assertEqual(got, stored)
                self.assertEqual(got["metadata"]["resourceVersion"], str(r["rv"]))
                newest = self.stored(f"select body from events where resource = '{r['resource']}' and "
                                     f"namespace = '{r['namespace']}' and name = '{r['name']}' "
                                     f"order by id desc limit 1")
                self.assertEqual(json.loads(newest[0]["body"]), stored)
                for field in DERIVED_STATUS.get(r["resource"], ()):
                    self.assertIn(field, stored.get("status", {}), r["body"])
        # what a client wrote beside the derived fields is kept
        agent = json.loads(next(r["body"] for r in rows if r["resource"] == "languageagents"))
        self.assertEqual(agent["status"].get("phase"), "Running", agent)
        self.assertEqual(condition(agent)["reason"], "ModelNotFound", agent)

    def test_derived_fields_written_through_status_never_stay(self):
        """A client that writes derived fields through /status does not get
        them stored: the writer derives them again before it stores the
        object, so neither the object nor any event holds the client's value."""
        ns = self.new_namespace("st-nostore")
        self.apply(lmodel("m", ns), lagent("bot", ns, models=["m"]))
        self.kubectl("patch", "lmodel", "m", "-n", ns, "--subresource=status", "--type=merge",
                     "-p", '{"status":{"gatewayEndpoint":"http://bogus:1","phase":"Ready"}}')
        self.kubectl("patch", "lagent", "bot", "-n", ns, "--subresource=status", "--type=merge",
                     "-p", '{"status":{"modelEndpoint":"http://bogus:2","models":["x"],"phase":"Running"}}')
        cl = self.get("LanguageCluster", ns)
        cl["status"] = {"gatewayEndpoint": "http://bogus:3", "modelCount": 99, "phase": "Ready"}
        self.api("PUT", item_path("LanguageCluster", ns) + "/status", cl, expect=200)

        where = f"namespace = '{ns}' or (resource = 'languageclusters' and name = '{ns}')"
        rows = self.stored(f"select resource, name, body from objects where {where}")
        self.assertEqual(len(rows), 3, rows)
        for r in rows:
            status = json.loads(r["body"]).get("status") or {}
            with self.subTest(resource=r["resource"]):
                self.assertIn("phase", status, r["body"])          # the non-derived part is kept
                self.assertNotIn("bogus", r["body"])
        for e in self.stored(f"select body from events where {where}"):
            self.assertNotIn("bogus", e["body"])
        st = json.loads(next(r["body"] for r in rows if r["resource"] == "languageclusters"))["status"]
        self.assertEqual((st["gatewayEndpoint"], st["modelCount"]), (gateway_url(ns), 1), st)


# ======================================================================== --cluster-domain

class ClusterDomainTest(FlagServerTestCase, DerivedBase):
    server_flags = ("--cluster-domain=example.internal",)

    def test_endpoints_use_the_cluster_domain(self):
        ns = self.new_namespace("domain")
        self.apply(lmodel("gpt", ns), ltool("web", ns),
                   lagent("bot", ns, models=["gpt"], tools=["web"]))
        gw = gateway_url(ns, "example.internal")
        a, config = self.agent_config(ns, "bot")
        env = {e["name"]: e.get("value") for e in a["env"]}
        self.assertEqual(env["MODEL_ENDPOINT"], gw, a["env"])
        self.assertEqual(config["models"]["gpt"]["endpoint"], gw, a["config"])
        web = f"http://web.{ns}.svc.example.internal:8080"
        self.assertEqual(config["tools"]["web"]["endpoint"], web, a["config"])
        self.assertEqual(env["MCP_SERVERS"], web, a["env"])
        self.assertNotIn("cluster.local", json.dumps(a))

        self.assertEqual(self.kget("lcluster", ns)["status"].get("gatewayEndpoint"), gw)
        self.assertEqual(self.kget("lmodel", "gpt", ns)["status"].get("gatewayEndpoint"), gw)
        self.assertEqual(self.kget("lagent", "bot", ns)["status"].get("modelEndpoint"), gw)
        self.assertEqual(self.kget("ltool", "web", ns)["status"].get("endpoint"), web)

    def test_a_new_domain_rederives_what_is_stored(self):
        """The stored derived status follows the server's options: started
        again with another --cluster-domain, the server gives every object
        its new endpoints before it serves, as new revisions (watchers from
        an older resourceVersion see them as MODIFIED)."""
        ns = self.new_namespace("redomain")
        self.apply(lmodel("gpt", ns), lagent("bot", ns, models=["gpt"]))
        before = self.kget("lagent", "bot", ns)
        self.server.stop()
        self.server.flags = ["--cluster-domain=other.example"]
        try:
            self.server.start()
            gw = gateway_url(ns, "other.example")
            after = self.kget("lagent", "bot", ns)
            self.assertEqual(after["status"]["modelEndpoint"], gw, after)
            self.assertGreater(int(after["metadata"]["resourceVersion"]),
                               int(before["metadata"]["resourceVersion"]))
            self.assertEqual(self.kget("lmodel", "gpt", ns)["status"]["gatewayEndpoint"], gw)
            self.assertEqual(self.kget("lcluster", ns)["status"]["gatewayEndpoint"], gw)
            # a watch from before the restart sees the agent's one new revision
            r = self.api("GET", f"{API}/namespaces/{ns}/languageagents?watch=1&resourceVersion="
                         f"{before['metadata']['resourceVersion']}&timeoutSeconds=1", expect=200)
            events = [json.loads(l) for l in r.body.splitlines() if l.strip()]
            self.assertEqual([(e["type"], e["object"]["status"]["modelEndpoint"]) for e in events],
                             [("MODIFIED", gw)], events)
        finally:
            self.server.stop()
            self.server.flags = list(self.server_flags)
            self.server.start()
