"""What an image file says about its pixels: the meaning of each axis, the pixel size, channels.

One function per kind of file, each returning an :class:`ImageMetadata`:

* OME-TIFF: the OME-XML, read by bioio-ome-tiff (through ome-types), with its units;
* ImageJ TIFF: ImageJ's ``unit``, ``spacing`` and ``finterval`` with the resolution tags;
* other TIFFs: the resolution tags, when their unit is a length (centimetre; tifffile's
  millimetre and micrometre). Dots per inch are screen or print resolutions, not a microscope's
  calibration, and are ignored. (bioio-tifffile reads these too, but reports 1 µm for a TIFF
  without any calibration, so it cannot tell "uncalibrated" apart.)
* OME-Zarr: the multiscales axes and, through bioio-ome-zarr, the level-0 scale and units;
* vendor files (CZI, ND2, LIF) opened by a bioio reader: its dims and physical pixel sizes
  (micrometres, as bioio's readers report them).

Axes are given as one letter per axis of the pixel array: ``T`` time, ``C`` channel, ``Z``,
``Y`` (rows), ``X`` (cols), ``S`` samples (RGB); any other letter is an axis of unknown meaning.
Nothing here reads pixels.
"""

from __future__ import annotations

import datetime
import logging
import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from napari_segany.image.calibration import UNCALIBRATED, Calibration, length_unit, time_unit

__all__ = [
    "ImageMetadata",
    "bioio_metadata",
    "ome_zarr_metadata",
    "tiff_metadata",
]

_log = logging.getLogger(__name__)

#: Micrometres per unit of the TIFF ResolutionUnit tag (2 = inch is left out on purpose).
_RESOLUTION_UNIT_UM = {3: 1e4, 4: 1e3, 5: 1.0}  # centimetre, millimetre, micrometre
_PER_METER = {
    "angstrom": 1e10,
    "nanometer": 1e9,
    "micrometer": 1e6,
    "millimeter": 1e3,
    "centimeter": 1e2,
    "meter": 1.0,
}


@dataclass(frozen=True)
class ImageMetadata:
    """What a file says about its pixel array.

    Attributes
    ----------
    axes : str or None
        One letter per axis of the array (``"TZCYX"``, ``"YXS"``); None when unknown.
    calibration : Calibration
        Pixel size, z step, frame interval.
    channel_names : tuple of str, optional
        Names of the channels along ``C``, when the file names them.
    """

    axes: str | None = None
    calibration: Calibration = UNCALIBRATED
    channel_names: tuple[str, ...] | None = None


# ---------------------------------------------------------------------------------------- TIFF
def tiff_metadata(path: Path, tif: Any) -> ImageMetadata:
    """Axes and calibration of the first series of an open ``tifffile.TiffFile``."""
    series = tif.series[0]
    axes = str(series.axes).upper()
    if len(axes) != len(series.shape):
        axes = None
    if tif.is_ome:
        calibration, names = _ome_tiff_calibration(path)
        return ImageMetadata(axes, calibration, names)
    page = getattr(series, "keyframe", None) or tif.pages[0]  # the tags of its first page
    if tif.is_imagej:
        return ImageMetadata(axes, _imagej_calibration(tif.imagej_metadata or {}, page))
    return ImageMetadata(axes, _tag_calibration(page))


def _pixel_size_from_tags(page: Any) -> tuple[float, float] | None:
    """(row, col) size of a pixel in resolution units, from XResolution/YResolution."""
    try:
        x_res, y_res = (float(v) for v in page.resolution)
    except (AttributeError, TypeError, ValueError):
        return None
    if not (x_res > 0 and y_res > 0 and math.isfinite(x_res) and math.isfinite(y_res)):
        return None
    return 1.0 / y_res, 1.0 / x_res


def _tag_calibration(page: Any) -> Calibration:
    unit_code = int(getattr(page, "resolutionunit", 1) or 1)
    size = _pixel_size_from_tags(page)
    if size is None or unit_code not in _RESOLUTION_UNIT_UM:
        return UNCALIBRATED
    um = _RESOLUTION_UNIT_UM[unit_code]
    return Calibration((size[0] * um, size[1] * um), "micrometer", origin="TIFF resolution tags")


def _imagej_calibration(meta: dict, page: Any) -> Calibration:
    unit = length_unit(meta.get("unit"))
    size = _pixel_size_from_tags(page)
    interval = _positive(meta.get("finterval"))
    times = {}
    if interval is not None:
        times = {"time_interval": interval, "time_unit": time_unit(meta.get("tunit")) or "second"}
    if unit is None or size is None:
        return replace(UNCALIBRATED, **times)
    return Calibration(
        size, unit, z_step=_positive(meta.get("spacing")), origin="ImageJ metadata", **times
    )


def _ome_tiff_calibration(path: Path) -> tuple[Calibration, tuple[str, ...] | None]:
    """Calibration and channel names from the OME-XML, read with bioio-ome-tiff."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ome-types' deprecation chatter
            from bioio_ome_tiff import Reader

            pixels = Reader(str(path)).ome_metadata.images[0].pixels
    except Exception as exc:  # invalid OME-XML: the pixels are still readable
        _log.warning("%s: could not read its OME metadata (%s)", path, exc)
        return UNCALIBRATED, None
    names = tuple(str(c.name) for c in pixels.channels if c.name) or None
    times = {}
    interval = _positive(pixels.time_increment)
    if interval is not None:
        times = {
            "time_interval": interval,
            "time_unit": time_unit(pixels.time_increment_unit) or "second",
        }
    x, y = _positive(pixels.physical_size_x), _positive(pixels.physical_size_y)
    x_unit = length_unit(pixels.physical_size_x_unit)
    y_unit = length_unit(pixels.physical_size_y_unit)
    if x is None or y is None or x_unit is None or y_unit is None:
        return replace(UNCALIBRATED, **times), names
    y = y * _PER_METER[x_unit] / _PER_METER[y_unit]  # the same unit on both axes
    z = _positive(pixels.physical_size_z)
    z_unit = length_unit(pixels.physical_size_z_unit)
    if z is not None and z_unit is not None:
        z = z * _PER_METER[x_unit] / _PER_METER[z_unit]
    calibration = Calibration((y, x), x_unit, z_step=z, origin="OME metadata", **times)
    return calibration, names


# ------------------------------------------------------------------------------------ OME-Zarr
def ome_zarr_metadata(path: Path, multiscale: dict, ndim: int) -> ImageMetadata:
    """Axes from the multiscales entry; calibration and channel names through bioio-ome-zarr.

    Parameters
    ----------
    path : Path
        The OME-Zarr image (its root group).
    multiscale : dict
        The first ``multiscales`` entry of the group's attributes.
    ndim : int
        Dimensions of the full-resolution array.
    """
    names = [a if isinstance(a, str) else a.get("name", "?") for a in multiscale.get("axes", [])]
    axes = "".join(str(n)[:1].upper() for n in names) if len(names) == ndim else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from bioio_ome_zarr import Reader

            reader = Reader(str(path))
            sizes = reader.physical_pixel_sizes
            properties = reader.dimension_properties
            interval = reader.time_interval
            channel_names = reader.channel_names
    except Exception as exc:  # metadata bioio cannot parse: the pixels are still readable
        _log.warning("%s: could not read its OME-Zarr metadata (%s)", path, exc)
        return ImageMetadata(axes)
    names_out = tuple(str(n) for n in channel_names) if channel_names else None
    times = {}
    seconds = _seconds(interval)
    if seconds is not None:
        unit = time_unit(properties.T.unit) if properties.T.unit is not None else None
        times = {"time_interval": seconds, "time_unit": unit}
    x_unit, y_unit = length_unit(properties.X.unit), length_unit(properties.Y.unit)
    if sizes is None or sizes.X is None or sizes.Y is None:
        return ImageMetadata(axes, replace(UNCALIBRATED, **times), names_out)
    size = (float(sizes.Y), float(sizes.X))
    if x_unit is None or x_unit != y_unit:
        if size == (1.0, 1.0):  # the default scale: no calibration
            return ImageMetadata(axes, replace(UNCALIBRATED, **times), names_out)
        x_unit = None  # a scale in an unknown unit
    calibration = Calibration(
        size, x_unit, z_step=_positive(sizes.Z), origin="OME-Zarr metadata", **times
    )
    return ImageMetadata(axes, calibration, names_out)


# --------------------------------------------------------------------------------------- bioio
def bioio_metadata(reader: Any, dims: str, kind: str) -> ImageMetadata:
    """Metadata of a file opened by a bioio reader (CZI, ND2, LIF, ...).

    Parameters
    ----------
    reader : bioio_base.reader.Reader
    dims : str
        The reader's native dims, one letter per axis of the array used.
    kind : str
        What the file is, for messages ("Zeiss CZI").
    """
    names = None
    sizes = None
    interval = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            names = tuple(str(n) for n in reader.channel_names) or None
        except Exception:
            names = None
        try:
            sizes = reader.physical_pixel_sizes
        except Exception as exc:
            _log.warning("could not read the pixel size of a %s file (%s)", kind, exc)
        try:
            interval = _seconds(reader.time_interval)
        except Exception:
            interval = None
    times = {"time_interval": interval, "time_unit": "second"} if interval else {}
    x = _positive(getattr(sizes, "X", None))
    y = _positive(getattr(sizes, "Y", None))
    if x is None or y is None:
        return ImageMetadata(dims, replace(UNCALIBRATED, **times), names)
    z = _positive(getattr(sizes, "Z", None))
    calibration = Calibration((y, x), "micrometer", z_step=z, origin=f"{kind} metadata", **times)
    return ImageMetadata(dims, calibration, names)


# ------------------------------------------------------------------------------------- helpers
def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _seconds(interval: Any) -> float | None:
    if isinstance(interval, datetime.timedelta):
        return _positive(interval.total_seconds())
    return _positive(interval)
