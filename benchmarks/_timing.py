"""Timing shared by the benchmarks."""

from __future__ import annotations

import statistics
import time


def median_seconds(run, repeats: int = 3) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls, after one untimed warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
