"""Where the reference recipes get their per-frame inputs: motion vectors and the "residual picture".

The reference reads both from ``cv_reader`` (FFmpeg 5.1 patched so the H.264 IDCT writes ``128 + residual``).
Stock FFmpeg cannot produce that picture, so the residual picture is pluggable (:data:`RESIDUALS`):

- ``"emulated"``: :func:`codec_select.recipes.emulate.iter_emulated`, a reconstruction of the patched picture from stock
  decoding (H.264 only; the closest stand-in).
- ``"neutral"``: Y = U = V = 128 everywhere, i.e. no residual information: the selection is the MV term's.
- ``"stock"``: the stock decoded picture itself. This is what the reference really scores for HEVC, whose
  residual patch is not applied in its build (``patch.sh`` copies a file name that does not exist).

Motion: the codec's exported vectors (``"codec-mv"``), or, for codecs that export none, integer block matching
on consecutive frames (``"estimated-motion"``) shaped like cv_reader's whole-pixel grid.

:func:`choose_residual` and :func:`signal_choice` decide which sources run and say why; :func:`reference_frame_ids`
is the reference's frame sampling.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..decode.frames import motion_vector_fields, picture_type, yuv_planes
from ..decode.reader import Reader
from ..errors import DecodeError, SelectionTimeoutError, UnsupportedVideoError
from ..kernels import block_match, downscale2
from ..selection import NUM_SLOTS

__all__ = [
    "RESIDUALS",
    "SlotDecode",
    "SlotInputs",
    "choose_residual",
    "collect_inputs",
    "count_frames",
    "decode_slots",
    "emulation_available",
    "estimated_mv_grid",
    "reader_stats",
    "reference_frame_ids",
    "signal_choice",
]

RESIDUALS = ("auto", "emulated", "neutral", "stock")


@dataclass(frozen=True)
class SlotInputs:
    """What one wanted frame contributes: its vectors and its residual picture."""

    index: int
    time: float
    pict_type: str
    mvs: dict | None
    """Named AVMotionVector fields (see :class:`codec_select.decode.frames.DecodedFrame`), or None."""
    planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    """uint8 (Y [H, W], U, V [H/2, W/2]) of the residual picture (U, V None when luma only was asked); None when
    the source gives none."""
    luma: np.ndarray | None = None
    """uint8 stock luma of this frame (estimated motion only)."""
    prev_luma: np.ndarray | None = None
    """uint8 stock luma of the frame before (estimated motion only)."""


def emulation_available() -> bool:
    """Whether :mod:`codec_select.recipes.emulate` (the patched-picture emulation) is importable."""
    try:
        from . import emulate  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class SlotDecode:
    """What a recipe decodes: the 64 frame ids, each wanted frame's inputs, the coded size and the report."""

    frame_ids: np.ndarray
    inputs: dict[int, SlotInputs]
    height: int
    width: int
    report: object
    """A :class:`~codec_select.report.SelectionReport` (frames found vs declared, partial, signals and why)."""


def decode_slots(
    path: str, info, *, signals: str, residual: str, estimated: bool, fell_back: bool, notes: list[str],
    deadline: float | None = None, luma_only: bool = False,
) -> SlotDecode:
    """The reference's slot frames and their inputs, in one decode pass.

    N, the reference's ``len(read_video(...))``, comes from the packet timeline (demuxed, not decoded: one packet
    is one frame), so the only decode is the one that reads the slot frames; a stream without packet timestamps is
    counted by decoding. Frames that do not decode raise :class:`~codec_select.errors.DecodeError`; a stream that
    ends well before what the container declares is reported as partial (:mod:`codec_select.report`).
    ``luma_only``: the caller reads only the residual picture's Y, so the emulation skips chroma."""
    from ..decode.timeline import read_timeline
    from ..report import build_report

    timeline = read_timeline(path)
    if timeline is not None and timeline.times.size and not timeline.read_error:
        n, reached = int(timeline.times.size), float(timeline.end)
        h0, w0 = int(info.height), int(info.width)
    else:
        n, h0, w0 = count_frames(path, deadline=deadline)
        reached = math.nan
    frame_ids = reference_frame_ids(n)
    seen: dict = {}
    inputs = collect_inputs(path, frame_ids, residual=residual, estimated=estimated, shape=(h0, w0),
                            deadline=deadline, luma_only=luma_only, stats=seen)
    first = inputs[int(frame_ids[0])]
    plane = first.planes[0] if first.planes is not None else first.luma
    if plane is not None and plane.shape != (h0, w0):  # the probe's size is the container's; trust the pixels
        h0, w0 = plane.shape
    report = build_report(
        info, requested=signals, estimated=estimated, fell_back=fell_back,
        frames_decoded=seen.get("frames_decoded", n), frames_found=n, reached=reached,
        stopped_early=seen.get("stopped_early", ""), failed_packets=seen.get("failed_packets", 0), exact=True,
        offset=0, start=None, end=None,
        notes=tuple(notes),
    )
    return SlotDecode(frame_ids, inputs, h0, w0, report)


def _check_deadline(path: str, deadline: float | None) -> None:
    if deadline is not None and time.perf_counter() > deadline:
        raise SelectionTimeoutError(
            f"{path}: the per-video time budget ran out while decoding for the recipe. Raise the timeout."
        )


def count_frames(path: str, *, deadline: float | None = None) -> tuple[int, int, int]:
    """``(decoded frames, H0, W0)``: the reference's ``T_all = len(read_video(...))`` and frame 0's coded size."""
    n, h0, w0 = 0, 0, 0
    with Reader(path, fast=True) as reader:
        for _, frame in reader:
            _check_deadline(path, deadline)
            if n == 0:
                h0, w0 = frame.height, frame.width
            n += 1
    if n == 0:
        raise DecodeError(f"{path}: no frame decoded.")
    return n, h0, w0


def _iter_decoded(path: str, wanted: set[int], *, export_mvs: bool, keep_planes: bool,
                  stats: dict | None = None) -> Iterator[SlotInputs]:
    """Decode in display order; yield the wanted frames with their vectors (and stock planes when asked).
    ``stats`` receives the reader's damage counts (:func:`reader_stats`)."""
    last = max(wanted) if wanted else -1
    index = 0
    with Reader(path, export_mvs=export_mvs) as reader:
        for t, frame in reader:
            if index in wanted:
                mvs = motion_vector_fields(frame) if reader.exports_mvs else None
                yield SlotInputs(index, t, picture_type(frame), mvs, yuv_planes(frame) if keep_planes else None)
            index += 1
            if index > last:
                break
        if index == 0 and reader.tail_error:
            raise DecodeError(f"{path}: decoding failed before any frame ({reader.tail_error}).")
        if stats is not None:
            stats.update(reader_stats(reader))


def reader_stats(reader) -> dict:
    """What a recipe's decode saw of the damage: packets that failed, why decoding stopped early."""
    return {"failed_packets": len(reader.failed_at), "stopped_early": reader.tail_error,
            "frames_decoded": reader.frames_decoded}


def estimated_mv_grid(cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Block matching shaped like cv_reader's vectors: int32 ``[H/4, W/4, 4]``, whole pixels ``src − dst`` in L0.

    16-pixel blocks (8 on the 2× downscaled luma, radius 4 → ±8 px in steps of 2); each block fills its 4×4 cells.
    """
    h, w = cur.shape
    _, vector = block_match(downscale2(cur), downscale2(prev), block=8, radius=4)
    grid = np.zeros((h // 4, w // 4, 4), dtype=np.int32)
    whole = np.rint(vector * 2.0).astype(np.int32)  # downscaled px → source px (exact: integer search)
    cells = np.repeat(np.repeat(whole, 4, axis=0), 4, axis=1)
    gh, gw = min(cells.shape[0], grid.shape[0]), min(cells.shape[1], grid.shape[1])
    grid[:gh, :gw, :2] = cells[:gh, :gw]
    return grid


def collect_inputs(
    path: str, frame_ids: np.ndarray, *, residual: str, estimated: bool, shape: tuple[int, int],
    deadline: float | None = None, luma_only: bool = False, stats: dict | None = None,
) -> dict[int, SlotInputs]:
    """Inputs of every wanted frame id (display order), from one decode pass of the chosen sources.

    ``luma_only``: the emulated residual picture comes without chroma (planes ``(Y, None, None)``). ``stats``
    receives what the decode saw of damage (:func:`reader_stats`)."""
    stats = {} if stats is None else stats
    wanted = {int(i) for i in frame_ids}
    h0, w0 = shape
    out: dict[int, SlotInputs] = {}
    if residual == "emulated":
        from .emulate import iter_emulated

        for fr in iter_emulated(path, wanted=wanted, chroma=not luma_only,
                                reader_seen=lambda reader: stats.update(reader_stats(reader))):
            _check_deadline(path, deadline)
            if fr.index in wanted:
                planes = None if fr.y is None else (fr.y, fr.u, fr.v)
                out[fr.index] = SlotInputs(fr.index, fr.time, fr.pict_type, fr.mvs, planes)
    elif estimated:
        need = wanted | {i - 1 for i in wanted if i > 0}
        got = {}
        for s in _iter_decoded(path, need, export_mvs=False, keep_planes=True, stats=stats):
            _check_deadline(path, deadline)
            got[s.index] = s
        for i in wanted:
            if i not in got:
                continue
            s = got[i]
            prev = got.get(i - 1)
            planes = s.planes if residual == "stock" else None
            out[i] = SlotInputs(i, s.time, s.pict_type, None, planes, s.planes[0], prev.planes[0] if prev else None)
    else:
        for s in _iter_decoded(path, wanted, export_mvs=True, keep_planes=residual == "stock", stats=stats):
            _check_deadline(path, deadline)
            out[s.index] = s
    if residual == "neutral":
        y = np.full((h0, w0), 128, np.uint8)
        c = np.full(((h0 + 1) // 2, (w0 + 1) // 2), 128, np.uint8)
        out = {i: SlotInputs(s.index, s.time, s.pict_type, s.mvs, (y, c, c), s.luma, s.prev_luma)
               for i, s in out.items()}
    missing = wanted - set(out)
    if missing:
        raise DecodeError(
            f"{os.fspath(path)}: frames {sorted(missing)[:5]} did not decode on the second pass; the file is damaged."
        )
    return out


def reference_frame_ids(num_frames: int, slots: int = NUM_SLOTS) -> np.ndarray:
    """``np.linspace(0, N − 1, 64, dtype=int)`` (the reference's ``sample_frame_ids_uniform``), as int64."""
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    return np.linspace(0, num_frames - 1, slots, dtype=int).astype(np.int64)


def choose_residual(residual: str, codec: str, estimated: bool, *, stock_for_hevc: bool = True) -> tuple[str, str]:
    """(residual source, why). ``stock_for_hevc``: HEVC scores its decoded picture (stage 1: the reference's HEVC
    residual patch is not applied); the AP loader reads true HEVC residuals, which stock FFmpeg cannot give."""
    if residual not in RESIDUALS:
        raise ValueError(f"Invalid residual ({residual!r}). Supported values are {', '.join(RESIDUALS)}.")
    if residual == "emulated" and (codec != "h264" or not emulation_available()):
        why = "the emulation is not installed" if codec == "h264" else f"the emulation reads H.264 only, not {codec}"
        raise UnsupportedVideoError(f"residual='emulated' is unavailable: {why}. Use residual='neutral' or 'stock'.")
    if residual == "emulated" and estimated:
        raise ValueError("residual='emulated' rebuilds the picture from the codec's vectors; it does not combine "
                         "with signals='estimated-motion'. Use residual='stock' or 'neutral'.")
    if residual != "auto":
        return residual, "requested"
    if codec == "h264" and not estimated and emulation_available():
        return "emulated", "H.264: the patched residual picture is emulated from stock decoding"
    if codec == "hevc" and stock_for_hevc:
        return "stock", "HEVC: the reference's HEVC residual patch is not applied, it scores the decoded picture"
    if codec == "h264":
        why = "the emulation module is not installed" if not emulation_available() else "estimated motion requested"
        return "neutral", f"H.264 without emulation ({why}): neutral residual, the MV term alone ranks"
    return "neutral", f"{codec}: no patched-residual equivalent; neutral residual, the MV term alone ranks"


def signal_choice(info, signals: str) -> tuple[bool, str, bool]:
    """(estimated, reason, fell back)."""
    if signals not in ("auto", "codec-mv", "estimated-motion"):
        raise ValueError(f"Invalid signals ({signals!r}). Supported values are auto, codec-mv, estimated-motion.")
    if signals == "codec-mv" and not info.has_codec_mvs:
        raise UnsupportedVideoError(f"{info.path}: codec {info.codec} exports no motion vectors; use signals='auto'.")
    if signals == "estimated-motion":
        return True, "requested", False
    if info.has_codec_mvs:
        return False, f"{info.codec} exports motion vectors", False
    return True, f"{info.codec} exports no motion vectors (stock FFmpeg): block matching instead", signals == "auto"
