#!/usr/bin/env bash
# Quick start: installs what is missing (Tauri's system packages, the UI's npm packages),
# builds the UI, the Flightdeck desktop app and the agent-service, and launches the console
# on the Local profile: the app starts the bundled agent-service (SQLite in the app's data
# dir, demo data, the scripted offline model unless a local Ollama answers) with live
# synthetic demo traffic. Closing the window stops everything.
#
#   scripts/start.sh             the desktop console (needs a display: $DISPLAY or $WAYLAND_DISPLAY)
#   scripts/start.sh --service   only the agent-service on http://127.0.0.1:8080 with a curl demo
#
# FLIGHTDECK_RELEASE=1 builds optimised binaries (slower to build).
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

if [ "${1:-}" = "--service" ]; then
  service_only
  exit 0
fi

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

  xvfb-run -a -s '-screen 0 1440x900x24' $app

(the app and its Local agent-service run; nothing is visible without a display).
For the HTTP demo without a window: scripts/start.sh --service
EOT
  exit 0
fi

log "launching Flightdeck on the Local profile with live demo traffic (close the window to stop)"
exec "$app"
