"""Models the user trained, kept by name in the ``trained/`` folder of the model cache.

:func:`napari_segany.training.finetune` copies each model it trains to
``<model cache>/trained/<name>.pt``. From then on the name works wherever a registry name does
(``load_model(name)``, ``--model NAME``) and ``napari-segany models`` lists it. Registry names
cannot be taken by a trained model, so ``segany_cells`` always means the packaged model.

Import-light (no torch): the command line lists these models without loading model code.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Collection
from pathlib import Path

from napari_segany.models.cache_folder import cache_dir

__all__ = [
    "PROVENANCE_KEY",
    "TRAINED_FOLDER",
    "check_model_name",
    "register_trained_model",
    "trained_dir",
    "trained_model_path",
    "trained_model_provenance",
    "trained_models",
]

#: Sub-folder of the model cache that holds trained models.
TRAINED_FOLDER = "trained"
#: Key of the JSON provenance record in a trained checkpoint.
PROVENANCE_KEY = "napari_segany_provenance"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def trained_dir() -> Path:
    """The folder of trained models: ``<model cache>/trained`` (not created here).

    The model cache is ``$NAPARI_SEGANY_CACHE`` or the user cache folder (see
    :func:`napari_segany.models.cache_folder.cache_dir`).
    """
    return cache_dir() / TRAINED_FOLDER


def check_model_name(name: str, reserved: Collection[str] = ()) -> str:
    """Return ``name`` if it can name a trained model, else raise ValueError saying why.

    A name is 1–64 letters, digits, ``_``, ``.`` or ``-`` (starting with a letter or digit), is
    not one of the ``reserved`` names (pass the registry's, ``MODELS``) and does not
    end in a weights suffix such as ``.pt``.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"{name!r} cannot name a model: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (e.g. 'my_nuclei')"
        )
    if name.lower() in {r.lower() for r in reserved}:
        raise ValueError(f"{name!r} is the name of a registry model; choose another name")
    if name.lower().endswith((".pt", ".pth", ".safetensors")):
        raise ValueError(f"{name!r} looks like a file name; give a name without the suffix")
    return name


def trained_models() -> dict[str, Path]:
    """Trained models in :func:`trained_dir`, name → file, sorted by name."""
    folder = trained_dir()
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.pt")) if path.is_file()}


def trained_model_path(name: str) -> Path | None:
    """The file of the trained model called ``name``, or None when there is none."""
    if not isinstance(name, str) or not _NAME_RE.match(name.strip()):
        return None
    path = trained_dir() / f"{name.strip()}.pt"
    return path if path.is_file() else None


def register_trained_model(path: str | Path, name: str, provenance: dict) -> Path:
    """Copy a trained checkpoint into :func:`trained_dir` as ``<name>.pt`` (replacing one of
    that name), with its provenance beside it as ``<name>.json`` (for listing models without
    reading checkpoints). Both are written through a temporary file and a rename.

    Returns
    -------
    Path
        The registered checkpoint.
    """
    check_model_name(name)
    folder = trained_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.pt"
    if Path(path).resolve() != target.resolve():
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
    record = target.with_suffix(".json")
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps(provenance, indent=1), encoding="utf-8")
    tmp.replace(record)
    return target


def trained_model_provenance(name: str) -> dict:
    """The provenance recorded beside a trained model ({} when there is none or it is
    unreadable)."""
    path = trained_model_path(name)
    if path is None:
        return {}
    try:
        record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
