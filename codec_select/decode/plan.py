"""The plan of a stream for windowed selection, and when to switch to it.

:func:`plan_stream` learns, without decoding, what the windowed mode needs: the frame count and every frame's
display-order time from the packet timeline (exact where packets carry timestamps; estimated and reported otherwise),
the key frames to seek to, and the frame rate. :func:`choose_mode` picks ``"windowed"`` when decoding a window before
each of the 64 slots costs clearly less than decoding every frame (measured in ``benchmarks/bench_long.py``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..selection import NUM_SLOTS
from ..signals import LOOKAHEAD
from .container import VideoInfo, open_container
from .timeline import Timeline, read_timeline

__all__ = ["MODES", "WINDOW", "StreamPlan", "choose_mode", "plan_stream"]

MODES = ("auto", "full", "windowed")
WINDOW = 8
"""Frames accumulated before each slot's frame (the slot frame included)."""
UNKNOWN_GOP = 250
"""Key-frame interval assumed when the container has no index (x264's default ``keyint``): then a window is only
reached by seeking when it lies more than this many frames ahead (decoding on is cheaper otherwise)."""
SWITCH_FACTOR = 2.5
"""``auto`` goes windowed when N > SWITCH_FACTOR · 64 · (W + 1 + LOOKAHEAD), i.e. at least 2.5× the frames a
window decodes and scores per slot (N > 2080 for W = 8: 69 s at 30 fps). Measured with
``benchmarks/bench_long.py --switch`` (720p H.264, 3 B-frames, 2 shared cores; full ÷ windowed selection time):

    frames per slot (N/64)   10        20         40         80
    GOP 12                   1.12×     1.38×      2.61×      5.03×
    GOP 48                   1.09×     1.56×      2.50×      4.28×
    GOP 250                  0.99×     1.44×      2.12×      2.99×

Windowed costs about the same at any GOP: a window whose key frame lies behind the decoder is reached by decoding
on (non-reference frames skipped, nothing read or scored), one further ahead by a seek, so the pre-roll is at most
~GOP/2 cheap frames. Below ~20 frames per slot the windows nearly touch and nothing is saved; from ~40 on the
saving is ≥ 2× and grows linearly with N. We switch where it reaches ~2×: the full decode stays the reference
whenever the approximation would buy little."""


@dataclass(frozen=True)
class StreamPlan:
    """What the container says about frame count, timing and key frames (no decoding)."""

    num_frames: int
    """Estimated decoded frames over the requested time window (``stream.frames`` or duration × fps)."""
    fps: float
    """Frames per second used to turn timestamps into frame indices (N / duration where both are known)."""
    t0: float
    """Presentation time of frame 0 in seconds (the stream start, or ``start``)."""
    gop: float
    """Mean frames between key frames, from the container index (:data:`UNKNOWN_GOP` without an index)."""
    keyframe_times: np.ndarray
    """float64 sorted presentation times of the indexed key frames (empty without an index)."""
    from_stream_start: bool = True
    """No ``start`` was given: frame 0 is the first frame that decodes, and its timestamp replaces ``t0``."""
    timeline: Timeline | None = None
    """The file's display-order frame timeline (None: packets without timestamps; indices are then estimated)."""
    first_index: int = 0
    """Display-order index, counted from the start of the file, of the window's frame 0 (exact with a timeline)."""

    @property
    def exact(self) -> bool:
        """Whether frame indices come from the timeline (True) or from time × fps (False)."""
        return self.timeline is not None


def plan_stream(path: str | os.PathLike, info: VideoInfo, *, start: float | None = None,
                end: float | None = None) -> StreamPlan:
    """Estimate N, fps, the start time and the key-frame layout from the container header and index."""
    container, stream = open_container(path)
    try:
        tb = float(stream.time_base) if stream.time_base is not None else 0.0
        first = float(stream.start_time * stream.time_base) if stream.start_time is not None and tb else 0.0
        fps = info.fps
        if info.num_frames and info.duration > 0 and 0.1 < info.num_frames / info.duration < 1000:
            fps = info.num_frames / info.duration  # exact for CFR, the mean rate for VFR
        if not (fps and math.isfinite(fps) and 0.1 < fps < 1000):
            fps = 25.0  # a header that lies (fuzzed, broken muxer): any sane rate keeps the arithmetic finite
        keys: list[float] = []
        entries = 0
        try:
            index = stream.index_entries
            entries = len(index)
            keys = [float(e.timestamp * tb) for e in index if e.is_keyframe and e.timestamp is not None]
        except Exception:  # no index, or a PyAV without index_entries
            keys = []
        keyframe_times = np.unique(np.asarray(keys, dtype=np.float64))
        total = info.num_frames or (entries if entries > len(keys) else 0)
        gop = max(1.0, total / len(keyframe_times)) if len(keyframe_times) >= 2 and total else float(UNKNOWN_GOP)
        lo = first if start is None else max(first, float(start))
        stream_end = first + info.duration if info.duration > 0 else math.inf
        hi = stream_end if end is None else min(stream_end, float(end))
        if start is None and end is None:
            n = info.num_frames
        elif math.isfinite(hi) and hi > lo:
            # frames at lo, lo + 1/fps, ... up to hi (inclusive of a requested end, exclusive of the stream end)
            n = int(math.floor((hi - lo) * fps + 1e-6)) + (1 if hi < stream_end else 0)
        else:
            n = 0
    finally:
        container.close()
    timeline = read_timeline(path)
    if timeline is None or timeline.times.size == 0:
        return StreamPlan(num_frames=max(0, int(n)), fps=float(fps), t0=float(lo), gop=float(gop),
                          keyframe_times=keyframe_times, from_stream_start=start is None)
    # The exact plan: the frames whose timestamps fall in [start, end] (what full mode yields, same tolerance).
    times = timeline.times
    first_index = 0 if start is None else int(np.searchsorted(times, float(start) - 1e-6, side="left"))
    stop = times.size if end is None else int(np.searchsorted(times, float(end) + 1e-6, side="right"))
    n = max(0, stop - first_index)
    if n >= 2 and times[stop - 1] > times[first_index]:
        fps = (n - 1) / float(times[stop - 1] - times[first_index])  # the mean rate, for margins and back-offs only
    if timeline.keyframe_times.size:
        keyframe_times = timeline.keyframe_times
        gop = max(1.0, times.size / keyframe_times.size) if keyframe_times.size >= 2 else float(UNKNOWN_GOP)
    t0 = float(times[first_index]) if n else float(lo)
    return StreamPlan(num_frames=n, fps=float(fps), t0=t0, gop=float(gop), keyframe_times=keyframe_times,
                      from_stream_start=False, timeline=timeline, first_index=first_index)


def choose_mode(plan: StreamPlan, *, window: int = WINDOW) -> str:
    """``"windowed"`` when decoding windows is clearly cheaper than decoding every frame, else ``"full"``.

    The rule and its measurements: :data:`SWITCH_FACTOR`. Unknown length (no frame count, no duration) stays full.
    """
    if plan.num_frames <= 0:
        return "full"
    return "windowed" if plan.num_frames > SWITCH_FACTOR * NUM_SLOTS * (window + 1 + LOOKAHEAD) else "full"
