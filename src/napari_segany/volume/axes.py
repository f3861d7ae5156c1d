"""Which axis of an array is what: parse and check axes strings such as ``"zyx"`` or ``"tczyx"``.

Letters: ``t`` time, ``z`` depth, ``c`` channels, ``y`` rows, ``x`` columns; each at most once,
``y`` and ``x`` always, in any order that ends with the two spatial axes apart from a channel
axis (``"zyx"``, ``"zcyx"``, ``"tzyxc"``). Files name their axes (OME-Zarr, ImageJ and OME-TIFF,
as read by :mod:`napari_segany.image.metadata`: upper-case letters, ``S`` for samples); arrays
without such names are only guessed when nothing else is possible: a 2D array is ``"yx"`` and a
3D array whose last axis has 3 or 4 entries is ``"yxc"`` (RGB). Any other 3D or 4D array needs
``axes=`` (``--axes``), and :class:`AxesError` says what to pass.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AXES_LETTERS", "AxesError", "StackAxes", "parse_axes", "resolve_axes"]

AXES_LETTERS = "tzcyx"


class AxesError(ValueError):
    """Axes that do not fit the image, or an image whose axes cannot be told."""


@dataclass(frozen=True)
class StackAxes:
    """The meaning of each axis of an array.

    Attributes
    ----------
    axes : str
        One lower-case letter of ``tzcyx`` per array axis, in array order.
    """

    axes: str

    def index(self, letter: str) -> int | None:
        """Array axis of ``letter`` or None."""
        return self.axes.index(letter) if letter in self.axes else None

    @property
    def channel_axis(self) -> int | None:
        return self.index("c")

    @property
    def stack_letters(self) -> str:
        """The stack letters present, in array order (e.g. ``"tz"``)."""
        return "".join(a for a in self.axes if a in "tz")

    @property
    def is_volume(self) -> bool:
        return "z" in self.axes

    @property
    def is_time(self) -> bool:
        return "t" in self.axes

    def plane(self, **index: int) -> tuple[int, ...]:
        """Index along the stack axes, in array order, e.g. ``plane(t=2, z=5)`` → ``(2, 5)``.

        This is the ``plane`` of :class:`napari_segany.image.source.ImageSource`.
        """
        missing = [a for a in self.stack_letters if a not in index]
        if missing:
            raise AxesError(f"axes {self.axes!r}: give an index for {', '.join(missing)}")
        return tuple(int(index[a]) for a in self.stack_letters)


def parse_axes(axes: str, shape: tuple[int, ...] | None = None) -> StackAxes:
    """Check an axes string (and that it fits ``shape``).

    Parameters
    ----------
    axes : str
        E.g. ``"zyx"``, ``"tyx"``, ``"tczyx"``; case-insensitive. ``S`` (samples, as TIFF files
        name RGB) is read as ``c``.
    shape : tuple of int, optional
        The array's shape: one letter per axis.

    Returns
    -------
    StackAxes

    Raises
    ------
    AxesError
        Unknown or repeated letters, missing ``y``/``x``, a channel axis between ``y`` and ``x``
        or spatial axes not last, or a length that does not match ``shape``.
    """
    if not isinstance(axes, str) or not axes:
        raise AxesError(f"axes must be letters from {AXES_LETTERS!r} such as 'zyx', got {axes!r}")
    text = axes.lower().replace("s", "c")
    bad = sorted(set(text) - set(AXES_LETTERS))
    if bad:
        raise AxesError(
            f"axes {axes!r}: unknown letter(s) {', '.join(bad)}; use letters from "
            f"{AXES_LETTERS!r} (t time, z depth, c channels, y rows, x columns)"
        )
    repeated = sorted({a for a in text if text.count(a) > 1})
    if repeated:
        raise AxesError(f"axes {axes!r}: {', '.join(repeated)} given more than once")
    if "y" not in text or "x" not in text:
        raise AxesError(f"axes {axes!r} must contain y (rows) and x (columns)")
    spatial = text.replace("c", "")
    if not spatial.endswith("yx"):
        raise AxesError(
            f"axes {axes!r}: y and x must be the last two axes apart from channels "
            "(e.g. 'zyx', 'tczyx', 'zyxc')"
        )
    if shape is not None and len(text) != len(shape):
        raise AxesError(
            f"axes {axes!r} name {len(text)} axes but the image has {len(shape)} "
            f"(shape {tuple(shape)}); give one letter per axis"
        )
    return StackAxes(text)


def resolve_axes(
    shape: tuple[int, ...], axes: str | None = None, file_axes: str | None = None
) -> StackAxes:
    """The axes of an array: given, else from its file, else guessed only when unambiguous.

    Parameters
    ----------
    shape : tuple of int
    axes : str, optional
        Given by the user (wins over the file's).
    file_axes : str, optional
        As a file names them (``"TZCYX"``; other letters than ``TZCYXS`` make them unusable).

    Raises
    ------
    AxesError
        For an array whose axes cannot be told: the message lists what to pass.
    """
    shape = tuple(int(s) for s in shape)
    if axes is not None:
        return parse_axes(axes, shape)
    if file_axes is not None and len(file_axes) == len(shape):
        try:
            return parse_axes(file_axes, shape)
        except AxesError:
            pass
    if len(shape) == 2:
        return StackAxes("yx")
    if len(shape) == 3 and shape[-1] in (3, 4):
        return StackAxes("yxc")
    if len(shape) < 2:
        raise AxesError(f"an image needs at least two axes (rows, columns), got shape {shape}")
    examples = {
        3: "'zyx' (a z-stack), 'tyx' (a time series) or 'cyx' (channels)",
        4: "'tzyx', 'zcyx', 'czyx' or 'tcyx'",
    }.get(len(shape), "'tczyx'")
    raise AxesError(
        f"cannot tell the axes of a {len(shape)}D image of shape {shape}: pass axes= "
        f"(--axes on the command line), one letter per axis from {AXES_LETTERS!r}, e.g. "
        f"{examples}"
    )
