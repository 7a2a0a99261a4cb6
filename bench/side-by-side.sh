#!/usr/bin/env bash
# Side-by-side write and read benchmark: a 3-member traft `local-cluster` and
# a 3-member etcd on this machine, driven one after the other by the same
# client (examples/side_by_side.rs: tonic, one process, closed loop). Only one
# system runs at a time. Prints one table per system and the ratios.
#
#   bench/side-by-side.sh                     # 1 16 64 256 clients, 10 s each
#   CLIENTS="64" DURATION=60s bench/side-by-side.sh
#
# Settings (environment): CLIENTS, DURATION, WARMUP, VALUE_SIZE, KEYS,
# READ_CLIENTS (linearizable-read points, "" to skip), ONESHOT (CLI runs
# timed per command, 0 to skip), SYSTEMS ("traft etcd"), BENCH_DIR (where the
# data directories go; the same disk as the repository by default),
# TRAFT_FLAGS (extra local-cluster flags), BASE_PORT, TRAFTCTL (another
# traftctl binary to measure, e.g. an older build, instead of this tree's).
# Needs: cargo, python3; etcd and etcdctl are installed from Debian's
# packages (etcd-server, etcd-client) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-"1 16 64 256"}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
VALUE_SIZE=${VALUE_SIZE:-256}
KEYS=${KEYS:-10000}
READ_CLIENTS=${READ_CLIENTS-"64"}
ONESHOT=${ONESHOT:-30}
SYSTEMS=${SYSTEMS:-"traft etcd"}
BASE_PORT=${BASE_PORT:-17101}
TRAFT_FLAGS=${TRAFT_FLAGS:-}
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}

command -v python3 >/dev/null || { echo "error: python3 is needed to print the tables" >&2; exit 2; }
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    echo "== installing etcd from Debian's packages (etcd-server, etcd-client)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server etcd-client >/dev/null
fi

echo "== building (release)" >&2
cargo build --release --quiet --bin traftctl --example side_by_side
TRAFTCTL=${TRAFTCTL:-$PWD/target/release/traftctl}
CLIENT=$PWD/target/release/examples/side_by_side

mkdir -p "$BENCH_DIR"
WORK=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK/traft" "$WORK/etcd"
}
trap cleanup EXIT INT TERM

# user+system CPU of the given processes, in clock ticks.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        local stat
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        # shellcheck disable=SC2086
        set -- $stat
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}
TICK=$(getconf CLK_TCK)

# run_point SYSTEM ENDPOINT CLIENTS READ_RATIO PID...
run_point() {
    local system=$1 endpoint=$2 clients=$3 reads=$4
    shift 4
    local before after out
    before=$(cpu_ticks "$@")
    # The client exits non-zero when no request succeeded (say, leadership
    # moved away from the endpoint during start-up); say so, not just stop.
    out=$("$CLIENT" --system "$system" --endpoint "$endpoint" --clients "$clients" --duration "$DURATION" \
        --warmup "$WARMUP" --value-size "$VALUE_SIZE" --keys "$KEYS" --read-ratio "$reads") || {
        echo "error: the $system point at $clients clients answered nothing: ${out:-no report}" >&2
        exit 1
    }
    after=$(cpu_ticks "$@")
    python3 - "$out" "$before" "$after" "$TICK" >>"$RESULTS" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
ticks = int(sys.argv[3]) - int(sys.argv[2])
r["cluster_cpu_us_per_op"] = ticks * 1e6 / int(sys.argv[4]) / max(r["ops_all"], 1)
print(json.dumps(r))
PY
    python3 - "$(tail -1 "$RESULTS")" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"   {r['system']:5} {r['clients']:>4} clients reads={r['read_ratio']}: {r['ops_per_s']:>9.0f} ops/s"
      f"  p50 {r['p50_us'] / 1000:.2f} ms  p99 {r['p99_us'] / 1000:.2f} ms  p99.9 {r['p999_us'] / 1000:.2f} ms"
      f"  cpu/op {r['cluster_cpu_us_per_op']:.0f}+{r['client_cpu_us_per_op']:.0f} us  errors {r['errors']}", file=sys.stderr)
PY
}

# oneshot SYSTEM COMMAND...: wall time of a whole command, ONESHOT times.
oneshot() {
    local system=$1 what=$2
    shift 2
    python3 - "$system" "$what" "$ONESHOT" "$@" >>"$RESULTS" <<'PY'
import json, subprocess, sys, time
system, what, n, cmd = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
times = []
for i in range(n):
    argv = [a.replace("{i}", str(i)) for a in cmd]
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times.append((time.perf_counter() - t) * 1e3)
times.sort()
print(json.dumps({"system": system, "oneshot": what, "runs": n, "median_ms": times[n // 2],
                  "p90_ms": times[min(n - 1, n * 9 // 10)], "max_ms": times[-1],
                  "over_20ms": sum(t > 20 for t in times)}))
PY
}

wait_for() { # wait_for SECONDS COMMAND...
    local limit=$1; shift
    for _ in $(seq $((limit * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

# traft_leader ENDPOINTS: the leader's client address, as the members see it.
traft_leader() {
    "$TRAFTCTL" --endpoints "$1" status -o json | python3 -c '
import json, sys
leader = json.load(sys.stdin).get("leader")
if not leader:
    sys.exit("error: traft: no member names a leader")
print(leader["address"])'
}

bench_traft() {
    echo "== traft: local-cluster 3 in $WORK/traft" >&2
    # shellcheck disable=SC2086
    "$TRAFTCTL" local-cluster 3 --base-port "$BASE_PORT" --data-dir "$WORK/traft" $TRAFT_FLAGS \
        >"$WORK/traft.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    local endpoints="127.0.0.1:$BASE_PORT,127.0.0.1:$((BASE_PORT + 1)),127.0.0.1:$((BASE_PORT + 2))"
    wait_for 30 grep -q "leader is node" "$WORK/traft.log" || { cat "$WORK/traft.log" >&2; exit 1; }
    # Asked again before each point, not read once from the banner: a
    # member still campaigning at start-up can move leadership elsewhere.
    local endpoint
    for c in $CLIENTS; do
        endpoint=$(traft_leader "$endpoints")
        run_point traft "$endpoint" "$c" 0 "$pid"
    done
    for c in $READ_CLIENTS; do
        endpoint=$(traft_leader "$endpoints")
        run_point traft "$endpoint" "$c" 1 "$pid"
    done
    if [ "$ONESHOT" -gt 0 ]; then
        oneshot traft get "$TRAFTCTL" --endpoints "$endpoints" get "bench-{i}"
        oneshot traft propose "$TRAFTCTL" --endpoints "$endpoints" propose set "oneshot-{i}" v
    fi
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
}

bench_etcd() {
    echo "== etcd $(etcd --version | head -1 | awk '{print $3}'): 3 members in $WORK/etcd" >&2
    local cluster="" i
    for i in 1 2 3; do
        cluster+="${cluster:+,}e$i=http://127.0.0.1:$((BASE_PORT + 10 + 2 * i))"
    done
    local pids=() endpoints=""
    for i in 1 2 3; do
        local client=$((BASE_PORT + 9 + 2 * i)) peer=$((BASE_PORT + 10 + 2 * i))
        etcd --name "e$i" --data-dir "$WORK/etcd/e$i" --logger zap --log-level error \
            --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
            --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
            --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token traft-bench \
            >"$WORK/etcd-$i.log" 2>&1 &
        pids+=($!)
        PIDS+=($!)
        endpoints+="${endpoints:+,}127.0.0.1:$client"
    done
    local leader=""
    for _ in $(seq 300); do
        leader=$(ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["Status"]["leader"] == s["Status"]["header"]["member_id"]:
        print(s["Endpoint"])' 2>/dev/null) || true
        [ -n "$leader" ] && break
        sleep 0.1
    done
    [ -n "$leader" ] || { cat "$WORK"/etcd-*.log >&2; exit 1; }
    for c in $CLIENTS; do run_point etcd "$leader" "$c" 0 "${pids[@]}"; done
    for c in $READ_CLIENTS; do run_point etcd "$leader" "$c" 1 "${pids[@]}"; done
    if [ "$ONESHOT" -gt 0 ]; then
        oneshot etcd get env ETCDCTL_API=3 etcdctl --endpoints "$endpoints" get "bench-{i}"
        oneshot etcd propose env ETCDCTL_API=3 etcdctl --endpoints "$endpoints" put "oneshot-{i}" v
    fi
    for pid in "${pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
}

echo "== $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores: clients [$CLIENTS], $DURATION per point, values of $VALUE_SIZE bytes over $KEYS keys" >&2
for system in $SYSTEMS; do "bench_$system"; done

python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
points = {}
oneshots = {}
for r in rows:
    if "oneshot" in r:
        oneshots[(r["system"], r["oneshot"])] = r
    else:
        points[(r["system"], r["clients"], r["read_ratio"] > 0)] = r
def ms(us): return f"{us / 1000:.2f}"
def table(reads):
    title = "Linearizable reads" if reads else "Writes"
    keys = sorted({(c) for (s, c, rd) in points if rd == reads})
    if not keys: return
    print(f"\n{title} ({'' if reads else 'one put per request, '}same client for both systems)\n")
    print("| clients | traft ops/s | etcd ops/s | ratio | traft p50 / p99 / p99.9 ms | etcd p50 / p99 / p99.9 ms | p99 ratio | traft CPU us/op cluster+client | etcd CPU us/op cluster+client |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in keys:
        t, e = points.get(("traft", c, reads)), points.get(("etcd", c, reads))
        def cell(r, f): return f(r) if r else "-"
        ratio = f"{t['ops_per_s'] / e['ops_per_s']:.2f}x" if t and e and e["ops_per_s"] else "-"
        p99r = f"{t['p99_us'] / e['p99_us']:.2f}x" if t and e and e["p99_us"] else "-"
        lat = lambda r: f"{ms(r['p50_us'])} / {ms(r['p99_us'])} / {ms(r['p999_us'])}"
        cpu = lambda r: f"{r['cluster_cpu_us_per_op']:.0f} + {r['client_cpu_us_per_op']:.0f}"
        ops = lambda r: f"{r['ops_per_s']:.0f}" + (f" ({r['errors']} errors)" if r["errors"] else "")
        print(f"| {c} | {cell(t, ops)} | {cell(e, ops)} | {ratio} | {cell(t, lat)} | {cell(e, lat)} | {p99r} | {cell(t, cpu)} | {cell(e, cpu)} |")
table(False)
table(True)
if oneshots:
    print("\nOne-shot CLI command, process start to exit (traftctl vs etcdctl)\n")
    print("| command | system | runs | median ms | p90 ms | max ms | runs over 20 ms |")
    print("|---|---|---|---|---|---|---|")
    for (s, w), r in sorted(oneshots.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"| {w} | {s} | {r['runs']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['max_ms']:.1f} | {r['over_20ms']} |")
PY
echo "raw results: $RESULTS" >&2
