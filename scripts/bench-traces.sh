#!/usr/bin/env bash
# Benchmarks the stored-trace list at 100k traces: fills a fresh SQLite database (and a
# fresh PostgreSQL database when TEST_POSTGRES_URL is set or --postgres is given) through
# the real schema with bulk SQL (100k traces with a 5-span tree each, 90% in tenant demo,
# spread over the last 6 days), starts the release binary on it, and times GET /v1/traces
# queries one after another over one keep-alive connection. Prints p50/p99 in ms. One run in
# 25 is stored as flagged by a guardrail (with its rule), for the flagged=true query.
# Usage: scripts/bench-traces.sh [requests_per_query=400] [--postgres]
# Environment: BENCH_BIN (time this binary instead of building the release one).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
REQUESTS=400
WITH_PG=0
for a in "$@"; do
  case "$a" in
    --postgres) WITH_PG=1 ;;
    ''|*[!0-9]*) echo "usage: $0 [requests_per_query] [--postgres]" >&2; exit 2 ;;
    *) REQUESTS=$a ;;
  esac
done
[ -n "${TEST_POSTGRES_URL:-}" ] && WITH_PG=1
TRACES=100000
apt_ensure sqlite3 curl
[ "$WITH_PG" = 1 ] && start_postgres
if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$(realpath "$BENCH_BIN")
else
  log "building release binary"
  cargo build --release --locked -p agent-service -q
  BIN=$PWD/target/release/agent-service
fi
WORK=$(mktemp -d)
PID=""
PG_DB=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  [ -n "$PG_DB" ] && psql -q "$TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export LOG_LEVEL=warn RATE_LIMIT_RPM=100000000 MAX_CONCURRENCY=4096

# The fill, in the SQL both engines accept; {SERIES} is a row source of i = 0..TRACES-1.
fill_sql() { # series_sql hex_expr now_ms
  local series=$1 hex=$2 now=$3
  cat <<SQL
INSERT INTO traces (trace_id, tenant, request_id, workflow, status, error_code, started_at,
  duration_us, prompt_tokens, completion_tokens, cost_usd, model, provider, span_count,
  flagged, guardrail_rule)
SELECT 'tr_' || $hex, CASE WHEN i % 10 = 9 THEN 'other' ELSE 'demo' END, 'req-' || i,
  CASE i % 4 WHEN 0 THEN 'support_ticket_summary' WHEN 1 THEN 'faq' WHEN 2 THEN 'ticket_update' ELSE 'invoice_approval' END,
  CASE WHEN i % 50 = 7 THEN 'error' WHEN i % 20 = 3 THEN 'blocked' WHEN i % 4 >= 2 THEN 'approval_required' ELSE 'success' END,
  CASE WHEN i % 50 = 7 THEN 'provider_timeout' ELSE NULL END,
  $now - (i * 5184), 800 + (i % 997) * 37, 300 + i % 200, 40 + i % 90, 0.0004 + (i % 13) * 0.0001,
  'scripted-v1', 'scripted', 5,
  CASE WHEN i % 25 = 11 THEN 1 ELSE 0 END,
  CASE WHEN i % 25 = 11 THEN 'prompt_injection' WHEN i % 20 = 3 THEN 'jailbreak' ELSE NULL END
FROM $series;
INSERT INTO spans (trace_id, spans)
SELECT 'tr_' || $hex, replace('[{"span_id":"a@ID@","parent_span_id":null,"name":"request","kind":"server","status":"ok","start_us":0,"duration_us":900,"attributes":{"flightdeck.workflow":"support_ticket_summary","flightdeck.tenant":"demo","gen_ai.provider.name":"scripted","flightdeck.status":"success"},"payload":{"input":"Summarize ticket T-1001","output":"Ticket T-1001 is open with normal priority. [ticket:T-1001]"}},{"span_id":"b@ID@","parent_span_id":"a@ID@","name":"guardrail.input","kind":"internal","status":"ok","start_us":5,"duration_us":40,"attributes":{"flightdeck.guardrail.verdict":"allow"},"payload":null},{"span_id":"c@ID@","parent_span_id":"a@ID@","name":"chat scripted-v1","kind":"client","status":"ok","start_us":60,"duration_us":200,"attributes":{"gen_ai.operation.name":"chat","gen_ai.provider.name":"scripted","gen_ai.request.model":"scripted-v1","gen_ai.response.model":"scripted-v1","gen_ai.usage.input_tokens":300,"gen_ai.usage.output_tokens":40,"flightdeck.cost_usd":0.0002},"payload":{"tool_calls":[{"name":"ticket_read","arguments":{"ticket_id":"T-1001"}}]}},{"span_id":"d@ID@","parent_span_id":"a@ID@","name":"execute_tool ticket_read","kind":"internal","status":"ok","start_us":270,"duration_us":300,"attributes":{"gen_ai.operation.name":"execute_tool","gen_ai.tool.name":"ticket_read","flightdeck.tool.side_effect":"read","flightdeck.tool.outcome":"ok"},"payload":{"arguments":{"ticket_id":"T-1001"},"result":{"id":"T-1001","subject":"Cannot log in after password reset","status":"open","customer_email":"[REDACTED:email]"}}},{"span_id":"e@ID@","parent_span_id":"a@ID@","name":"guardrail.output","kind":"internal","status":"ok","start_us":880,"duration_us":10,"attributes":{"flightdeck.guardrail.verdict":"allow"},"payload":null}]', '@ID@', substr($hex, 18))
FROM $series;
SQL
}

# Times each query REQUESTS times over one keep-alive connection (after a warm-up);
# the first page's next_cursor is followed 20 pages deep for the "deep page" query.
measure() { # port key label
  python3 - "$1" "$2" "$3" "$REQUESTS" <<'PY'
import http.client, json, sys, time, statistics
port, key, label, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port)
hdr = {"Authorization": f"Bearer {key}"}
def get(path):
    t = time.perf_counter()
    conn.request("GET", path, headers=hdr)
    r = conn.getresponse()
    body = r.read()
    dt = (time.perf_counter() - t) * 1000
    if r.status != 200:
        sys.exit(f"{path}: HTTP {r.status}: {body[:300]!r}")
    return dt, json.loads(body)
_, first = get("/v1/traces?limit=50")
assert len(first["items"]) == 50, first
cursor = first["next_cursor"]
for _ in range(19):
    _, page = get(f"/v1/traces?limit=50&cursor={cursor}")
    cursor = page["next_cursor"]
trace_id = first["items"][0]["trace_id"]
since = first["items"][0]["started_at"].replace("+", "%2B")
queries = [
    ("first page          ", "/v1/traces?limit=50"),
    ("status=error        ", "/v1/traces?limit=50&status=error"),
    ("workflow=faq        ", "/v1/traces?limit=50&workflow=faq"),
    ("errors_only+workflow", "/v1/traces?limit=50&errors_only=true&workflow=faq"),
    ("flagged=true        ", "/v1/traces?limit=50&flagged=true"),
    ("since (last day)    ", "/v1/traces?limit=50&since=" + since[:10] + "T00:00:00Z"),
    ("request_id lookup   ", "/v1/traces?request_id=req-12340"),
    ("page 21 (cursor)    ", f"/v1/traces?limit=50&cursor={cursor}"),
    ("min_latency_ms=30   ", "/v1/traces?limit=50&min_latency_ms=30"),
    ("one trace + spans   ", f"/v1/traces/{trace_id}"),
]
print(f"[{label}] {n} sequential requests per query (ms, client-side incl. loopback HTTP)")
for name, path in queries:
    for _ in range(20):
        get(path)
    times = sorted(get(path)[0] for _ in range(n))
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"  {name}  p50 {p50:7.2f}   p99 {p99:7.2f}   max {times[-1]:7.2f}")
PY
}

run_backend() { # label database_url fill_command...
  local label=$1 url=$2; shift 2
  log "[$label] seeding and migrating"
  local key
  key=$(DATABASE_URL="$url" "$BIN" seed-demo 2>/dev/null | awk -F'\t' '$1=="viewer" && $2=="demo" {print $3}')
  log "[$label] filling $TRACES traces (5-span trees)"
  local t0=$SECONDS
  "$@"
  log "[$label] filled in $((SECONDS - t0)) s"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  DATABASE_URL="$url" BIND_ADDR="127.0.0.1:$port" "$BIN" serve >"$WORK/$label.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  measure "$port" "$key" "$label"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

NOW=$(($(date +%s) * 1000))
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
SQLITE_SERIES="(WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $((TRACES - 1))) SELECT i FROM n) AS n"
fill_sqlite() {
  { echo "BEGIN;"; fill_sql "$SQLITE_SERIES" "printf('%032x', i)" "$NOW"; echo "COMMIT; ANALYZE;"; } | sqlite3 "$WORK/traces.db"
}
run_backend sqlite "sqlite://$WORK/traces.db" fill_sqlite

if [ "$WITH_PG" = 1 ]; then
  PG_DB="bench_traces_$$"
  psql -q "$TEST_POSTGRES_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
  PG_URL="${TEST_POSTGRES_URL%/*}/$PG_DB"
  fill_pg() {
    { echo "BEGIN;"; fill_sql "generate_series(0, $((TRACES - 1))) AS n(i)" "lpad(to_hex(i), 32, '0')" "$NOW"; echo "COMMIT; ANALYZE;"; } | psql -q -v ON_ERROR_STOP=1 "$PG_URL" >/dev/null
  }
  run_backend postgres "$PG_URL" fill_pg
fi
