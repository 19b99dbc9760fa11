"""H.264 inter prediction of one block, with the standard's exact integer rules (ITU-T H.264 §8.4.2.2).

Luma: quarter-sample interpolation with the 6-tap filter (1, −5, 20, 20, −5, 1), half samples rounded
``(x + 16) >> 5``, the centre half sample from unrounded intermediates ``(x + 512) >> 10``, quarter samples the
rounded-up average of the two nearest integer/half samples (Table 8-12). Chroma (4:2:0): 1/8-sample bilinear,
``(… + 32) >> 6``. Reference samples outside the picture repeat the edge sample (the clamping of §8.4.2.2.1),
which is what the decoder's padded reference pictures give. Bi-prediction uses the weighted form with
``logWD = 5``: ``(a·w0 + b·w1 + 32) >> 6`` (default weights 32/32 give ``(a + b + 1) >> 1``).

The ``*_into`` functions are jit helpers other kernels call inside their own loops; the wrappers below them
validate inputs and return new arrays (tests and one-off use).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array

__all__ = [
    "bipred",
    "bipred_into",
    "chroma_mc_into",
    "luma_mc_into",
    "luma_mc_scratch_into",
    "luma_sample",
    "predict_chroma",
    "predict_luma",
    "sad_bounded",
    "sad_region",
    "weight_into",
    "weight_prediction",
]


@njit(**JIT)
def _clip255(v):
    return 0 if v < 0 else (min(v, 255))


@njit(**JIT)
def _px(ref, x, y):
    # Edge clamping of §8.4.2.2.1 (xIntL, yIntL clipped to the picture).
    h, w = ref.shape
    x = 0 if x < 0 else (w - 1 if x >= w else x)
    y = 0 if y < 0 else (h - 1 if y >= h else y)
    return np.int32(ref[y, x])


@njit(**JIT)
def _tap_h(ref, x, y):
    # Unrounded horizontal half sample between (x, y) and (x + 1, y): b1 of the standard.
    return (_px(ref, x - 2, y) - 5 * _px(ref, x - 1, y) + 20 * _px(ref, x, y) + 20 * _px(ref, x + 1, y)
            - 5 * _px(ref, x + 2, y) + _px(ref, x + 3, y))


@njit(**JIT)
def _tap_v(ref, x, y):
    # Unrounded vertical half sample between (x, y) and (x, y + 1): h1 of the standard.
    return (_px(ref, x, y - 2) - 5 * _px(ref, x, y - 1) + 20 * _px(ref, x, y) + 20 * _px(ref, x, y + 1)
            - 5 * _px(ref, x, y + 2) + _px(ref, x, y + 3))


@njit(**JIT)
def _centre(ref, x, y):
    # j of the standard: the 6-tap filter applied vertically to unrounded horizontal intermediates.
    j1 = (_tap_h(ref, x, y - 2) - 5 * _tap_h(ref, x, y - 1) + 20 * _tap_h(ref, x, y) + 20 * _tap_h(ref, x, y + 1)
          - 5 * _tap_h(ref, x, y + 2) + _tap_h(ref, x, y + 3))
    return _clip255((j1 + 512) >> 10)


@njit(**JIT)
def luma_sample(ref, xi, yi, fx, fy):
    """One predicted luma sample at integer position (xi, yi) plus quarter fractions (fx, fy) in 0..3."""
    if fx == 0 and fy == 0:
        return _px(ref, xi, yi)
    if fy == 0:
        b = _clip255((_tap_h(ref, xi, yi) + 16) >> 5)
        if fx == 2:
            return b
        g = _px(ref, xi + (fx >> 1), yi)  # G for a (fx=1), H for c (fx=3)
        return (g + b + 1) >> 1
    if fx == 0:
        h = _clip255((_tap_v(ref, xi, yi) + 16) >> 5)
        if fy == 2:
            return h
        g = _px(ref, xi, yi + (fy >> 1))  # G for d, M for n
        return (g + h + 1) >> 1
    if fx == 2 or fy == 2:
        j = _centre(ref, xi, yi)
        if fx == 2 and fy == 2:
            return j
        if fx == 2:  # f (fy=1) averages with b, q (fy=3) with s
            other = _clip255((_tap_h(ref, xi, yi + (fy >> 1)) + 16) >> 5)
        else:  # i (fx=1) averages with h, k (fx=3) with m
            other = _clip255((_tap_v(ref, xi + (fx >> 1), yi) + 16) >> 5)
        return (j + other + 1) >> 1
    # Diagonal quarter positions e, g, p, r: average of a horizontal and a vertical half sample.
    hor = _clip255((_tap_h(ref, xi, yi + (fy >> 1)) + 16) >> 5)
    ver = _clip255((_tap_v(ref, xi + (fx >> 1), yi) + 16) >> 5)
    return (hor + ver + 1) >> 1


@njit(**JIT)
def _tap(a0, a1, a2, a3, a4, a5, c):
    # The unrounded 6-tap (1, −5, 20, 20, −5, 1) over six rows (or six shifted views of one row) at column c.
    return (np.int32(a0[c]) - 5 * np.int32(a1[c]) + 20 * np.int32(a2[c]) + 20 * np.int32(a3[c])
            - 5 * np.int32(a4[c]) + np.int32(a5[c]))


@njit(**JIT)
def _luma_from_window(src, sy, sx, w, h, fx, fy, out, oy, ox, hb):
    # src[sy + i, sx + k] is the reference sample at (bx − 2 + k, by − 2 + i). Only the half samples a fraction
    # needs are formed (the full horizontal intermediates ``hb`` only for the positions that use the centre j).
    # Rows are taken as 1-D views indexed from 0, which lets the compiler vectorise the inner loops.
    if fx == 0 and fy == 0:
        for r in range(h):
            row = src[sy + r + 2, sx + 2:sx + 2 + w]
            dst = out[oy + r, ox:ox + w]
            for c in range(w):
                dst[c] = row[c]
        return
    if fx == 0:  # d, h, n: vertical half sample, averaged with G (fy=1) or M (fy=3)
        g = 2 + (fy >> 1)
        for r in range(h):
            a0, a1 = src[sy + r, sx + 2:sx + 2 + w], src[sy + r + 1, sx + 2:sx + 2 + w]
            a2, a3 = src[sy + r + 2, sx + 2:sx + 2 + w], src[sy + r + 3, sx + 2:sx + 2 + w]
            a4, a5 = src[sy + r + 4, sx + 2:sx + 2 + w], src[sy + r + 5, sx + 2:sx + 2 + w]
            near = src[sy + r + g, sx + 2:sx + 2 + w]
            dst = out[oy + r, ox:ox + w]
            if fy == 2:
                for c in range(w):
                    dst[c] = _clip255((_tap(a0, a1, a2, a3, a4, a5, c) + 16) >> 5)
            else:
                for c in range(w):
                    dst[c] = (_clip255((_tap(a0, a1, a2, a3, a4, a5, c) + 16) >> 5) + np.int32(near[c]) + 1) >> 1
        return
    if fy == 0:  # a, b, c: horizontal half sample, averaged with G (fx=1) or H (fx=3)
        g = 2 + (fx >> 1)
        for r in range(h):
            b0, b1 = src[sy + r + 2, sx:sx + w], src[sy + r + 2, sx + 1:sx + 1 + w]
            b2, b3 = src[sy + r + 2, sx + 2:sx + 2 + w], src[sy + r + 2, sx + 3:sx + 3 + w]
            b4, b5 = src[sy + r + 2, sx + 4:sx + 4 + w], src[sy + r + 2, sx + 5:sx + 5 + w]
            near = src[sy + r + 2, sx + g:sx + g + w]
            dst = out[oy + r, ox:ox + w]
            if fx == 2:
                for c in range(w):
                    dst[c] = _clip255((_tap(b0, b1, b2, b3, b4, b5, c) + 16) >> 5)
            else:
                for c in range(w):
                    dst[c] = (_clip255((_tap(b0, b1, b2, b3, b4, b5, c) + 16) >> 5) + np.int32(near[c]) + 1) >> 1
        return
    kx = 2 + (fx >> 1)  # column of the vertical half sample a quarter position averages with
    if fx != 2 and fy != 2:  # e, g, p, r: average of a horizontal and a vertical half sample
        ry = 2 + (fy >> 1)
        for r in range(h):
            b0, b1 = src[sy + r + ry, sx:sx + w], src[sy + r + ry, sx + 1:sx + 1 + w]
            b2, b3 = src[sy + r + ry, sx + 2:sx + 2 + w], src[sy + r + ry, sx + 3:sx + 3 + w]
            b4, b5 = src[sy + r + ry, sx + 4:sx + 4 + w], src[sy + r + ry, sx + 5:sx + 5 + w]
            a0, a1 = src[sy + r, sx + kx:sx + kx + w], src[sy + r + 1, sx + kx:sx + kx + w]
            a2, a3 = src[sy + r + 2, sx + kx:sx + kx + w], src[sy + r + 3, sx + kx:sx + kx + w]
            a4, a5 = src[sy + r + 4, sx + kx:sx + kx + w], src[sy + r + 5, sx + kx:sx + kx + w]
            dst = out[oy + r, ox:ox + w]
            for c in range(w):
                hor = _clip255((_tap(b0, b1, b2, b3, b4, b5, c) + 16) >> 5)
                ver = _clip255((_tap(a0, a1, a2, a3, a4, a5, c) + 16) >> 5)
                dst[c] = (hor + ver + 1) >> 1
        return
    # j and its neighbours f, q (fx=2), i, k (fy=2): hb[i, c] = unrounded horizontal half sample right of column c.
    for i in range(h + 5):
        b0, b1 = src[sy + i, sx:sx + w], src[sy + i, sx + 1:sx + 1 + w]
        b2, b3 = src[sy + i, sx + 2:sx + 2 + w], src[sy + i, sx + 3:sx + 3 + w]
        b4, b5 = src[sy + i, sx + 4:sx + 4 + w], src[sy + i, sx + 5:sx + 5 + w]
        dst = hb[i]
        for c in range(w):
            dst[c] = _tap(b0, b1, b2, b3, b4, b5, c)
    for r in range(h):
        h0, h1, h2, h3, h4, h5 = hb[r], hb[r + 1], hb[r + 2], hb[r + 3], hb[r + 4], hb[r + 5]
        dst = out[oy + r, ox:ox + w]
        if fx == 2 and fy == 2:
            for c in range(w):
                dst[c] = _clip255((_tap(h0, h1, h2, h3, h4, h5, c) + 512) >> 10)
        elif fx == 2:  # f (with b), q (with s)
            near = hb[r + 2 + (fy >> 1)]
            for c in range(w):
                j = _clip255((_tap(h0, h1, h2, h3, h4, h5, c) + 512) >> 10)
                dst[c] = (j + _clip255((near[c] + 16) >> 5) + 1) >> 1
        else:  # i (with h), k (with m)
            a0, a1 = src[sy + r, sx + kx:sx + kx + w], src[sy + r + 1, sx + kx:sx + kx + w]
            a2, a3 = src[sy + r + 2, sx + kx:sx + kx + w], src[sy + r + 3, sx + kx:sx + kx + w]
            a4, a5 = src[sy + r + 4, sx + kx:sx + kx + w], src[sy + r + 5, sx + kx:sx + kx + w]
            for c in range(w):
                j = _clip255((_tap(h0, h1, h2, h3, h4, h5, c) + 512) >> 10)
                dst[c] = (j + _clip255((_tap(a0, a1, a2, a3, a4, a5, c) + 16) >> 5) + 1) >> 1


@njit(**JIT)
def luma_mc_scratch_into(ref, x0, y0, w, h, mvx, mvy, out, oy, ox, win, hb):
    """:func:`luma_mc_into` with caller-owned scratch ``win`` (uint8 [≥ h + 5, ≥ w + 5]: a reference picture's
    type, so one compiled filter serves both routes) and ``hb`` (int32 [≥ h + 5, ≥ w]).

    A window inside the picture is read in place; only one that reaches past an edge is gathered, edge-clamped,
    into ``win`` (the clamping of §8.4.2.2.1). Same values either way.
    """
    fx = mvx & 3
    fy = mvy & 3
    bx = x0 + (mvx >> 2)
    by = y0 + (mvy >> 2)
    rh, rw = ref.shape
    if bx >= 2 and by >= 2 and bx + w + 3 <= rw and by + h + 3 <= rh:
        _luma_from_window(ref, by - 2, bx - 2, w, h, fx, fy, out, oy, ox, hb)
        return
    for i in range(h + 5):
        yy = by - 2 + i
        yy = 0 if yy < 0 else (rh - 1 if yy >= rh else yy)
        for k in range(w + 5):
            xx = bx - 2 + k
            xx = 0 if xx < 0 else (rw - 1 if xx >= rw else xx)
            win[i, k] = ref[yy, xx]
    _luma_from_window(win, 0, 0, w, h, fx, fy, out, oy, ox, hb)


@njit(**JIT)
def luma_mc_into(ref, x0, y0, w, h, mvx, mvy, out, oy, ox):
    """Predict the w×h luma block at (x0, y0) displaced by the quarter-pel vector; write out[oy:, ox:].

    Same values as :func:`luma_sample` per pixel, computed once per block (each filter tap evaluated once).
    Allocates its scratch; loops call :func:`luma_mc_scratch_into`.
    """
    win = np.empty((h + 5, w + 5), np.uint8)
    hb = np.empty((h + 5, w), np.int32)
    luma_mc_scratch_into(ref, x0, y0, w, h, mvx, mvy, out, oy, ox, win, hb)


@njit(**JIT)
def chroma_mc_into(ref, x0, y0, w, h, mvx, mvy, out, oy, ox):
    """Predict the w×h chroma block at chroma (x0, y0); the vector is the luma one, read in 1/8 chroma samples."""
    fx = mvx & 7
    fy = mvy & 7
    bx = x0 + (mvx >> 3)
    by = y0 + (mvy >> 3)
    wa = (8 - fx) * (8 - fy)
    wb = fx * (8 - fy)
    wc = (8 - fx) * fy
    wd = fx * fy
    rh, rw = ref.shape
    if bx >= 0 and by >= 0 and bx + w < rw and by + h < rh:  # inside: no clamping needed
        for yy in range(h):
            a, b = ref[by + yy, bx:bx + w], ref[by + yy, bx + 1:bx + 1 + w]
            c, d = ref[by + yy + 1, bx:bx + w], ref[by + yy + 1, bx + 1:bx + 1 + w]
            dst = out[oy + yy, ox:ox + w]
            for xx in range(w):
                dst[xx] = (wa * np.int32(a[xx]) + wb * np.int32(b[xx]) + wc * np.int32(c[xx])
                           + wd * np.int32(d[xx]) + 32) >> 6
        return
    for yy in range(h):
        for xx in range(w):
            x = bx + xx
            y = by + yy
            out[oy + yy, ox + xx] = (wa * _px(ref, x, y) + wb * _px(ref, x + 1, y) + wc * _px(ref, x, y + 1)
                                     + wd * _px(ref, x + 1, y + 1) + 32) >> 6


@njit(**JIT)
def bipred_into(a, b, w0, w1, h, w, out):
    """out[:h, :w] = clip((a·w0 + b·w1 + 32) >> 6): the implicit/default bi-prediction with logWD = 5."""
    for yy in range(h):
        ra, rb, dst = a[yy], b[yy], out[yy]
        for xx in range(w):
            dst[xx] = _clip255((np.int32(ra[xx]) * w0 + np.int32(rb[xx]) * w1 + 32) >> 6)


@njit(**JIT)
def weight_into(buf, h, w, weight, offset, log2_denom):
    """Explicit weighted uni-prediction in place on buf[:h, :w] (§8.4.2.3.2): the identity for default weights."""
    if weight == (1 << log2_denom) and offset == 0:
        return
    rounding = (1 << (log2_denom - 1)) if log2_denom >= 1 else 0
    for yy in range(h):
        row = buf[yy]
        for xx in range(w):
            row[xx] = _clip255(((np.int32(row[xx]) * weight + rounding) >> log2_denom) + offset)


@njit(**JIT)
def sad_bounded(pred, py, px, cur, y0, x0, h, w, limit):
    """:func:`sad_region`, stopping after the first row where the running sum reaches ``limit``: the result is
    exact when below ``limit`` and some value ≥ ``limit`` otherwise (enough for a strict-minimum search)."""
    total = 0
    for yy in range(h):
        p, q = pred[py + yy, px:px + w], cur[y0 + yy, x0:x0 + w]
        for xx in range(w):
            d = np.int32(p[xx]) - np.int32(q[xx])
            total += d if d >= 0 else -d
        if total >= limit:
            return total
    return total


@njit(**JIT)
def sad_region(pred, py, px, cur, y0, x0, h, w):
    """Sum of |pred[py+i, px+j] − cur[y0+i, x0+j]| over an h×w region."""
    total = 0
    for yy in range(h):
        p, q = pred[py + yy, px:px + w], cur[y0 + yy, x0:x0 + w]
        for xx in range(w):
            d = np.int32(p[xx]) - np.int32(q[xx])
            total += d if d >= 0 else -d
    return total


def _check_block(ref, x0, y0, w, h):
    check_array("ref", ref, np.uint8, ndim=2)
    if w <= 0 or h <= 0:
        raise ValueError(f"block size must be positive, got {w}×{h}.")


def predict_luma(ref: np.ndarray, x0: int, y0: int, w: int, h: int, mvx: int, mvy: int) -> np.ndarray:
    """uint8 [h, w]: the H.264 quarter-pel luma prediction of the block at (x0, y0) with vector (mvx, mvy)."""
    _check_block(ref, x0, y0, w, h)
    out = np.zeros((h, w), np.uint8)
    luma_mc_into(ref, int(x0), int(y0), int(w), int(h), int(mvx), int(mvy), out, 0, 0)
    return out


def predict_chroma(ref: np.ndarray, x0: int, y0: int, w: int, h: int, mvx: int, mvy: int) -> np.ndarray:
    """uint8 [h, w]: the 4:2:0 chroma prediction (1/8 sample bilinear) at chroma (x0, y0), luma-unit vector."""
    _check_block(ref, x0, y0, w, h)
    out = np.zeros((h, w), np.uint8)
    chroma_mc_into(ref, int(x0), int(y0), int(w), int(h), int(mvx), int(mvy), out, 0, 0)
    return out


def bipred(a: np.ndarray, b: np.ndarray, w0: int = 32, w1: int = 32) -> np.ndarray:
    """uint8: the weighted average of two uint8 predictions of one shape (logWD = 5)."""
    check_array("a", a, np.uint8, ndim=2)
    check_array("b", b, np.uint8, shape=a.shape)
    out = np.zeros(a.shape, np.uint8)
    bipred_into(a, b, int(w0), int(w1), a.shape[0], a.shape[1], out)
    return out


def weight_prediction(pred: np.ndarray, weight: int, offset: int, log2_denom: int) -> np.ndarray:
    """uint8: ``pred`` with H.264 explicit weighted prediction applied (a new array)."""
    check_array("pred", pred, np.uint8, ndim=2)
    if not 0 <= log2_denom <= 7:
        raise ValueError(f"log2_denom must lie in [0, 7], got {log2_denom}.")
    out = pred.copy()
    weight_into(out, out.shape[0], out.shape[1], int(weight), int(offset), int(log2_denom))
    return out
