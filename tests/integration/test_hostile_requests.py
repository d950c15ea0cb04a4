"""Nothing a request carries can break a response, crash the server or change
the store when it is refused (issue 9, items 3-5), table-driven over every
verb: invalid UTF-8 and NUL in every path segment and query value, control
characters in echoed fields and headers, bad integers and booleans in every
numeric and boolean option of the query. (Bad enumerations, repeated options
and DeleteOptions bodies are rows of the hostile catalogue, with the exact
answer kube gives each: test_hostile_catalogue.py.)

After each request: the answer is a Kubernetes Status whose body is valid
UTF-8 JSON (for a refusal), every header value is free of control characters
and valid UTF-8, the server still answers, and a refused request left the
store as it was (a sentinel object keeps its resourceVersion; a victim of a
refused delete still exists; a refused create made nothing)."""

import json
import urllib.parse

from harness import ServerTestCase, collection_path, item_path, model

LM = "LanguageModel"
BAD = ["%ff", "%c3%28", "%00", "%ed%a0%80", "%c0%af", "%0d%0aX-Injected:%20yes"]

# The options each verb decodes (include/langop/request/options.h): a bad value of one of these
# must be refused; others are ignored, as kube ignores what a verb does not take.
READS = {
    "get": {"resourceVersion"},
    "list": {"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion",
             "resourceVersionMatch", "timeoutSeconds", "allowWatchBookmarks", "sendInitialEvents"},
    "watch": {"labelSelector", "fieldSelector", "resourceVersion", "resourceVersionMatch",
              "timeoutSeconds", "allowWatchBookmarks", "sendInitialEvents"},
    "create": {"dryRun", "fieldManager", "fieldValidation"},
    "update": {"dryRun", "fieldManager", "fieldValidation"},
    "patch": {"dryRun", "fieldManager", "fieldValidation", "force"},
    "delete": {"dryRun", "gracePeriodSeconds", "propagationPolicy", "orphanDependents"},
    "deletecollection": {"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion",
                         "resourceVersionMatch", "dryRun", "gracePeriodSeconds", "propagationPolicy",
                         "orphanDependents", "timeoutSeconds", "allowWatchBookmarks"},
}
PARAMS = sorted(set().union(*READS.values()) | {"pretty", "includeObject"})
NUMBERS = ["abc", "1.5", "1e3", "99999999999999999999", "0x10", " 1"]
BOOLEANS = ["yes", "maybe", "tRuE", "2"]
INTEGER_PARAMS = {"limit", "timeoutSeconds", "gracePeriodSeconds", "resourceVersion"}
BOOLEAN_PARAMS = {"allowWatchBookmarks", "orphanDependents", "force"}


def header_safe(value):
    raw = value.encode("latin-1")  # http.client decodes header bytes as latin-1
    raw.decode("utf-8")            # raises on invalid UTF-8
    return not any(b < 0x20 and b != 0x09 or b == 0x7F for b in raw)


class HostileRequestsTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ns = "hostile"
        r = cls.server.request("POST", collection_path("LanguageCluster"),
                               {"apiVersion": "langop.io/v1alpha1", "kind": "LanguageCluster",
                                "metadata": {"name": cls.ns}, "spec": {"domain": "hostile.example.com"}})
        assert r.status == 201, r
        r = cls.server.request("POST", collection_path(LM, cls.ns), model("sentinel", cls.ns))
        assert r.status == 201, r
        cls.sentinel_rv = r.json()["metadata"]["resourceVersion"]
        cls.victims = 0

    # ------------------------------------------------------------ checks

    def assertSafe(self, r, what):
        for name, value in r.headers.items():
            self.assertTrue(header_safe(value), f"{what}: header {name}: {value!r}")
        self.assertNotIn("x-injected", r.headers, what)
        if r.status >= 400:
            text = r.body.decode("utf-8")  # raises on invalid UTF-8
            st = json.loads(text)
            self.assertEqual((st.get("kind"), st.get("apiVersion"), st.get("status")),
                             ("Status", "v1", "Failure"), f"{what}: {r}")
            self.assertEqual(st.get("code"), r.status, f"{what}: {r}")
            self.assertLess(r.status, 500, f"{what}: {r}")

    def assertAlive(self, what):
        r = self.server.request("GET", item_path(LM, "sentinel", self.ns))
        self.assertEqual(r.status, 200, f"after {what}: {r}")
        self.assertEqual(r.json()["metadata"]["resourceVersion"], self.sentinel_rv,
                         f"after {what}: the sentinel changed")

    def victim(self):
        HostileRequestsTest.victims += 1
        name = f"victim-{HostileRequestsTest.victims}"
        self.create(model(name, self.ns))
        return name

    def exists(self, name):
        return self.server.request("GET", item_path(LM, name, self.ns)).status == 200

    def send(self, method, path, body=None, headers=None):
        r = self.server.request(method, path, body, headers=headers)
        self.assertSafe(r, f"{method} {path}")
        return r

    # ------------------------------------------------------------ the path

    def test_bad_bytes_in_every_path_segment(self):
        api = "/apis/langop.io/v1alpha1"
        for bad in BAD:
            paths = [
                ("GET", f"{api}/namespaces/{self.ns}/languagemodels/{bad}"),
                ("GET", f"{api}/namespaces/{bad}/languagemodels/sentinel"),
                ("GET", f"{api}/namespaces/{bad}/languagemodels"),
                ("GET", f"{api}/namespaces/{self.ns}/{bad}/sentinel"),
                ("GET", f"{api}/namespaces/{self.ns}/languagemodels/sentinel/{bad}"),
                ("GET", f"/apis/{bad}/v1alpha1/languagemodels"),
                ("PUT", f"{api}/namespaces/{self.ns}/languagemodels/{bad}"),
                ("PATCH", f"{api}/namespaces/{self.ns}/languagemodels/{bad}"),
                ("DELETE", f"{api}/namespaces/{self.ns}/languagemodels/{bad}"),
                ("DELETE", f"{api}/namespaces/{bad}/languagemodels"),
                ("POST", f"{api}/namespaces/{bad}/languagemodels"),
                ("PUT", f"{api}/namespaces/{self.ns}/languagemodels/sentinel/{bad}"),
            ]
            for method, path in paths:
                with self.subTest(method=method, path=path):
                    body = model("sentinel", self.ns) if method in ("PUT", "POST") else None
                    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None
                    r = self.send(method, path, "{}" if method == "PATCH" else body, headers)
                    # a list (or a deletecollection) in a namespace nobody made is empty (200), as in kube
                    self.assertTrue(r.status >= 400 or (method in ("GET", "DELETE") and path.endswith("languagemodels")),
                                    f"{method} {path}: {r}")
                    self.assertAlive(f"{method} {path}")

    # ------------------------------------------------------------ the query

    def request_for(self, verb, query):
        """method, path, body, headers of one request of verb with query; and a check of its effect."""
        q = "?" + query
        if verb == "get":
            return "GET", item_path(LM, "sentinel", self.ns) + q, None, None, None
        if verb == "list":
            return "GET", collection_path(LM, self.ns) + q, None, None, None
        if verb == "watch":
            return "GET", collection_path(LM, self.ns) + q + "&watch=1&timeoutSeconds=1", None, None, None
        if verb == "create":
            HostileRequestsTest.victims += 1
            name = f"made-{HostileRequestsTest.victims}"
            return "POST", collection_path(LM, self.ns) + q, model(name, self.ns), None, name
        if verb == "update":
            return ("PUT", item_path(LM, "sentinel", self.ns) + q,
                    dict(model("sentinel", self.ns), spec={"provider": "openai", "modelName": "changed"}),
                    None, None)
        if verb == "patch":
            return ("PATCH", item_path(LM, "sentinel", self.ns) + q, '{"spec":{"modelName":"changed"}}',
                    {"Content-Type": "application/merge-patch+json"}, None)
        if verb == "delete":
            name = self.victim()
            return "DELETE", item_path(LM, name, self.ns) + q, None, None, name
        if verb == "deletecollection":
            return "DELETE", collection_path(LM, self.ns) + q + "&labelSelector=none%3Dnone", None, None, None
        raise AssertionError(verb)

    def check_query(self, verb, param, value, must_refuse):
        query = f"{param}={value}"
        method, path, body, headers, name = self.request_for(verb, query)
        r = self.send(method, path, body, headers)
        what = f"{verb} ?{query}: {r}"
        if must_refuse:
            self.assertIn(r.status, (400, 406, 410, 422), what)
        if r.status >= 400:
            if verb == "delete":
                self.assertTrue(self.exists(name), f"{what}: refused, yet deleted")
            if verb == "create":
                self.assertFalse(self.exists(name), f"{what}: refused, yet created")
        self.assertAlive(what)
        if r.status < 300 and verb in ("update", "patch"):  # an ignored option: put the sentinel back
            self.fail(f"{what}: the sentinel must not be changed by a hostile update")

    def test_bad_bytes_in_every_query_value(self):
        for verb, reads in READS.items():
            for param in PARAMS:
                for bad in BAD:
                    # update and patch would change the sentinel when the option is ignored, and an accepted
                    # watch streams for a second: send them only the options they read
                    if verb in ("update", "patch", "watch") and param not in reads:
                        continue
                    # every option a verb reads refuses these bytes, except the free-text ones that refuse
                    # only what is not printable (fieldManager) or check a grammar (selectors)
                    with self.subTest(verb=verb, param=param, value=bad):
                        self.check_query(verb, param, bad, must_refuse=param in reads)

    def test_bad_numbers_and_booleans(self):
        for verb, reads in READS.items():
            for param in sorted(reads & (INTEGER_PARAMS | BOOLEAN_PARAMS)):
                values = NUMBERS if param in INTEGER_PARAMS else BOOLEANS
                for value in values:
                    with self.subTest(verb=verb, param=param, value=value):
                        self.check_query(verb, param, urllib.parse.quote(value), must_refuse=True)

    # ------------------------------------------------------------ bodies and headers

    def test_echoed_fields_and_warnings(self):
        # an unknown field whose name holds a line break comes back in a Warning, never as a header
        o = model("echo", self.ns)
        o["spec"]["x\r\nX-Injected: yes"] = 1
        r = self.send("POST", collection_path(LM, self.ns) + "?fieldValidation=Warn", o)
        self.assertEqual(r.status, 201, r)
        self.assertIn("warning", r.headers, r)
        # many unknown fields: none dropped silently
        o = model("many", self.ns)
        for i in range(40):
            o["spec"][f"unknown{i}"] = i
        conn = self.server.connection()
        conn.request("POST", collection_path(LM, self.ns) + "?fieldValidation=Warn", body=json.dumps(o),
                     headers={"Authorization": f"Bearer {self.server.token}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        warnings = [v for k, v in resp.getheaders() if k.lower() == "warning"]
        resp.read()
        conn.close()
        self.assertEqual(resp.status, 201)
        self.assertTrue(len(warnings) == 40 or "more warnings" in warnings[-1], warnings[-3:])
        self.assertIn("9 more warnings", warnings[-1])
        # invalid UTF-8 inside a body, in a value and in a name: 400, message valid UTF-8
        for raw in (b'{"apiVersion":"langop.io/v1alpha1","kind":"LanguageModel","metadata":{"name":"x\xff"}}',
                    b'{"apiVersion":"langop.io/v1alpha1","kind":"LanguageModel","metadata":{"name":"x"},'
                    b'"spec":{"modelName":"\xc3\x28"}}'):
            with self.subTest(body=raw):
                r = self.send("POST", collection_path(LM, self.ns), raw, {"Content-Type": "application/json"})
                self.assertEqual(r.status, 400, r)
        # a User-Agent the default field manager is made of: printable or not, the answer is safe
        for ua in ("curl\xff\xfe/8", "caf\xc3\xa9/1", "a\x85b/1"):
            with self.subTest(user_agent=ua):
                HostileRequestsTest.victims += 1
                name = f"ua-{HostileRequestsTest.victims}"
                r = self.send("POST", collection_path(LM, self.ns), model(name, self.ns), {"User-Agent": ua})
                self.assertIn(r.status, (201, 400), r)
                if r.status == 201:
                    managers = [m["manager"] for m in r.json()["metadata"].get("managedFields", [])]
                    self.assertTrue(all(header_safe(m.encode("utf-8").decode("latin-1")) for m in managers),
                                    managers)
                self.assertAlive(f"User-Agent {ua!r}")
        # a control character in a header: the HTTP layer refuses the request before the API sees it
        conn = self.server.connection()
        conn.request("GET", "/readyz", headers={"User-Agent": "x\x01y/1"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        self.assertEqual(resp.status, 400)
        self.assertAlive("a control character in User-Agent")
