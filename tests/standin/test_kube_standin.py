#!/usr/bin/python3
"""Tests of the kube-apiserver stand-in (tests/standin/kube_standin.py):
delegated-auth reviews, the authentication ConfigMap, storage semantics,
watch, faults, the subprocess mode and kubectl against it.

Run: /usr/bin/python3 tests/standin/test_kube_standin.py
"""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import kube_standin  # noqa: E402
from kube_standin import KubeStandin, write_kubeconfig  # noqa: E402

KUBECTL = os.environ.get("LANGOP_KUBECTL") or shutil.which("kubectl")
AUTH_CM = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def make_certs(d):
    """Server CA + serving cert (deploy/gen-certs.sh), and a client CA with a
    client certificate for CN=front-proxy-client, through the stand-in's helpers."""
    d = Path(d)
    kube_standin.make_serving_certs(d)
    kube_standin.make_ca(d, "client-ca")
    kube_standin.make_client_cert(d, "client-ca", "client", "front-proxy-client", orgs=["system:masters"])
    return d


class Client:
    """Raw HTTPS/1.1 against the stand-in."""

    def __init__(self, port, ca, cert=None, key=None):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=str(ca))
        if cert:
            self.ctx.load_cert_chain(str(cert), str(key))

    def conn(self, timeout=10):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.ctx)

    def req(self, method, path, body=None, ctype="application/json", headers=None, timeout=10):
        c = self.conn(timeout)
        h = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h["Content-Type"] = ctype
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            try:
                obj = json.loads(raw) if raw else None
            except ValueError:
                obj = raw.decode()
            return r.status, hdrs, obj
        finally:
            c.close()


def cm(name, labels=None, data=None, ns=None):
    meta = {"name": name}
    if labels:
        meta["labels"] = labels
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


def deployment(name, replicas=1, image="nginx"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def raw_chunks(client, path, timeout=10):
    """GET path on a connection of its own, read to the end: (HTTP status, the
    body's chunks as sent, whether the last chunk came). http.client would
    join the chunks; a watch client must not care how they are cut."""
    sock = socket.create_connection(("127.0.0.1", client.port), timeout=timeout)
    tls = client.ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    tls.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode())
    data = b""
    try:
        while True:
            got = tls.recv(65536)
            if not got:
                break
            data += got
    except (ssl.SSLError, ConnectionResetError):
        pass  # a dropped connection: no close_notify
    finally:
        tls.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    chunks, ended = [], False
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        n = int(size_line, 16)
        if n == 0:
            ended = True
            break
        chunks.append(rest[:n])
        body = rest[n + 2:]
    return status, chunks, ended


class StandinCase(unittest.TestCase):
    """One in-process stand-in per class; faults and counters reset per test."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kube-standin-")
        cls.certs = make_certs(Path(cls.tmp) / "certs")
        cls.st = KubeStandin(cls.certs / "apiserver.crt", cls.certs / "apiserver.key",
                             client_ca=cls.certs / "client-ca.crt").start()
        cls.c = Client(cls.st.port, cls.certs / "ca.crt")

    @classmethod
    def tearDownClass(cls):
        cls.st.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.st.clear_faults()
        self.st.reset_calls()

    def assertStatus(self, resp, code, reason):
        status, hdrs, body = resp
        self.assertEqual(status, code, body)
        self.assertEqual(hdrs.get("content-type"), "application/json")
        self.assertEqual(body["kind"], "Status")
        self.assertEqual(body["apiVersion"], "v1")
        self.assertEqual(body["status"], "Failure")
        self.assertEqual(body["code"], code)
        self.assertEqual(body["reason"], reason)
        return body


class TestTokenReview(StandinCase):
    PATH = "/apis/authentication.k8s.io/v1/tokenreviews"

    def review(self, token, audiences=None):
        spec = {"token": token}
        if audiences is not None:
            spec["audiences"] = audiences
        return self.c.req("POST", self.PATH, {"apiVersion": "authentication.k8s.io/v1",
                                              "kind": "TokenReview", "spec": spec})

    def test_known_token_is_authenticated(self):
        self.st.set_token("tok-alice", "alice", uid="u-1", groups=["devs", "system:authenticated"],
                          extra={"scopes": ["a", "b"]})
        code, _, body = self.review("tok-alice")
        self.assertEqual(code, 201)
        self.assertEqual(body["kind"], "TokenReview")
        self.assertEqual(body["apiVersion"], "authentication.k8s.io/v1")
        self.assertEqual(body["spec"]["token"], "tok-alice")
        self.assertIs(body["status"]["authenticated"], True)
        self.assertEqual(body["status"]["user"], {"username": "alice", "uid": "u-1",
                                                  "groups": ["devs", "system:authenticated"],
                                                  "extra": {"scopes": ["a", "b"]}})
        self.assertEqual(body["status"]["audiences"], ["https://kubernetes.default.svc.cluster.local"])

    def test_unknown_token_is_not_authenticated(self):
        code, _, body = self.review("nope")
        self.assertEqual(code, 201)
        self.assertNotIn("authenticated", body["status"])  # false is omitted, as kube does
        self.assertEqual(body["status"]["user"], {})
        self.assertIn("error", body["status"])

    def test_audiences(self):
        self.st.set_token("tok-aud", "bob", audiences=["langop", "other"])
        _, _, ok = self.review("tok-aud", ["langop"])
        self.assertTrue(ok["status"]["authenticated"])
        self.assertEqual(ok["status"]["audiences"], ["langop"])
        _, _, bad = self.review("tok-aud", ["somebody-else"])
        self.assertFalse(bad["status"].get("authenticated", False))

    def test_calls_are_counted(self):
        self.st.set_token("t", "u")
        for _ in range(3):
            self.review("t")
        self.review("x")
        self.assertEqual(self.st.review_counts["tokenreviews"], 4)
        self.assertEqual(self.st.calls_to(self.PATH, "POST"), 4)
        code, _, calls = self.c.req("GET", "/standin/calls")
        self.assertEqual(calls["reviews"]["tokenreviews"], 4)
        self.assertEqual(calls["calls"][f"POST {self.PATH}"], 4)

    def test_other_methods_refused(self):
        self.assertStatus(self.c.req("GET", self.PATH), 405, "MethodNotAllowed")


class TestSubjectAccessReview(StandinCase):
    PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

    def setUp(self):
        super().setUp()
        self.st.sar_rules = []
        self.st.add_rule(False, user="mallory", reason="mallory is banned", denied=True)
        self.st.add_rule(True, user="alice", verb=["get", "list", "watch"], apiGroup="langop.io",
                         resource="languagemodels", namespace="team-a")
        self.st.add_rule(True, group="editors", verb="*", apiGroup="langop.io", resource="*")
        self.st.add_rule(True, user="alice", verb="get", apiGroup="langop.io", resource="languageagents",
                         subresource="agentconfig", name="bot")
        self.st.add_rule(True, group="system:authenticated", verb="get", path=["/version", "/apis*"])

    def sar(self, user, groups=(), ra=None, nra=None):
        spec = {"user": user, "groups": list(groups)}
        if ra is not None:
            spec["resourceAttributes"] = ra
        if nra is not None:
            spec["nonResourceAttributes"] = nra
        code, _, body = self.c.req("POST", self.PATH, {"apiVersion": "authorization.k8s.io/v1",
                                                       "kind": "SubjectAccessReview", "spec": spec})
        self.assertEqual(code, 201)
        self.assertEqual(body["kind"], "SubjectAccessReview")
        self.assertEqual(body["spec"]["user"], user)
        return body["status"]

    def ra(self, verb, resource="languagemodels", ns="team-a", name="", sub="", group="langop.io"):
        return {"verb": verb, "group": group, "version": "v1alpha1", "resource": resource,
                "namespace": ns, "name": name, "subresource": sub}

    def test_resource_rules(self):
        self.assertEqual(self.sar("alice", ra=self.ra("list")), {"allowed": True})
        self.assertFalse(self.sar("alice", ra=self.ra("delete"))["allowed"])
        self.assertFalse(self.sar("alice", ra=self.ra("get", ns="team-b"))["allowed"])
        self.assertFalse(self.sar("alice", ra=self.ra("get", group="apps"))["allowed"])
        self.assertTrue(self.sar("carol", ["editors"], ra=self.ra("delete", resource="languagetools"))["allowed"])
        self.assertFalse(self.sar("carol", ["viewers"], ra=self.ra("delete"))["allowed"])

    def test_subresource_and_name(self):
        self.assertTrue(self.sar("alice", ra=self.ra("get", "languageagents", name="bot", sub="agentconfig"))["allowed"])
        self.assertFalse(self.sar("alice", ra=self.ra("get", "languageagents", name="other", sub="agentconfig"))["allowed"])
        self.assertFalse(self.sar("alice", ra=self.ra("get", "languageagents", name="bot"))["allowed"])

    def test_denied_with_reason(self):
        s = self.sar("mallory", ["editors"], ra=self.ra("get"))
        self.assertEqual(s, {"allowed": False, "denied": True, "reason": "mallory is banned"})
        s = self.sar("nobody", ra=self.ra("get"))
        self.assertFalse(s["allowed"])
        self.assertNotIn("denied", s)
        self.assertTrue(s["reason"])

    def test_non_resource(self):
        auth = ["system:authenticated"]
        self.assertTrue(self.sar("bob", auth, nra={"path": "/version", "verb": "get"})["allowed"])
        self.assertTrue(self.sar("bob", auth, nra={"path": "/apis/langop.io", "verb": "get"})["allowed"])
        self.assertFalse(self.sar("bob", auth, nra={"path": "/openapi/v2", "verb": "get"})["allowed"])
        self.assertFalse(self.sar("bob", auth, nra={"path": "/version", "verb": "post"})["allowed"])
        # a resource rule never matches a non-resource request
        self.assertFalse(self.sar("carol", ["editors"], nra={"path": "/version", "verb": "get"})["allowed"])

    def test_calls_are_counted(self):
        for _ in range(5):
            self.sar("alice", ra=self.ra("get"))
        self.assertEqual(self.st.review_counts["subjectaccessreviews"], 5)
        self.assertEqual(self.st.calls_to(self.PATH), 5)


class TestAuthConfigMap(StandinCase):
    def test_keys_set_by_the_test(self):
        ca = (self.certs / "client-ca.crt").read_text()
        self.st.auth_config = dict(kube_standin.DEFAULT_AUTH_CONFIG, **{
            "client-ca-file": ca, "requestheader-client-ca-file": ca,
            "requestheader-allowed-names": '["front-proxy-client","aggregator"]'})
        code, _, body = self.c.req("GET", AUTH_CM)
        self.assertEqual(code, 200)
        self.assertEqual((body["kind"], body["apiVersion"]), ("ConfigMap", "v1"))
        self.assertEqual(body["metadata"]["namespace"], "kube-system")
        self.assertEqual(body["metadata"]["name"], "extension-apiserver-authentication")
        d = body["data"]
        self.assertEqual(d["client-ca-file"], ca)
        self.assertEqual(json.loads(d["requestheader-allowed-names"]), ["front-proxy-client", "aggregator"])
        self.assertEqual(json.loads(d["requestheader-username-headers"]), ["X-Remote-User"])
        self.assertEqual(json.loads(d["requestheader-group-headers"]), ["X-Remote-Group"])
        self.assertEqual(json.loads(d["requestheader-extra-headers-prefix"]), ["X-Remote-Extra-"])
        self.assertEqual(json.loads(d["requestheader-uid-headers"]), ["X-Remote-Uid"])
        rv1 = body["metadata"]["resourceVersion"]
        # unchanged config: same object; changed config: new resourceVersion (a rotation)
        self.assertEqual(self.c.req("GET", AUTH_CM)[2]["metadata"]["resourceVersion"], rv1)
        self.st.auth_config["requestheader-allowed-names"] = "[]"
        body2 = self.c.req("GET", AUTH_CM)[2]
        self.assertGreater(int(body2["metadata"]["resourceVersion"]), int(rv1))
        self.assertEqual(body2["metadata"]["uid"], body["metadata"]["uid"])


class TestStorage(StandinCase):
    def test_create_get_conflicts_delete(self):
        code, _, made = self.c.req("POST", CMS, cm("crud", data={"a": "1"}))
        self.assertEqual(code, 201, made)
        meta = made["metadata"]
        self.assertRegex(meta["uid"], r"^[0-9a-f-]{36}$")
        self.assertRegex(meta["creationTimestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(meta["namespace"], "default")
        self.assertNotIn("generation", meta)  # configmaps have none in kube
        s = self.assertStatus(self.c.req("POST", CMS, cm("crud")), 409, "AlreadyExists")
        self.assertEqual(s["message"], 'configmaps "crud" already exists')
        self.assertEqual(s["details"], {"name": "crud", "kind": "configmaps"})
        code, _, got = self.c.req("GET", CMS + "/crud")
        self.assertEqual((code, got), (200, made))
        # update with the current rv, then a stale one
        upd = dict(got, data={"a": "2"})
        code, _, new = self.c.req("PUT", CMS + "/crud", upd)
        self.assertEqual(code, 200)
        self.assertGreater(int(new["metadata"]["resourceVersion"]), int(meta["resourceVersion"]))
        s = self.assertStatus(self.c.req("PUT", CMS + "/crud", upd), 409, "Conflict")
        self.assertIn('Operation cannot be fulfilled on configmaps "crud": the object has been modified', s["message"])
        # a no-op update keeps the rv
        same = self.c.req("PUT", CMS + "/crud", new)[2]
        self.assertEqual(same["metadata"]["resourceVersion"], new["metadata"]["resourceVersion"])
        code, _, gone = self.c.req("DELETE", CMS + "/crud")
        self.assertEqual(code, 200)
        self.assertEqual(gone, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                "details": {"name": "crud", "kind": "configmaps", "uid": meta["uid"]}})
        s = self.assertStatus(self.c.req("GET", CMS + "/crud"), 404, "NotFound")
        self.assertEqual(s["message"], 'configmaps "crud" not found')
        self.assertStatus(self.c.req("DELETE", CMS + "/crud"), 404, "NotFound")
        self.assertStatus(self.c.req("PUT", CMS + "/crud", upd), 404, "NotFound")

    def test_group_resource_messages_and_invalid(self):
        s = self.assertStatus(self.c.req("GET", DEPLOYS + "/none"), 404, "NotFound")
        self.assertEqual(s["message"], 'deployments.apps "none" not found')
        self.assertEqual(s["details"], {"name": "none", "group": "apps", "kind": "deployments"})
        s = self.assertStatus(self.c.req("POST", CMS, cm("Bad_Name")), 422, "Invalid")
        self.assertEqual(s["details"]["kind"], "ConfigMap")
        self.assertEqual(s["details"]["causes"][0]["field"], "metadata.name")
        bad = deployment("sel")
        bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
        s = self.assertStatus(self.c.req("POST", DEPLOYS, bad), 422, "Invalid")
        self.assertTrue(s["message"].startswith('Deployment.apps "sel" is invalid: spec.template.metadata.labels'))
        self.assertStatus(self.c.req("POST", CMS, cm("n", data={"x": 1})), 422, "Invalid")

    def test_namespaces(self):
        self.assertStatus(self.c.req("POST", "/api/v1/namespaces/ghost/configmaps", cm("a")), 404, "NotFound")
        code, _, ns = self.c.req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                                "metadata": {"name": "team-x"}})
        self.assertEqual(code, 201)
        self.assertEqual(ns["status"], {"phase": "Active"})
        self.assertEqual(self.c.req("POST", "/api/v1/namespaces/team-x/configmaps", cm("a"))[0], 201)
        self.assertEqual(self.c.req("POST", "/api/v1/namespaces/team-x/secrets",
                                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                                     "data": {"k": "dg=="}})[0], 201)
        code, _, gone = self.c.req("DELETE", "/api/v1/namespaces/team-x")
        self.assertEqual((code, gone["kind"], gone["status"]), (200, "Namespace", {"phase": "Terminating"}))
        self.assertStatus(self.c.req("GET", "/api/v1/namespaces/team-x"), 404, "NotFound")
        self.assertStatus(self.c.req("GET", "/api/v1/namespaces/team-x/configmaps/a"), 404, "NotFound")
        self.assertStatus(self.c.req("GET", "/api/v1/namespaces/team-x/secrets/s"), 404, "NotFound")

    def test_list_selectors_and_metadata(self):
        for name, labels in (("l1", {"app": "gw", "tier": "a"}), ("l2", {"app": "gw", "tier": "b"}),
                             ("l3", {"app": "agent"}), ("l4", {})):
            self.assertEqual(self.c.req("POST", CMS, cm(name, labels))[0], 201)

        def names(sel):
            code, _, body = self.c.req("GET", CMS + "?labelSelector=" + sel.replace(" ", "%20"))
            self.assertEqual(code, 200, body)
            return sorted(o["metadata"]["name"] for o in body["items"] if o["metadata"]["name"].startswith("l"))
        self.assertEqual(names("app=gw"), ["l1", "l2"])
        self.assertEqual(names("app==gw,tier=b"), ["l2"])
        self.assertEqual(names("app!=gw"), ["l3", "l4"])
        self.assertEqual(names("tier in (a,c)"), ["l1"])
        self.assertEqual(names("app notin (gw)"), ["l3", "l4"])
        self.assertEqual(names("tier"), ["l1", "l2"])
        self.assertEqual(names("!tier"), ["l3", "l4"])
        code, _, body = self.c.req("GET", CMS + "?fieldSelector=metadata.name%3Dl3")
        self.assertEqual([o["metadata"]["name"] for o in body["items"]], ["l3"])
        self.assertEqual((body["kind"], body["apiVersion"]), ("ConfigMapList", "v1"))
        self.assertRegex(body["metadata"]["resourceVersion"], r"^[1-9][0-9]*$")
        self.assertGreaterEqual(int(body["metadata"]["resourceVersion"]),
                                max(int(o["metadata"]["resourceVersion"]) for o in body["items"]))
        code, _, all_ns = self.c.req("GET", "/api/v1/configmaps")
        self.assertIn("kube-system", {o["metadata"]["namespace"] for o in all_ns["items"]})
        self.assertStatus(self.c.req("GET", CMS + "?labelSelector=a%20in%20b"), 400, "BadRequest")

    def test_event_field_selectors(self):
        evs = "/api/v1/namespaces/default/events"
        for name, kind, ns, reason in (("fs.1", "LanguageAgent", "default", "Synced"),
                                       ("fs.2", "LanguageAgent", "default", "Failed"),
                                       ("fs.3", "LanguageCluster", "", "Synced")):
            ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
                  "involvedObject": {"apiVersion": "langop.io/v1alpha1", "kind": kind, "name": "fs",
                                     "namespace": ns, "uid": "u-" + name},
                  "reason": reason, "type": "Normal", "source": {"component": "langop-apiserver"}}
            if not ns:
                del ev["involvedObject"]["namespace"]
            self.assertEqual(self.c.req("POST", evs, ev)[0], 201)

        def names(sel, path=evs):
            code, _, body = self.c.req("GET", path + "?fieldSelector=" + sel.replace("=", "%3D"))
            self.assertEqual(code, 200, body)
            return sorted(o["metadata"]["name"] for o in body["items"] if o["metadata"]["name"].startswith("fs."))
        # what kubectl describe asks for a namespaced and a cluster-scoped object
        self.assertEqual(names("involvedObject.name=fs,involvedObject.namespace=default,"
                               "involvedObject.kind=LanguageAgent,involvedObject.uid=u-fs.1"), ["fs.1"])
        self.assertEqual(names("involvedObject.name=fs,involvedObject.namespace=,involvedObject.kind=LanguageCluster",
                               "/api/v1/events"), ["fs.3"])
        self.assertEqual(names("involvedObject.kind=LanguageAgent,reason!=Synced"), ["fs.2"])
        self.assertEqual(names("source=langop-apiserver,type=Normal,involvedObject.apiVersion=langop.io/v1alpha1"),
                         ["fs.1", "fs.2", "fs.3"])
        s = self.assertStatus(self.c.req("GET", evs + "?fieldSelector=involvedObject.color%3Dred"), 400, "BadRequest")
        self.assertEqual(s["message"], "field label not supported: involvedObject.color")
        # other kinds select on metadata only
        self.assertStatus(self.c.req("GET", CMS + "?fieldSelector=involvedObject.name%3Dfs"), 400, "BadRequest")

    def test_server_side_apply(self):
        path = CMS + "/ssa"
        cfg = cm("ssa", {"owner": "langop"}, {"a": "1", "b": "2"})
        apply = "application/apply-patch+yaml"
        code, _, made = self.c.req("PATCH", path + "?fieldManager=langop&force=true", cfg, apply)
        self.assertEqual(code, 201, made)
        self.assertEqual(made["data"], {"a": "1", "b": "2"})
        mf = made["metadata"]["managedFields"]
        self.assertEqual([(m["manager"], m["operation"], m["fieldsType"]) for m in mf],
                         [("langop", "Apply", "FieldsV1")])
        self.assertIn("f:a", mf[0]["fieldsV1"]["f:data"])
        # another manager's field survives; the fields langop stops applying go
        self.c.req("PATCH", path + "?fieldManager=other&force=true",
                   {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"c": "3"}}, apply)
        yaml_body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '10'\n"
        code, _, new = self.c.req("PATCH", path + "?fieldManager=langop&force=true", yaml_body, apply)
        self.assertEqual(code, 200, new)
        self.assertEqual(new["data"], {"a": "10", "c": "3"})
        self.assertNotIn("labels", new["metadata"])
        self.assertEqual(new["metadata"]["uid"], made["metadata"]["uid"])
        # the same apply again is a no-op: same rv
        again = self.c.req("PATCH", path + "?fieldManager=langop&force=true", yaml_body, apply)[2]
        self.assertEqual(again["metadata"]["resourceVersion"], new["metadata"]["resourceVersion"])
        self.assertStatus(self.c.req("PATCH", path, yaml_body, apply), 400, "BadRequest")
        # a field another applier owns: 409 without force, taken over with it
        take = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"c": "30"}}
        s = self.assertStatus(self.c.req("PATCH", path + "?fieldManager=langop", take, apply), 409, "Conflict")
        self.assertEqual(s["details"]["causes"], [{"reason": "FieldManagerConflict",
                                                   "message": 'conflict with "other" using v1', "field": ".data.c"}])
        self.assertEqual(s["message"], 'Apply failed with 1 conflict: conflict with "other" using v1: .data.c')
        same = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "10", "c": "3"}}
        self.assertEqual(self.c.req("PATCH", path + "?fieldManager=langop&force=false", same, apply)[0], 200)
        code, _, taken = self.c.req("PATCH", path + "?fieldManager=langop&force=true", take, apply)
        self.assertEqual((code, taken["data"]), (200, {"c": "30"}))  # its own "a" dropped, "c" taken over
        mf = {m["manager"]: m["fieldsV1"] for m in taken["metadata"]["managedFields"]}
        self.assertEqual(mf["langop"], {"f:data": {"f:c": {}}})
        self.assertNotIn("f:c", mf["other"].get("f:data", {}))
        self.c.req("PATCH", path + "?fieldManager=langop&force=true", yaml_body, apply)
        # merge patch and json patch
        code, _, mp = self.c.req("PATCH", path, {"data": {"c": None, "d": "4"}}, "application/merge-patch+json")
        self.assertEqual((code, mp["data"]), (200, {"a": "10", "d": "4"}))
        code, _, jp = self.c.req("PATCH", path, [{"op": "replace", "path": "/data/d", "value": "5"}],
                                 "application/json-patch+json")
        self.assertEqual((code, jp["data"]), (200, {"a": "10", "d": "5"}))
        self.assertStatus(self.c.req("PATCH", CMS + "/nope", {"data": {}}, "application/merge-patch+json"),
                          404, "NotFound")

    def test_deployment_generation_and_status(self):
        code, _, d = self.c.req("PATCH", DEPLOYS + "/gw?fieldManager=langop&force=true", deployment("gw"),
                                "application/apply-patch+yaml")
        self.assertEqual(code, 201, d)
        self.assertEqual(d["metadata"]["generation"], 1)
        d2 = self.c.req("PATCH", DEPLOYS + "/gw", {"metadata": {"labels": {"x": "y"}}},
                        "application/merge-patch+json")[2]
        self.assertEqual(d2["metadata"]["generation"], 1)  # metadata only
        d3 = self.c.req("PATCH", DEPLOYS + "/gw", {"spec": {"replicas": 3}}, "application/merge-patch+json")[2]
        self.assertEqual(d3["metadata"]["generation"], 2)
        # status through the subresource only; the main resource keeps it
        code, _, s = self.c.req("PUT", DEPLOYS + "/gw/status", dict(d3, status={"readyReplicas": 3}))
        self.assertEqual(code, 200, s)
        self.assertEqual(s["status"], {"readyReplicas": 3})
        self.assertEqual(s["metadata"]["generation"], 2)
        self.assertEqual(s["spec"]["replicas"], 3)
        m = self.c.req("PUT", DEPLOYS + "/gw", dict(s, status={"readyReplicas": 0}))[2]
        self.assertEqual(m["status"], {"readyReplicas": 3})
        st = self.st.set_status("deployments", "gw", {"availableReplicas": 1}, "default", "apps")
        self.assertEqual(self.c.req("GET", DEPLOYS + "/gw")[2]["status"], st["status"])

    def test_more_kinds(self):
        for path, body in (
                ("/api/v1/namespaces/default/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gateway"},
                                                         "spec": {"ports": [{"port": 8000}]}}),
                ("/apis/batch/v1/namespaces/default/cronjobs", {"apiVersion": "batch/v1", "kind": "CronJob",
                                                                "metadata": {"name": "cj"}, "spec": {"schedule": "* * * * *"}}),
                ("/apis/batch/v1/namespaces/default/jobs", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {}}),
                ("/apis/coordination.k8s.io/v1/namespaces/default/leases",
                 {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "langop"},
                  "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
                ("/api/v1/namespaces/default/events", {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e.1"},
                                                       "reason": "Synced", "message": "ok"}),
                ("/apis/events.k8s.io/v1/namespaces/default/events",
                 {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e.2"}, "reason": "Synced"})):
            code, _, o = self.c.req("POST", path, body)
            self.assertEqual(code, 201, (path, o))
            self.assertEqual((o["kind"], o["apiVersion"]), (body["kind"], body["apiVersion"]))
            self.assertEqual(self.c.req("GET", path + "/" + body["metadata"]["name"])[2], o)
            lst = self.c.req("GET", path)[2]
            self.assertEqual(lst["kind"], body["kind"] + "List")
        # lease takeover with the rv as a lock
        lp = "/apis/coordination.k8s.io/v1/namespaces/default/leases/langop"
        lease = self.c.req("GET", lp)[2]
        lease["spec"]["holderIdentity"] = "b"
        self.assertEqual(self.c.req("PUT", lp, lease)[0], 200)
        lease["spec"]["holderIdentity"] = "c"
        self.assertStatus(self.c.req("PUT", lp, lease), 409, "Conflict")

    def test_dry_run_writes_nothing(self):
        before = self.c.req("GET", CMS)[2]["metadata"]["resourceVersion"]
        code, _, o = self.c.req("POST", CMS + "?dryRun=All", cm("dry"))
        self.assertEqual((code, o["metadata"]["name"]), (201, "dry"))
        self.assertStatus(self.c.req("GET", CMS + "/dry"), 404, "NotFound")
        self.c.req("POST", CMS, cm("dry2", data={"a": "1"}))
        rv = self.c.req("GET", CMS)[2]["metadata"]["resourceVersion"]
        self.assertGreater(int(rv), int(before))
        code, _, o = self.c.req("PATCH", CMS + "/dry2?dryRun=All&fieldManager=m",
                                cm("dry2", data={"a": "2"}), "application/apply-patch+yaml")
        self.assertEqual((code, o["data"]), (200, {"a": "2"}))
        self.assertEqual(self.c.req("DELETE", CMS + "/dry2?dryRun=All")[0], 200)
        got = self.c.req("GET", CMS + "/dry2")[2]
        self.assertEqual(got["data"], {"a": "1"})
        self.assertNotIn("managedFields", got["metadata"])
        self.assertEqual(self.c.req("GET", CMS)[2]["metadata"]["resourceVersion"], rv)
        self.assertStatus(self.c.req("POST", CMS + "?dryRun=Some", cm("dry3")), 400, "BadRequest")

    def test_finalizers(self):
        o = cm("fin")
        o["metadata"]["finalizers"] = ["langop.io/x"]
        self.c.req("POST", CMS, o)
        code, _, d = self.c.req("DELETE", CMS + "/fin")
        self.assertEqual(code, 200)
        self.assertIn("deletionTimestamp", d["metadata"])
        got = self.c.req("GET", CMS + "/fin")[2]
        self.assertEqual(self.c.req("PATCH", CMS + "/fin", {"metadata": {"finalizers": None}},
                                    "application/merge-patch+json")[0], 200)
        self.assertStatus(self.c.req("GET", CMS + "/fin"), 404, "NotFound")
        self.assertTrue(got)

    def test_discovery(self):
        code, _, apis = self.c.req("GET", "/apis")
        self.assertEqual(apis["kind"], "APIGroupList")
        names = {g["name"] for g in apis["groups"]}
        self.assertTrue({"apps", "batch", "coordination.k8s.io", "events.k8s.io", "authentication.k8s.io",
                         "authorization.k8s.io"} <= names)
        self.assertEqual(self.c.req("GET", "/api")[2]["versions"], ["v1"])
        core = self.c.req("GET", "/api/v1")[2]
        self.assertEqual(core["groupVersion"], "v1")
        by = {r["name"]: r for r in core["resources"]}
        self.assertEqual(by["configmaps"]["kind"], "ConfigMap")
        self.assertFalse(by["namespaces"]["namespaced"])
        apps = self.c.req("GET", "/apis/apps/v1")[2]
        self.assertIn("deployments/status", {r["name"] for r in apps["resources"]})
        self.assertEqual(self.c.req("GET", "/version")[2]["major"], "1")
        self.assertEqual(self.c.req("GET", "/apis/nope.io/v1")[0], 404)


class TestWatch(StandinCase):
    def open_watch(self, path):
        c = self.c.conn(timeout=10)
        c.request("GET", path, headers={"Accept": "application/json"})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        self.assertEqual(r.getheader("Content-Type"), "application/json")
        return c, r

    def read_events(self, r, n):
        out = []
        for _ in range(n):
            line = r.readline()
            self.assertTrue(line.endswith(b"\n"), line)
            out.append(json.loads(line))
        return out

    def test_watch_from_a_resource_version(self):
        rv0 = self.c.req("POST", CMS, cm("w-a", {"w": "1"}))[2]["metadata"]["resourceVersion"]
        self.c.req("POST", CMS, cm("w-b", {"w": "1"}))
        self.c.req("PATCH", CMS + "/w-a", {"data": {"k": "v"}}, "application/merge-patch+json")
        self.c.req("DELETE", CMS + "/w-b")
        self.c.req("POST", CMS, cm("w-other"))  # filtered out by the selector
        c, r = self.open_watch(f"{CMS}?watch=1&labelSelector=w%3D1&resourceVersion={rv0}")
        try:
            ev = self.read_events(r, 3)
            self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in ev],
                             [("ADDED", "w-b"), ("MODIFIED", "w-a"), ("DELETED", "w-b")])
            self.assertEqual(ev[1]["object"]["kind"], "ConfigMap")
            self.assertEqual(ev[1]["object"]["apiVersion"], "v1")
            rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in ev]
            self.assertEqual(rvs, sorted(rvs))
            self.assertGreater(rvs[0], int(rv0))
            # live events follow
            threading.Timer(0.2, lambda: self.c.req("POST", CMS, cm("w-c", {"w": "1"}))).start()
            (live,) = self.read_events(r, 1)
            self.assertEqual((live["type"], live["object"]["metadata"]["name"]), ("ADDED", "w-c"))
        finally:
            c.close()

    def test_watch_without_rv_starts_with_the_state(self):
        self.c.req("POST", DEPLOYS, deployment("wd"))
        c, r = self.open_watch(f"{DEPLOYS}?watch=true&fieldSelector=metadata.name%3Dwd")
        try:
            (e,) = self.read_events(r, 1)
            self.assertEqual((e["type"], e["object"]["kind"]), ("ADDED", "Deployment"))
        finally:
            c.close()

    def test_timeout_ends_the_watch(self):
        rv = self.c.req("GET", CMS)[2]["metadata"]["resourceVersion"]
        c, r = self.open_watch(f"{CMS}?watch=1&resourceVersion={rv}&timeoutSeconds=1&labelSelector=none%3Dnone")
        t0 = time.monotonic()
        self.assertEqual(r.read(), b"")
        self.assertLess(time.monotonic() - t0, 5)
        c.close()

    def test_bookmarks_before_the_timeout(self):
        rv = self.c.req("GET", CMS)[2]["metadata"]["resourceVersion"]
        base = f"{CMS}?watch=1&resourceVersion={rv}&labelSelector=none%3Dnone&"
        t0 = time.monotonic()
        # all three at once, to wait 3 s, not 7
        watches = [self.open_watch(base + q) for q in ("timeoutSeconds=3&allowWatchBookmarks=true",
                                                       "timeoutSeconds=1&allowWatchBookmarks=true",
                                                       "timeoutSeconds=3")]
        try:
            r = watches[0][1]
            (e,) = self.read_events(r, 1)  # 2 s before the deadline, as kube's watch cache
            self.assertAlmostEqual(time.monotonic() - t0, 1, delta=0.5)
            self.assertEqual(e, {"type": "BOOKMARK", "object": {
                "kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.st.store.rv), "creationTimestamp": None}}})
            self.assertEqual(r.read(), b"")  # then only the end
            for _, r in watches[1:]:
                self.assertEqual(r.read(), b"")  # too short for one, or not asked for
        finally:
            for c, _ in watches:
                c.close()

    def test_compacted_rv_is_gone(self):
        self.c.req("POST", CMS, cm("w-z"))
        self.st.compact()
        c, r = self.open_watch(f"{CMS}?watch=1&resourceVersion=2")
        try:
            (e,) = self.read_events(r, 1)
            self.assertEqual(e["type"], "ERROR")
            self.assertEqual((e["object"]["kind"], e["object"]["code"], e["object"]["reason"]),
                             ("Status", 410, "Expired"))
            self.assertEqual(r.read(), b"")  # and the stream ends
        finally:
            c.close()

    def test_selector_sees_objects_enter_and_leave(self):
        rv0 = self.c.req("POST", CMS, cm("w-move", {"w2": "no"}))[2]["metadata"]["resourceVersion"]
        c, r = self.open_watch(f"{CMS}?watch=1&labelSelector=w2%3Dyes&resourceVersion={rv0}")
        try:
            def patch(body):
                code, _, o = self.c.req("PATCH", CMS + "/w-move", body, "application/merge-patch+json")
                self.assertEqual(code, 200, o)
                return o["metadata"]["resourceVersion"]
            patch({"metadata": {"labels": {"w2": "yes"}}})     # comes to match: ADDED
            patch({"data": {"k": "1"}})                        # still matches: MODIFIED
            left = patch({"metadata": {"labels": {"w2": "no"}}, "data": {"k": "2"}})  # leaves: DELETED
            patch({"data": {"k": "3"}})                        # unseen
            self.c.req("DELETE", CMS + "/w-move")              # unseen: it no longer matched
            self.c.req("POST", CMS, cm("w-after", {"w2": "yes"}))
            ev = self.read_events(r, 4)
            self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in ev],
                             [("ADDED", "w-move"), ("MODIFIED", "w-move"), ("DELETED", "w-move"),
                              ("ADDED", "w-after")])
            self.assertEqual(ev[1]["object"]["data"], {"k": "1"})
            gone = ev[2]["object"]  # kube: the state before the change, at the change's rv
            self.assertEqual((gone["metadata"]["labels"], gone["data"], gone["metadata"]["resourceVersion"]),
                             ({"w2": "yes"}, {"k": "1"}, left))
        finally:
            c.close()


class TestFaults(StandinCase):
    def test_500_then_normal(self):
        self.st.add_fault("500", path=AUTH_CM, method="GET", count=2)
        self.assertStatus(self.c.req("GET", AUTH_CM), 500, "InternalError")
        self.assertEqual(self.c.req("POST", CMS, cm("f500"))[0], 201)  # other paths untouched
        self.assertStatus(self.c.req("GET", AUTH_CM), 500, "InternalError")
        self.assertEqual(self.c.req("GET", AUTH_CM)[0], 200)
        self.assertEqual(self.st.calls_to(AUTH_CM, "GET"), 3)

    def test_429_with_retry_after(self):
        self.st.add_fault("429", path="/apis/authorization.k8s.io/*", retry_after=7)
        code, hdrs, body = self.c.req("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                      {"spec": {"user": "a", "nonResourceAttributes": {"path": "/", "verb": "get"}}})
        self.assertEqual(code, 429)
        self.assertEqual(hdrs["retry-after"], "7")
        self.assertEqual(body["reason"], "TooManyRequests")
        self.assertEqual(body["details"]["retryAfterSeconds"], 7)
        self.assertEqual(self.st.review_counts["subjectaccessreviews"], 0)

    def test_delay(self):
        self.st.add_fault("delay", path=CMS + "/*", delay=0.6)
        self.c.req("POST", CMS, cm("slow"))
        t0 = time.monotonic()
        self.assertStatus(self.c.req("GET", CMS + "/nothing"), 404, "NotFound")
        self.assertGreaterEqual(time.monotonic() - t0, 0.6)
        t0 = time.monotonic()
        self.assertEqual(self.c.req("GET", CMS + "/slow")[0], 200)
        self.assertLess(time.monotonic() - t0, 0.5)

    def test_drop(self):
        self.st.add_fault("drop", path="/apis/authentication.k8s.io/v1/tokenreviews")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError, ssl.SSLError,
                                http.client.BadStatusLine)):
            self.c.req("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": "x"}})
        self.assertEqual(self.c.req("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                    {"spec": {"token": "x"}})[0], 201)

    def test_409_and_method_filter(self):
        self.c.req("POST", CMS, cm("f409"))
        self.st.add_fault("409", path=CMS + "/f409", method="PUT")
        got = self.c.req("GET", CMS + "/f409")[2]
        self.assertStatus(self.c.req("PUT", CMS + "/f409", got), 409, "Conflict")
        self.assertEqual(self.c.req("PUT", CMS + "/f409", got)[0], 200)

    def test_split_watch(self):
        rv = self.c.req("GET", CMS)[2]["metadata"]["resourceVersion"]
        for n in ("sp-a", "sp-b", "sp-c"):
            self.c.req("POST", CMS, cm(n, {"sp": "1"}))
        path = f"{CMS}?watch=1&resourceVersion={rv}&labelSelector=sp%3D1&timeoutSeconds=1"
        _, whole, _ = raw_chunks(self.c, path)
        self.assertEqual(len(whole), 3)  # one chunk an event
        for size in (7, 1000):
            self.st.add_fault("split", path=CMS, method="GET", size=size)
            status, chunks, ended = raw_chunks(self.c, path)
            self.assertEqual((status, ended), (200, True))
            self.assertEqual(b"".join(chunks), b"".join(whole))
            self.assertTrue(all(len(x) == size for x in chunks[:-1]), [len(x) for x in chunks])
            self.assertLessEqual(len(chunks[-1]), size)
        self.assertEqual(self.st.faults, [])
        self.st.add_fault("split", path=CMS + "/*", size=3)  # a request that is no watch: as usual
        self.assertEqual(self.c.req("GET", CMS + "/sp-a")[2]["metadata"]["name"], "sp-a")

    def test_drop_a_watch_after_events(self):
        rv = self.c.req("GET", CMS)[2]["metadata"]["resourceVersion"]
        for n in ("dr-a", "dr-b", "dr-c"):
            self.c.req("POST", CMS, cm(n, {"dr": "1"}))
        path = f"{CMS}?watch=1&resourceVersion={rv}&labelSelector=dr%3D1&timeoutSeconds=5"
        self.st.add_fault("drop", path=CMS, after=2)
        t0 = time.monotonic()
        status, chunks, ended = raw_chunks(self.c, path)
        self.assertLess(time.monotonic() - t0, 2)  # cut, not ended at the timeout
        self.assertEqual((status, ended), (200, False))
        self.assertEqual([json.loads(x)["object"]["metadata"]["name"] for x in chunks], ["dr-a", "dr-b"])
        self.st.add_fault("drop", path=CMS, after=2)  # after counts events: other requests drop at once
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError, ssl.SSLError,
                                http.client.BadStatusLine)):
            self.c.req("GET", CMS)

    def test_a_fault_for_some_seconds(self):
        f = self.st.add_fault("503", path=CMS + "/*", method="GET", count=1, seconds=0.8)
        for _ in range(3):  # not only the next one: count is ignored
            self.assertStatus(self.c.req("GET", CMS + "/nothing"), 503, "ServiceUnavailable")
        self.assertEqual(self.c.req("POST", CMS, cm("timed"))[0], 201)  # other methods untouched
        self.assertEqual(f["hits"], 3)
        time.sleep(0.9)
        self.assertEqual(self.c.req("GET", CMS + "/timed")[0], 200)
        self.assertEqual((f["hits"], self.st.faults), (3, []))
        code, _, body = self.c.req("POST", "/standin/faults", {"action": "500", "path": "/version",
                                                                "seconds": 0.5})
        self.assertEqual(code, 201)
        self.assertEqual([x["action"] for x in body["faults"]], ["500"])
        self.assertEqual(self.c.req("GET", "/version")[0], 500)
        self.assertEqual(self.c.req("GET", "/version")[0], 500)
        time.sleep(0.6)
        self.assertEqual(self.c.req("GET", "/version")[0], 200)

    def test_outage(self):
        self.c.req("POST", CMS, cm("before"))
        rv = self.c.req("GET", CMS)[2]["metadata"]["resourceVersion"]
        path = f"{CMS}?watch=1&resourceVersion={rv}&timeoutSeconds=20"
        got = {}
        watcher = threading.Thread(target=lambda: got.update(w=raw_chunks(self.c, path)))
        watcher.start()
        time.sleep(0.3)  # the watch is open and waiting
        t0 = time.monotonic()
        f = self.st.outage(1.5)
        watcher.join(5)
        self.assertFalse(watcher.is_alive(), "an open watch is cut when the outage begins")
        self.assertLess(time.monotonic() - t0, 1.2)
        self.assertEqual(got["w"], (200, [], False))  # cut: no last chunk
        # every method and path, watches too
        for method, p, body in (("GET", CMS + "/before", None), ("GET", CMS, None), ("GET", path, None),
                                ("POST", CMS, cm("during")), ("PATCH", CMS + "/before", {"data": {"a": "b"}}),
                                ("DELETE", CMS + "/before", None), ("GET", "/version", None),
                                ("GET", "/healthz", None)):
            s = self.assertStatus(self.c.req(method, p, body, "application/merge-patch+json"), 503,
                                  "ServiceUnavailable")
            self.assertEqual(s["message"], "the server is currently unable to handle the request")
        self.assertEqual(self.c.req("GET", "/standin/calls")[0], 200)  # the controls still answer
        self.assertEqual(f["hits"], 8)
        self.assertEqual(len([e for e in self.st.log if t0 <= e["time"]]), 8)
        time.sleep(max(0.0, t0 + 1.6 - time.monotonic()))
        # back, with nothing done during the outage
        self.assertEqual(self.c.req("GET", CMS + "/before")[2]["data"], {})
        self.assertEqual(self.c.req("GET", CMS + "/during")[0], 404)
        self.assertEqual(f["hits"], 8)
        self.assertEqual(self.st.faults, [])
        # a watch opened after the outage is not cut by it
        status, chunks, ended = raw_chunks(self.c, f"{CMS}?watch=1&resourceVersion={rv}&timeoutSeconds=1")
        self.assertEqual((status, chunks, ended), (200, [], True))
        code, _, body = self.c.req("POST", "/standin/outage", {"seconds": 0.5, "action": "500"})
        self.assertEqual((code, body["action"]), (201, "500"))
        self.assertStatus(self.c.req("GET", CMS), 500, "InternalError")
        time.sleep(0.6)
        self.assertEqual(self.c.req("GET", CMS)[0], 200)

    def test_log_has_the_content_type(self):
        self.c.req("POST", CMS, cm("ct"))
        self.c.req("PATCH", CMS + "/ct", {"data": {"a": "b"}}, "application/merge-patch+json")
        self.c.req("DELETE", CMS + "/ct")
        self.assertEqual([(e["method"], e["contentType"]) for e in self.st.log],
                         [("POST", "application/json"), ("PATCH", "application/merge-patch+json"),
                          ("DELETE", None)])

    def test_faults_through_the_control_endpoint(self):
        code, _, _ = self.c.req("POST", "/standin/faults", {"action": "500", "path": "/version", "count": 1})
        self.assertEqual(code, 201)
        self.assertEqual(self.c.req("GET", "/version")[0], 500)
        self.assertEqual(self.c.req("GET", "/version")[0], 200)
        self.c.req("POST", "/standin/faults", {"action": "500", "path": "/version", "count": 5})
        self.c.req("DELETE", "/standin/faults")
        self.assertEqual(self.c.req("GET", "/version")[0], 200)
        calls = self.c.req("GET", "/standin/calls")[2]
        self.assertEqual(calls["paths"]["/version"], 3)
        self.assertEqual(self.c.req("DELETE", "/standin/calls")[0], 200)
        self.assertEqual(self.c.req("GET", "/standin/calls")[2]["paths"], {})


class TestPaging(StandinCase):
    """limit and continue as kube serves them from etcd."""
    NS = "/api/v1/namespaces/pg/configmaps"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for ns in ("pg", "a", "a-b"):
            cls.st.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for name in ("c4", "c1", "c7", "c3", "c6", "c2", "c5"):
            cls.st.put_object(cm(name, {"pg": "1"}, {"v": name}, ns="pg"))
        for name in ("s1", "s2", "s3", "s4"):
            cls.st.put_object(cm(name, {"sel": "yes" if name in ("s1", "s2") else "no"}, ns="a"))
        cls.st.put_object(cm("x", ns="a-b"))

    def get(self, path, code=200):
        got, _, body = self.c.req("GET", path)
        self.assertEqual(got, code, body)
        return body

    def pages(self, path, limit):
        """Every page of a list of path, [(names, metadata)]."""
        out, cont = [], None
        while True:
            q = f"{path}{'&' if '?' in path else '?'}limit={limit}"
            body = self.get(q + (f"&continue={cont}" if cont else ""))
            out.append(([o["metadata"]["name"] for o in body["items"]], body["metadata"]))
            cont = body["metadata"].get("continue")
            if not cont:
                return out
            self.assertLessEqual(len(out), 50, "a list that never ends")

    def test_pages_in_key_order_at_the_first_pages_rv(self):
        first = self.get(self.NS + "?limit=3")
        rv = first["metadata"]["resourceVersion"]
        self.assertEqual([o["metadata"]["name"] for o in first["items"]], ["c1", "c2", "c3"])
        self.assertEqual(first["metadata"]["remainingItemCount"], 4)
        cont = first["metadata"]["continue"]
        self.assertNotIn("c4", cont)  # opaque, not a name in clear
        # changes after the first page: the next pages still show the list at rv
        self.assertEqual(self.c.req("POST", self.NS, cm("c35", {"pg": "1"}))[0], 201)
        self.assertEqual(self.c.req("DELETE", self.NS + "/c5")[0], 200)
        self.c.req("PATCH", self.NS + "/c6", {"data": {"v": "new"}}, "application/merge-patch+json")
        second = self.get(f"{self.NS}?limit=3&continue={cont}")
        self.assertEqual([o["metadata"]["name"] for o in second["items"]], ["c4", "c5", "c6"])
        self.assertEqual(second["items"][2]["data"], {"v": "c6"})
        self.assertEqual(second["metadata"]["resourceVersion"], rv)
        self.assertEqual(second["metadata"]["remainingItemCount"], 1)
        third = self.get(f"{self.NS}?limit=3&continue={second['metadata']['continue']}")
        self.assertEqual([o["metadata"]["name"] for o in third["items"]], ["c7"])
        self.assertEqual(third["metadata"], {"resourceVersion": rv})  # the end: no continue
        now = self.get(self.NS)
        self.assertEqual([o["metadata"]["name"] for o in now["items"]], ["c1", "c2", "c3", "c35", "c4", "c6", "c7"])
        self.assertNotIn("continue", now["metadata"])
        self.assertGreater(int(now["metadata"]["resourceVersion"]), int(rv))
        # put it back for the other tests
        self.c.req("DELETE", self.NS + "/c35")
        self.c.req("POST", self.NS, cm("c5", {"pg": "1"}, {"v": "c5"}))

    def test_a_selector_leaves_count_out_and_may_end_on_an_empty_page(self):
        pages = self.pages("/api/v1/namespaces/a/configmaps?labelSelector=sel%3Dyes", 2)
        # objects remain after s2 (not matching): kube still gives a continue token
        self.assertEqual([names for names, _ in pages], [["s1", "s2"], []])
        self.assertNotIn("remainingItemCount", pages[0][1])
        self.assertIn("continue", pages[0][1])

    def test_across_namespaces_in_key_order(self):
        whole = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in self.get("/api/v1/configmaps")["items"]]
        self.assertEqual(whole, sorted(whole, key=lambda k: f"{k[0]}/{k[1]}"))
        self.assertLess(whole.index(("a-b", "x")), whole.index(("a", "s1")))  # "a-b/x" < "a/s1", as etcd's keys
        paged = sum((names for names, _ in self.pages("/api/v1/configmaps", 2)), [])
        self.assertEqual(paged, [n for _, n in whole])

    def test_compacted_continue_is_expired(self):
        first = self.get(self.NS + "?limit=2")
        self.assertEqual(self.c.req("POST", self.NS, cm("c9", {"pg": "1"}))[0], 201)
        self.st.compact()
        body = self.assertStatus(self.c.req("GET", f"{self.NS}?limit=2&continue={first['metadata']['continue']}"),
                                 410, "Expired")
        self.assertIn("too old to display a consistent list", body["message"])
        # its token goes on from where the first page ended, at the newest rv
        rest = self.get(f"{self.NS}?limit=100&continue={body['metadata']['continue']}")
        self.assertEqual([o["metadata"]["name"] for o in rest["items"]], ["c3", "c4", "c5", "c6", "c7", "c9"])
        self.assertEqual(rest["metadata"]["resourceVersion"], str(self.st.store.rv))
        self.c.req("DELETE", self.NS + "/c9")

    def test_bad_tokens_and_options(self):
        self.assertStatus(self.c.req("GET", self.NS + "?limit=2&continue=not-a-token"), 400, "BadRequest")
        token = kube_standin.encode_continue("c1\x00", 0)
        self.assertStatus(self.c.req("GET", f"{self.NS}?limit=2&continue={token}"), 400, "BadRequest")
        cont = self.get(self.NS + "?limit=2")["metadata"]["continue"]
        self.assertStatus(self.c.req("GET", f"{self.NS}?limit=2&continue={cont}&resourceVersion=5"), 400, "BadRequest")
        # resourceVersion=0 is the watch cache's: the whole list, whatever the limit
        whole = self.get(self.NS + "?limit=2&resourceVersion=0")
        self.assertEqual(len(whole["items"]), 7)
        self.assertNotIn("continue", whole["metadata"])

    def test_table_pages(self):
        code, _, t = self.c.req("GET", self.NS + "?limit=4",
                                headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        self.assertEqual((code, t["kind"], len(t["rows"])), (200, "Table", 4))
        self.assertEqual(t["metadata"]["remainingItemCount"], 3)
        code, _, t = self.c.req("GET", f"{self.NS}?limit=4&continue={t['metadata']['continue']}",
                                headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        self.assertEqual([r["cells"][0] for r in t["rows"]], ["c5", "c6", "c7"])


class TestSubprocess(unittest.TestCase):
    """The command-line mode: required client certificates, a state file,
    control over HTTP, the kubeconfig it writes."""

    def test_process(self):
        tmp = Path(tempfile.mkdtemp(prefix="kube-standin-proc-"))
        try:
            certs = make_certs(tmp / "certs")
            state = tmp / "state.yaml"
            state.write_text("tokens:\n  tok: {user: alice, groups: [devs]}\n"
                             "authConfig: {requestheader-allowed-names: '[\"front-proxy-client\"]'}\n"
                             "objects:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: seeded, namespace: default}, data: {a: b}}\n")
            p = subprocess.Popen([sys.executable, str(HERE / "kube_standin.py"), "--port", "0",
                                  "--cert", str(certs / "apiserver.crt"), "--key", str(certs / "apiserver.key"),
                                  "--client-ca", str(certs / "client-ca.crt"), "--require-client-cert",
                                  "--state-file", str(state)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                line = p.stdout.readline().decode()
                self.assertIn("listening on https://127.0.0.1:", line, p.stderr.read() if not line else "")
                port = int(line.rsplit(":", 1)[1])
                with self.assertRaises((ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected, OSError)):
                    Client(port, certs / "ca.crt").req("GET", "/version")
                c = Client(port, certs / "ca.crt", certs / "client.crt", certs / "client.key")
                self.assertEqual(c.req("GET", CMS + "/seeded")[2]["data"], {"a": "b"})
                tr = c.req("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": "tok"}})[2]
                self.assertEqual(tr["status"]["user"]["username"], "alice")
                self.assertEqual(json.loads(c.req("GET", AUTH_CM)[2]["data"]["requestheader-allowed-names"]),
                                 ["front-proxy-client"])
                c.req("PUT", "/standin/state", {"sarRules": [{"user": "alice", "verb": "get", "path": "/x", "allowed": True}]})
                sar = c.req("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                            {"spec": {"user": "alice", "nonResourceAttributes": {"path": "/x", "verb": "get"}}})[2]
                self.assertTrue(sar["status"]["allowed"])
                log = c.req("GET", "/standin/log")[2]["requests"]
                self.assertEqual(log[-1]["clientCN"], "front-proxy-client")
                c.req("POST", "/standin/faults", {"action": "429", "path": "/version", "retryAfter": 2})
                code, hdrs, _ = c.req("GET", "/version")
                self.assertEqual((code, hdrs["retry-after"]), (429, "2"))
            finally:
                p.terminate()
                p.wait(10)
                p.stdout.close()
                p.stderr.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_caller_tokens(self):
        tmp = Path(tempfile.mkdtemp(prefix="kube-standin-tok-"))
        try:
            st, paths = kube_standin.start_standin(tmp / "certs")
            with st:
                st.caller_tokens = {"sa-token"}
                c = Client(st.port, paths["ca"])
                self.assertEqual(c.req("GET", AUTH_CM)[0], 401)
                code, _, body = c.req("GET", AUTH_CM, headers={"Authorization": "Bearer sa-token"})
                self.assertEqual(code, 200)
                self.assertEqual(st.log[-1]["authorization"], "Bearer sa-token")
                if KUBECTL:  # the kubeconfig's token is not in caller_tokens: kubectl is refused
                    p = subprocess.run([KUBECTL, "--kubeconfig", paths["kubeconfig"], "get", "cm"],
                                       capture_output=True, text=True, timeout=20, env=dict(os.environ, HOME=str(tmp)))
                    self.assertNotEqual(p.returncode, 0)
                    self.assertIn("You must be logged in to the server", p.stderr)
                    st.caller_tokens.add("kube-standin")
                    p = subprocess.run([KUBECTL, "--kubeconfig", paths["kubeconfig"], "get", "cm", "-o", "name"],
                                       capture_output=True, text=True, timeout=20, env=dict(os.environ, HOME=str(tmp)))
                    self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@unittest.skipUnless(KUBECTL, "kubectl is not installed")
class TestKubectl(StandinCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.kc = write_kubeconfig(Path(cls.tmp) / "kubeconfig", cls.st.url, cls.certs / "ca.crt")

    def kubectl(self, *args, stdin=None, timeout=20):
        p = subprocess.run([KUBECTL, "--kubeconfig", self.kc, *args], input=stdin, capture_output=True,
                           text=True, timeout=timeout, env=dict(os.environ, HOME=self.tmp))
        return p

    def test_get_auth_configmap(self):
        self.st.auth_config = dict(kube_standin.DEFAULT_AUTH_CONFIG, **{"client-ca-file": "PEM"})
        p = self.kubectl("get", "configmap", "-n", "kube-system", "extension-apiserver-authentication", "-o", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["data"]["client-ca-file"], "PEM")
        p = self.kubectl("get", "ns")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^NAME\s+AGE\n")
        self.assertIn("kube-system", p.stdout)

    def test_apply_server_side(self):
        manifest = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kc-apply\n  labels: {app: langop}\n"
                    "data:\n  config.yaml: |\n    model_list: []\n")
        for _ in range(2):
            p = self.kubectl("apply", "--server-side", "--field-manager=langop", "-f", "-", stdin=manifest)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("configmap/kc-apply serverside-applied", p.stdout)
        got = self.st.get_object("configmaps", "kc-apply", "default")
        self.assertEqual(got["data"], {"config.yaml": "model_list: []\n"})
        self.assertEqual([m["manager"] for m in got["metadata"]["managedFields"]], ["langop"])
        p = self.kubectl("get", "cm", "-l", "app=langop", "-o", "name")
        self.assertEqual(p.stdout.split(), ["configmap/kc-apply"])
        p = self.kubectl("apply", "--server-side", "-f", "-", stdin=yaml_deployment("kc-gw"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deployment.apps/kc-gw serverside-applied", p.stdout)

    def test_watch(self):
        w = subprocess.Popen([KUBECTL, "--kubeconfig", self.kc, "get", "deploy", "-w", "-o", "name", "-l", "app=kc-watch",
                              "--request-timeout=0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=dict(os.environ, HOME=self.tmp))
        try:
            deadline = time.monotonic() + 10
            while self.st.calls_to(DEPLOYS, "GET") < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # the list, then the watch
            self.assertEqual(self.c.req("POST", DEPLOYS, deployment("kc-watch"))[0], 201)
            self.c.req("PATCH", DEPLOYS + "/kc-watch", {"spec": {"replicas": 2}}, "application/merge-patch+json")
            self.c.req("DELETE", DEPLOYS + "/kc-watch")
            lines = []
            while len(lines) < 3 and time.monotonic() < deadline:
                lines.append(w.stdout.readline().strip())
            self.assertEqual(lines, ["deployment.apps/kc-watch"] * 3)
        finally:
            w.kill()
            w.wait()
            w.stdout.close()
            w.stderr.close()


def yaml_deployment(name):
    return json.dumps(deployment(name))


if __name__ == "__main__":
    unittest.main(verbosity=1)
