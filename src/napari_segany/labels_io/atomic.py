"""Write outputs so that an interrupted export never leaves a half-written file in their place.

Every writer of :mod:`napari_segany.labels_io` writes into a temporary sibling of its output (same
folder, so the final rename stays on one file system) and renames it into place only once the
whole output is written. An existing output is kept unless ``overwrite=True``; when it is replaced,
the old one is moved aside first and restored if the final rename fails.

Operating-system errors that users can fix (disk full, no permission, read-only file system) are
re-raised as :class:`LabelsWriteError` with a message that says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LabelsWriteError", "atomic_output", "remove_path"]

_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NO_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}


class LabelsWriteError(OSError):
    """Saving labels failed for a reason the user can fix (disk full, no permission).

    The original :class:`OSError` is chained as ``__cause__`` and its ``errno`` is kept.
    """


_REMOVE_ATTEMPTS = 6


def remove_path(path: str | os.PathLike) -> None:
    """Delete a file or a folder tree if it exists; never raises for a missing path."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        # A failed zarr write can leave sibling chunk writes running for a moment in zarr's
        # event loop; a file they create during or just after the removal brings the folder
        # back. So wait a moment after each removal and check that it stayed gone.
        for attempt in range(_REMOVE_ATTEMPTS):
            shutil.rmtree(path, ignore_errors=True)
            time.sleep(0.05 * (attempt + 1))
            if not path.exists():
                return
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _friendly(error: OSError, target: Path) -> OSError:
    """Turn disk-full and permission errors into a :class:`LabelsWriteError` saying what to do."""
    if isinstance(error, LabelsWriteError):
        return error
    if error.errno in _NO_SPACE:
        message = (
            f"Not enough disk space to save {target}. Free some space on that disk or choose a "
            f"folder on another disk, then save again. Nothing was changed at {target}."
        )
    elif error.errno in _NO_PERMISSION:
        message = (
            f"No permission to write {target} (the folder {target.parent} is read-only or "
            f"belongs to another user). Choose a folder you can write to, or change its "
            f"permissions, then save again."
        )
    else:
        return error
    return LabelsWriteError(error.errno, message)


def _temporary_sibling(target: Path, tag: str) -> Path:
    return target.with_name(f".{target.name}.{tag}-{uuid.uuid4().hex[:12]}")


def check_writable(target: str | os.PathLike, *, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; create missing parent folders.

    Returns
    -------
    pathlib.Path
        ``target`` as an absolute path.

    Raises
    ------
    FileExistsError
        ``target`` exists and ``overwrite`` is False.
    LabelsWriteError
        The parent folder cannot be created (no permission, disk full).
    """
    target = Path(target).expanduser().absolute()
    if target.exists() and not overwrite:
        raise FileExistsError(
            errno.EEXIST,
            f"{target} already exists. Choose another name, or pass overwrite=True "
            f"(--overwrite on the command line) to replace it.",
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _friendly(error, target) from error
    return target


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Context manager yielding a temporary sibling path to write ``target`` into.

    Write a file or a folder (a ``.zarr`` store) at the yielded path. When the block ends
    normally it is renamed to ``target``; when it raises, the temporary output is deleted and
    ``target`` is left exactly as it was.

    Parameters
    ----------
    target : path
        Final output path (file or folder).
    overwrite : bool
        Replace an existing ``target``. Without it a :class:`FileExistsError` is raised before
        anything is written.

    Raises
    ------
    FileExistsError
        ``target`` exists and ``overwrite`` is False (checked before and after writing).
    LabelsWriteError
        Disk full or no permission, with a message saying what to do.

    Examples
    --------
    >>> with atomic_output("cells.csv") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("id,area\\n")
    """
    target = check_writable(target, overwrite=overwrite)
    temporary = _temporary_sibling(target, "tmp")
    try:
        yield temporary
        _move_into_place(temporary, target, overwrite=overwrite)
    except OSError as error:
        remove_path(temporary)
        raise _friendly(error, target) from error
    except BaseException:
        remove_path(temporary)
        raise


def _move_into_place(temporary: Path, target: Path, *, overwrite: bool) -> None:
    if not temporary.exists():
        raise FileNotFoundError(errno.ENOENT, f"the writer produced nothing at {temporary}")
    if not target.exists() and not target.is_symlink():
        os.rename(temporary, target)
        return
    if not overwrite:
        raise FileExistsError(
            errno.EEXIST,
            f"{target} appeared while it was being written. Your output is not saved; choose "
            f"another name or pass overwrite=True.",
        )
    if temporary.is_file() and target.is_file():
        os.replace(temporary, target)  # atomic for files
        return
    # A folder cannot be replaced atomically: move the old one aside, then swap.
    aside = _temporary_sibling(target, "old")
    os.rename(target, aside)
    try:
        os.rename(temporary, target)
    except BaseException:
        os.rename(aside, target)
        raise
    remove_path(aside)
