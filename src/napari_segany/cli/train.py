"""``napari-segany train``: train the embedded model on your own annotated images.

Runs :func:`napari_segany.training.finetune` on image and label files paired in order. The
defaults of the options are those of :class:`~napari_segany.training.finetune.FinetuneConfig`:
an option left out is not passed on. Imports no torch at module level, so
``napari-segany --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_segany.cli._common import EXIT_INTERRUPTED, EXIT_OK, fail

#: Options passed on to :class:`FinetuneConfig` when given (dest names).
CONFIG_OPTIONS = ("steps", "minutes", "validation", "seed", "device")


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` command (see :func:`run_train`)."""
    parser = subparsers.add_parser(
        "train",
        help="train the embedded model on your own annotated images",
        description=(
            "Train the embedded segany_cells model (or one trained earlier, --base) on IMAGEs "
            "and their instance LABELS (paired in order). Labels may cover part of an image: "
            "training learns only inside the annotated area (the objects' boxes plus a small "
            "margin). A part of the annotations is held out to keep the best checkpoint. MODEL.pt "
            "always holds the best model so far; Ctrl-C stops and keeps it, and the same "
            "command run again resumes. The model is registered by name (--name, default: "
            "the name of MODEL.pt) for --model NAME and napari-segany models."
        ),
    )
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="TIFF, zarr, OME-Zarr or .npy image"
    )
    parser.add_argument(
        "--labels",
        nargs="+",
        required=True,
        metavar="LABELS",
        help="integer label image per IMAGE (TIFF, zarr, .npy, or an OME-Zarr image with a "
        "labels group)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="MODEL.pt", help="checkpoint")
    parser.add_argument(
        "--base", default=None, help="model to start from: name or file (default: embedded)"
    )
    parser.add_argument("--name", default=None, help="register the model under this name")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=int, help="training steps (default: about 5 minutes on 2 CPU cores)"
    )
    budget.add_argument("--minutes", type=float, help="time budget instead of a step count")
    parser.add_argument(
        "--validation",
        type=float,
        help="share of the annotations held out to choose the best model (0: none)",
    )
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--channel-axis", type=int, default=None, help="axis of channels")
    parser.add_argument("--plane", type=int, default=None, help="plane of a stack to use")
    parser.add_argument("--device", help="auto, cpu, cuda or mps (default: auto)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing MODEL.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_train)
    return parser


def _fail(message: str) -> int:
    return fail(message, prefix="napari-segany train: error")


def read_label_file(path: str | Path, plane: int | None = None):
    """An integer label image from a TIFF, zarr/OME-Zarr or ``.npy`` file, as numpy.

    Raises
    ------
    ValueError, FileNotFoundError
        Unreadable file, or not integer labels.
    """
    import numpy as np

    from napari_segany.labels_io import load_labels

    path = Path(path)
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise FileNotFoundError(f"no labels at {path}: the file does not exist")
        labels = np.load(path, allow_pickle=False)
    else:
        labels, _ = load_labels(path)
    labels = np.asarray(labels)
    if plane is not None and labels.ndim == 3:
        labels = labels[plane]
    return labels


def run_train(args: argparse.Namespace) -> int:
    """Train on the given images and labels; returns the exit code."""
    from napari_segany.image.source import ImageSourceError, open_image

    if len(args.images) != len(args.labels):
        return _fail(
            f"{len(args.images)} image(s) but {len(args.labels)} label file(s): give one "
            "--labels file per IMAGE, in the same order"
        )
    try:
        sources = [
            open_image(p, channel_axis=args.channel_axis, plane=args.plane) for p in args.images
        ]
        labels = [read_label_file(p, args.plane) for p in args.labels]
    except (ImageSourceError, ValueError, OSError) as error:
        return _fail(str(error))
    options = {k: getattr(args, k) for k in CONFIG_OPTIONS if getattr(args, k) is not None}
    from napari_segany.progress import run_with_progress
    from napari_segany.training.finetune import iter_finetune

    try:
        job = iter_finetune(
            sources,
            labels,
            args.output,
            base=args.base,
            name=args.name,
            overwrite=args.overwrite,
            **options,
        )
        result = run_with_progress(job, show=not args.quiet, description="training")
    except KeyboardInterrupt:
        return _interrupted(args.output)
    except (ValueError, OSError) as error:
        return _fail(str(error))
    print(_summary(result))
    return EXIT_OK


def _interrupted(output: str) -> int:
    from napari_segany.models.checkpoint import CheckpointError
    from napari_segany.training.finetune import read_provenance

    try:
        record = read_provenance(output)
    except (CheckpointError, OSError):
        print("napari-segany train: stopped before a model was saved")
        return EXIT_INTERRUPTED
    score = record.get("validation", {}).get("score")
    print(
        f"napari-segany train: stopped; {output} holds the best model so far (step "
        f"{record['best_step']}"
        + (f", validation score {score:.3f})" if score else ")")
        + "; run the same command again to resume"
    )
    return EXIT_INTERRUPTED


def _summary(result) -> str:
    lines = [f"model written to {result.path} (step {result.best_step} of {result.steps})"]
    if result.score is not None:
        base, best = result.base_score, result.score
        lines.append(
            f"validation: automatic accuracy {base.accuracy:.3f} → {best.accuracy:.3f}, "
            f"one-click mIoU {base.click_miou:.3f} → {best.click_miou:.3f} (base → trained)"
        )
    if result.name:
        lines.append(f"registered as {result.name!r}: use --model {result.name}")
    return "\n".join(lines)
