"""H.264 intra prediction with the standard's exact integer formulas (ITU-T H.264 §8.3.1.2, §8.3.3, §8.3.4).

Intra 4×4 (9 modes: V, H, DC, diagonal down-left, diagonal down-right, vertical-right, horizontal-down,
vertical-left, horizontal-up), intra 16×16 (V, H, DC, plane) and 4:2:0 chroma 8×8 (DC, H, V, plane, with the
per-4×4 DC rules). Neighbours are read from ``plane`` around the block; availability is passed in by the caller
(picture edges, decoding order). Missing top-right samples of a 4×4 block repeat the last top sample, as the
standard substitutes them. Modes whose neighbours are missing are reported invalid, so the min-SAD choice never
picks them.

The ``*_into`` functions are jit helpers other kernels call; the wrappers at the end validate and allocate.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array

__all__ = [
    "block4x4_position",
    "chroma8x8_into",
    "chroma8x8_valid",
    "intra4x4_edges",
    "intra4x4_from_edges",
    "intra4x4_into",
    "intra4x4_valid",
    "intra16x16_into",
    "intra16x16_valid",
    "predict_chroma8x8",
    "predict_intra4x4",
    "predict_intra16x16",
    "topright_available",
]


@njit(**JIT)
def _clip255(v):
    return 0 if v < 0 else (min(v, 255))


@njit(**JIT)
def block4x4_position(index):
    """(bx, by) in 4×4 units inside the macroblock of the index-th 4×4 block in decoding (double zig-zag) order."""
    return (index & 1) + ((index >> 2) & 1) * 2, ((index >> 1) & 1) + (index >> 3) * 2


@njit(**JIT)
def _decode_index(bx, by):
    return (by >> 1) * 8 + (bx >> 1) * 4 + (by & 1) * 2 + (bx & 1)


@njit(**JIT)
def topright_available(bx, by, mb_x, mb_y, mb_cols):
    """Whether the 4×4 block at (bx, by) of macroblock (mb_x, mb_y) has decoded top-right neighbours."""
    if by == 0:
        if mb_y == 0:
            return False
        return bx < 3 or mb_x + 1 < mb_cols  # the MB above, or the one above-right
    if bx == 3:
        return False  # the MB to the right is not decoded yet
    return _decode_index(bx + 1, by - 1) < _decode_index(bx, by)


@njit(**JIT)
def intra4x4_valid(mode, has_top, has_left):
    """Whether intra 4×4 ``mode`` can be used with these neighbours."""
    if mode == 2:
        return True
    if mode == 0 or mode == 3 or mode == 7:
        return has_top
    if mode == 1 or mode == 8:
        return has_left
    return has_top and has_left


@njit(**JIT)
def intra4x4_into(plane, x, y, mode, has_top, has_left, has_topright, out, oy, ox):
    """Write the intra 4×4 prediction of the block at (x, y) into out[oy:oy+4, ox:ox+4]."""
    t = np.zeros(9, np.int32)
    l = np.zeros(5, np.int32)
    intra4x4_edges(plane, x, y, has_top, has_left, has_topright, t, l)
    intra4x4_from_edges(t, l, mode, has_top, has_left, out, oy, ox)


@njit(**JIT)
def intra4x4_edges(plane, x, y, has_top, has_left, has_topright, t, l):
    """Gather the neighbours of the 4×4 block at (x, y) into int32 ``t`` [9] and ``l`` [5] (caller-owned, so a
    mode search reads them once): t[0] = p[-1,-1], t[1 + i] = p[i,-1]; l[0] = p[-1,-1], l[1 + j] = p[-1,j] (the
    standard's p[x, y]); unavailable ones are 0."""
    for i in range(9):
        t[i] = 0
    for j in range(5):
        l[j] = 0
    if has_top:
        for i in range(4):
            t[1 + i] = plane[y - 1, x + i]
        for i in range(4, 8):
            t[1 + i] = plane[y - 1, x + i] if has_topright else t[4]
    if has_left:
        for j in range(4):
            l[1 + j] = plane[y + j, x - 1]
    if has_top and has_left:
        t[0] = plane[y - 1, x - 1]
        l[0] = t[0]


@njit(**JIT)
def intra4x4_from_edges(t, l, mode, has_top, has_left, out, oy, ox):
    """Write the intra 4×4 prediction of ``mode`` from the neighbours of :func:`intra4x4_edges` into out."""
    dc = 128
    if mode == 2:
        if has_top and has_left:
            dc = (t[1] + t[2] + t[3] + t[4] + l[1] + l[2] + l[3] + l[4] + 4) >> 3
        elif has_left:
            dc = (l[1] + l[2] + l[3] + l[4] + 2) >> 2
        elif has_top:
            dc = (t[1] + t[2] + t[3] + t[4] + 2) >> 2
    for yy in range(4):
        for xx in range(4):
            if mode == 0:
                v = t[1 + xx]
            elif mode == 1:
                v = l[1 + yy]
            elif mode == 2:
                v = dc
            elif mode == 3:
                if xx == 3 and yy == 3:
                    v = (t[7] + 3 * t[8] + 2) >> 2
                else:
                    v = (t[1 + xx + yy] + 2 * t[2 + xx + yy] + t[3 + xx + yy] + 2) >> 2
            elif mode == 4:
                if xx > yy:
                    v = (t[xx - yy - 1] + 2 * t[xx - yy] + t[xx - yy + 1] + 2) >> 2
                elif xx < yy:
                    v = (l[yy - xx - 1] + 2 * l[yy - xx] + l[yy - xx + 1] + 2) >> 2
                else:
                    v = (t[1] + 2 * t[0] + l[1] + 2) >> 2
            elif mode == 5:
                z = 2 * xx - yy
                k = xx - (yy >> 1)
                if z >= 0 and (z & 1) == 0:
                    v = (t[k] + t[k + 1] + 1) >> 1
                elif z >= 0:
                    v = (t[k - 1] + 2 * t[k] + t[k + 1] + 2) >> 2
                elif z == -1:
                    v = (l[1] + 2 * l[0] + t[1] + 2) >> 2
                else:
                    v = (l[yy] + 2 * l[yy - 1] + l[yy - 2] + 2) >> 2
            elif mode == 6:
                z = 2 * yy - xx
                k = yy - (xx >> 1)
                if z >= 0 and (z & 1) == 0:
                    v = (l[k] + l[k + 1] + 1) >> 1
                elif z >= 0:
                    v = (l[k - 1] + 2 * l[k] + l[k + 1] + 2) >> 2
                elif z == -1:
                    v = (l[1] + 2 * l[0] + t[1] + 2) >> 2
                else:
                    v = (t[xx] + 2 * t[xx - 1] + t[xx - 2] + 2) >> 2
            elif mode == 7:
                k = xx + (yy >> 1)
                if (yy & 1) == 0:
                    v = (t[1 + k] + t[2 + k] + 1) >> 1
                else:
                    v = (t[1 + k] + 2 * t[2 + k] + t[3 + k] + 2) >> 2
            else:
                z = xx + 2 * yy
                k = yy + (xx >> 1)
                if z > 5:
                    v = l[4]
                elif z == 5:
                    v = (l[3] + 3 * l[4] + 2) >> 2
                elif (z & 1) == 0:
                    v = (l[1 + k] + l[2 + k] + 1) >> 1
                else:
                    v = (l[1 + k] + 2 * l[2 + k] + l[3 + k] + 2) >> 2
            out[oy + yy, ox + xx] = v


@njit(**JIT)
def intra16x16_valid(mode, has_top, has_left):
    """Whether intra 16×16 ``mode`` (0 V, 1 H, 2 DC, 3 plane) can be used with these neighbours."""
    if mode == 0:
        return has_top
    if mode == 1:
        return has_left
    if mode == 2:
        return True
    return has_top and has_left


@njit(**JIT)
def _square_into(plane, x, y, n, mode, has_top, has_left, out, oy, ox):
    # Shared by luma 16×16 (n=16) and chroma 8×8 (n=8); mode numbering here: 0 V, 1 H, 2 DC (whole block), 3 plane.
    if mode == 0:
        for yy in range(n):
            for xx in range(n):
                out[oy + yy, ox + xx] = plane[y - 1, x + xx]
    elif mode == 1:
        for yy in range(n):
            for xx in range(n):
                out[oy + yy, ox + xx] = plane[y + yy, x - 1]
    elif mode == 2:
        shift = 4 if n == 16 else 3
        total = 0
        if has_top:
            for i in range(n):
                total += np.int32(plane[y - 1, x + i])
        if has_left:
            for j in range(n):
                total += np.int32(plane[y + j, x - 1])
        if has_top and has_left:
            dc = (total + n) >> (shift + 1)
        elif has_top or has_left:
            dc = (total + (n >> 1)) >> shift
        else:
            dc = 128
        for yy in range(n):
            for xx in range(n):
                out[oy + yy, ox + xx] = dc
    else:
        half = n >> 1
        hh = 0
        vv = 0
        for i in range(half):
            hh += (i + 1) * (np.int32(plane[y - 1, x + half + i]) - np.int32(plane[y - 1, x + half - 2 - i]))
            vv += (i + 1) * (np.int32(plane[y + half + i, x - 1]) - np.int32(plane[y + half - 2 - i, x - 1]))
        a = 16 * (np.int32(plane[y + n - 1, x - 1]) + np.int32(plane[y - 1, x + n - 1]))
        if n == 16:
            b = (5 * hh + 32) >> 6
            c = (5 * vv + 32) >> 6
        else:
            b = (34 * hh + 32) >> 6
            c = (34 * vv + 32) >> 6
        centre = half - 1
        for yy in range(n):
            for xx in range(n):
                out[oy + yy, ox + xx] = _clip255((a + b * (xx - centre) + c * (yy - centre) + 16) >> 5)


@njit(**JIT)
def intra16x16_into(plane, x, y, mode, has_top, has_left, out, oy, ox):
    """Write the intra 16×16 prediction (0 V, 1 H, 2 DC, 3 plane) of the macroblock at (x, y) into out."""
    _square_into(plane, x, y, 16, mode, has_top, has_left, out, oy, ox)


@njit(**JIT)
def chroma8x8_valid(mode, has_top, has_left):
    """Whether chroma ``mode`` (0 DC, 1 H, 2 V, 3 plane) can be used with these neighbours."""
    if mode == 0:
        return True
    if mode == 1:
        return has_left
    if mode == 2:
        return has_top
    return has_top and has_left


@njit(**JIT)
def chroma8x8_into(plane, x, y, mode, has_top, has_left, out, oy, ox):
    """Write the 4:2:0 chroma prediction (0 DC, 1 H, 2 V, 3 plane) of the 8×8 block at (x, y) into out."""
    if mode == 1:
        _square_into(plane, x, y, 8, 1, has_top, has_left, out, oy, ox)
        return
    if mode == 2:
        _square_into(plane, x, y, 8, 0, has_top, has_left, out, oy, ox)
        return
    if mode == 3:
        _square_into(plane, x, y, 8, 3, has_top, has_left, out, oy, ox)
        return
    # DC per 4×4 chroma block (§8.3.4.1-3): corner blocks use both sides, the others prefer their own side.
    for cy in range(2):
        for cx in range(2):
            st = 0
            sl = 0
            if has_top:
                for i in range(4):
                    st += np.int32(plane[y - 1, x + 4 * cx + i])
            if has_left:
                for j in range(4):
                    sl += np.int32(plane[y + 4 * cy + j, x - 1])
            if cx == cy:
                if has_top and has_left:
                    dc = (st + sl + 4) >> 3
                elif has_top:
                    dc = (st + 2) >> 2
                elif has_left:
                    dc = (sl + 2) >> 2
                else:
                    dc = 128
            elif cx == 1:  # top-right block: top first
                if has_top:
                    dc = (st + 2) >> 2
                elif has_left:
                    dc = (sl + 2) >> 2
                else:
                    dc = 128
            else:  # bottom-left block: left first
                if has_left:
                    dc = (sl + 2) >> 2
                elif has_top:
                    dc = (st + 2) >> 2
                else:
                    dc = 128
            for yy in range(4):
                for xx in range(4):
                    out[oy + 4 * cy + yy, ox + 4 * cx + xx] = dc


def _check_intra(plane, x, y, n, has_top, has_left, mode, valid):
    check_array("plane", plane, np.uint8, ndim=2)
    h, w = plane.shape
    if x < (1 if has_left else 0) or y < (1 if has_top else 0) or x + n > w or y + n > h:
        raise ValueError(f"block at ({x}, {y}) of size {n} and its neighbours must lie inside the {w}×{h} plane.")
    if not valid(mode, has_top, has_left):
        raise ValueError(f"mode {mode} needs neighbours that are not available here.")


def predict_intra4x4(plane: np.ndarray, x: int, y: int, mode: int, *, has_top: bool, has_left: bool,
                     has_topright: bool) -> np.ndarray:
    """uint8 [4, 4]: intra 4×4 prediction of the block at (x, y) from the neighbours in ``plane``."""
    _check_intra(plane, x, y, 4 + (4 if has_topright else 0), has_top, has_left, mode, intra4x4_valid)
    out = np.zeros((4, 4), np.uint8)
    intra4x4_into(plane, int(x), int(y), int(mode), bool(has_top), bool(has_left), bool(has_topright), out, 0, 0)
    return out


def predict_intra16x16(plane: np.ndarray, x: int, y: int, mode: int, *, has_top: bool, has_left: bool) -> np.ndarray:
    """uint8 [16, 16]: intra 16×16 prediction of the macroblock at (x, y)."""
    _check_intra(plane, x, y, 16, has_top, has_left, mode, intra16x16_valid)
    out = np.zeros((16, 16), np.uint8)
    intra16x16_into(plane, int(x), int(y), int(mode), bool(has_top), bool(has_left), out, 0, 0)
    return out


def predict_chroma8x8(plane: np.ndarray, x: int, y: int, mode: int, *, has_top: bool, has_left: bool) -> np.ndarray:
    """uint8 [8, 8]: 4:2:0 chroma intra prediction of the 8×8 block at chroma (x, y)."""
    _check_intra(plane, x, y, 8, has_top, has_left, mode, chroma8x8_valid)
    out = np.zeros((8, 8), np.uint8)
    chroma8x8_into(plane, int(x), int(y), int(mode), bool(has_top), bool(has_left), out, 0, 0)
    return out
