"""Large-blob push and pull, a BEFORE revision against this checkout (AFTER), interleaved.

    .venv/bin/python benchmarks/blob_ab.py BEFORE_REV [--after REV] [--rounds N] [--mib N] [--pulls N]
                                           [--database-url URL] [--workers N]

Exports BEFORE_REV (and --after REV, else AFTER is this working tree) into temp dirs (run with
this checkout's .venv and PYTHONPATH there), starts
a fresh `dockyard serve` of each (token auth, own data dir; SQLite unless --database-url, which
must name no database: each side gets a fresh one, dropped at the end), then N rounds, the order
alternating (B A, A B, ...), of: one blob of --mib MiB pushed as bench.py's push_large does
(POST, one streamed PATCH with Content-Length, PUT ?digest=), then --pulls GETs of it into a
buffer (sha256 checked after the clock). Each phase is timed, with the server's CPU seconds
(all its workers, and the event-loop threads alone) from /proc. Prints per side the medians
(min..max) and the AFTER/BEFORE ratios, with the 1-minute load average before each round.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH_DIR = os.environ.get("BENCH_DIR", "/work/shared/bench")
sys.path.insert(0, BENCH_DIR)
import bench  # noqa: E402 - the shared harness's HTTP client (token flow, keep-alive)

sys.path.insert(0, HERE)
from helpers import cpu_seconds  # noqa: E402 - this folder's helpers.py (run as a script below too)

PASSWORD = "blob-ab-" + os.urandom(6).hex()


def helpers(*args: str) -> str:
    return subprocess.run([sys.executable, os.path.join(HERE, "helpers.py"), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


class Side:
    def __init__(self, name: str, pythonpath: str, database_url: str, workers: int) -> None:
        self.name, self.data = name, tempfile.mkdtemp(prefix=f"dockyard-blob-ab-{name}-")
        self.db = helpers("createdb", database_url).splitlines()[0] if database_url else ""
        port = helpers("free-port")
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "dockyard", "serve", "--data-dir", self.data, "--listen", f"127.0.0.1:{port}",
               "--workers", str(workers)] + (["--database-url", self.db] if self.db else [])
        env = {**os.environ, "PYTHONPATH": pythonpath, "DOCKYARD_ADMIN_PASSWORD": PASSWORD,
               "DOCKYARD_LOG_LEVEL": "warning"}
        self.log = open(os.path.join(self.data, "server.log"), "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        helpers("wait", self.url, str(self.proc.pid), "60")
        helpers("create-org", self.url, f"admin:{PASSWORD}", "bench")
        self.registry = bench.Registry(self.url, f"admin:{PASSWORD}")

    def workers(self) -> list[int]:
        # Workers are `python -m dockyard.worker` processes since a1ec1ef, multiprocessing spawns
        # before it (a BEFORE revision may be either); the resource tracker of the latter is not one.
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid), "-f", "dockyard[.]worker|spawn_main"],
                             capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def cpu(self) -> tuple[float, float]:
        """(CPU seconds of all workers, of their main (event-loop) threads)."""
        workers = self.workers()
        return cpu_seconds(workers), cpu_seconds(workers, main_thread=True)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        if self.db:
            helpers("dropdb", self.db)
        shutil.rmtree(self.data, ignore_errors=True)


def one_round(side: Side, data: bytes, digest: str, pulls: int, view: memoryview) -> dict[str, float]:
    reg, repo, size = side.registry, f"bench/ab{os.getpid()}", len(data)
    reg.request("HEAD", f"/v2/{repo}/blobs/{digest}", expect=(200, 404))  # the token, outside the clock
    out: dict[str, float] = {"load": float(open("/proc/loadavg").read().split()[0])}
    t0 = time.perf_counter()
    r, _ = reg.request("POST", f"/v2/{repo}/blobs/uploads/", expect=(202,))
    t1, c1 = time.perf_counter(), side.cpu()
    r, _ = reg.request("PATCH", reg.location(r), body=data, expect=(202,), headers={
        "Content-Type": "application/octet-stream", "Content-Range": f"0-{size - 1}"})
    t2, c2 = time.perf_counter(), side.cpu()
    reg.request("PUT", bench.with_query(reg.location(r), digest=digest), body=b"", expect=(201,))
    t3 = time.perf_counter()
    out.update(push_MBps=size / (t3 - t0) / 1e6, patch_MBps=size / (t2 - t1) / 1e6, put_ms=(t3 - t2) * 1e3,
               patch_cpu_s=c2[0] - c1[0], patch_loop_cpu_s=c2[1] - c1[1])
    pull, cpu = [], []
    for _ in range(pulls):
        c4, t4 = side.cpu(), time.perf_counter()
        answer = reg.get_stream(f"/v2/{repo}/blobs/{digest}")
        n = 0
        while k := answer.readinto(view[n:n + (1 << 20)]):
            n += k
        t5, c5 = time.perf_counter(), side.cpu()
        bench.check(n == size and "sha256:" + hashlib.sha256(view[:n]).hexdigest() == digest, "pull: wrong bytes")
        pull.append(size / (t5 - t4) / 1e6)
        cpu.append(c5[0] - c4[0])
    if pulls:
        out.update(pull_MBps=statistics.median(pull), pull_cpu_s=statistics.median(cpu))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("--after", default="")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--pulls", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default="")
    a = parser.parse_args()
    base = tempfile.mkdtemp(prefix="dockyard-blob-ab-")
    for name, rev in (("before", a.before), ("after", a.after)):
        if rev:
            os.makedirs(os.path.join(base, name, "dockyard"))
            archive = subprocess.run(["git", "-C", ROOT, "archive", rev], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", os.path.join(base, name, "dockyard")], input=archive, check=True)
    sides: dict[str, Side] = {}
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    try:
        sides["before"] = Side("before", os.path.join(base, "before"), a.database_url, a.workers)
        sides["after"] = Side("after", os.path.join(base, "after") if a.after else "", a.database_url, a.workers)
        size = a.mib << 20
        blob = bytearray(os.urandom(size))
        view = memoryview(bytearray(b"\1") * size)
        print(f"before {a.before}, after {a.after or 'this checkout'}; {a.rounds} rounds, {a.mib} MiB, "
              f"{a.pulls} pulls, "
              f"workers {a.workers}, {a.database_url or 'SQLite'}", file=sys.stderr)
        for r in range(a.rounds):
            blob[:16] = os.urandom(16)  # a new blob each round, the same for both sides
            data = bytes(blob)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            for name in (("before", "after") if r % 2 == 0 else ("after", "before")):
                res = one_round(sides[name], data, digest, a.pulls, view)
                results[name].append(res)
                print(json.dumps({"round": r + 1, "side": name, **{k: round(v, 3) for k, v in res.items()}}),
                      file=sys.stderr, flush=True)
            del data
    finally:
        for side in sides.values():
            side.stop()
        shutil.rmtree(base, ignore_errors=True)
    keys = [k for k in results["before"][0] if k != "load"]
    print(f"{'figure':18} {'before median (min..max)':>26} {'after median (min..max)':>26} {'after/before':>12}")
    for k in keys:
        b, af = [x[k] for x in results["before"]], [x[k] for x in results["after"]]

        def span(v: list[float]) -> str:
            return f"{statistics.median(v):.3g} ({min(v):.3g}..{max(v):.3g})"

        print(f"{k:18} {span(b):>26} {span(af):>26} {statistics.median(af) / statistics.median(b):>12.2f}")
    loads = [x["load"] for side in results.values() for x in side]
    print(f"load (1 min) before each pass: {min(loads):.2f}..{max(loads):.2f}")


if __name__ == "__main__":
    main()
