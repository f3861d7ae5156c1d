"""Sample data for File > Open Sample (npe2 ``sample_data`` contribution)."""

from __future__ import annotations

import numpy as np

from napari_segany.synthetic import generate_nuclei


def make_nuclei_sample():
    """A generated 512×512 16-bit image of fluorescent nuclei, with its ground-truth labels."""
    image, labels = generate_nuclei(shape=(512, 512), n_objects=70, seed=7)
    return [
        (image, {"name": "nuclei (generated)", "colormap": "gray"}, "image"),
        (labels, {"name": "nuclei ground truth", "visible": False}, "labels"),
    ]


def large_nuclei_image(size: int = 4096, block: int = 1024, seed: int = 11):
    """A ``size`` × ``size`` 12-bit nuclei image as a dask array, each block made when read.

    Every ``block`` × ``block`` block is its own generated scene (nuclei density of the 512²
    sample), so nothing is computed until napari (or a tiled session) reads that block. Nuclei
    at block borders are cut straight.

    Returns
    -------
    dask.array.Array, shape (size, size), uint16
    """
    import dask.array as da

    if size % block:
        raise ValueError(f"size ({size}) must be a multiple of block ({block})")
    per_row = size // block
    n_objects = round(70 * (block / 512) ** 2)

    def make_block(block_info=None):
        row, col = block_info[None]["chunk-location"]
        image, _ = generate_nuclei(
            (block, block), n_objects=n_objects, seed=seed + row * per_row + col
        )
        return image

    chunks = ((block,) * per_row, (block,) * per_row)
    return da.map_blocks(
        make_block, dtype=np.uint16, chunks=chunks, meta=np.empty((0, 0), np.uint16)
    )


def make_large_nuclei_sample():
    """A 4096×4096 nuclei image generated block by block on demand (dask), to try tiling."""
    image = large_nuclei_image()
    meta = {"name": "nuclei 4096 (generated)", "colormap": "gray", "contrast_limits": (150, 3500)}
    return [(image, meta, "image")]
