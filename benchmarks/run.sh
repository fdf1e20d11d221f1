#!/usr/bin/env bash
# Dockyard beside CNCF Distribution on this machine, with the shared harness (/work/shared/bench).
#
#   benchmarks/run.sh [--rounds N] [--workers N] [--database-url URL] [--large-mib N]
#                     [--rss-mib N] [--no-rss] [--no-warmup] [--out DIR] [--keep] [-- BENCH_ARGS...]
#
# Starts a fresh Dockyard (token auth, user admin with a generated password, own temp data dir;
# SQLite unless --database-url) and a fresh Distribution (distribution.sh, no auth) side by side,
# runs one untimed warm-up pass on each, then N rounds of bench.py on both with the same data
# (the same --prefix, which seeds every blob) in alternating order (Dy Di, Di Dy, ...), and
# prints the medians and the Dockyard/Distribution ratios. Then it pushes one --rss-mib blob
# (default 2048) to each while sampling the RSS summed over the server's process tree.
#
#   --rounds N          interleaved rounds (default 3)
#   --workers N         Dockyard worker processes (default 2: one per core of this 2-core box)
#   --database-url URL  PostgreSQL for Dockyard. A URL without a database name
#                       (postgresql://postgres@127.0.0.1:5432) gets a fresh dockyard_bench_<hex>
#                       database, dropped at the end; a named database is created if missing
#                       (and then dropped at the end), else used as it is.
#   --large-mib N       the large blob of push_large/pull_large (default 512)
#   --rss-mib N         the blob pushed for the peak-RSS figure (default 2048); --no-rss skips it
#   --out DIR           keep raw JSON lines, logs and summary.json there (default: a temp dir)
#   --keep              keep the servers' data dirs (and a created database) afterwards
#   BENCH_ARGS          passed to every timed bench.py run (e.g. --duration 5 --images 200)
# Environment: BENCH_DIR (default /work/shared/bench), DOCKYARD (default .venv/bin/dockyard of
# this checkout), PYTHON (default .venv/bin/python: helpers, psycopg for --database-url).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
bench_dir=${BENCH_DIR:-/work/shared/bench}
dockyard_bin=${DOCKYARD:-$root/.venv/bin/dockyard}
py=${PYTHON:-$root/.venv/bin/python}
helpers=("$py" "$here/helpers.py")

rounds=3 workers=2 database_url="" large_mib=512 rss_mib=2048 do_rss=1 warmup=1 out="" keep=0
usage() { sed -n '2,27s/^# \{0,1\}//p' "$0"; }
while (($#)); do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --database-url) database_url="$2"; shift 2 ;;
        --large-mib) large_mib="$2"; shift 2 ;;
        --rss-mib) rss_mib="$2"; shift 2 ;;
        --no-rss) do_rss=0; shift ;;
        --no-warmup) warmup=0; shift ;;
        --out) out="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) usage >&2; exit 2 ;;
    esac
done
bench_args=("$@")
[[ -x "$dockyard_bin" ]] || { echo "run.sh: no dockyard at $dockyard_bin (set DOCKYARD)" >&2; exit 1; }
[[ -r "$bench_dir/bench.py" ]] || { echo "run.sh: no bench.py in $bench_dir (set BENCH_DIR)" >&2; exit 1; }
((rounds >= 1 && workers >= 1)) || { echo "run.sh: --rounds and --workers must be >= 1" >&2; exit 2; }

out=${out:-$(mktemp -d -t dockyard-bench.XXXXXX)}
mkdir -p "$out"
run_id=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
dy_data=$(mktemp -d -t dockyard-data.XXXXXX)
dy_pid="" di_state="" db_created=0 rss_pid=""

log() { echo "run.sh: $*" >&2; }

cleanup() {
    set +e
    [[ -n "$rss_pid" ]] && kill "$rss_pid" 2>/dev/null
    if [[ -n "$dy_pid" ]] && kill -0 "$dy_pid" 2>/dev/null; then
        kill -TERM "$dy_pid"
        for _ in $(seq 150); do kill -0 "$dy_pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$dy_pid" 2>/dev/null && kill -KILL "$dy_pid"
    fi
    if [[ -n "$di_state" ]]; then
        if ((keep)); then "$bench_dir/distribution.sh" stop "$di_state" --keep
        else "$bench_dir/distribution.sh" stop "$di_state"; fi
    fi
    if ((db_created && !keep)); then "${helpers[@]}" dropdb "$database_url"; fi
    ((keep)) || rm -rf "$dy_data"
    log "raw results in $out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- servers ------------------------------------------------------------------------------------
if [[ -n "$database_url" ]]; then
    { read -r database_url; read -r db_state; } < <("${helpers[@]}" createdb "$database_url")
    [[ "$db_state" == created ]] && db_created=1
    log "Dockyard metadata: PostgreSQL $database_url ($db_state)"
fi

di_info=$("$bench_dir/distribution.sh" start)
di_url=$(sed -n 1p <<<"$di_info") di_state=$(sed -n 2p <<<"$di_info")
di_pid=$(cat "$di_state/pid")

password="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=$("${helpers[@]}" free-port)
dy_url="http://127.0.0.1:$port"
serve=("$dockyard_bin" serve --data-dir "$dy_data" --listen "127.0.0.1:$port" --workers "$workers")
[[ -n "$database_url" ]] && serve+=(--database-url "$database_url")
DOCKYARD_ADMIN_PASSWORD="$password" DOCKYARD_LOG_LEVEL=warning "${serve[@]}" >"$out/dockyard.log" 2>&1 </dev/null &
dy_pid=$!
"${helpers[@]}" wait "$dy_url" "$dy_pid" 60 || { cat "$out/dockyard.log" >&2; exit 1; }
auth="admin:$password"
"${helpers[@]}" create-org "$dy_url" "$auth" bench  # bench.py pushes to bench/…: a push needs an account's namespace

metadata=SQLite
[[ -n "$database_url" ]] && metadata="PostgreSQL ($database_url)"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo "dockyard: $(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet 2>/dev/null || echo '+dirty'), workers $workers, metadata $metadata, token auth (admin)"
    echo "distribution: $(docker-registry --version 2>/dev/null | head -1 || echo '?'), no auth"
    echo "rounds: $rounds, large blob $large_mib MiB, rss blob $rss_mib MiB, bench args: ${bench_args[*]:-(defaults)}"
} | tee "$out/settings.txt" >&2
log "Dockyard     $dy_url (pid $dy_pid)"
log "Distribution $di_url (pid $di_pid)"

# ---- timed rounds -------------------------------------------------------------------------------
bench() {  # side url auth prefix jsonl [extra args...]
    local side="$1" url="$2" auth="$3" prefix="$4" jsonl="$5"
    shift 5
    if ! python3 "$bench_dir/bench.py" "$url" --label "$side" --prefix "$prefix" ${auth:+--auth "$auth"} "$@" \
            >>"$jsonl" 2>>"$out/$side.log"; then
        tail -5 "$out/$side.log" >&2
        log "bench.py failed against $side ($url)"
        exit 1
    fi
}

one() {  # side round
    local side="$1" round="$2" t0=$SECONDS
    local url="$di_url" a=""
    [[ "$side" == dockyard ]] && url="$dy_url" a="$auth"
    log "round $round/$rounds: $side (load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "round $round $side load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/load.txt"
    bench "$side" "$url" "$a" "bench/$run_id-r$round" "$out/$side.jsonl" --large-mib "$large_mib" "${bench_args[@]}"
    log "  done in $((SECONDS - t0)) s"
}

if ((warmup)); then
    log "warm-up (untimed): 64 MiB blob, 40 small images, 2 s of manifest GETs on each"
    for side in dockyard distribution; do
        url="$di_url" a=""
        [[ "$side" == dockyard ]] && url="$dy_url" a="$auth"
        bench "$side" "$url" "$a" "bench/$run_id-warmup" "$out/warmup.jsonl" \
            --large-mib 64 --images 40 --repos 20 --duration 2
    done
fi

for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then one dockyard "$r"; one distribution "$r"
    else one distribution "$r"; one dockyard "$r"; fi
done

# ---- peak RSS during one big push ---------------------------------------------------------------
if ((do_rss)); then
    for side in dockyard distribution; do
        url="$di_url" a="" pid="$di_pid"
        [[ "$side" == dockyard ]] && url="$dy_url" a="$auth" pid="$dy_pid"
        log "peak RSS: pushing a $rss_mib MiB blob to $side"
        "${helpers[@]}" rss "$pid" "$out/rss-$side.json" 0.01 &
        rss_pid=$!
        bench "$side" "$url" "$a" "bench/$run_id-rss" "$out/rss-$side.bench.jsonl" \
            --workloads push_large --large-mib "$rss_mib"
        kill -TERM "$rss_pid"
        wait "$rss_pid" || true
        rss_pid=""
    done
fi

# ---- report -------------------------------------------------------------------------------------
echo
cat "$out/settings.txt"
"${helpers[@]}" summary "$out" | tee "$out/summary.txt"
