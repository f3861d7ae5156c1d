"""Zero-shot check of the embedded model on the real microscopy images that ship with scikit-image.

The model was trained on synthetic images only. These machines are offline, so the only real
microscopy at hand is what scikit-image installs with itself:

* ``cell.png``: one cell floating in saline (quantitative phase image, 660×550). A single
  high-contrast cell, so a classical reference mask is trustworthy: the largest connected
  component of an Otsu threshold of the smoothed image, holes filled. The script reports the IoU
  with that reference of the automatic object on the cell, of one click at the reference's centre
  and of the reference's bounding box as a box prompt.
* ``ihc.png``: immunohistochemistry of human colon tissue (512×512 RGB). The hematoxylin channel
  (colour deconvolution, ``skimage.color.rgb2hed``) shows the nuclei bright on dark, like a
  nuclear stain. There is no ground truth: the script reports the number of objects, their
  median area and the time, and writes an overlay of the outlines for a person to judge.

Overlays (image | outlines) are written as PNG files into ``--out``.

Usage::

    python benchmarks/real_images.py [--model segany_cells|PATH] [--out real_image_overlays]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import skimage
from scipy import ndimage as ndi
from skimage import io
from skimage.color import rgb2hed
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import find_boundaries

from eval_embedded import box_of, centre_click, iou
from napari_segany import Predictor, load_model
from napari_segany.automatic import segment
from napari_segany.image.prep import to_rgb_uint8

DATA = Path(skimage.__file__).parent / "data"


def hematoxylin(rgb: np.ndarray) -> np.ndarray:
    """The hematoxylin channel of an RGB IHC image as uint16, nuclei bright."""
    channel = rgb2hed(rgb)[..., 0]
    low, high = channel.min(), channel.max()
    return ((channel - low) / (high - low) * 65535).astype(np.uint16)


def single_cell_reference(image: np.ndarray) -> np.ndarray:
    """Largest component of an Otsu threshold of the smoothed image, holes filled (bool)."""
    smooth = gaussian(image.astype(np.float64), sigma=2)
    components, count = ndi.label(smooth > threshold_otsu(smooth))
    if count == 0:
        raise ValueError("no foreground found for the reference mask")
    sizes = np.bincount(components.ravel())[1:]
    return ndi.binary_fill_holes(components == 1 + int(np.argmax(sizes)))


def write_overlay(image: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """Save image | image with yellow object outlines, side by side, as PNG.

    The image is shown as the model sees it (:func:`~napari_segany.image.prep.to_rgb_uint8`).
    """
    shown = to_rgb_uint8(image)
    outlined = shown.copy()
    outlined[find_boundaries(labels, mode="inner")] = (255, 255, 0)
    io.imsave(path, np.concatenate([shown, outlined], axis=1), check_contrast=False)


def check_single_cell(model, out: Path) -> None:
    image = io.imread(DATA / "cell.png")
    reference = single_cell_reference(image)
    start = time.perf_counter()
    labels = np.asarray(segment(image, model).labels)
    seconds = time.perf_counter() - start
    on_cell = np.bincount(labels[reference], minlength=1)
    on_cell[0] = 0
    automatic = labels == int(np.argmax(on_cell)) if on_cell.any() else np.zeros_like(reference)
    predictor = Predictor(model)
    predictor.set_image(image)
    click = predictor.predict(points=[centre_click(reference)], point_labels=[1])
    box = predictor.predict(box=box_of(reference), multimask=False)
    write_overlay(image, labels, out / "cell_overlay.png")
    print(
        f"cell.png {image.shape}: {labels.max()} objects in {seconds:.2f} s; IoU with the "
        f"Otsu reference ({int(reference.sum())} px): automatic {iou(automatic, reference):.3f}, "
        f"one click {iou(click.masks[click.best], reference):.3f}, "
        f"box {iou(box.masks[0], reference):.3f}"
    )


def check_tissue_nuclei(model, out: Path) -> None:
    image = hematoxylin(io.imread(DATA / "ihc.png"))
    start = time.perf_counter()
    labels = np.asarray(segment(image, model).labels)
    seconds = time.perf_counter() - start
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    write_overlay(image, labels, out / "ihc_hematoxylin_overlay.png")
    print(
        f"ihc.png hematoxylin {image.shape}: {len(areas)} objects in {seconds:.2f} s, median "
        f"area {np.median(areas):.0f} px (no ground truth: judge the overlay)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="segany_cells")
    parser.add_argument("--out", type=Path, default=Path("real_image_overlays"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, device="cpu")
    check_single_cell(model, args.out)
    check_tissue_nuclei(model, args.out)
    print(f"overlays written to {args.out}/")


if __name__ == "__main__":
    main()
