"""``napari-segany features``: per-object features of labelled images, as CSV tables.

Runs :func:`napari_segany.classify.object_features` (columns: see docs/classes.md). Imports no
torch at module level, so ``napari-segany --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from napari_segany.cli._common import EXIT_INTERRUPTED, EXIT_OK, fail
from napari_segany.cli._objects import add_object_arguments, open_pairs, table_paths

#: Feature groups (as in :data:`napari_segany.classify.GROUPS`; kept here so --help needs no
#: import of the measuring code).
GROUPS = ("shape", "intensity", "neighbours", "embedding")


def add_features_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``features`` command (see :func:`run_features`)."""
    parser = subparsers.add_parser(
        "features",
        help="measure every labelled object (shape, intensity, neighbours, embedding) to CSV",
        description=(
            "Measure every object of each LABELS image on its IMAGE, tile by tile: shape, "
            "intensity per channel, neighbourhood counts and the mean of the model's image "
            "embedding over the object. With one image, OUT may be a .csv file; otherwise OUT "
            "is a folder that receives <image name>_features.csv for each image."
        ),
    )
    add_object_arguments(parser)
    parser.add_argument(
        "--model", default=None, help="registry name or checkpoint file (default: embedded)"
    )
    parser.add_argument(
        "--groups",
        default=",".join(GROUPS),
        help=f"comma-separated feature groups among {','.join(GROUPS)} (default: all); "
        "without embedding no model is loaded",
    )
    parser.add_argument(
        "--embedding-std",
        action="store_true",
        help="also the embedding's standard deviation over each object",
    )
    parser.set_defaults(func=run_features)
    return parser


def _fail(message: str) -> int:
    return fail(message, prefix="napari-segany features: error")


def run_features(args: argparse.Namespace) -> int:
    """Measure each image's objects and write its table; returns the exit code."""
    from napari_segany.image.source import ImageSourceError
    from napari_segany.labels_io.atomic import check_writable

    groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        return _fail(f"--groups takes names among {','.join(GROUPS)}, got {args.groups!r}")
    try:
        targets = table_paths(args.images, args.labels, args.output, "features")
        pairs = open_pairs(args)
        for target in targets:
            check_writable(target, overwrite=args.overwrite)
    except (ImageSourceError, ValueError, OSError) as error:
        hint = " (use --overwrite to replace)" if isinstance(error, FileExistsError) else ""
        return _fail(f"{error}{hint}")
    try:
        model = None
        if "embedding" in groups:
            from napari_segany.models.loading import load_model

            model = load_model(*([args.model] if args.model else []), device=args.device)
        for (source, labels), target in zip(pairs, targets, strict=True):
            table = _measure(args, source, labels, model, groups)
            target.parent.mkdir(parents=True, exist_ok=True)
            table.write_csv(target, overwrite=args.overwrite)
            print(f"{source.name or 'image'}: {len(table)} objects → {target}")
    except (ValueError, OSError) as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        print("napari-segany features: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _measure(args, source, labels, model, groups):
    from napari_segany.classify.features import iter_object_features
    from napari_segany.progress import run_with_progress

    options = {"groups": groups, "embedding_std": args.embedding_std}
    if model is None:
        job = iter_object_features(labels, image=source, **options)
    else:
        from napari_segany.tiled.session import SegmentationSession

        session = SegmentationSession(source, model, tile_size=args.tile, halo=args.halo)
        job = iter_object_features(labels, session=session, **options)
    name = source.name or "image"
    return run_with_progress(job, show=not args.quiet, description=f"measuring {name}")
