"""Synthetic microscopy scenes with exact instance labels, for training and tests (numpy only).

Four modalities (:data:`MODALITIES`): fluorescent nuclei, cytoplasm-stained cells, brightfield and
phase-contrast cells. Objects are labelled where an annotator draws their edge: at half the
maximum of the blurred object. Debris and out-of-focus blobs are drawn but never labelled. Arrays
are indexed (row, col).

Main entry points:

- :func:`generate_scene` -- one :class:`Scene` (float and quantised image, labels, metadata);
- :func:`sample_config` -- one scene's :class:`SceneParams` drawn from a :class:`SceneConfig`
  (``held_out=True`` for validation scenes; see :mod:`.config` for what differs);
- :func:`generate_nuclei` -- the simple nuclei image used by the sample data;
- :data:`DENSE_CLUSTERS` -- ranges for dense clusters of touching nuclei with weak borders
  (:mod:`.presets`), to pass as ``config`` like the default ``SceneConfig()``.

Usage::

    scene = generate_scene((256, 256), seed=i)  # training scene i
    check = generate_scene((256, 256), seed=i, held_out=True)  # held-out scene i
    scene.image, scene.raw, scene.labels, scene.objects

Modules: ``config`` (ranges, sampling, held-out bands), ``layout`` (sizes, placement, shared
borders), ``shapes`` (star-convex shapes), ``objects`` (appearance of each kind), ``debris``,
``camera`` (background, illumination, noise, quantisation), ``filters`` (blurs, smooth fields),
``scene`` (assembly, labels, visibility, metadata), ``nuclei`` (:func:`generate_nuclei`),
``presets`` (named ranges) and ``measure`` (touching pairs, border contrast, object sizes).
"""

from .config import (
    BANDED,
    BIT_DEPTHS,
    MODALITIES,
    SceneConfig,
    SceneParams,
    band_index,
    banded_bounds,
    sample_config,
)
from .debris import DEBRIS_KINDS, DebrisInfo
from .filters import gaussian_blur
from .nuclei import generate_nuclei
from .objects import KINDS
from .presets import DENSE_CLUSTERS, DENSE_CLUSTERS_ANY_SIZE
from .scene import ObjectInfo, Scene, generate_scene

__all__ = [
    "BANDED",
    "BIT_DEPTHS",
    "DEBRIS_KINDS",
    "DENSE_CLUSTERS",
    "DENSE_CLUSTERS_ANY_SIZE",
    "KINDS",
    "MODALITIES",
    "DebrisInfo",
    "ObjectInfo",
    "Scene",
    "SceneConfig",
    "SceneParams",
    "band_index",
    "banded_bounds",
    "gaussian_blur",
    "generate_nuclei",
    "generate_scene",
    "sample_config",
]
