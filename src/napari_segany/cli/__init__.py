"""Command line interface: ``napari-segany <command> ...`` (also ``python -m napari_segany``).

One module per subcommand (:mod:`.models`, :mod:`.segment`, :mod:`.embed`, :mod:`.train`,
:mod:`.features`, :mod:`.classify`),
each a pair of functions: ``add_<command>_parser(subparsers)`` builds its parser and sets
``func`` to ``run_<command>(args) -> int``. To add a command, write a module with the pair and
append the builder to `SUBCOMMANDS`.

This package must import fast: torch and the model code are imported only inside the commands
that need them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from napari_segany import __version__
from napari_segany.cli._common import EXIT_USAGE
from napari_segany.cli.classify import add_classify_parser
from napari_segany.cli.embed import add_embed_parser
from napari_segany.cli.features import add_features_parser
from napari_segany.cli.models import add_models_parser, run_models
from napari_segany.cli.segment import add_segment_parser
from napari_segany.cli.train import add_train_parser

__all__ = ["SUBCOMMANDS", "add_models_parser", "build_parser", "main", "run_models"]

#: Builders of the subcommand parsers, in the order shown by ``--help``.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], argparse.ArgumentParser]] = [
    add_models_parser,
    add_segment_parser,
    add_embed_parser,
    add_train_parser,
    add_features_parser,
    add_classify_parser,
]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand of `SUBCOMMANDS`.

    Returns
    -------
    argparse.ArgumentParser
        The ``napari-segany`` parser.
    """
    parser = argparse.ArgumentParser(
        prog="napari-segany",
        description="Segment Anything for microscopy: model management and batch tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        The exit code (argparse itself exits with 2 on a usage error).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return args.func(args)
