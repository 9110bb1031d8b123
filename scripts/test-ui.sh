#!/usr/bin/env bash
# The console UI's checks: install what is missing (Debian's Chromium, the npm packages
# from package-lock.json), lint, type check, build, then the browser tests (playwright-core
# driving /usr/bin/chromium against the built UI with the mock backend).
# Screenshots land in ui/test-results/screenshots/ (CI artifacts).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_ensure chromium
command -v node >/dev/null || { echo "node is missing: install Node.js 20.19+ with npm" >&2; exit 1; }

cd ui
run() {
  log "ui: $*"
  "$@"
}
run npm ci --no-audit --no-fund --loglevel=error
run npm run --silent lint
run npm run --silent check
run npm run --silent build -- --logLevel warn
log "ui: browser tests (screenshots in ui/test-results/screenshots/)"
run node --test --test-concurrency=1 --test-reporter=tap tests/
