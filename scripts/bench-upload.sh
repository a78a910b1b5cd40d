#!/usr/bin/env bash
# Upload benchmark: recnode's uploader (the real Uploader actor: durable SQLite queue,
# worker pool, opendal S3) vs boto3 (scripts/s3client.py put-dir), same files, same
# concurrency, same local S3 server (s3s-fs on 127.0.0.1), in the same run.
#
#   scripts/bench-upload.sh
#
# 1. Throughput: BENCH_FILES files of BENCH_FILE_BYTES (default 200 x 625 KB: 2 s of a
#    2.5 Mbps stream each), spread over 50 record dirs; BENCH_ROUNDS rounds alternating
#    recnode and boto3; median MB/s of each and the ratio recnode/boto3 (goal >= 0.9).
# 2. Latency: BENCH_STREAMS (50) enqueuers each write one 625 KB segment into the spool
#    every 2 s for BENCH_LATENCY_SECS (60) s; enqueue -> stored (spool file deleted after
#    S3 confirmed) p50/p99/max.
# Env: BENCH_CONCURRENCY (4), BENCH_WORK (/tmp/recnode-bench-upload; removed at the end
# unless BENCH_KEEP=1).
# Writes bench/upload-results.md. Needs .tools/ from scripts/test.sh (s3s-fs, boto3).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-bench}
FILES=${BENCH_FILES:-200}
FILE_BYTES=${BENCH_FILE_BYTES:-625000}
ROUNDS=${BENCH_ROUNDS:-3}
CONCURRENCY=${BENCH_CONCURRENCY:-4}
STREAMS=${BENCH_STREAMS:-50}
LATENCY_SECS=${BENCH_LATENCY_SECS:-60}
WORK=${BENCH_WORK:-/tmp/recnode-bench-upload}
RESULTS=$ROOT/bench/upload-results.md
S3S=$ROOT/.tools/bin/s3s-fs
PY=$ROOT/.tools/venv/bin/python
BUCKET=recordings
export AWS_ACCESS_KEY_ID=recnode-bench AWS_SECRET_ACCESS_KEY=recnode-bench-secret AWS_REGION=us-east-1

log() { echo "[$(date +%T)] $*" >&2; }
[ -x "$S3S" ] && [ -x "$PY" ] || { echo "run scripts/test.sh once: it installs s3s-fs and boto3 into .tools" >&2; exit 1; }

S3_PID=
cleanup() {
    [ -n "$S3_PID" ] && kill "$S3_PID" 2>/dev/null || true
    # The files and the bucket take about 2 GB; BENCH_KEEP=1 keeps them.
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

log "building the benchmark driver (release)"
cargo build --release -q -p recnode-actors --example bench_upload
DRIVER=$CARGO_TARGET_DIR/release/examples/bench_upload

rm -rf "$WORK"
mkdir -p "$WORK/s3/$BUCKET" "$WORK/files" "$ROOT/bench"
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ENDPOINT=http://127.0.0.1:$PORT
"$S3S" --host 127.0.0.1 --port "$PORT" --access-key "$AWS_ACCESS_KEY_ID" \
    --secret-key "$AWS_SECRET_ACCESS_KEY" "$WORK/s3" >/dev/null 2>&1 &
S3_PID=$!
for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

log "making $FILES files of $FILE_BYTES bytes"
for i in $(seq 1 "$FILES"); do
    d=$WORK/files/s$(printf %03d $((i % 50)))/1700000000
    mkdir -p "$d"
    head -c "$FILE_BYTES" /dev/urandom >"$d/v_seg_$(printf %04d "$i").m4s"
done

value() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
RECNODE_RUNS=() BOTO_RUNS=()
for r in $(seq 1 "$ROUNDS"); do
    out=$("$DRIVER" throughput --endpoint "$ENDPOINT" --bucket "$BUCKET" --dir "$WORK/files" \
        --prefix "recnode-$r" --concurrency "$CONCURRENCY")
    log "round $r recnode: $out"
    RECNODE_RUNS+=("$(echo "$out" | value mb_per_s)")
    out=$("$PY" "$ROOT/scripts/s3client.py" --endpoint "$ENDPOINT" --bucket "$BUCKET" \
        --threads "$CONCURRENCY" put-dir "$WORK/files" "boto3-$r")
    log "round $r boto3:   $out"
    BOTO_RUNS+=("$(echo "$out" | value mb_per_s)")
done
RECNODE_MBS=$(printf '%s\n' "${RECNODE_RUNS[@]}" | median)
BOTO_MBS=$(printf '%s\n' "${BOTO_RUNS[@]}" | median)
RATIO=$(awk -v a="$RECNODE_MBS" -v b="$BOTO_MBS" 'BEGIN {printf "%.2f", a / b}')
log "throughput: recnode $RECNODE_MBS MB/s, boto3 $BOTO_MBS MB/s, ratio $RATIO (goal >= 0.9)"

log "latency: $STREAMS streams x one $FILE_BYTES-byte segment every 2 s for $LATENCY_SECS s"
LAT=$("$DRIVER" latency --endpoint "$ENDPOINT" --bucket "$BUCKET" --work "$WORK/latency" \
    --concurrency "$CONCURRENCY" --streams "$STREAMS" --seconds "$LATENCY_SECS" \
    --segment-bytes "$FILE_BYTES" --interval 2)
log "latency: $LAT"

{
    echo "# Upload benchmark ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "s3s-fs 0.14.1 on 127.0.0.1, $(nproc) cores; concurrency $CONCURRENCY; $FILES files x $FILE_BYTES bytes."
    echo
    echo "| client | MB/s (median of $ROUNDS) | runs |"
    echo "|---|---|---|"
    echo "| recnode Uploader | $RECNODE_MBS | ${RECNODE_RUNS[*]} |"
    echo "| boto3 put_object | $BOTO_MBS | ${BOTO_RUNS[*]} |"
    echo
    echo "Ratio recnode / boto3: **$RATIO** (goal >= 0.9)."
    echo
    echo "Latency, $STREAMS streams each enqueueing one segment every 2 s for $LATENCY_SECS s:"
    echo
    echo "    $LAT"
} >"$RESULTS"
cat "$RESULTS"
