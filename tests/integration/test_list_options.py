"""List options are checked the same way for a list and for a collection
delete (which lists first): a bad one is refused and changes nothing, 400
when it does not convert, 422 when it converts but does not validate, as
kube's ListOptions are checked. (A
collection delete with an option only a watch takes, such as
sendInitialEvents, once deleted the whole collection, and a list refused
before its selectors were parsed freed memory it never had.)"""

from harness import ServerTestCase, collection_path, model


BAD = [
    "sendInitialEvents=x", "allowWatchBookmarks=maybe", "watch=perhaps",
    "limit=-1", "limit=abc", "timeoutSeconds=-5", "resourceVersion=abc", "continue=not-a-token",
]
INVALID = ["sendInitialEvents=true", "resourceVersion=1&resourceVersionMatch=bogus"]


class ListOptionsTest(ServerTestCase):

    def test_bad_list_options_are_refused_for_list_and_deletecollection(self):
        ns = self.new_namespace()
        for i in range(3):
            self.create(model(f"m{i}", ns, labels={"tier": "gold"}))
        path = collection_path("LanguageModel", ns)
        for q, code, reason in [(q, 400, "BadRequest") for q in BAD] + [(q, 422, "Invalid") for q in INVALID]:
            for method in ("GET", "DELETE"):
                with self.subTest(query=q, method=method):
                    r = self.server.request(method, f"{path}?{q}")
                    self.assertStatus(r, code, reason)
        # nothing was deleted, and the server still answers
        items = self.api("GET", path, expect=200).json()["items"]
        self.assertEqual(sorted(i["metadata"]["name"] for i in items), ["m0", "m1", "m2"])

    def test_good_list_options_still_work(self):
        ns = self.new_namespace()
        for i in range(3):
            self.create(model(f"m{i}", ns, labels={"tier": "gold" if i else "silver"}))
        path = collection_path("LanguageModel", ns)
        r = self.api("GET", f"{path}?limit=2&allowWatchBookmarks=false&timeoutSeconds=5", expect=200).json()
        self.assertEqual(len(r["items"]), 2)
        self.api("DELETE", f"{path}?labelSelector=tier%3Dgold&allowWatchBookmarks=False", expect=200)
        items = self.api("GET", path, expect=200).json()["items"]
        self.assertEqual([i["metadata"]["name"] for i in items], ["m0"])
