"""Import the reference implementations without torchvision (benchmarks and tests).

Meta's ``segment_anything`` and micro-sam (with torch-em) import torchvision at module level,
which cannot be installed here. A stub package stands in for it, installed only in benchmark and
test processes (``tests/conftest.py`` uses this module too): the 8-bit image resize that
``SamPredictor.set_image`` uses is implemented with PIL (as torchvision does for PIL images); box
NMS and the other names, which neither ever calls, raise.
"""

from __future__ import annotations

import sys
import types

import numpy as np


def _to_pil_image(pic, mode=None):
    """torchvision's ``to_pil_image`` for an (H, W) or (H, W, C) uint8 array."""
    from PIL import Image

    if not isinstance(pic, np.ndarray) or pic.dtype != np.uint8 or pic.ndim not in (2, 3):
        raise RuntimeError("the torchvision stub converts only (H, W[, C]) uint8 arrays")
    if pic.ndim == 3 and pic.shape[2] == 1:
        pic = pic[..., 0]
    return Image.fromarray(np.ascontiguousarray(pic), mode=mode)


def _resize(img, size, interpolation=None, max_size=None, antialias=True):
    """torchvision's ``resize`` of a PIL image to (rows, cols): PIL's bilinear filter."""
    from PIL import Image

    if interpolation is not None or max_size is not None or len(size) != 2:
        raise RuntimeError("the torchvision stub resizes only to (rows, cols), bilinearly")
    if not isinstance(img, Image.Image):
        raise RuntimeError("the torchvision stub resizes only PIL images")
    rows, cols = (int(v) for v in size)
    if (img.height, img.width) == (rows, cols):
        return img
    return img.resize((cols, rows), Image.BILINEAR)


def install_torchvision_stub() -> None:
    """Put the stub ``torchvision`` package into ``sys.modules`` (unless one is imported)."""
    if "torchvision" in sys.modules:
        return

    def _unavailable(*args, **kwargs):
        raise RuntimeError("torchvision is stubbed out here (it cannot be installed)")

    modules = {
        "torchvision": {},
        "torchvision.ops": {},
        "torchvision.ops.boxes": {"batched_nms": _unavailable, "box_area": _unavailable},
        "torchvision.transforms": {},
        "torchvision.transforms.functional": {"resize": _resize, "to_pil_image": _to_pil_image},
        # imported (never called) by torch-em's trainers, which micro-sam imports
        "torchvision.utils": {"make_grid": _unavailable},
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        if any(other.startswith(name + ".") for other in modules):
            module.__path__ = []  # a package, so `from torchvision import transforms` works
        sys.modules[name] = module
    for name in modules:  # parent.child attributes, as a real import sets them
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, sys.modules[name])


def import_segment_anything():
    install_torchvision_stub()
    try:
        import segment_anything
    except ImportError as err:
        raise SystemExit(
            "The reference implementation is needed: pip install segment-anything==1.0"
        ) from err
    return segment_anything


def import_micro_sam():
    """``(micro_sam.util, micro_sam.instance_segmentation)``."""
    install_torchvision_stub()
    try:
        from micro_sam import instance_segmentation, util
    except ImportError as err:
        raise SystemExit(
            "micro-sam is needed: see the --no-deps install lines in scripts/test.sh"
        ) from err
    return util, instance_segmentation
