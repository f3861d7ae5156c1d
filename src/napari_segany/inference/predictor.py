"""Interactive prediction: encode an image once, then turn each prompt into masks quickly.

>>> predictor = Predictor(load_model("vit_b"))  # doctest: +SKIP
>>> predictor.set_image(image)  # doctest: +SKIP
>>> result = predictor.predict(points=[[120, 85]])  # (row, col)  # doctest: +SKIP
>>> result.masks.shape, result.scores  # doctest: +SKIP
((3, H, W), array([...]))
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_segany.image.prep import to_rgb_uint8
from napari_segany.inference.mask_upsampling import MaskUpsampler
from napari_segany.models.sam import SamModel
from napari_segany.inference.prompts import to_model_frame, validate_prompts

PRECISIONS = ("fp32", "bf16")
#: Tokens kept on each side of a large box in a decoder window.
_WINDOW_MARGIN = 2
#: Pixels (about 32 px across) below which an instance-map object does not guide a click: the
#: head often merges small touching neighbours, and on validation images (seeds 555000+) the
#: predicted IoU chose better among small objects' candidates (one-click mIoU 0.773 → 0.792).
_GUIDE_MIN_AREA = 800
#: Flipped views of the instance map that guides clicks answered with several prompt views: on
#: 32 validation images (seeds 555000-555031) one-click mIoU 0.837 with 1, 0.839 with 4.
_GUIDE_MAP_VIEWS = 4
#: Prompt views for models that support them (see :class:`Predictor`).
DEFAULT_PROMPT_VIEWS = 6


def resized_size(
    original_size: tuple[int, int], target: int, upscale: bool = True
) -> tuple[int, int]:
    """(rows, cols) after scaling the longest side to ``target``, rounded as SAM does.

    Never 0: a very elongated image (e.g. 1 × 3000) keeps at least one row or column, where
    SAM's rounding would give an empty image and fail. With ``upscale=False`` an image that
    already fits keeps its size (models trained at the pixel size of the data).
    """
    h, w = original_size
    if not upscale and max(h, w) <= target:
        return int(h), int(w)
    scale = target / max(h, w)
    return max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))


def resize_for_model(rgb: np.ndarray, target: int, upscale: bool = True) -> torch.Tensor:
    """Resize an (H, W, 3) uint8 image so its longest side is ``target``.

    With ``upscale=False``, images that fit are left at their size (see :func:`resized_size`).

    Bilinear with antialiasing, rounded back to 0–255 integers like SAM's own 8-bit resize.

    Returns
    -------
    Tensor, shape (1, 3, new_h, new_w), float32 with integer values in 0–255.
    """
    new_size = resized_size(rgb.shape[:2], target, upscale)
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    if new_size != tuple(rgb.shape[:2]):
        x = F.interpolate(x, size=new_size, mode="bilinear", align_corners=False, antialias=True)
        x = x.round_().clamp_(0, 255)
    return x


@dataclass
class ImageEmbedding:
    """What the predictor needs to answer prompts on one image, without the image itself.

    Attributes
    ----------
    features : Tensor, shape (1, 256, h, w)
        Image encoder output (float32).
    original_size : (int, int)
        (rows, cols) of the image.
    input_size : (int, int)
        (rows, cols) after resizing the longest side to the model input size.
    architecture : str
        Architecture of the model that made it; embeddings are not interchangeable.
    """

    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    architecture: str


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
    """

    masks: np.ndarray
    scores: np.ndarray
    logits: np.ndarray
    chosen: int | None = None

    @property
    def best(self) -> int:
        """Index of the mask to show: ``chosen`` when set, else the highest predicted IoU.

        For models with an instance head, a single positive click on an object of the head's
        instance map larger than ``_GUIDE_MIN_AREA`` returns that object: the candidate that
        agrees best with it is chosen and shows the object's mask (see
        ``Predictor._guide_by_instance``).
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
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if precision == "bf16" and model.device.type == "mps":
            raise ValueError("precision='bf16' is not supported on Apple MPS; use 'fp32'.")
        self.model = model.eval()
        self.precision = precision
        self.prompt_views = _resolve_prompt_views(model, prompt_views)
        self._read_rgb = None
        self._embedding: ImageEmbedding | None = None
        self._decoder_context = None
        self._upsampler: MaskUpsampler | None = None
        self._upsampler_key: tuple | None = None
        # instance maps by their number of flipped views, with their objects' bounding boxes
        self._instances: dict[int, tuple[np.ndarray, list]] = {}

    # -- image -----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.model.device

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def set_image(
        self, image: np.ndarray, channel_axis: int | None = None, ranges: np.ndarray | None = None
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
        """
        image = np.asarray(image)
        if image.size == 0 or min(image.shape[:2] if channel_axis is None else image.shape) == 0:
            raise ValueError(f"Cannot segment an empty image of shape {image.shape}")
        rgb = to_rgb_uint8(image, channel_axis=channel_axis, ranges=ranges)
        self.set_rgb_image(rgb)

    def set_rgb_image(self, rgb: np.ndarray) -> None:
        """Encode an (H, W, 3) uint8 RGB image exactly as given."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
        target = self.model.image_size
        x = resize_for_model(rgb, target, self.model.upscale_input)
        with torch.inference_mode():
            features = self.encode(x.to(self.device))
        self._set(
            ImageEmbedding(
                features=features,
                original_size=(int(rgb.shape[0]), int(rgb.shape[1])),
                input_size=(int(x.shape[2]), int(x.shape[3])),
                architecture=self.model.architecture,
            ),
            lambda r0, c0, rows, cols: rgb[r0 : r0 + rows, c0 : c0 + cols],
        )

    def _set(self, embedding: ImageEmbedding, read_rgb=None) -> None:
        self._embedding = embedding
        self._read_rgb = read_rgb
        self._instances = {}
        with torch.inference_mode():
            self._decoder_context = self.model.prepare_decoder(embedding.features)

    def encode(self, resized: torch.Tensor) -> torch.Tensor:
        """Run the image encoder on resized 0–255 RGB images (B, 3, h, w) → float32 features."""
        with torch.inference_mode(), self._autocast():
            return self.model.encode_image(self.model.normalize(resized)).float()

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
            ``read_rgb(row0, col0, rows, cols)`` → that crop of the image as (rows, cols, 3)
            uint8, as the model saw it. Needed for ``prompt_views`` > 1; without it prompts
            are decoded on the embedding only.
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
        self._decoder_context = None
        self._instances = {}

    @property
    def instance_maps(self) -> dict:
        """Instance maps computed so far for the current image, by number of views (opaque;
        pass them back to :meth:`set_embedding` with the same embedding to reuse them)."""
        return dict(self._instances)

    def instance_labels(self, views: int = 1) -> np.ndarray:
        """The instance-head labels of the current image (computed once, then cached).

        Parameters
        ----------
        views : {1, 4, 8}
            Flipped views the head's maps are averaged over (see
            :class:`~napari_segany.automatic.params.AutomaticParams`). 1 uses the embedding
            only; more views encode the image again, so they need its pixels (an image set with
            :meth:`set_image`, or an embedding set with ``read_rgb``).

        Returns
        -------
        ndarray, shape (H, W), uint32

        Raises
        ------
        ValueError
            If the model has no instance head, or views > 1 without the image's pixels.
        """
        return self._instance_map(views)[0]

    def _instance_map(self, views: int) -> tuple[np.ndarray, list]:
        """Instance labels with ``views`` views and their objects' bounding boxes (cached)."""
        if views not in self._instances:
            from scipy import ndimage

            from napari_segany.automatic.params import AutomaticParams
            from napari_segany.automatic.tile import segment_encoded

            rgb = None
            if views > 1:
                if self._read_rgb is None:
                    raise ValueError(
                        "an instance map with views > 1 needs the image's pixels: use "
                        "set_image(), or set_embedding(embedding, read_rgb)"
                    )
                rgb = self._read_rgb(0, 0, *self.get_embedding().original_size)
            params = AutomaticParams(method="instance_head", views=views)
            labels = segment_encoded(self, params, rgb)[0]
            self._instances[views] = (labels, ndimage.find_objects(labels))
        return self._instances[views]

    def _guide_by_instance(self, prediction: Prediction, point: np.ndarray, views: int) -> None:
        """Use the instance map to answer a single positive click at ``point`` (row, col).

        A click alone does not say how far a large object extends; the instance head, which
        sees every object of the image at once, does. So the chosen mask is the instance-map
        object under the click itself (on validation images, seeds 555000+, this raised the
        one-click mIoU of embedded model v5 from 0.830 to 0.836).

        Its logits, for refining with the next prompt, are those of the decoder's mask that
        agrees best (IoU) with the object: of SAM's three candidates, and of the click decoded
        again together with the object's bounding box. That candidate becomes
        ``prediction.chosen`` and its mask is replaced by the object's.

        Nothing changes where the instance map has background under the click, or an object
        smaller than ``_GUIDE_MIN_AREA``: there the predicted IoU ranks the candidates.

        With prompt ``views`` > 1 (and the image's pixels at hand) the instance map is averaged
        over ``_GUIDE_MAP_VIEWS`` flipped views, like automatic segmentation; a fast
        one-view answer uses the one-view map.
        """
        map_views = _GUIDE_MAP_VIEWS if views > 1 and self._read_rgb is not None else 1
        labels, boxes = self._instance_map(map_views)
        r, c = (int(v) for v in np.clip(np.round(point), 0, np.array(labels.shape) - 1))
        label = int(labels[r, c])
        if label == 0:
            return
        region = boxes[label - 1]
        obj = labels[region] == label
        if np.count_nonzero(obj) < _GUIDE_MIN_AREA:
            return

        def agreement(masks: np.ndarray) -> np.ndarray:
            inter = np.count_nonzero(masks[(slice(None), *region)] & obj, axis=(1, 2))
            areas = np.count_nonzero(masks.reshape(len(masks), -1), axis=1)
            return inter / np.maximum(areas + np.count_nonzero(obj) - inter, 1)

        scores = agreement(prediction.masks)
        chosen = int(np.argmax(scores))
        prediction.chosen = chosen
        box = np.array([region[0].start, region[1].start, region[0].stop - 1, region[1].stop - 1])
        # only picks the logits handed on, which come from the embedding: one view is enough
        masks, iou, logits = self._decode(point[None], np.ones(1, np.int64), box, None, False)
        if agreement(masks)[0] > scores[chosen]:
            prediction.scores[chosen] = iou[0]
            prediction.logits[chosen] = logits[0]
        prediction.masks[chosen] = False
        prediction.masks[(chosen, *region)] = obj

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
        """
        views = self.prompt_views if prompt_views is None else prompt_views
        if views != self.prompt_views:
            _resolve_prompt_views(self.model, views)  # a clear error for unsupported values
        emb = self.get_embedding()
        pts, labels, bx = validate_prompts(emb.original_size, points, point_labels, box)
        if pts is None and bx is None and mask_input is None:
            raise ValueError("Give at least one prompt: points, a box or mask_input.")
        masks, scores, logits = self._decode(pts, labels, bx, mask_input, multimask, views)
        prediction = Prediction(masks=masks, scores=scores, logits=logits)
        single_click = pts is not None and len(pts) == 1 and labels[0] == 1
        single_click = single_click and bx is None and mask_input is None
        if self.model.has_instance_head and multimask and single_click:
            self._guide_by_instance(prediction, pts[0], views)
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
                window=window,
            )
            if window is not None:
                logits = _paste_window(
                    logits, window, tuple(4 * n for n in emb.features.shape[-2:])
                )
            masks = self._upscale_masks(logits[0], emb).cpu().numpy()
            scores = iou[0].float().cpu().numpy()
            if views > 1 and self._read_rgb is not None and (pts is not None or bx is not None):
                scores = self._average_views(
                    masks, scores, logits[0], pts, labels, bx, mask, multimask, views
                )
        return masks, scores, logits[0].float().cpu().numpy()

    def _average_views(
        self, masks, scores, logits, pts, labels, bx, mask, multimask, views: int
    ) -> np.ndarray:
        """Replace ``masks`` (K, H, W), in place, by the mean over ``views`` views.

        ``logits`` (K, h, w) are the embedding's own low-resolution logits, which count as
        one view; ``mask`` (1, 1, h, w) is the mask prompt or None. Returns the views' mean
        predicted IoU (K,).
        """
        from napari_segany.inference.prompt_views import (
            VIEW_SETS,
            MaskInput,
            decode_views,
            frame_logits_on_image,
        )

        emb = self.get_embedding()
        mask_input = None
        if mask is not None:
            frame_scale = tuple(
                i / o for i, o in zip(emb.input_size, emb.original_size, strict=True)
            )
            mask_input = MaskInput(mask[0].float(), frame_scale, self.model.image_size)
        found = decode_views(
            self.model,
            self._read_rgb,
            emb.original_size,
            pts,
            labels,
            bx,
            VIEW_SETS[views],
            multimask,
            mask_input,
        )
        if found is None:
            return scores
        own = frame_logits_on_image(
            logits, found.region, emb.original_size, emb.input_size, self.model.image_size
        )
        mean = (found.total + own) / (found.count + 1)
        r0, c0, rows, cols = found.region
        masks[:, r0 : r0 + rows, c0 : c0 + cols] = mean > self.model.mask_threshold
        return (scores + found.scores.sum(axis=0)) / (1 + len(found.scores))

    def decoder_window(self, prompts) -> tuple[int, int, int, int] | None:
        """The embedding window the decoder attends to for ``prompts`` (in the input frame).

        Models with a ``decoder_window`` (trained on crops) decode on a window of that many
        tokens centred on the prompts' extent, grown to hold a large box with a margin, and
        kept inside the image's part of the embedding where it fits. Returns (row0, col0, rows,
        cols) in tokens, or None (the whole embedding) for SAM checkpoints and when there are
        no point or box prompts.
        """
        side = self.model.decoder_window
        emb = self.get_embedding()
        corners = [p for p in (prompts.points, prompts.box) if p is not None]
        if side is None or not corners:
            return None
        xy = np.concatenate([np.reshape(c, (-1, 2)) for c in corners])
        grid = emb.features.shape[-2:]
        stride = self.model.image_size / grid[1]
        valid = [math.ceil(n / stride) for n in emb.input_size]
        window = []
        for axis in (1, 0):  # rows from y, cols from x
            low, high = xy[:, axis].min() / stride, xy[:, axis].max() / stride
            first = math.floor(low) - _WINDOW_MARGIN
            stop = math.floor(high) + 1 + _WINDOW_MARGIN
            length = min(grid[1 - axis], max(side, stop - first))
            start = first if length == stop - first else round((low + high) / 2 - length / 2)
            limit = valid[1 - axis] if valid[1 - axis] >= length else grid[1 - axis]
            window.append((min(max(start, 0), limit - length), length))
        (r0, rows), (c0, cols) = window
        return r0, c0, rows, cols

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

    def _upscale_masks(self, logits: torch.Tensor, emb: ImageEmbedding) -> torch.Tensor:
        """Low-res logits (K, 256, 256) → boolean masks (K, H, W) at the original size."""
        key = (emb.original_size, emb.input_size, tuple(logits.shape[-2:]))
        if self._upsampler_key != key:
            self._upsampler = MaskUpsampler(
                tuple(logits.shape[-2:]), self.model.image_size, emb.input_size, emb.original_size
            )
            self._upsampler_key = key
        return self._upsampler.to(logits.device)(logits, self.model.mask_threshold)


def _resolve_prompt_views(model: SamModel, prompt_views: int | None) -> int:
    """The number of prompt views to use with ``model`` (see :class:`Predictor`)."""
    from napari_segany.inference.prompt_views import PROMPT_VIEWS

    supported = model.decoder_window is not None and not model.upscale_input
    if prompt_views is None:
        return DEFAULT_PROMPT_VIEWS if supported else 1
    if prompt_views not in PROMPT_VIEWS:
        raise ValueError(f"prompt_views must be one of {PROMPT_VIEWS}, got {prompt_views!r}")
    if prompt_views > 1 and not supported:
        raise ValueError(
            f"prompt_views={prompt_views} needs a model trained on crops at the data's pixel "
            f"size (such as the embedded segany_cells model); the {model.architecture} model "
            "supports only prompt_views=1"
        )
    return int(prompt_views)


def _paste_window(logits: torch.Tensor, window: tuple, full: tuple[int, int]) -> torch.Tensor:
    """Window logits (B, K, 4·rows, 4·cols) → (B, K, *full); outside, each mask's minimum."""
    r0, c0, rows, cols = (4 * v for v in window)
    low = logits.amin(dim=(-2, -1), keepdim=True)
    canvas = low.expand(*logits.shape[:2], *full).clone()
    canvas[..., r0 : r0 + rows, c0 : c0 + cols] = logits
    return canvas
