"""Train the instance head of the embedded model on synthetic scenes, encoder frozen.

Run ``python -m napari_segany.training.train_instance_head --help``. The promptable part of the
model (image encoder, prompt encoder, mask decoder) is loaded from ``--base`` and left unchanged;
only :class:`~napari_segany.models.instance_head.InstanceHead` learns, so interactive results are
identical before and after. Seeded; uses a GPU when present.

Loss per scene: :func:`~napari_segany.training.losses.head_loss` (foreground, centre and
boundary maps) at the image's full resolution (the head's stride-4 logits are upsampled
bilinearly, as at inference).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from napari_segany.models.architectures import build_model
from napari_segany.models.checkpoint import read_checkpoint
from napari_segany.models.loading import resolve_device
from napari_segany.models.sam import SamModel
from napari_segany.training.common import (
    export_weights,
    learning_rate_at,
    load_initial_weights,
    parse_config,
    stop_step,
)
from napari_segany.training.data import draw_scene, model_input
from napari_segany.training.losses import head_loss

__all__ = ["HeadConfig", "main", "model_with_head", "train"]


@dataclass
class HeadConfig:
    """Settings of an instance-head training run (recorded in the checkpoint)."""

    base: str = ""
    steps: int = 2000
    crop: int = 256
    scenes_per_step: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 1
    device: str = "auto"
    out: str = "segany_cells_head.pt"
    log_every: int = 50
    save_every: int = 200
    dense_fraction: float = 0.0  # share of scenes drawn from ``dense_preset``
    dense_preset: str = "DENSE_CLUSTERS_ANY_SIZE"  # a preset of napari_segany.synthetic.presets
    stop_at: int = 0  # stop after this step (0: at ``steps``); the schedule still spans ``steps``


def model_with_head(base_weights: str | Path, device) -> SamModel:
    """The embedded architecture with the weights of a file; the instance head starts from the
    file's head where it has one (new output maps, and a missing head, start at random)."""
    model = build_model("segany_cells", seed=0)
    state, _ = read_checkpoint(Path(base_weights))
    try:
        load_initial_weights(model, state, missing_ok="instance_head.")
    except ValueError as err:
        raise ValueError(f"{base_weights} is not a segany_cells checkpoint: {err}") from None
    return model.to(device)


def train(cfg: HeadConfig) -> Path:
    """Train the head and export the whole model (float16) to ``cfg.out``."""
    stop = stop_step(cfg)  # a bad --stop-at fails before any work
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = model_with_head(cfg.base, device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    head = model.instance_head.train()
    for p in head.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    t0, recent = time.perf_counter(), []
    for step in range(stop):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, cfg)
        seeds = [
            cfg.seed * 10_000_000 + step * cfg.scenes_per_step + i
            for i in range(cfg.scenes_per_step)
        ]
        scenes = [
            draw_scene(
                s, cfg.crop, dense_fraction=cfg.dense_fraction, dense_preset=cfg.dense_preset
            )
            for s in seeds
        ]
        labels = torch.as_tensor(np.stack([s.labels for s in scenes]).astype(np.int64))
        with torch.no_grad():
            embedding = model.image_encoder(model_input(model, scenes))
        logits = head(embedding)
        logits = F.interpolate(logits, size=(cfg.crop, cfg.crop), mode="bilinear")
        loss = head_loss(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recent.append(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == stop:
            rate = (time.perf_counter() - t0) / len(recent)
            print(
                f"step {step + 1}/{cfg.steps}  loss {np.mean(recent):.4f}  {rate:.2f} s/step",
                flush=True,
            )
            recent, t0 = [], time.perf_counter()
        if (step + 1) % cfg.save_every == 0 and step + 1 < stop:
            head.eval()
            export_weights(model, Path(cfg.out), cfg, step + 1)
            head.train()
    head.eval()
    out = Path(cfg.out)
    export_weights(model, out, cfg, stop)
    return out


def main(argv=None) -> None:
    """Run ``python -m napari_segany.training.train_instance_head``: one option per field."""
    cfg = parse_config(HeadConfig, __doc__.splitlines()[0], argv)
    if not cfg.base:
        from napari_segany.models.download import resolve_model_path

        cfg = replace(cfg, base=str(resolve_model_path("segany_cells")[0]))  # the shipped model
    path = train(cfg)
    print(f"weights written to {path}")


if __name__ == "__main__":
    main()
