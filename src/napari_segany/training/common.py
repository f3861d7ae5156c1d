"""What every training run shares: the learning-rate schedule, ``--stop-at``, checkpoints and
command-line options built from a config dataclass."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch

from napari_segany.models.checkpoint import ARCH_KEY
from napari_segany.models.sam import SamModel

Config = TypeVar("Config")


def learning_rate_at(step: int, cfg: Any) -> float:
    """Linear warm-up over ``cfg.warmup`` steps, then cosine decay to 0 at ``cfg.steps``.

    ``cfg`` is any training config with ``lr``, ``warmup`` and ``steps``.
    """
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def stop_step(cfg: Any) -> int:
    """The step a run ends at: ``cfg.stop_at`` when set (≤ ``cfg.steps``), else ``cfg.steps``.

    A run stopped early this way equals an interrupted run of ``cfg.steps`` steps (the schedule
    still spans ``cfg.steps``), so recipes that were stopped by hand can be rerun exactly.

    Raises
    ------
    ValueError
        ``cfg.stop_at`` is negative or beyond ``cfg.steps``.
    """
    if cfg.stop_at < 0 or cfg.stop_at > cfg.steps:
        raise ValueError(f"stop_at must be between 0 and steps ({cfg.steps}), got {cfg.stop_at}")
    return cfg.stop_at or cfg.steps


def _save_atomically(payload: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def export_weights(
    model: SamModel, path: Path, cfg: Any, step: int, extra: dict[str, str] | None = None
) -> None:
    """Write the inference checkpoint (float16 weights), via a temporary file and a rename.

    The checkpoint records the model's architecture, and ``cfg`` (a dataclass) with ``step``;
    ``extra`` entries (strings, e.g. JSON records) are added as they are.
    """
    state = {
        k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu()
        for k, v in model.state_dict().items()
    }
    payload = {
        ARCH_KEY: model.architecture,
        "model_state": state,
        "training": json.dumps({"config": asdict(cfg), "step": step}),
        **(extra or {}),
    }
    _save_atomically(payload, Path(path))


def state_path(out: str | Path) -> Path:
    """Where the resumable training state of a run exporting ``out`` is kept."""
    out = Path(out)
    return out.with_name(out.name + ".state")


def save_state(path: Path, model: SamModel, optimizer: torch.optim.Optimizer, step: int) -> None:
    """Save what resuming needs (float32 weights, optimizer state, steps done), atomically."""
    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
    _save_atomically(payload, path)


def load_state(path: Path, model: SamModel, optimizer: torch.optim.Optimizer, device) -> int:
    """Restore a state saved by :func:`save_state` into ``model`` and ``optimizer``.

    Returns
    -------
    int
        The number of steps done.
    """
    state = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["step"]


def load_initial_weights(
    model: SamModel, weights: dict[str, torch.Tensor], missing_ok: str | None = None
) -> list[str]:
    """Load a checkpoint's weights into ``model`` to continue training from them.

    Exactly like ``load_state_dict(strict=True)``, except that a tensor with fewer output
    channels (first axis) than the model's takes the first channels, the rest keeping the
    model's initialisation: a head that predicts a new map starts from the old head.

    Parameters
    ----------
    model : SamModel
    weights : dict
        Parameter name → tensor, e.g. from :func:`napari_segany.models.checkpoint.read_checkpoint`.
    missing_ok : str, optional
        Parameters whose names start with this may be missing from ``weights``.

    Returns
    -------
    list of str
        Names of the parameters that got new output channels.

    Raises
    ------
    ValueError
        Parameters are missing or unexpected, or shapes differ otherwise.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in weights and not (missing_ok and k.startswith(missing_ok))]
    unexpected = [k for k in weights if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"the weights do not fit the {model.architecture} model: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    grown, state = [], {}
    for name, tensor in weights.items():
        target = own[name]
        if tensor.shape == target.shape:
            state[name] = tensor
        elif tensor.shape[1:] == target.shape[1:] and tensor.shape[0] < target.shape[0]:
            state[name] = torch.cat([tensor.to(target.dtype), target[tensor.shape[0] :]])
            grown.append(name)
        else:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)} in the weights, "
                f"{tuple(target.shape)} in the model"
            )
    model.load_state_dict(state, strict=missing_ok is None)
    return grown


def parse_config(
    config_class: type[Config], description: str, argv: Sequence[str] | None = None
) -> Config:
    """Build a config from the command line: one ``--option`` per field, plus ``--threads``.

    Each field ``some_name`` becomes ``--some-name`` with the field's default and type;
    ``--threads N`` sets torch's CPU threads and is not part of the config.
    """
    parser = argparse.ArgumentParser(description=description)
    for name, value in asdict(config_class()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return config_class(**{k: v for k, v in vars(args).items() if k != "threads"})
