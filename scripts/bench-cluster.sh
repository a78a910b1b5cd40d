#!/usr/bin/env bash
# Cluster benchmark on loopback: three recnode nodes (ractor_cluster), measured for
#   1. the time a new node takes to be seen by all the others (from its start);
#   2. the control traffic between idle nodes (bytes/s on the cluster connections, both
#      directions, TCP payload from `ss -ti`, no API calls in the window) first with no
#      stream, then with STREAMS live streams spread over the three nodes (a tiny
#      160x120 5 fps H264 FLV, ~11 kb/s, replayed by one recnode-loadgen per node; not
#      recorded), plus the bytes and the `stream/*` process group joins (from /metrics)
#      it took to bring them live;
#   3. the latency forwarding adds to an API call: GET /api/record/{stream} on the owner
#      (local) against the same call on another node (forwarded), p50 and p99 (curl's
#      time_total, REQUESTS calls each);
#   4. the time until a killed (SIGKILL) node is reported gone by the others.
#
#   scripts/bench-cluster.sh [STREAMS]     default 30; 1000 gives 334/333/333
#
# Env: BENCH_RECNODE_BIN / BENCH_LOADGEN_BIN (default: debug builds in $CARGO_TARGET_DIR,
# built if missing), BENCH_REQUESTS (200), BENCH_IDLE_SECS (30), BENCH_RAMP_MS (per
# node: 40 ms per stream, at least 2000), BENCH_LIVE_TIMEOUT (s to wait for every
# stream, 300; then the streams live so far are measured and the shortfall is reported),
# BENCH_RESULTS (bench/cluster-results.md), BENCH_PORT_OFFSET (0; added to the ports
# 24371.. (cluster), 27771.. (HTTP), 21931.. (RTMP), for a machine shared with another
# run). Each node needs a file descriptor per publisher (ulimit -n).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-cluster}
STREAMS=${1:-30}
REQUESTS=${BENCH_REQUESTS:-200}
IDLE_SECS=${BENCH_IDLE_SECS:-30}
LIVE_TIMEOUT=${BENCH_LIVE_TIMEOUT:-300}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/cluster-results.md}
RECNODE=${BENCH_RECNODE_BIN:-$CARGO_TARGET_DIR/debug/recnode}
LOADGEN=${BENCH_LOADGEN_BIN:-$CARGO_TARGET_DIR/debug/recnode-loadgen}
WORK=$(mktemp -d /tmp/recnode-cluster-bench.XXXXXX)
NAMES=(a b c)
OFF=${BENCH_PORT_OFFSET:-0}
declare -A PID CPORT HPORT RPORT
for i in 0 1 2; do
    n=${NAMES[$i]}
    CPORT[$n]=$((24371 + OFF + i)); HPORT[$n]=$((27771 + OFF + i)); RPORT[$n]=$((21931 + OFF + i))
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
        RECNODE_RECORDER__AUTO_STREAMS='[]' \
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

# 2. Idle control traffic with no stream, then with STREAMS live streams.
cluster_bytes() { # TCP payload sent on every cluster connection, both directions
    local filter="( sport = :${CPORT[a]} or sport = :${CPORT[b]} or sport = :${CPORT[c]} or dport = :${CPORT[a]} or dport = :${CPORT[b]} or dport = :${CPORT[c]} )"
    ss -tinH state established "$filter" | grep -o 'bytes_sent:[0-9]*' | cut -d: -f2 | paste -sd+ | bc
}
cluster_sockets() {
    local filter="( sport = :${CPORT[a]} or sport = :${CPORT[b]} or sport = :${CPORT[c]} or dport = :${CPORT[a]} or dport = :${CPORT[b]} or dport = :${CPORT[c]} )"
    ss -tnH state established "$filter" | wc -l
}
metric() { # node name: a counter or gauge from the node's /metrics (local, asks no other node)
    curl -sf "127.0.0.1:${HPORT[$1]}/metrics" | awk -v m="$2" '$1 == m { print $2; f=1 } END { if (!f) print 0 }'
}
sum_metric() { echo $(( $(metric a "$1") + $(metric b "$1") + $(metric c "$1") )); }
idle_rate() { # bytes/s over IDLE_SECS
    local b0 b1
    b0=$(cluster_bytes); sleep "$IDLE_SECS"; b1=$(cluster_bytes)
    echo $(( (b1 - b0) / IDLE_SECS ))
}
sleep 2 # the join's settings pulls and first heartbeats
IDLE0_BPS=$(idle_rate)
echo "idle control traffic, no stream: ${IDLE0_BPS} bytes/s"

ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=160x120:rate=5 -t 10 \
    -c:v libx264 -preset veryfast -tune zerolatency -g 10 -bf 0 -pix_fmt yuv420p \
    -b:v 8k -maxrate 10k -bufsize 20k -an "$WORK/src.flv"
declare -A PER
for i in 0 1 2; do # 1000 -> 334/333/333
    PER[${NAMES[$i]}]=$(( STREAMS / 3 + (i < STREAMS % 3 ? 1 : 0) ))
done
RAMP_MS=${BENCH_RAMP_MS:-$(( PER[a] * 40 > 2000 ? PER[a] * 40 : 2000 ))}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
JOINS0=$(sum_metric recnode_cluster_stream_group_joins_total)
RAMP_B0=$(cluster_bytes); RAMP_T0=$(now_ms)
for n in "${NAMES[@]}"; do
    "$LOADGEN" rtmp --url "rtmp://127.0.0.1:${RPORT[$n]}/live" --streams "${PER[$n]}" \
        --file "$WORK/src.flv" --duration-secs 1800 --ramp-ms "$RAMP_MS" --prefix "$n-" \
        >"$WORK/loadgen-$n.log" 2>&1 &
    STARTED+=("$!")
done
# Counted from each node's /metrics, so the wait itself sends nothing between nodes.
live_local() { sum_metric recnode_streams_live; }
deadline=$(( $(date +%s) + LIVE_TIMEOUT ))
while :; do
    live=$(live_local)
    [ "$live" -ge "$STREAMS" ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "only $live of $STREAMS streams live after ${LIVE_TIMEOUT} s" >&2
        break
    fi
    sleep 1
done
RAMP_TOOK_MS=$(( $(now_ms) - RAMP_T0 ))
sleep 2 # the last process group updates
RAMP_BYTES=$(( $(cluster_bytes) - RAMP_B0 ))
JOINS=$(( $(sum_metric recnode_cluster_stream_group_joins_total) - JOINS0 ))
LEAVES=$(sum_metric recnode_cluster_stream_group_leaves_total)
echo "live: $(live_local) of $STREAMS after ${RAMP_TOOK_MS} ms; ${JOINS} stream/* joins, ${LEAVES} leaves, ${RAMP_BYTES} cluster bytes meanwhile"
IDLE_BPS=$(idle_rate)
LIVE_END=$(live_local)
LIVE_BY_NODE="a $(metric a recnode_streams_live), b $(metric b recnode_streams_live), c $(metric c recnode_streams_live)"
SOCKETS=$(cluster_sockets)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
echo "idle control traffic, whole cluster: ${IDLE_BPS} bytes/s with $LIVE_END live streams ($LIVE_BY_NODE)"
# The cluster-wide view, after the window (it asks every node for its streams).
LIVE=$(curl -sf --max-time 30 "127.0.0.1:${HPORT[a]}/api/streams" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["streams"]))' 2>/dev/null || echo "?")
echo "live streams listed by a's GET /api/streams: $LIVE"
BYTES_PER_JOIN=$( [ "$JOINS" -gt 0 ] && echo $(( RAMP_BYTES / JOINS )) || echo "-" )

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
PROFILE=$(case "$RECNODE" in */release/*) echo release ;; *) echo "debug (unoptimized)" ;; esac)
cat >"$RESULTS" <<EOF
# Cluster benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, loopback, ${PROFILE} build: ${RECNODE#$ROOT/})

Load average (1/5/15 min) when the publishers started: ${LOAD_BEFORE}; after the idle
window: ${LOAD_AFTER} (the machine is shared with other builds and benchmarks).

| measure | value |
|---|---|
| new node seen by all others (from its process start) | ${JOIN_MS} ms |
| idle control traffic, whole cluster, no stream | ${IDLE0_BPS} bytes/s |
| live streams requested / live in the idle window (per node) | ${STREAMS} / ${LIVE_END} (${LIVE_BY_NODE}) |
| idle control traffic, whole cluster, ${LIVE_END} live streams over 3 nodes | ${IDLE_BPS} bytes/s |
| \`stream/*\` process group joins to bring them live (leaves so far) | ${JOINS} (${LEAVES}) |
| cluster bytes while they went live (${RAMP_TOOK_MS} ms), per join | ${RAMP_BYTES} B, ${BYTES_PER_JOIN} B |
| streams listed cluster-wide by one node's GET /api/streams | ${LIVE} |
| GET /api/record on the owner (local), p50 / p99 | ${LOCAL_P50} / ${LOCAL_P99} ms |
| GET /api/record on another node (forwarded), p50 / p99 | ${FWD_P50} / ${FWD_P99} ms |
| killed node (SIGKILL) reported gone by all others | ${GONE_MS} ms |

Idle traffic: TCP payload sent on every cluster connection (${SOCKETS} sockets, both
directions), over ${IDLE_SECS} s (ss -ti), no API calls during the window; live counts
come from each node's /metrics, which asks no other node. Publishers: recnode-loadgen
rtmp, one process and thread per node, a 160x120 5 fps H264 FLV (~11 kb/s, no audio),
starts spread over ${RAMP_MS} ms per node; streams are not recorded (auto_streams = []).
${REQUESTS} API calls each, curl's time_total.
EOF
echo "results in $RESULTS"
