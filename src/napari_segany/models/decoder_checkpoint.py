"""Reading micro-sam's instance-segmentation decoder files and attaching them to a SAM model.

A decoder file (``vit_b_lm_decoder`` and the others, or one a user trained with micro-sam) is a
plain state dict of the decoder's tensors, written by ``torch.save``. It is read with
``torch.load(weights_only=True)``, which never unpickles arbitrary objects, and loaded strictly:
every key and every shape must match :class:`~napari_segany.models.unetr_decoder.InstanceDecoder`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from napari_segany.models.checkpoint import CheckpointError, check_state_dict, load_torch_file
from napari_segany.models.decoder_settings import DecoderSettings
from napari_segany.models.sam import SamModel
from napari_segany.models.unetr_decoder import (
    EMBED_DIM,
    InstanceDecoder,
    uses_transposed_convolutions,
)


def read_decoder_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a micro-sam decoder file.

    Parameters
    ----------
    path : str or Path
        A ``*_decoder.pt`` file: the decoder's state dict, or a micro-sam model export that
        holds it under ``"decoder_state"``.

    Returns
    -------
    dict of str to Tensor
        The decoder's tensors, floating point ones as float32.

    Raises
    ------
    CheckpointError
        The file is missing, unreadable or holds no decoder tensors.
    """
    path = Path(path).expanduser()
    obj = load_torch_file(
        path,
        "Decoder file",
        "a decoder file",
        "Expected a micro-sam instance-segmentation decoder (a '*_decoder.pt' state dict saved "
        "with torch.save); the file may be incomplete (download it again) or something else.",
    )
    if isinstance(obj, Mapping) and isinstance(obj.get("decoder_state"), Mapping):
        obj = obj["decoder_state"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("model_state"), Mapping):
        raise CheckpointError(
            f"{path} is a model checkpoint without a decoder, not an instance-segmentation "
            "decoder: give the '*_decoder.pt' file as decoder="
        )
    if not isinstance(obj, Mapping) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__} without tensors, not a decoder state dict. "
            "Expected a micro-sam instance-segmentation decoder ('*_decoder.pt')."
        )
    return {
        str(k): (v.float() if v.is_floating_point() else v)
        for k, v in obj.items()
        if isinstance(v, torch.Tensor)
    }


def decoder_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], source: str = "decoder file"
) -> InstanceDecoder:
    """Build the decoder a state dict describes and load it strictly.

    Parameters
    ----------
    state_dict : mapping of str to Tensor
        Keys as in micro-sam's decoder files (``base.*``, ``decoder.*``, ``deconv1.*`` …).
    source : str
        Where the weights came from, for error messages.

    Returns
    -------
    InstanceDecoder
        In eval mode, on the CPU.

    Raises
    ------
    CheckpointError
        Naming the missing, unexpected or wrongly shaped keys when the file is not a decoder of
        this layout (e.g. a SAM checkpoint given as the decoder).
    """
    if any(k.startswith(("image_encoder.", "mask_decoder.")) for k in state_dict):
        raise CheckpointError(
            f"{source} is a SAM model checkpoint, not an instance-segmentation decoder: give it "
            "as the model and the '*_decoder.pt' file as decoder="
        )
    decoder = InstanceDecoder(transposed=uses_transposed_convolutions(state_dict))
    check_state_dict(decoder, state_dict, source)
    decoder.load_state_dict(state_dict, strict=True)
    return decoder.eval()


def attach_decoder(
    model: SamModel,
    decoder: str | Path | Mapping[str, torch.Tensor] | InstanceDecoder,
    settings: DecoderSettings | None = None,
) -> SamModel:
    """Give a SAM model an instance-segmentation decoder.

    Parameters
    ----------
    model : SamModel
        Its image embedding must have the decoder's 256 channels (every SAM has).
    decoder : path, state dict or InstanceDecoder
        A micro-sam decoder file (read with :func:`read_decoder_state`), its state dict, or a
        built decoder.
    settings : DecoderSettings, optional
        The post-processing settings recommended for this decoder; default micro-sam's
        (:class:`~napari_segany.models.decoder_settings.DecoderSettings`).

    Returns
    -------
    SamModel
        ``model`` itself, with ``model.instance_decoder`` set, on the model's device.

    Raises
    ------
    CheckpointError
        The decoder file does not fit (see :func:`decoder_from_state_dict`).
    """
    if not isinstance(decoder, InstanceDecoder):
        source = "decoder state dict"
        if not isinstance(decoder, Mapping):
            source = str(decoder)
            decoder = read_decoder_state(decoder)
        decoder = decoder_from_state_dict(decoder, source)
    embed_dim = getattr(model.mask_decoder, "transformer_dim", EMBED_DIM)
    if embed_dim != EMBED_DIM:
        raise CheckpointError(
            f"the {model.architecture} model's embedding has {embed_dim} channels; micro-sam's "
            f"decoders read {EMBED_DIM}"
        )
    if settings is not None:
        decoder.settings = settings
    model.instance_decoder = decoder.to(model.device).eval()
    return model
