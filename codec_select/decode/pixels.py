"""The one public way to get a selection's slot frames as pixels.

Encoding, the LLaVA export, viz, the metrics and the benchmark all read the 64 slot frames through
:func:`slot_frames`, so every consumer shows exactly the frames the selector scored: each slot's frame is found by
its presentation timestamp (``Selection.timestamps``), not by counting decoded frames again, so a window
(``start``/``end``), a variable frame rate or a decoder that drops frames around damage cannot shift it. Streams
whose frames carry no timestamps (raw elementary streams) fall back to display-order counting, offset by
``report.frame_offset`` for a window.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import DecodeError
from ..selection import NUM_SLOTS, Selection
from .container import open_container, upright
from .frames import luma_plane
from .reader import Reader

__all__ = ["slot_frames", "read_frames"]


def slot_frames(
    selection: Selection, *, canvas: bool = True, slots: np.ndarray | None = None, luma: bool = False
) -> np.ndarray:
    """Decode the frames shown at the selection's slots.

    Args:
        selection: a :class:`~codec_select.selection.Selection` (its ``video`` must still exist).
        canvas: put each frame on the selection's canvas (the geometry's resize / crop / letterbox, what the encoder
            sees); False returns the frames as decoded, at source size with the display rotation applied.
        slots: which slots (default all 64, in order; repeats allowed). A frame shown at several slots (short
            videos) is decoded once.
        luma: return the luma plane instead of RGB.

    Returns:
        uint8 ``[len(slots), H, W, 3]`` (RGB) or ``[len(slots), H, W]`` (luma).

    Raises:
        codec_select.errors.DecodeError: a slot's frame does not decode again (the file changed, or is damaged
            there); no neighbouring frame is ever shown in its place.
    """
    if not selection.video:
        raise ValueError("The selection names no video file; decode its frames yourself.")
    slots = np.arange(NUM_SLOTS) if slots is None else np.asarray(slots, dtype=np.int64).reshape(-1)
    g = selection.geometry
    if slots.size == 0:
        h, w = (g.canvas_h, g.canvas_w) if canvas else (g.source_h, g.source_w)
        return np.zeros((0, h, w) if luma else (0, h, w, 3), np.uint8)
    ids = np.asarray(selection.frame_ids, dtype=np.int64)[slots]
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    stamps = np.asarray(selection.timestamps, dtype=np.float64)[slots][first]
    frames = _decode(selection, uniq, stamps, rgb=not luma)
    if canvas:
        frames = np.stack([g.to_canvas(f) for f in frames])
    return frames[inverse.reshape(-1)]


def _decode(selection: Selection, ids: np.ndarray, stamps: np.ndarray, *, rgb: bool) -> np.ndarray:
    if np.all(np.isfinite(stamps)) and _packets_have_timestamps(selection.video):
        return read_frames(selection.video, ids, rgb=rgb, timestamps=stamps)
    # Frames without timestamps (their times were extrapolated): count display-order frames from the file's start.
    return read_frames(selection.video, ids + int(selection.report.frame_offset), rgb=rgb)


def _packets_have_timestamps(path: str) -> bool:
    """Whether the first video packet carries a presentation timestamp (a raw H.264/MPEG stream's do not)."""
    container, stream = open_container(path)
    try:
        for packet in container.demux(stream):
            if packet.size:
                return packet.pts is not None
        return False
    except Exception:  # noqa: BLE001 - a damaged header: let read_frames count and report what fails
        return False
    finally:
        container.close()


def read_frames(
    path: str | os.PathLike, frame_ids: np.ndarray, *, rgb: bool = True, rotation: int | None = None,
    timestamps: np.ndarray | None = None,
) -> np.ndarray:
    """Decode the frames at display-order indices ``frame_ids`` (repeats allowed) and return them upright.

    ``timestamps`` (seconds, one per id, e.g. ``Selection.timestamps``): find each frame by its presentation time
    instead of by counting decoded frames, so the same frame comes back whatever a decoder drops around damaged
    packets. A frame that does not decode raises :class:`~codec_select.errors.DecodeError`; no neighbour is ever
    shown in its place. (Frame threads drop frames next to a damaged stretch that slice threads, which the
    selector's decode uses, keep: frames missing from the fast frame-threaded pass are decoded again that way.)

    Returns uint8 ``[len(frame_ids), H, W, 3]`` (RGB) or ``[len(frame_ids), H, W]`` (luma).
    """
    frame_ids = np.asarray(frame_ids, dtype=np.int64)
    stamps = None
    if timestamps is not None:
        stamps = np.asarray(timestamps, dtype=np.float64)
        if stamps.shape != frame_ids.shape:
            raise ValueError("timestamps must match frame_ids one to one.")
    wanted = set(frame_ids.tolist())
    got: dict[int, np.ndarray] = {}
    decoded = 0
    rot = [rotation]
    for thread_type in ("AUTO", "SLICE"):
        if stamps is None:
            got.clear()  # counted frames: one pass's numbering only (the passes may drop different frames)
        with Reader(path, thread_type=thread_type) as reader:
            by_pts = None
            if stamps is not None:
                if not reader.time_base:
                    raise DecodeError(f"{reader.path}: the stream has no time base; read frames by index instead.")
                by_pts = {round(t / reader.time_base): int(i) for t, i in zip(stamps.tolist(), frame_ids.tolist())
                          if i not in got}
            decoded = _read_pass(reader, wanted - set(got), by_pts, rgb, rot, got)
        if not wanted - set(got):
            break
    missing = sorted(wanted - set(got))
    if missing:
        # Never a neighbour in place of a frame that is not there: the caller would show other pixels than it scored.
        shown = ", ".join(str(m) for m in missing[:8]) + (", ..." if len(missing) > 8 else "")
        raise DecodeError(
            f"{os.fspath(path)}: {len(missing)} requested frame(s) did not decode (display-order index {shown}; "
            f"{decoded} frames decoded). The file is truncated or corrupt, or the ids do not belong to this file."
        )
    order = sorted(got)
    stacked = _stack_at_first_size([got[i] for i in order])  # a resolution change mid-stream: the first frame's size
    row = {key: n for n, key in enumerate(order)}
    return stacked[[row[int(i)] for i in frame_ids]]


def _read_pass(reader: Reader, wanted: set[int], by_pts: dict[int, int] | None, rgb: bool, rot: list,
               got: dict[int, np.ndarray]) -> int:
    """One decode from the start: put the wanted frames (by display-order count, or by pts when ``by_pts``) in
    ``got``; stop after the last one. Returns the frames decoded."""
    last = max(wanted) if wanted else -1
    last_pts = max(by_pts) if by_pts else None
    if by_pts is not None and not by_pts:
        return 0
    index = 0
    for _, frame in reader:
        key = index if by_pts is None else by_pts.get(frame.pts) if frame.pts is not None else None
        if key is not None and key in wanted and key not in got:
            if rot[0] is None:
                rot[0] = round(frame.rotation or 0)
            got[key] = upright(frame.to_ndarray(format="rgb24") if rgb else luma_plane(frame), rot[0])
        index += 1
        if index > last if by_pts is None else frame.pts is not None and frame.pts >= last_pts:
            break
    return index  # a damaged tail ends the pass early: the caller reports what is missing


def _stack_at_first_size(frames: list[np.ndarray]) -> np.ndarray:
    """Stack frames of possibly different sizes (a resolution change mid-stream) at the first frame's size."""
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):
        from PIL import Image

        frames = [f if f.shape == shape else
                  np.asarray(Image.fromarray(f).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))
                  for f in frames]
    return np.stack(frames)
