"""Z-stacks and time series: axes, propagation of prompts through slices, 3D linking, tracking.

>>> from napari_segany.volume import propagate
>>> mask = propagate(stack, z=7, points=[[64, 40]])  # (Z, H, W) bool  # doctest: +SKIP

Modules: ``axes`` (which axis is what), ``slices`` (lazily encoded per-slice sessions),
``propagate`` (prompt one slice, get the whole object), ``linking`` (2D objects of each slice →
3D objects) and ``tracking`` (objects of each 2D or 3D frame → tracks with divisions).
"""

from napari_segany.volume.axes import AxesError, StackAxes, parse_axes, resolve_axes
from napari_segany.volume.linking import link_slices
from napari_segany.volume.propagate import (
    PropagationParams,
    VolumePropagator,
    propagate,
    propagate_objects,
)
from napari_segany.volume.slices import StackSessions, open_stack
from napari_segany.volume.tracking import TrackResult, track

__all__ = [
    "AxesError",
    "PropagationParams",
    "StackAxes",
    "StackSessions",
    "TrackResult",
    "VolumePropagator",
    "link_slices",
    "open_stack",
    "parse_axes",
    "propagate",
    "propagate_objects",
    "resolve_axes",
    "track",
]
