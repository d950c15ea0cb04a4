"""Changing objects the ways users and controllers do: kubectl apply
(client-side and server-side, with a conflict between field managers),
edit, patch --type=json|merge, label, annotate, get -w, delete --wait on a
finalizer, delete -l, apply --dry-run=server and diff; python3-kubernetes'
patch() (strategic merge by default) and server_side_apply()."""

import json
import os
import queue
import subprocess
import threading
import time
from unittest import mock

import yaml
from kubernetes.dynamic import exceptions as dynerr

from harness import KUBECTL, RV_RE, ServerTestCase, item_path, model, table

MODEL = "languagemodel.langop.io"


def managers(o):
    """{manager: (operation, fieldsV1)} from an object's managedFields."""
    return {m["manager"]: (m["operation"], m.get("fieldsV1", {}))
            for m in o["metadata"].get("managedFields", [])}


class Background:
    """A kubectl that keeps running (get -w, delete --wait): its stdout lines
    arrive in a queue, read with a timeout."""

    def __init__(self, test, *args):
        cmd = [KUBECTL, f"--kubeconfig={test.server.kubeconfig}", f"--cache-dir={test.kube_cache}",
               *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.t0 = time.monotonic()
        test.addCleanup(self.stop)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def line(self, timeout=10):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"kubectl printed nothing for {timeout}s") from None
        if line is None:
            raise AssertionError(f"kubectl ended: {self.proc.wait()} {self.proc.stderr.read()}")
        return line

    def json_object(self, timeout=10):
        """The next object of `-o json` output (kubectl indents everything but
        the top-level braces)."""
        text = ""
        while True:
            line = self.line(timeout)
            text += line
            if line.rstrip("\n") == "}":
                return json.loads(text)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class KubectlChangeTest(ServerTestCase):

    def manifest(self, name, ns, model_name="gpt-4o", labels=None, **spec):
        o = model(name, ns, labels=labels)
        o["spec"]["modelName"] = model_name
        o["spec"].update(spec)
        return self.write_yaml(o)

    def live(self, name, ns):
        return json.loads(self.kubectl("get", "lmodel", name, "-n", ns, "-o", "json",
                                       "--show-managed-fields").out)

    # -------------------------------------------------------------- apply

    def test_apply_client_side_twice(self):
        ns = self.new_namespace()
        first = self.manifest("ap", ns, labels={"tier": "gold", "env": "dev"})
        r = self.kubectl("apply", "-f", first)
        self.assertEqual(r.out.strip(), f"{MODEL}/ap created")
        o = self.live("ap", ns)
        last = json.loads(o["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
        self.assertEqual(last["spec"]["modelName"], "gpt-4o")
        self.assertEqual(o["metadata"]["generation"], 1)

        r = self.kubectl("apply", "-f", first)
        self.assertEqual(r.out.strip(), f"{MODEL}/ap unchanged")
        self.assertEqual(self.live("ap", ns)["metadata"]["resourceVersion"],
                         o["metadata"]["resourceVersion"])

        # changed model, dropped label: the three-way merge removes what was applied before
        second = self.manifest("ap", ns, "gpt-5", labels={"tier": "gold"})
        r = self.kubectl("apply", "-f", second)
        self.assertEqual(r.out.strip(), f"{MODEL}/ap configured")
        o2 = self.live("ap", ns)
        self.assertEqual(o2["spec"]["modelName"], "gpt-5")
        self.assertEqual(o2["metadata"]["labels"], {"tier": "gold"})
        self.assertEqual(o2["metadata"]["generation"], 2)
        self.assertEqual(o2["metadata"]["uid"], o["metadata"]["uid"])
        last = json.loads(o2["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
        self.assertEqual(last["spec"]["modelName"], "gpt-5")
        op, fields = managers(o2)["kubectl-client-side-apply"]
        self.assertEqual(op, "Update")
        self.assertIn("f:modelName", fields["f:spec"])

    def test_apply_server_side_and_conflict_between_managers(self):
        ns = self.new_namespace()
        r = self.kubectl("apply", "--server-side", "-f",
                         self.manifest("ssa", ns, endpoint="https://a.example.com"))
        self.assertEqual(r.out.strip(), f"{MODEL}/ssa serverside-applied")
        o = self.live("ssa", ns)
        self.assertNotIn("annotations", o["metadata"])        # no last-applied with SSA
        op, fields = managers(o)["kubectl"]
        self.assertEqual(op, "Apply")
        for f in ("f:provider", "f:modelName", "f:endpoint"):
            self.assertIn(f, fields["f:spec"], fields)

        # another manager changing two of kubectl's fields: refused, naming both and the owner
        other = self.manifest("ssa", ns, "gpt-5", endpoint="https://b.example.com")
        r = self.kubectl("apply", "--server-side", "--field-manager=other", "-f", other, ok=False)
        self.assertIn("Apply failed with 2 conflicts", r.err)
        self.assertIn('conflicts with "kubectl"', r.err)
        self.assertIn(".spec.modelName", r.err)
        self.assertIn(".spec.endpoint", r.err)
        after = self.live("ssa", ns)
        self.assertEqual(after["metadata"]["resourceVersion"], o["metadata"]["resourceVersion"])
        self.assertEqual(after["spec"]["modelName"], "gpt-4o")

        # --force-conflicts takes the fields over
        r = self.kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts",
                         "-f", other)
        self.assertEqual(r.out.strip(), f"{MODEL}/ssa serverside-applied")
        o = self.live("ssa", ns)
        self.assertEqual((o["spec"]["modelName"], o["spec"]["endpoint"]),
                         ("gpt-5", "https://b.example.com"))
        ms = managers(o)
        self.assertEqual(ms["other"][0], "Apply")
        self.assertIn("f:modelName", ms["other"][1]["f:spec"])
        self.assertIn("f:endpoint", ms["other"][1]["f:spec"])
        # kubectl keeps what nobody took from it (provider, which both apply with one value)
        self.assertEqual(ms["kubectl"][0], "Apply")
        self.assertIn("f:provider", ms["kubectl"][1]["f:spec"])
        self.assertNotIn("f:modelName", ms["kubectl"][1]["f:spec"])
        self.assertNotIn("f:endpoint", ms["kubectl"][1]["f:spec"])

    def test_apply_dry_run_server_changes_nothing(self):
        ns = self.new_namespace()
        path = self.manifest("dry", ns)
        self.kubectl("apply", "-f", path)
        before = self.live("dry", ns)
        r = self.kubectl("apply", "--dry-run=server", "-f", self.manifest("dry", ns, "gpt-dry"))
        self.assertEqual(r.out.strip(), f"{MODEL}/dry configured (server dry run)")
        after = self.live("dry", ns)
        self.assertEqual(after, before)

        r = self.kubectl("apply", "--dry-run=server", "-f", self.manifest("dry-new", ns))
        self.assertEqual(r.out.strip(), f"{MODEL}/dry-new created (server dry run)")
        r = self.kubectl("get", "lmodel", "dry-new", "-n", ns, ok=False)
        self.assertIn("(NotFound)", r.err)

    def test_diff(self):
        ns = self.new_namespace()
        path = self.manifest("df", ns)
        self.kubectl("apply", "-f", path)
        r = self.kubectl("diff", "-f", path, ok=None)
        self.assertEqual((r.rc, r.out), (0, ""), r)

        changed = self.manifest("df", ns, "gpt-diff")
        r = self.kubectl("diff", "-f", changed, ok=None)
        self.assertEqual(r.rc, 1, r)
        self.assertRegex(r.out, r"(?m)^-\s+modelName: gpt-4o$", r)
        self.assertRegex(r.out, r"(?m)^\+\s+modelName: gpt-diff$", r)
        # diff is a dry run: nothing changed
        self.assertEqual(self.live("df", ns)["spec"]["modelName"], "gpt-4o")

    # ------------------------------------------------- edit, patch, labels

    def test_edit_with_editor_script(self):
        ns = self.new_namespace()
        self.kubectl("apply", "-f", self.manifest("ed", ns))
        script = self.tmp / "editor.sh"
        script.write_text('#!/bin/sh\nsed -i "s/^  modelName: gpt-4o$/  modelName: gpt-edited/" "$1"\n')
        script.chmod(0o755)
        with mock.patch.dict(os.environ, {"EDITOR": str(script), "KUBE_EDITOR": str(script)}):
            r = self.kubectl("edit", "lmodel", "ed", "-n", ns)
        self.assertEqual(r.out.strip(), f"{MODEL}/ed edited")
        o = self.live("ed", ns)
        self.assertEqual(o["spec"]["modelName"], "gpt-edited")
        self.assertEqual(o["metadata"]["generation"], 2)
        op, fields = managers(o)["kubectl-edit"]
        self.assertEqual(op, "Update")
        self.assertIn("f:modelName", fields["f:spec"])

    def test_patch_json_and_merge(self):
        ns = self.new_namespace()
        self.kubectl("apply", "-f", self.manifest("pt", ns, labels={"tier": "gold"}))
        r = self.kubectl("patch", "lmodel", "pt", "-n", ns, "--type=json", "-p", json.dumps([
            {"op": "replace", "path": "/spec/modelName", "value": "gpt-json"},
            {"op": "add", "path": "/metadata/labels/env", "value": "prod"}]))
        self.assertEqual(r.out.strip(), f"{MODEL}/pt patched")
        o = self.live("pt", ns)
        self.assertEqual(o["spec"]["modelName"], "gpt-json")
        self.assertEqual(o["metadata"]["labels"], {"tier": "gold", "env": "prod"})

        # the same patch again changes nothing, and kubectl sees that
        r = self.kubectl("patch", "lmodel", "pt", "-n", ns, "--type=json", "-p",
                         '[{"op":"replace","path":"/spec/modelName","value":"gpt-json"}]')
        self.assertEqual(r.out.strip(), f"{MODEL}/pt patched (no change)")
        self.assertEqual(self.live("pt", ns)["metadata"]["resourceVersion"], o["metadata"]["resourceVersion"])

        # a failing test op refuses the whole patch
        r = self.kubectl("patch", "lmodel", "pt", "-n", ns, "--type=json", "-p", json.dumps([
            {"op": "replace", "path": "/spec/modelName", "value": "never"},
            {"op": "test", "path": "/spec/provider", "value": "anthropic"}]), ok=False)
        self.assertIn("/spec/provider", r.err)
        self.assertEqual(self.live("pt", ns)["spec"]["modelName"], "gpt-json")

        r = self.kubectl("patch", "lmodel", "pt", "-n", ns, "--type=merge", "-p", json.dumps(
            {"spec": {"endpoint": "https://m.example.com"}, "metadata": {"labels": {"tier": None}}}))
        self.assertEqual(r.out.strip(), f"{MODEL}/pt patched")
        o = self.live("pt", ns)
        self.assertEqual(o["spec"]["endpoint"], "https://m.example.com")
        self.assertEqual(o["spec"]["modelName"], "gpt-json")
        self.assertEqual(o["metadata"]["labels"], {"env": "prod"})
        op, fields = managers(o)["kubectl-patch"]
        self.assertEqual(op, "Update")
        self.assertIn("f:endpoint", fields["f:spec"])

        # a patch the schema refuses changes nothing
        r = self.kubectl("patch", "lmodel", "pt", "-n", ns, "--type=merge", "-p",
                         '{"spec":{"provider":null}}', ok=False)
        self.assertIn("is invalid", r.err)
        self.assertEqual(self.live("pt", ns)["spec"]["provider"], "openai")

    def test_label_and_annotate(self):
        ns = self.new_namespace()
        self.kubectl("apply", "-f", self.manifest("lb", ns))
        r = self.kubectl("label", "lmodel", "lb", "-n", ns, "tier=gold")
        self.assertEqual(r.out.strip(), f"{MODEL}/lb labeled")
        r = self.kubectl("label", "lmodel", "lb", "-n", ns, "tier=silver", ok=False)
        self.assertIn("'tier' already has a value (gold)", r.err)
        r = self.kubectl("label", "lmodel", "lb", "-n", ns, "tier=silver", "--overwrite")
        self.assertEqual(r.out.strip(), f"{MODEL}/lb labeled")
        r = self.kubectl("get", "lmodel", "-n", ns, "-l", "tier=silver", "-o", "name")
        self.assertEqual(r.out.strip(), f"{MODEL}/lb")

        r = self.kubectl("annotate", "lmodel", "lb", "-n", ns, "note=hello world")
        self.assertEqual(r.out.strip(), f"{MODEL}/lb annotated")
        o = self.live("lb", ns)
        self.assertEqual(o["metadata"]["labels"], {"tier": "silver"})
        self.assertEqual(o["metadata"]["annotations"]["note"], "hello world")
        self.assertEqual(o["metadata"]["generation"], 1)       # metadata only
        ms = managers(o)
        self.assertIn("f:tier", ms["kubectl-label"][1]["f:metadata"]["f:labels"])
        self.assertIn("f:note", ms["kubectl-annotate"][1]["f:metadata"]["f:annotations"])

        r = self.kubectl("label", "lmodel", "lb", "-n", ns, "tier-")
        self.assertEqual(r.out.strip(), f"{MODEL}/lb unlabeled")
        r = self.kubectl("annotate", "lmodel", "lb", "-n", ns, "note-")
        self.assertEqual(r.out.strip(), f"{MODEL}/lb annotated")
        o = self.live("lb", ns)
        self.assertFalse(o["metadata"].get("labels"), o["metadata"])
        self.assertNotIn("note", o["metadata"].get("annotations") or {})

    # --------------------------------------------------------------- watch

    def test_get_watch_prints_rows_as_they_happen(self):
        ns = self.new_namespace()
        self.kubectl("apply", "-f", self.manifest("wa", ns))
        w = Background(self, "get", "lmodel", "-n", ns, "-w")
        header = w.line()
        self.assertEqual(header.split()[:3], ["NAME", "PROVIDER", "MODEL"], header)
        self.assertEqual(table(header + w.line())[1][0][:3], ["wa", "openai", "gpt-4o"])

        # each event's row is aligned on its own, not under the header: split on blanks
        # (NAME, PROVIDER and MODEL are set, so the first three words are those)
        def row():
            return w.line().split()[:3]
        time.sleep(0.5)   # kubectl has listed; its watch starts at the list's rv, nothing is lost
        self.kubectl("apply", "-f", self.manifest("wb", ns))
        self.assertEqual(row(), ["wb", "openai", "gpt-4o"])
        self.kubectl("patch", "lmodel", "wa", "-n", ns, "--type=merge", "-p",
                     '{"spec":{"modelName":"gpt-watched"}}')
        self.assertEqual(row(), ["wa", "openai", "gpt-watched"])
        self.kubectl("delete", "lmodel", "wb", "-n", ns)
        self.assertEqual(row(), ["wb", "openai", "gpt-4o"])
        self.assertIsNone(w.proc.poll(), "kubectl get -w ended")

    def test_get_watch_json(self):
        ns = self.new_namespace()
        self.kubectl("apply", "-f", self.manifest("wj", ns))
        w = Background(self, "get", "lmodel", "-n", ns, "-w", "-o", "json")
        first = w.json_object()
        self.assertEqual((first["kind"], first["metadata"]["name"]), ("LanguageModel", "wj"), first)
        time.sleep(0.5)
        self.kubectl("patch", "lmodel", "wj", "-n", ns, "--type=merge", "-p",
                     '{"spec":{"modelName":"gpt-json-watch"}}')
        o = w.json_object()
        self.assertEqual((o["metadata"]["name"], o["spec"]["modelName"]), ("wj", "gpt-json-watch"))
        self.assertEqual(o["metadata"]["resourceVersion"], self.live("wj", ns)["metadata"]["resourceVersion"])
        self.assertGreater(int(o["metadata"]["resourceVersion"]), int(first["metadata"]["resourceVersion"]))
        self.kubectl("delete", "lmodel", "wj", "-n", ns)
        o = w.json_object()
        self.assertEqual(o["metadata"]["name"], "wj")
        self.assertRegex(o["metadata"]["resourceVersion"], RV_RE)

    # -------------------------------------------------------------- delete

    def test_delete_wait_for_finalizer_removed_by_another_client(self):
        ns = self.new_namespace()
        o = model("fin", ns, finalizers=["langop.io/hold"])
        self.kubectl("create", "-f", self.write_yaml(o))
        d = Background(self, "delete", "lmodel", "fin", "-n", ns, "--wait", "--timeout=30s")
        self.assertEqual(d.line().strip(), f'{MODEL} "fin" deleted')
        time.sleep(1.0)
        self.assertIsNone(d.proc.poll(), "kubectl delete --wait returned while the finalizer holds")
        held = self.live("fin", ns)
        self.assertTrue(held["metadata"].get("deletionTimestamp"), held["metadata"])

        # a controller removes its finalizer: kubectl must notice and return
        removed_at = time.monotonic()
        self.api("PATCH", item_path("LanguageModel", "fin", ns),
                 '[{"op":"remove","path":"/metadata/finalizers"}]',
                 headers={"Content-Type": "application/json-patch+json"}, expect=200)
        rc = d.proc.wait(15)
        self.assertEqual(rc, 0, d.proc.stderr.read())
        self.assertLess(time.monotonic() - removed_at, 10)
        r = self.kubectl("get", "lmodel", "fin", "-n", ns, ok=False)
        self.assertIn("(NotFound)", r.err)

    def test_delete_by_label(self):
        ns = self.new_namespace()
        objs = [model("gold-1", ns, labels={"tier": "gold"}), model("gold-2", ns, labels={"tier": "gold"}),
                model("silver", ns, labels={"tier": "silver"})]
        self.kubectl("create", "-f", self.write_yaml(*objs))
        r = self.kubectl("delete", "lmodel", "-n", ns, "-l", "tier=gold")
        self.assertEqual(sorted(r.lines()), [f'{MODEL} "gold-1" deleted', f'{MODEL} "gold-2" deleted'])
        r = self.kubectl("get", "lmodel", "-n", ns, "-o", "name")
        self.assertEqual(r.out.strip(), f"{MODEL}/silver")
        r = self.kubectl("delete", "lmodel", "-n", ns, "-l", "tier=gold")
        self.assertEqual(r.out.strip(), "No resources found")


class PythonPatchApplyTest(ServerTestCase):
    """python3-kubernetes' DynamicClient: patch() and server_side_apply()."""

    def setUp(self):
        self.lm = self.resource("LanguageModel")

    def test_patch_default_strategic_merge(self):
        ns = self.new_namespace()
        self.create(model("smp", ns, labels={"tier": "gold", "env": "dev"}))
        # no content_type: the client sends application/strategic-merge-patch+json
        o = self.lm.patch(body={"spec": {"modelName": "gpt-smp", "endpoint": "https://s.example.com"},
                                "metadata": {"labels": {"env": None, "new": "yes"}}},
                          name="smp", namespace=ns).to_dict()
        self.assertEqual(o["spec"]["modelName"], "gpt-smp")
        self.assertEqual(o["spec"]["endpoint"], "https://s.example.com")
        self.assertEqual(o["spec"]["provider"], "openai")
        self.assertEqual(o["metadata"]["labels"], {"tier": "gold", "new": "yes"})
        self.assertEqual(self.get("LanguageModel", "smp", ns), o)

    def test_strategic_merge_directives_are_refused(self):
        ns = self.new_namespace()
        before = self.create(model("dir", ns))
        bodies = {
            "$patch": {"spec": {"$patch": "replace", "modelName": "x"}},
            "$retainKeys": {"spec": {"$retainKeys": ["modelName"], "modelName": "x"}},
            "$setElementOrder": {"metadata": {"$setElementOrder/finalizers": ["a"]}},
            "$deleteFromPrimitiveList": {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
        }
        for what, body in bodies.items():
            with self.subTest(directive=what):
                with self.assertRaises(dynerr.BadRequestError) as cm:
                    self.lm.patch(body=body, name="dir", namespace=ns)
                self.assertEqual(cm.exception.status, 400)
                st = json.loads(cm.exception.body)
                self.assertEqual((st["kind"], st["reason"]), ("Status", "BadRequest"), st)
        self.assertEqual(self.get("LanguageModel", "dir", ns)["metadata"]["resourceVersion"],
                         before["metadata"]["resourceVersion"])

    def apply(self, ns, text, manager, force=None):
        """server_side_apply with a string body; returns (HTTP status, object)."""
        resp, status, _ = self.lm.server_side_apply(
            body=text, name="py-ssa", namespace=ns, field_manager=manager, force_conflicts=force,
            serialize=False, _return_http_data_only=False)
        return status, json.loads(resp.data)

    def test_server_side_apply_create_update_conflict(self):
        ns = self.new_namespace()
        manifest = model("py-ssa", ns, labels={"app": "py"})
        manifest["spec"]["endpoint"] = "https://p.example.com"
        status, o = self.apply(ns, yaml.safe_dump(manifest), "py-ctl")
        self.assertEqual(status, 201)
        self.assertEqual(o["spec"]["endpoint"], "https://p.example.com")
        self.assertEqual(managers(o)["py-ctl"][0], "Apply")

        # JSON text, a changed field and one left out: updated, and the dropped field removed
        manifest["spec"]["modelName"] = "gpt-py"
        del manifest["spec"]["endpoint"]
        status, o = self.apply(ns, json.dumps(manifest), "py-ctl", force=False)
        self.assertEqual(status, 200)
        self.assertEqual(o["spec"]["modelName"], "gpt-py")
        self.assertNotIn("endpoint", o["spec"])
        self.assertNotIn("f:endpoint", managers(o)["py-ctl"][1]["f:spec"])
        self.assertEqual(self.get("LanguageModel", "py-ssa", ns), o)

        # another manager: one 409 cause per conflicting field, then force
        theirs = model("py-ssa", ns, labels={"app": "theirs"})
        theirs["spec"]["modelName"] = "gpt-theirs"
        with self.assertRaises(dynerr.ConflictError) as cm:
            self.apply(ns, json.dumps(theirs), "py-other")
        st = json.loads(cm.exception.body)
        self.assertEqual((st["code"], st["reason"]), (409, "Conflict"), st)
        causes = sorted((c["reason"], c["field"]) for c in st["details"]["causes"])
        self.assertEqual(causes, [("FieldManagerConflict", ".metadata.labels.app"),
                                  ("FieldManagerConflict", ".spec.modelName")], st)
        self.assertIn('"py-ctl"', st["message"])
        # fieldManager is required for apply: kube's 422 on PatchOptions
        with self.assertRaises(dynerr.UnprocessibleEntityError) as cm:
            self.lm.server_side_apply(body=json.dumps(theirs), name="py-ssa", namespace=ns)
        st = json.loads(cm.exception.body)
        self.assertEqual([c["field"] for c in st["details"]["causes"]], ["fieldManager"], st)
        # the client sends force=True (Python's spelling); kube parses it as true
        status, o = self.apply(ns, json.dumps(theirs), "py-other", force=True)
        self.assertEqual(status, 200)
        self.assertEqual((o["spec"]["modelName"], o["metadata"]["labels"]["app"]),
                         ("gpt-theirs", "theirs"))
        self.assertIn("f:modelName", managers(o)["py-other"][1]["f:spec"])

