"""Label images as OME-Zarr (OME-NGFF 0.5 on zarr v3, or 0.4 on zarr v2): writing.

Reading, and recognising OME-Zarr images, are in :mod:`.ome_zarr_read` (its public names are
importable from here too). Two layouts are written:

* **Standalone** (``path`` is new): the store's root is a multiscale label image, with
  ``multiscales`` and ``image-label`` metadata. Large images get extra levels, each half the size
  of the one before (nearest-neighbour), until the largest side is at most 2048 pixels.
* **Beside an image** (``path`` is an existing OME-Zarr image): the labels go to
  ``path/labels/<name>``, with as many levels as the image, the image's shapes and coordinate
  transformations, and ``source.image = "../../"``; ``name`` is added to ``path/labels``' list.
  Channel axes of the image get size 1 in the labels, as the specification asks.

Data are written chunk by chunk (1024×1024 chunks); zarr- or dask-backed labels are read in
blocks covering whole source chunks, so peak memory is a few blocks whatever the array's size.
Lower levels are made from the level above, again block by block.
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_segany.labels_io._arrays import (
    block_shape,
    check_labels,
    check_scale,
    drain,
    iter_blocks,
    label_dtype,
    read_block,
    scan_range,
)
from napari_segany.labels_io.atomic import atomic_output, check_writable
from napari_segany.labels_io.ome_zarr_read import (
    NGFF_VERSIONS,
    find_label_group,
    is_ome_zarr_image,
    ome_attrs,
    open_group,
    read_ome_zarr_labels,
)
from napari_segany.progress import Progress

__all__ = [
    "NGFF_VERSIONS",
    "is_ome_zarr_image",
    "read_ome_zarr_labels",
    "update_label_properties",
    "write_ome_zarr_labels",
    "write_ome_zarr_labels_job",
]

_CHUNK = 1024
_STANDALONE_MAX_SIDE = 2048
_MAX_LEVELS = 8
_NGFF_UNITS = {
    "angstrom",
    "nanometer",
    "micrometer",
    "millimeter",
    "centimeter",
    "meter",
}


# ----------------------------------------------------------------------------------- metadata
def _axes(ndim: int, unit: str | None, names: str | None = None) -> list[dict]:
    names = list(names.lower()) if names else ["z", "y", "x"][-ndim:]
    if len(names) != ndim or not set(names) <= set("tzyx") or names[-2:] != ["y", "x"]:
        raise ValueError(f"axes {''.join(names)!r} do not fit {ndim}D labels (e.g. 'zyx', 'tyx')")
    axes = []
    for name in names:
        axis = {"name": name, "type": "time" if name == "t" else "space"}
        if unit in _NGFF_UNITS and name != "t":
            axis["unit"] = unit
        axes.append(axis)
    return axes


def _image_label(
    version: str,
    colors: Mapping[int, Sequence[float]] | None,
    properties: Sequence[Mapping[str, Any]] | None,
    beside_image: bool,
) -> dict:
    entries = [{"label-value": 0, "rgba": [0, 0, 0, 0]}]
    for value, rgba in (colors or {}).items():
        rgba = [round(float(c) * 255) if isinstance(c, float) else int(c) for c in rgba]
        if len(rgba) == 3:
            rgba.append(255)
        if len(rgba) != 4 or not all(0 <= c <= 255 for c in rgba):
            raise ValueError(
                f"colour of label {value} must be RGB or RGBA, 0-255 integers or 0-1 floats; "
                f"got {list(colors[value])}"
            )
        if int(value) != 0:
            entries.append({"label-value": int(value), "rgba": rgba})
    meta: dict[str, Any] = {}
    if version == "0.4":
        meta["version"] = "0.4"
    meta["colors"] = entries
    if properties:
        meta["properties"] = [_property(row) for row in properties]
    if beside_image:
        meta["source"] = {"image": "../../"}
    return meta


def _property(row: Mapping[str, Any]) -> dict:
    out = {"label-value": int(row["label-value"] if "label-value" in row else row["id"])}
    for key, value in row.items():
        if key in ("id", "label-value") or value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            continue
        out[key] = value
    return out


def update_label_properties(
    path: str | os.PathLike,
    values: Mapping[int, Mapping[str, Any]],
    *,
    name: str | None = None,
) -> int:
    """Add or replace per-object properties of an OME-Zarr label image, in place.

    Parameters
    ----------
    path : path
        A label image (standalone) or an OME-Zarr image with a ``labels/`` group.
    values : mapping
        Label ID → {property: value}, e.g. ``{3: {"class": "mitotic"}}``. Each object's entry
        in ``image-label.properties`` gets these keys (others it has stay); objects without an
        entry get one.
    name : str, optional
        Which label image of an image's ``labels/`` group (default: the first listed).

    Returns
    -------
    int
        Objects whose properties were written.
    """
    group, version = find_label_group(Path(path), name)
    group = open_group(path, mode="r+") if not group.path else open_group(path, "r+")[group.path]
    ome, _ = ome_attrs(group)
    image_label = dict(ome.get("image-label") or {})
    rows = {int(p["label-value"]): dict(p) for p in image_label.get("properties", [])}
    for object_id, extra in values.items():
        rows.setdefault(int(object_id), {"label-value": int(object_id)}).update(extra)
    image_label["properties"] = [_property(rows[k]) for k in sorted(rows)]
    if version == "0.4":
        group.attrs["image-label"] = image_label
    else:
        group.attrs["ome"] = {**ome, "image-label": image_label}
    return len(values)


def _put_ome(group: Any, version: str, meta: dict) -> None:
    if version == "0.4":
        group.attrs.update(meta)
    else:
        group.attrs.update({"ome": {"version": version, **meta}})


# ------------------------------------------------------------------------------------ writing
def write_ome_zarr_labels(
    path: str | os.PathLike,
    labels: Any,
    *,
    name: str = "segmentation",
    scale: Sequence[float] | None = None,
    unit: str | None = "micrometer",
    version: str | None = None,
    colors: Mapping[int, Sequence[float]] | None = None,
    properties: Sequence[Mapping[str, Any]] | None = None,
    levels: int | None = None,
    overwrite: bool = False,
    axes: str | None = None,
) -> Path:
    """Write a label image as OME-Zarr, atomically.

    Parameters
    ----------
    path : path
        A new ``.zarr`` store (standalone label image), or an existing OME-Zarr image, in which
        case the labels are written to ``path/labels/<name>`` (see the module docstring).
    labels : array (H, W) or (Z, H, W)
        Integer IDs, 0 = background; numpy, zarr or dask. Stored as uint16 when the largest ID
        fits, else uint32. Beside an image, the shape must equal the image's non-channel axes.
    name : str
        Name of the label image (the ``labels/`` entry and the multiscale's name).
    scale : sequence of float, optional
        Pixel size per axis in ``unit`` (standalone only; beside an image the image's
        coordinate transformations are used).
    unit : str
        Unit of ``scale``, written on the axes when it is an NGFF length unit.
    version : {"0.5", "0.4"}, optional
        OME-NGFF version: "0.5" on zarr v3 (the default for a new store) or "0.4" on zarr v2.
        Beside an image, the image's version is used and another one is an error.
    colors : mapping of int to RGB(A), optional
        Display colours per label ID (0-255 ints or 0-1 floats); ID 0 is always transparent.
    properties : sequence of mappings, optional
        Per-object properties, each with ``id`` (or ``label-value``), e.g. object table rows.
    levels : int, optional
        Number of resolution levels of a standalone image (default: halve until ≤ 2048 px).
    overwrite : bool
        Replace an existing output (the store, or ``labels/<name>`` of an image).
    axes : str, optional
        Axis names of a standalone label image, e.g. ``"tyx"`` (``t`` has type ``time``);
        default ``"zyx"``/``"yx"``.

    Returns
    -------
    pathlib.Path
        The label image's group: ``path`` or ``path/labels/<name>``.
    """
    return drain(
        write_ome_zarr_labels_job(
            path,
            labels,
            name=name,
            scale=scale,
            unit=unit,
            version=version,
            colors=colors,
            properties=properties,
            levels=levels,
            overwrite=overwrite,
            axes=axes,
        )
    )


def write_ome_zarr_labels_job(
    path: str | os.PathLike,
    labels: Any,
    *,
    name: str = "segmentation",
    scale: Sequence[float] | None = None,
    unit: str | None = "micrometer",
    version: str | None = None,
    colors: Mapping[int, Sequence[float]] | None = None,
    properties: Sequence[Mapping[str, Any]] | None = None,
    levels: int | None = None,
    overwrite: bool = False,
    axes: str | None = None,
) -> Generator[Progress, None, Path]:
    """:func:`write_ome_zarr_labels` as a job: yields :class:`Progress`, returns the group path.

    Closing the generator cancels; the temporary store is removed and nothing else changes.
    """
    labels = check_labels(labels, max_ndim=4)
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"label name must be a plain folder name, got {name!r}")
    if version is not None and version not in NGFF_VERSIONS:
        raise ValueError(
            f"OME-Zarr version must be one of {sorted(NGFF_VERSIONS)}, got {version!r}"
        )
    path = Path(path).expanduser().absolute()
    if is_ome_zarr_image(path):
        plan = _plan_beside_image(path, labels, name, version)
        target = path / "labels" / name
    else:
        scale = check_scale(scale, labels.ndim)
        plan = _plan_standalone(labels, name, scale, unit, version or "0.5", levels, axes)
        target = path
    check_writable(target, overwrite=overwrite)
    _low, high = yield from scan_range(labels)
    dtype = label_dtype(high)
    image_label = _image_label(plan["version"], colors, properties, plan["beside"])
    if plan["beside"]:
        _ensure_labels_group(path, plan["version"])
    with atomic_output(target, overwrite=overwrite) as temporary:
        yield from _write_levels(temporary, labels, dtype, plan, image_label)
    if plan["beside"]:
        _register_label(path, name, plan["version"])
    return target


def _plan_standalone(
    labels: Any,
    name: str,
    scale: tuple[float, ...] | None,
    unit: str | None,
    version: str,
    levels: int | None,
    axes: str | None = None,
) -> dict:
    shape = tuple(int(n) for n in labels.shape)
    if levels is None:
        levels = 1
        while max(shape[-2:]) / 2 ** (levels - 1) > _STANDALONE_MAX_SIDE and levels < _MAX_LEVELS:
            levels += 1
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    base = scale or (1.0,) * len(shape)
    shapes, datasets = [], []
    for level in range(levels):
        factor = 2**level
        level_shape = shape[:-2] + tuple(max(1, math.ceil(n / factor)) for n in shape[-2:])
        level_scale = list(base[:-2]) + [
            s * n / m for s, n, m in zip(base[-2:], shape[-2:], level_shape[-2:], strict=True)
        ]
        shapes.append(level_shape)
        datasets.append(
            {
                "path": str(level),
                "coordinateTransformations": [{"type": "scale", "scale": level_scale}],
            }
        )
    multiscale = {"name": name, "axes": _axes(len(shape), unit if scale else None, axes)}
    multiscale["datasets"] = datasets
    if version == "0.4":
        multiscale = {"version": "0.4", **multiscale}
    return {
        "beside": False,
        "version": version,
        "shapes": shapes,
        "channel_axes": (),
        "multiscale": multiscale,
    }


def _plan_beside_image(path: Path, labels: Any, name: str, version: str | None) -> dict:
    group = open_group(path)
    ome, image_version = ome_attrs(group)
    if version is not None and version != image_version:
        raise ValueError(
            f"{path} is an OME-Zarr {image_version} image; its labels must use the same version "
            f"(asked for {version}). Leave the version unset to match the image."
        )
    if image_version not in NGFF_VERSIONS:
        raise ValueError(f"{path} is OME-Zarr {image_version}; only 0.4 and 0.5 can get labels")
    image_ms = ome["multiscales"][0]
    ndim = len(group[image_ms["datasets"][0]["path"]].shape)
    axes = image_ms.get("axes") or [{"name": n} for n in "tczyx"[-ndim:]]
    axes = [{"name": a} if isinstance(a, str) else dict(a) for a in axes]
    channel_axes = tuple(
        i for i, a in enumerate(axes) if a.get("type") == "channel" or a["name"] == "c"
    )
    shapes = []
    for dataset in image_ms["datasets"]:
        full = tuple(int(n) for n in group[dataset["path"]].shape)
        shapes.append(tuple(1 if i in channel_axes else n for i, n in enumerate(full)))
    spatial0 = tuple(n for i, n in enumerate(shapes[0]) if i not in channel_axes)
    spatial_names = [a["name"] for i, a in enumerate(axes) if i not in channel_axes]
    if spatial0 != tuple(int(n) for n in labels.shape):
        raise ValueError(
            f"labels of shape {tuple(labels.shape)} do not match the image at {path}, whose "
            f"non-channel axes ({', '.join(spatial_names)}) "
            f"have shape {spatial0}. Save labels of the image's full size."
        )
    datasets = [
        {"path": str(level), "coordinateTransformations": _label_transforms(d)}
        for level, d in enumerate(image_ms["datasets"])
    ]
    multiscale = {"name": name, "axes": axes, "datasets": datasets}
    if image_version == "0.4":
        multiscale = {"version": "0.4", **multiscale}
    return {
        "beside": True,
        "version": image_version,
        "shapes": shapes,
        "channel_axes": channel_axes,
        "multiscale": multiscale,
    }


def _label_transforms(dataset: Mapping) -> list[dict]:
    """The image level's transformations, reused: labels share the image's coordinates."""
    return [dict(t) for t in dataset.get("coordinateTransformations", [])]


def _ensure_labels_group(image: Path, version: str) -> None:
    import zarr

    root = zarr.open_group(str(image), mode="r+")
    if "labels" not in root:
        group = root.create_group("labels")
        _put_ome(group, version, {"labels": []})


def _register_label(image: Path, name: str, version: str) -> None:
    import zarr

    group = zarr.open_group(str(image / "labels"), mode="r+")
    ome, _ = ome_attrs(group)
    names = [n for n in ome.get("labels", []) if n != name] + [name]
    _put_ome(group, version, {"labels": names})


def _write_levels(
    store: Path, labels: Any, dtype: np.dtype, plan: dict, image_label: dict
) -> Generator[Progress, None, None]:
    import zarr

    version = plan["version"]
    zarr_format = NGFF_VERSIONS[version]
    root = zarr.open_group(str(store), mode="w", zarr_format=zarr_format)
    names = [a["name"] for a in plan["multiscale"]["axes"]]
    spatial = [i for i in range(len(names)) if i not in plan["channel_axes"]]
    arrays = []
    for level, shape in enumerate(plan["shapes"]):
        chunks = tuple(1 if i not in spatial[-2:] else min(_CHUNK, n) for i, n in enumerate(shape))
        options: dict[str, Any] = {}
        if zarr_format == 2:
            options["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        else:
            options["dimension_names"] = names
        arrays.append(
            root.create_array(
                str(level), shape=shape, chunks=chunks, dtype=dtype, fill_value=0, **options
            )
        )
    # Jobs: level 0 from the source, then each level from the one above.
    level_blocks = []
    for level, array in enumerate(arrays):
        out_chunks = tuple(array.chunks[i] for i in spatial)
        spatial_shape = tuple(array.shape[i] for i in spatial)
        # level 0 reads whole source chunks; lower levels read about 2×2 chunks of the level above
        block = block_shape(labels, out_chunks) if level == 0 else out_chunks
        level_blocks.append(list(iter_blocks(spatial_shape, block)))
    total, done = sum(len(b) for b in level_blocks), 0
    for level, (array, blocks) in enumerate(zip(arrays, level_blocks, strict=True)):
        for index in blocks:
            if level == 0:
                values = read_block(labels, index).astype(dtype, copy=False)
            else:
                values = _downsample_block(arrays[level - 1], array, index, spatial)
            _write_block(array, index, values, spatial)
            done += 1
            yield Progress(done, total, f"writing OME-Zarr level {level}")
    _put_ome(root, version, {"multiscales": [plan["multiscale"]], "image-label": image_label})


def _full_index(ndim: int, spatial: list[int], index: tuple[slice, ...]) -> tuple[slice, ...]:
    full = [slice(0, 1)] * ndim
    for axis, sl in zip(spatial, index, strict=True):
        full[axis] = sl
    return tuple(full)


def _write_block(array: Any, index: tuple[slice, ...], values: np.ndarray, spatial: list[int]):
    full = _full_index(array.ndim, spatial, index)
    array[full] = values.reshape(tuple(s.stop - s.start for s in full))


def _downsample_block(
    source: Any, target: Any, index: tuple[slice, ...], spatial: list[int]
) -> np.ndarray:
    """Nearest-neighbour values of ``target[index]`` sampled at pixel centres of ``source``."""
    picks = []
    for axis, sl in zip(spatial, index, strict=True):
        n_out, n_in = target.shape[axis], source.shape[axis]
        centres = np.arange(sl.start, sl.stop)
        picks.append(np.minimum(((centres + 0.5) * n_in / n_out).astype(np.int64), n_in - 1))
    region = tuple(slice(int(p[0]), int(p[-1]) + 1) for p in picks)
    values = np.asarray(source[_full_index(source.ndim, spatial, region)])
    values = values.reshape(tuple(s.stop - s.start for s in region))
    local = np.ix_(*[p - p[0] for p in picks])
    return values[local]
