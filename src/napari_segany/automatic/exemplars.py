"""Exemplar prompts ("find more like these"): keep the objects that resemble a few examples.

``iter_segment(session, exemplars=[...])`` (:mod:`.segment`) segments the whole image, then
:func:`iter_select_like` measures
the objects' shape and intensity tile by tile
(:func:`~napari_segany.classify.features.iter_object_features`), finds the object each example
box or point designates and keeps those that resemble them
(:func:`~napari_segany.classify.exemplars.match_exemplars`). The others are removed from the
labels and the kept ones numbered 1..K again, a block of rows at a time (the labels may be a
zarr array larger than memory).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import numpy as np

from napari_segany.classify.exemplars import (
    EXEMPLAR_GROUPS,
    ExemplarMatch,
    exemplar_ids,
    match_exemplars,
)
from napari_segany.classify.features import iter_object_features
from napari_segany.progress import Progress

#: Rows relabelled at a time.
ROW_BLOCK = 1024


def keep_objects(labels, ids: np.ndarray) -> dict[int, int]:
    """Keep only the objects ``ids`` of ``labels``, in place, numbered 1..K by ascending ID.

    Parameters
    ----------
    labels : array, shape (H, W), integer
        Written back a block of :data:`ROW_BLOCK` rows at a time (numpy or zarr).
    ids : ndarray, shape (K,)
        Object IDs to keep.

    Returns
    -------
    dict
        Old ID → new ID.
    """
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    new_ids = np.arange(1, ids.size + 1, dtype=np.int64)
    for start in range(0, int(labels.shape[0]), ROW_BLOCK):
        block = np.asarray(labels[start : start + ROW_BLOCK])
        position = np.clip(np.searchsorted(ids, block), 0, max(ids.size - 1, 0))
        hit = (ids[position] == block) & (block != 0) if ids.size else np.zeros(block.shape, bool)
        relabelled = np.where(hit, new_ids[position] if ids.size else 0, 0)
        labels[start : start + ROW_BLOCK] = relabelled.astype(block.dtype)
    return {int(a): int(b) for a, b in zip(ids, new_ids, strict=True)}


def iter_select_like(
    session, labels, exemplars: Sequence
) -> Generator[Progress, None, tuple[ExemplarMatch, dict[int, int]]]:
    """Keep the objects of ``labels`` like the examples, in place; a job generator.

    Parameters
    ----------
    session : SegmentationSession
        The image the labels were made from (its pixels are measured tile by tile).
    labels : array, shape (H, W), integer
        Every object found (numpy or zarr); rewritten with the kept objects numbered 1..K.
    exemplars : sequence
        1–3 (or more) example objects: boxes ``(row0, col0, row1, col1)`` (half-open) or
        points ``(row, col)``, image pixels.

    Yields
    ------
    Progress
        Per tile while measuring.

    Returns
    -------
    match : ExemplarMatch
        The kept objects and the examples, under their IDs before renumbering.
    renumber : dict
        Old ID → new ID of each kept object.

    Raises
    ------
    ValueError
        An example on no object, or outside the image.
    """
    ids = exemplar_ids(labels, exemplars)
    table = yield from iter_object_features(labels, image=session.source, groups=EXEMPLAR_GROUPS)
    match = match_exemplars(table, ids)
    return match, keep_objects(labels, match.ids)
