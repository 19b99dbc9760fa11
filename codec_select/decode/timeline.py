"""The display-order frame timeline of a video, from its packets' timestamps (demuxed, never decoded).

Why: a slot's identity is its presentation timestamp, and a frame's display-order index is its rank among the
timestamps of the stream. Decoding to count is what full mode does anyway; windowed mode (and full mode with a
``start``) must know indices without decoding everything. Demuxing reads every packet but decodes none: ~8 ms for
2400 frames of 128×96, the file's read time for large ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

from .container import open_container

__all__ = ["Timeline", "read_timeline", "window_offset"]


@dataclass(frozen=True)
class Timeline:
    """Every frame the container holds, in display order, from its packets' timestamps (demuxed, not decoded).

    One packet is one frame for the codecs we read, so the sorted packet timestamps are the display-order frame
    timeline: frame ``k`` (counted from the start of the file) is shown at ``times[k]``. A truncated file holds
    fewer packets than its header declares; they are what this counts."""

    pts: np.ndarray
    """int64 [N] sorted presentation timestamps in ``time_base`` units."""
    times: np.ndarray
    """float64 [N] the same in seconds (``pts · time_base``, computed as the decoders' frame times are)."""
    keyframe_times: np.ndarray
    """float64 sorted presentation times of the key-frame packets."""
    time_base: float
    """Seconds per timestamp unit."""
    end: float
    """Where the last frame ends in seconds (its timestamp plus its packet duration)."""
    read_error: str = ""
    """Why demuxing stopped before the end of the file (empty when it reached the end)."""

    def index_of(self, t: float) -> int:
        """Display-order index of the frame shown at ``t`` seconds: exact for a frame's own time, the frame before
        for a time between frames, −1 before the first and ``N`` after the last."""
        n = self.times.size
        if n == 0 or t > self.times[-1] + 0.25 * self.time_base:
            return n
        eps = 0.25 * self.time_base
        i = int(np.searchsorted(self.times, t - eps, side="left"))
        if i < n and abs(self.times[i] - t) <= eps:
            return i
        return int(np.searchsorted(self.times, t, side="right")) - 1


def read_timeline(path: str | os.PathLike) -> Timeline | None:
    """The display-order frame timeline of the first video stream, or None when a packet carries no timestamp
    (raw elementary streams, some AVI): then frame indices can only be estimated."""
    container, stream = open_container(path)
    pts: list[int] = []
    keys: list[int] = []
    last_end = None
    error = ""
    try:
        if stream.time_base is None:
            return None
        tb = float(stream.time_base)
        try:
            for packet in container.demux(stream):
                if not packet.size or getattr(packet, "is_discard", False):
                    continue  # the demuxer's end-of-stream marker; packets an edit list cuts are never shown
                if packet.pts is None:
                    return None
                pts.append(int(packet.pts))
                if packet.is_keyframe:
                    keys.append(int(packet.pts))
                end = int(packet.pts) + int(packet.duration or 0)
                last_end = end if last_end is None else max(last_end, end)
        except av.error.FFmpegError as exc:  # a damaged tail: the packets read so far are the timeline
            error = f"{type(exc).__name__}: {exc}"
    finally:
        container.close()
    arr = np.unique(np.asarray(pts, dtype=np.int64))
    if arr.size != len(pts):
        return None  # two packets at one timestamp: timestamps do not identify frames here
    times = arr.astype(np.float64) * tb
    key_times = np.unique(np.asarray(keys, dtype=np.int64)).astype(np.float64) * tb
    end = float(last_end * tb) if last_end is not None else 0.0
    if times.size:
        end = max(end, float(times[-1]))
    return Timeline(pts=arr, times=times, keyframe_times=key_times, time_base=tb, end=end, read_error=error)


def window_offset(path: str | os.PathLike, first_time: float, *, before_start: int = 0, seeked: bool = True,
                  fps: float = 0.0, start_time: float = 0.0) -> tuple[int, bool]:
    """Display-order index, from the start of the file, of the frame shown at ``first_time`` (the first frame of a
    ``start`` window), and whether it is exact. Without timestamps to count: the frames a decode from the start
    dropped (``before_start``, exact when no seek skipped any), else time × ``fps`` (estimated)."""
    timeline = read_timeline(path)
    if timeline is not None and timeline.times.size:
        return max(0, min(timeline.index_of(first_time), timeline.times.size - 1)), True
    if not seeked:
        return int(before_start), True
    rate = fps if 0.1 < fps < 1000 else 25.0
    return max(0, round((first_time - start_time) * rate)), False
