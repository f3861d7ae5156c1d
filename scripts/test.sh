#!/usr/bin/env bash
# Set up a virtual environment and run the whole test suite (what CI runs).
# torch is installed first, pinned to the CPU build available on these machines, so the
# project's own `torch>=` range is already met and pip does not fetch a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e ".[testing]"
.venv/bin/python -m ruff format --check src tests benchmarks scripts
.venv/bin/python -m ruff check src tests benchmarks scripts
.venv/bin/python -m pytest "$@"
