"""Vectorised NumPy versions of the timed kernels: the honest baseline for the numba speed-ups.

The Python-loop twins in ``tests/naive*.py`` are correctness references (obvious, slow); a speed-up against them
says nothing. These do the same math the way a NumPy programmer would (whole-array operations, loops only where
the rule is sequential), and ``bench_select.py`` checks they agree with the kernels before timing them.
"""

from __future__ import annotations

import numpy as np


def rasterise_mvs(source, w, h, dst_x, dst_y, motion_x, motion_y, motion_scale, grid_h, grid_w, block=4):
    """Every vector's velocity on the grid cells its partition covers (later vectors win), NaN elsewhere."""
    out = np.full((2, grid_h, grid_w, 2), np.nan, dtype=np.float32)
    ok = (np.asarray(source) != 0) & (np.asarray(motion_scale) != 0)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return out
    lst = (np.asarray(source)[idx] > 0).astype(np.int64)
    hw, hh = np.asarray(w, np.int64)[idx], np.asarray(h, np.int64)[idx]
    left = np.asarray(dst_x, np.int64)[idx] - hw // 2
    top = np.asarray(dst_y, np.int64)[idx] - hh // 2
    # cells gy with top <= gy*block < top+h: gy in [ceil(top/block), ceil((top+h)/block))
    gy0 = np.clip(-((-top) // block), 0, grid_h)
    gy1 = np.clip(-((-(top + hh)) // block), 0, grid_h)
    gx0 = np.clip(-((-left) // block), 0, grid_w)
    gx1 = np.clip(-((-(left + hw)) // block), 0, grid_w)
    ny, nx = np.maximum(gy1 - gy0, 0), np.maximum(gx1 - gx0, 0)
    n = ny * nx
    owner = np.repeat(np.arange(idx.size), n)
    local = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    gy = gy0[owner] + local // np.maximum(nx[owner], 1)
    gx = gx0[owner] + local % np.maximum(nx[owner], 1)
    flat = (lst[owner] * grid_h + gy) * grid_w + gx
    last = flat.size - 1 - np.unique(flat[::-1], return_index=True)[1]  # the last vector on each cell wins
    scale = np.asarray(motion_scale, np.float64)[idx]
    vx = (np.asarray(motion_x, np.float64)[idx] / scale).astype(np.float32)
    vy = (np.asarray(motion_y, np.float64)[idx] / scale).astype(np.float32)
    view = out.reshape(-1, 2)
    view[flat[last], 0] = vx[owner[last]]
    view[flat[last], 1] = vy[owner[last]]
    return out


def _bilinear(frame, fy, fx):
    height, width = frame.shape
    fy = np.clip(fy, 0.0, height - 1.0)
    fx = np.clip(fx, 0.0, width - 1.0)
    y0, x0 = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    wy, wx = fy - y0, fx - x0
    f = frame.astype(np.float64)
    top = (1 - wx) * f[y0, x0] + wx * f[y0, x1]
    bot = (1 - wx) * f[y1, x0] + wx * f[y1, x1]
    return (1 - wy) * top + wy * bot


def mc_residual(cur, ring, cand_slots, cand_dirs, cand_dists, flow, block=4, step=2, accept=2.0):
    """Motion-compensated residual and velocity per block, every candidate evaluated for every block at once."""
    height, width = cur.shape
    gh, gw = height // block, width // block
    offs = np.arange(step // 2, block, step)
    ys = (np.arange(gh)[:, None] * block + offs[None, :])  # [gh, s]
    xs = (np.arange(gw)[:, None] * block + offs[None, :])  # [gw, s]
    yy = np.broadcast_to(ys[:, None, :, None], (gh, gw, offs.size, offs.size)).astype(np.float64)
    xx = np.broadcast_to(xs[None, :, None, :], (gh, gw, offs.size, offs.size)).astype(np.float64)
    c = cur.astype(np.float64)[yy.astype(np.int64), xx.astype(np.int64)]
    residual = np.zeros((gh, gw), np.float32)
    velocity = np.full((gh, gw, 2), np.nan, np.float32)
    best_e = np.full((gh, gw), np.inf)
    chosen = {}
    cands = {0: [(s, d) for s, r, d in zip(cand_slots, cand_dirs, cand_dists) if r < 0],
             1: [(s, d) for s, r, d in zip(cand_slots, cand_dirs, cand_dists) if r > 0]}
    for lst, sign in ((0, -1.0), (1, 1.0)):
        vx = flow[lst, :gh, :gw, 0].astype(np.float64)
        vy = flow[lst, :gh, :gw, 1].astype(np.float64)
        has = ~(np.isnan(vx) | np.isnan(vy))
        if not cands[lst] or not has.any():
            continue
        vxs, vys = np.where(has, vx, 0.0)[..., None, None], np.where(has, vy, 0.0)[..., None, None]
        errs = np.stack([np.abs(c - _bilinear(ring[s], yy + vys, xx + vxs)).mean(axis=(2, 3)) for s, _ in cands[lst]])
        accepted = errs <= accept
        first_ok = np.argmax(accepted, axis=0)
        pick = np.where(accepted.any(axis=0), first_ok, np.argmin(errs, axis=0))  # first accepted, else first min
        e = np.take_along_axis(errs, pick[None], 0)[0]
        slots = np.array([s for s, _ in cands[lst]])[pick]
        dists = np.array([d for _, d in cands[lst]], np.float64)[pick]
        chosen[lst] = (has, slots, vx, vy, dists)
        better = has & (e < best_e)
        best_e = np.where(better, e, best_e)
        velocity[better, 0] = (sign * vx / dists)[better]
        velocity[better, 1] = (sign * vy / dists)[better]
    if 0 in chosen and 1 in chosen:
        h0, s0, v0x, v0y, d0 = chosen[0]
        h1, s1, v1x, v1y, d1 = chosen[1]
        both = h0 & h1
        pred = np.zeros_like(c)
        for a in np.unique(s0[both]):
            for b in np.unique(s1[both]):
                sel = both & (s0 == a) & (s1 == b)
                if not sel.any():
                    continue
                p = 0.5 * (_bilinear(ring[a], yy + np.where(sel, v0y, 0)[..., None, None],
                                     xx + np.where(sel, v0x, 0)[..., None, None])
                           + _bilinear(ring[b], yy + np.where(sel, v1y, 0)[..., None, None],
                                       xx + np.where(sel, v1x, 0)[..., None, None]))
                pred[sel] = p[sel]
        e = np.abs(c - pred).mean(axis=(2, 3))
        better = both & (e < best_e)
        best_e = np.where(better, e, best_e)
        velocity[better, 0] = (0.5 * (-v0x / d0 + v1x / d1))[better]
        velocity[better, 1] = (0.5 * (-v0y / d0 + v1y / d1))[better]
    none = np.isinf(best_e)
    ref = cands[0][0][0] if cands[0] else (cands[1][0][0] if cands[1] else None)
    if ref is not None and none.any():
        still = np.abs(c - ring[ref].astype(np.float64)[yy.astype(np.int64), xx.astype(np.int64)]).mean(axis=(2, 3))
        best_e = np.where(none, still, best_e)
    residual[:] = np.where(np.isinf(best_e), 0.0, best_e)
    return residual, velocity


def _overlap(edges, cell, n):
    """[len(edges) − 1, n]: length of [edges[k], edges[k+1]) ∩ [i·cell, (i+1)·cell), broadcast."""
    lo = np.maximum(edges[:-1, None], np.arange(n)[None, :] * cell)
    hi = np.minimum(edges[1:, None], (np.arange(n)[None, :] + 1) * cell)
    return np.maximum(hi - lo, 0.0)


def pool_cells(energy, cell_px, row_edges, col_edges):
    rows = _overlap(np.asarray(row_edges, np.float64), cell_px, energy.shape[0])
    cols = _overlap(np.asarray(col_edges, np.float64), cell_px, energy.shape[1])
    return (rows @ energy.astype(np.float64) @ cols.T).astype(np.float32)


def _drift_mask(thumbs, energy, eligible, mandatory, tau, weight, age_weight):
    t_n, c_n, _ = thumbs.shape
    last = np.full(thumbs.shape[1:], 128.0)
    acc = np.zeros(c_n)
    age = np.zeros(c_n)
    keep = np.zeros((t_n, c_n), bool)
    stale = np.zeros((t_n, c_n))
    for t in range(t_n):  # the rule is sequential in time; every cell at once
        acc += energy[t]
        age += 1.0
        score = ((thumbs[t] - last) ** 2).mean(axis=1) + weight * acc + age_weight * age
        stale[t] = score
        take = mandatory[t] | (eligible[t] & (score >= tau))
        keep[t] = take
        acc[take] = 0.0
        age[take] = 0.0
        last[take] = thumbs[t][take]
    return keep, stale


def refresh_drift_select(thumbs, energy, eligible, mandatory, k, weight=64.0, age_weight=0.0, iters=80):
    """Bisect τ for exactly k kept cells (same bracketing and fill as the kernel)."""
    thumbs = thumbs.astype(np.float64)

    def count(tau):
        return int(_drift_mask(thumbs, energy, eligible, mandatory, tau, weight, age_weight)[0].sum())

    hi = 1.0
    while count(hi) > k and hi < 1e30:
        hi *= 16.0
    lo = hi
    while count(lo) <= k and lo > 1e-12:
        lo /= 16.0
    for _ in range(iters):
        mid = np.sqrt(lo * hi)
        if mid <= lo or mid >= hi:
            break
        if count(mid) > k:
            lo = mid
        else:
            hi = mid
    keep, stale = _drift_mask(thumbs, energy, eligible, mandatory, hi, weight, age_weight)
    keep, stale = keep.ravel().copy(), stale.ravel()
    n_kept = int(keep.sum())
    if n_kept < k:
        order = np.argsort(-stale, kind="stable")
        add = order[eligible.ravel()[order] & ~keep[order]][: k - n_kept]
        keep[add] = True
    elif n_kept > k:
        order = np.argsort(stale, kind="stable")
        drop = order[keep[order] & ~mandatory.ravel()[order]][: n_kept - k]
        keep[drop] = False
    return keep.reshape(thumbs.shape[:2])
