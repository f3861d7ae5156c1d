"""The physical size of an image's pixels, where it came from, and the names of its units.

A :class:`Calibration` travels with an image from the file it was read from
(:mod:`napari_segany.image.metadata`) through :class:`~napari_segany.image.source.ImageSource`
and the segmentation session to the label files and the object table. Units are OME-NGFF names
("micrometer", "nanometer", "second", ...), whatever spelling the file used ("µm", "um",
"micron", ...).

>>> Calibration((0.65, 0.65), "micrometer", origin="OME metadata").describe()
'pixel size 0.65 × 0.65 micrometer (OME metadata)'
>>> parse_pixel_size("650nm")
((650.0, 650.0), 'nanometer')
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

__all__ = [
    "UNCALIBRATED",
    "Calibration",
    "length_unit",
    "parse_pixel_size",
    "time_unit",
    "with_pixel_size",
]

#: OME-NGFF length units we recognise, and other spellings of them seen in microscopy files.
_LENGTH_ALIASES = {
    "angstrom": ("å", "a", "ang", "angstroms", "ångström"),
    "nanometer": ("nm", "nanometre", "nanometers", "nanometres"),
    "micrometer": (
        "um",
        "µm",  # micro sign
        "μm",  # Greek mu
        "\\u00b5m",  # as ImageJ sometimes stores it
        "micron",
        "microns",
        "micrometre",
        "micrometers",
        "micrometres",
    ),
    "millimeter": ("mm", "millimetre", "millimeters", "millimetres"),
    "centimeter": ("cm", "centimetre", "centimeters", "centimetres"),
    "meter": ("m", "metre", "meters", "metres"),
}
_TIME_ALIASES = {
    "millisecond": ("ms", "msec", "milliseconds"),
    "second": ("s", "sec", "seconds"),
    "minute": ("min", "minutes"),
    "hour": ("h", "hr", "hours"),
}


def _lookup(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    names = {name: name for name in table}
    names.update({alias: name for name, aliases in table.items() for alias in aliases})
    return names


_LENGTHS = _lookup(_LENGTH_ALIASES)
_TIMES = _lookup(_TIME_ALIASES)


def length_unit(name) -> str | None:
    """The OME-NGFF name of a length unit ("µm" → "micrometer"), or None if it is not one.

    Accepts strings, enums with a string ``value`` (ome-types) and pint units.
    """
    return _LENGTHS.get(_unit_text(name))


def time_unit(name) -> str | None:
    """The OME-NGFF name of a time unit ("s" → "second"), or None if it is not one."""
    return _TIMES.get(_unit_text(name))


def _unit_text(name) -> str:
    if name is None:
        return ""
    name = getattr(name, "value", name)  # ome-types enums
    return str(name).strip().lower()


@dataclass(frozen=True)
class Calibration:
    """The physical size of a plane's pixels.

    Attributes
    ----------
    pixel_size : (float, float) or None
        Size of a pixel along (row, col), in ``unit``; None when unknown.
    unit : str or None
        OME-NGFF length unit of ``pixel_size`` and ``z_step`` ("micrometer"); None when unknown.
    z_step : float, optional
        Distance between planes of a z-stack, in ``unit``.
    time_interval : float, optional
        Time between frames of a time series, in ``time_unit``.
    time_unit : str, optional
        OME-NGFF time unit of ``time_interval`` ("second").
    origin : str
        Where the values come from ("OME metadata", "ImageJ metadata", "--pixel-size", ...);
        empty when nothing is known.
    """

    pixel_size: tuple[float, float] | None = None
    unit: str | None = None
    z_step: float | None = None
    time_interval: float | None = None
    time_unit: str | None = None
    origin: str = ""

    def __post_init__(self):
        if self.pixel_size is not None:
            size = tuple(float(s) for s in self.pixel_size)
            if len(size) != 2 or not all(math.isfinite(s) and s > 0 for s in size):
                raise ValueError(
                    f"a pixel size is two positive numbers (row, col), got {self.pixel_size!r}"
                )
            object.__setattr__(self, "pixel_size", size)

    @property
    def calibrated(self) -> bool:
        """True when the pixel size and its length unit are both known."""
        return self.pixel_size is not None and self.unit is not None

    def scale(self, ndim: int = 2) -> tuple[float, ...] | None:
        """Pixel size per axis for ``ndim``-dimensional labels: (row, col), or (plane, row,
        col) with the z step (1.0 when unknown); None when not calibrated."""
        if self.pixel_size is None:
            return None
        if ndim == 2:
            return self.pixel_size
        return (self.z_step or 1.0,) * (ndim - 2) + self.pixel_size

    def describe(self) -> str:
        """One line for people: the pixel size and where it came from, or that there is none."""
        if self.pixel_size is None:
            return "no pixel size in the file: sizes are in pixels"
        row, col = (f"{s:g}" for s in self.pixel_size)
        text = f"pixel size {row} × {col} {self.unit or '(unit unknown)'}"
        if self.z_step is not None:
            text += f", z step {self.z_step:g}"
        if self.time_interval is not None:
            text += f", frame interval {self.time_interval:g} {self.time_unit or ''}".rstrip()
        return text + (f" ({self.origin})" if self.origin else "")


#: Nothing known: sizes are in pixels.
UNCALIBRATED = Calibration()


def with_pixel_size(
    calibration: Calibration, size, unit: str | None = "micrometer", origin: str = "given"
) -> Calibration:
    """``calibration`` with its pixel size replaced (the z step and times are kept).

    Parameters
    ----------
    calibration : Calibration
    size : float, (float, float) or str
        One size for square pixels, (row, col), or text for :func:`parse_pixel_size`.
    unit : str, optional
        Unit of a numeric ``size`` (any spelling :func:`length_unit` knows).
    origin : str
        Where the size comes from, for messages.

    Raises
    ------
    ValueError
        Sizes that are not positive finite numbers, or an unknown unit.
    """
    if isinstance(size, str):
        pixel_size, name = parse_pixel_size(size, default_unit=unit or "micrometer")
    else:
        values = (size,) * 2 if isinstance(size, int | float) else tuple(size)
        pixel_size, name = values, length_unit(unit)
        if unit is not None and name is None:
            raise ValueError(f"unknown length unit {unit!r}; use e.g. micrometer or nanometer")
    if calibration.unit is not None and name != calibration.unit and calibration.z_step:
        # keep the z step in the new unit
        factor = _in_meters(calibration.unit) / _in_meters(name)
        calibration = replace(calibration, z_step=calibration.z_step * factor)
    return replace(calibration, pixel_size=pixel_size, unit=name, origin=origin)


_METERS = {
    "angstrom": 1e-10,
    "nanometer": 1e-9,
    "micrometer": 1e-6,
    "millimeter": 1e-3,
    "centimeter": 1e-2,
    "meter": 1.0,
}


def _in_meters(unit: str | None) -> float:
    return _METERS.get(unit or "", 1.0)


_SIZE = re.compile(r"^\s*([0-9.eE+-]+)\s*(?:,\s*([0-9.eE+-]+)\s*)?([^\d\s,][^,]*)?$")


def parse_pixel_size(
    text: str, default_unit: str = "micrometer"
) -> tuple[tuple[float, float], str]:
    """Read a pixel size as people write it: ``0.65``, ``0.65um``, ``650 nm``, ``0.5,0.65``.

    Parameters
    ----------
    text : str
        One size (square pixels) or two, ``row,col``, optionally followed by a length unit.
    default_unit : str
        The unit when none is written.

    Returns
    -------
    pixel_size : (float, float)
        (row, col).
    unit : str
        OME-NGFF length unit.

    Raises
    ------
    ValueError
        Not one or two positive numbers, or an unknown unit; the message shows the forms.
    """
    forms = "write it as 0.65, 0.65um, 650nm or ROW,COL (e.g. 0.5,0.65)"
    match = _SIZE.match(str(text))
    if match is None:
        raise ValueError(f"cannot read the pixel size {text!r}: {forms}")
    first, second, unit_text = match.groups()
    try:
        values = (float(first), float(second if second is not None else first))
    except ValueError:
        raise ValueError(f"cannot read the pixel size {text!r}: {forms}") from None
    unit = length_unit(unit_text if unit_text else default_unit)
    if unit is None:
        raise ValueError(
            f"unknown length unit {unit_text.strip()!r} in the pixel size {text!r}; use one of "
            f"{', '.join(_LENGTH_ALIASES)} (or um, nm, mm)"
        )
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"a pixel size must be positive, got {text!r}")
    return values, unit
