"""Write the sample images in sample_data/ (reproducible: fixed seeds of the generator).

* ``nuclei.tif``: 1024 × 1024 16-bit fluorescent nuclei from the synthetic generator (a held-out
  seed and parameter band, never seen in training), and ``nuclei_truth.tif``, its ground-truth
  instance labels.

Run ``python scripts/make_sample_data.py``.
"""

from pathlib import Path

import numpy as np
import tifffile

from napari_segany.synthetic import generate_scene
from napari_segany.synthetic.config import SceneConfig

OUT = Path(__file__).resolve().parent.parent / "sample_data"
SEED = 20_261_126


def main() -> None:
    OUT.mkdir(exist_ok=True)
    nuclei_only = SceneConfig(modality_weights=(1.0, 0.0, 0.0, 0.0))
    scene = generate_scene((1024, 1024), config=nuclei_only, seed=SEED, held_out=True)
    image = np.asarray(scene.raw)
    labels = np.asarray(scene.labels).astype(np.uint16)
    tifffile.imwrite(OUT / "nuclei.tif", image, compression="zlib")
    tifffile.imwrite(OUT / "nuclei_truth.tif", labels, compression="zlib")
    print(f"nuclei.tif {image.shape} {image.dtype}, {labels.max()} objects")


if __name__ == "__main__":
    main()
