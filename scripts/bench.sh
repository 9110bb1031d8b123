#!/usr/bin/env bash
# Benchmarks agent-service (release build, scripted provider) with wrk at 64 connections:
# GET /healthz (the machine's ceiling) and POST /v1/invoke for support_ticket_summary.
# Prints requests/s, p50/p99 latency and the server's peak RSS.
#
# Usage: scripts/bench.sh [duration_secs=15] [connections=64] [sqlite|postgres]
#   sqlite    (default) one server on an SQLite file: the ceiling, then invoke.
#   postgres  on PostgreSQL (TEST_POSTGRES_URL, else the local server start_postgres
#             starts): the ceiling, then invoke with the per-key rate limit shared through
#             the database (RATE_LIMIT_STORE=database) and kept in the process
#             (RATE_LIMIT_STORE=process), alternating twice (A B A B), each on a fresh
#             database, in one run. Every invoke uses one key, so the shared limit's row
#             is one hot row: its worst case.
# Environment: TRACE_SAMPLE_RATE (default 1.0, every trace stored; the run prints it),
# LOG_LEVEL (default warn), BENCH_BIN (benchmark this binary instead of building one; for
# A/B runs of two builds on the same machine).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
DURATION=${1:-15}
CONNS=${2:-64}
STORE=${3:-sqlite}
case "$STORE" in sqlite | postgres) ;; *) echo "usage: scripts/bench.sh [secs] [conns] [sqlite|postgres]" >&2; exit 2 ;; esac
apt_ensure wrk
if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$BENCH_BIN
else
  log "building release binary"
  cargo build --release --locked -p agent-service -q
  BIN=target/release/agent-service
fi
export TRACE_SAMPLE_RATE="${TRACE_SAMPLE_RATE:-1.0}"
WORK=$(mktemp -d)
PID=""
DATABASES=()
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  for db in "${DATABASES[@]}"; do psql -q "$TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $db" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
export LOG_LEVEL="${LOG_LEVEL:-warn}" RATE_LIMIT_RPM=100000000 \
  MAX_CONCURRENCY=4096 TENANT_DAILY_TOKEN_BUDGET=100000000000 TENANT_DAILY_COST_BUDGET_USD=100000000
if [ "$STORE" = postgres ]; then
  start_postgres
  : "${TEST_POSTGRES_URL:?start_postgres did not set TEST_POSTGRES_URL}"
  # The server's default pool for PostgreSQL, as a replica would run.
  export DATABASE_MAX_CONNECTIONS="${DATABASE_MAX_CONNECTIONS:-16}"
fi

# A fresh database: an SQLite file, or a new PostgreSQL database.
fresh_database() {
  if [ "$STORE" = sqlite ]; then
    echo "sqlite://$WORK/bench-$1.db"
  else
    local name="bench_$$_$1"
    psql -q "$TEST_POSTGRES_URL" -c "CREATE DATABASE $name" >/dev/null
    DATABASES+=("$name")
    echo "${TEST_POSTGRES_URL%/*}/$name"
  fi
}

# start_server NAME [VAR=value...]: seeds a fresh database and serves on a free port.
start_server() {
  local name=$1
  shift
  export DATABASE_URL
  DATABASE_URL=$(fresh_database "$name")
  KEY=$(env "$@" "$BIN" seed-demo 2>/dev/null | awk -F'\t' '$1=="invoke" && $2=="demo" {print $3}')
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  env "$@" BIND_ADDR="127.0.0.1:$PORT" "$BIN" serve >"$WORK/server-$name.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  cat >"$WORK/invoke.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.body = '{"workflow":"support_ticket_summary","input":{"text":"Summarize ticket T-1001"}}'
done = function(summary, latency, requests)
  io.write(string.format("non2xx=%d errors=%d\n", summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
  # Warm up caches and the connection pool.
  wrk -t1 -c8 -d2s -s "$WORK/invoke.lua" "http://127.0.0.1:$PORT/v1/invoke" >/dev/null
}

stop_server() {
  printf '  server peak RSS: %s MB' "$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$PID/status)"
  local m
  m=$(curl -fsS "http://127.0.0.1:$PORT/metrics")
  printf '; traces: dropped %s, sampled out %s\n' \
    "$(awk '$1=="agent_traces_dropped_total" {print $2}' <<<"$m")" \
    "$(awk '$1=="agent_traces_sampled_out_total" {print $2}' <<<"$m")"
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
}

cat >"$WORK/get.lua" <<LUA
done = function(summary, latency, requests)
  io.write(string.format("non2xx=%d errors=%d\n", summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

run() { # name path script
  local out
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$3" "http://127.0.0.1:$PORT$2")
  local rps p50 p99 bad
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  bad=$(grep -E '^non2xx=' <<<"$out")
  printf '%-44s %12s req/s   p50 %-9s p99 %-9s %s   (load %s)\n' "$1" "$rps" "$p50" "$p99" "$bad" "$(cut -d' ' -f1 /proc/loadavg)"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t2 -c$CONNS -d${DURATION}s"
echo "settings: LOG_LEVEL=$LOG_LEVEL TRACE_SAMPLE_RATE=$TRACE_SAMPLE_RATE, $STORE, scripted provider"

if [ "$STORE" = sqlite ]; then
  start_server sqlite
  run "GET /healthz (ceiling)" /healthz "$WORK/get.lua"
  run "POST /v1/invoke (summary)" /v1/invoke "$WORK/invoke.lua"
  stop_server
else
  round=0
  for limiter in database process database process; do
    round=$((round + 1))
    start_server "$round" RATE_LIMIT_STORE="$limiter"
    if [ "$round" = 1 ]; then
      run "GET /healthz (ceiling)" /healthz "$WORK/get.lua"
    fi
    run "POST /v1/invoke, rate limit: $limiter" /v1/invoke "$WORK/invoke.lua"
    stop_server
  done
fi
