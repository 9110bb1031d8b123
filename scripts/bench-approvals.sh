#!/usr/bin/env bash
# Benchmarks approval event latency (release build, scripted provider, SQLite): one
# subscriber on GET /v1/approvals/events while POST /v1/invoke creates approvals one after
# another. For each approval it measures when its `created` event reaches the subscriber:
#   reply -> SSE : from the moment invoke returned approval_required (negative: the event
#                  arrived before the invoke reply did) -- the figure to quote
#   gate  -> SSE : from the approval's created_at, stamped when the engine gates the write
#                  (before the insert transaction waits for SQLite's write lock; the
#                  server's clock, same machine)
# plus the invoke round trip, and prints p50/p99 per round and the median over rounds.
# Usage: scripts/bench-approvals.sh [approvals_per_round=250] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
N=${1:-250}
ROUNDS=${2:-3}
log "building release binary"
cargo build --release --locked -p agent-service -q
BIN=${CARGO_TARGET_DIR:-target}/release/agent-service
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
export DATABASE_URL="sqlite://$WORK/bench.db" LOG_LEVEL="${LOG_LEVEL:-warn}" RATE_LIMIT_RPM=100000000 \
  MAX_CONCURRENCY=4096 TENANT_DAILY_TOKEN_BUDGET=100000000000 TENANT_DAILY_COST_BUDGET_USD=100000000
KEYS=$("$BIN" seed-demo 2>/dev/null)
INVOKE_KEY=$(awk -F'\t' '$1=="invoke" && $2=="demo" {print $3}' <<<"$KEYS")
VIEWER_KEY=$(awk -F'\t' '$1=="viewer" && $2=="demo" {print $3}' <<<"$KEYS")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BIND_ADDR="127.0.0.1:$PORT" "$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "machine: $(nproc) cores; $N approvals per round, $ROUNDS rounds; SQLite; one SSE subscriber"

PORT=$PORT INVOKE_KEY=$INVOKE_KEY VIEWER_KEY=$VIEWER_KEY N=$N ROUNDS=$ROUNDS python3 - <<'PY'
import datetime, http.client, json, os, statistics, threading, time

port, n, rounds = int(os.environ["PORT"]), int(os.environ["N"]), int(os.environ["ROUNDS"])
invoke_key, viewer_key = os.environ["INVOKE_KEY"], os.environ["VIEWER_KEY"]
received = {}  # approval id -> (wall time received, server created_at)
ready = threading.Event()

def subscribe():
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/v1/approvals/events", headers={"Authorization": f"Bearer {viewer_key}"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    ready.set()
    event, data = None, None
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "":
            if event == "created" and data:
                now = time.time()
                d = json.loads(data)
                received[d["approval_id"]] = now
            event, data = None, None

threading.Thread(target=subscribe, daemon=True).start()
ready.wait(10)
time.sleep(0.3)

def invoke(conn, text):
    body = json.dumps({"workflow": "ticket_update", "input": {"text": text}})
    started = time.time()
    conn.request("POST", "/v1/invoke", body=body, headers={
        "Authorization": f"Bearer {invoke_key}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    payload = json.loads(resp.read())
    returned = time.time()
    assert resp.status == 200 and payload["status"] == "approval_required", payload
    return payload["approval_request_id"], returned, (returned - started) * 1000

def created_at(conn, approval_id):
    conn.request("GET", f"/v1/approvals/{approval_id}", headers={"Authorization": f"Bearer {viewer_key}"})
    a = json.loads(conn.getresponse().read())
    return datetime.datetime.fromisoformat(a["created_at"]).timestamp()

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

conn = http.client.HTTPConnection("127.0.0.1", port)
results = []
for r in range(rounds):
    sent = []
    for i in range(n):
        ticket = f"T-{1001 + i % 12}"
        sent.append(invoke(conn, f"add a note to {ticket} comment: bench-{r}-{i}"))
    deadline = time.time() + 10
    while any(s[0] not in received for s in sent) and time.time() < deadline:
        time.sleep(0.05)
    missing = [s[0] for s in sent if s[0] not in received]
    assert not missing, f"{len(missing)} events never arrived"
    reply = [(received[a] - t) * 1000 for a, t, _ in sent]
    gate = [(received[a] - created_at(conn, a)) * 1000 for a, _, _ in sent]
    rtt = [x for _, _, x in sent]
    row = {
        "reply_p50": pct(reply, 50), "reply_p99": pct(reply, 99),
        "gate_p50": pct(gate, 50), "gate_p99": pct(gate, 99),
        "rtt_p50": pct(rtt, 50), "rtt_p99": pct(rtt, 99),
        "before_reply": sum(1 for x in reply if x < 0),
    }
    results.append(row)
    print(f"round {r + 1}: reply->SSE p50 {row['reply_p50']:.2f} ms p99 {row['reply_p99']:.2f} ms "
          f"({row['before_reply']}/{n} arrived before the reply) | gate->SSE p50 {row['gate_p50']:.2f} ms "
          f"p99 {row['gate_p99']:.2f} ms | invoke round trip p50 {row['rtt_p50']:.2f} ms p99 {row['rtt_p99']:.2f} ms")
med = lambda k: statistics.median(x[k] for x in results)
print(f"median of {rounds} rounds: reply->SSE p50 {med('reply_p50'):.2f} ms, p99 {med('reply_p99'):.2f} ms; "
      f"gate->SSE p50 {med('gate_p50'):.2f} ms, p99 {med('gate_p99'):.2f} ms; "
      f"invoke p50 {med('rtt_p50'):.2f} ms, p99 {med('rtt_p99'):.2f} ms")
PY
