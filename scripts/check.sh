#!/usr/bin/env bash
# The inner loop: what to run while working, a few minutes on a warm checkout.
#   1. cargo fmt --check                          (seconds: stops here on a formatting slip)
#   2. cargo clippy over the workspace, every target, warnings denied
#   3. the unit tests of every crate, and agent-service's cross-process API tests
#      (agent-service/tests/api: the real binary over HTTP) on SQLite — and on PostgreSQL
#      when TEST_POSTGRES_URL names a server (`source scripts/lib.sh && start_postgres`).
#   4. the real-model tests (llama.cpp's server with SmolLM2-135M) when the model is
#      installed: TEST_MODEL_PYTHON is set, or scripts/setup-model.sh made .venv-model/.
# Without TEST_POSTGRES_URL the PostgreSQL variants are left out and reported as skipped,
# never as passed; without the model the real-model tests likewise. With CI=true either
# absence is an error instead. The tests that wait a minute or more by design (LONG_TESTS
# in scripts/lib.sh) are left out and reported likewise unless CHECK_LONG=1 or CI=true.
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

if [ -z "${TEST_MODEL_PYTHON:-}" ] && [ -x .venv-model/bin/python ]; then
  export TEST_MODEL_PYTHON="$PWD/.venv-model/bin/python"
fi
if [ -z "${TEST_MODEL_PYTHON:-}" ] && [ "${CI:-}" = true ]; then
  echo "TEST_MODEL_PYTHON is not set: in CI the real-model tests must run (eval \"\$(scripts/setup-model.sh --export)\")" >&2
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
count() { cargo nextest list "${targets[@]}" -E "$1" --message-format oneline | { grep -c . || true; }; }
skipped_pg=0
skipped_model=0
skipped_long=0
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  skipped_pg=$(count "$POSTGRES_VARIANTS")
  filter="$filter & not ($POSTGRES_VARIANTS)"
  log "unit tests and the API tests on SQLite"
else
  log "unit tests and the API tests on SQLite and PostgreSQL (${TEST_POSTGRES_URL%%@*}@…)"
fi
if [ -z "${TEST_MODEL_PYTHON:-}" ]; then
  skipped_model=$(count "$REAL_MODEL_TESTS")
  filter="$filter & not ($REAL_MODEL_TESTS)"
fi
if [ "${CHECK_LONG:-}" != 1 ] && [ "${CI:-}" != true ]; then
  skipped_long=$(count "$filter & ($LONG_TESTS)")
  filter="$filter & not ($LONG_TESTS)"
fi
rc=0
cargo nextest run "${targets[@]}" -E "$filter" --no-fail-fast || rc=$?

# Said after the run's summary, pass or fail, so that nobody reads the skipped as passed.
if [ "$skipped_pg" -gt 0 ]; then
  log "skipped $skipped_pg PostgreSQL variants: TEST_POSTGRES_URL is not set — scripts/test.sh starts PostgreSQL and runs them"
fi
if [ "$skipped_model" -gt 0 ]; then
  log "skipped $skipped_model real-model tests: the model is not installed — scripts/setup-model.sh installs it (scripts/test.sh does)"
fi
if [ "$skipped_long" -gt 0 ]; then
  log "skipped $skipped_long long test(s) that wait a minute or more by design (a webhook receiver down for a minute): CHECK_LONG=1 runs them here, scripts/test.sh always does"
fi
if [ "$rc" != 0 ]; then
  log "check.sh failed after $(( $(date +%s) - start )) s"
  exit "$rc"
fi
log "check.sh passed in $(( $(date +%s) - start )) s"
