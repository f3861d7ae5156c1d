#!/usr/bin/env bash
# Set up a virtual environment and run the whole test suite (what CI runs).
# torch is installed first, pinned to the CPU build available on these machines, so the
# project's own `torch>=` range is already met and pip does not fetch a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
# The napari widget tests need napari, a Qt binding and an X display: Xvfb and the X libraries
# Qt loads are installed (as root) when xvfb-run is missing.
if ! command -v xvfb-run >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "xvfb-run is missing: install xvfb and xauth (e.g. sudo apt-get install xvfb xauth)" >&2
        exit 1
    fi
    apt-get update
    apt-get install -y xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 \
        libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-randr0 libxcb-cursor0
fi
.venv/bin/python -m pip install --quiet -e ".[napari,testing]"
.venv/bin/python -m ruff format --check src tests benchmarks scripts
.venv/bin/python -m ruff check src tests benchmarks scripts
# napari's current Qt binding (PyQt6, from napari[all]).
QT_API=pyqt6 xvfb-run -a .venv/bin/python -m pytest "$@"
