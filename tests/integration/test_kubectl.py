"""What a user sees with the installed kubectl: create, get, -o yaml/json, -A,
-l, --chunk-size, replace (and its Conflict), delete (with and without a
finalizer), NotFound, generateName, invalid names, server dry run, discovery
(api-resources, the langop category)."""

import datetime
import json
import os
import re
import subprocess

import yaml

from harness import (KUBECTL, RFC3339_RE, RV_RE, UUID_RE, ServerTestCase, agent, model,
                     persona, table, tool)

MODEL = "languagemodel.langop.io"


def names_of(res):
    """Object names from `kubectl get ... -o name` output."""
    out = []
    for line in res.lines():
        kind, _, name = line.partition("/")
        out.append(name)
    return out


class KubectlTest(ServerTestCase):

    def create_with_kubectl(self, *objs, extra=()):
        path = self.write_yaml(*objs)
        return self.kubectl("create", "--validate=false", "-f", path, *extra)

    # ------------------------------------------------------------ create/get

    def test_create_then_get_table(self):
        ns = self.new_namespace()
        r = self.create_with_kubectl(model("gpt", ns))
        self.assertEqual(r.out.strip(), f"{MODEL}/gpt created")

        r = self.kubectl("get", "languagemodels", "-n", ns)
        header, rows = table(r.out)
        self.assertEqual(header[0], "NAME", r)
        self.assertIn("AGE", header, r)
        self.assertEqual(len(rows), 1, r)
        self.assertEqual(rows[0][0], "gpt", r)
        age = rows[0][header.index("AGE")]
        # a fresh object: "0s" .. "59s" (or a minute or two on a slow machine)
        self.assertRegex(age, r"^([0-9]+s|[0-9]+m([0-9]+s)?)$", r)

        # the short name and the singular name reach the same object
        for name in ("lmodel", "languagemodel"):
            r = self.kubectl("get", name, "gpt", "-n", ns)
            self.assertEqual(table(r.out)[1][0][0], "gpt", r)

    def test_get_yaml_and_json_fields(self):
        ns = self.new_namespace()
        before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        self.create_with_kubectl(model("gpt", ns, labels={"tier": "gold"}))

        y = yaml.safe_load(self.kubectl("get", "lmodel", "gpt", "-n", ns, "-o", "yaml").out)
        self.assertEqual(y["apiVersion"], "langop.io/v1alpha1")
        self.assertEqual(y["kind"], "LanguageModel")
        md = y["metadata"]
        self.assertEqual(md["name"], "gpt")
        self.assertEqual(md["namespace"], ns)
        self.assertEqual(md["labels"], {"tier": "gold"})
        self.assertRegex(md["uid"], UUID_RE)
        self.assertRegex(md["resourceVersion"], RV_RE)
        self.assertEqual(md["generation"], 1)
        ts = md["creationTimestamp"]
        # PyYAML turns an unquoted timestamp into a datetime; kubectl quotes it
        self.assertIsInstance(ts, str, y)
        self.assertRegex(ts, RFC3339_RE)
        created = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        self.assertLessEqual(abs((created - before).total_seconds()), 120, ts)
        self.assertEqual(y["spec"]["provider"], "openai")
        self.assertEqual(y["spec"]["modelName"], "gpt-4o")

        j = json.loads(self.kubectl("get", "lmodel", "gpt", "-n", ns, "-o", "json").out)
        self.assertEqual(j["metadata"]["uid"], md["uid"])
        self.assertEqual(j["metadata"]["resourceVersion"], md["resourceVersion"])
        self.assertEqual(j["metadata"]["creationTimestamp"], ts)
        self.assertEqual(j["spec"], y["spec"])

        r = self.kubectl("get", "lmodel", "gpt", "-n", ns, "-o", "jsonpath={.metadata.uid}")
        self.assertEqual(r.out, md["uid"])

    def test_get_all_namespaces(self):
        ns1, ns2 = self.new_namespace("all-a"), self.new_namespace("all-b")
        self.create_with_kubectl(model("m-one", ns1), model("m-two", ns2))
        r = self.kubectl("get", "languagemodels", "-A")
        header, rows = table(r.out)
        self.assertEqual(header[:2], ["NAMESPACE", "NAME"], r)
        self.assertIn("AGE", header, r)
        pairs = {(row[0], row[1]) for row in rows}
        self.assertIn((ns1, "m-one"), pairs, r)
        self.assertIn((ns2, "m-two"), pairs, r)
        self.assertNotIn((ns1, "m-two"), pairs, r)

        # a namespaced get sees only its own namespace
        r = self.kubectl("get", "lmodel", "-n", ns1, "-o", "name")
        self.assertEqual(names_of(r), ["m-one"], r)

    def test_label_selectors(self):
        ns = self.new_namespace()
        self.create_with_kubectl(
            model("a", ns, labels={"tier": "gold", "env": "prod"}),
            model("b", ns, labels={"tier": "silver", "env": "prod"}),
            model("c", ns, labels={"tier": "bronze"}),
            model("d", ns),
            model("e", ns, labels={"tier": "gold"}))
        cases = {
            "tier=gold": {"a", "e"},
            "tier==gold": {"a", "e"},
            "tier!=gold": {"b", "c", "d"},
            "tier in (gold,silver)": {"a", "b", "e"},
            "tier notin (gold,silver)": {"c", "d"},
            "tier": {"a", "b", "c", "e"},
            "!tier": {"d"},
            "tier=gold,env=prod": {"a"},
            "env,tier!=silver": {"a"},
            "tier=platinum": set(),
        }
        for sel, want in cases.items():
            with self.subTest(selector=sel):
                r = self.kubectl("get", "lmodel", "-n", ns, "-l", sel, "-o", "name")
                got = names_of(r)
                self.assertEqual(sorted(got), sorted(want), r)

    def test_chunk_size_one_across_pages(self):
        ns = self.new_namespace()
        names = [f"chunk-{i}" for i in range(5)]
        self.create_with_kubectl(*[model(n, ns) for n in names])

        # -v=6 makes kubectl log each request: the list must really be paged
        r = self.kubectl("get", "lmodel", "-n", ns, "--chunk-size=1", "-o", "name", "-v=6")
        self.assertEqual(sorted(names_of(r)), names, r)
        reqs = [l for l in r.err.splitlines()
                if re.search(r"GET https://\S+/namespaces/" + ns + r"/languagemodels\?\S*limit=1", l)]
        self.assertGreaterEqual(len(reqs), 5, r.err[-3000:])
        self.assertGreaterEqual(sum("continue=" in l for l in reqs), 4, reqs)

        # and the default (Table) output lists every row exactly once
        r = self.kubectl("get", "lmodel", "-n", ns, "--chunk-size=1")
        rows = [l.split()[0] for l in r.lines() if not l.startswith("NAME")]
        self.assertEqual(sorted(rows), names, r)

    # ----------------------------------------------------------- replace

    def test_replace_and_stale_resource_version_conflict(self):
        ns = self.new_namespace()
        self.create_with_kubectl(model("rep", ns))
        first = json.loads(self.kubectl("get", "lmodel", "rep", "-n", ns, "-o", "json").out)

        newer = json.loads(json.dumps(first))
        newer["spec"]["modelName"] = "gpt-4o-mini"
        r = self.kubectl("replace", "--validate=false", "-f", self.write_yaml(newer))
        self.assertEqual(r.out.strip(), f"{MODEL}/rep replaced")
        cur = json.loads(self.kubectl("get", "lmodel", "rep", "-n", ns, "-o", "json").out)
        self.assertEqual(cur["spec"]["modelName"], "gpt-4o-mini")
        self.assertEqual(cur["metadata"]["generation"], 2)
        self.assertGreater(int(cur["metadata"]["resourceVersion"]),
                           int(first["metadata"]["resourceVersion"]))
        self.assertEqual(cur["metadata"]["uid"], first["metadata"]["uid"])

        # the same edit made on the stale copy must be refused
        stale = json.loads(json.dumps(first))
        stale["spec"]["modelName"] = "gpt-3.5-turbo"
        r = self.kubectl("replace", "--validate=false", "-f", self.write_yaml(stale), ok=False)
        self.assertIn("Error from server (Conflict)", r.err)
        self.assertIn('Operation cannot be fulfilled on languagemodels.langop.io "rep": '
                      "the object has been modified", r.err)
        after = json.loads(self.kubectl("get", "lmodel", "rep", "-n", ns, "-o", "json").out)
        self.assertEqual(after["spec"]["modelName"], "gpt-4o-mini")
        self.assertEqual(after["metadata"]["resourceVersion"], cur["metadata"]["resourceVersion"])

    def test_create_twice_already_exists(self):
        ns = self.new_namespace()
        self.create_with_kubectl(model("dup", ns))
        path = self.write_yaml(model("dup", ns))
        r = self.kubectl("create", "--validate=false", "-f", path, ok=False)
        self.assertIn('Error from server (AlreadyExists): error when creating "%s": '
                      'languagemodels.langop.io "dup" already exists' % path, r.err)

    # ------------------------------------------------------------ delete

    def test_delete(self):
        ns = self.new_namespace()
        self.create_with_kubectl(model("gone", ns), model("stays", ns))
        r = self.kubectl("delete", "lmodel", "gone", "-n", ns, "--timeout=20s")
        self.assertEqual(r.out.strip(), f'{MODEL} "gone" deleted')
        r = self.kubectl("get", "lmodel", "gone", "-n", ns, ok=False)
        self.assertIn('Error from server (NotFound): languagemodels.langop.io "gone" not found', r.err)
        r = self.kubectl("get", "lmodel", "-n", ns, "-o", "name")
        self.assertEqual(names_of(r), ["stays"])

    def test_delete_with_finalizer_then_remove_it(self):
        ns = self.new_namespace()
        self.create_with_kubectl(model("held", ns, finalizers=["langop.io/test-hold"]))
        r = self.kubectl("delete", "lmodel", "held", "-n", ns, "--wait=false")
        self.assertEqual(r.out.strip(), f'{MODEL} "held" deleted')

        # still there, marked for deletion
        o = json.loads(self.kubectl("get", "lmodel", "held", "-n", ns, "-o", "json").out)
        self.assertRegex(o["metadata"].get("deletionTimestamp", ""), RFC3339_RE, o)
        self.assertEqual(o["metadata"]["finalizers"], ["langop.io/test-hold"])
        r = self.kubectl("get", "lmodel", "-n", ns, "-o", "name")
        self.assertEqual(names_of(r), ["held"])

        # emptying the finalizers lets it go
        del o["metadata"]["finalizers"]
        self.kubectl("replace", "--validate=false", "-f", self.write_yaml(o))
        r = self.kubectl("get", "lmodel", "held", "-n", ns, ok=False)
        self.assertIn('Error from server (NotFound): languagemodels.langop.io "held" not found', r.err)

    def test_not_found(self):
        ns = self.new_namespace()
        r = self.kubectl("get", "languagemodels", "nope", "-n", ns, ok=False)
        self.assertIn('Error from server (NotFound): languagemodels.langop.io "nope" not found',
                      r.err.splitlines(), r)
        r = self.kubectl("delete", "lmodel", "nope", "-n", ns, ok=False)
        self.assertIn('Error from server (NotFound): languagemodels.langop.io "nope" not found', r.err)

    # ------------------------------------------------------------- names

    def test_generate_name(self):
        ns = self.new_namespace()
        o = model(None, ns, generateName="gen-")
        seen = set()
        for _ in range(3):
            r = self.create_with_kubectl(o)
            m = re.fullmatch(MODEL.replace(".", r"\.") + r"/(gen-[bcdfghjklmnpqrstvwxz2456789]{5}) created",
                             r.out.strip())
            self.assertIsNotNone(m, r)
            seen.add(m.group(1))
        self.assertEqual(len(seen), 3, seen)
        r = self.kubectl("get", "lmodel", "-n", ns, "-o", "name")
        self.assertEqual(sorted(names_of(r)), sorted(seen))

    def test_invalid_name_is_422(self):
        ns = self.new_namespace()
        for bad in ("Not_Valid", "-dash-first", "x" * 254):
            with self.subTest(name=bad[:20]):
                r = self.kubectl("create", "--validate=false", "-f",
                                 self.write_yaml(model(bad, ns)), ok=False)
                self.assertIn(f'The LanguageModel "{bad}" is invalid', r.err)
                self.assertIn("metadata.name", r.err)
        r = self.kubectl("get", "lmodel", "-n", ns, "-o", "name")
        self.assertEqual(r.out.strip(), "")

    # ----------------------------------------------------------- dry run

    def test_create_dry_run_server_persists_nothing(self):
        ns = self.new_namespace()
        path = self.write_yaml(model("dry", ns))
        r = self.kubectl("create", "--validate=false", "--dry-run=server", "-f", path)
        self.assertEqual(r.out.strip(), f"{MODEL}/dry created (server dry run)")
        r = self.kubectl("create", "--validate=false", "--dry-run=server", "-f", path, "-o", "json")
        o = json.loads(r.out)
        self.assertRegex(o["metadata"]["uid"], UUID_RE)      # generated fields are filled
        self.assertRegex(o["metadata"]["creationTimestamp"], RFC3339_RE)
        r = self.kubectl("get", "lmodel", "dry", "-n", ns, ok=False)
        self.assertIn("(NotFound)", r.err)
        self.assertEqual(self.kubectl("get", "lmodel", "-n", ns, "-o", "name").out.strip(), "")
        # and the real create afterwards works (the dry run reserved nothing)
        r = self.kubectl("create", "--validate=false", "-f", path)
        self.assertEqual(r.out.strip(), f"{MODEL}/dry created")

    # --------------------------------------------------------- discovery

    def test_api_resources_lists_the_five_kinds(self):
        r = self.kubectl("api-resources", "--api-group=langop.io")
        header, rows = table(r.out)
        self.assertEqual(header, ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"], r)
        got = {tuple(row) for row in rows}
        want = {
            ("languageagents", "lagent", "langop.io/v1alpha1", "true", "LanguageAgent"),
            ("languageclusters", "lcluster", "langop.io/v1alpha1", "false", "LanguageCluster"),
            ("languagemodels", "lmodel", "langop.io/v1alpha1", "true", "LanguageModel"),
            ("languagepersonas", "lpersona", "langop.io/v1alpha1", "true", "LanguagePersona"),
            ("languagetools", "ltool", "langop.io/v1alpha1", "true", "LanguageTool"),
        }
        self.assertEqual(got, want, r)

    def test_get_langop_category_lists_every_kind(self):
        ns = self.new_namespace()
        self.create_with_kubectl(model("cat-m", ns), agent("cat-a", ns), tool("cat-t", ns),
                                 persona("cat-p", ns))
        r = self.kubectl("get", "langop", "-n", ns, "-o", "name")
        # LanguageCluster is in the category too; being cluster-scoped, all of them show
        lines = r.lines()
        self.assertIn(f"languagecluster.langop.io/{ns}", lines, r)
        self.assertEqual(sorted(l for l in lines if not l.startswith("languagecluster.")), [
            "languageagent.langop.io/cat-a", "languagemodel.langop.io/cat-m",
            "languagepersona.langop.io/cat-p", "languagetool.langop.io/cat-t"], r)
        # the default output works too and shows each kind's rows
        r = self.kubectl("get", "langop", "-n", ns)
        for n in ("cat-a", "cat-m", "cat-p", "cat-t"):
            self.assertRegex(r.out, rf"(?m)^\S*{n}\s", r)
        # the cluster-scoped kind
        r = self.kubectl("get", "lcluster", ns, "-o", "name")
        self.assertEqual(r.out.strip(), f"languagecluster.langop.io/{ns}")

    def test_older_and_newer_kubectl_versions(self):
        """Every verb a user edits objects with, on kubectl 1.27, 1.28, 1.29 and
        the newest one installed: get, apply (client-side: create, then change),
        diff (exit 1 with the change, 0 when there is none), apply --server-side,
        edit and explain. 1.27 and 1.28 read /openapi/v2 as protobuf to decide on
        server-side validation and for explain; 1.27-1.29 ask only for v2beta1
        discovery, 1.32+ for v2 first. Nothing here passes --validate=false.
        Uses the versioned kubectl binaries installed beside the dispatcher."""
        base = os.path.dirname(os.path.realpath(KUBECTL))
        installed = sorted((int(m.group(1)), m.group(0)[len("kubectl."):])
                           for m in (re.fullmatch(r"kubectl\.1\.([0-9]+)", f) for f in os.listdir(base))
                           if m and os.access(os.path.join(base, m.group(0)), os.X_OK))
        if not installed:
            self.skipTest(f"no versioned kubectl binaries in {base}")
        have = [v for _, v in installed]
        versions = [v for v in ("1.27", "1.28", "1.29") if v in have]
        if have[-1] not in versions:
            versions.append(have[-1])
        editor = self.tmp / "edit-model.sh"
        editor.write_text("#!/bin/sh\n"
                          "sed -i 's/^  modelName: gpt-4.1$/  modelName: gpt-4.1-mini/' \"$1\"\n")
        os.chmod(editor, 0o755)

        def words(text):
            return " ".join(text.split())

        for v in versions:
            with self.subTest(kubectl=v):
                exe = os.path.join(base, f"kubectl.{v}")
                cache = self.tmp / f"cache-{v}"
                ns = self.new_namespace(f"ver-{v}")
                name = "m" + v.replace(".", "")

                def run(*args, env=None):
                    p = subprocess.run([exe, f"--kubeconfig={self.server.kubeconfig}",
                                        f"--cache-dir={cache}", *args],
                                       capture_output=True, text=True, timeout=60,
                                       stdin=subprocess.DEVNULL, env=env)
                    return p, f"kubectl {v} {' '.join(args)}: rc {p.returncode}\n" \
                              f"--- stdout\n{p.stdout}--- stderr\n{p.stderr}"

                def live():
                    return self.get("LanguageModel", name, ns)

                first = self.write_yaml(model(name, ns))
                changed = model(name, ns)
                changed["spec"]["modelName"] = "gpt-4.1"
                second = self.write_yaml(changed)
                labelled = json.loads(json.dumps(changed))
                labelled["metadata"]["labels"] = {"tier": "gold"}
                third = self.write_yaml(labelled)

                # apply, client-side: it creates the object ...
                p, what = run("apply", "-f", first)
                self.assertEqual(p.returncode, 0, what)
                self.assertIn(f"{MODEL}/{name} created", p.stdout, what)
                self.assertNotIn("openapi", p.stderr, what)
                self.assertEqual(live()["spec"]["modelName"], "gpt-4o")

                # ... diff shows the change still to come (exit 1) ...
                p, what = run("diff", "-f", second)
                self.assertEqual(p.returncode, 1, what)
                self.assertRegex(p.stdout, r"(?m)^-\s+modelName: gpt-4o$", what)
                self.assertRegex(p.stdout, r"(?m)^\+\s+modelName: gpt-4\.1$", what)
                self.assertEqual(live()["spec"]["modelName"], "gpt-4o", "diff changed the object")

                # ... apply patches it, and diff then has nothing to say (exit 0)
                p, what = run("apply", "-f", second)
                self.assertEqual(p.returncode, 0, what)
                self.assertIn(f"{MODEL}/{name} configured", p.stdout, what)
                obj = live()
                self.assertEqual(obj["spec"]["modelName"], "gpt-4.1", what)
                applied = json.loads(obj["metadata"]["annotations"][
                    "kubectl.kubernetes.io/last-applied-configuration"])
                self.assertEqual(applied["spec"]["modelName"], "gpt-4.1", what)
                p, what = run("diff", "-f", second)
                self.assertEqual((p.returncode, p.stdout), (0, ""), what)

                # apply --server-side adds a field under its own manager
                p, what = run("apply", "--server-side", "-f", third)
                self.assertEqual(p.returncode, 0, what)
                self.assertIn(f"{MODEL}/{name} serverside-applied", p.stdout, what)
                obj = live()
                self.assertEqual(obj["metadata"].get("labels"), {"tier": "gold"}, what)
                managers = {(e["manager"], e["operation"]) for e in obj["metadata"]["managedFields"]}
                self.assertIn(("kubectl", "Apply"), managers, what)

                # edit, through an editor that changes the model name in the file
                p, what = run("edit", "lmodel", name, "-n", ns,
                              env={**os.environ, "KUBE_EDITOR": str(editor), "EDITOR": str(editor)})
                self.assertEqual(p.returncode, 0, what)
                self.assertIn(f"{MODEL}/{name} edited", p.stdout, what)
                self.assertEqual(live()["spec"]["modelName"], "gpt-4.1-mini", what)

                # get, in the two ways a user names the kind
                p, what = run("get", "lmodel", "-n", ns, "-o", "name")
                self.assertEqual((p.returncode, p.stdout.strip()), (0, f"{MODEL}/{name}"), what)
                p, what = run("get", "languagemodels.langop.io", name, "-n", ns,
                              "-o", "jsonpath={.spec.modelName}")
                self.assertEqual((p.returncode, p.stdout), (0, "gpt-4.1-mini"), what)

                # explain prints the descriptions of openapi/languagemodels.yaml
                p, what = run("explain", "languagemodels")
                self.assertEqual(p.returncode, 0, what)
                self.assertIn("KIND: LanguageModel", words(p.stdout), what)
                self.assertIn("LanguageModel declares one model that the shared LiteLLM gateway",
                              words(p.stdout), what)
                p, what = run("explain", "languagemodels.spec.modelName")
                self.assertEqual(p.returncode, 0, what)
                self.assertIn("The provider's model identifier (for example gpt-4o or claude-sonnet-4)",
                              words(p.stdout), what)
                # every version can still explain from /openapi/v2, which it reads as protobuf
                p, what = run("explain", "--output=plaintext-openapiv2", "languageagents.spec.models")
                self.assertEqual(p.returncode, 0, what)
                self.assertIn("KIND: LanguageAgent VERSION: langop.io/v1alpha1", words(p.stdout), what)
                self.assertIn("The LanguageModels the agent may use, by name", words(p.stdout), what)
                self.assertRegex(p.stdout, r"name\s+<string> -required-", what)
