#!/usr/bin/env bash
# Benchmarks the job queue (leased jobs run by in-process workers) on PostgreSQL: release build, scripted provider,
# JOB_WORKERS workers. Each run uses a fresh database and measures two things from the
# jobs' own timestamps (so polling does not blur them):
#   end-to-end  N jobs enqueued through POST /v1/jobs (32 in parallel) while the workers
#               run: jobs/s = N / (last finished_at - first created_at)
#   drain       N more jobs put in the table while the service is stopped, then the
#               service started: jobs/s = N / (last finished_at - first started_at),
#               the workers' throughput with a full queue
# Prints every run and the medians.
# Usage: scripts/bench-jobs.sh [jobs=2000] [workers=4] [runs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
N=${1:-2000}
WORKERS=${2:-4}
RUNS=${3:-3}
start_postgres
ADMIN=$TEST_POSTGRES_URL
log "building release binary"
cargo build --release --locked -p agent-service -q
BIN=$PWD/target/release/agent-service
WORK=$(mktemp -d)
PID=""
DB=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ -n "$DB" ]; then psql "$ADMIN" -qAt -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export LOG_LEVEL=warn LOG_FORMAT=json AGENT_PROVIDER=scripted JOB_WORKERS="$WORKERS" \
  RATE_LIMIT_RPM=100000000 MAX_CONCURRENCY=4096 \
  TENANT_DAILY_TOKEN_BUDGET=100000000000 TENANT_DAILY_COST_BUDGET_USD=100000000

sql() { psql "$DATABASE_URL" -qAt -c "$1"; }

start_server() {
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  BIND_ADDR="127.0.0.1:$PORT" "$BIN" serve >>"$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 200); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "the service did not start; its log:" >&2
  cat "$WORK/server.log" >&2
  exit 1
}

stop_server() {
  kill -TERM "$PID"
  wait "$PID" || true
  PID=""
}

# wait_done COUNT: until COUNT jobs have succeeded (fails on a failed/dead job or after 10 min).
wait_done() {
  local deadline=$((SECONDS + 600)) done bad
  while :; do
    done=$(sql "SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'")
    [ "$done" -ge "$1" ] && return 0
    bad=$(sql "SELECT COUNT(*) FROM jobs WHERE status IN ('failed', 'dead', 'cancelled')")
    if [ "$bad" -gt 0 ] || [ $SECONDS -ge $deadline ]; then
      echo "jobs did not all succeed ($done of $1 succeeded, $bad failed):" >&2
      sql "SELECT status, error_code, error_message FROM jobs WHERE status <> 'succeeded' LIMIT 5" >&2
      exit 1
    fi
    sleep 0.2
  done
}

rate() { # count millis
  awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0) ? n * 1000 / ms : 0 }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; PostgreSQL $(psql "$ADMIN" -qAt -c 'SHOW server_version'); $N jobs, $WORKERS workers, $RUNS runs"
: >"$WORK/e2e"
: >"$WORK/drain"
for run in $(seq "$RUNS"); do
  DB="bench_jobs_$$_$run"
  psql "$ADMIN" -qAt -c "CREATE DATABASE $DB" >/dev/null
  export DATABASE_URL="${ADMIN%/*}/$DB"
  KEY=$("$BIN" seed-demo 2>/dev/null | awk -F'\t' '$1=="invoke" && $2=="demo" {print $3}')
  start_server

  # End to end: enqueue through the API while the workers run.
  # One transfer per job, separated by `next` (a trailing `next` would be an empty
  # transfer, which aborts the whole parallel batch).
  for i in $(seq "$N"); do
    [ "$i" -gt 1 ] && echo next
    printf 'url = "http://127.0.0.1:%s/v1/jobs"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata = "{\\"workflow\\":\\"support_ticket_summary\\",\\"input\\":{\\"text\\":\\"Summarize ticket T-10%02d\\"}}"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
      "$PORT" "$KEY" $((i % 12 + 1))
  done >"$WORK/requests.cfg"
  codes=$(curl -sS --no-progress-meter --parallel --parallel-max 32 -K "$WORK/requests.cfg" | sort | uniq -c | tr '\n' ' ')
  if ! grep -q "^ *$N 202 *$" <<<"$codes"; then
    echo "enqueue did not answer 202 to every request: $codes" >&2
    exit 1
  fi
  wait_done "$N"
  read -r e2e_ms enq_ms < <(sql "SELECT MAX(finished_at) - MIN(created_at), MAX(created_at) - MIN(created_at) FROM jobs" | tr '|' ' ')
  e2e=$(rate "$N" "$e2e_ms")
  echo "$e2e" >>"$WORK/e2e"

  # Drain: a full queue of N jobs waiting when the service starts.
  stop_server
  sql "INSERT INTO jobs (id, tenant, key_id, key_name, workflow, input_text, user_id, request_id,
         status, attempts, max_attempts, run_after, cancel_requested, callback_attempts, created_at, updated_at)
       SELECT 'job_' || md5('drain' || g), tenant, key_id, key_name, workflow, input_text, user_id,
              'bench-' || g, 'queued', 0, max_attempts, 0, 0, 0, created_at, created_at
       FROM generate_series(1, $N) AS g, (SELECT * FROM jobs ORDER BY id LIMIT 1) AS first"
  start_server
  wait_done $((2 * N))
  drain_ms=$(sql "SELECT MAX(finished_at) - MIN(started_at) FROM jobs WHERE request_id LIKE 'bench-%'")
  drain=$(rate "$N" "$drain_ms")
  echo "$drain" >>"$WORK/drain"
  stop_server
  printf 'run %d: enqueue %s jobs/s; end-to-end %s jobs/s (%s ms); drain %s jobs/s (%s ms)\n' \
    "$run" "$(rate "$N" "$enq_ms")" "$e2e" "$e2e_ms" "$drain" "$drain_ms"
  psql "$ADMIN" -qAt -c "DROP DATABASE $DB" >/dev/null
  DB=""
done
printf 'median of %d runs: end-to-end %s jobs/s, drain %s jobs/s (%s workers, PostgreSQL, scripted provider)\n' \
  "$RUNS" "$(median <"$WORK/e2e")" "$(median <"$WORK/drain")" "$WORKERS"
