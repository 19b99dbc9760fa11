"""Per-pixel steps of the OneVision reference's stage-1 selector, reproduced bit for bit where the reference is integer.

The reference (``CVR/tool/stage1.py`` over ``cv_reader``) builds each sampled frame's saliency from

* the motion vectors smeared onto the ``(H/4, W/4)`` grid by ``cv_reader`` (:func:`smear_partition_mvs`),
* the "residual" picture converted YUV420P → RGB24 by FFmpeg 5.1's table-driven C converter
  (``libswscale/yuv2rgb.c``, the unscaled same-size path, built without x86 asm: :func:`yuv420p_to_rgb24`),
* that RGB array read *as BGR* by ``cv2.cvtColor(rgb, COLOR_BGR2YUV)[..., 0]`` (OpenCV's 14-bit fixed-point luma:
  :func:`bgr_as_luma`),
* ``cv2.resize`` nearest (:func:`resize_nearest`) and bilinear on float32 (:func:`resize_linear`) and a sum per
  16×16 cell of the letterboxed map (:func:`letterbox_cell_sums`).

Every step is bit-exact: the integer ones by construction, the float resizes by following OpenCV's own arithmetic
(checked against opencv-python 4.10 and 5.0); the twins in ``tests/naive_stage1.py`` compare with ``==``. The
cell sums are the one float step done differently from the reference (float64, then one rounding; torch sums in
float32), which can only reorder exact ties.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array

__all__ = [
    "bgr_as_luma",
    "letterbox_cell_sums",
    "resize_linear",
    "resize_nearest",
    "smear_partition_mvs",
    "swscale_rgb_tables",
    "yuv420p_to_rgb24",
]


# ---------------------------------------------------------------------------------------------------------------
# cv_reader's motion-vector smear


@njit(**JIT)
def _smear_kernel(source, w, h, dst_x, dst_y, src_x, src_y, out):
    gh = out.shape[0]
    gw = out.shape[1]
    for i in range(source.shape[0]):
        bw = np.int64(w[i])
        bh = np.int64(h[i])
        dx = np.int64(dst_x[i])
        dy = np.int64(dst_y[i])
        mvx = np.int64(src_x[i]) - dx
        mvy = np.int64(src_y[i]) - dy
        # C semantics: `-1 * w / 8` and `dst / 4` truncate toward zero.
        hx = bw // 8
        hy = bh // 8
        cx = dx // 4 if dx >= 0 else -((-dx) // 4)
        cy = dy // 4 if dy >= 0 else -((-dy) // 4)
        ch = 0 if np.int64(source[i]) <= 0 else 2  # `source == 0 || source < 0` → L0 channels
        for xs in range(-hx, hx):
            for ys in range(-hy, hy):
                px = cx + xs
                py = cy + ys
                if 0 <= py < gh and 0 <= px < gw:
                    out[py, px, ch] = mvx
                    out[py, px, ch + 1] = mvy
    return out


@njit(**JIT)
def _trunc_div(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@njit(**JIT)
def _src_kernel(dst, motion, scale, out):
    for i in range(dst.shape[0]):
        s = np.int64(scale[i])
        m = np.int64(motion[i])
        out[i] = np.int64(dst[i]) + (_trunc_div(m, s) if s != 0 else 0)
    return out


def smear_partition_mvs(
    source: np.ndarray,
    w: np.ndarray,
    h: np.ndarray,
    dst_x: np.ndarray,
    dst_y: np.ndarray,
    motion_x: np.ndarray,
    motion_y: np.ndarray,
    motion_scale: np.ndarray,
    height: int,
    width: int,
) -> np.ndarray:
    """``cv_reader``'s ``motion_vector`` array: int32 ``[height//4, width//4, 4]`` = (L0 x, L0 y, L1 x, L1 y).

    FFmpeg's exporter sets ``src = dst + motion / motion_scale`` with C integer division (truncation toward zero);
    ``cv_reader`` stores ``src − dst`` (whole pixels) in every 4×4 cell ``dst/4 + [−w/8, w/8) × [−h/8, h/8)``,
    later vectors overwriting earlier ones, ``source ≤ 0`` into the L0 channels and the rest into L1.
    Cells no vector covers stay 0.
    """
    n = np.asarray(source).shape[0]
    arrays = [np.ascontiguousarray(a) for a in (source, w, h, dst_x, dst_y, motion_x, motion_y, motion_scale)]
    for name, a in zip(("source", "w", "h", "dst_x", "dst_y", "motion_x", "motion_y", "motion_scale"), arrays):
        if a.ndim != 1 or a.shape[0] != n or a.dtype.kind not in "iu":
            raise ValueError(f"{name} must be a 1-D integer array of length {n}, got {a.dtype} {a.shape}.")
    if height < 1 or width < 1:
        raise ValueError(f"Invalid frame size {height}x{width}.")
    source, w, h, dst_x, dst_y, motion_x, motion_y, motion_scale = arrays
    src_x = _src_kernel(dst_x, motion_x, motion_scale, np.empty(n, dtype=np.int64))
    src_y = _src_kernel(dst_y, motion_y, motion_scale, np.empty(n, dtype=np.int64))
    out = np.zeros((height // 4, width // 4, 4), dtype=np.int32)
    return _smear_kernel(source, w, h, dst_x, dst_y, src_x, src_y, out)


# ---------------------------------------------------------------------------------------------------------------
# FFmpeg's table-driven YUV420P → RGB24 (libswscale/yuv2rgb.c, ff_yuv2rgb_c_init_tables + yuv2rgb_c_24_rgb)

_ITU601 = (104597, 132201, 25675, 53279)
"""``ff_yuv2rgb_coeffs[SWS_CS_DEFAULT]``: {crv, cbu, cgu, cgv} of BT.601, what ``sws_getContext`` installs."""


def _c_div(a: int, b: int) -> int:
    """C integer division (truncation toward zero) on Python ints."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def swscale_rgb_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The lookup tables ``ff_yuv2rgb_c_init_tables`` builds for 8-bit limited-range BT.601 → 24-bit RGB.

    Returns ``(y_table uint8 [n], r_of_v, gu_of_u, gv_of_v, b_of_u)`` (int64 [256] each): a pixel's channel is
    ``y_table[base + Y + offset]`` with ``base = 326`` (limited range) and the offset of its chroma sample(s).
    Defaults of ``sws_getContext``: brightness 0, contrast = saturation = 1 << 16.
    """
    crv, cbu, cgu, cgv = _ITU601[0], _ITU601[1], -_ITU601[2], -_ITU601[3]
    contrast = saturation = 1 << 16
    cy = (1 << 16) * 255 // 219  # limited range
    oy = 16 << 16
    cy = (cy * contrast) >> 16
    crv = (crv * contrast * saturation) >> 32
    cbu = (cbu * contrast * saturation) >> 32
    cgu = (cgu * contrast * saturation) >> 32
    cgv = (cgv * contrast * saturation) >> 32
    # "scale coefficients by cy" (C division truncates toward zero; the g coefficients are negative)
    crv = _c_div(crv * (1 << 16) + 0x8000, max(cy, 1))
    cbu = _c_div(cbu * (1 << 16) + 0x8000, max(cy, 1))
    cgu = _c_div(cgu * (1 << 16) + 0x8000, max(cy, 1))
    cgv = _c_div(cgv * (1 << 16) + 0x8000, max(cy, 1))
    # y_table[i] = clip_uint8((yb + 0x8000) >> 16), yb = i·cy − (384 << 16) − oy (the luma headroom cancels out
    # against the table pointer's own headroom). Entry `base + k` for k in [-base, n - base).
    n = 2048
    i = np.arange(n, dtype=np.int64)
    y_table = np.clip((i * cy - (384 << 16) - oy + 0x8000) >> 16, 0, 255).astype(np.uint8)
    c = np.arange(256, dtype=np.int64)

    def offsets(inc: int) -> np.ndarray:  # fill_table / fill_gv_table: -(inc >> 9) + ((c·inc) >> 16)
        return -(inc >> 9) + ((c * inc) >> 16)

    return y_table, offsets(crv), offsets(cgu), offsets(cgv), offsets(cbu)


_TABLES: tuple | None = None
_Y_BASE = 326
"""``yoffs`` of the limited-range tables (384 for full range)."""


@njit(**JIT)
def _yuv2rgb24_kernel(y, u, v, y_table, r_v, g_u, g_v, b_u, base, out):
    height = y.shape[0]
    # swscale's loop writes pixel pairs: an odd last column is never written (cv_reader's array is zeroed).
    width2 = (y.shape[1] // 2) * 2
    for r in range(height):
        cr = r // 2
        for c in range(width2):
            cc = c // 2
            uu = u[cr, cc]
            vv = v[cr, cc]
            yy = np.int64(y[r, c]) + base
            out[r, c, 0] = y_table[yy + r_v[vv]]
            out[r, c, 1] = y_table[yy + g_u[uu] + g_v[vv]]
            out[r, c, 2] = y_table[yy + b_u[uu]]
    return out


def yuv420p_to_rgb24(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W, 3]`` RGB exactly as ``sws_scale`` YUV420P → RGB24 at the same size gives it with FFmpeg's C code.

    This is the unscaled special case (``yuv2rgb_c_24_rgb``) that ``sws_getContext(..., SWS_BILINEAR)`` picks for
    same-size YUV420P → RGB24 when no SIMD converter exists (the reference's ``--disable-yasm`` build): each chroma
    sample serves its 2×2 luma pixels (no chroma interpolation), BT.601 limited range through lookup tables — it is
    about 1.5 levels darker than the textbook formula (Y = U = V = 128 gives 129, not 130). The path needs an even
    height; an odd last row reuses the last chroma row here (swscale would switch to its scaled path).
    """
    global _TABLES
    check_array("y", y, np.uint8, ndim=2)
    hc, wc = (y.shape[0] + 1) // 2, (y.shape[1] + 1) // 2
    check_array("u", u, np.uint8, shape=(hc, wc))
    check_array("v", v, np.uint8, shape=(hc, wc))
    if _TABLES is None:
        _TABLES = swscale_rgb_tables()
    y_table, r_v, g_u, g_v, b_u = _TABLES
    out = np.zeros(y.shape + (3,), dtype=np.uint8)
    return _yuv2rgb24_kernel(y, u, v, y_table, r_v, g_u, g_v, b_u, _Y_BASE, out)


# ---------------------------------------------------------------------------------------------------------------
# cv2.cvtColor(rgb, COLOR_BGR2YUV)[..., 0] on uint8

# OpenCV's yuv_shift = 14 coefficients: R2Y 4899, G2Y 9617, B2Y 1868. With COLOR_BGR2YUV channel 0 is taken as B.
_LUMA_C0, _LUMA_C1, _LUMA_C2 = 1868, 9617, 4899


@njit(**JIT)
def _bgr_as_luma_kernel(img, out):
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            acc = (_LUMA_C0 * np.int64(img[r, c, 0]) + _LUMA_C1 * np.int64(img[r, c, 1])
                   + _LUMA_C2 * np.int64(img[r, c, 2]) + (1 << 13))
            out[r, c] = acc >> 14
    return out


def bgr_as_luma(img: np.ndarray) -> np.ndarray:
    """``cv2.cvtColor(img, cv2.COLOR_BGR2YUV)[..., 0]`` for uint8 ``[H, W, 3]``: OpenCV's fixed-point luma
    ``(1868·c0 + 9617·c1 + 4899·c2 + 2¹³) >> 14``. The reference passes an RGB array, so R gets B's weight."""
    check_array("img", img, np.uint8, shape=(None, None, 3))
    return _bgr_as_luma_kernel(img, np.empty(img.shape[:2], dtype=np.uint8))


# ---------------------------------------------------------------------------------------------------------------
# cv2.resize


def _nearest_index(n_out: int, n_in: int) -> np.ndarray:
    """OpenCV INTER_NEAREST: ``min(floor(d · (1 / (n_out / n_in))), n_in − 1)`` in double precision."""
    inv = 1.0 / (float(n_out) / float(n_in))
    return np.minimum(np.floor(np.arange(n_out, dtype=np.float64) * inv).astype(np.int64), n_in - 1)


@njit(**JIT)
def _resize_nearest_kernel(src, rows, cols, out):
    for r in range(rows.shape[0]):
        sr = rows[r]
        for c in range(cols.shape[0]):
            out[r, c] = src[sr, cols[c]]
    return out


def resize_nearest(src: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """``cv2.resize(src, (out_w, out_h), interpolation=cv2.INTER_NEAREST)`` for a float32 ``[h, w]`` map."""
    check_array("src", src, np.float32, ndim=2)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"Invalid output size {out_h}x{out_w}.")
    rows = _nearest_index(out_h, src.shape[0])
    cols = _nearest_index(out_w, src.shape[1])
    return _resize_nearest_kernel(src, rows, cols, np.empty((out_h, out_w), dtype=np.float32))


def _linear_taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV INTER_LINEAR taps: ``f = (d + 0.5)·scale − 0.5`` in double, ``s = floor(f)``, weight
    ``float32(f − s)``; ``s < 0`` → (0, weight 0); ``s ≥ n_in − 1`` → (n_in − 1, weight 0).

    Measured on opencv-python 4.10 and 5.0 with images of two or more rows (a single-row image takes another
    path that rounds ``f`` to float32 first; the reference's maps are never one row)."""
    scale = 1.0 / (float(n_out) / float(n_in))
    f = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
    s = np.floor(f).astype(np.int64)
    frac = (f - s).astype(np.float32)
    low = s < 0
    s[low] = 0
    frac[low] = 0.0
    high = s >= n_in - 1
    s[high] = n_in - 1
    frac[high] = 0.0
    return s, frac


@njit(**JIT)
def _lerp(a, b, w):
    """``fma(w, b − a, a)`` in float32, as OpenCV's vectorised INTER_LINEAR computes each pass: ``b − a`` rounded to
    float32, the product and sum exact in float64 (a float32 product fits), one rounding to float32."""
    d = np.float32(b - a)
    return np.float32(np.float64(a) + np.float64(w) * np.float64(d))


@njit(**JIT)
def _resize_linear_kernel(src, sy, fy, sx, fx, row0, row1, out):
    h_in = src.shape[0]
    w_in = src.shape[1]
    prev0 = -1
    prev1 = -1
    for r in range(sy.shape[0]):
        y0 = sy[r]
        y1 = min(y0 + 1, h_in - 1)
        # horizontal pass of the two source rows (OpenCV keeps them in a ring; recomputing gives the same floats)
        if y0 != prev0:
            for c in range(sx.shape[0]):
                row0[c] = _lerp(src[y0, sx[c]], src[y0, min(sx[c] + 1, w_in - 1)], fx[c])
            prev0 = y0
        if y1 != prev1:
            for c in range(sx.shape[0]):
                row1[c] = _lerp(src[y1, sx[c]], src[y1, min(sx[c] + 1, w_in - 1)], fx[c])
            prev1 = y1
        for c in range(sx.shape[0]):
            out[r, c] = _lerp(row0[c], row1[c], fy[r])
    return out


def resize_linear(src: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """``cv2.resize(src, (out_w, out_h), interpolation=cv2.INTER_LINEAR)`` for a float32 ``[h, w]`` map, bit for bit
    (opencv-python 4.10 and 5.0): half-pixel centres, clamped edges, weight ``float32(f − floor(f))`` with ``f`` in
    double, each pass ``a + w·(b − a)`` with one rounding (:func:`_lerp`), horizontal then vertical."""
    check_array("src", src, np.float32, ndim=2)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"Invalid output size {out_h}x{out_w}.")
    sy, fy = _linear_taps(out_h, src.shape[0])
    sx, fx = _linear_taps(out_w, src.shape[1])
    row0 = np.empty(out_w, dtype=np.float32)
    row1 = np.empty(out_w, dtype=np.float32)
    return _resize_linear_kernel(src, sy, fy, sx, fx, row0, row1, np.empty((out_h, out_w), dtype=np.float32))


# ---------------------------------------------------------------------------------------------------------------
# letterbox + per-cell sums


@njit(**JIT)
def _cell_sums_kernel(content, pad_top, pad_left, patch, out):
    hn = content.shape[0]
    wn = content.shape[1]
    acc = np.zeros(out.shape, dtype=np.float64)
    for r in range(hn):
        gr = (r + pad_top) // patch
        if gr < 0 or gr >= out.shape[0]:
            continue
        for c in range(wn):
            gc = (c + pad_left) // patch
            if 0 <= gc < out.shape[1]:
                acc[gr, gc] += content[r, c]
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.float32(acc[i, j])
    return out


def letterbox_cell_sums(content: np.ndarray, pad_top: int, pad_left: int, canvas: int, patch: int) -> np.ndarray:
    """Sum of a float32 ``[Hn, Wn]`` map placed at ``(pad_top, pad_left)`` on a zero ``canvas²`` square, per
    ``patch``×``patch`` cell: float32 ``[canvas/patch, canvas/patch]``.

    The reference sums float32 with torch (``reshape(T, hb, p, wb, p).sum((2, 4))``); here the sum is accumulated
    in float64 and rounded once, which agrees with torch to float32 rounding and is independent of the CPU.
    """
    check_array("content", content, np.float32, ndim=2)
    if patch < 1 or canvas % patch:
        raise ValueError(f"canvas {canvas} must be a positive multiple of patch {patch}.")
    if pad_top < 0 or pad_left < 0 or pad_top + content.shape[0] > canvas or pad_left + content.shape[1] > canvas:
        raise ValueError(f"A {content.shape} map at ({pad_top}, {pad_left}) does not fit a {canvas}² canvas.")
    g = canvas // patch
    return _cell_sums_kernel(content, int(pad_top), int(pad_left), int(patch), np.empty((g, g), dtype=np.float32))
