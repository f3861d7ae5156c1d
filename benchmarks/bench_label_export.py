"""Peak memory of exporting a large zarr-backed label image, against the array's size.

Generates a 16384×16384 uint32 label image chunk by chunk on disk (about 170,000 round objects,
so the IDs need uint32), then exports it to OME-Zarr 0.5 and to TIFF, and measures the object
table, each in a fresh subprocess. For every step it prints the wall time, the peak of Python's
traced allocations (tracemalloc, which sees numpy's buffers) and the peak resident set size
(sampled every 5 ms) above the process's size before the step, each also as a fraction of the
array's size (1 GiB).

    python benchmarks/bench_label_export.py                 # 16384², in a temporary folder
    python benchmarks/bench_label_export.py --size 4096     # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

CELL = 40  # one object per CELL×CELL square of the grid


def generate(path: Path, size: int, chunk: int) -> None:
    """Write the label image chunk by chunk: jittered discs of radius 8–18 px, unique IDs."""
    import zarr

    array = zarr.create_array(
        str(path), shape=(size, size), chunks=(chunk, chunk), dtype=np.uint32, fill_value=0
    )
    per_row = -(-size // CELL)
    for r0 in range(0, size, chunk):
        for c0 in range(0, size, chunk):
            rows = np.arange(r0, min(r0 + chunk, size))[:, None]
            cols = np.arange(c0, min(c0 + chunk, size))[None, :]
            cell_r, cell_c = rows // CELL, cols // CELL
            ids = (cell_r * per_row + cell_c + 1).astype(np.uint64)
            mixed = (ids * 2654435761) % 2**32
            radius = 8 + mixed % 11
            centre_r = cell_r * CELL + CELL // 2 + (mixed >> 8) % 5 - 2
            centre_c = cell_c * CELL + CELL // 2 + (mixed >> 16) % 5 - 2
            inside = (rows - centre_r) ** 2 + (cols - centre_c) ** 2 <= radius**2
            array[r0 : r0 + rows.shape[0], c0 : c0 + cols.shape[1]] = np.where(
                inside, ids, 0
            ).astype(np.uint32)


def _rss_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class _RssSampler(threading.Thread):
    """Samples the resident set size every 5 ms; ``stop()`` returns the largest value seen."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = _rss_now()
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.005):
            self.peak = max(self.peak, _rss_now())

    def stop(self) -> int:
        self.done.set()
        self.join()
        return max(self.peak, _rss_now())


def run_step(step: str, source: Path, out: Path) -> dict:
    """One measured step, run inside a fresh process."""
    import zarr

    from napari_segany.labels_io import object_table, save_labels

    labels = zarr.open_array(str(source), mode="r")
    # warm up: import the codecs and start zarr's thread pool outside the measurement
    warm = out.with_name("warm-up" + "".join(out.suffixes))
    save_labels(warm, np.asarray(labels[:256, :256]), table=True, overwrite=True)
    object_table(labels[:256, :256])
    before = _rss_now()
    sampler = _RssSampler()
    sampler.start()
    tracemalloc.start()
    start = time.perf_counter()
    result: dict = {}
    if step == "table":
        rows = object_table(labels)
        result["objects"] = len(rows)
    else:
        saved = save_labels(out, labels, table=False)
        result["bytes_on_disk"] = sum(
            p.stat().st_size for p in [saved.labels, *saved.labels.glob("**/*")] if p.is_file()
        )
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak_rss = sampler.stop()
    result.update(seconds=seconds, traced_peak=traced, rss_peak_above_start=peak_rss - before)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384, help="side of the square image")
    parser.add_argument("--chunk", type=int, default=1024, help="chunk side of the source zarr")
    parser.add_argument("--folder", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # child process
        print(json.dumps(run_step(args.step, args.source, args.out)))
        return

    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        folder = Path(folder)
        source = folder / "source.zarr"
        start = time.perf_counter()
        generate(source, args.size, args.chunk)
        nbytes = args.size * args.size * 4
        print(
            f"source: {args.size}x{args.size} uint32 zarr, chunks {args.chunk}², "
            f"{nbytes / 2**30:.3f} GiB in memory, generated in {time.perf_counter() - start:.1f} s"
        )
        print(f"{'step':<10} {'time':>8} {'tracemalloc peak':>22} {'RSS peak above start':>26}")
        for step, name in [("ome-zarr", "out.ome.zarr"), ("tiff", "out.tif"), ("table", "t.tif")]:
            command = [sys.executable, __file__, "--step", step, "--source", str(source)]
            command += ["--out", str(folder / name)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"step {step} failed:\n{done.stderr}")
            output = done.stdout
            r = json.loads(output.strip().splitlines()[-1])
            extra = (
                f"  {r['objects']} objects"
                if "objects" in r
                else f"  {r['bytes_on_disk'] / 2**20:.1f} MiB on disk"
            )
            print(
                f"{step:<10} {r['seconds']:>7.1f}s "
                f"{r['traced_peak'] / 2**20:>9.1f} MiB ({r['traced_peak'] / nbytes:.3f}) "
                f"{r['rss_peak_above_start'] / 2**20:>12.1f} MiB ({r['rss_peak_above_start'] / nbytes:.3f})"  # noqa: E501
                + extra
            )


if __name__ == "__main__":
    main()
