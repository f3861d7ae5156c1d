"""``napari-segany segment STACK --axes zyx|tyx|tzyx``: z-stacks and time series.

Each slice is segmented and linked as it comes (see :mod:`napari_segany.automatic.stack`):
3D objects through z, tracks through time (with ``<name>_tracks.csv`` beside the labels, rows
``id, frame, parent, row, col``), or both for a time series of z-stacks (``tzyx``: 4D labels,
the track table with a ``z`` column; no per-object table, the track table is the measure).
Stacks larger than :data:`IN_MEMORY_VOXELS` are labelled
into a temporary zarr array, one slice at a time, then streamed into the output. The labels are
written as TIFF (one page per slice, axes in the description) or OME-Zarr (axes ``z``/``t``,
``y``, ``x``, or ``t, z, y, x``, with the z step and pixel size as scale) and open back in
napari as 3D or time Labels layers.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

#: Stacks with more voxels than this are labelled on disk (a temporary zarr array).
IN_MEMORY_VOXELS = 8192 * 8192


def tracks_path(labels_path: Path) -> Path:
    """Where the track table of labels saved at ``labels_path`` goes: ``<stem>_tracks.csv``."""
    from napari_segany.labels_io.naming import labels_stem

    path = Path(labels_path).expanduser().absolute()
    return path.with_name(f"{labels_stem(path)}_tracks.csv")


def run_segment_stacks(args, targets: list[Path], params, *, scratch, fail) -> int:
    """Segment each stack of ``args.images`` into ``targets``; returns the exit code.

    ``params`` are the segmentation settings, ``scratch(shape)`` makes a temporary zarr array
    and ``fail(message)`` reports an error and returns its exit code.
    """
    from napari_segany.cli._common import EXIT_OK
    from napari_segany.image.source import ImageSourceError
    from napari_segany.labels_io.atomic import check_writable
    from napari_segany.volume.axes import AxesError, parse_axes

    if args.plane is not None or args.channel_axis is not None:
        return fail(
            "with --axes, name a channel axis 'c' in --axes; --plane and --channel-axis do "
            "not apply"
        )
    if args.scheduler is not None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            return fail("--scheduler needs dask.distributed: pip install 'napari-segany[dask]'")
    given = None if args.axes == "auto" else args.axes
    try:
        if given is not None:
            parse_axes(given)
    except AxesError as error:
        return fail(str(error))
    from napari_segany.models.loading import load_model
    from napari_segany.volume.slices import StackSessions

    try:
        model = load_model(
            *([args.model] if args.model else []), device=args.device, decoder=args.decoder
        )
        # open every stack and check every output before any work
        stacks = []
        for image, target in zip(args.images, targets, strict=True):
            sessions = StackSessions(
                image, model, given, tile_size=args.tile, halo=args.halo, keep=2
            )
            time = sessions.axes.is_time
            for path in [target] + ([tracks_path(target)] if time else []):
                try:
                    check_writable(path, overwrite=args.overwrite)
                except (FileExistsError, OSError) as error:
                    hint = "" if args.overwrite else " (use --overwrite to replace)"
                    return fail(f"{error}{hint}")
            n, h, w = sessions.shape
            along = "frames" if sessions.along == "t" else "z slices"
            if sessions.axes.is_time and sessions.axes.is_volume:
                along = f"frames of {n} z slices"
                n = sessions.count("t")
            print(f"{image}: {n} {along} of {h} x {w} (axes {sessions.axes.axes})", file=sys.stderr)
            stacks.append(sessions)
        for sessions, target in zip(stacks, targets, strict=True):
            _segment_and_save(args, sessions, target, params, scratch)
    except (AxesError, ImageSourceError, ValueError, OSError) as error:
        return fail(str(error))
    return EXIT_OK


def _segment_and_save(args, sessions, target: Path, params, scratch) -> None:
    from napari_segany.automatic.stack import iter_segment_stack, iter_segment_stack_dask
    from napari_segany.image.calibration import UNCALIBRATED, with_pixel_size
    from napari_segany.labels_io import save_labels
    from napari_segany.progress import run_with_progress
    from napari_segany.volume.tracking import write_track_table

    both = sessions.axes.is_time and sessions.axes.is_volume
    shape = ((sessions.count("t"),) if both else ()) + tuple(sessions.shape)
    out = scratch(shape) if math.prod(shape) > IN_MEMORY_VOXELS else None
    if args.scheduler is not None:  # every tile of every slice a dask task
        from napari_segany.models.registry import DEFAULT_MODEL

        job = iter_segment_stack_dask(
            sessions,
            args.model or DEFAULT_MODEL,
            params,
            out=out,
            scheduler=args.scheduler,
            device=args.device,
            tile_size=args.tile,
            halo=args.halo,
            decoder_ref=args.decoder,
        )
    else:
        job = iter_segment_stack(sessions, params, out=out)
    name = Path(str(target)).name
    result = run_with_progress(job, show=not args.quiet, description=f"segmenting {name}")
    calibration = sessions.calibration or UNCALIBRATED
    if args.pixel_size is not None:
        calibration = with_pixel_size(calibration, args.pixel_size, origin="given")
    scale = None
    if calibration.pixel_size is not None:
        step = calibration.z_step if sessions.axes.is_volume and calibration.z_step else 1.0
        scale = ((1.0,) if both else ()) + (float(step), *map(float, calibration.pixel_size))
    target.parent.mkdir(parents=True, exist_ok=True)
    saved = save_labels(
        target,
        result.labels,
        scale=scale,
        unit=calibration.unit,
        scores=result.named_scores(),
        overwrite=args.overwrite,
        table=not args.no_table and not both,
        progress=not args.quiet,
        axes=result.axes,
    )
    extra = ""
    if result.tracks is not None:
        written = write_track_table(tracks_path(target), result.tracks, overwrite=args.overwrite)
        extra = f", tracks {written} ({len(result.parents)} daughters)"
    kind = "3D tracks" if both else "tracks" if sessions.along == "t" else "3D objects"
    print(f"{sessions.axes.axes} stack: {result.count} {kind} → {saved.labels}{extra}")
