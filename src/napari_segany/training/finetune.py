"""Train the embedded model on a user's own annotations (``napari-segany train``).

What is trained: the whole ``segany_cells`` model (image encoder, prompt encoder, mask decoder
and instance head), with the steps of the synthetic trainer
(:func:`napari_segany.training.train_embedded.batch_step`): annotated objects are prompted and
corrected like an annotator does, and the instance head learns foreground, centre and boundary
maps, only inside the annotated area. Crops come from
:mod:`napari_segany.training.annotations` (training area, augmentation, validation part); the
checkpoint with the best validation score (:mod:`napari_segany.training.validation`) is kept,
the base model's own score included.

:func:`iter_finetune` is a job generator (see :mod:`napari_segany.progress`): closing it cancels
and keeps the best model so far, and a later call with the same output resumes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from napari_segany.models.checkpoint import CheckpointError
from napari_segany.models.sam import SamModel
from napari_segany.models.trained import PROVENANCE_KEY, check_model_name
from napari_segany.progress import run_with_progress
from napari_segany.training.annotations import prepare_annotations, split_validation
from napari_segany.training.common import state_path
from napari_segany.training.run import FinetuneResult, TrainingProgress, TrainingRun

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "TrainingProgress",
    "finetune",
    "iter_finetune",
    "read_provenance",
]

ARCHITECTURE = "segany_cells"


@dataclass
class FinetuneConfig:
    """Settings of a fine-tuning run (all recorded in the checkpoint).

    Attributes
    ----------
    steps : int
        Optimiser steps (each: ``scenes_per_step`` crops, ``objects_per_scene`` prompted objects
        per crop, ``corrective_rounds`` corrections).
    minutes : float
        Time budget; when > 0 the run takes as many of ``steps`` as fit, estimated from the
        first steps (validation included). 0: no budget.
    validation : float
        Share of the annotations held out to choose the checkpoint (0: none, keep the last).
    validate_every : int
        Steps between validations (and saves of the resumable state).
    margin : int
        Pixels added around each annotated object's box to make the training area.
    crop : int
        Side of the training crops (a multiple of 16; at most the model's input size).
    lr, weight_decay, warmup : float, float, int
        AdamW, linear warm-up then cosine decay (as the synthetic trainer).
    scale_range : (float, float)
        Zoom factors of the scale augmentation.
    """

    steps: int = 300
    minutes: float = 0.0
    validation: float = 0.2
    validate_every: int = 25
    margin: int = 8
    crop: int = 256
    scenes_per_step: int = 4
    objects_per_scene: int = 4
    corrective_rounds: int = 1
    head_weight: float = 1.0
    lr: float = 2e-4
    weight_decay: float = 0.01
    warmup: int = 20
    scale_range: tuple[float, float] = (0.8, 1.25)
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.validate_every < 1:
            raise ValueError("steps and validate_every must be at least 1")
        if self.minutes < 0:
            raise ValueError(f"minutes must be ≥ 0 (0: no time budget), got {self.minutes}")
        if self.crop < 16 or self.crop % 16:
            raise ValueError(f"crop must be a multiple of 16, got {self.crop}")
        if not 0 <= self.validation < 1:
            raise ValueError(f"validation must be between 0 and 1, got {self.validation}")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_sha256(model: SamModel) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _base_model(base) -> tuple[SamModel, dict]:
    """A trainable copy of the base model and its provenance (name, sha256)."""
    from napari_segany.models.checkpoint import read_checkpoint
    from napari_segany.models.download import resolve_model_path
    from napari_segany.models.loading import model_from_state_dict
    from napari_segany.models.registry import DEFAULT_MODEL

    if isinstance(base, SamModel):
        model, record = copy.deepcopy(base), {"name": "model given in memory"}
        record["sha256"] = _weights_sha256(model)
    else:
        name = str(base or DEFAULT_MODEL)
        path, info = resolve_model_path(base or DEFAULT_MODEL)
        weights, arch = read_checkpoint(path)
        arch = arch or (info.architecture if info is not None else None)
        if arch != ARCHITECTURE:
            raise ValueError(
                f"{name} is a {arch or 'SAM'} model: training on annotations works on the "
                f"{ARCHITECTURE} architecture only (the embedded model or one trained from it)"
            )
        model = model_from_state_dict(weights, arch, source=str(path))
        record = {"name": name, "sha256": _file_sha256(path)}
    if model.architecture != ARCHITECTURE or not model.has_instance_head:
        raise ValueError(
            f"the base model is a {model.architecture} model"
            + ("" if model.has_instance_head else " without instance head")
            + f": training on annotations needs a {ARCHITECTURE} model with its instance head"
        )
    return model, record


def read_provenance(path: str | Path) -> dict:
    """The provenance record of a model trained by :func:`finetune`.

    Returns
    -------
    dict
        ``architecture``, ``base`` (name, sha256), ``data`` (name, sha256, shape, objects per
        image), ``steps``, ``best_step``, ``settings``, ``validation``, ``date``, ``name``.

    Raises
    ------
    CheckpointError
        The file is not a model trained on annotations by napari-segany.
    """
    from napari_segany.models.checkpoint import read_checkpoint

    read_checkpoint(path)  # a clear error for files that are no model at all
    payload = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or not isinstance(payload.get(PROVENANCE_KEY), str):
        raise CheckpointError(
            f"{path} is a model, but not one trained on annotations by napari-segany "
            "(it has no provenance record)"
        )
    return json.loads(payload[PROVENANCE_KEY])


def _check_output(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() not in (".pt", ".pth"):
        raise ValueError(f"the output {out} must end in .pt (it is a PyTorch checkpoint)")
    if out.is_dir():
        raise ValueError(f"the output {out} is a folder: give a file name ending in .pt")
    if out.exists() and not overwrite and not state_path(out).exists():
        raise ValueError(
            f"{out} exists and holds no unfinished run to resume: choose another output, or "
            "overwrite it (overwrite=True, --overwrite)"
        )


def iter_finetune(
    images: Sequence,
    labels: Sequence,
    out: str | Path,
    *,
    base: str | Path | SamModel | None = None,
    name: str | None = None,
    config: FinetuneConfig | None = None,
    channel_axis: int | None = None,
    areas: Sequence | None = None,
    overwrite: bool = False,
    register: bool = True,
    **options,
) -> Generator[TrainingProgress, None, FinetuneResult]:
    """Train a ``segany_cells`` model on annotated images; a job generator.

    Parameters
    ----------
    images : sequence
        Images: arrays ((H, W) grayscale, (H, W, 3|4) RGB(A), or multichannel with
        ``channel_axis``; 8/16-bit, float, any number of channels), files (TIFF, zarr,
        OME-Zarr, ``.npy``) or :class:`~napari_segany.image.source.ImageSource`. A single array
        or path is one image.
    labels : sequence
        One instance label image (H, W) per image (integer, 0 background), in the same order.
        Labels may cover part of an image: training learns inside the annotated area only
        (the objects' boxes grown by ``margin``; or give ``areas``).
    out : str or Path
        The checkpoint to write (``.pt``); it always holds the best model so far. Its
        resumable state is kept beside it (``<out>.state``) until the run ends.
    base : str, Path or SamModel, optional
        Model to start from: a registry or trained model name, a file, or a loaded model (not
        changed). Default: the embedded ``segany_cells``.
    name : str, optional
        Name to register the model under (default: the stem of ``out``).
    config : FinetuneConfig, optional
        Settings; or give them as keyword ``options`` (``steps=100, validation=0.25``).
    channel_axis : int, optional
        Axis of channels of multichannel images.
    areas : sequence of ndarray (H, W) bool, optional
        Training area of each image, instead of the one derived from its labels.
    overwrite : bool
        Replace an existing ``out`` that holds no unfinished run.
    register : bool
        Copy the model into the trained-model folder under ``name`` (see
        :mod:`napari_segany.models.trained`).

    Yields
    ------
    TrainingProgress
        After each step. Closing the generator stops after the current step; ``out`` keeps
        the best model so far and a later call with the same arguments resumes.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    ValueError
        Bad input, before anything is written: see
        :func:`~napari_segany.training.annotations.prepare_annotations`; a base model that is
        not a ``segany_cells`` model; an output that exists; a resumable state made with other
        data or another base.
    """
    from napari_segany.models.loading import resolve_device

    if config is not None and options:
        raise ValueError("give either config or keyword options, not both")
    cfg = config or FinetuneConfig(**options)
    if isinstance(images, str | Path) or hasattr(images, "shape") or hasattr(images, "read_all"):
        images, labels = [images], [labels]
        areas = None if areas is None else [areas]
    out = Path(out).expanduser()
    if register:
        from napari_segany.models.registry import MODELS

        name = check_model_name(name if name is not None else out.stem, reserved=MODELS)
    else:
        name = None
    _check_output(out, overwrite)
    data = prepare_annotations(
        images, labels, channel_axis=channel_axis, areas=areas, margin=cfg.margin
    )
    parts = split_validation(data, cfg.validation, cfg.seed)
    model, base_record = _base_model(base)
    device = resolve_device(cfg.device)
    cfg = replace(cfg, crop=min(cfg.crop, model.image_size))
    record = {
        "format": 1,
        "architecture": model.architecture,
        "base": base_record,
        "data": [
            {
                "name": d.name,
                "sha256": d.sha256,
                "shape": list(d.labels.shape),
                "objects": int(len(np.unique(d.labels)) - 1),
            }
            for d in data
        ],
        "settings": {**asdict(cfg), "scale_range": list(cfg.scale_range)},
        "name": name,
    }
    run = TrainingRun(model.to(device).train(), cfg, out, record, name, device)
    run.resume()  # raises before writing when the state belongs to another run
    return (yield from run.train(data, parts))


def finetune(
    images: Sequence,
    labels: Sequence,
    out: str | Path,
    *,
    progress: bool = False,
    **kwargs,
) -> FinetuneResult:
    """Train a ``segany_cells`` model on annotated images and save the best checkpoint.

    Takes the arguments of :func:`iter_finetune` and runs it to the end (``progress``: a tqdm
    bar). Interrupting it (Ctrl-C) leaves the best model so far at ``out``, and calling it
    again with the same arguments resumes.

    Examples
    --------
    >>> from napari_segany.training import finetune
    >>> result = finetune(image, labels, "my_nuclei.pt")  # doctest: +SKIP
    >>> from napari_segany import load_model
    >>> model = load_model("my_nuclei")  # doctest: +SKIP
    """
    job = iter_finetune(images, labels, out, **kwargs)
    return run_with_progress(job, show=progress, description="training")
