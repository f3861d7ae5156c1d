"""Which pixels of a napari Image layer the annotator segments, and where the user is looking.

Everything here speaks the layer's data coordinates, (row, col) for the plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_segany.image.channels import MEAN


class ImageSourceError(ValueError):
    """The chosen layer cannot be segmented; the message says why and what to do."""


@dataclass(frozen=True)
class Plane:
    """One 2D plane of an Image layer, the unit the annotator segments.

    Attributes
    ----------
    data : array, shape (H, W), (H, W, 3|4) or with a channel axis
        A lazy view (numpy, dask or zarr slice) of the layer's data; not loaded whole.
    channel_axis : int or None
        Axis of ``data`` holding channels (None for grayscale and RGB).
    leading : tuple of int
        Indices of the layer's non-displayed, non-channel axes that select this plane
        (e.g. (z,) for a z-stack); () for a 2D image.
    label_shape : tuple of int
        Shape of an instance Labels layer that fits the whole layer (channels removed).
    key : tuple
        Identifies the plane (layer, indices, channel axis, channel), to reuse embeddings.
    channel : int, "mean" or None
        Channel segmented alone as a grayscale image (0, 1, 2 = R, G, B of an RGB layer) or
        the mean of R, G and B; None: automatic (see
        :func:`napari_segany.image.channels.grayscale_channel`).
    units : tuple of str, optional
        The layer's units per axis of ``label_shape`` (e.g. ("micrometer", "micrometer")),
        given to the annotator's layers so that they line up with the image in napari's
        physical coordinates and are saved with them; None when the layer has none.
    """

    data: object
    channel_axis: int | None
    leading: tuple[int, ...]
    label_shape: tuple[int, ...]
    key: tuple
    channel: int | str | None = None
    units: tuple[str, ...] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the plane."""
        if self.channel_axis is None:
            return tuple(int(s) for s in self.data.shape[:2])
        spatial = [s for i, s in enumerate(self.data.shape) if i != self.channel_axis]
        return int(spatial[0]), int(spatial[1])


def channel_axes(layer) -> list[int]:
    """Axes of an Image layer that may hold channels (not the two plane axes; none for RGB)."""
    if layer.rgb:
        return []
    return list(range(max(0, layer.ndim - 2)))


def rgb_channels(layer) -> list[tuple[str, int | str]]:
    """(name, channel) of what can be segmented alone in an RGB layer: R, G, B and their mean.

    Empty for other layers; alpha is never offered.
    """
    if not layer.rgb:
        return []
    return [("R", 0), ("G", 1), ("B", 2), ("mean of R, G, B", MEAN)]


def current_plane(
    layer, dims_point=None, channel_axis: int | None = None, channel: int | str | None = None
) -> Plane:
    """The plane of ``layer`` the viewer currently shows.

    Parameters
    ----------
    layer : napari.layers.Image
        2D grayscale, RGB(A), a stack (the current plane is taken) or multichannel.
    dims_point : sequence of float, optional
        ``viewer.dims.point`` (world coordinates of the slider positions).
    channel_axis : int, optional
        Axis of the layer's data holding channels (see :func:`channel_axes`).
    channel : int or "mean", optional
        For an RGB layer, the channel segmented alone (see :func:`rgb_channels`); None:
        automatic.

    Raises
    ------
    ImageSourceError
        For a layer that is not an image, an empty image, a bad channel axis or channel.
    """
    from napari.layers import Image

    if not isinstance(layer, Image):
        kind = type(layer).__name__
        raise ImageSourceError(f"{layer.name!r} is a {kind} layer; choose an Image layer.")
    data = layer.data[0] if layer.multiscale else layer.data
    shape = tuple(int(s) for s in data.shape)
    if 0 in shape:
        raise ImageSourceError(f"{layer.name!r} is empty (shape {shape}); choose another image.")
    n_plane = layer.ndim  # napari's ndim excludes the RGB axis
    if channel_axis is not None and channel_axis not in channel_axes(layer):
        raise ImageSourceError(
            f"axis {channel_axis} of {layer.name!r} cannot hold channels; "
            f"choose one of {channel_axes(layer)} or none"
        )
    if channel is not None and channel not in [c for _, c in rgb_channels(layer)]:
        raise ImageSourceError(
            f"{layer.name!r} has no channel {channel!r} to segment alone; only RGB layers have "
            "(R, G, B or their mean)"
        )
    if n_plane < 2 or (channel_axis is not None and n_plane < 3):
        raise ImageSourceError(f"{layer.name!r} has no 2D plane (shape {shape}).")
    leading_axes = [a for a in range(n_plane - 2) if a != channel_axis]
    if leading_axes:
        if dims_point is None:
            point = np.zeros(n_plane)
        else:
            world = np.asarray(dims_point, dtype=float)[-n_plane:]
            point = np.asarray(layer.world_to_data(world), dtype=float)
        index = [int(np.clip(np.round(point[a]), 0, shape[a] - 1)) for a in leading_axes]
    else:
        index = []
    selection: list = [slice(None)] * len(shape)
    for axis, i in zip(leading_axes, index, strict=True):
        selection[axis] = i
    plane = data[tuple(selection)] if leading_axes else data
    plane_channel_axis = None
    if channel_axis is not None:
        plane_channel_axis = channel_axis - sum(a < channel_axis for a in leading_axes)
    label_shape = tuple(s for a, s in enumerate(shape[:n_plane]) if a != channel_axis)
    units = layer_units(layer, channel_axis)
    return Plane(
        data=plane,
        channel_axis=plane_channel_axis,
        leading=tuple(index),
        label_shape=label_shape,
        key=(id(getattr(layer, "__wrapped__", layer)), tuple(index), channel_axis, channel),
        channel=channel,
        units=units,
    )


def layer_units(layer, channel_axis: int | None = None) -> tuple[str, ...] | None:
    """The layer's units without the channel axis, as names ("micrometer"); None when it has
    no units or only napari's default ("pixel")."""
    units = getattr(layer, "units", None)
    if units is None:
        return None
    names = tuple(str(u) for a, u in enumerate(units) if a != channel_axis)
    if all(name in ("pixel", "dimensionless", "") for name in names):
        return None
    return names


def visible_region(viewer, layer, shape: tuple[int, int]) -> tuple[slice, slice] | None:
    """The part of the plane (row and col slices of the layer's data) shown on the canvas.

    Computed from the camera (centre, zoom) and the canvas size; None when it cannot be told
    (e.g. no canvas yet) or nothing of the image is visible.
    """
    try:
        height, width = (float(v) for v in viewer.canvas.size)
        scene = getattr(viewer, "scene", None)
        camera = scene.camera if scene is not None else viewer.camera
        centre = np.asarray(camera.center, dtype=float)[-2:]
        zoom = float(camera.zoom)
    except (AttributeError, TypeError, ValueError):
        return None
    if zoom <= 0 or height <= 1 or width <= 1:
        return None
    half = np.array([height, width]) / (2 * zoom)
    corners = np.array([centre - half, centre + half])
    n = layer.ndim
    world = np.zeros((2, n))
    world[:, :] = np.asarray(viewer.dims.point, dtype=float)[-n:]
    world[:, -2:] = corners
    data = np.array([layer.world_to_data(w) for w in world], dtype=float)[:, -2:]
    low = np.floor(data.min(axis=0)).astype(int)
    high = np.ceil(data.max(axis=0)).astype(int)
    low = np.clip(low, 0, shape)
    high = np.clip(high, 0, shape)
    if np.any(high <= low):
        return None
    return slice(int(low[0]), int(high[0])), slice(int(low[1]), int(high[1]))
