"""PATCH obeys the same rules as PUT (issue 4, item 3): a patched object goes
through defaulting, schema validation and admission (credentials in params,
one of provider/litellmProvider, capacity), keeps its name and optimistic
concurrency; and PATCH on the status subresource changes the status only,
while a patch on the main resource leaves the status alone. Every patch
type is used: JSON patch, merge patch, server-side apply, over raw HTTPS and
through kubectl."""

import json

import yaml

from harness import (API_VERSION, ServerTestCase, collection_path, item_path, model, obj)

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


def cause_fields(status):
    return [c.get("field", "") for c in status.get("details", {}).get("causes", [])]


class PatchRulesTest(ServerTestCase):

    def patch(self, name, ns, body, content_type, query="", subresource=None):
        path = item_path("LanguageModel", name, ns)
        if subresource:
            path += "/" + subresource
        data = body if isinstance(body, str) else json.dumps(body)
        return self.server.request("PATCH", path + query, data,
                                   headers={"Content-Type": content_type})

    def assertUnchanged(self, before, ns):
        after = self.get("LanguageModel", before["metadata"]["name"], ns)
        self.assertEqual(after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"])
        self.assertEqual(after["spec"], before["spec"])
        return after

    # ------------------------------------------- the rules of create/update

    def test_merge_patch_with_credentials_in_params_is_422(self):
        ns = self.new_namespace()
        before = self.create(model("cred", ns))
        r = self.patch("cred", ns, {"spec": {"params": {"api_key": "sk-secret"}}}, MERGE)
        s = self.assertStatus(r, 422, "Invalid")
        self.assertIn("spec.params.api_key", cause_fields(s) + [s["message"]], s)
        self.assertNotIn("sk-secret", r.text())
        after = self.assertUnchanged(before, ns)
        self.assertNotIn("params", after["spec"])

    def test_json_patch_removing_a_defaulted_field_gets_the_default_back(self):
        ns = self.new_namespace()
        m = model("tmo", ns)
        m["spec"]["timeout"] = "30s"
        created = self.create(m)
        self.assertEqual(created["spec"]["timeout"], "30s")
        r = self.patch("tmo", ns, [{"op": "remove", "path": "/spec/timeout"}], JSON_PATCH)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["spec"]["timeout"], "5m", r)
        self.assertEqual(self.get("LanguageModel", "tmo", ns)["spec"]["timeout"], "5m")

    def test_merge_patch_with_an_invalid_enum_is_422_naming_the_field(self):
        ns = self.new_namespace()
        before = self.create(model("enum", ns))
        s = self.assertStatus(self.patch("enum", ns, {"spec": {"provider": "bogus"}}, MERGE),
                              422, "Invalid")
        self.assertIn("spec.provider", cause_fields(s), s)
        self.assertIn("bogus", s["message"], s)
        self.assertEqual(self.assertUnchanged(before, ns)["spec"]["provider"], "openai")

    def test_merge_patch_with_both_providers_is_422(self):
        ns = self.new_namespace()
        before = self.create(model("both", ns))
        s = self.assertStatus(self.patch("both", ns, {"spec": {"litellmProvider": "deepseek"}},
                                         MERGE), 422, "Invalid")
        self.assertTrue(cause_fields(s), s)
        self.assertIn("litellmProvider", s["message"], s)
        after = self.assertUnchanged(before, ns)
        self.assertNotIn("litellmProvider", after["spec"])

        # kubectl sees the same refusal
        r = self.kubectl("patch", "lmodel", "both", "-n", ns, "--type=merge",
                         "-p", '{"spec":{"litellmProvider":"deepseek"}}', ok=False)
        self.assertIn('The LanguageModel "both" is invalid', r.err, r)
        self.assertUnchanged(before, ns)

        # swapping one for the other in one patch is fine
        r = self.patch("both", ns, {"spec": {"provider": None, "litellmProvider": "deepseek"}}, MERGE)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["spec"].get("litellmProvider"), "deepseek")
        self.assertNotIn("provider", r.json()["spec"])

    def test_server_side_apply_create_over_capacity_is_403(self):
        ns = f"patch-cap-{self._ns_counter + 1}"
        ServerTestCase._ns_counter += 1
        self.create(obj("LanguageCluster", ns, spec={"domain": f"{ns}.example.com",
                                                    "capacity": {"maxModels": 1}}))
        self.create(model("first", ns))
        body = yaml.safe_dump(model("second", ns))
        r = self.patch("second", ns, body, APPLY, "?fieldManager=it-apply")
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertIn("maxModels", s["message"], s)
        self.api("GET", item_path("LanguageModel", "second", ns), expect=404)

        # the same through kubectl apply --server-side
        path = self.write_yaml(model("second", ns))
        r = self.kubectl("apply", "--server-side", "-f", path, ok=False)
        self.assertIn("Forbidden", r.err, r)
        self.assertIn("maxModels", r.err, r)
        names = [o["metadata"]["name"] for o in
                 self.api("GET", collection_path("LanguageModel", ns), expect=200).json()["items"]]
        self.assertEqual(names, ["first"])

        # an apply to the existing object is an update, not counted against the limit
        r = self.patch("first", ns, yaml.safe_dump(model("first", ns)), APPLY,
                       "?fieldManager=it-apply")
        self.assertEqual(r.status, 200, r)

    def test_admission_order_membership_then_fields_then_capacity(self):
        """kube's order: namespace lifecycle, then validation, then quota. The
        worker only reads the store when a field rule fails, so this pins down
        that the answers stay those of that order, for POST and for apply."""
        both = model("both", "")
        both["spec"]["litellmProvider"] = "openai"  # a field rule: one of provider/litellmProvider
        # no LanguageCluster: 403 not managed, although the fields are invalid too
        orphan = f"patch-order-none-{self._ns_counter + 1}"
        ServerTestCase._ns_counter += 1
        both["metadata"]["namespace"] = orphan
        r = self.server.request("POST", collection_path("LanguageModel", orphan), json.dumps(both),
                                headers={"Content-Type": "application/json"})
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertIn("not managed by a LanguageCluster", s["message"], s)
        r = self.patch("both", orphan, yaml.safe_dump(both), APPLY, "?fieldManager=it-apply")
        self.assertStatus(r, 403, "Forbidden")
        # a valid object there: 403 as well, from the writer's check alone
        r = self.server.request("POST", collection_path("LanguageModel", orphan),
                                json.dumps(model("fine", orphan)), headers={"Content-Type": "application/json"})
        self.assertStatus(r, 403, "Forbidden")
        # a full cluster: the invalid object is 422 (validation before quota), a valid one 403
        ns = f"patch-order-full-{self._ns_counter + 1}"
        ServerTestCase._ns_counter += 1
        self.create(obj("LanguageCluster", ns, spec={"domain": f"{ns}.example.com",
                                                    "capacity": {"maxModels": 1}}))
        self.create(model("first", ns))
        both["metadata"]["namespace"] = ns
        r = self.server.request("POST", collection_path("LanguageModel", ns), json.dumps(both),
                                headers={"Content-Type": "application/json"})
        self.assertStatus(r, 422, "Invalid")
        r = self.patch("both", ns, yaml.safe_dump(both), APPLY, "?fieldManager=it-apply")
        self.assertStatus(r, 422, "Invalid")
        r = self.server.request("POST", collection_path("LanguageModel", ns),
                                json.dumps(model("second", ns)), headers={"Content-Type": "application/json"})
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertIn("maxModels", s["message"], s)

    def test_json_patch_changing_the_name_is_400(self):
        ns = self.new_namespace()
        before = self.create(model("named", ns))
        r = self.patch("named", ns, [{"op": "replace", "path": "/metadata/name", "value": "renamed"}],
                       JSON_PATCH)
        s = self.assertStatus(r, 400, "BadRequest")
        # kube: "the name of the object (renamed) does not match the name on the URL (named)"
        self.assertIn("renamed", s["message"], s)
        self.assertIn("named", s["message"].replace("renamed", ""), s)
        self.assertUnchanged(before, ns)
        self.api("GET", item_path("LanguageModel", "renamed", ns), expect=404)

    def test_patch_with_a_stale_resource_version_is_409(self):
        ns = self.new_namespace()
        first = self.create(model("stale", ns))
        old_rv = first["metadata"]["resourceVersion"]
        r = self.patch("stale", ns, {"spec": {"modelName": "gpt-5"}}, MERGE)
        self.assertEqual(r.status, 200, r)
        current = r.json()
        self.assertNotEqual(current["metadata"]["resourceVersion"], old_rv)

        for body, ctype in (
                ({"metadata": {"resourceVersion": old_rv}, "spec": {"modelName": "gpt-stale"}}, MERGE),
                ([{"op": "replace", "path": "/metadata/resourceVersion", "value": old_rv},
                  {"op": "replace", "path": "/spec/modelName", "value": "gpt-stale"}], JSON_PATCH)):
            with self.subTest(content_type=ctype):
                s = self.assertStatus(self.patch("stale", ns, body, ctype), 409, "Conflict")
                self.assertIn("modified", s["message"], s)
                self.assertUnchanged(current, ns)

        # the current resourceVersion inside the patch is accepted
        r = self.patch("stale", ns, {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                                     "spec": {"modelName": "gpt-fresh"}}, MERGE)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["spec"]["modelName"], "gpt-fresh")

    # ------------------------------------------------- the status subresource

    def test_merge_and_json_patch_on_status_change_only_status(self):
        ns = self.new_namespace()
        before = self.create(model("st", ns))
        gen = before["metadata"]["generation"]

        r = self.patch("st", ns, {"spec": {"modelName": "from-status"}, "status": {"observedGeneration": 1},
                                  "metadata": {"labels": {"x": "y"}}}, MERGE, subresource="status")
        self.assertEqual(r.status, 200, r)
        o = self.get("LanguageModel", "st", ns)
        self.assertEqual(o["status"].get("observedGeneration"), 1, o)
        self.assertEqual(o["spec"], before["spec"])
        self.assertEqual(o["metadata"]["generation"], gen)
        self.assertNotIn("labels", o["metadata"])   # as for CRDs: a status write keeps the old metadata

        r = self.patch("st", ns, [{"op": "replace", "path": "/spec/modelName", "value": "from-json"},
                                  {"op": "replace", "path": "/status/observedGeneration", "value": 2}],
                       JSON_PATCH, subresource="status")
        self.assertEqual(r.status, 200, r)
        o = self.get("LanguageModel", "st", ns)
        self.assertEqual(o["status"].get("observedGeneration"), 2, o)
        self.assertEqual(o["spec"], before["spec"])
        self.assertEqual(o["metadata"]["generation"], gen)

        # an invalid status is refused like any invalid write
        s = self.assertStatus(self.patch("st", ns, {"status": {"observedGeneration": -1}}, MERGE,
                                         subresource="status"), 422, "Invalid")
        self.assertIn("status.observedGeneration", cause_fields(s), s)
        self.assertEqual(self.get("LanguageModel", "st", ns)["status"].get("observedGeneration"), 2)

    def test_kubectl_patch_subresource_status(self):
        ns = self.new_namespace()
        before = self.create(model("kst", ns))
        r = self.kubectl("patch", "lmodel", "kst", "-n", ns, "--subresource=status", "--type=merge",
                         "-p", '{"spec":{"modelName":"sneaky"},"status":{"observedGeneration":1}}')
        self.assertEqual(r.out.strip(), "languagemodel.langop.io/kst patched")
        o = self.get("LanguageModel", "kst", ns)
        self.assertEqual(o["status"].get("observedGeneration"), 1, o)
        self.assertEqual(o["spec"], before["spec"])
        self.assertEqual(o["metadata"]["generation"], before["metadata"]["generation"])

        r = self.kubectl("patch", "lmodel", "kst", "-n", ns, "--subresource=status", "--type=json",
                         "-p", '[{"op":"replace","path":"/status/observedGeneration","value":3},'
                               '{"op":"replace","path":"/spec/modelName","value":"sneaky"}]')
        o = self.get("LanguageModel", "kst", ns)
        self.assertEqual(o["status"].get("observedGeneration"), 3)
        self.assertEqual(o["spec"], before["spec"])

    def test_server_side_apply_on_status(self):
        ns = self.new_namespace()
        before = self.create(model("sst", ns))
        manifest = {"apiVersion": API_VERSION, "kind": "LanguageModel",
                    "metadata": {"name": "sst", "namespace": ns},
                    "spec": {"provider": "openai", "modelName": "sneaky-apply"},
                    "status": {"observedGeneration": 1}}

        # kubectl apply --server-side --subresource=status
        r = self.kubectl("apply", "--server-side", "--subresource=status", "--field-manager=status-ctl",
                         "-f", self.write_yaml(manifest))
        self.assertIn("serverside-applied", r.out, r)
        o = json.loads(self.kubectl("get", "lmodel", "sst", "-n", ns, "-o", "json",
                                    "--show-managed-fields").out)
        self.assertEqual(o["status"].get("observedGeneration"), 1, o)
        self.assertEqual(o["spec"], before["spec"])
        self.assertEqual(o["metadata"]["generation"], before["metadata"]["generation"])
        mine = [m for m in o["metadata"].get("managedFields", []) if m["manager"] == "status-ctl"]
        self.assertEqual(len(mine), 1, o["metadata"].get("managedFields"))
        self.assertEqual(mine[0]["operation"], "Apply")
        self.assertEqual(mine[0].get("subresource"), "status", mine)
        self.assertIn("f:observedGeneration", mine[0]["fieldsV1"].get("f:status", {}), mine)
        self.assertNotIn("f:spec", mine[0]["fieldsV1"], mine)

        # raw apply-patch on /status by another manager: observedGeneration is status-ctl's
        manifest["status"]["observedGeneration"] = 2
        r = self.patch("sst", ns, yaml.safe_dump(manifest), APPLY, "?fieldManager=status-raw",
                       subresource="status")
        s = self.assertStatus(r, 409, "Conflict")
        self.assertIn(".status.observedGeneration", s["message"], s)
        self.assertEqual(self.get("LanguageModel", "sst", ns)["status"].get("observedGeneration"), 1)
        r = self.patch("sst", ns, yaml.safe_dump(manifest), APPLY,
                       "?fieldManager=status-raw&force=true", subresource="status")
        self.assertEqual(r.status, 200, r)
        o = self.get("LanguageModel", "sst", ns)
        self.assertEqual(o["status"].get("observedGeneration"), 2, o)
        self.assertEqual(o["spec"], before["spec"])
        self.assertEqual(o["metadata"]["generation"], before["metadata"]["generation"])

    def test_main_resource_patch_leaves_status_alone(self):
        ns = self.new_namespace()
        before = self.create(model("mst", ns))
        r = self.patch("mst", ns, {"status": {"observedGeneration": 1}}, MERGE, subresource="status")
        self.assertEqual(r.status, 200, r)

        for body, ctype in (
                ({"spec": {"modelName": "gpt-merge"}, "status": {"observedGeneration": 2}}, MERGE),
                ([{"op": "replace", "path": "/spec/modelName", "value": "gpt-json"},
                  {"op": "replace", "path": "/status/observedGeneration", "value": 2}], JSON_PATCH)):
            with self.subTest(content_type=ctype):
                r = self.patch("mst", ns, body, ctype)
                self.assertEqual(r.status, 200, r)
                o = self.get("LanguageModel", "mst", ns)
                self.assertEqual(o["status"].get("observedGeneration"), 1, o)
                self.assertNotEqual(o["spec"]["modelName"], before["spec"]["modelName"])

        r = self.kubectl("patch", "lmodel", "mst", "-n", ns, "--type=merge",
                         "-p", '{"spec":{"modelName":"gpt-kubectl"},"status":{"observedGeneration":2}}')
        o = self.get("LanguageModel", "mst", ns)
        self.assertEqual(o["spec"]["modelName"], "gpt-kubectl")
        self.assertEqual(o["status"].get("observedGeneration"), 1, o)
        self.assertEqual(o["metadata"]["generation"], before["metadata"]["generation"] + 3)
