#!/usr/bin/env bash
# Checks the deploy/ bundle: renders every kustomize overlay, runs promtool over the
# Prometheus config, rules and rule tests, validates the compose file, runs the image's
# build step (scripts/build-service.sh) and smoke-tests that binary the way the image's
# HEALTHCHECK and Kubernetes use it, then runs the policy tests (tests/deploy).
# Installs what is missing from Debian's packages; kubectl ships on the build image.
# docker build itself cannot run here (no Docker engine): see deploy/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_ensure prometheus docker-compose busybox
command -v kubectl >/dev/null || { echo "kubectl is missing: install kubectl 1.32 (it ships on the build image)" >&2; exit 1; }

log "kubectl kustomize (every overlay)"
for overlay in deploy/k8s/overlays/*/; do
  objects=$(kubectl kustomize "$overlay" | grep -c '^kind: ')
  echo "  $overlay: $objects objects"
done

log "promtool check config / check rules / test rules"
if ! out=$(promtool check config deploy/prometheus/prometheus.yml 2>&1); then
  if grep -q "kubernetes_sd_configs not found" <<<"$out"; then
    # Debian builds promtool without Kubernetes discovery: check everything else with the
    # pod discovery swapped for a static pod address (the policy tests do the same).
    echo "  this promtool has no Kubernetes discovery; checking a copy with a static pod target"
    tmp=$(mktemp -d)
    sed -e 's/^    kubernetes_sd_configs:$/    static_configs:/' \
        -e 's/^      - role: pod$/      - targets: ["10.0.0.1:8080"]/' \
        deploy/prometheus/prometheus.yml >"$tmp/prometheus.yml"
    grep -q 'targets: \["10.0.0.1:8080"\]' "$tmp/prometheus.yml" \
      || { echo "could not swap the pod discovery in prometheus.yml" >&2; exit 1; }
    cp deploy/prometheus/alerts.yml "$tmp/"
    promtool check config "$tmp/prometheus.yml"
    rm -rf "$tmp"
  else
    echo "$out" >&2
    exit 1
  fi
else
  echo "$out"
fi
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml alerts_quality_test.yml)

log "docker-compose config"
POSTGRES_PASSWORD=ci-placeholder docker-compose -f deploy/compose.yaml config -q
if env -u POSTGRES_PASSWORD docker-compose -f deploy/compose.yaml config -q 2>/dev/null; then
  echo "compose.yaml must refuse to start without POSTGRES_PASSWORD" >&2
  exit 1
fi
echo "  valid; refuses to run without POSTGRES_PASSWORD"

log "scripts/build-service.sh (the image's build step)"
bin=$(scripts/build-service.sh)
ls -l "$bin"

log "smoke: the release binary under the image's HEALTHCHECK, probes and SIGTERM"
tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
env -i PATH="$PATH" HOME="$tmp" \
  DATABASE_URL="sqlite://$tmp/agent.db" BIND_ADDR=127.0.0.1:0 LOG_FORMAT=json \
  RELEASE_TRACK=canary SHUTDOWN_GRACE_SECS=5 \
  "$bin" serve >"$tmp/log" 2>&1 &
pid=$!
addr=""
for _ in $(seq 100); do
  addr=$(grep -o '127\.0\.0\.1:[0-9]\+' "$tmp/log" | head -1 || true)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/log" >&2; echo "agent-service exited at start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$tmp/log" >&2; echo "agent-service did not log its address" >&2; exit 1; }
# The HEALTHCHECK's exact command, with this run's address.
busybox wget -q -O /dev/null "http://$addr/healthz"
ready=$(busybox wget -q -O - "http://$addr/readyz")
grep -q '"status":"ready"\|"status":"degraded"' <<<"$ready" || { echo "readyz: $ready" >&2; exit 1; }
metrics=$(busybox wget -q -O - "http://$addr/metrics")
grep -q 'track="canary"' <<<"$metrics" || { echo "/metrics does not carry the release track" >&2; exit 1; }
echo "  $addr: /healthz ok, /readyz $(grep -o '"status":"[a-z]*"' <<<"$ready" | head -1), /metrics ok"
start=$(date +%s)
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
elapsed=$(( $(date +%s) - start ))
[ "$rc" = 0 ] || { cat "$tmp/log" >&2; echo "agent-service exited $rc after SIGTERM" >&2; exit 1; }
[ "$elapsed" -le 10 ] || { echo "SIGTERM took ${elapsed}s with SHUTDOWN_GRACE_SECS=5" >&2; exit 1; }
echo "  SIGTERM: exited 0 after ${elapsed}s"

# Nothing after this reads the release tree (~0.9 GB); CI's disk is finite, so CI drops it.
if [ "${CI:-}" = true ]; then
  log "CI: removing the release build (not used by the later checks)"
  rm -rf "${CARGO_TARGET_DIR:-target}/release"
fi

log "policy tests (tests/deploy)"
cargo test -p deploy-policy --locked
