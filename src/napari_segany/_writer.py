"""napari writer: the Labels layers among the layers napari saves, as TIFF or OME-Zarr.

One writer serves File > Save Selected Layers and File > Save All Layers. It takes one or more
Labels layers plus any other layers, saves every Labels layer with
:func:`napari_segany.labels_io.save_labels` (atomic, with the object table CSV beside it) and says
which layers it skipped, in a napari notification and in the log:

* one Labels layer → exactly the path napari gives;
* several → one file per layer beside that path, ``<stem>_<layer name>.labels.<ext>``, or, when
  the path is an existing OME-Zarr image, one ``labels/<layer name>`` group each inside it.

A path without a label format's extension gets ``.labels.tif`` appended, as napari itself does
for one layer; any other name is kept as given. The table's ``mean_intensity`` is measured on
the Labels layer's image: the Image layer named in its metadata (``napari_segany_image``, set by
the annotator), else the only Image layer whose last dimensions match the labels. napari's Save
dialog has already asked before replacing an existing file, so outputs are overwritten here.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_segany._qt.layers import IMAGE_KEY
from napari_segany._qt.review import REVIEWED
from napari_segany.image.calibration import length_unit

#: per-object columns of a Labels layer's features that go into the object table: the model's
#: scores (from Segment all) and the review mark (from the annotator's Review)
_SCORE_COLUMNS = ("predicted_iou", "foreground_probability", "stability", "confidence", REVIEWED)
_FORMATS = (".ome.zarr", ".zarr", ".tiff", ".tif")

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Image:
    """An Image layer that may hold the labels' intensities."""

    name: str
    data: Any
    rgb: bool
    point: tuple[float, ...] | None  # the viewer's current position, in data coordinates


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Save one Labels layer; return the paths written (labels first, then the CSV).

    Parameters
    ----------
    path : str
        Output path (``.labels.tif``, ``.tif``, ``.tiff``, ``.zarr`` or ``.ome.zarr``).
    data : array or list of arrays
        The layer's data (the finest level of multiscale data is saved).
    meta : dict
        The layer's attributes (``scale``, ``units``, ``name``, ``features``, ``metadata``).
    """
    return write_layers(path, [(data, meta, "labels")])


def write_layers(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Save every Labels layer of ``layer_data``; return the paths written.

    Parameters
    ----------
    path : str
        Output path chosen in napari; see the module docstring for several Labels layers.
    layer_data : list of (data, meta, layer_type)
        napari's layer data tuples; layers other than Labels are skipped and reported.

    Returns
    -------
    list of str
        Each Labels layer's file followed by its CSV, in layer order.

    Raises
    ------
    ValueError
        ``layer_data`` holds no Labels layer (napari never calls the writer so).
    """
    from napari_segany._qt.reader_preference import register_reader_preference

    register_reader_preference()
    labels = [(data, meta) for data, meta, kind in layer_data if kind == "labels"]
    skipped = [(str(meta.get("name")), kind) for _, meta, kind in layer_data if kind != "labels"]
    if not labels:
        raise ValueError("napari-segany saves Labels layers only: select a Labels layer to save")
    passed_images = [
        _image_from_tuple(data, meta) for data, meta, kind in layer_data if kind == "image"
    ]
    images = _merge_images(_viewer_images(), passed_images)
    targets = _targets(path, [meta.get("name") for _, meta in labels])
    written: list[str] = []
    for (data, meta), (target, name) in zip(labels, targets, strict=True):
        written += _save_layer(target, name, data, meta, images)
    _report(path, targets, [str(meta.get("name")) for _, meta in labels], skipped)
    return written


def _save_layer(target: Path, name: str, data: Any, meta: dict, images: list[_Image]) -> list[str]:
    from napari_segany.labels_io import save_labels

    if isinstance(data, list | tuple):
        data = data[0]
    scale, unit = _scale_and_unit(data, meta)
    classes = _classes(meta.get("features"))
    columns = _scores(meta.get("features")) or {}
    for i, row in (classes or {}).items():  # the class goes into the object table too
        columns.setdefault(i, {}).update({k: v for k, v in row.items() if v is not None})
    saved = save_labels(
        target,
        data,
        scale=scale,
        unit=unit,
        image=_source_image(tuple(data.shape), meta, images),
        scores=columns or None,
        name=name,
        overwrite=True,
        axes=_stack_axes(meta.get("axis_labels"), data.ndim),
        table=data.ndim < 4,  # the object table measures 2D and 3D labels
    )
    if classes and saved.format == "ome-zarr":
        from napari_segany.labels_io.ome_zarr import update_label_properties

        update_label_properties(target, classes, name=name)
    return [str(p) for p in saved.paths]


def _stack_axes(labels: Any, ndim: int) -> str | None:
    """``"tyx"``, ``"zyx"`` or ``"tzyx"`` for 3D/4D labels whose napari ``axis_labels`` say
    so, else None."""
    names = [str(a).lower() for a in labels or ()]
    if ndim not in (3, 4) or len(names) != ndim or names[-2:] != ["y", "x"]:
        return None
    leading = "".join({"t": "t", "time": "t", "z": "z"}.get(n, "?") for n in names[:-2])
    return f"{leading}yx" if leading in ("t", "z", "tz") else None


def _classes(features: Any) -> dict[int, dict[str, Any]] | None:
    """The objects' ``class`` and ``class_probability`` (from the Object classes panel)."""
    columns = getattr(features, "columns", None)
    if columns is None or "class" not in columns or len(features) == 0:
        return None
    id_column = next((c for c in ("label", "id", "index") if c in columns), None)
    if id_column is None:
        return None
    out = {}
    for i, name, p in zip(
        np.asarray(features[id_column]),
        features["class"],
        features.get("class_probability", [None] * len(features)),
        strict=True,
    ):
        if isinstance(name, str):
            out[int(i)] = {"class": name, "class_probability": None if p is None else float(p)}
    return out


def _targets(path: str, layer_names: list[Any]) -> list[tuple[Path, str]]:
    """(output path, label name inside OME-Zarr) for each Labels layer."""
    from napari_segany.labels_io import is_ome_zarr_image, labels_file_name, labels_stem

    out = _with_format(Path(path))
    names = _unique([_label_name(n) for n in layer_names])
    if len(names) == 1 or is_ome_zarr_image(out):
        return [(out, n) for n in names]
    ext = next(s for s in _FORMATS if out.name.lower().endswith(s))
    stem = labels_stem(out)
    return [
        (out.with_name(labels_file_name(f"{stem}_{n}", out.name[-len(ext) :])), n) for n in names
    ]


def _with_format(path: Path) -> Path:
    """``path``, or ``path.labels.tif`` when its name ends in no label format."""
    from napari_segany.labels_io import LABELS_TAG, labels_file_name

    if path.name.lower().endswith(_FORMATS):
        return path
    name = path.name[: -len(LABELS_TAG)] if path.name.endswith(LABELS_TAG) else path.name
    return path.with_name(labels_file_name(name))


def _unique(names: list[str]) -> list[str]:
    """``names`` with ``_2``, ``_3`` … added to repeats, so no two layers share a file."""
    taken: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name}_{n}"
        taken.add(candidate)
        out.append(candidate)
    return out


def _report(
    path: str, targets: list[tuple[Path, str]], layers: list[str], skipped: list[tuple[str, str]]
) -> None:
    """Say what was saved where, when that is not simply the path napari gave."""
    from napari_segany.labels_io import is_labels_file_name, labels_file_name, labels_stem

    parts = []
    if len(targets) > 1 or targets[0][0] != Path(path):
        shared = len({t for t, _ in targets}) < len(targets)  # groups of one OME-Zarr image
        where = ", ".join(
            f"{layer!r} → {t.name}" + (f"/labels/{name}" if shared else "")
            for layer, (t, name) in zip(layers, targets, strict=True)
        )
        parts.append(f"Saved Labels layers: {where}.")
    if skipped:
        listed = ", ".join(f"{name!r} ({kind})" for name, kind in skipped)
        parts.append(
            f"napari-segany saves Labels layers only; skipped {listed}: save them with another "
            "writer (select them, File > Save Selected Layers)."
        )
    for t, _ in targets:
        if t.suffix.lower() in (".tif", ".tiff") and not is_labels_file_name(t):
            parts.append(
                f"{t.name} opens in napari as an image; name it "
                f"{labels_file_name(labels_stem(t))} to reopen it as labels."
            )
    if parts:
        _notify(" ".join(parts))


def _notify(message: str) -> None:
    _log.info(message)
    if "napari" in sys.modules:
        from napari.utils.notifications import show_info

        show_info(message)


def _viewer_images() -> list[_Image]:
    """The current viewer's Image layers (none outside napari, or if they cannot be read)."""
    napari = sys.modules.get("napari")
    if napari is None:
        return []
    try:
        from napari.layers import Image

        viewer = napari.current_viewer()
        layers = [] if viewer is None else [x for x in viewer.layers if isinstance(x, Image)]
        return [
            _Image(
                layer.name,
                layer.data[0] if layer.multiscale else layer.data,
                bool(layer.rgb),
                tuple(float(p) for p in layer.world_to_data(viewer.dims.point)),
            )
            for layer in layers
        ]
    except Exception:  # the table loses its intensities, the labels are still saved
        _log.warning("could not look for the labels' image in the viewer", exc_info=True)
        return []


def _image_from_tuple(data: Any, meta: dict) -> _Image:
    data = data[0] if meta.get("multiscale") else data
    return _Image(str(meta.get("name")), data, bool(meta.get("rgb")), None)


def _merge_images(viewer_images: list[_Image], passed: list[_Image]) -> list[_Image]:
    """The viewer's layers (they know the current plane), then the passed ones it lacks."""
    names = {image.name for image in viewer_images}
    return viewer_images + [image for image in passed if image.name not in names]


def _source_image(shape: tuple[int, ...], meta: dict, images: list[_Image]) -> Any:
    """The intensities for the labels' table, or None when no image clearly fits."""
    wanted = (meta.get("metadata") or {}).get(IMAGE_KEY)
    named = [image for image in images if wanted is not None and image.name == wanted]
    if named:
        return _fitted(named[0], shape)
    fitting = [f for f in (_fitted(image, shape) for image in images) if f is not None]
    return fitting[0] if len(fitting) == 1 else None


def _fitted(image: _Image, shape: tuple[int, ...]) -> Any:
    """The part of ``image`` on the labels' grid: itself, or its current plane for 2D labels."""
    spatial = tuple(int(n) for n in image.data.shape[: -1 if image.rgb else None])
    extra = len(spatial) - len(shape)
    if extra < 0 or spatial[extra:] != shape:
        return None
    if extra == 0:
        return image.data
    if image.point is None:
        return None  # a stack, and no viewer to say which plane the labels belong to
    index = tuple(
        int(np.clip(round(p), 0, n - 1))
        for p, n in zip(image.point[:extra], spatial[:extra], strict=True)
    )
    return image.data[index]


def _scale_and_unit(data: Any, meta: dict) -> tuple[tuple[float, ...] | None, str | None]:
    scale = meta.get("scale")
    if scale is None:
        return None, None
    scale = tuple(float(s) for s in np.asarray(scale, dtype=float).ravel())[-data.ndim :]
    units = {str(u) for u in (meta.get("units") or ())}
    unit = units.pop() if len(units) == 1 else None
    if unit in (None, "pixel", "px", "dimensionless", ""):
        if all(s == 1.0 for s in scale):
            return None, None  # napari's default: no physical size known
        return scale, None
    return scale, length_unit(unit) or unit  # OME-NGFF names: pint's "micron" → "micrometer"


def _label_name(name: Any) -> str:
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name or "")).strip("._")
    return text or "segmentation"


def _scores(features: Any) -> dict[int, dict[str, float]] | None:
    """Model scores from the layer's features table, when it has them."""
    columns = getattr(features, "columns", None)
    if columns is None or len(features) == 0:
        return None
    present = [c for c in _SCORE_COLUMNS if c in columns]
    id_column = next((c for c in ("label", "id", "index") if c in columns), None)
    if not present or id_column is None:
        return None
    ids = np.asarray(features[id_column])
    return {
        int(i): {c: float(v) for c, v in zip(present, row, strict=True) if np.isfinite(v)}
        for i, row in zip(ids, np.asarray(features[present], dtype=float), strict=True)
    }
