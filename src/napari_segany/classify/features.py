"""Per-object features of a label image, measured tile by tile on images of any size.

:func:`object_features` (and its job form :func:`iter_object_features`) measures every object of
a label image over its image, reading image, labels and embeddings one tile at a time (numpy,
zarr or dask; never loaded whole). Columns, by group (``_<c>`` = channel c of a multichannel
image; a grayscale image has no suffix):

===============================  ================================================================
``id``                           the object's label ID
``centroid_row/_col``            mean pixel position (row, col), pixels (position: not a feature)
``bbox_row0/_col0/_row1/_col1``  bounding box, half-open (position: not a feature)
**shape**
``area``                         pixels in the object
``perimeter``                    length of its outline, pixels (scikit-image ``perimeter``)
``equivalent_diameter``          diameter of the disc of the same area, pixels
``major/minor_axis_length``      axes of the ellipse with the same second moments, pixels
``eccentricity``                 of that ellipse: 0 for a disc, towards 1 when elongated
``orientation``                  angle between the rows axis and the major axis, −π/2 to π/2
``solidity``                     area / area of the convex hull (1 = convex, lower = lobed)
``extent``                       area / area of the bounding box
``circularity``                  4π·area / perimeter² (1 for a disc)
**intensity** (raw pixel values)
``intensity_mean/_std[_<c>]``    mean and standard deviation over the object
``intensity_min/_max[_<c>]``     smallest and largest value in the object
**neighbours**
``touching_neighbours``          other objects sharing a border with it (4-connected)
``neighbours_<R>px``             other objects whose centroid lies within R pixels of its own
``nearest_neighbour_distance``   distance to the nearest other centroid, pixels (empty if alone)
**embedding**
``embedding_mean_<k>``           mean of channel k (000–255) of the model's image embedding over
                                 the object's pixels (each pixel takes the token it lies in)
``embedding_std_<k>``            (``embedding_std=True``) its standard deviation
===============================  ================================================================

Every pixel is counted once (in the inner region of its tile), so an object crossing a seam
gets the values it would have in one tile. Shape is measured on the whole object: within the
first tile's outer region that holds it whole, or on its own bounding box when no tile does.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import numpy as np

from napari_segany.classify.shape import (
    SHAPE_COLUMNS,
    border_ids,
    neighbour_counts,
    shape_features,
    touching_counts,
    touching_pairs,
)
from napari_segany.classify.table import FEATURE_VERSION, FeatureTable
from napari_segany.classify.tile_sums import merge_sums, tile_sums, token_index
from napari_segany.image.tiling import Tile, TileGrid
from napari_segany.progress import Progress, run_with_progress

#: Feature groups, in table order.
GROUPS = ("shape", "intensity", "neighbours", "embedding")
#: Radii of the ``neighbours_<R>px`` columns, pixels.
NEIGHBOUR_RADII = (50, 100)
#: Tiling used when no model (no embedding) sets it: tile side and halo, pixels.
PLAIN_TILE, PLAIN_HALO = 1024, 128


def check_groups(groups: Sequence[str]) -> tuple[str, ...]:
    """``groups`` as a tuple in table order; a clear error for an unknown or empty choice."""
    if isinstance(groups, str):
        groups = (groups,)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise ValueError(f"feature groups must be among {list(GROUPS)}, got {list(groups)}")
    return tuple(g for g in GROUPS if g in groups)


def _check_labels(labels, shape: tuple[int, int]):
    if not (hasattr(labels, "shape") and hasattr(labels, "dtype")):
        labels = np.asarray(labels)
    if tuple(int(n) for n in labels.shape) != tuple(shape):
        raise ValueError(
            f"labels of shape {tuple(labels.shape)} do not match the image plane {tuple(shape)}: "
            "give the label image made for this image (one 2D plane, (rows, cols))"
        )
    if not np.issubdtype(np.dtype(labels.dtype), np.integer):
        raise ValueError(f"labels must hold integer object IDs, got {labels.dtype}; 0 = background")
    return labels


def _model_record(model) -> dict:
    from napari_segany.tiled.embedding_cache import model_weights_hash

    return {"architecture": model.architecture, "weights_hash": model_weights_hash(model)}


def iter_object_features(
    labels,
    *,
    session=None,
    image=None,
    groups: Sequence[str] = GROUPS,
    embedding_std: bool = False,
    neighbour_radii: Sequence[float] = NEIGHBOUR_RADII,
    model_record: dict | None = None,
) -> Generator[Progress, None, FeatureTable]:
    """:func:`object_features` as a job: yields :class:`Progress` per tile, returns the table.

    Parameters
    ----------
    labels : array, shape (H, W), integer
        Object IDs, 0 = background; numpy, zarr or dask (read tile by tile).
    session : SegmentationSession, optional
        The image and its (cached) tile embeddings; needed for the ``embedding`` group. Tiles
        not encoded yet are encoded first (progress "encoding tile …").
    image : array-like, path or ImageSource, optional
        The image, when no ``session`` is given (features without ``embedding``).
    groups : sequence of str
        Feature groups to measure (see the module docstring).
    embedding_std : bool
        Add ``embedding_std_<k>`` columns.
    neighbour_radii : sequence of float
        Radii of the ``neighbours_<R>px`` columns.
    model_record : dict, optional
        The table's ``model`` (computed from the session's model when not given).

    Closing the generator cancels between tiles.
    """
    from napari_segany.image.source import open_image

    groups = check_groups(groups)
    embed = "embedding" in groups
    if session is None:
        if embed:
            raise ValueError(
                "embedding features need a model: pass session=SegmentationSession(image, "
                "model), or leave 'embedding' out of groups"
            )
        if image is None:
            raise ValueError("give the image the labels were made from (image=... or session=)")
        source = open_image(image)
        grid = TileGrid(source.shape, PLAIN_TILE, PLAIN_HALO)
    else:
        source, grid = session.source, session.grid
    labels = _check_labels(labels, source.shape)
    if embed and not session.is_encoded():
        encode = session.encode()
        try:
            yield from encode
        finally:
            encode.close()
    parts, shapes, pairs = [], {}, []
    for done, tile in enumerate(grid.tiles, start=1):
        outer = np.asarray(labels[tile.outer])
        part = _measure_tile(tile, outer, grid.shape, source, session, groups, embedding_std)
        if part is not None:
            parts.append(part)
            if "shape" in groups:
                _measure_shapes(tile, outer, grid.shape, part["id"], shapes)
            if "neighbours" in groups:
                pairs.append(touching_pairs(_grown_inner(tile, outer)))
        yield Progress(done, len(grid), f"measuring objects, tile {done}/{len(grid)}")
    merged = merge_sums(parts) if parts else None
    if "shape" in groups and merged is not None:
        _measure_rest(labels, merged, shapes)
    record = None
    if embed:
        record = model_record if model_record is not None else _model_record(session.model)
    return _table(merged, shapes, pairs, groups, embedding_std, neighbour_radii, source, record)


def _measure_tile(tile: Tile, outer, shape, source, session, groups, embedding_std):
    """Sums over the tile's inner pixels (see :func:`~.tile_sums.tile_sums`)."""
    inner_slices = tile.inner_in_outer
    inner = outer[inner_slices]
    if not inner.any():
        return None
    origin = (tile.inner[0].start, tile.inner[1].start)
    pixels = None
    if "intensity" in groups:
        pixels = source.read(*tile.inner)
    tokens = features = None
    if "embedding" in groups:
        embedding = session.tile_embedding(tile.index)
        tensor = embedding.features[0].detach().float().cpu()
        dim, gh, gw = (int(n) for n in tensor.shape)
        features = tensor.reshape(dim, gh * gw).T.numpy()
        stride = session.model.image_size / gw
        scale = tuple(
            i / o for i, o in zip(embedding.input_size, embedding.original_size, strict=True)
        )
        valid = tuple(int(np.ceil(n / stride)) for n in embedding.input_size)
        offset = (inner_slices[0].start, inner_slices[1].start)
        tokens = token_index(inner.shape, offset, scale, stride, (gh, gw), valid)
    return tile_sums(inner, origin, pixels, tokens, features, squares=embedding_std)


def _cut_sides(tile: Tile, shape) -> tuple[bool, bool, bool, bool]:
    """Which edges of the tile's outer region lie inside the image (may cut an object)."""
    rows, cols = tile.outer
    return rows.start > 0, rows.stop < shape[0], cols.start > 0, cols.stop < shape[1]


def _measure_shapes(tile: Tile, outer, shape, ids, shapes: dict) -> None:
    """Shapes of the objects of the tile's inner region that its outer region holds whole."""
    todo = np.setdiff1d(ids, np.fromiter(shapes, np.int64, len(shapes)))
    cut = border_ids(outer, _cut_sides(tile, shape))
    todo = np.setdiff1d(todo, cut)
    shapes.update(shape_features(outer, todo))


def _grown_inner(tile: Tile, outer) -> np.ndarray:
    """The tile's inner region grown by one pixel within the outer one (borders at seams)."""
    rows, cols = tile.inner_in_outer
    return outer[
        max(0, rows.start - 1) : min(outer.shape[0], rows.stop + 1),
        max(0, cols.start - 1) : min(outer.shape[1], cols.stop + 1),
    ]


def _measure_rest(labels, merged, shapes: dict) -> None:
    """Shapes of the objects no tile held whole, each on its own bounding box."""
    for k, object_id in enumerate(merged["id"]):
        if int(object_id) in shapes:
            continue
        box = (
            slice(int(merged["min_row"][k]), int(merged["max_row"][k]) + 1),
            slice(int(merged["min_col"][k]), int(merged["max_col"][k]) + 1),
        )
        crop = np.asarray(labels[box])
        shapes.update(shape_features(np.where(crop == object_id, crop, 0), [object_id]))


def _channel_names(count: int, multichannel: bool) -> list[str]:
    return [f"_{c}" for c in range(count)] if multichannel else [""]


def _table(merged, shapes, pairs, groups, embedding_std, radii, source, record) -> FeatureTable:
    if merged is None:
        merged = {"id": np.zeros(0, np.int64), "area": np.zeros(0, np.int64)}
        for key in ("sum_row", "sum_col", "min_row", "min_col", "max_row", "max_col"):
            merged[key] = np.zeros(0)
    ids = merged["id"].astype(np.int64)
    area = merged["area"].astype(np.float64)
    n = ids.size
    centroid = (
        np.column_stack([merged["sum_row"], merged["sum_col"]]) / np.maximum(area, 1)[:, None]
    )
    columns: dict[str, np.ndarray] = {
        "centroid_row": centroid[:, 0],
        "centroid_col": centroid[:, 1],
        "bbox_row0": merged["min_row"].astype(np.int64),
        "bbox_col0": merged["min_col"].astype(np.int64),
        "bbox_row1": merged["max_row"].astype(np.int64) + 1,
        "bbox_col1": merged["max_col"].astype(np.int64) + 1,
    }
    table_groups: dict[str, list[str]] = {}
    if "shape" in groups:
        values = np.array([shapes[int(i)] for i in ids]).reshape(n, len(SHAPE_COLUMNS))
        for j, name in enumerate(SHAPE_COLUMNS):
            columns[name] = values[:, j]
        columns["area"] = area.astype(np.int64)
        table_groups["shape"] = list(SHAPE_COLUMNS)
    if "intensity" in groups:
        names = []
        channels = source.channels
        count = 1 if channels is None else int(channels)
        suffixes = _channel_names(count, channels is not None)
        safe = np.maximum(area, 1)[:, None]
        sums = merged.get("sum_i", np.zeros((n, count)))
        mean = sums / safe
        var = np.maximum(merged.get("sq_i", np.zeros((n, count))) / safe - mean * mean, 0.0)
        stats = {
            "intensity_mean": mean,
            "intensity_std": np.sqrt(var),
            "intensity_min": merged.get("min_i", np.zeros((n, count))),
            "intensity_max": merged.get("max_i", np.zeros((n, count))),
        }
        for c, suffix in enumerate(suffixes):
            for stat, value in stats.items():
                columns[stat + suffix] = value[:, c].astype(np.float64)
                names.append(stat + suffix)
        table_groups["intensity"] = names
    if "neighbours" in groups:
        joined = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
        counts, nearest = neighbour_counts(centroid, radii)
        columns["touching_neighbours"] = touching_counts(ids, joined)
        names = ["touching_neighbours"]
        for radius in radii:
            name = f"neighbours_{radius:g}px"
            columns[name] = counts[radius]
            names.append(name)
        columns["nearest_neighbour_distance"] = nearest
        table_groups["neighbours"] = [*names, "nearest_neighbour_distance"]
    if "embedding" in groups:
        safe = np.maximum(area, 1)[:, None]
        sums = merged.get("sum_e")
        mean = sums / safe if sums is not None else np.zeros((n, 0))
        names = []
        for k in range(mean.shape[1]):
            columns[f"embedding_mean_{k:03d}"] = mean[:, k]
            names.append(f"embedding_mean_{k:03d}")
        if embedding_std and "sq_e" in merged:
            std = np.sqrt(np.maximum(merged["sq_e"] / safe - mean * mean, 0.0))
            for k in range(std.shape[1]):
                columns[f"embedding_std_{k:03d}"] = std[:, k]
                names.append(f"embedding_std_{k:03d}")
        table_groups["embedding"] = names
    return FeatureTable(ids, columns, table_groups, record, FEATURE_VERSION)


def object_features(
    image,
    labels,
    model=None,
    *,
    groups: Sequence[str] = GROUPS,
    channel_axis: int | None = None,
    tile_size: int | None = None,
    halo: int | None = None,
    cache=None,
    device: str = "auto",
    embedding_std: bool = False,
    neighbour_radii: Sequence[float] = NEIGHBOUR_RADII,
    progress: bool = False,
) -> FeatureTable:
    """Measure every labelled object: shape, intensity, neighbourhood and image embedding.

    Parameters
    ----------
    image : array-like, path, ImageSource or SegmentationSession
        One 2D plane (grayscale, RGB or multichannel with ``channel_axis``); numpy, dask, zarr
        or an image file. A session brings its model and cached embeddings.
    labels : array, shape (H, W), integer
        Object IDs, 0 = background (numpy, zarr or dask).
    model : SamModel or str, optional
        For the ``embedding`` group: a loaded model, a registry name or a checkpoint path;
        default the embedded model. Not loaded when ``groups`` leaves out ``embedding``.
    groups : sequence of str
        Any of ``"shape"``, ``"intensity"``, ``"neighbours"``, ``"embedding"`` (default all).
    channel_axis, tile_size, halo, cache, device
        As for :class:`~napari_segany.tiled.session.SegmentationSession` (``cache``: a
        ``.zarr`` embeddings store to reuse).
    embedding_std : bool
        Also the embedding's standard deviation over each object.
    neighbour_radii : sequence of float
        Radii of the ``neighbours_<R>px`` columns, pixels.
    progress : bool
        Show a progress bar.

    Returns
    -------
    FeatureTable
        One row per object (ascending IDs); columns in the module docstring.

    Examples
    --------
    >>> from napari_segany.classify import object_features
    >>> table = object_features(image, labels)  # doctest: +SKIP
    >>> table.ids, table["area"], table["embedding_mean_000"]  # doctest: +SKIP
    >>> table.write_csv("objects_features.csv")  # doctest: +SKIP
    """
    from napari_segany.tiled.session import SegmentationSession

    groups = check_groups(groups)
    session = image if isinstance(image, SegmentationSession) else None
    if session is None and "embedding" in groups:
        from napari_segany.models.loading import load_model

        if model is None or isinstance(model, str | bytes) or hasattr(model, "__fspath__"):
            model = load_model(*(() if model is None else (model,)), device=device)
        session = SegmentationSession(
            image, model, channel_axis=channel_axis, tile_size=tile_size, halo=halo, cache=cache
        )
    plain = None
    if session is None:
        from napari_segany.image.source import open_image

        plain = open_image(image, channel_axis=channel_axis)
    job = iter_object_features(
        labels,
        session=session,
        image=plain,
        groups=groups,
        embedding_std=embedding_std,
        neighbour_radii=neighbour_radii,
    )
    return run_with_progress(job, show=progress, description="measuring objects")
