#!/usr/bin/env bash
# WHIP ingest benchmark on this machine, loopback only.
#
#   scripts/bench-whip.sh [N ...]      default levels: 2 4 8 12 16
#
# For each N (ascending) it starts a fresh release recnode (auto-record, temp cwd, WHIP on
# one shared UDP port), runs N webrtc-rs publishers (`recnode-loadgen whip`)
# replaying a 720p30 2.5 Mbps H264 + 64 kb/s Opus source at real-time pace for
# BENCH_DURATION s, sends DELETE, waits for the recordings to close, and measures the
# node's CPU (utime+stime), peak RSS (VmHWM), bytes recorded, and frames lost (the check
# compares every stream's fMP4 sample counts with what its publisher sent: exact).
# Levels after the first failure are skipped. With BENCH_PERF=N the level N is also
# profiled with `perf record --call-graph dwarf` (99 Hz, 10 s mid-run) and the inclusive
# time of each layer's entry points is reported (layers nest, so shares overlap).
# Writes bench/whip-results.md. Env: BENCH_DURATION (30), BENCH_WORK (/tmp/recnode-whip-bench),
# BENCH_KEEP=1 (keep each level's recordings), BENCH_UDP (mux | range: one port per session from 40000-40999), BENCH_NO_BUILD=1 (use the
# binaries already in $CARGO_TARGET_DIR/release), BENCH_LOADGEN_THREADS (1: the load
# generator's runtime threads).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-bench}
DURATION=${BENCH_DURATION:-30}
WORK=${BENCH_WORK:-/tmp/recnode-whip-bench}
UDP_MODE=${BENCH_UDP:-mux}
HTTP_PORT=${BENCH_HTTP_PORT:-28777}
RTMP_PORT=${BENCH_RTMP_PORT:-28935}
WHIP_PORT=${BENCH_WHIP_PORT:-28189}
LEVELS=("$@")
[ ${#LEVELS[@]} -gt 0 ] || LEVELS=(2 4 8 12 16)
RESULTS=$ROOT/bench/whip-results.md

mkdir -p "$WORK" "$ROOT/bench"
STARTED_PIDS=()
cleanup() {
    for pid in "${STARTED_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[$(date +%T)] $*" >&2; }

command -v ffmpeg >/dev/null || { echo "ffmpeg is required" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is required (apt-get install time)" >&2; exit 1; }

VIDEO=$WORK/src.h264
AUDIO=$WORK/src.ogg
if [ ! -s "$VIDEO" ]; then
    log "encoding the 20 s 720p30 2.5 Mbps H264 source (once)"
    # Noise keeps the encoder at its bitrate; no B-frames (WebRTC); an AUD starts each unit.
    ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 20 \
        -vf noise=alls=12:allf=t -c:v libx264 -preset veryfast -profile:v baseline \
        -b:v 2500k -maxrate 2500k -bufsize 2500k -g 60 -bsf:v h264_metadata=aud=insert \
        -f h264 "$VIDEO.tmp" && mv "$VIDEO.tmp" "$VIDEO"
fi
if [ ! -s "$AUDIO" ]; then
    ffmpeg -hide_banner -v error -y -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 \
        -c:a libopus -b:a 64k -frame_duration 20 -ac 2 "$AUDIO.tmp.ogg" && mv "$AUDIO.tmp.ogg" "$AUDIO"
fi

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    log "building recnode and recnode-loadgen (release, $CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --release -q -p recnode -p recnode-loadgen)
fi
RECNODE=$CARGO_TARGET_DIR/release/recnode
LOADGEN=$CARGO_TARGET_DIR/release/recnode-loadgen
CLK_TCK=$(getconf CLK_TCK)

proc_cpu_s() { awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo na; }
proc_rss_mb() { awk -v k="$2" '$1 == k":" { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo na; }
thread_cpu() {
    for t in /proc/"$1"/task/*; do
        comm=$(tr ' ' '_' <"$t/comm")
        awk -v c="$comm" -v tck="$CLK_TCK" '{ sub(/^.*\) /, ""); print c, ($12 + $13) / tck }' "$t/stat"
    done 2>/dev/null | awk '{ s[$1] += $2; n[$1]++ } END { for (k in s) printf "%s(x%d)=%.1f\n", k, n[k], s[k] }' |
        sort -t= -k2 -rn | head -6 | paste -sd' ' -
}
wait_port() {
    local deadline=$((SECONDS + $3))
    until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}
wait_exit() {
    local deadline=$((SECONDS + $2))
    while kill -0 "$1" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}
kv() { grep -o "$1=[^ ]*" "$2" | tail -1 | cut -d= -f2; }

# Inclusive CPU share of each layer: the largest "children" percentage among the symbols
# that enter it (perf report --children). Layers nest (SRTP runs inside the session reader
# task, the muxer inside the recorder), so the shares overlap and do not sum to 100.
perf_layers() {
    local report=$1
    local layer pattern
    while IFS='|' read -r layer pattern; do
        awk -v l="$layer" -v p="$pattern" '
            /^ *[0-9.]+% +[0-9.]+%/ && $0 ~ p { v = $1; sub(/%/, "", v); if (v + 0 > best) best = v + 0 }
            END { printf "%6.1f%%  %s\n", best, l }' "$report"
    done <<'LAYERS'
UDP receive + ICE demux (UDP mux, STUN)|webrtc_ice::udp_mux::UDPMuxDefault::start_conn_worker|udp_mux_conn
DTLS/SRTP demux (webrtc mux endpoints)|webrtc::mux::Mux::read_loop
SRTP decrypt (AES-GCM/CTR, auth)|webrtc_srtp::session::Session::incoming|webrtc_srtp::context::.*decrypt
RTP/RTCP interceptors (NACK, RR, TWCC)|interceptor::(nack|report|twcc)
WHIP session (per-packet actor messages, timeline)|recnode_actors::ingest::whip::whip_session
RTP depacketizing (media crate)|recnode_media::rtp::RtpDepacketizer::push
stream actor (frame cache, batching)|recnode_actors::stream::stream_actor
fMP4 muxing (media crate)|recnode_media::fmp4::Fmp4Muxer::push
recorder writes + fsync|recnode_actors::recorder::writer|sync_data|fdatasync
kernel (all syscalls)|entry_SYSCALL_64|do_syscall_64
LAYERS
}

ROWS=()
NOTES=()
run_level() {
    local n=$1 dir=$WORK/n$1
    rm -rf "$dir"; mkdir -p "$dir"
    local udp_env=(RECNODE_WHIP__UDP_LISTEN=127.0.0.1:$WHIP_PORT)
    [ "$UDP_MODE" = range ] && udp_env=(RECNODE_WHIP__UDP_PORT_RANGE='[40000, 40999]')
    (cd "$dir" && exec env RECNODE_RECORDER__AUTO_STREAMS='["*"]' RECNODE_DATA__MIN_FREE_BYTES=0 \
        RECNODE_RTMP__LISTEN=127.0.0.1:$RTMP_PORT RECNODE_HTTP__LISTEN=127.0.0.1:$HTTP_PORT \
        "${udp_env[@]}" RUST_LOG=${RUST_LOG:-info} \
        /usr/bin/time -f "%e %U %S %M" -o "$dir/time.txt" "$RECNODE") >"$dir/node.log" 2>&1 &
    local tpid=$!
    STARTED_PIDS+=("$tpid")
    wait_port 127.0.0.1 "$HTTP_PORT" 30 || { log "node did not listen"; tail -5 "$dir/node.log" >&2; return 1; }
    local pid; pid=$(pgrep -P "$tpid" | head -1)
    local rss0; rss0=$(proc_rss_mb "$pid" VmRSS)
    local cpu0 t0; cpu0=$(proc_cpu_s "$pid"); t0=$(date +%s.%N)
    local perf_pid=""
    if [ "${BENCH_PERF:-}" = "$n" ]; then
        (sleep $((DURATION / 2)); exec perf record -F 99 --call-graph dwarf,16384 -p "$pid" \
            -o "$dir/perf.data" -- sleep 10) >"$dir/perf.log" 2>&1 &
        perf_pid=$!
    fi
    log "N=$n: publishing for ${DURATION}s ($UDP_MODE)"
    set +e
    /usr/bin/time -f "%e %U %S %M" -o "$dir/loadgen-time.txt" "$LOADGEN" whip \
        --url "http://127.0.0.1:$HTTP_PORT" --streams "$n" --video "$VIDEO" --audio "$AUDIO" \
        --fps 30 --duration-secs "$DURATION" --prefix whip- --ramp-ms 2000 \
        --threads "${BENCH_LOADGEN_THREADS:-1}" --check "$dir/recordings" --check-timeout-secs 60 >"$dir/loadgen.log" 2>&1
    local rc=$?
    set -e
    local cpu1 t1; cpu1=$(proc_cpu_s "$pid"); t1=$(date +%s.%N)
    local rss_peak; rss_peak=$(proc_rss_mb "$pid" VmHWM)
    local threads; threads=$(thread_cpu "$pid")
    [ -n "$perf_pid" ] && wait "$perf_pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$tpid" 60 || { kill -KILL "$pid" 2>/dev/null || true; }
    wait "$tpid" 2>/dev/null || true
    local bytes; bytes=$(du -sb "$dir/recordings" 2>/dev/null | cut -f1)
    local cpu; cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.1f", b - a }')
    local pct; pct=$(awk -v c="$cpu" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", 100 * c / (t1 - t0) }')
    local per_gb; per_gb=$(awk -v c="$cpu" -v b="${bytes:-0}" 'BEGIN { if (b > 0) printf "%.0f", c / (b / 1e9); else print "na" }')
    local per_stream; per_stream=$(awk -v p="$rss_peak" -v z="$rss0" -v n="$n" 'BEGIN { printf "%.1f", (p - z) / n }')
    read -r _ lg_u lg_s _ < <(tail -1 "$dir/loadgen-time.txt") || { lg_u=0; lg_s=0; }
    local result; result=$(kv result "$dir/loadgen.log"); result=${result:-FAIL}
    [ $rc -eq 0 ] || result=FAIL
    ROWS+=("| $n | $result | $(kv video_samples "$dir/loadgen.log")/$(kv video_frames "$dir/loadgen.log") v, $(kv audio_samples "$dir/loadgen.log")/$(kv audio_frames "$dir/loadgen.log") a | $(kv late_over_100ms "$dir/loadgen.log") | $cpu | $pct% | $rss0 → $rss_peak | $per_stream | $(awk -v b="${bytes:-0}" 'BEGIN { printf "%.0f", b / 1e6 }') | $per_gb | $(awk -v u="$lg_u" -v s="$lg_s" 'BEGIN { printf "%.1f", u + s }') |")
    NOTES+=("N=$n: node threads (CPU s): $threads; PLIs $(kv plis "$dir/loadgen.log"); node warnings $(grep -c WARN "$dir/node.log")")
    if [ -s "$dir/perf.data" ]; then
        perf report -i "$dir/perf.data" --children --sort symbol --stdio -g none 2>/dev/null >"$dir/perf.txt" || true
        perf report -i "$dir/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null >"$dir/perf-self.txt" || true
        NOTES+=("" "perf (N=$n, 10 s, inclusive share of the node's samples per layer):" "$(perf_layers "$dir/perf.txt" | sed 's/^/    /')")
        NOTES+=("" "top self time:" "$(grep -E '^ *[0-9.]+%' "$dir/perf-self.txt" | head -12 | cut -c1-140 | sed 's/ *$//; s/^/    /')")
    fi
    log "N=$n: $result node cpu=${cpu}s (${pct}%) rss=${rss0}->${rss_peak}MB bytes=$bytes"
    # The recordings are checked; keep the logs, not hundreds of MB of media.
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$dir/recordings" "$dir/data" "$dir/perf.data"
    [ "$result" = PASS ]
}

for n in "${LEVELS[@]}"; do
    run_level "$n" || { log "N=$n failed; stopping"; break; }
done

{
    echo "# WHIP ingest benchmark ($(date -u +%F), $(nproc) cores, UDP $UDP_MODE, ${DURATION}s per level)"
    echo
    echo "Source: 720p30 H264 baseline at 2.5 Mb/s + Opus 64 kb/s, replayed in real time by"
    echo "\`recnode-loadgen whip\` (webrtc-rs, ${BENCH_LOADGEN_THREADS:-1} runtime thread(s)) on the same machine."
    echo
    echo "| N | result | recorded/sent frames | late sends | node CPU s | node CPU | RSS MB idle → peak | RSS MB/stream | MB recorded | CPU s/GB | loadgen CPU s |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    printf '%s\n' "${NOTES[@]}"
} >"$RESULTS"
cat "$RESULTS"
