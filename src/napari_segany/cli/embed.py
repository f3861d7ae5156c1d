"""``napari-segany embed``: compute the tiled embeddings of an image into a zarr cache.

The cache is what :class:`napari_segany.tiled.session.SegmentationSession` (and so the napari
widget) opens with ``cache=``: prompts on the image are then answered without encoding. Rerunning
the command resumes an interrupted run and repairs damaged tiles.

Imports only argparse at module level, so ``napari-segany --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from napari_segany.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    IMAGE_HELP,
    add_image_options,
    fail,
)


def add_embed_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``embed`` command (see :func:`run_embed`)."""
    parser = subparsers.add_parser(
        "embed",
        help="compute the tiled embeddings of a (large) image into a zarr cache",
        description=(
            "Encode IMAGE tile by tile with a Segment Anything model and store the embeddings in "
            "CACHE.zarr, so that prompts on the image are answered instantly later (in napari or "
            "with SegmentationSession(..., cache=CACHE.zarr)). Only one tile is in memory at a "
            "time. Rerun the same command to resume an interrupted run. A cache made for another "
            "image, model, tiling or scaling is never reused: the command stops, unless "
            "--overwrite is given."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help=IMAGE_HELP)
    parser.add_argument(
        "-o", "--output", required=True, metavar="CACHE.zarr", help="embeddings cache to write"
    )
    parser.add_argument(
        "--model", default=None, help="registry name or checkpoint file (default: embedded)"
    )
    parser.add_argument("--tile", type=int, default=None, help="tile size (default: model input)")
    parser.add_argument(
        "--halo", type=int, default=None, help="minimum tile overlap margin (default: tile/8)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument(
        "--dtype",
        default="float16",
        choices=("float16", "float32"),
        help="storage of the embeddings (float16: half the size, same masks)",
    )
    add_image_options(parser)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a cache made for something else"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_embed)
    return parser


def run_embed(args: argparse.Namespace) -> int:
    """Run the ``embed`` command; returns the exit code (errors are printed without traceback)."""
    from napari_segany.image.source import ImageSourceError, open_image
    from napari_segany.models.checkpoint import CheckpointError
    from napari_segany.models.download import ModelDownloadError
    from napari_segany.models.loading import load_model
    from napari_segany.models.registry import DEFAULT_MODEL
    from napari_segany.progress import run_with_progress
    from napari_segany.tiled.embedding_cache import EmbeddingCacheError
    from napari_segany.tiled.session import SegmentationSession

    try:
        source = open_image(args.image, channel_axis=args.channel_axis, plane=args.plane)
    except ImageSourceError as exc:
        return fail(str(exc))
    if not args.quiet:
        print(f"{source.name}: {source.describe()}", file=sys.stderr)
    try:
        model = load_model(args.model or DEFAULT_MODEL, device=args.device)
    except (CheckpointError, ModelDownloadError, ValueError, RuntimeError) as exc:
        return fail(str(exc))
    try:
        session = SegmentationSession(
            source,
            model,
            tile_size=args.tile,
            halo=args.halo,
            cache=args.output,
            precision=args.precision,
            overwrite_cache=args.overwrite,
            cache_dtype=args.dtype,
        )
    except (EmbeddingCacheError, ImageSourceError, ValueError) as exc:
        return fail(str(exc))
    grid = session.grid
    before = session.cache.done_count()
    try:
        run_with_progress(
            session.encode(verify=True), show=not args.quiet, description="encoding tiles"
        )
    except KeyboardInterrupt:
        done = session.cache.done_count()
        print(
            f"interrupted: {done}/{len(grid)} tiles are saved in {args.output}; run the same "
            "command again to finish",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (ImageSourceError, EmbeddingCacheError, OSError) as exc:
        return fail(str(exc))
    done = session.cache.done_count()
    print(
        f"{args.output}: {done}/{len(grid)} tiles of {grid.tile_size[0]}×{grid.tile_size[1]} "
        f"px (halo {grid.halo[0]}) for {source.name} {source.shape[0]}×{source.shape[1]}, "
        f"{max(0, done - before)} encoded now, {min(before, done)} reused"
    )
    return EXIT_OK
