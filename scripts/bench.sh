#!/usr/bin/env bash
# Benchmarks agent-service (release build, scripted provider, SQLite) with wrk at 64
# connections: GET /healthz (the machine's ceiling) and POST /v1/invoke for
# support_ticket_summary. Prints requests/s, p50/p99 latency and the server's peak RSS.
# Usage: scripts/bench.sh [duration_secs=15] [connections=64]
# Environment: TRACE_SAMPLE_RATE (default 1.0, every trace stored; the run prints it),
# LOG_LEVEL (default warn), BENCH_BIN (benchmark this binary instead of building one; for
# A/B runs of two builds on the same machine).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
DURATION=${1:-15}
CONNS=${2:-64}
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
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
export DATABASE_URL="sqlite://$WORK/bench.db" LOG_LEVEL="${LOG_LEVEL:-warn}" RATE_LIMIT_RPM=100000000 \
  MAX_CONCURRENCY=4096 TENANT_DAILY_TOKEN_BUDGET=100000000000 TENANT_DAILY_COST_BUDGET_USD=100000000
KEY=$("$BIN" seed-demo 2>/dev/null | awk -F'\t' '$1=="invoke" && $2=="demo" {print $3}')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BIND_ADDR="127.0.0.1:$PORT" "$BIN" serve >"$WORK/server.log" 2>&1 &
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
  printf '%-28s %12s req/s   p50 %-9s p99 %-9s %s\n' "$1" "$rps" "$p50" "$p99" "$bad"
}
# Warm up caches and the connection pool.
wrk -t1 -c8 -d2s -s "$WORK/invoke.lua" "http://127.0.0.1:$PORT/v1/invoke" >/dev/null
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t2 -c$CONNS -d${DURATION}s"
echo "settings: LOG_LEVEL=$LOG_LEVEL TRACE_SAMPLE_RATE=$TRACE_SAMPLE_RATE, SQLite, scripted provider"

run "GET /healthz (ceiling)" /healthz "$WORK/get.lua"
run "POST /v1/invoke (summary)" /v1/invoke "$WORK/invoke.lua"
printf 'server peak RSS: %s MB\n' "$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$PID/status)"
M=$(curl -fsS "http://127.0.0.1:$PORT/metrics")
printf 'traces: dropped %s, sampled out %s\n' \
  "$(awk '$1=="agent_traces_dropped_total" {print $2}' <<<"$M")" \
  "$(awk '$1=="agent_traces_sampled_out_total" {print $2}' <<<"$M")"

