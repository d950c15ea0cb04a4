#!/usr/bin/python3
"""Crash rounds: kill -9 the server under concurrent writers, restart it on
the same database, and prove that nothing it acknowledged is lost.

    /usr/bin/python3 tests/tools/crash_rounds.py --binary build/langop-apiserver [--rounds 20] [--seed S]
        [--server-flag=--storage-fsync]

Each round: 8 writers (threads, one HTTPS connection each) create, update
(GET + PUT), merge-patch, JSON-patch, server-side apply, delete and write the
status of a pool of LanguageModels, LanguageTools, LanguagePersonas and
LanguageAgents (the agents name the models, so model writes also rewrite
agents' derived status) for a random 0.5-3 s; then SIGKILL; then, with the
server down, PRAGMA integrity_check on the database opened read-only; then a
restart on the same database. After the restart:

  - a watch from the resourceVersion each kind was listed at before the round
    replays its history; the events a watch held open before the crash
    received are exactly its first events (same order, same objects), and a
    watch from the resourceVersion of one of those events gets exactly the
    replay's events after it;
  - every write answered 2xx is in that replay at the resourceVersion it was
    answered with, as the object it was answered with (a delete: the DELETED
    event of the uid it was answered with) -- else it counts as lost;
  - every other event of the replay is a write that was in flight when the
    server died (its answer lost; each may or may not have been committed,
    and its event carries the request's unique id) or a change of derived
    status only (metadata and spec as before); a write refused with 4xx left
    nothing behind;
  - the replay is strictly increasing in resourceVersion, and the list before
    the round with the replay applied is exactly what the server now lists
    (no gap, nothing extra);
  - resourceVersions never go back: the highest in the database and in the
    list after the restart are at least the highest acknowledged, and a new
    write gets a larger one than anything seen before the crash.

Prints one line per round and a total: acknowledged writes checked and lost
(lost must be 0). Exits 0 only when every round holds. The integration test
tests/integration/test_crash_rounds.py runs the same rounds (5 of them).
"""

import argparse
import http.client
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import harness  # noqa: E402
from harness import Server, collection_path, item_path, obj  # noqa: E402

NAMESPACE = "crash"
OP_KEY = "crash.langop.io/op"          # annotation: the id of the write that last set metadata/spec
PROBE = "Probe"                        # condition type the status writes set; message = the write's id
POOL = 4                               # objects per kind
WRITERS = 8
REQUEST_TIMEOUT = 10


class RoundFailure(AssertionError):
    pass


# ------------------------------------------------------------ the objects

def _spec(kind, value):
    """The spec a writer sends for kind, with value in its one mutable field
    (an agent also names one of the pool's models, picked by value: writes
    move what its derived status depends on)."""
    if kind == "LanguageModel":
        return {"provider": "openai", "modelName": f"gpt-{value}"}
    if kind == "LanguageTool":
        return {"image": f"ghcr.io/langop/web-tool:{value}"}
    if kind == "LanguagePersona":
        return {"tone": "friendly", "personality": f"p-{value}"}
    return {"image": "ghcr.io/langop/agent:v1", "instructions": f"i-{value}",
            "models": [{"name": f"languagemodel-{zlib.crc32(value.encode()) % POOL}"}]}


# the field of _spec that each write moves, as a JSON Pointer
MUTABLE = {"LanguageModel": "/spec/modelName", "LanguageTool": "/spec/image",
           "LanguagePersona": "/spec/personality", "LanguageAgent": "/spec/instructions"}
KINDS = list(MUTABLE)


def _object(kind, name, op_id):
    o = obj(kind, name, NAMESPACE, _spec(kind, op_id))
    o["metadata"]["annotations"] = {OP_KEY: op_id}
    return o


def pool_names(kind):
    return [f"{kind.lower()}-{i}" for i in range(POOL)]


# ---------------------------------------------------------------- writers

class Op:
    """One write a writer attempted. outcome: "ack" (2xx read in full),
    "refused" (any other answer), "unknown" (no answer: the server died),
    "unsent" (an update whose GET failed: no write went out)."""

    __slots__ = ("id", "verb", "kind", "name", "outcome", "status", "body", "rv", "uid", "matched")

    def __init__(self, op_id, verb, kind, name):
        self.id, self.verb, self.kind, self.name = op_id, verb, kind, name
        self.outcome = "unknown"
        self.status = self.body = self.rv = self.uid = None
        self.matched = False


# verb -> (weight, the codes it may get without anything being wrong)
VERBS = {
    "create": (2, {201, 409}),
    "update": (2, {200, 404, 409}),
    "merge": (2, {200, 404}),
    "json": (2, {200, 404}),
    "apply": (2, {200, 201}),
    "status": (2, {200, 404}),
    "delete": (1, {200, 404}),
}


class Writer(threading.Thread):
    def __init__(self, server, tag, rng, stop):
        super().__init__(daemon=True)
        self.server, self.tag, self.rng, self.stop_event = server, tag, rng, stop
        self.ops = []
        self.unexpected = []         # (op, response) answered with a code it should not get

    def run(self):
        try:
            conn = self.server.connection(REQUEST_TIMEOUT)
        except OSError:
            return
        i = 0
        verbs, weights = list(VERBS), [w for w, _ in VERBS.values()]
        while not self.stop_event.is_set():
            kind = self.rng.choice(KINDS)
            op = Op(f"{self.tag}-{i}", self.rng.choices(verbs, weights)[0], kind,
                    self.rng.choice(pool_names(kind)))
            i += 1
            try:
                r = self._send(conn, op)
            except (OSError, http.client.HTTPException, ValueError):
                if op.outcome != "unsent":
                    self.ops.append(op)      # unknown: the answer was lost
                return
            if r is None:
                continue
            op.status = r.status
            if 200 <= r.status < 300:
                op.outcome = "ack"
                op.body = r.json()
                if op.verb == "delete":
                    op.uid = op.body.get("details", {}).get("uid")
                else:
                    op.rv = int(op.body["metadata"]["resourceVersion"])
                    op.uid = op.body["metadata"]["uid"]
            else:
                op.outcome = "refused"
            if r.status not in VERBS[op.verb][1]:
                self.unexpected.append((op, r))
            self.ops.append(op)

    def _send(self, conn, op):
        req = self.server.request
        path = item_path(op.kind, op.name, NAMESPACE)
        value = op.id
        if op.verb == "create":
            return req("POST", collection_path(op.kind, NAMESPACE), _object(op.kind, op.name, value), conn=conn)
        if op.verb == "update":
            op.outcome = "unsent"
            cur = req("GET", path, conn=conn)
            if cur.status != 200:
                return None          # nothing to update; not a write
            o = cur.json()
            o["metadata"].setdefault("annotations", {})[OP_KEY] = value
            o["spec"] = _spec(op.kind, value)
            op.outcome = "unknown"
            return req("PUT", path, o, conn=conn)
        if op.verb == "merge":
            patch = {"metadata": {"annotations": {OP_KEY: value}}, "spec": _spec(op.kind, value)}
            return req("PATCH", path, patch, conn=conn,
                       headers={"Content-Type": "application/merge-patch+json"})
        if op.verb == "json":
            field = MUTABLE[op.kind]
            new = _spec(op.kind, value)[field.rsplit("/", 1)[1]]
            patch = [{"op": "add", "path": "/metadata/annotations/" + OP_KEY.replace("/", "~1"), "value": value},
                     {"op": "add", "path": field, "value": new}]
            return req("PATCH", path, patch, conn=conn,
                       headers={"Content-Type": "application/json-patch+json"})
        if op.verb == "apply":
            body = json.dumps(_object(op.kind, op.name, value))   # JSON is YAML
            return req("PATCH", f"{path}?fieldManager=crash-{self.tag.split('-')[-1]}&force=true", body,
                       conn=conn, headers={"Content-Type": "application/apply-patch+yaml"})
        if op.verb == "status":
            cond = {"type": PROBE, "status": "True", "reason": "CrashRound", "message": value,
                    "lastTransitionTime": "2024-01-01T00:00:00Z"}
            return req("PATCH", path + "/status", {"status": {"conditions": [cond]}}, conn=conn,
                       headers={"Content-Type": "application/merge-patch+json"})
        return req("DELETE", path, conn=conn)


# ---------------------------------------------------------------- watches

class EventReader:
    """A watch over HTTPS/1.1, read line by line. next() returns an event,
    or None when the stream ends (cleanly or not: a crash ends it mid-line,
    and a line cut short is not an event)."""

    def __init__(self, server, path, timeout):
        self.conn = server.connection(timeout)
        self.conn.request("GET", path, headers={"Accept": "application/json",
                                                "Authorization": f"Bearer {server.token}"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RoundFailure(f"watch {path}: HTTP {self.resp.status} {self.resp.read()[:300]!r}")

    def next(self):
        try:
            line = self.resp.readline()
        except (OSError, http.client.HTTPException):
            return None
        if not line.endswith(b"\n"):
            return None
        ev = json.loads(line)
        if ev.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
            raise RoundFailure(f"unexpected watch event {line[:300]!r}")
        return ev

    def close(self):
        self.conn.close()


class Recorder(threading.Thread):
    """Holds a watch open and records every event until the stream ends."""

    def __init__(self, reader):
        super().__init__(daemon=True)
        self.reader, self.events = reader, []

    def run(self):
        while (ev := self.reader.next()) is not None:
            self.events.append(ev)


def watch_path(kind, rv, timeout_s):
    return (collection_path(kind, NAMESPACE)
            + f"?watch=1&resourceVersion={rv}&timeoutSeconds={timeout_s}")


def list_kind(server, kind):
    r = server.request("GET", collection_path(kind, NAMESPACE), timeout=REQUEST_TIMEOUT)
    if r.status != 200:
        raise RoundFailure(f"list {kind}: {r}")
    body = r.json()
    return int(body["metadata"]["resourceVersion"]), {o["metadata"]["name"]: o for o in body["items"]}


# ----------------------------------------------------------------- checks

def read_replay(server, kind, rv, marker, problems):
    """The events a watch from rv gets before the ADDED of marker (created
    after the restart, so it bounds the replay)."""
    reader = EventReader(server, watch_path(kind, rv, 15), 20)
    events = []
    try:
        while True:
            ev = reader.next()
            if ev is None:
                problems.append(f"{kind}: the watch from rv {rv} ended before the write made after the restart")
                return events
            if ev["object"]["metadata"]["name"] == marker:
                return events
            events.append(ev)
    finally:
        reader.close()


def rv_of(o):
    return int(o["metadata"]["resourceVersion"])


def _bare(o):
    """o without what a change of derived status alone may change."""
    o = json.loads(json.dumps(o))
    o["metadata"].pop("resourceVersion", None)
    o.pop("status", None)
    return o


def _probe(o):
    for c in (o.get("status") or {}).get("conditions") or []:
        if c.get("type") == PROBE:
            return c.get("message")
    return None


def _op_of(o):
    return ((o.get("metadata") or {}).get("annotations") or {}).get(OP_KEY)


class Replay:
    """Classifies the replayed events of one kind against the writes."""

    def __init__(self, kind, state0, acks_by_rv, deletes_by_uid, unknown, problems):
        self.kind, self.state = kind, dict(state0)
        self.acks_by_rv, self.deletes_by_uid = acks_by_rv, deletes_by_uid
        self.unknown, self.problems = unknown, problems
        self.derived = self.in_flight = 0

    def _claim_unknown(self, ev, prev):
        o, name = ev["object"], ev["object"]["metadata"]["name"]
        for op in self.unknown:
            if op.matched or op.kind != self.kind or op.name != name:
                continue
            if ev["type"] == "DELETED":
                hit = op.verb == "delete"
            elif op.verb == "status":
                hit = _probe(o) == op.id and (prev is None or _probe(prev) != op.id)
            else:
                hit = op.verb != "delete" and _op_of(o) == op.id
            if hit:
                op.matched = True
                return True
        return False

    def apply(self, ev):
        o = ev["object"]
        name, rv = o["metadata"]["name"], rv_of(o)
        prev = self.state.get(name)
        ack = self.acks_by_rv.get(rv)
        dack = self.deletes_by_uid.get(o["metadata"].get("uid")) if ev["type"] == "DELETED" else None
        if ack is not None:
            if ack.kind != self.kind or ack.name != name:
                self.problems.append(f"{self.kind} {name} rv {rv}: the event is of another object than "
                                     f"the write acknowledged at that rv ({ack.kind} {ack.name})")
            elif ack.body != o:
                self.problems.append(f"{self.kind} {name} rv {rv}: replayed object differs from the "
                                     f"acknowledged one:\n  ack:   {json.dumps(ack.body)[:600]}\n"
                                     f"  event: {json.dumps(o)[:600]}")
            else:
                ack.matched = True
        elif dack is not None and not dack.matched:
            dack.matched = True
            dack.rv = rv
        elif self._claim_unknown(ev, prev):
            self.in_flight += 1
        elif ev["type"] == "MODIFIED" and prev is not None and _bare(prev) == _bare(o):
            self.derived += 1
        else:
            self.problems.append(f"{self.kind} {name} rv {rv}: {ev['type']} event that no write "
                                 f"explains: {json.dumps(o)[:600]}")
        if ev["type"] == "DELETED":
            if prev is None:
                self.problems.append(f"{self.kind} {name} rv {rv}: DELETED of an object not there")
            self.state.pop(name, None)
        else:
            if (ev["type"] == "ADDED") != (prev is None):
                self.problems.append(f"{self.kind} {name} rv {rv}: {ev['type']} but the object "
                                     f"{'was' if prev is not None else 'was not'} there")
            self.state[name] = o


def check_prefix(kind, before, replay, problems):
    """The events a watch got before the crash are the replay's first ones."""
    n = len(before)
    if replay[:n] == before:
        return True
    i = next((i for i, (a, b) in enumerate(zip(before, replay)) if a != b), min(n, len(replay)))

    def show(evs):
        if i >= len(evs):
            return "nothing"
        md = evs[i]["object"]["metadata"]
        return f"{evs[i]['type']} {md['name']} rv {md['resourceVersion']}"

    problems.append(f"{kind}: event #{i + 1} of the replay is {show(replay)}, the watch held before "
                    f"the crash got {show(before)} ({n} events before, {len(replay)} replayed)")
    return False


def check_increasing(kind, events, problems):
    rvs = [rv_of(e["object"]) for e in events]
    for a, b in zip(rvs, rvs[1:]):
        if b <= a:
            problems.append(f"{kind}: replay goes from rv {a} to rv {b}")
            return


def check_db(path, problems):
    """integrity_check and the highest stored resourceVersion, while the
    server is down (read-only: this check must not change what it checks)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        res = [r[0] for r in db.execute("PRAGMA integrity_check")]
        if res != ["ok"]:
            problems.append(f"PRAGMA integrity_check: {res[:10]}")
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return res == ["ok"], (row[0] if row else 0)
    finally:
        db.close()


# ----------------------------------------------------------------- rounds

class Totals:
    def __init__(self):
        self.rounds = self.checked = self.lost = self.in_flight = self.committed_in_flight = 0
        self.events = self.derived = 0
        self.write_seconds = 0.0
        self.verbs = Counter()
        self.problems = []

    def line(self):
        verbs = ", ".join(f"{v} {self.verbs[v]}" for v in VERBS)
        return (f"crash rounds: {self.rounds} rounds, {self.write_seconds:.1f} s of writes; "
                f"{self.checked} acknowledged writes checked ({verbs}), {self.lost} lost; "
                f"{self.in_flight} in flight at a kill, {self.committed_in_flight} of them committed; "
                f"{self.events} events replayed ({self.derived} derived status); "
                f"{len(self.problems)} problems")


def setup(server):
    """The namespace's LanguageCluster and the pool of objects."""
    r = server.request("POST", collection_path("LanguageCluster"),
                       obj("LanguageCluster", NAMESPACE, spec={"domain": "crash.example.com"}))
    if r.status not in (201, 409):
        raise RoundFailure(f"creating the LanguageCluster: {r}")
    for kind in KINDS:
        for name in pool_names(kind):
            r = server.request("POST", collection_path(kind, NAMESPACE), _object(kind, name, "setup-0"))
            if r.status not in (201, 409):
                raise RoundFailure(f"creating {kind} {name}: {r}")


def run_round(server, rnd, rng, totals, out):
    problems = []
    lists0 = {k: list_kind(server, k) for k in KINDS}
    recorders = {k: Recorder(EventReader(server, watch_path(k, lists0[k][0], 120), 30)) for k in KINDS}
    for rec in recorders.values():
        rec.start()
    stop = threading.Event()
    writers = [Writer(server, f"r{rnd}-w{t}", random.Random(rng.random()), stop) for t in range(WRITERS)]
    duration = rng.uniform(0.5, 3.0)
    t0 = time.monotonic()
    for w in writers:
        w.start()
    time.sleep(max(0.0, duration - (time.monotonic() - t0)))
    server.kill9()
    stop.set()
    for w in writers:
        w.join(REQUEST_TIMEOUT + 5)
    for rec in recorders.values():
        rec.join(10)
        rec.reader.close()
    ops = [op for w in writers for op in w.ops]
    for w in writers:
        for op, r in w.unexpected:
            problems.append(f"{op.verb} {op.kind} {op.name} ({op.id}) answered {r}")
    acks = [op for op in ops if op.outcome == "ack"]
    unknown = [op for op in ops if op.outcome == "unknown"]
    refused = Counter(op.status for op in ops if op.outcome == "refused")

    integrity, stored_rv = check_db(server.db, problems)
    server.start()

    acked_rvs = [op.rv for op in acks if op.rv is not None]
    max_acked = max(acked_rvs, default=0)
    seen_rvs = [rv_of(e["object"]) for rec in recorders.values() for e in rec.events]
    if stored_rv < max_acked:
        problems.append(f"the database's highest rv {stored_rv} is below the highest acknowledged {max_acked}")

    lists1 = {k: list_kind(server, k) for k in KINDS}
    list_rv = max(rv for rv, _ in lists1.values())
    if list_rv < max(max_acked, stored_rv, *seen_rvs, 0):
        problems.append(f"after the restart the list is at rv {list_rv}, below what was acknowledged "
                        f"({max_acked}), stored ({stored_rv}) or watched ({max(seen_rvs, default=0)})")
    markers = {}
    for k in KINDS:
        r = server.request("POST", collection_path(k, NAMESPACE), _object(k, f"marker-{rnd}", f"marker-{rnd}"))
        if r.status != 201:
            raise RoundFailure(f"the write after restart {rnd}: {r}")
        markers[k] = rv_of(r.json())
    if min(markers.values()) <= max(max_acked, stored_rv, *seen_rvs, 0):
        problems.append(f"a write after the restart got rv {min(markers.values())}, not above "
                        f"{max(max_acked, stored_rv, *seen_rvs, 0)} from before the crash")

    acks_by_rv = {op.rv: op for op in acks if op.rv is not None}
    deletes_by_uid = {op.uid: op for op in acks if op.verb == "delete"}
    replayed = derived = in_flight = 0
    prefix_ok = True
    resumed = 0
    for k in KINDS:
        events = read_replay(server, k, lists0[k][0], f"marker-{rnd}", problems)
        # a watch resumed from a resourceVersion in the middle of the round gets the rest of the same history
        if recorders[k].events:
            mid = rv_of(rng.choice(recorders[k].events)["object"])
            rest = read_replay(server, k, mid, f"marker-{rnd}", problems)
            resumed += len(rest)
            if rest != [e for e in events if rv_of(e["object"]) > mid]:
                problems.append(f"{k}: the watch from rv {mid} is not the replay's events after {mid}")
        replayed += len(events)
        check_increasing(k, events, problems)
        prefix_ok &= check_prefix(k, recorders[k].events, events, problems)
        rep = Replay(k, lists0[k][1], acks_by_rv, deletes_by_uid, unknown, problems)
        for ev in events:
            if rv_of(ev["object"]) <= lists1[k][0]:
                rep.apply(ev)
        if rep.state != lists1[k][1]:
            diff = sorted(n for n in set(rep.state) | set(lists1[k][1])
                          if rep.state.get(n) != lists1[k][1].get(n))
            problems.append(f"{k}: the list after the restart is not the list before the round with the "
                            f"replay applied; they differ in {diff}")
        derived += rep.derived
        in_flight += rep.in_flight

    lost = [op for op in acks if not op.matched]
    for op in lost[:20]:
        problems.append(f"lost: {op.verb} {op.kind} {op.name} ({op.id}) answered {op.status} "
                        f"at rv {op.rv} uid {op.uid}")
    verbs = Counter(op.verb for op in acks)
    out(f"round {rnd}: {duration:.2f} s of writes by {WRITERS} writers: {len(ops)} sent, "
        f"{len(acks)} acknowledged ({', '.join(f'{v} {verbs[v]}' for v in VERBS)}), "
        f"{sum(refused.values())} refused ({', '.join(f'{c}: {n}' for c, n in sorted(refused.items()))}), "
        f"{len(unknown)} in flight at the kill ({in_flight} committed); "
        f"watch: {sum(len(r.events) for r in recorders.values())} events before the kill, "
        f"{replayed} replayed ({derived} derived status){'' if prefix_ok else ', NOT'} beginning with them, "
        f"{resumed} to watches resumed mid-round; "
        f"{len(acks)} acknowledged writes checked, {len(lost)} lost; "
        f"integrity_check {'ok' if integrity else 'FAILED'}; rv: highest acknowledged {max_acked}, "
        f"stored {stored_rv}, listed after restart {list_rv}, next write {min(markers.values())}"
        + (f"; {len(problems)} PROBLEMS" if problems else ""))
    for p in problems:
        out(f"  problem: {p}")
    totals.rounds += 1
    totals.checked += len(acks)
    totals.lost += len(lost)
    totals.in_flight += len(unknown)
    totals.committed_in_flight += in_flight
    totals.events += replayed
    totals.derived += derived
    totals.write_seconds += duration
    totals.verbs.update(verbs)
    totals.problems += [f"round {rnd}: {p}" for p in problems]


def run_rounds(server, rounds, seed, out=print):
    """server: a started harness.Server. Returns the Totals."""
    rng = random.Random(seed)
    setup(server)
    totals = Totals()
    for rnd in range(1, rounds + 1):
        run_round(server, rnd, rng, totals, out)
    out(totals.line())
    return totals


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--server-flag", action="append", default=[], metavar="FLAG",
                    help="an extra flag for the server, e.g. --server-flag=--storage-fsync (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the state directory (database, log)")
    args = ap.parse_args()
    harness.BINARY = str(Path(args.binary).resolve())
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"crash rounds: binary {' '.join([harness.BINARY, *args.server_flag])}, {args.rounds} rounds, "
          f"seed {seed}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="langop-crash-"))
    server = Server(tmp, args.server_flag)
    try:
        server.start()
        totals = run_rounds(server, args.rounds, seed, out=lambda s: print(s, flush=True))
    finally:
        server.stop()
        if args.keep:
            print(f"state kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if totals.lost == 0 and not totals.problems and totals.checked > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
