"""Model cache: find, verify and download SAM weights files.

Files live in one flat folder, :func:`cache_dir` (``$NAPARI_SEGANY_CACHE`` or the user cache
folder). A file is only ever handed out after its hash matched the registry. Downloads go through
:func:`pooch.retrieve`, which writes to a temporary file and renames it only after the hash check,
so an interrupted or corrupt download never appears under the final name.

Hash results are remembered for the life of the process (keyed by path, size and modification
time), so asking twice for a 2.5 GB checkpoint hashes it once.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.parse
import urllib.request
from importlib import resources
from pathlib import Path

import pooch

from napari_segany.models.cache_folder import CACHE_ENV_VAR, cache_dir
from napari_segany.models.registry import (
    ModelInfo,
    UnknownModelError,
    get_model_info,
    unknown_model_message,
)
from napari_segany.models.trained import trained_model_path

__all__ = [
    "CACHE_ENV_VAR",
    "WEIGHT_SUFFIXES",
    "ModelDownloadError",
    "ModelFileNotFoundError",
    "cache_dir",
    "cached_path",
    "fetch_model",
    "is_cached",
    "resolve_model_path",
    "verify_file",
]

logger = logging.getLogger(__name__)

#: File suffixes that mark a string as a weights file path rather than a model name.
WEIGHT_SUFFIXES: tuple[str, ...] = (".pt", ".pth", ".safetensors")

_HTTP_CHUNK_BYTES = 1 << 20
_HTTP_TIMEOUT_S = 60
_COPY_CHUNK_BYTES = 1 << 20

# (absolute path, known hash) -> (size, mtime_ns) of a file whose hash matched
_VERIFIED: dict[tuple[str, str], tuple[int, int]] = {}


class ModelDownloadError(RuntimeError):
    """A model file could not be obtained (offline, HTTP error, hash mismatch, corrupt package).

    The message says which model, from where, why, and the exact path at which a file downloaded
    by hand will be picked up.

    Attributes
    ----------
    model : str
        Model name.
    url : str or None
        URL that was tried.
    path : pathlib.Path
        Where the verified file must end up.
    known_hash : str
        Expected hash, ``"<algorithm>:<hex>"``.
    reason : str
        The underlying error text.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        url: str | None,
        path: Path,
        known_hash: str,
        reason: str,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.url = url
        self.path = path
        self.known_hash = known_hash
        self.reason = reason


class ModelFileNotFoundError(FileNotFoundError, ValueError):
    """A path given as a model does not exist (a `FileNotFoundError` and a `ValueError`)."""


# --------------------------------------------------------------------------------------------
# cache locations


def _weights_dir() -> Path:
    """Return the folder of the weights packaged with napari-segany."""
    return Path(str(resources.files("napari_segany").joinpath("weights")))


def _info(model: str | ModelInfo) -> ModelInfo:
    """Return the registry entry for a name, or the entry itself."""
    return model if isinstance(model, ModelInfo) else get_model_info(model)


def cached_path(name: str | ModelInfo) -> Path:
    """Return where the file of a registry model lives (or will, once downloaded).

    A file placed at this path by hand (e.g. copied from another computer) is picked up by
    :func:`fetch_model` if its hash matches.

    Parameters
    ----------
    name : str or ModelInfo
        Registry name (or entry).

    Returns
    -------
    pathlib.Path
        ``cache_dir() / info.filename``; for a bundled model, the packaged file.

    Raises
    ------
    UnknownModelError
        If the name is not in the registry.
    """
    info = _info(name)
    if info.bundled is not None:
        return _weights_dir() / info.bundled
    return cache_dir() / info.filename


def is_cached(name: str | ModelInfo) -> bool:
    """Tell whether the file of a model is present locally (cheap: the hash is not checked).

    Parameters
    ----------
    name : str or ModelInfo
        Registry name (or entry).

    Returns
    -------
    bool
        True if :func:`cached_path` is an existing file. A bundled model is always present in a
        complete installation.
    """
    return cached_path(name).is_file()


# --------------------------------------------------------------------------------------------
# hashing


def _stat_key(path: Path) -> tuple[int, int]:
    """Return (size, mtime in ns) of a file."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _remember_verified(path: Path, known_hash: str) -> None:
    """Record that `path`, as it is now, matches `known_hash`."""
    _VERIFIED[(str(path.absolute()), known_hash.lower())] = _stat_key(path)


def verify_file(path: str | os.PathLike, known_hash: str) -> bool:
    """Check a file against a hash, reading it in chunks.

    A positive result is remembered for this process, keyed by the file's absolute path, size and
    modification time, so verifying an unchanged file again costs one ``stat``.

    Parameters
    ----------
    path : str or os.PathLike
        File to check.
    known_hash : str
        Expected hash in pooch's form, e.g. ``"sha256:<hex>"`` or ``"xxh128:<hex>"`` (a bare hex
        digest means SHA-256).

    Returns
    -------
    bool
        True if the file exists and its hash matches.

    Raises
    ------
    ValueError
        If the hash algorithm is not available (e.g. ``xxh128`` without the ``xxhash`` package).
    """
    path = Path(path)
    if not path.is_file():
        return False
    key = (str(path.absolute()), known_hash.lower())
    if _VERIFIED.get(key) == _stat_key(path):
        return True
    algorithm = pooch.hashes.hash_algorithm(known_hash)
    expected = known_hash.rsplit(":", 1)[-1].lower()
    matches = pooch.file_hash(str(path), alg=algorithm).lower() == expected
    if matches:
        _remember_verified(path, known_hash)
    else:
        _VERIFIED.pop(key, None)
    return matches


# --------------------------------------------------------------------------------------------
# downloading


class _FileURLDownloader:
    """A pooch downloader for ``file://`` URLs (pooch has none): a chunked local copy."""

    def __call__(self, url: str, output_file, pooch_instance) -> None:
        """Copy the file named by `url` to `output_file` (a path or a binary file object)."""
        source = _file_url_to_path(url)
        with open(source, "rb") as src:
            if hasattr(output_file, "write"):
                shutil.copyfileobj(src, output_file, _COPY_CHUNK_BYTES)
            else:
                with open(output_file, "wb") as dst:
                    shutil.copyfileobj(src, dst, _COPY_CHUNK_BYTES)


def _file_url_to_path(url: str) -> Path:
    """Convert a ``file://`` URL to a local path."""
    parsed = urllib.parse.urlparse(url)
    location = parsed.path
    if parsed.netloc and parsed.netloc != "localhost":
        location = f"//{parsed.netloc}{location}"  # UNC share on Windows
    return Path(urllib.request.url2pathname(location))


def _downloader_for(url: str, progress: bool):
    """Pick the pooch downloader for a URL: our own for ``file://``, pooch's otherwise."""
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme == "file":
        return _FileURLDownloader()
    if scheme in ("http", "https"):
        return pooch.HTTPDownloader(
            progressbar=progress, chunk_size=_HTTP_CHUNK_BYTES, timeout=_HTTP_TIMEOUT_S
        )
    return pooch.downloaders.choose_downloader(url, progressbar=progress)


def _error(info: ModelInfo, path: Path, reason: str, *, bundled: bool = False):
    """Build the one user-facing ModelDownloadError for a model."""
    if bundled:
        message = (
            f"The weights of model {info.name!r} packaged with napari-segany are missing or "
            f"corrupt (reason: {reason}). Reinstall napari-segany. Expected file: {path} "
            f"with hash {info.known_hash}."
        )
    else:
        message = (
            f"Could not download model {info.name!r} from {info.url} (reason: {reason}).\n"
            "If this computer is offline, download the file elsewhere and put it at:\n"
            f"    {path}\n"
            f"Expected hash: {info.known_hash}"
        )
        if info.size_bytes is not None:
            message += f" (size: {info.size_bytes:,} bytes)"
    return ModelDownloadError(
        message,
        model=info.name,
        url=info.url,
        path=path,
        known_hash=info.known_hash,
        reason=reason,
    )


def _move_aside(path: Path) -> Path:
    """Rename a file that failed its hash check to ``<name>.corrupt`` (replacing an older one)."""
    target = path.with_name(path.name + ".corrupt")
    os.replace(path, target)
    logger.warning("%s does not match its known hash; moved it to %s", path, target)
    return target


def _check_free_space(info: ModelInfo, path: Path) -> None:
    """Raise ModelDownloadError if the cache folder clearly lacks room for the file."""
    if info.size_bytes is None:
        return
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return
    if free < info.size_bytes:
        reason = (
            f"not enough free disk space in {path.parent}: "
            f"{info.size_bytes / 1e6:.0f} MB needed, {free / 1e6:.0f} MB free"
        )
        raise _error(info, path, reason)


def _download(info: ModelInfo, path: Path, progress: bool) -> Path:
    """Download `info` to `path` with pooch (temporary file, hash check, rename)."""
    if info.url is None:
        raise _error(info, path, "the model has no download URL")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_free_space(info, path)
        pooch.retrieve(
            info.url,
            known_hash=info.known_hash,
            fname=path.name,
            path=path.parent,
            downloader=_downloader_for(info.url, progress),
            progressbar=progress,
        )
    except ModelDownloadError:
        raise
    except (OSError, ValueError) as exc:  # requests' errors are OSErrors; hash mismatch ValueError
        raise _error(info, path, _reason(exc)) from None
    _remember_verified(path, info.known_hash)
    return path


def _reason(exc: BaseException) -> str:
    """Return ``"<exception type>: <text>"`` for an exception (the type alone if no text)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fetch_bundled(info: ModelInfo) -> Path:
    """Return the packaged weights file of `info` after checking its hash."""
    path = cached_path(info)
    if not path.is_file():
        raise _error(info, path, "file not found", bundled=True)
    if not verify_file(path, info.known_hash):
        raise _error(info, path, "hash mismatch", bundled=True)
    return path


def fetch_model(name: str | ModelInfo, progress: bool = True) -> Path:
    """Return a local, hash-verified weights file for a registry model, downloading if needed.

    - A cached file whose hash matches is returned without any network access (and, within one
      process, without hashing it again).
    - A cached file whose hash does not match (truncated, corrupt, outdated) is never returned:
      it is renamed to ``<file>.corrupt`` and the model is downloaded again.
    - A bundled model's packaged file is verified and returned; it is never downloaded.

    Parameters
    ----------
    name : str or ModelInfo
        Registry name (or entry).
    progress : bool, optional
        Show a tqdm progress bar on stderr while downloading.

    Returns
    -------
    pathlib.Path
        The verified file, at :func:`cached_path`.

    Raises
    ------
    UnknownModelError
        If the name is not in the registry.
    ModelDownloadError
        If the file is not cached and cannot be downloaded (offline, HTTP error, hash mismatch,
        disk full). The message names the model, the URL, the expected hash and the exact path
        where a manually downloaded file will be picked up.
    """
    info = _info(name)
    if info.bundled is not None:
        return _fetch_bundled(info)
    path = cached_path(info)
    if path.is_file():
        if verify_file(path, info.known_hash):
            return path
        _move_aside(path)
    return _download(info, path, progress)


# --------------------------------------------------------------------------------------------
# names or paths


def _looks_like_path(text: str) -> bool:
    """Tell whether a string is meant as a file path rather than a model name."""
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return (
        any(sep in text for sep in separators)
        or text.startswith("~")
        or text.lower().endswith(WEIGHT_SUFFIXES)
    )


def _find_model(text: str) -> ModelInfo | None:
    """Return the registry entry for `text`, or None."""
    try:
        return get_model_info(text)
    except UnknownModelError:
        return None


def resolve_model_path(
    name_or_path: str | os.PathLike, progress: bool = True
) -> tuple[Path, ModelInfo | None]:
    """Turn a weights file path or a registry model name into a local file.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        An existing file (``~`` is expanded), the name of a registry model, or the name of a
        model the user trained (:mod:`napari_segany.models.trained`).
    progress : bool, optional
        Show a progress bar if a registry model has to be downloaded.

    Returns
    -------
    path : pathlib.Path
        The file. An existing path is returned as given (only ``~`` expanded, not verified).
    info : ModelInfo or None
        The registry entry for a registry name, None for a file path or a trained model.

    Raises
    ------
    ModelFileNotFoundError
        (a `FileNotFoundError` and a `ValueError`) for a path-looking argument (a `Path`, or a
        string with a path separator, a leading ``~`` or a ``.pt``/``.pth``/``.safetensors``
        suffix) that is not an existing file. The message is ``"file not found: <absolute path>"``.
    UnknownModelError
        (a `KeyError` and a `ValueError`) for anything else that is neither an existing file nor a
        known model; the message lists the known models and suggests close matches.
    ModelDownloadError
        If a registry model cannot be downloaded.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path, None
    if isinstance(name_or_path, str):
        info = _find_model(text)
        if info is not None:
            return fetch_model(info, progress=progress), info
        trained = trained_model_path(text)
        if trained is not None:
            return trained, None
    if not isinstance(name_or_path, str) or _looks_like_path(text):
        what = "is a directory, not a file" if path.is_dir() else "file not found"
        raise ModelFileNotFoundError(f"{what}: {path.absolute()}")
    raise UnknownModelError(
        unknown_model_message(text, "is neither an existing file nor a known model")
    )
