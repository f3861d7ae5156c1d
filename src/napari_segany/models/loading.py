"""Load a model by registry name or from a local file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from napari_segany.models.architectures import ARCHITECTURES, Architecture, build_model
from napari_segany.models.checkpoint import (
    CheckpointError,
    check_state_dict,
    infer_architecture,
    read_model_file,
)
from napari_segany.models.registry import DEFAULT_MODEL
from napari_segany.models.sam import SamModel


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into the best available device (cuda, then mps, then cpu).

    Raises
    ------
    ValueError
        If a named device is not available on this computer.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"Unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'mps'."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but no CUDA GPU is available; use 'auto'.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' was requested but Apple MPS is not available; use 'auto'.")
    return dev


def model_from_state_dict(
    state_dict: dict[str, torch.Tensor],
    architecture: str | Architecture | None = None,
    source: str = "checkpoint",
) -> SamModel:
    """Build the right architecture for a state dict and load it strictly.

    Parameters
    ----------
    state_dict : dict
        SAM state dict with the published key names.
    architecture : str or Architecture, optional
        Architecture (name or spec); inferred from the weights when not given.
    source : str
        Where the weights came from, for error messages.
    """
    arch = architecture or infer_architecture(state_dict)
    if not isinstance(arch, Architecture):
        if arch not in ARCHITECTURES:
            raise CheckpointError(f"{source}: unknown architecture {arch!r}")
        arch = ARCHITECTURES[arch]
    # an instance head is optional in every architecture: the weights say whether there is one
    has_head = any(k.startswith("instance_head.") for k in state_dict)
    if has_head != arch.instance_head:
        arch = dataclasses.replace(arch, instance_head=has_head)
    model = build_model(arch, seed=None, device="meta")
    check_state_dict(model, state_dict, source)
    model.load_state_dict(state_dict, strict=True, assign=True)
    # buffers that are not stored in checkpoints were created on the meta device: rebuild them
    _materialise_non_persistent(model)
    return model.eval()


def _materialise_non_persistent(model: torch.nn.Module) -> None:
    """Give every module holding derived (non-checkpoint) buffers the chance to rebuild them."""
    for module in model.modules():
        rebuild = getattr(module, "rebuild_non_persistent_buffers", None)
        if callable(rebuild):
            rebuild()
    leftovers = [n for n, b in model.named_buffers() if b.is_meta]
    if leftovers:
        raise RuntimeError(f"buffers left on the meta device after loading: {leftovers[:5]}")


def load_model(
    name_or_path: str | Path = DEFAULT_MODEL,
    device: str | torch.device = "auto",
    decoder: str | Path | bool | None = None,
) -> SamModel:
    """Load a Segment Anything model.

    Parameters
    ----------
    name_or_path : str or Path
        A model name from the registry (``napari-segany models`` lists them; downloaded on first
        use and cached) or the path of a local checkpoint file. The architecture is recognised
        from the weights. Default: the embedded ``segany_cells`` model, which ships with the
        package and needs no download.
    device : str or torch.device
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"mps"``.
    decoder : str, Path or bool, optional
        A micro-sam instance-segmentation decoder file (``*_decoder.pt``) to attach, for
        automatic segmentation with ``method="decoder"``. By default (None) the decoder that
        comes with the model is attached: a registry model's published decoder (downloaded
        beside it) or the ``decoder_state`` of a micro-sam export. False attaches none.

    Returns
    -------
    SamModel
        In eval mode on ``device``; ``model.instance_decoder`` is set when a decoder was
        attached.

    Raises
    ------
    CheckpointError
        The file is not a usable SAM checkpoint, or the decoder file does not fit.
    napari_segany.models.download.ModelDownloadError
        A registry model or its decoder could not be downloaded.
    """
    from napari_segany.models.decoder_checkpoint import attach_decoder
    from napari_segany.models.download import fetch_model, resolve_model_path

    dev = resolve_device(device)
    path, info = resolve_model_path(name_or_path)
    state_dict, recorded_arch, decoder_state = read_model_file(path)
    arch = recorded_arch or (info.architecture if info is not None else None)
    model = model_from_state_dict(state_dict, arch, source=str(path))
    settings = info.decoder_settings if info is not None else None
    if decoder is None or decoder is True:
        if info is not None and info.decoder is not None:
            decoder = fetch_model(info.decoder)
        elif decoder_state is not None:
            decoder = decoder_state
        elif decoder is True:
            raise ValueError(
                f"{name_or_path} comes with no instance-segmentation decoder; give the decoder "
                "file as decoder=..."
            )
    if decoder is not None and decoder is not False:
        if isinstance(decoder, str | Path) and not Path(decoder).expanduser().is_file():
            raise CheckpointError(f"Decoder file not found: {Path(decoder).expanduser()}")
        attach_decoder(model, decoder, settings)
    return model.to(dev)
