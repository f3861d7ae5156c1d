"""Tests for the model registry (no network, no files)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from napari_segany.models.registry import (
    ARCHITECTURE_NAMES,
    MODELS,
    ModelInfo,
    UnknownModelError,
    available_models,
    get_model_info,
)

OFFICIAL = ("vit_h", "vit_l", "vit_b", "vit_t")
MICRO_SAM = (
    "vit_l_lm",
    "vit_b_lm",
    "vit_t_lm",
    "vit_l_em_organelles",
    "vit_b_em_organelles",
    "vit_t_em_organelles",
)
# published on micro-sam's own file server, not on BioImage.IO
HISTOPATHOLOGY = ("vit_b_histopathology", "vit_l_histopathology", "vit_h_histopathology")


def _info(**changes) -> ModelInfo:
    fields = {
        "name": "tiny",
        "architecture": "vit_b",
        "url": "https://example.org/tiny.pt",
        "known_hash": "sha256:" + "0" * 64,
        "size_bytes": 10,
        "license": "Apache-2.0",
        "description": "a test model",
        "filename": "tiny.pt",
    }
    fields.update(changes)
    return ModelInfo(**fields)


EMBEDDED = ("segany_cells",)


def test_registry_has_exactly_the_expected_models(cache):
    assert set(MODELS) == set(OFFICIAL) | set(MICRO_SAM) | set(HISTOPATHOLOGY) | set(EMBEDDED)
    assert available_models() == list(MODELS)
    assert not any(name.endswith("_decoder") for name in MODELS)


@pytest.mark.parametrize("name", list(MODELS))
def test_entry_is_consistent(name):
    info = MODELS[name]
    assert info.name == name
    assert info.architecture in ARCHITECTURE_NAMES
    assert name.startswith(info.architecture)
    if name in EMBEDDED:
        assert info.url is None and info.bundled == info.filename
    else:
        assert info.url is not None and info.url.startswith("https://")
        assert info.bundled is None
    assert re.fullmatch(r"sha256:[0-9a-f]{64}|xxh128:[0-9a-f]{32}", info.known_hash)
    assert info.size_bytes is None or (isinstance(info.size_bytes, int) and info.size_bytes > 0)
    assert info.description and "\n" not in info.description
    assert "/" not in info.filename


def test_official_checkpoints_use_sha256_and_sizes():
    for name in OFFICIAL:
        info = MODELS[name]
        assert info.hash_algorithm == "sha256"
        assert info.license == "Apache-2.0"
        assert info.size_bytes is not None
    vit_b = MODELS["vit_b"]
    assert vit_b.url == "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth"
    assert vit_b.known_hash == (
        "sha256:ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"
    )
    assert vit_b.size_bytes == 375_042_383
    assert vit_b.filename == "sam_vit_b_01ec64.pth"
    assert MODELS["vit_t"].filename == "mobile_sam.pt"
    assert "MobileSAM" in MODELS["vit_t"].description


def test_micro_sam_models_use_xxh128_and_cc_by():
    for name in MICRO_SAM:
        info = MODELS[name]
        assert info.hash_algorithm == "xxh128"
        assert info.license == "CC-BY-4.0"
        assert info.size_bytes is None
        assert "micro-sam" in info.description
        assert info.url.startswith("https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/")
        assert info.url.endswith(f"/files/{info.architecture}.pt")
    assert MODELS["vit_b_lm"].url.endswith("/diplomatic-bug/1.2/files/vit_b.pt")
    assert MODELS["vit_b_lm"].known_hash == "xxh128:fe9252a29f3f4ea53c15a06de471e186"


def test_every_micro_sam_model_has_a_hash_checked_decoder():
    for name in MICRO_SAM + HISTOPATHOLOGY:
        info = MODELS[name]
        assert info.has_decoder, name
        assert info.license == "CC-BY-4.0" and info.hash_algorithm == "xxh128"
        assert info.decoder.hash_algorithm == "xxh128"
        assert info.decoder.url != info.url and info.decoder.filename != info.filename
    # micro-sam's annotator settings for lm and em models (histopathology: generate()'s defaults)
    assert {MODELS[name].decoder_settings.min_size for name in MICRO_SAM} == {100}
    assert MODELS["vit_b_lm"].decoder_settings.center_distance_threshold == 0.4
    for name in OFFICIAL + EMBEDDED:
        assert not MODELS[name].has_decoder, name


def test_cache_file_names_are_unique():
    names = [info.filename for info in MODELS.values()]
    assert len(names) == len(set(names))


def test_model_info_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MODELS["vit_b"].url = "https://example.org"


def test_get_model_info():
    assert get_model_info("vit_b_lm") is MODELS["vit_b_lm"]
    assert get_model_info(" VIT_B ") is MODELS["vit_b"]


def test_unknown_name_lists_models_and_suggests():
    with pytest.raises(UnknownModelError) as excinfo:
        get_model_info("vit_b_lmm")
    message = str(excinfo.value)
    assert "Did you mean 'vit_b_lm'" in message
    for name in MODELS:
        assert name in message
    assert not message.startswith('"')  # not KeyError's quoted repr
    # catchable as both KeyError and ValueError
    with pytest.raises(KeyError):
        get_model_info("nope")
    with pytest.raises(ValueError, match="Available models"):
        get_model_info("nope")


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"architecture": "vit_x"}, "architecture"),
        ({"known_hash": "md5"}, "known_hash"),
        ({"known_hash": "sha256:abc"}, "64 hex"),
        ({"known_hash": "xxh128:" + "A" * 32}, "lowercase"),
        ({"url": None}, "url or a bundled"),
        ({"filename": "a/b.pt"}, "bare file name"),
        ({"description": "two\nlines"}, "single line"),
    ],
)
def test_model_info_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        _info(**changes)


def test_bundled_entry_may_have_no_url():
    info = _info(url=None, bundled="tiny.pt")
    assert info.is_bundled
    assert not _info().is_bundled


def test_architecture_names_match_the_buildable_architectures():
    from napari_segany.models.architectures import ARCHITECTURES

    assert set(ARCHITECTURE_NAMES) == set(ARCHITECTURES)


def test_embedded_model_is_the_default_and_ships_with_the_package():
    from napari_segany.models.download import cached_path, fetch_model
    from napari_segany.models.registry import DEFAULT_MODEL

    assert DEFAULT_MODEL in MODELS
    path = cached_path(DEFAULT_MODEL)
    assert path.is_file() and path.stat().st_size < 20e6
    assert fetch_model(DEFAULT_MODEL) == path  # hash verified, nothing downloaded
