"""The per-object feature table: one row per labelled object, columns grouped by what they measure.

A :class:`FeatureTable` is plain numpy (no pandas): ``table["area"]`` is an (N,) array in the
order of ``table.ids``. :func:`napari_segany.classify.features.object_features` makes one; the
columns are documented in :mod:`napari_segany.classify.features` and in docs/classes.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Version of the feature definitions. A classifier records it and refuses tables of another
#: version: change it whenever a column's meaning changes.
FEATURE_VERSION = "segany-object-features/1"

#: Columns that say where an object is (not used to classify it).
POSITION_COLUMNS = (
    "centroid_row",
    "centroid_col",
    "bbox_row0",
    "bbox_col0",
    "bbox_row1",
    "bbox_col1",
)


@dataclass
class FeatureTable:
    """Features of every object of one label image.

    Attributes
    ----------
    ids : ndarray, shape (N,), int64
        Object IDs, ascending.
    columns : dict of str to ndarray
        Column name → (N,) values for each object, in the order of ``ids`` (``id`` excluded).
        NaN where a value is undefined (e.g. the nearest neighbour of a lone object).
    groups : dict of str to list of str
        Feature group (``"shape"``, ``"intensity"``, ``"neighbours"``, ``"embedding"``) → its
        column names; the position columns (:data:`POSITION_COLUMNS`) are in no group.
    model : dict, optional
        The model whose image embedding gave the ``embedding`` columns: ``architecture`` and
        ``weights_hash``; None without embedding columns.
    version : str
        :data:`FEATURE_VERSION` of the code that measured them.
    """

    ids: np.ndarray
    columns: dict[str, np.ndarray]
    groups: dict[str, list[str]]
    model: dict | None = None
    version: str = FEATURE_VERSION
    _index: dict[int, int] | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return int(self.ids.size)

    def __getitem__(self, name: str) -> np.ndarray:
        if name == "id":
            return self.ids
        return self.columns[name]

    def __contains__(self, name: str) -> bool:
        return name == "id" or name in self.columns

    @property
    def names(self) -> list[str]:
        """Every column name, ``id`` first."""
        return ["id", *self.columns]

    def feature_names(self, groups: Iterable[str] | None = None) -> list[str]:
        """The columns of ``groups`` (default: every group), in table order.

        Raises
        ------
        ValueError
            A group this table was not measured with.
        """
        chosen = list(self.groups) if groups is None else list(groups)
        missing = [g for g in chosen if g not in self.groups]
        if missing:
            raise ValueError(
                f"these objects were measured without the feature group(s) {missing}; "
                f"measured: {sorted(self.groups)}"
            )
        wanted = {name for g in chosen for name in self.groups[g]}
        return [name for name in self.columns if name in wanted]

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        """The columns ``names`` side by side, shape (N, len(names)), float64.

        Raises
        ------
        ValueError
            Columns this table lacks (e.g. a classifier trained on images with another number
            of channels).
        """
        missing = [n for n in names if n not in self.columns]
        if missing:
            shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
            raise ValueError(
                f"the objects lack {len(missing)} feature column(s) the classifier uses "
                f"({shown}): measure them as the training images were (same channels, same "
                "feature groups)"
            )
        if not names:
            return np.zeros((len(self), 0))
        return np.column_stack([np.asarray(self.columns[n], dtype=np.float64) for n in names])

    def index_of(self, ids: Iterable[int]) -> np.ndarray:
        """Row of each ID in ``ids``, shape (len(ids),), int64.

        Raises
        ------
        KeyError
            IDs that are not in the table (their list is the error's argument).
        """
        if self._index is None:
            self._index = {int(i): k for k, i in enumerate(self.ids)}
        ids = [int(i) for i in ids]
        missing = [i for i in ids if i not in self._index]
        if missing:
            raise KeyError(missing)
        return np.array([self._index[i] for i in ids], dtype=np.int64)

    def take(self, rows: np.ndarray) -> FeatureTable:
        """The table of the objects at ``rows`` (positions, or a boolean mask)."""
        return FeatureTable(
            ids=self.ids[rows],
            columns={k: v[rows] for k, v in self.columns.items()},
            groups={k: list(v) for k, v in self.groups.items()},
            model=self.model,
            version=self.version,
        )

    def rows(self, extra: Mapping[int, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
        """One dict per object (``id`` first), Python scalars, NaN as None.

        Parameters
        ----------
        extra : mapping, optional
            ID → more columns (e.g. ``{"class": "mitotic"}``), put after ``id`` and the
            position columns.
        """
        lists = {k: np.asarray(v).tolist() for k, v in self.columns.items()}
        out = []
        for k, object_id in enumerate(self.ids.tolist()):
            row: dict[str, Any] = {"id": object_id}
            position = [n for n in POSITION_COLUMNS if n in lists]
            for name in position:
                row[name] = lists[name][k]
            if extra is not None:
                row.update(extra.get(object_id, {}))
            for name, values in lists.items():
                if name not in row:
                    value = values[k]
                    row[name] = None if isinstance(value, float) and value != value else value
            out.append(row)
        return out

    def write_csv(
        self,
        path: str | os.PathLike,
        *,
        extra: Mapping[int, Mapping[str, Any]] | None = None,
        columns: Sequence[str] | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write the table as CSV, atomically (see :func:`napari_segany.labels_io.atomic`).

        Parameters
        ----------
        path : path
            The ``.csv`` file.
        extra : mapping, optional
            ID → more columns (see :meth:`rows`).
        columns : sequence of str, optional
            Write only these columns (and ``id``, the position columns and ``extra``).
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        pathlib.Path
        """
        from napari_segany.labels_io.table import write_object_table

        rows = self.rows(extra)
        if columns is not None:
            keep = {"id", *POSITION_COLUMNS, *columns}
            if extra:
                keep |= {k for v in extra.values() for k in v}
            rows = [{k: v for k, v in row.items() if k in keep} for row in rows]
        return write_object_table(path, rows, overwrite=overwrite)


def concat_tables(tables: Sequence[FeatureTable]) -> tuple[np.ndarray, np.ndarray]:
    """(image index, ID) of every row of several tables, each shape (sum of N,)."""
    images = np.concatenate([np.full(len(t), i, dtype=np.int64) for i, t in enumerate(tables)])
    ids = np.concatenate([t.ids for t in tables])
    return images, ids
