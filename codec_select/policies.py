"""Policies: how a budget of K cells is spent over the 64 slots, as pure functions on score arrays.

Each policy takes (scores [T, C] float32, eligible [T, C], mandatory [T, C], k, thumbs [T, C, S] float32 | None)
and returns exactly k flat int64 indices. Scores are in cell-area units (1.0 = a fully busy cell for one frame).
:func:`apply_policy` turns pooled slot scores into those inputs; :data:`POLICIES` registers the rules.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .geometry import Geometry
from .kernels import refresh_drift_select, refresh_select, topk_cells

__all__ = ["POLICIES", "apply_policy", "cell_area", "cell_thumbs", "DRIFT_WEIGHT", "AGE_WEIGHT"]


DRIFT_WEIGHT = 64.0
"""Squared luma levels one fully busy cell-frame of codec energy is worth in the refresh rule (8 levels RMS):
codec-salient motion inside a cell still triggers a refresh when the cell's mean appearance barely changes."""
AGE_WEIGHT = 0.01
"""Squared luma levels per slot a cell gains just by waiting: negligible against real drift (hundreds), it makes
a static shot spend K evenly over time instead of piling leftover budget on a few slots."""


def _policy_topk(scores, eligible, mandatory, k, thumbs=None):
    """The reference's rule: one global top-K of per-slot energy (ties by (t, h, w))."""
    return topk_cells(scores.ravel(), eligible.ravel(), mandatory.ravel(), k)


def _policy_refresh(scores, eligible, mandatory, k, thumbs=None):
    """Drift-aware: a cell is re-sent once what was last sent of it no longer matches (thumbnail drift) plus the
    codec energy it gathered since reaches τ, bisected for exactly K. Without thumbnails: energy alone."""
    if thumbs is None:
        keep = refresh_select(scores, eligible, mandatory, k)
    else:
        keep = refresh_drift_select(thumbs, scores, eligible, mandatory, k, weight=DRIFT_WEIGHT, age_weight=AGE_WEIGHT)
    return np.flatnonzero(keep.ravel()).astype(np.int64)


def _policy_uniform(scores, eligible, mandatory, k, thumbs=None):
    """Uniform frame sampling at the same K: n = K / cells full frames at slots round(linspace(0, 63, n))."""
    t, c = scores.shape
    if k % c:
        raise ValueError(f"Uniform sampling needs a budget that is a multiple of the {c} cells per frame, got {k}.")
    n = k // c
    slots = np.unique(np.round(np.linspace(0, t - 1, n)).astype(np.int64))
    if slots.size != n:
        raise ValueError(f"Budget {k} asks for more than {t} full frames.")
    return (slots[:, None] * c + np.arange(c)[None, :]).ravel()


POLICIES: dict[str, Callable] = {
    "refresh": _policy_refresh,
    "topk": _policy_topk,
    "uniform": _policy_uniform,
}


def apply_policy(
    policy: str, scores: np.ndarray, geometry: Geometry, budget: int, *, first_full: bool = True,
    thumbnails: np.ndarray | None = None,
) -> np.ndarray:
    """Run ``policy`` on slot scores ``[64, Hp, Wp]`` and return sorted flat indices (exactly ``budget``).

    ``thumbnails`` (float16 [64, 2·Hp, 2·Wp], :attr:`Selection.thumbnails`) feed the drift-aware refresh."""
    if policy not in POLICIES:
        raise ValueError(f"Invalid policy ({policy!r}). Supported values are {', '.join(POLICIES)}.")
    t = scores.shape[0]
    c = geometry.cells
    valid = geometry.valid_mask().ravel()
    eligible = np.broadcast_to(valid, (t, c)).copy()
    mandatory = np.zeros((t, c), dtype=bool)
    if first_full:
        mandatory[0] = True  # padding included, as the reference's full first frame
        eligible[0] = False
    available = int(eligible.sum() + mandatory.sum())
    if budget < 1 or budget > available:
        raise ValueError(f"Invalid budget ({budget}). It must be between 1 and {available} for this geometry.")
    if first_full and budget < c:
        raise ValueError(f"Invalid budget ({budget}). With first_full=True it must be at least one frame ({c} cells).")
    area = cell_area(geometry)
    flat = np.ascontiguousarray(scores.reshape(t, c) / area, dtype=np.float32)
    thumbs = None if thumbnails is None else cell_thumbs(thumbnails, geometry)
    idx = POLICIES[policy](flat, eligible, mandatory, budget, thumbs)
    if idx.size != budget:
        raise RuntimeError(f"policy {policy!r} returned {idx.size} cells instead of {budget}")
    return np.sort(idx.astype(np.int64))


def cell_area(geometry: Geometry) -> float:
    """Source pixels per cell: pooled energy divided by this is 1.0 for a cell fully busy during one frame."""
    return float(np.diff(geometry.row_edges())[0] * np.diff(geometry.col_edges())[0])


def cell_thumbs(thumbnails: np.ndarray, geometry: Geometry) -> np.ndarray:
    """[T, 2Hp, 2Wp] → float32 [T, Hp·Wp, 4]: the four sub-cell means of every cell."""
    t = thumbnails.shape[0]
    hp, wp = geometry.grid_h, geometry.grid_w
    x = thumbnails.reshape(t, hp, 2, wp, 2).transpose(0, 1, 3, 2, 4).reshape(t, hp * wp, 4)
    return np.ascontiguousarray(x, dtype=np.float32)
