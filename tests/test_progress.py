import pytest

from napari_segany.progress import Progress, run_with_progress


def counting_job(n, log):
    try:
        for i in range(n):
            log.append(i)
            yield Progress(i + 1, n, f"step {i + 1}")
    finally:
        log.append("closed")
    return sum(range(n))


def test_run_with_progress_returns_the_job_result():
    log = []
    assert run_with_progress(counting_job(4, log), show=False) == 6
    assert log == [0, 1, 2, 3, "closed"]


def test_run_with_progress_with_bar(capsys):
    assert run_with_progress(counting_job(3, []), show=True, description="demo") == 3


def test_fraction():
    assert Progress(1, 4).fraction == pytest.approx(0.25)
    assert Progress(0, 0).fraction == 1.0


def test_closing_cancels_the_job():
    log = []
    job = counting_job(10, log)
    next(job)
    job.close()
    assert log == [0, "closed"]
