"""What the schema files in openapi/ promise, seen from real clients:
kubectl explain (descriptions, enums, -required-), kubectl get columns from
additionalPrinterColumns (-o wide, -A, --show-labels), validation errors as
kubectl prints them, fieldValidation Strict/Warn/Ignore, defaulting, the
admission rules a schema cannot say (one of provider/litellmProvider, no
credentials in params, cron schedules, the namespace's LanguageCluster and
its capacity), /openapi/v3 and /openapi/v2 read with python3-kubernetes, and
the server-side Table over HTTP."""

import json
import re
import threading

import yaml

from harness import (API, API_VERSION, KINDS, REPO, ServerTestCase, agent, collection_path,
                     item_path, model, obj, persona, tool)

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
KUBECTL_TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
PROTO_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
PROTO_V3 = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
GVK_MODEL = {"group": "langop.io", "version": "v1alpha1", "kind": "LanguageModel"}
FRESH_AGE = r"^[0-9]+s$"     # an object made seconds ago, as HumanDuration words it


def schema_file(plural):
    """The CRD-format schema file of a kind, as the server embeds it."""
    with open(REPO / "openapi" / f"{plural}.yaml") as f:
        return yaml.safe_load(f)


def open_api_v3_schema(plural):
    return schema_file(plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def words(text):
    """Whitespace-normalised text: explain wraps descriptions at its own width."""
    return " ".join(text.split())


def columns(text):
    """kubectl's column output cut at the header's column offsets, so that an
    empty cell stays empty: (header, [row dicts]). Header cells are one word."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return [], []
    spans = [(m.start(), m.group()) for m in re.finditer(r"\S+", lines[0])]
    header = [name for _, name in spans]
    rows = []
    for line in lines[1:]:
        row = {}
        for i, (start, name) in enumerate(spans):
            end = spans[i + 1][0] if i + 1 < len(spans) else None
            row[name] = line[start:end].strip()
        rows.append(row)
    return header, rows


def cause_fields(status):
    return [c.get("field") for c in (status.get("details") or {}).get("causes") or []]


class SchemaTestBase(ServerTestCase):

    def cluster_namespace(self, hint=None, capacity=None):
        """A fresh namespace with its LanguageCluster, optionally with spec.capacity."""
        if capacity is None:
            return self.new_namespace(hint)
        ServerTestCase._ns_counter += 1
        ns = f"{hint}-{ServerTestCase._ns_counter}"
        self.api("POST", collection_path("LanguageCluster"),
                 obj("LanguageCluster", ns, spec={"domain": f"{ns}.example.com",
                                                  "capacity": capacity}), expect=201)
        return ns

    def kubectl_create(self, *objs, extra=(), ok=True):
        """kubectl create -f, WITHOUT --validate=false: kubectl's default validation."""
        path = self.write_yaml(*objs)
        return path, self.kubectl("create", "-f", path, *extra, ok=ok)

    def get_json(self, kind, name, ns=None):
        args = ["get", KINDS[kind][1], name, "-o", "json"] + (["-n", ns] if ns else [])
        return json.loads(self.kubectl(*args).out)

    def assertAbsent(self, kind, name, ns):
        self.api("GET", item_path(kind, name, ns), expect=404)

    def post(self, o, query=""):
        ns = o["metadata"].get("namespace")
        return self.api("POST", collection_path(o["kind"], ns) + query, o)


# ======================================================================== explain

class SchemaExplainTest(SchemaTestBase):

    def test_explain_field_shows_description_and_enum(self):
        r = self.kubectl("explain", "lmodel.spec.provider")
        spec = open_api_v3_schema("languagemodels")["properties"]["spec"]["properties"]
        provider = spec["provider"]
        self.assertRegex(r.out, r"(?m)^KIND:\s+LanguageModel$", r)
        self.assertRegex(r.out, r"(?m)^VERSION:\s+v1alpha1$", r)
        self.assertRegex(r.out, r"(?m)^FIELD:\s+provider\s+<string>$", r)
        self.assertIn(words(provider["description"]), words(r.out), r)
        # the enum is listed, one value a line, after an ENUM: heading
        lines = [l.strip() for l in r.out.splitlines()]
        self.assertIn("ENUM:", lines, r)
        after = lines[lines.index("ENUM:") + 1:]
        self.assertEqual(after[:len(provider["enum"])], provider["enum"], r)

    def test_explain_list_field_marks_required(self):
        r = self.kubectl("explain", "lagent.spec.models")
        self.assertRegex(r.out, r"(?m)^KIND:\s+LanguageAgent$", r)
        self.assertRegex(r.out, r"(?m)^FIELD:\s+models\s+<\[\]Object>$", r)
        models = open_api_v3_schema("languageagents")["properties"]["spec"]["properties"]["models"]
        self.assertIn(words(models["description"]), words(r.out), r)
        self.assertRegex(r.out, r"(?m)^\s+name\s+<string>\s+-required-$", r)
        self.assertRegex(r.out, r"(?m)^\s+role\s+<string>$", r)       # optional: no marker
        self.assertRegex(r.out, r"(?m)^\s+enum: primary, fallback, ", r)
        self.assertRegex(r.out, r"(?m)^\s+priority\s+<integer>$", r)
        # the item's own field descriptions are shown too
        name_desc = models["items"]["properties"]["name"]["description"]
        self.assertIn(words(name_desc)[:60], words(r.out), r)

    def test_explain_kind_shows_its_description(self):
        r = self.kubectl("explain", "lcluster")
        self.assertRegex(r.out, r"(?m)^GROUP:\s+langop\.io$", r)
        self.assertRegex(r.out, r"(?m)^KIND:\s+LanguageCluster$", r)
        self.assertRegex(r.out, r"(?m)^VERSION:\s+v1alpha1$", r)
        desc = open_api_v3_schema("languageclusters")["description"]
        self.assertIn(words(desc), words(r.out), r)
        for field, typ in (("metadata", "ObjectMeta"), ("spec", "Object"), ("status", "Object")):
            self.assertRegex(r.out, rf"(?m)^\s+{field}\s+<{typ}>", r)

    def test_explain_recursive_nested_field(self):
        r = self.kubectl("explain", "lmodel.spec.apiKeySecretRef.key")
        key = (open_api_v3_schema("languagemodels")["properties"]["spec"]["properties"]
               ["apiKeySecretRef"]["properties"]["key"])
        self.assertRegex(r.out, r"(?m)^FIELD:\s+key\s+<string>$", r)
        self.assertIn(words(key["description"]), words(r.out), r)


# ======================================================================== kubectl get

class SchemaPrintTest(SchemaTestBase):

    MODEL_COLUMNS = ["NAME", "PROVIDER", "MODEL", "PHASE", "READY", "AGE"]

    def test_get_lmodel_shows_schema_columns(self):
        ns = self.cluster_namespace()
        m = model("gpt", ns)
        m["spec"]["modelName"] = "gpt-4o-mini"
        self.kubectl_create(m)
        r = self.kubectl("get", "lmodel", "-n", ns)
        header, rows = columns(r.out)
        self.assertEqual(header, self.MODEL_COLUMNS, r)
        self.assertEqual(len(rows), 1, r)
        self.assertEqual(rows[0]["NAME"], "gpt", r)
        self.assertEqual(rows[0]["PROVIDER"], "openai", r)
        self.assertEqual(rows[0]["MODEL"], "gpt-4o-mini", r)
        # served by the cluster's gateway: the derived phase and Ready condition show it
        self.assertEqual(rows[0]["PHASE"], "Ready", r)
        self.assertEqual(rows[0]["READY"], "True", r)
        self.assertRegex(rows[0]["AGE"], FRESH_AGE, r)

    def test_get_lmodel_wide_adds_priority_columns(self):
        ns = self.cluster_namespace()
        m = obj("LanguageModel", "local", ns, {"provider": "openai-compatible",
                                               "modelName": "llama3",
                                               "endpoint": "http://vllm.models:8000/v1"})
        self.kubectl_create(m)
        r = self.kubectl("get", "lmodel", "-n", ns, "-o", "wide")
        header, rows = columns(r.out)
        self.assertEqual(header, self.MODEL_COLUMNS + ["ENDPOINT"], r)
        self.assertEqual(rows[0]["ENDPOINT"], "http://vllm.models:8000/v1", r)
        self.assertEqual(rows[0]["PROVIDER"], "openai-compatible", r)
        # and without -o wide the priority-1 column is not shown
        header, _ = columns(self.kubectl("get", "lmodel", "-n", ns).out)
        self.assertNotIn("ENDPOINT", header)

    def test_get_lagent_joins_model_names(self):
        ns = self.cluster_namespace()
        a = agent("helper", ns)
        a["spec"]["models"] = [{"name": "gpt"}, {"name": "claude", "role": "fallback"},
                               {"name": "llama"}]
        a["spec"]["execution"] = {}
        self.kubectl_create(a)
        r = self.kubectl("get", "lagent", "-n", ns)
        header, rows = columns(r.out)
        self.assertEqual(header, ["NAME", "MODE", "PHASE", "MODELS", "RESOLVED", "AGE"], r)
        self.assertEqual(rows[0]["NAME"], "helper", r)
        self.assertEqual(rows[0]["MODELS"], "gpt,claude,llama", r)
        self.assertEqual(rows[0]["RESOLVED"], "False", r)    # none of the three models exists
        self.assertEqual(rows[0]["MODE"], "service", r)       # the schema default of execution.mode
        self.assertRegex(rows[0]["AGE"], FRESH_AGE, r)

        # a task agent: -o wide adds its SCHEDULE
        t = agent("nightly", ns)
        t["spec"]["execution"] = {"mode": "task", "schedule": "0 3 * * *"}
        self.kubectl_create(t)
        header, rows = columns(self.kubectl("get", "lagent", "nightly", "-n", ns, "-o", "wide").out)
        self.assertEqual(header, ["NAME", "MODE", "PHASE", "MODELS", "RESOLVED", "SCHEDULE", "AGE"])
        self.assertEqual(rows[0]["MODE"], "task")
        self.assertEqual(rows[0]["SCHEDULE"], "0 3 * * *")

    def test_get_lcluster_and_ltool_columns(self):
        ns = self.cluster_namespace("cols")
        r = self.kubectl("get", "lcluster", ns)
        header, rows = columns(r.out)
        self.assertEqual(header, ["NAME", "PHASE", "GATEWAY", "MODELS", "AGE"], r)
        self.assertEqual(rows[0]["NAME"], ns, r)
        self.assertRegex(rows[0]["AGE"], FRESH_AGE, r)

        self.kubectl_create(tool("web", ns))
        r = self.kubectl("get", "ltool", "-n", ns)
        header, rows = columns(r.out)
        self.assertEqual(header, ["NAME", "TYPE", "TRANSPORT", "MODE", "PORT", "PHASE", "AGE"], r)
        # defaulted values show in the columns
        self.assertEqual([rows[0][c] for c in ("NAME", "TYPE", "TRANSPORT", "MODE", "PORT")],
                         ["web", "mcp", "streamable-http", "service", "8080"], r)

    def test_get_all_namespaces_adds_namespace_column(self):
        ns1, ns2 = self.cluster_namespace("wide-a"), self.cluster_namespace("wide-b")
        self.kubectl_create(model("one", ns1), model("two", ns2))
        r = self.kubectl("get", "lmodel", "-A")
        header, rows = columns(r.out)
        self.assertEqual(header, ["NAMESPACE"] + self.MODEL_COLUMNS, r)
        got = {(row["NAMESPACE"], row["NAME"], row["PROVIDER"]) for row in rows}
        self.assertIn((ns1, "one", "openai"), got, r)
        self.assertIn((ns2, "two", "openai"), got, r)

        r = self.kubectl("get", "lmodel", "-A", "-o", "wide")
        header, _ = columns(r.out)
        self.assertEqual(header, ["NAMESPACE"] + self.MODEL_COLUMNS + ["ENDPOINT"], r)

    def test_show_labels(self):
        ns = self.cluster_namespace()
        self.kubectl_create(model("gold", ns, labels={"tier": "gold"}), model("plain", ns))
        r = self.kubectl("get", "lmodel", "-n", ns, "--show-labels")
        header, rows = columns(r.out)
        self.assertEqual(header, self.MODEL_COLUMNS + ["LABELS"], r)
        labels = {row["NAME"]: row["LABELS"] for row in rows}
        self.assertEqual(labels, {"gold": "tier=gold", "plain": "<none>"}, r)


# ======================================================================== validation

class SchemaValidationTest(SchemaTestBase):

    def assertInvalidLine(self, res, kind, name, pattern):
        """kubectl printed `The <Kind> "<name>" is invalid: <field>: <reason...>`."""
        line = f'The {kind} "{name}" is invalid: '
        found = [l for l in res.err.splitlines() if l.startswith(line)]
        self.assertEqual(len(found), 1, res)
        self.assertRegex(found[0][len(line):], pattern, res)

    def test_kubectl_create_valid_object_with_default_validation(self):
        ns = self.cluster_namespace()
        _, r = self.kubectl_create(model("ok", ns))
        self.assertEqual(r.out.strip(), "languagemodel.langop.io/ok created", r)
        self.assertNotIn("Warning", r.err, r)
        self.assertEqual(self.get_json("LanguageModel", "ok", ns)["spec"]["modelName"], "gpt-4o")

    def test_kubectl_create_invalid_objects_print_422(self):
        ns = self.cluster_namespace()
        provider = open_api_v3_schema("languagemodels")["properties"]["spec"]["properties"]["provider"]
        supported = ", ".join(f'"{v}"' for v in provider["enum"])
        cases = [
            ("LanguageModel", "bad-provider", {"provider": "foo", "modelName": "x"},
             re.escape(f'spec.provider: Unsupported value: "foo": supported values: {supported}') + "$",
             "spec.provider", "FieldValueNotSupported"),
            ("LanguageModel", "no-model-name", {"provider": "openai"},
             r"^spec\.modelName: Required value$", "spec.modelName", "FieldValueRequired"),
            ("LanguageModel", "bad-timeout", {"provider": "openai", "modelName": "x", "timeout": "5x"},
             r'^spec\.timeout: Invalid value: "5x": .*should match', "spec.timeout",
             "FieldValueInvalid"),
            ("LanguageAgent", "dup-models",
             {"image": "ghcr.io/langop/agent:v1", "models": [{"name": "gpt"}, {"name": "gpt"}]},
             r"^spec\.models\[1\](\.name)?: Duplicate value: ", None, "FieldValueDuplicate"),
            ("LanguageTool", "port-zero", {"image": "ghcr.io/langop/web-tool:v1", "port": 0},
             r"^spec\.port: Invalid value: 0: .*greater than or equal to 1", "spec.port",
             "FieldValueInvalid"),
            ("LanguageTool", "port-big", {"image": "ghcr.io/langop/web-tool:v1", "port": 70000},
             r"^spec\.port: Invalid value: 70000: .*less than or equal to 65535", "spec.port",
             "FieldValueInvalid"),
            ("LanguageModel", "wrong-type", {"provider": "openai", "modelName": "x",
                                             "rateLimits": {"requestsPerMinute": "many"}},
             r'^spec\.rateLimits\.requestsPerMinute: Invalid value: .*must be of type integer',
             "spec.rateLimits.requestsPerMinute", "FieldValueTypeInvalid"),
        ]
        for kind, name, spec, pattern, field, reason in cases:
            with self.subTest(name=name):
                o = obj(kind, name, ns, spec)
                _, r = self.kubectl_create(o, ok=False)
                self.assertInvalidLine(r, kind, name, pattern)
                self.assertAbsent(kind, name, ns)
                # the same body over HTTP: 422 Invalid with the cause
                s = self.assertStatus(self.post(o), 422, "Invalid")
                self.assertEqual(s["details"]["name"], name, s)
                self.assertEqual(s["details"]["kind"], kind, s)
                self.assertEqual(s["details"]["group"], "langop.io", s)
                causes = s["details"]["causes"]
                self.assertEqual(len(causes), 1, s)
                if field is not None:
                    self.assertEqual(causes[0]["field"], field, s)
                else:
                    self.assertRegex(causes[0]["field"], r"^spec\.models\[1\](\.name)?$", s)
                self.assertEqual(causes[0]["reason"], reason, s)
                self.assertIn(f'{kind}.langop.io "{name}" is invalid: ', s["message"], s)

    def test_several_violations_one_cause_each(self):
        ns = self.cluster_namespace()
        o = obj("LanguageModel", "many", ns, {"provider": "foo", "timeout": "soon"})
        _, r = self.kubectl_create(o, ok=False)
        # kubectl lists several causes as "* field: message" lines
        self.assertIn('The LanguageModel "many" is invalid: ', r.err, r)
        bullets = sorted(l[2:].split(":")[0] for l in r.err.splitlines() if l.startswith("* "))
        self.assertEqual(bullets, ["spec.modelName", "spec.provider", "spec.timeout"], r)
        s = self.assertStatus(self.post(o), 422, "Invalid")
        self.assertEqual(sorted(cause_fields(s)), ["spec.modelName", "spec.provider", "spec.timeout"], s)

    def test_update_is_validated_too(self):
        ns = self.cluster_namespace()
        cur = self.create(model("upd", ns))
        for field, value in (("provider", "foo"), ("timeout", "later")):
            with self.subTest(field=field):
                bad = json.loads(json.dumps(cur))
                bad["spec"][field] = value
                r = self.api("PUT", item_path("LanguageModel", "upd", ns), bad)
                s = self.assertStatus(r, 422, "Invalid")
                self.assertEqual(cause_fields(s), [f"spec.{field}"], s)
        after = self.get("LanguageModel", "upd", ns)
        self.assertEqual(after["spec"]["provider"], "openai")
        self.assertEqual(after["metadata"]["resourceVersion"], cur["metadata"]["resourceVersion"])
        # kubectl replace prints the same 422 line as create
        bad = json.loads(json.dumps(cur))
        bad["spec"]["provider"] = "foo"
        r = self.kubectl("replace", "-f", self.write_yaml(bad), ok=False)
        self.assertIn('The LanguageModel "upd" is invalid: spec.provider: Unsupported value: "foo"', r.err, r)

    def test_status_write_is_validated(self):
        ns = self.cluster_namespace()
        cur = self.create(model("st", ns))
        cur["status"] = {"phase": "Sleeping"}
        r = self.api("PUT", item_path("LanguageModel", "st", ns) + "/status", cur)
        s = self.assertStatus(r, 422, "Invalid")
        self.assertEqual(cause_fields(s), ["status.phase"], s)
        cur["status"] = {"phase": "Ready"}
        r = self.api("PUT", item_path("LanguageModel", "st", ns) + "/status", cur, expect=200)
        self.assertEqual(r.json()["status"]["phase"], "Ready")

    # --------------------------------------------------------- fieldValidation

    def unknown_field_model(self, name, ns):
        m = model(name, ns)
        m["spec"]["foo"] = "bar"
        return m

    def test_kubectl_validate_strict_rejects_unknown_field(self):
        ns = self.cluster_namespace()
        for flag in (["--validate=strict"], []):        # strict is kubectl's default
            name = "strict-flag" if flag else "strict-default"
            with self.subTest(flag=flag or "default"):
                path, r = self.kubectl_create(self.unknown_field_model(name, ns), extra=flag,
                                              ok=False)
                self.assertIn("Error from server (BadRequest)", r.err, r)
                self.assertIn('strict decoding error: unknown field "spec.foo"', r.err, r)
                self.assertIn(f'error when creating "{path}"', r.err, r)
                self.assertAbsent("LanguageModel", name, ns)

    def test_kubectl_validate_warn_drops_the_field(self):
        ns = self.cluster_namespace()
        _, r = self.kubectl_create(self.unknown_field_model("warned", ns), extra=["--validate=warn"])
        self.assertIn('Warning: unknown field "spec.foo"', r.err, r)
        self.assertEqual(r.out.strip(), "languagemodel.langop.io/warned created", r)
        spec = self.get_json("LanguageModel", "warned", ns)["spec"]
        self.assertNotIn("foo", spec)
        self.assertEqual(spec["modelName"], "gpt-4o")

    def test_kubectl_validate_ignore_drops_the_field_silently(self):
        ns = self.cluster_namespace()
        for flag in ("--validate=ignore", "--validate=false"):
            name = flag.split("=")[1] + "-d"
            with self.subTest(flag=flag):
                _, r = self.kubectl_create(self.unknown_field_model(name, ns), extra=[flag])
                self.assertNotIn("Warning", r.err, r)
                self.assertNotIn("foo", self.get_json("LanguageModel", name, ns)["spec"])

    def test_field_validation_over_http(self):
        ns = self.cluster_namespace()
        # no fieldValidation: Warn, kube's default for clients that omit it
        r = self.post(self.unknown_field_model("http-default", ns))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers.get("warning"), '299 - "unknown field \\"spec.foo\\""', r)
        self.assertNotIn("foo", r.json()["spec"])
        self.assertNotIn("foo", self.get("LanguageModel", "http-default", ns)["spec"])

        r = self.post(self.unknown_field_model("http-warn", ns), "?fieldValidation=Warn")
        self.assertEqual(r.status, 201, r)
        self.assertIn('unknown field \\"spec.foo\\"', r.headers.get("warning", ""), r)

        r = self.post(self.unknown_field_model("http-ignore", ns), "?fieldValidation=Ignore")
        self.assertEqual(r.status, 201, r)
        self.assertNotIn("warning", r.headers, r)
        self.assertNotIn("foo", r.json()["spec"])

        r = self.post(self.unknown_field_model("http-strict", ns), "?fieldValidation=Strict")
        s = self.assertStatus(r, 400, "BadRequest")
        self.assertEqual(s["message"], 'LanguageModel in version "v1alpha1" cannot be handled as a '
                                       'LanguageModel: strict decoding error: unknown field "spec.foo"')
        self.assertAbsent("LanguageModel", "http-strict", ns)

        # nested and top-level unknown fields are named by their full path
        m = model("http-nested", ns)
        m["spec"]["apiKeySecretRef"] = {"name": "keys", "bogus": 1}
        m["extra"] = True
        s = self.assertStatus(self.post(m, "?fieldValidation=Strict"), 400, "BadRequest")
        self.assertIn('unknown field "spec.apiKeySecretRef.bogus"', s["message"], s)
        self.assertIn('unknown field "extra"', s["message"], s)

        # preserve-unknown-fields keeps what it holds, even with Strict
        m = model("http-params", ns)
        m["spec"]["params"] = {"temperature": 0.2, "extra_body": {"top_k": 5}}
        r = self.post(m, "?fieldValidation=Strict")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["spec"]["params"], m["spec"]["params"])

        r = self.post(model("http-bad-fv", ns), "?fieldValidation=Loud")
        self.assertStatus(r, 422, "Invalid")  # kube's ValidateCreateOptions

    def test_duplicate_field_strict_and_warn(self):
        ns = self.cluster_namespace()
        body = ('{"apiVersion":"%s","kind":"LanguageModel","metadata":{"name":"%%s","namespace":"%s"},'
                '"spec":{"provider":"openai","modelName":"a","modelName":"b"}}' % (API_VERSION, ns))
        path = collection_path("LanguageModel", ns)
        hdr = {"Content-Type": "application/json"}
        r = self.api("POST", path + "?fieldValidation=Strict", body % "dup-strict", headers=hdr)
        s = self.assertStatus(r, 400, "BadRequest")
        self.assertIn("strict decoding error", s["message"], s)
        self.assertRegex(s["message"], r'duplicate field "(spec\.)?modelName"', s)

        r = self.api("POST", path + "?fieldValidation=Warn", body % "dup-warn", headers=hdr)
        self.assertEqual(r.status, 201, r)
        self.assertRegex(r.headers.get("warning", ""), r'duplicate field \\"(spec\.)?modelName\\"', r)

    # -------------------------------------------------------------- defaults

    def test_defaults_visible_after_create(self):
        ns = self.cluster_namespace()
        m = model("dflt", ns)
        m["spec"]["apiKeySecretRef"] = {"name": "openai-keys"}
        a = agent("dflt", ns)
        a["spec"]["models"] = [{"name": "gpt"}, {"name": "claude", "role": "fallback"}]
        a["spec"]["tools"] = [{"name": "web"}, {"name": "search", "enabled": False}]
        a["spec"]["execution"] = {}
        self.kubectl_create(m, a, tool("dflt", ns))

        ms = self.get_json("LanguageModel", "dflt", ns)["spec"]
        self.assertEqual(ms["timeout"], "5m", ms)
        self.assertEqual(ms["apiKeySecretRef"], {"name": "openai-keys", "key": "api-key"}, ms)
        self.assertNotIn("credentialsSecretRef", ms)      # no default object appears from nothing

        sp = self.get_json("LanguageAgent", "dflt", ns)["spec"]
        self.assertEqual(sp["models"], [{"name": "gpt", "role": "primary"},
                                        {"name": "claude", "role": "fallback"}], sp)
        self.assertEqual(sp["tools"], [{"name": "web", "enabled": True},
                                       {"name": "search", "enabled": False}], sp)
        self.assertEqual(sp["execution"], {"mode": "service", "concurrencyPolicy": "Forbid"}, sp)

        ts = self.get_json("LanguageTool", "dflt", ns)["spec"]
        self.assertEqual(ts, {"image": "ghcr.io/langop/web-tool:v1", "port": 8080, "type": "mcp",
                              "transport": "streamable-http", "deploymentMode": "service"}, ts)

    def test_explicit_values_kept_and_defaults_on_update(self):
        ns = self.cluster_namespace()
        m = model("keep", ns)
        m["spec"]["timeout"] = "90s"
        m["spec"]["apiKeySecretRef"] = {"name": "k", "key": "token"}
        cur = self.create(m)
        self.assertEqual(cur["spec"]["timeout"], "90s")
        self.assertEqual(cur["spec"]["apiKeySecretRef"], {"name": "k", "key": "token"})
        # an update that leaves the fields out gets the defaults again
        del cur["spec"]["timeout"]
        cur["spec"]["apiKeySecretRef"] = {"name": "k2"}
        r = self.api("PUT", item_path("LanguageModel", "keep", ns), cur, expect=200)
        self.assertEqual(r.json()["spec"]["timeout"], "5m", r)
        self.assertEqual(r.json()["spec"]["apiKeySecretRef"], {"name": "k2", "key": "api-key"}, r)
        self.assertEqual(self.get("LanguageModel", "keep", ns)["spec"]["timeout"], "5m")

    def test_server_dry_run_is_validated_and_defaulted(self):
        ns = self.cluster_namespace()
        _, r = self.kubectl_create(tool("dry", ns), extra=["--dry-run=server", "-o", "json"])
        spec = json.loads(r.out)["spec"]
        self.assertEqual(spec["port"], 8080, r)
        self.assertEqual(spec["transport"], "streamable-http", r)
        self.assertAbsent("LanguageTool", "dry", ns)
        bad = obj("LanguageTool", "dry-bad", ns, {"image": "x", "transport": "carrier-pigeon"})
        _, r = self.kubectl_create(bad, extra=["--dry-run=server"], ok=False)
        self.assertInvalidLine(r, "LanguageTool", "dry-bad",
                               r'^spec\.transport: Unsupported value: "carrier-pigeon": '
                               r'supported values: "streamable-http", "sse"$')


# ======================================================================== admission

class SchemaAdmissionTest(SchemaTestBase):

    def test_exactly_one_of_provider_and_litellm_provider(self):
        ns = self.cluster_namespace()
        both = obj("LanguageModel", "both", ns, {"provider": "openai", "litellmProvider": "deepseek",
                                                 "modelName": "deepseek-chat"})
        neither = obj("LanguageModel", "neither", ns, {"modelName": "deepseek-chat"})
        for o in (both, neither):
            with self.subTest(name=o["metadata"]["name"]):
                s = self.assertStatus(self.post(o), 422, "Invalid")
                self.assertTrue(cause_fields(s), s)
                self.assertTrue(all(f.startswith("spec") for f in cause_fields(s)), s)
                self.assertIn("provider", s["message"], s)
                self.assertIn("litellmProvider", s["message"], s)
                _, r = self.kubectl_create(o, ok=False)
                self.assertIn(f'The LanguageModel "{o["metadata"]["name"]}" is invalid: spec', r.err, r)
                self.assertIn("litellmProvider", r.err, r)
                self.assertAbsent("LanguageModel", o["metadata"]["name"], ns)
        # each alone is fine
        self.create(obj("LanguageModel", "raw", ns, {"litellmProvider": "deepseek",
                                                     "modelName": "deepseek-chat"}))
        self.create(model("enum", ns))

    def test_params_must_not_carry_credentials(self):
        ns = self.cluster_namespace()
        for key in ("api_key", "aws_secret_access_key", "vertex_credentials"):
            with self.subTest(key=key):
                m = model(key.replace("_", "-"), ns)
                m["spec"]["params"] = {"temperature": 0.1, key: "sk-secret"}
                s = self.assertStatus(self.post(m), 422, "Invalid")
                fields = cause_fields(s)
                self.assertEqual(len(fields), 1, s)
                self.assertTrue(fields[0].startswith("spec.params"), s)
                self.assertIn(key, fields[0] + s["details"]["causes"][0]["message"], s)
                self.assertNotIn("sk-secret", s["message"], s)   # never echo the secret back
        _, r = self.kubectl_create(dict(model("kc-cred", ns), spec={
            "provider": "openai", "modelName": "x", "params": {"api_key": "sk-secret"}}), ok=False)
        self.assertIn('The LanguageModel "kc-cred" is invalid: spec.params', r.err, r)
        self.assertNotIn("sk-secret", r.err, r)
        ok = model("harmless", ns)
        ok["spec"]["params"] = {"temperature": 0.1, "max_tokens": 512}
        self.create(ok)

    def test_schedule_only_with_mode_task_and_valid_cron(self):
        ns = self.cluster_namespace()

        def ag(name, execution):
            a = agent(name, ns)
            a["spec"]["execution"] = execution
            return a

        s = self.assertStatus(self.post(ag("svc-sched", {"mode": "service", "schedule": "0 * * * *"})),
                              422, "Invalid")
        self.assertIn(cause_fields(s)[0], ("spec.execution.schedule", "spec.execution"), s)
        # mode defaults to service: a schedule alone is refused too
        s = self.assertStatus(self.post(ag("dflt-sched", {"schedule": "0 * * * *"})), 422, "Invalid")
        self.assertIn(cause_fields(s)[0], ("spec.execution.schedule", "spec.execution"), s)
        _, r = self.kubectl_create(ag("kc-sched", {"mode": "service", "schedule": "0 * * * *"}),
                                   ok=False)
        self.assertIn('The LanguageAgent "kc-sched" is invalid: spec.execution', r.err, r)

        for i, bad in enumerate(("every day", "* * * *", "61 * * * *", "* 25 * * *", "* * * * * * *")):
            with self.subTest(schedule=bad):
                s = self.assertStatus(self.post(ag(f"cron-bad-{i}", {"mode": "task", "schedule": bad})),
                                      422, "Invalid")
                self.assertEqual(cause_fields(s), ["spec.execution.schedule"], s)
        for i, good in enumerate(("*/15 * * * *", "0 3 * * 1-5", "30 2 1,15 * *", "@daily")):
            with self.subTest(schedule=good):
                r = self.post(ag(f"cron-ok-{i}", {"mode": "task", "schedule": good}))
                self.assertEqual(r.status, 201, r)

    def test_namespace_without_language_cluster_is_forbidden(self):
        ns = "no-cluster-here"
        _, r = self.kubectl_create(model("orphan", ns), ok=False)
        self.assertIn("Error from server (Forbidden)", r.err, r)
        self.assertIn('languagemodels.langop.io "orphan" is forbidden', r.err, r)
        self.assertIn(ns, r.err.split("is forbidden", 1)[1], r)
        for o in (model("orphan", ns), agent("orphan", ns), tool("orphan", ns), persona("orphan", ns)):
            with self.subTest(kind=o["kind"]):
                s = self.assertStatus(self.post(o), 403, "Forbidden")
                self.assertIn("LanguageCluster", s["message"], s)
                self.assertAbsent(o["kind"], "orphan", ns)
        # once the LanguageCluster exists, the same create works
        self.ensure_cluster(ns)
        self.create(model("orphan", ns))

    def test_capacity_limit_is_403_naming_the_limit(self):
        ns = self.cluster_namespace("cap", capacity={"maxModels": 2, "maxTools": 1})
        self.create(model("m1", ns))
        self.create(model("m2", ns))
        path, r = self.kubectl_create(model("m3", ns), ok=False)
        self.assertIn("Error from server (Forbidden)", r.err, r)
        self.assertIn('languagemodels.langop.io "m3" is forbidden', r.err, r)
        self.assertIn("maxModels", r.err, r)
        s = self.assertStatus(self.post(model("m3", ns)), 403, "Forbidden")
        self.assertIn("maxModels", s["message"], s)
        self.assertIn("2", s["message"], s)
        self.assertAbsent("LanguageModel", "m3", ns)
        # kinds without a limit are not affected, the limit is per kind
        self.create(agent("a1", ns))
        self.create(agent("a2", ns))
        self.create(agent("a3", ns))
        self.create(tool("t1", ns))
        s = self.assertStatus(self.post(tool("t2", ns)), 403, "Forbidden")
        self.assertIn("maxTools", s["message"], s)
        # room again after a delete
        self.api("DELETE", item_path("LanguageModel", "m1", ns), expect=200)
        self.assertAbsent("LanguageModel", "m1", ns)
        self.create(model("m3", ns))
        # a dry run is counted like a create, and stores nothing
        s = self.assertStatus(self.post(model("m4", ns), "?dryRun=All"), 403, "Forbidden")
        self.assertIn("maxModels", s["message"], s)

    def test_capacity_holds_under_concurrent_creates(self):
        ns = self.cluster_namespace("race", capacity={"maxModels": 3})
        results = [None] * 8
        start = threading.Barrier(8)

        def worker(i):
            conn = self.server.connection()
            try:
                start.wait(10)
                o = model(f"race-{i}", ns)
                results[i] = self.server.request("POST", collection_path("LanguageModel", ns), o,
                                                 conn=conn)
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        codes = sorted(r.status for r in results)
        self.assertEqual(codes, [201] * 3 + [403] * 5, results)
        for r in results:
            if r.status == 403:
                self.assertEqual(r.json().get("reason"), "Forbidden", r)
        items = self.api("GET", collection_path("LanguageModel", ns), expect=200).json()["items"]
        self.assertEqual(len(items), 3, items)
        made = {r.json()["metadata"]["name"] for r in results if r.status == 201}
        self.assertEqual({i["metadata"]["name"] for i in items}, made)


# ======================================================================== OpenAPI

class SchemaOpenAPITest(SchemaTestBase):

    def call(self, path, accept="application/json"):
        """GET with python3-kubernetes' own ApiClient; returns the decoded JSON."""
        return self.dyn.client.call_api(path, "GET", header_params={"Accept": accept},
                                        auth_settings=["BearerToken"], response_type="object",
                                        _return_http_data_only=True)

    def gv_document(self):
        index = self.call("/openapi/v3")
        url = index["paths"]["apis/langop.io/v1alpha1"]["serverRelativeURL"]
        return url, self.call(url)

    def test_v3_index_and_group_version_document(self):
        index = self.call("/openapi/v3")
        self.assertIn("apis/langop.io/v1alpha1", index["paths"], index)
        url = index["paths"]["apis/langop.io/v1alpha1"]["serverRelativeURL"]
        self.assertRegex(url, r"^/openapi/v3/apis/langop\.io/v1alpha1\?hash=[0-9A-Fa-f]{16,}$")
        doc = self.call(url)
        self.assertTrue(doc["openapi"].startswith("3."), doc.get("openapi"))

        item = f"{API}/namespaces/{{namespace}}/languagemodels/{{name}}"
        patch = doc["paths"][item]["patch"]
        params = {p["name"] for p in patch["parameters"]}
        self.assertLessEqual({"fieldValidation", "dryRun", "fieldManager", "force"}, params, patch)
        for p in patch["parameters"]:
            if p["name"] in ("fieldValidation", "dryRun"):
                self.assertEqual(p["in"], "query", p)
        self.assertEqual(patch["x-kubernetes-group-version-kind"], GVK_MODEL, patch)
        self.assertEqual(patch["x-kubernetes-action"], "patch", patch)
        types = set(patch["requestBody"]["content"])
        self.assertLessEqual({"application/json-patch+json", "application/merge-patch+json",
                              "application/apply-patch+yaml"}, types, types)
        # no list-merge semantics: SMP must not be advertised (kubectl would send it)
        self.assertNotIn("application/strategic-merge-patch+json", types)

    def test_v3_paths_for_every_kind_and_verb(self):
        _, doc = self.gv_document()
        paths = doc["paths"]
        for kind, (plural, _, namespaced) in KINDS.items():
            gvk = {"group": "langop.io", "version": "v1alpha1", "kind": kind}
            base = f"{API}/namespaces/{{namespace}}/{plural}" if namespaced else f"{API}/{plural}"
            want = {
                base: {"get": "list", "post": "post", "delete": "deletecollection"},
                base + "/{name}": {"get": "get", "put": "put", "patch": "patch", "delete": "delete"},
                base + "/{name}/status": {"get": "get", "put": "put", "patch": "patch"},
            }
            if namespaced:
                want[f"{API}/{plural}"] = {"get": "list"}
            for path, ops in want.items():
                for method, action in ops.items():
                    with self.subTest(path=path, method=method):
                        self.assertIn(path, paths)
                        op = paths[path].get(method)
                        self.assertIsNotNone(op, paths[path].keys())
                        self.assertEqual(op.get("x-kubernetes-action"), action, op)
                        self.assertEqual(op.get("x-kubernetes-group-version-kind"), gvk, op)
                        if method in ("post", "put", "patch"):
                            names = {p["name"] for p in op.get("parameters", [])}
                            self.assertLessEqual({"dryRun", "fieldManager", "fieldValidation"}, names)

    def test_v3_schemas_come_from_the_schema_files(self):
        _, doc = self.gv_document()
        schemas = doc["components"]["schemas"]
        for kind, (plural, _, _) in KINDS.items():
            with self.subTest(kind=kind):
                s = schemas[f"io.langop.v1alpha1.{kind}"]
                self.assertEqual(s["x-kubernetes-group-version-kind"],
                                 [{"group": "langop.io", "kind": kind, "version": "v1alpha1"}])
                self.assertEqual(s["description"], open_api_v3_schema(plural)["description"])
                meta = s["properties"]["metadata"]
                self.assertEqual(meta["allOf"],
                                 [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}])
                lst = schemas[f"io.langop.v1alpha1.{kind}List"]
                self.assertEqual(lst["x-kubernetes-group-version-kind"],
                                 [{"group": "langop.io", "kind": f"{kind}List", "version": "v1alpha1"}])
        for meta in ("ObjectMeta", "ListMeta", "ManagedFieldsEntry", "OwnerReference", "Time",
                     "FieldsV1", "Status", "StatusDetails", "StatusCause", "DeleteOptions",
                     "Preconditions", "Patch"):
            self.assertIn(f"io.k8s.apimachinery.pkg.apis.meta.v1.{meta}", schemas)
        # every $ref resolves inside the document
        refs = set(re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', json.dumps(doc)))
        self.assertEqual(refs - set(schemas), set())
        # the provider field, with its enum, reached the way explain reaches it
        spec = self.resolve(doc, schemas["io.langop.v1alpha1.LanguageModel"]["properties"]["spec"])
        provider = open_api_v3_schema("languagemodels")["properties"]["spec"]["properties"]["provider"]
        self.assertEqual(spec["properties"]["provider"]["enum"], provider["enum"])
        self.assertEqual(spec["required"], ["modelName"])

    @staticmethod
    def resolve(doc, s):
        ref = s.get("$ref") or (s.get("allOf") or [{}])[0].get("$ref")
        if ref:
            return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return s

    def test_v3_etag_and_hash(self):
        r = self.api("GET", "/openapi/v3", expect=200)
        etag = r.headers.get("etag")
        self.assertTrue(etag, r)
        r = self.api("GET", "/openapi/v3", headers={"If-None-Match": etag}, expect=304)
        self.assertEqual(r.body, b"")
        url = self.api("GET", "/openapi/v3").json()["paths"]["apis/langop.io/v1alpha1"][
            "serverRelativeURL"]
        r = self.api("GET", url, expect=200)
        self.assertIn("immutable", r.headers.get("cache-control", ""), r)
        r = self.api("GET", "/openapi/v3/apis/langop.io/v1alpha1?hash=0000", expect=301)
        self.assertEqual(r.headers.get("location"), url, r)
        r = self.api("GET", "/openapi/v3/apis/langop.io/v1alpha1", expect=200)
        self.assertEqual(r.json()["paths"].keys(), self.call(url)["paths"].keys())
        r = self.api("GET", "/openapi/v3/apis/langop.io/v1alpha1", headers={"Accept": PROTO_V3})
        self.assertEqual(r.status, 406, r)
        self.api("GET", "/openapi/v3/apis/other.io/v1", expect=404)

    def test_v2_json_has_the_five_kinds(self):
        doc = self.call("/openapi/v2")
        self.assertEqual(doc["swagger"], "2.0")
        defs = doc["definitions"]
        for kind in KINDS:
            with self.subTest(kind=kind):
                d = defs[f"io.langop.v1alpha1.{kind}"]
                self.assertEqual(d["x-kubernetes-group-version-kind"],
                                 [{"group": "langop.io", "kind": kind, "version": "v1alpha1"}])
        item = f"{API}/namespaces/{{namespace}}/languagemodels/{{name}}"
        patch = doc["paths"][item]["patch"]
        self.assertEqual(patch["x-kubernetes-group-version-kind"], GVK_MODEL)
        names = {p["name"] for p in patch["parameters"]}
        self.assertLessEqual({"body", "dryRun", "fieldManager", "fieldValidation"}, names)
        refs = set(re.findall(r'"\$ref":\s*"#/definitions/([^"]+)"', json.dumps(doc)))
        self.assertEqual(refs - set(defs), set())

    def test_v2_protobuf_and_json(self):
        # kubectl 1.27 and 1.28 ask for protobuf only: gnostic's openapi_v2.Document
        r = self.api("GET", "/openapi/v2", headers={"Accept": PROTO_V2}, expect=200)
        self.assertEqual(r.headers.get("content-type"),
                         "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", r)
        self.assertEqual(r.body[:5], b"\x0a\x032.0", r)   # Document.swagger (1) = "2.0"
        proto_etag = r.headers.get("etag")
        self.assertTrue(proto_etag, r)
        self.api("GET", "/openapi/v2", headers={"Accept": PROTO_V2, "If-None-Match": proto_etag},
                 expect=304)
        # the first acceptable entry of Accept wins
        r = self.api("GET", "/openapi/v2",
                     headers={"Accept": PROTO_V2 + ", application/json"}, expect=200)
        self.assertTrue(r.headers.get("content-type", "").startswith(
            "application/com.github.proto-openapi.spec.v2"), r)
        # the aggregator asks for JSON; its ETag is its own
        r = self.api("GET", "/openapi/v2", headers={"Accept": "application/json"}, expect=200)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
        self.assertEqual(r.json()["swagger"], "2.0")
        etag = r.headers.get("etag")
        self.assertTrue(etag, r)
        self.assertNotEqual(etag, proto_etag)
        self.api("GET", "/openapi/v2", headers={"If-None-Match": etag}, expect=304)
        # neither form: 406
        r = self.api("GET", "/openapi/v2", headers={"Accept": "application/vnd.kubernetes.protobuf"})
        self.assertStatus(r, 406, "NotAcceptable")


# ======================================================================== Table over HTTP

class SchemaTableHTTPTest(SchemaTestBase):

    def table_get(self, path, accept=TABLE_ACCEPT, expect=200):
        r = self.api("GET", path, headers={"Accept": accept}, expect=expect)
        return r

    def test_list_as_table(self):
        ns = self.cluster_namespace()
        m = model("gpt", ns, labels={"tier": "gold"})
        m["spec"]["endpoint"] = "https://api.openai.com/v1"
        self.create(m)
        r = self.table_get(collection_path("LanguageModel", ns))
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
        t = r.json()
        self.assertEqual((t["kind"], t["apiVersion"]), ("Table", "meta.k8s.io/v1"), t)
        self.assertRegex(t["metadata"]["resourceVersion"], r"^[1-9][0-9]*$")
        cols = [(c["name"], c["type"], c["priority"]) for c in t["columnDefinitions"]]
        self.assertEqual(cols, [("Name", "string", 0), ("Provider", "string", 0),
                                ("Model", "string", 0), ("Phase", "string", 0),
                                ("Ready", "string", 0), ("Age", "date", 0), ("Endpoint", "string", 1)], t)
        self.assertEqual(t["columnDefinitions"][0]["format"], "name")
        schema_cols = schema_file("languagemodels")["spec"]["versions"][0]["additionalPrinterColumns"]
        self.assertEqual([c["description"] for c in t["columnDefinitions"][1:]],
                         [c["description"] for c in schema_cols])
        self.assertEqual(len(t["rows"]), 1, t)
        cells = t["rows"][0]["cells"]
        self.assertEqual(cells[:3], ["gpt", "openai", "gpt-4o"], cells)
        self.assertEqual(cells[3:5], ["Ready", "True"], cells)   # derived phase and Ready condition
        self.assertRegex(cells[5], FRESH_AGE, cells)      # preformatted, not a timestamp
        self.assertEqual(cells[6], "https://api.openai.com/v1", cells)
        o = t["rows"][0]["object"]      # includeObject=Metadata is the default
        self.assertEqual((o["kind"], o["apiVersion"]), ("PartialObjectMetadata", "meta.k8s.io/v1"), o)
        self.assertEqual(o["metadata"]["name"], "gpt")
        self.assertEqual(o["metadata"]["labels"], {"tier": "gold"})
        self.assertNotIn("spec", o)

    def test_include_object(self):
        ns = self.cluster_namespace()
        self.create(model("inc", ns))
        base = collection_path("LanguageModel", ns)
        o = self.table_get(base + "?includeObject=Metadata").json()["rows"][0]["object"]
        self.assertEqual(o["kind"], "PartialObjectMetadata", o)
        o = self.table_get(base + "?includeObject=Object").json()["rows"][0]["object"]
        self.assertEqual((o["kind"], o["apiVersion"]), ("LanguageModel", API_VERSION), o)
        self.assertEqual(o["spec"]["modelName"], "gpt-4o", o)
        row = self.table_get(base + "?includeObject=None").json()["rows"][0]
        self.assertIsNone(row.get("object"), row)
        self.assertEqual(row["cells"][0], "inc")
        r = self.table_get(base + "?includeObject=bad", expect=400)
        self.assertStatus(r, 400, "BadRequest")

    def test_single_object_and_kubectl_accept(self):
        ns = self.cluster_namespace()
        a = agent("multi", ns)
        a["spec"]["models"] = [{"name": "gpt"}, {"name": "claude"}]
        self.create(a)
        t = self.table_get(item_path("LanguageAgent", "multi", ns), accept=KUBECTL_TABLE_ACCEPT).json()
        self.assertEqual(t["kind"], "Table", t)
        names = [c["name"] for c in t["columnDefinitions"]]
        self.assertEqual(names, ["Name", "Mode", "Phase", "Models", "Resolved", "Schedule", "Age"], t)
        self.assertEqual(len(t["rows"]), 1, t)
        cells = dict(zip(names, t["rows"][0]["cells"]))
        self.assertEqual(cells["Name"], "multi")
        self.assertEqual(cells["Models"], "gpt,claude")
        # a cluster-scoped kind, and the cluster-wide list of a namespaced one
        t = self.table_get(item_path("LanguageCluster", ns)).json()
        self.assertEqual([c["name"] for c in t["columnDefinitions"]],
                         ["Name", "Phase", "Gateway", "Models", "Age"], t)
        self.assertEqual(t["rows"][0]["cells"][0], ns)
        t = self.table_get(f"{API}/languageagents").json()
        self.assertIn("multi", [row["cells"][0] for row in t["rows"]], t)
        # a plain JSON Accept still gets the object itself
        r = self.api("GET", item_path("LanguageAgent", "multi", ns), expect=200)
        self.assertEqual(r.json()["kind"], "LanguageAgent")

    def test_table_paging(self):
        ns = self.cluster_namespace()
        for i in range(3):
            self.create(model(f"page-{i}", ns))
        t = self.table_get(collection_path("LanguageModel", ns) + "?limit=2").json()
        self.assertEqual([row["cells"][0] for row in t["rows"]], ["page-0", "page-1"], t)
        token = t["metadata"].get("continue")
        self.assertTrue(token, t)
        from urllib.parse import quote
        t = self.table_get(collection_path("LanguageModel", ns) + "?limit=2&continue=" + quote(token)).json()
        self.assertEqual([row["cells"][0] for row in t["rows"]], ["page-2"], t)
        self.assertFalse(t["metadata"].get("continue"), t)
