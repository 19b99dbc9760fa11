"""The OneVision reference's "residual" pictures, emulated from a stock H.264 decode.

The reference (``cv_reader``) decodes with an FFmpeg whose H.264 inverse transform writes ``clip(128 + residual)``
instead of ``clip(prediction + residual)``. Blocks without coefficients keep their prediction, which comes from
earlier *patched* pictures, so skipped regions carry stale residual forward by motion compensation; deblocking runs
on top. Stock FFmpeg cannot be patched from Python, so this module rebuilds that picture per frame, in decoding
order, from the true decoded planes and the exported motion vectors (:mod:`codec_select.recipes.picture`; this
module reads the stream: decoding order, headers, planes, display-order output).

What the stock decoder does not export is rebuilt or guessed: reference lists, explicit weights and frame numbers
come from the slice headers (``codec_select.recipes.h264_headers``); which reference index a partition used, intra modes
and the intra 4×4/16×16 split are chosen by the smallest prediction error on the true picture; a 4×4 block is
"coded" when its rebuilt residual is non-zero; the loop filter runs on the result with the exported macroblock QPs.
Not modelled: sub-8×8 partitions (exported as one 8×8 vector), the 8×8 transform and intra 8×8 of High profile
(approximated by 4×4 blocks), explicit weights in B slices (x264 writes implicit ones), field/MBAFF coding and
multiple slices per picture (the first slice header stands for the picture). Only 8-bit 4:2:0 H.264 is
supported.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..decode.frames import motion_vector_fields, picture_type, side_data
from ..decode.reader import Reader
from ..errors import DecodeError, UnsupportedVideoError
from .dependencies import emulation_needs
from .h264_headers import is_reference, max_ref_frames, nal_length_size, parameter_sets, slice_header
from .picture import RING, Picture, PictureEmulator

__all__ = ["LOOP_FILTER", "EmulatedFrame", "iter_emulated"]

LOOP_FILTER = 0
"""1: decode the true pictures deblocked. 0 (default): skip the stock deblocking, so every picture is exactly
prediction + residual from equally unfiltered references: ``Y − prediction`` is then the decoded residual itself
(zero for blocks without coefficients) and intra prediction sees the unfiltered neighbours H.264 specifies.
Measured on XwB (before the weights and the loop filter were emulated): IoU 0.836 unfiltered vs 0.760 deblocked,
both with a luma threshold of 16."""

_FORMATS = ("yuv420p", "yuvj420p")
_MAX_PENDING = 32  # frames held for reordering before a missing decode index is given up on

@dataclass(frozen=True, slots=True)
class EmulatedFrame:
    """One decoded frame in display order with its emulated patched picture."""

    index: int
    """Display-order index among decoded frames, from 0."""
    time: float
    """Presentation time in seconds."""
    pict_type: str
    """``"I"``, ``"P"``, ``"B"`` or ``"?"``."""
    mvs: dict | None
    """Named motion-vector fields as in :attr:`codec_select.decode.frames.DecodedFrame.mvs`, or None."""
    y: np.ndarray | None
    """uint8 [H, W]: emulated patched luma (None if not requested)."""
    u: np.ndarray | None
    """uint8 [H/2, W/2]: emulated patched Cb (None if not requested or luma only)."""
    v: np.ndarray | None
    """uint8 [H/2, W/2]: emulated patched Cr."""

    def __repr__(self) -> str:
        nmv = 0 if self.mvs is None else len(self.mvs["source"])
        shape = None if self.y is None else self.y.shape
        return f"EmulatedFrame(index={self.index}, time={self.time:.3f}, type={self.pict_type}, mvs={nmv}, y={shape})"


def _qp_map(frame, planes) -> np.ndarray | None:
    """int32 [H/16, W/16] macroblock QPs from the decoder's VIDEO_ENC_PARAMS side data, or None."""
    sd = side_data(frame).get("VIDEO_ENC_PARAMS")
    if sd is None or not hasattr(sd, "qp_map"):
        return None
    shape = (planes[0].shape[0] // 16, planes[0].shape[1] // 16)
    qp = _qp_from_blocks(sd, shape)
    if qp is None:
        try:
            qp = np.ascontiguousarray(sd.qp_map(), dtype=np.int32)
        except (AttributeError, TypeError, ValueError, RuntimeError):  # no working qp_map: leave pictures unfiltered
            return None
    if qp.shape != shape or qp.min() < 0 or qp.max() > 51:
        return None
    return qp


def _qp_from_blocks(sd, shape: tuple[int, int]) -> np.ndarray | None:
    """``sd.qp_map()`` read straight from the side data's block array (AVVideoBlockParams: src_x, src_y, w, h,
    delta_qp as int32), a tenth of its cost; None unless it is exactly one 16×16 block per macroblock (then the
    caller asks PyAV)."""
    try:
        n, offset, size = int(sd.nb_blocks), int(sd.blocks_offset), int(sd.block_size)
        raw = np.frombuffer(memoryview(sd), np.uint8)
    except (AttributeError, TypeError, ValueError, BufferError):
        return None
    if size != 20 or n != shape[0] * shape[1] or offset < 0 or offset + n * size > raw.size or offset % 4:
        return None
    blocks = raw[offset: offset + n * size].view(np.int32).reshape(n, 5)
    x, y = blocks[:, 0], blocks[:, 1]
    if (blocks[:, 2] != 16).any() or (blocks[:, 3] != 16).any() or (x % 16).any() or (y % 16).any() \
            or x.min() < 0 or y.min() < 0 or x.max() >= 16 * shape[1] or y.max() >= 16 * shape[0]:
        return None
    qp = np.full(shape, -1, np.int32)
    qp[y // 16, x // 16] = int(sd.qp) + blocks[:, 4]
    return None if (qp < 0).any() else qp  # a macroblock named twice (so another never): PyAV decides


def _coded_plane(frame, index: int, height: int, width: int) -> np.ndarray:
    """Plane ``index`` at the coded size. FFmpeg crops right/bottom by shrinking the width only, so the decoded
    columns beyond it (up to the macroblock edge) are still in the buffer: motion compensation near the right edge
    needs them. Rows or columns the buffer lacks repeat the edge."""
    plane = frame.planes[index]
    line = plane.line_size
    buf = np.frombuffer(plane, np.uint8)
    rows = buf.size // line
    arr = buf[: rows * line].reshape(rows, line)[:height, :width]
    if arr.shape != (height, width):
        arr = np.pad(arr, ((0, height - arr.shape[0]), (0, width - arr.shape[1])), mode="edge")
    return np.ascontiguousarray(arr)


def iter_emulated(path: str | os.PathLike, *, wanted: set[int] | None = None, chroma: bool = True,
                  reader_seen: Callable[[Reader], None] | None = None,
                  only_dependencies: bool = True) -> Iterator[EmulatedFrame]:
    """Every decoded frame in display order; planes only for display indices in ``wanted`` (all if None).

    Frames that no later frame references and that are not wanted skip the emulation work. ``chroma=False``
    emulates luma only (the same luma: nothing in it depends on chroma) and yields ``u = v = None``. Raises
    :class:`~codec_select.errors.UnsupportedVideoError` for anything but 8-bit 4:2:0 H.264. ``reader_seen`` is
    called with the :class:`~codec_select.decode.reader.Reader` once decoding has ended (its damage counts).
    ``only_dependencies``: emulate only the reference pictures a wanted picture depends on
    (:func:`~codec_select.recipes.dependencies.emulation_needs`); the wanted pictures come out the same either way.
    """
    path = os.fspath(path)
    needs = emulation_needs(path, wanted) if wanted is not None and only_dependencies else None
    # The selector's decoder settings (vectors, slice threads) plus the encoder parameters that carry the QP map;
    # the loop filter only when the emulated picture is compared with a deblocked one.
    with Reader(path, export_mvs=True, fast=not LOOP_FILTER, options={"export_side_data": "venc_params"}) as reader:
        if reader.codec != "h264":
            raise UnsupportedVideoError(
                f"{path}: the residual emulation needs H.264, this stream is {reader.codec}. "
                "Use a selector without the emulated residual for other codecs, or re-encode to H.264."
            )
        yield from _emulate_stream(path, reader, wanted, chroma, needs)
        if reader_seen is not None:
            reader_seen(reader)


def _emulate_stream(path: str, reader: Reader, wanted: set[int] | None, chroma: bool = True,
                    needs: set[int] | None = None) -> Iterator[EmulatedFrame]:
    stream = reader.stream
    length_size = nal_length_size(stream.codec_context.extradata)
    sets = parameter_sets(stream.codec_context.extradata)
    dpb_size = max_ref_frames(stream.codec_context.extradata) or RING
    time_base = float(stream.time_base) if stream.time_base is not None else 0.0
    rate = float(stream.guessed_rate or stream.average_rate or 0.0)
    step = 1.0 / rate if 0.1 < rate < 1000 else 1.0 / 25
    # Decoding order per frame: the packet's opaque value copied onto its frame (raw Annex B streams carry no
    # timestamps), else the packet whose pts the frame carries.
    decode_of_pts: dict[int, tuple[int, bool, dict | None]] = {}  # pts → (decode index, reference, header)
    copy_opaque = hasattr(stream.codec_context, "copy_opaque")
    if copy_opaque:
        try:
            stream.codec_context.copy_opaque = True
        except (AttributeError, TypeError, ValueError):
            copy_opaque = False
    pending: dict[int, Picture] = {}  # decode index → frame waiting for its references
    ready: dict[int, EmulatedFrame] = {}  # display index → finished frame
    state = {"next_decode": 0, "next_display": 0, "packets": 0, "display": 0, "last_t": math.nan}
    emulator: list[PictureEmulator] = []

    def finish(item: Picture) -> None:
        planes = None
        if item.planes is not None:
            if not emulator:
                emulator.append(PictureEmulator(item.planes[0].shape[0], item.planes[0].shape[1], dpb_size,
                                                chroma))
            planes = emulator[0].run(item)
        want = planes is not None and (wanted is None or item.display in wanted)
        want_chroma = want and chroma
        h, w = state["height"], state["width"]
        ready[item.display] = EmulatedFrame(
            index=item.display, time=item.time, pict_type=item.pict_type, mvs=item.mvs,
            y=np.ascontiguousarray(planes[0][:h, :w]) if want else None,
            u=np.ascontiguousarray(planes[1][: (h + 1) // 2, : (w + 1) // 2]) if want_chroma else None,
            v=np.ascontiguousarray(planes[2][: (h + 1) // 2, : (w + 1) // 2]) if want_chroma else None,
        )

    def drain(final: bool) -> Iterator[EmulatedFrame]:
        while pending:
            nxt = state["next_decode"]
            if nxt not in pending:
                if not final and len(pending) < _MAX_PENDING:
                    break
                nxt = min(pending)  # a packet that produced no frame: do not wait for it
            finish(pending.pop(nxt))
            state["next_decode"] = nxt + 1
        while state["next_display"] in ready:
            yield ready.pop(state["next_display"])
            state["next_display"] += 1

    def accept(frame) -> None:
        if frame.format.name not in _FORMATS:
            raise UnsupportedVideoError(
                f"{path}: the residual emulation needs 8-bit 4:2:0 video, this stream is {frame.format.name}. "
                "Re-encode it with -pix_fmt yuv420p."
            )
        state.setdefault("height", frame.height)
        state.setdefault("width", frame.width)
        if (frame.height, frame.width) != (state["height"], state["width"]):
            raise UnsupportedVideoError(f"{path}: the frame size changes mid-stream; re-encode it at one size.")
        display = state["display"]
        state["display"] += 1
        if frame.pts is not None and time_base:
            t = float(frame.pts * time_base)
        else:
            t = state["last_t"] + step if state["last_t"] == state["last_t"] else display * step
        state["last_t"] = t
        tag = getattr(frame, "opaque", None)
        if isinstance(tag, tuple):  # the packet's (decode index, reference, header) travelled with the frame
            decode, is_ref, header = tag
            decode_of_pts.pop(frame.pts, None)
        elif frame.pts is not None:
            decode, is_ref, header = decode_of_pts.pop(frame.pts, (None, True, None))
        else:
            decode, is_ref, header = None, True, None
        if decode is None:  # no timestamp to place it: treat it as next in decoding order
            decode = state["next_decode"] + len(pending)
            while decode in pending:
                decode += 1
        pict = picture_type(frame)
        needed = wanted is None or display in wanted or (is_ref and (needs is None or frame.pts in needs))
        planes = None
        if needed:
            ch, cw = -(-frame.height // 16) * 16, -(-frame.width // 16) * 16
            planes = (_coded_plane(frame, 0, ch, cw), _coded_plane(frame, 1, ch // 2, cw // 2),
                      _coded_plane(frame, 2, ch // 2, cw // 2))
        pending[decode] = Picture(display, t, pict, bool(frame.key_frame), is_ref, header,
                                   _qp_map(frame, planes) if planes is not None else None, motion_vector_fields(frame), planes)

    def on_packet(packet) -> None:
        if packet.size:
            data = bytes(packet)
            parameter_sets(data, sets, length_size)  # in-band parameter sets (Annex B, some mp4s)
            tag = (state["packets"], is_reference(data, length_size), slice_header(data, length_size, sets))
            if packet.pts is not None:
                decode_of_pts[packet.pts] = tag
            if copy_opaque:
                packet.opaque = tag
            state["packets"] += 1

    # A damaged packet is skipped by the reader: its frame never arrives and drain() stops waiting for it.
    reader.on_packet = on_packet
    for _, frame in reader:
        accept(frame)
        yield from drain(final=False)
    if reader.tail_error and not reader.frames_decoded:
        raise DecodeError(f"{path}: decoding failed before any frame ({reader.tail_error}). The file is truncated or "
                          "corrupt.")
    yield from drain(final=True)
    if not reader.frames_decoded:
        raise DecodeError(f"{path}: no decodable video frame. The file is truncated, empty or corrupt; re-encode it.")
