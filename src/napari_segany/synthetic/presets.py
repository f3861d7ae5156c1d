"""Named :class:`~.config.SceneConfig` presets for scenes the default ranges rarely produce.

:data:`DENSE_CLUSTERS` -- fluorescent nuclei packed in clusters, touching along long borders
that are barely darker than the nuclei, the way automatic segmentation merges real nuclei.
:data:`DENSE_CLUSTERS_ANY_SIZE` -- the same clusters with nuclei of 12 to 90 px across, for
training: a model trained on clusters of one nucleus size learns to cut larger objects into
pieces of that size.
Use it like the default ranges, for training or held-out scenes::

    scene = generate_scene((512, 512), DENSE_CLUSTERS, seed=i)  # training scene i
    check = generate_scene((512, 512), DENSE_CLUSTERS, seed=i, held_out=True)

Held-out scenes keep the default discipline (see :mod:`.config`): the banded parameters come
from the odd bands of the preset's own ranges, and the seed stream is the held-out one.
"""

from __future__ import annotations

from dataclasses import replace

from .config import SceneConfig

DENSE_CLUSTERS = SceneConfig(
    # fluorescent nuclei only, none inverted: the failure is seen in nuclear-stain images
    modality_weights=(1.0, 0.0, 0.0, 0.0),
    p_inverted=0.0,
    # 20-28 px across, like the real nuclei the model merges, at the eval's image scale
    radius_mean=(10.5, 16.0),
    radius_spread=(0.05, 0.18),
    radius_limits=(6.0, 22.0),
    aspect_max=(1.05, 1.6),
    nucleus_irregularity=(0.0, 0.08),
    # always touching (shared borders, never on top of each other), from moderate to very
    # dense packing; a larger allowed overlap before the split gives longer shared borders
    p_touching=1.0,
    coverage=(0.2, 0.65),
    clustering=(0.6, 0.97),
    max_overlap=(0.1, 0.3),
    placement_tries=3.0,  # clustered placements are often rejected: twice the default tries
    # neighbours of similar brightness, nearly flat profiles: the valley between two touching
    # nuclei is only slightly darker than their interiors
    brightness_spread=(0.03, 0.15),
    profile_gamma=(0.03, 0.2),
    texture=(0.05, 0.25),
    nucleolus_contrast=(-0.4, 0.4),
    mitotic_fraction=(0.0, 0.03),
    # bright, clean nuclear stain: the borders, not the noise, make these scenes hard
    contrast_to_noise=(6.0, 40.0),
    psf_sigma=(0.8, 2.4),
    defocus_fraction=(0.0, 0.15),
    debris_density=(0.0, 4.0),
)
"""Dense clusters of touching fluorescent nuclei with weak borders between them."""

DENSE_CLUSTERS_ANY_SIZE = replace(
    DENSE_CLUSTERS, radius_mean=(6.0, 45.0), radius_limits=(4.0, 70.0)
)
""":data:`DENSE_CLUSTERS` at every nucleus size the default ranges hold (training scenes)."""
