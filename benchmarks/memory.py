"""The RSS of `dockyard serve`'s process tree, idle and during one large blob push (issue 14).

    benchmarks/memory.py [--workers N] [--database-url URL] [--mib N] [--warm-mib N]
                         [--warm-bench] [--bench] [--json]

Starts a fresh `dockyard serve --workers N` (own temp data dir; with --database-url, a fresh
`dockyard_bench_<hex>` database dropped at the end). Warm-up: with --warm-bench one round of
bench.py's workloads (as run.sh's rounds before its RSS step), then one --warm-mib blob (default
64) pushed and pulled twice. Then it prints each process's VmRSS (idle) and pushes one --mib blob
(default 2048) while `helpers.py rss` samples the tree as run.sh's RSS step does (VmRSS summed
over the tree every 10 ms; the sum of per-process VmHWM as an upper bound); each process's own
peak (VmHWM since the sampler reset it) and its RssAnon/RssFile at its highest sample are read
too. The push: with --bench, bench.py's push_large, exactly as run.sh (a new client: its token
request signs in, which runs argon2 once the 30 s remembered sign-in has expired); else this
script's client on the token it already holds, streaming a repeated 1 MiB block in one PATCH.
MEMORY_SMAPS=1 prints the mappings that grew most in each process.
Environment: DOCKYARD (default .venv/bin/dockyard of this checkout), PYTHON (default
.venv/bin/python), BENCH_DIR (default /work/shared/bench).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import helpers  # noqa: E402

root = os.path.dirname(here)


def status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile, RssShmem (KiB) of `pid`; empty if it is gone."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:", "RssShmem:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def role(pid: int, root_pid: int) -> str:
    """What a process of the tree is, from its command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    if pid == root_pid:
        return "supervisor"
    if "resource_tracker" in cmd:
        return "resource_tracker"
    return "worker"


def tree_rss(root_pid: int) -> list[tuple[int, str, int]]:
    return [(p, role(p, root_pid), status(p).get("VmRSS", 0)) for p in sorted(helpers._tree(root_pid))]


def smaps(pid: int) -> dict[str, int]:
    """Rss (KiB) per mapping of `pid`, keyed by its address range and name."""
    out: dict[str, int] = {}
    key = ""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split(None, 1)[0]
                if "-" in head and not head.endswith(":"):
                    parts = line.split()
                    key = f"{parts[0]} {parts[5] if len(parts) > 5 else '[anon]'}"
                elif head == "Rss:":
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


class Watch:
    """Each process's status (`status`) at its own highest VmRSS, sampled on a thread: what the peak is made of."""

    def __init__(self, pids: list[int], interval: float = 0.02) -> None:
        self.at_peak: dict[int, dict[str, int]] = {pid: status(pid) for pid in pids}
        self.idle_maps = {pid: smaps(pid) for pid in pids} if os.environ.get("MEMORY_SMAPS") else None
        self.maps = dict(self.idle_maps) if self.idle_maps is not None else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pids, interval), daemon=True)
        self._thread.start()

    def _run(self, pids: list[int], interval: float) -> None:
        last_maps = 0.0
        while not self._stop.wait(interval):
            for pid in pids:
                now = status(pid)
                if now.get("VmRSS", 0) > self.at_peak[pid].get("VmRSS", 0):
                    self.at_peak[pid] = now
                    if self.maps is not None and time.monotonic() - last_maps > 0.25:
                        self.maps[pid], last_maps = smaps(pid), time.monotonic()

    def stop(self) -> dict[int, dict[str, int]]:
        self._stop.set()
        self._thread.join()
        return self.at_peak


class Client:
    """Just enough of the Docker token flow and a blob upload."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url, self.netloc = url, urllib.parse.urlsplit(url).netloc
        self.basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.bearer = ""

    def token(self, repo: str) -> None:
        conn = http.client.HTTPConnection(self.netloc, timeout=60)
        conn.request("GET", "/v2/")
        r = conn.getresponse()
        r.read()
        params = dict(re.findall(r'(\w+)="([^"]*)"', r.getheader("WWW-Authenticate", "")))
        query = urllib.parse.urlencode({"service": params["service"], "scope": f"repository:{repo}:push,pull"})
        with urllib.request.urlopen(urllib.request.Request(f"{params['realm']}?{query}",
                                                           headers={"Authorization": self.basic})) as t:
            doc = json.load(t)
        self.bearer = "Bearer " + (doc.get("token") or doc["access_token"])

    def push(self, repo: str, mib: int, block: bytes) -> float:
        """One blob of `mib` repeats of `block` (1 MiB): POST, one streamed PATCH, PUT ?digest=. Seconds."""
        digest = hashlib.sha256()
        for _ in range(mib):
            digest.update(block)
        size = mib * len(block)
        conn = http.client.HTTPConnection(self.netloc, timeout=600)
        auth = {"Authorization": self.bearer}
        t0 = time.perf_counter()
        conn.request("POST", f"/v2/{repo}/blobs/uploads/", headers=auth)
        r = conn.getresponse()
        r.read()
        assert r.status == 202, r.status
        location = r.getheader("Location")
        conn.putrequest("PATCH", location)
        for k, v in {**auth, "Content-Type": "application/octet-stream", "Content-Length": str(size),
                     "Content-Range": f"0-{size - 1}"}.items():
            conn.putheader(k, v)
        conn.endheaders()
        for _ in range(mib):
            conn.send(block)
        r = conn.getresponse()
        r.read()
        assert r.status == 202, (r.status, r.read())
        location = r.getheader("Location")
        sep = "&" if "?" in location else "?"
        conn.request("PUT", f"{location}{sep}digest=sha256:{digest.hexdigest()}", headers=auth)
        r = conn.getresponse()
        r.read()
        assert r.status == 201, r.status
        self.digest = f"sha256:{digest.hexdigest()}"
        return time.perf_counter() - t0

    def pull(self, repo: str, digest: str) -> int:
        """GET a blob, reading 1 MiB at a time; the byte count."""
        conn = http.client.HTTPConnection(self.netloc, timeout=600)
        conn.request("GET", f"/v2/{repo}/blobs/{digest}", headers={"Authorization": self.bearer})
        r, n = conn.getresponse(), 0
        assert r.status == 200, r.status
        while chunk := r.read(1 << 20):
            n += len(chunk)
        return n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--database-url")
    p.add_argument("--mib", type=int, default=2048)
    p.add_argument("--warm-mib", type=int, default=64)
    p.add_argument("--warm-bench", action="store_true", help="before the warm-up push, one round of bench.py's "
                   "workloads (run.sh's rounds; about a minute)")
    p.add_argument("--bench", action="store_true", help="push with bench.py's push_large, as run.sh does "
                   "(the client holds the whole blob)")
    p.add_argument("--json", action="store_true", help="one JSON line on stdout instead of the table")
    a = p.parse_args()
    dockyard = os.environ.get("DOCKYARD", os.path.join(root, ".venv", "bin", "dockyard"))
    python = os.environ.get("PYTHON", os.path.join(root, ".venv", "bin", "python"))
    data = tempfile.mkdtemp(prefix="dockyard-mem.")
    database_url, created = a.database_url, False
    if database_url:
        out = subprocess.run([python, os.path.join(here, "helpers.py"), "createdb", database_url],
                             check=True, capture_output=True, text=True).stdout.split()
        database_url, created = out[0], out[1] == "created"
    port = subprocess.run([python, os.path.join(here, "helpers.py"), "free-port"], check=True,
                          capture_output=True, text=True).stdout.strip()
    url, password = f"http://127.0.0.1:{port}", "mem-" + os.urandom(8).hex()
    cmd = [dockyard, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}", "--workers", str(a.workers)]
    if database_url:
        cmd += ["--database-url", database_url]
    log = open(os.path.join(data, "serve.log"), "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, "DOCKYARD_ADMIN_PASSWORD": password, "DOCKYARD_LOG_LEVEL": "warning"})
    sampler = None
    try:
        subprocess.run([python, os.path.join(here, "helpers.py"), "wait", url, str(server.pid), "60"], check=True)
        helpers.create_org(url, f"admin:{password}", "bench")
        client, block = Client(url, "admin", password), os.urandom(1 << 20)
        client.token("bench/mem")
        bench = ["python3", os.path.join(os.environ.get("BENCH_DIR", "/work/shared/bench"), "bench.py"), url,
                 "--auth", f"admin:{password}"]
        if a.warm_bench:  # one round of run.sh's workloads first: its RSS step comes after its rounds
            subprocess.run(bench + ["--prefix", "bench/warm"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if a.warm_mib:
            client.push("bench/mem", a.warm_mib, os.urandom(1 << 20))
            for _ in range(2):  # and pulled: a served pull leaves its mark on the allocator too
                client.pull("bench/mem", client.digest)
        time.sleep(1)
        idle = tree_rss(server.pid)
        out_json = os.path.join(data, "rss.json")
        sampler = subprocess.Popen([python, os.path.join(here, "helpers.py"), "rss", str(server.pid), out_json, "0.01"])
        time.sleep(0.5)  # the sampler has reset each VmHWM
        watch = Watch([pid for pid, _, _ in idle])
        cpu_before = helpers.cpu_seconds([pid for pid, _, _ in idle])
        if a.bench:  # exactly run.sh's push: bench.py's push_large (the client holds the whole blob)
            lines = subprocess.run(bench + ["--prefix", "bench/rss", "--workloads", "push_large", "--large-mib",
                                            str(a.mib)], check=True, capture_output=True, text=True).stdout
            seconds = next(json.loads(line) for line in lines.splitlines() if line.startswith("{"))["info"]["seconds"]
        else:
            seconds = client.push("bench/mem", a.mib, block)
        time.sleep(0.3)
        peaks = [(pid, r, status(pid).get("VmHWM", 0)) for pid, r, _ in idle]
        server_cpu = helpers.cpu_seconds([pid for pid, _, _ in idle]) - cpu_before
        at_peak = watch.stop()
        if watch.maps is not None and watch.idle_maps is not None:  # MEMORY_SMAPS=1: which mappings grew
            for pid, maps in watch.maps.items():
                grown = sorted(((v - watch.idle_maps[pid].get(k, 0), k) for k, v in maps.items()), reverse=True)
                print(pid, [(f"{d / 1024:.1f} MiB", k) for d, k in grown[:5] if d > 1024], file=sys.stderr)
        sampler.send_signal(signal.SIGTERM)
        sampler.wait()
        sampler = None
        with open(out_json) as f:
            rss = json.load(f)
        load = open("/proc/loadavg").read().split()[:3]
        doc = {"metadata": "PostgreSQL" if database_url else "SQLite", "workers": a.workers, "mib": a.mib,
               "idle_mib": round(sum(k for *_, k in idle) / 1024, 1), **rss, "push_s": round(seconds, 1),
               "server_cpu_s": round(server_cpu, 2),
               "load": " ".join(load),
               "processes": [{"pid": pid, "role": r, "idle_mib": round(k / 1024, 1),
                              "peak_mib": round(h / 1024, 1),
                              "at_sampled_peak_kib": {k.removeprefix("Rss"): v for k, v in at_peak[pid].items()
                                                      if k.startswith("Rss")}}
                             for (pid, r, k), (_, _, h) in zip(idle, peaks)]}
        if a.json:
            print(json.dumps(doc))
        else:
            print(f"{doc['metadata']}, --workers {a.workers}, {a.mib} MiB push in {doc['push_s']} s "
                  f"(server CPU {doc['server_cpu_s']} s), "
                  f"load {doc['load']}")
            for proc in doc["processes"]:
                print(f"  {proc['role']:<17} pid {proc['pid']:>7}  idle {proc['idle_mib']:7.1f}  "
                      f"peak {proc['peak_mib']:7.1f} MiB  (at its sampled peak, MiB: "
                      + ", ".join(f"{k} {v / 1024:.1f}" for k, v in proc["at_sampled_peak_kib"].items()) + ")")
            print(f"  tree: idle {doc['idle_mib']} MiB, peak (sampled sum) {rss['peak_rss_mib']} MiB, "
                  f"sum of VmHWM {rss['sum_vmhwm_mib']} MiB")
        return 0
    finally:
        if sampler is not None:
            sampler.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if created:
            subprocess.run([python, os.path.join(here, "helpers.py"), "dropdb", database_url], check=False)
        subprocess.run(["rm", "-rf", data], check=False)


if __name__ == "__main__":
    sys.exit(main())
