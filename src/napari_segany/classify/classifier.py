"""The object classifier: learns classes of objects from a few examples, reusable across images.

:class:`ObjectClassifier` measures the objects of a label image
(:func:`~napari_segany.classify.features.object_features`: shape, intensity, neighbourhood and
the model's image embedding), trains a scikit-learn random forest on the objects given as
examples, and predicts a class for every object of this or any other image. Its file
(:mod:`.classifier_file`) records the classes, the feature set and the model the features come
from; loading it never runs code from the file.
The forest sees the embedding columns as their first :data:`EMBEDDING_COMPONENTS` principal
components (:mod:`.projection`, which says why).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path

import numpy as np

from napari_segany.classify.classifier_file import (
    Forest,
    read_trained_classifier,
    write_classifier_file,
)
from napari_segany.classify.features import (
    GROUPS,
    NEIGHBOUR_RADII,
    check_groups,
    iter_object_features,
)
from napari_segany.classify.projection import (
    EmbeddingPool,
    design,
    embedding_mask,
    filled,
    fit_projection,
)
from napari_segany.classify.table import FEATURE_VERSION, FeatureTable
from napari_segany.models.registry import DEFAULT_MODEL
from napari_segany.progress import Progress, run_with_progress

#: Trees in the random forest.
DEFAULT_TREES = 300
#: Principal components of the embedding columns the forest learns from.
EMBEDDING_COMPONENTS = 8


def _model_name(model) -> str | None:
    """The registry name or path of a model given by name; None for a loaded model."""
    if model is None:
        return DEFAULT_MODEL
    named = isinstance(model, str | bytes) or hasattr(model, "__fspath__")
    return os.fsdecode(model) if named else None


class ObjectClassifier:
    """Classes of objects learned from examples, for any label image.

    Parameters
    ----------
    model : SamModel or str, optional
        The model whose image embedding gives the ``embedding`` features: a loaded model, a
        registry name or a checkpoint path; default the embedded model. Loaded on first use.
    groups : sequence of str
        Feature groups to learn from (default all: shape, intensity, neighbours, embedding);
        without ``"embedding"`` no model is needed.
    embedding_std : bool
        Also the embedding's standard deviation over each object.
    neighbour_radii : sequence of float
        Radii of the ``neighbours_<R>px`` columns, pixels.
    n_estimators : int
        Trees of the random forest.
    embedding_components : int
        Principal components of the embedding columns given to the forest (0: none of them).
    random_state : int
        Seed of the forest (the same examples give the same classifier).
    device : str
        Where a model given by name is loaded.
    tile_size, halo : int, optional
        Tiling of the images measured (default from the model).

    Attributes
    ----------
    classes : list of str
        The classes it predicts, in the order of the probabilities (empty before training).
    feature_names : list of str or None
        The feature columns it uses (set by the first examples).
    """

    def __init__(
        self,
        model=None,
        *,
        groups: Sequence[str] = GROUPS,
        embedding_std: bool = False,
        neighbour_radii: Sequence[float] = NEIGHBOUR_RADII,
        n_estimators: int = DEFAULT_TREES,
        embedding_components: int = EMBEDDING_COMPONENTS,
        random_state: int = 0,
        device: str = "auto",
        tile_size: int | None = None,
        halo: int | None = None,
    ) -> None:
        self.groups = check_groups(groups)
        self.embedding_std = bool(embedding_std)
        self.neighbour_radii = tuple(float(r) for r in neighbour_radii)
        self.n_estimators = int(n_estimators)
        self.embedding_components = int(embedding_components)
        self.random_state = int(random_state)
        self.device, self.tile_size, self.halo = device, tile_size, halo
        self.model_name = _model_name(model) if self.uses_model else None
        self._model = None if _model_name(model) is not None else model
        #: architecture and weights hash of the model the features come from (None: not yet)
        self.model_record: dict | None = None
        self.classes: list[str] = []
        self.feature_names: list[str] | None = None
        self._x: list[np.ndarray] = []  # example features, one (F,) row each
        self._y: list[str] = []  # their classes
        self._pool = EmbeddingPool()  # embedding columns of objects of the images seen
        self._forest: Forest | None = None
        self._fill: np.ndarray | None = None
        self._projection: tuple[np.ndarray, np.ndarray] | None = None  # (mean, components)
        self._sklearn_version: str | None = None
        #: class name → display colour (RGBA 0–1), kept in the file for napari
        self.colours: dict[str, list[float]] = {}

    def copy(self) -> ObjectClassifier:
        """A copy with its own examples (the model and the trained forest are shared)."""
        twin = copy.copy(self)
        twin._x, twin._y, twin._pool = list(self._x), list(self._y), EmbeddingPool(self._pool.parts)
        twin.classes, twin.colours = list(self.classes), dict(self.colours)
        return twin

    # -- model and features -------------------------------------------------------------------
    @property
    def uses_model(self) -> bool:
        """Whether its features include the image embedding (and so need the model)."""
        return "embedding" in self.groups

    @property
    def trained(self) -> bool:
        """Whether it has been trained (or loaded)."""
        return self._forest is not None

    def __repr__(self) -> str:
        state = f"classes={self.classes}" if self.trained else "untrained"
        return f"ObjectClassifier({state}, model={self.model_name!r}, groups={self.groups})"

    @property
    def example_counts(self) -> dict[str, int]:
        """Examples per class, in order of first appearance."""
        counts: dict[str, int] = {}
        for name in self._y:
            counts[name] = counts.get(name, 0) + 1
        return counts

    def load_model(self):
        """The model of the embedding features (loaded on first call), or None without them.

        Raises
        ------
        ValueError
            A loaded classifier whose model was given as an object: pass ``model=`` to
            :meth:`load`.
        """
        if not self.uses_model:
            return None
        if self._model is None:
            if self.model_name is None:
                raise ValueError(
                    "this classifier was trained with a model given as an object: load it "
                    "with ObjectClassifier.load(path, model=...) and the same model"
                )
            from napari_segany.models.loading import load_model

            self._model = load_model(self.model_name, device=self.device)
        return self._model

    def iter_features(
        self, image, labels, *, channel_axis: int | None = None
    ) -> Generator[Progress, None, FeatureTable]:
        """The features it uses of every object of ``labels``; a job (see
        :mod:`napari_segany.progress`) yielding progress per tile.

        Parameters
        ----------
        image : array-like, path, ImageSource or SegmentationSession
            The image the labels were made from (a session brings its cached embeddings).
        labels : array, shape (H, W), integer
            Object IDs, 0 = background (numpy, zarr or dask; read tile by tile).
        """
        from napari_segany.image.source import open_image
        from napari_segany.tiled.session import SegmentationSession

        options = {"embedding_std": self.embedding_std, "neighbour_radii": self.neighbour_radii}
        session = image if isinstance(image, SegmentationSession) else None
        if self.uses_model and session is None:
            model, tiling = self.load_model(), {"tile_size": self.tile_size, "halo": self.halo}
            session = SegmentationSession(image, model, channel_axis=channel_axis, **tiling)
        if self.uses_model:
            job = iter_object_features(labels, session=session, groups=self.groups, **options)
        else:
            source = session.source if session else open_image(image, channel_axis=channel_axis)
            job = iter_object_features(labels, image=source, groups=self.groups, **options)
        return (yield from job)

    def features(self, image, labels, *, channel_axis=None, progress=False) -> FeatureTable:
        """:meth:`iter_features` run to the end."""
        job = self.iter_features(image, labels, channel_axis=channel_axis)
        return run_with_progress(job, show=progress, description="measuring objects")

    def _check_trained(self) -> None:
        if self._forest is None:
            raise ValueError("the classifier is not trained yet: fit it on examples first")

    def _check_table(self, table: FeatureTable) -> None:
        if table.version != FEATURE_VERSION:
            raise ValueError(
                f"these features were measured as {table.version!r}; this classifier uses "
                f"{FEATURE_VERSION!r}: measure the objects again"
            )
        if not self.uses_model:
            return
        if table.model is None:
            raise ValueError("these features have no embedding columns; the classifier uses them")
        if self.model_record is not None and (
            table.model.get("weights_hash") != self.model_record.get("weights_hash")
        ):
            raise ValueError(
                "these features come from another model "
                f"({table.model.get('architecture')}, weights {table.model.get('weights_hash')})"
                f" than the classifier was trained with ({self.model_record.get('architecture')}"
                f", weights {self.model_record.get('weights_hash')}): use the same model"
            )

    # -- training -----------------------------------------------------------------------------
    def add_table_examples(self, table: FeatureTable, examples: Mapping[int, str]) -> None:
        """Add examples (object ID → class name) from measured objects; does not train.

        Raises
        ------
        ValueError
            An ID that is not an object of the table, a class name that is not a non-empty
            string, features of another version or model.
        """
        self._check_table(table)
        if not isinstance(examples, Mapping):
            raise TypeError("examples must map object IDs to class names, e.g. {3: 'mitotic'}")
        ids = [int(i) for i in examples]
        names = [examples[i] for i in examples]
        bad = [n for n in names if not isinstance(n, str) or not n.strip()]
        if bad:
            raise ValueError(f"class names must be non-empty strings, got {bad[:3]}")
        try:
            rows = table.index_of(ids)
        except KeyError as exc:
            missing = exc.args[0]
            raise ValueError(
                f"example object ID(s) {missing[:10]} are not in the labels "
                f"({len(table)} objects, IDs {_id_range(table.ids)})"
            ) from None
        names_used = self.feature_names or table.feature_names(self.groups)
        matrix = table.matrix(names_used)
        if self.feature_names is None:
            self.feature_names = list(names_used)
            if table.model is not None:
                self.model_record = {"name": self.model_name, **table.model}
        self._x.extend(matrix[rows])
        self._y.extend(name.strip() for name in names)
        self._pool.add(matrix[:, embedding_mask(self.feature_names)], self.random_state)

    def add_examples(self, image, labels, examples: Mapping[int, str], *, channel_axis=None):
        """Measure ``labels`` on ``image`` and add the examples; does not train."""
        table = self.features(image, labels, channel_axis=channel_axis)
        self.add_table_examples(table, examples)

    def clear_examples(self) -> None:
        """Forget every example and the objects seen (the forest stays until :meth:`train`)."""
        self._x, self._y, self._pool = [], [], EmbeddingPool()

    def train(self) -> ObjectClassifier:
        """Train the forest on every example added so far.

        Raises
        ------
        ValueError
            Examples of fewer than two classes.
        """
        from sklearn import __version__ as sklearn_version
        from sklearn.ensemble import RandomForestClassifier

        counts = self.example_counts
        if len(counts) < 2:
            have = f"only {list(counts)}" if counts else "none"
            raise ValueError(
                f"a classifier needs examples of at least two classes; it has {have}: give "
                "examples of another class too (e.g. the objects that are not of this class)"
            )
        classes = list(counts)
        x = np.asarray(self._x, dtype=np.float64)
        y = np.array([classes.index(name) for name in self._y])
        with np.errstate(all="ignore"):
            fill = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0)
        fill = np.nan_to_num(fill, nan=0.0)
        mask = embedding_mask(self.feature_names)
        self._projection = None
        if mask.any():
            pool = self._pool.rows()
            pool = x[:, mask] if pool is None else pool
            self._projection = fit_projection(pool, fill[mask], self.embedding_components)
        forest = RandomForestClassifier(
            n_estimators=self.n_estimators,
            class_weight="balanced",
            random_state=self.random_state,
            n_jobs=1,
        )
        forest.fit(design(filled(x, fill), mask, self._projection), y)
        self._forest = Forest.from_sklearn(forest)
        self._fill, self.classes = fill, classes
        self._sklearn_version = sklearn_version
        return self

    def _fit_rolled_back(self, add) -> ObjectClassifier:
        kept = (
            list(self._x),
            list(self._y),
            EmbeddingPool(self._pool.parts),
            self.feature_names,
            self.model_record,
        )
        try:
            add()
            return self.train()
        except BaseException:
            self._x, self._y, self._pool, self.feature_names, self.model_record = kept
            raise

    def fit(self, image, labels, examples, *, channel_axis=None) -> ObjectClassifier:
        """Learn classes from examples; adds to the examples of earlier calls and trains.

        Returns the classifier itself, trained; on an error the examples of this call are
        not kept.

        Parameters
        ----------
        image : array-like, path, SegmentationSession, or a list of them
            The image(s) the labels were made from.
        labels : array, shape (H, W), integer, or a list of them
            Object IDs, 0 = background.
        examples : mapping, or a list of them
            Object ID → class name (str) for the example objects of each image.

        Raises
        ------
        ValueError
            An example ID that is not in the labels, examples of a single class (over all
            calls), labels that do not fit the image.
        """
        if not isinstance(image, list | tuple):
            image, labels, examples = [image], [labels], [examples]
        if not len(image) == len(labels) == len(examples):
            raise ValueError("give one labels array and one examples dict per image")
        triples = list(zip(image, labels, examples, strict=True))

        def add():
            for one_image, one_labels, one_examples in triples:
                self.add_examples(one_image, one_labels, one_examples, channel_axis=channel_axis)

        return self._fit_rolled_back(add)

    def fit_table(self, table: FeatureTable, examples: Mapping[int, str]) -> ObjectClassifier:
        """:meth:`fit` on objects already measured (:meth:`features`)."""
        return self._fit_rolled_back(lambda: self.add_table_examples(table, examples))

    # -- prediction ---------------------------------------------------------------------------
    def probabilities(self, table: FeatureTable) -> np.ndarray:
        """Class probabilities of every object of ``table``, shape (N, len(classes)), in the
        order of ``table.ids`` and :attr:`classes`."""
        self._check_trained()
        self._check_table(table)
        if len(table) == 0:
            return np.zeros((0, len(self.classes)))
        x = filled(table.matrix(self.feature_names), self._fill)
        mask = embedding_mask(self.feature_names)
        return self._forest.predict_proba(design(x, mask, self._projection))

    def predict_table(self, table: FeatureTable) -> dict[int, str]:
        """Object ID → class name for measured objects."""
        best = self.probabilities(table).argmax(axis=1)
        return {int(i): self.classes[k] for i, k in zip(table.ids, best, strict=True)}

    def predict_proba_table(self, table: FeatureTable) -> dict[int, dict[str, float]]:
        """Object ID → {class name: probability} for measured objects."""
        rows = zip(table.ids, self.probabilities(table), strict=True)
        return {int(i): dict(zip(self.classes, map(float, p), strict=True)) for i, p in rows}

    def predict(self, image, labels, *, channel_axis=None, progress=False) -> dict[int, str]:
        """The class of every object of ``labels`` (object ID → class name)."""
        table = self.features(image, labels, channel_axis=channel_axis, progress=progress)
        return self.predict_table(table)

    def predict_proba(self, image, labels, *, channel_axis=None, progress=False):
        """Per-class probabilities of every object: ID → {class name: probability}."""
        table = self.features(image, labels, channel_axis=channel_axis, progress=progress)
        return self.predict_proba_table(table)

    # -- file ---------------------------------------------------------------------------------
    def meta(self) -> dict:
        """What the file records (see the module docstring)."""
        return {
            "classes": list(self.classes),
            "feature_version": FEATURE_VERSION,
            "feature_names": list(self.feature_names or []),
            "groups": list(self.groups),
            "embedding_std": self.embedding_std,
            "neighbour_radii": list(self.neighbour_radii),
            "model": self.model_record,
            "tiling": {"tile_size": self.tile_size, "halo": self.halo},
            "learner": {
                "kind": "random_forest",
                "n_estimators": self.n_estimators,
                "embedding_components": self.embedding_components,
                "random_state": self.random_state,
                "class_weight": "balanced",
                "sklearn_version": self._sklearn_version,
            },
            "examples": self.example_counts,
            "colours": self.colours,
        }

    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
        """Write the trained classifier to an ``.npz`` file (no pickle; see
        :mod:`.classifier_file`). Returns the path written."""
        self._check_trained()
        arrays = {
            **self._forest.arrays(),
            "fill": self._fill,
            "examples_x": np.asarray(self._x, dtype=np.float64).reshape(len(self._x), -1),
            "examples_y": np.array([self.classes.index(n) for n in self._y], dtype=np.int64),
        }
        if self._projection is not None:
            arrays["projection_mean"], arrays["projection_components"] = self._projection
            pool = self._pool.rows()
            arrays["pool"] = pool if pool is not None else np.zeros((0, 0), np.float32)
        return write_classifier_file(path, self.meta(), arrays, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, model=None, *, device: str = "auto"):
        """Read a classifier saved by :meth:`save`.

        Parameters
        ----------
        path : path
            The ``.npz`` file.
        model : SamModel or str, optional
            The model for the embedding features; default the one recorded in the file. A
            model with other weights than recorded is refused when objects are measured.

        Raises
        ------
        ClassifierFileError
            Not a classifier file, one made with another feature set
            (:data:`~napari_segany.classify.table.FEATURE_VERSION`), or damaged arrays.
        """
        stored = read_trained_classifier(path, FEATURE_VERSION)
        meta, record = stored.meta, stored.meta["model"]
        tiling = meta.get("tiling") or {}
        learner = meta["learner"]
        clf = cls(
            model if model is not None else (record or {}).get("name"),
            groups=meta["groups"],
            embedding_std=meta["embedding_std"],
            neighbour_radii=meta["neighbour_radii"],
            n_estimators=learner["n_estimators"],
            embedding_components=learner["embedding_components"],
            random_state=learner["random_state"],
            device=device,
            tile_size=tiling.get("tile_size"),
            halo=tiling.get("halo"),
        )
        if model is None and record is not None and record.get("name") is None:
            clf.model_name, clf._model = None, None
        clf.classes, clf.feature_names = stored.classes, stored.feature_names
        clf._forest, clf._fill, clf._projection = stored.forest, stored.fill, stored.projection
        clf._pool = EmbeddingPool([stored.pool] if stored.pool is not None else [])
        clf.model_record = record
        clf._x, clf._y = list(stored.examples_x), [stored.classes[k] for k in stored.examples_y]
        clf._sklearn_version = learner.get("sklearn_version")
        colours = meta.get("colours")
        if isinstance(colours, dict):
            clf.colours = {str(k): [float(c) for c in v][:4] for k, v in colours.items()}
        return clf


def _id_range(ids: np.ndarray) -> str:
    if ids.size == 0:
        return "none"
    return f"{int(ids.min())}–{int(ids.max())}"
