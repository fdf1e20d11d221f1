"""Small-image pushes, A/B between checkouts of Dockyard, with server-side times per request.

    .venv/bin/python benchmarks/push_small_ab.py --rounds 3 --database-url postgresql://postgres@127.0.0.1:5432 \
        base=/tmp/base-tree new=.

Each NAME=DIR is a checkout (its `dockyard` package is imported from DIR by a PYTHONPATH shim over
this venv). Per round, for each checkout in rotated order: a fresh data dir (and a fresh database
when --database-url names none), `dockyard serve --workers N`, organisation `bench`, a 40-image
warm-up, then `--passes` timed `bench.py --workloads push_small` passes. Prints one JSON line per
server: images/s of each pass, the server tree's CPU seconds per image, the access log's p50/p99
per request kind (the timed passes only) and the load average before the start.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import helpers  # noqa: E402

KINDS = [  # (kind, method, path pattern)
    ("POST upload", "POST", re.compile(r"/v2/.+/blobs/uploads/$")),
    ("PATCH upload", "PATCH", re.compile(r"/v2/.+/blobs/uploads/[^/]+$")),
    ("PUT upload (finish)", "PUT", re.compile(r"/v2/.+/blobs/uploads/[^/]+$")),
    ("HEAD blob", "HEAD", re.compile(r"/v2/.+/blobs/")),
    ("PUT manifest", "PUT", re.compile(r"/v2/.+/manifests/")),
    ("token", "GET", re.compile(r"/auth/token")),
]
LINE = re.compile(r'(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) (\d{3}) \d+B ([\d.]+)ms')


def run_bench(url: str, auth: str, prefix: str, images: int) -> float:
    out = subprocess.run([sys.executable, "/work/shared/bench/bench.py", url, "--auth", auth, "--prefix", prefix,
                          "--workloads", "push_small", "--images", str(images)],
                         check=True, capture_output=True, text=True).stdout
    doc = json.loads(out.strip().splitlines()[-1])
    if not doc.get("ok"):
        raise SystemExit(f"bench.py failed: {doc}")
    return float(doc["figures"]["images_per_s"])


def one_server(name: str, tree: str, args: argparse.Namespace, round_no: int) -> dict:
    data = tempfile.mkdtemp(prefix="dockyard-ab-")
    db_url, created = args.database_url, False
    if db_url:
        import io
        from contextlib import redirect_stdout
        buf = io.StringIO()
        with redirect_stdout(buf):
            helpers.createdb(db_url)
        db_url, state = buf.getvalue().split()
        created = state == "created"
    port = int(subprocess.run([sys.executable, str(HERE / "helpers.py"), "free-port"], capture_output=True,
                              text=True, check=True).stdout)
    url, password = f"http://127.0.0.1:{port}", "bench-" + os.urandom(6).hex()
    shim = Path(tempfile.gettempdir()) / "dockyard-ab-shim" / name  # holds `dockyard` -> the checkout
    env = dict(os.environ, PYTHONPATH=str(shim), DOCKYARD_ADMIN_PASSWORD=password, DOCKYARD_LOG_LEVEL="info")
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "dockyard"
    if not link.exists():
        link.symlink_to(os.path.abspath(tree))
    cmd = [sys.executable, "-m", "dockyard", "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}",
           "--workers", str(args.workers)]
    if db_url:
        cmd += ["--database-url", db_url]
    log_path = Path(data) / "server.log"
    load = os.getloadavg()
    with open(log_path, "w") as log:
        server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        helpers.wait(url, str(server.pid), "90")
        helpers.create_org(url, f"admin:{password}", "bench")
        run_bench(url, f"admin:{password}", f"bench/w{round_no}{name}", 40)
        mark = log_path.stat().st_size
        cpu0, rates = helpers.cpu_seconds(helpers._tree(server.pid)), []
        for p in range(args.passes):
            rates.append(run_bench(url, f"admin:{password}", f"bench/r{round_no}p{p}{name}", args.images))
        cpu = helpers.cpu_seconds(helpers._tree(server.pid)) - cpu0
        with open(log_path) as f:
            f.seek(mark)
            text = f.read()
    finally:
        server.terminate()
        server.wait(30)
        if created:
            helpers.dropdb(db_url)
    times: dict[str, list[float]] = {k: [] for k, _m, _p in KINDS}
    errors = 0
    for m in LINE.finditer(text):
        method, path, status, ms = m.group(1), m.group(2), int(m.group(3)), float(m.group(4))
        errors += status >= 500
        for kind, km, pattern in KINDS:
            if method == km and pattern.search(path):
                times[kind].append(ms)
                break
    server_ms = {k: [round(statistics.median(v), 2), round(sorted(v)[int(0.99 * (len(v) - 1))], 2), len(v)]
                 for k, v in times.items() if v}
    subprocess.run(["rm", "-rf", data])
    return {"round": round_no, "name": name, "images_per_s": rates, "load_before": [round(x, 2) for x in load],
            "cpu_ms_per_image": round(1000 * cpu / (args.passes * args.images), 2), "server_ms_p50_p99_n": server_ms,
            "5xx": errors}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trees", nargs="+", metavar="NAME=DIR")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--database-url", default="")
    args = p.parse_args()
    trees = [t.split("=", 1) for t in args.trees]
    for r in range(args.rounds):
        order = trees[r % len(trees):] + trees[:r % len(trees)]
        for name, tree in order:
            print(json.dumps(one_server(name, tree, args, r)), flush=True)
            time.sleep(1)


if __name__ == "__main__":
    main()
