#!/usr/bin/python3
"""Tests for check_layers.py: small fake trees in temporary folders.

Run: /usr/bin/python3 tests/tools/test_check_layers.py
"""

import io
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "check_layers.py")
sys.path.insert(0, HERE)
import check_layers  # noqa: E402

# A clean layered tree: each layer includes only its own or lower layers.
CLEAN = {
    "include/langop/core/codec.h": "#include <stddef.h>\n",
    "apiserver/core/codec.c": '#include "langop/core/codec.h"\n',
    "include/langop/storage/store.h": '#include "langop/core/codec.h"\n',
    "storage/store.c": '#include "langop/storage/store.h"\n#include "engine.h"\n',
    "storage/engine.h": "#include <stdint.h>\n",
    "include/langop/schema/schema.h": '#include "langop/core/codec.h"\n',
    "openapi/schema.c": '#include "langop/schema/schema.h"\n',
    "include/langop/request/decode.h": '#include "langop/schema/schema.h"\n',
    "apiserver/request/decode.c": '#include "langop/request/decode.h"\n'
                                  '#include "langop/storage/store.h"\n',
    "include/langop/http/server.h": "",
    "include/langop/http/limits.h": "",
    "apiserver/http/server.c": '#include "langop/http/server.h"\n'
                               '#include "langop/request/decode.h"\n',
    "apiserver/main.c": '#include "langop/http/server.h"\n',
    "tests/unit/test_codec.c": '#include "langop/nowhere/at_all.h"\n',
}


class CheckLayersTest(unittest.TestCase):
    """Each test writes a tree, runs the checker on it and reads its report."""

    def tree(self, files):
        """Write files into a new temporary root; return the root."""
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        for rel, text in files.items():
            path = os.path.join(tmp.name, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        return tmp.name

    def check(self, files):
        """Run the checker in process on a tree: (status, lines)."""
        out = io.StringIO()
        status = check_layers.run(self.tree(files), out)
        return status, out.getvalue().splitlines()

    def run_tree(self, files):
        """Run the checker as a subprocess with --root: (status, lines)."""
        proc = subprocess.run([sys.executable, SCRIPT, "--root", self.tree(files)],
                              capture_output=True, text=True)
        return proc.returncode, proc.stdout.splitlines()

    def problems(self, lines):
        """The problem lines of a report (all but the summary)."""
        self.assertTrue(lines[-1].startswith("layers: "), lines)
        return lines[:-1]

    def test_clean_tree_passes(self):
        status, lines = self.run_tree(CLEAN)
        self.assertEqual(status, 0, lines)
        self.assertEqual(self.problems(lines), [])
        self.assertEqual(lines[-1], "layers: 13 files, 8 modules, 0 problems")

    def test_upward_include_fails_naming_both_files(self):
        files = dict(CLEAN)
        files["apiserver/core/codec.c"] += '#include "langop/http/limits.h"\n'
        status, lines = self.run_tree(files)
        self.assertEqual(status, 1)
        self.assertEqual(self.problems(lines),
                         ["upward include: apiserver/core/codec.c includes "
                          "langop/http/limits.h (core < http)"])
        self.assertEqual(lines[-1], "layers: 13 files, 8 modules, 1 problems")

    def test_kube_sits_above_core_only(self):
        files = dict(CLEAN)
        files["include/langop/kube/kubeclient.h"] = '#include "langop/core/codec.h"\n'
        files["apiserver/kube/kubeclient.c"] = ('#include "langop/kube/kubeclient.h"\n'
                                                '#include "langop/storage/store.h"\n')
        status, lines = self.check(files)
        self.assertEqual(status, 1)
        self.assertEqual(lines[:-1], ["upward include: apiserver/kube/kubeclient.c includes "
                                      "langop/storage/store.h (kube < storage)"])
        files["apiserver/kube/kubeclient.c"] = '#include "langop/kube/kubeclient.h"\n'
        files["apiserver/request/decode.c"] += '#include "langop/kube/kubeclient.h"\n'
        status, lines = self.check(files)
        self.assertEqual((status, lines[:-1]), (0, []))

    def test_same_layer_and_lower_allowed(self):
        files = dict(CLEAN)
        files["apiserver/main.c"] += '#include "langop/core/codec.h"\n'
        status, lines = self.check(files)
        self.assertEqual(status, 0, lines)

    def test_two_module_cycle(self):
        files = dict(CLEAN)
        files["include/langop/request/auth.h"] = '#include "langop/request/decode.h"\n'
        files["apiserver/request/decode.c"] += '#include "langop/request/auth.h"\n'
        status, lines = self.check(files)
        self.assertEqual(status, 1)
        self.assertEqual(self.problems(lines),
                         ["include cycle: request/auth -> request/decode -> request/auth"])

    def test_three_module_cycle(self):
        files = dict(CLEAN)
        files["include/langop/core/a.h"] = '#include "langop/core/b.h"\n'
        files["include/langop/core/b.h"] = ""
        files["apiserver/core/b.c"] = '#include "langop/core/c.h"\n'
        files["include/langop/core/c.h"] = '#include "langop/core/a.h"\n'
        status, lines = self.check(files)
        self.assertEqual(status, 1)
        self.assertEqual(self.problems(lines),
                         ["include cycle: core/a -> core/b -> core/c -> core/a"])

    def test_cycle_reports_one_path_of_a_bigger_component(self):
        files = dict(CLEAN)
        files["include/langop/core/a.h"] = '#include "langop/core/b.h"\n#include "langop/core/c.h"\n'
        files["include/langop/core/b.h"] = '#include "langop/core/a.h"\n'
        files["include/langop/core/c.h"] = '#include "langop/core/b.h"\n'
        status, lines = self.check(files)
        self.assertEqual(status, 1)
        self.assertEqual(self.problems(lines),
                         ["include cycle: core/a -> core/b -> core/a"])

    def test_relative_include_in_storage_resolves(self):
        files = dict(CLEAN)
        files["storage/engine.h"] = '#include "langop/core/codec.h"\n'
        files["storage/sqlite.c"] = '#include "engine.h"\n'
        status, lines = self.check(files)
        self.assertEqual(status, 0, lines)
        del files["storage/engine.h"]
        status, lines = self.check(files)
        self.assertEqual(status, 1)
        self.assertIn("missing header: storage/sqlite.c includes engine.h (no such file)",
                      self.problems(lines))

    def test_relative_include_upward_is_caught(self):
        files = dict(CLEAN)
        files["storage/engine.h"] = '#include "../include/langop/http/limits.h"\n'
        status, lines = self.check(files)
        self.assertEqual(status, 1)
        self.assertEqual(self.problems(lines),
                         ["upward include: storage/engine.h includes "
                          "../include/langop/http/limits.h (storage < http)"])

    def test_upward_include_into_a_cycle_reports_both(self):
        files = dict(CLEAN)
        files["apiserver/core/codec.c"] += '#include "langop/http/server.h"\n'
        status, lines = self.check(files)
        self.assertEqual(self.problems(lines), [
            "upward include: apiserver/core/codec.c includes "
            "langop/http/server.h (core < http)",
            "include cycle: core/codec -> http/server -> request/decode -> "
            "schema/schema -> core/codec"])

    def test_missing_header_fails(self):
        files = dict(CLEAN)
        files["apiserver/http/server.c"] += '#include "langop/http/gone.h"\n'
        status, lines = self.run_tree(files)
        self.assertEqual(status, 1)
        self.assertEqual(self.problems(lines),
                         ["missing header: apiserver/http/server.c includes "
                          "langop/http/gone.h (no such file)"])

    def test_flat_file_fails(self):
        files = dict(CLEAN)
        files["apiserver/loose.c"] = '#include "langop/loose.h"\n'
        files["include/langop/loose.h"] = ""
        status, lines = self.check(files)
        self.assertEqual(status, 1)
        self.assertEqual(self.problems(lines),
                         ["apiserver/loose.c: not in a layer folder",
                          "include/langop/loose.h: not in a layer folder"])

    def test_unknown_layer_folder_fails(self):
        files = dict(CLEAN)
        files["apiserver/misc/x.c"] = ""
        status, lines = self.check(files)
        self.assertEqual(status, 1)
        self.assertEqual(self.problems(lines),
                         ["apiserver/misc/x.c: in folder 'misc', which is not a known layer"])

    def test_system_includes_ignored(self):
        files = dict(CLEAN)
        files["apiserver/core/codec.c"] += ("#include <langop/http/server.h>\n"
                                           "#include <no/such/header.h>\n")
        status, lines = self.check(files)
        self.assertEqual(status, 0, lines)

    def test_commented_includes_ignored_strings_kept(self):
        files = dict(CLEAN)
        files["apiserver/core/codec.c"] += (
            'static const char *any = "*/*"; /* #include "langop/http/server.h" */\n'
            '// #include "langop/missing.h"\n'
            '/*\n#include "langop/http/server.h"\n*/\n')
        status, lines = self.check(files)
        self.assertEqual(status, 0, lines)

    def test_tests_folder_not_checked(self):
        # CLEAN already holds a test including a missing header.
        status, lines = self.check(CLEAN)
        self.assertEqual(status, 0, lines)

    def test_include_outside_source_folders_fails(self):
        files = dict(CLEAN)
        files["apiserver/core/codec.c"] += '#include "../../tests/unit/fixtures.h"\n'
        files["tests/unit/fixtures.h"] = ""
        status, lines = self.check(files)
        self.assertEqual(status, 1)
        self.assertEqual(len(self.problems(lines)), 1)
        self.assertIn("outside the source folders", lines[0])

    def test_long_chain_no_recursion_limit(self):
        files = {}
        for i in range(3000):
            files["include/langop/core/m%d.h" % i] = '#include "langop/core/m%d.h"\n' % (i + 1)
        files["include/langop/core/m3000.h"] = '#include "langop/core/m0.h"\n'
        status, lines = self.check(files)
        self.assertEqual(status, 1)
        self.assertEqual(len(self.problems(lines)), 1)
        self.assertTrue(lines[0].startswith("include cycle: core/m0 -> core/m1 -> "))
        self.assertTrue(lines[0].endswith("core/m3000 -> core/m0"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
