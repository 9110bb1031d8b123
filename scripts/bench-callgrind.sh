#!/usr/bin/env bash
# Instructions per invoke, counted by callgrind: a figure that does not move with other work
# on the machine, for comparing two builds side by side.
#
#   scripts/bench-callgrind.sh <agent-service binary> [N]
#
# Seeds a fresh SQLite database, runs the server under `valgrind --tool=callgrind`, sends
# 200 warm-up invokes on one keep-alive connection, zeroes the counters, sends N more
# (default 1000) and prints the server's user-space instructions (all threads) per invoke.
set -euo pipefail
BIN=${1:?usage: scripts/bench-callgrind.sh <agent-service binary> [N]}
N=${2:-1000}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
BIN=$(readlink -f "$BIN")
W=$(mktemp -d)
export DATABASE_URL="sqlite://$W/b.db" LOG_LEVEL=warn RATE_LIMIT_RPM=100000000 MAX_CONCURRENCY=4096 \
  TENANT_DAILY_TOKEN_BUDGET=100000000000 TENANT_DAILY_COST_BUDGET_USD=100000000
KEY=$("$BIN" seed-demo 2>/dev/null | awk -F'\t' '$1=="invoke" && $2=="demo" {print $3}')
[ -n "$KEY" ] || { echo "seed-demo printed no invoke key for tenant demo" >&2; exit 1; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cd "$W"
BIND_ADDR="127.0.0.1:$PORT" valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "$BIN" serve >"$W/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 600); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
invoke() {
  python3 - "$PORT" "$KEY" "$1" <<'PY'
import sys, http.client, json
port, key, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
body = json.dumps({"workflow": "support_ticket_summary", "input": {"text": "Summarize ticket T-1001"}})
for _ in range(n):
    c.request("POST", "/v1/invoke", body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"invoke answered {r.status}")
PY
}
invoke 200
sleep 2
callgrind_control -z "$PID" >/dev/null
invoke "$N"
sleep 2
callgrind_control -d "$PID" >/dev/null
sleep 1
total=$(grep -h "^totals:" "$W"/cg.out.* 2>/dev/null | awk '{s+=$2} END {print s+0}')
echo "$(basename "$BIN"): $((total / N)) instructions per invoke (N=$N)"
