"""Plain-NumPy twin of kernels/h264_deblock.py, written edge by edge from the standard (§8.7)."""

from __future__ import annotations

import numpy as np

ALPHA = [0] * 16 + [4, 4, 5, 6, 7, 8, 9, 10, 12, 13, 15, 17, 20, 22, 25, 28, 32, 36, 40, 45, 50, 56, 63, 71, 80, 90,
                    101, 113, 127, 144, 162, 182, 203, 226, 255, 255]
BETA = [0] * 16 + [2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15,
                   15, 16, 16, 17, 17, 18, 18]
TC0 = {1: [0] * 23 + [1] * 10 + [2] * 4 + [3] * 3 + [4] * 3 + [5, 6, 6, 7, 8, 9, 10, 11, 13],
       2: [0] * 21 + [1] * 10 + [2] * 4 + [3] * 3 + [4] * 2 + [5] * 2 + [6, 7, 8, 8, 10, 11, 12, 13, 15, 17],
       3: [0] * 17 + [1] * 10 + [2] * 4 + [3] * 3 + [4] * 3 + [5, 6, 6, 7, 8, 9, 10, 11, 13, 14, 16, 18, 20, 23, 25]}
QPC = list(range(30)) + [29, 30, 31, 32, 32, 33, 34, 34, 35, 35, 36, 36, 37, 37, 37, 38, 38, 38, 39, 39, 39, 39]


def naive_bs(intra_p, intra_q, mb_edge, nnz_p, nnz_q, ref_p, ref_q, mv_p, mv_q):
    if intra_p or intra_q:
        return 4 if mb_edge else 3
    if nnz_p or nnz_q:
        return 2
    used_p = [(r, tuple(mv_p[2 * k: 2 * k + 2])) for k, r in enumerate(ref_p) if r >= 0]
    used_q = [(r, tuple(mv_q[2 * k: 2 * k + 2])) for k, r in enumerate(ref_q) if r >= 0]
    if sorted(r for r, _ in used_p) != sorted(r for r, _ in used_q):
        return 1  # different pictures or a different number of vectors

    def far(a, b):
        return abs(a[0] - b[0]) >= 4 or abs(a[1] - b[1]) >= 4

    if len(used_p) <= 1:
        return int(bool(used_p) and far(used_p[0][1], used_q[0][1]))
    if used_p[0][0] != used_p[1][0]:
        by_pic = {r: mv for r, mv in used_q}
        return int(any(far(mv, by_pic[r]) for r, mv in used_p))
    (_, a0), (_, a1) = used_p
    (_, b0), (_, b1) = used_q
    return int((far(a0, b0) or far(a1, b1)) and (far(a0, b1) or far(a1, b0)))


def _filter(samples, bs, alpha, beta, tc0, chroma):
    """samples: p3 p2 p1 p0 q0 q1 q2 q3 (ints); returns the filtered eight."""
    p3, p2, p1, p0, q0, q1, q2, q3 = samples
    out = list(samples)
    if not (abs(p0 - q0) < alpha and abs(p1 - p0) < beta and abs(q1 - q0) < beta):
        return out
    ap, aq = abs(p2 - p0), abs(q2 - q0)
    if bs < 4:
        tc = tc0 + 1 if chroma else tc0 + (ap < beta) + (aq < beta)
        delta = int(np.clip((((q0 - p0) * 4) + (p1 - q1) + 4) >> 3, -tc, tc))
        out[3], out[4] = int(np.clip(p0 + delta, 0, 255)), int(np.clip(q0 - delta, 0, 255))
        if not chroma and ap < beta:
            out[2] = p1 + int(np.clip((p2 + ((p0 + q0 + 1) >> 1) - 2 * p1) >> 1, -tc0, tc0))
        if not chroma and aq < beta:
            out[5] = q1 + int(np.clip((q2 + ((p0 + q0 + 1) >> 1) - 2 * q1) >> 1, -tc0, tc0))
        return out
    strong = not chroma and abs(p0 - q0) < (alpha >> 2) + 2
    if strong and ap < beta:
        out[3] = (p2 + 2 * p1 + 2 * p0 + 2 * q0 + q1 + 4) >> 3
        out[2] = (p2 + p1 + p0 + q0 + 2) >> 2
        out[1] = (2 * p3 + 3 * p2 + p1 + p0 + q0 + 4) >> 3
    else:
        out[3] = (2 * p1 + p0 + q1 + 2) >> 2
    if strong and aq < beta:
        out[4] = (p1 + 2 * p0 + 2 * q0 + 2 * q1 + q2 + 4) >> 3
        out[5] = (p0 + q0 + q1 + q2 + 2) >> 2
        out[6] = (2 * q3 + 3 * q2 + q1 + q0 + p0 + 4) >> 3
    else:
        out[4] = (2 * q1 + q0 + p1 + 2) >> 2
    return out


def _edge(plane, lines, bs_of_line, qp_av, alpha_offset, beta_offset, chroma):
    ia, ib = int(np.clip(qp_av + alpha_offset, 0, 51)), int(np.clip(qp_av + beta_offset, 0, 51))
    for k, idx in enumerate(lines):  # idx: the 8 sample positions p3..q3 of one line
        bs = bs_of_line(k)
        if bs == 0:
            continue
        vals = [int(plane[i]) for i in idx]
        new = _filter(vals, bs, ALPHA[ia], BETA[ib], TC0[bs][ia] if bs < 4 else 0, chroma)
        for i, val in zip(idx, new):
            plane[i] = val


def naive_deblock(y, u, v, intra, nnz, refs, mvs, qp, chroma_qp_offset=0, alpha_offset=0, beta_offset=0):
    mb_rows, mb_cols = intra.shape

    def clamp(i, n):  # positions beyond the picture never get used (edge pixels are only read across an edge)
        return min(max(i, 0), n - 1)

    for my in range(mb_rows):
        for mx in range(mb_cols):
            for vertical in (True, False):
                for e in range(4):
                    if e == 0 and (mx == 0 if vertical else my == 0):
                        continue
                    bs = []
                    for s in range(4):
                        q = (4 * my + s, 4 * mx + e) if vertical else (4 * my + e, 4 * mx + s)
                        p = (q[0], q[1] - 1) if vertical else (q[0] - 1, q[1])
                        bs.append(naive_bs(intra[p[0] // 4, p[1] // 4], intra[q[0] // 4, q[1] // 4], e == 0,
                                           nnz[p], nnz[q], refs[p], refs[q], mvs[p], mvs[q]))
                    nq = (qp[my, mx - 1] if vertical else qp[my - 1, mx]) if e == 0 else qp[my, mx]
                    for plane, size, edge_pos, chroma in ((y, 16, 4 * e, False), (u, 8, 2 * e, True),
                                                          (v, 8, 2 * e, True)):
                        if chroma and e % 2:
                            continue
                        if chroma:
                            qa = (QPC[int(np.clip(qp[my, mx] + chroma_qp_offset, 0, 51))]
                                  + QPC[int(np.clip(nq + chroma_qp_offset, 0, 51))] + 1) >> 1
                        else:
                            qa = (int(qp[my, mx]) + int(nq) + 1) >> 1
                        lines = []
                        for k in range(size):
                            if vertical:
                                row, col = size * my + k, size * mx + edge_pos
                                lines.append([(row, clamp(col + d, plane.shape[1])) for d in range(-4, 4)])
                            else:
                                row, col = size * my + edge_pos, size * mx + k
                                lines.append([(clamp(row + d, plane.shape[0]), col) for d in range(-4, 4)])
                        per = 4 if size == 16 else 2
                        _edge(plane, lines, lambda k, bs=bs, per=per: bs[k // per], qa, alpha_offset, beta_offset,
                              chroma)


def naive_block_motion(parts, choice, l0_ids, l1_ids, height, width):
    refs = np.full((height // 4, width // 4, 2), -1, np.int32)
    mvs = np.zeros((height // 4, width // 4, 4), np.int32)
    for (x0, y0, w, h, _, m0x, m0y, _, m1x, m1y), (kind, i0, i1) in zip(parts.tolist(), choice.tolist()):
        block = np.s_[y0 // 4: (y0 + h) // 4, x0 // 4: (x0 + w) // 4]
        if kind in (0, 2):
            refs[block + (0,)] = l0_ids[i0]
            mvs[block + (slice(0, 2),)] = (m0x, m0y)
        if kind in (1, 2):
            refs[block + (1,)] = l1_ids[i1]
            mvs[block + (slice(2, 4),)] = (m1x, m1y)
    return refs, mvs
