#!/usr/bin/env bash
# One-step set-up: a virtual environment in .venv with cryoscape and its test dependencies.
# torch 2.13.0 is pinned here for the CPU build (no multi-GB CUDA download on CPU-only machines);
# on a GPU machine, install the CUDA build of torch into .venv first and run with KEEP_TORCH=1.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cryoscape needs Python >= 3.11")'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "${KEEP_TORCH:-0}" != 1 ]; then
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
fi
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/cryoscape --version
