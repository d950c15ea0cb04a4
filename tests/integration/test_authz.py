"""Authorization and impersonation (issue 11, item 3).

--authorization-mode=Webhook against the kube-apiserver stand-in, started
in-process, whose SubjectAccessReviews come from a rule table: allow, deny
(kube's 403 wording, nothing changed), a failing review (fails closed, the
server stays up), the decision cache (one review within the TTL, another
after it), system:masters (never reviewed), impersonation allowed and
refused (kubectl --as/--as-group), and kubectl auth whoami / can-i answered
by the server itself; then the same two commands under AlwaysAllow.
"""

import json
import sys
import tempfile
import time
import unittest
from pathlib import Path

import harness
from harness import collection_path, item_path, model

sys.path.insert(0, str(harness.REPO / "tests" / "standin"))
from kube_standin import start_standin  # noqa: E402

SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
TTL_S = 2
USERS = ("alice", "bob", "carol", "dave", "erin")


class AuthzCase(harness.ServerTestCase):
    """A server with extra flags and one token per user of USERS (no groups)."""

    server_flags = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="langop-it-"))
        cls.kube_cache = cls.tmp / "kube-cache"
        cls._dyn = None
        cls.before_server()
        cls.server = harness.Server(cls.tmp, cls.flags())
        with open(cls.server.dir / "tokens.csv", "a") as f:
            for u in USERS:
                f.write(f"{u}-token,{u},{u}-uid\n")
        try:
            cls.server.start()
        except Exception:
            cls.server.stop()
            raise

    @classmethod
    def before_server(cls):
        pass

    @classmethod
    def flags(cls):
        return list(cls.server_flags)

    def as_user(self, user, method, path, body=None, headers=None):
        return self.server.request(method, path, body, headers=headers, token=f"{user}-token")

    def kubectl_as(self, user, *args, ok=True):
        return self.kubectl(f"--token={user}-token", *args, ok=ok)


class WebhookTest(AuthzCase):

    @classmethod
    def before_server(cls):
        cls.standin_dir = cls.tmp / "standin"
        cls.standin, cls.standin_paths = start_standin(cls.standin_dir)

    @classmethod
    def flags(cls):
        return ["--authorization-mode=Webhook",
                f"--authorization-kubeconfig={cls.standin_paths['kubeconfig']}",
                f"--authorization-webhook-cache-authorized-ttl={TTL_S}s",
                f"--authorization-webhook-cache-unauthorized-ttl={TTL_S}s"]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.standin.stop()

    def setUp(self):
        self.standin.sar_rules = [
            # discovery and /openapi for everyone (kubectl reads them first)
            {"allowed": True, "verb": "get", "path": "*"},
            {"allowed": True, "verb": "create", "resource": ["selfsubjectreviews", "selfsubjectaccessreviews"]},
        ]
        self.standin.clear_faults()

    def reviews(self):
        return self.standin.review_counts["subjectaccessreviews"]

    def test_masters_are_not_reviewed(self):
        self.standin.reset_calls()
        ns = self.new_namespace()
        self.create(model("m1", ns))
        self.api("GET", collection_path("LanguageModel", ns), expect=200)
        self.api("GET", "/apis", expect=200)
        self.assertEqual(self.reviews(), 0)
        self.assertEqual(self.standin.calls_to(SAR), 0)

    def test_allowed_by_review(self):
        ns = self.new_namespace()
        self.create(model("m1", ns))
        self.standin.add_rule(True, user="alice", verb="get", resource="languagemodels", namespace=ns)
        r = self.as_user("alice", "GET", item_path("LanguageModel", "m1", ns))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["metadata"]["name"], "m1")

    def test_denied_by_review(self):
        ns = self.new_namespace()
        self.standin.add_rule(False, user="alice", verb="create", resource="languagemodels",
                              reason="alice may only read")
        r = self.as_user("alice", "POST", collection_path("LanguageModel", ns), model("m2", ns))
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertEqual(s["message"], 'languagemodels.langop.io is forbidden: User "alice" cannot create '
                         'resource "languagemodels" in API group "langop.io" in the namespace '
                         f'"{ns}": alice may only read')
        self.assertEqual(s["details"], {"group": "langop.io", "kind": "languagemodels"})
        self.get("LanguageModel", "m2", ns, expect=404)  # nothing was created
        # a named object: its name in the message and the details; no reason, none appended
        r = self.as_user("alice", "DELETE", item_path("LanguageModel", "m3", ns))
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertEqual(s["message"], 'languagemodels.langop.io "m3" is forbidden: User "alice" cannot delete '
                         'resource "languagemodels" in API group "langop.io" in the namespace '
                         f'"{ns}": no stand-in rule matched')
        self.assertEqual(s["details"], {"name": "m3", "group": "langop.io", "kind": "languagemodels"})

    def test_denied_non_resource_and_cluster_scope(self):
        self.standin.sar_rules = []
        r = self.as_user("erin", "GET", "/openapi/v2")
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertEqual(s["message"], 'forbidden: User "erin" cannot get path "/openapi/v2": '
                         'no stand-in rule matched')
        r = self.as_user("erin", "GET", collection_path("LanguageCluster"))
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertIn('User "erin" cannot list resource "languageclusters" in API group "langop.io" '
                      'at the cluster scope', s["message"])
        # health needs no authorization
        self.assertEqual(self.as_user("erin", "GET", "/readyz").status, 200)

    def test_review_error_fails_closed(self):
        ns = self.new_namespace()
        self.standin.add_rule(True, user="carol", verb="list", resource="languagemodels")
        self.standin.add_fault("500", path=SAR, method="POST", count=1)
        r = self.as_user("carol", "GET", collection_path("LanguageModel", ns))
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertIn("the authorization check failed", s["message"])
        self.assertEqual(self.server.request("GET", "/readyz", token=None).status, 200)
        # the failure was not cached: the next request asks again, and is allowed
        r = self.as_user("carol", "GET", collection_path("LanguageModel", ns))
        self.assertEqual(r.status, 200, r)

    def test_decisions_are_cached_for_the_ttl(self):
        ns = self.new_namespace()
        self.standin.add_rule(True, user="dave", verb="list", resource="languagemodels")
        self.standin.reset_calls()
        path = collection_path("LanguageModel", ns)
        for _ in range(3):
            self.assertEqual(self.as_user("dave", "GET", path).status, 200)
        self.assertEqual(self.reviews(), 1)
        for _ in range(2):  # a deny is cached too
            self.assertEqual(self.as_user("dave", "POST", path, model("x", ns)).status, 403)
        self.assertEqual(self.reviews(), 2)
        time.sleep(TTL_S + 0.5)
        self.assertEqual(self.as_user("dave", "GET", path).status, 200)
        self.assertEqual(self.reviews(), 3)

    def test_impersonation_allowed(self):
        ns = self.new_namespace()
        self.create(model("m1", ns))
        self.standin.add_rule(True, user="alice", verb="impersonate", resource="users", name="bob")
        self.standin.add_rule(True, user="alice", verb="impersonate", resource="groups", name="g")
        # only bob in group g may list: the review must be about the impersonated identity
        self.standin.add_rule(True, user="bob", group="g", verb="list", resource="languagemodels")
        r = self.kubectl_as("alice", "--as=bob", "--as-group=g", "get", "lmodel", "-n", ns)
        self.assertIn("m1", r.out)
        # the request log names both: who asked, and who the request ran as
        lines = [l for l in self.server.log_text().splitlines()
                 if f'URI="/apis/langop.io/v1alpha1/namespaces/{ns}/languagemodels' in l and "code=200" in l]
        self.assertTrue(lines, self.server.log_tail())
        self.assertIn('user="alice"', lines[-1])
        self.assertIn('impersonatedUser="bob"', lines[-1])
        r = self.kubectl_as("alice", "--as=bob", "--as-group=g", "auth", "whoami", "-o", "json")
        info = json.loads(r.out)["status"]["userInfo"]
        self.assertEqual(info["username"], "bob")
        self.assertEqual(sorted(info["groups"]), ["g", "system:authenticated"])
        # without the group, bob may not list
        r = self.kubectl_as("alice", "--as=bob", "get", "lmodel", "-n", ns, ok=False)
        self.assertIn('User "bob" cannot list resource "languagemodels"', r.err)

    def test_impersonation_refused(self):
        ns = self.new_namespace()
        self.standin.add_rule(True, user="alice", verb="impersonate", resource="users", name="bob")
        self.standin.add_rule(True, verb="list", resource="languagemodels")
        r = self.kubectl_as("alice", "--as=mallory", "get", "lmodel", "-n", ns, ok=False)
        self.assertIn('users "mallory" is forbidden: User "alice" cannot impersonate resource "users" '
                      'in API group "" at the cluster scope', r.err)
        r = self.kubectl_as("alice", "--as=bob", "--as-group=admins", "get", "lmodel", "-n", ns, ok=False)
        self.assertIn('groups "admins" is forbidden: User "alice" cannot impersonate resource "groups"', r.err)
        r = self.as_user("alice", "GET", collection_path("LanguageModel", ns),
                         headers={"Impersonate-User": "bob", "Impersonate-Uid": "u-1"})
        s = self.assertStatus(r, 403, "Forbidden")
        self.assertIn('uids.authentication.k8s.io "u-1" is forbidden', s["message"])
        r = self.as_user("alice", "GET", collection_path("LanguageModel", ns),
                         headers={"Impersonate-Group": "g"})
        self.assertStatus(r, 400, "BadRequest")

    def test_whoami(self):
        r = self.kubectl_as("carol", "auth", "whoami")
        self.assertIn("carol", r.out)
        self.assertIn("system:authenticated", r.out)

    def test_can_i_is_the_webhook_decision(self):
        self.standin.add_rule(True, user="erin", verb="create", resource="languagemodels", namespace="x")
        r = self.kubectl_as("erin", "auth", "can-i", "create", "lmodel", "-n", "x")
        self.assertEqual(r.out.strip(), "yes")
        r = self.kubectl_as("erin", "auth", "can-i", "create", "lmodel", "-n", "y", ok=False)
        self.assertEqual(r.out.strip(), "no - no stand-in rule matched")  # the reviewer's reason


class AlwaysAllowTest(AuthzCase):

    def test_warns_at_start(self):
        self.assertIn("AlwaysAllow", self.server.log_text())

    def test_whoami(self):
        r = self.kubectl_as("alice", "auth", "whoami")
        self.assertIn("alice", r.out)

    def test_review_resource_lists(self):
        for gv, name in (("authentication.k8s.io/v1", "selfsubjectreviews"),
                         ("authorization.k8s.io/v1", "selfsubjectaccessreviews")):
            r = self.api("GET", f"/apis/{gv}", expect=200)
            doc = r.json()
            self.assertEqual((doc["kind"], doc["groupVersion"]), ("APIResourceList", gv))
            self.assertEqual([(x["name"], x["namespaced"], x["verbs"]) for x in doc["resources"]],
                             [(name, False, ["create"])])
        # /apis does not claim kube-apiserver's groups
        groups = [g["name"] for g in self.api("GET", "/apis", expect=200).json()["groups"]]
        self.assertEqual(groups, ["langop.io"])

    def test_can_i_says_yes(self):
        r = self.kubectl_as("alice", "auth", "can-i", "create", "lmodel", "-n", "x")
        self.assertEqual(r.out.strip(), "yes")


if __name__ == "__main__":
    unittest.main()
