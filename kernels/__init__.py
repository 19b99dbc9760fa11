"""Array kernels of codec_select (numba; installed as ``codec_select.kernels``).

Pure functions on numpy arrays: no I/O, no PyAV, no torch. Each public function validates its arguments and calls
a private ``_…_kernel`` compiled with the options in :mod:`._jit`. Call :func:`warmup` once before timing anything:
it compiles (or loads from numba's on-disk cache) every kernel for the production dtypes and layouts.
"""

from __future__ import annotations

import time

import numpy as np

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
    "warmup",
]


def warmup() -> float:
    """Compile (or load from the numba cache) every kernel on tiny inputs of the production dtypes/layouts.

    Returns the seconds it took. Safe to call more than once; later calls cost microseconds.
    """
    start = time.perf_counter()
    block = 4
    height, width = 2 * block, 2 * block  # a 2×2 block grid
    n = 3
    flow = rasterise_mvs(
        np.array([-1, 1, 1], dtype=np.int32), np.full(n, 8, dtype=np.uint8), np.full(n, 8, dtype=np.uint8),
        np.array([4, 4, 0], dtype=np.int16), np.array([4, 4, 0], dtype=np.int16),
        np.array([1, -2, 0], dtype=np.int32), np.array([2, 1, 0], dtype=np.int32), np.full(n, 4, dtype=np.uint16),
        2, 2, block,
    )
    ring = np.arange(3 * height * width, dtype=np.int64).reshape(3, height, width).astype(np.uint8)
    cur = np.ascontiguousarray(ring[0])
    residual, velocity = mc_residual(
        cur, ring, np.array([1, 2], dtype=np.int64), np.array([-1, 1], dtype=np.int8),
        np.array([1, 1], dtype=np.int32), flow, block=block, step=2,
    )
    compensate_median(velocity)
    compensate_similarity(velocity)
    speed = flow_magnitude(velocity)
    normalise_p95(speed, 1.0)
    frame_change(cur, ring[1], block=block, step=2)
    small = downscale2(cur)
    block_match(small, small, block=2, radius=1)
    edges = np.array([0.0, 3.0, 8.0])
    pooled = pool_cells(residual, float(block), edges, edges)
    pool_cells_batch(np.stack([residual, residual]), float(block), edges, edges)
    scores = np.ascontiguousarray(np.stack([pooled.ravel(), pooled.ravel()]))
    eligible = np.ones(scores.shape, dtype=np.bool_)
    mandatory = np.zeros(scores.shape, dtype=np.bool_)
    mandatory[0] = True
    eligible[0] = False
    topk_cells(scores.ravel(), eligible.ravel(), mandatory.ravel(), 5)
    refresh_mask(scores, eligible, mandatory, 1.0)
    refresh_select(scores, eligible, mandatory, 5)
    return time.perf_counter() - start
