"""The one public way to get a selection's slot frames as pixels.

Encoding, the LLaVA export, viz, the metrics and the benchmark all read the 64 slot frames through
:func:`slot_frames`, so every consumer shows exactly the frames the selector scored: each slot's frame is found by
its presentation timestamp (``Selection.timestamps``), not by counting decoded frames again, so a window
(``start``/``end``), a variable frame rate or a decoder that drops frames around damage cannot shift it. Streams
whose frames carry no timestamps (raw elementary streams) fall back to display-order counting, offset by
``report.frame_offset`` for a window.
"""

from __future__ import annotations

import numpy as np

from ..selection import NUM_SLOTS, Selection
from .video import read_frames

__all__ = ["slot_frames"]


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
    from .video import open_container

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
