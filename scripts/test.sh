#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the unit tests, and the cross-process
# tests against the real agent-service binary on SQLite and PostgreSQL.
# Installs what is missing (PostgreSQL from Debian's packages) and starts it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_ensure build-essential pkg-config libdbus-1-dev dbus-x11 gnome-keyring
start_postgres
disk_report "start"

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
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

disk_report "after clippy"
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
