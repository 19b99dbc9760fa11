"""Plain-NumPy twins of kernels/h264_emulate.py, built on the predictors of naive_h264.py."""

from __future__ import annotations

import numpy as np
from naive_h264 import (
    naive_bipred,
    naive_chroma,
    naive_chroma8x8,
    naive_intra4x4,
    naive_intra4x4_valid,
    naive_intra16x16,
    naive_luma,
    naive_weight,
)

DECODE_ORDER = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (3, 0), (2, 1), (3, 1),
                (0, 2), (1, 2), (0, 3), (1, 3), (2, 2), (3, 2), (2, 3), (3, 3)]  # (bx, by) by decoding index


def _sad(a, b):
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).sum())


def _blocks(cur, pred, emu_pred, x0, y0, threshold, out, coded=None):
    h, w = pred.shape
    for by in range(0, h, 4):
        for bx in range(0, w, 4):
            c = cur[y0 + by: y0 + by + 4, x0 + bx: x0 + bx + 4].astype(np.int64)
            p = pred[by: by + 4, bx: bx + 4].astype(np.int64)
            if np.abs(c - p).sum() > threshold:
                if coded is not None:
                    coded[(y0 + by) // 4, (x0 + bx) // 4] = True
                val = np.clip(128 + c - p, 0, 255)
            else:
                val = emu_pred()[by: by + 4, bx: bx + 4]
            out[y0 + by: y0 + by + 4, x0 + bx: x0 + bx + 4] = val


def naive_emulate_inter(cur, true, emu, parts, l0, l1, weights, luma_threshold, chroma_threshold, out,
                        explicit=None, log2=(0, 0), coded=None):
    """cur/true/emu/out: (Y, U, V) tuples (true/emu of rings). Returns covered, choice like the kernel."""
    if explicit is None:
        explicit = np.tile([1, 0, 1, 0, 1, 0], (max(len(l0), 1), 1))
    height, width = cur[0].shape
    covered = np.zeros((height // 16, width // 16), bool)
    choice = np.zeros((len(parts), 3), np.int32)
    for p, (x0, y0, w, h, u0, m0x, m0y, u1, m1x, m1y) in enumerate(parts.tolist()):
        covered[y0 // 16: (y0 + h + 15) // 16, x0 // 16: (x0 + w + 15) // 16] = True
        use0, use1 = bool(u0) and len(l0) > 0, bool(u1) and len(l1) > 0
        if not use0 and not use1:
            choice[p, 0] = -1
            continue
        target = cur[0][y0: y0 + h, x0: x0 + w]
        c0 = [naive_luma(true[0][s], x0, y0, w, h, m0x, m0y) for s in l0] if use0 else []
        c1 = [naive_luma(true[0][s], x0, y0, w, h, m1x, m1y) for s in l1] if use1 else []
        cands = []  # (sad, kind, i, j) in the kernel's order
        if use0 and use1:
            cands += [(_sad(naive_bipred(c0[i], c1[j], *weights[i, j]), target), 2, i, j)
                      for i in range(len(l0)) for j in range(len(l1))]
        if use0 and (not use1 or (m1x == 0 and m1y == 0)):
            cands += [(_sad(naive_weight(c0[i], explicit[i][0], explicit[i][1], log2[0]), target), 0, i, 0)
                      for i in range(len(l0))]
        if use1 and (not use0 or (m0x == 0 and m0y == 0)):
            cands += [(_sad(c1[j], target), 1, 0, j) for j in range(len(l1))]
        best = min(range(len(cands)), key=lambda k: (cands[k][0], k))
        _, kind, bi, bj = cands[best]
        i0, i1 = _last_index(cands, best, 0), _last_index(cands, best, 1)
        s0 = int(l0[i0]) if len(l0) else 0
        s1 = int(l1[i1]) if len(l1) else 0
        wt = weights[bi, bj] if kind == 2 else (32, 32)
        choice[p] = (kind, i0, i1)
        for c, (plane, predict, thr) in enumerate(((0, naive_luma, luma_threshold), (1, naive_chroma, chroma_threshold),
                                                  (2, naive_chroma, chroma_threshold))):
            sc = 0 if c == 0 else 1
            bx0, by0, bw, bh = x0 >> sc, y0 >> sc, w >> sc, h >> sc

            def pred_from(ring, plane=plane, predict=predict, bx0=bx0, by0=by0, bw=bw, bh=bh, s0=s0, s1=s1, m0x=m0x,
                          m0y=m0y, m1x=m1x, m1y=m1y, i0=i0, kind=kind, wt=wt):
                a = predict(ring[plane][s0], bx0, by0, bw, bh, m0x, m0y)
                b = predict(ring[plane][s1], bx0, by0, bw, bh, m1x, m1y)
                ew, eo = explicit[i0][2 * plane], explicit[i0][2 * plane + 1]
                return naive_weight(a, ew, eo, log2[min(plane, 1)]) if kind == 0 else b if kind == 1 \
                    else naive_bipred(a, b, *wt)

            _blocks(cur[plane], pred_from(true), lambda pf=pred_from: pf(emu), bx0, by0, thr, out[plane],
                    coded if plane == 0 else None)
    return covered, choice


def _last_index(cands, best, which):
    # The kernel updates bi only on L0/bi wins and bj only on L1/bi wins: the index a list keeps is the one of the
    # last strict improvement that set it, up to and including the winner.
    running, idx = None, 0
    for k, (sad, kind, i, j) in enumerate(cands[: best + 1]):
        if running is None or sad < running:
            running = sad
            if which == 0 and kind in (0, 2):
                idx = i
            if which == 1 and kind in (1, 2):
                idx = j
    return idx


def naive_emulate_intra(cur, covered, luma_threshold, chroma_threshold, i16_bias, out, coded=None):
    mb_rows, mb_cols = covered.shape
    kinds = np.zeros(covered.shape, np.int32)
    for my in range(mb_rows):
        for mx in range(mb_cols):
            if covered[my, mx]:
                continue
            x, y, top, left = 16 * mx, 16 * my, my > 0, mx > 0
            target = cur[0][y: y + 16, x: x + 16]
            valid16 = [m for m in range(4) if (m != 0 or top) and (m != 1 or left) and (m != 3 or (top and left))]
            mode16 = min(valid16, key=lambda m: (_sad(naive_intra16x16(cur[0], x, y, m, top, left), target), m))
            best16 = _sad(naive_intra16x16(cur[0], x, y, mode16, top, left), target)
            modes4, total4 = [], 0
            for bx, by in DECODE_ORDER:
                px, py = x + 4 * bx, y + 4 * by
                args = py > 0, px > 0, _topright(bx, by, mx, my, mb_cols)
                t4 = cur[0][py: py + 4, px: px + 4]
                valid = [m for m in range(9) if naive_intra4x4_valid(m, args[0], args[1])]
                m4 = min(valid, key=lambda m: (_sad(naive_intra4x4(cur[0], px, py, m, *args), t4), m))
                modes4.append(m4)
                total4 += _sad(naive_intra4x4(cur[0], px, py, m4, *args), t4)
            if best16 <= total4 + i16_bias:
                kinds[my, mx] = 16
                true16 = naive_intra16x16(cur[0], x, y, mode16, top, left)
                emu16 = naive_intra16x16(out[0], x, y, mode16, top, left)
                _blocks(cur[0], true16, lambda e=emu16: e, x, y, luma_threshold, out[0], coded)
            else:
                kinds[my, mx] = 4
                for k, (bx, by) in enumerate(DECODE_ORDER):
                    px, py = x + 4 * bx, y + 4 * by
                    args = py > 0, px > 0, _topright(bx, by, mx, my, mb_cols)
                    t = naive_intra4x4(cur[0], px, py, modes4[k], *args)
                    e = naive_intra4x4(out[0], px, py, modes4[k], *args)
                    _blocks(cur[0], t, lambda e=e: e, px, py, luma_threshold, out[0], coded)
            cx, cy = 8 * mx, 8 * my
            valid8 = [m for m in range(4) if (m != 1 or left) and (m != 2 or top) and (m != 3 or (top and left))]
            mode8 = min(valid8, key=lambda m: (sum(_sad(naive_chroma8x8(cur[c], cx, cy, m, top, left),
                                                        cur[c][cy: cy + 8, cx: cx + 8]) for c in (1, 2)), m))
            for c in (1, 2):
                t = naive_chroma8x8(cur[c], cx, cy, mode8, top, left)
                e = naive_chroma8x8(out[c], cx, cy, mode8, top, left)
                _blocks(cur[c], t, lambda e=e: e, cx, cy, chroma_threshold, out[c])
    return kinds


def _topright(bx, by, mx, my, mb_cols):
    if by == 0:
        return my > 0 and (bx < 3 or mx + 1 < mb_cols)
    if bx == 3:
        return False
    order = {b: k for k, b in enumerate(DECODE_ORDER)}
    return order[(bx + 1, by - 1)] < order[(bx, by)]
