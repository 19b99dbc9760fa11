"""Array kernels of codec_select (numba; installed as ``codec_select.kernels``).

Pure functions on numpy arrays: no I/O, no PyAV, no torch. Each public function validates its arguments and calls
a private ``_…_kernel`` compiled with the options in :mod:`._jit`. Kernels compile on first use and are cached on
disk in :func:`kernel_cache_dir` (never inside the installed package). :func:`warmup` compiles (or loads) a chosen
set of them up front, so a caller can tell the user before the wait and time its stages without the JIT.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from ._jit import kernel_cache_dir, locate_cache
from .drift import block_means, refresh_drift_mask, refresh_drift_select
from .fuse import fuse_energy
from .matching import block_match, downscale2
from .motion import compensate_median, compensate_similarity, flow_magnitude, rasterise_mvs
from .policy import normalise_p95, refresh_mask, refresh_select, topk_cells
from .pool import pool_cells, pool_cells_planned, pool_plan
from .residual import frame_change, mc_residual

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
    "normalise_p95",
    "topk_cells",
    "refresh_mask",
    "refresh_select",
    "block_means",
    "refresh_drift_mask",
    "refresh_drift_select",
    "fuse_energy",
    "warmup",
    "WARMUP_STEPS",
    "kernel_cache_dir",
    "cache_is_empty",
]

# Tiny inputs of the production dtypes, layouts and parameters (8-pixel blocks; the residual and the I-frame change
# sample every 4th pixel, the drift thumbnails every 2nd, block matching uses 8-pixel blocks and radius 4).
_BLOCK = 8
_GRID = 4  # a 4×4 block grid
_RNG_FRAMES = (np.arange(3 * 32 * 32, dtype=np.int64).reshape(3, 32, 32) % 251).astype(np.uint8)


def _flow() -> np.ndarray:
    return rasterise_mvs(
        np.array([-1, 1, 1], dtype=np.int32), np.full(3, 8, dtype=np.uint8), np.full(3, 8, dtype=np.uint8),
        np.array([4, 4, 0], dtype=np.int16), np.array([4, 4, 0], dtype=np.int16),
        np.array([1, -2, 0], dtype=np.int32), np.array([2, 1, 0], dtype=np.int32), np.full(3, 4, dtype=np.uint16),
        _GRID, _GRID, _BLOCK,
    )


def _residual() -> tuple[np.ndarray, np.ndarray]:
    return mc_residual(
        _RNG_FRAMES[0], _RNG_FRAMES, np.array([1, 2], dtype=np.int64), np.array([-1, 1], dtype=np.int8),
        np.array([1, 1], dtype=np.int32), _flow(), block=_BLOCK, step=4,
    )


def _velocity() -> np.ndarray:
    return np.ascontiguousarray(np.random.default_rng(0).standard_normal((_GRID, _GRID, 2)), dtype=np.float32)


def _slot_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.ascontiguousarray(np.random.default_rng(0).random((2, 16)), dtype=np.float32)
    eligible = np.ones(scores.shape, dtype=np.bool_)
    mandatory = np.zeros(scores.shape, dtype=np.bool_)
    mandatory[0] = True
    eligible[0] = False
    return scores, eligible, mandatory


def _refresh_drift() -> None:
    scores, eligible, mandatory = _slot_arrays()
    thumbs = np.ascontiguousarray(np.repeat(scores[:, :, None], 4, axis=2))
    refresh_drift_select(thumbs, scores, eligible, mandatory, 20, weight=64.0, age_weight=0.01)


def _pool() -> None:
    edges = np.array([0.0, 3.0, 8.0, 16.0])
    pool_cells(np.ones((_GRID, _GRID), np.float32), float(_BLOCK), edges, edges)


WARMUP_STEPS: dict[str, Callable[[], object]] = {
    "rasterise_mvs": _flow,
    "mc_residual": _residual,
    "fuse_energy": lambda: fuse_energy(
        _velocity(), np.ones((_GRID, _GRID), np.float32), median=True, mv_deadzone=0.5, mv_floor=1.0,
        res_deadzone=3.0, res_floor=6.0,
    ),
    "frame_change": lambda: frame_change(_RNG_FRAMES[0], _RNG_FRAMES[1], block=8, step=4),
    "normalise_p95": lambda: normalise_p95(np.ones(5, np.float32), 1.0),
    "block_means": lambda: block_means(_RNG_FRAMES[0], 8, 2),
    "pool_cells": _pool,
    "pool_cells_planned": lambda: pool_cells_planned(
        np.ones((_GRID, _GRID), np.float32), pool_plan(float(_BLOCK), np.array([0.0, 3.0, 8.0, 16.0]),
                                                       np.array([0.0, 3.0, 8.0, 16.0]), _GRID, _GRID),
    ),
    "refresh_drift_select": _refresh_drift,
    "topk_cells": lambda: topk_cells(*(a.ravel() for a in _slot_arrays()), 20),
    "refresh_select": lambda: refresh_select(*_slot_arrays(), 20),
    "compensate_similarity": lambda: compensate_similarity(_velocity()),
    "compensate_median": lambda: compensate_median(_velocity()),
    "flow_magnitude": lambda: flow_magnitude(_velocity()),
    "block_match": lambda: block_match(downscale2(_RNG_FRAMES[0]), downscale2(_RNG_FRAMES[1]), block=8, radius=4),
    "true_change": lambda: frame_change(_RNG_FRAMES[0], _RNG_FRAMES[1], block=4, step=1),
}
"""Named warm-up steps: each compiles (or loads from the cache) one kernel family at its production parameters."""


def cache_is_empty(module: str = "") -> bool:
    """True when no compiled kernel of this package (of kernel file ``module``, e.g. ``"h264_emulate"``) is cached
    yet: a first run will compile."""
    return not any(locate_cache().glob(f"{module}*.nbi" if module else "*.nbi"))


def warmup(
    steps: Iterable[str] | None = None, *, progress: Callable[[str, int, int], None] | None = None
) -> float:
    """Compile (or load from numba's on-disk cache) the kernels of ``steps`` (names of :data:`WARMUP_STEPS`; all
    when None). ``progress(name, i, n)`` is called before each step. Returns the seconds it took; steps already
    compiled in this process cost microseconds.
    """
    names = list(WARMUP_STEPS) if steps is None else list(dict.fromkeys(steps))
    unknown = [name for name in names if name not in WARMUP_STEPS]
    if unknown:
        raise ValueError(f"Invalid warm-up step ({unknown[0]!r}). Supported values are {', '.join(WARMUP_STEPS)}.")
    start = time.perf_counter()
    for i, name in enumerate(names):
        if progress is not None:
            progress(name, i, len(names))
        WARMUP_STEPS[name]()
    return time.perf_counter() - start
