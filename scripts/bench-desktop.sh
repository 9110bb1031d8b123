#!/usr/bin/env bash
# Desktop benchmarks, under Xvfb in a D-Bus session (like scripts/test-desktop.sh), of
# BENCH_PROFILE builds (default `desktop`, the distributable build users run: see the
# profile in Cargo.toml; `release` and `debug`, what the e2e drives, for comparison):
#   - cold start to the first rendered Overview card (WebDriver, COLD_RUNS fresh data dirs);
#   - PSS of the whole process tree (app + WebKit processes + the Local agent-service) after
#     BENCH_MINUTES (default 5) of Local demo traffic, beside a blank Tauri 2 window
#     (tests/desktop/blank; and a second one with WebKit's compositing off, as Flightdeck
#     runs) measured the same way in the same run (COLD_RUNS=0 skips the cold start);
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
# BENCH_PROFILE: the app, the blank window and the agent-service are built with the same
# profile.
export BENCH_PROFILE=${BENCH_PROFILE:-desktop}
case "$BENCH_PROFILE" in
  desktop) profile_flag=(--profile desktop) ;;
  release) profile_flag=(--release) ;;
  debug) profile_flag=() ;;
  *) echo "bench-desktop.sh: BENCH_PROFILE must be desktop, release or debug, not '$BENCH_PROFILE'" >&2; exit 2 ;;
esac
# One package per invocation (as scripts/test-desktop.sh): building them together would
# unify dependency features differently and rebuild shared crates.
for p in flightdeck flightdeck-blank agent-service; do cargo build --locked "${profile_flag[@]}" -p "$p"; done
cargo build --locked -p testkit --bin fake-ollama
cargo build --locked -p testkit --bin fake-kube

headless() {
  local home rc=0
  home=$(mktemp -d)
  HOME="$home" dbus-run-session -- sh -c '
    echo -n flightdeck | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
    exec xvfb-run -a -s "-screen 0 1440x900x24" "$@"' sh "$@" || rc=$?
  rm -rf "$home"
  return $rc
}

log "cold start and memory ($BENCH_PROFILE builds, BENCH_MINUTES=${BENCH_MINUTES:-5})"
headless node tests/desktop/bench.mjs
log "approval arrival latency (APPROVAL_SAMPLES=${APPROVAL_SAMPLES:=20})"
APPROVAL_SAMPLES=$APPROVAL_SAMPLES FLIGHTDECK_APP="${CARGO_TARGET_DIR:-$PWD/target}/$BENCH_PROFILE/flightdeck" \
  AGENT_SERVICE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/$BENCH_PROFILE/agent-service" headless node --test --test-reporter=spec tests/desktop/app.test.mjs
