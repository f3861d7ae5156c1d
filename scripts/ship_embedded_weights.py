"""Put trained embedded-model weights into the package and record their hash in the registry.

Usage: python scripts/ship_embedded_weights.py train_runs/segany_cells_v2.pt

The file is copied to ``src/napari_segany/weights/`` under its own name (via a temporary file and
a rename), the ``segany_cells`` entry of ``src/napari_segany/models/registry.py`` gets the new
file name, SHA-256 and size, and the previously shipped file is removed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "napari_segany" / "weights"
REGISTRY = ROOT / "src" / "napari_segany" / "models" / "registry.py"


def main(source: str) -> None:
    src = Path(source)
    WEIGHTS.mkdir(exist_ok=True)
    target = WEIGHTS / src.name
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    size = target.stat().st_size
    text = REGISTRY.read_text()
    entry = re.search(r'name="segany_cells",.*?bundled="[^"]+",', text, flags=re.S)
    if entry is None:
        raise SystemExit("segany_cells entry not found in registry.py")
    block = entry.group(0)
    previous = re.search(r'bundled="([^"]+)"', block).group(1)
    block = re.sub(r'filename="[^"]*"', f'filename="{target.name}"', block)
    block = re.sub(r'bundled="[^"]*"', f'bundled="{target.name}"', block)
    block = re.sub(r'known_hash="sha256:[^"]*"', f'known_hash="sha256:{digest}"', block)
    block = re.sub(r"size_bytes=[^,]*,", f"size_bytes={size:_},", block)
    REGISTRY.write_text(text[: entry.start()] + block + text[entry.end() :])
    if previous != target.name:
        (WEIGHTS / previous).unlink(missing_ok=True)
    print(f"{target} ({size} bytes), sha256 {digest}")


if __name__ == "__main__":
    main(sys.argv[1])
