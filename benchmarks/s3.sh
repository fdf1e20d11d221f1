#!/usr/bin/env bash
# Large-blob push and pull through S3: Dockyard (s3://, minio SDK) beside CNCF Distribution
# (its own S3 driver), both on the same moto server, with the shared harness.
#
#   benchmarks/s3.sh [--rounds N] [--large-mib N] [--workers N] [--out DIR]
#
# Starts moto (`python -m moto.server`, from this checkout's venv: `pip install -e .[test]`),
# makes one bucket per registry, starts Dockyard (`--storage s3://…`, token auth, SQLite
# metadata) and Distribution (`docker-registry`, no auth, `redirect: disable` so its blob GETs
# stream through it as Dockyard's do), then runs bench.py's push_large and pull_large on both,
# interleaved, N rounds (default 2), and one more push on each while sampling the peak RSS of
# the registry's process tree (moto's own memory is not counted). Prints medians and ratios
# (`helpers.py summary`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
bench_dir=${BENCH_DIR:-/work/shared/bench}
py=${PYTHON:-$root/.venv/bin/python}
helpers=("$py" "$here/helpers.py")
rounds=2 large_mib=512 workers=2 out=""
while (($#)); do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --large-mib) large_mib="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) sed -n '2,13s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done
command -v docker-registry >/dev/null || { echo "s3.sh: needs docker-registry (apt-get install docker-registry)" >&2; exit 1; }
out=${out:-$(mktemp -d -t dockyard-s3-bench.XXXXXX)}
mkdir -p "$out"
state=$(mktemp -d -t dockyard-s3-state.XXXXXX)
pids=()
log() { echo "s3.sh: $*" >&2; }
cleanup() {
    set +e
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$state"
    log "raw results in $out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
moto_port=$("${helpers[@]}" free-port)
moto="http://127.0.0.1:$moto_port"
"$py" -m moto.server -H 127.0.0.1 -p "$moto_port" >"$out/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -s -o /dev/null "$moto/" && break; sleep 0.1; done
"$py" - "$moto_port" <<'EOF'
import sys
from minio import Minio
client = Minio(f"127.0.0.1:{sys.argv[1]}", access_key="testing", secret_key="testing", secure=False, region="us-east-1")
for bucket in ("dockyard", "distribution"):
    client.make_bucket(bucket)
EOF

# Distribution 2.8 with its S3 driver (path-style requests when regionendpoint is set).
di_port=$("${helpers[@]}" free-port)
di_url="http://127.0.0.1:$di_port"
cat >"$state/distribution.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: testing
    secretkey: testing
    region: us-east-1
    regionendpoint: $moto
    bucket: distribution
    secure: false
    v4auth: true
  delete:
    enabled: true
  redirect:
    disable: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$di_port
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
# AWS_CA_BUNDLE (set on some machines) makes its AWS SDK refuse the custom HTTP transport.
env -u AWS_CA_BUNDLE docker-registry serve "$state/distribution.yml" >"$out/distribution-server.log" 2>&1 </dev/null &
di_pid=$!
pids+=("$di_pid")
"${helpers[@]}" wait "$di_url" "$di_pid" 60 || { cat "$out/distribution-server.log" >&2; exit 1; }

password="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
dy_port=$("${helpers[@]}" free-port)
dy_url="http://127.0.0.1:$dy_port"
DOCKYARD_ADMIN_PASSWORD="$password" DOCKYARD_LOG_LEVEL=warning "$root/.venv/bin/dockyard" serve \
    --data-dir "$state/dockyard" --listen "127.0.0.1:$dy_port" --workers "$workers" \
    --storage "s3://dockyard?endpoint=$moto&region=us-east-1" >"$out/dockyard-server.log" 2>&1 </dev/null &
dy_pid=$!
pids+=("$dy_pid")
"${helpers[@]}" wait "$dy_url" "$dy_pid" 60 || { cat "$out/dockyard-server.log" >&2; exit 1; }
auth="admin:$password"
"${helpers[@]}" create-org "$dy_url" "$auth" bench

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -srm), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "dockyard: $(git -C "$root" rev-parse --short HEAD), workers $workers, SQLite, token auth, s3:// on moto $("$py" -c 'import moto; print(moto.__version__)')"
    echo "distribution: $(docker-registry --version 2>/dev/null | head -1), s3 driver on the same moto, no auth, redirect disabled"
    echo "rounds: $rounds, large blob $large_mib MiB"
} | tee "$out/settings.txt" >&2

bench() {  # side prefix jsonl [args...]
    local side="$1" prefix="$2" jsonl="$3" url="$di_url" a=""
    shift 3
    [[ "$side" == dockyard ]] && url="$dy_url" a="$auth"
    python3 "$bench_dir/bench.py" "$url" --label "$side" --prefix "$prefix" ${a:+--auth "$a"} "$@" \
        >>"$jsonl" 2>>"$out/$side.log" || { tail -5 "$out/$side.log" >&2; exit 1; }
}
run_id=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
for ((r = 1; r <= rounds; r++)); do
    order=(dockyard distribution)
    ((r % 2)) || order=(distribution dockyard)
    for side in "${order[@]}"; do
        log "round $r/$rounds: $side (load $(cut -d' ' -f1-3 /proc/loadavg))"
        bench "$side" "bench/$run_id-r$r" "$out/$side.jsonl" --workloads push_large,pull_large --large-mib "$large_mib"
    done
done
for side in dockyard distribution; do
    pid="$di_pid"
    [[ "$side" == dockyard ]] && pid="$dy_pid"
    log "peak RSS: pushing a $large_mib MiB blob to $side"
    "${helpers[@]}" rss "$pid" "$out/rss-$side.json" 0.01 &
    rss_pid=$!
    bench "$side" "bench/$run_id-rss" "$out/rss-$side.bench.jsonl" --workloads push_large --large-mib "$large_mib"
    kill -TERM "$rss_pid"
    wait "$rss_pid" || true
done

echo
cat "$out/settings.txt"
"${helpers[@]}" summary "$out" | tee "$out/summary.txt"
