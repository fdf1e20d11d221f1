#!/usr/bin/env python3
"""Small helpers for benchmarks/run.sh (stdlib, except `createdb`/`dropdb`, which need psycopg).

  helpers.py free-port                      a free TCP port on 127.0.0.1
  helpers.py wait URL PID [SECONDS]         until GET URL/v2/ answers 200/401 (fails if PID dies)
  helpers.py rss PID OUT [INTERVAL_S]       sample the RSS of PID and all its descendants until
                                            SIGTERM; write {"peak_rss_mib", ...} as JSON to OUT
  helpers.py create-org URL USER:PASS NAME  create organisation NAME through /api/v0 (a push needs an
                                            account's namespace); an existing one is fine
  helpers.py createdb URL                   print a database URL to use: URL itself (created if
                                            missing), or a fresh dockyard_bench_<hex> when URL
                                            names no database; a second line says "created" or "existing"
  helpers.py dropdb URL                     drop that database (WITH FORCE)
  helpers.py summary OUTDIR                 medians, min..max and Dockyard/Distribution ratios
                                            of OUTDIR/{dockyard,distribution}.jsonl (+ rss*.json);
                                            prints a table, writes OUTDIR/summary.json
"""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True


def free_port() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def wait(url: str, pid: str, seconds: str = "60") -> None:
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            sys.exit(f"helpers.py wait: process {pid} exited before {url} answered")
        try:
            urllib.request.urlopen(url.rstrip("/") + "/v2/", timeout=1)
            return
        except urllib.error.HTTPError as e:
            if e.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"helpers.py wait: {url} did not answer within {seconds} s")


# ---- memory ---------------------------------------------------------------------------------

def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree(root: int) -> list[int]:
    kids, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def cpu_seconds(pids: list[int], main_thread: bool = False) -> float:
    """User + system CPU seconds the processes `pids` have used so far (with `main_thread`, their
    main threads alone: a worker's event loop); a process that is gone counts 0."""
    total = 0
    for pid in pids:
        path = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
        try:
            with open(path) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def _rss_hwm_kib(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                    break  # VmRSS follows VmHWM
    except OSError:
        pass
    return rss, hwm


def rss(pid: str, out: str, interval: str = "0.01") -> None:
    """Sum of VmRSS over the process tree, sampled every `interval` s; the peak of that sum, the
    sum of per-process VmHWM (kernel-tracked peaks since the start of sampling, reset through
    /proc/PID/clear_refs: an upper bound that no short spike escapes), and the idle RSS at start."""
    root, step = int(pid), float(interval)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    pids = _tree(root)
    for p in pids:  # reset each process's VmHWM (peak RSS) to its current RSS: peaks from now on
        try:
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
    start = sum(_rss_hwm_kib(p)[0] for p in pids)
    peak, samples, hwm, last_tree = start, 0, {}, 0.0
    while not stop:
        now = time.monotonic()
        if now - last_tree > 0.5:  # workers may be respawned; re-walk the tree twice a second
            pids, last_tree = _tree(root), now
        total = 0
        for p in pids:
            rss_kib, hwm_kib = _rss_hwm_kib(p)
            total += rss_kib
            hwm[p] = max(hwm.get(p, 0), hwm_kib)
        peak, samples = max(peak, total), samples + 1
        time.sleep(step)
    doc = {"peak_rss_mib": round(peak / 1024, 1), "idle_rss_mib": round(start / 1024, 1),
           "sum_vmhwm_mib": round(sum(hwm.values()) / 1024, 1), "processes": len(pids), "samples": samples}
    with open(out, "w") as f:
        json.dump(doc, f)


# ---- Dockyard ------------------------------------------------------------------------------------

def create_org(url: str, credentials: str, name: str) -> None:
    body = json.dumps({"type": "organization", "name": name}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/api/v0/accounts", data=body, method="POST", headers={
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()})
    try:
        urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as e:
        if e.code != 409:  # 409: it exists already
            sys.exit(f"helpers.py create-org: {e.code} {e.read().decode(errors='replace')}")


# ---- PostgreSQL -----------------------------------------------------------------------------

def _split(url: str) -> tuple[str, str]:
    u = urllib.parse.urlsplit(url)
    return u.path.lstrip("/"), urllib.parse.urlunsplit(u._replace(path="/postgres"))


def createdb(url: str) -> None:
    import psycopg

    name, admin = _split(url)
    state = "existing"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not name:
            name = "dockyard_bench_" + os.urandom(5).hex()
            url = url.rstrip("/") + "/" + name
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
            state = "created"
    print(url)
    print(state)


def dropdb(url: str) -> None:
    import psycopg

    name, admin = _split(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- summary --------------------------------------------------------------------------------

HEADLINES = [  # (workload, figure, label, higher is better)
    ("push_large", "MB_per_s", "blob push {large} (MB/s)", True),
    ("pull_large", "MB_per_s", "blob pull {large} (MB/s)", True),
    ("push_small", "images_per_s", "small-image pushes (images/s)", True),
    ("pull_manifest", "req_per_s", "manifest GET (req/s)", True),
    ("pull_manifest", "p50_ms", "manifest GET p50 (ms)", False),
    ("pull_manifest", "p99_ms", "manifest GET p99 (ms)", False),
    ("tags_list", "lists_per_s", "tags/list (lists/s)", True),
    ("catalog", "repos_per_s", "catalog (repos/s)", True),
]


def _load(path: str) -> tuple[dict[tuple[str, str], list[float]], dict[str, int]]:
    runs: dict[tuple[str, str], list[float]] = {}
    sizes: dict[str, int] = {}
    if not os.path.exists(path):
        return runs, sizes
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            if not d.get("ok"):
                continue
            for k, v in d["figures"].items():
                runs.setdefault((d["workload"], k), []).append(v)
            if d["workload"] == "push_large":
                sizes["large"] = d["info"]["bytes"]
    return runs, sizes


def _num(x: float) -> str:
    return "-" if x != x else (f"{x:.4g}" if abs(x) < 1e4 else f"{x:.0f}")


def summary(outdir: str) -> None:
    dy, sizes = _load(os.path.join(outdir, "dockyard.jsonl"))
    di, _ = _load(os.path.join(outdir, "distribution.jsonl"))
    large = f"{round(sizes.get('large', 0) / 2**20)} MiB"
    rows, doc = [], {"figures": {}, "rss": {}}
    for workload, figure, label, higher in HEADLINES:
        a, b = dy.get((workload, figure), []), di.get((workload, figure), [])
        if not a and not b:
            continue
        ma = statistics.median(a) if a else float("nan")
        mb = statistics.median(b) if b else float("nan")
        ratio = ma / mb if a and b and mb else float("nan")
        label = label.format(large=large)
        rows.append((label, ma, a, mb, b, ratio, "higher" if higher else "lower"))
        doc["figures"][f"{workload}.{figure}"] = {
            "label": label, "dockyard_median": ma, "dockyard_runs": a,
            "distribution_median": mb, "distribution_runs": b, "ratio": ratio,
            "better": "higher" if higher else "lower"}
    rounds = max((len(r[2]) for r in rows), default=0)

    def span(v: list[float]) -> str:
        return f"{_num(min(v))}..{_num(max(v))}" if v else "-"

    print(f"{'figure':<32} {'Dockyard':>9} {'(min..max)':>17} {'Distrib.':>9} {'(min..max)':>17} "
          f"{'Dy/Di':>6}  better")
    for label, ma, a, mb, b, ratio, better in rows:
        print(f"{label:<32} {_num(ma):>9} {span(a):>17} {_num(mb):>9} {span(b):>17} "
              f"{ratio:>6.2f}  {better}")
    print(f"(medians of {rounds} interleaved rounds; MB = 10^6 bytes; "
          "p50/p99 ratios: lower is better for Dockyard)")
    for side in ("dockyard", "distribution"):
        path = os.path.join(outdir, f"rss-{side}.json")
        if os.path.exists(path):
            with open(path) as f:
                r = json.load(f)
            push, psizes = _load(os.path.join(outdir, f"rss-{side}.bench.jsonl"))
            if push.get(("push_large", "MB_per_s")):
                r["MB_per_s"] = push[("push_large", "MB_per_s")][0]
                r["blob_mib"] = round(psizes["large"] / 2**20)
            doc["rss"][side] = r
            print(f"peak RSS during the {r.get('blob_mib', '?')} MiB blob push, {side}: "
                  f"{r['peak_rss_mib']} MiB summed over {r['processes']} process(es) "
                  f"(idle {r['idle_rss_mib']} MiB; sum of per-process VmHWM {r['sum_vmhwm_mib']} MiB; "
                  f"push {r.get('MB_per_s', '?')} MB/s)")
    floor = [doc["figures"].get(k, {}).get("ratio", float("nan"))
             for k in ("push_large.MB_per_s", "pull_large.MB_per_s")]
    if all(x == x for x in floor):
        ok = all(x >= 0.8 for x in floor)
        print(f"floor (push and pull >= 0.8x Distribution): {'met' if ok else 'NOT met'} "
              f"(push {floor[0]:.2f}x, pull {floor[1]:.2f}x)")
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(doc, f, indent=1)


def main() -> None:
    commands = {"free-port": free_port, "wait": wait, "rss": rss, "createdb": createdb, "create-org": create_org,
                "dropdb": dropdb, "summary": summary}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
