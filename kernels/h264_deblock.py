"""H.264 deblocking filter for 4:2:0 frame pictures with 4×4 transforms (ITU-T H.264 §8.7).

The patched decoder the emulation imitates keeps FFmpeg's loop filter on, so its "residual" pictures are
deblocked, and later pictures predict from the deblocked ones. This kernel applies the standard filter to a
picture given what the stock decoder exports or the emulation rebuilt: which macroblocks are intra, which luma
4×4 blocks carry coefficients, the reference picture and vector of each 4×4 block per list, and the macroblock
QPs. Boundary strength (§8.7.2.1): 4 on macroblock edges touching an intra macroblock, 3 inside one, 2 where
either 4×4 block has coefficients, 1 where the references or their number differ or a vector component differs by
a whole sample (4 quarter samples) or more, else 0. Macroblocks are filtered in raster order, vertical edges
left to right then horizontal edges top to bottom, in place. One slice per picture is assumed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array

__all__ = ["ALPHA", "BETA", "CHROMA_QP", "TC0", "block_motion", "boundary_strength", "deblock_picture"]

ALPHA = np.array([0] * 16 + [4, 4, 5, 6, 7, 8, 9, 10, 12, 13, 15, 17, 20, 22, 25, 28, 32, 36, 40, 45, 50, 56, 63,
                             71, 80, 90, 101, 113, 127, 144, 162, 182, 203, 226, 255, 255], np.int32)
"""α′ by indexA (Table 8-16)."""
BETA = np.array([0] * 16 + [2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
                            14, 14, 15, 15, 16, 16, 17, 17, 18, 18], np.int32)
"""β′ by indexB (Table 8-16)."""
TC0 = np.array([[0, 0, 0]] * 17 + [[0, 0, 1]] * 4 + [[0, 1, 1]] * 2 + [[1, 1, 1]] * 4 + [[1, 1, 2]] * 4
               + [[1, 2, 3]] * 2 + [[2, 2, 3], [2, 2, 4], [2, 3, 4], [2, 3, 4], [3, 3, 5], [3, 4, 6], [3, 4, 6],
                                    [4, 5, 7], [4, 5, 8], [4, 6, 9], [5, 7, 10], [6, 8, 11], [6, 8, 13], [7, 10, 14],
                                    [8, 11, 16], [9, 12, 18], [10, 13, 20], [11, 15, 23], [13, 17, 25]], np.int32)
"""tC0 by indexA and bS − 1 (Table 8-17)."""
CHROMA_QP = np.array(list(range(30)) + [29, 30, 31, 32, 32, 33, 34, 34, 35, 35, 36, 36, 37, 37, 37, 38, 38, 38, 39,
                                        39, 39, 39], np.int32)
"""QPc by qPI (Table 8-15)."""


@njit(**JIT)
def _far(a0x, a0y, b0x, b0y):
    return abs(a0x - b0x) >= 4 or abs(a0y - b0y) >= 4


@njit(**JIT)
def boundary_strength(intra_p, intra_q, mb_edge, nnz_p, nnz_q, ref_p, ref_q, mv_p, mv_q):
    """bS of one 4×4 edge segment; ref_* = (list-0 picture, list-1 picture), −1 = unused; mv_* = (x0, y0, x1, y1)."""
    if intra_p or intra_q:
        return 4 if mb_edge else 3
    if nnz_p or nnz_q:
        return 2
    count_p = int(ref_p[0] >= 0) + int(ref_p[1] >= 0)  # int(): numpy bools add as logical or in plain Python
    count_q = int(ref_q[0] >= 0) + int(ref_q[1] >= 0)
    if count_p != count_q:
        return 1
    if count_p == 1:
        kp = 0 if ref_p[0] >= 0 else 1
        kq = 0 if ref_q[0] >= 0 else 1
        if ref_p[kp] != ref_q[kq]:
            return 1
        return 1 if _far(mv_p[2 * kp], mv_p[2 * kp + 1], mv_q[2 * kq], mv_q[2 * kq + 1]) else 0
    if count_p == 0:
        return 0
    same_order = ref_p[0] == ref_q[0] and ref_p[1] == ref_q[1]
    swapped = ref_p[0] == ref_q[1] and ref_p[1] == ref_q[0]
    if not same_order and not swapped:
        return 1
    straight = _far(mv_p[0], mv_p[1], mv_q[0], mv_q[1]) or _far(mv_p[2], mv_p[3], mv_q[2], mv_q[3])
    crossed = _far(mv_p[0], mv_p[1], mv_q[2], mv_q[3]) or _far(mv_p[2], mv_p[3], mv_q[0], mv_q[1])
    if ref_p[0] != ref_p[1]:  # two different pictures: compare the vectors that point into the same one
        return 1 if (straight if same_order else crossed) else 0
    return 1 if straight and crossed else 0


@njit(**JIT)
def _filter_edge(plane, y0, x0, n, seg_shift, dy, dx, bs, alpha, beta, index_a, chroma):
    # The n lines of samples across one edge (one call per edge, not per line): line k has q0 at
    # (y0 + k·dx, x0 + k·dy) and p0 one step back along (dy, dx); bS of line k is bs[k >> seg_shift].
    for k in range(n):
        b = bs[k >> seg_shift]
        if b == 0:
            continue
        tc0 = TC0[index_a, b - 1] if b < 4 else 0
        yq = y0 + k * dx
        xq = x0 + k * dy
        p0 = np.int32(plane[yq - dy, xq - dx])
        q0 = np.int32(plane[yq, xq])
        p1 = np.int32(plane[yq - 2 * dy, xq - 2 * dx])
        q1 = np.int32(plane[yq + dy, xq + dx])
        if not (abs(p0 - q0) < alpha and abs(p1 - p0) < beta and abs(q1 - q0) < beta):
            continue
        if chroma:
            if b < 4:
                tc = tc0 + 1
                delta = min(max((((q0 - p0) << 2) + (p1 - q1) + 4) >> 3, -tc), tc)
                plane[yq - dy, xq - dx] = min(max(p0 + delta, 0), 255)
                plane[yq, xq] = min(max(q0 - delta, 0), 255)
            else:
                plane[yq - dy, xq - dx] = (2 * p1 + p0 + q1 + 2) >> 2
                plane[yq, xq] = (2 * q1 + q0 + p1 + 2) >> 2
            continue
        p2 = np.int32(plane[yq - 3 * dy, xq - 3 * dx])
        q2 = np.int32(plane[yq + 2 * dy, xq + 2 * dx])
        ap = abs(p2 - p0)
        aq = abs(q2 - q0)
        if b < 4:
            tc = tc0
            if ap < beta:
                plane[yq - 2 * dy, xq - 2 * dx] = p1 + min(max((p2 + ((p0 + q0 + 1) >> 1) - (p1 << 1)) >> 1, -tc0),
                                                           tc0)
                tc += 1
            if aq < beta:
                plane[yq + dy, xq + dx] = q1 + min(max((q2 + ((p0 + q0 + 1) >> 1) - (q1 << 1)) >> 1, -tc0), tc0)
                tc += 1
            delta = min(max((((q0 - p0) << 2) + (p1 - q1) + 4) >> 3, -tc), tc)
            plane[yq - dy, xq - dx] = min(max(p0 + delta, 0), 255)
            plane[yq, xq] = min(max(q0 - delta, 0), 255)
            continue
        strong = abs(p0 - q0) < ((alpha >> 2) + 2)
        if strong and ap < beta:
            p3 = np.int32(plane[yq - 4 * dy, xq - 4 * dx])
            plane[yq - dy, xq - dx] = (p2 + 2 * p1 + 2 * p0 + 2 * q0 + q1 + 4) >> 3
            plane[yq - 2 * dy, xq - 2 * dx] = (p2 + p1 + p0 + q0 + 2) >> 2
            plane[yq - 3 * dy, xq - 3 * dx] = (2 * p3 + 3 * p2 + p1 + p0 + q0 + 4) >> 3
        else:
            plane[yq - dy, xq - dx] = (2 * p1 + p0 + q1 + 2) >> 2
        if strong and aq < beta:
            q3 = np.int32(plane[yq + 3 * dy, xq + 3 * dx])
            plane[yq, xq] = (p1 + 2 * p0 + 2 * q0 + 2 * q1 + q2 + 4) >> 3
            plane[yq + dy, xq + dx] = (p0 + q0 + q1 + q2 + 2) >> 2
            plane[yq + 2 * dy, xq + 2 * dx] = (2 * q3 + 3 * q2 + q1 + q0 + p0 + 4) >> 3
        else:
            plane[yq, xq] = (2 * q1 + q0 + p1 + 2) >> 2


@njit(**JIT)
def _deblock_kernel(y, u, v, intra, nnz, refs, mvs, qp, chroma_qp_offset, alpha_offset, beta_offset, chroma):
    mb_rows, mb_cols = intra.shape
    bs = np.zeros(4, np.int32)
    for my in range(mb_rows):
        for mx in range(mb_cols):
            for direction in range(2):  # 0: vertical edges (filter across x), 1: horizontal edges
                for edge in range(4):
                    if edge == 0 and (mx == 0 if direction == 0 else my == 0):
                        continue
                    # The 4 segments' bS, between 4×4 blocks p (before the edge) and q.
                    for seg in range(4):
                        if direction == 0:
                            qy, qx = 4 * my + seg, 4 * mx + edge
                            py, px = qy, qx - 1
                        else:
                            qy, qx = 4 * my + edge, 4 * mx + seg
                            py, px = qy - 1, qx
                        ip, iq = intra[py >> 2, px >> 2], intra[qy >> 2, qx >> 2]
                        if not ip and not iq and not nnz[py, px] and not nnz[qy, qx] \
                                and refs[py, px, 0] == refs[qy, qx, 0] and refs[py, px, 1] == refs[qy, qx, 1] \
                                and mvs[py, px, 0] == mvs[qy, qx, 0] and mvs[py, px, 1] == mvs[qy, qx, 1] \
                                and mvs[py, px, 2] == mvs[qy, qx, 2] and mvs[py, px, 3] == mvs[qy, qx, 3]:
                            bs[seg] = 0  # same motion, no coefficients: bS 0 without the full rule (the common case)
                        else:
                            bs[seg] = boundary_strength(ip, iq, edge == 0, nnz[py, px], nnz[qy, qx], refs[py, px],
                                                        refs[qy, qx], mvs[py, px], mvs[qy, qx])
                    if bs[0] == 0 and bs[1] == 0 and bs[2] == 0 and bs[3] == 0:
                        continue
                    if edge == 0:
                        nq = qp[my, mx - 1] if direction == 0 else qp[my - 1, mx]
                    else:
                        nq = qp[my, mx]
                    qy_av = (qp[my, mx] + nq + 1) >> 1
                    index_a = min(max(qy_av + alpha_offset, 0), 51)
                    index_b = min(max(qy_av + beta_offset, 0), 51)
                    alpha, beta = ALPHA[index_a], BETA[index_b]
                    dy, dx = (0, 1) if direction == 0 else (1, 0)
                    _filter_edge(y, 16 * my + (0 if direction == 0 else 4 * edge),
                                 16 * mx + (4 * edge if direction == 0 else 0), 16, 2, dy, dx, bs, alpha, beta,
                                 index_a, False)
                    if edge & 1 or not chroma:
                        continue  # chroma 4×4 edges sit on luma edges 0 and 2 (and chroma=False skips chroma)
                    qc = CHROMA_QP[min(max(qp[my, mx] + chroma_qp_offset, 0), 51)]
                    nc = CHROMA_QP[min(max(nq + chroma_qp_offset, 0), 51)]
                    qc_av = (qc + nc + 1) >> 1
                    index_a = min(max(qc_av + alpha_offset, 0), 51)
                    index_b = min(max(qc_av + beta_offset, 0), 51)
                    alpha, beta = ALPHA[index_a], BETA[index_b]
                    cy0 = 8 * my + (0 if direction == 0 else 2 * edge)
                    cx0 = 8 * mx + (2 * edge if direction == 0 else 0)
                    _filter_edge(u, cy0, cx0, 8, 1, dy, dx, bs, alpha, beta, index_a, True)
                    _filter_edge(v, cy0, cx0, 8, 1, dy, dx, bs, alpha, beta, index_a, True)


def deblock_picture(y, u, v, intra, nnz, refs, mvs, qp, *, chroma_qp_offset=0, alpha_offset=0, beta_offset=0,
                    chroma=True):
    """Deblock the uint8 planes y [H, W], u, v [H/2, W/2] in place.

    ``intra`` bool [H/16, W/16]; ``nnz`` bool [H/4, W/4] (luma 4×4 blocks with coefficients); ``refs`` int32
    [H/4, W/4, 2] (picture id per list, −1 = unused); ``mvs`` int32 [H/4, W/4, 4] quarter-sample (x0, y0, x1, y1);
    ``qp`` int32 [H/16, W/16] luma QP; offsets as in the PPS / slice header (``FilterOffsetA/B`` = 2 × the
    ``*_div2`` syntax elements). ``chroma=False`` filters luma only (u and v are left as they are).
    """
    height, width = y.shape
    if height % 16 or width % 16:
        raise ValueError(f"the luma plane must be whole macroblocks, got {width}×{height}.")
    mb = (height // 16, width // 16)
    blocks = (height // 4, width // 4)
    check_array("y", y, np.uint8, shape=(height, width))
    check_array("u", u, np.uint8, shape=(height // 2, width // 2))
    check_array("v", v, np.uint8, shape=(height // 2, width // 2))
    check_array("intra", intra, np.bool_, shape=mb)
    check_array("nnz", nnz, np.bool_, shape=blocks)
    check_array("refs", refs, np.int32, shape=blocks + (2,))
    check_array("mvs", mvs, np.int32, shape=blocks + (4,))
    check_array("qp", qp, np.int32, shape=mb)
    if qp.size and (qp.min() < 0 or qp.max() > 51):
        raise ValueError(f"qp must lie in [0, 51], got {qp.min()}..{qp.max()}.")
    _deblock_kernel(y, u, v, intra, nnz, refs, mvs, qp, int(chroma_qp_offset), int(alpha_offset), int(beta_offset),
                    bool(chroma))


@njit(**JIT)
def _block_motion_kernel(parts, choice, l0_ids, l1_ids, refs, mvs):
    for p in range(parts.shape[0]):
        kind = choice[p, 0]
        if kind < 0:
            continue
        x0, y0, w, h = parts[p, 0] >> 2, parts[p, 1] >> 2, parts[p, 2] >> 2, parts[p, 3] >> 2
        for by in range(y0, y0 + h):
            for bx in range(x0, x0 + w):
                if kind != 1:
                    refs[by, bx, 0] = l0_ids[choice[p, 1]]
                    mvs[by, bx, 0] = parts[p, 5]
                    mvs[by, bx, 1] = parts[p, 6]
                if kind != 0:
                    refs[by, bx, 1] = l1_ids[choice[p, 2]]
                    mvs[by, bx, 2] = parts[p, 8]
                    mvs[by, bx, 3] = parts[p, 9]


def block_motion(parts, choice, l0_ids, l1_ids, height, width):
    """Per luma 4×4 block: int32 refs [H/4, W/4, 2] (picture id per list, −1 unused) and mvs [H/4, W/4, 4].

    ``parts``/``choice``: the partition table and the choices of ``h264_emulate.emulate_inter`` (kind and list
    positions); ``l0_ids``/``l1_ids`` (int32): the picture id behind each list position.
    """
    check_array("parts", parts, np.int32, shape=(None, 10))
    check_array("choice", choice, np.int32, shape=(parts.shape[0], 3))
    check_array("l0_ids", l0_ids, np.int32, ndim=1)
    check_array("l1_ids", l1_ids, np.int32, ndim=1)
    refs = np.full((height // 4, width // 4, 2), -1, np.int32)
    mvs = np.zeros((height // 4, width // 4, 4), np.int32)
    used = choice[:, 0] >= 0
    if used.any():
        kinds = choice[used, 0]
        if ((kinds != 1) & (choice[used, 1] >= max(len(l0_ids), 1))).any() or \
                ((kinds != 0) & (choice[used, 2] >= max(len(l1_ids), 1))).any() or \
                (((kinds != 1) & (len(l0_ids) == 0)) | ((kinds != 0) & (len(l1_ids) == 0))).any():
            raise ValueError("choice names a list position without a picture id.")
        p = parts[used]
        if (p[:, 0] < 0).any() or (p[:, 1] < 0).any() or (p[:, 0] + p[:, 2] > width).any() \
                or (p[:, 1] + p[:, 3] > height).any():
            raise ValueError("partitions must lie inside the picture.")
    _block_motion_kernel(parts, choice, l0_ids, l1_ids, refs, mvs)
    return refs, mvs
