"""Array kernels of codec_select (numba; installed as ``codec_select.kernels``).

Pure functions on numpy arrays: no I/O, no PyAV, no torch. Each public function validates its arguments and calls
a private ``_…_kernel`` compiled with the options in :mod:`._jit`. Call :func:`warmup` once before timing anything:
it compiles (or loads from numba's on-disk cache) every kernel for the production dtypes and layouts.
"""

from __future__ import annotations

import time

import numpy as np

from .drift import block_means, refresh_drift_mask, refresh_drift_select
from .fuse import fuse_energy
from .motion import compensate_median, compensate_similarity, flow_magnitude, rasterise_mvs
from .policy import normalise_p95, refresh_mask, refresh_select, topk_cells
from .pool import pool_cells, pool_cells_batch
from .residual import block_match, downscale2, frame_change, mc_residual

__all__ = [
    "rasterise_mvs",
    "compensate_median",
    "compensate_similarity",
    "flow_magnitude",
    "mc_residual",
    "frame_change",
    "downscale2",
    "block_match",
    "pool_cells",
    "pool_cells_batch",
    "normalise_p95",
    "topk_cells",
    "refresh_mask",
    "refresh_select",
    "block_means",
    "refresh_drift_mask",
    "refresh_drift_select",
    "fuse_energy",
    "warmup",
]


def warmup() -> float:
    """Compile (or load from the numba cache) every kernel for the production dtypes, layouts and parameters.

    Production parameters: 8-pixel blocks with sampling step 4 for the residual and the I-frame change, 4-pixel
    blocks with step 1 for the metrics' true change, 8-pixel blocks with step 2 for the drift thumbnails, 8-pixel
    blocks and radius 4 for block matching. Other block/step values compile on first use. Returns the seconds it
    took; later calls cost microseconds.
    """
    start = time.perf_counter()
    block = 8
    height, width = 4 * block, 4 * block  # a 4×4 block grid
    grid = height // block
    n = 3
    flow = rasterise_mvs(
        np.array([-1, 1, 1], dtype=np.int32),
        np.full(n, 8, dtype=np.uint8),
        np.full(n, 8, dtype=np.uint8),
        np.array([4, 4, 0], dtype=np.int16),
        np.array([4, 4, 0], dtype=np.int16),
        np.array([1, -2, 0], dtype=np.int32),
        np.array([2, 1, 0], dtype=np.int32),
        np.full(n, 4, dtype=np.uint16),
        grid,
        grid,
        block,
    )
    ring = (np.arange(3 * height * width, dtype=np.int64).reshape(3, height, width) % 251).astype(np.uint8)
    cur = ring[0]
    residual, velocity = mc_residual(
        cur,
        ring,
        np.array([1, 2], dtype=np.int64),
        np.array([-1, 1], dtype=np.int8),
        np.array([1, 1], dtype=np.int32),
        flow,
        block=block,
        step=4,
    )
    fuse_energy(velocity, residual, median=True, mv_deadzone=0.5, mv_floor=1.0, res_deadzone=3.0, res_floor=6.0)
    block_means(cur, 8, 2)
    compensate_median(velocity)
    compensate_similarity(velocity)
    speed = flow_magnitude(velocity)
    normalise_p95(speed, 1.0)
    frame_change(cur, ring[1], block=8, step=4)
    frame_change(cur, ring[1], block=4, step=1)
    small = downscale2(cur)
    block_match(small, downscale2(ring[1]), block=8, radius=4)
    edges = np.array([0.0, 3.0, 8.0, 16.0])
    pooled = pool_cells(residual, float(block), edges, edges)
    # pool_cells_batch is left out on purpose: it is the one parallel kernel, nothing in the selector calls it, and
    # running it would start numba's thread pool, which a DataLoader's fork()ed workers must not inherit.
    scores = np.ascontiguousarray(np.stack([pooled.ravel(), pooled.ravel()]))
    eligible = np.ones(scores.shape, dtype=np.bool_)
    mandatory = np.zeros(scores.shape, dtype=np.bool_)
    mandatory[0] = True
    eligible[0] = False
    topk_cells(scores.ravel(), eligible.ravel(), mandatory.ravel(), 12)
    refresh_mask(scores, eligible, mandatory, 1.0)
    refresh_select(scores, eligible, mandatory, 12)
    thumbs = np.ascontiguousarray(np.repeat(scores[:, :, None], 4, axis=2), dtype=np.float32)
    refresh_drift_select(thumbs, scores, eligible, mandatory, 12, weight=64.0, age_weight=0.01)
    return time.perf_counter() - start
