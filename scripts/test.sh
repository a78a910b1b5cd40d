#!/usr/bin/env bash
# The one test command: installs what the tests need (if missing), then runs the
# whole workspace suite. Safe to run repeatedly; installs nothing that is present.
#
#   ./scripts/test.sh              # everything
#   ./scripts/test.sh -E 'test(x)' # extra arguments go to cargo nextest
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }

# Runs a command as root: directly when we are root, otherwise through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root (or sudo) to run: $*"
        return 1
    fi
}

APT_UPDATED=0
# Installs Debian packages, running `apt-get update` at most once per run.
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root apt-get update
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# Media tests (media/tests/) check artifacts with ffprobe and decode them with ffmpeg.
ensure_ffmpeg() {
    if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
        return
    fi
    log "installing ffmpeg (Debian package)"
    apt_install ffmpeg
}

# Tools the tests need that Debian does not package live under .tools/ (git-ignored),
# so a second run installs nothing.
TOOLS="$PWD/.tools"

# The object-storage tests start their own S3 server on loopback: s3s-fs, a real S3
# implementation over a local directory (tests/common/s3.rs starts and stops it).
ensure_s3_server() {
    if [ -x "$TOOLS/bin/s3s-fs" ]; then
        return
    fi
    log "installing s3s-fs 0.14.1 into $TOOLS"
    cargo install --locked s3s-fs --version 0.14.1 --features binary --root "$TOOLS" >&2
}

# An S3 client we did not write (boto3), for the tests to read the bucket with and for
# the upload benchmark to compare against, and a WebRTC client we did not write (aiortc,
# run by scripts/whip_publish.py in the WHIP tests); in a venv so the system Python is
# untouched.
ensure_python_tools() {
    if [ -x "$TOOLS/venv/bin/python" ] && "$TOOLS/venv/bin/python" -c 'import boto3, aiortc' 2>/dev/null; then
        return
    fi
    if ! python3 -m venv --help >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    log "installing boto3 and aiortc into $TOOLS/venv"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet boto3 aiortc==1.16.0
}

# cargo-nextest runs the suite; without it (and if it cannot be installed) the
# suite falls back to `cargo test`.
have_nextest() {
    if cargo nextest --version >/dev/null 2>&1; then
        return 0
    fi
    log "installing cargo-nextest"
    cargo install --locked cargo-nextest >&2 || log "cargo-nextest install failed"
    cargo nextest --version >/dev/null 2>&1
}

ensure_ffmpeg
ensure_s3_server
ensure_python_tools

if have_nextest; then
    cargo nextest run --workspace --no-fail-fast "$@"
    # nextest does not run doctests.
    cargo test --workspace --doc
else
    log "cargo-nextest unavailable; using cargo test"
    cargo test --workspace --no-fail-fast "$@"
fi
