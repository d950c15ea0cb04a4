#!/usr/bin/python3
"""Tests for check_crd_schemas.py: each plants one fault in a copy of a real
schema file (openapi/*.yaml) and asserts the checker reports it, and only it;
plus the real tree passing and the command line's exit codes.

A planted copy is compared with an untouched copy of the same tree, so a
problem that is already in the real files (someone's work in progress) does
not hide or fake the planted one; test_real_tree_passes reports those.

Run: /usr/bin/python3 tests/tools/test_check_crd_schemas.py
"""

import copy
import io
import os
import subprocess
import sys
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "check_crd_schemas.py")
sys.path.insert(0, HERE)
import check_crd_schemas as crd  # noqa: E402

KINDS = ["agents", "clusters", "models", "personas", "tools"]
P = "spec.versions[0].schema.openAPIV3Schema"


def real_path(kind):
    return os.path.join(ROOT, "openapi", "language%s.yaml" % kind)


def load_real(kind):
    with open(real_path(kind), encoding="utf-8") as f:
        return yaml.load(f, Loader=crd.CRDLoader)


REAL = {k: load_real(k) for k in KINDS}


def dump(doc):
    return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                     allow_unicode=True, width=1000)


DUMPED = {k: dump(REAL[k]) for k in KINDS}


# ---- where to plant: schema nodes by a dotted name ("spec.env[]" = items)

def schema(doc):
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def at(doc, dotted):
    """The schema node spec.deployment.env[] -> ...properties.env.items."""
    node = schema(doc)
    for part in dotted.split(".") if dotted else []:
        name, items = (part[:-2], True) if part.endswith("[]") else (part, False)
        node = node["properties"][name]
        if items:
            node = node["items"]
    return node


def sp(dotted):
    """The path the checker prints for the node at(doc, dotted)."""
    out = P
    for part in dotted.split(".") if dotted else []:
        name, items = (part[:-2], True) if part.endswith("[]") else (part, False)
        out += ".properties[%s]" % name
        if items:
            out += ".items"
    return out


def version(doc):
    return doc["spec"]["versions"][0]


def rule(doc, dotted):
    return at(doc, dotted)["x-kubernetes-validations"][0]


class Tree:
    """A temporary copy of the five schema files under openapi/."""

    def __init__(self, texts):
        self.tmp = tempfile.TemporaryDirectory()
        os.makedirs(os.path.join(self.tmp.name, "openapi"))
        for kind, text in texts.items():
            with open(os.path.join(self.tmp.name, "openapi", "language%s.yaml" % kind), "w",
                      encoding="utf-8") as f:
                f.write(text)

    def problems(self):
        out = io.StringIO()
        status = crd.run(self.tmp.name, out=out)
        lines = out.getvalue().splitlines()
        assert lines[-1].startswith("crd-schemas: "), lines
        return status, lines[:-1]


_BASELINE = []


def baseline():
    """The problems of an untouched copy of the real files (computed once)."""
    if not _BASELINE:
        base = Tree(dict(DUMPED))
        _BASELINE.append(base.problems()[1])
        base.tmp.cleanup()
    return _BASELINE[0]


def planted_problems(texts):
    """(status, lines the planted tree has and the untouched copy has not)."""
    before = baseline()
    tree = Tree(texts)
    status, after = tree.problems()
    tree.tmp.cleanup()
    return status, [line for line in after if line not in before]


class PlantedFault(unittest.TestCase):
    """One planted fault per test (generated from CASES below)."""

    maxDiff = None

    def plant(self, kind, mutate):
        doc = copy.deepcopy(REAL[kind])
        mutate(doc)
        texts = dict(DUMPED)
        texts[kind] = dump(doc)
        return planted_problems(texts)

    def expect(self, kind, mutate, expected):
        """expected: (path, fragment) pairs, one per reported line, in order."""
        status, lines = self.plant(kind, mutate)
        self.assertEqual(len(lines), len(expected), "\n".join(lines))
        for line, (path, fragment) in zip(lines, expected):
            prefix = "openapi/language%s.yaml: %s: " % (kind, path)
            self.assertTrue(line.startswith(prefix), "%s\n  does not start with\n%s"
                            % (line, prefix))
            self.assertIn(fragment, line)
        self.assertEqual(status, 1 if expected else 0)


def setter(dotted, k, value):
    def mutate(doc):
        at(doc, dotted)[k] = value
    return mutate


def deleter(dotted, k):
    def mutate(doc):
        del at(doc, dotted)[k]
    return mutate


def do(*fns):
    def mutate(doc):
        for fn in fns:
            fn(doc)
    return mutate


def columns(doc, i):
    return version(doc)["additionalPrinterColumns"][i]


RULES = sp("spec") + ".x-kubernetes-validations[0]"
RESOLVED = [c["name"] for c in version(REAL["agents"])["additionalPrinterColumns"]] \
    .index("Resolved")
COL0 = "spec.versions[0].additionalPrinterColumns[0]"
NOT_SUPPORTED = [("$ref", "#/definitions/Image"), ("$schema", "http://json-schema.org/schema#"),
                 ("id", "image"), ("definitions", {"a": {"type": "string"}}),
                 ("dependencies", {"a": ["b"]}), ("additionalItems", False),
                 ("patternProperties", {"^a": {"type": "string"}})]

# (test name, file, mutation, [(path, fragment), ...]); [] means "no problem".
CASES = [
    # metadata at the root: the fault of issue 10
    ("metadata_description", "tools", setter("metadata", "description", "Object metadata."),
     [(sp("metadata"), "must not specify anything other than name and generateName")]),
    ("metadata_other_property", "personas",
     setter("metadata", "properties", {"labels": {"type": "object"}}),
     [(sp("metadata"), "properties other than name and generateName")]),
    ("metadata_value_validation", "models", setter("metadata", "maxProperties", 3),
     [(sp("metadata"), "found maxProperties")]),
    ("metadata_name_restricted_ok", "models",
     setter("metadata", "properties", {"name": {"type": "string", "maxLength": 40}}), []),
    ("metadata_zero_values_ok", "tools",
     lambda d: at(d, "metadata").update(nullable=False, description=""), []),
    ("metadata_not_object", "tools", setter("metadata", "type", "string"),
     [(sp("metadata") + ".type", "must be object")]),
    ("metadata_name_not_string", "clusters", setter("metadata.name", "type", "integer"),
     [(sp("metadata.name") + ".type", "must be string (langop rule)")]),
    ("metadata_default", "tools", setter("metadata", "default", {}),
     [(sp("metadata") + ".default", "must not be set in top-level metadata")]),
    ("kind_not_string", "personas", setter("kind", "type", "integer"),
     [(sp("kind") + ".type", "must be string")]),
    # structural: types and items
    ("untyped_field", "tools", deleter("spec.image", "type"),
     [(sp("spec.image") + ".type", "must not be empty for specified object fields")]),
    ("untyped_item", "models", deleter("spec.fallbacks[]", "type"),
     [(sp("spec.fallbacks[]") + ".type", "must not be empty for specified array items")]),
    ("untyped_preserved_ok", "models", deleter("spec.params", "type"), []),
    ("array_without_items", "agents", deleter("status.models", "items"),
     [(sp("status.models") + ".items", "must be specified")]),
    ("items_as_list", "models", setter("spec.fallbacks", "items", [{"type": "string"}]),
     [(sp("spec.fallbacks") + ".items", "must be a schema object and not an array")]),
    ("type_null", "tools", setter("spec.image", "type", "null"),
     [(sp("spec.image") + ".type", "use nullable")]),
    ("type_unknown", "tools", setter("spec.image", "type", "str"),
     [(sp("spec.image") + ".type", "must be one of array, boolean")]),
    ("root_not_object", "personas", setter("", "type", "array"),
     [(P + ".items", "must be specified"), (P + ".type", "must be object at the root")]),
    ("root_nullable", "personas", setter("", "nullable", True),
     [(P + ".nullable", "cannot be true at the root"),
      (P + ".nullable", "is not allowed at the root")]),
    ("root_keyword_with_status", "personas", setter("", "minProperties", 1),
     [(P + ".minProperties", "when the status subresource is enabled")]),
    ("additional_properties_at_root", "personas",
     setter("", "additionalProperties", {"type": "string"}),
     [(P + ".additionalProperties", "must not be used at the root"),
      (P + ".additionalProperties", "mutual exclusive"),
      (P + ".additionalProperties", "is not allowed at the root")]),
    ("additional_properties_beside_properties", "tools",
     setter("spec.deployment", "additionalProperties", {"type": "string"}),
     [(sp("spec.deployment") + ".additionalProperties", "mutual exclusive")]),
    ("additional_properties_true_ok", "tools",
     setter("spec.deployment", "additionalProperties", True), []),
    # forbidden keywords
    ("unique_items", "models", setter("spec.fallbacks", "uniqueItems", True),
     [(sp("spec.fallbacks") + ".uniqueItems", "quadratic")]),
] + [
    ("unsupported_" + k.strip("$"), "tools", setter("spec.image", k, v),
     [(sp("spec.image") + "." + k, "%s is not supported" % k)]) for k, v in NOT_SUPPORTED
] + [
    ("unknown_keyword", "tools", setter("spec.image", "descripton", "typo"),
     [(sp("spec.image"), 'unknown field "descripton"')]),
    ("keyword_wrong_shape", "tools", setter("spec.port", "minimum", "1"),
     [(sp("spec.port") + ".minimum", "must be a number")]),
    ("negative_length", "tools", setter("spec.image", "minLength", -1),
     [(sp("spec.image") + ".minLength", "must be a non-negative integer")]),
    ("required_not_a_property", "tools", setter("spec", "required", ["image", "imag"]),
     [(sp("spec") + ".required[1]", '"imag" is not a property of this node (langop rule)')]),
    # allOf / anyOf / oneOf / not
    ("nested_description", "tools",
     setter("spec", "anyOf", [{"required": ["image"], "description": "with an image"}]),
     [(sp("spec") + ".anyOf[0].description", "must not be set inside allOf/anyOf/oneOf/not")]),
    ("nested_type", "tools", setter("spec.image", "anyOf", [{"type": "string"}]),
     [(sp("spec.image") + ".anyOf[0].type", "must not be set inside")]),
    ("nested_property_not_structural", "tools",
     setter("spec", "oneOf", [{"properties": {"imag": {"minLength": 1}}}]),
     [(sp("spec") + ".properties[imag]",
       "is required because it is defined in %s.oneOf[0].properties[imag]" % sp("spec"))]),
    ("nested_validations", "tools",
     setter("spec", "allOf", [{"x-kubernetes-validations": [{"rule": "true"}]}]),
     [(sp("spec") + ".allOf[0].x-kubernetes-validations", "must not be set inside")]),
    ("nested_metadata", "tools", setter("spec", "not", {"properties": {"metadata": {}}}),
     [(sp("spec") + ".not.properties[metadata]", "must not be specified in a nested context"),
      (sp("spec") + ".properties[metadata]", "is required because it is defined in")]),
    ("int_or_string_any_of_ok", "clusters",
     lambda d: at(d, "spec.gateway.resources.limits")["additionalProperties"].update(
         anyOf=[{"type": "integer"}, {"type": "string"}]), []),
    # extensions
    ("preserve_unknown_false", "models",
     setter("spec.params", "x-kubernetes-preserve-unknown-fields", False),
     [(sp("spec.params") + ".x-kubernetes-preserve-unknown-fields", "must be true or undefined")]),
    ("int_or_string_and_preserve", "clusters",
     lambda d: at(d, "spec.gateway.resources.limits")["additionalProperties"].update(
         {"x-kubernetes-preserve-unknown-fields": True}),
     [(sp("spec.gateway.resources.limits") + ".additionalProperties."
       "x-kubernetes-preserve-unknown-fields", "must be false if x-kubernetes-int-or-string")]),
    ("embedded_resource_not_object", "tools",
     lambda d: at(d, "spec.deployment.env[].valueFrom").update(
         {"type": "string", "x-kubernetes-embedded-resource": True}),
     [(sp("spec.deployment.env[].valueFrom") + ".type",
       "must be object if x-kubernetes-embedded-resource")]),
    ("map_type_unknown", "tools", setter("spec.deployment", "x-kubernetes-map-type", "merge"),
     [(sp("spec.deployment") + ".x-kubernetes-map-type", "must be atomic or granular")]),
    # lists
    ("list_map_key_optional", "agents",
     lambda d: at(d, "spec.models[]")["required"].remove("name"),
     [(sp("spec.models") + ".items.properties[name].default",
       "must have a default or be a required property")]),
    ("list_map_key_not_a_property", "agents",
     setter("spec.tools", "x-kubernetes-list-map-keys", ["id"]),
     [(sp("spec.tools") + ".x-kubernetes-list-map-keys", "entries must all be names of item")]),
    ("list_map_key_not_scalar", "personas", setter("status.conditions[].type", "type", "object"),
     [(sp("status.conditions") + ".items.properties[type].type", "must be a scalar type")]),
    ("list_map_key_nullable", "tools", setter("status.conditions[].type", "nullable", True),
     [(sp("status.conditions") + ".items.properties[type].nullable", "cannot be nullable")]),
    ("list_type_map_without_keys", "agents", deleter("spec.ports", "x-kubernetes-list-map-keys"),
     [(sp("spec.ports") + ".x-kubernetes-list-map-keys", "must not be empty if")]),
    ("list_map_keys_without_map", "agents", deleter("spec.ports", "x-kubernetes-list-type"),
     [(sp("spec.ports") + ".x-kubernetes-list-type", "must be map if x-kubernetes-list-map-keys")]),
    ("list_type_on_object", "tools", setter("spec.deployment", "x-kubernetes-list-type", "atomic"),
     [(sp("spec.deployment") + ".type", "must be array if x-kubernetes-list-type")]),
    ("list_type_unknown", "models", setter("spec.fallbacks", "x-kubernetes-list-type", "bag"),
     [(sp("spec.fallbacks") + ".x-kubernetes-list-type", "must be atomic, set or map")]),
    ("set_of_granular_objects", "clusters",
     setter("spec.gateway.tolerations", "x-kubernetes-list-type", "set"),
     [(sp("spec.gateway.tolerations") + ".items.x-kubernetes-map-type", "must be atomic")]),
    # x-kubernetes-validations
    ("rule_empty", "models", lambda d: rule(d, "spec").update(rule="  "),
     [(RULES + ".rule", "rule is not specified")]),
    ("rule_message_two_lines", "models", lambda d: rule(d, "spec").update(message="one\ntwo"),
     [(RULES + ".message", "must not contain line breaks")]),
    ("rule_multiline_without_message", "agents",
     lambda d: at(d, "spec.execution")["x-kubernetes-validations"].__setitem__(
         0, {"rule": "!has(self.schedule) ||\nself.mode == 'task'"}),
     [(sp("spec.execution") + ".x-kubernetes-validations[0].message",
       "message must be specified if rule contains line breaks")]),
    ("rule_reason_unknown", "models", lambda d: rule(d, "spec").update(reason="FieldValueWrong"),
     [(RULES + ".reason", "must be one of FieldValueDuplicate")]),
    ("rule_unknown_field", "models", lambda d: rule(d, "spec").update(severity="high"),
     [(RULES + ".severity", 'unknown field "severity"')]),
    ("rule_unbalanced", "models",
     lambda d: rule(d, "spec").update(rule="has(self.provider != has(self.litellmProvider)"),
     [(RULES + ".rule", "is not a well-formed CEL expression: unclosed '(' (langop rule)")]),
    ("rule_unclosed_string", "agents",
     lambda d: rule(d, "spec.execution").update(rule="self.mode == 'task"),
     [(sp("spec.execution") + ".x-kubernetes-validations[0].rule",
       "string literal is not closed")]),
    ("rule_unknown_property", "models",
     lambda d: rule(d, "spec").update(rule="has(self.providr) != has(self.litellmProvider)"),
     [(RULES + ".rule", "self.providr names no property of this node (langop rule)")]),
    ("rule_optional_old_self_unused", "models",
     lambda d: rule(d, "spec").update(optionalOldSelf=True),
     [(RULES + ".optionalOldSelf", "may not be set if oldSelf is not used")]),
    ("rule_old_self_uncorrelatable", "clusters",
     setter("status.managedResources[]", "x-kubernetes-validations", [{"rule": "self == oldSelf"}]),
     [(sp("status.managedResources[]") + ".x-kubernetes-validations[0].rule",
       "oldSelf cannot be used on the uncorrelatable portion of the schema within "
       + sp("status.managedResources"))]),
    ("rule_old_self_in_map_list_ok", "agents",
     setter("spec.models[]", "x-kubernetes-validations", [{"rule": "self.name == oldSelf.name"}]),
     []),
    ("rule_field_path_unknown", "models", lambda d: rule(d, "spec").update(fieldPath=".providr"),
     [(RULES + ".fieldPath", "must be a valid path")]),
    ("rule_field_path_ok", "models", lambda d: rule(d, "spec").update(fieldPath=".provider"), []),
    # value keywords
    ("format_unknown", "tools", setter("status.endpoint", "format", "url"),
     [(sp("status.endpoint") + ".format",
       "is not a format kube-apiserver recognizes for strings")]),
    ("format_integer_on_string", "tools", setter("spec.image", "format", "int32"),
     [(sp("spec.image") + ".format", "recognizes for strings")]),
    ("format_on_boolean", "agents", setter("spec.tools[].enabled", "format", "int32"),
     [(sp("spec.tools[].enabled") + ".format", "for type boolean")]),
    ("enum_value_of_other_type", "models",
     lambda d: at(d, "spec.provider")["enum"].append(True),
     [(sp("spec.provider") + ".enum[%d]" % len(at(REAL["models"], "spec.provider")["enum"]),
       "enum value true is not of type string (langop rule)")]),
    ("pattern_invalid", "tools", setter("spec.image", "pattern", "([a-z]"),
     [(sp("spec.image") + ".pattern", "must be a valid regular expression")]),
    ("pattern_lookahead", "tools", setter("spec.image", "pattern", "^(?!-)[a-z-]+$"),
     [(sp("spec.image") + ".pattern", "RE2 has no lookahead")]),
    # defaults
    ("default_wrong_type", "tools", setter("spec.port", "default", "8080"),
     [(sp("spec.port") + ".default", "must be of type integer")]),
    ("default_not_in_enum", "tools", setter("spec.transport", "default", "websocket"),
     [(sp("spec.transport") + ".default", "must be one of the enum values")]),
    ("default_against_pattern", "models", setter("spec.timeout", "default", "5 minutes"),
     [(sp("spec.timeout") + ".default", "must match the pattern")]),
    ("default_out_of_range", "tools", setter("spec.port", "default", 70000),
     [(sp("spec.port") + ".default", "must be <= 65535")]),
    ("default_unknown_field", "models",
     setter("spec.apiKeySecretRef", "default", {"name": "keys", "kee": "api-key"}),
     [(sp("spec.apiKeySecretRef") + ".default",
       "must not have unknown fields (pruning drops %s.default.kee)"
       % sp("spec.apiKeySecretRef"))]),
    ("default_missing_required", "models",
     setter("spec.apiKeySecretRef", "default", {"key": "api-key"}),
     [(sp("spec.apiKeySecretRef") + ".default.name", "is required")]),
    ("default_valid_object_ok", "models",
     setter("spec.apiKeySecretRef", "default", {"name": "keys"}), []),
    # printer columns
    ("column_type", "tools", lambda d: columns(d, 0).update(type="text"),
     [(COL0 + ".type", "must be one of boolean,date,integer,number,string")]),
    ("column_format", "tools", lambda d: columns(d, 0).update(format="uuid"),
     [(COL0 + ".format", "must be one of byte,")]),
    ("column_path_without_dot", "tools", lambda d: columns(d, 0).update(jsonPath="spec.type"),
     [(COL0 + ".jsonPath", "must be a simple json path starting with .")]),
    ("column_path_unknown_field", "tools", lambda d: columns(d, 0).update(jsonPath=".spec.kind"),
     [(COL0 + ".jsonPath", '".spec.kind" names no field of the schema (langop rule)')]),
    ("column_filter_unknown_field", "agents",
     lambda d: columns(d, RESOLVED).update(
         jsonPath='.status.conditions[?(@.typ=="Ready")].status'),
     [("spec.versions[0].additionalPrinterColumns[%d].jsonPath" % RESOLVED,
       "names no field of the schema")]),
    ("column_unknown_field", "tools", lambda d: columns(d, 0).update(width=10),
     [(COL0 + ".width", 'unknown field "width"')]),
    # selectable fields
    ("selectable_object", "tools",
     lambda d: version(d).update(selectableFields=[{"jsonPath": ".spec.deployment"}]),
     [("spec.versions[0].selectableFields[0].jsonPath", "must point to a field of type string")]),
    ("selectable_metadata", "tools",
     lambda d: version(d).update(selectableFields=[{"jsonPath": ".metadata.name"}]),
     [("spec.versions[0].selectableFields[0].jsonPath", "must not point to fields in metadata")]),
    ("selectable_ok", "tools",
     lambda d: version(d).update(selectableFields=[{"jsonPath": ".spec.transport"}]), []),
    # names
    ("plural_upper_case", "tools", lambda d: d["spec"]["names"].update(plural="LanguageTools"),
     [("spec.names.plural", "must be a lower-case DNS-1035 label"),
      ("metadata.name", "must be spec.names.plural+\".\"+spec.group")]),
    ("list_kind_other", "models", lambda d: d["spec"]["names"].update(listKind="LanguageModels"),
     [("spec.names.listKind", "must be LanguageModelList, not LanguageModels (langop rule)")]),
    ("list_kind_is_kind", "models", lambda d: d["spec"]["names"].update(listKind="LanguageModel"),
     [("spec.names.listKind", "kind and listKind may not be the same"),
      ("spec.names.listKind", "(langop rule)")]),
    ("singular_other", "models", lambda d: d["spec"]["names"].update(singular="model"),
     [("spec.names.singular", "must be languagemodel, not model (langop rule)")]),
    ("short_name_invalid", "tools", lambda d: d["spec"]["names"]["shortNames"].append("L-Tool"),
     [("spec.names.shortNames[%d]" % len(REAL["tools"]["spec"]["names"]["shortNames"]),
       "must be a lower-case DNS-1035 label")]),
    ("names_unknown_field", "tools", lambda d: d["spec"]["names"].update(plurals="x"),
     [("spec.names.plurals", 'unknown field "plurals"')]),
    # the CRD object
    ("crd_name", "tools", lambda d: d["metadata"].update(name="tools.langop.io"),
     [("metadata.name", "must be spec.names.plural+\".\"+spec.group")]),
    ("crd_namespace", "tools", lambda d: d["metadata"].update(namespace="default"),
     [("metadata.namespace", "must not be set in a file to install")]),
    ("group_without_dot", "tools",
     do(lambda d: d["spec"].update(group="langop"),
        lambda d: d["metadata"].update(name="languagetools.langop")),
     [("spec.group", "should be a domain with at least one dot")]),
    ("protected_group", "tools",
     do(lambda d: d["spec"].update(group="langop.k8s.io"),
        lambda d: d["metadata"].update(name="languagetools.langop.k8s.io")),
     [("metadata.annotations[api-approved.kubernetes.io]", "is required")]),
    ("scope_unknown", "tools", lambda d: d["spec"].update(scope="Global"),
     [("spec.scope", "must be Cluster or Namespaced")]),
    ("spec_unknown_field", "tools", lambda d: d["spec"].update(validation={}),
     [("spec.validation", 'unknown field "validation"')]),
    ("preserve_unknown_fields_true", "tools",
     lambda d: d["spec"].update(preserveUnknownFields=True),
     [("spec.preserveUnknownFields", "cannot be true")]),
    ("not_v1", "tools", lambda d: d.update(apiVersion="apiextensions.k8s.io/v1beta1"),
     [("apiVersion", "must be apiextensions.k8s.io/v1")]),
    ("conversion_webhook_without_config", "tools",
     lambda d: d["spec"].update(conversion={"strategy": "Webhook", "webhook": {
         "conversionReviewVersions": ["v1"]}}),
     [("spec.conversion.webhook.clientConfig", "is required")]),
    # versions and subresources
    ("two_storage_versions", "tools",
     lambda d: d["spec"]["versions"].append(dict(copy.deepcopy(version(d)), name="v1beta1")),
     [("spec.versions", "must have exactly one version marked as storage version, not 2")]),
    ("no_storage_version", "tools", lambda d: version(d).update(storage=False),
     [("spec.versions", "not 0")]),
    ("duplicate_version", "tools",
     lambda d: d["spec"]["versions"].append(dict(copy.deepcopy(version(d)), storage=False)),
     [("spec.versions[1].name", "must be unique among the versions")]),
    ("version_name_invalid", "tools", lambda d: version(d).update(name="V1"),
     [("spec.versions[0].name", "must be a DNS-1035 label")]),
    ("version_without_schema", "tools", lambda d: version(d).pop("schema"),
     [(P, "is required")]),
    ("version_unknown_field", "tools", lambda d: version(d).update(servd=True),
     [("spec.versions[0].servd", 'unknown field "servd"')]),
    ("deprecation_warning_not_deprecated", "tools",
     lambda d: version(d).update(deprecationWarning="use v1"),
     [("spec.versions[0].deprecationWarning", "can only be set for deprecated versions")]),
    ("status_subresource_with_fields", "tools",
     lambda d: version(d)["subresources"].update(status={"enabled": True}),
     [("spec.versions[0].subresources.status", "must be {}")]),
    ("scale_path_outside_spec", "tools",
     lambda d: version(d)["subresources"].update(scale={
         "specReplicasPath": ".replicas", "statusReplicasPath": ".status.replicas"}),
     [("spec.versions[0].subresources.scale.specReplicasPath", "under .spec")]),
]


def make_test(kind, mutate, expected):
    def test(self):
        self.expect(kind, mutate, expected)
    return test


for _name, _kind, _mutate, _expected in CASES:
    assert not hasattr(PlantedFault, "test_" + _name), _name
    setattr(PlantedFault, "test_" + _name, make_test(_kind, _mutate, _expected))


class TextFaults(unittest.TestCase):
    """Faults that live in the YAML text, not in its data, and across files."""

    def texts(self):
        return dict(DUMPED)

    def test_duplicate_key(self):
        texts = self.texts()
        with open(real_path("tools"), encoding="utf-8") as f:
            text = f.read()
        anchor = "                image:\n                  type: string\n"
        self.assertIn(anchor, text)
        line = text[:text.index(anchor)].count("\n") + 3
        texts["tools"] = text.replace(anchor, anchor + "                  type: string\n", 1)
        status, lines = planted_problems(texts)
        self.assertEqual(status, 1)
        self.assertEqual(lines, ['openapi/languagetools.yaml: line %d: duplicate key "type"'
                                 % line])

    def test_two_documents(self):
        texts = self.texts()
        texts["personas"] += "---\napiVersion: v1\nkind: ConfigMap\n"
        status, lines = planted_problems(texts)
        self.assertEqual(lines, ["openapi/languagepersonas.yaml: must hold exactly one YAML "
                                 "document, not 2"])

    def test_not_yaml(self):
        texts = self.texts()
        texts["models"] = texts["models"].replace("spec:\n", "spec: [\n", 1)
        status, lines = planted_problems(texts)
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("openapi/languagemodels.yaml: not valid YAML: "))

    def test_name_clash_between_files(self):
        texts = self.texts()
        doc = copy.deepcopy(REAL["personas"])
        doc["spec"]["names"]["shortNames"] = ["ltool"]
        texts["personas"] = dump(doc)
        status, lines = planted_problems(texts)
        self.assertEqual(lines, ["openapi/languagetools.yaml: spec.names: resource names ltool "
                                 "also used by openapi/languagepersonas.yaml"])

    def test_too_big_for_kubectl_apply(self):
        texts = self.texts()
        doc = copy.deepcopy(REAL["tools"])
        at(doc, "spec.image")["description"] = "x" * 300000
        texts["tools"] = dump(doc)
        status, lines = planted_problems(texts)
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"^openapi/languagetools\.yaml: is \d+ bytes as JSON, more "
                                   r"than kubectl apply's last-applied annotation")


class RealTree(unittest.TestCase):
    """The checked-in files, and the command line."""

    def test_real_tree_passes(self):
        out = io.StringIO()
        status = crd.run(ROOT, out=out)
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[:-1], [])
        self.assertRegex(lines[-1], r"^crd-schemas: 5 files, \d+ schema nodes, 0 problems$")
        self.assertEqual(status, 0)

    def test_dumped_copies_pass_as_the_originals(self):
        tree = Tree(dict(DUMPED))
        self.addCleanup(tree.tmp.cleanup)
        status, lines = tree.problems()
        self.assertEqual(lines, [])

    def test_command_line(self):
        proc = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertRegex(proc.stdout, r"crd-schemas: 5 files, \d+ schema nodes, 0 problems\n$")

        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        doc = copy.deepcopy(REAL["tools"])
        at(doc, "metadata")["description"] = "Standard object metadata."
        bad = os.path.join(tmp.name, "languagetools.yaml")
        with open(bad, "w", encoding="utf-8") as f:
            f.write(dump(doc))
        proc = subprocess.run([sys.executable, SCRIPT, "--root", tmp.name, bad],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout.splitlines()[0],
                         "languagetools.yaml: %s: must not specify anything other than name and "
                         "generateName, but metadata is implicitly specified (found description)"
                         % sp("metadata"))
        self.assertRegex(proc.stdout.splitlines()[-1],
                         r"^crd-schemas: 1 files, \d+ schema nodes, 1 problems$")

        proc = subprocess.run([sys.executable, SCRIPT, "--root", os.path.join(tmp.name, "no")],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
