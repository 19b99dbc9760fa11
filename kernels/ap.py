"""``cv2.resize(..., interpolation=cv2.INTER_CUBIC)`` on uint8, as the OneVision attentive-probe loader resizes its
per-frame energy maps (``resize_and_center_crop_residuals``).

Measured against opencv-python 4.10 and 5.0 (the textbook 11-bit fixed-point path disagrees with both on ~4 % of
pixels when downscaling): Keys' kernel (A = −0.75) evaluated in double at ``x = f − floor(f)``,
``f = (d + 0.5)·scale − 0.5``, the weights rounded to float32; edge pixels replicated; each pass a four-tap sum
rounded once to float32 (horizontal, then vertical); the result rounded half to even and saturated. That agrees
with OpenCV on all but 0–3 pixels of a random 640×360 → 398×224 image (±1, summation order); smooth maps agree
exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array

__all__ = ["cubic_taps", "local_variance3", "resize_cubic_u8"]


def cubic_taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """First source index of the four taps (int64 ``[n_out]``, may be < 0 or past the end: the kernel clamps) and
    float32 weights ``[n_out, 4]`` for one axis (computed in double, ``w3 = 1 − w0 − w1 − w2``)."""
    scale = 1.0 / (float(n_out) / float(n_in))
    f = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
    s = np.floor(f).astype(np.int64)
    x = f - s
    a = -0.75
    x1 = x + 1.0
    w0 = ((a * x1 - 5.0 * a) * x1 + 8.0 * a) * x1 - 4.0 * a
    w1 = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    y = 1.0 - x
    w2 = ((a + 2.0) * y - (a + 3.0)) * y * y + 1.0
    w3 = 1.0 - w0 - w1 - w2
    return s - 1, np.ascontiguousarray(np.stack([w0, w1, w2, w3], axis=1).astype(np.float32))


@njit(**JIT)
def _resize_cubic_kernel(src, ys, wy, xs, wx, horiz, out):
    h_in = src.shape[0]
    w_in = src.shape[1]
    w_out = xs.shape[0]
    for r in range(h_in):  # horizontal pass of every source row: a float32 row
        for c in range(w_out):
            acc = 0.0
            for j in range(4):
                sc = min(max(xs[c] + j, 0), w_in - 1)
                acc += float(src[r, sc]) * float(wx[c, j])
            horiz[r, c] = np.float32(acc)
    for r in range(ys.shape[0]):
        for c in range(w_out):
            acc = 0.0
            for k in range(4):
                sr = min(max(ys[r] + k, 0), h_in - 1)
                acc += float(horiz[sr, c]) * float(wy[r, k])
            v = np.rint(np.float32(acc))
            out[r, c] = np.uint8(min(max(v, 0.0), 255.0))
    return out


def resize_cubic_u8(src: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """``cv2.resize(src, (out_w, out_h), interpolation=cv2.INTER_CUBIC)`` for uint8 ``[h, w]`` (module doc)."""
    check_array("src", src, np.uint8, ndim=2)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"Invalid output size {out_h}x{out_w}.")
    ys, wy = cubic_taps(out_h, src.shape[0])
    xs, wx = cubic_taps(out_w, src.shape[1])
    horiz = np.empty((src.shape[0], out_w), dtype=np.float32)
    return _resize_cubic_kernel(src, ys, wy, xs, wx, horiz, np.empty((out_h, out_w), dtype=np.uint8))


@njit(**JIT)
def _box3_kernel(v, out, ii):
    # The loader's float32 integral-image box mean of ``v`` (edge-padded by one): ii = cumsum(cumsum(pad, 0), 1)
    # in float32, one addition at a time in numpy's order (an accumulate is sequential), then
    # ((ii[3:, 3:] − ii[:-3, 3:]) − ii[3:, :-3]) + ii[:-3, :-3], divided by float32 9.
    h, w = v.shape
    for i in range(h + 2):
        si = min(max(i - 1, 0), h - 1)
        for j in range(w + 2):
            val = v[si, min(max(j - 1, 0), w - 1)]
            ii[i, j] = val if i == 0 else ii[i - 1, j] + val  # column cumsum first (axis 0) ...
    for i in range(h + 2):
        for j in range(1, w + 2):
            ii[i, j] = ii[i, j - 1] + ii[i, j]  # ... then along each row (axis 1)
    nine = np.float32(9.0)
    for i in range(h - 1):
        for j in range(w - 1):
            out[i, j] = (((ii[i + 3, j + 3] - ii[i, j + 3]) - ii[i + 3, j]) + ii[i, j]) / nine


@njit(**JIT)
def _local_variance3_kernel(x, sq, m1, m2, ii, out):
    h, w = x.shape
    for i in range(h):
        for j in range(w):
            sq[i, j] = x[i, j] * x[i, j]
    _box3_kernel(x, m1, ii)
    _box3_kernel(sq, m2, ii)
    zero = np.float32(0.0)
    for i in range(h - 1):
        for j in range(w - 1):
            d = m2[i, j] - m1[i, j] * m1[i, j]
            out[i, j] = d if (d >= zero or np.isnan(d)) else zero  # np.maximum(d, 0.0), −0.0 and NaN included


def local_variance3(x: np.ndarray) -> np.ndarray:
    """The attentive-probe loader's ``_local_var2d(x, 3)`` on float32 ``[H, W]`` (H, W ≥ 2), bit for bit: box
    means from a float32 integral image of the edge-padded map, ``max(E[x²] − E[x]², 0)``, shape ``(H−1, W−1)``
    (the loader's integral image has no leading zero row, so each value is the window one pixel down-right)."""
    check_array("x", x, np.float32, ndim=2)
    h, w = x.shape
    if h < 2 or w < 2:
        raise ValueError(f"local_variance3 needs at least 2×2 values, got {h}×{w}.")
    sq = np.empty((h, w), np.float32)
    m1 = np.empty((h - 1, w - 1), np.float32)
    m2 = np.empty((h - 1, w - 1), np.float32)
    ii = np.empty((h + 2, w + 2), np.float32)
    out = np.empty((h - 1, w - 1), np.float32)
    _local_variance3_kernel(x, sq, m1, m2, ii, out)
    return out
