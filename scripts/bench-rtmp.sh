#!/usr/bin/env bash
# RTMP ingest benchmark: recnode vs nginx-rtmp on this machine, loopback only.
#
#   scripts/bench-rtmp.sh [N ...]      default levels: 10 50 100 200 300 400
#
# For each N (ascending) it starts a fresh recnode (auto-record, temp cwd, 127.0.0.1
# ports), publishes N real-time 2.5 Mbps streams for BENCH_DURATION s with
# recnode-loadgen, waits for the recordings to close, sends SIGTERM, waits for exit and
# measures CPU (user+sys of the process, /usr/bin/time), peak RSS (VmHWM), bytes
# recorded, frames lost and storage lag (recnode-loadgen check). Then the same load
# against nginx-rtmp (record all). Levels after the first recnode failure are skipped.
# Writes bench/rtmp-results.md (BENCH_RESULTS to write elsewhere). Env: BENCH_DURATION (30),
# BENCH_WORK (/tmp/recnode-bench), BENCH_BUDGET_SECS (1800: no new level starts after
# this), BENCH_SKIP_NGINX=1, BENCH_CONTINUE_ON_LAG=1 (keep raising N while only the lag
# bound fails), BENCH_RECNODE_BIN / BENCH_LOADGEN_BIN (prebuilt binaries: no build, for
# comparing two builds; BENCH_LABEL describes them), BENCH_KEEP=1 (keep each level's
# recordings; by default they are deleted once measured). A level whose recordings would
# not fit on the disk (with 2 GB to spare) is skipped. BENCH_FS=loop runs both servers on
# a fresh journaled ext4 in a loop-mounted image under BENCH_WORK (root needed) instead of
# the machine's own filesystem: this machine's root is ext4 without a journal, where
# creating a file scans past every inode freed in the last 1-5 minutes, so file churn
# (and the benchmark's own deletes between levels) costs far more than on a journaled fs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-bench}
DURATION=${BENCH_DURATION:-30}
WORK=${BENCH_WORK:-/tmp/recnode-bench}
BUDGET=${BENCH_BUDGET_SECS:-1800}
MAX_LAG_MS=1000
RTMP_PORT=21935
HTTP_PORT=27777
NGINX_PORT=31935
LEVELS=("$@")
[ ${#LEVELS[@]} -gt 0 ] || LEVELS=(10 50 100 200 300 400)
RESULTS=${BENCH_RESULTS:-$ROOT/bench/rtmp-results.md}
START_TS=$(date +%s)

mkdir -p "$WORK" "$ROOT/bench"
STARTED_PIDS=()
LOOP_MNT=""
cleanup() {
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 1
    for pid in "${STARTED_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ -n "$LOOP_MNT" ]; then
        umount "$LOOP_MNT" 2>/dev/null || umount -l "$LOOP_MNT" 2>/dev/null || true
        rm -f "$LOOP_MNT.img"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%T)] $*" >&2; }

# ---- dependencies and builds -------------------------------------------------------
command -v ffmpeg >/dev/null || { apt-get update -qq && apt-get install -y -qq ffmpeg; }
if [ -z "${BENCH_SKIP_NGINX:-}" ] && { ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_rtmp_module.so ]; }; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-rtmp
fi
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }

SRC=$WORK/src.flv
if [ ! -s "$SRC" ]; then
    log "encoding the 20 s 1080p30 2.5 Mbps source (once)"
    ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 \
        -f lavfi -i sine=sample_rate=44100 -t 20 -c:v libx264 -preset ultrafast \
        -b:v 2400k -maxrate 2500k -bufsize 5000k -g 60 -bf 2 -c:a aac -b:a 96k "$SRC.tmp.flv"
    mv "$SRC.tmp.flv" "$SRC"
fi

if [ -n "${BENCH_RECNODE_BIN:-}" ] && [ -n "${BENCH_LOADGEN_BIN:-}" ]; then
    RECNODE=$BENCH_RECNODE_BIN
    LOADGEN=$BENCH_LOADGEN_BIN
    BUILD_NOTE="prebuilt $RECNODE${BENCH_LABEL:+: $BENCH_LABEL}"
else
    log "building recnode and recnode-loadgen (release, $CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --release -q -p recnode -p recnode-loadgen)
    RECNODE=$CARGO_TARGET_DIR/release/recnode
    LOADGEN=$CARGO_TARGET_DIR/release/recnode-loadgen
    BUILD_NOTE="built from the work tree"
fi
CLK_TCK=$(getconf CLK_TCK)

FS_NOTE="the machine's own filesystem under $WORK ($(df -PT "$WORK" | awk 'NR == 2 { print $2 }'))"
if [ "${BENCH_FS:-}" = loop ]; then
    LOOP_MNT=$WORK/fs
    umount "$LOOP_MNT" 2>/dev/null || true
    mkdir -p "$LOOP_MNT"
    avail_gb=$(df -Pk "$WORK" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
    size_gb=$(( avail_gb - 10 < 40 ? avail_gb - 10 : 40 ))
    [ "$size_gb" -ge 5 ] || { log "not enough disk for a loop filesystem"; exit 1; }
    log "making a fresh ${size_gb} GB journaled ext4 in $LOOP_MNT.img"
    rm -f "$LOOP_MNT.img"
    truncate -s "${size_gb}G" "$LOOP_MNT.img"
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$LOOP_MNT.img"
    mount -o loop "$LOOP_MNT.img" "$LOOP_MNT"
    WORK=$LOOP_MNT
    FS_NOTE="a fresh ${size_gb} GB ext4 with a journal, loop-mounted (BENCH_FS=loop)"
fi

# ---- helpers -------------------------------------------------------------------------
# utime+stime of a process in seconds, from /proc/PID/stat.
proc_cpu_s() {
    awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo na
}
# VmHWM of a process in MB.
proc_hwm_mb() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo na; }
# CPU seconds per thread name, top 8, as "name=s,…".
thread_cpu() {
    for t in /proc/"$1"/task/*; do
        comm=$(tr ' ' '_' <"$t/comm")
        awk -v c="$comm" -v tck="$CLK_TCK" '{ sub(/^.*\) /, ""); print c, ($12 + $13) / tck }' "$t/stat"
    done 2>/dev/null | awk '{ s[$1] += $2; n[$1]++ } END { for (k in s) printf "%s(x%d)=%.1f\n", k, n[k], s[k] }' |
        sort -t= -k2 -rn | head -8 | paste -sd' ' -
}
wait_port() { # host port timeout_s
    local deadline=$((SECONDS + $3))
    until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}
# Waits up to $2 s for pid $1 to exit; 0 if it did.
wait_exit() {
    local deadline=$((SECONDS + $2))
    while kill -0 "$1" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}
kv() { grep -o "$1=[^ ]*" "$2" | tail -1 | cut -d= -f2; }
# The 1-minute load average (other work on the machine skews CPU numbers).
loadavg() { cut -d' ' -f1 /proc/loadavg; }
# Whether N streams of DURATION s fit on the disk under WORK: fMP4 + FLV at ~2.5 Mbps each,
# counted twice (spool and storage may hold a file at once), plus 2 GB to spare.
fits_on_disk() {
    local need_kb avail_kb
    need_kb=$(awk -v n="$1" -v d="$DURATION" 'BEGIN { printf "%d", n * d * 2.5e6 / 8 * 2 * 2 / 1024 + 2 * 1048576 }')
    avail_kb=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
    [ "$avail_kb" -ge "$need_kb" ]
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "na" || b == "na") print "na"; else printf "%.2f", a / b }'; }

ROWS=()
RATIOS=()
NOTES=()

# ---- recnode run ---------------------------------------------------------------------
run_recnode() {
    local n=$1 dir=$WORK/recnode-$1
    rm -rf "$dir"; mkdir -p "$dir"
    log "recnode N=$n: starting node"
    (cd "$dir" && exec env RECNODE_RECORDER__AUTO_STREAMS='["*"]' \
        RECNODE_RTMP__LISTEN=127.0.0.1:$RTMP_PORT RECNODE_HTTP__LISTEN=127.0.0.1:$HTTP_PORT \
        RUST_LOG=${RUST_LOG:-info} \
        /usr/bin/time -f "%e %U %S %M" -o "$dir/time.txt" "$RECNODE") >"$dir/node.log" 2>&1 &
    local tpid=$!
    STARTED_PIDS+=("$tpid")
    sleep 0.3
    local pid
    pid=$(pgrep -P "$tpid" | head -1)
    STARTED_PIDS+=("$pid")
    if ! wait_port 127.0.0.1 $RTMP_PORT 30; then
        log "recnode did not listen"; tail -20 "$dir/node.log" >&2; return 1
    fi
    local cpu0 t0 load0 load1; cpu0=$(proc_cpu_s "$pid"); t0=$(date +%s.%N); load0=$(loadavg)
    log "recnode N=$n: publishing for ${DURATION}s"
    set +e
    /usr/bin/time -f "%e %U %S %M" -o "$dir/loadgen-time.txt" "$LOADGEN" rtmp \
        --url "rtmp://127.0.0.1:$RTMP_PORT/live" --streams "$n" --file "$SRC" \
        --duration-secs "$DURATION" --prefix bench- --report "$dir/sent.json" \
        >"$dir/loadgen.log" 2>&1
    local lg_rc=$?
    set -e
    local cpu_load t1; cpu_load=$(proc_cpu_s "$pid"); t1=$(date +%s.%N); load1=$(loadavg)
    # Wait (≤ 30 s) for every recording to be closed and stored.
    local drain_start=$SECONDS done_n=0
    while [ $((SECONDS - drain_start)) -lt 30 ]; do
        done_n=$(grep -l '"completed"' "$dir"/recordings/bench-*/*/session.json 2>/dev/null | wc -l)
        [ "$done_n" -ge "$n" ] && break
        sleep 0.5
    done
    local drain_s=$((SECONDS - drain_start))
    local hwm threads cpu_pre
    hwm=$(proc_hwm_mb "$pid"); threads=$(thread_cpu "$pid"); cpu_pre=$(proc_cpu_s "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    local exit_note="exited"
    if ! wait_exit "$tpid" 60; then
        exit_note="KILLED (no exit 60 s after SIGTERM)"; kill -KILL "$pid" 2>/dev/null || true
        wait_exit "$tpid" 10 || true
    fi
    wait "$tpid" 2>/dev/null || true
    read -r _ usr sys maxrss_kb <"$dir/time.txt" || { usr=na; sys=na; maxrss_kb=0; }
    local cpu; cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    local bytes; bytes=$(du -sb "$dir/recordings" 2>/dev/null | cut -f1); bytes=${bytes:-0}
    local spool_left; spool_left=$(find "$dir/data/spool" -type f 2>/dev/null | wc -l)
    set +e
    "$LOADGEN" check --recordings "$dir/recordings" --sent "$dir/sent.json" \
        --max-lag-ms $MAX_LAG_MS >"$dir/check.log" 2>&1
    local ck_rc=$?
    set -e
    local gb; gb=$(awk -v b="$bytes" 'BEGIN { printf "%.3f", b / 1e9 }')
    local sent_b; sent_b=$(kv bytes "$dir/loadgen.log")
    local load_pct; load_pct=$(awk -v a="$cpu0" -v b="$cpu_load" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / (t1 - t0) }')
    read -r _ lg_u lg_s _ <"$dir/loadgen-time.txt" || { lg_u=0; lg_s=0; }
    local result=PASS
    [ $ck_rc -eq 0 ] && [ $lg_rc -eq 0 ] && [ "$exit_note" = exited ] || result=FAIL
    R_CPU_PER_GB=$(div "$cpu" "$gb")
    R_CPU_PER_SENT_GB=$(div "$cpu" "$(awk -v b="${sent_b:-0}" 'BEGIN { print b / 1e9 }')")
    R_RESULT=$result
    # What failed: frames (incomplete recordings, publish errors, crash) or only the lag.
    R_KIND=pass
    if [ "$result" = FAIL ]; then
        if [ "$(kv failed "$dir/check.log")" = 0 ] && [ $lg_rc -eq 0 ] && [ "$exit_note" = exited ]; then
            R_KIND=lag
        else
            R_KIND=frames
        fi
    fi
    R_LOAD_PCT=$load_pct
    ROWS+=("| $n | recnode | $result | $(kv video_samples "$dir/check.log")/$(kv video_frames "$dir/loadgen.log") v, $(kv audio_samples "$dir/check.log")/$(kv audio_frames "$dir/loadgen.log") a | $(kv passed "$dir/check.log")/$n | $(kv lag_p50_ms "$dir/check.log") / $(kv lag_p99_ms "$dir/check.log") / $(kv lag_max_ms "$dir/check.log") (excl. final $(kv lag_max_excl_final_ms "$dir/check.log")) | $cpu | $load_pct% | $hwm | $(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }') | $R_CPU_PER_GB | $R_CPU_PER_SENT_GB | $(kv lateness_max_ms "$dir/loadgen.log") | $(awk -v u="$lg_u" -v s="$lg_s" 'BEGIN { printf "%.1f", u + s }') |")
    NOTES+=("recnode N=$n: $exit_note; drain to all-completed ${drain_s}s (found $done_n/$n completed); CPU at SIGTERM ${cpu_pre}s vs total $cpu s; spool files left $spool_left; load average at start / end of publish $load0 / $load1; per-thread CPU s: $threads")
    if [ "$result" = FAIL ]; then
        NOTES+=("recnode N=$n FAILED: loadgen rc=$lg_rc check rc=$ck_rc; check: $(grep -m3 '^FAIL' "$dir/check.log" | cut -c1-300 | paste -sd'|' -) ; $(tail -1 "$dir/check.log"); loadgen errors: $(grep -c ERROR "$dir/loadgen.log"); node warnings/errors: $(grep -cE 'WARN|ERROR' "$dir/node.log")")
    fi
    log "recnode N=$n: $result cpu=${cpu}s rss=${hwm}MB bytes=$bytes $(tail -1 "$dir/check.log")"
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$dir/recordings" "$dir/data"
}

# ---- nginx-rtmp run ------------------------------------------------------------------
run_nginx() {
    local n=$1 dir=$WORK/nginx-$1
    rm -rf "$dir"; mkdir -p "$dir/rec" "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
rtmp {
    server {
        listen 127.0.0.1:$NGINX_PORT;
        chunk_size 4096;
        application live {
            live on;
            record all;
            record_path $dir/rec;
        }
    }
}
EOF
    log "nginx-rtmp N=$n: starting"
    /usr/bin/time -f "%e %U %S %M" -o "$dir/time.txt" nginx -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" \
        >"$dir/nginx.out" 2>&1 &
    local tpid=$!
    STARTED_PIDS+=("$tpid")
    sleep 0.3
    local pid; pid=$(pgrep -P "$tpid" | head -1)
    STARTED_PIDS+=("$pid")
    if ! wait_port 127.0.0.1 $NGINX_PORT 30; then
        log "nginx did not listen"; cat "$dir/nginx.out" "$dir/logs/error.log" >&2; return 1
    fi
    local cpu0 t0; cpu0=$(proc_cpu_s "$pid"); t0=$(date +%s.%N)
    set +e
    /usr/bin/time -f "%e %U %S %M" -o "$dir/loadgen-time.txt" "$LOADGEN" rtmp \
        --url "rtmp://127.0.0.1:$NGINX_PORT/live" --streams "$n" --file "$SRC" \
        --duration-secs "$DURATION" --prefix bench- --report "$dir/sent.json" \
        >"$dir/loadgen.log" 2>&1
    local lg_rc=$?
    set -e
    local cpu_load t1; cpu_load=$(proc_cpu_s "$pid"); t1=$(date +%s.%N)
    sleep 2
    local hwm; hwm=$(proc_hwm_mb "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$tpid" 30 || kill -KILL "$pid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    read -r _ usr sys maxrss_kb <"$dir/time.txt" || { usr=na; sys=na; }
    local cpu; cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    local bytes; bytes=$(du -sb "$dir/rec" | cut -f1)
    local files; files=$(find "$dir/rec" -name '*.flv' | wc -l)
    local gb; gb=$(awk -v b="$bytes" 'BEGIN { printf "%.3f", b / 1e9 }')
    local sent_b; sent_b=$(kv bytes "$dir/loadgen.log")
    local load_pct; load_pct=$(awk -v a="$cpu0" -v b="$cpu_load" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / (t1 - t0) }')
    read -r _ lg_u lg_s _ <"$dir/loadgen-time.txt" || { lg_u=0; lg_s=0; }
    local result=ran; [ $lg_rc -eq 0 ] || result="publish errors"
    N_CPU_PER_GB=$(div "$cpu" "$gb")
    N_CPU_PER_SENT_GB=$(div "$cpu" "$(awk -v b="${sent_b:-0}" 'BEGIN { print b / 1e9 }')")
    ROWS+=("| $n | nginx-rtmp | $result ($files FLV files; not frame-checked) | $(kv video_frames "$dir/loadgen.log") v, $(kv audio_frames "$dir/loadgen.log") a sent | – | – | $cpu | $load_pct% | $hwm | $(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }') | $N_CPU_PER_GB | $N_CPU_PER_SENT_GB | $(kv lateness_max_ms "$dir/loadgen.log") | $(awk -v u="$lg_u" -v s="$lg_s" 'BEGIN { printf "%.1f", u + s }') |")
    log "nginx N=$n: cpu=${cpu}s rss=${hwm}MB bytes=$bytes files=$files"
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$dir/rec"
}

# ---- main loop -----------------------------------------------------------------------
FUZZ=$(ps -eo pid,ni,pcpu,etime,comm --sort=-pcpu | awk 'NR > 1 && $2 > 0 && $3 > 5' | head -3 | paste -sd';' -)
LOAD_START=$(loadavg)
BEST=none
NOLOSS=none
for n in "${LEVELS[@]}"; do
    if [ $(($(date +%s) - START_TS)) -gt "$BUDGET" ]; then
        NOTES+=("levels from N=$n on skipped: time budget ${BUDGET}s used up"); break
    fi
    if ! fits_on_disk "$n"; then
        NOTES+=("levels from N=$n on skipped: not enough free disk under $WORK"); break
    fi
    R_RESULT=FAIL; R_KIND=frames; R_LOAD_PCT=0; R_CPU_PER_GB=na; R_CPU_PER_SENT_GB=na
    run_recnode "$n" || { NOTES+=("recnode N=$n: node did not start"); break; }
    if [ -z "${BENCH_SKIP_NGINX:-}" ]; then
        N_CPU_PER_GB=na; N_CPU_PER_SENT_GB=na
        run_nginx "$n" || NOTES+=("nginx N=$n: did not start")
        RATIOS+=("| $n | $R_RESULT | $R_CPU_PER_GB | $N_CPU_PER_GB | $(div "$R_CPU_PER_GB" "$N_CPU_PER_GB") | $(div "$R_CPU_PER_SENT_GB" "$N_CPU_PER_SENT_GB") |")
    fi
    [ "$R_KIND" = frames ] || NOLOSS=$n
    if [ "$R_RESULT" = PASS ]; then
        BEST=$n
    elif [ "$R_KIND" = lag ] && [ -n "${BENCH_CONTINUE_ON_LAG:-}" ]; then
        NOTES+=("recnode N=$n failed only the 1 s lag bound; BENCH_CONTINUE_ON_LAG set, so higher levels still run (for frame loss and CPU)")
    else
        break
    fi
    if [ "${R_LOAD_PCT:-0}" -ge 180 ]; then
        NOTES+=("recnode N=$n used ${R_LOAD_PCT}% CPU (of 200%) while publishing: machine saturated, stopping"); break
    fi
done

# ---- report --------------------------------------------------------------------------
{
    echo "# RTMP ingest benchmark: recnode vs nginx-rtmp"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- recnode $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- src actors media 2>/dev/null || echo ' (+ uncommitted changes)') ($BUILD_NOTE), nginx $(nginx -v 2>&1 | cut -d/ -f2) + libnginx-mod-rtmp"
    echo "- load: N publishers × ${DURATION} s of a 20 s 1920x1080 30 fps H264 (ultrafast, ~2.4 Mbps, GOP 60, 2 B-frames) + AAC 96k FLV looped, real-time pace, starts spread over 2 s; recnode-loadgen on one thread on the same machine"
    echo "- storage: spool, storage root and nginx recordings all on $FS_NOTE"
    echo "- other load on the machine at start: ${FUZZ:-none seen} (niced); load average at start $LOAD_START (2 cores)"
    echo "- largest N with no frame lost and every segment in storage ≤ ${MAX_LAG_MS} ms after its last frame was sent: **$BEST** (levels given: ${LEVELS[*]})"
    echo "- largest N with no frame lost (lag not considered): **$NOLOSS**"
    echo
    echo "| N | server | check | samples recorded / frames sent | streams passed | storage lag p50 / p99 / max ms | CPU user+sys s | CPU during publish (% of one core) | peak RSS MB | recorded MB | CPU s per recorded GB | CPU s per ingested GB | loadgen max lateness ms | loadgen CPU s |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    if [ ${#RATIOS[@]} -gt 0 ]; then
        echo
        echo "| N | recnode check | recnode CPU s/GB recorded | nginx-rtmp CPU s/GB recorded | ratio (goal ≤ 0.5) | ratio per ingested GB |"
        echo "|---|---|---|---|---|---|"
        printf '%s\n' "${RATIOS[@]}"
    fi
    echo
    echo "## How each number is measured"
    echo
    echo "- CPU user+sys: /usr/bin/time (getrusage of the server process, whole life: start, load, drain, shutdown). nginx runs with master_process off, one worker, so it is one process."
    echo "- CPU during publish: utime+stime from /proc/PID/stat at loadgen start and end, over the wall time between."
    echo "- peak RSS: VmHWM from /proc/PID/status just before SIGTERM."
    echo "- recorded bytes: du -sb of the storage root (recnode: DASH segments + manifest + FLV + session.json; nginx: one FLV per stream). recnode writes each stream twice (fMP4 and FLV), so per recorded GB favours it; the per-ingested-GB column divides by the bytes the loadgen wrote instead."
    echo "- samples recorded: recnode-loadgen check sums trun sample counts of every v_seg_/a_seg_ segment (mp4-atom) and compares them per stream with the frames the loadgen sent; it also requires one record dir, a static manifest and session.json outcome completed."
    echo "- storage lag: for each segment, the time its name appeared in storage (ctime: the uploader's rename or hard link) minus the wall time the loadgen finished writing the segment's last frame (frame k of a track = k-th frame sent on it). Includes the wait for the next keyframe that closes a segment. The final segment of each track is written when the publish ends and is also listed separately."
    echo "- loadgen lateness: how long after its real-time due time a frame started going out."
    echo
    echo "## Notes"
    echo
    printf -- '- %s\n' "${NOTES[@]}"
} >"$RESULTS"
cat "$RESULTS"
