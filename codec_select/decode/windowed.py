"""Long videos at bounded cost: decode a short window before each of the 64 slots instead of every frame.

Slot k shows decoded frame ``ids[k]`` of ``floor(linspace(0, N−1, 64))``. N and every frame's display-order index
come from the container's packet timestamps, demuxed without decoding (:func:`~codec_select.decode.timeline.read_timeline`,
milliseconds even for long files): the sorted timestamps are the display-order timeline, so frame k is the one at
``timeline[k]``, exactly, at any frame rate, variable or not. Only where packets carry no timestamps (raw
elementary streams) are N (``stream.frames``, else duration × fps) and the indices (time × fps) estimated, and the
Selection's report says so (``frame_ids_exact=False``). For each slot we seek to the
key frame before the window, decode through it (frames before the window are decoded but never read, and the
decoder skips the non-reference ones), score the window with a fresh :class:`~codec_select.signals.FrameScorer`
and add up the energy of its last ``W`` frames; the window's first frame has no predecessor and only serves as a
reference. With ``accumulate=True`` the sum is scaled by ``(ids[k] − ids[k−1]) / counted``, the estimate of what a
full decode accumulates over the whole interval, so windowed and full scores live on one scale. A few frames after
the slot frame are decoded too (the B-frames' future references, :data:`~codec_select.signals.LOOKAHEAD`) but not
counted. Consecutive windows closer than the next key frame are decoded straight through, without a seek.

Memory is bounded by the window, not the video: at most ``W + 1 + LOOKAHEAD`` luma planes per slot and four slots
in flight (one decoding, two queued, one scoring, each scoring with its own FrameScorer ring), and [64, Hp, Wp]
arrays for the result. Measured peak RSS: 250 MiB for 10 min and for 1 h of 720p (190 MiB of it is the interpreter,
numpy, PyAV and the numba kernels).

Damage is only seen where windows decode: ``damaged`` counts corrupt frames and failed packets among the decoded
ones. When the stream ends before the estimated N (a truncated file, a header that lies), the rest of the grid is
spread over the frames that exist and ``num_frames`` says how many there were.

When to switch (``mode="auto"``) and the stream's plan (frame count, key frames, timeline) are in
:mod:`codec_select.decode.plan`.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np

from .._worker import Consumer
from ..errors import DecodeError, SelectionTimeoutError
from ..geometry import Geometry
from ..kernels import block_means
from ..selection import NUM_SLOTS, frame_grid
from ..signals import LOOKAHEAD, THUMB_BLOCK, CanvasPooler, FrameScorer
from .container import VideoInfo
from .frames import DecodedFrame
from .plan import WINDOW, StreamPlan
from .reader import Reader

__all__ = ["WindowedScores", "select_windowed", "windowed_scores"]

@dataclass
class WindowedScores:
    """What :func:`windowed_scores` hands back to :func:`~codec_select.select.select_patches`."""

    scores: np.ndarray
    """float32 [64, Hp, Wp] slot energy on the canvas grid (scaled to the whole interval when accumulating)."""
    thumbnails: np.ndarray
    """float16 [64, 2·Hp, 2·Wp] mean luma of the slot frames' half-cells."""
    frame_ids: np.ndarray
    """int64 [64] estimated display-order index of each slot frame."""
    timestamps: np.ndarray
    """float64 [64] presentation time of each slot frame."""
    num_frames: int
    """Estimated frame count N of the grid."""
    frames_with_mvs: int
    """Scored frames that carried codec motion vectors."""
    damaged: int
    """Frames flagged corrupt or packets that failed to decode, among those decoded."""
    decoded: int
    """Frames that came out of the decoder (pre-roll included)."""
    seeks: int
    """Seeks performed."""
    timings: dict
    """Seconds: ``decode`` (this thread, seeking and decoding) and ``signals`` (scoring worker)."""
    failed_packets: int = 0
    """Packets that failed to decode (among those decoded)."""
    stopped_early: str = ""
    """Why the stream ended before the planned N (a truncated file, a damaged tail); empty otherwise."""


class _Cursor:
    """A :class:`~codec_select.decode.reader.Reader` that knows frame indices: each decoded frame's display-order
    index in the plan (exact from the timeline, else estimated at the mean rate), where the decoder stands, and how
    to get back before a window (seek by timestamp, or reopen where the index is damaged)."""

    def __init__(self, path: str, *, want_mvs: bool, fast: bool, plan: StreamPlan, threads: int = 0) -> None:
        self.plan = plan
        self.t0 = plan.t0
        self.calibrate = plan.from_stream_start
        self.reader = Reader(path, export_mvs=want_mvs, fast=fast, threads=threads, frame_step=1.0 / plan.fps)
        self.can_seek = True
        self.max_index = -1
        self._restart()

    def _restart(self) -> None:
        self.reader.first_time = self.t0
        first = self.reader.start_time
        self.position: int | None = self.index_of(self.t0 if first is None else first) - 1
        """Index of the last frame handed out; None right after a seek (the decoder sits at a key frame)."""
        self.fresh = True
        """No frame handed out since the last seek."""
        self.eof = False

    def preroll_until(self, t: float) -> None:
        """Frames before ``t`` are pre-roll: the decoder may drop the non-reference ones (nobody reads them)."""
        self.reader.skip_nonref_before = t - 1.5 / self.plan.fps  # margin: a frame's own time may round down

    def index_of(self, t: float) -> int:
        """Index in the window (frame 0 = the plan's first frame) of the frame shown at ``t``: exact from the
        timeline, else estimated at the mean rate."""
        timeline = self.plan.timeline
        if timeline is not None:
            return timeline.index_of(t) - self.plan.first_index
        return int(math.floor((t - self.t0) * self.plan.fps + 0.5))

    def time_of(self, index: int) -> float:
        timeline = self.plan.timeline
        if timeline is not None and timeline.times.size:
            i = index + self.plan.first_index
            last = timeline.times.size - 1
            if 0 <= i <= last:
                return float(timeline.times[i])
            edge = 0 if i < 0 else last
            return float(timeline.times[edge]) + (i - edge) / self.plan.fps
        return self.t0 + index / self.plan.fps

    def seek(self, index: int) -> None:
        """Position the decoder at the key frame at or before frame ``index``. Where the container cannot seek
        (a damaged index), go back by reopening the file and decode on from its start instead."""
        if self.can_seek:
            if self.reader.seek(self.time_of(index) - 0.5 / self.plan.fps):
                self.reader.first_time = self.t0
                self.eof = False
                self.position = None
                self.fresh = True
                return
            self.can_seek = False
        else:
            self.reader.seeks += 1
        if self.position is not None and self.position < index - 1 and not self.eof:
            return  # forward: decoding on gets there
        self.reader.reopen()  # the pre-roll bound stays: it belongs to the reader, not to the open file
        self._restart()

    def next(self) -> tuple[int, float, object] | None:
        """The next frame in display order as ``(index, time, av_frame)``, or None at the end of the stream."""
        if self.eof:
            return None
        try:
            t, frame = next(self.reader)
        except StopIteration:
            self.eof = True
            return None
        if self.calibrate:  # frame 0 is the first frame that decodes (AVI and others start their pts at 1)
            self.t0, self.calibrate = t, False
            self.reader.first_time = t
        index = self.index_of(t)
        self.position = index
        self.fresh = False
        self.max_index = max(self.max_index, index)
        return index, t, frame


@dataclass
class _Window:
    slot: int
    lo: int
    """Reference frame index: frames in (lo, target] are counted."""
    target: int
    span: int
    """Frames the slot stands for (ids[k] − ids[k−1]): the counted energy is scaled up to it."""
    frames: list


def _deadline_check(deadline: float | None, path: str, k: int) -> None:
    if deadline is not None and time.perf_counter() > deadline:
        raise SelectionTimeoutError(
            f"{path}: the per-video time budget ran out after {k} of 64 slots (windowed mode). Raise the timeout or "
            "select over a shorter time window."
        )


def windowed_scores(
    path: str | os.PathLike,
    info: VideoInfo,
    plan: StreamPlan,
    geometry: Geometry,
    *,
    estimated: bool,
    compensation: str = "median",
    fast_decode: bool = True,
    accumulate: bool = True,
    window: int = WINDOW,
    deadline: float | None = None,
    decode_threads: int = 0,
) -> WindowedScores:
    """Score the 64 slots from a window of ``window`` frames before each slot's frame (see the module doc)."""
    path = os.fspath(path)
    if window < 1:
        raise ValueError(f"Invalid window ({window}). It must be at least 1 frame.")
    if plan.num_frames < 1 and plan.exact:
        raise DecodeError(f"{path}: no frame inside the requested window; check start/end.")
    if plan.num_frames < 1:
        raise DecodeError(f"{path}: the container gives no frame count or duration; use mode='full'.")

    rotation = info.rotation
    pooler = CanvasPooler(geometry, rotation)
    hp, wp = geometry.grid_h, geometry.grid_w
    scores = np.zeros((NUM_SLOTS, hp, wp), np.float32)
    thumbs = np.zeros((NUM_SLOTS, 2 * hp, 2 * wp), np.float16)
    times = np.full(NUM_SLOTS, math.nan)
    frame_ids = frame_grid(plan.num_frames)
    shown_ids = np.full(NUM_SLOTS, -1, np.int64)  # the index of the frame each slot really shows (scoring thread)
    stats = {"mvs": 0}

    def score_window(item: _Window) -> None:
        frames = item.frames
        # One grid for the whole video: a resolution change mid-stream is resampled to the first frame's size (what
        # probe saw and the geometry is built on), as FrameScorer does inside one window.
        h, w = (info.height, info.width) if info.height > 0 and info.width > 0 else frames[0].luma.shape
        energies: dict[int, np.ndarray] = {}
        means: dict[int, np.ndarray] = {}
        before = [j for j, f in enumerate(frames) if f.index <= item.target]
        target_local = before[-1] if before else 0

        def sink(local: int, energy: np.ndarray, block_mean: np.ndarray) -> None:
            energies[local] = energy
            if local == target_local:
                means[local] = block_mean

        scorer = FrameScorer(h, w, estimated=estimated, compensation=compensation, sink=sink)
        for j, f in enumerate(frames):
            scorer.push(DecodedFrame(j, f.time, f.pict_type, f.key_frame, f.luma, f.mvs, f.packet_size, f.corrupt))
        if len(frames) - 1 - target_local < LOOKAHEAD:
            scorer.flush()  # the stream ended early; otherwise the look-ahead frames stay unscored (not counted)
        stats["mvs"] += scorer.frames_with_mvs
        counted = [j for j, f in enumerate(frames) if j > 0 and item.lo < f.index <= item.target]
        if item.slot == 0:
            total = energies[0]  # the first frame is all new, as in full mode
        elif not accumulate:
            total = energies[target_local] if target_local in counted else np.zeros_like(energies[0])
        elif counted:
            total = np.sum([energies[j] for j in counted], axis=0, dtype=np.float32)
            total *= np.float32(max(item.span, 1) / len(counted))
        else:
            total = np.zeros_like(energies[0])
        scores[item.slot] = pooler.energy(total, scorer.cell_px)
        block_mean = means.get(target_local)
        if block_mean is None:  # the slot frame was left unscored (nothing after it): its means, at the grid size
            luma = frames[target_local].luma
            if luma.shape != (h, w):
                from PIL import Image

                luma = np.asarray(Image.fromarray(luma).resize((w, h)))
            block_mean = block_means(np.ascontiguousarray(luma), THUMB_BLOCK, 2)
        thumbs[item.slot] = pooler.thumbnails(block_mean)
        times[item.slot] = frames[target_local].time
        shown_ids[item.slot] = frames[target_local].index

    cursor = _Cursor(path, want_mvs=not estimated, fast=fast_decode, plan=plan, threads=decode_threads)
    # Bounded: one window scoring, two queued, one decoding.
    scoring = Consumer(score_window, name="codec-select-window", maxsize=2)
    t_start = time.perf_counter()
    keys = plan.keyframe_times
    keep = window + 1 + LOOKAHEAD
    carry: list[DecodedFrame] = []  # the last frames decoded (look-ahead of the previous slot), reusable
    repeats: list[int] = []  # slots with nothing decodable: they show the previous slot's frame
    truncated_at = 0  # frames that really exist when the stream ended before the estimated N
    try:
        k = 0
        redo = False
        while k < NUM_SLOTS:
            _deadline_check(deadline, path, k)
            if scoring.error is not None:
                break
            target = int(frame_ids[k])
            lo = target if k == 0 else max(target - window, int(frame_ids[k - 1]))
            hi = target + (LOOKAHEAD if k else 0)
            frames = [f for f in carry if lo <= f.index <= hi]
            pos = cursor.position
            if not any(f.index <= lo for f in frames) and pos is not None and (
                (pos >= lo and not frames)  # the decoder is past the window (the grid was re-aimed): go back
                or (pos < lo - 1 and _should_seek(cursor, lo, keys, plan))
            ):
                cursor.seek(lo)
                frames = []
            cursor.preroll_until(cursor.time_of(lo))
            retries = 0
            overflow = None
            while not cursor.eof and (not frames or frames[-1].index < hi):
                fresh = cursor.fresh and cursor.reader.seeks > 0
                got = cursor.next()
                if got is None:
                    break
                index, t, frame = got
                _deadline_check(deadline, path, k)
                if index < lo:
                    continue
                if fresh and not frames and index > lo + window // 2 and lo > 0 and retries < 3:
                    # The seek landed after the window (a sparse index): back off and try again.
                    retries += 1
                    cursor.seek(max(lo - int(round(plan.fps * 4**retries)), 0))
                    continue
                if frames and index < frames[-1].index:  # out-of-order timestamps: keep display order
                    continue
                f = cursor.reader.to_decoded(index, t, frame)
                if index > hi:
                    if k == 0 and not frames:  # slot 0 shows the first frame there is
                        frames.append(f)
                    else:
                        overflow = f
                    break
                frames.append(f)
            if cursor.eof and 0 <= cursor.max_index < target and not redo:
                # N was over-estimated (a truncated file, a header that lies): the stream ends before this slot.
                truncated_at = cursor.max_index + 1
                shown = [f.index for f in frames if f.index <= target]
                if shown:  # this slot shows the last frames there are; later slots repeat it
                    frame_ids[k:] = target = shown[-1]
                else:  # spread the rest of the grid over what is left after the previous slot, then redo this one
                    prev = int(frame_ids[k - 1]) if k else 0
                    end_index = max(cursor.max_index, prev)
                    frame_ids[k:] = np.floor(np.linspace(prev, end_index, NUM_SLOTS - k + 1))[1:].astype(np.int64)
                    carry = (carry + frames)[-keep:]
                    redo = True
                    continue
            if not frames:
                if k == 0:
                    raise DecodeError(f"{path}: no decodable video frame (codec {info.codec}). The file is "
                                      "truncated, empty or corrupt; re-encode it.")
                repeats.append(k)  # nothing decodable here (a damaged stretch): no energy, previous frame
                frame_ids[k] = frame_ids[k - 1]
            else:
                span = target - int(frame_ids[k - 1]) if k else 1
                scoring.put(_Window(k, lo, target, span, frames))
            carry = (frames + ([overflow] if overflow is not None else []))[-keep:]
            k += 1
            redo = False
    finally:
        scoring.close()
        cursor.reader.close()
    if scoring.error is not None:
        raise scoring.error
    # A slot's identity is the frame it shows: where the slot frame itself did not decode (a damaged packet), the
    # frame before it was shown and scored, and the id says so, consistent with the timestamp.
    frame_ids = np.where(shown_ids >= 0, shown_ids, frame_ids)
    for k in repeats:
        thumbs[k], times[k] = thumbs[k - 1], times[k - 1]
        frame_ids[k] = frame_ids[k - 1]
    stopped = cursor.reader.tail_error
    if truncated_at and not stopped:
        stopped = f"the stream ended after {truncated_at} of the {plan.num_frames} frames planned"
    return WindowedScores(
        scores=scores, thumbnails=thumbs, frame_ids=frame_ids.astype(np.int64), timestamps=times,
        num_frames=truncated_at or plan.num_frames, frames_with_mvs=int(stats["mvs"]),
        damaged=int(cursor.reader.decode_errors + cursor.reader.corrupt_frames),
        decoded=cursor.reader.frames_decoded, seeks=cursor.reader.seeks,
        timings={"decode": time.perf_counter() - t_start, "signals": scoring.seconds},
        failed_packets=len(cursor.reader.failed_at), stopped_early=stopped,
    )


def _should_seek(cursor: _Cursor, lo: int, keys: np.ndarray, plan: StreamPlan) -> bool:
    """Seek when the key frame before the window lies past where the decoder is now (decoding on would cost more)."""
    here = cursor.position if cursor.position is not None else -1
    if keys.size:
        t_lo = cursor.time_of(lo)
        pos = int(np.searchsorted(keys, t_lo + 0.5 / plan.fps, side="right")) - 1
        if pos < 0:
            return False
        return cursor.index_of(float(keys[pos])) > here + 1
    return lo - here > plan.gop


def select_windowed(
    path: str | os.PathLike,
    info: VideoInfo,
    plan: StreamPlan,
    geometry: Geometry,
    *,
    estimated: bool,
    compensation: str,
    fast_decode: bool,
    accumulate: bool,
    deadline: float | None,
    decode_threads: int = 0,
) -> tuple[WindowedScores, bool]:
    """:func:`windowed_scores`, falling back to estimated motion when an MV codec exported no vectors (all-intra).
    Returns the scores and whether motion was estimated."""
    res = windowed_scores(path, info, plan, geometry, estimated=estimated, compensation=compensation,
                          fast_decode=fast_decode, accumulate=accumulate, deadline=deadline,
                          decode_threads=decode_threads)
    if not estimated and res.frames_with_mvs == 0:
        estimated = True
        res = windowed_scores(path, info, plan, geometry, estimated=True, compensation=compensation,
                              fast_decode=fast_decode, accumulate=accumulate, deadline=deadline,
                              decode_threads=decode_threads)
    return res, estimated
