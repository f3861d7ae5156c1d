"""Sample data for File > Open Sample (npe2 ``sample_data`` contribution)."""

from __future__ import annotations

from napari_segany.synthetic import generate_nuclei


def make_nuclei_sample():
    """A generated 512×512 16-bit image of fluorescent nuclei, with its ground-truth labels."""
    image, labels = generate_nuclei(shape=(512, 512), n_objects=70, seed=7)
    return [
        (image, {"name": "nuclei (generated)", "colormap": "gray"}, "image"),
        (labels, {"name": "nuclei ground truth", "visible": False}, "labels"),
    ]
