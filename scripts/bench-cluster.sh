#!/usr/bin/env bash
# Cluster benchmark on loopback: three recnode nodes (ractor_cluster), measured for
#   1. the time a new node takes to be seen by all the others (from its start);
#   2. the control traffic between idle nodes with STREAMS live streams spread over the
#      three nodes (bytes/s on the cluster connections, both directions, from `ss -ti`);
#   3. the latency forwarding adds to an API call: GET /api/record/{stream} on the owner
#      (local) against the same call on another node (forwarded), p50 and p99 (curl's
#      time_total, REQUESTS calls each);
#   4. the time until a killed (SIGKILL) node is reported gone by the others.
#
#   scripts/bench-cluster.sh [STREAMS]     default 30 (recnode-loadgen publishers, 1 thread each node)
#
# Env: BENCH_RECNODE_BIN / BENCH_LOADGEN_BIN (default: debug builds in $CARGO_TARGET_DIR,
# built if missing), BENCH_REQUESTS (200), BENCH_IDLE_SECS (10), BENCH_RESULTS
# (bench/cluster-results.md). Ports 2437x (cluster), 2777x (HTTP), 2193x (RTMP).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-cluster}
STREAMS=${1:-30}
REQUESTS=${BENCH_REQUESTS:-200}
IDLE_SECS=${BENCH_IDLE_SECS:-10}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/cluster-results.md}
RECNODE=${BENCH_RECNODE_BIN:-$CARGO_TARGET_DIR/debug/recnode}
LOADGEN=${BENCH_LOADGEN_BIN:-$CARGO_TARGET_DIR/debug/recnode-loadgen}
WORK=$(mktemp -d /tmp/recnode-cluster-bench.XXXXXX)
NAMES=(a b c)
declare -A PID CPORT HPORT RPORT
for i in 0 1 2; do
    n=${NAMES[$i]}
    CPORT[$n]=$((24371 + i)); HPORT[$n]=$((27771 + i)); RPORT[$n]=$((21931 + i))
done
STARTED=()
cleanup() {
    for pid in "${STARTED[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$RECNODE" ] || cargo build -p recnode
[ -x "$LOADGEN" ] || cargo build -p recnode-loadgen

now_ms() { date +%s%3N; }

start_node() {
    local n=$1 seeds=() m
    for m in "${NAMES[@]}"; do
        [ "$m" = "$n" ] || seeds+=("\"127.0.0.1:${CPORT[$m]}\"")
    done
    mkdir -p "$WORK/$n"
    (cd "$WORK/$n" && exec env RECNODE_CLUSTER__ENABLED=true RECNODE_CLUSTER__NODE_NAME="$n" \
        RECNODE_RECORDER__NODE_ALIAS="$n" RECNODE_CLUSTER__COOKIE=bench-cookie \
        RECNODE_CLUSTER__LISTEN="127.0.0.1:${CPORT[$n]}" \
        RECNODE_CLUSTER__SEEDS="[$(IFS=,; echo "${seeds[*]}")]" \
        RECNODE_HTTP__LISTEN="127.0.0.1:${HPORT[$n]}" RECNODE_RTMP__LISTEN="127.0.0.1:${RPORT[$n]}" \
        RECNODE_WHIP__UDP_LISTEN=127.0.0.1:0 "$RECNODE" 2>>"$WORK/$n.log") &
    PID[$n]=$!
    STARTED+=("$!")
}

# Members of node $1 that answered a heartbeat, sorted, comma-separated.
seen_by() {
    curl -sf "127.0.0.1:${HPORT[$1]}/api/cluster" 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(",".join(sorted(m["name"] for m in d["members"] if not m["self"] and m.get("last_seen_ms"))))' 2>/dev/null || true
}

wait_until() { # timeout_s command...
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out: $*" >&2; return 1; }
        sleep 0.05
    done
}

sees() { [ "$(seen_by "$1")" = "$2" ]; }

# 1. a and b, then c joins.
start_node a; start_node b
wait_until 30 sees a b; wait_until 30 sees b a
t0=$(now_ms); start_node c
wait_until 30 sees a b,c; wait_until 30 sees b a,c; wait_until 30 sees c a,b
JOIN_MS=$(( $(now_ms) - t0 ))
echo "new node seen by all: ${JOIN_MS} ms (from process start)"

# 2. STREAMS live streams spread over the nodes, then idle traffic.
ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=320x240:rate=25 \
    -f lavfi -i sine=frequency=440:sample_rate=44100 -t 10 \
    -c:v libx264 -g 25 -pix_fmt yuv420p -b:v 300k -c:a aac "$WORK/src.flv"
per=$(( (STREAMS + 2) / 3 ))
for n in "${NAMES[@]}"; do
    "$LOADGEN" rtmp --url "rtmp://127.0.0.1:${RPORT[$n]}/live" --streams "$per" \
        --file "$WORK/src.flv" --duration-secs 600 --prefix "$n-" >"$WORK/loadgen-$n.log" 2>&1 &
    STARTED+=("$!")
done
live_count() {
    curl -sf "127.0.0.1:${HPORT[a]}/api/streams" |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["streams"]))' 2>/dev/null || echo 0
}
wait_until 120 bash -c "[ \$(curl -sf 127.0.0.1:${HPORT[a]}/api/streams | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"streams\"]))' 2>/dev/null || echo 0) -ge $((per * 3)) ]"
LIVE=$(live_count)
echo "live streams in the cluster: $LIVE"
sleep 2 # let the last group updates settle before measuring idle traffic
cluster_bytes() {
    local filter="( sport = :${CPORT[a]} or sport = :${CPORT[b]} or sport = :${CPORT[c]} or dport = :${CPORT[a]} or dport = :${CPORT[b]} or dport = :${CPORT[c]} )"
    ss -tinH state established "$filter" | grep -o 'bytes_sent:[0-9]*' | cut -d: -f2 | paste -sd+ | bc
}
b0=$(cluster_bytes); sleep "$IDLE_SECS"; b1=$(cluster_bytes)
IDLE_BPS=$(( (b1 - b0) / IDLE_SECS ))
echo "idle control traffic, whole cluster: ${IDLE_BPS} bytes/s with $LIVE streams"

# 3. Forwarding latency: stream b-0 lives on b.
latencies() { # node
    for _ in $(seq "$REQUESTS"); do
        curl -s -o /dev/null -w '%{time_total}\n' "127.0.0.1:${HPORT[$1]}/api/record/b-0"
    done | sort -n
}
pct() { # file percentile
    python3 -c 'import sys; v=[float(l) for l in open(sys.argv[1])]; v.sort(); p=float(sys.argv[2]); print("%.2f" % (1000*v[min(len(v)-1, int(round(p/100*(len(v)-1))))]))' "$1" "$2"
}
latencies b >"$WORK/local.txt"; latencies a >"$WORK/forwarded.txt"
LOCAL_P50=$(pct "$WORK/local.txt" 50); LOCAL_P99=$(pct "$WORK/local.txt" 99)
FWD_P50=$(pct "$WORK/forwarded.txt" 50); FWD_P99=$(pct "$WORK/forwarded.txt" 99)
echo "GET /api/record: local p50 ${LOCAL_P50} ms p99 ${LOCAL_P99} ms; forwarded p50 ${FWD_P50} ms p99 ${FWD_P99} ms"

# 4. Kill c; time until a and b no longer list it.
t0=$(now_ms); kill -KILL "${PID[c]}"
wait_until 30 sees a b; wait_until 30 sees b a
GONE_MS=$(( $(now_ms) - t0 ))
echo "killed node reported gone by all: ${GONE_MS} ms"

mkdir -p "$(dirname "$RESULTS")"
cat >"$RESULTS" <<EOF
# Cluster benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, loopback, binary: ${RECNODE#$ROOT/})

| measure | value |
|---|---|
| new node seen by all others (from its process start) | ${JOIN_MS} ms |
| idle control traffic, whole cluster, ${LIVE} live streams over 3 nodes | ${IDLE_BPS} bytes/s |
| GET /api/record on the owner (local), p50 / p99 | ${LOCAL_P50} / ${LOCAL_P99} ms |
| GET /api/record on another node (forwarded), p50 / p99 | ${FWD_P50} / ${FWD_P99} ms |
| killed node (SIGKILL) reported gone by all others | ${GONE_MS} ms |

${REQUESTS} calls each, curl's time_total. Idle traffic: bytes sent on every cluster
connection over ${IDLE_SECS} s (ss -ti), no API calls during the window.
EOF
echo "results in $RESULTS"
