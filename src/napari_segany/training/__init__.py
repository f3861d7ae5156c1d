"""Training of the embedded cell model on synthetic images (not imported by the plugin).

Two command-line trainers sit on shared lower modules: ``train_embedded`` (the whole model) and
``train_instance_head`` (the head alone, encoder frozen); ``common`` (schedule, ``--stop-at``,
checkpoints, options), ``data`` (scenes and the model input), ``losses``, ``prompt_sampling`` and
``instance_targets``. The recipe is in ``docs/training.md``.

:func:`finetune` (and its job generator :func:`iter_finetune`) trains the embedded model on a
user's own annotations (``napari-segany train``; see ``docs/finetuning.md``).
"""

from napari_segany.training.finetune import (
    FinetuneConfig,
    FinetuneResult,
    TrainingProgress,
    finetune,
    iter_finetune,
    read_provenance,
)

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "TrainingProgress",
    "finetune",
    "iter_finetune",
    "read_provenance",
]
