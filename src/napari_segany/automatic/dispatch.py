"""``napari_segany.automatic.segment``: one entry point for 2D images, z-stacks and time series.

An image whose ``axes`` name a ``z`` or ``t`` axis (or both) goes to
:func:`napari_segany.automatic.stack.segment_stack` (each slice, linked into 3D objects or
tracks, or 3D objects tracked over time); any other image to
:func:`napari_segany.automatic.segment.segment` (one 2D plane).
"""

from __future__ import annotations

from napari_segany.automatic.segment import AutomaticResult
from napari_segany.automatic.segment import segment as segment_image

__all__ = ["segment"]


def segment(image, model=None, *, axes: str | None = None, **options) -> AutomaticResult:
    """Segment every object of an image, a z-stack or a time series.

    Parameters
    ----------
    image : array-like or path
        A 2D image (grayscale, RGB or multichannel), or a stack with ``axes``.
    model : SamModel or str, optional
        A loaded model, a registry name or a checkpoint path; default the embedded model.
    axes : str, optional
        One letter per axis of ``image`` from ``tzcyx`` (see :mod:`napari_segany.volume.axes`).
        With ``z`` (``"zyx"``, ``"zcyx"``) each slice is segmented and the objects are linked
        into 3D objects; with ``t`` (``"tyx"``) they are tracked over time, with divisions;
        with both (``"tzyx"``, ``"tczyx"``) each frame's z-stack is linked into 3D objects and
        those are tracked over time.
        Without ``z`` or ``t`` (``"yx"``, ``"cyx"``, ``"yxc"``) the image is one 2D plane and a
        ``c`` gives its channel axis. Default: a 2D image as before.
    **options
        For a 2D image, the options of :func:`napari_segany.automatic.segment.segment`
        (``channel_axis``, ``tile_size``, ``halo``, ``cache``, ``device``, ``out``,
        ``exemplars``, ``progress`` and :class:`~napari_segany.automatic.params.AutomaticParams`
        fields); for a stack, those of :func:`napari_segany.automatic.stack.segment_stack`.

    Returns
    -------
    AutomaticResult
        For a stack, a :class:`~napari_segany.automatic.stack.StackResult` ((Z or T, H, W) or
        (T, Z, H, W) labels; ``tracks`` and ``parents`` for a time series).

    Examples
    --------
    >>> from napari_segany.automatic import segment
    >>> result = segment(image)  # doctest: +SKIP
    >>> result = segment(stack, axes="zyx")  # unique 3D IDs  # doctest: +SKIP
    >>> result = segment(movie, axes="tyx")  # with result.tracks  # doctest: +SKIP
    >>> result = segment(movie_of_stacks, axes="tzyx")  # tracked 3D objects  # doctest: +SKIP
    """
    if axes is None:
        return segment_image(image, model, **options)
    from napari_segany.volume.axes import parse_axes

    parsed = parse_axes(axes, tuple(getattr(image, "shape", ())) or None)
    if parsed.stack_letters:
        from napari_segany.automatic.stack import segment_stack

        return segment_stack(image, model, axes=axes, **options)
    if "channel_axis" in options:
        raise ValueError("give the channels either in axes ('c') or as channel_axis, not both")
    return segment_image(image, model, channel_axis=parsed.channel_axis, **options)
