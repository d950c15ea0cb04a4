"""Bookmarks while a watch is idle (issue 4, item 1): with allowWatchBookmarks
the server sends one every --watch-bookmark-interval (1 minute by default,
1 second here so that the test is short), each carrying the newest
resourceVersion; without allowWatchBookmarks it sends none."""

import json
import time

from harness import FlagServerTestCase, collection_path, model


class IdleBookmarkTest(FlagServerTestCase):
    server_flags = ("--watch-bookmark-interval=1s",)

    def watch_lines(self, path, seconds):
        """Every line of a watch that the server ends after `seconds`."""
        c = self.server.connection(timeout=seconds + 10)
        c.request("GET", f"{path}&timeoutSeconds={seconds}",
                  headers={"Authorization": f"Bearer {self.server.token}"})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        started, events = time.monotonic(), []
        while True:
            line = r.readline()
            if not line:
                break
            events.append((time.monotonic() - started, json.loads(line)))
        c.close()
        return events

    def test_idle_watch_gets_a_bookmark_every_interval(self):
        ns = self.new_namespace()
        created = self.create(model("gpt", ns))
        rv = created["metadata"]["resourceVersion"]
        path = collection_path("LanguageModel", ns)
        events = self.watch_lines(f"{path}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}", 4)
        marks = [(t, e) for t, e in events if e["type"] == "BOOKMARK"]
        # one a second while idle (the last one may be the one sent at the end)
        self.assertGreaterEqual(len(marks), 3, events)
        self.assertLess(marks[0][0], 2.5, events)
        for _, e in marks:
            self.assertEqual(e["object"]["kind"], "LanguageModel")
            self.assertGreaterEqual(int(e["object"]["metadata"]["resourceVersion"]), int(rv))
        self.assertEqual([e for _, e in events if e["type"] != "BOOKMARK"], [], events)

    def test_no_bookmarks_unless_asked(self):
        ns = self.new_namespace()
        rv = self.create(model("gpt", ns))["metadata"]["resourceVersion"]
        events = self.watch_lines(f"{collection_path('LanguageModel', ns)}?watch=1&resourceVersion={rv}", 3)
        self.assertEqual(events, [])
