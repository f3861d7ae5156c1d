"""What "Train on my annotations" trains on, and the training job its worker runs.

No Qt here. On the main thread, :func:`training_pair` checks a Labels layer against the image
plane it annotates and copies its labels (the user may go on committing objects meanwhile);
the image plane stays lazy and is read in the worker. :class:`TrainingJob` runs
:func:`napari_segany.training.iter_finetune` with the model registered by name in the user's
model folder (``<model cache>/trained/<name>.pt``), and says what came of it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_segany._qt.image_source import Plane, current_plane
from napari_segany.image.channels import MEAN
from napari_segany.models.registry import DEFAULT_MODEL, MODELS
from napari_segany.models.trained import trained_dir

__all__ = ["TrainingJob", "TrainingPair", "default_model_name", "training_base", "training_pair"]

#: suffix of the default name of a trained model ("<image>_cells")
NAME_SUFFIX = "_cells"


@dataclass(frozen=True)
class TrainingPair:
    """One annotated image plane.

    Attributes
    ----------
    name : str
        The image layer's name (recorded in the model's provenance).
    plane : Plane
        The image plane (lazy; read in the worker).
    labels : ndarray, shape (H, W), int
        A copy of the committed objects on that plane.
    objects : int
        Objects in ``labels``.
    """

    name: str
    plane: Plane
    labels: np.ndarray
    objects: int

    def source(self):
        """The plane as an :class:`~napari_segany.image.source.ImageSource` (reads nothing);
        an RGB channel chosen in the annotator is trained on alone, as it is segmented."""
        from napari_segany.image.source import ImageSource

        data, channel = self.plane.data, self.plane.channel
        if isinstance(channel, str) and channel == MEAN:
            data = np.asarray(data)[..., :3].mean(axis=-1, dtype=np.float32)
        elif channel is not None:
            data = data[..., channel]
        return ImageSource(data, self.plane.channel_axis, name=self.name)


def training_pair(labels_layer, image_layer, dims_point=None, channel_axis=None, channel=None):
    """Check that ``labels_layer`` annotates the plane of ``image_layer`` shown in the viewer.

    Labels the size of the plane, or of the whole image layer (a stack: the plane shown is
    taken), are accepted.

    Returns
    -------
    TrainingPair

    Raises
    ------
    ValueError
        With what is wrong and what to do: another shape, labels that are not integer, no
        committed object (:class:`~napari_segany._qt.image_source.ImageSourceError` for an
        image that cannot be read).
    """
    plane = current_plane(image_layer, dims_point, channel_axis, channel)
    data = labels_layer.data[0] if labels_layer.multiscale else labels_layer.data
    shape = tuple(int(s) for s in data.shape)
    if shape == plane.label_shape and len(shape) > 2:
        data = data[tuple(plane.leading)]
    elif shape != plane.shape:
        raise ValueError(
            f"Labels {labels_layer.name!r} have shape {shape}, image {image_layer.name!r} has "
            f"{plane.label_shape}: pair each Labels layer with the image it annotates."
        )
    labels = np.array(data)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"Labels {labels_layer.name!r} are {labels.dtype}, not integer IDs.")
    ids = np.unique(labels)
    objects = int(np.count_nonzero(ids))
    if objects == 0:
        where = " on this plane" if plane.leading else ""
        raise ValueError(
            f"{labels_layer.name!r} has no committed objects{where}: segment some objects "
            "and commit them (C), then train."
        )
    return TrainingPair(image_layer.name, plane, labels, objects)


def training_base(spec: str) -> tuple[str, str]:
    """The model to start training from, given the annotator's model: (spec, note).

    The embedded model, a model trained from it or a file are trained themselves; another
    registry model (SAM) cannot be, so training starts from the embedded model and ``note``
    says so.
    """
    info = MODELS.get(spec)
    if info is not None and info.architecture != MODELS[DEFAULT_MODEL].architecture:
        return DEFAULT_MODEL, f" ({spec} cannot be trained: starting from {DEFAULT_MODEL})"
    return spec, ""


def default_model_name(image_name: str, taken: Collection[str]) -> str:
    """``"<image name>_cells"`` as a valid model name, numbered (``_2``, ...) when taken."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", image_name).strip("._-")[:48] or "my"
    taken = {name.lower() for name in taken}
    name, number = f"{stem}{NAME_SUFFIX}", 1
    while name.lower() in taken:
        number += 1
        name = f"{stem}{NAME_SUFFIX}_{number}"
    return name


def _score(score) -> str:
    return "none" if score is None else f"{score.score:.2f}"


@dataclass
class TrainingJob:
    """One training run of the panel, shared by the main thread and the worker.

    Parameters
    ----------
    pairs : list of TrainingPair
    name : str
        The trained model's name; it is written to ``<model cache>/trained/<name>.pt``.
    base : str
        Registry name, trained model name or file to start from.
    device : str
    options : dict
        :class:`~napari_segany.training.FinetuneConfig` settings (``steps``, ...).

    After the run, ``result`` (a :class:`~napari_segany.training.FinetuneResult`), ``error``
    (bad input, said in words) or ``cancelled`` tells what happened; ``last`` is the last
    :class:`~napari_segany.training.TrainingProgress` and ``base_score`` the starting model's
    validation.
    """

    pairs: list[TrainingPair]
    name: str
    base: str
    device: str = "auto"
    options: dict = field(default_factory=dict)
    last: object = None
    base_score: object = None
    result: object = None
    error: str | None = None
    cancelled: bool = False
    _job: Generator | None = field(default=None, repr=False)

    @property
    def out(self) -> Path:
        """The checkpoint, which is also the registered model."""
        return trained_dir() / f"{self.name}.pt"

    @property
    def objects(self) -> int:
        return sum(pair.objects for pair in self.pairs)

    def run(self) -> Generator:
        """The worker's body: yields the training's progress; bad input ends it with
        ``error`` set instead of raising."""
        from napari_segany.training.finetune import iter_finetune

        try:
            job = iter_finetune(
                [pair.source() for pair in self.pairs],
                [pair.labels for pair in self.pairs],
                self.out,
                base=self.base,
                name=self.name,
                device=self.device,
                **self.options,
            )
            self._job = job
            while True:
                try:
                    report = next(job)
                except StopIteration as stop:
                    self.result = stop.value
                    return self.result
                if self.last is None:
                    self.base_score = report.score  # the starting model's validation
                self.last = report
                yield report
        except (ValueError, OSError) as exc:  # CheckpointError is a ValueError
            self.error = str(exc)
        finally:
            self._job = None

    def cancel(self) -> None:
        """Stop the training (in the worker's thread, while it waits between steps): the
        best model so far stays registered; stopped before the first step, nothing is kept.
        The widget does not resume runs, so their resumable state is removed."""
        from napari_segany.training.common import state_path

        self.cancelled = True
        job, self._job = self._job, None
        if job is None:
            return
        try:
            job.close()
        except Exception as exc:  # never raise from a signal's slot
            self.error = f"{type(exc).__name__}: {exc}"
        state_path(self.out).unlink(missing_ok=True)
        if self.last is None or self.last.done == 0:
            for path in (self.out, self.out.with_suffix(".json")):
                path.unlink(missing_ok=True)

    def trained(self) -> bool:
        """Whether a trained model was registered."""
        if self.result is not None:
            return True
        return self.cancelled and self.last is not None and self.last.done > 0

    def summary(self) -> str:
        """What came of the run, for a notification."""
        if self.error is not None:
            return f"Training stopped: {self.error}"
        if self.result is not None:
            r = self.result
            scores = f"validation score {_score(r.base_score)} → {_score(r.score)}"
            if r.best_step == 0 and r.base_score is not None:
                return (
                    f"Trained {self.name!r} for {r.steps} steps, but no step beat the starting "
                    f"model ({scores}): {self.name!r} is a copy of it. Annotate more objects "
                    "and train again."
                )
            return f"Trained {self.name!r}: {r.steps} steps, {scores} (kept step {r.best_step})."
        if self.trained():
            last = self.last
            return (
                f"Training stopped at step {last.done}/{last.total}: {self.name!r} holds the "
                f"best model so far (step {last.best_step}; validation score "
                f"{_score(self.base_score)} → {_score(last.best)})."
            )
        if self.cancelled:
            return "Training cancelled before the first step: nothing was trained."
        return "Training stopped by an error (see above)."
