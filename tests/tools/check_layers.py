#!/usr/bin/python3
"""Check the include graph of langop-apiserver: layers and cycles.

1. Layers. Every source belongs to a layer by its folder (see LAYERS). A file
   may include headers of its own layer or of a lower one, never of a higher
   one. Layers keep each stage of a request independent of the stages above
   it: core knows nothing of storage, storage nothing of HTTP, and so on.
   A file outside any layer folder, in a folder that is no known layer, or a
   quoted include that resolves to no file is an error as well, so a stale
   path cannot pass silently.
2. Cycles. A .c file and the .h of the same base name in the same layer form
   one module (apiserver/request/decode.c + include/langop/request/decode.h =
   request/decode). Module A -> B when a file of A includes a header of B.
   Every strongly connected component of more than one module is reported
   with one actual cycle through it: modules in a cycle cannot be tested or
   replaced alone.

Mapping of paths to layers (relative to --root):
  apiserver/<layer>/...       -> <layer>
  include/langop/<layer>/...  -> <layer>
  storage/...                 -> storage
  openapi/...                 -> schema
  apiserver/main.c            -> main
Files under tests/ are not checked. System includes <...> are ignored.
Quoted includes resolve relative to the including file's folder first, then
against include/ (as meson's include_directories('include')).

Output: one line per problem, then "layers: N files, M modules, K problems".
Exit status 0 when there is no problem, 1 otherwise.
"""

import argparse
import os
import re
import sys
from collections import deque

# Layers, lowest first. A file may include headers of its own layer or of any
# layer to its left, never to its right.
# kube (the client of kube-apiserver) needs only core; it sits just above
# core so that nothing below the reconcile side can reach the network.
# reconcile (the reconcile thread) sits above what it uses (kube, the
# store's change feed, derive's renderers, and the API itself, through which
# it reads and writes status as any client would) and below http: it serves
# no request.
LAYERS = ["core", "kube", "storage", "schema", "derive", "request", "registry",
          "api", "reconcile", "http", "main"]

RANK = {name: i for i, name in enumerate(LAYERS)}
SOURCE_DIRS = ["apiserver", "storage", "openapi", os.path.join("include", "langop")]
INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.M)

# How a path is classified: (layer or None, module name, problem or None).
NOT_IN_LAYER = "not in a layer folder"
OUTSIDE = "outside the source folders"


def classify(rel):
    """Map a root-relative path to (layer, module, problem)."""
    parts = rel.replace(os.sep, "/").split("/")
    stem = os.path.splitext(parts[-1])[0]
    if parts[0] == "include" and len(parts) > 1 and parts[1] == "langop":
        parts = parts[1:]
    top, inner = parts[0], parts[1:]
    if top == "storage":
        return "storage", "/".join(["storage"] + inner[:-1] + [stem]), None
    if top == "openapi":
        return "schema", "/".join(["schema"] + inner[:-1] + [stem]), None
    if top in ("apiserver", "langop"):
        if inner == ["main.c"] and top == "apiserver":
            return "main", "main/main", None
        if len(inner) < 2:
            return None, "-/" + stem, NOT_IN_LAYER
        if inner[0] not in RANK:
            return None, "/".join(inner[:-1] + [stem]), \
                "in folder '%s', which is not a known layer" % inner[0]
        return inner[0], "/".join(inner[:-1] + [stem]), None
    return None, rel, OUTSIDE


def list_sources(root):
    """Every .c and .h under the source folders, as sorted relative paths."""
    found = []
    for sub in SOURCE_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, sub)):
            dirnames.sort()
            for name in filenames:
                if name.endswith((".c", ".h")):
                    found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(set(found))


def strip_comments(text):
    """Blank out C comments (keeping newlines); string literals are kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def quoted_includes(path):
    """The quoted #include targets of one file, in order."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return INCLUDE_RE.findall(strip_comments(f.read()))


def resolve(root, rel, target):
    """Root-relative path of an include target, or None when no file matches."""
    here = os.path.dirname(os.path.join(root, rel))
    for base in (here, os.path.join(root, "include")):
        cand = os.path.normpath(os.path.join(base, target))
        if os.path.isfile(cand):
            return os.path.relpath(cand, root)
    return None


def check_include(root, rel, layer, target, edges, module):
    """Problems of one include; records the module edge it makes."""
    dest = resolve(root, rel, target)
    if dest is None:
        return ["missing header: %s includes %s (no such file)" % (rel, target)]
    dlayer, dmodule, dproblem = classify(dest)
    if dproblem == OUTSIDE:
        return ["%s includes %s, which is %s (%s)" % (rel, target, OUTSIDE, dest)]
    if dmodule != module:
        edges.setdefault(module, set()).add(dmodule)
    if layer and dlayer and RANK[dlayer] > RANK[layer]:
        return ["upward include: %s includes %s (%s < %s)"
                % (rel, target, layer, dlayer)]
    return []


def check_files(root, files):
    """Layer problems of every file, the module graph and the module set."""
    problems, edges, modules = [], {}, set()
    for rel in files:
        layer, module, problem = classify(rel)
        modules.add(module)
        if problem:
            problems.append("%s: %s" % (rel, problem))
        for target in quoted_includes(os.path.join(root, rel)):
            problems += check_include(root, rel, layer, target, edges, module)
    return problems, edges, modules


def tarjan(nodes, edges):
    """Strongly connected components, iteratively (no recursion limit)."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comps.append(pop_component(stack, on_stack, node))
            elif nxt not in index:
                index[nxt] = low[nxt] = len(index)
                stack.append(nxt)
                on_stack.add(nxt)
                work.append((nxt, iter(sorted(edges.get(nxt, ())))))
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
    return comps


def pop_component(stack, on_stack, root):
    """Pop one component off Tarjan's stack, down to and including root."""
    comp = []
    while True:
        node = stack.pop()
        on_stack.discard(node)
        comp.append(node)
        if node == root:
            return sorted(comp)


def cycle_in(comp, edges):
    """One shortest cycle through the first module of a component (BFS)."""
    members, start = set(comp), comp[0]
    parent, queue = {}, deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start] + path[::-1][1:] + [start]
            if nxt in members and nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return comp + [start]  # unreachable for a true component


def check_cycles(modules, edges):
    """One problem line per include cycle between modules."""
    comps = [c for c in tarjan(modules, edges) if len(c) > 1]
    return ["include cycle: " + " -> ".join(cycle_in(c, edges))
            for c in sorted(comps)]


def run(root, out=sys.stdout):
    """Check the tree at root, print the report, return the exit status."""
    files = list_sources(root)
    problems, edges, modules = check_files(root, files)
    problems += check_cycles(modules, edges)
    for line in problems:
        print(line, file=out)
    print("layers: %d files, %d modules, %d problems"
          % (len(files), len(modules), len(problems)), file=out)
    return 1 if problems else 0


def main(argv=None):
    """Command line: check_layers.py [--root DIR]."""
    default = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default,
                        help="repository root (default: %(default)s)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        print("check_layers: no such folder: %s" % args.root, file=sys.stderr)
        return 2
    return run(os.path.abspath(args.root))


if __name__ == "__main__":
    sys.exit(main())
