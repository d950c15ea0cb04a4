#!/usr/bin/python3
"""Checks the golden gateway configs the way the LiteLLM proxy reads them.

The C checker in tests/unit/test_render.c reads the YAML with this
project's codec. The proxy reads it with PyYAML (YAML 1.1), which turns
some plain scalars into other types (2024-06-01 -> a date, 1:30 -> 90).
This script loads every tests/golden/gateway-*.yaml with yaml.safe_load and
checks that each scalar keeps the type JSON gives it, then applies the
reference §7 rules (explicit provider prefix, fallback targets in
model_list, every os.environ/ variable backed by a secretKeyRef in the
matching .env.json).

Run: /usr/bin/python3 tests/golden/check_litellm.py   (needs python3-yaml)
"""
import glob
import json
import os
import re
import sys

import yaml

PREFIX = re.compile(r"^[a-z0-9_]+/.+")
JSON_TYPES = (str, int, float, bool, type(None), list, dict)


def scalars(value, path):
    """Yields (path, value) for every scalar of a loaded tree."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from scalars(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from scalars(v, f"{path}[{i}]")
    else:
        yield path, value


def check(path):
    problems = []
    with open(path) as f:
        doc = yaml.safe_load(f)
    with open(path[: -len(".yaml")] + ".env.json") as f:
        env = json.load(f)["env"]
    for where, v in scalars(doc, ""):
        if not isinstance(v, JSON_TYPES):
            problems.append(f"{where}: PyYAML reads {v!r} as {type(v).__name__}, not a string")
    names = set()
    for m in doc.get("model_list") or []:
        names.add(m["model_name"])
        if not PREFIX.match(str(m["litellm_params"].get("model", ""))):
            problems.append(f"{m['model_name']}: no explicit provider prefix")
    for section in ("router_settings", "litellm_settings"):
        for entry in (doc.get(section) or {}).get("fallbacks") or []:
            for src, targets in entry.items():
                for t in [src] + list(targets):
                    if t not in names:
                        problems.append(f"{section}.fallbacks: {t} is not in model_list")
    refs = {e["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
    for where, v in scalars(doc, ""):
        if isinstance(v, str) and v.startswith("os.environ/") and v[len("os.environ/"):] not in refs:
            problems.append(f"{where}: {v} has no secretKeyRef")
    return problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    failed = 0
    for path in sorted(glob.glob(os.path.join(here, "gateway-*.yaml"))):
        for p in check(path):
            print(f"{os.path.basename(path)}: {p}")
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main())
