"""HTTP methods are case-sensitive and a resource knows only its verbs: an
unknown or lower-case method gets 405 MethodNotAllowed, never a crash (a
lower-case "get" on a collection once reached the single-object read
without a name and aborted the server)."""

from harness import ServerTestCase, collection_path, item_path, model


class MethodTest(ServerTestCase):

    def test_unknown_methods_are_405_and_harmless(self):
        ns = self.new_namespace()
        self.create(model("gpt", ns))
        paths = [collection_path("LanguageModel", ns), item_path("LanguageModel", "gpt", ns),
                 collection_path("LanguageCluster"), item_path("LanguageModel", "gpt", ns) + "/status"]
        for method in ("get", "post", "delete", "FOO", "OPTIONS", "TRACE"):
            for path in paths:
                with self.subTest(method=method, path=path):
                    r = self.server.request(method, path, headers={"Accept": "garbage"})
                    self.assertEqual(r.status, 405, r)
                    st = r.json()
                    self.assertEqual((st["kind"], st["code"], st["reason"]), ("Status", 405, "MethodNotAllowed"))
        # the server is alive and the object intact
        self.assertEqual(self.get("LanguageModel", "gpt", ns)["spec"]["modelName"], model("gpt", ns)["spec"]["modelName"])

    def test_verbs_that_do_not_fit_the_path_are_405(self):
        ns = self.new_namespace()
        self.create(model("gpt", ns))
        self.assertStatus(self.server.request("POST", item_path("LanguageModel", "gpt", ns), body=model("x", ns)),
                          405, "MethodNotAllowed")
        self.assertStatus(self.server.request("PUT", collection_path("LanguageModel", ns), body=model("x", ns)),
                          405, "MethodNotAllowed")
        self.assertStatus(self.server.request("PATCH", collection_path("LanguageModel", ns), body={},
                                              headers={"Content-Type": "application/merge-patch+json"}),
                          405, "MethodNotAllowed")
