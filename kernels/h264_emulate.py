"""Emulate one picture of a "patched" H.264 decoder from a stock decode (see codec_select/recipes/emulate.py for why).

The patched decoder writes ``clip(128 + residual)`` for every 4×4 block that carries coefficients and leaves the
prediction in place elsewhere, the prediction being formed from earlier *patched* pictures (inter) or from
already patched neighbours (intra). Stock FFmpeg gives the true pictures and one vector per partition, so per
block we rebuild:

* the true prediction (from the true reference pictures) and the true residual ``r = Y − prediction``;
* "coded" ⇔ ``Σ|r|`` over the 4×4 block exceeds a threshold (no coefficients: r = 0 up to deblocking);
* coded → ``clip(128 + r)``; not coded → the same prediction formed from the emulated pictures instead.

Two kernels: :func:`emulate_inter` for the partitions that carry vectors (it also picks the reference picture(s)
that predict best: the exporter does not say which) and :func:`emulate_intra` for the macroblocks without one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array
from .h264_inter import bipred_into, chroma_mc_into, luma_mc_scratch_into, sad_bounded, sad_region, weight_into
from .h264_intra import (
    block4x4_position,
    chroma8x8_into,
    chroma8x8_valid,
    intra4x4_edges,
    intra4x4_from_edges,
    intra4x4_valid,
    intra16x16_into,
    intra16x16_valid,
    topright_available,
)

__all__ = ["PART_FIELDS", "emulate_inter", "emulate_intra"]

PART_FIELDS = ("x0", "y0", "w", "h", "use0", "mv0x", "mv0y", "use1", "mv1x", "mv1y")
"""Columns of the int32 partition table: top-left and size (luma px), per list a use flag and quarter-pel vector."""

_KIND_L0, _KIND_L1, _KIND_BI = 0, 1, 2


@njit(**JIT)
def _predict(ring, chroma, x0, y0, w, h, kind, s0, s1, mv0x, mv0y, mv1x, mv1y, wt0, wt1, tmp0, tmp1, out,
             ew, eo, elog2, win, hb):
    # One prediction (uni L0 with explicit weight ew/eo/elog2, uni L1, or implicit-weighted bi) into out[:h, :w].
    if kind != _KIND_L1:
        dst = out if kind == _KIND_L0 else tmp0
        if chroma:
            chroma_mc_into(ring[s0], x0, y0, w, h, mv0x, mv0y, dst, 0, 0)
        else:
            luma_mc_scratch_into(ring[s0], x0, y0, w, h, mv0x, mv0y, dst, 0, 0, win, hb)
    if kind != _KIND_L0:
        dst = out if kind == _KIND_L1 else tmp1
        if chroma:
            chroma_mc_into(ring[s1], x0, y0, w, h, mv1x, mv1y, dst, 0, 0)
        else:
            luma_mc_scratch_into(ring[s1], x0, y0, w, h, mv1x, mv1y, dst, 0, 0, win, hb)
    if kind == _KIND_BI:
        bipred_into(tmp0, tmp1, wt0, wt1, h, w, out)
    elif kind == _KIND_L0:
        weight_into(out, h, w, ew, eo, elog2)


@njit(**JIT)
def _write_blocks(cur, true_pred, emu_ring, chroma, x0, y0, w, h, kind, s0, s1, mv0x, mv0y, mv1x, mv1y, wt0, wt1,
                  threshold, tmp0, tmp1, emu_pred, out, ew, eo, elog2, coded, mark, win, hb):
    # Per 4×4 block of the partition: coded → 128 + residual, else the prediction from the emulated references.
    # ``mark``: record coded blocks in ``coded`` (luma only; the loop filter's bS reads luma coefficients).
    have_emu = False
    for by in range(0, h, 4):
        for bx in range(0, w, 4):
            sad = 0  # the 4×4 SAD, written out: a call per block costs more than the sum
            for yy in range(4):
                for xx in range(4):
                    d = np.int32(true_pred[by + yy, bx + xx]) - np.int32(cur[y0 + by + yy, x0 + bx + xx])
                    sad += d if d >= 0 else -d
            if sad > threshold:
                if mark:
                    coded[(y0 + by) >> 2, (x0 + bx) >> 2] = True
                for yy in range(4):
                    for xx in range(4):
                        v = 128 + np.int32(cur[y0 + by + yy, x0 + bx + xx]) - np.int32(true_pred[by + yy, bx + xx])
                        out[y0 + by + yy, x0 + bx + xx] = 0 if v < 0 else (min(v, 255))
            else:
                if not have_emu:
                    _predict(emu_ring, chroma, x0, y0, w, h, kind, s0, s1, mv0x, mv0y, mv1x, mv1y, wt0, wt1,
                             tmp0, tmp1, emu_pred, ew, eo, elog2, win, hb)
                    have_emu = True
                for yy in range(4):
                    for xx in range(4):
                        out[y0 + by + yy, x0 + bx + xx] = emu_pred[by + yy, bx + xx]


@njit(**JIT)
def _first_alias(slots, alias):
    # alias[i]: the first list position holding the same picture as position i (x264 lists one picture twice, the
    # second copy with an explicit weight), so its unweighted prediction is formed once.
    for i in range(slots.shape[0]):
        alias[i] = i
        for k in range(i):
            if slots[k] == slots[i]:
                alias[i] = k
                break


@njit(**JIT)
def _emulate_inter_kernel(cur_y, cur_u, cur_v, true_y, true_u, true_v, emu_y, emu_u, emu_v, parts, l0_slots,
                          l1_slots, weights, l0_explicit, log2_denoms, luma_threshold, chroma_threshold, out_y, out_u,
                          out_v, covered, choice, coded, chroma):
    n0 = l0_slots.shape[0]
    n1 = l1_slots.shape[0]
    cand0 = np.zeros((max(n0, 1), 16, 16), np.uint8)  # list-0 predictions, unweighted, at their alias position
    wcand0 = np.zeros((max(n0, 1), 16, 16), np.uint8)  # the same with the entry's explicit weight (uni-prediction)
    cand1 = np.zeros((max(n1, 1), 16, 16), np.uint8)
    done0 = np.zeros(max(n0, 1), np.bool_)  # cand0[k] formed for the current partition
    done1 = np.zeros(max(n1, 1), np.bool_)
    alias0 = np.zeros(max(n0, 1), np.int64)
    alias1 = np.zeros(max(n1, 1), np.int64)
    _first_alias(l0_slots, alias0)
    _first_alias(l1_slots, alias1)
    identity0 = np.zeros(max(n0, 1), np.bool_)  # explicit luma weight of the entry is the identity
    for i in range(n0):
        identity0[i] = l0_explicit[i, 0] == (1 << log2_denoms[0]) and l0_explicit[i, 1] == 0
    pred = np.zeros((16, 16), np.uint8)
    emu_pred = np.zeros((16, 16), np.uint8)
    tmp0 = np.zeros((16, 16), np.uint8)
    tmp1 = np.zeros((16, 16), np.uint8)
    win = np.zeros((21, 21), np.uint8)
    hb = np.zeros((21, 16), np.int32)
    for p in range(parts.shape[0]):
        x0, y0, w, h = parts[p, 0], parts[p, 1], parts[p, 2], parts[p, 3]
        use0 = parts[p, 4] != 0 and n0 > 0
        use1 = parts[p, 7] != 0 and n1 > 0
        mv0x, mv0y, mv1x, mv1y = parts[p, 5], parts[p, 6], parts[p, 8], parts[p, 9]
        for my in range(y0 >> 4, (y0 + h + 15) >> 4):
            for mx in range(x0 >> 4, (x0 + w + 15) >> 4):
                covered[my, mx] = True
        if not use0 and not use1:
            choice[p, 0] = -1
            continue
        # Candidates nearest-first; a later one must be strictly better (ties keep the nearest reference), so the
        # search stops at the first exact match and a candidate's SAD stops once it cannot win. Predictions are
        # formed on first use (once per picture) and kept: the winner's is the true prediction below.
        for i in range(n0):
            done0[i] = False
        for j in range(n1):
            done1[j] = False
        best = np.int64(1) << 60
        kind, bi, bj = _KIND_L0, 0, 0
        if use0 and use1:
            for i in range(n0):
                if best == 0:
                    break
                a = alias0[i]
                if not done0[a]:
                    luma_mc_scratch_into(true_y[l0_slots[a]], x0, y0, w, h, mv0x, mv0y, cand0[a], 0, 0, win, hb)
                    done0[a] = True
                for j in range(n1):
                    b = alias1[j]
                    if not done1[b]:
                        luma_mc_scratch_into(true_y[l1_slots[b]], x0, y0, w, h, mv1x, mv1y, cand1[b], 0, 0, win, hb)
                        done1[b] = True
                    bipred_into(cand0[a], cand1[b], weights[i, j, 0], weights[i, j, 1], h, w, pred)
                    s = sad_bounded(pred, 0, 0, cur_y, y0, x0, h, w, best)
                    if s < best:
                        best, kind, bi, bj = s, _KIND_BI, i, j
                        if s == 0:
                            break
        # A list the macroblock uses but this partition does not is exported as a zero vector (the exporter works
        # per macroblock), so a zero vector beside a real one may be a partition that is uni-predicted.
        if use0 and (not use1 or (mv1x == 0 and mv1y == 0)):
            for i in range(n0):
                if best == 0:
                    break
                a = alias0[i]
                if not done0[a]:
                    luma_mc_scratch_into(true_y[l0_slots[a]], x0, y0, w, h, mv0x, mv0y, cand0[a], 0, 0, win, hb)
                    done0[a] = True
                if identity0[i]:
                    s = sad_bounded(cand0[a], 0, 0, cur_y, y0, x0, h, w, best)
                else:  # uni-prediction carries the explicit weight (bi-prediction uses implicit ones)
                    for yy in range(h):
                        for xx in range(w):
                            wcand0[i, yy, xx] = cand0[a, yy, xx]
                    weight_into(wcand0[i], h, w, l0_explicit[i, 0], l0_explicit[i, 1], log2_denoms[0])
                    s = sad_bounded(wcand0[i], 0, 0, cur_y, y0, x0, h, w, best)
                if s < best:
                    best, kind, bi = s, _KIND_L0, i
        if use1 and (not use0 or (mv0x == 0 and mv0y == 0)):
            for j in range(n1):
                if best == 0:
                    break
                b = alias1[j]
                if not done1[b]:
                    luma_mc_scratch_into(true_y[l1_slots[b]], x0, y0, w, h, mv1x, mv1y, cand1[b], 0, 0, win, hb)
                    done1[b] = True
                s = sad_bounded(cand1[b], 0, 0, cur_y, y0, x0, h, w, best)
                if s < best:
                    best, kind, bj = s, _KIND_L1, j
        s0 = l0_slots[bi] if n0 > 0 else 0
        s1 = l1_slots[bj] if n1 > 0 else 0
        wt0 = weights[bi, bj, 0] if kind == _KIND_BI else 32
        wt1 = weights[bi, bj, 1] if kind == _KIND_BI else 32
        choice[p, 0] = kind
        choice[p, 1] = bi
        choice[p, 2] = bj
        ew, eo = l0_explicit[bi, 0], l0_explicit[bi, 1]
        if kind == _KIND_BI:
            bipred_into(cand0[alias0[bi]], cand1[alias1[bj]], wt0, wt1, h, w, pred)
            true_pred = pred
        elif kind == _KIND_L0:
            true_pred = cand0[alias0[bi]] if identity0[bi] else wcand0[bi]
        else:
            true_pred = cand1[alias1[bj]]
        _write_blocks(cur_y, true_pred, emu_y, False, x0, y0, w, h, kind, s0, s1, mv0x, mv0y, mv1x, mv1y, wt0, wt1,
                      luma_threshold, tmp0, tmp1, emu_pred, out_y, ew, eo, log2_denoms[0], coded, True, win, hb)
        cx, cy, cw, ch = x0 >> 1, y0 >> 1, w >> 1, h >> 1
        for c in range(2 if chroma else 0):
            cur_c = cur_u if c == 0 else cur_v
            true_c = true_u if c == 0 else true_v
            emu_c = emu_u if c == 0 else emu_v
            out_c = out_u if c == 0 else out_v
            ew, eo = l0_explicit[bi, 2 + 2 * c], l0_explicit[bi, 3 + 2 * c]
            _predict(true_c, True, cx, cy, cw, ch, kind, s0, s1, mv0x, mv0y, mv1x, mv1y, wt0, wt1, tmp0, tmp1, pred,
                     ew, eo, log2_denoms[1], win, hb)
            _write_blocks(cur_c, pred, emu_c, True, cx, cy, cw, ch, kind, s0, s1, mv0x, mv0y, mv1x, mv1y, wt0, wt1,
                          chroma_threshold, tmp0, tmp1, emu_pred, out_c, ew, eo, log2_denoms[1], coded, False, win, hb)


def emulate_inter(cur_y, cur_u, cur_v, true_y, true_u, true_v, emu_y, emu_u, emu_v, parts, l0_slots, l1_slots,
                  weights, luma_threshold, chroma_threshold, out_y, out_u, out_v, l0_explicit=None, log2_denoms=None,
                  coded=None, chroma=True):
    """Emulate every partition of ``parts`` (int32 [n, 10], columns :data:`PART_FIELDS`) into out_y/u/v.

    ``true_*``/``emu_*`` are rings ([slots, H, W] / [slots, H/2, W/2], uint8) of the true and emulated reference
    pictures; ``l0_slots``/``l1_slots`` (int64) list the ring slots each list may use, nearest first;
    ``weights`` (int32 [n0, n1, 2]) the bi-prediction weights of each pair; ``l0_explicit`` (int32 [n0, 6]: luma
    weight, offset, Cb weight, offset, Cr weight, offset) with ``log2_denoms`` (int32 [2]: luma, chroma) the
    explicit weights of list-0 uni-prediction (default: none). ``coded`` (bool [H/4, W/4], optional) receives
    True for each luma 4×4 block found coded. ``chroma=False`` leaves out_u/out_v untouched (the luma result does
    not depend on chroma: a caller that reads only luma skips a third of the work). Luma must be whole macroblocks.
    Returns ``covered`` (bool [H/16, W/16]: macroblocks that carry a vector) and ``choice`` (int32 [n, 3]: kind
    0 L0 / 1 L1 / 2 bi / −1 none, and the chosen positions in ``l0_slots`` and ``l1_slots``).
    """
    height, width = cur_y.shape
    if height % 16 or width % 16:
        raise ValueError(f"the luma plane must be whole macroblocks, got {width}×{height}.")
    for name, a, shape in (("cur_y", cur_y, (height, width)), ("cur_u", cur_u, (height // 2, width // 2)),
                           ("cur_v", cur_v, (height // 2, width // 2)), ("out_y", out_y, (height, width)),
                           ("out_u", out_u, (height // 2, width // 2)), ("out_v", out_v, (height // 2, width // 2)),
                           ("true_y", true_y, (None, height, width)), ("emu_y", emu_y, true_y.shape),
                           ("true_u", true_u, (true_y.shape[0], height // 2, width // 2)),
                           ("true_v", true_v, true_u.shape), ("emu_u", emu_u, true_u.shape),
                           ("emu_v", emu_v, true_u.shape)):
        check_array(name, a, np.uint8, shape=shape)
    check_array("parts", parts, np.int32, shape=(None, len(PART_FIELDS)))
    check_array("l0_slots", l0_slots, np.int64, ndim=1)
    check_array("l1_slots", l1_slots, np.int64, ndim=1)
    check_array("weights", weights, np.int32, shape=(max(len(l0_slots), 1), max(len(l1_slots), 1), 2))
    if l0_explicit is None:
        l0_explicit = np.tile(np.array([1, 0, 1, 0, 1, 0], np.int32), (max(len(l0_slots), 1), 1))
        log2_denoms = np.zeros(2, np.int32)
    check_array("l0_explicit", l0_explicit, np.int32, shape=(max(len(l0_slots), 1), 6))
    check_array("log2_denoms", log2_denoms, np.int32, shape=(2,))
    if log2_denoms.min() < 0 or log2_denoms.max() > 7:
        raise ValueError(f"log2_denoms must lie in [0, 7], got {log2_denoms.tolist()}.")
    slots = np.concatenate([l0_slots, l1_slots])
    if slots.size and (slots.min() < 0 or slots.max() >= true_y.shape[0]):
        raise ValueError(f"ring slots must lie in [0, {true_y.shape[0]}), got {slots.tolist()}.")
    if parts.size:
        x0, y0, w, h = parts[:, 0], parts[:, 1], parts[:, 2], parts[:, 3]
        if ((x0 < 0) | (y0 < 0) | (x0 + w > width) | (y0 + h > height) | (x0 % 8 != 0) | (y0 % 8 != 0)
                | ((w != 8) & (w != 16)) | ((h != 8) & (h != 16))).any():
            raise ValueError("partitions must be 8×8 .. 16×16 blocks on the 8-pixel grid inside the picture.")
    if coded is None:
        coded = np.zeros((height // 4, width // 4), np.bool_)
    check_array("coded", coded, np.bool_, shape=(height // 4, width // 4))
    covered = np.zeros((height // 16, width // 16), np.bool_)
    choice = np.zeros((parts.shape[0], 3), np.int32)
    _emulate_inter_kernel(cur_y, cur_u, cur_v, true_y, true_u, true_v, emu_y, emu_u, emu_v, parts, l0_slots,
                          l1_slots, weights, l0_explicit, log2_denoms, int(luma_threshold), int(chroma_threshold),
                          out_y, out_u, out_v, covered, choice, coded, bool(chroma))
    return covered, choice


@njit(**JIT)
def _residual_or_prediction(cur, true_pred, emu_pred, x, y, py, px, threshold, out, coded, mark):
    # One 4×4 block at (x, y): the coded test and the write, from predictions held at [py, px] of the buffers.
    sad = 0
    for yy in range(4):
        for xx in range(4):
            d = np.int32(true_pred[py + yy, px + xx]) - np.int32(cur[y + yy, x + xx])
            sad += d if d >= 0 else -d
    if sad > threshold:
        if mark:
            coded[y >> 2, x >> 2] = True
        for yy in range(4):
            for xx in range(4):
                v = 128 + np.int32(cur[y + yy, x + xx]) - np.int32(true_pred[py + yy, px + xx])
                out[y + yy, x + xx] = 0 if v < 0 else (min(v, 255))
    else:
        for yy in range(4):
            for xx in range(4):
                out[y + yy, x + xx] = emu_pred[py + yy, px + xx]


@njit(**JIT)
def _emulate_intra_kernel(cur_y, cur_u, cur_v, covered, luma_threshold, chroma_threshold, i16_bias,
                          out_y, out_u, out_v, kinds, coded, chroma):
    mb_rows, mb_cols = covered.shape
    true16 = np.zeros((16, 16), np.uint8)
    emu16 = np.zeros((16, 16), np.uint8)
    pred4 = np.zeros((4, 4), np.uint8)
    modes4 = np.zeros(16, np.int32)
    edge_t = np.zeros(9, np.int32)
    edge_l = np.zeros(5, np.int32)
    true8 = np.zeros((8, 8), np.uint8)
    emu8 = np.zeros((8, 8), np.uint8)
    for my in range(mb_rows):
        for mx in range(mb_cols):
            if covered[my, mx]:
                continue
            x, y = 16 * mx, 16 * my
            top, left = my > 0, mx > 0
            # Modes are chosen on the TRUE picture, where the true mode predicts with (near) zero residual.
            best16, mode16 = np.int64(1) << 60, 2
            for m in range(4):
                if intra16x16_valid(m, top, left):
                    intra16x16_into(cur_y, x, y, m, top, left, true16, 0, 0)
                    s = sad_region(true16, 0, 0, cur_y, y, x, 16, 16)
                    if s < best16:
                        best16, mode16 = s, m
            total4 = 0
            for blk in range(16):
                bx, by = block4x4_position(blk)
                px, py = x + 4 * bx, y + 4 * by
                btop, bleft = py > 0, px > 0
                tr = topright_available(bx, by, mx, my, mb_cols)
                intra4x4_edges(cur_y, px, py, btop, bleft, tr, edge_t, edge_l)
                best4 = np.int64(1) << 60
                for m in range(9):
                    if intra4x4_valid(m, btop, bleft):
                        intra4x4_from_edges(edge_t, edge_l, m, btop, bleft, pred4, 0, 0)
                        s = 0  # the 4×4 SAD, written out: a call per mode costs more than the sum
                        for yy in range(4):
                            for xx in range(4):
                                d = np.int32(pred4[yy, xx]) - np.int32(cur_y[py + yy, px + xx])
                                s += d if d >= 0 else -d
                        if s < best4:
                            best4 = s
                            modes4[blk] = m
                total4 += best4
            if best16 <= total4 + i16_bias:
                kinds[my, mx] = 16
                intra16x16_into(cur_y, x, y, mode16, top, left, true16, 0, 0)
                intra16x16_into(out_y, x, y, mode16, top, left, emu16, 0, 0)
                for blk in range(16):
                    bx, by = block4x4_position(blk)
                    _residual_or_prediction(cur_y, true16, emu16, x + 4 * bx, y + 4 * by, 4 * by, 4 * bx,
                                            luma_threshold, out_y, coded, True)
            else:
                kinds[my, mx] = 4
                for blk in range(16):  # sequential: later blocks predict from the emulated earlier ones
                    bx, by = block4x4_position(blk)
                    px, py = x + 4 * bx, y + 4 * by
                    btop, bleft = py > 0, px > 0
                    tr = topright_available(bx, by, mx, my, mb_cols)
                    intra4x4_edges(cur_y, px, py, btop, bleft, tr, edge_t, edge_l)
                    intra4x4_from_edges(edge_t, edge_l, modes4[blk], btop, bleft, true16, 0, 0)
                    intra4x4_edges(out_y, px, py, btop, bleft, tr, edge_t, edge_l)
                    intra4x4_from_edges(edge_t, edge_l, modes4[blk], btop, bleft, emu16, 0, 0)
                    _residual_or_prediction(cur_y, true16, emu16, px, py, 0, 0, luma_threshold, out_y, coded, True)
            if not chroma:
                continue
            cx, cy = 8 * mx, 8 * my
            best8, mode8 = np.int64(1) << 60, 0
            for m in range(4):
                if chroma8x8_valid(m, top, left):
                    intra8 = 0
                    chroma8x8_into(cur_u, cx, cy, m, top, left, true8, 0, 0)
                    intra8 += sad_region(true8, 0, 0, cur_u, cy, cx, 8, 8)
                    chroma8x8_into(cur_v, cx, cy, m, top, left, true8, 0, 0)
                    intra8 += sad_region(true8, 0, 0, cur_v, cy, cx, 8, 8)
                    if intra8 < best8:
                        best8, mode8 = intra8, m
            for c in range(2):
                cur_c = cur_u if c == 0 else cur_v
                out_c = out_u if c == 0 else out_v
                chroma8x8_into(cur_c, cx, cy, mode8, top, left, true8, 0, 0)
                chroma8x8_into(out_c, cx, cy, mode8, top, left, emu8, 0, 0)
                for b in range(4):
                    _residual_or_prediction(cur_c, true8, emu8, cx + 4 * (b & 1), cy + 4 * (b >> 1), 4 * (b >> 1),
                                            4 * (b & 1), chroma_threshold, out_c, coded, False)


def emulate_intra(cur_y, cur_u, cur_v, covered, luma_threshold, chroma_threshold, i16_bias, out_y, out_u, out_v,
                  coded=None, chroma=True):
    """Emulate every macroblock not ``covered`` by a vector as intra, in raster order, into out_y/u/v.

    Per macroblock the luma size (16×16 vs 4×4) and every mode are chosen by the smallest SAD on the true
    picture; 16×16 wins when its SAD is at most the 4×4 total plus ``i16_bias``. ``coded`` (bool [H/4, W/4],
    optional) receives True for each luma 4×4 block found coded; ``chroma=False`` leaves out_u/out_v untouched.
    Returns int32 [H/16, W/16]: 16 or 4 for each emulated macroblock, 0 for covered ones.
    """
    height, width = cur_y.shape
    if height % 16 or width % 16:
        raise ValueError(f"the luma plane must be whole macroblocks, got {width}×{height}.")
    for name, a, shape in (("cur_y", cur_y, (height, width)), ("cur_u", cur_u, (height // 2, width // 2)),
                           ("cur_v", cur_v, (height // 2, width // 2)), ("out_y", out_y, (height, width)),
                           ("out_u", out_u, (height // 2, width // 2)), ("out_v", out_v, (height // 2, width // 2))):
        check_array(name, a, np.uint8, shape=shape)
    check_array("covered", covered, np.bool_, shape=(height // 16, width // 16))
    if coded is None:
        coded = np.zeros((height // 4, width // 4), np.bool_)
    check_array("coded", coded, np.bool_, shape=(height // 4, width // 4))
    kinds = np.zeros(covered.shape, np.int32)
    _emulate_intra_kernel(cur_y, cur_u, cur_v, covered, int(luma_threshold), int(chroma_threshold), int(i16_bias),
                          out_y, out_u, out_v, kinds, coded, bool(chroma))
    return kinds
