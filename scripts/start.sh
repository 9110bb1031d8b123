#!/usr/bin/env bash
# Quick start: installs what is missing, builds agent-service, seeds the demo domain,
# serves it on http://127.0.0.1:8080 (SQLite in .local/, the scripted offline model
# unless USE_OLLAMA=true), and shows a working invoke with curl. Ctrl+C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
apt_ensure build-essential pkg-config curl
mkdir -p .local
export DATABASE_URL="${DATABASE_URL:-sqlite://$PWD/.local/agent-service.db}"
export BIND_ADDR="${BIND_ADDR:-127.0.0.1:8080}"
export LOG_FORMAT="${LOG_FORMAT:-pretty}"
log "building agent-service"
cargo build --release --locked -p agent-service -q
BIN=target/release/agent-service
log "seeding demo data; fresh demo keys (role, tenant, key):"
"$BIN" seed-demo | tee .local/demo-keys.tsv
KEY=$(awk -F'\t' '$1=="invoke" && $2=="demo" {print $3}' .local/demo-keys.tsv)
"$BIN" serve &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID' INT TERM
for _ in $(seq 100); do curl -fsS "http://$BIND_ADDR/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
log "curl -H 'Authorization: Bearer <invoke key>' http://$BIND_ADDR/v1/invoke -d '{\"workflow\":\"support_ticket_summary\",\"input\":{\"text\":\"Summarize ticket T-1001\"}}'"
curl -sS "http://$BIND_ADDR/v1/invoke" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"workflow":"support_ticket_summary","input":{"text":"Summarize ticket T-1001"}}'
echo
log "agent-service is serving on http://$BIND_ADDR (keys in .local/demo-keys.tsv); Ctrl+C stops it"
wait $PID
