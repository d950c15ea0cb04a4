"""DELETE and deletecollection with DeleteOptions (issue 2, item 6), over raw
HTTPS: propagationPolicy (the three kube values accepted, anything else
refused), preconditions on uid and resourceVersion, dryRun in the body, and
deletecollection restricted by fieldSelector, by labelSelector within one
namespace, and on objects held by finalizers."""

from harness import ServerTestCase, collection_path, item_path, model

LM = "LanguageModel"


def names(lst):
    return sorted(o["metadata"]["name"] for o in lst["items"])


class DeleteOptionsTest(ServerTestCase):

    def delete(self, name, ns, body=None, query=""):
        return self.server.request("DELETE", item_path(LM, name, ns) + query, body)

    def listed(self, ns):
        return names(self.api("GET", collection_path(LM, ns), expect=200).json())

    def test_each_propagation_policy_deletes(self):
        ns = self.new_namespace()
        for policy in ("Foreground", "Background", "Orphan"):
            with self.subTest(policy=policy):
                name = policy.lower()
                uid = self.create(model(name, ns))["metadata"]["uid"]
                r = self.delete(name, ns, {"propagationPolicy": policy})
                self.assertEqual(r.status, 200, r)
                body = r.json()
                # kube answers a finished delete with Status Success naming the object
                self.assertEqual((body.get("kind"), body.get("status")), ("Status", "Success"), body)
                self.assertEqual(body["details"]["name"], name, body)
                self.assertEqual(body["details"]["uid"], uid, body)
                self.api("GET", item_path(LM, name, ns), expect=404)
        # as a query parameter too (what curl users and some clients send)
        self.create(model("by-query", ns))
        self.assertEqual(self.delete("by-query", ns, query="?propagationPolicy=Orphan").status, 200)
        self.api("GET", item_path(LM, "by-query", ns), expect=404)
        self.assertEqual(self.listed(ns), [])

    def test_unknown_propagation_policy_is_refused_and_deletes_nothing(self):
        ns = self.new_namespace()
        before = self.create(model("keep", ns))
        for how in ("body", "query"):
            with self.subTest(how=how):
                if how == "body":
                    r = self.delete("keep", ns, {"propagationPolicy": "Bogus"})
                else:
                    r = self.delete("keep", ns, query="?propagationPolicy=Bogus")
                # The server answers 400 BadRequest; kube-apiserver answers 422 Invalid
                # (DeleteOptions.meta.k8s.io ... is invalid). Either refuses the options.
                self.assertIn(r.status, (400, 422), r)
                s = self.assertStatus(r, r.status, "BadRequest" if r.status == 400 else "Invalid")
                self.assertIn("propagationPolicy", s["message"], s)
                self.assertIn("Bogus", s["message"], s)
                for allowed in ("Foreground", "Background", "Orphan"):
                    self.assertIn(allowed, s["message"], s)
                after = self.get(LM, "keep", ns)
                self.assertEqual(after["metadata"]["uid"], before["metadata"]["uid"])
                self.assertNotIn("deletionTimestamp", after["metadata"])

    def test_precondition_mismatch_is_409(self):
        ns = self.new_namespace()
        o = self.create(model("pre", ns))
        uid, rv = o["metadata"]["uid"], o["metadata"]["resourceVersion"]
        wrong_rv = str(int(rv) - 1)
        for pre in ({"uid": "00000000-0000-4000-8000-000000000000"},
                    {"resourceVersion": wrong_rv},
                    {"uid": uid, "resourceVersion": wrong_rv}):
            with self.subTest(preconditions=pre):
                s = self.assertStatus(self.delete("pre", ns, {"preconditions": pre}), 409, "Conflict")
                self.assertIn("pre", s["message"], s)
                self.assertIn("Precondition failed", s["message"], s)
                self.assertEqual(self.get(LM, "pre", ns)["metadata"]["uid"], uid)
        r = self.delete("pre", ns, {"preconditions": {"uid": uid, "resourceVersion": rv}})
        self.assertEqual(r.status, 200, r)
        self.api("GET", item_path(LM, "pre", ns), expect=404)

    def test_dry_run_in_the_body_deletes_nothing(self):
        ns = self.new_namespace()
        o = self.create(model("dry", ns))
        r = self.delete("dry", ns, {"dryRun": ["All"], "propagationPolicy": "Background"})
        self.assertEqual(r.status, 200, r)
        after = self.get(LM, "dry", ns)
        self.assertEqual(after["metadata"]["resourceVersion"], o["metadata"]["resourceVersion"])
        self.assertNotIn("deletionTimestamp", after["metadata"])
        # an unknown dryRun value is refused
        r = self.delete("dry", ns, {"dryRun": ["Some"]})
        self.assertIn(r.status, (400, 422), r)
        self.get(LM, "dry", ns)

        # deletecollection with dryRun in the body: nothing goes either
        r = self.api("DELETE", collection_path(LM, ns), {"dryRun": ["All"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.listed(ns), ["dry"])

    def test_deletecollection_with_field_selector_deletes_only_that_name(self):
        ns = self.new_namespace()
        for n in ("x", "xx", "y"):
            self.create(model(n, ns))
        r = self.api("DELETE", collection_path(LM, ns) + "?fieldSelector=metadata.name%3Dx", expect=200)
        if r.json().get("kind") == "LanguageModelList":
            self.assertEqual(names(r.json()), ["x"])
        self.assertEqual(self.listed(ns), ["xx", "y"])
        # != deletes the others
        self.api("DELETE", collection_path(LM, ns) + "?fieldSelector=metadata.name%21%3Dy", expect=200)
        self.assertEqual(self.listed(ns), ["y"])
        # a field kube does not index is refused, and nothing is deleted
        r = self.api("DELETE", collection_path(LM, ns) + "?fieldSelector=spec.modelName%3Dgpt-4o")
        self.assertStatus(r, 400, "BadRequest")
        self.assertEqual(self.listed(ns), ["y"])

    def test_deletecollection_in_another_namespace_leaves_this_one_alone(self):
        here, there = self.new_namespace("dc-here"), self.new_namespace("dc-there")
        for n in ("a", "b"):
            self.create(model(n, here, labels={"app": "chat"}))
            self.create(model(n, there, labels={"app": "chat"}))
        self.create(model("c", there, labels={"app": "other"}))

        self.api("DELETE", collection_path(LM, there) + "?labelSelector=app%3Dchat", expect=200)
        self.assertEqual(self.listed(there), ["c"])
        self.assertEqual(self.listed(here), ["a", "b"])
        for n in ("a", "b"):
            self.assertNotIn("deletionTimestamp", self.get(LM, n, here)["metadata"])

    def test_deletecollection_marks_objects_with_finalizers(self):
        ns = self.new_namespace()
        self.create(model("held", ns, labels={"grp": "1"}, finalizers=["langop.io/hold"]))
        self.create(model("free", ns, labels={"grp": "1"}))
        self.create(model("other", ns, labels={"grp": "2"}, finalizers=["langop.io/hold"]))

        self.api("DELETE", collection_path(LM, ns) + "?labelSelector=grp%3D1", expect=200)
        self.assertEqual(self.listed(ns), ["held", "other"])
        held = self.get(LM, "held", ns)
        self.assertTrue(held["metadata"].get("deletionTimestamp"), held)
        self.assertEqual(held["metadata"]["finalizers"], ["langop.io/hold"])
        self.assertNotIn("deletionTimestamp", self.get(LM, "other", ns)["metadata"])

        # emptying the finalizers lets it go
        r = self.server.request("PATCH", item_path(LM, "held", ns), '{"metadata":{"finalizers":null}}',
                                headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(r.status, 200, r)
        self.api("GET", item_path(LM, "held", ns), expect=404)
        self.assertEqual(self.listed(ns), ["other"])
