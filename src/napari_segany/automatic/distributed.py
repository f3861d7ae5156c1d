"""Run automatic segmentation as dask tasks: one task per tile, stitched where it was submitted.

Each task opens the image and loads the model itself (once per worker process) and returns
the labels of one tile's outer region; stitching happens in tile order on the caller's side, so
the result is identical to :func:`napari_segany.automatic.iter_segment` in one process.
Images and models are passed by reference (file path, registry name or checkpoint path), so
tasks stay small and workers of a ``dask.distributed`` cluster read their own inputs.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from napari_segany.automatic.params import AutomaticParams
from napari_segany.automatic.segment import AutomaticResult, tile_labels
from napari_segany.automatic.stitching import TileStitcher
from napari_segany.progress import Progress


@dataclass(frozen=True)
class ImageJob:
    """One image to segment, by reference.

    Attributes
    ----------
    image : str or array
        File path (read by each worker), or an in-memory array (sent with every task).
    channel_axis : int, optional
    plane : int or tuple of int, optional
    intensity_range : array-like, optional
        Scaling to 8 bits (e.g. one range for every slice of a stack); default: the image's.
    """

    image: object
    channel_axis: int | None = None
    plane: object = None
    intensity_range: object = None


@functools.lru_cache(maxsize=2)
def _worker_model(model_ref: str, device: str, decoder_ref: str | None = None):
    from napari_segany.models.loading import load_model

    return load_model(model_ref, device=device, decoder=decoder_ref)


_SESSIONS: dict = {}
_SESSIONS_LOCK = threading.Lock()


def _worker_session(job: ImageJob, model_ref: tuple, device: str, tiling: tuple, ranges):
    """The worker-local session for a job (kept for the job's other tiles); ``model_ref`` is
    (model, decoder) references."""
    from napari_segany.tiled.session import SegmentationSession

    image = id(job.image) if not isinstance(job.image, str) else job.image
    key = (image, job.plane, model_ref, tiling)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            _SESSIONS.clear()  # one image at a time per worker keeps memory bounded
            session = _SESSIONS[key] = SegmentationSession(
                job.image,
                _worker_model(model_ref[0], device, model_ref[1]),
                channel_axis=job.channel_axis,
                plane=job.plane,
                tile_size=tiling[0],
                halo=tiling[1],
                intensity_range=ranges,
            )
    return session


def _tile_task(job, model_ref, device, tiling, ranges, params, index):
    session = _worker_session(job, model_ref, device, tiling, ranges)
    return tile_labels(session, index, params)


def iter_segment_dask(
    jobs: Sequence[ImageJob],
    model_ref: str,
    params: AutomaticParams,
    *,
    tile_size: int | None = None,
    halo: int | None = None,
    device: str = "cpu",
    client=None,
    scheduler: str | None = None,
    decoder_ref: str | None = None,
) -> Generator[Progress, None, list[AutomaticResult]]:
    """Segment several images with their tiles as dask tasks; a job generator.

    Parameters
    ----------
    jobs : sequence of ImageJob
    model_ref : str
        Registry name or checkpoint path, loaded by each worker.
    params : AutomaticParams
    tile_size, halo : int, optional
        Tiling (default from the model).
    device : str
        Device on the workers.
    client : dask.distributed.Client, optional
        Send tasks to this cluster.
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``); a client is
        opened and closed here. Without ``client`` or ``scheduler``, tasks run in local threads.
    decoder_ref : str, optional
        An instance-segmentation decoder file to attach to the model on each worker (see
        :func:`~napari_segany.models.loading.load_model`'s ``decoder``).

    Yields
    ------
    Progress
        After each finished tile (in any order).

    Returns
    -------
    list of AutomaticResult
        One per job, in order; identical to segmenting each image in one process.
    """
    import dask
    from dask.distributed import Client, as_completed

    from napari_segany.tiled.session import SegmentationSession

    own_client = None
    if client is None and scheduler is not None:
        own_client = client = Client(scheduler)
    try:
        model = _worker_model(model_ref, device, decoder_ref)
        model_ref = (model_ref, decoder_ref)
        method = params.resolve_method(model)
        plans = []
        for job in jobs:
            # one session here fixes the tiling and the intensity scaling every worker uses
            session = SegmentationSession(
                job.image,
                model,
                channel_axis=job.channel_axis,
                plane=job.plane,
                tile_size=tile_size,
                halo=halo,
                intensity_range=job.intensity_range,
            )
            plans.append((job, session.grid, session.intensity_range))
        total = sum(len(grid) for _, grid, _ in plans)
        outputs: list[dict[int, tuple]] = [{} for _ in plans]
        if client is not None:
            futures = {}
            for n, (job, grid, ranges) in enumerate(plans):
                tiling = (grid.tile_size[0], grid.halo[0])
                for tile in grid.tiles:
                    future = client.submit(
                        _tile_task,
                        job,
                        model_ref,
                        device,
                        tiling,
                        ranges,
                        params,
                        tile.index,
                        pure=False,
                    )
                    futures[future] = (n, tile.index)
            for done, future in enumerate(as_completed(futures), start=1):
                n, index = futures[future]
                outputs[n][index] = future.result()
                yield Progress(done, total, f"tile {done}/{total}")
        else:
            done = 0
            for n, (job, grid, ranges) in enumerate(plans):
                tiling = (grid.tile_size[0], grid.halo[0])
                tasks = [
                    dask.delayed(_tile_task)(
                        job, model_ref, device, tiling, ranges, params, t.index
                    )
                    for t in grid.tiles
                ]
                for index, result in enumerate(dask.compute(*tasks, scheduler="threads")):
                    outputs[n][index] = result
                done += len(tasks)
                yield Progress(done, total, f"tile {done}/{total}")
        results = []
        for (_, grid, _), tiles in zip(plans, outputs, strict=True):
            out = np.zeros(grid.shape, np.uint32)
            stitcher = TileStitcher(out)
            for tile in grid.tiles:  # stitching order fixed: same IDs as in one process
                stitcher.add(tile, *tiles[tile.index])
            results.append(
                AutomaticResult(out, stitcher.scores, method, params, stitcher.confidence)
            )
        return results
    finally:
        if own_client is not None:
            own_client.close()
