"""The object classifier's file: a random forest as plain arrays, read without running code.

A classifier file is a NumPy ``.npz`` archive read with ``allow_pickle=False``: numeric arrays
and one JSON text (``meta``), nothing that can execute code when it is loaded. The forest is
stored as the arrays of its decision trees (:class:`Forest`), which also predict on their own,
so a loaded classifier gives exactly the answers of the one that was saved, whatever
scikit-learn version is installed (scikit-learn is needed only to train).

Arrays of the file
------------------
``meta``                 uint8, the UTF-8 JSON metadata (see :mod:`.classifier`)
``tree_starts``          (T + 1,) int64, first node of each tree (nodes of all trees end to end)
``children_left/right``  (nodes,) int64, child node *within the tree*, −1 at a leaf
``feature``              (nodes,) int64, feature column tested at the node (−1 at a leaf)
``threshold``            (nodes,) float64, go left when ``float32(x) <= threshold``
``value``                (nodes, n_classes) float64, class fractions of the node's samples
``fill``                 (n_features,) float64, value put in for a missing (NaN) feature
``examples_x``           (n_examples, n_features) float64, the training examples' features
``examples_y``           (n_examples,) int64, their class (index into ``meta["classes"]``)
``projection_mean``      (E,) float64, with embedding columns: their mean over the objects seen
``projection_components``  (k, E) float64, their principal components (see :mod:`.projection`)
``pool``                 (n, E) float32, the embedding columns of the objects seen

The metadata (``meta``):

=====================  ======================================================================
``classes``            class names, in the order of the probabilities
``feature_version``    :data:`~napari_segany.classify.table.FEATURE_VERSION` it was trained with
``feature_names``      the feature columns it uses, in order
``groups``             the feature groups measured
``embedding_std``      whether ``embedding_std_<k>`` columns are measured
``neighbour_radii``    radii of the ``neighbours_<R>px`` columns
``model``              ``name`` (registry name or checkpoint path, None for a model object),
                       ``architecture`` and ``weights_hash`` of the model behind the embedding
                       features; None without them
``learner``            ``kind`` (``"random_forest"``), its settings, the scikit-learn version
``examples``           examples per class
=====================  ======================================================================
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: ``meta["format"]`` of a classifier file.
FILE_FORMAT = "napari-segany-object-classifier"
#: ``meta["format_version"]`` this code writes and reads.
FILE_VERSION = 1

_FOREST_KEYS = ("tree_starts", "children_left", "children_right", "feature", "threshold", "value")


class ClassifierFileError(ValueError):
    """A file that is not an object classifier, or one this version cannot use."""


@dataclass(frozen=True)
class Forest:
    """Decision trees as arrays (see the module docstring for each one).

    Predicting walks every tree at once with numpy; the probabilities are the mean over the
    trees of the class fractions at the leaf each object reaches (as scikit-learn's
    ``RandomForestClassifier.predict_proba``).
    """

    tree_starts: np.ndarray
    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray

    @property
    def n_trees(self) -> int:
        return int(self.tree_starts.size - 1)

    @property
    def n_classes(self) -> int:
        return int(self.value.shape[1])

    @classmethod
    def from_sklearn(cls, forest) -> Forest:
        """The arrays of a fitted ``RandomForestClassifier`` (single output)."""
        starts, left, right, feature, threshold, value = [0], [], [], [], [], []
        for estimator in forest.estimators_:
            tree = estimator.tree_
            left.append(tree.children_left.astype(np.int64))
            right.append(tree.children_right.astype(np.int64))
            leaf = tree.children_left < 0
            feature.append(np.where(leaf, -1, tree.feature).astype(np.int64))
            threshold.append(tree.threshold.astype(np.float64))
            counts = tree.value[:, 0, :].astype(np.float64)
            value.append(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-300))
            starts.append(starts[-1] + tree.node_count)
        return cls(
            np.asarray(starts, np.int64),
            np.concatenate(left),
            np.concatenate(right),
            np.concatenate(feature),
            np.concatenate(threshold),
            np.concatenate(value),
        )

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, n_classes), for features ``x`` of shape (N, F).

        ``x`` must hold no NaN (fill missing values first); it is rounded to float32 as
        scikit-learn's trees do before comparing with the thresholds.
        """
        x = np.asarray(x, dtype=np.float32).astype(np.float64)
        n = x.shape[0]
        starts = self.tree_starts[:-1]
        node = np.repeat(starts[:, None], n, axis=1)  # (T, N) global node index
        offset = node.copy()
        rows = np.broadcast_to(np.arange(n), node.shape)
        for _ in range(int(np.max(np.diff(self.tree_starts), initial=1))):
            left = self.children_left[node]
            inner = left >= 0
            if not inner.any():
                break
            column = np.where(inner, self.feature[node], 0)
            go_left = x[rows, column] <= self.threshold[node]
            child = np.where(go_left, left, self.children_right[node])
            node = np.where(inner, offset + child, node)
        return self.value[node].mean(axis=0)

    def arrays(self) -> dict[str, np.ndarray]:
        return {key: getattr(self, key) for key in _FOREST_KEYS}

    @classmethod
    def from_arrays(cls, arrays, n_features: int, n_classes: int) -> Forest:
        """Check arrays read from a file and build the forest.

        Raises
        ------
        ClassifierFileError
            Arrays of the wrong kind or shape, or trees whose nodes do not lead down to leaves
            (every child must come after its parent within its tree, so walking ends).
        """
        try:
            forest = cls(
                np.asarray(arrays["tree_starts"], np.int64),
                np.asarray(arrays["children_left"], np.int64),
                np.asarray(arrays["children_right"], np.int64),
                np.asarray(arrays["feature"], np.int64),
                np.asarray(arrays["threshold"], np.float64),
                np.asarray(arrays["value"], np.float64),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ClassifierFileError(f"the classifier's trees are incomplete ({exc})") from None
        forest._check(n_features, n_classes)
        return forest

    def _check(self, n_features: int, n_classes: int) -> None:
        starts, nodes = self.tree_starts, self.children_left.size
        same = {a.shape[0] for a in (self.children_right, self.feature, self.threshold)}
        if (
            starts.ndim != 1
            or starts.size < 2
            or starts[0] != 0
            or starts[-1] != nodes
            or np.any(np.diff(starts) < 1)
            or same != {nodes}
            or self.value.shape != (nodes, n_classes)
        ):
            raise ClassifierFileError("the classifier's trees have inconsistent array sizes")
        own = np.arange(nodes) - np.repeat(starts[:-1], np.diff(starts))  # index within tree
        size = np.repeat(np.diff(starts), np.diff(starts))
        for child in (self.children_left, self.children_right):
            leaf = child < 0
            if np.any(~leaf & ((child <= own) | (child >= size))):
                raise ClassifierFileError("the classifier's trees have invalid child nodes")
        inner = self.children_left >= 0
        if np.any((self.children_right < 0) != ~inner):
            raise ClassifierFileError("the classifier's trees have half-leaf nodes")
        if np.any(inner & ((self.feature < 0) | (self.feature >= n_features))):
            raise ClassifierFileError("the classifier's trees test features it does not have")


def write_classifier_file(
    path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray], *, overwrite: bool = True
) -> Path:
    """Write ``meta`` (JSON) and ``arrays`` to an ``.npz`` file, atomically.

    Returns
    -------
    pathlib.Path
        The file written (``.npz`` is added to a name without it).
    """
    from napari_segany.labels_io.atomic import atomic_output

    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    text = json.dumps({"format": FILE_FORMAT, "format_version": FILE_VERSION, **meta})
    payload = {"meta": np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **payload)
    return path


def read_classifier_file(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a classifier file: (meta, arrays); never unpickles.

    Raises
    ------
    FileNotFoundError
    ClassifierFileError
        Not a classifier file, or one of a newer format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no classifier file at {path}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise ClassifierFileError(
            f"{path} is not a napari-segany object classifier ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FILE_FORMAT:
        raise ClassifierFileError(f"{path} is not a napari-segany object classifier")
    if meta.get("format_version") != FILE_VERSION:
        raise ClassifierFileError(
            f"{path} is a classifier file of format version {meta.get('format_version')}; "
            f"this napari-segany reads version {FILE_VERSION}: update napari-segany"
        )
    return meta, arrays


@dataclass(frozen=True)
class StoredClassifier:
    """A classifier file's contents, checked (see the module docstring for each array)."""

    meta: dict
    classes: list[str]
    feature_names: list[str]
    fill: np.ndarray
    examples_x: np.ndarray
    examples_y: np.ndarray
    projection: tuple[np.ndarray, np.ndarray] | None
    pool: np.ndarray | None
    forest: Forest


def read_trained_classifier(path: str | os.PathLike, feature_version: str) -> StoredClassifier:
    """Read and check a classifier file made for the feature set ``feature_version``.

    Raises
    ------
    ClassifierFileError
        Not a classifier file, one made with another feature set, or arrays that do not fit
        together.
    """
    meta, arrays = read_classifier_file(path)
    if meta.get("feature_version") != feature_version:
        raise ClassifierFileError(
            f"{path} was trained on the feature set {meta.get('feature_version')!r}; this "
            f"napari-segany measures {feature_version!r}: train the classifier again"
        )
    try:
        classes = [str(c) for c in meta["classes"]]
        names = [str(n) for n in meta["feature_names"]]
        fill = np.asarray(arrays["fill"], np.float64)
        x = np.asarray(arrays["examples_x"], np.float64)
        y = np.asarray(arrays["examples_y"], np.int64)
        for key in ("groups", "embedding_std", "neighbour_radii", "model", "learner"):
            meta[key]
        embedded = sum(n.startswith("embedding_") for n in names)
        projection = pool = None
        if embedded:
            projection = (
                np.asarray(arrays["projection_mean"], np.float64),
                np.asarray(arrays["projection_components"], np.float64),
            )
            pool = np.asarray(arrays["pool"], np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise ClassifierFileError(f"{path} is incomplete ({type(exc).__name__}: {exc})") from None
    if fill.shape != (len(names),) or x.shape[1:] != (len(names),) or y.shape != x.shape[:1]:
        raise ClassifierFileError(f"{path}: its arrays do not fit its feature names")
    if len(classes) < 2 or (y.size and (y.min() < 0 or y.max() >= len(classes))):
        raise ClassifierFileError(f"{path}: its classes do not fit its examples")
    inputs = len(names)
    if projection is not None:
        mean, components = projection
        if mean.shape != (embedded,) or components.ndim != 2 or components.shape[1] != embedded:
            raise ClassifierFileError(f"{path}: its projection does not fit its features")
        if pool.ndim != 2 or (pool.size and pool.shape[1] != embedded):
            raise ClassifierFileError(f"{path}: its objects do not fit its features")
        inputs = len(names) - embedded + len(components)
    forest = Forest.from_arrays(arrays, inputs, len(classes))
    pool = pool if pool is not None and pool.size else None
    return StoredClassifier(meta, classes, names, fill, x, y, projection, pool, forest)
