# Shared shell helpers for scripts/*.sh: install what is missing, start PostgreSQL.
# shellcheck shell=bash

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
# apt_ensure PKG... : installs the Debian packages that are not installed yet.
apt_ensure() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
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
# TEST_POSTGRES_URL (an admin URL; tests create one database each).
start_postgres() {
  if [ -n "${TEST_POSTGRES_URL:-}" ]; then return 0; fi
  apt_ensure postgresql postgresql-client
  local ver
  ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$ver main"; then
    as_root pg_createcluster "$ver" main >/dev/null
  fi
  if ! pg_lsclusters -h | grep -q "^$ver main .* online"; then
    log "starting PostgreSQL $ver"
    as_root pg_ctlcluster "$ver" main start
  fi
  local port
  port=$(pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $3}')
  as_root su postgres -c "psql -q -p $port -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  export TEST_POSTGRES_URL="postgres://postgres:postgres@127.0.0.1:$port/postgres"
}
