"""Object classes: per-object features, a reusable object classifier, "find more like these".

>>> from napari_segany.classify import ObjectClassifier, object_features
>>> table = object_features(image, labels)  # shape, intensity, ..., embedding  # doctest: +SKIP
>>> clf = ObjectClassifier()  # features from the embedded model's image embedding too
>>> clf.fit(image, labels, {3: "mitotic", 8: "mitotic", 5: "other", 9: "other"})  # doctest: +SKIP
>>> clf.predict(other_image, other_labels)  # {object ID: class name}  # doctest: +SKIP
>>> clf.save("mitosis.classifier.npz")  # ObjectClassifier.load(...) later  # doctest: +SKIP

Modules: ``features`` (the tile-by-tile measurements and their columns), ``table``
(:class:`FeatureTable`), ``shape`` and ``tile_sums`` (their parts), ``classifier``
(:class:`ObjectClassifier`), ``projection`` (what its forest sees), ``classifier_file`` (its
file, read without running code) and ``exemplars`` (the rule that keeps objects like a few
examples; ``napari_segany.automatic.segment(image, exemplars=...)`` applies it).
"""

from napari_segany.classify.classifier import ObjectClassifier
from napari_segany.classify.classifier_file import ClassifierFileError
from napari_segany.classify.features import (
    GROUPS,
    NEIGHBOUR_RADII,
    iter_object_features,
    object_features,
)
from napari_segany.classify.table import FEATURE_VERSION, POSITION_COLUMNS, FeatureTable

__all__ = [
    "FEATURE_VERSION",
    "GROUPS",
    "NEIGHBOUR_RADII",
    "POSITION_COLUMNS",
    "ClassifierFileError",
    "FeatureTable",
    "ObjectClassifier",
    "iter_object_features",
    "object_features",
]
