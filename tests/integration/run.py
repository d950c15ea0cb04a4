#!/usr/bin/python3
"""Run the integration tests against a built langop-apiserver.

    /usr/bin/python3 tests/integration/run.py --binary build/langop-apiserver [-k PATTERN]

Prints one line per test (PASS/FAIL with its time), the failures in full, and
as its last line "N passed, N failed". Exit status 0 only if nothing failed.
"""

import argparse
import os
import sys
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent

# python3-kubernetes and python3-yaml are Debian packages: they live in
# /usr/bin/python3's dist-packages, not in a pyenv or venv interpreter.
try:
    import kubernetes  # noqa: F401
    import yaml  # noqa: F401
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    raise


class LineResult(unittest.TestResult):
    """Prints one line per test as soon as it ends."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.passed = 0
        self.failed = 0
        self.failures_text = []
        self._t0 = 0.0
        self._sub_errors = []

    def startTest(self, test):
        super().startTest(test)
        self._t0 = time.monotonic()
        self._reported = False
        self._sub_errors = []

    def stopTest(self, test):
        # a test whose subtests failed gets neither addSuccess nor addFailure
        if self._sub_errors and not self._reported:
            self._bad("FAIL", test, None)
        super().stopTest(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._sub_errors.append(f"[{subtest._subDescription()}]\n"
                                    + self._exc_info_to_string(err, test))

    def _line(self, word, test):
        dt = time.monotonic() - self._t0
        self.stream.write(f"{word} {test.id().removeprefix('test_')} ({dt:.2f}s)\n")
        self.stream.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._reported = True
        self.passed += 1
        self._line("PASS", test)

    def _bad(self, word, test, err):
        self.failed += 1
        self._reported = True
        text = "".join(self._sub_errors)
        if err is not None:
            text += self._exc_info_to_string(err, test)
        server = getattr(test, "server", None)
        if server is not None and server.log_path.exists():
            text += "\n-- server log (tail) --\n" + server.log_tail(15) + "\n"
        self.failures_text.append((test.id() if hasattr(test, "id") else str(test), text))
        if hasattr(test, "id"):
            self._line(word, test)
        else:   # setUpClass/tearDownClass errors arrive as _ErrorHolder
            self.stream.write(f"{word} {test}\n")
            self.stream.flush()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._bad("FAIL", test, err)

    def addError(self, test, err):
        super().addError(test, err)
        self._bad("FAIL", test, err)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.failed += 1
        self._line("FAIL", test)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.passed += 1
        self._line("PASS", test)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.stream.write(f"SKIP {test.id()}: {reason}\n")


def without(suite, patterns):
    """suite less the tests whose id contains one of patterns (a class none of
    whose tests is left is not set up at all)."""
    kept = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            sub = without(t, patterns)
            if sub.countTestCases():
                kept.addTest(sub)
        elif not any(p in t.id() for p in patterns):
            kept.addTest(t)
    return kept


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--binary", default=str(HERE.parents[1] / "build" / "langop-apiserver"))
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="only tests whose id contains this substring (repeatable)")
    ap.add_argument("--exclude", action="append", default=[],
                    help="leave out tests whose id contains this substring (repeatable)")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not print failure details")
    args = ap.parse_args()

    os.environ["LANGOP_APISERVER_BIN"] = str(Path(args.binary).resolve())
    sys.path.insert(0, str(HERE))
    import harness
    harness.BINARY = os.environ["LANGOP_APISERVER_BIN"]

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [f"*{p}*" for p in args.patterns]
    suite = loader.discover(str(HERE), pattern="test_*.py", top_level_dir=str(HERE))
    if args.exclude:
        suite = without(suite, args.exclude)

    print(f"integration: binary {harness.BINARY}, kubectl {harness.KUBECTL}", flush=True)
    t0 = time.monotonic()
    result = LineResult(sys.stdout)
    suite.run(result)
    if result.failures_text and not args.quiet:
        print("\n======== failures")
        for name, text in result.failures_text:
            print(f"---- {name}\n{text}")
    print(f"integration: {time.monotonic() - t0:.1f}s")
    print(f"{result.passed} passed, {result.failed} failed", flush=True)
    return 0 if result.failed == 0 and result.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
