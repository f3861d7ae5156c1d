"""Speed of our SAM vit_b against Meta's reference code, measured in the same process.

Prints ratios (ours / reference) for:

* the image encoder on one 1024×1024 input, fp32 (and the largest output difference),
* our optional bf16 autocast encoder path, and the IoU of its masks against fp32,
* one point prompt → full-resolution masks (the interactive click), reference predictor vs ours.

Weights are random (no checkpoint can be downloaded here); speed does not depend on them.
Timings alternate between implementations so machine noise hits both alike.

Usage: python benchmarks/bench_model_core.py [--repeats 3] [--clicks 30] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from _reference import import_segment_anything
from napari_segany import Predictor
from napari_segany.inference.embedding import resize_for_model
from napari_segany.models.loading import model_from_state_dict


def _last_time(fn, runs: int) -> float:
    """Run ``fn`` ``runs`` times and return the duration of the last run."""
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
    return elapsed


def _test_image(size: int = 1024, seed: int = 0) -> np.ndarray:
    """A fluorescence-like RGB image: bright blobs on a dark, noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size), np.float32)
    for _ in range(60):
        r, c = rng.uniform(0, size, 2)
        radius = rng.uniform(10, 40)
        image += rng.uniform(0.4, 1.0) * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / radius**2)
    image += rng.normal(0, 0.05, image.shape)
    image = np.clip(image / image.max() * 255, 0, 255).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=-1)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="encoder runs per implementation")
    parser.add_argument("--clicks", type=int, default=30, help="point prompts to time")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )

    sam = import_segment_anything()
    torch.manual_seed(0)
    reference = sam.sam_model_registry["vit_b"]().eval()
    with torch.no_grad():  # random position tables (zeros in a fresh model) so all paths run
        for name, param in reference.named_parameters():
            if name.endswith(("pos_embed", "rel_pos_h", "rel_pos_w")):
                param.normal_(0, 0.05)
    ours = model_from_state_dict(reference.state_dict())

    image = _test_image()
    x = resize_for_model(image, 1024)
    ref_pred = sam.SamPredictor(reference)
    fp32 = Predictor(ours)
    bf16 = Predictor(ours, precision="bf16")

    # -- image encoder -------------------------------------------------------------------
    with torch.inference_mode():
        ref_input = reference.preprocess(x)
        ref_out = reference.image_encoder(ref_input)  # warm-up + output for comparison
        our_out = ours.image_encoder(ours.normalize(x))
        bf16.encode(x)
    max_diff = (ref_out - our_out).abs().max().item()
    # Each timed run follows an untimed run of the same implementation: the first pass after
    # another implementation pays for page faults on memory the other one just released.
    t_ref, t_ours, t_bf16 = [], [], []
    for _ in range(args.repeats):
        with torch.inference_mode():
            t_ref.append(_last_time(lambda: reference.image_encoder(ref_input), 2))
        t_ours.append(_last_time(lambda: fp32.encode(x), 2))
        t_bf16.append(_last_time(lambda: bf16.encode(x), 2))
    t_ref, t_ours, t_bf16 = map(statistics.median, (t_ref, t_ours, t_bf16))

    # -- masks: bf16 vs fp32 ---------------------------------------------------------------
    fp32.set_image(image)
    bf16.set_image(image)
    rng = np.random.default_rng(1)
    clicks = rng.uniform(50, 974, size=(args.clicks, 2))
    ious = []
    for point in clicks:
        a = fp32.predict(points=[point], multimask=True)
        b = bf16.predict(points=[point], multimask=True)
        ious.extend(_iou(ma, mb) for ma, mb in zip(a.masks, b.masks, strict=True))

    # -- one click → full-resolution masks -----------------------------------------------
    ref_pred.set_torch_image(x, image.shape[:2])
    ref_click, our_click = [], []
    for point in clicks:
        xy = point[None, ::-1].copy()
        start = time.perf_counter()
        ref_pred.predict(point_coords=xy, point_labels=np.array([1]), multimask_output=True)
        ref_click.append(time.perf_counter() - start)
        start = time.perf_counter()
        fp32.predict(points=[point], point_labels=[1], multimask=True)
        our_click.append(time.perf_counter() - start)
    ref_click_ms = 1000 * statistics.median(ref_click)
    our_click_ms = 1000 * statistics.median(our_click)

    print(f"\nvit_b image encoder, one 1024x1024 input (median of {args.repeats}):")
    print(f"  reference fp32      {t_ref:7.2f} s")
    print(
        f"  ours fp32           {t_ours:7.2f} s   ratio {t_ours / t_ref:.3f}  (target <= 0.5)"
        f"   max |diff| {max_diff:.2e}"
    )
    print(f"  ours bf16 autocast  {t_bf16:7.2f} s   ratio {t_bf16 / t_ref:.3f}")
    print(
        f"  bf16 masks vs fp32: mean IoU {np.mean(ious):.4f}, min {np.min(ious):.4f} "
        f"over {len(ious)} masks (target >= 0.98)"
    )
    print(f"\none point -> 3 full-resolution masks (median of {args.clicks} clicks):")
    print(f"  reference predictor {ref_click_ms:7.1f} ms")
    print(
        f"  ours                {our_click_ms:7.1f} ms   ratio {our_click_ms / ref_click_ms:.3f}"
        "  (target <= 25 ms)"
    )


if __name__ == "__main__":
    main()
