"""Reading checkpoint files and recognising what they contain.

Four layouts are accepted (see ``shared/reference/sam-checkpoints.md``):

A. a plain SAM state dict (official SAM and MobileSAM files, micro-sam encoder files);
C. ``{"model_state": <SAM state dict>, "decoder_state": ...}`` (micro-sam exports);
D. a torch-em training checkpoint whose ``model_state`` keys carry a ``sam.`` prefix;
N. our own files: ``{"napari_segany_architecture": name, "model_state": <state dict>}``.

Files are read with ``torch.load(weights_only=True)``. Training checkpoints (D) pickle class
references of training code; those classes are replaced by inert placeholders rather than imported,
so reading a checkpoint never runs code from the file.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

ARCH_KEY = "napari_segany_architecture"

_VIT_WIDTHS = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}


class CheckpointError(ValueError):
    """A file is not a usable model checkpoint; the message says why and what to do."""


class _Placeholder:
    """Stands in for any class pickled in a training checkpoint that we do not need."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _placeholder_for(qualified_name: str) -> tuple[type, str]:
    cls = type(qualified_name.rsplit(".", 1)[-1], (_Placeholder,), {})
    return cls, qualified_name


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():
            raise
    # classes outside torch's safe list (a training checkpoint): retry with placeholders
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    placeholders = [_placeholder_for(name) for name in unsafe]
    with torch.serialization.safe_globals(placeholders):
        return torch.load(path, map_location="cpu", weights_only=True)


def load_torch_file(path, name: str, as_what: str, advice: str, *, loader=None) -> Any:
    """Read a file saved with ``torch.save`` without running code from it.

    Parameters
    ----------
    path : str or Path
    name, as_what : str
        What the file should be, for the messages: "Model file" / "a PyTorch model file".
    advice : str
        What to do when it cannot be read, appended to the message.
    loader : callable, optional
        Reads the path (default ``torch.load(weights_only=True)`` on the CPU).

    Raises
    ------
    CheckpointError
        The file is missing or cannot be read; the message names it and says what to do.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{name} not found: {path}")
    try:
        if loader is None:
            return torch.load(path, map_location="cpu", weights_only=True)
        return loader(path)
    except MemoryError:
        raise
    except Exception as err:  # any failure to unpickle means the file is unusable
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"Cannot read {path} as {as_what} ({first_line}). {advice}") from None


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """Read a model file and return its SAM state dict.

    Parameters
    ----------
    path : str or Path
        A ``.pth``/``.pt`` file in one of the layouts listed in the module docstring.

    Returns
    -------
    state_dict : dict of str to Tensor
        Keys as in the published checkpoints (``image_encoder.*``, ``prompt_encoder.*``,
        ``mask_decoder.*``), prefixes removed.
    architecture : str or None
        The architecture recorded in the file (our own files), else None.

    Raises
    ------
    CheckpointError
        When the file is missing, unreadable, damaged, or holds no SAM model.
    """
    state_dict, architecture, _ = read_model_file(path)
    return state_dict, architecture


def read_model_file(
    path: str | Path,
) -> tuple[dict[str, torch.Tensor], str | None, dict[str, torch.Tensor] | None]:
    """:func:`read_checkpoint`, and the instance-segmentation decoder the file also holds.

    Returns
    -------
    state_dict, architecture
        As :func:`read_checkpoint`.
    decoder_state : dict of str to Tensor or None
        The ``"decoder_state"`` of a micro-sam export that has one (layout C), else None.
    """
    path = Path(path).expanduser()
    obj = load_torch_file(
        path,
        "Model file",
        "a PyTorch model file",
        "The file may be incomplete or damaged (delete it and download it again), or it is not "
        "a model checkpoint (expected a SAM, MobileSAM or micro-sam .pth/.pt file).",
        loader=_torch_load,
    )
    state_dict, architecture = _extract_state_dict(obj, path)
    decoder = obj.get("decoder_state")
    if not isinstance(decoder, Mapping) or not decoder:
        return state_dict, architecture, None
    return (
        state_dict,
        architecture,
        {k: v for k, v in decoder.items() if isinstance(v, torch.Tensor)},
    )


def _extract_state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}, not a model state dict. Save models with "
            "torch.save(model.state_dict(), path)."
        )
    architecture = obj.get(ARCH_KEY) if isinstance(obj.get(ARCH_KEY), str) else None
    state = obj.get("model_state", obj)
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"{path}: 'model_state' is a {type(state).__name__}, not a state dict"
        )
    tensors = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        name = key.removeprefix("sam.") if isinstance(key, str) else key
        # weights may be stored in half precision to keep files small; models compute in fp32
        tensors[name] = value.float() if value.is_floating_point() else value
    if not any(k.startswith("image_encoder.") for k in tensors) or not any(
        k.startswith("mask_decoder.") for k in tensors
    ):
        sample = ", ".join(list(map(str, state))[:3]) or "nothing"
        raise CheckpointError(
            f"{path} is a PyTorch file but not a Segment Anything model: it has no "
            f"'image_encoder.*' and 'mask_decoder.*' weights (first keys: {sample}). "
            "Decoder-only files (micro-sam '*_decoder.pt') cannot be loaded on their own: "
            "attach them to their SAM model with load_model(checkpoint, decoder=...)."
        )
    return tensors, architecture


def infer_architecture(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Recognise the architecture of a SAM state dict from its encoder weights.

    Returns
    -------
    str
        ``"vit_b"``, ``"vit_l"``, ``"vit_h"`` or ``"vit_t"``.
    """
    patch = state_dict.get("image_encoder.patch_embed.proj.weight")
    if patch is not None:
        width = int(patch.shape[0])
        if width in _VIT_WIDTHS:
            return _VIT_WIDTHS[width]
        raise CheckpointError(
            f"Unsupported ViT width {width} in image_encoder.patch_embed.proj.weight; "
            f"known widths: {_VIT_WIDTHS}"
        )
    if "image_encoder.patch_embed.seq.0.c.weight" in state_dict:
        return "vit_t"
    raise CheckpointError(
        "Cannot tell the image encoder architecture: the file has neither SAM ViT "
        "(image_encoder.patch_embed.proj.weight) nor MobileSAM TinyViT "
        "(image_encoder.patch_embed.seq.0.c.weight) weights."
    )


def check_state_dict(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str
) -> None:
    """Raise :class:`CheckpointError` unless ``state_dict`` matches ``model`` key by key and
    shape by shape."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong),
        ):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:5])}{more}")
        raise CheckpointError(
            f"{source} does not match the {getattr(model, 'architecture', '?')} architecture: "
            + "; ".join(parts)
        )
