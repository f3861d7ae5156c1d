"""The one encode path: 8-bit RGB pixels → the model's image embedding.

Every image the package encodes (a whole image, a tile, a window across seams, a flipped view
for instance maps, a zoomed view around a prompt) goes through :func:`encode_inputs`:
resize (:func:`resize_for_model`), normalise and pad (:meth:`SamModel.normalize`), run the image
encoder under the chosen precision. :func:`embed_rgbs` wraps it for (H, W, 3) uint8 images and
returns :class:`ImageEmbedding` records.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_segany.models.sam import SamModel

PRECISIONS = ("fp32", "bf16")


@dataclass
class ImageEmbedding:
    """What a predictor needs to answer prompts on one image, without the image itself.

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
    return resize_pixels(rgb, resized_size(rgb.shape[:2], target, upscale))


def resize_pixels(rgb: np.ndarray, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """(H, W, 3) uint8 → (1, 3, rows, cols) float 0–255, bilinear, rounded to integers.

    The one resizing path for model inputs. ``antialias`` matters when shrinking (the model
    input of a large image); zoomed views around a prompt only enlarge and skip it.
    """
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    if tuple(size) != tuple(rgb.shape[:2]):
        x = F.interpolate(
            x, size=tuple(size), mode="bilinear", align_corners=False, antialias=antialias
        )
        x = x.round_().clamp_(0, 255)
    return x


def check_precision(precision: str, device: torch.device) -> None:
    """Raise a clear ValueError for a precision the device cannot run."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and device.type == "mps":
        raise ValueError("precision='bf16' is not supported on Apple MPS; use 'fp32'.")


def encode_inputs(
    model: SamModel,
    inputs: list[torch.Tensor],
    precision: str = "fp32",
    input_side: int | None = None,
) -> torch.Tensor:
    """Encode resized 0–255 RGB inputs in one batch.

    Parameters
    ----------
    model : SamModel
    inputs : list of Tensor, each (1, 3, h, w) or (B, 3, h, w)
        Float 0–255 RGB, already resized (:func:`resize_for_model`); sizes may differ.
    precision : {"fp32", "bf16"}
        ``"bf16"`` runs the encoder under bfloat16 autocast.
    input_side : int, optional
        Side the inputs are padded to (default: the model's input size). A smaller side makes
        a smaller embedding, e.g. for crops of a model trained on crops.

    Returns
    -------
    Tensor, shape (B, 256, side/16, side/16), float32, on the model's device.
    """
    device = model.device
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    with torch.inference_mode():
        batch = torch.cat([model.normalize(x.to(device), input_side) for x in inputs])
        with autocast:
            return model.encode_image(batch).float()


def embed_rgbs(
    model: SamModel,
    rgbs: list[np.ndarray],
    precision: str = "fp32",
    constants: dict | None = None,
    encode_batch: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[ImageEmbedding]:
    """Embed (H, W, 3) uint8 images; images of one size are encoded in one batch.

    Parameters
    ----------
    model : SamModel
    rgbs : list of ndarray, each (H, W, 3) uint8
        Exactly what the model sees (see :func:`napari_segany.image.prep.to_rgb_uint8`).
    precision : {"fp32", "bf16"}
    constants : dict, optional
        Features of constant images (empty background) by value and size, filled and reused:
        a constant image always gives the same features, so it is encoded once.
    encode_batch : callable, optional
        ``encode_batch(inputs)`` for resized inputs of one size (B, 3, h, w) → features;
        default :func:`encode_inputs` with ``precision``.

    Returns
    -------
    list of ImageEmbedding
        One per image, features on the CPU when ``constants`` is given (they are kept), else on
        the model's device.
    """
    for rgb in rgbs:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    inputs = [resize_for_model(rgb, model.image_size, model.upscale_input) for rgb in rgbs]
    features: list[torch.Tensor | None] = [None] * len(rgbs)
    keys: list[tuple | None] = [None] * len(rgbs)
    if constants is not None:
        for i, rgb in enumerate(rgbs):
            flat = rgb.reshape(-1, 3)
            if (flat == flat[0]).all():
                keys[i] = (tuple(int(v) for v in flat[0]), rgb.shape[:2])
                features[i] = constants.get(keys[i])
    groups: dict[tuple, list[int]] = {}
    copies: dict[int, int] = {}  # constant image -> an identical one encoded in this call
    first_of_key: dict[tuple, int] = {}
    for i, x in enumerate(inputs):
        if features[i] is not None:
            continue
        if keys[i] is not None:
            if keys[i] in first_of_key:
                copies[i] = first_of_key[keys[i]]
                continue
            first_of_key[keys[i]] = i
        groups.setdefault(tuple(x.shape), []).append(i)
    for members in groups.values():
        batch = torch.cat([inputs[i] for i in members])
        out = encode_batch(batch) if encode_batch else encode_inputs(model, [batch], precision)
        if constants is not None:
            out = out.cpu()
        for k, i in enumerate(members):
            features[i] = out[k : k + 1].clone() if len(members) > 1 else out
            if keys[i] is not None:
                constants[keys[i]] = features[i]
    for i, source in copies.items():
        features[i] = features[source]
    return [
        ImageEmbedding(
            features=f,
            original_size=(int(rgb.shape[0]), int(rgb.shape[1])),
            input_size=(int(x.shape[2]), int(x.shape[3])),
            architecture=model.architecture,
        )
        for f, rgb, x in zip(features, rgbs, inputs, strict=True)
    ]
