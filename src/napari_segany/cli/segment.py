"""``napari-segany segment``: automatic segmentation of image files to TIFF or OME-Zarr labels.

The defaults of the segmentation options are those of
:class:`~napari_segany.automatic.params.AutomaticParams`: an option left out is not passed on.
Imports no torch at module level, so ``napari-segany --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_segany.automatic.params import FLIPS, METHODS, AutomaticParams
from napari_segany.automatic.point_grid import PointGridParams
from napari_segany.cli._common import EXIT_OK, IMAGE_HELP, add_image_options, fail
from napari_segany.labels_io.naming import labels_file_name

#: Options passed on to :meth:`AutomaticParams.from_options` when given (dest names).
SEGMENTATION_OPTIONS = (
    "method",
    "points_per_side",
    "min_size",
    "flips",
    "foreground_threshold",
    "center_distance_threshold",
    "boundary_distance_threshold",
)
LABEL_SUFFIXES = (".tif", ".tiff", ".zarr")
#: Images with more pixels than this are labelled into a temporary zarr array on disk instead
#: of memory, then streamed into the output.
IN_MEMORY_PIXELS = 8192 * 8192


def add_segment_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``segment`` command (see :func:`run_segment`)."""
    parser = subparsers.add_parser(
        "segment",
        help="segment every object of images, writing label images and object tables",
        description=(
            "Find every cell or nucleus in each IMAGE and write an instance label image (TIFF "
            "or OME-Zarr, chosen by the output's extension) with a per-object CSV table beside "
            "it. With one image, OUT may be a file name (cells.labels.tif, cells.ome.zarr); "
            "otherwise OUT is a folder that receives <image name>.labels.<format> for each "
            "image (napari opens *.labels.tif as labels). The pixel size the image file gives "
            "(or --pixel-size) is written into the labels and adds physical columns to the "
            "table (area_um2, centroid_row_um, ...)."
        ),
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help=IMAGE_HELP)
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="file or folder")
    parser.add_argument(
        "--model", default=None, help="registry name or checkpoint file (default: embedded)"
    )
    parser.add_argument(
        "--decoder",
        default=None,
        metavar="FILE",
        help="micro-sam instance-segmentation decoder file (*_decoder.pt) to use with --model "
        "(registry models such as vit_b_lm bring theirs)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--tile", type=int, default=None, help="tile size (default: model input)")
    parser.add_argument("--halo", type=int, default=None, help="tile overlap margin in pixels")
    parser.add_argument(
        "--method",
        choices=METHODS,
        help="instance_head (fast, embedded model), decoder (micro-sam models with an "
        "instance-segmentation decoder) or point_grid (any SAM model) "
        f"(default: {AutomaticParams.method}: the decoder, else the instance head, else the "
        "point grid, whichever the model has first)",
    )
    parser.add_argument(
        "--points-per-side",
        type=int,
        help=f"point grid density (default: {PointGridParams.points_per_side})",
    )
    parser.add_argument(
        "--min-size",
        type=int,
        help=f"smallest object in pixels (default: {AutomaticParams.min_size})",
    )
    parser.add_argument(
        "--flips",
        type=int,
        choices=FLIPS,
        help="instance head: average the maps of this many flipped views of each tile "
        f"(default: {AutomaticParams.flips})",
    )
    parser.add_argument(
        "--foreground-threshold",
        type=float,
        help="instance head and decoder: smallest foreground probability of an object's pixels "
        f"(default: {AutomaticParams.foreground_threshold}; a decoder's recommended value)",
    )
    for name in ("center", "boundary"):
        parser.add_argument(
            f"--{name}-distance-threshold",
            type=float,
            help=f"decoder: seeds lie where the smoothed {name} distance is below this "
            "(default: the model decoder's recommended value)",
        )
    parser.add_argument(  # the old name of --flips
        "--views",
        type=int,
        choices=FLIPS,
        dest="flips",
        action=_DeprecatedViews,
        help=argparse.SUPPRESS,
    )
    add_image_options(parser, pixel_size=True)
    parser.add_argument(
        "--axes",
        default=None,
        help="axes of a z-stack or time series, one letter per axis from tzcyx: zyx (3D "
        "objects linked through z), tyx (objects tracked over time, with a track table "
        "<name>_tracks.csv beside the labels), tzyx (3D objects tracked over time), zcyx, "
        "...; 'auto': the axes the file names "
        "(OME-Zarr, OME-TIFF, ImageJ TIFF) (default: one 2D plane, see --plane)",
    )
    parser.add_argument(
        "--format",
        choices=("tif", "zarr"),
        default="tif",
        help="output format when OUT is a folder (default: tif)",
    )
    parser.add_argument("--no-table", action="store_true", help="do not write the CSV table")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run tiles as tasks on this dask.distributed scheduler (tcp://host:8786)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_segment)
    return parser


class _DeprecatedViews(argparse.Action):
    """``--views N``: stores ``flips`` and says on stderr that the option was renamed."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            "napari-segany segment: --views is deprecated, use --flips (same values)",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def output_paths(images: list[str], output: str, fmt: str) -> list[Path]:
    """Where each image's labels go.

    One image and an OUT ending in .tif/.tiff/.zarr → OUT itself; otherwise OUT is a folder
    with ``<stem>.labels.<fmt>`` per image (the name napari opens as labels, see
    :func:`napari_segany.labels_io.labels_file_name`).

    Raises
    ------
    ValueError
        Two images would write the same output.
    """
    out = Path(output)
    if out.suffix and out.suffix.lower() not in LABEL_SUFFIXES and not out.is_dir():
        raise ValueError(
            f"cannot write labels as {out.name!r}: use a name ending in .tif, .tiff, .zarr or "
            ".ome.zarr, or a folder"
        )
    if len(images) == 1 and out.suffix.lower() in LABEL_SUFFIXES:
        return [out]
    if out.suffix.lower() in LABEL_SUFFIXES:
        raise ValueError(
            f"{len(images)} images cannot all be written to one file {out}; give a folder"
        )
    from napari_segany.image.readers import image_stem

    paths = [out / labels_file_name(image_stem(image), fmt) for image in images]
    duplicates = {p for p in paths if paths.count(p) > 1}
    if duplicates:
        raise ValueError(
            f"several images would write {sorted(map(str, duplicates))[0]}; rename the inputs "
            "or segment them in separate calls"
        )
    return paths


def _fail(message: str) -> int:
    return fail(message, prefix="napari-segany segment: error")


def run_segment(args: argparse.Namespace) -> int:
    """Segment each image and save its labels and table; returns the exit code."""
    from napari_segany.image.source import ImageSourceError, open_image
    from napari_segany.labels_io.atomic import check_writable

    try:
        targets = output_paths(args.images, args.output, args.format)
    except ValueError as error:
        return _fail(str(error))
    if args.axes is not None and (args.axes == "auto" or set(args.axes.lower()) & set("tz")):
        from napari_segany.cli.segment_stack import run_segment_stacks

        try:
            params = segmentation_params(args)
        except ValueError as error:
            return _fail(str(error))
        return run_segment_stacks(args, targets, params, scratch=_scratch_labels, fail=_fail)
    if args.axes is not None:  # one 2D plane: the axes may name its channels
        from napari_segany.volume.axes import AxesError, parse_axes

        try:
            named = parse_axes(args.axes).channel_axis
        except AxesError as error:
            return _fail(str(error))
        if named is not None and args.channel_axis not in (None, named):
            return _fail(
                f"--axes {args.axes} puts channels on axis {named}, not {args.channel_axis}"
            )
        args.channel_axis = named if named is not None else args.channel_axis
    # check every input and output before any work, so a batch does not fail half-way
    sources = []
    for image in args.images:
        try:
            source = open_image(
                image,
                channel_axis=args.channel_axis,
                plane=args.plane,
                pixel_size=args.pixel_size,
            )
        except (ImageSourceError, ValueError) as error:
            return _fail(str(error))
        sources.append(source)
        print(f"{source.name}: {_described(source)}", file=sys.stderr)
    if args.scheduler is not None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            return _fail("--scheduler needs dask.distributed: pip install 'napari-segany[dask]'")
    for target in targets:
        try:
            check_writable(target, overwrite=args.overwrite)
        except (FileExistsError, OSError) as error:
            return _fail(f"{error}" + ("" if args.overwrite else " (use --overwrite to replace)"))
    try:
        results = _segment_all(args, sources)
        for source, target, result in zip(sources, targets, results, strict=True):
            _save(args, source, target, result)
    except (ValueError, OSError) as error:
        return _fail(str(error))
    return EXIT_OK


def _segment_all(args, sources):
    from napari_segany.progress import run_with_progress

    params = segmentation_params(args)
    show = not args.quiet
    if args.scheduler is not None:
        from napari_segany.automatic.distributed import ImageJob, iter_segment_dask
        from napari_segany.models.registry import DEFAULT_MODEL

        jobs = [ImageJob(str(p), args.channel_axis, args.plane) for p in args.images]
        job = iter_segment_dask(
            jobs,
            args.model or DEFAULT_MODEL,
            params,
            decoder_ref=args.decoder,
            tile_size=args.tile,
            halo=args.halo,
            device=args.device,
            scheduler=args.scheduler,
        )
        return run_with_progress(job, show=show, description="segmenting")

    from napari_segany.automatic.segment import iter_segment
    from napari_segany.models.loading import load_model
    from napari_segany.tiled.session import SegmentationSession

    model = load_model(
        *([args.model] if args.model else []), device=args.device, decoder=args.decoder
    )
    results = []
    for source in sources:
        session = SegmentationSession(source, model, tile_size=args.tile, halo=args.halo)
        out = None
        if session.shape[0] * session.shape[1] > IN_MEMORY_PIXELS:
            out = _scratch_labels(session.shape)
        name = Path(source.name or "image").name
        job = iter_segment(session, params, out=out)
        results.append(run_with_progress(job, show=show, description=f"segmenting {name}"))
    return results


def segmentation_params(args: argparse.Namespace) -> AutomaticParams:
    """The `AutomaticParams` of the options given; the dataclass defaults for the others."""
    given = {name: getattr(args, name) for name in SEGMENTATION_OPTIONS}
    return AutomaticParams.from_options(**{k: v for k, v in given.items() if v is not None})


def _scratch_labels(shape):
    """A zero-filled uint32 zarr array in a temporary folder (removed at exit); 2D or a stack
    (one chunk row per slice)."""
    import atexit
    import shutil
    import tempfile

    import zarr

    folder = tempfile.mkdtemp(prefix="napari-segany-labels-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return zarr.create_array(
        f"{folder}/labels.zarr",
        shape=shape,
        chunks=(1,) * (len(shape) - 2) + (1024, 1024),
        dtype="uint32",
        fill_value=0,
    )


def _described(source) -> str:
    """What the command will segment, with a hint when the pixel size is missing."""
    text = source.describe()
    if source.calibration.pixel_size is None:
        text += " (give --pixel-size for micrometres)"
    return text


def _save(args, source, target: Path, result) -> None:
    from napari_segany.labels_io import save_labels

    target.parent.mkdir(parents=True, exist_ok=True)
    image = None
    if source.shape[0] * source.shape[1] <= IN_MEMORY_PIXELS:
        image = source.read_all()  # for the table's mean intensity (per channel if any)
    calibration = source.calibration
    saved = save_labels(
        target,
        result.labels,
        scale=calibration.pixel_size,
        unit=calibration.unit,
        image=image,
        scores=result.named_scores(),
        overwrite=args.overwrite,
        table=not args.no_table,
        progress=not args.quiet,
    )
    print(
        f"{source.name or 'image'}: {result.count} objects → {saved.labels}"
        + (f" (table {saved.table})" if saved.table else "")
    )
