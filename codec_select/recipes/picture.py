"""One emulated "patched" H.264 picture from one stock-decoded picture and the pictures it references.

Holds the reference pictures (true and emulated, in a ring of ring slots) in decoding order, builds each
picture's candidate reference lists (the slice header's real list 0 for P slices, explicit weights included; the
nearest held pictures otherwise) and calls the kernels: inter partitions, intra macroblocks, then the loop filter.
The tunable rules are module constants, documented with what they were measured to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels.h264_deblock import block_motion, deblock_picture
from ..kernels.h264_emulate import PART_FIELDS, emulate_inter, emulate_intra
from .h264_headers import list0

__all__ = [
    "CHROMA_THRESHOLD",
    "DEBLOCK",
    "I16_BIAS",
    "L0_CANDIDATES",
    "L1_CANDIDATES",
    "LUMA_THRESHOLD",
    "RING",
    "Picture",
    "PictureEmulator",
    "implicit_weights",
    "partition_table",
]

LUMA_THRESHOLD = 0
"""A luma 4×4 block counts as "coded" when Σ|Y − prediction| exceeds this. The true pictures are decoded without
the loop filter and predicted with the standard's exact integer rules (reference list, explicit weights and all),
so a block without coefficients rebuilds with r ≡ 0 and any coded one with r ≠ 0 (unless its residual rounds to
zero everywhere). On XwB (before the loop filter was emulated) 0, 4 and 8 agreed equally (IoU 0.872); 16 cost
0.01 and 32 cost 0.08: a tolerance only hides small real residuals. (With the deblocked picture, the reference notes' 16–32 was needed to absorb the
filter's changes.)"""
CHROMA_THRESHOLD = 0
"""The same test for a chroma 4×4 block, for the same reason."""
I16_BIAS = 0
"""Intra 16×16 is chosen over 4×4 when its SAD is at most the sum of the best 4×4 SADs plus this."""
L0_CANDIDATES = 4
"""At most this many past reference pictures are tried for a list-0 vector. The candidates are the pictures a
decoder still holds: the last ``max_num_ref_frames`` (from the SPS; x264's default writes 3) references."""
L1_CANDIDATES = 2
"""At most this many future reference pictures are tried for a list-1 vector."""
RING = 16
"""Reference pictures kept (H.264 allows at most 16)."""
DEBLOCK = 1
"""1 (default): run the H.264 loop filter on each emulated picture, as the patched decoder does (it keeps FFmpeg's
filter on), with the macroblock QPs the decoder exports and boundary strengths from the rebuilt block decisions.
Later pictures then predict from the filtered ones, as in the decoder. 0: leave the emulated pictures unfiltered."""


@dataclass(slots=True)
class Picture:
    """A decoded picture with what its emulation needs, waiting for its turn in decoding order."""

    display: int
    time: float
    pict_type: str
    key: bool
    is_ref: bool
    header: dict | None  # from codec_select.recipes.h264_headers.slice_header
    qp: np.ndarray | None  # int32 [H/16, W/16] macroblock QPs (VIDEO_ENC_PARAMS), None when not exported
    mvs: dict | None
    planes: tuple | None  # coded-size (Y, U, V) or None when the frame is skipped


def implicit_weights(poc_cur: int, poc0: int, poc1: int) -> tuple[int, int]:
    """H.264 implicit bi-prediction weights (w0, w1) from picture order counts (§8.4.2.3.2, logWD = 5)."""
    td = max(-128, min(127, poc1 - poc0))
    if td == 0:
        return 32, 32
    tb = max(-128, min(127, poc_cur - poc0))
    tx = int((16384 + abs(td) // 2) / td)  # C division truncates toward zero
    scale = max(-1024, min(1023, (tb * tx + 32) >> 6))
    if (scale >> 2) < -64 or (scale >> 2) > 128:
        return 32, 32
    return 64 - (scale >> 2), scale >> 2


def partition_table(mvs: dict | None, height: int, width: int) -> np.ndarray:
    """int32 [n, 10] table (columns PART_FIELDS) merging each partition's L0 and L1 vectors, raster order."""
    table = np.zeros(((height // 8) * (width // 8), len(PART_FIELDS)), np.int32)
    if mvs is None:
        return table[:0]
    w = mvs["w"].astype(np.int32)
    h = mvs["h"].astype(np.int32)
    x0 = mvs["dst_x"].astype(np.int32) - w // 2
    y0 = mvs["dst_y"].astype(np.int32) - h // 2
    scale = np.maximum(mvs["motion_scale"].astype(np.int32), 1)
    mx = mvs["motion_x"].astype(np.int64) * 4 // scale  # quarter pel (H.264 always exports scale 4)
    my = mvs["motion_y"].astype(np.int64) * 4 // scale
    ok = ((w == 8) | (w == 16)) & ((h == 8) | (h == 16)) & (x0 >= 0) & (y0 >= 0) & (x0 + w <= width) \
        & (y0 + h <= height) & (x0 % 8 == 0) & (y0 % 8 == 0)
    cell = (y0 // 8) * (width // 8) + x0 // 8
    for source, use_col in ((-1, 4), (1, 7)):
        sel = ok & ((mvs["source"] < 0) if source < 0 else (mvs["source"] > 0))
        c = cell[sel]
        table[c, 0], table[c, 1], table[c, 2], table[c, 3] = x0[sel], y0[sel], w[sel], h[sel]
        table[c, use_col] = 1
        table[c, use_col + 1] = mx[sel]
        table[c, use_col + 2] = my[sel]
    return np.ascontiguousarray(table[(table[:, 4] != 0) | (table[:, 7] != 0)])


class PictureEmulator:
    """Reference bookkeeping and the per-frame kernel calls, in decoding order."""

    def __init__(self, height: int, width: int, dpb_size: int = RING, chroma: bool = True):
        self.height, self.width = height, width
        self.chroma = chroma  # False: luma only (its result does not depend on chroma); u, v stay zero
        self.dpb_size = min(max(dpb_size, 1), RING)
        ch, cw = height // 2, width // 2
        self.true_y = np.zeros((RING, height, width), np.uint8)
        self.emu_y = np.zeros((RING, height, width), np.uint8)
        self.true_u = np.zeros((RING, ch, cw), np.uint8)
        self.true_v = np.zeros((RING, ch, cw), np.uint8)
        self.emu_u = np.zeros((RING, ch, cw), np.uint8)
        self.emu_v = np.zeros((RING, ch, cw), np.uint8)
        self.refs: list[tuple[int, int, int]] = []  # (display index, ring slot, frame_num), oldest first

    def run(self, item: Picture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cur_y, cur_u, cur_v = item.planes
        idr = item.header["idr"] if item.header else item.key and item.pict_type == "I"
        if idr:
            self.refs.clear()  # an IDR picture empties the reference buffer (a recovery-point I-frame does not)
        out_y, out_u, out_v = np.zeros_like(cur_y), np.zeros_like(cur_u), np.zeros_like(cur_v)
        covered = np.zeros((self.height // 16, self.width // 16), np.bool_)
        coded = np.zeros((self.height // 4, self.width // 4), np.bool_)
        parts = partition_table(item.mvs, self.height, self.width)
        choice = np.zeros((0, 3), np.int32)
        ids0 = ids1 = np.zeros(0, np.int32)
        if parts.shape[0] and self.refs:
            l0, l1, weights, explicit, log2 = self._lists(item)
            covered, choice = emulate_inter(cur_y, cur_u, cur_v, self.true_y, self.true_u, self.true_v, self.emu_y,
                                            self.emu_u, self.emu_v, parts, l0, l1, weights, LUMA_THRESHOLD,
                                            CHROMA_THRESHOLD, out_y, out_u, out_v, explicit, log2, coded,
                                            chroma=self.chroma)
            display_of = {r[1]: r[0] for r in self.refs}  # picture identity for the loop filter's bS
            ids0 = np.array([display_of[int(s)] for s in l0], np.int32)
            ids1 = np.array([display_of[int(s)] for s in l1], np.int32)
        else:
            parts = parts[:0]
        emulate_intra(cur_y, cur_u, cur_v, covered, LUMA_THRESHOLD, CHROMA_THRESHOLD, I16_BIAS, out_y, out_u, out_v,
                      coded, chroma=self.chroma)
        header = item.header or {}
        idc, alpha, beta = header.get("deblock", (0, 0, 0))
        if DEBLOCK and item.qp is not None and idc != 1:
            refs, mvs = block_motion(parts, choice, ids0, ids1, self.height, self.width)
            deblock_picture(out_y, out_u, out_v, ~covered, coded, refs, mvs, item.qp,
                            chroma_qp_offset=header.get("chroma_qp_offset", 0), alpha_offset=alpha, beta_offset=beta,
                            chroma=self.chroma)
        if item.is_ref:
            used = {r[1] for r in self.refs}
            if len(self.refs) >= self.dpb_size:  # sliding-window marking: the oldest reference leaves
                used.discard(self.refs.pop(0)[1])
            slot = min(set(range(RING)) - used)
            self.true_y[slot], self.emu_y[slot] = cur_y, out_y
            if self.chroma:
                self.true_u[slot], self.true_v[slot] = cur_u, cur_v
                self.emu_u[slot], self.emu_v[slot] = out_u, out_v
            frame_num = item.header["frame_num"] if item.header else -1
            self.refs.append((item.display, slot, frame_num))
        return out_y, out_u, out_v

    def _lists(self, item: Picture):
        """Candidate ring slots of each list, nearest first, with bi-prediction and explicit weights."""
        d = item.display
        header = item.header
        past = sorted((r for r in self.refs if r[0] < d), reverse=True)[:L0_CANDIDATES]
        future = sorted(r for r in self.refs if r[0] > d)[:L1_CANDIDATES]
        if not past:  # a list holds whatever references exist; the nearest stand in
            past = future[:1]
        if not future:
            future = past[:1]
        explicit_rows = None
        log2 = np.zeros(2, np.int32)
        if header is not None and "list0" in header and all(r[2] >= 0 for r in self.refs):
            # A P slice: its real list 0 (reordering and x264's weighted duplicates included).
            real = list0(header, [(r[2], r) for r in self.refs])
            if real:
                past = [entry[1] for entry in real]
                if "weights" in header:
                    log2[:] = header["luma_log2"], header["chroma_log2"]
                    unit = (1 << int(log2[0]), 0, 1 << int(log2[1]), 0, 1 << int(log2[1]), 0)
                    explicit_rows = [header["weights"][k] if k < len(header["weights"]) else unit
                                     for k in range(len(past))]
        l0 = np.array([r[1] for r in past], np.int64)
        l1 = np.array([r[1] for r in future], np.int64)
        weights = np.full((len(past), len(future), 2), 32, np.int32)
        for i, p0 in enumerate(past):
            for j, p1 in enumerate(future):
                weights[i, j] = implicit_weights(2 * d, 2 * p0[0], 2 * p1[0])
        if explicit_rows is None:
            explicit = np.tile(np.array([1, 0, 1, 0, 1, 0], np.int32), (len(past), 1))
        else:
            explicit = np.array(explicit_rows, np.int32).reshape(len(past), 6)
        return l0, l1, weights, explicit, log2
