#!/usr/bin/env bash
# Fuzzes the agent-service's HTTP API from its own OpenAPI document with Schemathesis
# (PyPI, pinned, installed into `.venv-fuzz/` at the repository root, git-ignored) against
# the real binary: a fresh seeded SQLite database, the demo tenant's admin key, every check
# Schemathesis has, every phase. Fails on any failure: a 5xx, a status the document does not
# list for the operation, a body, header or content type that does not match it, data the
# document calls invalid accepted or valid data refused.
#
# Usage: scripts/fuzz-api.sh [examples_per_operation=25]
# Environment: FUZZ_BIN (fuzz this binary instead of the debug build), FUZZ_VENV (the venv's
# place), FUZZ_SEED (Schemathesis' random seed; by default a new one each run, printed).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${1:-25}
venv="${FUZZ_VENV:-$PWD/.venv-fuzz}"
st="$venv/bin/st"

if ! { [ -x "$st" ] && [ "$("$st" --version 2>/dev/null)" = "st, version $SCHEMATHESIS_VERSION" ]; }; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_ensure python3-venv
  fi
  log "installing Schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ -n "${FUZZ_BIN:-}" ]; then
  BIN=$FUZZ_BIN
else
  log "building agent-service"
  cargo build --locked -p agent-service -q
  BIN=target/debug/agent-service
fi

WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
# Limits a fuzzer must not trip over: the rate limit and budgets would turn its requests
# into 429s; everything else is the default configuration.
# Callbacks are signed and may reach the one host scripts/schemathesis.toml sends them to.
export DATABASE_URL="sqlite://$WORK/fuzz.db" LOG_LEVEL=warn RATE_LIMIT_RPM=100000000 \
  TENANT_DAILY_TOKEN_BUDGET=100000000000 TENANT_DAILY_COST_BUDGET_USD=100000000 \
  JOB_CALLBACK_SECRET=fuzz-callback-secret EGRESS_ALLOWLIST=callbacks.fuzz.test
KEY=$("$BIN" seed-demo 2>/dev/null | awk -F'\t' '$1=="admin" && $2=="demo" {print $3}')
[ -n "$KEY" ] || { echo "fuzz-api: seed-demo printed no admin key" >&2; exit 1; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BIND_ADDR="127.0.0.1:$PORT" "$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

SEED=${FUZZ_SEED:-$RANDOM$RANDOM}
log "Schemathesis $SCHEMATHESIS_VERSION: $EXAMPLES examples per operation, seed $SEED"
start=$(date +%s)
rc=0
# The approval event stream never ends by design (it ends at shutdown), so a fuzzer's
# request could only time out: it is left out here and covered by the API tests.
"$st" --no-color --config-file scripts/schemathesis.toml run "http://127.0.0.1:$PORT/openapi.json" \
  --checks all \
  --header "Authorization: Bearer $KEY" \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --workers 1 \
  --request-timeout 30 \
  --exclude-path /v1/approvals/events \
  --suppress-health-check too_slow \
  || rc=$?
log "fuzz run took $(( $(date +%s) - start )) s"
if grep -q '"level":"ERROR"' "$WORK/server.log"; then
  echo "fuzz-api: the service logged errors:" >&2
  grep '"level":"ERROR"' "$WORK/server.log" | head -20 >&2
  rc=1
fi
exit "$rc"
