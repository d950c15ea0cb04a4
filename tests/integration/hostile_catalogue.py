"""The hostile catalogue: one row per hostile request, with the answer
kube-apiserver gives to it (its HTTP status and Status reason).

Three kinds of row:
  Api  - a request sent over the test's one keep-alive HTTPS/1.1 connection:
         method, path and query, headers, body; the answer's status and, for
         a failure, the reason of its Status.
  Raw1 - bytes written as they are to a fresh TLS connection speaking
         HTTP/1.1 (what http.client will not send), and what must come back:
         the statuses of the answers in order, whether the server then closes,
         or that nothing comes back while the request is incomplete.
  Raw2 - bytes written to a fresh TLS connection speaking HTTP/2 (frames made
         here), and what must come back: a GOAWAY or RST_STREAM with one of
         the RFC 9113 error codes, or an answer's :status and reason.

Where this server deliberately answers otherwise than kube-apiserver, the row
says so in `differs` (what kube does, and why this answer is kept); every
other expected answer is kube's, from the Kubernetes sources named beside
the group of rows (k8s.io/apiserver pkg/endpoints/handlers/*.go,
k8s.io/apimachinery validation, k8s.io/apiextensions-apiserver's
customresource_handler.go for how custom resources are routed).

The rows run against a store that holds the LanguageCluster NS, the
LanguageModels M1 and M2 in it and the LanguageAgent A1; raw rows carry the
admin's bearer token given to catalogue(), continue-token rows the token of
a real first page (limit=1) of NS's models. Every row leaves the store as it
was: writes are refused, or dry runs.
"""

import base64
import json
import struct

from harness import API, API_VERSION

NS = "hostile-cat"
M1 = "m1"
M2 = "m2"
A1 = "a1"
COLL = f"{API}/namespaces/{NS}/languagemodels"
ITEM = f"{COLL}/{M1}"
STATUS = f"{ITEM}/status"
CLUSTERS = f"{API}/languageclusters"
AGENT = f"{API}/namespaces/{NS}/languageagents/{A1}"
DRY = "?dryRun=All"
MiB = 1 << 20
LIMIT = 3 * MiB          # kube's MaxRequestBodyBytes for a write (server.Config default)

JSON = "application/json"
YAML = "application/yaml"
MERGE = "application/merge-patch+json"
JPATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def model(name=M1, ns=NS, spec=None, **meta):
    m = {"name": name, **meta}
    if ns is not None:
        m["namespace"] = ns
    return {"apiVersion": API_VERSION, "kind": "LanguageModel", "metadata": m,
            "spec": spec if spec is not None else {"provider": "openai", "modelName": "gpt-4o"}}


def model_json(spec_tail, name="x1"):
    """A LanguageModel as JSON bytes whose spec ends with spec_tail (raw JSON, str or bytes)."""
    tail = spec_tail if isinstance(spec_tail, bytes) else spec_tail.encode()
    return (b'{"apiVersion":"%s","kind":"LanguageModel","metadata":{"name":"%s"},'
            b'"spec":{"provider":"openai","modelName":"gpt-4o",%s}}' % (API_VERSION.encode(), name.encode(), tail))


def model_yaml(extra="", name="x1"):
    return (f"apiVersion: {API_VERSION}\nkind: LanguageModel\nmetadata:\n  name: {name}\n"
            f"spec:\n  provider: openai\n  modelName: gpt-4o\n{extra}").encode()


def big_model(size, name="big"):
    """A LanguageModel whose JSON is size bytes at least (an annotation pads it)."""
    o = model(name)
    o["metadata"]["annotations"] = {"pad": "x" * size}
    return json.dumps(o).encode()


def continue_token(doc):
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Api:
    """One request over the shared connection. body: bytes, or a dict/list sent as
    JSON; ct: its Content-Type (None: no such header). check: f(response) -> None
    or a text saying what is wrong, for what status and reason do not tell."""

    def __init__(self, what, method, path, status, reason=None, body=None, ct=JSON, headers=None,
                 check=None, differs=None):
        self.what, self.method, self.path = what, method, path
        self.status, self.reason = status, reason
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.body = body
        self.headers = dict(headers or {})
        if body is not None and ct is not None:
            self.headers.setdefault("Content-Type", ct)
        self.check, self.differs = check, differs


class Raw1:
    """Bytes to a fresh HTTP/1.1 TLS connection. statuses: the answers expected in
    order ([] = none while the request is incomplete); closed: the server must
    then close the connection (None: either)."""

    def __init__(self, what, data, statuses, closed=None, differs=None):
        self.what, self.data, self.statuses, self.closed, self.differs = what, data, statuses, closed, differs


class Raw2:
    """Bytes to a fresh HTTP/2 TLS connection (the client preface is the caller's).
    goaway: the error codes one of which a GOAWAY must carry; rst: likewise for an
    RST_STREAM on stream 1; status/reason: the answer on stream 1. Where RFC 9113
    lets a server treat a malformed request as a stream or as a connection error,
    both sets are given and either is right. closed: a close without any frame is
    right too (RFC 9113 3.4 lets a server omit the GOAWAY after a bad preface)."""

    def __init__(self, what, data, goaway=None, rst=None, status=None, reason=None, closed=False, differs=None):
        self.what, self.data, self.closed = what, data, closed
        self.goaway, self.rst, self.status, self.reason, self.differs = goaway, rst, status, reason, differs


def uid_replaced(r):
    uid = r.json()["metadata"].get("uid")
    return None if uid and uid != "0000-forged" else f"uid kept as sent: {uid!r}"


def is_table(r):
    return None if r.json().get("kind") == "Table" else "not a Table"


def only(name):
    def check(r):
        names = [i["metadata"]["name"] for i in r.json().get("items", [])]
        return None if names == [name] else f"items {names}, expected [{name}]"
    return check


def empty_list(r):
    items = r.json().get("items")
    return None if items == [] else f"items {items!r:.200}, expected none"


# ------------------------------------------------------------------ JSON bodies
# create.go: an undecodable body is transformDecodeError -> 400 BadRequest; an
# object of another group/version is 400 ("the API version in the data ...").

def json_bodies():
    c = COLL
    deep = 100_000
    rows = [
        Api("JSON truncated after a key", "POST", c, 400, "BadRequest", b'{"apiVersion":'),
        Api("JSON truncated inside a string", "POST", c, 400, "BadRequest", b'{"apiVersion":"langop.io/v1al'),
        Api("JSON with trailing garbage", "POST", c, 400, "BadRequest", json.dumps(model("t1")).encode() + b"xyz"),
        Api("JSON with a second document after the first", "POST", c, 400, "BadRequest",
            json.dumps(model("t2")).encode() + b"{}"),
        Api("JSON with a trailing comma", "POST", c, 400, "BadRequest", model_json('"timeout":"5m",')),
        Api("JSON with single quotes", "POST", c, 400, "BadRequest", b"{'apiVersion':'langop.io/v1alpha1'}"),
        Api("JSON with a comment", "POST", c, 400, "BadRequest", b'{/* hi */"apiVersion":"langop.io/v1alpha1"}'),
        Api("JSON with a raw NUL between tokens", "POST", c, 400, "BadRequest",
            b'{"apiVersion":"langop.io/v1alpha1",\x00"kind":"LanguageModel"}'),
        Api("JSON with a raw NUL inside a string", "POST", c, 400, "BadRequest", model_json('"timeout":"5\x00m"')),
        Api("JSON with a raw control byte inside a string", "POST", c, 400, "BadRequest",
            model_json('"timeout":"5\x01m"')),
        Api("JSON with a bad escape", "POST", c, 400, "BadRequest", model_json('"timeout":"\\q"')),
        Api("JSON with a short \\u escape", "POST", c, 400, "BadRequest", model_json('"timeout":"\\u12"')),
        Api("JSON of only whitespace", "POST", c, 400, "BadRequest", b"   \n\t  "),
        Api("an empty body", "POST", c, 400, "BadRequest", b""),
        Api("JSON null", "POST", c, 400, "BadRequest", b"null"),
        Api("a JSON array", "POST", c, 400, "BadRequest", b"[]"),
        Api("a JSON string", "POST", c, 400, "BadRequest", b'"LanguageModel"'),
        Api("a JSON number", "POST", c, 400, "BadRequest", b"42"),
        Api("a JSON boolean", "POST", c, 400, "BadRequest", b"true"),
        Api("an empty object (no kind)", "POST", c, 400, "BadRequest", b"{}"),
        Api("no apiVersion", "POST", c, 400, "BadRequest",
            {"kind": "LanguageModel", "metadata": {"name": "x1"}, "spec": {}}),
        Api("no kind", "POST", c, 400, "BadRequest",
            {"apiVersion": API_VERSION, "metadata": {"name": "x1"}, "spec": {}}),
        Api("kind of another resource", "POST", c, 400, "BadRequest", dict(model("x1"), kind="LanguageAgent")),
        Api("apiVersion of another version", "POST", c, 400, "BadRequest",
            dict(model("x1"), apiVersion="langop.io/v1")),
        Api("apiVersion of another group", "POST", c, 400, "BadRequest", dict(model("x1"), apiVersion="apps/v1")),
        Api("apiVersion v1 (core)", "POST", c, 400, "BadRequest", dict(model("x1"), apiVersion="v1")),
        Api("kind a number", "POST", c, 400, "BadRequest", dict(model("x1"), kind=7)),
        Api("apiVersion an object", "POST", c, 400, "BadRequest", dict(model("x1"), apiVersion={"a": 1})),
        Api(f"{deep}-deep nesting of [", "POST", c, 400, "BadRequest", b"[" * deep + b"]" * deep),
        Api(f"{deep}-deep nesting of {{", "POST", c, 400, "BadRequest", b'{"a":' * deep + b"1" + b"}" * deep),
        Api(f"{deep} unclosed [", "POST", c, 400, "BadRequest", b"[" * deep),
        Api(f"{deep}-deep nesting inside spec.params", "POST", c, 400, "BadRequest",
            model_json('"params":' + '{"a":' * deep + "1" + "}" * deep)),
        Api("duplicate keys, fieldValidation=Strict", "POST", c + "?fieldValidation=Strict", 400, "BadRequest",
            b'{"apiVersion":"langop.io/v1alpha1","kind":"LanguageModel","metadata":{"name":"d1","name":"d2"},'
            b'"spec":{"provider":"openai","modelName":"gpt-4o"}}'),
        Api("duplicate keys, default (Warn): accepted, last one wins", "POST", c + DRY, 201, None,
            b'{"apiVersion":"langop.io/v1alpha1","kind":"LanguageModel","metadata":{"name":"d1","name":"d2"},'
            b'"spec":{"provider":"openai","modelName":"gpt-4o"}}',
            check=lambda r: None if r.json()["metadata"]["name"] == "d2" and "warning" in r.headers
            else f"name {r.json()['metadata']['name']}, warning {r.headers.get('warning')!r}"),
        Api("unknown field, fieldValidation=Strict", "POST", c + "?fieldValidation=Strict", 400, "BadRequest",
            model_json('"bogus":1')),
        Api("number 1e400 (out of float64 range)", "POST", c, 400, "BadRequest",
            model_json('"rateLimits":{"requestsPerMinute":1e400}')),
        Api("number -1e400", "POST", c, 400, "BadRequest", model_json('"rateLimits":{"requestsPerMinute":-1e400}')),
        Api("number NaN", "POST", c, 400, "BadRequest", model_json('"rateLimits":{"requestsPerMinute":NaN}')),
        Api("number Infinity", "POST", c, 400, "BadRequest", model_json('"rateLimits":{"requestsPerMinute":Infinity}')),
        Api("number with a leading zero", "POST", c, 400, "BadRequest",
            model_json('"rateLimits":{"requestsPerMinute":01}')),
        Api("number with a plus sign", "POST", c, 400, "BadRequest",
            model_json('"rateLimits":{"requestsPerMinute":+1}')),
        Api("number in hex", "POST", c, 400, "BadRequest", model_json('"rateLimits":{"requestsPerMinute":0x10}')),
        Api("integer beyond int64", "POST", c, 400, "BadRequest",
            model_json('"rateLimits":{"requestsPerMinute":99999999999999999999}'),
            differs="kube decodes it as the float64 1e20 and refuses it in validation (422 Invalid, must be of "
                    "type integer); here the decoder refuses it (400 'too big integer'): refused either way, "
                    "and a float in its place would need the decoder to turn big integers into reals"),
        Api("1.5 where an integer is expected", "POST", c, 422, "Invalid",
            model_json('"rateLimits":{"requestsPerMinute":1.5}')),
        Api("a string where an integer is expected", "POST", c, 422, "Invalid",
            model_json('"rateLimits":{"requestsPerMinute":"5"}')),
        Api("a boolean where an integer is expected", "POST", c, 422, "Invalid",
            model_json('"rateLimits":{"requestsPerMinute":true}')),
        Api("an object where an integer is expected", "POST", c, 422, "Invalid",
            model_json('"rateLimits":{"requestsPerMinute":{}}')),
        Api("-0 where a minimum of 1 holds", "POST", c, 422, "Invalid",
            model_json('"rateLimits":{"requestsPerMinute":-0}')),
        Api("int32 field above 2^31", "POST", c, 422, "Invalid",
            model_json('"rateLimits":{"requestsPerMinute":4294967296}')),
        Api("1e2 where an integer is expected (an integral float is an integer)", "POST", c + DRY, 201, None,
            model_json('"rateLimits":{"requestsPerMinute":1e2}')),
        Api("a string where an object is expected", "POST", c, 422, "Invalid", model_json('"rateLimits":"fast"')),
        Api("an array where a string is expected", "POST", c, 422, "Invalid", model_json('"timeout":["5m"]')),
        Api("spec a string", "POST", c, 422, "Invalid", dict(model("x1"), spec="gpt")),
        Api("an enum value off the list", "POST", c, 422, "Invalid",
            model("x1", spec={"provider": "no-such-provider", "modelName": "gpt-4o"})),
        Api("a pattern violated", "POST", c, 422, "Invalid",
            model("x1", spec={"provider": "openai", "modelName": "gpt-4o", "timeout": "forever"})),
        Api("invalid UTF-8 in a value", "POST", c, 400, "BadRequest", model_json(b'"timeout":"5m\xff"'),
            differs="Go's decoder replaces invalid UTF-8 by U+FFFD and kube stores that; here it is refused "
                    "(400), so no byte a client sent is silently changed"),
        Api("invalid UTF-8 in a key", "POST", c, 400, "BadRequest", model_json(b'"time\xffout":"5m"'),
            differs="kube: U+FFFD, then an unknown field (201 with a warning); refused here, as above"),
        Api("an overlong UTF-8 encoding of '/'", "POST", c, 400, "BadRequest",
            model_json(b'"timeout":"a\xc0\xafb"'),
            differs="kube: U+FFFD (see invalid UTF-8 in a value)"),
        Api("a UTF-16 surrogate encoded in UTF-8", "POST", c, 400, "BadRequest",
            model_json(b'"timeout":"a\xed\xa0\x80b"'),
            differs="kube: U+FFFD (see invalid UTF-8 in a value)"),
        Api("a lone surrogate escape \\ud800", "POST", c, 400, "BadRequest", model_json('"timeout":"\\ud800"'),
            differs="Go's decoder turns a lone surrogate escape into U+FFFD; refused here rather than changed"),
        Api("an escaped NUL \\u0000 in a value", "POST", c, 400, "BadRequest", model_json('"timeout":"5\\u0000m"'),
            differs="kube keeps the NUL (and would refuse it here by the pattern, 422); the decoder here refuses "
                    "every NUL, which C strings cannot carry"),
        Api("a UTF-8 BOM before the object", "POST", c, 400, "BadRequest",
            b"\xef\xbb\xbf" + json.dumps(model("x1")).encode()),
        Api("100 000 keys in params", "POST", c + DRY, 201, None,
            model_json('"params":{' + ",".join('"k%d":%d' % (i, i) for i in range(100_000)) + "}")),
    ]
    return rows


# ------------------------------------------------------------------ YAML bodies
# The same decode path with Content-Type application/yaml (sigs.k8s.io/yaml on
# go-yaml: excessive aliasing, depth and syntax errors are decode errors, 400).

def yaml_bodies():
    c = COLL
    laughs = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
        f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))
    return [
        Api("YAML billion laughs (9^9 aliases)", "POST", c, 400, "BadRequest", laughs, ct=YAML),
        Api("YAML billion laughs inside an object", "POST", c, 400, "BadRequest",
            model_yaml("  params:\n" + "".join("    " + l + "\n" for l in laughs.splitlines())), ct=YAML),
        Api("YAML alias to itself", "POST", c, 400, "BadRequest", b"a: &a [*a]\n", ct=YAML),
        Api("YAML undefined alias", "POST", c, 400, "BadRequest", model_yaml("  params: *nothing\n"), ct=YAML),
        Api("YAML 100 000 [", "POST", c, 400, "BadRequest", b"[" * 100_000, ct=YAML),
        Api("YAML 100 000-deep block sequence", "POST", c, 400, "BadRequest", b"- " * 100_000 + b"x\n", ct=YAML),
        Api("YAML 100 000-deep flow mapping", "POST", c, 400, "BadRequest", b"{a: " * 100_000 + b"1" + b"}" * 100_000,
            ct=YAML),
        Api("YAML duplicate keys, fieldValidation=Strict", "POST", c + "?fieldValidation=Strict", 400, "BadRequest",
            model_yaml("  modelName: again\n"), ct=YAML),
        Api("YAML duplicate keys, default (Warn): accepted, last one wins", "POST", c + DRY, 201, None,
            model_yaml("  modelName: again\n"), ct=YAML,
            check=lambda r: None if r.json()["spec"]["modelName"] == "again" and "warning" in r.headers
            else f"modelName {r.json()['spec']['modelName']}, warning {r.headers.get('warning')!r}"),
        Api("YAML duplicate keys deep in a list, Strict", "POST", c + "?fieldValidation=Strict", 400, "BadRequest",
            model_yaml("  fallbacks:\n  - a\n  params:\n    list:\n    - {k: 1, k: 2}\n"), ct=YAML),
        Api("YAML with a NUL byte", "POST", c, 400, "BadRequest", model_yaml("  timeout: 5\x00m\n"), ct=YAML),
        Api("YAML with invalid UTF-8", "POST", c, 400, "BadRequest",
            model_yaml("  timeout: 5m\n").replace(b"5m", b"5\xffm"),
            ct=YAML),
        Api("YAML indented with a tab", "POST", c, 400, "BadRequest",
            b"apiVersion: langop.io/v1alpha1\nkind: LanguageModel\nmetadata:\n\tname: x1\n", ct=YAML),
        Api("YAML unterminated flow sequence", "POST", c, 400, "BadRequest", model_yaml("  params: {a: [1, 2\n"),
            ct=YAML),
        Api("YAML unterminated quoted string", "POST", c, 400, "BadRequest", model_yaml('  timeout: "5m\n'), ct=YAML),
        Api("YAML scalar document", "POST", c, 400, "BadRequest", b"just a string\n", ct=YAML),
        Api("YAML sequence document", "POST", c, 400, "BadRequest", b"- a\n- b\n", ct=YAML),
        Api("YAML empty document", "POST", c, 400, "BadRequest", b"---\n", ct=YAML),
        Api("YAML null document", "POST", c, 400, "BadRequest", b"~\n", ct=YAML),
        Api("YAML .inf where an integer is expected", "POST", c, 400, "BadRequest",
            model_yaml("  rateLimits:\n    requestsPerMinute: .inf\n"), ct=YAML),
        Api("YAML .nan where an integer is expected", "POST", c, 400, "BadRequest",
            model_yaml("  rateLimits:\n    requestsPerMinute: .nan\n"), ct=YAML),
        Api("YAML a sequence as a mapping key", "POST", c, 400, "BadRequest",
            model_yaml("  params:\n    ? [a, b]\n    : c\n"),
            ct=YAML),
        Api("YAML 1.5 where an integer is expected", "POST", c, 422, "Invalid",
            model_yaml("  rateLimits:\n    requestsPerMinute: 1.5\n"), ct=YAML),
        Api("YAML wrong kind", "POST", c, 400, "BadRequest",
            model_yaml().replace(b"LanguageModel", b"LanguageTool"), ct=YAML),
        Api("YAML with a benign alias", "POST", c + DRY, 400, "BadRequest",
            model_yaml().replace(b"  name: x1\n",
                b"  name: x1\n  labels: &l {tier: gold}\n  annotations: *l\n"), ct=YAML,
            differs="kube expands aliases (and refuses excessive aliasing); the decoder here takes no anchors "
                    "or aliases at all, which closes alias bombs by construction"),
    ]


# ------------------------------------------------------------------ sizes
# limitedReadBody (handlers/rest.go): a body over MaxRequestBodyBytes (3 MiB) is
# 413 RequestEntityTooLarge ("limit is 3145728"), for every verb that reads one,
# whatever its type; a JSON patch of more than 10000 operations is 413 too.

def oversized():
    over = big_model(LIMIT + 1)
    ops = json.dumps([{"op": "test", "path": "/spec/provider", "value": "openai"}] * 10_001).encode()
    return [
        Api("create: JSON just over 3 MiB", "POST", COLL, 413, "RequestEntityTooLarge", over),
        Api("create: YAML over 3 MiB", "POST", COLL, 413, "RequestEntityTooLarge",
            model_yaml("  params:\n    pad: " + "y" * (LIMIT + 10) + "\n"), ct=YAML),
        Api("update: over 3 MiB", "PUT", ITEM, 413, "RequestEntityTooLarge", big_model(LIMIT + 1, M1)),
        Api("merge patch: over 3 MiB", "PATCH", ITEM, 413, "RequestEntityTooLarge",
            b'{"metadata":{"annotations":{"pad":"' + b"x" * LIMIT + b'"}}}', ct=MERGE),
        Api("JSON patch: over 3 MiB", "PATCH", ITEM, 413, "RequestEntityTooLarge",
            b'[{"op":"add","path":"/metadata/annotations","value":{"pad":"' + b"x" * LIMIT + b'"}}]', ct=JPATCH),
        Api("apply: over 3 MiB", "PATCH", ITEM + "?fieldManager=cat", 413, "RequestEntityTooLarge",
            model_yaml("  params:\n    pad: " + "y" * (LIMIT + 10) + "\n", name=M1), ct=APPLY),
        Api("strategic merge patch: over 3 MiB", "PATCH", ITEM, 413, "RequestEntityTooLarge",
            b'{"metadata":{"annotations":{"pad":"' + b"x" * LIMIT + b'"}}}',
            ct="application/strategic-merge-patch+json"),
        Api("status update: over 3 MiB", "PUT", STATUS, 413, "RequestEntityTooLarge", big_model(LIMIT + 1, M1)),
        Api("delete: DeleteOptions over 3 MiB", "DELETE", ITEM, 413, "RequestEntityTooLarge",
            b'{"kind":"DeleteOptions","apiVersion":"v1","dryRun":["All"],"pad":"' + b"x" * LIMIT + b'"}'),
        Api("create: 3 MiB of whitespace then an object", "POST", COLL, 413, "RequestEntityTooLarge",
            b" " * LIMIT + json.dumps(model("x1")).encode()),
        Api("JSON patch of 10 001 operations", "PATCH", ITEM, 413, "RequestEntityTooLarge", ops, ct=JPATCH),
        Api("annotations over 256 KiB (under the body limit)", "POST", COLL, 422, "Invalid", big_model(300 * 1024)),
    ]


# ------------------------------------------------------------------ content types
# create.go/update.go: NegotiateInputSerializer (negotiation/negotiate.go): no
# Content-Type is the first supported type (JSON); an unknown one is 415.
# patch.go: the patch type is the Content-Type up to ';', one of the served
# patch types or 415.

def content_types():
    body = json.dumps(model("ct1")).encode()
    upd = json.dumps(model(M1)).encode()
    return [
        Api("create: no Content-Type is JSON", "POST", COLL + DRY, 201, None, body, ct=None),
        Api("update: no Content-Type is JSON", "PUT", ITEM + DRY, 200, None, upd, ct=None),
        Api("create: text/plain", "POST", COLL, 415, "UnsupportedMediaType", body, ct="text/plain"),
        Api("create: application/xml", "POST", COLL, 415, "UnsupportedMediaType", body, ct="application/xml"),
        Api("create: form-urlencoded", "POST", COLL, 415, "UnsupportedMediaType", body,
            ct="application/x-www-form-urlencoded"),
        Api("create: protobuf (not served for these kinds)", "POST", COLL, 415, "UnsupportedMediaType", body,
            ct="application/vnd.kubernetes.protobuf"),
        Api("create: a patch type", "POST", COLL, 415, "UnsupportedMediaType", body, ct=MERGE),
        Api("create: garbage media type", "POST", COLL, 415, "UnsupportedMediaType", body, ct=";;;/"),
        Api("create: JSON with a charset parameter", "POST", COLL + DRY, 201, None, body,
            ct="application/json; charset=utf-8"),
        Api("update: text/html", "PUT", ITEM, 415, "UnsupportedMediaType", upd, ct="text/html"),
        Api("patch: no Content-Type", "PATCH", ITEM, 415, "UnsupportedMediaType", b"{}", ct=None),
        Api("patch: application/json", "PATCH", ITEM, 415, "UnsupportedMediaType", b"{}", ct=JSON),
        Api("patch: application/yaml", "PATCH", ITEM, 415, "UnsupportedMediaType", b"{}", ct=YAML),
        Api("patch: a made-up patch type", "PATCH", ITEM, 415, "UnsupportedMediaType", b"{}",
            ct="application/bogus-patch+json"),
        Api("patch: merge patch upper-cased", "PATCH", ITEM + DRY, 200, None, b"{}", ct="Application/Merge-Patch+JSON",
            differs="kube compares the patch type case-sensitively (415); media types are case-insensitive "
                    "(RFC 9110 8.3.1), and so they are here"),
        Api("patch: merge patch with a charset", "PATCH", ITEM + DRY, 200, None, b"{}", ct=MERGE + "; charset=utf-8"),
        Api("delete: DeleteOptions as text/plain", "DELETE", ITEM, 415, "UnsupportedMediaType",
            b'{"dryRun":["All"]}', ct="text/plain"),
    ]


# ------------------------------------------------------------------ Accept
# NegotiateOutputMediaType: nothing acceptable is 406 NotAcceptable, checked
# before the body is read, so a write with one changes nothing.

def accepts():
    return [
        Api("get: Accept text/html", "GET", ITEM, 406, "NotAcceptable", headers={"Accept": "text/html"}),
        Api("get: Accept protobuf only", "GET", ITEM, 406, "NotAcceptable",
            headers={"Accept": "application/vnd.kubernetes.protobuf"}),
        Api("get: Accept a Table of an unknown version", "GET", ITEM, 406, "NotAcceptable",
            headers={"Accept": "application/json;as=Table;v=v9;g=meta.k8s.io"}),
        Api("get: Accept a Table of another group", "GET", ITEM, 406, "NotAcceptable",
            headers={"Accept": "application/json;as=Table;v=v1;g=evil.io"}),
        Api("get: Accept json with q=0 (kube's negotiation does not weigh q)", "GET", ITEM, 200, None,
            headers={"Accept": "application/json;q=0"}),
        Api("get: Accept a Table falls back to JSON", "GET", ITEM, 200, None,
            headers={"Accept": "application/json;as=Bogus;v=v1;g=meta.k8s.io, application/json"}),
        Api("list: Accept a Table", "GET", COLL, 200, None, headers={"Accept": TABLE}, check=is_table),
        Api("list: Table with includeObject=Bogus", "GET", COLL + "?includeObject=Bogus", 400, "BadRequest",
            headers={"Accept": TABLE}),
        Api("get: Accept */*", "GET", ITEM, 200, None, headers={"Accept": "*/*"}),
        Api("get: Accept empty", "GET", ITEM, 200, None, headers={"Accept": ""}),
        Api("create: Accept text/html", "POST", COLL, 406, "NotAcceptable", model("acc1"),
            headers={"Accept": "text/html"}),
        Api("merge patch: Accept text/html", "PATCH", ITEM, 406, "NotAcceptable", b'{"spec":{"modelName":"no"}}',
            ct=MERGE, headers={"Accept": "text/html"}),
        Api("delete: Accept text/html", "DELETE", ITEM, 406, "NotAcceptable", headers={"Accept": "text/html"}),
        Api("watch: Accept YAML", "GET", COLL + "?watch=true&timeoutSeconds=1", 406, "NotAcceptable",
            headers={"Accept": YAML}),
    ]


# ------------------------------------------------------------------ paths
# customresource_handler.go: a group, version or resource nobody serves, a
# cluster-scoped kind under a namespace, a namespaced item without one fall to
# the delegate: 404 NotFound. An unknown subresource is 404; a verb a path
# does not take is 405 MethodNotAllowed (NewMethodNotSupported); a method
# other than the six is verb "" (requestinfo.go), 405 too.

def paths():
    long = "a" * 300
    rows = [
        Api("group upper-cased", "GET", "/apis/LANGOP.IO/v1alpha1/namespaces/hostile-cat/languagemodels", 404,
            "NotFound"),
        Api("group with a suffix", "GET", "/apis/langop.io.evil/v1alpha1/languagemodels", 404, "NotFound"),
        Api("group of 300 characters", "GET", f"/apis/{long}/v1alpha1/languagemodels", 404, "NotFound"),
        Api("group unicode", "GET", "/apis/lang%C3%B6p.io/v1alpha1/languagemodels", 404, "NotFound"),
        Api("group '..'", "GET", "/apis/../v1alpha1/languagemodels", 400, "BadRequest",
            differs="Go's ServeMux would redirect to the cleaned path; here a '.' or '..' segment is 400"),
        Api("group '%2e%2e'", "GET", "/apis/%2e%2e/langop.io/v1alpha1/languagemodels", 400, "BadRequest",
            differs="as for '..'"),
        Api("version v1", "GET", "/apis/langop.io/v1/languagemodels", 404, "NotFound"),
        Api("version upper-cased", "GET", "/apis/langop.io/V1ALPHA1/languagemodels", 404, "NotFound"),
        Api("version of 300 characters", "GET", f"/apis/langop.io/{long}/languagemodels", 404, "NotFound"),
        Api("resource unknown", "GET", f"{API}/namespaces/{NS}/widgets", 404, "NotFound"),
        Api("resource upper-cased", "GET", f"{API}/namespaces/{NS}/LanguageModels", 404, "NotFound"),
        Api("resource singular", "GET", f"{API}/namespaces/{NS}/languagemodel", 404, "NotFound"),
        Api("resource by its short name", "GET", f"{API}/namespaces/{NS}/lmodel", 404, "NotFound"),
        Api("resource with its group", "GET", f"{API}/namespaces/{NS}/languagemodels.langop.io", 404, "NotFound"),
        Api("resource of 300 characters", "GET", f"{API}/namespaces/{NS}/{long}", 404, "NotFound"),
        Api("resource unicode", "GET", f"{API}/namespaces/{NS}/languagem%C3%B6dels", 404, "NotFound"),
        Api("core group path", "GET", f"/api/v1/namespaces/{NS}/languagemodels", 404, "NotFound"),
        Api("namespace invalid: item is not found", "GET", f"{API}/namespaces/Bad_NS/languagemodels/{M1}", 404,
            "NotFound"),
        Api("namespace of 300 characters: item", "GET", f"{API}/namespaces/{long}/languagemodels/{M1}", 404,
            "NotFound"),
        Api("namespace invalid: list is empty", "GET", f"{API}/namespaces/Bad_NS/languagemodels", 200, None,
            check=empty_list),
        Api("namespace unicode: list is empty", "GET", f"{API}/namespaces/n%C3%A4/languagemodels", 200, None,
            check=empty_list),
        Api("namespace with an encoded slash", "GET", f"{API}/namespaces/{NS}%2Fx/languagemodels/{M1}", 404,
            "NotFound"),
        Api("namespace '..'", "GET", f"{API}/namespaces/../languagemodels", 400, "BadRequest",
            differs="as for '..' in the group"),
        Api("create in a namespace of 300 characters", "POST", f"{API}/namespaces/{long}/languagemodels", 403,
            "Forbidden", model("x1", ns=None),
            differs="kube refuses the namespace (404 NotFound from NamespaceLifecycle, or 422 for an invalid "
                    "name); here a namespace needs its LanguageCluster first, a 403 that says so"),
        Api("create in a namespace nobody made", "POST", f"{API}/namespaces/nowhere/languagemodels", 403, "Forbidden",
            model("x1", ns=None), differs="as above: the LanguageCluster rule"),
        Api("name of 300 characters", "GET", f"{COLL}/{long}", 404, "NotFound"),
        Api("name unicode", "GET", f"{COLL}/m%C3%BC", 404, "NotFound"),
        Api("name upper-cased", "GET", f"{COLL}/M1", 404, "NotFound"),
        Api("name with a space", "GET", f"{COLL}/m%201", 404, "NotFound"),
        Api("name '..'", "GET", f"{COLL}/..", 400, "BadRequest", differs="as for '..' in the group"),
        Api("name '%2e'", "GET", f"{COLL}/%2e", 400, "BadRequest", differs="as for '..' in the group"),
        Api("name with an encoded slash reaches the status subresource", "GET", f"{COLL}/{M1}%2Fstatus", 200, None),
        Api("name with an encoded NUL", "GET", f"{COLL}/m%001", 400, "BadRequest",
            differs="kube looks it up (404); here a NUL anywhere in a path is 400"),
        Api("name with bad percent-encoding", "GET", f"{COLL}/m%zz", 400, "BadRequest",
            differs="Go's server refuses the request line with a plain-text 400 before kube sees it; a 400 "
                    "Status here"),
        Api("empty segment", "GET", f"{API}/namespaces//languagemodels", 400, "BadRequest",
            differs="as for '..' in the group"),
        Api("subresource unknown", "GET", f"{ITEM}/scale", 404, "NotFound"),
        Api("subresource of another kind", "GET", f"{ITEM}/gatewayconfig", 404, "NotFound"),
        Api("subresource with more after it", "GET", f"{STATUS}/more", 404, "NotFound"),
        Api("subresource upper-cased", "GET", f"{ITEM}/Status", 404, "NotFound"),
        Api("subresource of 300 characters", "GET", f"{ITEM}/{long}", 404, "NotFound"),
        Api("namespaced item without a namespace", "GET", f"{API}/languagemodels/{M1}", 404, "NotFound"),
        Api("cluster-scoped kind under a namespace", "GET", f"{API}/namespaces/{NS}/languageclusters", 404, "NotFound"),
        Api("the namespace as a resource of the group", "GET", f"{API}/namespaces/{NS}", 404, "NotFound"),
        Api("namespaces of the group", "GET", f"{API}/namespaces", 404, "NotFound"),
        Api("delete of a namespace path", "DELETE", f"{API}/namespaces/{NS}", 404, "NotFound"),
        Api("derived subresource of a missing agent", "GET", f"{API}/namespaces/{NS}/languageagents/none/agentconfig",
            404, "NotFound"),
        Api("path of 20 segments", "GET", f"{ITEM}/" + "/".join(["x"] * 14), 404, "NotFound"),
        Api("path of 60 000 characters", "GET", f"{COLL}/" + "x" * 60_000, 404, "NotFound"),
    ]
    methods = [
        Api("PUT on a collection", "PUT", COLL, 405, "MethodNotAllowed", model("x1")),
        Api("PATCH on a collection", "PATCH", COLL, 405, "MethodNotAllowed", b"{}", ct=MERGE),
        Api("POST on an item", "POST", ITEM, 405, "MethodNotAllowed", model(M1),
            differs="kube's custom-resource handler takes it as a create of the body's object (here 409 "
                    "AlreadyExists); built-in kinds and this server have no POST on an item"),
        Api("DELETE on the status subresource", "DELETE", STATUS, 405, "MethodNotAllowed"),
        Api("POST on the status subresource", "POST", STATUS, 405, "MethodNotAllowed", model(M1)),
        Api("PUT on a derived subresource", "PUT", f"{AGENT}/agentconfig", 405, "MethodNotAllowed", b"{}"),
        Api("PATCH on a derived subresource", "PATCH", f"{AGENT}/agentconfig", 405, "MethodNotAllowed", b"{}",
            ct=MERGE),
        Api("method FOO", "FOO", ITEM, 405, "MethodNotAllowed"),
        Api("method get (lower-case)", "get", ITEM, 405, "MethodNotAllowed"),
        Api("method Delete (mixed case)", "Delete", ITEM, 405, "MethodNotAllowed"),
        Api("method OPTIONS", "OPTIONS", ITEM, 405, "MethodNotAllowed"),
        Api("method TRACE", "TRACE", ITEM, 405, "MethodNotAllowed"),
        Api("method PROPFIND on a collection", "PROPFIND", COLL, 405, "MethodNotAllowed"),
        Api("method of 300 characters", "X" * 300, COLL, 405, "MethodNotAllowed"),
        Api("method WATCH", "WATCH", COLL, 405, "MethodNotAllowed"),
    ]
    return rows + methods


# ------------------------------------------------------------------ query options
# handlers/get.go, create.go, patch.go, delete.go: a value that does not convert
# (ParameterCodec.DecodeParameters) is 400 BadRequest; an Options object that
# converts but does not validate (apimachinery meta/v1/validation and
# meta/internalversion/validation) is 422 Invalid of kind ListOptions,
# CreateOptions, UpdateOptions, PatchOptions or DeleteOptions. Storage: a bad
# continue token is 400 ("continue key is not valid"), a continue with a
# resourceVersion 400, one older than compaction 410 Expired.

def in_namespace(r):
    spread = {i["metadata"].get("namespace") for i in r.json().get("items", [])} - {NS}
    return None if not spread else f"items of other namespaces: {sorted(spread)}"


def continue_tokens(real):
    """Rows around real, a continue token the server gave for NS's first page."""
    c = COLL + "?limit=1&continue="
    doc = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
    forged = lambda **kw: continue_token(dict(doc, **kw))
    flipped = ("f" if real[0] != "f" else "e") + real[1:]
    return [
        Api("continue: the real token", "GET", c + real, 200, None, check=only(M2)),
        Api("continue: the real token truncated", "GET", c + real[:-4], 400, "BadRequest"),
        Api("continue: the real token cut in half", "GET", c + real[:len(real) // 2], 400, "BadRequest"),
        Api("continue: the real token with its first byte flipped", "GET", c + flipped, 400, "BadRequest"),
        Api("continue: the real token with garbage appended", "GET", c + real + "AAAA", 400, "BadRequest"),
        Api("continue: forged to start in another namespace reveals nothing of it", "GET",
            COLL + "?limit=5&continue=" + forged(start="aaa/x"), 200, None, check=in_namespace),
        Api("continue: forged with a start key of no name", "GET", c + forged(start=NS + "/"), 400, "BadRequest"),
        Api("continue: forged with an rv of 0", "GET", c + forged(rv=0), 400, "BadRequest"),
        Api("continue: forged with a future rv", "GET", c + forged(rv=999_999_999), 504, "Timeout",
            differs="kube's etcd read of a future revision fails with an error its list does not map (500); "
                    "here it is the answer to a too new resourceVersion, 504 Timeout"),
        Api("continue: forged with an rv beyond int64", "GET",
            c + continue_token(json.dumps(doc).replace(str(doc["rv"]), "99999999999999999999").encode()),
            400, "BadRequest"),
    ]


def query_options():
    c, i = COLL, ITEM
    w = c + "?watch=true&timeoutSeconds=1&"
    m = json.dumps(model("q1")).encode()
    upd = json.dumps(model(M1)).encode()
    rows = [
        Api("limit not a number", "GET", c + "?limit=abc", 400, "BadRequest"),
        Api("limit 1.5", "GET", c + "?limit=1.5", 400, "BadRequest"),
        Api("limit beyond int64", "GET", c + "?limit=99999999999999999999", 400, "BadRequest"),
        Api("limit in hex", "GET", c + "?limit=0x10", 400, "BadRequest"),
        Api("limit -1", "GET", c + "?limit=-1", 400, "BadRequest",
            differs="kube reads a negative limit as no limit (200); a negative limit is a client's bug, and "
                    "a 400 that names it loses nothing"),
        Api("limit with a space", "GET", c + "?limit=%201", 400, "BadRequest"),
        Api("continue not base64", "GET", c + "?continue=%25%25%25", 400, "BadRequest"),
        Api("continue base64 of junk", "GET", c + "?continue=" + continue_token(b"\x00\xffjunk"), 400, "BadRequest"),
        Api("continue a JSON array", "GET", c + "?continue=" + continue_token([1, 2]), 400, "BadRequest"),
        Api("continue of another token version", "GET",
            c + "?continue=" + continue_token({"v": "meta.k8s.io/v0", "rv": 1, "start": "a/b"}), 400, "BadRequest"),
        Api("continue with a negative rv", "GET",
            c + "?continue=" + continue_token({"v": "meta.k8s.io/v1", "rv": -5, "start": "a/b"}), 400, "BadRequest"),
        Api("continue with a string rv", "GET",
            c + "?continue=" + continue_token({"v": "meta.k8s.io/v1", "rv": "7", "start": "a/b"}), 400, "BadRequest"),
        Api("continue with no start key", "GET",
            c + "?continue=" + continue_token({"v": "meta.k8s.io/v1", "rv": 1}), 400, "BadRequest"),
        Api("continue with a start key of several '/'", "GET",
            c + "?continue=" + continue_token({"v": "meta.k8s.io/v1", "rv": 1, "start": "../../x/y"}),
            400, "BadRequest"),
        Api("continue with a NUL in its start key", "GET",
            c + "?continue=" + continue_token(b'{"v":"meta.k8s.io/v1","rv":1,"start":"a/b\\u0000c"}'),
            400, "BadRequest"),
        Api("continue together with resourceVersion", "GET",
            c + "?resourceVersion=1&continue=" + continue_token({"v": "meta.k8s.io/v1", "rv": 1, "start": "a/b"}),
            400, "BadRequest"),
        Api("continue together with resourceVersionMatch", "GET",
            c + "?resourceVersion=0&resourceVersionMatch=NotOlderThan&continue="
            + continue_token({"v": "meta.k8s.io/v1", "rv": 1, "start": "a/b"}), 422, "Invalid"),
        Api("resourceVersion not a number", "GET", c + "?resourceVersion=abc", 400, "BadRequest",
            differs="kube's storage returns a validation error the list handler does not map: 500; a bad "
                    "value from a client is a 400"),
        Api("resourceVersion negative", "GET", c + "?resourceVersion=-1", 400, "BadRequest",
            differs="as for resourceVersion=abc"),
        Api("get: resourceVersion not a number", "GET", i + "?resourceVersion=x1", 400, "BadRequest",
            differs="as for resourceVersion=abc (kube: 500)"),
        Api("resourceVersionMatch unknown", "GET", c + "?resourceVersion=1&resourceVersionMatch=Bogus", 422, "Invalid"),
        Api("resourceVersionMatch lower-case", "GET", c + "?resourceVersion=1&resourceVersionMatch=exact", 422,
            "Invalid"),
        Api("resourceVersionMatch without resourceVersion", "GET", c + "?resourceVersionMatch=NotOlderThan", 422,
            "Invalid"),
        Api("resourceVersionMatch Exact without resourceVersion", "GET", c + "?resourceVersionMatch=Exact", 422,
            "Invalid"),
        Api("a repeated limit counts by its first value (url.Values.Get)", "GET", c + "?limit=1&limit=3", 200, None,
            check=only(M1)),
        Api("resourceVersionMatch Exact with resourceVersion 0", "GET",
            c + "?resourceVersion=0&resourceVersionMatch=Exact", 422, "Invalid"),
        Api("resourceVersion far in the future, NotOlderThan", "GET",
            c + "?resourceVersion=999999999&resourceVersionMatch=NotOlderThan&timeoutSeconds=1", 504, "Timeout"),
        Api("watch: resourceVersionMatch without sendInitialEvents", "GET",
            w + "resourceVersion=1&resourceVersionMatch=NotOlderThan", 422, "Invalid"),
        Api("list: sendInitialEvents", "GET", c + "?sendInitialEvents=true", 422, "Invalid"),
        Api("list: sendInitialEvents not a boolean", "GET", c + "?sendInitialEvents=maybe", 400, "BadRequest"),
        Api("watch: sendInitialEvents without NotOlderThan", "GET", w + "sendInitialEvents=true", 422, "Invalid"),
        Api("timeoutSeconds not a number", "GET", c + "?timeoutSeconds=abc", 400, "BadRequest"),
        Api("timeoutSeconds beyond int64", "GET", c + "?timeoutSeconds=99999999999999999999", 400, "BadRequest"),
        Api("watch: timeoutSeconds not a number", "GET", c + "?watch=true&timeoutSeconds=soon", 400, "BadRequest"),
        Api("watch not a boolean", "GET", c + "?watch=maybe", 400, "BadRequest"),
        Api("watch not a boolean, on an item (a get takes no watch)", "GET", i + "?watch=maybe", 200, None),
        Api("allowWatchBookmarks not a boolean", "GET", c + "?allowWatchBookmarks=yes", 400, "BadRequest"),
        Api("watch: allowWatchBookmarks not a boolean", "GET", w + "allowWatchBookmarks=2", 400, "BadRequest"),
        Api("labelSelector unterminated set", "GET", c + "?labelSelector=tier%20in%20(gold", 400, "BadRequest"),
        Api("labelSelector empty set", "GET", c + "?labelSelector=tier%20in%20()", 400, "BadRequest"),
        Api("labelSelector empty notin set", "GET", c + "?labelSelector=a%20notin%20()", 400, "BadRequest"),
        Api("labelSelector ===", "GET", c + "?labelSelector=a%3D%3D%3Db", 400, "BadRequest"),
        Api("labelSelector invalid key", "GET", c + "?labelSelector=-a%3Db", 400, "BadRequest"),
        Api("labelSelector key too long", "GET", c + "?labelSelector=" + "k" * 64 + "%3Dv", 400, "BadRequest"),
        Api("labelSelector value too long", "GET", c + "?labelSelector=k%3D" + "v" * 64, 400, "BadRequest"),
        Api("labelSelector unicode", "GET", c + "?labelSelector=k%3D%C3%A9", 400, "BadRequest"),
        Api("watch: labelSelector bad", "GET", w + "labelSelector=a%20in%20(", 400, "BadRequest"),
        Api("fieldSelector on an unsupported field", "GET", c + "?fieldSelector=spec.provider%3Dopenai", 400,
            "BadRequest"),
        Api("fieldSelector without an operator", "GET", c + "?fieldSelector=metadata.name", 400, "BadRequest"),
        Api("fieldSelector with a set", "GET", c + "?fieldSelector=metadata.name%20in%20(a)", 400, "BadRequest"),
        Api("fieldSelector metadata.name selects", "GET", c + f"?fieldSelector=metadata.name%3D{M1}", 200, None,
            check=only(M1)),
        Api("deletecollection: labelSelector bad", "DELETE", c + "?labelSelector=a%20in%20(", 400, "BadRequest"),
        Api("deletecollection: labelSelector empty set", "DELETE", c + "?labelSelector=a%20in%20()", 400, "BadRequest"),
        Api("deletecollection: dryRun=Bogus", "DELETE", c + "?dryRun=Bogus", 422, "Invalid"),
        Api("deletecollection: limit not a number", "DELETE", c + "?limit=ten", 400, "BadRequest"),
        Api("deletecollection: sendInitialEvents", "DELETE", c + "?sendInitialEvents=true", 422, "Invalid"),
        Api("deletecollection: dry run", "DELETE", c + DRY, 200, None),
        # CreateOptions, UpdateOptions, PatchOptions
        Api("create: dryRun=Bogus", "POST", c + "?dryRun=Bogus", 422, "Invalid", m),
        Api("create: dryRun=all (case)", "POST", c + "?dryRun=all", 422, "Invalid", m),
        Api("create: dryRun All then Bogus", "POST", c + "?dryRun=All&dryRun=Bogus", 422, "Invalid", m),
        Api("create: fieldValidation=Bogus", "POST", c + "?fieldValidation=Bogus", 422, "Invalid", m),
        Api("create: fieldValidation=strict (case)", "POST", c + "?fieldValidation=strict", 422, "Invalid", m),
        Api("create: fieldManager of 129 bytes", "POST", c + "?fieldManager=" + "f" * 129, 422, "Invalid", m),
        Api("create: fieldManager with a control character", "POST", c + "?fieldManager=a%01b", 422, "Invalid", m),
        Api("create: fieldManager with a line break", "POST", c + "?fieldManager=a%0D%0AX-Injected:%20yes", 422,
            "Invalid", m),
        Api("create: fieldManager with invalid UTF-8", "POST", c + "?fieldManager=a%FFb", 422, "Invalid", m,
            differs="kube reads the bad byte as U+FFFD, which is printable (201); refused here, as in bodies"),
        Api("update: dryRun=Bogus", "PUT", i + "?dryRun=Bogus", 422, "Invalid", upd),
        Api("update: fieldManager of 129 bytes", "PUT", i + "?fieldManager=" + "f" * 129, 422, "Invalid", upd),
        Api("update: fieldValidation=Bogus", "PUT", i + "?fieldValidation=Bogus", 422, "Invalid", upd),
        Api("patch: dryRun=Bogus", "PATCH", i + "?dryRun=Bogus", 422, "Invalid", b"{}", ct=MERGE),
        Api("patch: force on a merge patch", "PATCH", i + "?force=true", 422, "Invalid", b"{}", ct=MERGE),
        Api("patch: force not a boolean", "PATCH", i + "?force=perhaps&fieldManager=cat", 400, "BadRequest",
            model_yaml(name=M1), ct=APPLY),
        Api("patch: fieldValidation=Bogus", "PATCH", i + "?fieldValidation=Bogus", 422, "Invalid", b"{}", ct=MERGE),
        # DeleteOptions from the query
        Api("delete: dryRun=Bogus", "DELETE", i + "?dryRun=Bogus", 422, "Invalid"),
        Api("delete: dryRun All then Bogus", "DELETE", i + "?dryRun=All&dryRun=Bogus", 422, "Invalid"),
        Api("delete: propagationPolicy=Bogus", "DELETE", i + "?propagationPolicy=Bogus", 422, "Invalid"),
        Api("delete: propagationPolicy lower-case", "DELETE", i + "?propagationPolicy=orphan", 422, "Invalid"),
        Api("delete: propagationPolicy with orphanDependents", "DELETE",
            i + "?propagationPolicy=Orphan&orphanDependents=true", 422, "Invalid"),
        Api("delete: gracePeriodSeconds not a number", "DELETE", i + "?gracePeriodSeconds=abc", 400, "BadRequest"),
        Api("delete: gracePeriodSeconds beyond int64", "DELETE", i + "?gracePeriodSeconds=99999999999999999999", 400,
            "BadRequest"),
        Api("delete: gracePeriodSeconds 1.5", "DELETE", i + "?gracePeriodSeconds=1.5", 400, "BadRequest"),
        Api("delete: orphanDependents not a boolean", "DELETE", i + "?orphanDependents=maybe", 400, "BadRequest"),
        Api("delete: gracePeriodSeconds -1, dry run", "DELETE", i + "?gracePeriodSeconds=-1&dryRun=All", 200, None),
        Api("too many query parameters", "GET", c + "?" + "&".join(f"p{n}=v" for n in range(3000)), 400, "BadRequest",
            differs="kube takes any number; this server reads at most REQINFO_MAX_QUERY of them and says so"),
        Api("query with bad percent-encoding", "GET", c + "?limit=%zz", 400, "BadRequest",
            differs="Go's url.Query() drops a pair it cannot decode, so kube answers as if no limit were sent "
                    "(200); refused here"),
        Api("query value with a NUL", "GET", c + "?labelSelector=a%00b", 400, "BadRequest"),
        Api("query value of 50 000 characters", "GET", c + "?labelSelector=" + "a" * 50_000, 400, "BadRequest"),
    ]
    return rows


# ------------------------------------------------------------------ patches
# patch.go with evanphx/json-patch v4: a body that is not a list of operations
# is 400; an operation that fails on the document is 422 Invalid; a merge patch
# that is not an object is 400 ("error decoding patch"). Apply: fieldManager is
# required (422, PatchOptions), the body must be an object of the URL's
# group/version (400), name and namespace those of the URL (400, rest.go
# checkName), managedFields unset (400).

def patches():
    i = ITEM
    jp = lambda *ops: json.dumps(list(ops)).encode()
    rows = [
        Api("JSON patch: an object, not a list", "PATCH", i, 400, "BadRequest", b'{"op":"add"}', ct=JPATCH),
        Api("JSON patch: not JSON", "PATCH", i, 400, "BadRequest", b"[{", ct=JPATCH),
        Api("JSON patch: a list of numbers", "PATCH", i, 400, "BadRequest", b"[1, 2]", ct=JPATCH),
        Api("JSON patch: op a number", "PATCH", i, 400, "BadRequest", jp({"op": 7, "path": "/spec"}), ct=JPATCH),
        Api("JSON patch: path a number", "PATCH", i, 400, "BadRequest", jp({"op": "remove", "path": 7}), ct=JPATCH),
        Api("JSON patch: unknown op", "PATCH", i, 400, "BadRequest",
            jp({"op": "bogus", "path": "/spec/modelName", "value": "x"}), ct=JPATCH,
            differs="kube: 422 (evanphx 'Unexpected kind'); a malformed patch document is 400 here (RFC 5789), "
                    "see registry/patch.c"),
        Api("JSON patch: missing path", "PATCH", i, 400, "BadRequest", jp({"op": "replace", "value": "x"}), ct=JPATCH,
            differs="kube: 422; see unknown op"),
        Api("JSON patch: path not a pointer", "PATCH", i, 400, "BadRequest",
            jp({"op": "replace", "path": "spec/modelName", "value": "x"}), ct=JPATCH,
            differs="kube: 422; see unknown op"),
        Api("JSON patch: bad ~ escape", "PATCH", i, 400, "BadRequest",
            jp({"op": "add", "path": "/metadata/labels/a~2b", "value": "x"}), ct=JPATCH,
            differs="kube: 422; see unknown op"),
        Api("JSON patch: add without value", "PATCH", i, 400, "BadRequest", jp({"op": "add", "path": "/spec/x"}),
            ct=JPATCH, differs="kube: 422; see unknown op"),
        Api("JSON patch: move into its own child", "PATCH", i, 400, "BadRequest",
            jp({"op": "move", "from": "/spec", "path": "/spec/x"}), ct=JPATCH, differs="kube: 422; see unknown op"),
        Api("JSON patch: test fails", "PATCH", i, 422, "Invalid",
            jp({"op": "test", "path": "/spec/modelName", "value": "nope"},
                {"op": "remove", "path": "/spec"}), ct=JPATCH),
        Api("JSON patch: move from a missing path", "PATCH", i, 422, "Invalid",
            jp({"op": "move", "from": "/spec/nope", "path": "/spec/x"}), ct=JPATCH),
        Api("JSON patch: remove a missing path", "PATCH", i, 422, "Invalid", jp({"op": "remove", "path": "/spec/nope"}),
            ct=JPATCH),
        Api("JSON patch: replace a missing path", "PATCH", i, 422, "Invalid",
            jp({"op": "replace", "path": "/spec/nope/deeper", "value": 1}), ct=JPATCH),
        Api("JSON patch: array index out of range", "PATCH", i, 422, "Invalid",
            jp({"op": "add", "path": "/spec/fallbacks", "value": []},
               {"op": "add", "path": "/spec/fallbacks/5", "value": "x"}), ct=JPATCH),
        Api("JSON patch: array index beyond int64", "PATCH", i, 422, "Invalid",
            jp({"op": "add", "path": "/spec/fallbacks", "value": []},
               {"op": "add", "path": "/spec/fallbacks/99999999999999999999", "value": "x"}), ct=JPATCH),
        Api("JSON patch: copy from a missing path", "PATCH", i, 422, "Invalid",
            jp({"op": "copy", "from": "/nope", "path": "/spec/x"}), ct=JPATCH),
        Api("JSON patch: changes the name", "PATCH", i, 400, "BadRequest",
            jp({"op": "replace", "path": "/metadata/name", "value": "other"}), ct=JPATCH),
        Api("JSON patch: changes the namespace", "PATCH", i, 400, "BadRequest",
            jp({"op": "replace", "path": "/metadata/namespace", "value": "other"}), ct=JPATCH),
        Api("JSON patch: removes the whole document", "PATCH", i, 422, "Invalid", jp({"op": "remove", "path": ""}),
            ct=JPATCH),
        Api("JSON patch: makes the spec invalid", "PATCH", i, 422, "Invalid",
            jp({"op": "replace", "path": "/spec/provider", "value": "nope"}), ct=JPATCH),
        Api("JSON patch: stale resourceVersion", "PATCH", i, 409, "Conflict",
            jp({"op": "replace", "path": "/metadata/resourceVersion", "value": "1"},
               {"op": "replace", "path": "/spec/modelName", "value": "x"}), ct=JPATCH),
        Api("JSON patch: of a missing object", "PATCH", f"{COLL}/missing", 404, "NotFound",
            jp({"op": "test", "path": "/spec", "value": {}}), ct=JPATCH),
        Api("JSON patch: empty list, dry run", "PATCH", i + DRY, 200, None, b"[]", ct=JPATCH),
        Api("merge patch: a list", "PATCH", i, 400, "BadRequest", b"[]", ct=MERGE),
        Api("merge patch: null", "PATCH", i, 400, "BadRequest", b"null", ct=MERGE),
        Api("merge patch: a string", "PATCH", i, 400, "BadRequest", b'"x"', ct=MERGE),
        Api("merge patch: not JSON", "PATCH", i, 400, "BadRequest", b"{spec:", ct=MERGE),
        Api("merge patch: empty body", "PATCH", i, 400, "BadRequest", b"", ct=MERGE),
        Api("merge patch: invalid UTF-8", "PATCH", i, 400, "BadRequest", b'{"spec":{"modelName":"\xff"}}', ct=MERGE),
        Api("merge patch: 100 000-deep", "PATCH", i, 400, "BadRequest", b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
            ct=MERGE),
        Api("merge patch: spec null makes it invalid", "PATCH", i, 422, "Invalid", b'{"spec":null}', ct=MERGE),
        Api("merge patch: kind changed", "PATCH", i, 400, "BadRequest", b'{"kind":"LanguageAgent"}', ct=MERGE),
        Api("merge patch: apiVersion changed", "PATCH", i, 400, "BadRequest", b'{"apiVersion":"langop.io/v9"}',
            ct=MERGE),
        Api("merge patch: name changed", "PATCH", i, 400, "BadRequest", b'{"metadata":{"name":"other"}}', ct=MERGE),
        Api("merge patch: uid changed", "PATCH", i, 409, "Conflict", b'{"metadata":{"uid":"0000-forged"}}', ct=MERGE),
        Api("merge patch: labels not strings", "PATCH", i, 422, "Invalid", b'{"metadata":{"labels":{"a":1}}}',
            ct=MERGE),
        Api("merge patch: label key invalid", "PATCH", i, 422, "Invalid", b'{"metadata":{"labels":{"a b":"c"}}}',
            ct=MERGE),
        Api("merge patch: duplicate keys, Strict", "PATCH", i + "?fieldValidation=Strict", 422, "Invalid",
            b'{"spec":{"modelName":"a","modelName":"b"}}', ct=MERGE),
        Api("merge patch: duplicate keys, default (Warn): applied with a warning", "PATCH", i + DRY, 200, None,
            b'{"spec":{"modelName":"a","modelName":"gpt-4o"}}', ct=MERGE,
            check=lambda r: None if "warning" in r.headers and r.json()["spec"]["modelName"] == "gpt-4o"
            else f"warning {r.headers.get('warning')!r}, modelName {r.json()['spec'].get('modelName')!r}"),
        Api("merge patch: unknown field, Strict", "PATCH", i + "?fieldValidation=Strict", 422, "Invalid",
            b'{"spec":{"bogus":1}}', ct=MERGE),
        Api("JSON patch: duplicate keys in an operation, Strict", "PATCH", i + "?fieldValidation=Strict", 422,
            "Invalid",
            b'[{"op":"test","path":"/spec/provider","path":"/spec/provider","value":"openai"}]', ct=JPATCH),
        Api("strategic merge patch: $patch directive", "PATCH", i, 400, "BadRequest", b'{"spec":{"$patch":"replace"}}',
            ct="application/strategic-merge-patch+json",
            differs="kube serves no strategic merge patch for custom resources (415); here it is a merge "
                    "patch without directives, and a directive is 400"),
        # server-side apply
        Api("apply: no fieldManager", "PATCH", i, 422, "Invalid", model_yaml(name=M1), ct=APPLY),
        Api("apply: empty fieldManager", "PATCH", i + "?fieldManager=", 422, "Invalid", model_yaml(name=M1), ct=APPLY),
        Api("apply: fieldManager of 129 bytes", "PATCH", i + "?fieldManager=" + "f" * 129, 422, "Invalid",
            model_yaml(name=M1), ct=APPLY),
        Api("apply: a YAML list", "PATCH", i + "?fieldManager=cat", 400, "BadRequest", b"- a\n- b\n", ct=APPLY),
        Api("apply: a YAML scalar", "PATCH", i + "?fieldManager=cat", 400, "BadRequest", b"hello\n", ct=APPLY),
        Api("apply: empty", "PATCH", i + "?fieldManager=cat", 400, "BadRequest", b"", ct=APPLY),
        Api("apply: not YAML", "PATCH", i + "?fieldManager=cat", 400, "BadRequest", b"a: [b\n", ct=APPLY),
        Api("apply: alias bomb", "PATCH", i + "?fieldManager=cat", 400, "BadRequest",
            model_yaml("  params:\n    a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
                f"    {n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")), name=M1),
            ct=APPLY),
        Api("apply: wrong apiVersion", "PATCH", i + "?fieldManager=cat", 400, "BadRequest",
            model_yaml(name=M1).replace(b"langop.io/v1alpha1", b"langop.io/v1"), ct=APPLY),
        Api("apply: no apiVersion", "PATCH", i + "?fieldManager=cat", 400, "BadRequest",
            b"kind: LanguageModel\nmetadata:\n  name: m1\n", ct=APPLY),
        Api("apply: wrong kind", "PATCH", i + "?fieldManager=cat", 400, "BadRequest",
            model_yaml(name=M1).replace(b"LanguageModel", b"LanguageAgent"), ct=APPLY,
            differs="kube's field manager fails to type the patch as another kind and answers 500; a 400 names it"),
        Api("apply: wrong name", "PATCH", i + "?fieldManager=cat", 400, "BadRequest", model_yaml(name="m2"), ct=APPLY),
        Api("apply: wrong namespace", "PATCH", i + "?fieldManager=cat", 400, "BadRequest",
            model_yaml(name=M1).replace(b"  name: m1\n", b"  name: m1\n  namespace: elsewhere\n"), ct=APPLY),
        Api("apply: managedFields set", "PATCH", i + "?fieldManager=cat", 400, "BadRequest",
            model_yaml(name=M1).replace(b"  name: m1\n", b"  name: m1\n  managedFields:\n  - manager: x\n"
                                        b"    operation: Apply\n"), ct=APPLY),
        Api("apply: makes the spec invalid", "PATCH", i + "?fieldManager=cat&force=true", 422, "Invalid",
            model_yaml(name=M1).replace(b"provider: openai", b"provider: nope"), ct=APPLY),
        Api("apply: JSON body with an unknown field, Strict", "PATCH", i + "?fieldManager=cat&fieldValidation=Strict",
            400, "BadRequest", json.dumps(dict(model(M1), bogus=1)).encode(), ct=APPLY,
            differs="kube's field manager refuses to type it ('field not declared in schema') with an error its "
                    "handler does not map to a Status code; here it is the strict decoding error of a create (400)"),
        Api("apply: duplicate keys, Strict", "PATCH", i + "?fieldManager=cat&fieldValidation=Strict", 400, "BadRequest",
            model_yaml("  modelName: again\n", name=M1), ct=APPLY),
        Api("apply: to a missing object in a namespace nobody made", "PATCH",
            f"{API}/namespaces/nowhere/languagemodels/x1?fieldManager=cat", 403, "Forbidden",
            model_yaml(name="x1").replace(b"  name: x1\n", b"  name: x1\n  namespace: nowhere\n"), ct=APPLY,
            differs="the LanguageCluster rule (kube: 404 NotFound for the namespace)"),
    ]
    return rows


# ------------------------------------------------------------------ metadata
# rest.go checkName and registry/rest/meta.go: a name or namespace other than
# the URL's is 400; create wipes uid and creationTimestamp (create.go,
# WipeObjectMetaSystemFields); ObjectMeta validation is 422 Invalid; an update
# with another uid fails its UID precondition: 409 Conflict; a stale
# resourceVersion 409.

def metadata():
    c, i = COLL, ITEM
    with_meta = lambda name=M1, **meta: model(name, **meta)
    rows = [
        Api("update: name other than the URL's", "PUT", i, 400, "BadRequest", with_meta("m2")),
        Api("update: namespace other than the URL's", "PUT", i, 400, "BadRequest", model(M1, ns="elsewhere")),
        Api("create: namespace other than the URL's", "POST", c, 400, "BadRequest", model("x1", ns="elsewhere")),
        Api("update: uid other than the object's", "PUT", i, 409, "Conflict", with_meta(uid="0000-forged")),
        Api("update: stale resourceVersion", "PUT", i, 409, "Conflict", with_meta(resourceVersion="1")),
        Api("update: resourceVersion not a number", "PUT", i, 409, "Conflict", with_meta(resourceVersion="abc"),
            differs="kube's versioner fails to parse it (strconv) and the update answers that plain error: 500; "
                    "here it is a version the object does not have: 409, as for a stale one"),
        Api("update: of a missing object", "PUT", f"{c}/missing", 404, "NotFound", model("missing")),
        Api("create: resourceVersion set", "POST", c, 400, "BadRequest", model("x1", resourceVersion="5"),
            differs="kube's etcd3 store returns 'resourceVersion should not be set on objects to be created' "
                    "as a plain error, so 500; the same words as a 400 here"),
        Api("create: uid set is replaced", "POST", c + DRY, 201, None, model("x1", uid="0000-forged"),
            check=uid_replaced),
        Api("create: name missing", "POST", c, 422, "Invalid", {"apiVersion": API_VERSION, "kind": "LanguageModel",
                                                               "metadata": {}, "spec": model()["spec"]}),
        Api("create: metadata missing", "POST", c, 422, "Invalid",
            {"apiVersion": API_VERSION, "kind": "LanguageModel", "spec": model()["spec"]}),
        Api("create: metadata a string", "POST", c, 400, "BadRequest",
            {"apiVersion": API_VERSION, "kind": "LanguageModel", "metadata": "x1", "spec": model()["spec"]}),
        Api("create: name upper-case", "POST", c, 422, "Invalid", model("Bad_Name")),
        Api("create: name of 254 characters", "POST", c, 422, "Invalid", model("a" * 254)),
        Api("create: name '..'", "POST", c, 422, "Invalid", model("..")),
        Api("create: name with a slash", "POST", c, 422, "Invalid", model("a/b")),
        Api("create: name with a percent", "POST", c, 422, "Invalid", model("a%2Fb")),
        Api("create: name unicode", "POST", c, 422, "Invalid", model("m\u00fc")),
        Api("create: name a number", "POST", c, 400, "BadRequest", model(7)),
        Api("create: generation a string", "POST", c, 400, "BadRequest", model("x1", generation="1")),
        Api("create: finalizers a string", "POST", c, 400, "BadRequest", model("x1", finalizers="a.io/b")),
        Api("update: labels a list", "PUT", i, 400, "BadRequest", with_meta(labels=["a"])),
        Api("create: generateName invalid", "POST", c, 422, "Invalid",
            {"apiVersion": API_VERSION, "kind": "LanguageModel", "metadata": {"generateName": "Bad_"},
             "spec": model()["spec"]}),
        Api("create: generateName of 300 characters", "POST", c, 422, "Invalid",
            {"apiVersion": API_VERSION, "kind": "LanguageModel", "metadata": {"generateName": "g" * 300},
             "spec": model()["spec"]}),
        Api("create: label key invalid", "POST", c, 422, "Invalid", model("x1", labels={"a b": "c"})),
        Api("create: label value of 64 characters", "POST", c, 422, "Invalid", model("x1", labels={"a": "v" * 64})),
        Api("create: label value not a string", "POST", c, 400, "BadRequest", model("x1", labels={"a": 1})),
        Api("create: label key with two slashes", "POST", c, 422, "Invalid", model("x1", labels={"a/b/c": "d"})),
        Api("create: annotation key invalid", "POST", c, 422, "Invalid", model("x1", annotations={"-bad": "v"})),
        Api("create: annotations not an object", "POST", c, 400, "BadRequest", model("x1", annotations=["a"])),
        Api("create: finalizer invalid", "POST", c, 422, "Invalid", model("x1", finalizers=["not a finalizer"])),
        Api("create: ownerReference without uid", "POST", c, 422, "Invalid",
            model("x1", ownerReferences=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "cm"}])),
        Api("create: deletionGracePeriodSeconds set is wiped", "POST", c + DRY, 201, None,
            model("x1", deletionGracePeriodSeconds=5),
            check=lambda r: None if "deletionGracePeriodSeconds" not in r.json()["metadata"] else "kept"),
        Api("create: creationTimestamp garbage is wiped", "POST", c + DRY, 201, None,
            model("x1", creationTimestamp="not a date"),
            check=lambda r: None if r.json()["metadata"].get("creationTimestamp") != "not a date" else "kept"),
        Api("create: already exists", "POST", c, 409, "AlreadyExists", model(M1)),
        Api("status update: name other than the URL's", "PUT", STATUS, 400, "BadRequest", with_meta("m2")),
        Api("status update: stale resourceVersion", "PUT", STATUS, 409, "Conflict", with_meta(resourceVersion="1")),
        Api("delete: DeleteOptions not JSON", "DELETE", i, 400, "BadRequest", b'{"dryRun":'),
        Api("delete: DeleteOptions a list", "DELETE", i, 400, "BadRequest", b"[]"),
        Api("delete: DeleteOptions gracePeriodSeconds a string", "DELETE", i, 400, "BadRequest",
            {"gracePeriodSeconds": "abc"}),
        Api("delete: DeleteOptions gracePeriodSeconds 1.5", "DELETE", i, 400, "BadRequest",
            {"gracePeriodSeconds": 1.5}),
        Api("delete: DeleteOptions propagationPolicy a number", "DELETE", i, 400, "BadRequest",
            {"propagationPolicy": 5}),
        Api("delete: DeleteOptions propagationPolicy Bogus", "DELETE", i, 422, "Invalid",
            {"propagationPolicy": "Bogus"}),
        Api("delete: DeleteOptions dryRun Bogus", "DELETE", i, 422, "Invalid", {"dryRun": ["All", "Bogus"]}),
        Api("delete: DeleteOptions propagationPolicy with orphanDependents", "DELETE", i, 422, "Invalid",
            {"propagationPolicy": "Orphan", "orphanDependents": False}),
        Api("delete: DeleteOptions dryRun a string", "DELETE", i, 400, "BadRequest", {"dryRun": "All"}),
        Api("delete: DeleteOptions dryRun a list of numbers", "DELETE", i, 400, "BadRequest", {"dryRun": [1]}),
        Api("delete: DeleteOptions truncated", "DELETE", i, 400, "BadRequest", b'{"gracePeriodSeconds": 1'),
        Api("delete: DeleteOptions orphanDependents not a boolean", "DELETE", i, 400, "BadRequest",
            {"orphanDependents": "maybe"}),
        Api("delete: DeleteOptions of another kind", "DELETE", i, 400, "BadRequest",
            {"kind": "Pod", "apiVersion": "v1", "dryRun": ["All"]}),
        Api("delete: precondition uid fails", "DELETE", i, 409, "Conflict", {"preconditions": {"uid": "0000-forged"}}),
        Api("delete: precondition resourceVersion fails", "DELETE", i, 409, "Conflict",
            {"preconditions": {"resourceVersion": "1"}}),
        Api("delete: DeleteOptions with invalid UTF-8", "DELETE", i, 400, "BadRequest",
            b'{"propagationPolicy":"\xff"}'),
        Api("delete: of a missing object", "DELETE", f"{c}/missing", 404, "NotFound"),
        Api("delete: DeleteOptions dry run", "DELETE", i, 200, None, {"dryRun": ["All"]}),
    ]
    return rows


# ------------------------------------------------------------------ raw HTTP/1.1
# What Go's net/http (kube's server) answers: a request line or header it
# cannot parse is 400 and the connection closed; a truncated body is waited
# for and never executed. Here h2o parses, and the same holds.

def h1(token, req_line, *headers, body=b"", auth=True):
    hs = [b"Host: 127.0.0.1"] + ([b"Authorization: Bearer " + token.encode()] if auth else []) + [
        h.encode() if isinstance(h, str) else h for h in headers]
    line = req_line.encode() if isinstance(req_line, str) else req_line
    return line + b"\r\n" + b"".join(h + b"\r\n" for h in hs) + b"\r\n" + body


def raw_http1(token):
    h1t = lambda *a, **kw: h1(token, *a, **kw)
    get = h1t(f"GET {ITEM} HTTP/1.1")
    post = lambda *hs, body=b"": h1t(f"POST {COLL} HTTP/1.1", "Content-Type: application/json", *hs, body=body)
    obj = json.dumps(model("raw1")).encode()
    return [
        Raw1("garbage request line", b"HELLO WORLD\r\n\r\n", [400], closed=True),
        Raw1("binary garbage", b"\x16\x03\x01\x00\xff" * 20 + b"\r\n\r\n", [400], closed=True),
        Raw1("request line without a version", b"GET /readyz\r\n\r\n", [400], closed=True),
        Raw1("HTTP/9.9", b"GET /readyz HTTP/9.9\r\nHost: x\r\n\r\n", [400], closed=True,
             differs="Go answers 505 HTTP Version Not Supported; h2o 400: refused and closed either way"),
        Raw1("two spaces in the request line", b"GET  /readyz HTTP/1.1\r\nHost: x\r\n\r\n", [400], closed=True),
        Raw1("a space inside the target", b"GET /re adyz HTTP/1.1\r\nHost: x\r\n\r\n", [400], closed=True),
        Raw1("a NUL inside the target", b"GET /rea\x00dyz HTTP/1.1\r\nHost: x\r\n\r\n", [400], closed=True),
        Raw1("a control byte in the method", b"G\x01T /readyz HTTP/1.1\r\nHost: x\r\n\r\n", [400], closed=True),
        Raw1("a header line without a colon", h1t(f"GET {ITEM} HTTP/1.1", "NoColonHere"), [400], closed=True),
        Raw1("a space in a header name", h1t(f"GET {ITEM} HTTP/1.1", "X Bad: y"), [400], closed=True),
        Raw1("a non-ASCII header name", h1t(f"GET {ITEM} HTTP/1.1", b"X-\xff: y"), [400], closed=True),
        Raw1("a control byte in a header value", h1t(f"GET {ITEM} HTTP/1.1", b"X-Bad: a\x01b"), [400], closed=True),
        Raw1("a NUL in a header value", h1t(f"GET {ITEM} HTTP/1.1", b"X-Bad: a\x00b"), [400], closed=True),
        Raw1("a DEL in a header value", h1t(f"GET {ITEM} HTTP/1.1", b"User-Agent: a\x7fb"), [400], closed=True),
        Raw1("a header value of 1 MiB", h1t(f"GET {ITEM} HTTP/1.1", b"X-Big: " + b"a" * MiB), [400], closed=True,
             differs="Go answers 431 Request Header Fields Too Large above 1 MiB of headers; h2o 400"),
        Raw1("200 headers", h1t(f"GET {ITEM} HTTP/1.1", *[f"X-H{n}: v" for n in range(200)]), [400], closed=True,
             differs="Go takes them (its limit is 1 MiB in all); h2o takes at most 100 headers"),
        Raw1("a token of 64 KiB", h1t(f"GET {ITEM} HTTP/1.1", "Authorization: Bearer " + "t" * 65536, auth=False),
             [401], closed=False),
        Raw1("no credentials", h1t(f"GET {ITEM} HTTP/1.1", auth=False), [401], closed=False),
        Raw1("a Basic credential", h1t(f"GET {ITEM} HTTP/1.1", "Authorization: Basic Zm9vOmJhcg==", auth=False), [401],
             closed=False),
        Raw1("the absolute form of a target", h1t(f"GET https://127.0.0.1{ITEM} HTTP/1.1"), [200], closed=False),
        Raw1("the asterisk form of a target", h1t("GET * HTTP/1.1"), [404], closed=False,
             differs="Go answers 400 to '*' for a method other than OPTIONS; here it names no resource: 404"),
        Raw1("Content-Length not a number", post("Content-Length: abc", body=obj), [400], closed=True),
        Raw1("Content-Length negative", post("Content-Length: -5", body=obj), [400], closed=True),
        Raw1("Content-Length beyond int64", post("Content-Length: 99999999999999999999999", body=obj), [400],
            closed=True),
        Raw1("Content-Length of 100 MiB", post("Content-Length: %d" % (100 * MiB), body=b"{}"), [413], closed=True,
             differs="the 413 comes from h2o (its limit is 16 MiB) before the API sees the request, as text, "
                     "not a Status; kube's is a Status"),
        Raw1("Content-Length larger than the body sent", post("Content-Length: 500", body=obj[:100]), []),
        Raw1("chunked: a bad chunk size", post("Transfer-Encoding: chunked", body=b"zz\r\nabc\r\n0\r\n\r\n"), [400],
             closed=True),
        Raw1("chunked: a chunk longer than announced", post("Transfer-Encoding: chunked",
                                                           body=b"2\r\nabcdef\r\n0\r\n\r\n"), [400], closed=True),
        Raw1("chunked: truncated", post("Transfer-Encoding: chunked", body=b"100\r\n" + obj[:50]), []),
        Raw1("chunked: over 3 MiB", post("Transfer-Encoding: chunked", body=b"".join(
            b"%x\r\n%s\r\n" % (65536, b" " * 65536) for _ in range(49)) + b"0\r\n\r\n"), [413], closed=None),
        Raw1("pipelined: a 404, a 400 and a 200 in order", h1t(f"GET {COLL}/missing HTTP/1.1")
             + h1t(f"GET {COLL}?limit=abc HTTP/1.1") + get, [404, 400, 200], closed=False),
        Raw1("pipelined: a refused create then a read", post("Content-Length: 2", body=b"[]") + get, [400, 200],
             closed=False),
        Raw1("pipelined: a good request, then garbage", get + b"GARBAGE\r\n\r\n" + get, [200, 400], closed=True),
        Raw1("pipelined: a bad chunked body, then a create", post("Transfer-Encoding: chunked", body=b"zz\r\n")
             + post("Content-Length: %d" % len(obj), body=obj), [400], closed=True),
        Raw1("HTTP/1.0 without Host", b"GET /readyz HTTP/1.0\r\n\r\n", [200], closed=True),
        Raw1("bare LF line ends", b"GET /readyz HTTP/1.1\nHost: x\n\n", [200], closed=False),
    ]


# ------------------------------------------------------------------ raw HTTP/2
# RFC 9113: a frame that breaks the protocol is a connection error (GOAWAY) with
# PROTOCOL_ERROR (1), FRAME_SIZE_ERROR (6) or COMPRESSION_ERROR (9); a malformed
# request is a stream error (RST_STREAM PROTOCOL_ERROR) or, at the server's
# choice, a connection error. Go's http2 server does the same.

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PROTOCOL_ERROR, REFUSED_STREAM, FRAME_SIZE_ERROR, COMPRESSION_ERROR = 1, 7, 6, 9


def h2_frame(typ, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([typ, flags]) + struct.pack(">I", stream) + payload


def _hpack_int(n, bits):
    top = (1 << bits) - 1
    if n < top:
        return bytes([n])
    out = [top]
    n -= top
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    return bytes(out + [n])


def hpack(headers):
    """A header block of literals without indexing and without Huffman coding."""
    out = b""
    for k, v in headers:
        k, v = (x.encode() if isinstance(x, str) else x for x in (k, v))
        out += b"\x00" + _hpack_int(len(k), 7) + k + _hpack_int(len(v), 7) + v
    return out


def h2_request(token, method, path, extra=(), stream=1, body=None, auth=True):
    hs = [(":method", method), (":scheme", "https"), (":authority", "127.0.0.1"), (":path", path)]
    hs += [("authorization", "Bearer " + token)] if auth else []
    hs += list(extra)
    out = h2_frame(1, 0x4 | (0x1 if body is None else 0), stream, hpack(hs))
    if body is not None:
        pieces = [body[i:i + 16384] for i in range(0, len(body), 16384)] or [b""]
        out += b"".join(h2_frame(0, 0x1 if n == len(pieces) - 1 else 0, stream, p) for n, p in enumerate(pieces))
    return out


SETTINGS = h2_frame(4, 0, 0, b"")


def raw_http2(token):
    start = PREFACE + SETTINGS
    h2_req = lambda *a, **kw: h2_request(token, *a, **kw)
    pseudo = [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"), (":path", "/readyz")]
    hdrs = lambda hs, flags=0x5, stream=1: h2_frame(1, flags, stream, hpack(hs))
    both = {PROTOCOL_ERROR}
    return [
        Raw2("no preface, HTTP/1.1 garbage", b"GARBAGE GARBAGE GARBAGE\r\n\r\n", goaway={PROTOCOL_ERROR}, closed=True),
        Raw2("half a preface, then nothing", PREFACE[:10], goaway={PROTOCOL_ERROR}, closed=True),
        Raw2("a preface then bytes that are no frame", PREFACE + b"\xff" * 100,
            goaway={PROTOCOL_ERROR, FRAME_SIZE_ERROR}),
        Raw2("SETTINGS of a length not a multiple of 6", PREFACE + h2_frame(4, 0, 0, b"\x00\x01\x00"),
             goaway={FRAME_SIZE_ERROR}),
        Raw2("SETTINGS on a stream", PREFACE + h2_frame(4, 0, 1, b""), goaway={PROTOCOL_ERROR}),
        Raw2("SETTINGS with an initial window above 2^31-1", PREFACE + h2_frame(4, 0, 0, b"\x00\x04\xff\xff\xff\xff"),
             goaway={3}),  # FLOW_CONTROL_ERROR
        Raw2("HEADERS on stream 0", start + h2_frame(1, 0x5, 0, hpack(pseudo)), goaway={PROTOCOL_ERROR}),
        Raw2("HEADERS on an even stream", start + h2_frame(1, 0x5, 2, hpack(pseudo)), goaway={PROTOCOL_ERROR}),
        Raw2("HEADERS on a stream lower than the last", start + h2_req("GET", "/readyz", stream=5)
             + h2_req("GET", "/readyz", stream=3), goaway={PROTOCOL_ERROR, 5}),  # or STREAM_CLOSED
        Raw2("an HPACK index beyond the tables", start + h2_frame(1, 0x5, 1, b"\xff\xff\xff\xff\x0f"),
             goaway={COMPRESSION_ERROR}),
        Raw2("an HPACK index 0", start + h2_frame(1, 0x5, 1, b"\x80"), goaway={COMPRESSION_ERROR}),
        Raw2("a truncated HPACK literal", start + h2_frame(1, 0x5, 1, b"\x00\x7f\xff\xff\xff\x0fabc"),
             goaway={COMPRESSION_ERROR}),
        Raw2("DATA on an idle stream", start + h2_frame(0, 0x1, 1, b"hello"), goaway={PROTOCOL_ERROR}),
        Raw2("WINDOW_UPDATE of 0 on the connection", start + h2_frame(8, 0, 0, b"\x00\x00\x00\x00"),
             goaway={PROTOCOL_ERROR}),
        Raw2("PING of 7 bytes", start + h2_frame(6, 0, 0, b"1234567"), goaway={FRAME_SIZE_ERROR}),
        Raw2("CONTINUATION without HEADERS", start + h2_frame(9, 0x4, 1, b""), goaway={PROTOCOL_ERROR}),
        Raw2("CONTINUATION flood (16 MB of header block)", start + h2_frame(1, 0, 1, hpack(pseudo[:1]))
             + b"".join(h2_frame(9, 0, 1, hpack([("x-a", "b" * 16000)])) for _ in range(1000)),
             goaway={PROTOCOL_ERROR, REFUSED_STREAM, 11}, rst={REFUSED_STREAM}),  # 11: ENHANCE_YOUR_CALM
        Raw2("a frame of 16 MiB announced", start + b"\xff\xff\xff\x00\x00\x00\x00\x00\x00", goaway={FRAME_SIZE_ERROR}),
        Raw2("an upper-case header name", start + hdrs(pseudo + [("X-Upper", "y")]), goaway=both, rst=both),
        Raw2("no :path", start + hdrs(pseudo[:3]), goaway=both, rst=both),
        Raw2("a pseudo-header after a regular one", start + hdrs(pseudo[:1] + [("x-a", "b")] + pseudo[1:]),
             goaway=both, rst=both),
        Raw2("an unknown pseudo-header", start + hdrs(pseudo + [(":bogus", "1")]), goaway=both, rst=both),
        Raw2("a connection-specific header", start + hdrs(pseudo + [("connection", "keep-alive")]), goaway=both,
             rst=both),
        Raw2("a line break in a header value", start + hdrs(pseudo + [("x-a", "a\r\nb")]), goaway=both, rst=both,
             status=400, differs="RFC 9113 asks for a stream error; h2o answers 400 on the stream"),
        Raw2("content-length other than the DATA sent", start + h2_req(
            "POST", COLL, [("content-type", JSON), ("content-length", "100")], body=b"{}"), goaway=both, rst=both),
        Raw2("a request with a bad path over HTTP/2", start + h2_req("GET", f"{COLL}/missing"), status=404,
             reason="NotFound"),
        Raw2("a refused create over HTTP/2", start + h2_req("POST", COLL, [("content-type", "text/plain")],
                                                                body=b"{}"), status=415, reason="UnsupportedMediaType"),
        Raw2("an undecodable create over HTTP/2",
             start + h2_req("POST", COLL, [("content-type", JSON)], body=b"[" * 60_000), status=400, reason="BadRequest"),
        Raw2("a bad query option over HTTP/2", start + h2_req("GET", COLL + "?limit=abc"), status=400,
             reason="BadRequest"),
        Raw2("no credentials over HTTP/2", start + h2_req("GET", ITEM, auth=False), status=401, reason="Unauthorized"),
    ]


def catalogue(token, real_continue):
    """Every row, in the order they run; token: the bearer token raw rows carry;
    real_continue: the continue token of NS's first page of models (limit=1)."""
    return (json_bodies() + yaml_bodies() + oversized() + content_types() + accepts() + paths()
            + query_options() + continue_tokens(real_continue) + patches() + metadata() + raw_http1(token)
            + raw_http2(token))
