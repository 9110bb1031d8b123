#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the unit tests, and the cross-process
# tests against the real agent-service binary on SQLite and PostgreSQL.
# Installs what is missing (PostgreSQL from Debian's packages) and starts it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_ensure build-essential pkg-config libdbus-1-dev dbus-x11 gnome-keyring
start_postgres

bash scripts/test-deploy.sh
bash scripts/test-ui.sh
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests (SQLite and PostgreSQL at ${TEST_POSTGRES_URL%%@*}@…)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
