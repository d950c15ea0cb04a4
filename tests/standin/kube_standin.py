#!/usr/bin/python3
"""A stand-in for kube-apiserver, for langop-apiserver's tests.

It is not a Kubernetes API server: it serves, over HTTPS, the few parts of
kube-apiserver's API that langop-apiserver talks to (delegated authentication
and authorization, the extension-apiserver-authentication ConfigMap) and that
its reconcile thread will write to (namespaces, configmaps, secrets, services,
events, deployments, jobs, cronjobs, leases), in the wire shapes of the real
API, with a test-controlled token table, authorization rule table and fault
injection. Standard library plus PyYAML; run with /usr/bin/python3.

Two ways to use it:
  * in-process: KubeStandin(cert, key, client_ca=None).start() (or
    start_standin(dir), which also makes certificates and a kubeconfig); set
    .tokens, .sar_rules, .auth_config, add faults with .add_fault(...) (for
    the next N requests, or for some seconds) or .outage(seconds) (every
    request fails, open watches are cut); read .calls; .stop();
  * as a process: kube_standin.py --port P --cert F --key F [--client-ca F]
    [--state-file F] [--kubeconfig F]; the test drives it through the
    control endpoints under /standin/ (see CONTROL below).
Helpers: make_serving_certs, make_ca, make_client_cert (front-proxy and
client certificates), write_kubeconfig.

What is simplified against the real kube-apiserver (on purpose):
  * no authentication or authorization of its own callers unless
    caller_tokens is set (then a bearer token from it, or a verified client
    certificate, is required); no RBAC, no admission beyond "the namespace
    must exist" and a few validations (names, ConfigMap values, Deployment
    selector); no defaulting of built-in fields (a Deployment gets no
    strategy, no revisionHistoryLimit, ...);
  * server-side apply: one applied configuration remembered per field
    manager; an apply removes the fields that manager applied last time and
    no longer applies, then merges the new configuration (maps merged, lists
    replaced whole, no list-map keys); ownership is by leaf path among
    appliers only (updates and merge patches own nothing): a leaf another
    applier set to another value is a 409 conflict unless force=true, which
    takes it over; managedFields lists the appliers only, each with a
    simplified FieldsV1 of its leaves;
  * strategic merge patch is treated as JSON merge patch; JSON patch
    supports add/remove/replace/test on plain paths;
  * no controllers: Deployments never get pods or status unless the test
    sets it (set_status() or PUT .../status); deleting a namespace deletes
    its contents at once (no Terminating phase); finalizers are honoured
    (deletionTimestamp set, gone when the last finalizer is removed);
  * events of core/v1 and events.k8s.io/v1 are stored apart; generation is
    kept only for kinds whose spec the real API versions (deployments, jobs,
    cronjobs); watch history is kept whole until compact() (a watch, or a
    continue token, from before it gets 410 Expired); a watch with
    selectors sees an object that comes to match them as ADDED and one that
    stops matching as DELETED, as kube's watch cache; bookmarks (with
    allowWatchBookmarks=true) as kube's watch cache sends them: one 2 s
    before timeoutSeconds ends and one a minute, none when the timeout is
    shorter than 2 s, with the store's resourceVersion;
  * field selectors: metadata.name and metadata.namespace, = == !=; on
    core/v1 events also the fields kube selects events on (EVENT_FIELDS:
    involvedObject.*, reason, source, type, ...), as kubectl describe asks;
  * a DELETE that removes the object answers a Status Success for every
    kind but namespaces (as kube's stores for these kinds do);
  * lists are paged as kube pages them from etcd (limit and continue;
    items in key order; each page at the first page's resourceVersion,
    rebuilt from the watch history; remainingItemCount without selectors;
    410 Expired for a continue token compacted since; resourceVersion=0
    lists whole, as the watch cache does); otherwise
    resourceVersion/resourceVersionMatch on lists, propagationPolicy and
    gracePeriodSeconds on deletes are ignored; dryRun=All does the write,
    answers it, then puts the store back (its answer has a resourceVersion);
  * discovery is the legacy APIGroupList/APIResourceList (no aggregated
    v2 discovery: clients fall back); no OpenAPI (404); Table output has the
    Name and Age columns only.
"""

import argparse
import base64
import copy
import datetime
import fnmatch
import http.server
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

import yaml

STANDIN_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-standin",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
    "platform": "linux/amd64",
}


class Resource:
    """One served resource: group, version, plural, kind and how it behaves."""

    def __init__(self, group, version, plural, kind, namespaced=True, short=(),
                 status=False, generation=False, verbs=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced = namespaced
        self.short = list(short)
        self.status = status            # has a status subresource
        self.generation = generation    # metadata.generation follows spec changes
        self.verbs = verbs or ["create", "delete", "deletecollection", "get", "list",
                               "patch", "update", "watch"]

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self):
        """How kube names the resource in messages: configmaps, deployments.apps."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, short=["ns"], status=True),
    Resource("", "v1", "configmaps", "ConfigMap", short=["cm"]),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "services", "Service", short=["svc"], status=True),
    Resource("", "v1", "events", "Event", short=["ev"]),
    Resource("apps", "v1", "deployments", "Deployment", short=["deploy"], status=True,
             generation=True),
    Resource("batch", "v1", "jobs", "Job", status=True, generation=True),
    Resource("batch", "v1", "cronjobs", "CronJob", short=["cj"], status=True, generation=True),
    Resource("events.k8s.io", "v1", "events", "Event", short=["ev"]),
    Resource("coordination.k8s.io", "v1", "leases", "Lease"),
    Resource("authentication.k8s.io", "v1", "tokenreviews", "TokenReview",
             namespaced=False, verbs=["create"]),
    Resource("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview",
             namespaced=False, verbs=["create"]),
]
REVIEWS = {"tokenreviews", "subjectaccessreviews"}

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

DEFAULT_AUTH_CONFIG = {
    "requestheader-username-headers": '["X-Remote-User"]',
    "requestheader-group-headers": '["X-Remote-Group"]',
    "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    "requestheader-uid-headers": '["X-Remote-Uid"]',
    "requestheader-allowed-names": '["front-proxy-client"]',
}


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """A failure answered as a kube Status object."""

    def __init__(self, code, reason, message, details=None, headers=None, metadata=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = headers or {}
        self.metadata = metadata or {}

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": dict(self.metadata), "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            s["details"] = self.details
        return s


def not_found(res, name):
    d = {"name": name, "kind": res.plural}
    if res.group:
        d["group"] = res.group
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', d)


def already_exists(res, name):
    d = {"name": name, "kind": res.plural}
    if res.group:
        d["group"] = res.group
    return ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists', d)


def conflict(res, name, why="the object has been modified; please apply your changes "
                            "to the latest version and try again"):
    d = {"name": name, "kind": res.plural}
    if res.group:
        d["group"] = res.group
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": {why}', d)


def invalid(res, name, causes):
    """causes: [(field, message)], as FieldValueInvalid causes."""
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    d = {"name": name, "kind": res.kind,
         "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]}
    if res.group:
        d["group"] = res.group
    if len(causes) > 1:
        text = "[" + text + "]"
    return ApiError(422, "Invalid", f'{res.kind}{"." + res.group if res.group else ""} "{name}" is invalid: {text}', d)


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


# ------------------------------------------------------- list continuation

# kube's words (apiserver/pkg/storage/etcd3) for a continue token whose
# resourceVersion etcd has compacted away
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token in this response to "
    "retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - "
    "objects that were created, modified, or deleted between the time the first chunk was returned "
    "and now may show up in the list.")


def encode_continue(start, rv):
    """kube's continue token: unpadded base64url of {"v", "rv", "start"}, start
    being the key (relative to the list's prefix) the next page begins at;
    rv -1 asks for the rest of the list at the newest rv."""
    data = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).rstrip(b"=").decode()


def decode_continue(token):
    """(start key, rv) of a token of encode_continue; 400 as kube for anything else."""
    def invalid_token(why):
        return bad_request(f"invalid continue token: continue key is not valid: {why}")
    try:
        c = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as e:
        raise invalid_token(str(e))
    if not isinstance(c, dict) or c.get("v") != "meta.k8s.io/v1":
        raise invalid_token("got unrecognized encoded version")
    if not isinstance(c.get("rv"), int) or c["rv"] == 0:
        raise invalid_token("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    if not isinstance(c.get("start"), str) or not c["start"]:
        raise invalid_token("encoded start key empty (version meta.k8s.io/v1)")
    if c["start"].startswith("/") or "/../" in "/" + c["start"] + "/":
        raise invalid_token("the start key may not be an absolute path or contain '..'")
    return c["start"], c["rv"]


# ---------------------------------------------------------------- selectors

def parse_label_selector(text):
    """The basics of kube's label selector syntax: k=v, k==v, k!=v, k in (a,b),
    k notin (a,b), k, !k. Returns a predicate on a labels dict."""
    reqs = []
    text = (text or "").strip()
    parts = []
    depth = 0
    cur = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    for p in parts:
        p = p.strip()
        m = re.match(r"^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$", p)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), vals))
            continue
        m = re.match(r"^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$", p)
        if m:
            op = {"==": "=", "=": "=", "!=": "!="}[m.group(2)]
            reqs.append((m.group(1), op, {m.group(3)}))
            continue
        m = re.match(r"^(!?)([\w./-]+)$", p)
        if m:
            reqs.append((m.group(2), "!exists" if m.group(1) else "exists", set()))
            continue
        raise bad_request(f"unable to parse requirement: {p!r}")

    def match(labels):
        labels = labels or {}
        for key, op, vals in reqs:
            has = key in labels
            if op == "=" and not (has and labels[key] in vals):
                return False
            if op == "!=" and has and labels[key] in vals:
                return False
            if op == "in" and not (has and labels[key] in vals):
                return False
            if op == "notin" and has and labels[key] in vals:
                return False
            if op == "exists" and not has:
                return False
            if op == "!exists" and has:
                return False
        return True
    return match


# The fields of a core/v1 Event a field selector may name besides metadata.name
# and metadata.namespace, as kube's event strategy (ToSelectableFields) lists
# them; what kubectl describe asks for an object's events.
EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")


def event_field(obj, field):
    if field == "source":  # kube: source.component, else reportingComponent
        return (obj.get("source") or {}).get("component") or obj.get("reportingComponent") or ""
    cur = obj
    for k in field.split("."):
        cur = cur.get(k) if isinstance(cur, dict) else None
    return cur if isinstance(cur, str) else ""


def parse_field_selector(text, res=None):
    """metadata.name and metadata.namespace, = / == / !=; on core/v1 events
    also EVENT_FIELDS."""
    events = res is not None and res.group == "" and res.plural == "events"
    known = ("metadata.name", "metadata.namespace") + (EVENT_FIELDS if events else ())
    reqs = []
    for p in filter(None, (x.strip() for x in (text or "").split(","))):
        m = re.match(r"^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$", p)
        if not m or m.group(1) not in known:
            if events and m:  # kube's wording for a field the kind does not select on
                raise bad_request(f'field label not supported: {m.group(1)}')
            raise bad_request(f'"{p}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        reqs.append((m.group(1), m.group(2) != "!=", m.group(3)))

    def value(obj, field):
        if field.startswith("metadata."):
            return obj.get("metadata", {}).get(field.split(".")[1], "")
        return event_field(obj, field)

    def match(obj):
        return all((value(obj, f) == v) == eq for f, eq, v in reqs)
    return match


# ------------------------------------------------------------ patch helpers

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(doc, ops):
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")

    def walk(path):
        toks = [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]
        cur = doc
        for t in toks[:-1]:
            cur = cur[int(t)] if isinstance(cur, list) else cur[t]
        return cur, toks[-1]
    for op in ops:
        try:
            parent, last = walk(op["path"])
            kind = op["op"]
            if isinstance(parent, list):
                idx = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(idx, op["value"])
                elif kind == "remove":
                    del parent[idx]
                elif kind == "replace":
                    parent[idx] = op["value"]
                elif kind == "test":
                    if parent[idx] != op["value"]:
                        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: test failed at {op['path']}")
                else:
                    raise bad_request(f"unsupported json patch op {kind}")
            else:
                if kind == "add" or kind == "replace":
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = op["value"]
                elif kind == "remove":
                    del parent[last]
                elif kind == "test":
                    if parent.get(last) != op["value"]:
                        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: test failed at {op['path']}")
                else:
                    raise bad_request(f"unsupported json patch op {kind}")
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: bad path {op.get('path')!r}")
    return doc


def leaf_paths(obj, prefix=()):
    """Paths of the leaves of an applied configuration; a list is one leaf."""
    if isinstance(obj, dict) and obj:
        out = []
        for k, v in obj.items():
            out.extend(leaf_paths(v, prefix + (k,)))
        return out
    return [prefix]


def remove_path(obj, path):
    cur = obj
    for k in path[:-1]:
        if not isinstance(cur, dict) or k not in cur:
            return
        cur = cur[k]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)


def get_path(obj, path):
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def has_path(obj, path):
    cur = obj
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            return False
        cur = cur[k]
    return True


def prune_empty(obj, path):
    """After removing path, drop maps left empty along it (not the root)."""
    for n in range(len(path) - 1, 0, -1):
        cur = obj
        ok = True
        for k in path[:n - 1]:
            cur = cur.get(k) if isinstance(cur, dict) else None
            if cur is None:
                ok = False
                break
        if ok and isinstance(cur, dict) and cur.get(path[n - 1]) == {}:
            del cur[path[n - 1]]


def fields_v1(paths):
    root = {}
    for p in paths:
        cur = root
        for k in p:
            cur = cur.setdefault(f"f:{k}", {})
    return root


# ------------------------------------------------------------------ the store

class Store:
    """Objects by (resource, namespace, name), one global resourceVersion
    counter and the history of every change, for watches."""

    def __init__(self):
        self.lock = threading.Condition()
        self.rv = 1
        self.objects = {}          # (res, ns, name) -> object (with kind/apiVersion)
        self.history = []          # (rv, type, res, object copy)
        self.compacted = 0         # watches from below this rv get 410
        self.applied = {}          # (res, ns, name, manager) -> applied config
        self.closed = False

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def record(self, etype, res, obj, prev=None):
        """One change: obj as it is now (for DELETED, its last state with the
        deletion's rv), prev as it was before (None for ADDED). prev lets a
        watch see an object enter or leave its selector, and a list page
        see the store as it was at an older rv."""
        self.history.append((int(obj["metadata"]["resourceVersion"]), etype, res, copy.deepcopy(obj),
                             copy.deepcopy(prev)))
        self.lock.notify_all()


class KubeStandin:
    """A stand-in for kube-apiserver: see the module docstring for what it
    serves and what it simplifies. Thread-safe; start() returns once it
    listens."""

    def __init__(self, cert, key, client_ca=None, require_client_cert=False,
                 host="127.0.0.1", port=0):
        self.cert, self.key, self.client_ca = str(cert), str(key), client_ca and str(client_ca)
        self.require_client_cert = require_client_cert
        self.host, self.port = host, port
        self.store = Store()
        self.tokens = {}           # token -> {"user","uid","groups","extra","audiences"}
        self.sar_rules = []        # first match wins; see review_access()
        self.auth_config = dict(DEFAULT_AUTH_CONFIG)
        self.caller_tokens = set() # when non-empty, callers need one (or a client cert)
        self.faults = []
        self.watch_cuts = 0        # outage() counts; a watch opened before the last one is cut
        self.calls = {}            # "METHOD path" -> count
        self.paths = {}            # path -> count
        self.log = []              # recent requests: method, path, query, headers, client CN
        self.review_counts = {"tokenreviews": 0, "subjectaccessreviews": 0}
        self.mu = threading.Lock()
        self.httpd = None
        self.thread = None
        self.by_path = {}
        for r in RESOURCES:
            self.by_path[(r.group, r.version, r.plural)] = r
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._seed("namespaces", None, {"metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]},
                                           "status": {"phase": "Active"}})
        self.auth_configmap()  # kube-apiserver writes it at start

    # -------------------------------------------------- life cycle

    def start(self):
        self.store.closed = False
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.set_alpn_protocols(["http/1.1"])
        if self.client_ca:
            ctx.load_verify_locations(self.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        standin = self

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def finish_request(self, request, client_address):
                try:
                    request.settimeout(30)
                    tls = ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                try:
                    self.RequestHandlerClass(tls, client_address, self)
                finally:
                    try:
                        tls.close()
                    except OSError:
                        pass

        handler = type("Handler", (_Handler,), {"standin": standin})
        self.httpd = Server((self.host, self.port), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        with self.store.lock:
            self.store.closed = True
            self.store.lock.notify_all()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self):
        return self if self.httpd else self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return f"https://{self.host}:{self.port}"

    # -------------------------------------------------- test controls

    def set_token(self, token, user, uid="", groups=(), extra=None, audiences=None):
        self.tokens[token] = {"user": user, "uid": uid, "groups": list(groups),
                              "extra": extra or {}, "audiences": audiences}

    def add_rule(self, allowed=True, **match):
        """A SAR rule. match keys: user, group (one of the subject's groups), verb,
        apiGroup, resource, subresource, namespace, name, path (non-resource URL;
        a trailing * is a prefix); each a value, a list of values or "*".
        Extra keys: reason, denied, evaluationError."""
        rule = dict(match)
        rule["allowed"] = allowed
        self.sar_rules.append(rule)

    def add_fault(self, action, path="*", method="*", count=1, delay=0.0, retry_after=1,
                  after=0, size=7, seconds=None):
        """The next count requests matching method and path (an fnmatch pattern on
        the path without query; its * also matches /) answer: "500", "503"
        (ServiceUnavailable), "429" (with Retry-After), "409",
        "drop" (connection closed, no answer; a watch with after=N: closed after
        N events, without the stream's last chunk), "delay" (served after delay s)
        or "split" (a watch: its stream re-cut into HTTP chunks of size bytes,
        whatever the event boundaries, as proxies do; other requests as usual).
        With seconds, instead of the next count requests: every matching
        request from now until seconds have passed (count is ignored).
        Returns the fault, a dict the stand-in keeps current: "hits" is how
        many requests it answered so far."""
        f = {"action": str(action), "path": path, "method": method.upper(),
             "count": int(count), "delay": float(delay),
             "retryAfter": int(retry_after), "after": int(after),
             "size": max(1, int(size)), "hits": 0}
        if seconds is not None:
            f["until"] = time.monotonic() + float(seconds)
        with self.mu:
            self.faults.append(f)
        return f

    def outage(self, seconds, action="503"):
        """kube-apiserver unavailable for seconds (a restart, its etcd down, a
        load balancer with no backend left): every request, whatever its
        method and path, answers action ("503", "500" or "drop") until then,
        and every watch stream open now is cut (no last chunk), as a server
        going away cuts them. The control endpoints still answer. Returns the
        fault (add_fault): its "hits" are the requests made during the outage."""
        f = self.add_fault(action, "*", "*", seconds=seconds)
        with self.store.lock:
            self.watch_cuts += 1
            self.store.lock.notify_all()
        return f

    def clear_faults(self):
        with self.mu:
            self.faults = []

    def reset_calls(self):
        with self.mu:
            self.calls, self.paths, self.log = {}, {}, []
            self.review_counts = {"tokenreviews": 0, "subjectaccessreviews": 0}

    def calls_to(self, path, method=None):
        with self.mu:
            if method:
                return self.calls.get(f"{method.upper()} {path}", 0)
            return self.paths.get(path, 0)

    def load_state(self, state):
        """tokens / sarRules / authConfig / callerTokens / objects from a dict
        (the --state-file format and the body of PUT /standin/state)."""
        if "tokens" in state:
            self.tokens = {t: {"user": v.get("user", ""), "uid": v.get("uid", ""),
                               "groups": v.get("groups", []), "extra": v.get("extra", {}),
                               "audiences": v.get("audiences")}
                           for t, v in state["tokens"].items()}
        if "sarRules" in state:
            self.sar_rules = list(state["sarRules"])
        if "authConfig" in state:
            self.auth_config = dict(state["authConfig"])
        if "callerTokens" in state:
            self.caller_tokens = set(state["callerTokens"])
        for o in state.get("objects", []):
            self.put_object(o)

    def put_object(self, obj):
        """Create or replace an object directly (no faults, no validation)."""
        api_version, kind = obj.get("apiVersion", "v1"), obj["kind"]
        res = self.resource_for_kind(api_version, kind)
        ns = obj["metadata"].get("namespace") if res.namespaced else None
        if res.namespaced and not ns:
            ns = obj["metadata"]["namespace"] = "default"
        return self._seed(res.plural, ns, obj, group=res.group)

    def get_object(self, plural, name, namespace=None, group=""):
        res = self._res(group, plural)
        with self.store.lock:
            o = self.store.objects.get((res, namespace if res.namespaced else None, name))
            return copy.deepcopy(o)

    def set_status(self, plural, name, status, namespace=None, group=""):
        """What a controller would do: replace an object's status (new rv, MODIFIED)."""
        res = self._res(group, plural)
        with self.store.lock:
            key = (res, namespace if res.namespaced else None, name)
            old = self.store.objects.get(key)
            if old is None:
                raise not_found(res, name)
            o = copy.deepcopy(old)
            o["status"] = status
            o["metadata"]["resourceVersion"] = self.store.next_rv()
            self.store.objects[key] = o
            self.store.record("MODIFIED", res, o, old)
            return copy.deepcopy(o)

    def snapshot(self):
        """The store's state, for dry runs (call with store.lock held)."""
        s = self.store
        # keys hold Resource objects, compared by identity: copy the values only
        return ({k: copy.deepcopy(v) for k, v in s.objects.items()}, s.rv, len(s.history),
                {k: copy.deepcopy(v) for k, v in s.applied.items()})

    def restore(self, saved):
        s = self.store
        s.objects, s.rv, n, s.applied = saved
        del s.history[n:]

    def compact(self):
        """Forget the watch history: watches from an older rv get 410 Expired."""
        with self.store.lock:
            self.store.history = []
            self.store.compacted = self.store.rv

    def resource_for_kind(self, api_version, kind):
        group, _, version = api_version.rpartition("/")
        for r in RESOURCES:
            if r.group == group and r.version == version and r.kind == kind:
                return r
        raise KeyError(f"{api_version} {kind} is not served by the stand-in")

    def _res(self, group, plural):
        for r in RESOURCES:
            if r.group == group and r.plural == plural:
                return r
        raise KeyError(plural)

    def _seed(self, plural, ns, obj, group=""):
        res = self._res(group, plural)
        obj = copy.deepcopy(obj)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            meta["namespace"] = ns
        with self.store.lock:
            key = (res, ns, meta["name"])
            old = self.store.objects.get(key)
            meta.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", old["metadata"]["creationTimestamp"] if old else now_rfc3339())
            if res.generation:
                meta["generation"] = meta.get("generation", 1)
            meta["resourceVersion"] = self.store.next_rv()
            self.store.objects[key] = obj
            self.store.record("MODIFIED" if old else "ADDED", res, obj, old)
        return copy.deepcopy(obj)

    # -------------------------------------------------- reviews

    def review_token(self, body):
        spec = body.get("spec") or {}
        token = spec.get("token", "")
        wanted = spec.get("audiences") or []
        with self.mu:
            self.review_counts["tokenreviews"] += 1
        entry = self.tokens.get(token)
        status = {"user": {}}  # authenticated is omitempty: absent means false
        if entry is None:
            status["error"] = "invalid bearer token"
        else:
            auds = entry.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]
            got = [a for a in wanted if a in auds] if wanted else list(auds)
            if wanted and not got:
                status["error"] = "token audiences " + json.dumps(auds) + " is invalid for the target audiences " + json.dumps(wanted)
            else:
                user = {"username": entry["user"]}
                if entry.get("uid"):
                    user["uid"] = entry["uid"]
                if entry.get("groups"):
                    user["groups"] = list(entry["groups"])
                if entry.get("extra"):
                    user["extra"] = {k: list(v) for k, v in entry["extra"].items()}
                status = {"authenticated": True, "user": user, "audiences": got}
        return {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {}, "spec": spec, "status": status}

    @staticmethod
    def _rule_matches(rule, key, value):
        want = rule.get(key)
        if want is None or want == "*":
            return True
        wants = want if isinstance(want, list) else [want]
        if key == "path":
            return any(value == w or (w.endswith("*") and value.startswith(w[:-1])) for w in wants)
        return value in wants

    def review_access(self, body):
        spec = body.get("spec") or {}
        with self.mu:
            self.review_counts["subjectaccessreviews"] += 1
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        groups = spec.get("groups") or []
        status = {"allowed": False, "reason": "no stand-in rule matched"}
        for rule in self.sar_rules:
            if not self._rule_matches(rule, "user", spec.get("user", "")):
                continue
            if "group" in rule and rule["group"] != "*":
                want = rule["group"] if isinstance(rule["group"], list) else [rule["group"]]
                if not any(g in groups for g in want):
                    continue
            if ra is not None:
                if "path" in rule:
                    continue
                pairs = [("verb", ra.get("verb", "")), ("apiGroup", ra.get("group", "")),
                         ("resource", ra.get("resource", "")), ("subresource", ra.get("subresource", "")),
                         ("namespace", ra.get("namespace", "")), ("name", ra.get("name", ""))]
            elif nra is not None:
                if any(k in rule for k in ("apiGroup", "resource", "subresource", "namespace", "name")):
                    continue
                pairs = [("verb", nra.get("verb", "")), ("path", nra.get("path", ""))]
            else:
                break
            if all(self._rule_matches(rule, k, v) for k, v in pairs):
                status = {"allowed": bool(rule.get("allowed"))}
                for k in ("reason", "evaluationError"):
                    if rule.get(k):
                        status[k] = rule[k]
                if rule.get("denied"):
                    status["denied"] = True
                break
        return {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                "metadata": {}, "spec": spec, "status": status}

    def auth_configmap(self):
        with self.store.lock:
            key = (self._res("", "configmaps"), "kube-system", "extension-apiserver-authentication")
            stored = self.store.objects.get(key)
            if stored is None or stored.get("data") != self.auth_config:
                o = {"metadata": {"name": key[2]}, "data": dict(self.auth_config)}
                self._seed("configmaps", "kube-system", o)
            return copy.deepcopy(self.store.objects[key])

    # -------------------------------------------------- writes

    def _validate(self, res, obj):
        name = obj["metadata"].get("name", "")
        causes = []
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        elif res.plural == "namespaces" and not DNS1123_LABEL.match(name):
            causes.append(("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\''))
        elif res.plural != "events" and (not DNS1123_SUBDOMAIN.match(name) or len(name) > 253):
            causes.append(("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\''))
        if res.kind in ("ConfigMap", "Secret"):
            for k, v in (obj.get("data") or {}).items():
                if not isinstance(v, str):
                    causes.append((f"data[{k}]", "Invalid value: must be a string"))
        if res.kind == "Deployment":
            spec = obj.get("spec") or {}
            sel = ((spec.get("selector") or {}).get("matchLabels")) or {}
            tl = (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}
            if not spec.get("selector"):
                causes.append(("spec.selector", "Required value"))
            elif any(tl.get(k) != v for k, v in sel.items()):
                causes.append(("spec.template.metadata.labels", f"Invalid value: {json.dumps(tl)}: `selector` does not match template `labels`"))
        if causes:
            raise invalid(res, name, causes)

    def _check_namespace(self, res, ns):
        if res.namespaced:
            if (self._res("", "namespaces"), None, ns) not in self.store.objects:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                               {"name": ns, "kind": "namespaces"})

    def create(self, res, ns, body):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if res.namespaced:
            if meta.get("namespace") not in (None, "", ns):
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        self._validate(res, obj)
        with self.store.lock:
            self._check_namespace(res, ns)
            key = (res, ns, meta["name"])
            if key in self.store.objects:
                raise already_exists(res, meta["name"])
            for k in ("resourceVersion", "deletionTimestamp", "managedFields"):
                meta.pop(k, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            if res.generation:
                meta["generation"] = 1
            if res.plural == "namespaces":
                obj.setdefault("spec", {"finalizers": ["kubernetes"]})
                obj["status"] = {"phase": "Active"}
            meta["resourceVersion"] = self.store.next_rv()
            self.store.objects[key] = obj
            self.store.record("ADDED", res, obj)
            return copy.deepcopy(obj)

    def _replace(self, res, ns, name, old, new, subresource=None, check_rv=True):
        """Store new in place of old (both full objects), keeping what the
        server owns. Returns the stored object; no-op writes keep the rv."""
        new = copy.deepcopy(new)
        new["apiVersion"], new["kind"] = res.api_version, res.kind
        meta = new.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise bad_request(f'the name of the object ({meta.get("name")}) does not match the name on the URL ({name})')
        meta["name"] = name
        if res.namespaced:
            meta["namespace"] = ns
        rv = meta.get("resourceVersion")
        if check_rv and rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(res, name)
        if res.status:
            if subresource == "status":
                keep = copy.deepcopy(old)
                keep["status"] = new.get("status")
                if keep["status"] is None:
                    keep.pop("status")
                new = keep
                meta = new["metadata"]
            elif "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
            if k in old["metadata"]:
                meta[k] = old["metadata"][k]
            else:
                meta.pop(k, None)
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        self._validate(res, new)
        if new == old:
            return copy.deepcopy(old)
        if res.generation and {k: v for k, v in new.items() if k not in ("metadata", "status")} != \
                {k: v for k, v in old.items() if k not in ("metadata", "status")}:
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        meta["resourceVersion"] = self.store.next_rv()
        key = (res, ns, name)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.store.objects[key]
            self.store.record("DELETED", res, new, old)
        else:
            self.store.objects[key] = new
            self.store.record("MODIFIED", res, new, old)
        return copy.deepcopy(new)

    def update(self, res, ns, name, body, subresource=None):
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        with self.store.lock:
            old = self.store.objects.get((res, ns, name))
            if old is None:  # no create-on-update (true of these kinds in kube)
                raise not_found(res, name)
            return self._replace(res, ns, name, old, body, subresource), 200

    def patch(self, res, ns, name, ctype, raw, query, subresource=None):
        ctype = ctype.split(";")[0].strip().lower()
        try:
            if ctype == "application/apply-patch+yaml":
                body = yaml.safe_load(raw.decode("utf-8"))
            else:
                body = json.loads(raw.decode("utf-8"))
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"error decoding patch: {e}")
        with self.store.lock:
            old = self.store.objects.get((res, ns, name))
            if ctype == "application/apply-patch+yaml":
                manager = (query.get("fieldManager") or [""])[0]
                if not manager:
                    raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
                force = (query.get("force") or ["false"])[0] in ("true", "1")
                return self._apply(res, ns, name, old, body, manager, subresource, force)
            if old is None:
                raise not_found(res, name)
            if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(body, dict):
                    raise bad_request("a merge patch must be a JSON object")
                new = merge_patch(old, body)
            elif ctype == "application/json-patch+json":
                new = json_patch(old, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json')
            return self._replace(res, ns, name, old, new, subresource), 200

    def _apply(self, res, ns, name, old, cfg, manager, subresource, force=True):
        if not isinstance(cfg, dict):
            raise bad_request("the apply configuration must be an object")
        if cfg.get("kind") != res.kind or cfg.get("apiVersion") != res.api_version:
            raise bad_request(f"apply configuration must have apiVersion {res.api_version} and kind {res.kind}")
        cmeta = cfg.setdefault("metadata", {})
        if cmeta.get("name", name) != name:
            raise bad_request("the name of the object does not match the name on the URL")
        cmeta["name"] = name
        if res.namespaced:
            cmeta["namespace"] = ns
        skey = (res, ns, name, manager)
        applied = {k: v for k, v in cfg.items() if k not in ("apiVersion", "kind")}
        applied["metadata"] = {k: v for k, v in cmeta.items() if k not in ("name", "namespace", "resourceVersion")}
        if not applied["metadata"]:
            del applied["metadata"]
        if old is None:
            if subresource:
                raise not_found(res, name)
            self.create(res, ns, cfg)
            self.store.applied[skey] = applied
            return self._set_managed(res, ns, name, manager), 201
        new = copy.deepcopy(old)
        prev = self.store.applied.get(skey, {})
        now_paths = set(leaf_paths(applied))
        others = {k[3]: set(leaf_paths(v)) for k, v in self.store.applied.items()
                  if k[:3] == (res, ns, name) and k[3] != manager}
        # a field another manager applied, set here to another value: a conflict
        # unless forced; forcing takes the field from that manager
        clashes = [(m, p) for m, paths in sorted(others.items()) for p in sorted(now_paths & paths)
                   if get_path(old, p) != get_path(applied, p)]
        if clashes and not force:
            raise self._apply_conflict(res, clashes)
        for m, p in clashes:
            k = (res, ns, name, m)
            remove_path(self.store.applied[k], p)
            prune_empty(self.store.applied[k], p)
        shared = set().union(*others.values()) if others else set()
        for p in leaf_paths(prev):
            if p and p not in now_paths and p not in shared and has_path(new, p):
                remove_path(new, p)
                prune_empty(new, p)
        new = self._deep_merge(new, applied)
        if cmeta.get("resourceVersion"):
            new["metadata"]["resourceVersion"] = cmeta["resourceVersion"]
        else:
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        stored = self._replace(res, ns, name, old, new, subresource)
        self.store.applied[skey] = applied
        if stored["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]:
            return stored, 200
        return self._set_managed(res, ns, name, manager), 200

    @staticmethod
    def _apply_conflict(res, clashes):
        """409 in kube's wording: one conflict on one line, several grouped by manager."""
        v = res.api_version
        fields = [(m, "." + ".".join(p)) for m, p in clashes]
        if len(fields) == 1:
            m, f = fields[0]
            msg = f'Apply failed with 1 conflict: conflict with "{m}" using {v}: {f}'
        else:
            lines = []
            for m in sorted({m for m, _ in fields}):
                lines.append(f'conflicts with "{m}" using {v}:')
                lines.extend(f"- {f}" for mm, f in fields if mm == m)
            msg = f"Apply failed with {len(fields)} conflicts: " + "\n".join(lines)
        return ApiError(409, "Conflict", msg, {"causes": [
            {"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {v}', "field": f}
            for m, f in fields]})

    def _deep_merge(self, base, over):
        if not isinstance(base, dict) or not isinstance(over, dict):
            return copy.deepcopy(over)
        out = dict(base)
        for k, v in over.items():
            out[k] = self._deep_merge(base.get(k), v)
        return out

    def _set_managed(self, res, ns, name, manager):
        """managedFields without a new rv (kube writes them in the same change)."""
        o = self.store.objects.get((res, ns, name))
        if o is None:
            return None
        entries = []
        for (r, n, nm, mgr), cfg in sorted(self.store.applied.items(), key=lambda kv: kv[0][3]):
            if (r, n, nm) == (res, ns, name):
                entries.append({"manager": mgr, "operation": "Apply", "apiVersion": res.api_version,
                                "time": now_rfc3339(), "fieldsType": "FieldsV1",
                                "fieldsV1": fields_v1(leaf_paths(cfg))})
        o["metadata"]["managedFields"] = entries
        return copy.deepcopy(o)

    def delete(self, res, ns, name, body):
        with self.store.lock:
            key = (res, ns, name)
            old = self.store.objects.get(key)
            if old is None:
                raise not_found(res, name)
            pre = (body or {}).get("preconditions") or {}
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(res, name, f'the ResourceVersion in the precondition ({pre["resourceVersion"]}) does not match the ResourceVersion in record ({old["metadata"]["resourceVersion"]}). The object might have been modified')
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise conflict(res, name, f'the UID in the precondition ({pre["uid"]}) does not match the UID in record ({old["metadata"]["uid"]}). The object might have been deleted and then recreated')
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return copy.deepcopy(old)
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["resourceVersion"] = self.store.next_rv()
                self.store.objects[key] = new
                self.store.record("MODIFIED", res, new, old)
                return copy.deepcopy(new)
            del self.store.objects[key]
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = self.store.next_rv()
            self.store.record("DELETED", res, gone, old)
            # what kube answers: the namespace as Terminating (its REST does
            # that), for the other kinds here a Status Success (their stores
            # do not return the deleted object)
            if res.plural == "namespaces":
                answer = copy.deepcopy(old)
                answer["metadata"]["deletionTimestamp"] = now_rfc3339()
                answer["status"] = {"phase": "Terminating"}
            else:
                details = {"name": name, "kind": res.plural, "uid": old["metadata"]["uid"]}
                if res.group:
                    details["group"] = res.group
                answer = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                          "details": details}
            for k in [k for k in self.store.applied if k[:3] == key]:
                del self.store.applied[k]
            if res.plural == "namespaces":
                for k in [k for k in self.store.objects if k[0].namespaced and k[1] == name]:
                    was = self.store.objects.pop(k)
                    o = copy.deepcopy(was)
                    o["metadata"]["resourceVersion"] = self.store.next_rv()
                    self.store.record("DELETED", k[0], o, was)
            return answer

    # -------------------------------------------------- reads

    def objects_at(self, res, rv):
        """res's objects as they were at rv (store.lock held, rv not below
        store.compacted): the current ones, with every change after rv undone
        from the history."""
        objs = {k: o for k, o in self.store.objects.items() if k[0] is res}
        for v, etype, r, o, prev in reversed(self.store.history):
            if v <= rv:
                break
            if r is not res:
                continue
            key = (res, o["metadata"].get("namespace") if res.namespaced else None, o["metadata"]["name"])
            if etype == "ADDED" or prev is None:
                objs.pop(key, None)
            else:
                objs[key] = prev
        return objs

    def list(self, res, ns, query):
        """A list, in pages of limit as kube serves them from etcd: items in
        key order (name, or namespace/name across namespaces), a continue
        token while objects of the collection remain after the page (they
        may not match the selectors: the next page is then empty), every
        page at the first page's rv (the store as it was then), and
        remainingItemCount when no selector is given. A continue token whose
        rv was compacted since answers 410 Expired, with a token to go on at
        the newest rv. resourceVersion=0 without continue is served whole,
        as kube's watch cache does."""
        lsel_text = (query.get("labelSelector") or [""])[0]
        fsel_text = (query.get("fieldSelector") or [""])[0]
        lsel, fsel = parse_label_selector(lsel_text), parse_field_selector(fsel_text, res)
        token = (query.get("continue") or [""])[0]
        rv_asked = (query.get("resourceVersion") or [""])[0]
        try:
            limit = max(0, int((query.get("limit") or ["0"])[0] or 0))
        except ValueError:
            raise bad_request(f'invalid limit {(query.get("limit") or [""])[0]!r}')
        if rv_asked == "0" and not token:
            limit = 0
        if token and rv_asked not in ("", "0"):
            raise bad_request("specifying resource version is not allowed when using continue")

        def key_of(k):
            return k[2] if ns is not None or not res.namespaced else f"{k[1]}/{k[2]}"
        with self.store.lock:
            start, at = "", self.store.rv
            if token:
                start, at = decode_continue(token)
                if at == -1:
                    at = self.store.rv
                elif at < self.store.compacted:
                    raise ApiError(410, "Expired", INCONSISTENT_CONTINUE,
                                   metadata={"continue": encode_continue(start, -1)})
            objs = self.store.objects if at == self.store.rv else self.objects_at(res, at)
            scoped = sorted((key_of(k), o) for k, o in objs.items()
                            if k[0] is res and (ns is None or k[1] == ns) and key_of(k) >= start)
            items, meta, last = [], {"resourceVersion": str(at)}, start
            for i, (key, o) in enumerate(scoped):
                if limit and len(items) == limit:
                    meta["continue"] = encode_continue(last + "\x00", at)
                    if not lsel_text and not fsel_text:
                        meta["remainingItemCount"] = len(scoped) - i
                    break
                if lsel(o["metadata"].get("labels")) and fsel(o):
                    items.append(copy.deepcopy(o))
                    last = key
        for o in items:  # kube's typed lists carry kind/apiVersion on the list only
            o.pop("kind", None)
            o.pop("apiVersion", None)
        return {"kind": res.kind + "List", "apiVersion": res.api_version,
                "metadata": meta, "items": items}


# ------------------------------------------------------------------ HTTP

CONTROL = """Control endpoints (no faults, no caller auth):
  GET  /standin/calls        {"calls": {"METHOD path": n}, "paths": {path: n},
                              "reviews": {"tokenreviews": n, "subjectaccessreviews": n}}
  DELETE /standin/calls      reset the counters and the request log
  GET  /standin/log          recent requests (method, path, query, contentType,
                              authorization, clientCN, time: monotonic seconds)
  POST /standin/faults       {"action": "500|503|429|409|drop|delay|split", "path": "glob",
                              "method": "GET|*", "count": N, "delay": s, "retryAfter": s,
                              "after": N, "size": N, "seconds": s}
                             seconds: every matching request for s seconds
                               (instead of the next count)
                             drop: connection closed, no answer; on a watch with
                               "after": N, closed after N events (no last chunk)
                             split: a watch's stream re-cut into HTTP chunks of
                               "size" bytes (default 7), across event boundaries
  DELETE /standin/faults     remove every fault
  POST /standin/outage       {"seconds": s, "action": "503|500|drop"}: every request
                               answers action for s seconds, open watch streams are cut
  PUT  /standin/state        {"tokens": {...}, "sarRules": [...], "authConfig": {...},
                              "callerTokens": [...], "objects": [...]}
  POST /standin/status       {"group": "", "resource": "deployments", "namespace": "ns",
                              "name": "n", "status": {...}}
  POST /standin/compact      forget the watch history (older watches get 410)
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    standin = None  # set by KubeStandin.start
    stream_fault = None  # set by dispatch() for watch()

    def log_message(self, fmt, *args):
        if os.environ.get("KUBE_STANDIN_VERBOSE"):
            sys.stderr.write("kube-standin: " + (fmt % args) + "\n")

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -------------------------------------------------- plumbing

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send_json(self, code, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def wants_table(self):
        return "as=Table" in (self.headers.get("Accept") or "")

    @staticmethod
    def age(ts):
        try:
            t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        except (TypeError, ValueError):
            return "<unknown>"
        d = int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
        for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
            if d >= 2 * n:
                return f"{d // n}{unit}"
        return f"{max(d, 0)}s"

    def table(self, objs, rv, columns=True, list_meta=None):
        """meta.k8s.io/v1 Table with the Name and Age columns only (a list's
        continue and remainingItemCount from list_meta)."""
        rows = [{"cells": [o["metadata"]["name"], self.age(o["metadata"].get("creationTimestamp"))],
                 "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                            "metadata": o["metadata"]}} for o in objs]
        t = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {**(list_meta or {}), "resourceVersion": rv},
             "rows": rows}
        if columns:
            t["columnDefinitions"] = [
                {"name": "Name", "type": "string", "format": "name", "description": "the object's name", "priority": 0},
                {"name": "Age", "type": "string", "format": "", "description": "time since creation", "priority": 0}]
        return t

    def send_table(self, objs, rv, list_meta=None):
        data = json.dumps(self.table(objs, rv, list_meta=list_meta)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json;as=Table;v=v1;g=meta.k8s.io")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_error_status(self, err):
        self.send_json(err.code, err.status(), err.headers)

    def client_cn(self):
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            return None
        if not cert:
            return None
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    def dispatch(self):
        st = self.standin
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query, keep_blank_values=True)
        raw = self.body()
        if path.startswith("/standin/"):
            try:
                return self.control(path, raw)
            except ApiError as e:
                return self.send_error_status(e)
        with st.mu:
            now = time.monotonic()
            key = f"{self.command} {path}"
            st.calls[key] = st.calls.get(key, 0) + 1
            st.paths[path] = st.paths.get(path, 0) + 1
            st.log.append({"method": self.command, "path": path, "query": url.query,
                           "contentType": self.headers.get("Content-Type"),
                           "authorization": self.headers.get("Authorization"),
                           "userAgent": self.headers.get("User-Agent"),
                           "clientCN": self.client_cn(), "time": now})
            del st.log[:-500]
            live = lambda f: now < f["until"] if "until" in f else f["count"] > 0
            fault = None
            for f in st.faults:
                if live(f) and f["method"] in ("*", self.command) and fnmatch.fnmatchcase(path, f["path"]):
                    if "until" not in f:
                        f["count"] -= 1
                    f["hits"] += 1
                    fault = dict(f)
                    break
            st.faults = [f for f in st.faults if live(f)]
        self.watch_cuts = st.watch_cuts  # watch(): cut when an outage begins
        self.stream_fault = None  # split, or drop after N events: watch() acts on it
        if fault:
            a = fault["action"]
            if a == "split" or (a == "drop" and fault["after"] > 0 and self.is_watch(query)):
                self.stream_fault = fault
            elif a == "drop":
                return self.drop()
            elif a == "delay":
                time.sleep(fault["delay"])
            elif a == "500":
                return self.send_error_status(ApiError(500, "InternalError", "Internal error occurred: injected by the stand-in",
                                                       {"causes": [{"message": "injected by the stand-in"}]}))
            elif a == "503":
                return self.send_error_status(ApiError(503, "ServiceUnavailable",
                                                       "the server is currently unable to handle the request"))
            elif a == "429":
                return self.send_error_status(ApiError(429, "TooManyRequests", "the server has received too many requests and has asked us to try again later",
                                                       {"retryAfterSeconds": fault["retryAfter"]},
                                                       {"Retry-After": fault["retryAfter"]}))
            elif a == "409":
                return self.send_error_status(ApiError(409, "Conflict", "Operation cannot be fulfilled: injected conflict by the stand-in"))
        try:
            try:
                if st.caller_tokens:
                    auth = self.headers.get("Authorization", "")
                    tok = auth[7:] if auth.startswith("Bearer ") else None
                    if tok not in st.caller_tokens and not self.client_cn():
                        raise ApiError(401, "Unauthorized", "Unauthorized")
                self.route(path, query, raw)
            except ApiError as e:
                self.send_error_status(e)
        except OSError:  # the client left (its timeout, after a delay fault): nobody to answer
            self.close_connection = True

    @staticmethod
    def is_watch(query):
        return (query.get("watch") or [""])[0] in ("1", "true", "True")

    def drop(self):
        """Close the connection as a crashed server or a cut network would:
        no answer, or no more of one (no TLS close_notify either)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def control(self, path, raw):
        st = self.standin
        data = json.loads(raw.decode() or "{}") if raw else {}
        if path == "/standin/calls" and self.command == "GET":
            with st.mu:
                return self.send_json(200, {"calls": dict(st.calls), "paths": dict(st.paths),
                                            "reviews": dict(st.review_counts)})
        if path == "/standin/calls" and self.command == "DELETE":
            st.reset_calls()
            return self.send_json(200, {})
        if path == "/standin/log" and self.command == "GET":
            with st.mu:
                return self.send_json(200, {"requests": list(st.log)})
        if path == "/standin/faults" and self.command == "POST":
            st.add_fault(data.get("action", "500"), data.get("path", "*"), data.get("method", "*"),
                         data.get("count", 1), data.get("delay", 0), data.get("retryAfter", 1),
                         data.get("after", 0), data.get("size", 7), data.get("seconds"))
            with st.mu:
                return self.send_json(201, {"faults": list(st.faults)})
        if path == "/standin/outage" and self.command == "POST":
            return self.send_json(201, st.outage(data.get("seconds", 30), data.get("action", "503")))
        if path == "/standin/faults" and self.command == "DELETE":
            st.clear_faults()
            return self.send_json(200, {})
        if path == "/standin/faults" and self.command == "GET":
            return self.send_json(200, {"faults": st.faults})
        if path == "/standin/state" and self.command in ("PUT", "POST"):
            st.load_state(data)
            return self.send_json(200, {})
        if path == "/standin/status" and self.command == "POST":
            return self.send_json(200, st.set_status(data["resource"], data["name"], data.get("status"),
                                                     data.get("namespace"), data.get("group", "")))
        if path == "/standin/compact" and self.command == "POST":
            st.compact()
            return self.send_json(200, {})
        self.send_json(404, {"help": CONTROL})

    # -------------------------------------------------- routing

    def route(self, path, query, raw):
        st = self.standin
        m = self.command
        if path in ("/healthz", "/livez", "/readyz"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", "2")
            self.end_headers()
            return self.wfile.write(data)
        if path == "/version":
            return self.send_json(200, STANDIN_VERSION)
        if path in ("/api", "/api/"):
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                        "serverAddress": f"{st.host}:{st.port}"}]})
        if path in ("/apis", "/apis/"):
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": [self.api_group(g) for g in self.groups()]})
        if path.startswith("/openapi/v3"):
            return self.openapi_v3(path)
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) == 2:
            if parts[1] not in self.groups():
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self.send_json(200, self.api_group(parts[1]))
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        gv_res = [r for r in RESOURCES if r.group == group and r.version == version]
        if not gv_res:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return self.send_json(200, self.resource_list(group, version, gv_res))
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and group == "":
            # /api/v1/namespaces/NS/RESOURCE... unless it is the namespace itself (+status)
            if rest[2] in ("status", "finalize") and len(rest) == 3:
                pass
            else:
                ns, rest = rest[1], rest[2:]
        elif rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        res = st.by_path.get((group, version, rest[0]))
        if res is None or (ns is not None and not res.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) >= 3 else None
        if len(rest) > 3 or (sub and not (sub == "status" and res.status)):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.namespaced and name is not None and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.plural in REVIEWS:
            if m != "POST" or name:
                raise ApiError(405, "MethodNotAllowed", 'the server does not allow this method on the requested resource')
            body = self.decode(raw)
            out = st.review_token(body) if res.plural == "tokenreviews" else st.review_access(body)
            return self.send_json(201, out)
        if res.namespaced and ns is None and not (m == "GET" and name is None):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        watch = self.is_watch(query)
        if m == "GET" and name is None:
            if watch:
                return self.watch(res, ns, query)
            lst = st.list(res, ns, query)
            if self.wants_table():
                return self.send_table(lst["items"], lst["metadata"]["resourceVersion"], lst["metadata"])
            return self.send_json(200, lst)
        if m == "GET":
            if watch:
                q = dict(query)
                q["fieldSelector"] = [f"metadata.name={name}"]
                return self.watch(res, ns, q)
            if (res.plural, ns, name) == ("configmaps", "kube-system", "extension-apiserver-authentication"):
                return self.send_json(200, st.auth_configmap())
            o = st.get_object(res.plural, name, ns, res.group)
            if o is None:
                raise not_found(res, name)
            if self.wants_table():
                return self.send_table([o], o["metadata"]["resourceVersion"])
            return self.send_json(200, o)
        dry = query.get("dryRun")
        if dry is not None and m in ("POST", "PUT", "PATCH", "DELETE"):
            if dry != ["All"]:
                raise bad_request(f'Invalid dry run value: {",".join(dry)}: valid values are "All"')
            with st.store.lock:  # do it, answer, then put the store back as it was
                saved = st.snapshot()
                try:
                    query = {k: v for k, v in query.items() if k != "dryRun"}
                    return self.route_write(res, ns, name, sub, query, raw)
                finally:
                    st.restore(saved)
        return self.route_write(res, ns, name, sub, query, raw)

    def route_write(self, res, ns, name, sub, query, raw):
        st = self.standin
        m = self.command
        if m == "POST" and name is None:
            return self.send_json(201, st.create(res, ns, self.decode(raw)))
        if m == "PUT" and name:
            obj, code = st.update(res, ns, name, self.decode(raw), sub)
            return self.send_json(code, obj)
        if m == "PATCH" and name:
            obj, code = st.patch(res, ns, name, self.headers.get("Content-Type", ""), raw, query, sub)
            return self.send_json(code, obj)
        if m == "DELETE" and name and not sub:
            return self.send_json(200, st.delete(res, ns, name, self.decode(raw) if raw else None))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def decode(self, raw):
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        try:
            if ctype in ("application/yaml", "application/apply-patch+yaml"):
                return yaml.safe_load(raw.decode("utf-8"))
            return json.loads(raw.decode("utf-8") or "null")
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"the body of the request could not be decoded: {e}")

    # -------------------------------------------------- discovery

    @staticmethod
    def groups():
        seen = []
        for r in RESOURCES:
            if r.group and r.group not in seen:
                seen.append(r.group)
        return seen

    @staticmethod
    def api_group(g):
        v = next(r.version for r in RESOURCES if r.group == g)
        gv = {"groupVersion": f"{g}/{v}", "version": v}
        return {"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv], "preferredVersion": gv}

    @staticmethod
    def resource_list(group, version, rs):
        out = []
        for r in rs:
            e = {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": r.verbs}
            if r.short:
                e["shortNames"] = r.short
            out.append(e)
            if r.status:
                out.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": out}

    def openapi_v3(self, path):
        """Just enough OpenAPI v3 for kubectl to see that PATCH takes
        fieldValidation and dryRun (it then validates on the server, that is
        not at all here, instead of fetching /openapi/v2 protobuf). No schemas."""
        gvs = sorted({(r.group, r.version) for r in RESOURCES})

        def gv_path(g, v):
            return f"apis/{g}/{v}" if g else f"api/{v}"
        if path.rstrip("/") == "/openapi/v3":
            return self.send_json(200, {"paths": {gv_path(g, v): {"serverRelativeURL": "/openapi/v3/" + gv_path(g, v)}
                                                  for g, v in gvs}})
        want = path[len("/openapi/v3/"):].strip("/")
        gv = next(((g, v) for g, v in gvs if gv_path(g, v) == want), None)
        if gv is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        params = [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                  for n in ("dryRun", "fieldManager", "fieldValidation")]
        paths = {}
        for r in RESOURCES:
            if (r.group, r.version) != gv or r.plural in REVIEWS:
                continue
            gvk = {"group": r.group, "version": r.version, "kind": r.kind}
            base = "/" + gv_path(*gv) + ("/namespaces/{namespace}" if r.namespaced else "") + "/" + r.plural
            body = {"required": True, "content": {t: {"schema": {"type": "object"}} for t in
                                                  ("application/json-patch+json", "application/merge-patch+json",
                                                   "application/apply-patch+yaml")}}
            paths[base + "/{name}"] = {
                "patch": {"operationId": "patch" + r.kind, "parameters": params + [
                    {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}}],
                    "requestBody": body, "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
                "put": {"operationId": "replace" + r.kind, "parameters": params,
                        "responses": {"200": {"description": "OK"}},
                        "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk}}
            paths[base] = {"post": {"operationId": "create" + r.kind, "parameters": params,
                                    "responses": {"201": {"description": "Created"}},
                                    "x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk}}
        return self.send_json(200, {"openapi": "3.0.0", "info": {"title": "kube-standin", "version": gv[1]},
                                    "paths": paths, "components": {"schemas": {}}})

    # -------------------------------------------------- watch

    def watch(self, res, ns, query):
        store = self.standin.store
        lsel = parse_label_selector((query.get("labelSelector") or [""])[0])
        fsel = parse_field_selector((query.get("fieldSelector") or [""])[0], res)
        rv_text = (query.get("resourceVersion") or [""])[0]
        timeout = float((query.get("timeoutSeconds") or ["1800"])[0] or 1800)
        deadline = time.monotonic() + timeout
        bookmarks = (query.get("allowWatchBookmarks") or [""])[0] in ("1", "true", "True")

        def next_bookmark(now):
            # kube's cacheWatcher.nextBookmarkTime: a minute from now or 2 s
            # before the deadline, whichever is first; none once that is past
            t = min(now + 60, deadline - 2)
            return t if bookmarks and t >= now else None
        bookmark_at = next_bookmark(time.monotonic())

        def wanted(r, o):
            return r is res and o is not None and (ns is None or o["metadata"].get("namespace") == ns) \
                and lsel(o["metadata"].get("labels")) and fsel(o)

        def seen_as(etype, r, o, prev):
            """A change as this watch sees it, as kube's cacheWatcher does: an
            object that comes to match the selectors is ADDED, one that stops
            matching is DELETED (its previous state at the change's rv);
            None when the watch does not see it."""
            if etype == "DELETED":
                return ("DELETED", o) if wanted(r, prev if prev is not None else o) else None
            now, before = wanted(r, o), etype == "MODIFIED" and wanted(r, prev)
            if now:
                return ("MODIFIED" if before else "ADDED", o)
            if before:
                gone = copy.deepcopy(prev)
                gone["metadata"]["resourceVersion"] = o["metadata"]["resourceVersion"]
                return ("DELETED", gone)
            return None
        with store.lock:
            if rv_text in ("", "0"):
                initial = [("ADDED", copy.deepcopy(o)) for (r, _, _), o in sorted(store.objects.items(), key=lambda kv: (kv[0][1] or "", kv[0][2]))
                           if wanted(r, o)]
                since = store.rv
            else:
                try:
                    since = int(rv_text)
                except ValueError:
                    raise bad_request(f"invalid resourceVersion {rv_text!r}")
                initial = []
                if since < store.compacted:  # kube: a 200 stream with one ERROR event, then the end
                    gone = ApiError(410, "Expired", f"too old resource version: {since} ({store.compacted})")
                    initial = [("ERROR", gone.status())]
        as_table = self.wants_table()
        first = [True]
        self.send_response(200)
        self.send_header("Content-Type", "application/json;as=Table;v=v1;g=meta.k8s.io" if as_table
                         else "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.close_connection = True
        out = _WatchWriter(self.wfile, self.stream_fault)

        def emit(etype, o):
            """True when a drop fault cuts the stream here."""
            if as_table and etype not in ("ERROR", "BOOKMARK"):  # column definitions in the first event only, as kube does
                o = self.table([o], o["metadata"]["resourceVersion"], columns=first[0])
                first[0] = False
            return out.event(etype, o)
        try:
            for etype, o in initial:
                if emit(etype, o):
                    return self.cut_stream(out)
            out.flush()
            while not (initial and initial[0][0] == "ERROR"):
                with store.lock:
                    gone = self.standin.watch_cuts != self.watch_cuts  # outage(): the server went away
                if gone:
                    return self.cut_stream(out)
                with store.lock:
                    batch = [e for e in (seen_as(t, r, o, prev) for (rv, t, r, o, prev) in store.history
                                         if rv > since) if e]
                    if store.history:
                        since = max(since, store.history[-1][0])
                    now = time.monotonic()
                    if not batch and bookmark_at is not None and now >= bookmark_at:
                        batch = [("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version,
                                               "metadata": {"resourceVersion": str(store.rv),
                                                            "creationTimestamp": None}})]
                        bookmark_at = next_bookmark(now)
                    elif not batch:
                        left = deadline - now
                        if left <= 0 or store.closed:
                            break
                        store.lock.wait(min(left, 0.5, bookmark_at - now if bookmark_at else left))
                        continue
                for t, o in batch:
                    if emit(t, o):
                        return self.cut_stream(out)
                out.flush()
            out.end()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass

    def cut_stream(self, out):
        out.flush()
        self.drop()


class _WatchWriter:
    """A watch stream's events as HTTP chunks: one chunk an event, or under a
    "split" fault the bytes re-cut into chunks of its size, across event
    boundaries (what a proxy between client and server may do); under a
    "drop" fault with after=N, event() says when N events are out."""

    def __init__(self, wfile, fault):
        fault = fault or {}
        self.wfile = wfile
        self.cut = fault["size"] if fault.get("action") == "split" else 0
        self.drop_after = fault["after"] if fault.get("action") == "drop" else 0
        self.pending = bytearray()
        self.events = 0

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, etype, obj):
        """Writes one event; True when a drop fault cuts the stream after it."""
        data = json.dumps({"type": etype, "object": obj}).encode() + b"\n"
        if not self.cut:
            self.chunk(data)
        else:
            self.pending += data
            while len(self.pending) >= self.cut:
                self.chunk(bytes(self.pending[:self.cut]))
                del self.pending[:self.cut]
        self.events += 1
        return 0 < self.drop_after <= self.events

    def flush(self):
        """What a split holds back, written before the stream waits or ends."""
        if self.pending:
            self.chunk(bytes(self.pending))
            self.pending.clear()

    def end(self):
        self.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# ------------------------------------------------------------------ helpers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _openssl(*args):
    import subprocess
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_serving_certs(directory, *hosts):
    """DIR/ca.crt, ca.key, apiserver.crt, apiserver.key by deploy/gen-certs.sh
    (the stand-in serves with apiserver.crt; clients trust ca.crt)."""
    import subprocess
    subprocess.run(["bash", os.path.join(REPO, "deploy", "gen-certs.sh"), str(directory), *hosts],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    d = str(directory)
    return {"ca": os.path.join(d, "ca.crt"), "ca-key": os.path.join(d, "ca.key"),
            "cert": os.path.join(d, "apiserver.crt"), "key": os.path.join(d, "apiserver.key")}


def make_ca(directory, name):
    """DIR/NAME.crt + NAME.key: a CA (e.g. the requestheader or client CA), EC P-256."""
    d = str(directory)
    os.makedirs(d, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", os.path.join(d, name + ".key"), "-out", os.path.join(d, name + ".crt"),
             "-days", "2", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,digitalSignature")
    return os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")


def make_client_cert(directory, ca, name, cn, orgs=()):
    """DIR/NAME.crt + NAME.key: a client certificate with Subject CN=cn and
    O=each of orgs (kube reads CN as the user, O as groups), signed by the CA
    DIR/CA.crt (see make_ca); e.g. the front-proxy client certificate."""
    d = str(directory)
    subj = f"/CN={cn}" + "".join(f"/O={o}" for o in orgs)
    key, csr, crt = (os.path.join(d, name + x) for x in (".key", ".csr", ".crt"))
    ext = os.path.join(d, name + ".ext")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", subj)
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, ca + ".crt"), "-CAkey", os.path.join(d, ca + ".key"),
             "-set_serial", "0x" + uuid.uuid4().hex, "-days", "2", "-extfile", ext, "-out", crt)
    os.remove(csr)
    os.remove(ext)
    return crt, key


def write_kubeconfig(path, server_url, ca_file, token="kube-standin", client_cert=None,
                     client_key=None, namespace="default"):
    """A kubeconfig for kubectl and other clients to reach the stand-in. Some
    credential must be there, or kubectl prompts for a user name."""
    with open(ca_file, "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    user = {}
    if token:
        user["token"] = token
    if client_cert:
        with open(client_cert, "rb") as f:
            user["client-certificate-data"] = base64.b64encode(f.read()).decode()
        with open(client_key, "rb") as f:
            user["client-key-data"] = base64.b64encode(f.read()).decode()
    cfg = {"apiVersion": "v1", "kind": "Config", "preferences": {},
           "clusters": [{"name": "kube-standin", "cluster": {"server": server_url,
                                                           "certificate-authority-data": ca}}],
           "users": [{"name": "kube-standin-user", "user": user}],
           "contexts": [{"name": "kube-standin", "context": {"cluster": "kube-standin",
                                                           "user": "kube-standin-user",
                                                           "namespace": namespace}}],
           "current-context": "kube-standin"}
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return str(path)


def start_standin(directory, **kwargs):
    """Serving certificates in DIRECTORY (made when absent), a started
    stand-in, and DIRECTORY/kubeconfig for it. Returns (standin, paths): paths
    has ca, cert, key, kubeconfig. kwargs go to KubeStandin (client_ca, ...)."""
    paths = make_serving_certs(directory)
    st = KubeStandin(paths["cert"], paths["key"], **kwargs).start()
    paths["kubeconfig"] = write_kubeconfig(os.path.join(str(directory), "kubeconfig"), st.url, paths["ca"])
    return st, paths


def main(argv=None):
    ap = argparse.ArgumentParser(description="A stand-in for kube-apiserver, for tests.",
                                 epilog=CONTROL, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed on stdout)")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca", help="verify client certificates against this CA")
    ap.add_argument("--require-client-cert", action="store_true")
    ap.add_argument("--state-file", help="JSON or YAML: tokens, sarRules, authConfig, callerTokens, objects")
    ap.add_argument("--kubeconfig", help="write a kubeconfig for the stand-in here")
    ap.add_argument("--kubeconfig-ca", help="CA for that kubeconfig (default: --cert)")
    args = ap.parse_args(argv)
    st = KubeStandin(args.cert, args.key, args.client_ca, args.require_client_cert, args.host, args.port)
    if args.state_file:
        with open(args.state_file) as f:
            st.load_state(yaml.safe_load(f) or {})
    st.start()
    if args.kubeconfig:
        write_kubeconfig(args.kubeconfig, st.url, args.kubeconfig_ca or args.cert)
    print(f"kube-standin listening on {st.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        st.stop()


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
