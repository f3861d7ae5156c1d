"""What every subcommand shares: exit codes and error messages on stderr."""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def fail(message: str, prefix: str = "error") -> int:
    """Print ``<prefix>: <message>`` to stderr (no traceback) and return `EXIT_FAILURE`."""
    print(f"{prefix}: {message}", file=sys.stderr)
    return EXIT_FAILURE
