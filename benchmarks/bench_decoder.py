"""Automatic segmentation with a micro-sam decoder: ours against micro-sam's own code, one run.

A SAM vit_b with random weights (``segment_anything``'s ``sam_model_registry["vit_b"]()``, position
tables randomised too) saved as a checkpoint, a decoder file with micro-sam's random
initialisation (``get_unetr``; the UNETR state dict without ``encoder.*``, as micro-sam writes
decoder files), and a 1024² synthetic nuclei image. Both pipelines, timed in the same process
with torch's default threads, best of ``--repeats`` runs each, alternating:

* micro-sam: ``precompute_image_embeddings`` (encoder), ``InstanceSegmentationWithDecoder
  .initialize`` on those embeddings (decoder), ``generate`` (post-processing);
* ours: ``load_model(checkpoint, decoder=file)``, then ``automatic.segment(image, model,
  method="decoder")`` end to end, and split into ``Predictor.set_image`` (encoder),
  ``decoder_maps`` (decoder) and ``labels_from_distances`` (post-processing).

Prints seconds per stage, the ratio ours / micro-sam, and how well our labels reproduce
micro-sam's: accuracy at IoU 0.5 (matched objects / (TP + FP + FN)), pixel agreement (pixels given
the same object or background by both, objects renamed after their match) and the largest map
difference. The image is an 8-bit one that both pipelines hand to the encoder unchanged (micro-sam
stretches each channel between its min and max, we between robust percentiles; see
``--raw-uint16`` for the 12-bit original, where the two normalisations differ).

Weights are random (no checkpoint can be downloaded here); speed does not depend on them.

Usage: python benchmarks/bench_decoder.py [--repeats 2] [--threads N] [--raw-uint16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _reference import import_micro_sam, import_segment_anything
from napari_segany import Predictor, load_model
from napari_segany.automatic import matching_accuracy, pixel_agreement, segment
from napari_segany.inference.decoder_maps import decoder_maps, labels_from_distances
from napari_segany.models.decoder_settings import DecoderSettings
from napari_segany.synthetic import generate_nuclei

SETTINGS = dict(
    center_distance_threshold=0.5,
    boundary_distance_threshold=0.5,
    foreground_threshold=0.5,
    foreground_smoothing=1.0,
    distance_smoothing=1.6,
    min_size=0,
)
MAP_NAMES = ("foreground", "center_distances", "boundary_distances")


def _image(size: int, raw: bool) -> np.ndarray:
    """A nuclei image: the 12-bit original, or stretched to 8 bits with more than 1% of pixels
    at 0 and at 255 (both pipelines then pass it to the encoder unchanged)."""
    image, _ = generate_nuclei((size, size), n_objects=size * size // 900, seed=3)
    if raw:
        return image
    low, high = np.percentile(image, [2, 99])
    return np.clip((image - low) * 255.0 / (high - low), 0, 255).round().astype(np.uint8)


def _files(folder: Path, sam_module, util, instance_segmentation) -> tuple[Path, Path, object]:
    """Write the random vit_b checkpoint and micro-sam decoder file; return them and the SAM."""
    torch.manual_seed(0)
    sam = sam_module.sam_model_registry["vit_b"]().eval()
    with torch.no_grad():  # random position tables (zeros in a fresh model) so all paths run
        for name, param in sam.named_parameters():
            if name.endswith(("pos_embed", "rel_pos_h", "rel_pos_w")):
                param.normal_(0, 0.05)
    checkpoint = folder / "vit_b.pth"
    torch.save(sam.state_dict(), checkpoint)
    torch.manual_seed(5)
    unetr = instance_segmentation.get_unetr(sam.image_encoder, decoder_state=None, device="cpu")
    decoder_file = folder / "vit_b_decoder.pt"
    state = {k: v for k, v in unetr.state_dict().items() if not k.startswith("encoder")}
    torch.save(state, decoder_file)
    return checkpoint, decoder_file, sam


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run_micro_sam(util, instance_segmentation, sam, decoder_file, image):
    """micro-sam's pipeline: (labels, maps, {stage: seconds})."""
    predictor = util.SamPredictor(sam)
    decoder = instance_segmentation.get_decoder(
        sam.image_encoder, torch.load(decoder_file, weights_only=False), device="cpu"
    )
    segmenter = instance_segmentation.InstanceSegmentationWithDecoder(predictor, decoder)
    embeddings, t_enc = _timed(
        lambda: util.precompute_image_embeddings(predictor, image, verbose=False)
    )
    _, t_dec = _timed(lambda: segmenter.initialize(image, image_embeddings=embeddings))
    labels, t_post = _timed(lambda: segmenter.generate(**SETTINGS))
    state = segmenter.get_state()
    maps = {n: np.asarray(state[n]) for n in MAP_NAMES}
    return labels, maps, {"encoder": t_enc, "decoder": t_dec, "post-processing": t_post}


def run_ours(model, image):
    """Our pipeline split into stages: (labels, maps, {stage: seconds})."""
    predictor = Predictor(model)
    _, t_enc = _timed(lambda: predictor.set_image(image))
    maps, t_dec = _timed(lambda: decoder_maps(model, predictor.get_embedding()))
    labels, t_post = _timed(lambda: labels_from_distances(maps, DecoderSettings(**SETTINGS)))
    arrays = {n: getattr(maps, n) for n in MAP_NAMES}
    return labels, arrays, {"encoder": t_enc, "decoder": t_dec, "post-processing": t_post}


def run_ours_end_to_end(model, image):
    """``automatic.segment`` as users call it: (labels, seconds)."""
    result, seconds = _timed(
        lambda: segment(image, model, method="decoder", min_confidence=0.0, **SETTINGS)
    )
    return np.asarray(result.labels), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per pipeline")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    parser.add_argument(
        "--raw-uint16", action="store_true", help="segment the 12-bit image as generated"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    sam_module = import_segment_anything()
    util, instance_segmentation = import_micro_sam()
    image = _image(args.size, args.raw_uint16)

    with tempfile.TemporaryDirectory() as folder:
        checkpoint, decoder_file, sam = _files(
            Path(folder), sam_module, util, instance_segmentation
        )
        model, t_load = _timed(lambda: load_model(checkpoint, decoder=decoder_file, device="cpu"))
        print(f"load_model(checkpoint, decoder=file): {t_load:.2f} s")

        best_ref: dict[str, float] = {}
        best_ours: dict[str, float] = {}
        best_total = float("inf")
        for _ in range(args.repeats):  # alternate, so machine noise hits both alike
            ref_labels, ref_maps, times = run_micro_sam(
                util, instance_segmentation, sam, decoder_file, image
            )
            best_ref = _best(best_ref, times)
            our_labels, our_maps, times = run_ours(model, image)
            best_ours = _best(best_ours, times)
            end_labels, seconds = run_ours_end_to_end(model, image)
            best_total = min(best_total, seconds)

    ref_total = sum(best_ref.values())
    print(f"\n{image.shape[0]}×{image.shape[1]} {image.dtype} nuclei image, best of {args.repeats}")
    print("| stage | micro-sam s | ours s | ours / micro-sam |")
    print("| --- | --- | --- | --- |")
    for stage in best_ref:
        print(
            f"| {stage} | {best_ref[stage]:.2f} | {best_ours[stage]:.2f} | "
            f"{best_ours[stage] / best_ref[stage]:.2f} |"
        )
    split_total = sum(best_ours.values())
    print(
        f"| total (stages) | {ref_total:.2f} | {split_total:.2f} | {split_total / ref_total:.2f} |"
    )
    print(
        f"| automatic.segment(method='decoder') | {ref_total:.2f} | {best_total:.2f} | "
        f"{best_total / ref_total:.2f} |"
    )

    diff = max(float(np.abs(our_maps[n] - ref_maps[n]).max()) for n in MAP_NAMES)
    print(f"\nmicro-sam objects: {int(ref_labels.max())}; maps max |ours - micro-sam| {diff:.2e}")
    for name, labels in (("stages", our_labels), ("automatic.segment", end_labels)):
        print(
            f"ours ({name}): {len(np.unique(labels)) - 1} objects, accuracy at IoU 0.5 "
            f"{matching_accuracy(ref_labels, labels):.4f}, pixel agreement "
            f"{pixel_agreement(ref_labels, labels):.5f}"
        )


def _best(best: dict[str, float], times: dict[str, float]) -> dict[str, float]:
    return {k: min(best.get(k, float("inf")), v) for k, v in times.items()}


if __name__ == "__main__":
    main()
