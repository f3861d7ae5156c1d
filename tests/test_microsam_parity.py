"""micro-sam's instance-segmentation decoders ("AIS") against micro-sam's own code (issue 22).

A small SAM (``segment_anything``'s modeling classes, random weights) and a decoder made by
micro-sam's ``get_unetr`` with its default random initialisation, saved as micro-sam writes decoder
files: the UNETR state dict without its ``encoder.*`` weights (``JointSamTrainer.save_checkpoint``,
``export_instance_segmentation_model``), written with ``torch.save``. On the same image:

* the foreground, centre-distance and boundary-distance maps of
  ``InstanceSegmentationWithDecoder.initialize`` against ours (``decoder_maps``), both decoding
  one embedding;
* the labels of its ``generate`` against ours (``automatic.segment(method="decoder")``) with the
  same settings, end to end from the image: accuracy at IoU 0.5 and pixel agreement;
* both up-sampling variants micro-sam reads (bilinear + 1×1 convolution, and 2×2 transposed
  convolutions, told apart by the ``decoder.samplers.*`` keys), and a decoder whose norm layers
  hold trained-looking values;
* strict loading: a missing key, an extra key or a wrong shape is a ``CheckpointError`` naming it.

micro-sam runs its decoder as ``get_decoder`` returns it, in training mode: the batch norms of the
``deconv`` blocks normalise with the statistics of the image's own embedding, not with the running
statistics stored in the file. Reproducing micro-sam means doing the same.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("micro_sam", reason="micro-sam is the reference (scripts/test.sh installs it)")

from napari_segany import CheckpointError, Predictor
from napari_segany.automatic import matching_accuracy, pixel_agreement
from napari_segany.image.prep import to_rgb_uint8
from napari_segany.synthetic import generate_nuclei
from reference_models import ours_from_reference, small_reference_sam

SIZE = 256  # model input: 16 × 16 embedding, 256² decoder output
SMALL = dict(dim=96, depth=4, heads=4, glob=(1, 3))
MAP_NAMES = ("foreground", "center_distances", "boundary_distances")
# (name, up-sampling with transposed convolutions, norm layers given trained-looking values)
VARIANTS = {
    "interpolation": (False, False),
    "transposed": (True, False),
    "interpolation, trained norms": (False, True),
}
SETTINGS = {
    "defaults": dict(
        center_distance_threshold=0.5,
        boundary_distance_threshold=0.5,
        foreground_threshold=0.5,
        foreground_smoothing=1.0,
        distance_smoothing=1.6,
        min_size=0,
    ),
    "custom": dict(
        center_distance_threshold=0.5,
        boundary_distance_threshold=0.55,
        foreground_threshold=0.45,
        foreground_smoothing=0.8,
        distance_smoothing=2.2,
        min_size=25,
    ),
    "no smoothing": dict(
        center_distance_threshold=0.5,
        boundary_distance_threshold=0.5,
        foreground_threshold=0.5,
        foreground_smoothing=0.0,
        distance_smoothing=0.0,
        min_size=10,
    ),
}


@pytest.fixture(scope="module")
def ms(reference_sam):
    """micro-sam's modules (imported once the torchvision stub is in place)."""
    from micro_sam import instance_segmentation, util

    return SimpleNamespace(instance_segmentation=instance_segmentation, util=util)


@pytest.fixture(scope="module")
def reference(reference_sam):
    """A reference SAM with a shrunken ViT (256² input) and random weights."""
    return small_reference_sam(reference_sam, size=SIZE, **SMALL)


def _our_sam(reference):
    return ours_from_reference(reference, size=SIZE, **SMALL)


def _microsam_decoder_state(ms, image_encoder, transposed: bool, trained_norms: bool):
    """A decoder state as micro-sam writes it: ``get_unetr``'s UNETR with micro-sam's default
    random initialisation, without the ``encoder.*`` weights.

    micro-sam builds the transposed-convolution variant only for a decoder state whose sampler
    keys say so; with ``flexible_load_checkpoint`` every weight the state lacks keeps its
    random initialisation.
    """
    torch.manual_seed(7 if transposed else 5)
    if transposed:
        hint = {"decoder.samplers.0.block.weight": torch.empty(0)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            unetr = ms.instance_segmentation.get_unetr(
                image_encoder, decoder_state=hint, device="cpu", flexible_load_checkpoint=True
            )
    else:
        unetr = ms.instance_segmentation.get_unetr(image_encoder, decoder_state=None, device="cpu")
    state = {k: v.clone() for k, v in unetr.state_dict().items() if not k.startswith("encoder")}
    if trained_norms:  # batch-norm scales, shifts and running statistics far from their defaults
        gen = torch.Generator().manual_seed(11)
        for key, value in state.items():
            if key.startswith("deconv") and ".block.2." in key and value.is_floating_point():
                if key.endswith(("weight", "running_var")):
                    state[key] = 0.5 + torch.rand(value.shape, generator=gen)
                elif key.endswith(("bias", "running_mean")):
                    state[key] = 0.3 * torch.randn(value.shape, generator=gen)
    return state


@pytest.fixture(scope="module", params=list(VARIANTS))
def pair(request, ms, reference, tmp_path_factory):
    """(micro-sam segmenter, our model with the decoder attached, decoder file, variant name)."""
    from napari_segany.models.decoder_checkpoint import attach_decoder

    transposed, trained_norms = VARIANTS[request.param]
    state = _microsam_decoder_state(ms, reference.image_encoder, transposed, trained_norms)
    path = tmp_path_factory.mktemp("decoder") / "vit_small_decoder.pt"
    torch.save(state, path)
    # micro-sam's own reading of the file (get_predictor_and_decoder → get_decoder)
    decoder = ms.instance_segmentation.get_decoder(
        reference.image_encoder, torch.load(path, weights_only=False), device="cpu"
    )
    has_blocks = any(".block." in k for k in decoder.state_dict() if k.startswith("decoder.samp"))
    assert has_blocks == transposed
    segmenter = ms.instance_segmentation.InstanceSegmentationWithDecoder(
        ms.util.SamPredictor(reference), decoder
    )
    ours = attach_decoder(_our_sam(reference), path)
    return SimpleNamespace(
        microsam=segmenter, microsam_util=ms.util, ours=ours, path=path, name=request.param
    )


def _nuclei(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A uint8 nuclei image stretched so that both pipelines pass it to the encoder unchanged:
    micro-sam scales each channel between its min and max, we between robust percentiles; with
    more than 1% of pixels at 0 and 255 both are the identity."""
    image, _ = generate_nuclei(
        shape, n_objects=shape[0] * shape[1] // 900, seed=seed, dtype=np.uint8
    )
    low, high = np.percentile(image, [2, 99])
    return np.clip((image - low) * 255.0 / (high - low), 0, 255).round().astype(np.uint8)


def _microsam_maps(segmenter) -> dict[str, np.ndarray]:
    state = segmenter.get_state()
    return {name: np.asarray(state[name]) for name in MAP_NAMES}


@pytest.mark.parametrize("shape", [(300, 200), (256, 208)], ids=["resized", "model size"])
def test_maps_match_microsam(pair, shape):
    """One embedding (ours) decoded by both: the maps agree to float rounding."""
    from napari_segany.inference.decoder_maps import decoder_maps

    image = _nuclei(shape, seed=1)
    predictor = Predictor(pair.ours)
    predictor.set_image(image)
    embedding = predictor.get_embedding()
    pair.microsam.initialize(
        image,
        image_embeddings={
            "features": embedding.features.detach().cpu().numpy(),
            "input_size": tuple(embedding.input_size),
            "original_size": tuple(embedding.original_size),
        },
    )
    expected = _microsam_maps(pair.microsam)
    got = decoder_maps(pair.ours, embedding)
    for name in MAP_NAMES:
        ours = getattr(got, name)
        assert ours.shape == shape and ours.dtype == np.float32, name
        np.testing.assert_allclose(ours, expected[name], rtol=0, atol=1e-4, err_msg=name)
    # random weights still give maps that cross the thresholds: a non-trivial comparison
    assert 0.02 < (expected["foreground"] > 0.5).mean() < 0.98


@pytest.mark.parametrize("settings", list(SETTINGS))
def test_labels_match_microsam(pair, settings):
    """From the image to labels, each with its own encoder pass and post-processing."""
    from napari_segany.automatic import segment
    from napari_segany.inference.decoder_maps import decoder_maps

    image = _nuclei((SIZE, 208), seed=2)
    # precondition: both pipelines give the encoder the same pixels
    rgb = np.repeat(image[..., None], 3, axis=-1)
    np.testing.assert_array_equal(to_rgb_uint8(image), rgb)
    np.testing.assert_array_equal(pair.microsam_util._to_image(image), rgb)

    pair.microsam.initialize(image)
    expected = pair.microsam.generate(**SETTINGS[settings])
    result = segment(image, pair.ours, method="decoder", min_confidence=0.0, **SETTINGS[settings])
    labels = np.asarray(result.labels)
    assert labels.shape == image.shape and labels.dtype == np.uint32

    predictor = Predictor(pair.ours)
    predictor.set_image(image)
    maps = decoder_maps(pair.ours, predictor.get_embedding())
    map_diff = max(
        float(np.abs(getattr(maps, n) - m).max()) for n, m in _microsam_maps(pair.microsam).items()
    )
    accuracy = matching_accuracy(expected, labels)
    agreement = pixel_agreement(expected, labels)
    print(
        f"{pair.name}, {settings}: {expected.max()} micro-sam objects, {labels.max()} ours; "
        f"maps max |diff| {map_diff:.2e}, accuracy at IoU 0.5 {accuracy:.4f}, "
        f"pixel agreement {agreement:.5f}"
    )
    assert expected.max() >= 10  # a non-trivial comparison
    assert map_diff < 1e-3
    assert accuracy >= 0.98
    assert agreement >= 0.995


def _distance_maps(shape: tuple[int, int], seed: int) -> dict[str, np.ndarray]:
    """Decoder-like maps drawn from a synthetic nuclei image: foreground, distance to each
    object's centroid and inverted distance to its border (normalised per object), blurred and
    noisy, float32 in [0, 1]."""
    from scipy import ndimage

    _, labels = generate_nuclei(shape, n_objects=shape[0] * shape[1] // 700, seed=seed)
    rng = np.random.default_rng(seed)
    inside = ndimage.distance_transform_edt(labels > 0)
    ids = np.arange(1, int(labels.max()) + 1)
    depth = ndimage.maximum(inside, labels, ids)
    centroids = np.array(ndimage.center_of_mass(labels > 0, labels, ids)).reshape(-1, 2)
    rows, cols = np.indices(shape)
    lut = np.concatenate([[1.0], depth])
    to_border = np.where(labels > 0, 1 - inside / lut[labels], 1.0)
    to_centre = np.ones(shape)
    for i, (r, c) in zip(ids, centroids, strict=True):
        at = labels == i
        to_centre[at] = np.hypot(rows[at] - r, cols[at] - c) / (2 * depth[i - 1])
    maps = {
        "foreground": (labels > 0).astype(float),
        "center_distances": np.clip(to_centre, 0, 1),
        "boundary_distances": to_border,
    }
    return {
        name: np.clip(ndimage.gaussian_filter(m, 1.5) + rng.normal(0, 0.08, shape), 0, 1).astype(
            np.float32
        )
        for name, m in maps.items()
    }


@pytest.mark.parametrize(
    "sigmas", [(1.0, 1.6), (0.8, 1.1), (1.3, 2.2), (0.0, 0.0)], ids=lambda s: f"{s[0]}-{s[1]}"
)
def test_post_processing_matches_microsam(ms, sigmas):
    """The same maps through micro-sam's ``generate`` and our ``labels_from_distances``: smoothing
    (kernel radius, border), seeds (8-connected) and watershed (4-connected) as micro-sam's."""
    from napari_segany.inference.decoder_maps import DecoderMaps, labels_from_distances
    from napari_segany.models.decoder_settings import DecoderSettings

    maps = _distance_maps((384, 320), seed=0)
    settings = dict(
        SETTINGS["defaults"], foreground_smoothing=sigmas[0], distance_smoothing=sigmas[1]
    )
    segmenter = ms.instance_segmentation.InstanceSegmentationWithDecoder(None, None)
    segmenter.set_state(maps)
    expected = segmenter.generate(**settings)
    labels = labels_from_distances(DecoderMaps(**maps), DecoderSettings(**settings))
    accuracy = matching_accuracy(expected, labels)
    differing = round((1 - pixel_agreement(expected, labels)) * labels.size)
    print(
        f"sigmas {sigmas}: {expected.max()} objects; accuracy {accuracy:.4f}, {differing} px differ"
    )
    assert expected.max() >= 50
    assert accuracy == 1.0
    # the same labels, but for the order in which the two watersheds may flood equal heights
    assert differing <= 1


def _corrupt(path, tmp_path, change) -> tuple:
    state = torch.load(path, weights_only=True)
    key = change(state)
    bad = tmp_path / "bad_decoder.pt"
    torch.save(state, bad)
    return bad, key


def _drop(state):
    del state["out_conv.bias"]
    return "out_conv.bias"


def _add(state):
    state["decoder.blocks.3.block.1.weight"] = torch.zeros(64, 64, 3, 3)
    return "decoder.blocks.3.block.1.weight"


def _reshape(state):
    state["out_conv.weight"] = torch.zeros(4, 64, 1, 1)
    return "out_conv.weight"


@pytest.mark.parametrize("change", [_drop, _add, _reshape], ids=["missing", "extra", "shape"])
def test_strict_loading_names_the_key(pair, reference, tmp_path, change):
    from napari_segany.models.decoder_checkpoint import attach_decoder

    if pair.name != "interpolation":
        pytest.skip("one variant is enough")
    bad, key = _corrupt(pair.path, tmp_path, change)
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        attach_decoder(_our_sam(reference), bad)


def test_sam_checkpoint_is_not_a_decoder(reference, tmp_path):
    from napari_segany.models.decoder_checkpoint import attach_decoder

    path = tmp_path / "sam.pt"
    torch.save(reference.state_dict(), path)
    with pytest.raises(CheckpointError):
        attach_decoder(_our_sam(reference), path)


@pytest.mark.slow
def test_vit_b_1024_labels_match_microsam(ms, reference_sam, tmp_path):
    """The issue's target: a SAM vit_b checkpoint and a micro-sam decoder file (random weights)
    through ``load_model(checkpoint, decoder=...)`` and ``automatic.segment`` reproduce
    micro-sam's labels on a 1024² image."""
    from napari_segany import load_model
    from napari_segany.automatic import segment

    torch.manual_seed(0)
    sam = reference_sam.sam_model_registry["vit_b"]().eval()
    with torch.no_grad():
        for name, param in sam.named_parameters():
            if name.endswith(("pos_embed", "rel_pos_h", "rel_pos_w")):
                param.normal_(0, 0.05)
    checkpoint, decoder_file = tmp_path / "vit_b.pth", tmp_path / "vit_b_decoder.pt"
    torch.save(sam.state_dict(), checkpoint)
    torch.save(_microsam_decoder_state(ms, sam.image_encoder, False, False), decoder_file)

    image = _nuclei((1024, 1024), seed=3)
    segmenter = ms.instance_segmentation.InstanceSegmentationWithDecoder(
        ms.util.SamPredictor(sam),
        ms.instance_segmentation.get_decoder(
            sam.image_encoder, torch.load(decoder_file, weights_only=False), device="cpu"
        ),
    )
    segmenter.initialize(image)
    expected = segmenter.generate(**SETTINGS["defaults"])

    model = load_model(checkpoint, decoder=decoder_file, device="cpu")
    labels = np.asarray(
        segment(image, model, method="decoder", min_confidence=0.0, **SETTINGS["defaults"]).labels
    )
    accuracy = matching_accuracy(expected, labels)
    agreement = pixel_agreement(expected, labels)
    print(
        f"vit_b 1024²: {expected.max()} micro-sam objects, {labels.max()} ours; accuracy at "
        f"IoU 0.5 {accuracy:.4f}, pixel agreement {agreement:.5f}"
    )
    assert expected.max() >= 50
    assert accuracy >= 0.98
