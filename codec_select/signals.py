"""Per-frame saliency from codec signals: motion vectors + motion-compensated residual → one energy map per frame.

Frames arrive in display order. A frame's L1 (future) vectors point at frames that come out of the decoder later,
so a frame is scored once ``LOOKAHEAD`` newer frames have arrived (or at the end). Luma planes live in a small ring
buffer shared by the residual kernel: ``LOOKBACK`` past and ``LOOKAHEAD`` future frames are reference candidates
(``source`` only gives the list direction, not which frame; x264 uses up to 3–4 references).

Energy of a frame = ½·clip(|velocity| / max(p95, MV_FLOOR)) + ½·clip(residual / max(p95, RESIDUAL_FLOOR)) on the
4×4 block grid (16×16 for estimated motion), with camera motion removed from the velocity first. Frames without
vectors (I-frames, intra-only P-frames) are scored by their change against the previous frame; the first frame is
all new (energy 1). The floors make a quiet frame quiet: per-frame normalisation alone would blow compression noise
up to full scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .decode.video import DecodedFrame, upright
from .geometry import Geometry
from .kernels import (
    block_match,
    block_means,
    compensate_similarity,
    downscale2,
    frame_change,
    fuse_energy,
    mc_residual,
    normalise_p95,
    pool_cells,
    rasterise_mvs,
)

__all__ = ["FrameScorer", "CanvasPooler", "MV_FLOOR", "RESIDUAL_FLOOR", "COMPENSATIONS", "THUMB_BLOCK"]

MV_FLOOR = 1.0
"""px/frame: camera-compensated speed below this never reaches full scale."""
RESIDUAL_FLOOR = 6.0
"""Mean absolute luma error (0–255) below this never reaches full scale."""
MV_DEADZONE = 0.5
"""px/frame subtracted from the compensated speed: sub-pel jitter of the vectors and of the camera fit."""
RESIDUAL_DEADZONE = 3.0
"""Luma levels subtracted from residual and change: re-quantisation noise (an I-frame refreshing a static shot
differs from the frame before by ~1–3 levels at usual CRFs; a cut or a moving edge by tens)."""
LOOKBACK = 8
LOOKAHEAD = 4
THUMB_BLOCK = 8
"""Block size of the luma means the drift-aware policy pools into per-cell thumbnails."""
MAX_CANDIDATES = 4
"""Reference frames tried per list direction, anchors (I/P) first: a P-frame after two B-frames refers 3, 6, 9
frames back, a B-frame mostly to the nearest anchors; non-reference B-frames come last."""
COMPENSATIONS = ("median", "similarity", "none")


def _deadzone(x: np.ndarray, zero: float) -> np.ndarray:
    """max(x − zero, 0): levels below ``zero`` are noise, not change."""
    return np.maximum(x - np.float32(zero), np.float32(0.0))


@dataclass
class _Pending:
    frame: DecodedFrame
    slot: int


class FrameScorer:
    """Streams decoded frames in, hands ``(index, energy[gh, gw], luma_means[H//8, W//8])`` out, in display order.

    ``estimated=True`` ignores codec vectors and block-matches consecutive frames on 2× downscaled luma
    (16-pixel blocks); otherwise codec vectors on 4-pixel blocks are used.
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        estimated: bool,
        compensation: str = "median",
        sink: Callable[[int, np.ndarray, np.ndarray], None],
        residual_step: int = 4,
    ) -> None:
        if compensation not in COMPENSATIONS:
            raise ValueError(
                f"Invalid motion_compensation ({compensation!r}). Supported values are {', '.join(COMPENSATIONS)}."
            )
        self.estimated = estimated
        self.compensation = compensation
        self.sink = sink
        self.step = residual_step
        # FFmpeg exports H.264 vectors per partition of at least 8×8 (sub-8×8 partitions come out as 8×8), so an
        # 8-pixel grid loses nothing and costs a quarter of a 4-pixel one.
        self.block = 16 if estimated else 8
        self.grid_h, self.grid_w = height // self.block, width // self.block
        self.height, self.width = height, width
        cap = LOOKBACK + LOOKAHEAD + 1
        self.capacity = cap
        self.ring = np.zeros((cap, height, width), dtype=np.uint8)
        self.small = np.zeros((cap, height // 2, width // 2), dtype=np.uint8) if estimated else None
        self.kinds = ["?"] * cap  # picture type per ring slot
        self.pending: list[_Pending] = []
        self.count = 0  # frames pushed
        self.frames_with_mvs = 0

    @property
    def cell_px(self) -> float:
        """Source pixels per energy cell (4 for codec vectors, 16 for estimated motion)."""
        return float(self.block)

    def push(self, frame: DecodedFrame) -> None:
        if frame.luma.shape != (self.height, self.width):
            # Resolution changes mid-stream: resample to the first frame's size so the grid stays one grid.
            from PIL import Image

            luma = np.asarray(Image.fromarray(frame.luma).resize((self.width, self.height)))
            frame = DecodedFrame(frame.index, frame.time, frame.pict_type, frame.key_frame, luma, None,
                                 frame.packet_size, frame.corrupt)
        slot = self.count % self.capacity
        self.ring[slot] = frame.luma
        self.kinds[slot] = frame.pict_type
        if self.small is not None:
            self.small[slot] = downscale2(self.ring[slot])
        self.pending.append(_Pending(frame, slot))
        self.count += 1
        # Score every pending frame whose future references have all arrived.
        while self.pending and self.pending[0].frame.index + LOOKAHEAD < self.count:
            self._score(self.pending.pop(0))

    def flush(self) -> None:
        while self.pending:
            self._score(self.pending.pop(0))

    def _candidates(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reference candidates per direction: anchors (I/P) nearest first, then B-frames, MAX_CANDIDATES each."""
        slots, dirs, dists = [], [], []
        oldest = max(0, self.count - self.capacity)
        for direction, reach in ((-1, LOOKBACK), (1, LOOKAHEAD)):
            anchors, others = [], []
            for d in range(1, reach + 1):
                j = index + direction * d
                if j < oldest or j >= self.count:
                    continue
                (others if self.kinds[j % self.capacity] == "B" else anchors).append(d)
            for d in (anchors + others)[:MAX_CANDIDATES]:
                slots.append((index + direction * d) % self.capacity)
                dirs.append(direction)
                dists.append(d)
        return (np.array(slots, dtype=np.int64), np.array(dirs, dtype=np.int8), np.array(dists, dtype=np.int32))

    def _score(self, item: _Pending) -> None:
        frame, slot = item.frame, item.slot
        index = frame.index
        if index == 0:
            energy = np.ones((self.grid_h, self.grid_w), dtype=np.float32)  # everything is new
        elif self.estimated:
            prev = (index - 1) % self.capacity
            error, vector = block_match(self.small[slot], self.small[prev], block=self.block // 2, radius=4)
            velocity = -vector * 2.0  # downscaled px → source px; vector points at the reference
            energy = self._fuse(velocity, error)
        elif frame.mvs is None or frame.pict_type == "I":
            prev = (index - 1) % self.capacity
            change = frame_change(self.ring[slot], self.ring[prev], block=self.block, step=self.step)
            energy = normalise_p95(_deadzone(change, RESIDUAL_DEADZONE), RESIDUAL_FLOOR)
        else:
            mv = frame.mvs
            flow = rasterise_mvs(
                mv["source"], mv["w"], mv["h"], mv["dst_x"], mv["dst_y"], mv["motion_x"], mv["motion_y"],
                mv["motion_scale"], self.grid_h, self.grid_w, self.block,
            )
            slots, dirs, dists = self._candidates(index)
            residual, velocity = mc_residual(
                self.ring[slot], self.ring, slots, dirs, dists, flow, block=self.block, step=self.step
            )
            self.frames_with_mvs += 1
            energy = self._fuse(velocity, residual)
        self.sink(index, energy, block_means(self.ring[slot], THUMB_BLOCK, 2))

    def _fuse(self, velocity: np.ndarray, residual: np.ndarray) -> np.ndarray:
        if self.compensation == "similarity":
            velocity = compensate_similarity(velocity)
        return fuse_energy(
            velocity, residual, median=self.compensation == "median", mv_deadzone=MV_DEADZONE, mv_floor=MV_FLOOR,
            res_deadzone=RESIDUAL_DEADZONE, res_floor=RESIDUAL_FLOOR,
        )


class CanvasPooler:
    """Pools per-frame maps (coded orientation) onto one geometry's canvas grid, upright: energy → per-cell sums
    [Hp, Wp], luma block means → half-cell mean luma float16 [2·Hp, 2·Wp] (the drift policy's thumbnails)."""

    def __init__(self, geometry: Geometry, rotation: int = 0) -> None:
        self.rotation = rotation
        self.rows, self.cols = geometry.row_edges(), geometry.col_edges()
        self.sub_rows, self.sub_cols = geometry.row_edges(2), geometry.col_edges(2)
        self._sub_area: np.ndarray | None = None

    def energy(self, energy: np.ndarray, cell_px: float) -> np.ndarray:
        """float32 [Hp, Wp]: ``energy`` (on ``cell_px``-pixel blocks) integrated over each cell's source area."""
        if self.rotation:
            energy = upright(energy, self.rotation)
        return pool_cells(np.ascontiguousarray(energy, dtype=np.float32), float(cell_px), self.rows, self.cols)

    def thumbnails(self, means: np.ndarray) -> np.ndarray:
        """float16 [2·Hp, 2·Wp]: mean luma under each half-cell, from ``THUMB_BLOCK``-pixel block means.

        float16, not uint8: a static shot's I-frame refresh moves block means by a fraction of a level, and rounding
        would hide it from the drift rule (2 bytes per half-cell per frame)."""
        if self.rotation:
            means = upright(means, self.rotation)
        if self._sub_area is None:  # source area under each half-cell: the mean is the pooled sum over it
            ones = np.ones(means.shape, np.float32)
            self._sub_area = np.maximum(pool_cells(ones, float(THUMB_BLOCK), self.sub_rows, self.sub_cols), 1e-6)
        summed = pool_cells(np.ascontiguousarray(means, dtype=np.float32), float(THUMB_BLOCK), self.sub_rows,
                            self.sub_cols)
        return (summed / self._sub_area).astype(np.float16)
