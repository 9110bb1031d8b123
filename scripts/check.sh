#!/usr/bin/env bash
# The inner loop: what to run while working, a few minutes on a warm checkout.
#   1. cargo fmt --check                          (seconds: stops here on a formatting slip)
#   2. cargo clippy over the workspace, every target, warnings denied
#   3. the unit tests of every crate, and agent-service's cross-process API tests
#      (agent-service/tests/api: the real binary over HTTP) on SQLite — and on PostgreSQL
#      when TEST_POSTGRES_URL names a server (`source scripts/lib.sh && start_postgres`).
# Without TEST_POSTGRES_URL the PostgreSQL variants are left out and reported as skipped,
# never as passed; with CI=true a missing TEST_POSTGRES_URL is an error instead.
# It installs no system package (it builds ui/dist if missing: the Tauri shell embeds it),
# starts no server and runs no browser, desktop or deploy check:
# scripts/test.sh runs all of those (and the console core's cross-process tests), and CI
# runs scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

start=$(date +%s)
check_fmt

if [ -z "${TEST_POSTGRES_URL:-}" ] && [ "${CI:-}" = true ]; then
  echo "TEST_POSTGRES_URL is not set: in CI every PostgreSQL variant must run (scripts/test.sh starts PostgreSQL and sets it)" >&2
  exit 1
fi

missing=$(missing_packages "${RUST_BUILD_PACKAGES[@]}")
if [ -n "$missing" ]; then
  echo "missing Debian packages the workspace needs to compile: $missing" >&2
  echo "install them (sudo apt-get install $missing) or run scripts/test.sh once, which does" >&2
  exit 1
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "cargo-nextest is missing: cargo install cargo-nextest --locked" >&2
  exit 1
fi
ensure_ui_dist

check_clippy

# Unit tests (libraries and binaries) of every crate, plus agent-service's API tests.
targets=(--workspace --lib --bins --test api --locked)
filter='all()'
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  skipped=$(cargo nextest list "${targets[@]}" -E "$POSTGRES_VARIANTS" --message-format oneline | { grep -c . || true; })
  filter="not ($POSTGRES_VARIANTS)"
  log "unit tests and the API tests on SQLite"
else
  skipped=0
  log "unit tests and the API tests on SQLite and PostgreSQL (${TEST_POSTGRES_URL%%@*}@…)"
fi
rc=0
cargo nextest run "${targets[@]}" -E "$filter" --no-fail-fast || rc=$?

# Said after the run's summary, pass or fail, so that nobody reads the skipped as passed.
if [ "$skipped" -gt 0 ]; then
  log "skipped $skipped PostgreSQL variants: TEST_POSTGRES_URL is not set — scripts/test.sh starts PostgreSQL and runs them"
fi
if [ "$rc" != 0 ]; then
  log "check.sh failed after $(( $(date +%s) - start )) s"
  exit "$rc"
fi
log "check.sh passed in $(( $(date +%s) - start )) s"
