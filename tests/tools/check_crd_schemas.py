#!/usr/bin/python3
"""Check that the schema files install as CustomResourceDefinitions.

Every openapi/*.yaml is the single source of one kind and is promised to
install unchanged into a real cluster (DESIGN.md, Invariants). kube-apiserver
(apiextensions-apiserver) refuses a CRD for many reasons this server alone
would not notice; this checker applies those rules to the files so that a
refusal shows up here, with the file and the path of the offending node in
the form kube-apiserver prints (spec.versions[0].schema.openAPIV3Schema...).

What a real kube-apiserver enforces on apiextensions.k8s.io/v1 CRDs (and
kubectl's strict field validation), checked here:
  file      one YAML document, a mapping, no duplicate keys, apiVersion
            apiextensions.k8s.io/v1 and kind CustomResourceDefinition; no
            unknown field anywhere in the CRD (strict decoding), every field
            of the right JSON type; small enough for kubectl apply's
            last-applied annotation (256 KiB).
  metadata  only name, labels, annotations; name is a DNS subdomain equal to
            <spec.names.plural>.<spec.group>.
  spec      group a DNS subdomain with a dot (k8s.io/kubernetes.io groups need
            the api-approved annotation); scope Cluster or Namespaced;
            preserveUnknownFields not true; conversion None, or Webhook with a
            client config.
  names     plural and kind set; plural, singular, shortNames and categories
            lower-case DNS-1035 labels; kind and listKind DNS-1035 apart from
            case and different from each other; no name clash between CRDs of
            one group (the naming controller would not accept the names).
  versions  at least one, unique DNS-1035 names, exactly one storage version,
            a schema for each, deprecationWarning only when deprecated and
            printable, at most 256 bytes.
  subresources  status is {} (no fields); scale paths under .spec/.status.
  columns   name set, type integer|number|string|boolean|date, format among
            the column formats, jsonPath starting with "." (and parsable by
            the JSONPath kube-apiserver compiles for Tables).
  selectableFields  a path to a string, boolean or integer field outside
            metadata, unique, at most 8.
  schema (openAPIV3Schema, each node):
    - no unknown keyword; keywords of the right type; no $ref, $schema, id,
      definitions, dependencies, additionalItems, patternProperties,
      uniqueItems: true, type: null, items given as a list;
      type one of object, array, string, integer, number, boolean;
    - structural: every node has a type unless x-kubernetes-int-or-string or
      x-kubernetes-preserve-unknown-fields; an array has items; the root is
      type object, nullable not true, and (with the status subresource) holds
      only the keywords kube-apiserver keeps at the root; no
      additionalProperties at the root, beside properties (unless true) or
      with x-kubernetes-embedded-resource;
    - inside allOf/anyOf/oneOf/not: no type (but the int-or-string anyOf
      pattern), additionalProperties, default, title, description, nullable,
      x-kubernetes-* or metadata, and every property or items named there also
      exists in the structural part of the schema;
    - metadata at the root: type object, nothing but properties name and/or
      generateName (so no description); at the root and in embedded resources
      kind and apiVersion are strings, metadata an object;
    - extensions: preserve-unknown-fields true if set; int-or-string without
      preserve-unknown-fields or embedded-resource; embedded-resource needs
      type object and properties or preserve-unknown-fields, never inside
      metadata; map-type atomic|granular on objects; list-type
      atomic|set|map on arrays; list-map-keys only with list-type map, which
      needs keys that are scalar, required-or-defaulted, non-nullable
      properties of object items; items of set and map lists not nullable,
      items of a set atomic;
    - x-kubernetes-validations: each rule a non-empty string; message
      non-empty and on one line; a multi-line rule has a message;
      messageExpression non-empty; reason FieldValueRequired|Forbidden|
      Invalid|Duplicate; fieldPath a valid path from the node; optionalOldSelf
      only when the rule uses oldSelf; oldSelf not below an atomic list or map;
    - pattern a regular expression RE2 accepts;
    - format recognized for the node's type (else kube-apiserver drops it);
    - default: never in the top-level metadata, kind or apiVersion, nor inside
      additionalProperties of metadata; it validates against its own schema
      (type, enum, lengths, pattern, ranges, items, required, ...) and is
      pruned-equal (no field pruning would drop).

Stricter rules of this project (a cluster would accept them, but they are
mistakes); their messages end with "(langop rule)":
  - metadata.name and metadata.generateName in the schema are type string;
  - listKind is <kind>List and singular is the lower-case kind;
  - enum values have the node's type;
  - every name in required is a property of the node;
  - printer-column and selectable-field paths name fields of the schema (or of
    ObjectMeta under .metadata);
  - x-kubernetes-validations rules have balanced brackets and closed strings,
    and self.<name> names a property of the node.

CEL rules are not compiled and defaults are not run through them: that needs
a real kube-apiserver. Everything else above is checked without a cluster.

Output: one line per problem, "FILE: PATH: message", then
"crd-schemas: N files, M schema nodes, K problems". Exit status 0 when there is
no problem, 1 otherwise, 2 on bad usage.
"""

import argparse
import base64
import glob
import json
import math
import os
import re
import sys

import yaml

# ---------------------------------------------------------------- YAML reading


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when there


class CRDLoader(_BaseLoader):
    """SafeLoader that keeps timestamps as strings (as Kubernetes' YAML reading
    does) and records duplicate keys instead of silently keeping the last."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates = []


CRDLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    seen = set()
    out = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            loader.duplicates.append((key_node.start_mark.line + 1,
                                      "key %r is not a string" % (key,)))
            key = str(key)
        if key in seen:
            loader.duplicates.append((key_node.start_mark.line + 1, "duplicate key \"%s\"" % key))
        seen.add(key)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


CRDLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_documents(text):
    """(documents, problems) of one file's text; problems are (path, message)."""
    loader = CRDLoader(text)
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
    except yaml.YAMLError as e:
        return None, [("", "not valid YAML: %s" % str(e).replace("\n", " "))]
    finally:
        loader.dispose()
    return docs, [("line %d" % line, msg) for line, msg in loader.duplicates]


# ---------------------------------------------------------------- small helpers

def child(path, name):
    return name if not path else path + "." + name


def key(path, k):
    return "%s[%s]" % (path, k)


def index(path, i):
    return "%s[%d]" % (path, i)


def is_str(v):
    return isinstance(v, str)


def is_bool(v):
    return isinstance(v, bool)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_map(v):
    return isinstance(v, dict)


def is_list(v):
    return isinstance(v, list)


def is_zero(v):
    """Whether v is the zero value of its Go field (false, "", empty), which
    kube-apiserver cannot tell from an unset one."""
    return v is False or (is_str(v) and not v) or ((is_list(v) or is_map(v)) and not v)


def same_json(a, b):
    """Equality of JSON values where true is not 1 (Python thinks it is)."""
    if is_bool(a) or is_bool(b):
        return is_bool(a) and is_bool(b) and a == b
    if is_num(a) and is_num(b):
        return a == b
    if is_map(a) and is_map(b):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if is_list(a) and is_list(b):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def dns1035_label(s):
    return len(s) <= 63 and bool(DNS1035_LABEL.match(s))


def dns1123_subdomain(s):
    return 0 < len(s) <= 253 and all(DNS1123_LABEL.match(p) for p in s.split("."))


# ---------------------------------------------------------------- vocabulary

# Fields of the v1 CRD object and its parts (strict decoding refuses others).
CRD_FIELDS = {"apiVersion", "kind", "metadata", "spec", "status"}
OBJECT_META_FIELDS = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
                      "generation", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
                      "finalizers", "managedFields"}
FILE_META_FIELDS = {"name", "labels", "annotations"}
SPEC_FIELDS = {"group", "names", "scope", "versions", "conversion", "preserveUnknownFields"}
NAMES_FIELDS = {"plural", "singular", "shortNames", "kind", "listKind", "categories"}
VERSION_FIELDS = {"name", "served", "storage", "deprecated", "deprecationWarning", "schema",
                  "subresources", "additionalPrinterColumns", "selectableFields"}
SUBRESOURCE_FIELDS = {"status", "scale"}
SCALE_FIELDS = {"specReplicasPath", "statusReplicasPath", "labelSelectorPath"}
COLUMN_FIELDS = {"name", "type", "format", "description", "priority", "jsonPath"}
CONVERSION_FIELDS = {"strategy", "webhook"}
WEBHOOK_FIELDS = {"clientConfig", "conversionReviewVersions"}
CLIENT_CONFIG_FIELDS = {"url", "service", "caBundle"}
SERVICE_FIELDS = {"namespace", "name", "path", "port"}
RULE_FIELDS = {"rule", "message", "messageExpression", "reason", "fieldPath", "optionalOldSelf"}

COLUMN_TYPES = ["boolean", "date", "integer", "number", "string"]
COLUMN_FORMATS = ["byte", "date", "date-time", "double", "float", "int32", "int64", "password"]
SCHEMA_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
RULE_REASONS = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid",
                "FieldValueRequired"]
MAX_SELECTABLE_FIELDS = 8
APPLY_ANNOTATION_LIMIT = 262144  # bytes of all annotations, which kubectl apply fills

# Every keyword of a v1 JSONSchemaProps and the JSON shape its value must have.
KEYWORDS = {
    "id": "string", "$schema": "string", "$ref": "string", "description": "string",
    "type": "string", "format": "string", "title": "string", "pattern": "string",
    "default": "any", "example": "any", "enum": "list",
    "maximum": "number", "minimum": "number", "multipleOf": "number",
    "exclusiveMaximum": "bool", "exclusiveMinimum": "bool", "uniqueItems": "bool",
    "nullable": "bool",
    "maxLength": "count", "minLength": "count", "maxItems": "count", "minItems": "count",
    "maxProperties": "count", "minProperties": "count",
    "required": "strings",
    "items": "schema-or-list", "allOf": "schemas", "anyOf": "schemas", "oneOf": "schemas",
    "not": "schema", "properties": "schema-map", "patternProperties": "schema-map",
    "definitions": "schema-map", "additionalProperties": "schema-or-bool",
    "additionalItems": "schema-or-bool", "dependencies": "dependencies",
    "externalDocs": "docs",
    "x-kubernetes-preserve-unknown-fields": "bool", "x-kubernetes-embedded-resource": "bool",
    "x-kubernetes-int-or-string": "bool", "x-kubernetes-list-map-keys": "strings",
    "x-kubernetes-list-type": "string", "x-kubernetes-map-type": "string",
    "x-kubernetes-validations": "rules",
}
SHAPE_TEXT = {
    "string": "a string", "any": "a value", "list": "a list", "number": "a number",
    "bool": "a boolean", "count": "a non-negative integer", "strings": "a list of strings",
    "schema-or-list": "a schema", "schemas": "a list of schemas", "schema": "a schema",
    "schema-map": "a mapping of schemas", "schema-or-bool": "a schema or a boolean",
    "dependencies": "a mapping of schemas or string lists",
    "docs": "a mapping with description and url", "rules": "a list of rules",
}
UNSUPPORTED = ["$ref", "$schema", "id", "definitions", "dependencies", "additionalItems",
               "patternProperties"]
# With the status subresource, only these keywords may be set at the root.
ROOT_KEYWORDS = {"description", "type", "format", "title", "maximum", "exclusiveMaximum",
                 "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
                 "minItems", "uniqueItems", "multipleOf", "required", "items", "properties",
                 "externalDocs", "example", "x-kubernetes-preserve-unknown-fields",
                 "x-kubernetes-validations"}
META_FIELDS = ("apiVersion", "kind", "metadata")
# Formats kube-apiserver keeps (after removing "-"); any other is dropped silently.
STRING_FORMATS = {"bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac",
                  "uuid", "uuid3", "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard",
                  "ssn", "hexcolor", "rgbcolor", "byte", "password", "date", "duration",
                  "datetime"}
NEWER_STRING_FORMATS = {"k8sshortname", "k8slongname"}  # only from Kubernetes 1.34
NUMBER_FORMATS = {"integer": {"int32", "int64"}, "number": {"float", "double"}}
INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
CEL_RESERVED = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
                "function", "if", "import", "let", "loop", "package", "namespace", "return",
                "var", "void", "while"}
CEL_ESCAPES = {"underscores": "__", "dot": ".", "dash": "-", "slash": "/"}

# ---------------------------------------------------------------- paths (JSONPath subset)

_JP_TOKEN = re.compile(r"""
    \.(?P<field>[A-Za-z0-9_$-]+)
  | \[(?P<quoted>'[^']*'|"[^"]*")\]
  | \[(?P<index>-?[0-9]+)\]
  | \[(?P<star>\*)\]
  | \[\?\(\s*@(?P<fpath>(?:\.[A-Za-z0-9_$-]+)+)\s*
        (?:(?:==|!=|<=|>=|<|>)\s*(?:"[^"]*"|'[^']*'|-?[0-9]+(?:\.[0-9]+)?|true|false)\s*)?\)\]
""", re.X)


def parse_path(text, arrays=True, filters=True):
    """Segments of a dotted path: [("field", name) | ("item", None) |
    ("filter", [names])], or None when it is not one this checker reads."""
    if text == ".":
        return []
    segs, pos = [], 0
    while pos < len(text):
        m = _JP_TOKEN.match(text, pos)
        if m is None:
            return None
        if m.group("field") is not None:
            segs.append(("field", m.group("field")))
        elif m.group("quoted") is not None:
            segs.append(("field", m.group("quoted")[1:-1]))
        elif not arrays:
            return None
        elif m.group("fpath") is not None:
            if not filters:
                return None
            segs.append(("filter", m.group("fpath")[1:].split(".")))
        elif m.group("star") is not None and not filters:
            return None
        else:
            segs.append(("item", None))
        pos = m.end()
    return segs


def resolve(schema, segs):
    """The schema node a path leads to, "open" when it enters a part the schema
    does not describe (preserved unknown fields, ObjectMeta), or None."""
    node = schema
    for n, (kind, arg) in enumerate(segs):
        if not is_map(node):
            return None
        if kind == "field":
            props = node.get("properties")
            addl = node.get("additionalProperties")
            if n == 0 and node is schema and arg == "metadata":
                if len(segs) == 1:
                    return node.get("properties", {}).get("metadata", {"type": "object"})
                sub = segs[1]
                if sub[0] != "field" or sub[1] not in OBJECT_META_FIELDS:
                    return None
                return "open"
            if is_map(props) and arg in props:
                node = props[arg]
            elif is_map(addl):
                node = addl
            elif addl is True or node.get("x-kubernetes-preserve-unknown-fields") is True:
                return "open"
            else:
                return None
        else:
            if node.get("type") != "array" or not is_map(node.get("items")):
                return None
            node = node["items"]
            if kind == "filter" and resolve(node, [("field", f) for f in arg]) is None:
                return None
    return node


# ---------------------------------------------------------------- CEL (shape only)

_CEL_STRING = re.compile(r"""(?i:[rb]{0,2})('''|\"\"\"|'|")""")


def cel_scan(rule):
    """(problem or None, the rule with string literals blanked)."""
    out, i, n = [], 0, len(rule)
    stack = []
    pairs = {")": "(", "]": "[", "}": "{"}
    while i < n:
        m = _CEL_STRING.match(rule, i)
        if m and m.start(1) > i and i > 0 and (rule[i - 1].isalnum() or rule[i - 1] == "_"):
            m = None  # r or b ending an identifier, not a string prefix
        if m:
            raw = "r" in m.group(0)[:-len(m.group(1))].lower()
            quote = m.group(1)
            j = m.end()
            while True:
                if j >= n or (len(quote) == 1 and rule[j] == "\n"):
                    return "a string literal is not closed", ""
                if not raw and rule[j] == "\\":
                    j += 2
                    continue
                if rule.startswith(quote, j):
                    j += len(quote)
                    break
                j += 1
            out.append('""')
            i = j
            continue
        c = rule[i]
        if c in "([{":
            stack.append(c)
        elif c in ")]}":
            if not stack or stack.pop() != pairs[c]:
                return "unbalanced '%s'" % c, ""
        out.append(c)
        i += 1
    if stack:
        return "unclosed '%s'" % stack[-1], ""
    return None, "".join(out)


_SELF_FIELD = re.compile(r"(?<![\w.])(self|oldSelf)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")


def cel_property(name):
    """The property a CEL identifier names, undoing kube's escapes (__dash__ ...)."""
    m = re.fullmatch(r"__([A-Za-z0-9]+)__", name)
    if m and (m.group(1) in CEL_RESERVED):
        return m.group(1)
    out, pos = [], 0
    for m in re.finditer(r"__(underscores|dot|dash|slash)__", name):
        out.append(name[pos:m.start()])
        out.append(CEL_ESCAPES[m.group(1)])
        pos = m.end()
    out.append(name[pos:])
    return "".join(out)


# ---------------------------------------------------------------- regular expressions

def go_regexp_problem(pattern):
    """Why RE2 (Go's regexp) would refuse pattern, or None. Compiled with
    Python's re after mapping the few RE2-only spellings."""
    for bad, what in (("(?=", "lookahead"), ("(?!", "lookahead"), ("(?<=", "lookbehind"),
                      ("(?<!", "lookbehind"), ("(?>", "atomic group"), ("(?(", "conditional")):
        if bad in pattern:
            return "RE2 has no %s" % what
    if re.search(r"(?<!\\)(\\\\)*\\[1-9]", pattern):
        return "RE2 has no backreferences"
    try:
        re.compile(python_pattern(pattern))
    except re.error as e:
        return str(e)
    return None


def python_pattern(pattern):
    p = re.sub(r"\\[pP](\{[A-Za-z_]+\}|[A-Za-z])", r"\\w", pattern)
    p = p.replace("[[:", "[[").replace(":]]", "]]")
    return p.replace("\\z", "\\Z")


# ---------------------------------------------------------------- values against a schema

DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def type_ok(x, t):
    if t == "object":
        return is_map(x)
    if t == "array":
        return is_list(x)
    if t == "string":
        return is_str(x)
    if t == "boolean":
        return is_bool(x)
    if t == "integer":
        return is_int(x) or (isinstance(x, float) and x.is_integer())
    if t == "number":
        return is_num(x)
    return True


def value_problems(x, s, path):
    """What kube-apiserver's validation of a custom resource would say about
    value x under schema node s (without CEL rules): list of (path, message)."""
    if not is_map(s):
        return []
    out = []
    t = s.get("type")
    if x is None:
        if s.get("nullable") is not True and t:
            out.append((path, "null is not allowed (not nullable)"))
        return out
    if s.get("x-kubernetes-int-or-string") is True and not t:
        if not (is_int(x) or is_str(x)):
            out.append((path, "must be an integer or a string"))
            return out
    elif t and not type_ok(x, t):
        return [(path, "must be of type %s" % t)]
    if "enum" in s and is_list(s["enum"]) and not any(same_json(x, e) for e in s["enum"]):
        out.append((path, "must be one of the enum values, not %s" % json.dumps(x)))
    if is_str(x):
        out += string_problems(x, s, path)
    if is_num(x):
        out += number_problems(x, s, path)
    if is_list(x):
        out += array_problems(x, s, path)
    if is_map(x):
        out += object_problems(x, s, path)
    for j in ("allOf", "anyOf", "oneOf"):
        subs = s.get(j)
        if not is_list(subs):
            continue
        passing = [not value_problems(x, sub, path) for sub in subs]
        if j == "allOf" and not all(passing):
            out.append((path, "does not match every schema of allOf"))
        if j == "anyOf" and not any(passing):
            out.append((path, "matches no schema of anyOf"))
        if j == "oneOf" and passing.count(True) != 1:
            out.append((path, "must match exactly one schema of oneOf"))
    if is_map(s.get("not")) and not value_problems(x, s["not"], path):
        out.append((path, "must not match the schema of not"))
    return out


def string_problems(x, s, path):
    out = []
    if is_int(s.get("minLength")) and len(x) < s["minLength"]:
        out.append((path, "must be at least %d characters long" % s["minLength"]))
    if is_int(s.get("maxLength")) and len(x) > s["maxLength"]:
        out.append((path, "must be at most %d characters long" % s["maxLength"]))
    pattern = s.get("pattern")
    if is_str(pattern) and go_regexp_problem(pattern) is None:
        if not re.search(python_pattern(pattern), x):
            out.append((path, "must match the pattern %s" % pattern))
    fmt = s.get("format")
    if fmt in ("date-time", "datetime") and not DATE_TIME.match(x):
        out.append((path, "must be a date-time (RFC 3339)"))
    if fmt == "date" and not DATE.match(x):
        out.append((path, "must be a date (YYYY-MM-DD)"))
    if fmt == "byte":
        try:
            base64.b64decode(x, validate=True)
        except ValueError:
            out.append((path, "must be base64"))
    return out


def number_problems(x, s, path):
    out = []
    lo, hi = s.get("minimum"), s.get("maximum")
    if is_num(lo) and (x < lo or (s.get("exclusiveMinimum") is True and x == lo)):
        out.append((path, "must be %s %s" % (">" if s.get("exclusiveMinimum") else ">=", lo)))
    if is_num(hi) and (x > hi or (s.get("exclusiveMaximum") is True and x == hi)):
        out.append((path, "must be %s %s" % ("<" if s.get("exclusiveMaximum") else "<=", hi)))
    m = s.get("multipleOf")
    if is_num(m) and m > 0 and not math.isclose(x / m, round(x / m)):
        out.append((path, "must be a multiple of %s" % m))
    limits = {"int32": 2 ** 31, "int64": 2 ** 63}
    if s.get("format") in limits and not -limits[s["format"]] <= x < limits[s["format"]]:
        out.append((path, "is out of the range of %s" % s["format"]))
    return out


def array_problems(x, s, path):
    out = []
    if is_int(s.get("minItems")) and len(x) < s["minItems"]:
        out.append((path, "must have at least %d items" % s["minItems"]))
    if is_int(s.get("maxItems")) and len(x) > s["maxItems"]:
        out.append((path, "must have at most %d items" % s["maxItems"]))
    items = s.get("items")
    for i, v in enumerate(x):
        out += value_problems(v, items, index(path, i))
    lt = s.get("x-kubernetes-list-type")
    if lt == "set":
        for i, v in enumerate(x):
            if any(same_json(v, w) for w in x[:i]):
                out.append((index(path, i), "duplicate entry in a set"))
    if lt == "map" and is_list(s.get("x-kubernetes-list-map-keys")):
        keys = s["x-kubernetes-list-map-keys"]
        seen = []
        for i, v in enumerate(x):
            if is_map(v):
                k = [v.get(name) for name in keys]
                if any(same_json(k, w) for w in seen):
                    out.append((index(path, i), "duplicate entry for the map keys %s" % keys))
                seen.append(k)
    return out


def object_problems(x, s, path):
    out = []
    for name in s.get("required", []) if is_list(s.get("required")) else []:
        if name not in x:
            out.append((child(path, name), "is required"))
    if is_int(s.get("minProperties")) and len(x) < s["minProperties"]:
        out.append((path, "must have at least %d properties" % s["minProperties"]))
    if is_int(s.get("maxProperties")) and len(x) > s["maxProperties"]:
        out.append((path, "must have at most %d properties" % s["maxProperties"]))
    props = s.get("properties") if is_map(s.get("properties")) else {}
    addl = s.get("additionalProperties")
    for k, v in x.items():
        if k in props:
            out += value_problems(v, props[k], child(path, k))
        elif is_map(addl):
            out += value_problems(v, addl, key(path, k))
        elif addl is False:
            out.append((child(path, k), "is not allowed (additionalProperties is false)"))
    return out


def pruned_fields(x, s, path, embedded=False):
    """Paths of the fields kube-apiserver's pruning would drop from x."""
    if not is_map(s):
        return []
    out = []
    if is_map(x):
        props = s.get("properties") if is_map(s.get("properties")) else {}
        addl = s.get("additionalProperties")
        keep = s.get("x-kubernetes-preserve-unknown-fields") is True or addl is True
        embedded = embedded or s.get("x-kubernetes-embedded-resource") is True
        for k, v in x.items():
            if k in props:
                out += pruned_fields(v, props[k], child(path, k))
            elif is_map(addl):
                out += pruned_fields(v, addl, key(path, k))
            elif not keep and not (embedded and k in META_FIELDS):
                out.append(child(path, k))
    elif is_list(x) and is_map(s.get("items")):
        for i, v in enumerate(x):
            out += pruned_fields(v, s["items"], index(path, i))
    return out


# ---------------------------------------------------------------- the checker

class Context:
    """Where a schema node sits: what kube-apiserver's rules depend on."""

    def __init__(self, level="root", nested=False, in_meta=False, no_default=None,
                 uncorrelatable=None, status=False):
        self.level = level                  # root | item | field
        self.nested = nested                # inside allOf/anyOf/oneOf/not
        self.in_meta = in_meta              # inside apiVersion/kind/metadata of a resource
        self.no_default = no_default        # why a default is forbidden here, or None
        self.uncorrelatable = uncorrelatable  # path above which oldSelf is not usable
        self.status = status                # the status subresource is on (root only)

    def but(self, **changes):
        c = Context(self.level, self.nested, self.in_meta, self.no_default, self.uncorrelatable)
        for k, v in changes.items():
            setattr(c, k, v)
        return c


class FileChecker:
    """Checks one parsed CRD document; problems are (path, message)."""

    def __init__(self):
        self.problems = []
        self.nodes = 0

    def add(self, path, message):
        self.problems.append((path, message))

    def langop(self, path, message):
        self.add(path, message + " (langop rule)")

    # ---- generic typed access

    def fields(self, obj, path, allowed, what):
        """obj if it is a mapping (unknown fields reported), else {}."""
        if not is_map(obj):
            self.add(path, "must be a mapping (%s)" % what)
            return {}
        for k in obj:
            if k not in allowed:
                self.add(child(path, k) if path else k, "unknown field \"%s\"" % k)
        return obj

    def get(self, obj, k, path, shape, required=False):
        """obj[k] when it has the shape (string, bool, int, strings, map, list)."""
        p = child(path, k)
        if k not in obj:
            if required:
                self.add(p, "is required")
            return None
        v = obj[k]
        ok = {"string": is_str, "bool": is_bool, "int": is_int, "map": is_map, "list": is_list,
              "strings": lambda v: is_list(v) and all(is_str(e) for e in v)}[shape](v)
        if not ok:
            self.add(p, "must be %s" % {"string": "a string", "bool": "a boolean",
                                        "int": "an integer", "map": "a mapping",
                                        "list": "a list",
                                        "strings": "a list of strings"}[shape])
            return None
        return v

    def string_map(self, obj, k, path):
        m = self.get(obj, k, path, "map")
        for name, v in (m or {}).items():
            if not is_str(v):
                self.add(key(child(path, k), name), "must be a string")

    # ---- the CRD object

    def check(self, doc):
        if not is_map(doc):
            self.add("", "must be a mapping (a CustomResourceDefinition)")
            return None
        self.fields(doc, "", CRD_FIELDS, "CustomResourceDefinition")
        if doc.get("apiVersion") != "apiextensions.k8s.io/v1":
            self.add("apiVersion", "must be apiextensions.k8s.io/v1")
        if doc.get("kind") != "CustomResourceDefinition":
            self.add("kind", "must be CustomResourceDefinition")
        spec = self.fields(doc.get("spec"), "spec", SPEC_FIELDS, "CustomResourceDefinitionSpec")
        names = self.check_names(spec)
        group = self.check_spec(spec)
        self.check_metadata(doc, names, group)
        self.check_versions(spec)
        size = len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())
        if size > APPLY_ANNOTATION_LIMIT:
            self.add("", "is %d bytes as JSON, more than kubectl apply's last-applied "
                         "annotation may hold (%d)" % (size, APPLY_ANNOTATION_LIMIT))
        return {"group": group, "names": names, "name": (doc.get("metadata") or {}).get("name")
                if is_map(doc.get("metadata")) else None}

    def check_metadata(self, doc, names, group):
        meta = doc.get("metadata")
        if not is_map(meta):
            self.add("metadata", "must be a mapping with the CRD's name")
            return
        for k in meta:
            if k not in OBJECT_META_FIELDS:
                self.add(child("metadata", k), "unknown field \"%s\"" % k)
            elif k not in FILE_META_FIELDS:
                self.add(child("metadata", k), "must not be set in a file to install")
        self.string_map(meta, "labels", "metadata")
        self.string_map(meta, "annotations", "metadata")
        name = self.get(meta, "name", "metadata", "string", required=True)
        if name is None:
            return
        if not dns1123_subdomain(name):
            self.add("metadata.name", "must be a DNS subdomain, not \"%s\"" % name)
        plural = names.get("plural")
        if is_str(plural) and is_str(group) and name != plural + "." + group:
            self.add("metadata.name", "must be spec.names.plural+\".\"+spec.group (%s.%s), not %s"
                     % (plural, group, name))
        if is_str(group) and (group == "k8s.io" or group.endswith(".k8s.io") or
                              group == "kubernetes.io" or group.endswith(".kubernetes.io")):
            ann = meta.get("annotations") if is_map(meta.get("annotations")) else {}
            if "api-approved.kubernetes.io" not in ann:
                self.add("metadata.annotations[api-approved.kubernetes.io]",
                         "is required for a group under k8s.io or kubernetes.io")

    def check_spec(self, spec):
        group = self.get(spec, "group", "spec", "string", required=True)
        if group is not None:
            if not dns1123_subdomain(group):
                self.add("spec.group", "must be a DNS subdomain, not \"%s\"" % group)
            elif "." not in group:
                self.add("spec.group", "should be a domain with at least one dot")
        scope = self.get(spec, "scope", "spec", "string", required=True)
        if scope is not None and scope not in ("Cluster", "Namespaced"):
            self.add("spec.scope", "must be Cluster or Namespaced, not \"%s\"" % scope)
        if self.get(spec, "preserveUnknownFields", "spec", "bool") is True:
            self.add("spec.preserveUnknownFields",
                     "cannot be true; use x-kubernetes-preserve-unknown-fields in the schema")
        if "conversion" in spec:
            self.check_conversion(spec["conversion"])
        return group

    def check_conversion(self, conv):
        conv = self.fields(conv, "spec.conversion", CONVERSION_FIELDS, "CustomResourceConversion")
        strategy = self.get(conv, "strategy", "spec.conversion", "string", required=True)
        if strategy not in (None, "None", "Webhook"):
            self.add("spec.conversion.strategy", "must be None or Webhook")
        hook = conv.get("webhook")
        if strategy != "Webhook":
            if hook is not None:
                self.add("spec.conversion.webhook", "must not be set unless strategy is Webhook")
            return
        hook = self.fields(hook, "spec.conversion.webhook", WEBHOOK_FIELDS, "WebhookConversion")
        p = "spec.conversion.webhook"
        versions = self.get(hook, "conversionReviewVersions", p, "strings", required=True)
        if versions is not None and not {"v1", "v1beta1"} & set(versions):
            self.add(child(p, "conversionReviewVersions"), "must include v1 or v1beta1")
        if self.get(hook, "clientConfig", p, "map", required=True) is None:
            return
        cc = self.fields(hook["clientConfig"], child(p, "clientConfig"),
                         CLIENT_CONFIG_FIELDS, "WebhookClientConfig")
        if ("url" in cc) == ("service" in cc):
            self.add(child(p, "clientConfig"), "exactly one of url or service is required")
        if "service" in cc:
            svc = self.fields(cc["service"], child(p, "clientConfig.service"), SERVICE_FIELDS,
                              "ServiceReference")
            self.get(svc, "name", child(p, "clientConfig.service"), "string", required=True)
            self.get(svc, "namespace", child(p, "clientConfig.service"), "string", required=True)

    def check_names(self, spec):
        p = "spec.names"
        names = self.fields(spec.get("names"), p, NAMES_FIELDS, "CustomResourceDefinitionNames")
        plural = self.get(names, "plural", p, "string", required=True)
        singular = self.get(names, "singular", p, "string")
        kind = self.get(names, "kind", p, "string", required=True)
        list_kind = self.get(names, "listKind", p, "string")
        for k, v in (("plural", plural), ("singular", singular)):
            if v is not None and not dns1035_label(v):
                self.add(child(p, k), "must be a lower-case DNS-1035 label, not \"%s\"" % v)
        for k, v in (("kind", kind), ("listKind", list_kind)):
            if v is not None and not dns1035_label(v.lower()):
                self.add(child(p, k), "may have mixed case, but should otherwise be a "
                                      "DNS-1035 label, not \"%s\"" % v)
        if kind and kind == list_kind:
            self.add(child(p, "listKind"), "kind and listKind may not be the same")
        if kind and list_kind is not None and list_kind != kind + "List":
            self.langop(child(p, "listKind"), "must be %sList, not %s" % (kind, list_kind))
        if kind and singular is not None and singular != kind.lower():
            self.langop(child(p, "singular"), "must be %s, not %s" % (kind.lower(), singular))
        for k in ("shortNames", "categories"):
            for i, v in enumerate(self.get(names, k, p, "strings") or []):
                if not dns1035_label(v):
                    self.add(index(child(p, k), i), "must be a lower-case DNS-1035 label, "
                                                    "not \"%s\"" % v)
        return {k: names.get(k) for k in NAMES_FIELDS}

    def check_versions(self, spec):
        versions = self.get(spec, "versions", "spec", "list", required=True)
        if versions is None:
            return
        if not versions:
            self.add("spec.versions", "must have at least one version")
        seen, storage = set(), 0
        for i, v in enumerate(versions):
            p = index("spec.versions", i)
            v = self.fields(v, p, VERSION_FIELDS, "CustomResourceDefinitionVersion")
            name = self.get(v, "name", p, "string", required=True)
            if name is not None:
                if not dns1035_label(name):
                    self.add(child(p, "name"), "must be a DNS-1035 label, not \"%s\"" % name)
                if name in seen:
                    self.add(child(p, "name"), "must be unique among the versions")
                seen.add(name)
            self.get(v, "served", p, "bool", required=True)
            if self.get(v, "storage", p, "bool", required=True):
                storage += 1
            self.check_deprecation(v, p)
            status = self.check_subresources(v, p)
            schema = self.check_version_schema(v, p, status)
            self.check_columns(v, p, schema)
            self.check_selectable(v, p, schema)
        if versions and storage != 1:
            self.add("spec.versions", "must have exactly one version marked as storage "
                                      "version, not %d" % storage)

    def check_deprecation(self, v, p):
        deprecated = self.get(v, "deprecated", p, "bool")
        warning = self.get(v, "deprecationWarning", p, "string")
        if warning is None:
            return
        wp = child(p, "deprecationWarning")
        if not deprecated:
            self.add(wp, "can only be set for deprecated versions")
        if not warning or len(warning.encode()) > 256:
            self.add(wp, "must be 1 to 256 bytes long")
        if any(not c.isprintable() for c in warning):
            self.add(wp, "must only contain printable characters")

    def check_subresources(self, v, p):
        if "subresources" not in v:
            return False
        sp = child(p, "subresources")
        sub = self.fields(v["subresources"], sp, SUBRESOURCE_FIELDS, "CustomResourceSubresources")
        status = "status" in sub
        if status and sub["status"] is not None and sub["status"] != {}:
            self.add(child(sp, "status"), "must be {} (the status subresource has no fields)")
        if "scale" in sub:
            scale = self.fields(sub["scale"], child(sp, "scale"), SCALE_FIELDS,
                                "CustomResourceSubresourceScale")
            for k, prefixes, required in (("specReplicasPath", (".spec.",), True),
                                          ("statusReplicasPath", (".status.",), True),
                                          ("labelSelectorPath", (".spec.", ".status."), False)):
                val = self.get(scale, k, child(sp, "scale"), "string", required=required)
                if val and not val.startswith(prefixes):
                    self.add(child(sp, "scale." + k), "should be a json path under %s"
                             % " or ".join(x.rstrip(".") for x in prefixes))
        return status

    def check_version_schema(self, v, p, status):
        if "schema" not in v:
            self.add(child(p, "schema.openAPIV3Schema"), "is required")
            return None
        val = self.fields(v["schema"], child(p, "schema"), {"openAPIV3Schema"},
                          "CustomResourceValidation")
        sp = child(p, "schema.openAPIV3Schema")
        if "openAPIV3Schema" not in val:
            self.add(sp, "is required")
            return None
        schema = val["openAPIV3Schema"]
        self.node(schema, sp, Context(status=status))
        return schema if is_map(schema) else None

    def check_columns(self, v, p, schema):
        cols = self.get(v, "additionalPrinterColumns", p, "list")
        for i, col in enumerate(cols or []):
            cp = index(child(p, "additionalPrinterColumns"), i)
            col = self.fields(col, cp, COLUMN_FIELDS, "CustomResourceColumnDefinition")
            name = self.get(col, "name", cp, "string", required=True)
            if name == "":
                self.add(child(cp, "name"), "must not be empty")
            t = self.get(col, "type", cp, "string", required=True)
            if t is not None and t not in COLUMN_TYPES:
                self.add(child(cp, "type"), "must be one of %s" % ",".join(COLUMN_TYPES))
            f = self.get(col, "format", cp, "string")
            if f and f not in COLUMN_FORMATS:
                self.add(child(cp, "format"), "must be one of %s" % ",".join(COLUMN_FORMATS))
            self.get(col, "description", cp, "string")
            self.get(col, "priority", cp, "int")
            path = self.get(col, "jsonPath", cp, "string", required=True)
            if path is None:
                continue
            jp = child(cp, "jsonPath")
            if not path.startswith("."):
                self.add(jp, "must be a simple json path starting with ., not \"%s\"" % path)
                continue
            segs = parse_path(path)
            if segs is None:
                self.langop(jp, "\"%s\" is not a JSONPath this checker can read" % path)
            elif schema is not None and resolve(schema, segs) is None:
                self.langop(jp, "\"%s\" names no field of the schema" % path)

    def check_selectable(self, v, p, schema):
        fields = self.get(v, "selectableFields", p, "list")
        seen = set()
        for i, f in enumerate(fields or []):
            fp = index(child(p, "selectableFields"), i)
            f = self.fields(f, fp, {"jsonPath"}, "SelectableField")
            path = self.get(f, "jsonPath", fp, "string", required=True)
            if path is None:
                continue
            jp = child(fp, "jsonPath")
            segs = parse_path(path, arrays=False) if path.startswith(".") else None
            if segs is None:
                self.add(jp, "\"%s\" is an invalid path" % path)
                continue
            if segs and segs[0] == ("field", "metadata"):
                self.add(jp, "must not point to fields in metadata")
                continue
            target = resolve(schema, segs) if schema is not None else "open"
            if target is None:
                self.add(jp, "\"%s\" names no field of the schema" % path)
            elif target != "open" and target.get("type") not in ("string", "boolean", "integer"):
                self.add(jp, "must point to a field of type string, boolean or integer")
            if path in seen:
                self.add(jp, "duplicate selectable field")
            seen.add(path)
        if len(seen) > MAX_SELECTABLE_FIELDS:
            self.add(child(p, "selectableFields"), "must have at most %d entries"
                     % MAX_SELECTABLE_FIELDS)

    # ---- schema nodes

    def node(self, s, p, ctx):
        """Check one schema node and, through it, its subtree."""
        if not is_map(s):
            self.add(p, "must be a schema (a mapping)")
            return
        self.nodes += 1
        s = self.keyword_shapes(s, p)
        self.unsupported(s, p)
        if ctx.nested:
            self.nested_rules(s, p)
        else:
            self.structural_rules(s, p, ctx)
        if ctx.level == "root" and not ctx.nested:
            self.root_rules(s, p, ctx)
        if not ctx.nested and (ctx.level == "root" or
                               s.get("x-kubernetes-embedded-resource") is True):
            self.resource_meta_rules(s, p, ctx)
        self.extension_rules(s, p, ctx)
        self.list_rules(s, p)
        self.validation_rules(s, p, ctx)
        self.value_rules(s, p)
        self.default_rules(s, p, ctx)
        self.children(s, p, ctx)

    def keyword_shapes(self, s, p):
        """The keywords of s whose values have the right JSON shape."""
        good = {}
        for k, v in s.items():
            shape = KEYWORDS.get(k)
            if shape is None:
                self.add(p, "unknown field \"%s\"" % k)
                continue
            ok = {
                "string": is_str(v), "any": True, "list": is_list(v), "number": is_num(v),
                "bool": is_bool(v), "count": is_int(v) and v >= 0,
                "strings": is_list(v) and all(is_str(e) for e in v),
                "schema-or-list": is_map(v) or is_list(v), "schema": is_map(v),
                "schemas": is_list(v) and all(is_map(e) for e in v),
                "schema-map": is_map(v) and all(is_map(e) for e in v.values()),
                "schema-or-bool": is_map(v) or is_bool(v),
                "dependencies": is_map(v),
                "docs": is_map(v) and set(v) <= {"description", "url"}
                and all(is_str(e) for e in v.values()),
                "rules": is_list(v),
            }[shape]
            if ok:
                good[k] = v
            else:
                self.add(child(p, k), "must be %s" % SHAPE_TEXT[shape])
        return good

    def unsupported(self, s, p):
        for k in UNSUPPORTED:
            if k in s:
                self.add(child(p, k), "%s is not supported" % k)
        if s.get("uniqueItems") is True:
            self.add(child(p, "uniqueItems"), "uniqueItems cannot be set to true since the "
                                              "runtime complexity becomes quadratic")
        if is_list(s.get("items")):
            self.add(child(p, "items"), "items must be a schema object and not an array")
        t = s.get("type")
        if t == "null":
            self.add(child(p, "type"), "type cannot be set to null, use nullable as an "
                                       "alternative")
        elif t is not None and t not in SCHEMA_TYPES:
            self.add(child(p, "type"), "must be one of %s, not \"%s\""
                     % (", ".join(SCHEMA_TYPES), t))

    def nested_rules(self, s, p):
        """Inside allOf/anyOf/oneOf/not only value validations may appear."""
        for k in ("type", "additionalProperties", "default", "title", "description"):
            if k in s:
                self.add(child(p, k), "must not be set inside allOf/anyOf/oneOf/not "
                                      "to be structural")
        if s.get("nullable") is True:
            self.add(child(p, "nullable"), "must be false to be structural")
        for k in s:
            if k.startswith("x-kubernetes-"):
                self.add(child(p, k), "must not be set inside allOf/anyOf/oneOf/not "
                                      "to be structural")
        if "metadata" in s.get("properties", {}):
            self.add(key(child(p, "properties"), "metadata"),
                     "must not be specified in a nested context")

    def structural_rules(self, s, p, ctx):
        t = s.get("type")
        embedded = s.get("x-kubernetes-embedded-resource") is True
        if embedded and t != "object":
            self.add(child(p, "type"), "must be object if x-kubernetes-embedded-resource is true")
        elif not t and s.get("x-kubernetes-int-or-string") is not True \
                and s.get("x-kubernetes-preserve-unknown-fields") is not True:
            where = {"root": "at the root", "item": "for specified array items",
                     "field": "for specified object fields"}[ctx.level]
            self.add(child(p, "type"), "must not be empty %s" % where)
        if t == "array" and "items" not in s:
            self.add(child(p, "items"), "must be specified")
        if "additionalProperties" in s:
            ap = child(p, "additionalProperties")
            if ctx.level == "root":
                self.add(ap, "must not be used at the root")
            if embedded:
                self.add(ap, "must not be used if x-kubernetes-embedded-resource is set")
            if s.get("properties") and s["additionalProperties"] is not True:
                self.add(ap, "additionalProperties and properties are mutual exclusive")

    def root_rules(self, s, p, ctx):
        t = s.get("type")
        if t != "object" and t is not None:
            self.add(child(p, "type"), "must be object at the root")
        elif t is None:
            self.add(child(p, "type"), "must be object at the root")
        if s.get("nullable") is True:
            self.add(child(p, "nullable"), "nullable cannot be true at the root")
        if ctx.status:
            for k, v in s.items():
                if k not in ROOT_KEYWORDS and not is_zero(v):
                    self.add(child(p, k), "is not allowed at the root of the schema when the "
                                          "status subresource is enabled")

    def resource_meta_rules(self, s, p, ctx):
        """apiVersion, kind and metadata of the root object or an embedded one."""
        props = s.get("properties", {})
        pp = child(p, "properties")
        for k in ("apiVersion", "kind"):
            if is_map(props.get(k)) and props[k].get("type") != "string":
                self.add(child(key(pp, k), "type"), "must be string")
        meta = props.get("metadata")
        if not is_map(meta):
            return
        mp = key(pp, "metadata")
        if meta.get("type") != "object":
            self.add(child(mp, "type"), "must be object")
        mprops = meta.get("properties")
        if is_map(mprops):
            for k in ("name", "generateName"):
                if is_map(mprops.get(k)) and mprops[k].get("type") != "string":
                    self.langop(child(key(child(mp, "properties"), k), "type"), "must be string")
        if ctx.level != "root":
            return
        # Zero values (false, "", []) are as good as unset to kube-apiserver.
        extra = [k for k, v in meta.items()
                 if k not in ("type", "properties", "default") and not is_zero(v)]
        if is_map(mprops) and not set(mprops) <= {"name", "generateName"}:
            extra.append("properties other than name and generateName")
        if extra:
            self.add(mp, "must not specify anything other than name and generateName, but "
                         "metadata is implicitly specified (found %s)" % ", ".join(extra))

    def extension_rules(self, s, p, ctx):
        ios = s.get("x-kubernetes-int-or-string") is True
        if ios and s.get("x-kubernetes-preserve-unknown-fields") is True:
            self.add(child(p, "x-kubernetes-preserve-unknown-fields"),
                     "must be false if x-kubernetes-int-or-string is true")
        if ios and s.get("x-kubernetes-embedded-resource") is True:
            self.add(child(p, "x-kubernetes-embedded-resource"),
                     "must be false if x-kubernetes-int-or-string is true")
        if s.get("x-kubernetes-preserve-unknown-fields") is False:
            self.add(child(p, "x-kubernetes-preserve-unknown-fields"), "must be true or undefined")
        if s.get("x-kubernetes-embedded-resource") is True:
            if ctx.in_meta:
                self.add(child(p, "x-kubernetes-embedded-resource"),
                         "must not be used inside of resource meta")
            if s.get("x-kubernetes-preserve-unknown-fields") is not True \
                    and not s.get("properties"):
                self.add(child(p, "properties"), "must not be empty if "
                         "x-kubernetes-embedded-resource is true without "
                         "x-kubernetes-preserve-unknown-fields")
        mt = s.get("x-kubernetes-map-type")
        if mt is not None:
            if s.get("type") != "object":
                self.add(child(p, "type"), "must be object if x-kubernetes-map-type is specified")
            if mt not in ("atomic", "granular"):
                self.add(child(p, "x-kubernetes-map-type"), "must be atomic or granular")

    def list_rules(self, s, p):
        lt = s.get("x-kubernetes-list-type")
        keys = s.get("x-kubernetes-list-map-keys")
        items = s.get("items") if is_map(s.get("items")) else None
        ltp = child(p, "x-kubernetes-list-type")
        if lt is not None:
            if s.get("type") != "array":
                self.add(child(p, "type"), "must be array if x-kubernetes-list-type is specified")
            if lt not in ("atomic", "set", "map"):
                self.add(ltp, "must be atomic, set or map, not \"%s\"" % lt)
        if keys and lt != "map":
            self.add(ltp, "must be map if x-kubernetes-list-map-keys is non-empty")
        if lt in ("set", "map") and items is not None and items.get("nullable") is True:
            self.add(child(p, "items.nullable"), "cannot be nullable when x-kubernetes-list-type "
                                                 "is %s" % lt)
        if lt == "set" and items is not None:
            if items.get("type") == "array" and items.get("x-kubernetes-list-type", "atomic") \
                    != "atomic":
                self.add(child(p, "items.x-kubernetes-list-type"),
                         "must be atomic as item of a list with x-kubernetes-list-type=set")
            if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
                self.add(child(p, "items.x-kubernetes-map-type"),
                         "must be atomic as item of a list with x-kubernetes-list-type=set")
        if lt != "map":
            return
        kp = child(p, "x-kubernetes-list-map-keys")
        if not keys:
            self.add(kp, "must not be empty if x-kubernetes-list-type is map")
        if "items" not in s:
            self.add(child(p, "items"), "must have a schema if x-kubernetes-list-type is map")
        if items is None:
            return
        if items.get("type") != "object":
            self.add(child(p, "items.type"), "must be object if parent array's "
                                             "x-kubernetes-list-type is map")
            return
        iprops = items.get("properties") if is_map(items.get("properties")) else {}
        required = items.get("required") if is_list(items.get("required")) else []
        for n, k in enumerate(keys or []):
            kprop = iprops.get(k)
            ip = key(child(p, "items.properties"), k)
            if not is_map(kprop):
                self.add(kp, "entries must all be names of item properties (%s is not)" % k)
                continue
            if kprop.get("type") in ("array", "object"):
                self.add(child(ip, "type"), "must be a scalar type if parent array's "
                                            "x-kubernetes-list-type is map")
            if k in keys[:n]:
                self.add(kp, "must not contain duplicate entries (%s)" % k)
            if k not in required and "default" not in kprop:
                self.add(child(ip, "default"), "this property is in x-kubernetes-list-map-keys, "
                                               "so it must have a default or be a required "
                                               "property")
            if kprop.get("nullable") is True:
                self.add(child(ip, "nullable"), "this property is in x-kubernetes-list-map-keys, "
                                                "so it cannot be nullable")

    def validation_rules(self, s, p, ctx):
        rules = s.get("x-kubernetes-validations")
        if rules is None:
            return
        for i, r in enumerate(rules):
            rp = index(child(p, "x-kubernetes-validations"), i)
            r = self.fields(r, rp, RULE_FIELDS, "ValidationRule")
            rule = self.get(r, "rule", rp, "string", required=True)
            msg = self.get(r, "message", rp, "string")
            msg_expr = self.get(r, "messageExpression", rp, "string")
            reason = self.get(r, "reason", rp, "string")
            fpath = self.get(r, "fieldPath", rp, "string")
            opt_old = self.get(r, "optionalOldSelf", rp, "bool")
            if rule is not None and not rule.strip():
                self.add(child(rp, "rule"), "rule is not specified")
            elif msg is not None and not msg.strip():
                self.add(child(rp, "message"), "must be non-empty if specified")
            elif msg is not None and re.search(r"[\r\n]", msg.strip()):
                self.add(child(rp, "message"), "must not contain line breaks")
            elif rule is not None and re.search(r"[\r\n]", rule.strip()) \
                    and not (msg or "").strip():
                self.add(child(rp, "message"), "message must be specified if rule contains "
                                               "line breaks")
            if msg_expr is not None and not msg_expr.strip():
                self.add(child(rp, "messageExpression"), "messageExpression must be non-empty "
                                                         "if specified")
            if reason is not None and reason not in RULE_REASONS:
                self.add(child(rp, "reason"), "must be one of %s" % ", ".join(RULE_REASONS))
            if fpath is not None:
                self.check_rule_field_path(s, fpath, child(rp, "fieldPath"))
            if not rule or not rule.strip():
                continue
            problem, code = cel_scan(rule)
            if problem:
                self.langop(child(rp, "rule"), "is not a well-formed CEL expression: " + problem)
                continue
            uses_old = re.search(r"\boldSelf\b", code) is not None
            if uses_old and ctx.uncorrelatable is not None:
                self.add(child(rp, "rule"), "oldSelf cannot be used on the uncorrelatable "
                                            "portion of the schema within %s" % ctx.uncorrelatable)
            if opt_old is not None and not uses_old:
                self.add(child(rp, "optionalOldSelf"), "may not be set if oldSelf is not used "
                                                       "in rule")
            self.check_rule_fields(s, code, child(rp, "rule"))

    def check_rule_field_path(self, s, fpath, fp):
        if not fpath.strip():
            self.add(fp, "must be non-empty if specified")
        elif re.search(r"[\r\n]", fpath):
            self.add(fp, "must not contain line breaks")
        else:
            segs = parse_path(fpath, filters=False)
            if segs is None or not segs or resolve(s, segs) is None:
                self.add(fp, "must be a valid path")

    def check_rule_fields(self, s, code, rp):
        props = s.get("properties")
        if s.get("type") != "object" or not is_map(props) or "additionalProperties" in s \
                or s.get("x-kubernetes-preserve-unknown-fields") is True:
            return
        for m in _SELF_FIELD.finditer(code):
            name = m.group(2)
            if name in CEL_RESERVED:
                self.langop(rp, "%s.%s: %s is a CEL reserved word; write __%s__"
                            % (m.group(1), name, name, name))
            elif cel_property(name) not in props:
                self.langop(rp, "%s.%s names no property of this node" % (m.group(1), name))

    def value_rules(self, s, p):
        pattern = s.get("pattern")
        if pattern is not None:
            problem = go_regexp_problem(pattern)
            if problem:
                self.add(child(p, "pattern"), "must be a valid regular expression, but "
                                              "isn't: %s" % problem)
        fmt = s.get("format")
        if fmt:
            t = s.get("type") or ""
            norm = fmt.replace("-", "")
            if t in ("", "string"):
                if norm in NEWER_STRING_FORMATS:
                    self.add(child(p, "format"), "\"%s\" is recognized only from Kubernetes "
                                                 "1.34 on; older clusters ignore it" % fmt)
                elif norm not in STRING_FORMATS:
                    self.add(child(p, "format"), "\"%s\" is not a format kube-apiserver "
                                                 "recognizes for strings; it would be ignored"
                             % fmt)
            elif fmt not in NUMBER_FORMATS.get(t, ()):
                self.add(child(p, "format"), "\"%s\" is not a format kube-apiserver recognizes "
                                             "for type %s; it would be ignored" % (fmt, t))
        t = s.get("type")
        for i, e in enumerate(s.get("enum", [])):
            if e is None and s.get("nullable") is True:
                continue
            if s.get("x-kubernetes-int-or-string") is True and not t:
                if not (is_int(e) or is_str(e)):
                    self.langop(index(child(p, "enum"), i), "enum value %s is neither an integer "
                                "nor a string" % json.dumps(e))
            elif t and not type_ok(e, t):
                self.langop(index(child(p, "enum"), i), "enum value %s is not of type %s"
                            % (json.dumps(e), t))
        props = s.get("properties")
        if is_map(props) and "additionalProperties" not in s \
                and s.get("x-kubernetes-preserve-unknown-fields") is not True:
            for i, name in enumerate(s.get("required", [])):
                if name not in props:
                    self.langop(index(child(p, "required"), i), "\"%s\" is not a property of "
                                                               "this node" % name)

    def default_rules(self, s, p, ctx):
        if "default" not in s or ctx.nested:
            return
        dp = child(p, "default")
        if ctx.no_default:
            self.add(dp, "must not be set " + ctx.no_default)
            return
        value = s["default"]
        if value is None:
            if s.get("nullable") is not True:
                self.add(dp, "must not be null")
            return
        for vp, msg in value_problems(value, s, dp):
            self.add(vp, msg)
        dropped = pruned_fields(value, s, dp)
        if dropped:
            self.add(dp, "must not have unknown fields (pruning drops %s)" % ", ".join(dropped))

    def children(self, s, p, ctx):
        props = s.get("properties", {})
        resource = ctx.level == "root" or s.get("x-kubernetes-embedded-resource") is True
        correlatable = s.get("x-kubernetes-map-type") != "atomic"
        for name, sub in props.items():
            c = ctx.but(level="field")
            if not correlatable and c.uncorrelatable is None:
                c.uncorrelatable = p
            if resource and name in META_FIELDS and not ctx.nested:
                c.in_meta = True
                if ctx.level == "root":
                    c.no_default = "in top-level %s" % name
            self.node(sub, key(child(p, "properties"), name), c)
        items = s.get("items")
        if is_map(items):
            c = ctx.but(level="item")
            if s.get("x-kubernetes-list-type") != "map" and c.uncorrelatable is None:
                c.uncorrelatable = p
            self.node(items, child(p, "items"), c)
        addl = s.get("additionalProperties")
        if is_map(addl):
            c = ctx.but(level="field")
            if ctx.in_meta:
                c.no_default = "inside additionalProperties applying to object metadata"
            self.node(addl, child(p, "additionalProperties"), c)
        nested = ctx.but(nested=True)
        for j in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(s.get(j, [])):
                if self.int_or_string_pattern(s, j, i):
                    continue
                self.node(sub, index(child(p, j), i), nested)
                self.complete(sub, s, p, index(child(p, j), i))
        if "not" in s:
            self.node(s["not"], child(p, "not"), nested)
            self.complete(s["not"], s, p, child(p, "not"))

    @staticmethod
    def int_or_string_pattern(s, junctor, i):
        """Whether s.<junctor>[i] is one of the two allowed int-or-string spellings."""
        if junctor == "anyOf":
            return s.get("anyOf") == INT_OR_STRING_ANY_OF
        if junctor == "allOf" and i == 0:
            first = s["allOf"][0]
            return is_map(first) and first.get("anyOf") == INT_OR_STRING_ANY_OF
        return False

    def complete(self, v, s, sp, vp):
        """Every property and items a value validation names exist structurally."""
        if not is_map(v):
            return
        if not is_map(s):
            self.add(sp, "is required because it is defined in %s" % vp)
            return
        if is_map(v.get("items")):
            self.complete(v["items"], s.get("items"), child(sp, "items"), child(vp, "items"))
        sprops = s.get("properties") if is_map(s.get("properties")) else {}
        for name, sub in (v.get("properties") or {}).items() if is_map(v.get("properties")) \
                else ():
            if name not in sprops:
                self.add(key(child(sp, "properties"), name), "is required because it is defined "
                         "in %s" % key(child(vp, "properties"), name))
            else:
                self.complete(sub, sprops[name], key(child(sp, "properties"), name),
                              key(child(vp, "properties"), name))
        for j in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(v.get(j, []) if is_list(v.get(j)) else []):
                self.complete(sub, s, sp, index(child(vp, j), i))
        if is_map(v.get("not")):
            self.complete(v["not"], s, sp, child(vp, "not"))


# ---------------------------------------------------------------- across files

def name_clashes(crds):
    """Names two CRDs of one group share: (file, path, message) each."""
    out = []
    for i, (rel, info) in enumerate(crds):
        for orel, other in crds[:i]:
            if info["group"] != other["group"] or not info["group"]:
                continue
            if info["name"] and info["name"] == other["name"]:
                out.append((rel, "metadata.name", "is also the name of %s" % orel))

            def words(names, keys):
                got = set()
                for k in keys:
                    v = names.get(k)
                    got |= set(v) if is_list(v) else ({v} if is_str(v) and v else set())
                return got
            resource_keys = ("plural", "singular", "shortNames")
            for keys, what in ((resource_keys, "resource names"), (("kind", "listKind"), "kinds")):
                shared = words(info["names"], keys) & words(other["names"], keys)
                if shared:
                    out.append((rel, "spec.names", "%s %s also used by %s"
                                % (what, ", ".join(sorted(shared)), orel)))
    return out


def check_file(path):
    """(problems, info or None, schema nodes) of one file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    docs, problems = load_documents(text)
    if docs is None:
        return problems, None, 0
    docs = [d for d in docs if d is not None]
    if len(docs) != 1:
        return problems + [("", "must hold exactly one YAML document, not %d" % len(docs))], None, 0
    fc = FileChecker()
    info = fc.check(docs[0])
    return problems + fc.problems, info, fc.nodes


def run(root, files=None, out=sys.stdout):
    """Check the files (default: root/openapi/*.yaml); print; return the status."""
    if files is None:
        files = sorted(glob.glob(os.path.join(root, "openapi", "*.yaml")))
    lines, crds, nodes = [], [], 0
    if not files:
        lines.append("openapi: no schema file found")
    for path in files:
        rel = os.path.relpath(path, root)
        if rel.startswith(".."):
            rel = path
        problems, info, n = check_file(path)
        nodes += n
        lines += ["%s: %s: %s" % (rel, p, m) if p else "%s: %s" % (rel, m) for p, m in problems]
        if info is not None:
            crds.append((rel, info))
    lines += ["%s: %s: %s" % clash for clash in name_clashes(crds)]
    for line in lines:
        print(line, file=out)
    print("crd-schemas: %d files, %d schema nodes, %d problems" % (len(files), nodes, len(lines)),
          file=out)
    return 1 if lines else 0


def main(argv=None):
    """Command line: check_crd_schemas.py [--root DIR] [FILE...]."""
    default = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default,
                        help="repository root (default: %(default)s)")
    parser.add_argument("files", nargs="*", help="files to check (default: ROOT/openapi/*.yaml)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        print("check_crd_schemas: no such folder: %s" % args.root, file=sys.stderr)
        return 2
    for f in args.files:
        if not os.path.isfile(f):
            print("check_crd_schemas: no such file: %s" % f, file=sys.stderr)
            return 2
    root = os.path.abspath(args.root)
    return run(root, [os.path.abspath(f) for f in args.files] or None)


if __name__ == "__main__":
    sys.exit(main())
