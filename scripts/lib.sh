# Shared shell helpers for scripts/*.sh: install what is missing, start PostgreSQL.
# shellcheck shell=bash

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# In CI (CI=true) cargo builds without incremental state: a cold run never reuses it, and
# on the two-core CI machine it was ~2.5 GB of target/debug's ~7 GB (measured on a cold
# run). Developers keep cargo's default. An explicit CARGO_INCREMENTAL wins.
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi

# disk_report LABEL: one line with the free space where the build writes and the size of
# cargo's target dir, so a CI log shows how close a run came to filling its disk.
disk_report() {
  local target="${CARGO_TARGET_DIR:-target}" free used
  mkdir -p "$target"
  free=$(df -h --output=avail "$target" | tail -1 | tr -d ' ')
  used=$(du -sh "$target" 2>/dev/null | cut -f1)
  log "disk ($1): $free free; target dir $used"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# The Debian packages the workspace needs to compile (clippy included): the C toolchain,
# D-Bus for the keyring, and the WebKitGTK stack of the Tauri shell.
RUST_BUILD_PACKAGES=(build-essential pkg-config libdbus-1-dev libwebkit2gtk-4.1-dev
  libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev)

# missing_packages PKG... : prints the Debian packages that are not installed (one line).
missing_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[*]}"
}

APT_UPDATED=0
# apt_ensure PKG... : installs the Debian packages that are not installed yet.
apt_ensure() {
  local missing
  read -r -a missing <<<"$(missing_packages "$@")"
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# start_postgres: installs and starts a local PostgreSQL cluster and exports
# TEST_POSTGRES_URL (an admin URL; tests create one database each and drop it when done).
start_postgres() {
  if [ -n "${TEST_POSTGRES_URL:-}" ]; then return 0; fi
  apt_ensure postgresql postgresql-client
  local ver
  ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$ver main"; then
    as_root pg_createcluster "$ver" main >/dev/null
  fi
  local started=0
  if ! pg_lsclusters -h | grep -q "^$ver main .* online"; then
    log "starting PostgreSQL $ver"
    # A server stopped abruptly (a machine snapshot, a killed run) replays its log and
    # syncs its data directory first: that takes longer than pg_ctl's default 60 s wait
    # when many databases are on disk, so wait up to 10 minutes.
    as_root pg_ctlcluster "$ver" main start -- -t 600
    started=1
  fi
  local port
  port=$(pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $3}')
  as_root su postgres -c "psql -q -p $port -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  local url="postgres://postgres:postgres@127.0.0.1:$port/postgres"
  # Each test drops its database (t_<uuid>) when it ends; a run killed before that leaves
  # them behind. Only a server this function just started has no run using it, so only
  # then are leftovers dropped.
  if [ "$started" = 1 ]; then
    local leftovers
    leftovers=$(psql "$url" -qAt -c "SELECT datname FROM pg_database WHERE datname ~ '^t_[0-9a-f]{32}$'")
    if [ -n "$leftovers" ]; then
      log "dropping $(wc -l <<<"$leftovers") test databases left by earlier runs"
      # shellcheck disable=SC2086 # one name per word
      printf 'DROP DATABASE IF EXISTS %s WITH (FORCE);\n' $leftovers | psql "$url" -q >/dev/null
    fi
  fi
  export TEST_POSTGRES_URL="$url"
}

# check_fmt: the formatting check, first in every script because it takes seconds and
# needs nothing but the toolchain.
check_fmt() {
  log "cargo fmt --check"
  cargo fmt --all -- --check || {
    echo "formatting differs (the diff is above): run cargo fmt --all" >&2
    return 1
  }
}

# ensure_ui_dist: builds the UI (ui/dist) when it is missing. The Tauri shell embeds it at
# compile time — a `cargo check` or clippy of the shell fails without it — so it comes
# before anything that compiles the whole workspace. About 20 s with npm's cache warm.
ensure_ui_dist() {
  [ -f ui/dist/index.html ] && return 0
  command -v npm >/dev/null || { echo "npm is missing: install Node.js 20.19+ with npm (the Tauri shell embeds the built UI)" >&2; return 1; }
  log "building the UI (ui/dist: the Tauri shell embeds it)"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build -- --logLevel warn)
}

# check_clippy: clippy over every crate and target of the workspace, warnings denied
# (needs RUST_BUILD_PACKAGES and ui/dist).
check_clippy() {
  log "cargo clippy --workspace --all-targets"
  cargo clippy --workspace --all-targets --locked -- -D warnings
}

# The nextest filter naming the PostgreSQL variants of the API tests: `both!` in
# agent-service/tests/api/helpers.rs names them `<test>::postgres`.
POSTGRES_VARIANTS='package(agent-service) & binary(api) & test(/::postgres$/)'

# The nextest filter naming the tests that run a real model (llama.cpp's server with
# SmolLM2-135M, installed by scripts/setup-model.sh): their names contain `real_model`.
REAL_MODEL_TESTS='test(/real_model/)'

# The nextest filter naming the tests that wait for a minute or more by design (a webhook
# receiver kept down for a minute while deliveries retry): scripts/check.sh leaves them out
# unless CHECK_LONG=1 (or CI=true) and says so; scripts/test.sh always runs them.
LONG_TESTS='package(agent-service) & binary(api) & test(/receiver_down_test/)'
