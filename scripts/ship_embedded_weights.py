"""Put trained embedded-model weights into the package and record their hash in the registry.

Usage: python scripts/ship_embedded_weights.py train_runs/segany_cells_v1.pt

The file is copied to ``src/napari_segany/weights/`` (via a temporary file and a rename) and the
``segany_cells`` entry of ``src/napari_segany/models/registry.py`` gets the new SHA-256 and size.
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
NAME = "segany_cells_v1.pt"


def main(source: str) -> None:
    src = Path(source)
    WEIGHTS.mkdir(exist_ok=True)
    target = WEIGHTS / NAME
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
    block = re.sub(r'known_hash="sha256:[^"]*"', f'known_hash="sha256:{digest}"', block)
    block = re.sub(r"size_bytes=[^,]*,", f"size_bytes={size:_},", block)
    REGISTRY.write_text(text[: entry.start()] + block + text[entry.end() :])
    print(f"{target} ({size} bytes), sha256 {digest}")


if __name__ == "__main__":
    main(sys.argv[1])
