"""Interactive prediction: encode an image once, then turn each prompt into masks quickly.

>>> predictor = Predictor(load_model("vit_b"))  # doctest: +SKIP
>>> predictor.set_image(image)  # doctest: +SKIP
>>> result = predictor.predict(points=[[120, 85]])  # (row, col)  # doctest: +SKIP
>>> result.masks.shape, result.scores  # doctest: +SKIP
((3, H, W), array([...]))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_segany.geometry import Rect
from napari_segany.image.prep import to_rgb_uint8
from napari_segany.inference.decoder_window import decoder_window, paste_window, window_tuple
from napari_segany.inference.embedding import (
    PRECISIONS,
    ImageEmbedding,
    check_precision,
    embed_rgbs,
    encode_inputs,
    resized_size,
)
from napari_segany.inference.guidance import guide_by_instance
from napari_segany.inference.instance_labels import InstanceSeeding
from napari_segany.inference.instance_maps import instance_labels
from napari_segany.inference.mask_upsampling import MaskUpsampler
from napari_segany.inference.prompt_views import average_views
from napari_segany.inference.prompts import to_model_frame, validate_prompts
from napari_segany.models.sam import SamModel

__all__ = ["NO_SIGNAL", "PRECISIONS", "ImageEmbedding", "Prediction", "Predictor"]

#: :attr:`Prediction.reason` of the empty answer on an image without signal (a constant input).
NO_SIGNAL = "No signal under the click: the image is empty."
#: Low-resolution logit of an empty answer: far below the mask threshold (0), so that fed back as
#: a mask prompt it asks for no object.
_NO_OBJECT_LOGIT = -20.0


@dataclass
class Prediction:
    """Masks predicted for one prompt.

    Attributes
    ----------
    masks : ndarray, shape (K, H, W), bool
        K = 3 candidate masks (multimask) or 1, at the image's size.
    scores : ndarray, shape (K,), float32
        Predicted IoU of each mask.
    logits : ndarray, shape (K, 256, 256), float32
        Low-resolution logits decoded from the image's embedding; pass one as ``mask_input`` to
        refine with the next prompt. With prompt views the masks average these and the views'
        logits, so they can differ slightly from ``logits > 0``.
    chosen : int, optional
        Candidate picked by other evidence than the predicted IoU (see :attr:`best`).
    reason : str, optional
        Why the masks are empty without asking the model, e.g. :data:`NO_SIGNAL`; else None.
    """

    masks: np.ndarray
    scores: np.ndarray
    logits: np.ndarray
    chosen: int | None = None
    reason: str | None = None

    @classmethod
    def empty(cls, shape, multimask: bool, logits_size, reason: str, **fields):
        """No object: all-False masks of ``shape`` (rows, cols), scores 0, and ``reason``.

        ``logits_size`` is the model's low-resolution mask size, e.g. (256, 256); ``fields`` are the
        other attributes of a subclass.
        """
        k = 3 if multimask else 1
        return cls(
            masks=np.zeros((k, *shape), dtype=bool),
            scores=np.zeros(k, dtype=np.float32),
            logits=np.full((k, *logits_size), _NO_OBJECT_LOGIT, dtype=np.float32),
            reason=reason,
            **fields,
        )

    @property
    def best(self) -> int:
        """Index of the mask to show: ``chosen`` when set, else the highest predicted IoU.

        For models that guide clicks by their instance head, a single positive click on a
        large instance-map object returns that object: the candidate that agrees best with it
        is chosen and shows the object's mask (see :mod:`napari_segany.inference.guidance`).
        """
        if self.chosen is not None:
            return int(self.chosen)
        return int(np.argmax(self.scores))


class Predictor:
    """Answer point, box and mask prompts on one image with a SAM-family model.

    Parameters
    ----------
    model : SamModel
        From :func:`napari_segany.load_model` or :func:`napari_segany.build_model`.
    precision : {"fp32", "bf16"}
        ``"bf16"`` runs the image encoder under bfloat16 autocast: about twice as fast on CPUs
        with AVX-512 BF16/AMX and on recent GPUs, with masks that match fp32 closely.
    prompt_views : {1, 3, 6} or None
        Views a point or box prompt is decoded on (see :mod:`napari_segany.inference.prompt_views`):
        1 uses only the image's embedding; 3 and 6 add re-encoded zoomed (and mirrored) crops
        around the prompt and average the masks. None: the model's default (6 for models
        trained on crops at pixel size, such as the embedded model; 1 for SAM checkpoints,
        which support only 1).
    """

    def __init__(
        self, model: SamModel, precision: str = "fp32", prompt_views: int | None = None
    ) -> None:
        check_precision(precision, model.device)
        self.model = model.eval()
        self.precision = precision
        self.prompt_views = _resolve_prompt_views(model, prompt_views)
        self._read_rgb = None
        self._embedding: ImageEmbedding | None = None
        # whether the model input varies at all (None: not checked yet)
        self._signal: bool | None = None
        self._decoder_context = None
        self._upsampler: MaskUpsampler | None = None
        self._upsampler_key: tuple | None = None
        # instance maps by their number of flips, with their objects' bounding slices
        self._instances: dict[int, tuple[np.ndarray, list]] = {}

    # -- image -----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.model.device

    def set_image(
        self,
        image: np.ndarray,
        channel_axis: int | None = None,
        ranges: np.ndarray | None = None,
        channel: int | str | None = None,
    ) -> None:
        """Encode an image; prompts are then answered without re-encoding.

        Parameters
        ----------
        image : array, shape (H, W), (H, W, 3|4) or multichannel with ``channel_axis``
            Any integer or float dtype. 8-bit RGB goes to the model unchanged; anything else is
            scaled per channel between robust percentiles (see :mod:`napari_segany.image.prep`).
        channel_axis : int, optional
            Axis of channels for multichannel images.
        ranges : ndarray (C, 2), optional
            Intensity range per channel (e.g. of the whole image, when ``image`` is a tile).
        channel : int or "mean", optional
            Segment this channel alone (or the mean of the colour channels) as a grayscale
            image; by default all channels, or an RGB image's only channel with signal.
        """
        image = np.asarray(image)
        if image.size == 0 or min(image.shape[:2] if channel_axis is None else image.shape) == 0:
            raise ValueError(f"Cannot segment an empty image of shape {image.shape}")
        rgb = to_rgb_uint8(image, channel_axis=channel_axis, ranges=ranges, channel=channel)
        self.set_rgb_image(rgb)

    def set_rgb_image(self, rgb: np.ndarray) -> None:
        """Encode an (H, W, 3) uint8 RGB image exactly as given."""
        self._set(embed_rgbs(self.model, [rgb], self.precision)[0], lambda rect: rgb[rect.slices])
        self._signal = not _is_constant(rgb)

    def _set(self, embedding: ImageEmbedding, read_rgb=None) -> None:
        self._embedding = embedding
        self._read_rgb = read_rgb
        self._signal = None
        self._instances = {}
        with torch.inference_mode():
            self._decoder_context = self.model.prepare_decoder(embedding.features)

    def encode(self, resized: torch.Tensor) -> torch.Tensor:
        """Run the image encoder on resized 0–255 RGB images (B, 3, h, w) → float32 features."""
        return encode_inputs(self.model, [resized], self.precision)

    @property
    def decoder_context(self):
        """Prompt-independent decoder state of the current image (computed once when the image
        or embedding is set; None for models whose drawn prompts change it)."""
        return self._decoder_context

    def get_embedding(self) -> ImageEmbedding:
        """The current image's embedding, e.g. to cache it on disk."""
        if self._embedding is None:
            raise RuntimeError("No image is set: call set_image(image) first.")
        return self._embedding

    def set_embedding(
        self, embedding: ImageEmbedding, read_rgb=None, instance_maps: dict | None = None
    ) -> None:
        """Use a previously computed embedding instead of encoding an image again.

        Parameters
        ----------
        embedding : ImageEmbedding
        read_rgb : callable, optional
            ``read_rgb(rect)`` with a :class:`~napari_segany.geometry.Rect` of image pixels →
            that crop of the image as (rows, cols, 3) uint8, as the model saw it. Needed for
            ``prompt_views`` > 1; without it prompts are decoded on the embedding only.
        instance_maps : dict, optional
            :attr:`instance_maps` saved earlier for this same embedding, so they are not
            computed again.
        """
        expected = (
            1,
            self.model.prompt_encoder.embed_dim,
            *self.model.prompt_encoder.image_embedding_size,
        )
        if tuple(embedding.features.shape) != expected:
            raise ValueError(
                f"embedding features have shape {tuple(embedding.features.shape)}, "
                f"this model needs {expected}"
            )
        expected_input = resized_size(
            tuple(embedding.original_size), self.model.image_size, self.model.upscale_input
        )
        if tuple(embedding.input_size) != expected_input:
            raise ValueError(
                f"embedding input_size {tuple(embedding.input_size)} does not match its "
                f"original_size {tuple(embedding.original_size)} (expected {expected_input}); "
                "the embedding is damaged or was made for another model input size"
            )
        if embedding.architecture != self.model.architecture:
            raise ValueError(
                f"embedding was made by a {embedding.architecture} model, this predictor uses "
                f"{self.model.architecture}; compute embeddings again with this model"
            )
        features = embedding.features.to(self.device, torch.float32)
        self._set(
            ImageEmbedding(
                features,
                tuple(embedding.original_size),
                tuple(embedding.input_size),
                embedding.architecture,
            ),
            read_rgb,
        )
        if instance_maps:
            self._instances = dict(instance_maps)

    def reset_image(self) -> None:
        """Forget the current image and its embedding."""
        self._embedding = None
        self._read_rgb = None
        self._signal = None
        self._decoder_context = None
        self._instances = {}

    def has_signal(self) -> bool:
        """Whether the current image, as the model sees it, varies at all (checked once per
        image; True when an embedding was set without its pixels, which cannot be told)."""
        if self._signal is None:
            emb = self.get_embedding()
            if self._read_rgb is None:
                return True
            self._signal = not _is_constant(
                self._read_rgb(Rect.from_size(0, 0, *emb.original_size))
            )
        return self._signal

    @property
    def instance_maps(self) -> dict:
        """Instance maps computed so far for the current image, by number of views (opaque;
        pass them back to :meth:`set_embedding` with the same embedding to reuse them)."""
        return dict(self._instances)

    def instance_labels(self, flips: int = 1) -> np.ndarray:
        """The instance-head labels of the current image (computed once, then cached).

        Parameters
        ----------
        flips : {1, 4, 8}
            Flipped views the head's maps are averaged over (see
            :class:`~napari_segany.inference.instance_labels.InstanceSeeding`). 1 uses the
            embedding only; more flips encode the image again, so they need its pixels (an image
            set with :meth:`set_image`, or an embedding set with ``read_rgb``).

        Returns
        -------
        ndarray, shape (H, W), uint32

        Raises
        ------
        ValueError
            If the model has no instance head, or flips > 1 without the image's pixels.
        """
        return self._instance_map(flips)[0]

    def _instance_map(self, flips: int) -> tuple[np.ndarray, list]:
        """Instance labels with ``flips`` flips and their objects' bounding slices (cached)."""
        if flips not in self._instances:
            from scipy import ndimage

            emb = self.get_embedding()
            read = self._read_rgb
            labels = instance_labels(
                self.model,
                emb,
                None if read is None else lambda: read(Rect.from_size(0, 0, *emb.original_size)),
                InstanceSeeding(flips=flips),
                self.precision,
            )[0]
            self._instances[flips] = (labels, ndimage.find_objects(labels))
        return self._instances[flips]

    def _guide(self, prediction: Prediction, point: np.ndarray, views: int) -> None:
        """Let the instance map answer a single positive click (see
        :func:`~napari_segany.inference.guidance.guide_by_instance`). With prompt ``views`` > 1
        (and the image's pixels at hand) the map is averaged over the model's ``guide_flips``;
        a fast one-view answer uses the one-flip map."""
        settings = self.model.inference
        flips = settings.guide_flips if views > 1 and self._read_rgb is not None else 1

        def decode_with_box(box):
            # only picks the logits handed on, which come from the embedding: one view is enough
            return self._decode(point[None], np.ones(1, np.int64), box, None, False)

        guide_by_instance(
            prediction,
            point,
            self._instance_map(flips),
            settings.guide_min_area,
            decode_with_box,
        )

    # -- prompts ---------------------------------------------------------------------------
    def predict(
        self,
        points=None,
        point_labels=None,
        box=None,
        mask_input=None,
        multimask: bool = True,
        prompt_views: int | None = None,
    ) -> Prediction:
        """Predict masks for one set of prompts on the current image.

        Parameters
        ----------
        points : array-like, shape (N, 2), optional
            (row, col) pixel coordinates, napari's order.
        point_labels : array-like, shape (N,), optional
            1 foreground, 0 background (default: all foreground).
        box : array-like, shape (4,), optional
            (row0, col0, row1, col1).
        mask_input : array-like, shape (256, 256) or (1, 256, 256), optional
            Low-resolution logits from a previous :class:`Prediction`, to refine it.
        multimask : bool
            Return 3 candidate masks (recommended for a single click) or 1.
        prompt_views : {1, 3, 6}, optional
            Views for this prompt (default: :attr:`prompt_views`), e.g. 1 for a fast first
            answer before the averaged one.

        Returns
        -------
        Prediction
            On a constant image (no signal: e.g. all zero) the empty prediction, with
            ``reason`` :data:`NO_SIGNAL`: the model would otherwise draw a phantom object.
        """
        views = self.prompt_views if prompt_views is None else prompt_views
        if views != self.prompt_views:
            _resolve_prompt_views(self.model, views)  # a clear error for unsupported values
        emb = self.get_embedding()
        pts, labels, bx = validate_prompts(emb.original_size, points, point_labels, box)
        if pts is None and bx is None and mask_input is None:
            raise ValueError("Give at least one prompt: points, a box or mask_input.")
        if not self.has_signal():
            size = self.model.prompt_encoder.mask_input_size
            return Prediction.empty(emb.original_size, multimask, size, NO_SIGNAL)
        masks, scores, logits = self._decode(pts, labels, bx, mask_input, multimask, views)
        prediction = Prediction(masks=masks, scores=scores, logits=logits)
        single_click = pts is not None and len(pts) == 1 and labels[0] == 1
        single_click = single_click and bx is None and mask_input is None
        guided = self.model.has_instance_head and self.model.inference.guide_min_area is not None
        if guided and multimask and single_click:
            self._guide(prediction, pts[0], views)
        return prediction

    def _decode(
        self, pts, labels, bx, mask_input, multimask: bool, views: int = 1
    ) -> tuple[np.ndarray, ...]:
        """Validated (row, col) prompts → (masks (K, H, W), scores (K,), logits (K, 256, 256))."""
        emb = self.get_embedding()
        prompts = to_model_frame(pts, labels, bx, emb.original_size, emb.input_size)
        dev = self.device
        with torch.inference_mode():
            coords = lab = boxes = mask = None
            if prompts.points is not None:
                coords = torch.from_numpy(prompts.points)[None].to(dev)
                lab = torch.from_numpy(prompts.labels)[None].to(dev)
            if prompts.box is not None:
                boxes = torch.from_numpy(prompts.box)[None].to(dev)
            if mask_input is not None:
                mask = self._mask_tensor(mask_input).to(dev)
            window = self.decoder_window(prompts)
            logits, iou = self.model.decode(
                emb.features,
                coords,
                lab,
                boxes,
                mask,
                multimask,
                context=self._decoder_context,
                window=window_tuple(window),
            )
            if window is not None:
                logits = paste_window(logits, window, tuple(4 * n for n in emb.features.shape[-2:]))
            masks = self.upscale_masks(logits[0], emb).cpu().numpy()
            scores = iou[0].float().cpu().numpy()
            if views > 1 and self._read_rgb is not None and (pts is not None or bx is not None):
                scores = average_views(
                    self.model,
                    self._read_rgb,
                    emb.original_size,
                    emb.input_size,
                    (masks, scores, logits[0]),
                    (pts, labels, bx),
                    mask,
                    multimask,
                    views,
                )
        return masks, scores, logits[0].float().cpu().numpy()

    def decoder_window(self, prompts) -> Rect | None:
        """The embedding window (in tokens) the decoder attends to for ``prompts`` in the input
        frame (see :func:`napari_segany.inference.decoder_window.decoder_window`)."""
        emb = self.get_embedding()
        grid = tuple(emb.features.shape[-2:])
        stride = self.model.image_size / grid[1]
        return decoder_window(prompts, self.model.decoder_window, grid, stride, emb.input_size)

    def _mask_tensor(self, mask_input) -> torch.Tensor:
        size = self.model.prompt_encoder.mask_input_size
        mask = torch.as_tensor(np.asarray(mask_input, dtype=np.float32))
        if mask.shape == size:
            mask = mask[None]
        if tuple(mask.shape) != (1, *size):
            raise ValueError(
                f"mask_input must be low-resolution logits of shape {size} or (1, {size[0]}, "
                f"{size[1]}) (a Prediction's logits[i]), got {tuple(mask.shape)}"
            )
        return mask[None]

    def upscale_masks(self, logits: torch.Tensor, emb: ImageEmbedding) -> torch.Tensor:
        """Low-res logits (K, 256, 256) → boolean masks (K, H, W) at the original size of
        ``emb``'s image (the upsampling operators are kept for the last size used)."""
        key = (emb.original_size, emb.input_size, tuple(logits.shape[-2:]))
        if self._upsampler_key != key:
            self._upsampler = MaskUpsampler(
                tuple(logits.shape[-2:]), self.model.image_size, emb.input_size, emb.original_size
            )
            self._upsampler_key = key
        return self._upsampler.to(logits.device)(logits, self.model.mask_threshold)


def _is_constant(rgb: np.ndarray) -> bool:
    """Whether every pixel of an (H, W, 3) image is the same colour."""
    flat = rgb.reshape(-1, rgb.shape[-1])
    return bool((flat == flat[0]).all())


def _resolve_prompt_views(model: SamModel, prompt_views: int | None) -> int:
    """The number of prompt views to use with ``model`` (see :class:`Predictor`)."""
    from napari_segany.inference.prompt_views import PROMPT_VIEWS

    settings = model.inference
    if prompt_views is None:
        return settings.prompt_views
    if prompt_views not in PROMPT_VIEWS:
        raise ValueError(f"prompt_views must be one of {PROMPT_VIEWS}, got {prompt_views!r}")
    if prompt_views > 1 and not settings.supports_prompt_views:
        raise ValueError(
            f"prompt_views={prompt_views} needs a model trained on crops at the data's pixel "
            f"size (such as the embedded segany_cells model); the {model.architecture} model "
            "supports only prompt_views=1"
        )
    return int(prompt_views)
