"""Prediction errors on the block grid: motion-compensated residual and plain frame change.

Luma planes are uint8 ``[H, W]``; a block grid has ``gh = H // block`` rows and ``gw = W // block`` columns (pixels
past ``gh·block`` / ``gw·block`` are ignored). Errors are mean absolute luma differences (0–255) over the sampled
pixels of a block: rows and columns ``range(step // 2, block, step)`` inside it.

The block size and sampling step are compile-time constants of each kernel (one cached specialisation per value,
made by an ``lru_cache``'d factory): the per-block pixel loops are 2–4 iterations long, and with constant trip counts
LLVM unrolls them, which measured 5–7× faster than the same loops with runtime bounds.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import njit

from ._jit import JIT, check_array

__all__ = ["mc_residual", "frame_change"]

SUBPEL = 16
"""Vectors on the 1/16-pixel grid (all codec vectors: ¼ and ½ pel) take an exact integer bilinear path."""
_ABSENT = -(2**31)  # quantised vector component: NaN (no vector)
_OFFGRID = _ABSENT + 1  # quantised vector component: not on the 1/16 grid (or absurdly large) → float path


def _check_sampling(block: int, step: int) -> tuple[int, int]:
    block, step = int(block), int(step)
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}.")
    if step < 1 or step // 2 >= block:
        raise ValueError(f"step must be >= 1 and step // 2 < block ({block}), got {step}.")
    return block, step


# ---------------------------------------------------------------------------------------------------------------
# mc_residual


@njit(**JIT)
def _bilinear(ring, slot, fy, fx):
    """``ring[slot]`` at (fy, fx), bilinear, coordinates clamped to the frame."""
    hm1 = ring.shape[1] - 1
    wm1 = ring.shape[2] - 1
    if fy < 0.0:
        fy = 0.0
    elif fy > hm1:
        fy = float(hm1)
    if fx < 0.0:
        fx = 0.0
    elif fx > wm1:
        fx = float(wm1)
    y0 = int(np.floor(fy))
    x0 = int(np.floor(fx))
    y1 = min(y0 + 1, hm1)
    x1 = min(x0 + 1, wm1)
    wy = fy - y0
    wx = fx - x0
    top = (1.0 - wx) * float(ring[slot, y0, x0]) + wx * float(ring[slot, y0, x1])
    bot = (1.0 - wx) * float(ring[slot, y1, x0]) + wx * float(ring[slot, y1, x1])
    return (1.0 - wy) * top + wy * bot


@njit(**JIT)
def _quantise_flow(flow, qflow):
    """``qflow = flow · SUBPEL`` as int32 where that is exact, else ``_ABSENT`` (NaN) / ``_OFFGRID``."""
    f = flow.reshape(flow.size)
    q = qflow.reshape(qflow.size)
    for i in range(f.shape[0]):
        v = float(f[i]) * SUBPEL
        fv = np.floor(v)
        if np.isnan(v):
            q[i] = _ABSENT
        elif fv == v and abs(fv) < 1e8:
            q[i] = int(fv)
        else:
            q[i] = _OFFGRID
    return qflow


@cache
def _mc_residual_kernel(block: int, step: int):
    """The residual kernel for one (block, step).

    Two passes over the grid: the first searches every block's L0 vector over the past candidates and keeps the
    best sum and pick; the second searches L1 over the future candidates, then combines (best single list, then
    the bi-prediction, or the zero-motion prediction when neither list is usable) and writes the outputs.
    Vectors on the 1/16-pixel grid whose taps all lie inside the frame take an exact integer path (identical
    results to the float formula, since every product is a multiple of 1/256); the rest use :func:`_bilinear`.
    """
    start = step // 2
    side = (block - 1 - start) // step + 1
    last = start + (side - 1) * step  # last sampled row/column offset inside a block
    count = side * side
    inv = 1.0 / count
    subpel = SUBPEL
    sub2 = SUBPEL * SUBPEL  # integer predictions are scaled by 1/16 px squared
    shift = SUBPEL.bit_length() - 1
    mask = SUBPEL - 1
    one = np.uint64(1)
    absent = _ABSENT
    offgrid = _OFFGRID

    @njit(**JIT)
    def kernel(cur, ring, cand_slots, cand_dirs, cand_dists, flow, qflow, accept, residual, velocity):
        hm1 = cur.shape[0] - 1
        wm1 = cur.shape[1] - 1
        gh = residual.shape[0]
        gw = residual.shape[1]
        accept_sum = accept * count
        # Candidate references per list (0: past, 1: future), nearest first.
        nc = cand_slots.shape[0]
        for q in range(nc):
            if not (
                0 <= cand_slots[q] < ring.shape[0] and (cand_dirs[q] == -1 or cand_dirs[q] == 1) and cand_dists[q] > 0
            ):
                return residual, velocity, False  # the wrapper explains
        lists = np.zeros((2, max(nc, 1)), dtype=np.int64)
        dists = np.ones((2, max(nc, 1)), dtype=np.float64)
        nlist = np.zeros(2, dtype=np.int64)
        for q in range(nc):
            lst = 0 if cand_dirs[q] < 0 else 1
            lists[lst, nlist[lst]] = cand_slots[q]
            dists[lst, nlist[lst]] = cand_dists[q]
            nlist[lst] += 1
        zero_slot = -1
        if nlist[0] > 0:
            zero_slot = lists[0, 0]
        elif nlist[1] > 0:
            zero_slot = lists[1, 0]
        _quantise_flow(flow, qflow)
        # L0 results kept for the combine step of the L1 pass.
        sum0 = np.empty((gh, gw), dtype=np.float64)
        pick0 = np.empty((gh, gw), dtype=np.int64)
        for lst in range(2):
            n = nlist[lst]
            for by in range(gh):
                y0 = by * block
                for bx in range(gw):
                    x0 = bx * block
                    qx = qflow[lst, by, bx, 0]
                    qy = qflow[lst, by, bx, 1]
                    lbest = np.inf
                    lq = 0
                    if n > 0 and qx != absent and qy != absent:
                        ix = qx >> shift
                        iy = qy >> shift
                        fx = qx & mask
                        fy = qy & mask
                        fast = (
                            qx != offgrid
                            and qy != offgrid
                            and y0 + start + iy >= 0
                            and y0 + last + iy + 1 <= hm1
                            and x0 + start + ix >= 0
                            and x0 + last + ix + 1 <= wm1
                        )
                        w00 = (subpel - fy) * (subpel - fx)
                        w01 = (subpel - fy) * fx
                        w10 = fy * (subpel - fx)
                        w11 = fy * fx
                        for q in range(n):
                            slot = lists[lst, q]
                            if fast:
                                # Integer path. Unsigned indices (all ≥ 0 here) spare numba's negative-index
                                # wraparound code; whole-pixel vectors need one tap instead of four.
                                bound = lbest * sub2
                                t = 0
                                if fx == 0 and fy == 0:
                                    for r in range(start, block, step):
                                        yy = np.uint64(y0 + r + iy)
                                        yc = np.uint64(y0 + r)
                                        for c in range(start, block, step):
                                            pix = np.int32(ring[slot, yy, np.uint64(x0 + c + ix)])
                                            t += abs(np.int32(cur[yc, np.uint64(x0 + c)]) - pix)
                                        if side > 2 and t * sub2 >= bound:
                                            break
                                    t *= sub2
                                else:
                                    for r in range(start, block, step):
                                        yy = np.uint64(y0 + r + iy)
                                        yc = np.uint64(y0 + r)
                                        for c in range(start, block, step):
                                            xx = np.uint64(x0 + c + ix)
                                            p = (
                                                w00 * np.int32(ring[slot, yy, xx])
                                                + w01 * np.int32(ring[slot, yy, xx + one])
                                                + w10 * np.int32(ring[slot, yy + one, xx])
                                                + w11 * np.int32(ring[slot, yy + one, xx + one])
                                            )
                                            t += abs(sub2 * np.int32(cur[yc, np.uint64(x0 + c)]) - p)
                                        if side > 2 and t >= bound:
                                            break
                                s = t / sub2
                            else:
                                vx = float(flow[lst, by, bx, 0])
                                vy = float(flow[lst, by, bx, 1])
                                s = 0.0
                                for r in range(start, block, step):
                                    for c in range(start, block, step):
                                        p = _bilinear(ring, slot, y0 + r + vy, x0 + c + vx)
                                        s += abs(float(cur[y0 + r, x0 + c]) - p)
                                    if s >= lbest:
                                        break
                            if s < lbest:
                                lbest = s
                                lq = q
                            if s <= accept_sum:
                                break
                    if lst == 0:
                        sum0[by, bx] = lbest
                        pick0[by, bx] = lq
                        continue
                    # L1 pass: combine with L0.
                    s0 = sum0[by, bx]
                    q0 = pick0[by, bx]
                    q1 = lq
                    s1 = lbest
                    if s0 == np.inf and s1 == np.inf:
                        # Intra block, or no reference in its vectors' directions: zero-motion prediction.
                        t = 0
                        if zero_slot >= 0:
                            for r in range(start, block, step):
                                for c in range(start, block, step):
                                    t += abs(np.int32(cur[y0 + r, x0 + c]) - np.int32(ring[zero_slot, y0 + r, x0 + c]))
                        residual[by, bx] = t * inv
                        velocity[by, bx, 0] = np.nan
                        velocity[by, bx, 1] = np.nan
                        continue
                    v0x = float(flow[0, by, bx, 0])
                    v0y = float(flow[0, by, bx, 1])
                    v1x = float(flow[1, by, bx, 0])
                    v1y = float(flow[1, by, bx, 1])
                    best = s0
                    vel_x = 0.0
                    vel_y = 0.0
                    if s0 < np.inf:
                        vel_x = -v0x / dists[0, q0]
                        vel_y = -v0y / dists[0, q0]
                    if s1 < best:
                        best = s1
                        vel_x = v1x / dists[1, q1]
                        vel_y = v1y / dists[1, q1]
                    if s0 < np.inf and s1 < np.inf and best > 0.0:
                        # Bi-prediction: the average of the two best single predictions.
                        sl0 = lists[0, q0]
                        sl1 = lists[1, q1]
                        a0x = qflow[0, by, bx, 0]
                        a0y = qflow[0, by, bx, 1]
                        a1x = qflow[1, by, bx, 0]
                        a1y = qflow[1, by, bx, 1]
                        ix0 = a0x >> shift
                        iy0 = a0y >> shift
                        ix1 = a1x >> shift
                        iy1 = a1y >> shift
                        if (
                            a0x != offgrid
                            and a0y != offgrid
                            and a1x != offgrid
                            and a1y != offgrid
                            and y0 + start + iy0 >= 0
                            and y0 + last + iy0 + 1 <= hm1
                            and x0 + start + ix0 >= 0
                            and x0 + last + ix0 + 1 <= wm1
                            and y0 + start + iy1 >= 0
                            and y0 + last + iy1 + 1 <= hm1
                            and x0 + start + ix1 >= 0
                            and x0 + last + ix1 + 1 <= wm1
                        ):
                            fx0 = a0x & mask
                            fy0 = a0y & mask
                            fx1 = a1x & mask
                            fy1 = a1y & mask
                            u00 = (subpel - fy0) * (subpel - fx0)
                            u01 = (subpel - fy0) * fx0
                            u10 = fy0 * (subpel - fx0)
                            u11 = fy0 * fx0
                            z00 = (subpel - fy1) * (subpel - fx1)
                            z01 = (subpel - fy1) * fx1
                            z10 = fy1 * (subpel - fx1)
                            z11 = fy1 * fx1
                            t = 0
                            for r in range(start, block, step):
                                ya = np.uint64(y0 + r + iy0)
                                yb = np.uint64(y0 + r + iy1)
                                yc = np.uint64(y0 + r)
                                for c in range(start, block, step):
                                    xa = np.uint64(x0 + c + ix0)
                                    xb = np.uint64(x0 + c + ix1)
                                    p = (
                                        u00 * np.int32(ring[sl0, ya, xa])
                                        + u01 * np.int32(ring[sl0, ya, xa + one])
                                        + u10 * np.int32(ring[sl0, ya + one, xa])
                                        + u11 * np.int32(ring[sl0, ya + one, xa + one])
                                        + z00 * np.int32(ring[sl1, yb, xb])
                                        + z01 * np.int32(ring[sl1, yb, xb + one])
                                        + z10 * np.int32(ring[sl1, yb + one, xb])
                                        + z11 * np.int32(ring[sl1, yb + one, xb + one])
                                    )
                                    t += abs(2 * sub2 * np.int32(cur[yc, np.uint64(x0 + c)]) - p)
                            s = t / (2 * sub2)
                        else:
                            s = 0.0
                            for r in range(start, block, step):
                                for c in range(start, block, step):
                                    p0 = _bilinear(ring, sl0, y0 + r + v0y, x0 + c + v0x)
                                    p1 = _bilinear(ring, sl1, y0 + r + v1y, x0 + c + v1x)
                                    s += abs(float(cur[y0 + r, x0 + c]) - 0.5 * (p0 + p1))
                        if s < best:
                            best = s
                            d0 = dists[0, q0]
                            d1 = dists[1, q1]
                            vel_x = 0.5 * (-v0x / d0 + v1x / d1)
                            vel_y = 0.5 * (-v0y / d0 + v1y / d1)
                    residual[by, bx] = best * inv
                    velocity[by, bx, 0] = vel_x
                    velocity[by, bx, 1] = vel_y
        return residual, velocity, True

    return kernel


def mc_residual(
    cur: np.ndarray,
    ring: np.ndarray,
    cand_slots: np.ndarray,
    cand_dirs: np.ndarray,
    cand_dists: np.ndarray,
    flow: np.ndarray,
    block: int = 4,
    step: int = 2,
    accept: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Motion-compensated residual and content velocity per block.

    Args:
        cur: uint8 ``[H, W]`` luma of the frame being scored.
        ring: uint8 ``[R, H, W]`` decoded luma planes (a ring buffer).
        cand_slots: int64 ``[C]`` ring slots of the candidate references, nearest first within each direction.
        cand_dirs: int8 ``[C]``: −1 past (display order), +1 future.
        cand_dists: int32 ``[C]``: display-order distance (> 0).
        flow: float32 ``[2, H // block, W // block, 2]`` from :func:`rasterise_mvs` (L0, L1; NaN = no vector).
        block, step: block size and pixel sampling stride (``step=1`` all pixels, ``step=2`` a quarter).
        accept: stop searching a list's candidates once the mean error is ≤ this.

    For each block, the L0 vector is tried on the past candidates in order (the L1 vector on the future ones),
    keeping the best, then the average of the two best predictions when the block has both. Predictions sample
    the reference bilinearly at (y + vy, x + vx), clamped to the frame. A block with no usable vector is predicted
    with zero motion from the nearest past candidate (else the nearest future one; else its residual is 0).

    Returns:
        ``(residual float32 [gh, gw], velocity float32 [gh, gw, 2])``: the smallest mean error found, and the
        content motion in pixels per frame forward in time (−v0/d0 for L0, +v1/d1 for L1, their mean for the
        bi-prediction; NaN for blocks without a vector).
    """
    block, step = _check_sampling(block, step)
    check_array("cur", cur, np.uint8, ndim=2)
    height, width = cur.shape
    check_array("ring", ring, np.uint8, shape=(None, height, width))
    check_array("cand_slots", cand_slots, np.int64, ndim=1)
    n = cand_slots.shape[0]
    check_array("cand_dirs", cand_dirs, np.int8, shape=(n,))
    check_array("cand_dists", cand_dists, np.int32, shape=(n,))
    gh, gw = height // block, width // block
    check_array("flow", flow, np.float32, shape=(2, gh, gw, 2))
    accept = float(accept)
    residual = np.empty((gh, gw), dtype=np.float32)
    velocity = np.empty((gh, gw, 2), dtype=np.float32)
    qflow = np.empty(flow.shape, dtype=np.int32)
    kernel = _mc_residual_kernel(block, step)
    residual, velocity, ok = kernel(cur, ring, cand_slots, cand_dirs, cand_dists, flow, qflow, accept, residual,
                                    velocity)
    if not ok:
        if cand_slots.min() < 0 or cand_slots.max() >= ring.shape[0]:
            raise ValueError(f"cand_slots must index the ring (0..{ring.shape[0] - 1}), got {cand_slots.tolist()}.")
        if not np.all((cand_dirs == -1) | (cand_dirs == 1)):
            raise ValueError(f"cand_dirs must be -1 (past) or +1 (future), got {cand_dirs.tolist()}.")
        raise ValueError(f"cand_dists must be > 0, got {cand_dists.tolist()}.")
    return residual, velocity


# ---------------------------------------------------------------------------------------------------------------
# frame_change


@cache
def _frame_change_kernel(block: int, step: int):
    """The frame-change kernel for one (block, step)."""
    start = step // 2
    side = (block - 1 - start) // step + 1
    inv = 1.0 / (side * side)

    @njit(**JIT)
    def kernel(cur, prev, out):
        for by in range(out.shape[0]):
            y0 = by * block
            for bx in range(out.shape[1]):
                x0 = bx * block
                t = 0
                for r in range(start, block, step):
                    for c in range(start, block, step):
                        t += abs(np.int32(cur[y0 + r, x0 + c]) - np.int32(prev[y0 + r, x0 + c]))
                out[by, bx] = t * inv
        return out

    return kernel


def frame_change(cur: np.ndarray, prev: np.ndarray, block: int = 4, step: int = 2) -> np.ndarray:
    """Mean ``|cur − prev|`` over the sampled pixels of each block: float32 ``[H // block, W // block]``.

    Scores frames without vectors (I-frames) and the "true change" metric. ``cur``/``prev``: uint8 ``[H, W]``.
    """
    block, step = _check_sampling(block, step)
    check_array("cur", cur, np.uint8, ndim=2)
    check_array("prev", prev, np.uint8, shape=cur.shape)
    out = np.empty((cur.shape[0] // block, cur.shape[1] // block), dtype=np.float32)
    return _frame_change_kernel(block, step)(cur, prev, out)
