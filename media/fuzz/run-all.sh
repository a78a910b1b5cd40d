#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 300) and prints libFuzzer's final
# exec count for each. cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the
# machine's stable toolchain accept them.
#   cargo install --locked cargo-fuzz && media/fuzz/run-all.sh 300
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SECONDS_PER_TARGET=${1:-300}
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build -O >/dev/null
for t in $targets; do
    mkdir -p "corpus/$t"
    log="artifacts/$t.log"
    mkdir -p artifacts
    cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 >"$log" 2>&1 || {
        echo "$t: FAILED (see media/fuzz/$log)"
        continue
    }
    execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "$t: ${execs:-?} execs in ${SECONDS_PER_TARGET}s, no crash"
done
