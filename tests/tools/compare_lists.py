#!/usr/bin/python3
"""Compare the LIST answers of two builds of the server on the same store.

    /usr/bin/python3 tests/tools/compare_lists.py --old OLD_BINARY --new NEW_BINARY [--objects N]

Fills a store through OLD_BINARY (N small LanguagePersonas in two
namespaces, some labelled, 40 personas of 20 kB, a few models and the
LanguageClusters), stops it, then serves a copy of that database with each
binary at once and sends both the same lists: JSON, YAML and Table (each
includeObject), every namespace and one, label and field selectors, limits
below, at and above a page, a continue token, resourceVersion=0 and an exact
resourceVersion, a cluster-scoped kind, HTTP/1.1 and HTTP/2 (curl), and HEAD.
Status, Content-Type and body must be the same, byte for byte. A Table's Age
cells depend on the second it was rendered in: a Table that differs is asked
for again (up to three times) before it counts as a difference.

Prints one line per request and, last, "N same, N different"; exits 1 on a
difference. Not part of tests/run.sh (it needs a second binary): run it when
the encoding of lists changes, with the previous build as OLD_BINARY.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import harness  # noqa: E402
from harness import API, Server, collection_path, obj, persona  # noqa: E402

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def start(binary, workdir, db=None):
    harness.BINARY = binary
    s = Server(workdir)
    if db is not None:
        shutil.copy(db, s.db)
    s.start()
    return s


def fill(s, n):
    for ns in ("alpha", "beta"):
        r = s.request("POST", collection_path("LanguageCluster"), obj("LanguageCluster", ns, spec={"domain": f"{ns}.x"}))
        assert r.status == 201, r

    def create_range(start):
        conn = s.connection(timeout=60)
        for i in range(start, n, 8):
            ns = "alpha" if i % 4 else "beta"
            labels = {"tier": "gold"} if i % 3 == 0 else None
            p = persona(f"p{i:05d}", ns, labels=labels) if labels else persona(f"p{i:05d}", ns)
            r = s.request("POST", collection_path("LanguagePersona", ns), p, conn=conn)
            assert r.status == 201, r
        conn.close()

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(create_range, range(8)))
    for i in range(40):
        p = persona(f"big{i:02d}", "alpha")
        p["spec"]["personality"] = "y" * 20000
        assert s.request("POST", collection_path("LanguagePersona", "alpha"), p).status == 201
    for i in range(5):
        m = obj("LanguageModel", f"m{i}", "alpha", {"provider": "openai", "modelName": f"gpt-{i}"})
        assert s.request("POST", collection_path("LanguageModel", "alpha"), m).status == 201


def ask(s, method, path, accept, http2):
    if not http2:
        r = s.request(method, path, headers={"Accept": accept}, timeout=120)
        return r.status, r.headers.get("content-type"), r.body
    how = ["--head"] if method == "HEAD" else ["-X", method, "-D", "-"]
    out = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(s.ca), "-H", f"Authorization: Bearer {s.token}",
                          "-H", f"Accept: {accept}", *how, s.url + path],
                         capture_output=True, timeout=120, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    return int(lines[0].split()[1]), hdrs.get("content-type"), body


def requests(old, n):
    pers, pers_alpha = f"{API}/languagepersonas", collection_path("LanguagePersona", "alpha")
    first = old.request("GET", pers_alpha + "?limit=600").json()
    rv = first["metadata"]["resourceVersion"]
    token = first["metadata"]["continue"]
    out = []
    for accept in ("application/json", "application/yaml", TABLE):
        for path in (pers, pers_alpha, pers_alpha + "?labelSelector=tier%3Dgold",
                     pers + "?fieldSelector=metadata.namespace%3Dbeta", pers_alpha + "?limit=1",
                     pers_alpha + "?limit=30", pers_alpha + "?limit=500", pers_alpha + "?limit=501",
                     pers + f"?limit={n // 2}", pers_alpha + "?limit=700&labelSelector=tier%3Dgold",
                     pers_alpha + f"?limit=600&continue={token}", pers + "?resourceVersion=0",
                     pers + f"?resourceVersion={rv}&resourceVersionMatch=Exact",
                     f"{API}/languageclusters", collection_path("LanguageModel", "alpha")):
            out.append(("GET", path, accept, False))
    for include in ("Object", "None"):
        out.append(("GET", pers_alpha + f"?includeObject={include}", TABLE, False))
    out += [("GET", pers, "application/json", True), ("GET", pers_alpha + "?limit=700", TABLE, True),
            ("HEAD", pers, "application/json", False), ("HEAD", pers, "application/json", True)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--objects", type=int, default=3000)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="compare-lists-"))
    try:
        filler = start(a.old, tmp / "fill")
        try:
            fill(filler, a.objects)
        finally:
            filler.stop()
        db = tmp / "fill" / "langop.db"
        old = start(a.old, tmp / "old", db)
        new = start(a.new, tmp / "new", db)
        same = different = 0
        try:
            with ThreadPoolExecutor(2) as ex:
                for method, path, accept, http2 in requests(old, a.objects):
                    for attempt in range(3):
                        fo = ex.submit(ask, old, method, path, accept, http2)
                        fn = ex.submit(ask, new, method, path, accept, http2)
                        ro, rn = fo.result(), fn.result()
                        if ro == rn or accept != TABLE:
                            break
                        time.sleep(0.3)
                    ok = ro == rn
                    same += ok
                    different += not ok
                    print(f"{'same' if ok else 'DIFFERENT'} {method} {path} [{accept}]{' h2' if http2 else ''}: "
                          f"{ro[0]} {len(ro[2])} bytes" + ("" if ok else f" / new {rn[0]} {rn[1]} {len(rn[2])} bytes"))
        finally:
            old.stop()
            new.stop()
        print(f"{same} same, {different} different")
        return 1 if different else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
