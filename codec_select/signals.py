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

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .decode.container import upright
from .decode.frames import DecodedFrame
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
from .kernels.pool import pool_cells_planned, pool_plan

__all__ = [
    "COMPENSATIONS",
    "MV_FLOOR",
    "RESIDUAL_FLOOR",
    "STAGE_CLOCK",
    "THUMB_BLOCK",
    "CanvasPooler",
    "FrameScorer",
    "StageClock",
]

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
_CANDIDATE_CACHE_SIZE = 4096
"""Reference-candidate lists remembered per scorer: a GOP pattern repeats, so a stream needs a few dozen."""


class StageClock:
    """CPU seconds per stage of the scoring path (``time.thread_time``: each thread counts only its own work), for
    the throughput benchmark. Off unless :data:`STAGE_CLOCK` holds one; then the selector adds ``mv`` (rasterising
    the vectors), ``residual`` (residual / frame change / block matching), ``fuse``, ``thumbnails`` (block means and
    their pooling), ``pooling`` (energy onto the canvas grid) and ``decode_thread`` (the decoding loop's thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.frames = 0

    def lap(self, stage: str, since: float) -> float:
        """Add the thread CPU time since ``since`` to ``stage``; return now (the next lap's start)."""
        now = time.thread_time()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + (now - since)
        return now


STAGE_CLOCK: StageClock | None = None
"""Set to a :class:`StageClock` to time the stages (benchmarks only; one check per frame when off)."""


def _deadzone(x: np.ndarray, zero: float) -> np.ndarray:
    """max(x − zero, 0): levels below ``zero`` are noise, not change."""
    return np.maximum(x - np.float32(zero), np.float32(0.0))


@dataclass
class _Pending:
    frame: DecodedFrame
    slot: int


class FrameScorer:
    """Streams decoded frames in, hands ``(index, energy[gh, gw], luma_means[H//8, W//8])`` out, in display order
    (None for what ``energy_for`` / ``means_for`` leave out).

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
        means_region: tuple[tuple[int, int], tuple[int, int]] | None = None,
        energy_for: frozenset[int] | None = None,
        means_for: frozenset[int] | None = None,
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
        # Block ranges of the luma means a caller pools (CanvasPooler.means_region): the rest is left 0, unread.
        self.means_rows, self.means_cols = means_region if means_region is not None else (None, None)
        self._candidate_cache: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # Work cut to what the caller reads (None: every frame): the energy of frames ``energy_for`` and the luma
        # means of frames ``means_for``; the sink gets None for the rest. Every frame still enters the ring (it is
        # a reference for its neighbours), and scoring one frame reads nothing another frame's scoring wrote, so the
        # frames that are scored come out exactly as in a full pass.
        self.energy_for, self.means_for = energy_for, means_for

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
        """Reference candidates per direction: anchors (I/P) nearest first, then B-frames, MAX_CANDIDATES each.

        The lists depend only on the frame's ring slot, how far the ring reaches on each side and the picture types
        in the ring, so they are remembered under that key (the arrays are shared: the residual only reads them)."""
        oldest = max(0, self.count - self.capacity)
        key = (index % self.capacity, min(index - oldest, LOOKBACK), min(self.count - 1 - index, LOOKAHEAD),
               *self.kinds)
        found = self._candidate_cache.get(key)
        if found is None:
            if len(self._candidate_cache) >= _CANDIDATE_CACHE_SIZE:
                self._candidate_cache.clear()
            found = self._candidate_cache[key] = self._find_candidates(index, oldest)
        return found

    def _find_candidates(self, index: int, oldest: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        slots, dirs, dists = [], [], []
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
        clock = STAGE_CLOCK
        t = time.thread_time() if clock is not None else 0.0
        if self.energy_for is not None and index not in self.energy_for:
            energy = None
            self.frames_with_mvs += bool(index and not self.estimated and frame.mvs is not None
                                         and frame.pict_type != "I")
        elif index == 0:
            energy = np.ones((self.grid_h, self.grid_w), dtype=np.float32)  # everything is new
        elif self.estimated:
            prev = (index - 1) % self.capacity
            error, vector = block_match(self.small[slot], self.small[prev], block=self.block // 2, radius=4)
            velocity = -vector * 2.0  # downscaled px → source px; vector points at the reference
            if clock is not None:
                t = clock.lap("residual", t)
            energy = self._fuse(velocity, error)
        elif frame.mvs is None or frame.pict_type == "I":
            prev = (index - 1) % self.capacity
            change = frame_change(self.ring[slot], self.ring[prev], block=self.block, step=self.step)
            if clock is not None:
                t = clock.lap("residual", t)
            energy = normalise_p95(_deadzone(change, RESIDUAL_DEADZONE), RESIDUAL_FLOOR)
        else:
            mv = frame.mvs
            flow = rasterise_mvs(
                mv["source"], mv["w"], mv["h"], mv["dst_x"], mv["dst_y"], mv["motion_x"], mv["motion_y"],
                mv["motion_scale"], self.grid_h, self.grid_w, self.block,
            )
            if clock is not None:
                t = clock.lap("mv", t)
            slots, dirs, dists = self._candidates(index)
            residual, velocity = mc_residual(
                self.ring[slot], self.ring, slots, dirs, dists, flow, block=self.block, step=self.step
            )
            self.frames_with_mvs += 1
            if clock is not None:
                t = clock.lap("residual", t)
            energy = self._fuse(velocity, residual)
        if clock is not None:
            t = clock.lap("fuse", t)
        means = None
        if self.means_for is None or index in self.means_for:
            means = block_means(self.ring[slot], THUMB_BLOCK, 2, rows=self.means_rows, cols=self.means_cols)
        if clock is not None:
            clock.lap("thumbnails", t)
            clock.frames += 1
        self.sink(index, energy, means)

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
        self._plans: dict[tuple, tuple] = {}  # pool_plan per (cell size, grid shape, half cells): once per video

    def means_region(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """Block ranges ``(rows, cols)`` of the ``THUMB_BLOCK`` luma means of a ``height × width`` frame (coded
        orientation) that :meth:`thumbnails` reads: a centre crop pools only part of the frame. None (all of it)
        for a rotated video."""
        if self.rotation:
            return None
        gh, gw = height // THUMB_BLOCK, width // THUMB_BLOCK

        # The cells pool_cells can touch: from floor(first edge / block) to ceil(last edge / block), clamped.
        def span(edges: np.ndarray, n: int) -> tuple[int, int]:
            lo = min(max(int(np.floor(edges[0] / THUMB_BLOCK)), 0), n)
            hi = min(max(int(np.ceil(edges[-1] / THUMB_BLOCK)), 0), n)
            return lo, max(hi, lo)

        return span(self.sub_rows, gh), span(self.sub_cols, gw)

    def energy(self, energy: np.ndarray, cell_px: float) -> np.ndarray:
        """float32 [Hp, Wp]: ``energy`` (on ``cell_px``-pixel blocks) integrated over each cell's source area."""
        if self.rotation:
            energy = upright(energy, self.rotation)
        energy = np.ascontiguousarray(energy, dtype=np.float32)
        return pool_cells_planned(energy, self._plan(float(cell_px), energy.shape, False))

    def _plan(self, cell_px: float, shape: tuple[int, int], half: bool) -> tuple:
        key = (cell_px, shape, half)
        plan = self._plans.get(key)
        if plan is None:
            rows, cols = (self.sub_rows, self.sub_cols) if half else (self.rows, self.cols)
            plan = self._plans[key] = pool_plan(cell_px, rows, cols, *shape)
        return plan

    def thumbnails(self, means: np.ndarray) -> np.ndarray:
        """float16 [2·Hp, 2·Wp]: mean luma under each half-cell, from ``THUMB_BLOCK``-pixel block means.

        float16, not uint8: a static shot's I-frame refresh moves block means by a fraction of a level, and rounding
        would hide it from the drift rule (2 bytes per half-cell per frame)."""
        if self.rotation:
            means = upright(means, self.rotation)
        if self._sub_area is None:  # source area under each half-cell: the mean is the pooled sum over it
            ones = np.ones(means.shape, np.float32)
            self._sub_area = np.maximum(pool_cells(ones, float(THUMB_BLOCK), self.sub_rows, self.sub_cols), 1e-6)
        means = np.ascontiguousarray(means, dtype=np.float32)
        summed = pool_cells_planned(means, self._plan(float(THUMB_BLOCK), means.shape, True))
        return (summed / self._sub_area).astype(np.float16)
