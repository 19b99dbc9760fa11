"""What a selection really rests on: which signals ran and why, how much of the video decoded against what the
container declares, and whether the slot frame ids are exact. A truncated or broken file is reported as partial,
never passed off as whole.

Partial (:func:`partial_reason`): the stream ends well before what the container declares, or decoding stopped
on an error. "Well before" is a tolerance chosen so that a whole file never trips it and a cut one does:

- time: the last frame found ends more than ``min(1 s, 5 % of the declared duration)`` (at least two frame
  intervals, the slack of a last frame without a duration) before the declared end of the stream (or of the
  requested ``end``);
- count (whole file only, where the container states an exact count: the MP4 sample table, a Matroska
  ``NUMBER_OF_FRAMES`` tag): fewer than :data:`FRAME_SHARE` of the declared frames were found.

A duration that only the container states (all streams, audio included) can be longer than the video by design
(audio that outlasts the picture): then the time rule is not applied and a note says why.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

__all__ = ["FRAME_SHARE", "TIME_SHARE", "TIME_SLACK_S", "SelectionReport", "build_report", "partial_reason",
           "signals_reason"]

FRAME_SHARE = 0.95
"""A whole-file decode that finds fewer than this share of the frames the container declares is partial."""
TIME_SHARE = 0.05
"""Missing time tolerated, as a share of the declared duration (capped at :data:`TIME_SLACK_S`)."""
TIME_SLACK_S = 1.0
"""Missing time tolerated at most, in seconds (a long video missing a few seconds is partial)."""


@dataclass(frozen=True)
class SelectionReport:
    """How a :class:`~codec_select.selection.Selection` came about (``sel.report``; ``print(sel.report)``)."""

    signals: str = ""
    """The signal path that ran: ``"codec-mv"`` or ``"estimated-motion"``."""
    signals_reason: str = ""
    """Why that path ran (the request, the codec, or the fallback and its cause)."""
    signals_fallback: bool = False
    """The requested path could not run and another one did (e.g. an MV codec that exported no vectors)."""
    frames_decoded: int = 0
    """Frames that came out of the decoder over the window (windowed mode: the pre-roll included, not every frame)."""
    frames_found: int = 0
    """Frames the stream holds over the window: decoded (full mode) or demuxed from the timeline (windowed)."""
    frames_declared: int = 0
    """Frame count the container states for the whole file (0 when it states none)."""
    seconds_decoded: float = 0.0
    """Seconds from the start of the stream to where the last frame found ends."""
    seconds_declared: float = 0.0
    """Duration the container declares for the video (0.0 when unknown)."""
    damaged_packets: int = 0
    """Packets that failed to decode and were skipped (corrupt frames are in ``Selection.damaged_frames``)."""
    partial: bool = False
    """The stream ended well before what the container declares, or decoding stopped early on an error."""
    partial_reason: str = ""
    """Why :attr:`partial` is set (empty when it is not)."""
    frame_ids_exact: bool = False
    """``frame_ids`` are exact display-order indices (True), or estimated from timestamps × frame rate (False:
    packets without timestamps, windowed mode)."""
    frame_offset: int = 0
    """Display-order index, counted from the start of the file, of the frame ``frame_ids`` count from (the first
    frame at or after ``start``; 0 without a time window): the file's frame is ``frame_ids + frame_offset``."""
    notes: tuple[str, ...] = ()
    """Everything else worth knowing that did not fail the selection (what probing could not read, ...)."""

    @property
    def fallback(self) -> bool:
        """Whether anything fell back: signals other than requested, or frame ids estimated instead of exact."""
        return self.signals_fallback or not self.frame_ids_exact

    def __str__(self) -> str:
        lines = [
            f"signals   {self.signals or '?'}" + (" (fallback)" if self.signals_fallback else "")
            + (f": {self.signals_reason}" if self.signals_reason else ""),
            (f"frames    {self.frames_found} found, {self.frames_decoded} decoded, "
             f"{self.frames_declared or 'no count'} declared by the container"),
            f"seconds   {self.seconds_decoded:.3f} reached of {self.seconds_declared:.3f} declared",
            f"frame ids {'exact' if self.frame_ids_exact else 'ESTIMATED (timestamps x frame rate)'}"
            + (f", counted from frame {self.frame_offset} of the file" if self.frame_offset else ""),
        ]
        if self.damaged_packets:
            lines.append(f"damage    {self.damaged_packets} packet(s) failed to decode and were skipped")
        lines.append(f"partial   YES: {self.partial_reason}" if self.partial else "partial   no (the whole stream)")
        lines += [f"note      {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-able fields (``notes`` as a list)."""
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict | None) -> SelectionReport:
        """Inverse of :meth:`to_dict`; unknown keys (a newer writer) are ignored, missing ones take defaults."""
        if not data:
            return cls()
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if "notes" in kwargs:
            kwargs["notes"] = tuple(kwargs["notes"])
        return cls(**kwargs)


def partial_reason(
    *,
    seconds_reached: float,
    seconds_declared: float,
    duration_source: str,
    window_end: float | None,
    frames_found: int,
    frames_declared: int,
    whole_file: bool,
    fps: float,
    stopped_early: str = "",
) -> str:
    """Why the decode is partial, or ``""`` when it covers what the container declares (rules: module doc).

    ``seconds_*`` count from the start of the stream; ``window_end`` is the requested ``end`` in the same terms."""
    if stopped_early:
        return stopped_early
    reasons = []
    if whole_file and frames_declared > 0 and frames_found < FRAME_SHARE * frames_declared:
        reasons.append(f"{frames_found} of the {frames_declared} frames the container declares "
                       f"({frames_found / frames_declared:.0%})")
    if seconds_declared > 0 and duration_source in ("stream", "tag") and math.isfinite(seconds_reached):
        target = seconds_declared if window_end is None else min(seconds_declared, window_end)
        step = 1.0 / fps if 0.1 < fps < 1000 else 0.04
        slack = max(min(TIME_SLACK_S, TIME_SHARE * seconds_declared), 2 * step)
        if target - seconds_reached > slack:
            reasons.append(f"the stream ends at {seconds_reached:.2f} s of the {target:.2f} s declared")
    return "; ".join(reasons)


def signals_reason(requested: str, codec: str, has_codec_mvs: bool, estimated: bool, fell_back: bool) -> str:
    """One sentence on why the signals that ran did (never a silent switch)."""
    if fell_back:
        return (f"{codec} exported no motion vectors in this stream (all-intra, or no inter frames); fell back to "
                "estimated motion (block matching on the luma)")
    if requested != "auto":
        return f"requested (signals={requested!r})"
    if estimated:
        return f"{codec} exports no motion vectors (stock FFmpeg); motion estimated by block matching on the luma"
    return f"{codec} exports motion vectors (signals='auto')"


def build_report(
    info,
    *,
    requested: str,
    estimated: bool,
    fell_back: bool,
    frames_decoded: int,
    frames_found: int,
    reached: float,
    stopped_early: str,
    failed_packets: int,
    exact: bool,
    offset: int,
    start: float | None,
    end: float | None,
    notes: tuple[str, ...] = (),
) -> SelectionReport:
    """The report of one run, from the probe (``info``, a :class:`~codec_select.decode.container.VideoInfo`) and what the
    decode saw (``reached``: absolute time in seconds where the last frame found ends; NaN when unknown)."""
    notes = tuple(getattr(info, "notes", ())) + tuple(notes)
    t_start = float(getattr(info, "start_time", 0.0) or 0.0)
    seconds = reached - t_start if math.isfinite(reached) else 0.0
    source = getattr(info, "duration_source", "")
    if failed_packets:
        notes += ((f"{failed_packets} packet(s) failed to decode: full mode counts the frames that decoded, windowed "
                   "mode the container's frames; the timestamps identify the slot frames either way "
                   "(read_frames(..., timestamps=sel.timestamps))"),)
    if source == "container" and info.duration > 0:
        notes += ("the declared duration covers every stream (audio included): it is not compared with the video's",)
    reason = partial_reason(
        seconds_reached=seconds if math.isfinite(reached) else math.nan, seconds_declared=float(info.duration),
        duration_source=source, window_end=None if end is None else float(end) - t_start,
        frames_found=frames_found, frames_declared=int(getattr(info, "frames_declared", 0)),
        whole_file=start is None and end is None, fps=float(info.fps), stopped_early=stopped_early,
    )
    return SelectionReport(
        signals="estimated-motion" if estimated else "codec-mv",
        signals_reason=signals_reason(requested, info.codec, info.has_codec_mvs, estimated, fell_back),
        signals_fallback=fell_back, frames_decoded=int(frames_decoded), frames_found=int(frames_found),
        frames_declared=int(getattr(info, "frames_declared", 0)), seconds_decoded=round(max(seconds, 0.0), 6),
        seconds_declared=round(float(info.duration), 6), damaged_packets=int(failed_packets), partial=bool(reason),
        partial_reason=reason, frame_ids_exact=bool(exact), frame_offset=int(offset), notes=notes,
    )
