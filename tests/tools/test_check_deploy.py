#!/usr/bin/python3
"""Tests for check_deploy.py: copies of the real deploy/ with one fault each.

Each test copies deploy/ into a temporary folder, breaks one thing by a text
replacement (which must match, so a test cannot pass by editing nothing),
runs the checker on the copy and expects the problem it must report.

Run: /usr/bin/python3 tests/tools/test_check_deploy.py
"""

import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEPLOY = os.path.join(ROOT, "deploy")
SCRIPT = os.path.join(HERE, "check_deploy.py")
MAIN_C = os.path.join(ROOT, "apiserver", "main.c")
sys.path.insert(0, HERE)
import check_deploy  # noqa: E402


def built_binary():
    b = os.environ.get("LANGOP_BINARY") or os.path.join(ROOT, "build", "langop-apiserver")
    return b if os.access(b, os.X_OK) else None


class CheckDeployTest(unittest.TestCase):

    def copy(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        dst = os.path.join(tmp.name, "deploy")
        shutil.copytree(DEPLOY, dst, ignore=shutil.ignore_patterns("generated"))
        return dst

    def edit(self, root, rel, old, new, count=1):
        path = os.path.join(root, rel)
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text, "planted fault does not apply to %s" % rel)
        with open(path, "w") as f:
            f.write(text.replace(old, new, count))

    def check(self, root, binary=None, build=False):
        out = io.StringIO()
        status = check_deploy.check(root, "kubectl", binary, MAIN_C, out, build)
        return status, out.getvalue().splitlines()

    def fault(self, rel, old, new, expect, count=1, binary=None):
        """Plant one fault; the checker must fail with a line containing expect."""
        root = self.copy()
        self.edit(root, rel, old, new, count)
        status, lines = self.check(root, binary)
        self.assertEqual(status, 1, lines)
        self.assertTrue(any(expect in line for line in lines[:-1]),
                        "no problem line contains %r:\n%s" % (expect, "\n".join(lines)))
        return lines

    # -- the real tree --------------------------------------------------------

    def test_real_deploy_passes_as_a_subprocess(self):
        proc = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True,
                              env=dict(os.environ, LANGOP_BINARY=""))
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(proc.stdout.splitlines(), ["deploy: 16 objects, 0 problems"])

    def test_real_deploy_passes_with_the_binary(self):
        binary = built_binary()
        if binary is None:
            self.skipTest("no built binary (set LANGOP_BINARY)")
        status, lines = self.check(self.copy(), binary)
        self.assertEqual(status, 0, lines)

    def test_flags_parsed_from_help_and_main_c_agree(self):
        with open(MAIN_C) as f:
            from_c = check_deploy.flags_from_main_c(f.read())
        self.assertTrue(from_c["tls-cert-file"])
        self.assertFalse(from_c["storage-fsync"])
        self.assertTrue(from_c["v"])
        self.assertFalse(from_c["h"])
        help_text = ("      --secure-port int            The port\n"
                     "                                   and --not-a-flag here\n"
                     "      --storage-fsync              Sync\n"
                     "  -v, --v int                      Log verbosity\n")
        self.assertEqual(check_deploy.flags_from_help(help_text),
                         {"secure-port": True, "storage-fsync": False, "v": True})
        binary = built_binary()
        if binary:
            out = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
            self.assertEqual(check_deploy.flags_from_help(out), from_c)

    # -- rendering and objects ------------------------------------------------

    def test_kustomization_that_renders_without_certificates_fails(self):
        root = self.copy()
        gen = os.path.join(root, "generated")
        os.makedirs(gen)
        subprocess.run(["bash", os.path.join(DEPLOY, "gen-certs.sh"), gen],
                       check=True, capture_output=True)
        # the copy's kustomization reads certificates from a folder the checker keeps
        self.edit(root, "kustomization.yaml", "=generated/", "=shipped/", count=-1)
        os.rename(gen, os.path.join(root, "shipped"))
        status, lines = self.check(root)
        self.assertEqual(status, 1, lines)
        self.assertIn("kustomization renders before install-certs.sh ran", lines[0])

    def test_failing_cert_script(self):
        self.fault("install-certs.sh", 'bash "$here/gen-certs.sh"', 'false && bash "$here/gen-certs.sh"',
                   "install-certs.sh failed")

    def test_unexpected_object(self):
        self.fault("namespace.yaml", "name: langop-system\n",
                   "name: langop-system\n---\napiVersion: v1\nkind: ConfigMap\n"
                   "metadata: {name: stray, namespace: langop-system}\n",
                   "unexpected object: ConfigMap langop-system/stray")

    def test_global_namespace_moves_the_kube_system_binding(self):
        lines = self.fault("kustomization.yaml", "kind: Kustomization\n",
                           "kind: Kustomization\nnamespace: langop-system\n",
                           "missing object: RoleBinding kube-system/"
                           "langop-apiserver:extension-apiserver-authentication-reader")
        self.assertTrue(any(line.startswith("unexpected object: RoleBinding langop-system/")
                            for line in lines), lines)

    # -- RBAC -----------------------------------------------------------------

    def test_auth_delegator_role_ref(self):
        lines = self.fault("rbac-delegation.yaml", "name: system:auth-delegator", "name: system:auth-delegate",
                           "roleRef is ClusterRole system:auth-delegate")
        for what in ("create tokenreviews.authentication.k8s.io (bearer tokens",
                     "create subjectaccessreviews.authorization.k8s.io (--authorization-mode=Webhook"):
            self.assertIn("ServiceAccount langop-system/langop-apiserver may not %s" % what, "\n".join(lines))

    def test_rbac_rule_matching(self):
        objs = [
            {"kind": "ClusterRole", "metadata": {"name": "read-cm"},
             "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
                       {"nonResourceURLs": ["/metrics*"], "verbs": ["get"]}]},
            {"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "kube-system"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "read-cm"},
             "subjects": [{"kind": "ServiceAccount", "name": "langop-apiserver", "namespace": "langop-system"}]},
            {"kind": "ClusterRoleBinding", "metadata": {"name": "d"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "system:auth-delegator"},
             "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "langop-system"}]},
        ]
        grants = check_deploy.sa_grants(objs)
        attrs = check_deploy.kube_request_attrs
        cm = "/api/v1/namespaces/%s/configmaps/x"
        self.assertTrue(check_deploy.granted(grants, attrs("GET", cm % "kube-system")))
        # a RoleBinding grants a ClusterRole's rules in its own namespace only
        self.assertFalse(check_deploy.granted(grants, attrs("GET", cm % "default")))
        self.assertFalse(check_deploy.granted(grants, attrs("GET", "/api/v1/namespaces/kube-system/configmaps")))
        # nonResourceURLs only through a ClusterRoleBinding; the delegator is bound to another account
        self.assertFalse(check_deploy.granted(grants, attrs("GET", "/metrics")))
        self.assertFalse(check_deploy.granted(grants, attrs(
            "POST", "/apis/authentication.k8s.io/v1/tokenreviews")))
        # resourceNames: a get of that name, never a list or a create
        reader = [("kube-system", r) for r in check_deploy.BUILTIN_ROLES[
            ("Role", "kube-system", "extension-apiserver-authentication-reader")]]
        path = check_deploy.AUTHCONFIG_PATH
        self.assertTrue(check_deploy.granted(reader, attrs("GET", path)))
        self.assertFalse(check_deploy.granted(reader, attrs("GET", path.rsplit("/", 1)[0])))
        self.assertFalse(check_deploy.granted(reader, attrs("POST", path.rsplit("/", 1)[0])))
        self.assertEqual(attrs("GET", "/apis/apps/v1/namespaces/a/deployments", "watch=true")["verb"], "watch")
        self.assertEqual(attrs("DELETE", "/apis/apps/v1/namespaces/a/deployments")["verb"], "deletecollection")
        self.assertEqual(attrs("PUT", "/apis/apps/v1/namespaces/a/deployments/d/status"),
                         {"verb": "update", "group": "apps", "resource": "deployments", "subresource": "status",
                          "namespace": "a", "name": "d"})
        self.assertEqual(attrs("GET", "/apis/langop.io/v1alpha1"), {"verb": "get", "path": "/apis/langop.io/v1alpha1"})

    def test_auth_reader_bound_to_another_account(self):
        self.fault("rbac-delegation.yaml", "name: langop-apiserver\n  namespace: langop-system\n",
                   "name: default\n  namespace: langop-system\n",
                   "ClusterRoleBinding langop-apiserver:system:auth-delegator: subjects")

    def test_reconcile_may_not_write_secrets(self):
        self.fault("rbac-reconcile.yaml", "resources: [secrets]\n  verbs: [get, list, watch]",
                   "resources: [secrets]\n  verbs: [get, list, watch, update]",
                   "secrets must be only get/list/watch")

    def test_reconcile_wildcard(self):
        self.fault("rbac-reconcile.yaml", "resources: [secrets]", "resources: [secrets, \"*\"]",
                   "wildcard")

    def test_reconcile_lacks_jobs(self):
        self.fault("rbac-reconcile.yaml", "[cronjobs, jobs]", "[cronjobs]", "batch jobs lacks")

    def test_leader_election_without_update(self):
        self.fault("rbac-reconcile.yaml", "resources: [leases]\n  verbs: [get, list, watch, create, update,",
                   "resources: [leases]\n  verbs: [get, list, watch, create,",
                   "leases lack ['update']")

    def test_view_may_not_write(self):
        self.fault("rbac-aggregated.yaml", "  verbs: [get, list, watch]", "  verbs: [get, list, watch, create]",
                   "ClusterRole langop.io:aggregate-to-view: languageclusters has ['create']")

    def test_view_lacks_agentconfig(self):
        self.fault("rbac-aggregated.yaml", "  - languageagents/agentconfig\n", "",
                   "languageagents/agentconfig lacks")

    def test_aggregation_label_value(self):
        self.fault("rbac-aggregated.yaml", 'aggregate-to-edit: "true"', 'aggregate-to-edit: "false"',
                   "label rbac.authorization.k8s.io/aggregate-to-edit is 'false'")

    def test_edit_lacks_delete(self):
        self.fault("rbac-aggregated.yaml", "verbs: [create, update, patch, delete, deletecollection]",
                   "verbs: [create, update, patch]", "lacks ['delete', 'deletecollection']")

    # -- Deployment -----------------------------------------------------------

    def test_replicas(self):
        self.fault("deployment.yaml", "replicas: 1", "replicas: 2", "replicas 2, want 1")

    def test_strategy(self):
        self.fault("deployment.yaml", "type: Recreate", "type: RollingUpdate", "strategy 'RollingUpdate'")

    def test_run_as_root(self):
        self.fault("deployment.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot is not true")

    def test_writable_root(self):
        self.fault("deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false",
                   "readOnlyRootFilesystem is not true")

    def test_liveness_path(self):
        self.fault("deployment.yaml", "path: /livez", "path: /healthz", "livenessProbe path '/healthz'")

    def test_probe_scheme(self):
        self.fault("deployment.yaml", "scheme: HTTPS", "scheme: HTTP", "readinessProbe scheme 'HTTP'")

    def test_probe_port(self):
        self.fault("deployment.yaml", "path: /readyz\n            port: https",
                   "path: /readyz\n            port: 8080", "readinessProbe port 8080")

    def test_no_memory_limit(self):
        self.fault("deployment.yaml", '            cpu: "1"\n            memory: 512Mi\n',
                   '            cpu: "1"\n', "resources.limits.memory not set")

    def test_unknown_flag(self):
        self.fault("deployment.yaml", "        - --shutdown-grace-period=5s\n",
                   "        - --shutdown-grace-period=5s\n"
                   "        - --no-such-flag=/etc/kubeconfig\n",
                   "flag --no-such-flag is not one of the server's")

    def test_boolean_flag_with_value(self):
        self.fault("deployment.yaml", "        - --shutdown-grace-period=5s\n",
                   "        - --shutdown-grace-period=5s\n        - --storage-fsync=true\n",
                   "flag --storage-fsync takes no value")

    def test_flag_without_value(self):
        self.fault("deployment.yaml", "- --bind-address=0.0.0.0", "- --bind-address",
                   "flag --bind-address needs =value")

    def test_secure_port_not_the_container_port(self):
        self.fault("deployment.yaml", "--secure-port=6443", "--secure-port=8443",
                   "--secure-port=8443 but containerPort 6443")

    def test_database_off_the_volume(self):
        self.fault("deployment.yaml", "--storage-path=/var/lib/langop/langop.db",
                   "--storage-path=/tmp/langop.db", "--storage-path=/tmp/langop.db is not on the PVC's mount")

    def test_certificate_off_the_secret(self):
        self.fault("deployment.yaml", "--tls-cert-file=/etc/langop/tls/tls.crt",
                   "--tls-cert-file=/etc/langop/tls.crt", "--tls-cert-file=/etc/langop/tls.crt is not tls.crt")

    def test_secret_volume_of_another_secret(self):
        self.fault("deployment.yaml", "secretName: langop-apiserver-serving",
                   "secretName: some-other-secret", "no mount of the serving Secret")

    def test_no_webhook_authorization(self):
        self.fault("deployment.yaml", "        - --authorization-mode=Webhook\n", "",
                   "--authorization-mode is not set (AlwaysAllow), want Webhook")

    def test_always_allow_authorization(self):
        self.fault("deployment.yaml", "--authorization-mode=Webhook", "--authorization-mode=AlwaysAllow",
                   "--authorization-mode is AlwaysAllow, want Webhook")

    def test_authorization_kubeconfig_in_the_deployment(self):
        self.fault("deployment.yaml", "        - --authorization-mode=Webhook\n",
                   "        - --authorization-mode=Webhook\n"
                   "        - --authorization-kubeconfig=/etc/langop/tls/tls.crt\n",
                   "--authorization-kubeconfig is set: in a pod the server reaches kube-apiserver "
                   "through its service account")

    def test_service_account_does_not_mount_its_token(self):
        self.fault("serviceaccount.yaml", "  namespace: langop-system\n",
                   "  namespace: langop-system\nautomountServiceAccountToken: false\n",
                   "the ServiceAccount token must be mounted")

    def test_command_override(self):
        self.fault("deployment.yaml", "        args:\n", "        command: [/bin/sh]\n        args:\n",
                   "command overrides the image's entrypoint")

    # -- the binary run with the Deployment's args ----------------------------

    def need_binary(self):
        binary = built_binary()
        if binary is None:
            self.skipTest("no built binary (set LANGOP_BINARY)")
        return binary

    def test_run_refused_flag_value(self):
        # a valid flag, a value the server refuses: only running it shows that
        lines = self.fault("deployment.yaml", "--shutdown-grace-period=5s", "--shutdown-grace-period=5x",
                           "Deployment langop-apiserver, run: the server exited (",
                           binary=self.need_binary())
        self.assertTrue(any("shutdown-grace-period" in line for line in lines), lines)

    def test_run_database_folder_missing(self):
        self.fault("deployment.yaml", "--storage-path=/var/lib/langop/langop.db",
                   "--storage-path=/var/lib/langop/db/langop.db",
                   "Deployment langop-apiserver, run: the server exited (1)", binary=self.need_binary())

    RUN = "Deployment langop-apiserver, run: "
    MODELS = " GET /apis/langop.io/v1alpha1/namespaces/default/languagemodels answered "

    def test_run_without_webhook_allows_a_denied_user(self):
        lines = self.fault("deployment.yaml", "        - --authorization-mode=Webhook\n", "",
                           self.RUN + "bob's bearer token (TokenReview), denied by SubjectAccessReview:"
                           + self.MODELS + "200, want 403", binary=self.need_binary())
        self.assertTrue(any(line.startswith(self.RUN + "alice's bearer token") and
                            "no SubjectAccessReview for user 'alice'" in line for line in lines), lines)

    def test_run_front_proxy_ca_not_from_the_configmap(self):
        # a CA flag wins over the ConfigMap: the cluster's front-proxy CA is not used
        lines = self.fault("deployment.yaml", "        - --authorization-mode=Webhook\n",
                           "        - --authorization-mode=Webhook\n"
                           "        - --requestheader-client-ca-file=/etc/langop/tls/ca.crt\n",
                           self.RUN + "a front-proxy certificate of the ConfigMap's requestheader CA, "
                           "X-Remote-User: carol:" + self.MODELS + "401, want 200", binary=self.need_binary())
        self.assertIn(self.RUN + "the server did not read kube-system/extension-apiserver-authentication from "
                      "kube-apiserver at start-up", lines)

    def test_run_anonymous_requests(self):
        self.fault("deployment.yaml", "        - --authorization-mode=Webhook\n",
                   "        - --authorization-mode=Webhook\n        - --anonymous-auth\n",
                   self.RUN + "X-Remote-User: carol without a front-proxy certificate:" + self.MODELS
                   + "403, want 401", binary=self.need_binary())

    def test_run_calls_kube_apiserver_beyond_the_rbac(self):
        self.fault("rbac-delegation.yaml", "name: system:auth-delegator", "name: system:auth-delegate",
                   self.RUN + "the server's POST /apis/authentication.k8s.io/v1/tokenreviews to kube-apiserver "
                   "(create tokenreviews.authentication.k8s.io) is not granted to ServiceAccount "
                   "langop-system/langop-apiserver by the RBAC in deploy/", binary=self.need_binary())

    def test_run_with_a_key_of_another_certificate(self):
        # the key of another certificate: static checks see it, and the server cannot serve
        root = self.copy()
        binary = self.need_binary()
        self.edit(root, "kustomization.yaml", "tls.key=generated/apiserver.key", "tls.key=generated/ca.key")
        status, lines = self.check(root, binary)
        self.assertEqual(status, 1, lines)
        self.assertIn("Secret langop-apiserver-serving: tls.key does not belong to tls.crt", lines)
        self.assertTrue(any(line.startswith("Deployment langop-apiserver, run: ") for line in lines), lines)

    # -- Service and APIService -----------------------------------------------

    def test_service_target_port(self):
        self.fault("service.yaml", "targetPort: https", "targetPort: 8443",
                   "port 443 -> targetPort 8443, not the container port 6443")

    def test_service_selector(self):
        self.fault("service.yaml", "app.kubernetes.io/component: apiserver",
                   "app.kubernetes.io/component: server", "selector")

    def test_service_port(self):
        self.fault("service.yaml", "port: 443", "port: 8443", "no port 443")

    def test_apiservice_group(self):
        self.fault("apiservice.yaml", "group: langop.io", "group: langop.example", "group 'langop.example'")

    def test_apiservice_service_port(self):
        self.fault("apiservice.yaml", "    port: 443", "    port: 8443", "service {")

    def test_apiservice_priorities(self):
        self.fault("apiservice.yaml", "versionPriority: 15", "versionPriority: 100",
                   "groupPriorityMinimum/versionPriority 1000/100")

    def test_apiservice_skip_verify(self):
        self.fault("apiservice.yaml", "  caBundle: set-by-kustomization\n",
                   "  caBundle: set-by-kustomization\n  insecureSkipTLSVerify: true\n",
                   "insecureSkipTLSVerify is set")

    def test_ca_bundle_not_filled_in(self):
        self.fault("kustomization.yaml", "      kind: APIService\n", "      kind: APIServiceX\n",
                   "caBundle is empty or not base64 of a PEM certificate")

    def test_ca_bundle_of_the_wrong_certificate(self):
        self.fault("kustomization.yaml", r"fieldPath: data.ca\.crt", r"fieldPath: data.tls\.crt",
                   "caBundle does not verify the serving certificate")

    # -- Dockerfile -----------------------------------------------------------

    def test_dockerfile_root_user(self):
        self.fault("Dockerfile", "USER 65532:65532", "USER 0", "runtime USER '0' is not a numeric non-root uid")

    def test_dockerfile_user_by_name(self):
        self.fault("Dockerfile", "USER 65532:65532", "USER nobody", "is not a numeric non-root uid")

    def test_dockerfile_user_not_the_pods(self):
        self.fault("Dockerfile", "USER 65532:65532", "USER 1000", "USER 1000 but the Deployment's runAsUser is 65532")

    def test_dockerfile_dev_package_at_runtime(self):
        self.fault("Dockerfile", "libsqlite3-0 \\", "libsqlite3-0 libssl-dev \\",
                   "runtime stage installs ['libssl-dev']")

    def test_dockerfile_missing_runtime_library(self):
        self.fault("Dockerfile", " libsqlite3-0 \\", " \\", "runtime stage does not install libsqlite3-0")

    def test_dockerfile_missing_linked_library(self):
        binary = built_binary()
        if binary is None:
            self.skipTest("no built binary (set LANGOP_BINARY)")
        root = self.copy()
        self.edit(root, "Dockerfile", "libh2o-evloop0.13 libwslay1", "libh2o-evloop0.13")
        status, lines = self.check(root, binary)
        self.assertEqual(status, 1, lines)
        self.assertIn("deploy/Dockerfile: runtime stage does not install libwslay1 (linked by the server)",
                      lines)

    def test_dockerfile_build_stage_misses_a_folder(self):
        root = self.copy()
        self.edit(root, "Dockerfile", "COPY storage/ storage/\n", "")
        status, lines = self.check(root, build=True)
        self.assertEqual(status, 1, lines)
        self.assertTrue(any(line.startswith("deploy/Dockerfile: the build stage's sources and meson line "
                                            "do not build") for line in lines), lines)

    def test_dockerfile_copies_a_missing_path(self):
        root = self.copy()
        self.edit(root, "Dockerfile", "COPY tests/ tests/", "COPY tests/ nowhere/ tests/")
        status, lines = self.check(root, build=True)
        self.assertEqual(status, 1, lines)
        self.assertIn("deploy/Dockerfile: COPY nowhere/: no such path", lines)

    def test_dockerfile_runtime_not_slim(self):
        self.fault("Dockerfile", "FROM debian:12-slim", "FROM debian:12", "is not debian:12-slim")

    def test_dockerfile_single_stage(self):
        self.fault("Dockerfile", "FROM debian:12-slim\n", "", "stages, want a build and a runtime stage")

    def test_dockerfile_debug_build(self):
        self.fault("Dockerfile", "--buildtype=release", "--buildtype=debug", "not a meson release build")

    def test_dockerfile_build_deps(self):
        self.fault("Dockerfile", "libjansson-dev ", "", "build stage does not install libjansson-dev")


if __name__ == "__main__":
    unittest.main(verbosity=2)
