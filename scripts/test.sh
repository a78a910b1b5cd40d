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

# Placeholder for the storage issue: install and start an S3-compatible server for
# the object-storage tests. Nothing needs one yet.
ensure_s3_server() {
    :
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

if have_nextest; then
    cargo nextest run --workspace --no-fail-fast "$@"
    # nextest does not run doctests.
    cargo test --workspace --doc
else
    log "cargo-nextest unavailable; using cargo test"
    cargo test --workspace --no-fail-fast "$@"
fi
