#!/usr/bin/env bash
# Runs the Tauri CLI (pinned, from the npm registry), installing it on first use into
# target/tauri-cli/. It is not a devDependency of ui/: its per-platform optional packages
# are not all on the registry this project installs from, so a lockfile that lists them
# cannot be written here and one that does not breaks `npm ci`. `npm install --no-save`
# skips a missing optional package instead.
#   scripts/tauri.sh build --bundles deb      scripts/tauri.sh icon icons/source.png
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version=2.12.5
dir="$root/target/tauri-cli"
bin="$dir/node_modules/.bin/tauri"
if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "tauri-cli $version" ]; then
  mkdir -p "$dir"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$dir" "@tauri-apps/cli@$version" >&2
fi
exec "$bin" "$@"
