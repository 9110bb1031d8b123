#!/usr/bin/env bash
# The desktop app's checks: installs what is missing (Tauri's system packages, Xvfb,
# WebKitWebDriver, tauri-driver), builds the UI and the app (debug, with the built UI
# embedded: the default `custom-protocol` feature), the agent-service and the fake Ollama,
# then runs the desktop end-to-end tests (tests/desktop/) under Xvfb inside a D-Bus session
# with an unlocked keyring. Screenshots and figures land in target/desktop-artifacts/.
# As root (CI) it also builds the .deb, installs it, checks that /usr/bin/flightdeck opens
# its window under Xvfb and starts the bundled /usr/bin/agent-service, and removes it
# (DESKTOP_DEB=0 skips that; it never replaces a flightdeck package already installed).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_ensure "${RUST_BUILD_PACKAGES[@]}" curl wget file xvfb xauth webkit2gtk-driver \
  at-spi2-core x11-utils dbus-x11 gnome-keyring
command -v tauri-driver >/dev/null || { log "cargo install tauri-driver"; cargo install tauri-driver --locked -q; }

ensure_ui_dist
log "building the app, agent-service, fake-ollama and fake-kube"
start=$(date +%s)
# One build of every binary of the workspace: the same feature unification as the clippy
# and nextest runs over the workspace, so shared crates are compiled once, not per package.
cargo build --locked --workspace --bins
log "build took $(( $(date +%s) - start )) s"

target="${CARGO_TARGET_DIR:-$PWD/target}"   # cargo's target dir
mkdir -p "$target/desktop-artifacts"
# One Xvfb display and one D-Bus session (keyring for the profiles' keys) for the tests.
run_headless() {
  HOME_DIR=$(mktemp -d)
  HOME="$HOME_DIR" dbus-run-session -- sh -c '
    echo -n flightdeck | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
    exec xvfb-run -a -s "-screen 0 1440x900x24" "$@"' sh "$@"
  local rc=$?
  rm -rf "$HOME_DIR"
  return $rc
}

log "desktop end-to-end tests (tauri-driver + WebKitWebDriver under Xvfb)"
start=$(date +%s)
run_headless node --test --test-concurrency=1 --test-reporter=spec tests/desktop/
log "desktop e2e took $(( $(date +%s) - start )) s"

# The .deb: a debug build (it reuses the e2e's artifacts; a release bundle is the same
# command without --debug). The agent-service goes in as `bundle.externalBin`, which wants
# a file named with the target triple; it is installed beside the app as
# /usr/bin/agent-service, where the app looks first.
deb_check() {
  local triple deb
  triple=$(rustc -vV | sed -n 's/^host: //p')
  mkdir -p "$target/deb-staging"
  cp "$target/debug/agent-service" "$target/deb-staging/agent-service-$triple"
  log "tauri build --debug --bundles deb"
  start=$(date +%s)
  scripts/tauri.sh build --debug --bundles deb \
    --config "{\"bundle\":{\"externalBin\":[\"$target/deb-staging/agent-service\"]}}"
  log "bundling took $(( $(date +%s) - start )) s"
  deb=$(ls -t "$target"/debug/bundle/deb/*.deb | head -1)
  dpkg-deb -c "$deb" | grep -Eq ' (\./)?usr/bin/agent-service$' || { echo "$deb lacks /usr/bin/agent-service" >&2; return 1; }
  log "installing $deb, starting /usr/bin/flightdeck under Xvfb, removing it"
  dpkg -i "$deb" >/dev/null
  local rc=0
  run_headless bash -c '
    set -u
    data=$(mktemp -d)
    XDG_DATA_HOME=$data FLIGHTDECK_TRAFFIC=0 /usr/bin/flightdeck 2>"$data/log" &
    app=$!
    ok=0
    for _ in $(seq 150); do
      if xwininfo -root -tree 2>/dev/null | grep -q "\"Flightdeck\"" &&
         [ "$(readlink "/proc/$(pgrep -P $app -x agent-service | head -1)/exe" 2>/dev/null)" = /usr/bin/agent-service ]; then
        ok=1; break
      fi
      sleep 0.2
    done
    kill -TERM $app; wait $app
    if [ $ok = 1 ]; then echo "the installed app opened its window and started /usr/bin/agent-service"; else
      echo "the installed app did not open its window with the bundled agent-service:" >&2; cat "$data/log" >&2; fi
    rm -rf "$data"
    [ $ok = 1 ]' || rc=$?
  dpkg -r flightdeck >/dev/null
  return $rc
}

if [ "$(id -u)" = 0 ] && [ "${DESKTOP_DEB:-1}" != 0 ]; then
  if dpkg-query -W -f='${Status}' flightdeck 2>/dev/null | grep -q "install ok installed"; then
    echo "a flightdeck package is installed already: not replacing it (DESKTOP_DEB=0 skips this check)" >&2
    exit 1
  fi
  deb_check
elif [ "$(id -u)" = 0 ]; then
  log "DESKTOP_DEB=0: the .deb install check is skipped"
else
  log "not root: the .deb install check runs in CI (as root)"
fi
