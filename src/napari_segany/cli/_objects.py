"""What ``features`` and ``classify`` share: images paired with labels, where tables go.

Imports only the standard library at module level, so ``napari-segany --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_segany.cli._common import IMAGE_HELP, add_image_options


def add_object_arguments(parser: argparse.ArgumentParser) -> None:
    """IMAGE..., ``--labels``, ``-o``, the model, tiling and image options."""
    parser.add_argument("images", nargs="+", metavar="IMAGE", help=IMAGE_HELP)
    parser.add_argument(
        "--labels",
        nargs="+",
        required=True,
        metavar="LABELS",
        help="label image of each IMAGE, in the same order (TIFF, OME-Zarr, zarr, .npy)",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="CSV file (one image) or folder"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--tile", type=int, default=None, help="tile size (default: model input)")
    parser.add_argument("--halo", type=int, default=None, help="tile overlap margin in pixels")
    add_image_options(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def table_paths(images: list[str], labels: list[str], output: str, kind: str) -> list[Path]:
    """Where each image's table goes: OUT itself for one image and an OUT ending in ``.csv``,
    else ``OUT/<image name>_<kind>.csv``.

    Raises
    ------
    ValueError
        Not one labels file per image, several images for one CSV file, or two images of the
        same name.
    """
    from napari_segany.image.readers import image_stem

    if len(images) != len(labels):
        raise ValueError(
            f"{len(images)} image(s) but {len(labels)} labels file(s): give one --labels file "
            "per IMAGE, in the same order"
        )
    out = Path(output)
    if out.suffix.lower() == ".csv":
        if len(images) > 1:
            raise ValueError(f"{len(images)} images cannot all go to one file {out}: give a folder")
        return [out]
    paths = [out / f"{image_stem(image)}_{kind}.csv" for image in images]
    if len(set(paths)) < len(paths):
        raise ValueError("several images have the same name; run them in separate calls")
    return paths


def read_labels(path: str, plane=None):
    """A labels file as an (H, W) integer array (zarr stays lazy).

    Raises
    ------
    FileNotFoundError, ValueError
    """
    import numpy as np

    from napari_segany.labels_io import load_labels

    if path.lower().endswith(".npy"):
        if not Path(path).is_file():
            raise FileNotFoundError(f"no labels at {path}: the file does not exist")
        labels = np.load(path, allow_pickle=False)
    else:
        labels, _ = load_labels(path, lazy=True)
    if labels.ndim == 3:
        if plane is None:
            raise ValueError(f"{path} holds a stack of labels: choose its plane with --plane")
        labels = labels[plane if isinstance(plane, int) else plane[-1]]
    if labels.ndim != 2:
        raise ValueError(f"{path} has {labels.ndim} dimensions; give 2D labels (rows, cols)")
    return labels


def open_pairs(args) -> list[tuple]:
    """(image source, labels) of every IMAGE, checked before any work."""
    from napari_segany.image.source import open_image

    pairs = []
    for image, labels_path in zip(args.images, args.labels, strict=True):
        source = open_image(image, channel_axis=args.channel_axis, plane=args.plane)
        labels = read_labels(labels_path, args.plane)
        if tuple(labels.shape) != tuple(source.shape):
            raise ValueError(
                f"{labels_path} has shape {tuple(labels.shape)}, {image} is "
                f"{tuple(source.shape)}: pair each image with its own labels"
            )
        pairs.append((source, labels))
    return pairs
