"""Progress reports shared by every long-running job of the core.

Long work (encoding tiles, automatic segmentation, export) is written as a generator that yields a
:class:`Progress` after each unit of work and returns its result. The same generator then runs

* in a napari thread worker (``yielded`` updates the progress bar, ``quit()`` cancels at the next
  yield, ``returned`` delivers the result), and
* on the command line or from Python through :func:`run_with_progress`, which shows a tqdm bar.

Closing the generator (``gen.close()``) is how a caller cancels; a job keeps whatever it finished
before the last yield valid (for example tiles already written to a cache).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """One step of a long job.

    Attributes
    ----------
    done : int
        Units finished so far (0 ≤ done ≤ total).
    total : int
        Units in the whole job.
    message : str
        What is being done, for a status line ("encoding tile 3/16").
    """

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        """Share of the job that is finished, 0–1 (1 for an empty job)."""
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


def run_with_progress(
    job: Generator[Progress, None, T], *, show: bool = True, description: str = ""
) -> T:
    """Drive a job generator to the end and return its result, with a tqdm bar if ``show``.

    Parameters
    ----------
    job : generator
        Yields :class:`Progress`, returns the job's result.
    show : bool
        Draw a progress bar on stderr.
    description : str
        Label shown in front of the bar.
    """
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=None, desc=description, unit="step", leave=False)
    try:
        while True:
            try:
                report = next(job)
            except StopIteration as stop:
                return stop.value
            if bar is not None:
                if bar.total != report.total:
                    bar.total = report.total
                bar.n = report.done
                if report.message:
                    bar.set_postfix_str(report.message, refresh=False)
                bar.refresh()
    finally:
        job.close()
        if bar is not None:
            bar.close()
