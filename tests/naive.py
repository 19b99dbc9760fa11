"""Plain NumPy / loop references of every kernel in ``codec_select.kernels`` (the numpy twins).

Written from the spec, not from the kernels: loop for loop, obviously correct, no numba. The tests compare the
kernels against these, and ``benchmarks/bench_select.py`` times them as the baseline.
"""

from __future__ import annotations

import math

import numpy as np

# ---------------------------------------------------------------------------------------------------------------
# motion


def naive_rasterise_mvs(source, w, h, dst_x, dst_y, motion_x, motion_y, motion_scale, grid_h, grid_w, block=4):
    out = np.full((2, grid_h, grid_w, 2), np.nan, dtype=np.float32)
    for i in range(len(source)):
        if source[i] == 0 or motion_scale[i] == 0:
            continue
        lst = 0 if source[i] < 0 else 1
        left = int(dst_x[i]) - int(w[i]) // 2
        top = int(dst_y[i]) - int(h[i]) // 2
        rows = [gy for gy in range(grid_h) if top <= gy * block < top + int(h[i])]
        cols = [gx for gx in range(grid_w) if left <= gx * block < left + int(w[i])]
        vx = np.float32(int(motion_x[i]) / int(motion_scale[i]))
        vy = np.float32(int(motion_y[i]) / int(motion_scale[i]))
        for gy in rows:
            for gx in cols:
                out[lst, gy, gx] = (vx, vy)
    return out


def naive_compensate_median(flow):
    f = flow.astype(np.float64)
    out = f.copy()
    for comp in range(2):
        vals = f[..., comp][~np.isnan(f[..., comp])]
        if vals.size:
            out[..., comp] = f[..., comp] - np.median(vals)
    return out.astype(np.float32)


def _similarity_lstsq(x, y, dx, dy):
    """(tx, ty, a, b) minimising Σ (dx − tx − a·x + b·y)² + (dy − ty − b·x − a·y)²."""
    n = len(x)
    rows = np.zeros((2 * n, 4))
    rows[:n, 0] = 1.0
    rows[:n, 2] = x
    rows[:n, 3] = -y
    rows[n:, 1] = 1.0
    rows[n:, 2] = y
    rows[n:, 3] = x
    rhs = np.concatenate([dx, dy])
    return np.linalg.lstsq(rows, rhs, rcond=None)[0]


def naive_compensate_similarity(flow, iters=2, keep=0.7, max_points=5000):
    gh, gw = flow.shape[:2]
    f = flow.astype(np.float64)
    cells = [(i, j) for i in range(gh) for j in range(gw) if not np.isnan(f[i, j]).any()]
    stride = max(1, math.ceil(len(cells) / max_points))
    cells = cells[::stride]
    if len(cells) < 16:
        return naive_compensate_median(flow)
    x = np.array([(2 * j + 1) / gw - 1 for i, j in cells])
    y = np.array([(2 * i + 1) / gh - 1 for i, j in cells])
    dx = np.array([f[i, j, 0] for i, j in cells])
    dy = np.array([f[i, j, 1] for i, j in cells])
    tx, ty, a, b = _similarity_lstsq(x, y, dx, dy)
    m = min(max(math.ceil(keep * len(cells)), 16), len(cells))
    if m < len(cells):
        for _ in range(iters):
            r = (dx - (tx + a * x - b * y)) ** 2 + (dy - (ty + b * x + a * y)) ** 2
            sel = np.sort(np.argsort(r, kind="stable")[:m])
            tx, ty, a, b = _similarity_lstsq(x[sel], y[sel], dx[sel], dy[sel])
    out = np.empty_like(f)
    for i in range(gh):
        for j in range(gw):
            xc, yc = (2 * j + 1) / gw - 1, (2 * i + 1) / gh - 1
            out[i, j, 0] = f[i, j, 0] - (tx + a * xc - b * yc)
            out[i, j, 1] = f[i, j, 1] - (ty + b * xc + a * yc)
    return out.astype(np.float32)


def naive_flow_magnitude(flow):
    f = flow.astype(np.float64)
    return np.nan_to_num(np.sqrt(f[..., 0] ** 2 + f[..., 1] ** 2), nan=0.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# residual


def _samples(block, step):
    return list(range(step // 2, block, step))


def _bilinear(frame, fy, fx):
    height, width = frame.shape
    fy = min(max(fy, 0.0), height - 1.0)
    fx = min(max(fx, 0.0), width - 1.0)
    y0, x0 = math.floor(fy), math.floor(fx)
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    wy, wx = fy - y0, fx - x0
    top = (1 - wx) * float(frame[y0, x0]) + wx * float(frame[y0, x1])
    bot = (1 - wx) * float(frame[y1, x0]) + wx * float(frame[y1, x1])
    return (1 - wy) * top + wy * bot


def _block_error(cur, y0, x0, offs, predict):
    errs = [abs(float(cur[y0 + r, x0 + c]) - predict(y0 + r, x0 + c)) for r in offs for c in offs]
    return sum(errs) / len(errs)


def naive_mc_residual(cur, ring, cand_slots, cand_dirs, cand_dists, flow, block=4, step=2, accept=2.0):
    height, width = cur.shape
    gh, gw = height // block, width // block
    offs = _samples(block, step)
    past = [(int(s), int(d)) for s, r, d in zip(cand_slots, cand_dirs, cand_dists) if r < 0]
    future = [(int(s), int(d)) for s, r, d in zip(cand_slots, cand_dirs, cand_dists) if r > 0]
    residual = np.zeros((gh, gw), dtype=np.float32)
    velocity = np.full((gh, gw, 2), np.nan, dtype=np.float32)
    for by in range(gh):
        for bx in range(gw):
            y0, x0 = by * block, bx * block
            options = []  # (error, velocity) in the order tried; the first smallest wins
            chosen = {}
            for lst, cands, sign in ((0, past, -1.0), (1, future, 1.0)):
                vx, vy = float(flow[lst, by, bx, 0]), float(flow[lst, by, bx, 1])
                if math.isnan(vx) or math.isnan(vy) or not cands:
                    continue
                best = None
                for slot, dist in cands:
                    frame = ring[slot]
                    e = _block_error(cur, y0, x0, offs, lambda y, x, f=frame: _bilinear(f, y + vy, x + vx))
                    if best is None or e < best[0]:
                        best = (e, slot, dist)
                    if e <= accept:
                        break
                chosen[lst] = (best[1], vx, vy, best[2])
                options.append((best[0], (sign * vx / best[2], sign * vy / best[2])))
            if not options:
                ref = past[0][0] if past else (future[0][0] if future else None)
                if ref is not None:
                    residual[by, bx] = _block_error(cur, y0, x0, offs, lambda y, x: float(ring[ref][y, x]))
                continue
            if len(chosen) == 2:
                s0, v0x, v0y, d0 = chosen[0]
                s1, v1x, v1y, d1 = chosen[1]

                def bi(y, x):
                    return 0.5 * (_bilinear(ring[s0], y + v0y, x + v0x) + _bilinear(ring[s1], y + v1y, x + v1x))

                vel = (0.5 * (-v0x / d0 + v1x / d1), 0.5 * (-v0y / d0 + v1y / d1))
                options.append((_block_error(cur, y0, x0, offs, bi), vel))
            best_e, best_v = options[0]
            for e, v in options[1:]:
                if e < best_e:
                    best_e, best_v = e, v
            residual[by, bx] = best_e
            velocity[by, bx] = best_v
    return residual, velocity


def naive_frame_change(cur, prev, block=4, step=2):
    gh, gw = cur.shape[0] // block, cur.shape[1] // block
    offs = _samples(block, step)
    out = np.zeros((gh, gw), dtype=np.float32)
    for by in range(gh):
        for bx in range(gw):
            rows = [by * block + r for r in offs]
            cols = [bx * block + c for c in offs]
            diff = np.abs(cur[np.ix_(rows, cols)].astype(np.int64) - prev[np.ix_(rows, cols)].astype(np.int64))
            out[by, bx] = diff.mean()
    return out


def naive_downscale2(luma):
    h, w = luma.shape[0] // 2 * 2, luma.shape[1] // 2 * 2
    x = luma[:h, :w].astype(np.int64)
    s = x[0::2, 0::2] + x[0::2, 1::2] + x[1::2, 0::2] + x[1::2, 1::2]
    return ((s + 2) // 4).astype(np.uint8)


def naive_block_match(cur, ref, block=8, radius=4):
    height, width = cur.shape
    gh, gw = height // block, width // block
    error = np.zeros((gh, gw), dtype=np.float32)
    vector = np.zeros((gh, gw, 2), dtype=np.float32)
    c64, r64 = cur.astype(np.int64), ref.astype(np.int64)
    for by in range(gh):
        for bx in range(gw):
            y0, x0 = by * block, bx * block
            patch = c64[y0 : y0 + block, x0 : x0 + block]
            best = None
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    if not (0 <= y0 + dy <= height - block and 0 <= x0 + dx <= width - block):
                        continue
                    e = np.abs(patch - r64[y0 + dy : y0 + dy + block, x0 + dx : x0 + dx + block]).mean()
                    key = (e, abs(dx) + abs(dy), dy, dx)
                    if best is None or key < best:
                        best = key
            error[by, bx] = best[0]
            vector[by, bx] = (best[3], best[2])
    return error, vector


# ---------------------------------------------------------------------------------------------------------------
# pool


def _overlap_matrix(edges, cell, n):
    """[len(edges) − 1, n]: length of [edges[k], edges[k+1]) ∩ [i·cell, (i+1)·cell)."""
    m = np.zeros((len(edges) - 1, n))
    for k in range(len(edges) - 1):
        for i in range(n):
            m[k, i] = max(0.0, min(edges[k + 1], (i + 1) * cell) - max(edges[k], i * cell))
    return m


def naive_pool_cells(energy, cell_px, row_edges, col_edges):
    rows = _overlap_matrix(row_edges, cell_px, energy.shape[0])
    cols = _overlap_matrix(col_edges, cell_px, energy.shape[1])
    return (rows @ energy.astype(np.float64) @ cols.T).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# policy


def naive_normalise_p95(x, floor):
    if x.size == 0:
        return x.astype(np.float32)
    return np.clip(x.astype(np.float64) / max(float(np.percentile(x, 95)), floor), 0.0, 1.0).astype(np.float32)


def naive_topk_cells(scores, eligible, mandatory, k):
    must = [i for i in range(len(scores)) if mandatory[i]][:k]
    rest = [i for i in range(len(scores)) if eligible[i] and not mandatory[i]]
    rest.sort(key=lambda i: (-(float(scores[i])) if not np.isnan(scores[i]) else math.inf, i))
    return np.array(sorted(must + rest[: k - len(must)]), dtype=np.int64)


def naive_refresh_mask(energy, eligible, mandatory, tau):
    """The refresh walk, vectorised over cells, one slot at a time."""
    n_t, n_c = energy.shape
    keep = np.zeros((n_t, n_c), dtype=bool)
    stale = np.zeros((n_t, n_c), dtype=np.float32)
    acc = np.zeros(n_c)
    for t in range(n_t):
        acc = acc + energy[t].astype(np.float64)
        stale[t] = acc
        keep[t] = mandatory[t] | (eligible[t] & (acc >= tau))
        acc[keep[t]] = 0.0
    return keep, stale


def naive_refresh_select(energy, eligible, mandatory, k, iters=64):
    def count(tau):
        return int(naive_refresh_mask(energy, eligible, mandatory, tau)[0].sum())

    n_t = energy.shape[0]
    tau_max = 2.0 * n_t * float(energy.max() if energy.size else 0.0) + 1.0
    if count(0.0) <= k:
        tau = 0.0
    elif count(tau_max) > k:
        flat = np.flatnonzero(mandatory.ravel())[:k]
        keep = np.zeros(energy.size, dtype=bool)
        keep[flat] = True
        return keep.reshape(energy.shape)
    else:
        lo, hi = 0.0, tau_max
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            if not lo < mid < hi:
                break
            c = count(mid)
            if c <= k:
                hi = mid
                if c == k:
                    break
            else:
                lo = mid
        tau = hi
    keep, stale = naive_refresh_mask(energy, eligible, mandatory, tau)
    missing = k - int(keep.sum())
    if missing > 0:
        cand = np.flatnonzero((eligible & ~keep).ravel())
        s = stale.ravel()[cand]
        order = sorted(range(len(cand)), key=lambda q: (-float(s[q]), cand[q]))
        flat = keep.ravel().copy()
        flat[cand[order[:missing]]] = True
        keep = flat.reshape(energy.shape)
    return keep


# ---------------------------------------------------------------------------------------------------------------
# throughput kernels (exact twins: the same float roundings as the kernels, step by step)


def naive_block_means_region(luma, block, step, rows=None, cols=None):
    """Block means as float32(sum · (1 / count)) on the blocks of ``rows`` × ``cols``, 0 elsewhere."""
    gh, gw = luma.shape[0] // block, luma.shape[1] // block
    r0, r1 = (0, gh) if rows is None else (max(rows[0], 0), min(rows[1], gh))
    c0, c1 = (0, gw) if cols is None else (max(cols[0], 0), min(cols[1], gw))
    idx = np.arange(step // 2, block, step)
    out = np.zeros((gh, gw), np.float32)
    for by in range(r0, r1):
        for bx in range(c0, c1):
            total = int(luma[by * block + idx][:, bx * block + idx].astype(np.int64).sum())
            out[by, bx] = np.float32(total * (1.0 / idx.size ** 2))
    return out


def naive_kth_pair(values, k):
    """The k-th and (k+1)-th smallest (0-based; +inf past the end)."""
    s = np.sort(np.asarray(values, np.float64))
    return float(s[k]), float(s[k + 1]) if k + 1 < s.size else math.inf


def naive_p95_scale(x, floor):
    """max(p95, floor) with numpy's linear percentile, written as the kernels lerp (numpy's own formula)."""
    n = x.size
    pos = 0.95 * (n - 1)
    lo = int(np.floor(pos))
    gamma = pos - lo
    a, b = naive_kth_pair(x, lo)
    if lo + 1 >= n:
        b = a
    diff = b - a
    p95 = b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma
    return max(p95, floor)


def naive_fuse_energy_exact(velocity, residual, median, mv_deadzone, mv_floor, res_deadzone, res_floor):
    """fuse_energy with every intermediate rounded where the kernels round it: compensated flow float32, speed and
    residual float32 after the dead zones, each normalised half float32, their mean float32."""
    v = velocity.astype(np.float64)
    med = [0.0, 0.0]
    if median:
        for comp in range(2):
            vals = v[..., comp][~np.isnan(v[..., comp])]
            if vals.size:
                med[comp] = float(np.median(vals))
    vx = (v[..., 0] - med[0]).astype(np.float32)
    vy = (v[..., 1] - med[1]).astype(np.float32)
    with np.errstate(invalid="ignore"):
        speed = np.sqrt(vx * vx + vy * vy).astype(np.float64) - mv_deadzone
    speed = np.where(np.isnan(speed) | ~(speed > 0), 0.0, speed).astype(np.float32)
    res = residual.astype(np.float64) - res_deadzone
    res = np.where(res > 0, res, 0.0).astype(np.float32)
    if speed.size == 0:
        return np.zeros(residual.shape, np.float32)
    a = np.clip(speed.astype(np.float64) / naive_p95_scale(speed.ravel(), mv_floor), 0, 1).astype(np.float32)
    b = np.clip(res.astype(np.float64) / naive_p95_scale(res.ravel(), res_floor), 0, 1).astype(np.float32)
    return (0.5 * a.astype(np.float64) + 0.5 * b.astype(np.float64)).astype(np.float32)
