#!/usr/bin/env bash
# Dockyard against itself on the read path: a BEFORE commit beside this checkout (AFTER).
#
#   benchmarks/read_ab.sh BEFORE_REV [AFTER_REV] [--rounds N] [--workers N] [--database-url URL]
#                         [--workloads LIST] [--access-log] [--out DIR] [-- BENCH_ARGS...]
#
# Exports BEFORE_REV (and AFTER_REV, else AFTER is this working tree) into temp dirs, run with
# this checkout's .venv and PYTHONPATH pointing there (so the working tree is free meanwhile),
# starts a fresh Dockyard of each (token auth, user admin, own data dir; SQLite unless
# --database-url, which must name no database: each side gets a fresh dockyard_bench_<hex>,
# dropped at the end), and runs N rounds of bench.py's read workloads on both, alternating the
# order (B A, A B, ...): push_small (the data), pull_manifest, tags_list, catalog. Prints the
# medians and AFTER/BEFORE ratios, with the load average before each pass.
#   --rounds N   (default 4)    --workers N (default 2)
#   --workloads LIST  bench.py's workloads (default push_small,pull_manifest,tags_list,catalog)
#   --access-log      serve at log level info and add each side's server-side milliseconds per
#                     request kind (from the access log: what client load does not inflate)
#   BENCH_ARGS   passed to bench.py (default --duration 8)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
bench_dir=${BENCH_DIR:-/work/shared/bench}
py=$root/.venv/bin/python
helpers=("$py" "$here/helpers.py")
before_rev=${1:?usage: read_ab.sh BEFORE_REV [AFTER_REV] [options]}
shift
after_rev=""
if (($#)) && [[ "$1" != -* ]]; then after_rev="$1"; shift; fi
rounds=4 workers=2 database_url="" out="" workloads=push_small,pull_manifest,tags_list,catalog access_log=""
while (($#)); do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --database-url) database_url="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --workloads) workloads="$2"; shift 2 ;;
        --access-log) access_log=1; shift ;;
        --) shift; break ;;
        *) sed -n '2,18s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done
bench_args=("$@")
((${#bench_args[@]})) || bench_args=(--duration 8)

out=${out:-$(mktemp -d -t dockyard-readab.XXXXXX)}
mkdir -p "$out"
base=$(mktemp -d -t dockyard-before.XXXXXX)
mkdir -p "$base/before/dockyard" "$base/after/dockyard"
git -C "$root" archive "$before_rev" | tar -x -C "$base/before/dockyard"
[[ -n "$after_rev" ]] && git -C "$root" archive "$after_rev" | tar -x -C "$base/after/dockyard"
run_id=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
declare -A pid url data db
log() { echo "read_ab.sh: $*" >&2; }

cleanup() {
    set +e
    for side in before after; do
        if [[ -n "${pid[$side]:-}" ]]; then
            kill -TERM "${pid[$side]}" 2>/dev/null
            for _ in $(seq 150); do kill -0 "${pid[$side]}" 2>/dev/null || break; sleep 0.1; done
        fi
        [[ -n "${db[$side]:-}" ]] && "${helpers[@]}" dropdb "${db[$side]}"
        [[ -n "${data[$side]:-}" ]] && rm -rf "${data[$side]}"
    done
    rm -rf "$base"
    log "raw results in $out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log_level=warning
[[ -n "$access_log" ]] && log_level=info
password="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
for side in before after; do
    data[$side]=$(mktemp -d -t dockyard-data.XXXXXX)
    port=$("${helpers[@]}" free-port)
    url[$side]="http://127.0.0.1:$port"
    serve=("$py" -m dockyard serve --data-dir "${data[$side]}" --listen "127.0.0.1:$port" --workers "$workers")
    if [[ -n "$database_url" ]]; then
        db[$side]=$("${helpers[@]}" createdb "$database_url" | sed -n 1p)
        serve+=(--database-url "${db[$side]}")
    fi
    pythonpath=""
    [[ "$side" == before || -n "$after_rev" ]] && pythonpath="$base/$side"
    PYTHONPATH="$pythonpath" DOCKYARD_ADMIN_PASSWORD="$password" DOCKYARD_LOG_LEVEL=$log_level \
        "${serve[@]}" >"$out/$side-server.log" 2>&1 </dev/null &
    pid[$side]=$!
    "${helpers[@]}" wait "${url[$side]}" "${pid[$side]}" 60 || { cat "$out/$side-server.log" >&2; exit 1; }
    "${helpers[@]}" create-org "${url[$side]}" "admin:$password" bench
done
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
    if [[ -n "$after_rev" ]]; then after=$(git -C "$root" rev-parse --short "$after_rev")
    else after="$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo '+dirty')"; fi
    echo "before: $(git -C "$root" rev-parse --short "$before_rev"), after: $after"
    echo "workers $workers, metadata ${database_url:-SQLite}, rounds $rounds, bench args: ${bench_args[*]}"
} | tee "$out/settings.txt" >&2

one() {  # side round
    local side="$1" r="$2"
    local load
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    log "round $r: $side (load $load)"
    echo "$r $side $load" >>"$out/load.txt"
    python3 "$bench_dir/bench.py" "${url[$side]}" --label "$side" --prefix "bench/$run_id-r$r" \
        --auth "admin:$password" --workloads "$workloads" "${bench_args[@]}" \
        >>"$out/$side.jsonl" 2>>"$out/$side.log" || { tail -5 "$out/$side.log" >&2; exit 1; }
}
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then one before "$r"; one after "$r"; else one after "$r"; one before "$r"; fi
done

"$py" - "$out" <<'EOF' | tee "$out/summary.txt"
import json, statistics, sys
out = sys.argv[1]
def load(side):
    figs = {}
    for line in open(f"{out}/{side}.jsonl"):
        d = json.loads(line)
        for k, v in d["figures"].items():
            figs.setdefault((d["workload"], k), []).append(v)
    return figs
b, a = load("before"), load("after")
print(f"{'workload':14} {'figure':14} {'before median (min..max)':>28} {'after median (min..max)':>28} {'after/before':>12}")
for key in b:
    if key[1] == "seconds":
        continue
    mb, ma = statistics.median(b[key]), statistics.median(a.get(key, [0]))
    span = lambda v: f"{statistics.median(v):.2f} ({min(v):.2f}..{max(v):.2f})"
    print(f"{key[0]:14} {key[1]:14} {span(b[key]):>28} {span(a.get(key, [0])):>28} {ma / mb if mb else 0:>12.2f}")
print("load (1/5/15 min) before each pass:")
print(open(f"{out}/load.txt").read(), end="")
EOF
if [[ -n "$access_log" ]]; then
    "$py" - "$out" <<'EOF' | tee -a "$out/summary.txt"
import re, statistics, sys
out = sys.argv[1]
line = re.compile(r" (GET|HEAD|POST|PATCH|PUT|DELETE) (/v2/\S*) (\d{3}) \d+B ([\d.]+)ms ")
def kind(method, path):
    if "/manifests/" in path: return f"{method} manifest"
    if "/blobs/uploads/" in path: return f"{method} upload"
    if "/blobs/" in path: return f"{method} blob"
    return None
print("server-side ms per request (access log, all rounds): median / p90 (count)")
for side in ("before", "after"):
    ms = {}
    for text in open(f"{out}/{side}-server.log", errors="replace"):
        m = line.search(text)
        if m and (k := kind(m[1], m[2])):
            ms.setdefault(k, []).append(float(m[4]))
    cells = [f"{k} {statistics.median(v):.2f} / {statistics.quantiles(v, n=10)[-1]:.2f} ({len(v)})"
             for k, v in sorted(ms.items()) if len(v) > 1]
    print(f"  {side}: " + "; ".join(cells))
EOF
fi
