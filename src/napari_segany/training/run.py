"""One fine-tuning run: the loop, validation, the best checkpoint, the resumable state.

Driven by :func:`napari_segany.training.finetune.iter_finetune`, which checks the inputs and
builds the run; this module writes the files.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from napari_segany.models.checkpoint import ARCH_KEY
from napari_segany.models.trained import PROVENANCE_KEY, register_trained_model
from napari_segany.progress import Progress
from napari_segany.training.annotations import sample_batch
from napari_segany.training.common import export_weights, learning_rate_at, state_path
from napari_segany.training.train_embedded import batch_step
from napari_segany.training.validation import ValidationScore, evaluate

__all__ = ["FinetuneResult", "TrainingProgress", "TrainingRun"]

#: Steps timed before a time budget (``minutes``) fixes the number of steps.
_TIMED_STEPS = 3


@dataclass(frozen=True)
class TrainingProgress(Progress):
    """A :class:`~napari_segany.progress.Progress` of training, with its numbers.

    Attributes
    ----------
    loss : float
        Loss of the last step (prompt + instance head); NaN before the first step.
    score : ValidationScore or None
        The validation done at this step, if any.
    best : ValidationScore or None
        The best validation so far (that of the model at ``out``).
    best_step : int
        The step of the model at ``out`` (0: the base model).
    """

    loss: float = math.nan
    score: ValidationScore | None = None
    best: ValidationScore | None = None
    best_step: int = 0


@dataclass
class FinetuneResult:
    """What :func:`iter_finetune` produced.

    Attributes
    ----------
    path : Path
        The checkpoint (the best model).
    name : str or None
        Its name among the trained models (``load_model(name)``), None if not registered.
    steps : int
        Steps done.
    best_step : int
        Step of the saved model (0: no step beat the base model).
    base_score, score : ValidationScore or None
        Validation of the base model and of the saved one (None without validation).
    history : list of dict
        ``step`` and scores of every validation.
    """

    path: Path
    name: str | None
    steps: int
    best_step: int
    base_score: ValidationScore | None
    score: ValidationScore | None
    history: list[dict] = field(default_factory=list)


class TrainingRun:
    """The state of one fine-tuning run: model, optimiser, best score, files.

    Parameters
    ----------
    model : SamModel
        Trained in place, on ``device``.
    cfg : FinetuneConfig
    out : Path
        The checkpoint; ``<out>.state`` holds what resuming needs.
    record : dict
        Provenance known before training (architecture, base, data, settings, name).
    name : str or None
        Name to register the model under, None not to.
    """

    def __init__(self, model, cfg: Any, out: Path, record: dict, name, device):
        self.model, self.cfg, self.out, self.record, self.name = model, cfg, out, record, name
        self.device = device
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.step, self.total = 0, cfg.steps
        self.best: ValidationScore | None = None
        self.base_score: ValidationScore | None = None
        self.best_step, self.history = 0, []
        self.state_file = state_path(out)

    def _identity(self) -> dict:
        return {
            "base": self.record["base"]["sha256"],
            "data": [d["sha256"] for d in self.record["data"]],
        }

    def resume(self) -> None:
        if not self.state_file.exists():
            return
        state = torch.load(self.state_file, map_location=self.device, weights_only=False)
        if state.get("identity") != self._identity():
            raise ValueError(
                f"{self.state_file} is an unfinished run on other images or from another base "
                "model: choose another output, or delete that file to start again"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.total, self.best_step = state["step"], state["total"], state["best_step"]
        self.history = state["history"]
        self.best = ValidationScore(**state["best"]) if state["best"] else None
        self.base_score = ValidationScore(**state["base"]) if state["base"] else None

    def _save_state(self) -> None:
        payload = {
            "identity": self._identity(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "total": self.total,
            "best_step": self.best_step,
            "history": self.history,
            "best": None if self.best is None else asdict(self.best),
            "base": None if self.base_score is None else asdict(self.base_score),
        }
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(self.state_file)

    def _provenance(self) -> dict:
        def scores(s):
            return None if s is None else s.as_dict()

        return {
            **self.record,
            "steps": self.step,
            "best_step": self.best_step,
            "validation": {
                "fraction": self.cfg.validation,
                **(scores(self.best) or {}),
                "base": scores(self.base_score),
            },
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _finish(self) -> None:
        """Record the steps of the whole run in the saved model (which may be an earlier one)."""
        payload = torch.load(self.out, map_location="cpu", weights_only=True)
        provenance = self._provenance()
        payload[PROVENANCE_KEY] = json.dumps(provenance)
        tmp = self.out.with_name(self.out.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(self.out)
        if self.name is not None:
            register_trained_model(self.out, self.name, provenance)
        self.state_file.unlink(missing_ok=True)

    def _export(self) -> None:
        provenance = self._provenance()
        self.model.eval()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        export_weights(
            self.model,
            self.out,
            self.cfg,
            self.step,
            extra={ARCH_KEY: self.model.architecture, PROVENANCE_KEY: json.dumps(provenance)},
        )
        self.model.train()
        if self.name is not None:
            register_trained_model(self.out, self.name, provenance)

    def _validate(self, data, parts) -> ValidationScore | None:
        """Score the current model; save it when it is the best so far (or without
        validation, always)."""
        score = evaluate(self.model, data, parts) if parts else None
        self.model.train()
        if score is not None:
            self.history.append({"step": self.step, **score.as_dict()})
            if self.step == 0:
                self.base_score = score
        if score is None or self.best is None or score.score > self.best.score:
            self.best, self.best_step = score, self.step
            self._export()
        self._save_state()
        return score

    def _report(self, loss: float, score) -> TrainingProgress:
        parts = [f"loss {loss:.3f}"] if math.isfinite(loss) else []
        if self.best is not None:
            parts.append(f"val {self.best.score:.3f} (step {self.best_step})")
        return TrainingProgress(
            self.step, self.total, "  ".join(parts), loss, score, self.best, self.best_step
        )

    def _fit_budget(self, started: float, validation_s: float) -> None:
        """Fix the number of steps that fit the time budget from the steps timed so far."""
        per_step = (time.perf_counter() - started) / _TIMED_STEPS
        per_step += validation_s / self.cfg.validate_every
        left = self.cfg.minutes * 60 - (time.perf_counter() - self.t0)
        self.total = max(self.step + 1, min(self.total, self.step + int(left / per_step)))

    def train(self, data, parts) -> Generator[TrainingProgress, None, FinetuneResult]:
        cfg = self.cfg
        self.t0 = time.perf_counter()
        validation_s = 0.0
        if self.step == 0 and not self.history:
            self._validate(data, parts)
            validation_s = time.perf_counter() - self.t0
        yield self._report(math.nan, self.base_score)
        rng = np.random.default_rng([cfg.seed, self.step])
        first, started, loss = self.step, time.perf_counter(), math.nan
        updating = False
        try:
            while self.step < self.total:
                score = None
                schedule = SimpleNamespace(lr=cfg.lr, warmup=cfg.warmup, steps=self.total)
                for group in self.optimizer.param_groups:
                    group["lr"] = learning_rate_at(self.step, schedule)
                self.optimizer.zero_grad(set_to_none=True)
                batch = sample_batch(
                    data,
                    cfg.crop,
                    cfg.scenes_per_step,
                    cfg.objects_per_scene,
                    rng,
                    cfg.scale_range,
                )
                metrics = batch_step(
                    self.model,
                    batch,
                    rng,
                    self.device,
                    corrective_rounds=cfg.corrective_rounds,
                    head_weight=cfg.head_weight,
                )
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                updating = True  # an interrupt now would leave a half-applied step
                self.optimizer.step()
                self.step += 1
                updating = False
                loss = metrics["loss"] + metrics["head"]
                if cfg.minutes > 0 and self.step == first + _TIMED_STEPS:
                    self._fit_budget(started, validation_s)
                if cfg.minutes > 0 and time.perf_counter() - self.t0 > cfg.minutes * 60:
                    self.total = self.step  # over budget: validate and stop now
                if self.step % cfg.validate_every == 0 or self.step == self.total:
                    score = self._validate(data, parts)
                yield self._report(loss, score)
        finally:
            if self.step % cfg.validate_every and self.step < self.total and not updating:
                # stopped between validations: keep the steps for resuming (without
                # validation the latest model is the result)
                if not parts:
                    self._validate(data, parts)
                else:
                    self._save_state()
        self._finish()
        return FinetuneResult(
            self.out,
            self.name,
            self.step,
            self.best_step,
            self.base_score,
            self.best,
            self.history,
        )
