#!/usr/bin/env bash
# Fuzzes the agent-service's HTTP API from its own OpenAPI document with Schemathesis
# (PyPI, pinned, installed into `.venv-fuzz/` at the repository root, git-ignored) against
# the real binary: a fresh seeded SQLite database, the demo tenant's admin key, every check
# Schemathesis has, every phase. Fails on any failure: a 5xx, a status the document does not
# list for the operation, a body, header or content type that does not match it, data the
# document calls invalid accepted or valid data refused.
#
# It runs in about half a minute with the default 25 examples per operation (22-25 s of
# Schemathesis, measured on the 2-core build machine while other builds ran); scripts/test.sh
# runs it after the API tests.
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

install_schemathesis() {
  command -v curl >/dev/null 2>&1 || apt_ensure curl
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_ensure python3 python3-venv
  fi
  log "installing Schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv" &&
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}
if ! { [ -x "$st" ] && [ "$("$st" --version 2>/dev/null)" = "st, version $SCHEMATHESIS_VERSION" ]; }; then
  if ! (install_schemathesis); then
    # Said loudly and never counted as passed; in CI the run must happen.
    if [ "${CI:-}" = true ]; then
      echo "fuzz-api: Schemathesis $SCHEMATHESIS_VERSION could not be installed (see above); in CI the API fuzz run must happen" >&2
      exit 1
    fi
    log "SKIPPED the API fuzz run: Schemathesis $SCHEMATHESIS_VERSION could not be installed (see above)"
    exit 0
  fi
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
keys=$("$BIN" seed-demo 2>/dev/null)
KEY=$(awk -F'\t' '$1=="admin" && $2=="demo" {print $3}' <<<"$keys")
INVOKE_KEY=$(awk -F'\t' '$1=="invoke" && $2=="demo" {print $3}' <<<"$keys")
[ -n "$KEY" ] || { echo "fuzz-api: seed-demo printed no admin key" >&2; exit 1; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BIND_ADDR="127.0.0.1:$PORT" "$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# Records for the operations that read or act on one: without them every generated id is
# a 404 and the handlers behind the lookup are never reached. The approval is proposed by
# the invoke key, so the admin key the fuzzer uses may decide it. Once the first decision
# is made (and the job has finished) every later decision or cancel is a documented 409,
# which Schemathesis reports as a warning ("mostly rejected generated data"), not a failure.
api() { # METHOD PATH KEY [BODY]: the response body; fails on a non-2xx
  curl -fsS -X "$1" "http://127.0.0.1:$PORT$2" -H "Authorization: Bearer $3" \
    -H 'Content-Type: application/json' ${4:+--data "$4"}
}
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
invoked=$(api POST /v1/invoke "$INVOKE_KEY" '{"workflow":"ticket_update","input":{"text":"close ticket T-1008"}}')
APPROVAL=$(field approval_request_id <<<"$invoked")
TRACE=$(field trace_id <<<"$invoked")
JOB=$(api POST /v1/jobs "$INVOKE_KEY" '{"workflow":"support_ticket_summary","input":{"text":"Summarize T-1001"}}' | field id)
EVAL_RUN=$(api POST /v1/evals/runs "$KEY" '{"suite":"golden"}' | field id)
config="$WORK/schemathesis.toml"
cat scripts/schemathesis.toml - >"$config" <<EOF

# Added by scripts/fuzz-api.sh: the records it created for this run.
[[operations]]
include-name = ["GET /v1/approvals/{id}", "POST /v1/approvals/{id}/approve", "POST /v1/approvals/{id}/reject"]
parameters = { "path.id" = "$APPROVAL" }

[[operations]]
include-name = "GET /v1/traces/{id}"
parameters = { "path.id" = "$TRACE" }

[[operations]]
include-name = ["GET /v1/jobs/{id}", "POST /v1/jobs/{id}/cancel"]
parameters = { "path.id" = "$JOB" }

[[operations]]
include-name = ["GET /v1/evals/runs/{id}", "GET /v1/evals/runs/{id}/report.md", "GET /v1/evals/runs/{id}/report.xml"]
parameters = { "path.id" = "$EVAL_RUN" }

# A receiver's secret is required or refused by its format (a webhook's signing secret, a
# PagerDuty routing key, none for Slack): a rule across two fields the document states in
# words, not in the schema, so a schema-valid body can be refused with 400. Every other
# check runs on it, and a 400 is an expected answer to valid data; the API tests cover each
# format's rule.
[[operations]]
include-name = "POST /v1/admin/receivers"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]
EOF

SEED=${FUZZ_SEED:-$RANDOM$RANDOM}
log "Schemathesis $SCHEMATHESIS_VERSION: $EXAMPLES examples per operation, seed $SEED"
start=$(date +%s)
rc=0
# The approval event stream never ends by design (it ends at shutdown), so a fuzzer's
# request could only time out: it is left out here and covered by the API tests.
"$st" --no-color --config-file "$config" run "http://127.0.0.1:$PORT/openapi.json" \
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
