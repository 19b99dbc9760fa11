"""Plain-NumPy twins of kernels/h264_inter.py, h264_intra.py and h264_emulate.py, written from the standard's
formulas for clarity (whole-block arrays, the standard's p[x, y] notation), not speed."""

from __future__ import annotations

import numpy as np

TAPS = (1, -5, 20, 20, -5, 1)


def _clip(a):
    return np.clip(a, 0, 255)


def naive_luma(ref, x0, y0, w, h, mvx, mvy):
    """Quarter-sample luma prediction (H.264 §8.4.2.2.1, Table 8-12) with clamped reference coordinates."""
    rh, rw = ref.shape
    xi = x0 + (mvx >> 2) + np.arange(w)
    yi = y0 + (mvy >> 2) + np.arange(h)
    fx, fy = mvx & 3, mvy & 3

    def g(dx, dy):  # integer samples shifted by (dx, dy)
        return ref[np.ix_(np.clip(yi + dy, 0, rh - 1), np.clip(xi + dx, 0, rw - 1))].astype(np.int64)

    def b1(dy):  # unrounded horizontal half samples of row dy
        return sum(t * g(k - 2, dy) for k, t in enumerate(TAPS))

    def h1(dx):
        return sum(t * g(dx, k - 2) for k, t in enumerate(TAPS))

    G, H, M = g(0, 0), g(1, 0), g(0, 1)
    b, s = _clip((b1(0) + 16) >> 5), _clip((b1(1) + 16) >> 5)
    hh, m = _clip((h1(0) + 16) >> 5), _clip((h1(1) + 16) >> 5)
    j = _clip((sum(t * b1(k - 2) for k, t in enumerate(TAPS)) + 512) >> 10)

    def avg(p, q):
        return (p + q + 1) >> 1

    table = {
        (0, 0): G, (0, 1): avg(G, hh), (0, 2): hh, (0, 3): avg(M, hh),
        (1, 0): avg(G, b), (1, 1): avg(b, hh), (1, 2): avg(hh, j), (1, 3): avg(hh, s),
        (2, 0): b, (2, 1): avg(b, j), (2, 2): j, (2, 3): avg(j, s),
        (3, 0): avg(H, b), (3, 1): avg(b, m), (3, 2): avg(j, m), (3, 3): avg(m, s),
    }
    return table[(fx, fy)].astype(np.uint8)


def naive_chroma(ref, x0, y0, w, h, mvx, mvy):
    """1/8-sample bilinear chroma prediction (§8.4.2.2.2)."""
    rh, rw = ref.shape
    xi = x0 + (mvx >> 3) + np.arange(w)
    yi = y0 + (mvy >> 3) + np.arange(h)
    fx, fy = mvx & 7, mvy & 7

    def g(dx, dy):
        return ref[np.ix_(np.clip(yi + dy, 0, rh - 1), np.clip(xi + dx, 0, rw - 1))].astype(np.int64)

    out = (8 - fx) * (8 - fy) * g(0, 0) + fx * (8 - fy) * g(1, 0) + (8 - fx) * fy * g(0, 1) + fx * fy * g(1, 1)
    return ((out + 32) >> 6).astype(np.uint8)


def naive_bipred(a, b, w0=32, w1=32):
    return _clip((a.astype(np.int64) * w0 + b.astype(np.int64) * w1 + 32) >> 6).astype(np.uint8)


def naive_weight(pred, weight, offset, log2_denom):
    """Explicit weighted uni-prediction (§8.4.2.3.2)."""
    p = pred.astype(np.int64)
    if log2_denom >= 1:
        return _clip(((p * weight + 2 ** (log2_denom - 1)) >> log2_denom) + offset).astype(np.uint8)
    return _clip(p * weight + offset).astype(np.uint8)


# --- intra ---------------------------------------------------------------------------------------------------


def naive_intra4x4_valid(mode, top, left):
    needs = {0: (1, 0), 1: (0, 1), 2: (0, 0), 3: (1, 0), 4: (1, 1), 5: (1, 1), 6: (1, 1), 7: (1, 0), 8: (0, 1)}
    nt, nl = needs[mode]
    return (top or not nt) and (left or not nl)


def naive_intra4x4(plane, x, y, mode, top, left, topright):
    def p(i, j):
        if j == -1 and i >= 4 and not topright:
            i = 3
        return int(plane[y + j, x + i])

    out = np.zeros((4, 4), np.int64)
    for yy in range(4):
        for xx in range(4):
            if mode == 0:
                v = p(xx, -1)
            elif mode == 1:
                v = p(-1, yy)
            elif mode == 2:
                st = sum(p(i, -1) for i in range(4)) if top else 0
                sl = sum(p(-1, j) for j in range(4)) if left else 0
                v = (st + sl + 4) >> 3 if top and left else (sl + 2) >> 2 if left else (st + 2) >> 2 if top else 128
            elif mode == 3:
                v = (p(6, -1) + 3 * p(7, -1) + 2) >> 2 if xx == yy == 3 else \
                    (p(xx + yy, -1) + 2 * p(xx + yy + 1, -1) + p(xx + yy + 2, -1) + 2) >> 2
            elif mode == 4:
                if xx > yy:
                    v = (p(xx - yy - 2, -1) + 2 * p(xx - yy - 1, -1) + p(xx - yy, -1) + 2) >> 2
                elif xx < yy:
                    v = (p(-1, yy - xx - 2) + 2 * p(-1, yy - xx - 1) + p(-1, yy - xx) + 2) >> 2
                else:
                    v = (p(0, -1) + 2 * p(-1, -1) + p(-1, 0) + 2) >> 2
            elif mode == 5:
                z = 2 * xx - yy
                if z in (0, 2, 4, 6):
                    v = (p(xx - (yy >> 1) - 1, -1) + p(xx - (yy >> 1), -1) + 1) >> 1
                elif z in (1, 3, 5):
                    v = (p(xx - (yy >> 1) - 2, -1) + 2 * p(xx - (yy >> 1) - 1, -1) + p(xx - (yy >> 1), -1) + 2) >> 2
                elif z == -1:
                    v = (p(-1, 0) + 2 * p(-1, -1) + p(0, -1) + 2) >> 2
                else:
                    v = (p(-1, yy - 1) + 2 * p(-1, yy - 2) + p(-1, yy - 3) + 2) >> 2
            elif mode == 6:
                z = 2 * yy - xx
                if z in (0, 2, 4, 6):
                    v = (p(-1, yy - (xx >> 1) - 1) + p(-1, yy - (xx >> 1)) + 1) >> 1
                elif z in (1, 3, 5):
                    v = (p(-1, yy - (xx >> 1) - 2) + 2 * p(-1, yy - (xx >> 1) - 1) + p(-1, yy - (xx >> 1)) + 2) >> 2
                elif z == -1:
                    v = (p(-1, 0) + 2 * p(-1, -1) + p(0, -1) + 2) >> 2
                else:
                    v = (p(xx - 1, -1) + 2 * p(xx - 2, -1) + p(xx - 3, -1) + 2) >> 2
            elif mode == 7:
                if yy in (0, 2):
                    v = (p(xx + (yy >> 1), -1) + p(xx + (yy >> 1) + 1, -1) + 1) >> 1
                else:
                    v = (p(xx + (yy >> 1), -1) + 2 * p(xx + (yy >> 1) + 1, -1) + p(xx + (yy >> 1) + 2, -1) + 2) >> 2
            else:
                z = xx + 2 * yy
                if z in (0, 2, 4):
                    v = (p(-1, yy + (xx >> 1)) + p(-1, yy + (xx >> 1) + 1) + 1) >> 1
                elif z in (1, 3):
                    v = (p(-1, yy + (xx >> 1)) + 2 * p(-1, yy + (xx >> 1) + 1) + p(-1, yy + (xx >> 1) + 2) + 2) >> 2
                elif z == 5:
                    v = (p(-1, 2) + 3 * p(-1, 3) + 2) >> 2
                else:
                    v = p(-1, 3)
            out[yy, xx] = v
    return out.astype(np.uint8)


def _plane_pred(plane, x, y, n, mul):
    top = plane[y - 1, x - 1: x + n].astype(np.int64)  # top[0] = p[-1, -1]
    left = plane[y - 1: y + n, x - 1].astype(np.int64)
    half = n // 2
    hh = sum((i + 1) * (top[1 + half + i] - top[1 + half - 2 - i]) for i in range(half))
    vv = sum((i + 1) * (left[1 + half + i] - left[1 + half - 2 - i]) for i in range(half))
    a = 16 * (left[n] + top[n])
    b, c = (mul * hh + 32) >> 6, (mul * vv + 32) >> 6
    yy, xx = np.mgrid[0:n, 0:n]
    return _clip((a + b * (xx - (half - 1)) + c * (yy - (half - 1)) + 16) >> 5).astype(np.uint8)


def naive_intra16x16(plane, x, y, mode, top, left):
    if mode == 0:
        return np.repeat(plane[y - 1: y, x: x + 16], 16, axis=0).astype(np.uint8)
    if mode == 1:
        return np.repeat(plane[y: y + 16, x - 1: x], 16, axis=1).astype(np.uint8)
    if mode == 2:
        st = int(plane[y - 1, x: x + 16].astype(np.int64).sum()) if top else 0
        sl = int(plane[y: y + 16, x - 1].astype(np.int64).sum()) if left else 0
        dc = (st + sl + 16) >> 5 if top and left else (st + sl + 8) >> 4 if top or left else 128
        return np.full((16, 16), dc, np.uint8)
    return _plane_pred(plane, x, y, 16, 5)


def naive_chroma8x8(plane, x, y, mode, top, left):
    if mode == 1:
        return np.repeat(plane[y: y + 8, x - 1: x], 8, axis=1).astype(np.uint8)
    if mode == 2:
        return np.repeat(plane[y - 1: y, x: x + 8], 8, axis=0).astype(np.uint8)
    if mode == 3:
        return _plane_pred(plane, x, y, 8, 34)
    out = np.zeros((8, 8), np.uint8)
    for cy in range(2):
        for cx in range(2):
            st = int(plane[y - 1, x + 4 * cx: x + 4 * cx + 4].astype(np.int64).sum()) if top else None
            sl = int(plane[y + 4 * cy: y + 4 * cy + 4, x - 1].astype(np.int64).sum()) if left else None
            if cx == cy:
                dc = (st + sl + 4) >> 3 if top and left else (st + 2) >> 2 if top else (sl + 2) >> 2 if left else 128
            elif cx == 1:
                dc = (st + 2) >> 2 if top else (sl + 2) >> 2 if left else 128
            else:
                dc = (sl + 2) >> 2 if left else (st + 2) >> 2 if top else 128
            out[4 * cy: 4 * cy + 4, 4 * cx: 4 * cx + 4] = dc
    return out
