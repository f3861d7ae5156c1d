"""``napari-segany classify``: the class of every labelled object, from a saved classifier.

Loads an :class:`~napari_segany.classify.ObjectClassifier` file, measures each image's objects
tile by tile and writes the object table with ``class``, ``class_probability`` and one
``probability_<class>`` column per class (then the shape and intensity columns). Labels stored
as OME-Zarr also get ``class`` and ``class_probability`` in their ``image-label`` properties.
Imports no torch at module level, so ``napari-segany --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_segany.cli._common import EXIT_INTERRUPTED, EXIT_OK, fail
from napari_segany.cli._objects import add_object_arguments, open_pairs, table_paths


def add_classify_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``classify`` command (see :func:`run_classify`)."""
    parser = subparsers.add_parser(
        "classify",
        help="classify every labelled object with a saved object classifier",
        description=(
            "Give every object of each LABELS image a class with a classifier saved from "
            "napari's Classes panel or ObjectClassifier.save. With one image, OUT may be a "
            ".csv file; otherwise OUT is a folder that receives <image name>_classes.csv for "
            "each image. OME-Zarr labels also get the classes in their image-label properties."
        ),
    )
    add_object_arguments(parser)
    parser.add_argument(
        "--classifier", required=True, metavar="FILE", help="classifier file (.npz)"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model for the embedding features (default: the one the classifier records)",
    )
    parser.add_argument(
        "--no-properties",
        action="store_true",
        help="leave OME-Zarr labels unchanged (by default their properties get the classes)",
    )
    parser.set_defaults(func=run_classify)
    return parser


def _fail(message: str) -> int:
    return fail(message, prefix="napari-segany classify: error")


def class_columns(clf, table) -> dict[int, dict]:
    """Object ID → ``class``, ``class_probability`` and ``probability_<class>``."""
    proba = clf.probabilities(table)
    columns = {}
    for object_id, row in zip(table.ids.tolist(), proba, strict=True):
        best = int(row.argmax())
        extra = {"class": clf.classes[best], "class_probability": float(row[best])}
        extra.update({f"probability_{c}": float(p) for c, p in zip(clf.classes, row, strict=True)})
        columns[object_id] = extra
    return columns


def run_classify(args: argparse.Namespace) -> int:
    """Classify each image's objects and write its table; returns the exit code."""
    from napari_segany.classify import ClassifierFileError, ObjectClassifier
    from napari_segany.image.source import ImageSourceError
    from napari_segany.labels_io.atomic import check_writable

    try:
        clf = ObjectClassifier.load(args.classifier, model=args.model, device=args.device)
        if args.tile is not None or args.halo is not None:
            clf.tile_size, clf.halo = args.tile or clf.tile_size, args.halo or clf.halo
        targets = table_paths(args.images, args.labels, args.output, "classes")
        pairs = open_pairs(args)
        for target in targets:
            check_writable(target, overwrite=args.overwrite)
    except (ClassifierFileError, ImageSourceError, ValueError, OSError) as error:
        hint = " (use --overwrite to replace)" if isinstance(error, FileExistsError) else ""
        return _fail(f"{error}{hint}")
    print(f"classifier: {', '.join(clf.classes)} ({Path(args.classifier).name})", file=sys.stderr)
    try:
        for (source, labels), target, labels_path in zip(pairs, targets, args.labels, strict=True):
            name = source.name or "image"
            table = clf.features(source, labels, progress=not args.quiet)
            extra = class_columns(clf, table)
            keep = table.feature_names([g for g in ("shape", "intensity") if g in table.groups])
            target.parent.mkdir(parents=True, exist_ok=True)
            table.write_csv(target, extra=extra, columns=keep, overwrite=args.overwrite)
            counts = {c: sum(e["class"] == c for e in extra.values()) for c in clf.classes}
            shown = ", ".join(f"{n} {c}" for c, n in counts.items())
            print(f"{name}: {len(table)} objects ({shown}) → {target}")
            if not args.no_properties and labels_path.lower().rstrip("/").endswith(".zarr"):
                _write_properties(labels_path, extra)
    except (ClassifierFileError, ValueError, OSError) as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        print("napari-segany classify: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _write_properties(path: str, extra: dict[int, dict]) -> None:
    from napari_segany.labels_io.ome_zarr import update_label_properties
    from napari_segany.labels_io.ome_zarr_read import ome_attrs, open_group

    try:
        version = ome_attrs(open_group(path))[1]
    except Exception:  # a plain zarr array: no OME metadata to extend
        return
    if version is None:
        return
    values = {
        i: {"class": e["class"], "class_probability": e["class_probability"]}
        for i, e in extra.items()
    }
    count = update_label_properties(path, values)
    print(f"{path}: classes of {count} objects written to its image-label properties")
