"""Tiled embeddings at scale: memory, time and prompt latency, a large image against a small one.

Writes two synthetic uint16 zarr images (cell-like blobs on a noisy background; default 16384²
and 2048², chunks 1024²) and, for each in its own process, embeds it into a zarr cache with
:class:`napari_segany.tiled.session.SegmentationSession` and the embedded model, then
answers prompts from the cache. Prints, measured in this one run:

* peak memory while embedding, large / small: resident memory (RSS sampled every 10 ms) and its
  increase over the process's memory before encoding, plus the Python/numpy peak (tracemalloc);
  target ≤ 1.5×;
* total embedding time / (tiles × one tile's encode time), with one tile's encode time
  measured alone (batch of 1) and per tile in the session's batches (4 for the embedded
  model), each before and after the run (the machine's load drifts), and total time / the
  encoder's own time during the run (the cost of reading, scaling, hashing and writing);
  target within 10 %;
* prompt latency on the cached large image / on the small one: the first prompt on a tile (its
  embedding read from the zarr cache and checked) and the following prompts on it (median).

Usage: python benchmarks/bench_tiling.py [--size 16384] [--small 2048] [--prompts 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

CHUNK = 1024


def make_image(path: Path, size: int, seed: int = 0) -> list[tuple[int, int]]:
    """Write a (size, size) uint16 zarr image chunk by chunk; returns some blob centres."""
    import zarr

    z = zarr.create_array(
        str(path), shape=(size, size), chunks=(CHUNK, CHUNK), dtype="uint16", overwrite=True
    )
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:CHUNK, :CHUNK]
    centres = []
    for r0 in range(0, size, CHUNK):
        for c0 in range(0, size, CHUNK):
            h, w = min(CHUNK, size - r0), min(CHUNK, size - c0)
            block = rng.normal(300, 30, (h, w)).astype(np.float32)
            for _ in range(12):
                cr, cc, rad = rng.uniform(60, h - 60), rng.uniform(60, w - 60), rng.uniform(12, 30)
                d2 = ((yy[:h, :w] - cr) ** 2 + (xx[:h, :w] - cc) ** 2) / rad**2
                block += 1500 / (1 + np.exp(np.minimum((np.sqrt(d2) - 1) * 8, 50)))
                centres.append((int(r0 + cr), int(c0 + cc)))
            z[r0 : r0 + h, c0 : c0 + w] = np.clip(block, 0, 65535).astype(np.uint16)
    return centres


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Sample resident memory every 10 ms in a thread; ``peak`` is the largest sample."""

    def __init__(self) -> None:
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def worker(image_path: Path, cache_path: Path, centres: list, prompts: int) -> dict:
    """Embed one image into a cache and time prompts on it (run in a fresh process)."""
    import torch
    import zarr

    from napari_segany import load_model
    from napari_segany.inference.embedding import resize_for_model
    from napari_segany.tiled.session import SegmentationSession

    model = load_model(device="cpu")
    image = zarr.open_array(str(image_path), mode="r")
    session = SegmentationSession(image, model, cache=cache_path, overwrite_cache=True)
    n_tiles = len(session.grid)

    # one tile's encode time (the encoder alone, as in an untiled encode), and per tile in a
    # batch as the session encodes them; before the run and after it, to see load drift
    encode = session.store.encode_batch
    batch = model.inference.encode_batch_size

    def inputs(indices):
        return torch.cat(
            [
                resize_for_model(session.tile_image(i), model.image_size, model.upscale_input)
                for i in indices
            ]
        )

    def per_tile(indices, size) -> float:
        times = []
        for k in range(0, len(indices), size):
            x = inputs(indices[k : k + size])
            start = time.perf_counter()
            encode(x)
            times.append((time.perf_counter() - start) / x.shape[0])
        return statistics.median(times)

    first = [i % n_tiles for i in range(4)]
    last = [(n_tiles - 1 - i) % n_tiles for i in range(4)]
    per_tile([0], 1)  # warm-up
    per_tile(first, batch)
    tile_time = per_tile(first, 1)
    batched_time = per_tile(first * 2, batch)

    in_run = []

    def timed(x):
        start = time.perf_counter()
        out = encode(x)
        in_run.append((time.perf_counter() - start, x.shape[0]))
        return out

    session.store.encode_batch = timed
    baseline = _rss()
    tracemalloc.start()
    with PeakRss() as rss:
        start = time.perf_counter()
        for _ in session.encode():
            pass
        total = time.perf_counter() - start
    py_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    session.store.encode_batch = encode
    tile_time_after = per_tile(last, 1)
    batched_time_after = per_tile(last * 2, batch)
    del session

    # prompts on the cached image, in a new session (as a user reopening it)
    start = time.perf_counter()
    session = SegmentationSession(image, model, cache=cache_path)
    open_time = time.perf_counter() - start
    assert session.is_encoded()
    rng = np.random.default_rng(1)
    # blobs well inside a tile's inner region, on different tiles
    by_tile = {}
    for r, c in centres:
        tile = session.grid.tile_at(r, c)
        (ir, ic) = tile.inner
        if ir.start + 80 < r < ir.stop - 80 and ic.start + 80 < c < ic.stop - 80:
            by_tile.setdefault(tile.index, []).append((r, c))
    chosen = rng.permutation(sorted(by_tile))[:3]
    first, warm, on_window = [], [], 0
    for index in chosen:
        points = by_tile[index]
        for k in range(prompts + 1):  # first: the tile's embedding comes from the zarr cache
            start = time.perf_counter()
            result = session.predict(points=[points[k % len(points)]])
            elapsed = time.perf_counter() - start
            if not result.window.is_tile:  # the mask ran into the tile's edge: not counted
                on_window += 1
            elif k == 0:
                first.append(elapsed)
            else:
                warm.append(elapsed)
    return {
        "tiles": n_tiles,
        "tile_time": tile_time,
        "tile_time_after": tile_time_after,
        "batch_size": batch,
        "batched_time": batched_time,
        "batched_time_after": batched_time_after,
        "encoder_time_in_run": sum(t for t, _ in in_run),
        "tiles_encoded_in_run": sum(n for _, n in in_run),
        "total": total,
        "rss_baseline": baseline,
        "rss_peak": rss.peak,
        "py_peak": py_peak,
        "open_time": open_time,
        "first_prompt": statistics.median(first),
        "warm_prompt": statistics.median(warm),
        "prompts_on_windows": on_window,
        "prompts_on_tiles": len(first) + len(warm),
        "cache_bytes": sum(f.stat().st_size for f in cache_path.rglob("*") if f.is_file()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384, help="side of the large image")
    parser.add_argument("--small", type=int, default=2048, help="side of the small image")
    parser.add_argument("--prompts", type=int, default=10, help="prompts per tile")
    parser.add_argument("--workdir", default=None, help="where to write images and caches")
    parser.add_argument("--worker", nargs=3, metavar=("IMAGE", "CACHE", "CENTRES"), help="internal")
    args = parser.parse_args()
    if args.worker:
        image, cache, centres = args.worker
        result = worker(
            Path(image), Path(cache), json.loads(Path(centres).read_text()), args.prompts
        )
        print(json.dumps(result))
        return

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        results = {}
        for name, size in (("small", args.small), ("large", args.size)):
            start = time.perf_counter()
            centres = make_image(tmp / f"{name}.zarr", size)
            (tmp / f"{name}.json").write_text(json.dumps(centres))
            print(
                f"{name}: wrote a {size}² uint16 zarr image in {time.perf_counter() - start:.1f} s"
            )
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--prompts",
                    str(args.prompts),
                    "--worker",
                    str(tmp / f"{name}.zarr"),
                    str(tmp / f"{name}.cache.zarr"),
                    str(tmp / f"{name}.json"),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{name}: {json.dumps(results[name])}")

    s, b = results["small"], results["large"]
    mib = 2**20
    print()
    print(f"| measure | {args.small}² | {args.size}² | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| tiles | {s['tiles']} | {b['tiles']} | {b['tiles'] / s['tiles']:.1f} |")

    def row(label, key, scale, fmt):
        ratio = b[key] / s[key]
        print(f"| {label} | {s[key] / scale:{fmt}} | {b[key] / scale:{fmt}} | {ratio:.2f} |")

    row("peak RSS while embedding (MiB)", "rss_peak", mib, ".0f")
    for r in (s, b):
        r["rss_increase"] = r["rss_peak"] - r["rss_baseline"]
    row("peak RSS increase during embedding (MiB)", "rss_increase", mib, ".0f")
    row("peak Python/numpy memory, tracemalloc (MiB)", "py_peak", mib, ".1f")
    for r in (s, b):
        r["tile_time_in_run"] = r["encoder_time_in_run"] / r["tiles_encoded_in_run"]
        r["ratio_single"] = r["total"] / (r["tiles"] * r["tile_time"])
        r["ratio_single_after"] = r["total"] / (r["tiles"] * r["tile_time_after"])
        r["ratio_batched"] = r["total"] / (r["tiles"] * r["batched_time"])
        r["ratio_batched_after"] = r["total"] / (r["tiles"] * r["batched_time_after"])
        r["ratio_in_run"] = r["total"] / r["encoder_time_in_run"]
    row("one tile's encode alone (s), before the run", "tile_time", 1, ".3f")
    row("one tile's encode alone (s), after the run", "tile_time_after", 1, ".3f")
    row(f"per tile in batches of {b['batch_size']} (s), before", "batched_time", 1, ".3f")
    row(f"per tile in batches of {b['batch_size']} (s), after", "batched_time_after", 1, ".3f")
    row("per tile in the run, encoder only (s)", "tile_time_in_run", 1, ".3f")
    row("total embedding time (s)", "total", 1, ".1f")
    row("total / (tiles × one tile alone, before)", "ratio_single", 1, ".3f")
    row("total / (tiles × one tile alone, after)", "ratio_single_after", 1, ".3f")
    row("total / (tiles × per tile batched, before)", "ratio_batched", 1, ".3f")
    row("total / (tiles × per tile batched, after)", "ratio_batched_after", 1, ".3f")
    row("total / encoder time in the run", "ratio_in_run", 1, ".3f")
    row("reopening the cache (s)", "open_time", 1, ".3f")
    row("first prompt on a tile, from the cache (ms)", "first_prompt", 1e-3, ".1f")
    row("next prompts on that tile, median (ms)", "warm_prompt", 1e-3, ".1f")
    row("cache size (MiB)", "cache_bytes", mib, ".0f")
    for name, r in (("small", s), ("large", b)):
        print(
            f"{name}: {r['prompts_on_tiles']} prompts timed on their tile, "
            f"{r['prompts_on_windows']} left out (decoded on a window around a cut mask)"
        )


if __name__ == "__main__":
    main()
