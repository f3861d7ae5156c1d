"""Registry of the Segment Anything checkpoints that napari-segany knows how to fetch.

Every entry names one weights file: where to download it, its published hash (in pooch's
``"<algorithm>:<hex>"`` form), its size when known, its licence and the file name it gets in the
local cache. The facts come from the upstream projects (segment-anything, MobileSAM, micro-sam);
see ``shared/reference/sam-checkpoints.md`` sections 1 and 2.

This module is import-light on purpose (no torch, no pooch): the command line lists the models
without loading any model code.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from napari_segany.models.decoder_settings import DecoderSettings

__all__ = [
    "ARCHITECTURE_NAMES",
    "DEFAULT_MODEL",
    "MODELS",
    "ModelInfo",
    "UnknownModelError",
    "available_models",
    "get_model_info",
]

#: Encoder architectures a registry entry may declare.
ARCHITECTURE_NAMES: tuple[str, ...] = ("vit_h", "vit_l", "vit_b", "vit_t", "segany_cells")

#: The model used when none is named: small, shipped inside the package, works offline.
DEFAULT_MODEL = "segany_cells"

# hex digest lengths of the hash algorithms used in the registry
_HASH_HEX_LENGTH = {"sha256": 64, "xxh128": 32}
_HASH_RE = re.compile(r"^(?P<alg>[a-z0-9_]+):(?P<hex>[0-9a-f]+)$")


@dataclass(frozen=True)
class ModelInfo:
    """Description of one downloadable (or packaged) SAM weights file.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"vit_b_lm"``.
    architecture : str
        Encoder architecture, one of ``"vit_h"``, ``"vit_l"``, ``"vit_b"``, ``"vit_t"``.
    url : str or None
        Download URL (``https://``, ``http://`` or ``file://``). None for a model that ships inside
        the package (see `bundled`).
    known_hash : str
        Expected hash of the file in pooch's form, ``"sha256:<hex>"`` or ``"xxh128:<hex>"``.
    size_bytes : int or None
        File size in bytes, or None when it is not published.
    license : str
        SPDX identifier of the weights' licence.
    description : str
        One-line human readable description.
    filename : str
        Name of the file in the local model cache (and of the file a user may place there by hand).
    bundled : str or None, optional
        File name of a weights file packaged inside ``napari_segany/weights/``. A bundled model
        needs no download; its hash is still verified before use.
    decoder : ModelInfo or None, optional
        micro-sam's instance-segmentation decoder published with these weights (its own file,
        fetched and attached by :func:`~napari_segany.models.loading.load_model`).
    decoder_settings : DecoderSettings or None, optional
        How that decoder's maps are best turned into objects (default: micro-sam's).
    """

    name: str
    architecture: str
    url: str | None
    known_hash: str
    size_bytes: int | None
    license: str
    description: str
    filename: str
    bundled: str | None = None
    decoder: ModelInfo | None = None
    decoder_settings: DecoderSettings | None = None

    def __post_init__(self) -> None:
        """Check the entry for internal consistency."""
        if self.architecture not in ARCHITECTURE_NAMES:
            raise ValueError(
                f"model {self.name!r}: architecture {self.architecture!r} is not one of "
                f"{', '.join(ARCHITECTURE_NAMES)}"
            )
        _check_hash(self.name, self.known_hash)
        if self.url is None and self.bundled is None:
            raise ValueError(f"model {self.name!r}: needs a url or a bundled file")
        if not self.filename or "/" in self.filename or "\\" in self.filename:
            raise ValueError(f"model {self.name!r}: filename must be a bare file name")
        if "\n" in self.description:
            raise ValueError(f"model {self.name!r}: description must be a single line")

    @property
    def hash_algorithm(self) -> str:
        """str: Name of the hash algorithm of `known_hash` (``"sha256"`` or ``"xxh128"``)."""
        return self.known_hash.split(":", 1)[0]

    @property
    def has_decoder(self) -> bool:
        """bool: True when an instance-segmentation decoder is published with the weights."""
        return self.decoder is not None

    @property
    def is_bundled(self) -> bool:
        """bool: True when the weights ship inside the package."""
        return self.bundled is not None


def _check_hash(name: str, known_hash: str) -> None:
    """Raise ValueError unless `known_hash` is ``"<alg>:<lowercase hex>"`` of the right length."""
    match = _HASH_RE.match(known_hash)
    if match is None:
        raise ValueError(
            f"model {name!r}: known_hash {known_hash!r} must look like 'sha256:<hex>' "
            "or 'xxh128:<hex>' (lowercase hex)"
        )
    expected = _HASH_HEX_LENGTH.get(match["alg"])
    if expected is not None and len(match["hex"]) != expected:
        raise ValueError(
            f"model {name!r}: a {match['alg']} digest has {expected} hex digits, "
            f"got {len(match['hex'])}"
        )


class UnknownModelError(KeyError, ValueError):
    """A model name that is not in the registry.

    It is both a `KeyError` (a failed registry look-up) and a `ValueError` (a bad argument), so
    callers may catch either. Unlike a plain `KeyError`, ``str()`` gives the message unquoted.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_SAM_LICENSE = "Apache-2.0"
_MICRO_SAM_LICENSE = "CC-BY-4.0"
_SAM_BASE = "https://dl.fbaipublicfiles.com/segment_anything"
_BIOIMAGEIO_BASE = "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io"


def _sam(architecture: str, filename: str, sha256: str, size: int, description: str) -> ModelInfo:
    """Build the entry of an official Segment Anything checkpoint."""
    return ModelInfo(
        name=architecture,
        architecture=architecture,
        url=f"{_SAM_BASE}/{filename}",
        known_hash=f"sha256:{sha256}",
        size_bytes=size,
        license=_SAM_LICENSE,
        description=description,
        filename=filename,
    )


def _micro_sam(
    name: str,
    package: str,
    version: str,
    xxh128: str,
    description: str,
    decoder_xxh128: str,
    settings: DecoderSettings,
) -> ModelInfo:
    """Build the entry of a micro-sam finetune published on BioImage.IO, with its decoder.

    The cache file names carry the BioImage.IO version, so that a newer release of the same model
    becomes a new file instead of looking like a corrupt copy of the old one.
    """
    architecture = name[:5]
    files = f"{_BIOIMAGEIO_BASE}/{package}/{version}/files"
    return ModelInfo(
        name=name,
        architecture=architecture,
        url=f"{files}/{architecture}.pt",
        known_hash=f"xxh128:{xxh128}",
        size_bytes=None,
        license=_MICRO_SAM_LICENSE,
        description=f"micro-sam's {description}; BioImage.IO {package} {version}",
        filename=f"{name}-v{version}.pt",
        decoder=_decoder(name, f"{files}/{architecture}_decoder.pt", decoder_xxh128, version),
        decoder_settings=settings,
    )


def _decoder(name: str, url: str, xxh128: str, version: str | None = None) -> ModelInfo:
    """Build the entry of the instance-segmentation decoder file of the micro-sam model ``name``."""
    suffix = f"-v{version}" if version else ""
    return ModelInfo(
        name=f"{name}_decoder",
        architecture=name[:5],
        url=url,
        known_hash=f"xxh128:{xxh128}",
        size_bytes=None,
        license=_MICRO_SAM_LICENSE,
        description=f"micro-sam's instance-segmentation decoder for {name}",
        filename=f"{name}_decoder{suffix}.pt",
    )


def _histopathology(name: str, xxh128: str, url: str, decoder_xxh128: str, decoder_url: str):
    """Build the entry of a micro-sam histopathology model (published outside BioImage.IO)."""
    return ModelInfo(
        name=name,
        architecture=name[:5],
        url=url,
        known_hash=f"xxh128:{xxh128}",
        size_bytes=None,
        license=_MICRO_SAM_LICENSE,
        description=f"micro-sam's ViT-{name[4].upper()} histopathology generalist "
        "(nuclei in H&E and other stains)",
        filename=f"{name}.pt",
        decoder=_decoder(name, decoder_url, decoder_xxh128),
        # micro-sam's annotator has no recommended settings for these: its defaults apply
        decoder_settings=DecoderSettings(),
    )


def _ais(center: float, boundary: float, smoothing: float) -> DecoderSettings:
    """The decoder settings micro-sam's annotator uses for one of its models (objects of at
    least 100 pixels)."""
    return DecoderSettings(
        center_distance_threshold=center,
        boundary_distance_threshold=boundary,
        distance_smoothing=smoothing,
        min_size=100,
    )


_OWNCLOUD = "https://owncloud.gwdg.de/index.php/s"

_ENTRIES: tuple[ModelInfo, ...] = (
    ModelInfo(
        name="segany_cells",
        architecture="segany_cells",
        url=None,
        known_hash="sha256:566f347d3d2a4c48faa0bf35e2bfb4af39b905564b6b528f095cb275fca92ce3",
        size_bytes=10_570_977,
        license="BSD-3-Clause",
        description=(
            "napari-segany's embedded cell and nucleus model (CNN encoder, SAM decoder), trained "
            "on synthetic microscopy only; ships with the package, no download"
        ),
        filename="segany_cells_v7.pt",
        bundled="segany_cells_v7.pt",
    ),
    _sam(
        "vit_h",
        "sam_vit_h_4b8939.pth",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        2_564_550_879,
        "Segment Anything ViT-H (Meta AI): the largest, most accurate and slowest SAM",
    ),
    _sam(
        "vit_l",
        "sam_vit_l_0b3195.pth",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        1_249_524_607,
        "Segment Anything ViT-L (Meta AI)",
    ),
    _sam(
        "vit_b",
        "sam_vit_b_01ec64.pth",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        375_042_383,
        "Segment Anything ViT-B (Meta AI): the smallest original SAM",
    ),
    ModelInfo(
        name="vit_t",
        architecture="vit_t",
        url="https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
        known_hash="sha256:6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
        size_bytes=40_728_226,
        license="Apache-2.0",
        description="MobileSAM ViT-T: TinyViT encoder distilled from SAM, fast on a CPU",
        filename="mobile_sam.pt",
    ),
    _micro_sam(
        "vit_l_lm",
        "idealistic-rat",
        "1.2",
        "017f20677997d628426dec80a8018f9d",
        "ViT-L light microscopy generalist (cells, nuclei)",
        "2faeafa03819dfe03e7c46a44aaac64a",
        _ais(0.4, 0.4, 1.6),
    ),
    _micro_sam(
        "vit_b_lm",
        "diplomatic-bug",
        "1.2",
        "fe9252a29f3f4ea53c15a06de471e186",
        "ViT-B light microscopy generalist (cells, nuclei)",
        "708b15ac620e235f90bb38612c4929ba",
        _ais(0.4, 0.5, 2.0),
    ),
    _micro_sam(
        "vit_t_lm",
        "faithful-chicken",
        "1.1",
        "72ec5074774761a6e5c05a08942f981e",
        "ViT-T (MobileSAM) light microscopy generalist (cells, nuclei)",
        "3e914a5f397b0312cdd36813031f8823",
        _ais(0.5, 0.5, 2.0),
    ),
    _micro_sam(
        "vit_l_em_organelles",
        "humorous-crab",
        "1.2",
        "810b084b6e51acdbf760a993d8619f2d",
        "ViT-L electron microscopy organelle generalist",
        "334877640bfdaaabce533e3252a17294",
        _ais(0.3, 0.4, 1.2),
    ),
    _micro_sam(
        "vit_b_em_organelles",
        "noisy-ox",
        "1.2",
        "f3bf2ed83d691456bae2c3f9a05fb438",
        "ViT-B electron microscopy organelle generalist",
        "bb6398956a6b0132c26b631c14f95ce2",
        _ais(0.3, 0.4, 1.2),
    ),
    _micro_sam(
        "vit_t_em_organelles",
        "greedy-whale",
        "1",
        "253474720c497cce605e57c9b1d18fd9",
        "ViT-T (MobileSAM) electron microscopy organelle generalist",
        "8f897c7bb93174a4d1638827c4dd6f44",
        _ais(0.4, 0.5, 1.2),
    ),
    _histopathology(
        "vit_b_histopathology",
        "ffd1a2cd84570458b257bd95fdd8f974",
        f"{_OWNCLOUD}/sBB4H8CTmIoBZsQ/download",
        "6a66194dcb6e36199cbee2214ecf7213",
        f"{_OWNCLOUD}/KO9AWqynI7SFOBj/download",
    ),
    _histopathology(
        "vit_l_histopathology",
        "b591833c89754271023e901281dee3f2",
        f"{_OWNCLOUD}/IZgnn1cpBq2PHod/download",
        "46aab7765d4400e039772d5a50b55c04",
        f"{_OWNCLOUD}/oIs6VSmkOp7XrKF/download",
    ),
    _histopathology(
        "vit_h_histopathology",
        "bd1856dafc156a43fb3aa705f1a6e92e",
        f"{_OWNCLOUD}/L7AcvVz7DoWJ2RZ/download",
        "3ed9f87e46ad5e16935bd8d722c8dc47",
        f"{_OWNCLOUD}/1qAKxy5H0jgwZvM/download",
    ),
)

#: All known models, by name, in display order.
MODELS: dict[str, ModelInfo] = {info.name: info for info in _ENTRIES}


def available_models() -> list[str]:
    """Return the names of the known models: the registry's, then those the user trained.

    Returns
    -------
    list of str
        The keys of `MODELS` in registry order, then the trained models of the model cache by
        name (see :mod:`napari_segany.models.trained`).
    """
    from napari_segany.models.trained import trained_models

    return [*MODELS, *trained_models()]


def unknown_model_message(name: str, what: str = "is not a known model") -> str:
    """Compose the error text for an unknown model name, with close matches and all names.

    Parameters
    ----------
    name : str
        The name that was not found.
    what : str, optional
        The phrase that follows the quoted name.

    Returns
    -------
    str
        E.g. ``"'vit_bb' is not a known model. Did you mean 'vit_b'? Available models: ..."``.
    """
    names = available_models()
    message = f"{name!r} {what}."
    close = difflib.get_close_matches(str(name).strip().lower(), names, n=3, cutoff=0.6)
    if close:
        quoted = [repr(c) for c in close]
        options = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        message += f" Did you mean {options}?"
    return message + " Available models: " + ", ".join(names) + "."


def get_model_info(name: str) -> ModelInfo:
    """Look up a model by name (case-insensitive, surrounding spaces ignored).

    Parameters
    ----------
    name : str
        A key of `MODELS`, e.g. ``"vit_b_lm"``.

    Returns
    -------
    ModelInfo
        The registry entry.

    Raises
    ------
    UnknownModelError
        (a `KeyError` and a `ValueError`) if there is no such model. The message suggests close
        matches and lists the available names.
    """
    if isinstance(name, str):
        info = MODELS.get(name) or MODELS.get(name.strip().lower())
        if info is not None:
            return info
    raise UnknownModelError(unknown_model_message(name))
