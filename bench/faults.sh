#!/usr/bin/env bash
# What out-of-order commit buys under a faulty link, measured: traft
# (out-of-order), traft `--commit-order prefix` (Raft's in-order commit, the
# same binary) and etcd, each as 3 members with member 3 stopped, so the link
# between the two that remain is on every commit path. Every member-to-member
# connection goes through the same fault proxy (traft: `local-cluster
# --chaos`; etcd: examples/fault_proxy.rs in front of each member's peer
# port); clients connect directly. For each system, one after the other, the
# faults go through the phases below and the same client
# (examples/side_by_side.rs) measures writes at each client count.
#
#   bench/faults.sh
#   PHASES="none reset-every=200ms" CLIENTS="64" DURATION=20s bench/faults.sh
#
# Settings (environment): PHASES (fault specs, "none" for the proxy without
# faults), CLIENTS, DURATION, WARMUP, SETTLE (unrecorded load on each fresh
# cluster before the first phase), VALUE_SIZE, KEYS, SYSTEMS ("ooo ooo1
# prefix etcd"; ooo1 is out-of-order on one connection per follower instead
# of the default two), BENCH_DIR, BASE_PORT, TRAFT_FLAGS.
# Needs: cargo, python3; etcd is installed from Debian's packages if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PHASES=${PHASES:-"none reset-every=200ms drop=1%"}
CLIENTS=${CLIENTS:-"16 64"}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SETTLE=${SETTLE:-10s}
VALUE_SIZE=${VALUE_SIZE:-256}
KEYS=${KEYS:-10000}
SYSTEMS=${SYSTEMS:-"ooo ooo1 prefix etcd"}
BASE_PORT=${BASE_PORT:-18101}
TRAFT_FLAGS=${TRAFT_FLAGS:-}
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}

command -v python3 >/dev/null || { echo "error: python3 is needed to print the tables" >&2; exit 2; }
if [[ " $SYSTEMS " == *" etcd "* ]] && ! command -v etcd >/dev/null; then
    echo "== installing etcd from Debian's packages (etcd-server, etcd-client)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server etcd-client >/dev/null
fi

echo "== building (release)" >&2
cargo build --release --quiet --bin traftctl --example side_by_side --example fault_proxy
TRAFTCTL=$PWD/target/release/traftctl
CLIENT=$PWD/target/release/examples/side_by_side
PROXY=$PWD/target/release/examples/fault_proxy

mkdir -p "$BENCH_DIR"
WORK=$(mktemp -d "$BENCH_DIR/faults.XXXXXX")
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK/traft" "$WORK/etcd"
}
trap cleanup EXIT INT TERM

wait_for() { # wait_for SECONDS COMMAND...
    local limit=$1; shift
    for _ in $(seq $((limit * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

# settle ENDPOINT CLIENT_SYSTEM: load a fresh cluster for SETTLE before the
# first phase, unrecorded, so the first phase does not pay for what only a new
# cluster does (its first WAL segments, its first snapshot, cold caches).
settle() {
    # At the last (largest) client count.
    "$CLIENT" --system "$2" --endpoint "$1" --clients "${CLIENTS##* }" --duration "$SETTLE" --warmup 0s \
        --value-size "$VALUE_SIZE" --keys "$KEYS" --read-ratio 0 >/dev/null || true
}

# point SYSTEM PHASE ENDPOINT CLIENT_SYSTEM: every client count at one phase.
point() {
    local system=$1 phase=$2 endpoint=$3 client_system=$4 c out
    for c in $CLIENTS; do
        # A point where no request was answered (the client exits non-zero)
        # is reported and the run goes on to the next.
        out=$("$CLIENT" --system "$client_system" --endpoint "$endpoint" --clients "$c" --duration "$DURATION" \
            --warmup "$WARMUP" --value-size "$VALUE_SIZE" --keys "$KEYS" --read-ratio 0) || {
            echo "   $system $phase $c clients: no request answered: $out" >&2
            continue
        }
        python3 - "$out" "$system" "$phase" >>"$RESULTS" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
r["system"], r["phase"] = sys.argv[2], sys.argv[3]
print(json.dumps(r))
PY
        python3 - "$(tail -1 "$RESULTS")" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"   {r['system']:6} {r['phase']:18} {r['clients']:>3} clients: {r['ops_per_s']:>7.0f} ops/s"
      f"  p50 {r['p50_us'] / 1000:.2f} ms  p99 {r['p99_us'] / 1000:.2f} ms  errors {r['errors']}", file=sys.stderr)
PY
    done
}

bench_traft() { # bench_traft NAME COMMIT_ORDER PEER_CONNECTIONS
    local name=$1 order=$2 conns=$3 dir=$WORK/traft
    rm -rf "$dir"
    echo "== traft --commit-order $order --peer-connections $conns: local-cluster 3 --chaos none, member 3 stopped" >&2
    # shellcheck disable=SC2086
    "$TRAFTCTL" local-cluster 3 --base-port "$BASE_PORT" --data-dir "$dir" --chaos none \
        --commit-order "$order" --peer-connections "$conns" $TRAFT_FLAGS >"$WORK/traft-$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    local endpoints="127.0.0.1:$BASE_PORT,127.0.0.1:$((BASE_PORT + 1))"
    wait_for 30 grep -q "leader is node" "$WORK/traft-$name.log" || { cat "$WORK/traft-$name.log" >&2; exit 1; }
    "$TRAFTCTL" --endpoints "$endpoints" local kill 3 >/dev/null
    local leader=""
    for _ in $(seq 100); do
        leader=$("$TRAFTCTL" --endpoints "$endpoints" status -o json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
if s["leader"] and s["leader"]["id"] != 3: print(s["leader"]["address"])' 2>/dev/null) || true
        [ -n "$leader" ] && break
        sleep 0.1
    done
    [ -n "$leader" ] || { echo "traft: no leader among members 1 and 2" >&2; exit 1; }
    settle "$leader" traft
    local phase
    for phase in $PHASES; do
        "$TRAFTCTL" --endpoints "$endpoints" chaos set "$phase" >/dev/null
        point "$name" "$phase" "$leader" traft
    done
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
}

bench_ooo() { bench_traft ooo any 2; }
bench_ooo1() { bench_traft ooo1 any 1; }
bench_prefix() { bench_traft prefix prefix 2; }

bench_etcd() {
    echo "== etcd $(etcd --version | head -1 | awk '{print $3}'): 3 members behind fault_proxy, member 3 stopped" >&2
    rm -rf "$WORK/etcd"
    local cluster="" links=() i
    for i in 1 2 3; do
        local peer=$((BASE_PORT + 10 + 2 * i)) proxied=$((BASE_PORT + 30 + i))
        # Every member reaches member i through the proxy's listener.
        cluster+="${cluster:+,}e$i=http://127.0.0.1:$proxied"
        links+=(--link "127.0.0.1:$proxied=127.0.0.1:$peer")
    done
    local fifo=$WORK/proxy.in
    mkfifo "$fifo"
    "$PROXY" "${links[@]}" --spec none <"$fifo" >"$WORK/proxy.log" 2>&1 &
    PIDS+=($!)
    exec {PROXY_IN}>"$fifo"
    local pids=() endpoints=""
    for i in 1 2 3; do
        local client=$((BASE_PORT + 9 + 2 * i)) peer=$((BASE_PORT + 10 + 2 * i)) proxied=$((BASE_PORT + 30 + i))
        etcd --name "e$i" --data-dir "$WORK/etcd/e$i" --logger zap --log-level error \
            --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
            --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$proxied" \
            --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token traft-faults \
            >"$WORK/etcd-$i.log" 2>&1 &
        pids+=($!)
        PIDS+=($!)
        [ "$i" -lt 3 ] && endpoints+="${endpoints:+,}127.0.0.1:$client"
    done
    # Member 3 goes once the cluster has formed.
    wait_for 30 env ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint health || { cat "$WORK"/etcd-*.log >&2; exit 1; }
    kill "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true
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
    settle "$leader" etcd
    local phase
    for phase in $PHASES; do
        echo "set $phase" >&"$PROXY_IN"
        point etcd "$phase" "$leader" etcd
    done
    for pid in "${pids[@]:0:2}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
    exec {PROXY_IN}>&-
}

echo "== $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores: phases [$PHASES], clients [$CLIENTS], $DURATION per point" >&2
for system in $SYSTEMS; do "bench_$system"; done

python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["system"], r["phase"], r["clients"]): r for r in rows}
systems = [s for s in ["ooo", "ooo1", "prefix", "etcd"] if any(k[0] == s for k in by)]
phases = list(dict.fromkeys(r["phase"] for r in rows))
clients = sorted({r["clients"] for r in rows})
name = {"ooo": "traft", "ooo1": "traft 1 conn", "prefix": "traft prefix", "etcd": "etcd"}
base = phases[0]
print(f"\nWrites under faults on the 1-2 link (member 3 stopped); change is against phase `{base}`\n")
print("| system | clients | phase | ops/s | change | p50 ms | p99 ms | p99 x | errors |")
print("|---|---|---|---|---|---|---|---|---|")
for s in systems:
    for c in clients:
        b = by.get((s, base, c))
        for p in phases:
            r = by.get((s, p, c))
            if not r: continue
            ch = f"{(r['ops_per_s'] / b['ops_per_s'] - 1) * 100:+.0f}%" if b and p != base else ""
            px = f"{r['p99_us'] / b['p99_us']:.1f}x" if b and p != base and b["p99_us"] else ""
            print(f"| {name[s]} | {c} | {p} | {r['ops_per_s']:.0f} | {ch} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} | {px} | {r['errors']} |")
PY
echo "raw results: $RESULTS" >&2
