"""Drift-aware refresh: re-send a cell when what the encoder last saw of it no longer matches what is there.

The hold rule (a cell shows its most recent kept version) fails where a cell's content drifted since it was last
kept — a camera pan, a slow zoom, lighting — even when the codec calls those blocks "well predicted". Each slot
frame is summarised by small per-cell thumbnails (the mean luma of ``S`` sub-cells); the refresh rule keeps a cell
when ``mean_s (thumb_t − thumb_last_kept)² + weight · (codec energy since last kept) + age_weight · (slots
since last kept)`` reaches τ, the way a codec's
rate control re-codes a block once its error grows, and τ is bisected so exactly K cells are kept.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array
from .order import argsort_stable

__all__ = ["block_means", "refresh_drift_mask", "refresh_drift_select"]


@njit(**JIT)
def _block_means_loop(luma, block, step, row0, row1, col0, col1, out):
    start = step // 2
    side = (block - 1 - start) // step + 1
    inv = 1.0 / (side * side)
    for by in range(row0, row1):
        y0 = by * block
        for bx in range(col0, col1):
            x0 = bx * block
            t = 0
            for r in range(start, block, step):
                for c in range(start, block, step):
                    t += np.int64(luma[y0 + r, x0 + c])
            out[by, bx] = t * inv  # the integer sum is exact, as the float sum of ≤ block² pixels was
    return out


@njit(**JIT)
def _block_means_kernel(luma, block, step, row0, row1, col0, col1, out):
    if block == 8 and step == 2:
        # The thumbnails' parameters as literals: LLVM inlines the loop and unrolls the per-block sums (5x faster
        # than runtime trip counts, measured). One kernel, not a factory of closures: numba's on-disk cache mixes
        # up closures of one name written by concurrent processes.
        return _block_means_loop(luma, 8, 2, row0, row1, col0, col1, out)
    return _block_means_loop(luma, block, step, row0, row1, col0, col1, out)


def block_means(
    luma: np.ndarray, block: int = 8, step: int = 2, *, rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
) -> np.ndarray:
    """float32 [H//block, W//block]: mean of the sampled pixels (rows/cols ``range(step//2, block, step)``).

    ``rows``/``cols``: optional block ranges ``[first, end)``; blocks outside them are left 0 (a caller that pools
    only part of the frame, e.g. a centre crop, skips the rest)."""
    check_array("luma", luma, np.uint8, ndim=2)
    block, step = int(block), int(step)
    if block < 1 or step < 1 or step // 2 >= block:
        raise ValueError(f"Invalid block/step ({block}, {step}): need block >= 1 and 0 <= step//2 < block.")
    gh, gw = luma.shape[0] // block, luma.shape[1] // block
    row0, row1 = (0, gh) if rows is None else (max(int(rows[0]), 0), min(int(rows[1]), gh))
    col0, col1 = (0, gw) if cols is None else (max(int(cols[0]), 0), min(int(cols[1]), gw))
    whole = row0 == 0 and row1 == gh and col0 == 0 and col1 == gw
    out = np.empty((gh, gw), dtype=np.float32) if whole else np.zeros((gh, gw), dtype=np.float32)
    return _block_means_kernel(luma, block, step, row0, max(row1, row0), col0, max(col1, col0), out)


@njit(**JIT)
def _drift_run(thumbs, energy, eligible, mandatory, weight, age_weight, tau, keep, stale, last, acc, age):
    """One pass of the rule at threshold ``tau``; fills keep/stale, returns the count kept."""
    t_n, c_n, s_n = thumbs.shape
    for c in range(c_n):
        acc[c] = 0.0
        age[c] = 0.0
        for s in range(s_n):
            last[c, s] = 128.0  # never seen: compare with mid-grey, as the hold reconstruction shows it
    count = 0
    inv = 1.0 / s_n
    for t in range(t_n):
        for c in range(c_n):
            acc[c] += energy[t, c]
            age[c] += 1.0
            d = 0.0
            for s in range(s_n):
                e = thumbs[t, c, s] - last[c, s]
                d += e * e
            score = d * inv + weight * acc[c] + age_weight * age[c]
            stale[t, c] = score
            take = mandatory[t, c] or (eligible[t, c] and score >= tau)
            keep[t, c] = take
            if take:
                count += 1
                acc[c] = 0.0
                age[c] = 0.0
                for s in range(s_n):
                    last[c, s] = thumbs[t, c, s]
    return count


@njit(**JIT)
def _drift_select_kernel(thumbs, energy, eligible, mandatory, k, weight, age_weight, iters, keep, stale):
    t_n, c_n, s_n = thumbs.shape
    last = np.empty((c_n, s_n), dtype=np.float64)
    acc = np.empty(c_n, dtype=np.float64)
    age = np.empty(c_n, dtype=np.float64)
    args = (thumbs, energy, eligible, mandatory, weight, age_weight)
    # Bracket tau by factors of 16 (thresholds span many decades), then bisect geometrically.
    hi = 1.0
    while _drift_run(*args, hi, keep, stale, last, acc, age) > k and hi < 1e30:
        hi *= 16.0
    lo = hi
    while _drift_run(*args, lo, keep, stale, last, acc, age) <= k and lo > 1e-12:
        lo /= 16.0
    for _ in range(iters):
        mid = np.sqrt(lo * hi)
        if mid <= lo or mid >= hi:
            break
        if _drift_run(*args, mid, keep, stale, last, acc, age) > k:
            lo = mid
        else:
            hi = mid
    count = _drift_run(*args, hi, keep, stale, last, acc, age)
    n = t_n * c_n
    flat_keep = keep.reshape(n)
    flat_stale = stale.reshape(n)
    flat_elig = eligible.reshape(n)
    flat_mand = mandatory.reshape(n)
    if count > k:  # the rule is not exactly monotone in tau: trim the least stale non-mandatory keeps
        order = argsort_stable(flat_stale)
        for i in order:
            if count <= k:
                break
            if flat_keep[i] and not flat_mand[i]:
                flat_keep[i] = False
                count -= 1
        if count > k:  # still too many: mandatory cells beyond k, keep the smallest indices
            for i in range(n - 1, -1, -1):
                if count <= k:
                    break
                if flat_keep[i]:
                    flat_keep[i] = False
                    count -= 1
    elif count < k:  # fill with the stalest eligible cells not kept (ties: smaller flat index)
        order = argsort_stable(-flat_stale)
        for i in order:
            if count >= k:
                break
            if flat_elig[i] and not flat_keep[i]:
                flat_keep[i] = True
                count += 1
    return keep


def _check(thumbs, energy, eligible, mandatory):
    check_array("thumbs", thumbs, np.float32, ndim=3)
    t, c, _ = thumbs.shape
    check_array("energy", energy, np.float32, shape=(t, c))
    check_array("eligible", eligible, np.bool_, shape=(t, c))
    check_array("mandatory", mandatory, np.bool_, shape=(t, c))
    if thumbs.shape[2] < 1:
        raise ValueError("thumbs needs at least one sub-cell per cell.")


def refresh_drift_mask(
    thumbs: np.ndarray, energy: np.ndarray, eligible: np.ndarray, mandatory: np.ndarray, tau: float, weight: float,
    age_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One pass of the rule at ``tau``: ``(keep bool [T, C], staleness float64 [T, C])``."""
    _check(thumbs, energy, eligible, mandatory)
    t, c, s = thumbs.shape
    keep = np.zeros((t, c), dtype=np.bool_)
    stale = np.zeros((t, c), dtype=np.float64)
    _drift_run(thumbs, energy, eligible, mandatory, float(weight), float(age_weight), float(tau), keep, stale,
               np.empty((c, s), np.float64), np.empty(c, np.float64), np.empty(c, np.float64))
    return keep, stale


def refresh_drift_select(
    thumbs: np.ndarray, energy: np.ndarray, eligible: np.ndarray, mandatory: np.ndarray, k: int, *,
    weight: float = 64.0, age_weight: float = 0.0, iters: int = 80,
) -> np.ndarray:
    """bool [T, C] with exactly ``k`` kept (when ``k`` ≤ eligible + mandatory cells).

    thumbs float32 [T, C, S] (per-cell sub-cell mean luma of each slot frame), energy float32 [T, C] (codec
    energy per slot, in cell-area units), eligible/mandatory bool [T, C]; ``weight`` converts one fully busy
    cell-frame of codec energy into squared luma levels; ``age_weight`` (squared levels per slot) lets a cell that
    neither drifts nor moves still be refreshed now and then, so a static shot spends K evenly over time.
    """
    _check(thumbs, energy, eligible, mandatory)
    k = int(k)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}.")
    t, c, _ = thumbs.shape
    keep = np.zeros((t, c), dtype=np.bool_)
    stale = np.zeros((t, c), dtype=np.float64)
    return _drift_select_kernel(
        thumbs, energy, eligible, mandatory, k, float(weight), float(age_weight), int(iters), keep, stale
    )
