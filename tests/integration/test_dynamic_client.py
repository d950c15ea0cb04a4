"""What an OpenAPI-style client sees: python3-kubernetes' DynamicClient doing
CRUD, the status subresource, generation rules, consistent paging while the
store changes, finalizers, deletecollection, preconditions, field selectors."""

import copy
import json

from kubernetes.dynamic import exceptions as dynerr

from harness import (RV_RE, UUID_RE, ServerTestCase, model, obj)


def names(lst):
    return [i["metadata"]["name"] for i in lst["items"]]


class DynamicClientTest(ServerTestCase):

    def setUp(self):
        self.lm = self.resource("LanguageModel")

    def test_discovery_finds_every_kind(self):
        for kind, namespaced in (("LanguageCluster", False), ("LanguageModel", True),
                                 ("LanguageAgent", True), ("LanguageTool", True),
                                 ("LanguagePersona", True)):
            with self.subTest(kind=kind):
                res = self.resource(kind)
                self.assertEqual(res.namespaced, namespaced)
                self.assertIn("status", res.subresources)
                self.assertIn("deletecollection", res.verbs)

    def test_create_get_list(self):
        ns = self.new_namespace()
        created = self.lm.create(body=model("py", ns), namespace=ns).to_dict()
        self.assertRegex(created["metadata"]["uid"], UUID_RE)
        self.assertRegex(created["metadata"]["resourceVersion"], RV_RE)
        self.assertEqual(created["metadata"]["generation"], 1)
        self.assertEqual(created["metadata"]["namespace"], ns)

        got = self.lm.get(name="py", namespace=ns).to_dict()
        self.assertEqual(got["metadata"]["uid"], created["metadata"]["uid"])
        self.assertEqual(got["spec"]["modelName"], "gpt-4o")

        lst = self.lm.get(namespace=ns).to_dict()
        self.assertEqual(lst["kind"], "LanguageModelList")
        self.assertEqual(lst["apiVersion"], "langop.io/v1alpha1")
        self.assertEqual(names(lst), ["py"])
        self.assertRegex(lst["metadata"]["resourceVersion"], RV_RE)
        self.assertGreaterEqual(int(lst["metadata"]["resourceVersion"]),
                                int(created["metadata"]["resourceVersion"]))

        with self.assertRaises(dynerr.ConflictError) as cm:
            self.lm.create(body=model("py", ns), namespace=ns)
        self.assertEqual(cm.exception.status, 409)
        st = json.loads(cm.exception.body)
        self.assertEqual((st["reason"], st["message"]),
                         ("AlreadyExists", 'languagemodels.langop.io "py" already exists'))

    def test_status_subresource_and_generation(self):
        ns = self.new_namespace()
        o = self.lm.create(body=model("st", ns), namespace=ns).to_dict()
        rv0 = int(o["metadata"]["resourceVersion"])

        # PUT .../status: the status changes, a spec change in the same body is ignored
        body = copy.deepcopy(o)
        body["status"] = {"phase": "Ready", "observedGeneration": 1}
        body["spec"]["modelName"] = "ignored-by-status"
        r = self.lm.status.replace(body=body, namespace=ns).to_dict()
        self.assertEqual(r["status"]["phase"], "Ready")
        self.assertEqual(r["spec"]["modelName"], "gpt-4o")
        self.assertEqual(r["metadata"]["generation"], 1)
        rv1 = int(r["metadata"]["resourceVersion"])
        self.assertGreater(rv1, rv0)
        cur = self.lm.get(name="st", namespace=ns).to_dict()
        self.assertEqual(cur["status"]["phase"], "Ready")
        self.assertEqual(cur["spec"]["modelName"], "gpt-4o")
        # GET .../status returns the object too
        s = self.lm.status.get(name="st", namespace=ns).to_dict()
        self.assertEqual(s["status"]["phase"], "Ready")

        # PUT on the main resource: a status change is ignored
        body = copy.deepcopy(cur)
        body["status"]["phase"] = "Failed"
        r = self.lm.replace(body=body, namespace=ns).to_dict()
        self.assertEqual(r["status"]["phase"], "Ready")
        self.assertEqual(self.lm.get(name="st", namespace=ns).status.phase, "Ready")

        # a metadata-only change: new resourceVersion, same generation
        body = self.lm.get(name="st", namespace=ns).to_dict()
        body["metadata"]["labels"] = {"touched": "yes"}
        r = self.lm.replace(body=body, namespace=ns).to_dict()
        self.assertEqual(r["metadata"]["generation"], 1)
        self.assertEqual(r["metadata"]["labels"], {"touched": "yes"})
        rv2 = int(r["metadata"]["resourceVersion"])
        self.assertGreater(rv2, rv1)

        # a spec change: generation + 1, status kept
        body = copy.deepcopy(r)
        body["spec"]["modelName"] = "gpt-4.1"
        r = self.lm.replace(body=body, namespace=ns).to_dict()
        self.assertEqual(r["metadata"]["generation"], 2)
        self.assertEqual(r["spec"]["modelName"], "gpt-4.1")
        self.assertEqual(r["status"]["phase"], "Ready")
        self.assertGreater(int(r["metadata"]["resourceVersion"]), rv2)

    def test_replace_with_stale_resource_version_conflicts(self):
        ns = self.new_namespace()
        o = self.lm.create(body=model("cf", ns), namespace=ns).to_dict()
        fresh = copy.deepcopy(o)
        fresh["spec"]["modelName"] = "one"
        self.lm.replace(body=fresh, namespace=ns)
        stale = copy.deepcopy(o)
        stale["spec"]["modelName"] = "two"
        with self.assertRaises(dynerr.ConflictError) as cm:
            self.lm.replace(body=stale, namespace=ns)
        st = json.loads(cm.exception.body)
        self.assertEqual(st["reason"], "Conflict")
        self.assertIn("the object has been modified", st["message"])
        self.assertEqual(self.lm.get(name="cf", namespace=ns).spec.modelName, "one")

    def test_paging_is_consistent_while_objects_change(self):
        ns = self.new_namespace()
        for i in range(6):
            self.lm.create(body=model(f"p{i}", ns), namespace=ns)
        first = self.lm.get(namespace=ns, limit=2).to_dict()
        rv = first["metadata"]["resourceVersion"]
        token = first["metadata"].get("continue")
        self.assertTrue(token, first["metadata"])
        self.assertEqual(names(first), ["p0", "p1"])

        def update_p4():
            o = self.lm.get(name="p4", namespace=ns).to_dict()
            o["spec"]["modelName"] = "changed-after-first-page"
            self.lm.replace(body=o, namespace=ns)

        # change the store before each later page; none of it may show
        changes = [
            [lambda: self.lm.create(body=model("p6", ns), namespace=ns),
             lambda: self.lm.create(body=model("p35", ns), namespace=ns)],  # sorts into page 3
            [lambda: self.lm.delete(name="p5", namespace=ns), update_p4],
        ]
        pages = [first]
        while token:
            for change in (changes.pop(0) if changes else []):
                change()
            page = self.lm.get(namespace=ns, limit=2, _continue=token).to_dict()
            self.assertLessEqual(len(page["items"]), 2, page["metadata"])
            pages.append(page)
            token = page["metadata"].get("continue")
            self.assertLess(len(pages), 10, "continue never ends")
        self.assertEqual(changes, [], "fewer pages than expected")

        seen = [n for p in pages for n in names(p)]
        self.assertEqual(seen, ["p0", "p1", "p2", "p3", "p4", "p5"],
                         "every page must show the store as of the first page")
        p4 = [i for p in pages for i in p["items"] if i["metadata"]["name"] == "p4"][0]
        self.assertEqual(p4["spec"]["modelName"], "gpt-4o")
        for p in pages:
            self.assertEqual(p["metadata"]["resourceVersion"], rv, p["metadata"])
            for i in p["items"]:
                self.assertLessEqual(int(i["metadata"]["resourceVersion"]), int(rv))
        # a fresh list shows every change
        now = self.lm.get(namespace=ns).to_dict()
        self.assertEqual(names(now), ["p0", "p1", "p2", "p3", "p35", "p4", "p6"])
        self.assertEqual([i["spec"]["modelName"] for i in now["items"] if i["metadata"]["name"] == "p4"],
                         ["changed-after-first-page"])

    def test_cluster_wide_list_and_field_selectors(self):
        ns1, ns2 = self.new_namespace("fs-a"), self.new_namespace("fs-b")
        for ns in (ns1, ns2):
            for n in ("x", "y"):
                self.lm.create(body=model(n, ns), namespace=ns)
        every = self.lm.get().to_dict()     # /apis/langop.io/v1alpha1/languagemodels
        pairs = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in every["items"]}
        self.assertTrue({(ns1, "x"), (ns1, "y"), (ns2, "x"), (ns2, "y")} <= pairs, pairs)

        r = self.lm.get(namespace=ns1, field_selector="metadata.name=x").to_dict()
        self.assertEqual(names(r), ["x"])
        r = self.lm.get(field_selector=f"metadata.namespace={ns2}").to_dict()
        self.assertEqual(sorted(names(r)), ["x", "y"])
        self.assertEqual({i["metadata"]["namespace"] for i in r["items"]}, {ns2})
        r = self.lm.get(field_selector=f"metadata.namespace={ns2},metadata.name!=x").to_dict()
        self.assertEqual(names(r), ["y"])
        with self.assertRaises(dynerr.BadRequestError):
            self.lm.get(namespace=ns1, field_selector="spec.provider=openai")

    def test_delete_with_finalizer(self):
        ns = self.new_namespace()
        self.lm.create(body=model("fin", ns, finalizers=["langop.io/test-hold"]), namespace=ns)
        r = self.lm.delete(name="fin", namespace=ns).to_dict()
        # not gone yet: the answer is the object, marked for deletion
        self.assertEqual(r.get("kind"), "LanguageModel", r)
        self.assertTrue(r["metadata"].get("deletionTimestamp"), r)
        cur = self.lm.get(name="fin", namespace=ns).to_dict()
        self.assertTrue(cur["metadata"].get("deletionTimestamp"))
        self.assertEqual(cur["metadata"]["finalizers"], ["langop.io/test-hold"])

        # other updates still work while finalizers remain
        cur["metadata"]["labels"] = {"still": "here"}
        cur = self.lm.replace(body=cur, namespace=ns).to_dict()
        self.assertEqual(self.lm.get(name="fin", namespace=ns).metadata.labels.still, "here")

        cur["metadata"]["finalizers"] = []
        self.lm.replace(body=cur, namespace=ns)
        with self.assertRaises(dynerr.NotFoundError):
            self.lm.get(name="fin", namespace=ns)

    def test_delete_preconditions(self):
        ns = self.new_namespace()
        o = self.lm.create(body=model("pre", ns), namespace=ns).to_dict()
        with self.assertRaises(dynerr.ConflictError):
            self.lm.delete(name="pre", namespace=ns,
                           body={"preconditions": {"uid": "00000000-0000-4000-8000-000000000000"}})
        with self.assertRaises(dynerr.ConflictError):
            self.lm.delete(name="pre", namespace=ns,
                           body={"preconditions": {"resourceVersion": "1"}})
        self.assertEqual(self.lm.get(name="pre", namespace=ns).metadata.uid, o["metadata"]["uid"])
        self.lm.delete(name="pre", namespace=ns,
                       body={"preconditions": {"uid": o["metadata"]["uid"],
                                               "resourceVersion": o["metadata"]["resourceVersion"]}})
        with self.assertRaises(dynerr.NotFoundError):
            self.lm.get(name="pre", namespace=ns)

    def test_deletecollection_with_label_selector(self):
        ns, other = self.new_namespace("dc-a"), self.new_namespace("dc-b")
        for n, tier in (("g1", "gold"), ("g2", "gold"), ("g3", "gold"), ("s1", "silver"), ("n1", None)):
            self.lm.create(body=model(n, ns, labels={"tier": tier} if tier else None), namespace=ns)
        self.lm.create(body=model("g-other", other, labels={"tier": "gold"}), namespace=other)

        r = self.lm.delete(namespace=ns, label_selector="tier=gold").to_dict()
        if r.get("kind") == "LanguageModelList":
            self.assertEqual(sorted(names(r)), ["g1", "g2", "g3"])
        self.assertEqual(sorted(names(self.lm.get(namespace=ns).to_dict())), ["n1", "s1"])
        self.assertEqual(names(self.lm.get(namespace=other).to_dict()), ["g-other"])

        # dry run deletes nothing
        self.lm.delete(namespace=ns, label_selector="tier", body={"dryRun": ["All"]})
        self.assertEqual(sorted(names(self.lm.get(namespace=ns).to_dict())), ["n1", "s1"])

    def test_cluster_scoped_kind(self):
        lc = self.resource("LanguageCluster")
        c = lc.create(body=obj("LanguageCluster", "py-cluster", spec={"domain": "py.example.com"})).to_dict()
        self.assertNotIn("namespace", c["metadata"])
        self.assertEqual(lc.get(name="py-cluster").spec.domain, "py.example.com")
        self.assertIn("py-cluster", names(lc.get().to_dict()))
        # a cluster-scoped kind has no namespaced path
        r = self.server.request("GET", "/apis/langop.io/v1alpha1/namespaces/default/languageclusters")
        self.assertEqual(r.status, 404, r)
