"""Plain NumPy / loop twins of ``codec_select.kernels.stage1``, written from the reference's C and OpenCV rules.

- ``naive_smear``: cv_reader ``h264_api.cpp`` — ``src = dst + motion/scale`` (C division), cells
  ``dst/4 + [−w/8, w/8)`` in x and ``[−h/8, h/8)`` in y, later vectors overwrite.
- ``naive_yuv420p_to_rgb24``: FFmpeg ``yuv2rgb.c`` (``ff_yuv2rgb_c_init_tables`` case 24, ``yuv2rgb_c_24_rgb``)
  evaluated per pixel with Python integers, the table built as the C code builds it (headroom 512 kept).
- ``naive_bgr_as_luma``: OpenCV ``RGB2YUV_i`` with ``yuv_shift = 14`` and B at channel 0.
- ``naive_resize_nearest`` / ``naive_resize_linear``: OpenCV ``resizeNN`` / INTER_LINEAR per output pixel
  (``a + w·(b − a)`` rounded once, as measured on opencv-python 4.10 and 5.0).
- ``naive_letterbox_cell_sums``: zero canvas, paste, reshape-sum (float64, one rounding).
"""

from __future__ import annotations

import math

import numpy as np


def _cdiv(a: int, b: int) -> int:
    """C integer division: truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def naive_smear(source, w, h, dst_x, dst_y, motion_x, motion_y, motion_scale, height, width):
    out = np.zeros((height // 4, width // 4, 4), dtype=np.int32)
    for i in range(len(source)):
        scale = int(motion_scale[i])
        src_x = int(dst_x[i]) + (_cdiv(int(motion_x[i]), scale) if scale else 0)
        src_y = int(dst_y[i]) + (_cdiv(int(motion_y[i]), scale) if scale else 0)
        mvx, mvy = src_x - int(dst_x[i]), src_y - int(dst_y[i])
        half_w, half_h = _cdiv(int(w[i]), 8), _cdiv(int(h[i]), 8)
        for xs in range(-half_w, half_w):
            for ys in range(-half_h, half_h):
                px = _cdiv(int(dst_x[i]), 4) + xs
                py = _cdiv(int(dst_y[i]), 4) + ys
                if 0 <= py < height // 4 and 0 <= px < width // 4:
                    ch = 0 if (source[i] == 0 or source[i] < 0) else 2
                    out[py, px, ch] = mvx
                    out[py, px, ch + 1] = mvy
    return out


# FFmpeg swscale, transcribed: YUVRGB_TABLE_HEADROOM and YUVRGB_TABLE_LUMA_HEADROOM are 512.
_HEADROOM = 512


def _swscale_tables():
    inv = [104597, 132201, 25675, 53279]  # ff_yuv2rgb_coeffs[SWS_CS_DEFAULT = 5]
    crv, cbu, cgu, cgv = inv[0], inv[1], -inv[2], -inv[3]
    cy = (1 << 16) * 255 // 219
    oy = 16 << 16
    contrast = saturation = 1 << 16
    cy = (cy * contrast) >> 16
    crv = (crv * contrast * saturation) >> 32
    cbu = (cbu * contrast * saturation) >> 32
    cgu = (cgu * contrast * saturation) >> 32
    cgv = (cgv * contrast * saturation) >> 32
    crv = _cdiv((crv << 16) + 0x8000, cy)
    cbu = _cdiv((cbu << 16) + 0x8000, cy)
    cgu = _cdiv(cgu * 65536 + 0x8000, cy)
    cgv = _cdiv(cgv * 65536 + 0x8000, cy)
    size = 1024 + 2 * _HEADROOM
    yb = -(384 << 16) - _HEADROOM * cy - oy
    y_table = []
    for _ in range(size):
        y_table.append(min(max((yb + 0x8000) >> 16, 0), 255))
        yb += cy
    yoffs = 326 + _HEADROOM

    def table(inc):  # fill_table: pointer offsets into y_table for chroma value c
        return [yoffs - (inc >> 9) + ((c * inc) >> 16) for c in range(256)]

    def gv_table(inc):  # fill_gv_table: plain offsets
        return [-(inc >> 9) + ((c * inc) >> 16) for c in range(256)]

    return y_table, table(crv), table(cgu), gv_table(cgv), table(cbu)


def naive_yuv420p_to_rgb24(y, u, v):
    y_table, r_v, g_u, g_v, b_u = _swscale_tables()
    height, width = y.shape
    out = np.zeros((height, width, 3), dtype=np.uint8)
    for r in range(height):
        for c in range(width - width % 2):
            uu, vv = int(u[r // 2, c // 2]), int(v[r // 2, c // 2])
            yy = int(y[r, c])
            out[r, c] = (y_table[r_v[vv] + yy], y_table[g_u[uu] + g_v[vv] + yy], y_table[b_u[uu] + yy])
    return out


def naive_bgr_as_luma(img):
    b2y, g2y, r2y = 1868, 9617, 4899  # OpenCV B2Y, G2Y, R2Y (yuv_shift 14); channel 0 is "B" for BGR2YUV
    x = img.astype(np.int64)
    return ((x[..., 0] * b2y + x[..., 1] * g2y + x[..., 2] * r2y + (1 << 13)) >> 14).astype(np.uint8)


def naive_resize_nearest(src, out_h, out_w):
    fy = 1.0 / (out_h / src.shape[0])
    fx = 1.0 / (out_w / src.shape[1])
    out = np.empty((out_h, out_w), dtype=src.dtype)
    for r in range(out_h):
        for c in range(out_w):
            out[r, c] = src[min(math.floor(r * fy), src.shape[0] - 1), min(math.floor(c * fx), src.shape[1] - 1)]
    return out


def _tap(d, n_out, n_in):
    f = (d + 0.5) * (1.0 / (n_out / n_in)) - 0.5
    s = math.floor(f)
    a = np.float32(f - s)
    if s < 0:
        s, a = 0, np.float32(0.0)
    if s >= n_in - 1:
        s, a = n_in - 1, np.float32(0.0)
    return s, min(s + 1, n_in - 1), a


def _fma_lerp(a, b, w):
    """a + w·(b − a): the difference in float32, then one rounding (exact product and sum in Python floats)."""
    d = float(np.float32(np.float32(b) - np.float32(a)))
    return np.float32(float(a) + float(w) * d)


def naive_resize_linear(src, out_h, out_w):
    out = np.empty((out_h, out_w), dtype=np.float32)
    for r in range(out_h):
        y0, y1, b = _tap(r, out_h, src.shape[0])
        for c in range(out_w):
            x0, x1, a = _tap(c, out_w, src.shape[1])
            top = _fma_lerp(src[y0, x0], src[y0, x1], a)
            bottom = _fma_lerp(src[y1, x0], src[y1, x1], a)
            out[r, c] = _fma_lerp(top, bottom, b)
    return out


def naive_letterbox_cell_sums(content, pad_top, pad_left, canvas, patch):
    square = np.zeros((canvas, canvas), dtype=np.float64)
    square[pad_top:pad_top + content.shape[0], pad_left:pad_left + content.shape[1]] = content
    g = canvas // patch
    return square.reshape(g, patch, g, patch).sum(axis=(1, 3)).astype(np.float32)


def _keys(x):
    """Keys' cubic weights, A = −0.75, in double, rounded to float32 (as measured on OpenCV 4.10 / 5.0)."""
    a = -0.75
    w0 = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
    w1 = ((a + 2) * x - (a + 3)) * x * x + 1
    w2 = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
    return [float(np.float32(v)) for v in (w0, w1, w2, 1 - w0 - w1 - w2)]


def naive_resize_cubic_u8(src, out_h, out_w):
    """OpenCV INTER_CUBIC on uint8 as measured: separable four-tap sums rounded to float32 per pass, edge
    replicate, round half to even."""
    h, w = src.shape

    def taps(d, n_out, n_in):
        f = (d + 0.5) * (1.0 / (n_out / n_in)) - 0.5
        s = math.floor(f)
        return [min(max(s - 1 + k, 0), n_in - 1) for k in range(4)], _keys(f - s)

    horiz = np.zeros((h, out_w), dtype=np.float32)
    for c in range(out_w):
        idx, wts = taps(c, out_w, w)
        for r in range(h):
            horiz[r, c] = np.float32(sum(float(src[r, idx[j]]) * wts[j] for j in range(4)))
    out = np.zeros((out_h, out_w), dtype=np.uint8)
    for r in range(out_h):
        idx, wts = taps(r, out_h, h)
        for c in range(out_w):
            acc = np.float32(sum(float(horiz[idx[k], c]) * wts[k] for k in range(4)))
            out[r, c] = min(max(np.rint(acc), 0), 255)
    return out
