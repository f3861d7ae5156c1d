"""``napari-segany models``: list the known models, or download some into the model cache."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from napari_segany.cli._common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

__all__ = [
    "add_models_parser",
    "download_models",
    "format_models_table",
    "model_rows",
    "run_models",
    "trained_model_rows",
]


def add_models_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``models`` command: list the known models or download some.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object returned by ``ArgumentParser.add_subparsers``.

    Returns
    -------
    argparse.ArgumentParser
        The new sub-parser.
    """
    parser = subparsers.add_parser(
        "models",
        help="list the known models, or download them",
        description=(
            "List the models napari-segany knows (size, whether downloaded, licence), and the "
            "models you trained (napari-segany train), or download some into the model cache. "
            "The cache folder can be changed with the NAPARI_SEGANY_CACHE environment variable."
        ),
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--json", action="store_true", help="print the model list as JSON instead of a table"
    )
    group.add_argument(
        "--download",
        nargs="+",
        metavar="NAME",
        help="download (and verify) these models into the cache",
    )
    parser.set_defaults(func=run_models)
    return parser


def run_models(args: argparse.Namespace) -> int:
    """Run the ``models`` command.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (``json``, ``download``).

    Returns
    -------
    int
        0 on success, 1 if a download failed, 2 for an unknown model name.
    """
    if args.download:
        return download_models(args.download)
    rows = model_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_models_table(rows))
        print(f"\nCache: {_cache_dir()}")
    return EXIT_OK


def _cache_dir():
    """Return the model cache folder (imported lazily)."""
    from napari_segany.models.download import cache_dir

    return cache_dir()


def model_rows() -> list[dict]:
    """Describe every registry model as a JSON-ready dict.

    Returns
    -------
    list of dict
        One dict per model with the `ModelInfo` fields plus ``cached`` (bool), ``path`` (str,
        where the file is or will be) and ``decoder_cached`` (bool, or None for a model without
        an instance-segmentation decoder).
    """
    from dataclasses import asdict

    from napari_segany.models.download import cached_path, is_cached
    from napari_segany.models.registry import MODELS

    rows = []
    for info in MODELS.values():
        row = asdict(info)
        row["cached"] = is_cached(info)
        row["path"] = str(cached_path(info))
        row["decoder_cached"] = is_cached(info.decoder) if info.decoder is not None else None
        rows.append(row)
    return rows + trained_model_rows()


def trained_model_rows() -> list[dict]:
    """Describe every model the user trained (see :mod:`napari_segany.models.trained`) with
    the keys of :func:`model_rows`, plus ``trained: True`` and the ``provenance`` record."""
    from napari_segany.models.trained import trained_model_provenance, trained_models

    rows = []
    for name, path in trained_models().items():
        record = trained_model_provenance(name)
        score = record.get("validation", {}).get("score")
        description = f"trained from {record.get('base', {}).get('name', '?')} on " + (
            ", ".join(d.get("name", "?") for d in record.get("data", [])) or "?"
        )
        if score is not None:
            description += f"; validation score {score:.2f}"
        if record.get("date"):
            description += f"; {record['date'][:10]}"
        rows.append(
            {
                "name": name,
                "architecture": record.get("architecture", "?"),
                "url": None,
                "known_hash": "",
                "size_bytes": path.stat().st_size,
                "license": "own",
                "description": description,
                "filename": path.name,
                "bundled": None,
                "cached": True,
                "path": str(path),
                "trained": True,
                "provenance": record,
            }
        )
    return rows


def _size_mb(size_bytes: int | None) -> str:
    """Format a byte count as decimal megabytes, or ``"?"`` if unknown."""
    return "?" if size_bytes is None else f"{size_bytes / 1e6:.1f}"


def format_models_table(rows: Sequence[dict]) -> str:
    """Render model rows (from :func:`model_rows`) as a plain-text table.

    Parameters
    ----------
    rows : sequence of dict
        Model descriptions.

    Returns
    -------
    str
        Columns: name, architecture, size in MB (``?`` when not published), cached, whether an
        instance-segmentation decoder comes with the model, licence, description.
    """
    header = ("name", "arch", "size MB", "cached", "decoder", "licence", "description")
    body = [
        (
            row["name"],
            row["architecture"],
            _size_mb(row["size_bytes"]),
            "yes" if row["cached"] else "no",
            "yes" if row.get("decoder") else "-",
            row["license"],
            row["description"],
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header) - 1)]
    right = {2}  # numbers are right-aligned

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=False))
        ]
        return "  ".join([*parts, cells[-1]]).rstrip()

    return "\n".join(line(r) for r in (header, *body))


def download_models(names: Sequence[str]) -> int:
    """Download (or verify the cached copy of) each named model, with a progress bar.

    Parameters
    ----------
    names : sequence of str
        Registry names.

    Returns
    -------
    int
        0 if all succeeded, 2 if a name is unknown (nothing is downloaded then), else 1. Errors
        are printed to stderr without a traceback.
    """
    from napari_segany.models.download import ModelDownloadError, fetch_model
    from napari_segany.models.registry import UnknownModelError, get_model_info

    try:
        infos = [get_model_info(name) for name in names]
    except UnknownModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    status = EXIT_OK
    for info in infos:
        # a model's instance-segmentation decoder comes with it
        for entry in (info, info.decoder):
            if entry is None:
                continue
            try:
                path = fetch_model(entry, progress=True)
            except ModelDownloadError as exc:
                print(f"error: {exc}", file=sys.stderr)
                status = EXIT_FAILURE
                break
            print(f"{entry.name}: {path}")
    return status
