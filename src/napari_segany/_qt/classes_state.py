"""What the Classes panel knows, and the jobs its workers run. No Qt here.

:class:`ClassesState` holds the classes (name, colour), the example objects the user clicked
(object ID → class), the objects' features of the current Labels layer and the classifier
trained on them, and the predicted class of every object. :func:`train_job` measures the
objects (once per labels version; tile by tile, with the annotator's cached embeddings when it
has them), trains on the examples and predicts every object: a job generator run in a napari
worker. :func:`classify_folder_job` applies a classifier to every image of a folder that has
labels beside it (``<name>.labels.tif`` or ``<name>.labels.zarr``, as ``segment`` writes them).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_segany.progress import Progress

#: Colours given to new classes, in turn (RGBA, 0–1).
PALETTE = (
    (0.90, 0.16, 0.16, 1.0),
    (0.16, 0.55, 0.95, 1.0),
    (0.20, 0.80, 0.25, 1.0),
    (0.98, 0.70, 0.10, 1.0),
    (0.70, 0.30, 0.90, 1.0),
    (0.10, 0.85, 0.85, 1.0),
)
#: Colour of objects without a class yet (before training).
UNCLASSIFIED = (0.6, 0.6, 0.6, 0.6)


@dataclass
class ObjectClass:
    """A class the user defined: its name and display colour (RGBA, 0–1)."""

    name: str
    colour: tuple[float, float, float, float]


@dataclass
class ClassesState:
    """Classes, examples, features, classifier and predictions of one Labels layer."""

    classes: list[ObjectClass] = field(default_factory=list)
    examples: dict[int, str] = field(default_factory=dict)
    table: object = None  # FeatureTable of the current labels, or None when stale
    classifier: object = None  # the trained ObjectClassifier
    predicted: dict[int, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def add_class(self, name: str | None = None, colour=None) -> ObjectClass:
        """A new class (``"class <n>"`` and the next palette colour by default).

        Raises
        ------
        ValueError
            An empty name or one already used.
        """
        if name is None:
            n = len(self.classes) + 1
            while f"class {n}" in self.names():
                n += 1
            name = f"class {n}"
        name = name.strip()
        if not name or name in self.names():
            raise ValueError(f"a class needs a new, non-empty name; {name!r} is taken or empty")
        colour = tuple(colour) if colour is not None else PALETTE[len(self.classes) % len(PALETTE)]
        added = ObjectClass(name, tuple(float(c) for c in colour))
        self.classes.append(added)
        return added

    def remove_class(self, name: str) -> None:
        """Remove a class and its examples."""
        self.classes = [c for c in self.classes if c.name != name]
        self.examples = {i: c for i, c in self.examples.items() if c != name}

    def rename(self, old: str, new: str) -> None:
        new = new.strip()
        if not new or (new != old and new in self.names()):
            raise ValueError(f"a class needs a new, non-empty name; {new!r} is taken or empty")
        for c in self.classes:
            if c.name == old:
                c.name = new
        self.examples = {i: new if c == old else c for i, c in self.examples.items()}
        self.predicted = {i: new if c == old else c for i, c in self.predicted.items()}

    def assign(self, object_id: int, name: str | None) -> bool:
        """Make ``object_id`` an example of ``name``; the same class again (or None) removes
        it. Returns whether it is an example now."""
        object_id = int(object_id)
        if object_id == 0:
            return False
        if name is None or self.examples.get(object_id) == name:
            self.examples.pop(object_id, None)
            return False
        self.examples[object_id] = name
        return True

    def trainable(self) -> bool:
        """Examples of at least two classes."""
        return len(set(self.examples.values())) >= 2

    def counts(self) -> dict[str, tuple[int, int]]:
        """Class → (examples, objects predicted)."""
        out = {}
        for name in self.names():
            examples = sum(c == name for c in self.examples.values())
            out[name] = (examples, sum(c == name for c in self.predicted.values()))
        return out

    def colours(self) -> dict[int, tuple]:
        """Object ID → colour: its class's (examples, then predictions); others grey."""
        by_name = {c.name: c.colour for c in self.classes}
        shown = {i: by_name.get(c, UNCLASSIFIED) for i, c in self.predicted.items()}
        shown.update({i: by_name[c] for i, c in self.examples.items() if c in by_name})
        return shown


def train_job(
    classifier, image, labels, examples: dict[int, str], table=None
) -> Generator[Progress, None, tuple]:
    """Measure (unless ``table`` is given), train on ``examples`` and predict every object.

    Parameters
    ----------
    classifier : ObjectClassifier
        A copy of the panel's base classifier (a loaded one brings its own examples):
        ``examples`` are added and it is trained; without examples it only predicts.
    image : SegmentationSession, ImageSource or array
    labels : array, shape (H, W), integer
    examples : dict
        Object ID → class name.
    table : FeatureTable, optional
        The objects' features, when still valid.

    Returns
    -------
    (table, classifier, predicted, probability)
        ``predicted`` maps every object ID to a class name, ``probability`` to the
        probability of that class.
    """
    if table is None:
        table = yield from classifier.iter_features(image, labels)
    if examples:
        classifier.fit_table(table, examples)
    yield Progress(1, 1, f"trained on {len(examples)} examples")
    return (table, classifier, *_predictions(classifier, table))


def _predictions(classifier, table) -> tuple[dict[int, str], dict[int, float]]:
    proba = classifier.probabilities(table)
    best = proba.argmax(axis=1) if len(table) else np.zeros(0, int)
    ids = table.ids.tolist()
    predicted = {i: classifier.classes[k] for i, k in zip(ids, best, strict=True)}
    probability = {i: float(p[k]) for i, p, k in zip(ids, proba, best, strict=True)}
    return predicted, probability


def folder_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """(image, labels) of every image of ``folder`` with ``<name>.labels.tif|.zarr`` beside it."""
    from napari_segany.image.readers import image_stem
    from napari_segany.labels_io.naming import is_labels_file_name, labels_stem

    def is_labels(path: Path) -> bool:
        return is_labels_file_name(path) or path.name.lower().endswith(".labels.zarr")

    folder = Path(folder)
    labels = {labels_stem(p): p for p in sorted(folder.iterdir()) if is_labels(p)}
    pairs = []
    for path in sorted(folder.iterdir()):
        if is_labels(path) or path.name.endswith((".csv", ".npz")):
            continue
        stem = image_stem(path)
        if stem != path.name and stem in labels:
            pairs.append((path, labels[stem]))
    return pairs


def classify_folder_job(classifier, folder, output) -> Generator[Progress, None, list[Path]]:
    """Classify the objects of every image of ``folder`` with labels beside it; writes
    ``<output>/<name>_classes.csv`` each (``class``, ``class_probability``,
    ``probability_<class>``, shape and intensity). Returns the tables written.

    Raises
    ------
    ValueError
        No image with labels in the folder.
    """
    from napari_segany.cli._objects import read_labels
    from napari_segany.cli.classify import class_columns

    pairs = folder_pairs(folder)
    if not pairs:
        raise ValueError(
            f"{folder} holds no image with labels beside it (<name>.labels.tif or "
            "<name>.labels.zarr, as napari-segany segment writes them)"
        )
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for k, (image, labels_path) in enumerate(pairs, start=1):
        labels = read_labels(str(labels_path))
        table = yield from classifier.iter_features(str(image), labels)
        extra = class_columns(classifier, table)
        keep = table.feature_names([g for g in ("shape", "intensity") if g in table.groups])
        stem = labels_path.name.split(".labels.")[0]
        target = output / f"{stem}_classes.csv"
        written.append(table.write_csv(target, extra=extra, columns=keep, overwrite=True))
        yield Progress(k, len(pairs), f"{image.name}: {len(table)} objects")
    return written


def object_at(labels, row: float, col: float) -> int:
    """The object ID under a (row, col) position, 0 outside the labels or on background."""
    r, c = int(np.floor(row + 0.5)), int(np.floor(col + 0.5))
    if not (0 <= r < labels.shape[-2] and 0 <= c < labels.shape[-1]):
        return 0
    return int(np.asarray(labels[..., r, c]).reshape(-1)[0])
