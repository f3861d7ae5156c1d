"""Volumes and time series on synthetic stacks, with the embedded model, in one run.

Three measurements, each on stacks generated here (:mod:`napari_segany.synthetic.stacks`):

* **automatic 3D**: ``automatic.segment(stack, axes="zyx")`` on touching ellipsoids of varying
  size, at several anisotropies (z step / pixel size); 3D accuracy at IoU 0.5 (matched
  objects / (TP + FP + FN)) against the true 3D labels;
* **propagation**: one click per object, at the deepest point of its middle slice, propagated
  with ``volume.propagate`` (each object on its own; the first ``--objects`` of each stack);
  mean 3D IoU over objects, and how many
  slices past the object's true ends propagation went (0 = it stopped at the right slice);
* **time series**: ``automatic.segment(movie, axes="tyx")`` on drifting cells, one of which
  divides; the share of the cells of the first frame that keep one ID in every frame they are
  in, and whether the division's two daughters got new IDs with the mother as parent.

Prints one line per stack and the means; seconds are wall time on this machine.

Usage: python benchmarks/bench_volumes.py [--seeds 3] [--objects 8] [--threads N] [--flips 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import ndimage

from napari_segany import load_model
from napari_segany.automatic import matching_accuracy, segment
from napari_segany.synthetic.stacks import moving_cells, touching_ellipsoids
from napari_segany.volume import StackSessions, propagate


def automatic_3d(model, seed: int, anisotropy: float, flips: int) -> tuple[float, float, int]:
    stack = touching_ellipsoids((16, 128, 128), anisotropy=anisotropy, seed=seed)
    start = time.perf_counter()
    result = segment(stack.image, model, axes="zyx", flips=flips)
    seconds = time.perf_counter() - start
    return matching_accuracy(stack.labels, result.labels), seconds, int(stack.labels.max())


def propagation(
    model, seed: int, anisotropy: float, objects: int
) -> tuple[float, float, float, int]:
    stack = touching_ellipsoids((16, 128, 128), anisotropy=anisotropy, seed=seed)
    sessions = StackSessions(stack.image, model, "zyx")
    ious, overshoot = [], []
    start = time.perf_counter()
    for obj in range(1, min(objects, int(stack.labels.max())) + 1):
        truth = stack.labels == obj
        zs = np.flatnonzero(truth.any(axis=(1, 2)))
        z = int(zs[len(zs) // 2])
        distance = ndimage.distance_transform_edt(truth[z])
        click = np.unravel_index(int(np.argmax(distance)), truth[z].shape)
        mask = propagate(sessions, z, points=[click])
        ious.append((mask & truth).sum() / max(1, (mask | truth).sum()))
        found = np.flatnonzero(mask.any(axis=(1, 2)))
        if len(found):
            overshoot.append(max(0, zs[0] - found[0]) + max(0, found[-1] - zs[-1]))
    seconds = time.perf_counter() - start
    return float(np.mean(ious)), float(np.mean(overshoot)), seconds, len(ious)


def time_series(model, seed: int, flips: int) -> tuple[float, bool, float]:
    cells = moving_cells(frames=6, shape=(128, 128), count=9, drift=3.0, divide=1, seed=seed)
    start = time.perf_counter()
    result = segment(cells.image, model, axes="tyx", flips=flips)
    seconds = time.perf_counter() - start
    truth, labels = cells.labels, result.labels
    kept = []
    for ident in np.unique(truth[0][truth[0] > 0]).tolist():
        ids = set()
        for t in range(len(truth)):
            inside = labels[t][truth[t] == ident]
            if inside.size:
                ids.add(int(np.bincount(inside).argmax()))
        kept.append(len(ids) == 1 and 0 not in ids)
    division = False
    if cells.parents:
        mother = next(iter(cells.parents.values()))
        mother_id = int(np.bincount(labels[0][truth[0] == mother]).argmax())
        daughters = {int(np.bincount(labels[-1][truth[-1] == d]).argmax()) for d in cells.parents}
        division = len(daughters) == 2 and all(
            result.parents.get(d) == mother_id for d in daughters
        )
    return float(np.mean(kept)), division, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--flips", type=int, default=1, choices=(1, 4, 8))
    parser.add_argument(
        "--objects", type=int, default=8, help="objects propagated per stack (default 8)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(device="cpu")
    seeds = range(args.seeds)

    print("automatic 3D (16 x 128 x 128, touching ellipsoids), accuracy at IoU 0.5")
    scores = []
    for anisotropy in (1.5, 3.0, 5.0):
        for seed in seeds:
            acc, sec, n = automatic_3d(model, seed, anisotropy, args.flips)
            scores.append(acc)
            print(
                f"  anisotropy {anisotropy:>3}  seed {seed}  {n:>2} objects  acc {acc:.3f}  "
                f"{sec:5.1f} s"
            )
    print(f"  mean 3D accuracy at IoU 0.5: {np.mean(scores):.3f}")

    print("propagation (one click per object on its middle slice)")
    mious, overs = [], []
    for anisotropy in (1.5, 3.0, 5.0):
        for seed in seeds:
            miou, over, sec, n = propagation(model, seed, anisotropy, args.objects)
            mious.append(miou)
            overs.append(over)
            print(
                f"  anisotropy {anisotropy:>3}  seed {seed}  {n:>2} objects  mIoU {miou:.3f}  "
                f"slices past the ends {over:.2f}  {sec:5.1f} s"
            )
    print(
        f"  mean propagation 3D mIoU: {np.mean(mious):.3f}; "
        f"slices past the ends {np.mean(overs):.2f}"
    )

    print("time series (6 frames of 128 x 128, drifting cells, one division)")
    stable, divisions = [], []
    for seed in seeds:
        share, division, sec = time_series(model, seed, args.flips)
        stable.append(share)
        divisions.append(division)
        print(
            f"  seed {seed}  ID kept by {share:.0%} of the first frame's cells  "
            f"division {division}  {sec:5.1f} s"
        )
    print(
        f"  mean ID stability: {np.mean(stable):.3f}; "
        f"divisions found {sum(divisions)}/{len(divisions)}"
    )


if __name__ == "__main__":
    main()
