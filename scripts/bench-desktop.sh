#!/usr/bin/env bash
# Desktop benchmarks, under Xvfb in a D-Bus session (like scripts/test-desktop.sh):
#   - cold start to the first rendered Overview card (WebDriver, COLD_RUNS fresh data dirs);
#   - PSS of the whole process tree (app + WebKit processes + the Local agent-service) after
#     BENCH_MINUTES (default 5) of Local demo traffic, beside a blank Tauri 2 window
#     (tests/desktop/blank) measured the same way in the same run;
#   - approval arrival latency, creation to on screen: the desktop e2e with
#     APPROVAL_SAMPLES (default 20) samples, p50/p99.
# Figures: stdout and target/desktop-artifacts/{bench,approval-latency}.json; record them
# with the machine and its load in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_ensure libwebkit2gtk-4.1-dev xvfb xauth webkit2gtk-driver at-spi2-core dbus-x11 gnome-keyring
command -v tauri-driver >/dev/null || cargo install tauri-driver --locked -q
[ -f ui/dist/index.html ] || (cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build -- --logLevel warn)
for p in flightdeck flightdeck-blank agent-service; do cargo build --locked -p "$p"; done
cargo build --locked -p testkit --bin fake-ollama

headless() {
  local home rc=0
  home=$(mktemp -d)
  HOME="$home" dbus-run-session -- sh -c '
    echo -n flightdeck | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
    exec xvfb-run -a -s "-screen 0 1440x900x24" "$@"' sh "$@" || rc=$?
  rm -rf "$home"
  return $rc
}

log "cold start and memory (BENCH_MINUTES=${BENCH_MINUTES:-5})"
headless node tests/desktop/bench.mjs
log "approval arrival latency (APPROVAL_SAMPLES=${APPROVAL_SAMPLES:=20})"
APPROVAL_SAMPLES=$APPROVAL_SAMPLES headless node --test --test-reporter=spec tests/desktop/app.test.mjs
