#!/usr/bin/env bash
# The release build of agent-service: the one build step the container image
# (deploy/Dockerfile) and CI (scripts/test-deploy.sh) share. Prints the binary's path.
# GIT_SHA, when set, is embedded in /v1/info and agent_build_info (else `git rev-parse`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p agent-service --bin agent-service "$@" >&2
echo "${CARGO_TARGET_DIR:-target}/release/agent-service"
