"""The wire, checked with raw HTTPS requests: authentication, health, version,
discovery (legacy and aggregated, ETag/304), error Status objects for bad input
(413, 400 for JSON/YAML/namespace, 422), dry run, HTTP/2 and HTTP/1.1 via
ALPN, and the per-request log line."""

import json
import socket
import ssl
import subprocess
import time

from harness import (API, RFC3339_RE, UUID_RE, ServerTestCase, collection_path,
                     item_path, model)

KUBECTL_DISCOVERY_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json")
V2BETA1_ONLY_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")

EXPECTED_RESOURCES = {
    # plural: (kind, singular, shortName, namespaced)
    "languageclusters": ("LanguageCluster", "languagecluster", "lcluster", False),
    "languagemodels": ("LanguageModel", "languagemodel", "lmodel", True),
    "languageagents": ("LanguageAgent", "languageagent", "lagent", True),
    "languagetools": ("LanguageTool", "languagetool", "ltool", True),
    "languagepersonas": ("LanguagePersona", "languagepersona", "lpersona", True),
}
VERBS = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
CORE_VERBS = VERBS - {"patch", "watch"}


def media_params(content_type):
    """'application/json;g=x;v=v2' -> ('application/json', {'g': 'x', 'v': 'v2'})"""
    parts = [p.strip() for p in content_type.split(";")]
    return parts[0], dict(p.split("=", 1) for p in parts[1:] if "=" in p)


# The read-only subresources computed on read (issue 5), and the kind each returns.
DERIVED_SUBRESOURCES = {
    "languageclusters/gatewayconfig": "GatewayConfig",
    "languageagents/agentconfig": "AgentConfig",
}

class HttpTest(ServerTestCase):

    # ------------------------------------------------------ authentication

    def test_health_endpoints_need_no_token(self):
        for path in ("/healthz", "/livez", "/readyz"):
            with self.subTest(path=path):
                r = self.api("GET", path, token=None, expect=200)
                self.assertEqual(r.body, b"ok")
                self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r)

    def test_readyz_verbose_lists_checks(self):
        r = self.api("GET", "/readyz?verbose", token=None, expect=200)
        lines = r.text().splitlines()
        checks = [l for l in lines if l.startswith("[+]")]
        self.assertTrue(checks, r.text())
        for l in checks:
            self.assertRegex(l, r"^\[\+\][a-z0-9-]+ ok$")
        self.assertIn("readyz check passed", lines)

    def test_no_or_wrong_token_is_401(self):
        ns = self.new_namespace()
        path = collection_path("LanguageModel", ns)
        for token in (None, "wrong-token", ""):
            with self.subTest(token=token):
                s = self.assertStatus(self.api("GET", path, token=token), 401, "Unauthorized")
                self.assertEqual(s["message"], "Unauthorized")
        r = self.api("GET", path, token=None, headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        self.assertStatus(r, 401, "Unauthorized")
        # a write without a token changes nothing
        self.assertStatus(self.api("POST", path, model("sneaky", ns), token=None), 401, "Unauthorized")
        self.get("LanguageModel", "sneaky", ns, expect=404)
        for p in ("/apis", "/version", API):
            self.assertStatus(self.api("GET", p, token=None), 401, "Unauthorized")

    def test_version(self):
        v = self.api("GET", "/version", expect=200).json()
        for key in ("major", "minor", "gitVersion", "goVersion", "platform"):
            self.assertIsInstance(v.get(key), str, v)
        self.assertRegex(v["major"], r"^[0-9]+$")
        self.assertRegex(v["gitVersion"], r"^v[0-9]+\.[0-9]+\.[0-9]+")

    # ----------------------------------------------------------- discovery

    def test_legacy_discovery(self):
        r = self.api("GET", "/apis", expect=200)
        self.assertEqual(media_params(r.headers["content-type"])[0], "application/json")
        groups = r.json()
        self.assertEqual(groups["kind"], "APIGroupList")
        g = [g for g in groups["groups"] if g["name"] == "langop.io"]
        self.assertEqual(len(g), 1, groups)
        self.assertEqual(g[0]["preferredVersion"], {"groupVersion": "langop.io/v1alpha1",
                                                    "version": "v1alpha1"})
        grp = self.api("GET", "/apis/langop.io", expect=200).json()
        self.assertEqual(grp["kind"], "APIGroup")
        self.assertEqual(grp["name"], "langop.io")
        self.assertEqual(self.api("GET", "/api", expect=200).json()["kind"], "APIVersions")

        rl = self.api("GET", API, expect=200).json()
        self.assertEqual(rl["kind"], "APIResourceList")
        self.assertEqual(rl["groupVersion"], "langop.io/v1alpha1")
        byname = {res["name"]: res for res in rl["resources"]}
        self.assertEqual(set(byname), set(EXPECTED_RESOURCES) |
                         {p + "/status" for p in EXPECTED_RESOURCES} | set(DERIVED_SUBRESOURCES))
        for name, kind in DERIVED_SUBRESOURCES.items():
            self.assertEqual((byname[name]["kind"], byname[name]["verbs"]), (kind, ["get"]))
        for plural, (kind, singular, short, namespaced) in EXPECTED_RESOURCES.items():
            with self.subTest(resource=plural):
                res = byname[plural]
                self.assertEqual(res["kind"], kind)
                self.assertEqual(res["singularName"], singular)
                self.assertEqual(res["namespaced"], namespaced)
                self.assertEqual(res["shortNames"], [short])
                self.assertIn("langop", res["categories"])
                # patch and watch arrive with a later issue; never a verb beyond these
                self.assertTrue(CORE_VERBS <= set(res["verbs"]) <= VERBS, res["verbs"])
                st = byname[plural + "/status"]
                self.assertEqual(st["kind"], kind)
                self.assertEqual(st["namespaced"], namespaced)
                self.assertTrue({"get", "update"} <= set(st["verbs"]) <= {"get", "patch", "update"},
                                st["verbs"])

    def _aggregated(self, accept, version):
        r = self.api("GET", "/apis", headers={"Accept": accept}, expect=200)
        mt, params = media_params(r.headers.get("content-type", ""))
        self.assertEqual(mt, "application/json", r)
        self.assertEqual(params, {"g": "apidiscovery.k8s.io", "v": version,
                                  "as": "APIGroupDiscoveryList"}, r.headers)
        doc = r.json()
        self.assertEqual(doc["kind"], "APIGroupDiscoveryList")
        self.assertEqual(doc["apiVersion"], f"apidiscovery.k8s.io/{version}")
        items = [i for i in doc["items"] if i["metadata"]["name"] == "langop.io"]
        self.assertEqual(len(items), 1, doc)
        versions = items[0]["versions"]
        self.assertEqual([v["version"] for v in versions], ["v1alpha1"])
        res = {x["resource"]: x for x in versions[0]["resources"]}
        self.assertEqual(set(res), set(EXPECTED_RESOURCES))
        for plural, (kind, singular, short, namespaced) in EXPECTED_RESOURCES.items():
            x = res[plural]
            self.assertEqual(x["responseKind"], {"group": "langop.io", "version": "v1alpha1",
                                                 "kind": kind})
            self.assertEqual(x["scope"], "Namespaced" if namespaced else "Cluster")
            self.assertEqual(x["singularResource"], singular)
            self.assertEqual(x["shortNames"], [short])
            self.assertIn("langop", x["categories"])
            derived = [d.split("/")[1] for d in DERIVED_SUBRESOURCES if d.startswith(plural + "/")]
            self.assertEqual([s["subresource"] for s in x["subresources"]], ["status"] + derived)
        return r

    def test_aggregated_discovery_v2_and_v2beta1(self):
        self._aggregated(KUBECTL_DISCOVERY_ACCEPT, "v2")
        self._aggregated(V2BETA1_ONLY_ACCEPT, "v2beta1")
        # and plain JSON gets the legacy list
        r = self.api("GET", "/apis", headers={"Accept": "application/json"}, expect=200)
        self.assertEqual(r.headers["content-type"].split(";")[0].strip(), "application/json")
        self.assertNotIn("g=apidiscovery.k8s.io", r.headers["content-type"])
        self.assertEqual(r.json()["kind"], "APIGroupList")

    def test_discovery_etag_and_304(self):
        for path, accept in (("/apis", KUBECTL_DISCOVERY_ACCEPT), ("/apis", "application/json"),
                             ("/api", KUBECTL_DISCOVERY_ACCEPT), ("/api", "application/json"),
                             ("/apis/langop.io", "application/json"), (API, "application/json")):
            with self.subTest(path=path, accept=accept[:30]):
                r = self.api("GET", path, headers={"Accept": accept}, expect=200)
                etag = r.headers.get("etag")
                self.assertTrue(etag, r.headers)
                r2 = self.api("GET", path, headers={"Accept": accept, "If-None-Match": etag},
                              expect=304)
                self.assertEqual(r2.body, b"")
                r3 = self.api("GET", path, headers={"Accept": accept, "If-None-Match": '"other"'},
                              expect=200)
                self.assertEqual(r3.body, r.body)
        # one URL, two representations: their ETags must differ
        e_v2 = self.api("GET", "/apis", headers={"Accept": KUBECTL_DISCOVERY_ACCEPT}).headers["etag"]
        e_legacy = self.api("GET", "/apis", headers={"Accept": "application/json"}).headers["etag"]
        self.assertNotEqual(e_v2, e_legacy)
        # and different documents have different ETags: a 304 for one is no answer for another
        etags = {p: self.api("GET", p, headers={"Accept": "application/json"}).headers["etag"]
                 for p in ("/api", "/apis", "/apis/langop.io", API)}
        self.assertEqual(len(set(etags.values())), len(etags), etags)
        self.api("GET", "/apis/langop.io", expect=200,
                 headers={"Accept": "application/json", "If-None-Match": etags[API]})

    # ------------------------------------------------------- error bodies

    def test_not_found_status(self):
        ns = self.new_namespace()
        s = self.assertStatus(self.api("GET", item_path("LanguageModel", "nope", ns)), 404, "NotFound")
        self.assertEqual(s["message"], 'languagemodels.langop.io "nope" not found')
        self.assertEqual(s["details"], {"name": "nope", "group": "langop.io", "kind": "languagemodels"})
        s = self.assertStatus(self.api("GET", f"{API}/namespaces/{ns}/widgets"), 404, "NotFound")

    def test_body_over_3mib_is_413(self):
        ns = self.new_namespace()
        big = model("big", ns)
        big["metadata"]["annotations"] = {"filler": "x" * (3 * 1024 * 1024 + 1024)}
        body = json.dumps(big).encode()
        r = self._send_big(collection_path("LanguageModel", ns), body, chunked=False)
        self.assertStatus(r, 413, "RequestEntityTooLarge")
        r = self._send_big(collection_path("LanguageModel", ns), body, chunked=True)
        self.assertStatus(r, 413, "RequestEntityTooLarge")
        self.get("LanguageModel", "big", ns, expect=404)
        self.api("GET", "/healthz", token=None, expect=200)

    def _send_big(self, path, body, chunked):
        """POST a large body; the server may answer before reading all of it."""
        conn = self.server.connection()
        try:
            conn.putrequest("POST", path)
            conn.putheader("Authorization", f"Bearer {self.server.token}")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Accept", "application/json")
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            else:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            try:
                step = 64 * 1024
                for i in range(0, len(body), step):
                    piece = body[i:i + step]
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                if chunked:
                    conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # it stopped reading: fine, the answer is what counts
            resp = conn.getresponse()
            from harness import Response
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def test_malformed_json_is_400_with_position(self):
        ns = self.new_namespace()
        path = collection_path("LanguageModel", ns)
        bad = ('{"apiVersion": "langop.io/v1alpha1", "kind": "LanguageModel",\n'
               ' "metadata": {"name": "broken"},\n "spec": {"provider": "openai",}}')
        s = self.assertStatus(self.api("POST", path, bad, headers={"Content-Type": "application/json"}),
                              400, "BadRequest")
        self.assertRegex(s["message"], r"(?i)(line|column|position|offset|char\w*)\D{0,4}[0-9]+", s)
        for body in ('[1, 2]', '"a string"', '', '{"apiVersion": "langop.io/v1alpha1", "kind": '):
            with self.subTest(body=body):
                self.assertStatus(self.api("POST", path, body,
                                           headers={"Content-Type": "application/json"}),
                                  400, "BadRequest")
        self.get("LanguageModel", "broken", ns, expect=404)

    def test_malformed_yaml_is_400(self):
        ns = self.new_namespace()
        path = collection_path("LanguageModel", ns)
        good = ("apiVersion: langop.io/v1alpha1\nkind: LanguageModel\nmetadata:\n  name: from-yaml\n"
                "spec:\n  provider: openai\n  modelName: gpt-4o\n")
        r = self.api("POST", path, good, headers={"Content-Type": "application/yaml"}, expect=201)
        self.assertEqual(r.json()["metadata"]["name"], "from-yaml")
        bad = ("apiVersion: langop.io/v1alpha1\nkind: LanguageModel\nmetadata:\n  name: bad-yaml\n"
               "  labels: {a: [1, 2\nspec:\n  provider: openai\n")
        s = self.assertStatus(self.api("POST", path, bad, headers={"Content-Type": "application/yaml"}),
                              400, "BadRequest")
        self.assertRegex(s["message"], r"(?i)(line|column)\D{0,4}[0-9]+", s)
        self.get("LanguageModel", "bad-yaml", ns, expect=404)

    def test_kind_mismatch_is_400(self):
        ns = self.new_namespace()
        o = model("wrong-kind", ns)
        o["kind"] = "LanguageAgent"
        self.assertStatus(self.api("POST", collection_path("LanguageModel", ns), o), 400, "BadRequest")

    def test_namespace_mismatch_is_400(self):
        ns, other = self.new_namespace("nsm-a"), self.new_namespace("nsm-b")
        s = self.assertStatus(self.api("POST", collection_path("LanguageModel", ns), model("m", other)),
                              400, "BadRequest")
        self.assertIn("the namespace of the provided object does not match the namespace sent on "
                      "the request", s["message"])
        self.get("LanguageModel", "m", ns, expect=404)
        self.get("LanguageModel", "m", other, expect=404)
        # PUT too
        created = self.create(model("m", ns))
        created["metadata"]["namespace"] = other
        self.assertStatus(self.api("PUT", item_path("LanguageModel", "m", ns), created), 400, "BadRequest")

    def test_invalid_name_is_422(self):
        ns = self.new_namespace()
        s = self.assertStatus(self.api("POST", collection_path("LanguageModel", ns), model("Bad_Name", ns)),
                              422, "Invalid")
        self.assertTrue(s["message"].startswith('LanguageModel.langop.io "Bad_Name" is invalid: '
                                                'metadata.name'), s)
        d = s["details"]
        self.assertEqual((d["name"], d["group"], d["kind"]), ("Bad_Name", "langop.io", "LanguageModel"))
        self.assertEqual([(c["field"], c["reason"]) for c in d["causes"]],
                         [("metadata.name", "FieldValueInvalid")])

    def test_bad_label_selector_is_400(self):
        ns = self.new_namespace()
        for sel in ("tier%20in%20(gold", "tier%3D%3D%3Dgold", "%3Dgold"):
            with self.subTest(sel=sel):
                self.assertStatus(self.api("GET", collection_path("LanguageModel", ns) + "?labelSelector=" + sel),
                                  400, "BadRequest")

    def test_dry_run_on_every_write(self):
        ns = self.new_namespace()
        path = collection_path("LanguageModel", ns)
        r = self.api("POST", path + "?dryRun=All", model("dry", ns), expect=201).json()
        self.assertRegex(r["metadata"]["uid"], UUID_RE)
        self.assertRegex(r["metadata"]["creationTimestamp"], RFC3339_RE)
        self.get("LanguageModel", "dry", ns, expect=404)
        self.assertStatus(self.api("POST", path + "?dryRun=Bogus", model("dry", ns)), 422, "Invalid")

        o = self.create(model("real", ns))
        changed = json.loads(json.dumps(o))
        changed["spec"]["modelName"] = "changed"
        self.api("PUT", item_path("LanguageModel", "real", ns) + "?dryRun=All", changed, expect=200)
        cur = self.get("LanguageModel", "real", ns)
        self.assertEqual(cur["spec"]["modelName"], "gpt-4o")
        self.assertEqual(cur["metadata"]["resourceVersion"], o["metadata"]["resourceVersion"])

        self.api("DELETE", item_path("LanguageModel", "real", ns), {"dryRun": ["All"]}, expect=200)
        self.api("DELETE", item_path("LanguageModel", "real", ns) + "?dryRun=All", expect=200)
        self.get("LanguageModel", "real", ns, expect=200)

    def test_put_to_missing_object_is_404(self):
        ns = self.new_namespace()
        o = model("ghost", ns)
        s = self.assertStatus(self.api("PUT", item_path("LanguageModel", "ghost", ns), o), 404, "NotFound")
        self.assertEqual(s["message"], 'languagemodels.langop.io "ghost" not found')

    def test_hostile_input_gets_4xx_and_the_server_lives(self):
        ns = self.new_namespace()
        coll = collection_path("LanguageModel", ns)
        json_ct = {"Content-Type": "application/json"}
        yaml_ct = {"Content-Type": "application/yaml"}
        cases = [
            ("deep JSON", "POST", coll, "[" * 200000, json_ct),
            ("deep JSON object", "POST", coll, '{"a":' * 200000, json_ct),
            ("deep YAML flow", "POST", coll, "[" * 200000, yaml_ct),
            ("deep YAML block", "POST", coll,
             "".join("  " * i + "k:\n" for i in range(3000)), yaml_ct),
            ("YAML alias bomb", "POST", coll,
             "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
             "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
             "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
             "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n", yaml_ct),
            ("NUL in JSON", "POST", coll, b'{"apiVersion":"langop.io/v1alpha1","kind":"Language\x00Model"}',
             json_ct),
            ("invalid UTF-8", "POST", coll, b'{"apiVersion":"\xff\xfe"}', json_ct),
            ("metadata not an object", "POST", coll,
             {"apiVersion": "langop.io/v1alpha1", "kind": "LanguageModel", "metadata": 7}, None),
            ("labels not strings", "POST", coll,
             {"apiVersion": "langop.io/v1alpha1", "kind": "LanguageModel",
              "metadata": {"name": "lbl", "labels": {"a": 1}}, "spec": {}}, None),
            ("unknown media type", "POST", coll, "name: x", {"Content-Type": "text/x-nonsense"}),
            ("empty name segment", "GET", f"{API}/namespaces//languagemodels", None, None),
            ("bad percent-encoding", "GET", coll + "/%zz", None, None),
            ("encoded slash in name", "GET", coll + "/a%2Fb", None, None),
            ("bad limit", "GET", coll + "?limit=-1x", None, None),
            ("bad continue", "GET", coll + "?limit=1&continue=%%%notbase64", None, None),
            ("huge bad label selector", "GET",
             coll + "?labelSelector=" + "a%3Db," * 20000 + "c%20in%20(d", None, None),
            ("unknown subresource", "GET", item_path("LanguageModel", "x", ns) + "/scale", None, None),
            ("method on discovery", "DELETE", "/apis", None, None),
        ]
        for what, method, path, body, headers in cases:
            with self.subTest(what):
                try:
                    r = self.api(method, path, body, headers=headers, timeout=20)
                except Exception as e:              # noqa: BLE001 - report any failure
                    self.fail(f"{what}: no HTTP answer ({e!r}); alive={self.server.proc.poll() is None}")
                self.assertTrue(400 <= r.status < 500, f"{what}: {r}")
                self.assertEqual(r.json().get("kind"), "Status", f"{what}: {r}")
        self.assertIsNone(self.server.proc.poll(), "the server died")
        self.api("GET", "/healthz", token=None, expect=200)
        self.get("LanguageModel", "lbl", ns, expect=404)

    # ------------------------------------------------------------ HTTP/2

    def _alpn(self, protocols):
        ctx = self.server.ssl_context(alpn=protocols)
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return tls.selected_alpn_protocol()

    def test_alpn_negotiates_h2_and_http11(self):
        self.assertEqual(self._alpn(["h2", "http/1.1"]), "h2")
        self.assertEqual(self._alpn(["http/1.1"]), "http/1.1")

    def test_curl_http2_and_http11(self):
        ns = self.new_namespace()
        self.create(model("via-curl", ns))
        url = self.server.url + item_path("LanguageModel", "via-curl", ns)
        for flag, want in (("--http2", "2"), ("--http1.1", "1.1")):
            with self.subTest(flag=flag):
                p = subprocess.run(
                    ["curl", "-sS", flag, "--cacert", str(self.server.ca),
                     "-H", f"Authorization: Bearer {self.server.token}",
                     "-w", "\n%{http_version} %{http_code}", url],
                    capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)
                body, _, tail = p.stdout.rpartition("\n")
                self.assertEqual(tail, f"{want} 200", p.stdout[-500:])
                self.assertEqual(json.loads(body)["metadata"]["name"], "via-curl")

    def test_body_over_3mib_is_413_over_http2(self):
        ns = self.new_namespace()
        big = model("big-h2", ns)
        big["metadata"]["annotations"] = {"filler": "x" * (3 * 1024 * 1024 + 1024)}
        path = self.tmp / "big-h2.json"
        path.write_text(json.dumps(big))
        p = subprocess.run(
            ["curl", "-sS", "--http2", "--cacert", str(self.server.ca),
             "-H", f"Authorization: Bearer {self.server.token}",
             "-H", "Content-Type: application/json", "--data-binary", f"@{path}",
             "-w", "\n%{http_version} %{http_code}",
             self.server.url + collection_path("LanguageModel", ns)],
            capture_output=True, text=True, timeout=60)
        body, _, tail = p.stdout.rpartition("\n")
        self.assertEqual(tail, "2 413", p.stdout[-300:] + p.stderr)
        self.assertEqual(json.loads(body)["reason"], "RequestEntityTooLarge")
        self.get("LanguageModel", "big-h2", ns, expect=404)

    # ------------------------------------------------------------ logging

    def test_one_log_line_per_request(self):
        """verb, path, user, code and duration, one line per request."""
        ns = self.new_namespace()
        n = time.monotonic_ns()
        authed, anon = f"logprobe{n}a", f"logprobe{n}b"
        self.api("GET", item_path("LanguageModel", authed, ns), expect=404)
        self.api("GET", item_path("LanguageModel", anon, ns), token=None, expect=401)
        deadline = time.monotonic() + 5
        while True:
            log = self.server.log_text().splitlines()
            mine = [l for l in log if authed in l]
            theirs = [l for l in log if anon in l]
            if (mine and theirs) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        tail = "\n".join(log[-20:])
        self.assertEqual(len(mine), 1, tail)
        self.assertRegex(mine[0], r"(?i)\bget\b")
        self.assertIn(item_path("LanguageModel", authed, ns), mine[0])
        self.assertRegex(mine[0], r"\badmin\b")
        self.assertRegex(mine[0], r"\b404\b")
        self.assertRegex(mine[0], r"[0-9](\.[0-9]+)?\s*(ns|us|µs|ms|s)\b")
        self.assertEqual(len(theirs), 1, tail)
        self.assertRegex(theirs[0], r"\b401\b")
