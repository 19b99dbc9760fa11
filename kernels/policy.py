"""Per-frame normalisation and the selection policies on flat cell scores (flat index n = t·C + c)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array
from .order import normalise_p95_into, order_pair

__all__ = ["normalise_p95", "topk_cells", "refresh_mask", "refresh_select"]


# ---------------------------------------------------------------------------------------------------------------
# normalise_p95


def normalise_p95(x: np.ndarray, floor: float) -> np.ndarray:
    """``clip(x / max(p95(x), floor), 0, 1)`` with ``p95 = np.percentile(x, 95)`` over all entries.

    ``x`` is a float32 C-contiguous array of any shape (NaN-free); ``floor`` > 0 keeps a quiet frame quiet.
    Returns float32 of the same shape.
    """
    check_array("x", x, np.float32)
    floor = float(floor)
    if not floor > 0.0:
        raise ValueError(f"floor must be > 0, got {floor}.")
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    return normalise_p95_into(flat, floor, out).reshape(x.shape)


# ---------------------------------------------------------------------------------------------------------------
# topk_cells


@njit(**JIT)
def _topk_core(scores, eligible, mandatory, k):
    """Sorted indices: the first k mandatory, then the best-scoring eligible others (ties by index). O(N)."""
    n = scores.shape[0]
    chosen = np.zeros(n, dtype=np.bool_)
    taken = 0
    for i in range(n):
        if mandatory[i] and taken < k:
            chosen[i] = True
            taken += 1
    need = k - taken
    if need > 0:
        nc = 0
        for i in range(n):
            if eligible[i] and not mandatory[i]:
                nc += 1
        if nc <= need:
            for i in range(n):
                if eligible[i] and not mandatory[i]:
                    chosen[i] = True
        else:
            keys = np.empty(nc, dtype=np.float64)  # −score: the smallest keys win; NaN scores never do
            q = 0
            for i in range(n):
                if eligible[i] and not mandatory[i]:
                    s = scores[i]
                    keys[q] = np.inf if np.isnan(s) else -float(s)
                    q += 1
            thr = order_pair(keys, need - 1)[0]
            below = 0
            for q in range(nc):
                if keys[q] < thr:
                    below += 1
            ties = need - below
            for i in range(n):
                if eligible[i] and not mandatory[i]:
                    s = scores[i]
                    key = np.inf if np.isnan(s) else -float(s)
                    if key < thr:
                        chosen[i] = True
                    elif key == thr and ties > 0:
                        chosen[i] = True
                        ties -= 1
    return np.flatnonzero(chosen)


@njit(**JIT)
def _topk_cells_kernel(scores, eligible, mandatory, k):
    return _topk_core(scores, eligible, mandatory, k)


def _check_k(k, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {k!r}.")
    return int(k)


def topk_cells(scores: np.ndarray, eligible: np.ndarray, mandatory: np.ndarray, k: int) -> np.ndarray:
    """Global top-K of flat cell scores.

    ``scores`` float32 ``[N]``, ``eligible``/``mandatory`` bool ``[N]``. Returns int64 indices sorted ascending:
    every mandatory index (the k smallest if there are more), then the highest-scoring eligible non-mandatory
    ones, ties by smaller index (NaN scores rank last). Fewer than k candidates → all of them.
    """
    check_array("scores", scores, np.float32, ndim=1)
    n = scores.shape[0]
    check_array("eligible", eligible, np.bool_, shape=(n,))
    check_array("mandatory", mandatory, np.bool_, shape=(n,))
    k = _check_k(k)
    return _topk_cells_kernel(scores, eligible, mandatory, k)


# ---------------------------------------------------------------------------------------------------------------
# refresh


@njit(**JIT)
def _refresh_count(energy, eligible, mandatory, tau, limit, acc):
    """How many cells the refresh walk keeps at threshold ``tau`` (stops as soon as it exceeds ``limit``)."""
    for c in range(acc.shape[0]):  # loops, not slice assignment: cheaper to compile
        acc[c] = 0.0
    count = 0
    for t in range(energy.shape[0]):
        for c in range(energy.shape[1]):
            a = acc[c] + energy[t, c]
            if mandatory[t, c] or (eligible[t, c] and a >= tau):
                count += 1
                a = 0.0
            acc[c] = a
        if count > limit:
            return count
    return count


@njit(**JIT)
def _refresh_mask_kernel(energy, eligible, mandatory, tau, keep, stale):
    acc = np.zeros(energy.shape[1], dtype=np.float64)
    count = 0
    for t in range(energy.shape[0]):
        for c in range(energy.shape[1]):
            a = acc[c] + energy[t, c]
            stale[t, c] = a
            kept = mandatory[t, c] or (eligible[t, c] and a >= tau)
            keep[t, c] = kept
            if kept:
                count += 1
                a = 0.0
            acc[c] = a
    return count


@njit(**JIT)
def _refresh_select_kernel(energy, eligible, mandatory, k, iters, tau_max, keep, stale):
    n_t = energy.shape[0]
    n_c = energy.shape[1]
    acc = np.empty(n_c, dtype=np.float64)
    if _refresh_count(energy, eligible, mandatory, 0.0, k, acc) <= k:
        tau = 0.0  # everything eligible fits in the budget
    elif _refresh_count(energy, eligible, mandatory, tau_max, k, acc) > k:
        # More mandatory cells than budget: the first k of them.
        for t in range(n_t):
            for c in range(n_c):
                keep[t, c] = False
        taken = 0
        for t in range(n_t):
            for c in range(n_c):
                if mandatory[t, c] and taken < k:
                    keep[t, c] = True
                    taken += 1
        return keep
    else:
        lo = 0.0  # count(lo) > k
        hi = tau_max  # count(hi) <= k
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            if not (lo < mid < hi):
                break
            count = _refresh_count(energy, eligible, mandatory, mid, k, acc)
            if count <= k:
                hi = mid
                if count == k:
                    break
            else:
                lo = mid
        tau = hi
    count = _refresh_mask_kernel(energy, eligible, mandatory, tau, keep, stale)
    if count < k:
        # Fill with the stalest eligible cells not kept (ties by flat index).
        flat_keep = keep.reshape(n_t * n_c)
        flat_eligible = eligible.reshape(n_t * n_c)
        candidates = np.empty(n_t * n_c, dtype=np.bool_)
        for i in range(n_t * n_c):
            candidates[i] = flat_eligible[i] and not flat_keep[i]
        idx = _topk_core(stale.reshape(n_t * n_c), candidates, flat_keep, k)
        for i in idx:
            flat_keep[i] = True
    return keep


def _check_refresh_args(energy, eligible, mandatory) -> None:
    check_array("energy", energy, np.float32, ndim=2)
    check_array("eligible", eligible, np.bool_, shape=energy.shape)
    check_array("mandatory", mandatory, np.bool_, shape=energy.shape)
    if energy.size and not (np.all(energy >= 0.0) and np.isfinite(energy.max())):
        raise ValueError("energy must be finite and >= 0.")


def refresh_mask(
    energy: np.ndarray, eligible: np.ndarray, mandatory: np.ndarray, tau: float
) -> tuple[np.ndarray, np.ndarray]:
    """One refresh walk at threshold ``tau`` over float32 ``energy [T, C]``.

    Walking t = 0..T−1, each cell accumulates its energy; it is kept when mandatory, or when eligible with
    accumulated energy ≥ ``tau``, and a kept cell's accumulator resets to 0. Returns ``(keep bool [T, C],
    staleness float32 [T, C])``; staleness is the accumulator after adding slot t's energy, before any reset.
    """
    _check_refresh_args(energy, eligible, mandatory)
    tau = float(tau)
    if np.isnan(tau):
        raise ValueError("tau must not be NaN.")
    keep = np.empty(energy.shape, dtype=np.bool_)
    stale = np.empty(energy.shape, dtype=np.float32)
    _refresh_mask_kernel(energy, eligible, mandatory, tau, keep, stale)
    return keep, stale


def refresh_select(
    energy: np.ndarray, eligible: np.ndarray, mandatory: np.ndarray, k: int, iters: int = 64
) -> np.ndarray:
    """The drift-aware policy: the refresh walk with τ bisected so that exactly ``k`` cells are kept.

    ``energy`` float32 ``[T, C]`` ≥ 0, ``eligible``/``mandatory`` bool ``[T, C]``. τ is bisected on float64 in
    ``(0, 2·T·max(energy) + 1]`` for at most ``iters`` steps (stopping early when the count hits k) to the smallest
    τ found whose walk keeps ≤ k cells; the missing cells are the stalest eligible cells not kept (staleness from
    that walk, ties by flat index). Everything is kept when τ = 0 fits in the budget; with more than k mandatory
    cells, the first k mandatory cells in flat order. Returns ``keep bool [T, C]`` with exactly ``min(k,
    #eligible-or-mandatory)`` cells.
    """
    _check_refresh_args(energy, eligible, mandatory)
    k = _check_k(k)
    iters = _check_k(iters, "iters")
    tau_max = 2.0 * energy.shape[0] * float(energy.max() if energy.size else 0.0) + 1.0
    keep = np.zeros(energy.shape, dtype=np.bool_)
    stale = np.zeros(energy.shape, dtype=np.float32)
    return _refresh_select_kernel(energy, eligible, mandatory, k, iters, tau_max, keep, stale)
