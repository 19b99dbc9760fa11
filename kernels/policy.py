"""Per-frame normalisation and the selection policies on flat cell scores (flat index n = t·C + c)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array

__all__ = ["normalise_p95", "topk_cells", "refresh_mask", "refresh_select"]


# ---------------------------------------------------------------------------------------------------------------
# exact order statistics in O(n)

_SELECT_BINS = 1024


@njit(**JIT)
def _min_max(values, n):
    """(min, max) of ``values[:n]`` with four independent accumulators (float min/max chains do not vectorise)."""
    lo0 = values[0]
    lo1 = lo0
    lo2 = lo0
    lo3 = lo0
    hi0 = lo0
    hi1 = lo0
    hi2 = lo0
    hi3 = lo0
    n4 = n - n % 4
    for i in range(0, n4, 4):
        lo0 = min(lo0, values[i])
        hi0 = max(hi0, values[i])
        lo1 = min(lo1, values[i + 1])
        hi1 = max(hi1, values[i + 1])
        lo2 = min(lo2, values[i + 2])
        hi2 = max(hi2, values[i + 2])
        lo3 = min(lo3, values[i + 3])
        hi3 = max(hi3, values[i + 3])
    for i in range(n4, n):
        lo0 = min(lo0, values[i])
        hi0 = max(hi0, values[i])
    return min(min(lo0, lo1), min(lo2, lo3)), max(max(hi0, hi1), max(hi2, hi3))


@njit(**JIT)
def _order_pair(values, k):
    """The k-th and (k+1)-th smallest of float64 ``values`` (0-based; the second is +inf when k is the last).

    Exact and O(n) (this runs per frame, where a sort or numba's ``np.partition`` costs 50–100 µs): histogram
    the values into 1024 equal-width bins, keep only the bin that holds rank k (and the bin after it, for the
    (k+1)-th), repeat on that bin until it is small or constant, then sort it. Four independent counters keep
    ties (many equal values) from serialising the histogram. Non-finite values fall back to a sort.
    """
    cur = values
    upper = np.inf  # smallest value known to lie above the current subset
    counts = np.zeros((4, _SELECT_BINS), dtype=np.int64)
    # Energy maps are mostly exact zeros (static blocks); answer a rank that falls on them in one pass.
    n = cur.shape[0]
    negative = 0
    zero = 0
    for i in range(n):
        negative += cur[i] < 0.0
        zero += cur[i] == 0.0
    if negative <= k < negative + zero:
        if k + 1 < negative + zero:
            return 0.0, 0.0
        above = np.inf
        for i in range(n):
            v = cur[i] if cur[i] > 0.0 else np.inf
            above = min(above, v)
        return 0.0, above
    while True:
        n = cur.shape[0]
        lo, hi = _min_max(cur, n)
        if lo == hi:
            return lo, (lo if k + 1 < n else upper)
        scale = _SELECT_BINS / (hi - lo)
        if n <= 64 or not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(scale)):
            srt = np.sort(cur)
            return srt[k], (srt[k + 1] if k + 1 < n else upper)
        last = _SELECT_BINS - 1
        counts[:, :] = 0
        n4 = n - n % 4
        for i in range(0, n4, 4):
            counts[0, min(int((cur[i] - lo) * scale), last)] += 1
            counts[1, min(int((cur[i + 1] - lo) * scale), last)] += 1
            counts[2, min(int((cur[i + 2] - lo) * scale), last)] += 1
            counts[3, min(int((cur[i + 3] - lo) * scale), last)] += 1
        for i in range(n4, n):
            counts[0, min(int((cur[i] - lo) * scale), last)] += 1
        target = 0
        below = 0
        size = 0
        while True:
            size = counts[0, target] + counts[1, target] + counts[2, target] + counts[3, target]
            if below + size > k:
                break
            below += size
            target += 1
        after = target + 1  # the next non-empty bin holds the smallest value above the target bin
        after_size = 0
        while after < _SELECT_BINS:
            after_size = counts[0, after] + counts[1, after] + counts[2, after] + counts[3, after]
            if after_size > 0:
                break
            after += 1
        sub = np.empty(size + 1, dtype=np.float64)  # one spare slot for the branch-free writes
        nxt = np.empty(after_size + 1, dtype=np.float64)
        m = 0
        m2 = 0
        if 8 * (size + after_size) < n:
            for i in range(n):  # rare hits: branches predict well
                v = cur[i]
                b = min(int((v - lo) * scale), last)
                if b == target:
                    sub[m] = v
                    m += 1
                elif b == after:
                    nxt[m2] = v
                    m2 += 1
        else:
            for i in range(n):  # frequent hits (ties): branch-free
                v = cur[i]
                b = min(int((v - lo) * scale), last)
                sub[m] = v
                m += b == target
                nxt[m2] = v
                m2 += b == after
        if after_size > 0:
            upper = _min_max(nxt, after_size)[0]
        cur = sub[:size]
        k -= below


# ---------------------------------------------------------------------------------------------------------------
# normalise_p95


@njit(**JIT)
def _normalise_p95_kernel(x, floor, out):
    n = x.shape[0]
    if n == 0:
        return out
    # numpy's default ("linear") percentile: virtual index 0.95·(n − 1), lerp between its neighbours.
    pos = 0.95 * (n - 1)
    lo = int(np.floor(pos))
    gamma = pos - lo
    vals = np.empty(n, dtype=np.float64)
    for i in range(n):
        vals[i] = x[i]
    a, b = _order_pair(vals, lo)
    if lo + 1 >= n:
        b = a
    diff = b - a
    p95 = b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma
    scale = max(p95, floor)
    for i in range(n):
        v = float(x[i]) / scale
        out[i] = min(max(v, 0.0), 1.0)
    return out


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
    return _normalise_p95_kernel(flat, floor, out).reshape(x.shape)


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
            thr = _order_pair(keys, need - 1)[0]
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
    acc[:] = 0.0
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
        keep[:, :] = False
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
