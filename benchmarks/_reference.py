"""Import Meta's reference ``segment_anything`` without torchvision (benchmarks only).

Its modeling code does not need torchvision; only resizing and box NMS helpers import it at
module level, and the benchmarks call neither.
"""

from __future__ import annotations

import sys
import types


def import_segment_anything():
    if "torchvision" not in sys.modules:

        def _unavailable(*args, **kwargs):
            raise RuntimeError("torchvision is not available in this benchmark")

        for name, attrs in {
            "torchvision": {},
            "torchvision.ops": {},
            "torchvision.ops.boxes": {"batched_nms": _unavailable, "box_area": _unavailable},
            "torchvision.transforms": {},
            "torchvision.transforms.functional": {
                "resize": _unavailable,
                "to_pil_image": _unavailable,
            },
        }.items():
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module
    try:
        import segment_anything
    except ImportError as err:
        raise SystemExit(
            "The reference implementation is needed: pip install segment-anything==1.0"
        ) from err
    return segment_anything
