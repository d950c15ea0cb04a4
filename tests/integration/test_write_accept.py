"""A write is answered in a form the client accepts, or not made at all: an
unacceptable Accept is a 406 before anything changes (the change was once
stored first and the 406 sent after), and a Table Accept gets a one-row
Table as kube gives. A HEAD watch is refused: a watch has no end, and its
headers alone would hold an HTTP/1.1 connection."""

import json

from harness import ServerTestCase, collection_path, item_path, model

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


class WriteAcceptTest(ServerTestCase):

    def test_unacceptable_accept_is_406_and_changes_nothing(self):
        ns = self.new_namespace()
        self.create(model("gpt", ns, labels={"tier": "gold"}))
        before = self.get("LanguageModel", "gpt", ns)
        coll, item = collection_path("LanguageModel", ns), item_path("LanguageModel", "gpt", ns)
        changed = dict(before)
        changed["spec"] = dict(before["spec"], modelName="o3")
        writes = [
            ("POST", coll, model("new", ns), "application/json"),
            ("PUT", item, changed, "application/json"),
            ("PATCH", item, {"spec": {"modelName": "o3"}}, "application/merge-patch+json"),
            ("DELETE", item, None, None),
            ("DELETE", coll + "?labelSelector=tier%3Dgold", None, None),
        ]
        for accept in ("text/html", "application/vnd.kubernetes.protobuf", "application/json;as=Nope"):
            for method, path, body, ctype in writes:
                with self.subTest(accept=accept, method=method, path=path):
                    headers = {"Accept": accept}
                    if ctype:
                        headers["Content-Type"] = ctype
                    r = self.server.request(method, path, body=json.dumps(body) if body else None, headers=headers)
                    self.assertStatus(r, 406, "NotAcceptable")
        self.assertEqual(self.get("LanguageModel", "gpt", ns), before)
        self.get("LanguageModel", "new", ns, expect=404)

    def test_table_accept_on_a_write_answers_a_table(self):
        ns = self.new_namespace()
        r = self.server.request("POST", collection_path("LanguageModel", ns), body=model("gpt", ns),
                                headers={"Accept": TABLE})
        self.assertEqual(r.status, 201, r)
        t = r.json()
        self.assertEqual(t["kind"], "Table")
        self.assertEqual(t["rows"][0]["cells"][0], "gpt")
        self.assertEqual(self.get("LanguageModel", "gpt", ns)["metadata"]["name"], "gpt")

    def test_head_watch_is_refused_and_the_connection_lives(self):
        ns = self.new_namespace()
        c = self.server.connection(timeout=10)
        try:
            c.request("HEAD", collection_path("LanguageModel", ns) + "?watch=true",
                      headers={"Authorization": f"Bearer {self.server.token}"})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 405)
            # the same keep-alive connection answers the next request
            c.request("GET", collection_path("LanguageModel", ns),
                      headers={"Authorization": f"Bearer {self.server.token}"})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
        finally:
            c.close()
