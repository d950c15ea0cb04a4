"""Crash rounds in the default run: 5 rounds of 8 concurrent writers (every
write verb, four kinds) killed with SIGKILL after 0.5-3 s and restarted on
the same database; after each, every acknowledged write is in the replayed
history as answered, the held watch's events begin the replay, nothing
unexplained is there, resourceVersions only grew and integrity_check is ok.
The rounds are tests/tools/crash_rounds.py's (run it for any number of them);
LANGOP_CRASH_ROUNDS and LANGOP_CRASH_SEED change the count and the seed."""

import os
import random
import sys
import unittest

import harness
from harness import ServerTestCase

sys.path.insert(0, str(harness.REPO / "tests" / "tools"))
import crash_rounds  # noqa: E402


class CrashRoundsTest(ServerTestCase):

    def test_kill9_rounds_lose_no_acknowledged_write(self):
        rounds = int(os.environ.get("LANGOP_CRASH_ROUNDS", "5"))
        seed = int(os.environ.get("LANGOP_CRASH_SEED", random.randrange(1 << 30)))
        lines = [f"crash rounds: seed {seed}"]
        print(f"    {lines[0]}", flush=True)

        def out(line):
            lines.append(line)
            print(f"    {line}", flush=True)

        totals = crash_rounds.run_rounds(self.server, rounds, seed, out=out)
        self.assertEqual(totals.rounds, rounds)
        self.assertGreater(totals.checked, 100 * rounds, "too few writes acknowledged to prove anything")
        self.assertEqual(totals.lost, 0, "\n".join(lines))
        self.assertEqual(totals.problems, [], "\n".join(lines))


if __name__ == "__main__":
    unittest.main()
