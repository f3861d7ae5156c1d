"""What every subcommand shares: exit codes, error messages on stderr, and the image options.

Imports only the standard library at module level, so ``napari-segany --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: The image files the commands read, for their help.
IMAGE_HELP = "image file: TIFF/OME-TIFF, zarr/OME-Zarr, PNG, JPEG, .npy (CZI, ND2, LIF: [formats])"


def fail(message: str, prefix: str = "error") -> int:
    """Print ``<prefix>: <message>`` to stderr (no traceback) and return `EXIT_FAILURE`."""
    print(f"{prefix}: {message}", file=sys.stderr)
    return EXIT_FAILURE


def parse_plane(text: str):
    """``--plane``: an integer, or comma-separated integers for several stack axes (``0,12``)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--plane takes an integer or comma-separated integers (e.g. 3 or 0,12), got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def parse_pixel_size(text: str) -> str:
    """``--pixel-size``: checked here (a usage error names the forms), parsed again where the
    image is opened."""
    from napari_segany.image.calibration import parse_pixel_size as parse

    try:
        parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_image_options(parser: argparse.ArgumentParser, *, pixel_size: bool = False) -> None:
    """``--channel-axis``, ``--plane`` and, with ``pixel_size``, ``--pixel-size``."""
    parser.add_argument(
        "--channel-axis",
        type=int,
        default=None,
        help="axis of channels (default: the one the file names, or a last RGB axis)",
    )
    parser.add_argument(
        "--plane",
        type=parse_plane,
        default=None,
        help="plane of a stack, e.g. 3 or 0,12 (t, z) (default: the middle z plane and the "
        "first time point when the file names its axes)",
    )
    if pixel_size:
        parser.add_argument(
            "--pixel-size",
            type=parse_pixel_size,
            default=None,
            metavar="SIZE",
            help="pixel size, overriding or supplying the file's: 0.65 (micrometres), 650nm, "
            "or ROW,COL",
        )
