#!/usr/bin/python3
"""Check deploy/: what `kubectl apply -k deploy/` would create, and the image.

Copies the deploy folder (without generated/) into a temporary folder, checks
that it does not render before the certificate script has run (so no
APIService is registered without its caBundle), runs its install-certs.sh,
renders it with `kubectl kustomize` and checks the objects:

- every expected object once (kind, namespace, name), nothing else;
- the ServiceAccount bound to system:auth-delegator (ClusterRoleBinding) and
  to extension-apiserver-authentication-reader (RoleBinding in kube-system),
  and, with those bootstrapped roles' rules as kube-apiserver makes them,
  granted what delegated authentication and authorization ask for: create
  tokenreviews and subjectaccessreviews, get the ConfigMap
  kube-system/extension-apiserver-authentication;
- the reconcile ClusterRole: the resources the reconcile thread pushes, and
  secrets only get/list/watch; the leader-election Role for leases;
- the ClusterRoles aggregated to view (read only, status and the derived
  subresources included), edit and admin (writes);
- the Deployment: one replica, Recreate, non-root, read-only root file
  system, the ServiceAccount's token mounted, probes /livez and /readyz over
  HTTPS on the serving port, requests and limits, args that are all flags of
  the server (from LANGOP_BINARY's --help if set, else from
  apiserver/main.c) with the certificate files on the Secret's mount and the
  database on the PVC's, --authorization-mode=Webhook, and no
  --authentication-kubeconfig or --authorization-kubeconfig (in a pod the
  server finds kube-apiserver through its service account);
- the Service 443 -> the container's port, selecting the pods;
- the APIService v1alpha1.langop.io -> that Service, its caBundle the CA that
  verifies the serving certificate (openssl verify), which names
  langop-apiserver.langop-system.svc;
- with LANGOP_BINARY: the binary started with the Deployment's own args (the
  mount paths mapped to temporary folders holding the Secret's files and an
  empty volume, the port a free one, bound to 127.0.0.1) in a cluster played
  by the kube-apiserver stand-in (tests/standin/kube_standin.py) answers the
  probe paths 200 over TLS verified with the caBundle for
  langop-apiserver.langop-system.svc, with no credentials and no
  SubjectAccessReview; it read the front-proxy CA from the stand-in's
  extension-apiserver-authentication ConfigMap; on
  /apis/langop.io/v1alpha1/namespaces/default/languagemodels, a bearer token
  the stand-in's TokenReview knows gets 200 when its SubjectAccessReview
  allows the user and 403 (a kube Status) when it denies, an unknown token
  401, X-Remote-User without a certificate 401, and a front-proxy client
  certificate of the ConfigMap's requestheader CA with X-Remote-User and
  X-Remote-Group is reviewed, and allowed, as that user in that group; every
  call the server made to the stand-in carried the service account's token
  and is granted to the ServiceAccount by the RBAC above; the server creates
  its database on the PVC's mount, writes nothing in its working folder, and
  stops on SIGTERM.

  How the server reaches the stand-in: in a pod it builds its kube-apiserver
  client from KUBERNETES_SERVICE_HOST/PORT and the files the kubelet mounts
  at /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}
  (kubeconfig_in_cluster in apiserver/kube/kubeconfig.c: server
  https://HOST:PORT, that CA file, that token file, re-read when rotated).
  That folder cannot be mapped like the volumes: its path is fixed in the
  server and writing there needs root or a mount namespace. So the check
  writes the same three facts into a kubeconfig (server, certificate-
  authority and tokenFile in a temporary serviceaccount/ folder) and adds
  --authentication-kubeconfig and --authorization-kubeconfig naming it to
  the Deployment's args, which is why the Deployment may not set them
  itself; KUBERNETES_SERVICE_HOST/PORT are set to the stand-in too, as in
  a pod. kubeconfig_load_file gives the client the same fields as
  kubeconfig_in_cluster, which tests/unit/test_kubeconfig.c checks against
  a mapped serviceaccount/ folder. What the run leaves out is main.c's
  choice of the in-cluster configuration when neither flag is given. The
  stand-in accepts only the service account's token from the server; it
  applies no RBAC of its own, hence the check of every call against the
  rendered RBAC.
- deploy/Dockerfile, statically: a Debian 12 build stage with a release
  build, a Debian 12 slim runtime stage with no -dev package, a numeric
  non-root USER equal to the pod's runAsUser; with LANGOP_BINARY, every
  Debian package owning a library the binary links is installed there;
  with --build, the build stage's COPY sources (from the repository) and its
  meson RUN line, run outside docker, build a server that answers --help.

Output: one line per problem, then "deploy: N objects, K problems".
Exit status 0 when there is no problem, 1 otherwise.
"""

import argparse
import base64
import functools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "standin"))
import kube_standin  # noqa: E402
NS = "langop-system"
SA = "langop-apiserver"
SVC_DNS = "langop-apiserver.langop-system.svc"
SECRET_PREFIX = "langop-apiserver-serving"
# Where a pod finds kube-apiserver: the kubelet mounts the service account's
# token and the cluster's CA here and sets KUBERNETES_SERVICE_HOST/PORT.
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The flags that point the server at a kube-apiserver instead (see check_runs).
KUBECONFIG_FLAGS = ("authentication-kubeconfig", "authorization-kubeconfig")

# (kind, namespace, name) of every object the kustomization must render. The
# Secret's name carries kustomize's content hash after the prefix.
EXPECTED = [
    ("Namespace", None, NS),
    ("ServiceAccount", NS, SA),
    ("ClusterRoleBinding", None, "langop-apiserver:system:auth-delegator"),
    ("RoleBinding", "kube-system", "langop-apiserver:extension-apiserver-authentication-reader"),
    ("ClusterRole", None, "langop-apiserver:reconcile"),
    ("ClusterRoleBinding", None, "langop-apiserver:reconcile"),
    ("Role", NS, "langop-apiserver:leader-election"),
    ("RoleBinding", NS, "langop-apiserver:leader-election"),
    ("ClusterRole", None, "langop.io:aggregate-to-view"),
    ("ClusterRole", None, "langop.io:aggregate-to-edit"),
    ("ClusterRole", None, "langop.io:aggregate-to-admin"),
    ("PersistentVolumeClaim", NS, "langop-apiserver-data"),
    ("Secret", NS, SECRET_PREFIX + "-*"),
    ("Deployment", NS, "langop-apiserver"),
    ("Service", NS, "langop-apiserver"),
    ("APIService", None, "v1alpha1.langop.io"),
]

KINDS = ["languageclusters", "languagemodels", "languageagents", "languagetools",
         "languagepersonas"]
DERIVED = ["languageclusters/gatewayconfig", "languageagents/agentconfig"]
READ = {"get", "list", "watch"}
WRITE = {"create", "update", "patch", "delete"}

# What the reconcile thread needs: (apiGroup, resource) -> verbs it must have.
RECONCILE_NEEDS = {
    ("", "namespaces"): READ | {"create", "patch"},
    ("", "configmaps"): READ | WRITE,
    ("", "services"): READ | WRITE,
    ("", "secrets"): READ,
    ("apps", "deployments"): READ | WRITE,
    ("batch", "cronjobs"): READ | WRITE,
    ("batch", "jobs"): READ | WRITE,
    ("", "events"): {"create", "patch"},
}

# Runtime packages every image needs, whatever ldd says.
RUNTIME_PACKAGES = {"libh2o-evloop0.13", "libssl3", "libjansson4", "libyaml-0-2", "libsqlite3-0"}


class Checker:
    def __init__(self):
        self.problems = []

    def fail(self, msg):
        self.problems.append(msg)

    def expect(self, cond, msg):
        if not cond:
            self.fail(msg)
        return cond


# ---------------------------------------------------------------------------
# the server's flags

def flags_from_help(text):
    """{flag: takes_value} from `langop-apiserver --help`."""
    flags = {}
    for m in re.finditer(r"^\s+(?:-(\w), )?--([a-z0-9][a-z0-9-]*)(?: (\w+))?", text, re.M):
        short, name, typ = m.groups()
        flags[name] = typ is not None
        if short:
            flags[short] = typ is not None
    return flags


def flags_from_main_c(text):
    """{flag: takes_value} from the getopt_long table of apiserver/main.c."""
    flags = {}
    for m in re.finditer(r'\{"([a-z0-9-]+)",\s*(required_argument|no_argument|optional_argument)', text):
        flags[m.group(1)] = m.group(2) != "no_argument"
    m = re.search(r'getopt_long\([^,]+,[^,]+,\s*"([^"]*)"', text)
    if m:
        for short, colon in re.findall(r"(\w)(:?)", m.group(1)):
            flags[short] = bool(colon)
    return flags


def server_flags(binary, main_c):
    if binary:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
        return flags_from_help(out.stdout), "%s --help" % binary
    with open(main_c) as f:
        return flags_from_main_c(f.read()), main_c


def parse_args_list(args):
    """[(name, value or None)] of a container's args; None for a non-flag."""
    out = []
    i = 0
    while i < len(args):
        a = str(args[i])
        m = re.match(r"^--?([A-Za-z0-9][A-Za-z0-9-]*)(?:=(.*))?$", a)
        if not m:
            out.append((None, a))
        else:
            out.append((m.group(1), m.group(2)))
        i += 1
    return out


# ---------------------------------------------------------------------------
# rendering

def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def render(deploy_dir, kubectl, c):
    """Copy deploy_dir, check it needs the script, run it, render: [objects] or None."""
    tmp = tempfile.mkdtemp(prefix="check-deploy-")
    try:
        copy = os.path.join(tmp, "deploy")
        shutil.copytree(deploy_dir, copy, ignore=shutil.ignore_patterns("generated"))
        before = run([kubectl, "kustomize", copy])
        c.expect(before.returncode != 0,
                 "kustomization renders before install-certs.sh ran "
                 "(an APIService could be registered without the serving certificate)")
        script = os.path.join(copy, "install-certs.sh")
        if not c.expect(os.path.isfile(script), "deploy/install-certs.sh: missing"):
            return None
        env = dict(os.environ)
        env.pop("LANGOP_CERTS_DIR", None)
        made = run(["bash", script], env=env)
        if not c.expect(made.returncode == 0, "install-certs.sh failed: %s" % made.stderr.strip()[-300:]):
            return None
        again = run(["bash", script], env=env)
        c.expect(again.returncode == 0, "install-certs.sh failed when run again: %s"
                 % again.stderr.strip()[-300:])
        out = run([kubectl, "kustomize", copy])
        if not c.expect(out.returncode == 0, "kubectl kustomize failed: %s" % out.stderr.strip()[-300:]):
            return None
        return [d for d in yaml.safe_load_all(out.stdout) if d]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def key(obj):
    md = obj.get("metadata") or {}
    return obj.get("kind"), md.get("namespace"), md.get("name")


def index(objs, c):
    """{(kind, ns, name-pattern): obj} for EXPECTED; report missing, twice, unexpected."""
    found = {}
    seen = {}
    for o in objs:
        k = key(o)
        pattern = None
        for e in EXPECTED:
            if e[:2] == k[:2] and (e[2] == k[2] or (e[2].endswith("-*") and str(k[2]).startswith(e[2][:-1]))):
                pattern = e
        if pattern is None:
            c.fail("unexpected object: %s %s" % (k[0], "/".join(x for x in k[1:] if x)))
            continue
        seen[pattern] = seen.get(pattern, 0) + 1
        found[pattern] = o
    for e in EXPECTED:
        n = seen.get(e, 0)
        name = "/".join(x for x in e[1:] if x)
        c.expect(n != 0, "missing object: %s %s" % (e[0], name))
        c.expect(n <= 1, "object rendered %d times: %s %s" % (n, e[0], name))
    return found


def get(found, kind, name):
    for e, o in found.items():
        if e[0] == kind and e[2] == name:
            return o
    return None


# ---------------------------------------------------------------------------
# RBAC

def bound_to_sa(c, what, binding, role_kind, role_name):
    if binding is None:
        return
    ref = binding.get("roleRef") or {}
    c.expect(ref.get("kind") == role_kind and ref.get("name") == role_name
             and ref.get("apiGroup") == "rbac.authorization.k8s.io",
             "%s: roleRef is %s %s, want %s %s" % (what, ref.get("kind"), ref.get("name"),
                                                   role_kind, role_name))
    subjects = binding.get("subjects") or []
    c.expect(subjects == [{"kind": "ServiceAccount", "name": SA, "namespace": NS}],
             "%s: subjects %s, want only ServiceAccount %s/%s" % (what, subjects, NS, SA))


def rule_verbs(rules):
    """{(group, resource): set(verbs)} over every rule; '*' stays as is."""
    out = {}
    for r in rules or []:
        for g in r.get("apiGroups") or []:
            for res in r.get("resources") or []:
                out.setdefault((g, res), set()).update(r.get("verbs") or [])
    return out


def check_rbac(c, found):
    bound_to_sa(c, "ClusterRoleBinding langop-apiserver:system:auth-delegator",
                get(found, "ClusterRoleBinding", "langop-apiserver:system:auth-delegator"),
                "ClusterRole", "system:auth-delegator")
    bound_to_sa(c, "RoleBinding kube-system/langop-apiserver:extension-apiserver-authentication-reader",
                get(found, "RoleBinding", "langop-apiserver:extension-apiserver-authentication-reader"),
                "Role", "extension-apiserver-authentication-reader")
    bound_to_sa(c, "ClusterRoleBinding langop-apiserver:reconcile",
                get(found, "ClusterRoleBinding", "langop-apiserver:reconcile"),
                "ClusterRole", "langop-apiserver:reconcile")
    bound_to_sa(c, "RoleBinding langop-system/langop-apiserver:leader-election",
                get(found, "RoleBinding", "langop-apiserver:leader-election"),
                "Role", "langop-apiserver:leader-election")

    role = get(found, "ClusterRole", "langop-apiserver:reconcile")
    if role is not None:
        have = rule_verbs(role.get("rules"))
        for (g, res), verbs in have.items():
            c.expect("*" not in verbs and g != "*" and res != "*",
                     "ClusterRole langop-apiserver:reconcile: wildcard in %s %s %s"
                     % (g or "core", res, sorted(verbs)))
            if res.startswith("secrets"):
                c.expect(verbs <= READ, "ClusterRole langop-apiserver:reconcile: secrets must be "
                         "only get/list/watch, has %s" % sorted(verbs))
        for (g, res), verbs in RECONCILE_NEEDS.items():
            missing = verbs - have.get((g, res), set())
            c.expect(not missing, "ClusterRole langop-apiserver:reconcile: %s %s lacks %s"
                     % (g or "core", res, sorted(missing)))
    lease = get(found, "Role", "langop-apiserver:leader-election")
    if lease is not None:
        missing = {"get", "create", "update"} - rule_verbs(lease.get("rules")).get(
            ("coordination.k8s.io", "leases"), set())
        c.expect(not missing, "Role langop-apiserver:leader-election: leases lack %s" % sorted(missing))

    status = [k + "/status" for k in KINDS]
    aggregated = {
        "view": (KINDS + status + DERIVED, READ, READ),
        "edit": (KINDS, WRITE | {"deletecollection"}, WRITE | {"deletecollection"}),
        "admin": (status, {"update", "patch"}, {"update", "patch"}),
    }
    for level, (resources, need, allowed) in aggregated.items():
        name = "langop.io:aggregate-to-" + level
        role = get(found, "ClusterRole", name)
        if role is None:
            continue
        labels = (role.get("metadata") or {}).get("labels") or {}
        label = "rbac.authorization.k8s.io/aggregate-to-" + level
        c.expect(labels.get(label) == "true", "ClusterRole %s: label %s is %r, want \"true\""
                 % (name, label, labels.get(label)))
        others = [lb for lb in labels if lb.startswith("rbac.authorization.k8s.io/aggregate-to-")
                  and lb != label]
        c.expect(not others, "ClusterRole %s: also labelled %s" % (name, others))
        have = rule_verbs(role.get("rules"))
        for (g, res), verbs in have.items():
            c.expect(g == "langop.io", "ClusterRole %s: rule for group %r" % (name, g))
            c.expect(verbs <= allowed, "ClusterRole %s: %s has %s beyond %s"
                     % (name, res, sorted(verbs - allowed), sorted(allowed)))
        for res in resources:
            missing = need - have.get(("langop.io", res), set())
            c.expect(not missing, "ClusterRole %s: %s lacks %s" % (name, res, sorted(missing)))


# What the ServiceAccount may do: its bindings in deploy/, resolved to the
# roles deploy/ defines or to those kube-apiserver bootstraps.

# The bootstrapped roles deploy/ binds without defining them, as kube-apiserver
# creates them (plugin/pkg/auth/authorizer/rbac/bootstrappolicy: policy.go,
# namespace_policy.go).
BUILTIN_ROLES = {
    ("ClusterRole", None, "system:auth-delegator"): [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    ],
    ("Role", "kube-system", "extension-apiserver-authentication-reader"): [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"],
         "resourceNames": ["extension-apiserver-authentication"]},
    ],
}

# What the server asks of kube-apiserver for delegated authentication and
# Webhook authorization, as request attributes, and why.
DELEGATION_NEEDS = [
    ({"verb": "create", "group": "authentication.k8s.io", "resource": "tokenreviews"},
     "bearer tokens, TokenReview"),
    ({"verb": "create", "group": "authorization.k8s.io", "resource": "subjectaccessreviews"},
     "--authorization-mode=Webhook, SubjectAccessReview"),
    ({"verb": "get", "group": "", "resource": "configmaps", "namespace": "kube-system",
      "name": "extension-apiserver-authentication"}, "the front-proxy and client CAs"),
]


def sa_grants(objs):
    """[(namespace or None for cluster-wide, rule)] that objs bind to the ServiceAccount."""
    roles = {k: v for k, v in BUILTIN_ROLES.items()}
    for o in objs:
        if o.get("kind") in ("ClusterRole", "Role"):
            md = o.get("metadata") or {}
            ns = md.get("namespace") if o["kind"] == "Role" else None
            roles[(o["kind"], ns, md.get("name"))] = o.get("rules") or []
    me = {"kind": "ServiceAccount", "name": SA, "namespace": NS}
    out = []
    for o in objs:
        kind = o.get("kind")
        if kind not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(all(s.get(k) == v for k, v in me.items()) for s in o.get("subjects") or []):
            continue
        ref = o.get("roleRef") or {}
        ns = (o.get("metadata") or {}).get("namespace") if kind == "RoleBinding" else None
        if ref.get("apiGroup") != "rbac.authorization.k8s.io":
            continue
        if ref.get("kind") == "ClusterRole":
            rules = roles.get(("ClusterRole", None, ref.get("name")), [])
        elif ref.get("kind") == "Role" and kind == "RoleBinding":
            rules = roles.get(("Role", ns, ref.get("name")), [])
        else:
            continue
        out.extend((ns, r) for r in rules)
    return out


def _covers(values, value):
    return "*" in (values or []) or value in (values or [])


def granted(grants, attrs):
    """Whether one of grants allows attrs (kube's RBAC rule matching)."""
    for ns, rule in grants:
        if "path" in attrs:
            if ns is None and _covers(rule.get("verbs"), attrs["verb"]) and any(
                    u == attrs["path"] or (u.endswith("*") and attrs["path"].startswith(u[:-1]))
                    for u in rule.get("nonResourceURLs") or []):
                return True
            continue
        if ns is not None and attrs.get("namespace") != ns:
            continue
        res = attrs["resource"] + ("/" + attrs["subresource"] if attrs.get("subresource") else "")
        names = rule.get("resourceNames") or []
        if (_covers(rule.get("verbs"), attrs["verb"]) and _covers(rule.get("apiGroups"), attrs["group"])
                and _covers(rule.get("resources"), res)
                and (not names or (attrs.get("name") and attrs["name"] in names))):
            return True
    return False


def describe(attrs):
    if "path" in attrs:
        return "%s %s" % (attrs["verb"], attrs["path"])
    what = "%s %s%s" % (attrs["verb"], attrs["resource"],
                        "." + attrs["group"] if attrs["group"] else "")
    if attrs.get("subresource"):
        what += "/" + attrs["subresource"]
    if attrs.get("name"):
        what += " " + attrs["name"]
    if attrs.get("namespace"):
        what += " in namespace " + attrs["namespace"]
    return what


def kube_request_attrs(method, path, query=""):
    """The authorization attributes kube-apiserver gives a request (requestinfo.go, simplified)."""
    parts = [p for p in path.split("/") if p]
    verb = method.lower()
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return {"verb": verb, "path": path}
    ns = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) == 2:
        ns = rest[1]
    name = rest[1] if len(rest) > 1 else ""
    q = urllib.parse.parse_qs(query or "")
    if method == "GET":
        verb = "get" if name else ("watch" if q.get("watch", [""])[0] in ("true", "1") else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method, verb)
    return {"verb": verb, "group": group, "resource": rest[0], "subresource": rest[2] if len(rest) > 2 else "",
            "namespace": ns, "name": name}


def check_delegation_rbac(c, objs):
    grants = sa_grants(objs)
    for attrs, why in DELEGATION_NEEDS:
        c.expect(granted(grants, attrs), "ServiceAccount %s/%s may not %s (%s): RBAC in deploy/ does not "
                 "grant it" % (NS, SA, describe(attrs), why))


# ---------------------------------------------------------------------------
# Deployment, Service, APIService

def port_number(port, container):
    """A probe's or Service's port (number or name) as the container's number."""
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def under(path, mount):
    return mount and path.startswith(mount.rstrip("/") + "/")


def check_deployment(c, found, flags, flags_src):
    """Return (container port, pod labels, runAsUser, secret volume name) for the later checks."""
    dep = get(found, "Deployment", "langop-apiserver")
    if dep is None:
        return None
    D = "Deployment langop-apiserver"
    spec = dep.get("spec") or {}
    c.expect(spec.get("replicas") == 1, "%s: replicas %r, want 1" % (D, spec.get("replicas")))
    c.expect((spec.get("strategy") or {}).get("type") == "Recreate",
             "%s: strategy %r, want Recreate" % (D, (spec.get("strategy") or {}).get("type")))
    tmpl = spec.get("template") or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    c.expect(selector and all(labels.get(k) == v for k, v in selector.items()),
             "%s: selector %s does not select its pod labels %s" % (D, selector, labels))
    pod = tmpl.get("spec") or {}
    c.expect(pod.get("serviceAccountName") == SA, "%s: serviceAccountName %r, want %s"
             % (D, pod.get("serviceAccountName"), SA))
    # the pod's field wins over the ServiceAccount's; both default to true
    account = get(found, "ServiceAccount", SA) or {}
    mounted = pod.get("automountServiceAccountToken", account.get("automountServiceAccountToken", True))
    c.expect(mounted is True, "%s: the ServiceAccount token must be mounted (TokenReview, "
             "SubjectAccessReview, the authentication ConfigMap, reconcile)" % D)
    psc = pod.get("securityContext") or {}
    containers = pod.get("containers") or []
    if not c.expect(len(containers) == 1, "%s: %d containers, want 1" % (D, len(containers))):
        return None
    ct = containers[0]
    csc = ct.get("securityContext") or {}

    def sc(field):
        return csc.get(field, psc.get(field))

    c.expect(sc("runAsNonRoot") is True, "%s: runAsNonRoot is not true" % D)
    uid = sc("runAsUser")
    c.expect(isinstance(uid, int) and uid > 0, "%s: runAsUser %r, want a non-zero uid" % (D, uid))
    c.expect(csc.get("readOnlyRootFilesystem") is True, "%s: readOnlyRootFilesystem is not true" % D)
    c.expect(csc.get("allowPrivilegeEscalation") is False, "%s: allowPrivilegeEscalation is not false" % D)
    c.expect("ALL" in ((csc.get("capabilities") or {}).get("drop") or []),
             "%s: capabilities do not drop ALL" % D)

    res = ct.get("resources") or {}
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            c.expect(r in (res.get(part) or {}), "%s: resources.%s.%s not set" % (D, part, r))

    # args: every one a known flag, with a value exactly when the flag takes one
    values = {}
    c.expect(not ct.get("command"), "%s: command overrides the image's entrypoint" % D)
    for name, value in parse_args_list(ct.get("args") or []):
        if name is None:
            c.fail("%s: argument %r is not a --flag=value" % (D, value))
            continue
        if name not in flags:
            c.fail("%s: flag --%s is not one of the server's (%s)" % (D, name, flags_src))
            continue
        if flags[name] and value is None:
            c.fail("%s: flag --%s needs =value" % (D, name))
        if not flags[name] and value is not None:
            c.fail("%s: flag --%s takes no value" % (D, name))
        values[name] = value

    # delegated authorization, through the pod's service account like authentication
    mode = values.get("authorization-mode")
    c.expect(mode == "Webhook", "%s: --authorization-mode is %s, want Webhook (every request but the "
             "health endpoints authorized by kube-apiserver with a SubjectAccessReview)"
             % (D, mode if mode is not None else "not set (AlwaysAllow)"))
    for flag in KUBECONFIG_FLAGS:
        c.expect(flag not in values, "%s: --%s is set: in a pod the server reaches kube-apiserver "
                 "through its service account (KUBERNETES_SERVICE_HOST, %s)" % (D, flag, SA_DIR))

    port = values.get("secure-port")
    cport = None
    ports = ct.get("ports") or []
    if c.expect(len(ports) == 1, "%s: %d container ports, want 1" % (D, len(ports))):
        cport = ports[0].get("containerPort")
        c.expect(port is not None and str(cport) == port,
                 "%s: --secure-port=%s but containerPort %s" % (D, port, cport))
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        hg = (ct.get(probe) or {}).get("httpGet") or {}
        c.expect(hg.get("path") == path, "%s: %s path %r, want %s" % (D, probe, hg.get("path"), path))
        c.expect(hg.get("scheme") == "HTTPS", "%s: %s scheme %r, want HTTPS" % (D, probe, hg.get("scheme")))
        c.expect(port_number(hg.get("port"), ct) == cport and cport is not None,
                 "%s: %s port %r is not the serving port %s" % (D, probe, hg.get("port"), cport))

    # the files the flags name are on the right volumes
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = {m.get("name"): m.get("mountPath") for m in ct.get("volumeMounts") or []}
    secret = get(found, "Secret", SECRET_PREFIX + "-*")
    secret_name = (secret or {}).get("metadata", {}).get("name")
    tls_vol = [n for n, v in volumes.items()
               if (v.get("secret") or {}).get("secretName") == secret_name]
    tls_mount = mounts.get(tls_vol[0]) if tls_vol else None
    c.expect(tls_mount, "%s: no mount of the serving Secret %s" % (D, secret_name))
    for flag, item in (("tls-cert-file", "tls.crt"), ("tls-private-key-file", "tls.key")):
        v = values.get(flag)
        c.expect(v is not None and tls_mount and v == tls_mount.rstrip("/") + "/" + item,
                 "%s: --%s=%s is not %s of the serving Secret's mount %s" % (D, flag, v, item, tls_mount))
    pvc = get(found, "PersistentVolumeClaim", "langop-apiserver-data")
    pvc_vol = [n for n, v in volumes.items()
               if (v.get("persistentVolumeClaim") or {}).get("claimName") ==
               (pvc or {}).get("metadata", {}).get("name")]
    data_mount = mounts.get(pvc_vol[0]) if pvc_vol else None
    c.expect(data_mount, "%s: no mount of the PersistentVolumeClaim langop-apiserver-data" % D)
    sp = values.get("storage-path")
    c.expect(sp is not None and under(sp, data_mount),
             "%s: --storage-path=%s is not on the PVC's mount %s" % (D, sp, data_mount))
    return cport, labels, uid


def check_service(c, found, cport, pod_labels):
    svc = get(found, "Service", "langop-apiserver")
    if svc is None:
        return
    S = "Service langop-system/langop-apiserver"
    spec = svc.get("spec") or {}
    sel = spec.get("selector") or {}
    c.expect(sel and all(pod_labels.get(k) == v for k, v in sel.items()),
             "%s: selector %s does not select the pod labels %s" % (S, sel, pod_labels))
    ports = spec.get("ports") or []
    p443 = [p for p in ports if p.get("port") == 443]
    if c.expect(len(p443) == 1, "%s: no port 443" % S):
        dep = get(found, "Deployment", "langop-apiserver")
        ct = dep["spec"]["template"]["spec"]["containers"][0]
        target = p443[0].get("targetPort", 443)
        c.expect(cport is not None and port_number(target, ct) == cport,
                 "%s: port 443 -> targetPort %r, not the container port %s" % (S, target, cport))


def b64(value):
    """Decode a []byte field as the API server does (newlines ignored); None if invalid."""
    try:
        return base64.b64decode(re.sub(r"\s", "", str(value)), validate=True)
    except (ValueError, TypeError):
        return None


def check_apiservice(c, found):
    api = get(found, "APIService", "v1alpha1.langop.io")
    secret = get(found, "Secret", SECRET_PREFIX + "-*")
    if api is None:
        return
    A = "APIService v1alpha1.langop.io"
    spec = api.get("spec") or {}
    c.expect(api.get("apiVersion") == "apiregistration.k8s.io/v1",
             "%s: apiVersion %r" % (A, api.get("apiVersion")))
    c.expect(spec.get("group") == "langop.io", "%s: group %r" % (A, spec.get("group")))
    c.expect(spec.get("version") == "v1alpha1", "%s: version %r" % (A, spec.get("version")))
    c.expect(spec.get("groupPriorityMinimum") == 1000 and spec.get("versionPriority") == 15,
             "%s: groupPriorityMinimum/versionPriority %r/%r, want 1000/15"
             % (A, spec.get("groupPriorityMinimum"), spec.get("versionPriority")))
    service = spec.get("service") or {}
    c.expect(service == {"namespace": NS, "name": "langop-apiserver", "port": 443},
             "%s: service %s, want langop-system/langop-apiserver:443" % (A, service))
    c.expect(not spec.get("insecureSkipTLSVerify"), "%s: insecureSkipTLSVerify is set" % A)
    ca = b64(spec.get("caBundle", ""))
    if not c.expect(ca and b"-----BEGIN CERTIFICATE-----" in ca,
                    "%s: caBundle is empty or not base64 of a PEM certificate" % A):
        return
    if secret is None:
        return
    data = secret.get("data") or {}
    c.expect(secret.get("type") == "kubernetes.io/tls", "Secret %s: type %r, want kubernetes.io/tls"
             % (SECRET_PREFIX, secret.get("type")))
    crt, tlskey = b64(data.get("tls.crt", "")), b64(data.get("tls.key", ""))
    if not c.expect(crt and tlskey, "Secret %s: tls.crt or tls.key missing" % SECRET_PREFIX):
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, blob in (("ca.crt", ca), ("tls.crt", crt), ("tls.key", tlskey)):
            paths[name] = os.path.join(tmp, name)
            with open(paths[name], "wb") as f:
                f.write(blob)
        v = run(["openssl", "verify", "-CAfile", paths["ca.crt"], paths["tls.crt"]])
        c.expect(v.returncode == 0, "%s: caBundle does not verify the serving certificate: %s"
                 % (A, (v.stdout + v.stderr).strip().splitlines()[-1:]))
        h = run(["openssl", "x509", "-in", paths["tls.crt"], "-noout", "-checkhost", SVC_DNS])
        c.expect("does match" in h.stdout, "Secret %s: tls.crt does not name %s" % (SECRET_PREFIX, SVC_DNS))
        pub1 = run(["openssl", "x509", "-in", paths["tls.crt"], "-noout", "-pubkey"]).stdout
        pub2 = run(["openssl", "pkey", "-in", paths["tls.key"], "-pubout"]).stdout
        c.expect(pub1 and pub1 == pub2, "Secret %s: tls.key does not belong to tls.crt" % SECRET_PREFIX)


# ---------------------------------------------------------------------------
# the binary, run as the Deployment runs it

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def https_request(port, path, cafile, headers=(), cert=None, timeout=3.0):
    """(status, body) of GET path over TLS, the certificate verified for
    SVC_DNS; cert: (certificate file, key file) presented as the client's."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    if cert:
        ctx.load_cert_chain(*cert)
    lines = ["GET %s HTTP/1.1" % path, "Host: " + SVC_DNS, "Connection: close"]
    lines += ["%s: %s" % h for h in headers]
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=SVC_DNS) as tls:
            tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            while True:
                try:
                    chunk = tls.recv(65536)
                except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                    break
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        out, rest = b"", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    parts = head.split(b" ", 2)
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None), body


def https_get(port, path, cafile, timeout=2.0):
    """Status code of GET path over TLS, the certificate verified for SVC_DNS."""
    return https_request(port, path, cafile, timeout=timeout)[0]


class Cluster(kube_standin.KubeStandin):
    """The kube-apiserver stand-in as the pod's cluster; it also keeps the
    spec of every SubjectAccessReview it answers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sar_specs = []

    def review_access(self, body):
        with self.mu:
            self.sar_specs.append(json.loads(json.dumps(body.get("spec") or {})))
        return super().review_access(body)


def start_cluster(directory):
    """The stand-in playing the cluster the pod runs in, and what the pod gets
    from it: a dict with standin, sa_dir (token, ca.crt: what the kubelet
    mounts at SA_DIR), kubeconfig (the same server, CA file and token file),
    sa_token, tokens {user: bearer token its TokenReview knows} and
    front_proxy (certificate, key) signed by the requestheader CA that its
    extension-apiserver-authentication ConfigMap publishes."""
    certs = kube_standin.make_serving_certs(os.path.join(directory, "kube-apiserver"))
    pki = os.path.join(directory, "pki")
    rh_ca, _ = kube_standin.make_ca(pki, "front-proxy-ca")
    client_ca, _ = kube_standin.make_ca(pki, "client-ca")
    proxy = kube_standin.make_client_cert(pki, "front-proxy-ca", "front-proxy-client", "front-proxy-client")
    st = Cluster(certs["cert"], certs["key"])
    sa_token = secrets.token_urlsafe(32)
    st.caller_tokens = {sa_token}            # the server must call as its service account
    tokens = {u: secrets.token_urlsafe(16) for u in ("alice", "bob")}
    for user, token in tokens.items():
        st.set_token(token, user, uid=user + "-uid", groups=["langop-users"])
    st.add_rule(True, user=["alice", "carol"], verb="list", apiGroup="langop.io",
                resource="languagemodels", namespace="default")
    st.add_rule(False, user="bob", denied=True, reason="bob may not use langop.io")
    for key, path in (("requestheader-client-ca-file", rh_ca), ("client-ca-file", client_ca)):
        with open(path) as f:
            st.auth_config[key] = f.read()
    st.auth_configmap()
    st.start()
    sa_dir = os.path.join(directory, "serviceaccount")
    os.makedirs(sa_dir)
    with open(os.path.join(sa_dir, "token"), "w") as f:
        f.write(sa_token)
    shutil.copy(certs["ca"], os.path.join(sa_dir, "ca.crt"))
    kubeconfig = os.path.join(directory, "kubeconfig")
    with open(kubeconfig, "w") as f:
        yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "in-cluster", "cluster": {
                "server": "https://127.0.0.1:%d" % st.port,
                "certificate-authority": os.path.join(sa_dir, "ca.crt")}}],
            "users": [{"name": SA, "user": {"tokenFile": os.path.join(sa_dir, "token")}}],
            "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": SA}}],
            "current-context": "in-cluster"}, f)
    return {"standin": st, "sa_dir": sa_dir, "kubeconfig": kubeconfig, "sa_token": sa_token,
            "tokens": tokens, "front_proxy": proxy}


MODELS = "/apis/langop.io/v1alpha1/namespaces/default/languagemodels"
AUTHCONFIG_PATH = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"


def check_delegation(c, R, port, cafile, cluster, objs):
    """With the server running: delegated authentication and authorization
    against the stand-in, and every call it made there granted by deploy/'s RBAC."""
    st = cluster["standin"]
    with st.mu:
        c.expect(not st.sar_specs, "%s: the probes sent %d SubjectAccessReview(s) to kube-apiserver; the "
                 "health endpoints must need no authorization" % (R, len(st.sar_specs)))
    c.expect(st.calls_to(AUTHCONFIG_PATH, "GET") > 0,
             "%s: the server did not read kube-system/extension-apiserver-authentication from "
             "kube-apiserver at start-up" % R)
    cases = [
        ("alice's bearer token (TokenReview), allowed by SubjectAccessReview",
         [("Authorization", "Bearer " + cluster["tokens"]["alice"])], None, 200, "alice", None),
        ("bob's bearer token (TokenReview), denied by SubjectAccessReview",
         [("Authorization", "Bearer " + cluster["tokens"]["bob"])], None, 403, "bob", "Forbidden"),
        ("an unknown bearer token", [("Authorization", "Bearer not-" + cluster["tokens"]["alice"])],
         None, 401, None, "Unauthorized"),
        ("X-Remote-User: carol without a front-proxy certificate", [("X-Remote-User", "carol")],
         None, 401, None, "Unauthorized"),
        ("a front-proxy certificate of the ConfigMap's requestheader CA, X-Remote-User: carol",
         [("X-Remote-User", "carol"), ("X-Remote-Group", "langop-readers")], cluster["front_proxy"],
         200, "carol", None),
    ]
    for what, headers, cert, want, user, reason in cases:
        with st.mu:
            seen = len(st.sar_specs)
        try:
            code, body = https_request(port, MODELS, cafile, headers, cert)
        except (OSError, ssl.SSLError) as e:
            c.fail("%s: %s: GET %s failed: %s" % (R, what, MODELS, e))
            continue
        with st.mu:
            specs = st.sar_specs[seen:]
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not c.expect(code == want, "%s: %s: GET %s answered %s, want %s (%s)"
                        % (R, what, MODELS, code, want, body[:200].decode(errors="replace"))):
            continue
        if reason:
            c.expect(isinstance(doc, dict) and doc.get("kind") == "Status" and doc.get("code") == want
                     and doc.get("reason") == reason,
                     "%s: %s: the %s is not a kube Status with reason %s: %s"
                     % (R, what, want, reason, body[:200].decode(errors="replace")))
        else:
            c.expect(isinstance(doc, dict) and doc.get("kind") == "LanguageModelList",
                     "%s: %s: the 200 is not a LanguageModelList" % (R, what))
        if user is None:
            c.expect(not specs, "%s: %s: a SubjectAccessReview was sent for a request that was not "
                     "authenticated" % (R, what))
            continue
        ra = {"verb": "list", "group": "langop.io", "resource": "languagemodels", "namespace": "default"}
        asked = [sp for sp in specs if sp.get("user") == user and all(
            (sp.get("resourceAttributes") or {}).get(k) == v for k, v in ra.items())]
        c.expect(asked, "%s: %s: no SubjectAccessReview for user %r to list languagemodels.langop.io in "
                 "namespace default reached kube-apiserver (%s)" % (R, what, user, specs))
        if cert and asked:
            groups = asked[0].get("groups") or []
            c.expect("langop-readers" in groups, "%s: %s: the review's groups %s lack X-Remote-Group "
                     "langop-readers" % (R, what, groups))
    with st.mu:
        log = list(st.log)
    grants = sa_grants(objs)
    told = set()
    for e in log:
        key = (e["method"], e["path"])
        if key in told:
            continue
        told.add(key)
        c.expect(e.get("authorization") == "Bearer " + cluster["sa_token"],
                 "%s: the server's %s %s to kube-apiserver was not made with the service account's token"
                 % (R, e["method"], e["path"]))
        attrs = kube_request_attrs(e["method"], e["path"], e.get("query"))
        c.expect(granted(grants, attrs), "%s: the server's %s %s to kube-apiserver (%s) is not granted to "
                 "ServiceAccount %s/%s by the RBAC in deploy/" % (R, e["method"], e["path"],
                                                                  describe(attrs), NS, SA))


def check_runs(c, found, binary):
    """Start binary with the Deployment's args on mapped volumes, in the
    stand-in's cluster; probe it and ask it as users of that cluster."""
    dep = get(found, "Deployment", "langop-apiserver")
    api = get(found, "APIService", "v1alpha1.langop.io")
    secret = get(found, "Secret", SECRET_PREFIX + "-*")
    if dep is None or api is None or secret is None:
        return
    R = "Deployment langop-apiserver, run"
    pod = dep["spec"]["template"]["spec"]
    ct = pod["containers"][0]
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    ca = b64((api.get("spec") or {}).get("caBundle", ""))
    if not ca:
        return
    tmp = tempfile.mkdtemp(prefix="check-deploy-run-")
    proc = log = cluster = None
    try:
        try:
            cluster = start_cluster(os.path.join(tmp, "cluster"))
        except (OSError, subprocess.CalledProcessError) as e:
            c.fail("%s: the kube-apiserver stand-in did not start: %s" % (R, e))
            return
        mounts = []
        for m in ct.get("volumeMounts") or []:
            local = os.path.join(tmp, "volumes", m.get("name", "x"))
            os.makedirs(local)
            vol = volumes.get(m.get("name")) or {}
            if (vol.get("secret") or {}).get("secretName") == secret["metadata"]["name"]:
                for k, v in (secret.get("data") or {}).items():
                    with open(os.path.join(local, k), "wb") as f:
                        f.write(b64(v) or b"")
            mounts.append((m.get("mountPath", "").rstrip("/") + "/", local + "/"))
        cafile = os.path.join(tmp, "cabundle.pem")
        with open(cafile, "wb") as f:
            f.write(ca)
        port = free_port()
        args = []
        storage = None
        for a in ct.get("args") or []:
            a = str(a)
            name, _, value = a.partition("=")
            if name == "--secure-port":
                value = str(port)
            elif name == "--bind-address":
                value = "127.0.0.1"
            else:
                for mount, local in sorted(mounts, key=lambda m: -len(m[0])):
                    if value.startswith(mount):
                        value = local + value[len(mount):]
                        break
            if name == "--storage-path":
                storage = value
            args.append(name + "=" + value if _ else a)
        # the pod's way to kube-apiserver, SA_DIR mapped like the volumes (see the module docstring)
        args += ["--%s=%s" % (flag, cluster["kubeconfig"]) for flag in KUBECONFIG_FLAGS]
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1",
                   KUBERNETES_SERVICE_PORT=str(cluster["standin"].port))
        cwd = os.path.join(tmp, "cwd")
        os.makedirs(cwd)
        log = open(os.path.join(tmp, "server.log"), "w+")
        proc = subprocess.Popen([os.path.abspath(binary)] + args, cwd=cwd, stdout=log, env=env,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        probes = [(ct.get(p) or {}).get("httpGet") or {} for p in ("readinessProbe", "livenessProbe")]
        codes = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                codes = {hg.get("path"): https_get(port, hg.get("path") or "/", cafile) for hg in probes}
                if all(code == 200 for code in codes.values()):
                    break
            except ssl.SSLCertVerificationError as e:
                codes = {"tls": str(e)}
                break
            except OSError:
                pass
            time.sleep(0.1)
        if proc.poll() is not None:
            log.seek(0)
            tail = log.read().strip().splitlines()[-3:]
            c.fail("%s: the server exited (%s) with the Deployment's args: %s" % (R, proc.returncode, tail))
            return
        if c.expect(codes and all(code == 200 for code in codes.values()),
                    "%s: probes answered %s, want 200 over TLS verified with the caBundle" % (R, codes)):
            check_delegation(c, R, port, cafile, cluster, list(found.values()))
        c.expect(storage is not None and os.path.exists(storage),
                 "%s: no database at --storage-path (%s)" % (R, storage))
        c.expect(not os.listdir(cwd), "%s: the server wrote %s in its working folder (a read-only "
                 "root in the pod)" % (R, sorted(os.listdir(cwd))))
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            c.fail("%s: the server did not stop within 15s of SIGTERM" % R)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if log is not None:
            log.close()
        if cluster is not None:
            cluster["standin"].stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# Dockerfile

def dockerfile_stages(text):
    """[(from-line, [instruction lines])], continuation lines joined."""
    text = re.sub(r"\\\n", " ", text)
    stages = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        word = s.split(None, 1)[0].upper()
        if word == "FROM":
            stages.append((s, []))
        elif stages:
            stages[-1][1].append(s)
    return stages


def apt_installs(lines):
    pkgs = set()
    for line in lines:
        for m in re.finditer(r"apt-get install ([^&;|]*)", line):
            pkgs.update(w for w in m.group(1).split() if not w.startswith("-"))
    return pkgs


def linked_packages(binary):
    """Debian packages owning the libraries the binary links (libc6 left out)."""
    st = os.stat(binary)
    return set(_linked_packages(os.path.realpath(binary), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=8)
def _linked_packages(binary, mtime_ns, size):
    """linked_packages of one version of a binary: ldd and dpkg -S take seconds, once."""
    out = run(["ldd", binary])
    pkgs = set()
    for lib in re.findall(r"=> (/\S+)", out.stdout):
        for path in (os.path.realpath(lib), lib):
            q = run(["dpkg", "-S", path])
            if q.returncode == 0:
                pkgs.add(q.stdout.split(":", 1)[0])
                break
    pkgs.discard("libc6")
    return frozenset(pkgs)


def check_dockerfile(c, path, uid, binary):
    F = "deploy/Dockerfile"
    if not c.expect(os.path.isfile(path), "%s: missing" % F):
        return
    with open(path) as f:
        stages = dockerfile_stages(f.read())
    if not c.expect(len(stages) >= 2, "%s: %d stages, want a build and a runtime stage" % (F, len(stages))):
        return
    build_from, build = stages[0]
    run_from, runtime = stages[-1]
    c.expect(re.match(r"FROM\s+debian:(12|bookworm)(\s|$)", build_from, re.I) and " AS " in build_from.upper(),
             "%s: build stage %r is not a named debian:12 stage" % (F, build_from))
    c.expect(re.match(r"FROM\s+debian:(12|bookworm)-slim\s*$", run_from, re.I),
             "%s: runtime stage %r is not debian:12-slim" % (F, run_from))
    build_pkgs = apt_installs(build)
    for p in ("meson", "ninja-build", "pkg-config", "python3", "libh2o-evloop-dev", "libssl-dev",
              "libyaml-dev", "libjansson-dev", "libsqlite3-dev"):
        c.expect(p in build_pkgs, "%s: build stage does not install %s" % (F, p))
    c.expect(any("--buildtype=release" in line for line in build),
             "%s: build stage is not a meson release build" % F)
    run_pkgs = apt_installs(runtime)
    dev = sorted(p for p in run_pkgs if p.endswith("-dev"))
    c.expect(not dev, "%s: runtime stage installs %s" % (F, dev))
    need = set(RUNTIME_PACKAGES)
    if binary:
        need |= linked_packages(binary)
    for p in sorted(need - run_pkgs):
        c.fail("%s: runtime stage does not install %s (linked by the server)" % (F, p))
    c.expect(any(re.match(r"COPY\s+--from=\S+\s+\S*langop-apiserver\s", line) for line in runtime),
             "%s: runtime stage does not copy the binary from the build stage" % F)
    users = [line.split(None, 1)[1].strip() for line in runtime if line.upper().startswith("USER ")]
    user = users[-1] if users else ""
    m = re.match(r"^(\d+)(?::(\d+))?$", user)
    if c.expect(m and int(m.group(1)) != 0, "%s: runtime USER %r is not a numeric non-root uid" % (F, user)):
        c.expect(uid is None or int(m.group(1)) == uid,
                 "%s: USER %s but the Deployment's runAsUser is %s" % (F, m.group(1), uid))
    c.expect(any(line.upper().startswith("ENTRYPOINT") and "langop-apiserver" in line for line in runtime),
             "%s: no ENTRYPOINT running langop-apiserver" % F)


def check_build_stage(c, path, root):
    """Copy what the build stage COPYs from root, run its meson line: the image's sources suffice."""
    F = "deploy/Dockerfile"
    with open(path) as f:
        stages = dockerfile_stages(f.read())
    if not stages:
        return
    lines = stages[0][1]
    tmp = tempfile.mkdtemp(prefix="check-deploy-build-")
    try:
        work = os.path.join(tmp, "src")
        os.makedirs(work)
        missing = False
        for line in lines:
            words = line.split()
            if words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
                continue
            srcs, dest = words[1:-1], words[-1]
            for src in srcs:
                full = os.path.join(root, src)
                if not c.expect(os.path.exists(full), "%s: COPY %s: no such path" % (F, src)):
                    missing = True
                    continue
                if os.path.isdir(full):
                    shutil.copytree(full, os.path.join(work, dest), dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    to = os.path.join(work, dest)
                    if dest.endswith("/") or dest == ".":
                        to = os.path.join(to, os.path.basename(src))
                    os.makedirs(os.path.dirname(to), exist_ok=True)
                    shutil.copy(full, to)
        if missing:
            return  # docker would stop at that COPY: there is no build to try
        meson = [line for line in lines if line.upper().startswith("RUN ") and "meson setup" in line]
        if not c.expect(meson, "%s: build stage has no RUN with meson setup" % F):
            return
        cmd = meson[0][4:].replace("/build", os.path.join(tmp, "build"))
        out = subprocess.run(["bash", "-c", cmd], cwd=work, capture_output=True, text=True, timeout=900)
        c.expect(out.returncode == 0, "%s: the build stage's sources and meson line do not build: %s"
                 % (F, (out.stdout + out.stderr).strip().splitlines()[-3:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------

def check(deploy_dir, kubectl, binary, main_c, out, build=False):
    c = Checker()
    flags, flags_src = server_flags(binary, main_c)
    if not flags:
        c.fail("no server flags found in %s" % flags_src)
    objs = render(deploy_dir, kubectl, c)
    uid = None
    if objs is not None:
        found = index(objs, c)
        check_rbac(c, found)
        check_delegation_rbac(c, objs)
        got = check_deployment(c, found, flags, flags_src)
        cport, labels, uid = got if got else (None, {}, None)
        check_service(c, found, cport, labels)
        check_apiservice(c, found)
        if binary:
            check_runs(c, found, binary)
    check_dockerfile(c, os.path.join(deploy_dir, "Dockerfile"), uid, binary)
    if build and os.path.isfile(os.path.join(deploy_dir, "Dockerfile")):
        check_build_stage(c, os.path.join(deploy_dir, "Dockerfile"), ROOT)
    for p in c.problems:
        print(p, file=out)
    print("deploy: %d objects, %d problems" % (len(objs or []), len(c.problems)), file=out)
    return 1 if c.problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deploy", default=os.path.join(ROOT, "deploy"), help="the deploy folder")
    ap.add_argument("--kubectl", default=os.environ.get("LANGOP_KUBECTL", "kubectl"))
    ap.add_argument("--binary", default=os.environ.get("LANGOP_BINARY") or None,
                    help="the built server, for --help and ldd (default: $LANGOP_BINARY)")
    ap.add_argument("--main-c", default=os.path.join(ROOT, "apiserver", "main.c"),
                    help="where the flags are read when no binary is given")
    ap.add_argument("--build", action="store_true",
                    help="also build the server from what the Dockerfile's build stage copies")
    a = ap.parse_args()
    return check(a.deploy, a.kubectl, a.binary, a.main_c, sys.stdout, a.build)


if __name__ == "__main__":
    sys.exit(main())
