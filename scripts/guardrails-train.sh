#!/usr/bin/env bash
# Rebuilds the guardrail corpora and model and measures them: a venv with pinned packages
# (.venv-guardrails/), the source wheels from PyPI (pinned), the corpora (fixed seed), the
# features from the Rust scanner, the model (C chosen on dev), then the held-out figures
# from the Rust implementation (release build for the scan cost).
#   scripts/guardrails-train.sh            # everything
#   SKIP_TRAIN=1 scripts/guardrails-train.sh  # measure only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/agent-service/guardrails-data"
venv="$root/.venv-guardrails"
cache="$data/.cache"
bin="$root/target/release/agent-service"
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install -q -r "$data/requirements.txt"
cargo build --release -p agent-service --bin agent-service
if [ -z "${SKIP_TRAIN:-}" ]; then
  mkdir -p "$cache"
  for w in pyrit==1.1.0 spikee==0.9.2 prompt-security-fuzzer==2.1.1 langkit==0.0.35; do
    "$venv/bin/pip" download -q --no-deps "$w" -d "$cache"
  done
  (cd "$data" && "$venv/bin/python" build_corpus.py --cache "$cache" --out "$cache/corpus" \
    && "$venv/bin/python" build_pii.py --out corpus)
  cp "$cache/corpus/dev.jsonl" "$cache/corpus/heldout.jsonl" "$data/corpus/"
  for s in train dev; do
    "$bin" guardrails features --input "$cache/corpus/$s.jsonl" --output "$cache/features-$s.jsonl"
  done
  (cd "$data" && "$venv/bin/python" train.py --features-train "$cache/features-train.jsonl" \
    --features-dev "$cache/features-dev.jsonl" --train "$cache/corpus/train.jsonl" \
    --dev "$cache/corpus/dev.jsonl" --out model/injection-v4.bin)
  cargo build --release -p agent-service --bin agent-service
fi
"$bin" guardrails measure --corpus "$data/corpus/heldout.jsonl" --pii "$data/corpus/pii-heldout.jsonl" \
  --pii-benign "$data/corpus/pii-benign.jsonl" --timing-rounds 20
