"""Loading checkpoints: the published layouts, architecture recognition and clear errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import napari_segany
from napari_segany import CheckpointError, build_model, load_model
from napari_segany.models.checkpoint import ARCH_KEY, infer_architecture, read_checkpoint
from napari_segany.models.download import ModelFileNotFoundError
from napari_segany.models.loading import model_from_state_dict, resolve_device
from napari_segany.models.registry import MODELS, ModelInfo
from napari_segany.models.unetr_decoder import InstanceDecoder


@pytest.fixture(scope="module")
def vit_t_model():
    return build_model("vit_t", seed=3)


@pytest.fixture(scope="module")
def vit_t_file(tmp_path_factory, vit_t_model):
    """A MobileSAM-layout checkpoint file (layout A: plain state dict)."""
    path = tmp_path_factory.mktemp("ckpt") / "mobile_sam.pt"
    torch.save(vit_t_model.state_dict(), path)
    return path


def _same_outputs(a, b) -> bool:
    x = torch.rand(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0)) * 255
    with torch.inference_mode():
        return torch.equal(a.encode_image(a.normalize(x)), b.encode_image(b.normalize(x)))


def test_load_plain_state_dict_file(vit_t_file, vit_t_model):
    model = load_model(vit_t_file, device="cpu")
    assert model.architecture == "vit_t"
    assert not model.training
    assert _same_outputs(model, vit_t_model)


@pytest.mark.parametrize("layout", ["micro_sam_export", "our_file"])
def test_wrapped_layouts(tmp_path, vit_t_model, layout):
    state = vit_t_model.state_dict()
    if layout == "micro_sam_export":  # layout C: {"model_state", "decoder_state"}
        decoder_state = InstanceDecoder(transposed=False).state_dict()
        obj = {"model_state": state, "decoder_state": decoder_state}
    else:
        obj = {ARCH_KEY: "vit_t", "model_state": state}
    path = tmp_path / "model.pt"
    torch.save(obj, path)
    model = load_model(path, device="cpu")
    assert _same_outputs(model, vit_t_model)
    # an export brings its instance-segmentation decoder
    assert model.has_instance_decoder == (layout == "micro_sam_export")


def test_an_export_with_a_broken_decoder_names_it(tmp_path, vit_t_model):
    broken = {"out_conv.weight": torch.zeros(3, 64, 1, 1)}
    path = tmp_path / "model.pt"
    torch.save({"model_state": vit_t_model.state_dict(), "decoder_state": broken}, path)
    with pytest.raises(CheckpointError, match="decoder"):
        load_model(path, device="cpu")
    # the SAM weights alone still load
    assert _same_outputs(load_model(path, device="cpu", decoder=False), vit_t_model)


def test_training_checkpoint_with_pickled_classes_is_read_without_importing_them(
    tmp_path, vit_t_model
):
    """Layout D: a torch-em training checkpoint with a 'sam.' prefix and pickled class objects
    of training code that is not installed where the model is used."""
    trainer = types.ModuleType("fake_trainer_pkg")

    class Trainer:
        def __init__(self, lr):
            self.lr = lr

    Trainer.__module__ = "fake_trainer_pkg"
    Trainer.__qualname__ = "Trainer"
    trainer.Trainer = Trainer
    sys.modules["fake_trainer_pkg"] = trainer
    try:
        obj = {
            "iteration": 10,
            "model_state": {f"sam.{k}": v for k, v in vit_t_model.state_dict().items()},
            "init": {"trainer": Trainer(lr=1e-4), "cls": Trainer},
        }
        path = tmp_path / "best.pt"
        torch.save(obj, path)
    finally:
        del sys.modules["fake_trainer_pkg"]
    state, arch = read_checkpoint(path)
    assert arch is None
    assert "image_encoder.patch_embed.seq.0.c.weight" in state
    assert not any(k.startswith("sam.") for k in state)
    assert "fake_trainer_pkg" not in sys.modules
    assert _same_outputs(load_model(path, device="cpu"), vit_t_model)


@pytest.mark.parametrize(
    ("arch", "key", "shape"),
    [
        ("vit_b", "image_encoder.patch_embed.proj.weight", (768, 3, 16, 16)),
        ("vit_l", "image_encoder.patch_embed.proj.weight", (1024, 3, 16, 16)),
        ("vit_h", "image_encoder.patch_embed.proj.weight", (1280, 3, 16, 16)),
        ("vit_t", "image_encoder.patch_embed.seq.0.c.weight", (32, 3, 3, 3)),
    ],
)
def test_architecture_is_recognised_from_weights(arch, key, shape):
    assert infer_architecture({key: torch.empty(shape, device="meta")}) == arch


def test_truncated_file_gives_clear_error(tmp_path, vit_t_file):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(vit_t_file.read_bytes()[: vit_t_file.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="incomplete or damaged"):
        load_model(damaged, device="cpu")


def test_text_file_gives_clear_error(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match=r"Cannot read .*notes\.pth as a PyTorch model file"):
        load_model(path)


def test_other_torch_file_is_not_mistaken_for_sam(tmp_path):
    path = tmp_path / "unet.pt"
    torch.save({"encoder.conv.weight": torch.zeros(4, 1, 3, 3)}, path)
    with pytest.raises(CheckpointError, match="not a Segment Anything model"):
        load_model(path)


def test_decoder_only_file_is_explained(tmp_path):
    path = tmp_path / "vit_b_decoder.pt"
    torch.save({"base.block.1.weight": torch.zeros(2), "out_conv.weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="Decoder-only files"):
        load_model(path)


def test_pickled_non_dict_is_rejected(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="holds a Tensor"):
        load_model(path)


def test_mismatching_weights_name_the_keys(vit_t_model):
    state = dict(vit_t_model.state_dict())
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 128)
    del state["prompt_encoder.no_mask_embed.weight"]
    state["image_encoder.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        model_from_state_dict(state, source="my.pt")
    message = str(info.value)
    assert "my.pt does not match the vit_t architecture" in message
    assert "1 missing: prompt_encoder.no_mask_embed.weight" in message
    assert "1 unexpected: image_encoder.extra.weight" in message
    assert "mask_decoder.iou_token.weight (1, 128) vs (1, 256)" in message


def test_missing_file_and_unknown_name():
    with pytest.raises(ModelFileNotFoundError, match="file not found"):
        load_model("/nonexistent/dir/sam_vit_b.pth")
    with pytest.raises(ValueError, match="vit_b"):
        load_model("vit_bb")


def test_registry_model_is_downloaded_verified_and_loaded(
    tmp_path, monkeypatch, vit_t_file, vit_t_model
):
    """The full path of a registry name: file URL → cache (hash checked) → strict load."""
    digest = hashlib.sha256(vit_t_file.read_bytes()).hexdigest()
    info = ModelInfo(
        name="tiny_mobile_sam",
        architecture="vit_t",
        url=vit_t_file.as_uri(),
        known_hash=f"sha256:{digest}",
        size_bytes=vit_t_file.stat().st_size,
        license="Apache-2.0",
        description="test model",
        filename="tiny_mobile_sam.pt",
    )
    monkeypatch.setitem(MODELS, info.name, info)
    monkeypatch.setenv("NAPARI_SEGANY_CACHE", str(tmp_path / "cache"))
    model = load_model("tiny_mobile_sam", device="cpu")
    assert (tmp_path / "cache" / "tiny_mobile_sam.pt").is_file()
    assert _same_outputs(model, vit_t_model)


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="Unknown device"):
        resolve_device("gpu0")


def test_build_model_random_models_are_seeded_and_distinct():
    a = build_model("vit_b", img_size=256, seed=1)
    b = build_model("vit_b", img_size=256, seed=1)
    c = build_model("vit_b", img_size=256, seed=2)
    w = "image_encoder.blocks.0.attn.qkv.weight"
    assert torch.equal(a.state_dict()[w], b.state_dict()[w])
    assert not torch.equal(a.state_dict()[w], c.state_dict()[w])
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("vit_x")


PUBLIC_NAMES = {
    "__version__",
    "ARCHITECTURES",
    "MODELS",
    "CheckpointError",
    "ModelDownloadError",
    "Prediction",
    "Predictor",
    "SegmentationSession",
    "build_model",
    "load_model",
}


def test_importing_the_package_does_not_import_torch():
    """``import napari_segany``, its version and ``dir()`` stay light: torch comes on first use."""
    code = (
        "import sys, napari_segany\n"
        "napari_segany.__version__\n"
        "dir(napari_segany)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr


def test_public_api_is_complete():
    """The root exports exactly the public names, and every one of them resolves."""
    assert set(napari_segany.__all__) == PUBLIC_NAMES
    assert dir(napari_segany) == sorted(PUBLIC_NAMES)
    unresolved = [name for name in PUBLIC_NAMES if getattr(napari_segany, name, None) is None]
    assert unresolved == []
