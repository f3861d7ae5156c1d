"""Train the embedded cell model (``segany_cells``) on synthetic microscopy only.

Run ``python -m napari_segany.training.train_embedded --help``. Seeded and resumable; uses a GPU
when one is present and runs on 2 CPU cores otherwise.

How one step works
------------------
* A few synthetic scenes (crops of ``--crop`` pixels, every modality of
  :mod:`napari_segany.synthetic`) go through the same 8-bit conversion as images at inference
  (:func:`napari_segany.image.prep.to_rgb_uint8`) and through the image encoder once.
* Several objects per scene are prompted like annotators do (one click near the centre, a few
  clicks, a jittered box, box + click), then corrected with clicks on the largest mistake while
  the previous logits are fed back as mask prompt.
* The crop is placed at a random position of SAM's 1024² input frame: the decoder sees the
  matching window of the frame's positional encoding and prompts in frame coordinates, so a model
  trained on small crops works on full 1024² inputs.
* Loss per round: 20·focal + dice of the best candidate, plus MSE of the predicted IoU.
* Models with an instance head also learn foreground, centre and boundary maps of every scene
  (:func:`napari_segany.training.losses.head_loss`, weight ``head_weight``), so the image
  encoder serves prompts and automatic segmentation alike.

The recipe of the shipped weights is in ``docs/training.md``, their history in
``docs/history.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from napari_segany.models.architectures import build_model
from napari_segany.models.loading import resolve_device
from napari_segany.models.sam import SamModel
from napari_segany.training import prompt_sampling as ps
from napari_segany.training.common import (
    export_weights,
    learning_rate_at,
    load_initial_weights,
    load_state,
    parse_config,
    save_state,
    state_path,
    stop_step,
)
from napari_segany.training.data import Scene, draw_scene, model_input, pad_like_inference
from napari_segany.training.losses import head_loss, mask_iou, prompt_loss

__all__ = [
    "SceneBatch",
    "TrainConfig",
    "batch_step",
    "export_weights",
    "main",
    "train",
    "training_step",
]

ARCHITECTURE = "segany_cells"
PROMPT_KINDS = ("point", "points", "box", "box+point")
PROMPT_KIND_WEIGHTS = (0.4, 0.2, 0.25, 0.15)


@dataclass
class TrainConfig:
    """Settings of a training run (all recorded in the checkpoint)."""

    steps: int = 6000
    crop: int = 256
    scenes_per_step: int = 4
    objects_per_scene: int = 4
    corrective_rounds: int = 2
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 200
    seed: int = 0
    device: str = "auto"
    out: str = "segany_cells.pt"
    log_every: int = 50
    save_every: int = 500
    head_weight: float = 1.0
    pad_probability: float = 0.0
    max_pad: int = 96
    init: str = ""
    dense_fraction: float = 0.0  # share of scenes drawn from ``dense_preset``
    dense_preset: str = "DENSE_CLUSTERS_ANY_SIZE"  # a preset of napari_segany.synthetic.presets
    stop_at: int = 0  # stop after this step (0: at ``steps``); the schedule still spans ``steps``


@dataclass
class PromptSet:
    """Prompts of one decoding round for B objects, in crop (row, col) pixels."""

    points: np.ndarray | None  # (B, N, 2)
    labels: np.ndarray | None  # (B, N); 1, 0, or -1 for "no point"
    boxes: np.ndarray | None  # (B, 4) as (row0, col0, row1, col1)


def first_prompts(kind: str, masks, labels_per_object, rng) -> PromptSet:
    """Round-0 prompts of one kind for every object (same token count for all)."""
    n_extra = int(rng.integers(1, 4)) if kind == "points" else 0
    points, labels, boxes = [], [], []
    for mask, labels_img in zip(masks, labels_per_object, strict=True):
        pts, lab = [], []
        if kind in ("point", "points", "box+point"):
            pts.append(ps.positive_point(mask, rng))
            lab.append(1)
        for _ in range(n_extra):
            negative = rng.random() < 0.5
            point = ps.negative_point(mask, labels_img, rng) if negative else None
            if point is None:
                point, label = ps.positive_point(mask, rng), 1
            else:
                label = 0
            pts.append(point)
            lab.append(label)
        points.append(pts)
        labels.append(lab)
        if kind.startswith("box"):
            boxes.append(ps.jittered_box(mask, rng))
    has_points = kind != "box"
    return PromptSet(
        np.array(points, dtype=np.float64) if has_points else None,
        np.array(labels, dtype=np.int64) if has_points else None,
        np.array(boxes) if boxes else None,
    )


def add_corrections(prompts: PromptSet, masks, predicted, rng) -> PromptSet:
    """Append one corrective click per object (label -1, i.e. no click, if it is perfect)."""
    new_points, new_labels = [], []
    for truth, pred in zip(masks, predicted, strict=True):
        found = ps.corrective_point(truth, pred, rng)
        if found is None:
            new_points.append([0.0, 0.0])
            new_labels.append(-1)
        else:
            new_points.append(found[0])
            new_labels.append(found[1])
    add_p = np.array(new_points)[:, None]
    add_l = np.array(new_labels)[:, None]
    if prompts.points is None:
        return PromptSet(add_p, add_l, prompts.boxes)
    return PromptSet(
        np.concatenate([prompts.points, add_p], 1),
        np.concatenate([prompts.labels, add_l], 1),
        prompts.boxes,
    )


def _to_frame(prompts: PromptSet, offsets: np.ndarray, device) -> tuple:
    """Crop (row, col) → SAM (x, y) in the 1024 frame, shifted by each crop's offset (pixels)."""
    coords = labels = boxes = None
    if prompts.points is not None:
        xy = prompts.points[..., ::-1] + offsets[:, None, ::-1]
        coords = torch.as_tensor(xy.copy(), dtype=torch.float32, device=device)
        labels = torch.as_tensor(prompts.labels, device=device)
    if prompts.boxes is not None:
        corners = prompts.boxes.reshape(-1, 2, 2)[..., ::-1] + offsets[:, None, ::-1]
        boxes = torch.as_tensor(corners.reshape(-1, 4).copy(), dtype=torch.float32, device=device)
    return coords, labels, boxes


def _sample_objects(scene: Scene, count: int, rng) -> list[np.ndarray]:
    ids = np.unique(scene.labels)
    ids = ids[ids > 0]
    if len(ids) == 0:
        return []
    chosen = rng.choice(ids, size=min(count, len(ids)), replace=False)
    return [scene.labels == i for i in chosen]


@dataclass
class SceneBatch:
    """What one training step learns from: square scenes of one size and the objects to prompt.

    Attributes
    ----------
    scenes : list of Scene
        S × S crops (RGB uint8, labels, padding).
    masks : list of ndarray, shape (S, S), bool
        The objects to prompt, each one instance of its scene.
    scene_of : ndarray, shape (len(masks),), int
        Index into ``scenes`` of each object.
    valid : ndarray, shape (len(scenes), S, S), bool, optional
        Pixels whose labels the instance head learns from (None: every pixel). Pixels outside
        are neither object nor background, e.g. beyond the region a user annotated.
    """

    scenes: list[Scene]
    masks: list[np.ndarray]
    scene_of: np.ndarray
    valid: np.ndarray | None = None


def batch_step(
    model: SamModel,
    batch: SceneBatch,
    rng,
    device,
    *,
    corrective_rounds: int,
    head_weight: float,
) -> dict:
    """Forward and backward of one batch of scenes: prompted masks and instance-head maps.

    Each scene is placed at a random position of the model's input frame (drawn from ``rng``);
    its objects are prompted (prompt kind drawn from ``rng``) and corrected over
    ``corrective_rounds`` rounds. Gradients accumulate in ``model``'s parameters.

    Returns
    -------
    dict
        ``loss`` (prompt loss), ``head`` (weighted head loss), ``iou_first``/``iou_last`` (mean
        IoU of the first/last round) and the prompt ``kind``.
    """
    scenes, masks, scene_of = batch.scenes, batch.masks, batch.scene_of
    size = scenes[0].rgb.shape[0]
    grid = size // 16
    frame_grid = model.image_size // 16
    offsets_tokens = rng.integers(0, frame_grid - grid + 1, size=(len(scenes), 2))
    offsets = (offsets_tokens * 16).astype(np.float64)[scene_of]
    origin_xy = torch.as_tensor(offsets[:, ::-1].copy(), dtype=torch.float32, device=device)

    scene_embeddings = model.image_encoder(model_input(model, scenes))
    head_term = torch.zeros((), device=device)
    if model.has_instance_head and head_weight > 0:
        maps = F.interpolate(
            model.instance_head(scene_embeddings), size=(size, size), mode="bilinear"
        )
        labels = torch.as_tensor(np.stack([s.labels for s in scenes]).astype(np.int64))
        valid = None if batch.valid is None else torch.as_tensor(batch.valid, device=device)
        head_term = head_weight * head_loss(maps, labels, valid)
    embeddings = scene_embeddings[scene_of]  # (B, 256, grid, grid)
    full_pe = model.prompt_encoder.get_dense_pe()
    image_pe = torch.stack(
        [full_pe[0, :, r : r + grid, c : c + grid] for r, c in offsets_tokens[scene_of]]
    )
    target = torch.as_tensor(np.stack(masks), dtype=torch.float32, device=device)

    kind = PROMPT_KINDS[rng.choice(len(PROMPT_KINDS), p=PROMPT_KIND_WEIGHTS)]
    prompts = first_prompts(kind, masks, [scenes[j].labels for j in scene_of], rng)
    mask_input = None
    total, ious = 0.0, []
    for round_ in range(corrective_rounds + 1):
        multimask = round_ == 0 and kind == "point"
        coords, labels, boxes = _to_frame(prompts, offsets, device)
        sparse, dense = model.prompt_encoder(
            (coords, labels) if coords is not None else None,
            boxes,
            mask_input,
            (grid, grid),
            origin_xy,
        )
        low_res, iou_pred = model.mask_decoder(embeddings, image_pe, sparse, dense, multimask)
        logits = F.interpolate(low_res, size=(size, size), mode="bilinear", align_corners=False)
        loss, best = prompt_loss(logits, iou_pred, target)
        total = total + loss
        chosen = logits[torch.arange(len(best)), best]
        predicted = chosen.detach() > 0
        ious.append(mask_iou(predicted, target > 0.5).mean().item())
        if round_ < corrective_rounds:
            prompts = add_corrections(prompts, masks, predicted.cpu().numpy(), rng)
            mask_input = low_res[torch.arange(len(best)), best][:, None].detach()
    loss = total / (corrective_rounds + 1)
    (loss + head_term).backward()
    return {
        "loss": loss.item(),
        "head": head_term.item(),
        "iou_first": ious[0],
        "iou_last": ious[-1],
        "kind": kind,
    }


def training_step(model: SamModel, cfg: TrainConfig, step: int, rng, device) -> dict:
    """Forward and backward for one step on synthetic scenes; returns metrics."""
    size = cfg.crop
    scenes, masks, scene_of = [], [], []
    seed_base = cfg.seed * 10_000_000 + step * cfg.scenes_per_step
    i = 0
    while len(scenes) < cfg.scenes_per_step:
        scene = pad_like_inference(
            draw_scene(
                seed_base + i,
                size,
                dense_fraction=cfg.dense_fraction,
                dense_preset=cfg.dense_preset,
            ),
            rng,
            cfg.pad_probability,
            cfg.max_pad,
        )
        i += 1
        objects = _sample_objects(scene, cfg.objects_per_scene, rng)
        if not objects:
            continue
        scene_of += [len(scenes)] * len(objects)
        masks += objects
        scenes.append(scene)
    return batch_step(
        model,
        SceneBatch(scenes, masks, np.array(scene_of)),
        rng,
        device,
        corrective_rounds=cfg.corrective_rounds,
        head_weight=cfg.head_weight,
    )


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; returns the path of the exported weights."""
    stop = stop_step(cfg)  # a bad --stop-at fails before any work
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    state_file = state_path(out)
    model = build_model(ARCHITECTURE, seed=cfg.seed).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = 0
    if cfg.init and not state_file.exists():
        from napari_segany.models.checkpoint import read_checkpoint

        weights, _ = read_checkpoint(Path(cfg.init))
        for name in load_initial_weights(model, weights):
            print(f"{name}: new output channels keep their random initialisation")
        print(f"initialised from {cfg.init}")
    if state_file.exists():
        start = load_state(state_file, model, optimizer, device)
        print(f"resuming from step {start}")
    rng = np.random.default_rng([cfg.seed, start])
    t0, recent = time.perf_counter(), []
    for step in range(start, stop):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, cfg)
        optimizer.zero_grad(set_to_none=True)
        metrics = training_step(model, cfg, step, rng, device)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        recent.append(metrics)
        if (step + 1) % cfg.log_every == 0 or step + 1 == stop:
            keys = ("loss", "head", "iou_first", "iou_last")
            mean = {k: np.mean([m[k] for m in recent]) for k in keys}
            rate = (time.perf_counter() - t0) / len(recent)
            print(
                f"step {step + 1}/{cfg.steps}  loss {mean['loss']:.4f}  head {mean['head']:.4f}  "
                "IoU first "
                f"{mean['iou_first']:.3f} last {mean['iou_last']:.3f}  {rate:.2f} s/step",
                flush=True,
            )
            recent, t0 = [], time.perf_counter()
        if (step + 1) % cfg.save_every == 0 or step + 1 == stop:
            model.eval()
            export_weights(model, out, cfg, step + 1)
            model.train()
            save_state(state_file, model, optimizer, step + 1)
    return out


def main(argv=None) -> None:
    """Run ``python -m napari_segany.training.train_embedded``: one option per config field."""
    path = train(parse_config(TrainConfig, __doc__.splitlines()[0], argv))
    print(f"weights written to {path}")


if __name__ == "__main__":
    main()
