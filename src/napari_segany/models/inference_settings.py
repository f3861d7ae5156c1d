"""Inference settings that belong to a model: part of its architecture spec, not of the code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InferenceSettings:
    """How predictors, sessions and automatic segmentation use one kind of model.

    The defaults suit SAM checkpoints (vit_h/l/b, vit_t); models trained on crops at the data's
    pixel size (the embedded ``segany_cells``) override them in
    :data:`napari_segany.models.architectures.ARCHITECTURES`. How each value was chosen is in
    docs/history.md.

    Attributes
    ----------
    prompt_views : int
        Default number of views a point or box prompt is decoded on (see
        :mod:`napari_segany.inference.prompt_views`). 1: the image's embedding only, the only
        value a model with 1 here supports; models trained on crops at pixel size may use 3 or 6.
    guide_min_area : int or None
        For models with an instance head: a single positive click on an instance-map object of
        at least this many pixels is answered with that object (see
        :mod:`napari_segany.inference.guidance`). None: clicks are never guided.
    guide_flips : int
        Flipped views (1, 4 or 8) of the instance map that guides clicks answered with several
        prompt views; a one-view answer uses the one-flip map.
    encode_batch_size : int
        Tiles encoded together by a tiled session: small convolutional encoders run faster per
        tile in batches, ViT activations take gigabytes per image.
    """

    prompt_views: int = 1
    guide_min_area: int | None = None
    guide_flips: int = 4
    encode_batch_size: int = 1

    @property
    def supports_prompt_views(self) -> bool:
        """Whether prompts may be decoded on more than one view."""
        return self.prompt_views > 1
