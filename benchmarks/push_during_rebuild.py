"""Small-image pushes over HTTP while `dockyard projections rebuild --all` runs, beside a quiet run.

    .venv/bin/python benchmarks/push_during_rebuild.py [--database-url URL] [--events 200000]
                                                       [--quiet-pushes 200] [--workers 4] [--serve-workers N]

1. Fills a fresh log with `--events` events (tags created and moved, through the real recorders,
   as benchmarks/read_side.py does) before any server runs.
2. Starts `dockyard serve` on it (token auth on, admin with a generated password), creates the
   organisation `bench`, and waits until its runners have folded the whole log (the followed
   projections catch up on start; that is not what is measured).
3. Quiet: `--quiet-pushes` pushes of the harness's small image (4 KiB layer + config + tagged
   manifest; /work/shared/bench/bench.py's `push_image`, Bearer token flow) from `--workers`
   threads; each push's wall time is recorded.
4. During: `dockyard projections rebuild --all` in its own process, and the same pushes from the
   same threads for as long as it runs (at most `--max-during` pushes).
Prints the pushes that succeeded and failed in each phase (every one must succeed; exit 1
otherwise), p50/p99 of each, the rebuild's time and the machine's load (`uptime`) at each
phase. Without a URL it uses a temporary SQLite data dir; a URL without a database name gets a
fresh database, dropped at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, os.environ.get("BENCH_DIR", "/work/shared/bench"))
import bench  # noqa: E402 - the shared harness: its push workload and token flow
import helpers  # noqa: E402
from bench_database import drop_database, fresh_database  # noqa: E402
from read_side import fill  # noqa: E402

from dockyard.bootstrap import registry_on  # noqa: E402
from dockyard.commands.persistence import event_store_env  # noqa: E402


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


class Pusher:
    """Pushes of distinct small images (the harness's data), each timed; failures counted."""

    def __init__(self, url: str, credentials: str, prefix: str) -> None:
        self.reg = bench.Registry(url, credentials)
        self.args = SimpleNamespace(upload="patch", chunk_mib=16)
        self.prefix = prefix
        self.counter = 0
        self.lock = threading.Lock()

    def push(self) -> tuple[float | None, str | None]:
        with self.lock:
            i = self.counter
            self.counter += 1
        repo, tag = f"{self.prefix}/s{i % 50:03d}", f"t{i:05d}"
        blobs = bench.image_blobs(f"{self.prefix}/{i}", 4 << 10)
        started = time.perf_counter()
        try:
            bench.push_image(self.reg, self.args, repo, tag, blobs)
        except Exception as exc:  # noqa: BLE001 - a failed push is a result, reported
            return None, f"{type(exc).__name__}: {exc}"[:300]
        return time.perf_counter() - started, None


def run_pushes(pusher: Pusher, workers: int, until: Any, limit: int) -> tuple[list[float], list[str]]:
    """Push from `workers` threads while `until()` is false and fewer than `limit` were started."""
    latencies: list[float] = []
    errors: list[str] = []
    started = [0]
    guard = threading.Lock()

    def worker() -> None:
        while True:
            with guard:
                if until() or started[0] >= limit:
                    return
                started[0] += 1
            seconds, error = pusher.push()
            with guard:
                if error is None:
                    latencies.append(seconds)  # type: ignore[arg-type]
                else:
                    errors.append(error)

    with cf.ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(worker) for _ in range(workers)]:
            future.result()
    return latencies, errors


def projections(url: str, credentials: str) -> list[dict[str, Any]]:
    import base64

    request = urllib.request.Request(url + "/api/v0/projections", headers={
        "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()})
    with urllib.request.urlopen(request, timeout=60) as r:
        return orjson.loads(r.read())["projections"]


def wait_caught_up(url: str, credentials: str, timeout: float = 1800) -> None:
    deadline, pause = time.monotonic() + timeout, 0.5
    while True:
        try:
            rows = projections(url, credentials)
            if all(r["lagEvents"] == 0 for r in rows):
                return
            if any(r["error"] for r in rows):
                sys.exit(f"a projection failed: {rows}")
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            sys.exit("the followed projections did not catch up")
        time.sleep(pause)
        pause = min(pause * 1.5, 5)


def report(label: str, latencies: list[float], errors: list[str]) -> str:
    return (f"{label}: {len(latencies)} pushes succeeded, {len(errors)} failed; "
            f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--quiet-pushes", type=int, default=200)
    parser.add_argument("--max-during", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4, help="pushing threads")
    parser.add_argument("--serve-workers", type=int, help="dockyard serve --workers (default: its own)")
    args = parser.parse_args()
    url_db, dropped = fresh_database(args.database_url)
    data_dir = tempfile.mkdtemp(prefix="dockyard-bench-")
    where = ["--database-url", url_db] if url_db else ["--data-dir", data_dir]
    dockyard = [sys.executable, "-m", "dockyard"]
    server = None
    try:
        # Step 1: the log.
        registry = registry_on(event_store_env(data_dir, url_db))
        try:
            rate = fill(registry, args.events)
            head = registry.recorder.max_notification_id()
            backend = registry.dialect.name
        finally:
            registry.close()
        print(f"backend: {backend}; log: {head} events (filled at {rate:,.0f} events/s)", flush=True)
        # Step 2: the server, caught up.
        password = "bench-" + uuid.uuid4().hex[:12]
        credentials = f"admin:{password}"
        s = __import__("socket").socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        url = f"http://127.0.0.1:{port}"
        serve = [*dockyard, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}"]
        if url_db:
            serve += ["--database-url", url_db]
        if args.serve_workers:
            serve += ["--workers", str(args.serve_workers)]
        env = {**os.environ, "DOCKYARD_ADMIN_PASSWORD": password, "DOCKYARD_LOG_LEVEL": "warning"}
        log_file = open(os.path.join(data_dir, "serve.log"), "w")  # noqa: SIM115 - closed at the end
        server = subprocess.Popen(serve, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        helpers.wait(url, str(server.pid), "120")
        helpers.create_org(url, credentials, "bench")
        started = time.perf_counter()
        wait_caught_up(url, credentials)
        print(f"server {url} (pid {server.pid}, workers {args.serve_workers or 'default'}): projections caught "
              f"up in {time.perf_counter() - started:.1f} s", flush=True)
        pusher = Pusher(url, credentials, f"bench/{uuid.uuid4().hex[:8]}")
        run_pushes(pusher, args.workers, lambda: False, 20)  # warm-up (tokens, connections): not counted
        # Step 3: quiet.
        quiet_load = load()
        quiet, quiet_errors = run_pushes(pusher, args.workers, lambda: False, args.quiet_pushes)
        # Step 4: during `projections rebuild --all`.
        during_load = [load()]
        rebuild = subprocess.Popen([*dockyard, "projections", "rebuild", "--all", *where], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rebuild_started = time.perf_counter()

        def sample() -> None:  # the load half way through a rebuild, not only at its start
            while rebuild.poll() is None:
                time.sleep(5)
                during_load.append(load())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        during, during_errors = run_pushes(pusher, args.workers, lambda: rebuild.poll() is not None,
                                           args.max_during)
        rebuild_out, _ = rebuild.communicate()
        rebuild_seconds = time.perf_counter() - rebuild_started
        summaries = [line for line in rebuild_out.splitlines() if "rebuilt from" in line]
        print(f"rebuild --all: exit {rebuild.returncode} in {rebuild_seconds:.1f} s", flush=True)
        for line in summaries:
            print(f"  {line}")
        print(report("quiet          ", quiet, quiet_errors) + f"  [{quiet_load}]")
        print(report("during rebuild ", during, during_errors) + f"  [{during_load[len(during_load) // 2]}]")
        for error in (quiet_errors + during_errors)[:5]:
            print(f"  error: {error}")
        ok = not quiet_errors and not during_errors and rebuild.returncode == 0 and len(during) > 0
        print("every push succeeded" if ok else "NOT every push succeeded (or the rebuild failed)")
        return 0 if ok else 1
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
        drop_database(args.database_url, dropped)


if __name__ == "__main__":
    sys.exit(main())
