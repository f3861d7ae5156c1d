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
# micro-sam, the reference for tests/test_microsam_parity.py (its instance-segmentation decoders).
# Installed with --no-deps: its declared dependencies include torchvision (not installable here;
# tests/conftest.py stubs it), segment-anything-py (a fork of the segment-anything we pin), napari
# plugins and training tools. Pinned here is only what importing micro_sam.util and
# micro_sam.instance_segmentation needs: torch-em (the UNETR decoder, the watershed), python-elf
# and bioimage_cpp (smoothing, labelling, watershed), matplotlib and kornia (imported by torch-em),
# and scikit-learn (imported by python-elf), installed with its own dependencies.
# Everything else they import is already installed, at the versions the project pins.
.venv/bin/python -m pip install --quiet scikit-learn==1.9.1
.venv/bin/python -m pip install --quiet --no-deps micro-sam==1.8.14 torch-em==0.10.9 \
    python-elf==0.9.2 bioimage-cpp==0.10.0 kornia==0.9.0 kornia-rs==0.2.0 matplotlib==3.11.2 \
    contourpy==1.3.3 cycler==0.12.1 fonttools==4.68.0 pyparsing==3.3.3
.venv/bin/python -m ruff format --check src tests benchmarks scripts
.venv/bin/python -m ruff check src tests benchmarks scripts
# napari's current Qt binding (PyQt6, from napari[all]).
QT_API=pyqt6 xvfb-run -a .venv/bin/python -m pytest "$@"
