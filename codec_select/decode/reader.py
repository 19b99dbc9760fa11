"""The one decoder: every path that needs decoded frames (full selection, windowed selection, slot pixels, the
recipes' inputs, the baselines) reads them through :class:`Reader`.

A Reader opens the first video stream once, configures the decoder in one place (:func:`decoder_settings`), hands
out frames in display order with their presentation time, seeks by timestamp, skips damaged packets while counting
them; what the container declares (frame count, duration) is :func:`~codec_select.decode.container.probe`'s, which
the report compares with what was decoded.

Threading (measured, PyAV 18.1 / FFmpeg 8): frame threading changes the exported motion vectors of some B-frames,
differently on every run, so MV export decodes with ``SLICE`` threads only (identical vectors on every run).
Codecs that export no vectors (HEVC, VP9, AV1) decode with ``AUTO`` threads. ``skip_loop_filter=all`` decodes
~20 % faster with identical vectors; the luma is then un-deblocked, which only adds a little blocking to the residual.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator

import av

from ..errors import DecodeError
from .container import MV_CODECS, open_container
from .frames import DecodedFrame, luma_plane, motion_vector_fields, picture_type

__all__ = ["Reader", "decoder_settings", "iter_frames", "MAX_FAILED_PACKETS"]

MAX_FAILED_PACKETS = 1000
"""Packets that may fail to decode before the stream is declared corrupt (a few damaged packets are concealed)."""


def decoder_settings(codec: str, *, export_mvs: bool, fast: bool, extra: dict | None = None) -> tuple[dict, str]:
    """``(codec options, thread type)`` for ``codec``: the motion-vector export only where stock FFmpeg has it, and
    then slice threads only (frame threads scramble B-frame vectors run to run); ``fast`` skips the loop filter."""
    options = {}
    mvs = export_mvs and codec in MV_CODECS
    if mvs:
        options["flags2"] = "+export_mvs"
    if fast:
        options["skip_loop_filter"] = "all"
    options.update(extra or {})
    return options, ("SLICE" if mvs else "AUTO")


class Reader:
    """The first video stream of ``path``, decoded in display order from wherever the last :meth:`seek` put it.

    Args:
        export_mvs: ask for motion vectors (only effective for :data:`~codec_select.decode.container.MV_CODECS`).
        fast: skip the deblocking filter.
        threads: decoder thread count (0 = FFmpeg's choice).
        thread_type: force ``"AUTO"``/``"SLICE"``/``"FRAME"`` (default: :func:`decoder_settings`' choice).
        options: extra codec options (e.g. ``export_side_data``).
        frame_step: seconds between frames for streams whose frames carry no timestamp (default: the stream's rate).

    Damage is counted, never hidden: :attr:`failed_packets` (packets that failed to decode and were skipped),
    :attr:`failed_at` (their distinct timestamps: windows that overlap decode some twice), :attr:`corrupt_frames`
    (frames FFmpeg concealed) and :attr:`tail_error` (why decoding stopped before the end of the file).
    """

    def __init__(self, path: str | os.PathLike, *, export_mvs: bool = False, fast: bool = False, threads: int = 0,
                 thread_type: str | None = None, options: dict | None = None,
                 frame_step: float | None = None) -> None:
        self.path = os.fspath(path)
        self._export_mvs, self._fast, self._threads = export_mvs, fast, threads
        self._thread_type, self._options, self._frame_step = thread_type, options, frame_step
        self.failed_packets = 0
        self.failed_at: set = set()
        self.corrupt_frames = 0
        self.frames_decoded = 0
        self.tail_error = ""
        self.seeks = 0
        self.skip_nonref_before = -math.inf
        """Presentation time in seconds before which the decoder may drop non-reference frames (a pre-roll whose
        pixels nobody reads)."""
        self.on_packet: Callable | None = None
        """Called with every demuxed packet before it is decoded (the emulation parses slice headers there)."""
        self._open()

    def _open(self) -> None:
        self.container, self.stream = open_container(self.path)
        cc = self.stream.codec_context
        self.codec = cc.name
        self.exports_mvs = self._export_mvs and cc.name in MV_CODECS
        options, thread_type = decoder_settings(cc.name, export_mvs=self._export_mvs, fast=self._fast,
                                                extra=self._options)
        self.stream.thread_type = self._thread_type or thread_type
        if options:
            cc.options = options
        if self._threads:
            cc.thread_count = self._threads
        self.codec_context = cc
        self.time_base = float(self.stream.time_base) if self.stream.time_base is not None else 0.0
        rate = float(self.stream.guessed_rate or self.stream.average_rate or 0.0)
        self.rate = rate if 0.1 < rate < 1000 else 0.0
        self.frame_step = self._frame_step or (1.0 / self.rate if self.rate else 1.0 / 25)
        self.first_time = 0.0
        """Time given to the first frame when frames carry no timestamps."""
        self._skipping = False
        self._last_t = math.nan
        self._sizes: dict[int, int] = {}
        self._frames = self._decode()

    @property
    def start_time(self) -> float | None:
        """Presentation time in seconds of the stream's first frame, as the container states it."""
        first = self.stream.start_time
        return float(first * self.stream.time_base) if first is not None and self.time_base else None

    # -- position -----------------------------------------------------------------------------------------------
    def seek(self, t: float) -> bool:
        """Jump to the key frame at or before ``t`` seconds. False (and nothing moved) where the container cannot
        seek (a damaged index): then :meth:`reopen` and decode on from the start."""
        self.seeks += 1
        target = max(0, int(math.floor(t / self.time_base))) if self.time_base else 0
        try:
            self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
        except (av.error.FFmpegError, OverflowError, ValueError):
            return False
        self._frames = self._decode()
        self._last_t = math.nan
        return True

    def reopen(self) -> None:
        """Start again from the beginning of the file (damage counters keep counting)."""
        self.container.close()
        self._open()

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- frames -------------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[float, av.VideoFrame]]:
        return self

    def __next__(self) -> tuple[float, av.VideoFrame]:
        """The next frame in display order as ``(time in seconds, PyAV frame)``."""
        return next(self._frames)

    def packet_size(self, frame) -> int:
        """Bytes of the packet that carried ``frame`` (0 if unknown)."""
        return self._sizes.get(frame.pts, 0) if frame.pts is not None else 0

    def to_decoded(self, index: int, t: float, frame, *, copy_luma: bool = True) -> DecodedFrame:
        """The selector's view of a frame: luma plane (a view of the frame's buffer when not ``copy_luma``),
        motion vectors, picture type."""
        return DecodedFrame(
            index=index, time=t, pict_type=picture_type(frame), key_frame=bool(frame.key_frame),
            luma=luma_plane(frame, copy=copy_luma), mvs=motion_vector_fields(frame) if self.exports_mvs else None,
            packet_size=self.packet_size(frame), corrupt=bool(getattr(frame, "is_corrupt", False)),
        )

    def _set_skip(self, skip: bool) -> None:
        if skip != self._skipping:
            self.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
            self._skipping = skip

    def _decode(self) -> Iterator[tuple[float, av.VideoFrame]]:
        tb = self.time_base
        try:
            for packet in self.container.demux(self.stream):
                if packet.pts is not None:
                    self._sizes[packet.pts] = packet.size
                    if len(self._sizes) > 512:  # bounded: reordering never spans more than a few dozen packets
                        for key in list(self._sizes)[:256]:
                            del self._sizes[key]
                if self.skip_nonref_before > -math.inf:
                    self._set_skip(packet.pts is not None and bool(tb)
                                   and packet.pts * tb < self.skip_nonref_before)
                if self.on_packet is not None:
                    self.on_packet(packet)
                try:
                    frames = packet.decode()
                except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
                    self.failed_packets += 1
                    self.failed_at.add(packet.pts if packet.pts is not None else ("pos", packet.pos,
                                                                                   len(self.failed_at)))
                    if self.failed_packets > MAX_FAILED_PACKETS:
                        raise DecodeError(f"{self.path}: too many decode errors ({exc}). The stream is corrupt; "
                                          "re-encode it.") from exc
                    continue
                for frame in frames:
                    self.frames_decoded += 1
                    self.corrupt_frames += bool(getattr(frame, "is_corrupt", False))
                    if frame.pts is not None and tb:
                        t = float(frame.pts * tb)
                    else:  # no timestamp (raw H.264/MPEG elementary streams): extrapolate at the stream's rate
                        t = self._last_t + self.frame_step if self._last_t == self._last_t else self.first_time
                    self._last_t = t
                    yield t, frame
        except av.error.FFmpegError as exc:  # a damaged tail: what decoded stays; the caller reports the rest
            self.tail_error = f"decoding stopped on an error after {self.frames_decoded} frames " \
                              f"({type(exc).__name__}: {exc})"

    @property
    def decode_errors(self) -> int:
        """Failed packets plus one for a damaged tail that ended the stream early."""
        return self.failed_packets + bool(self.tail_error)


def iter_frames(
    path: str | os.PathLike,
    *,
    export_mvs: bool = True,
    fast: bool = True,
    start: float | None = None,
    end: float | None = None,
    threads: int = 0,
    stats: dict | None = None,
    copy_luma: bool = True,
) -> Iterator[DecodedFrame]:
    """Decode the first video stream in display order (the full selection's pass).

    Args:
        export_mvs: ask the decoder for motion vectors (only effective for MV codecs).
        fast: skip the deblocking filter (identical vectors, ~20 % faster; pixels slightly blockier).
        start, end: optional time window in seconds; frames outside it are decoded but not yielded.
        threads: decoder thread count (0 = FFmpeg's choice). With MV export only slice threads are used.
        stats: if given, receives ``decode_errors``: packets that failed to decode and were skipped, plus one for a
            damaged tail that ended the stream early; ``failed_packets``: the skipped packets alone;
            ``stopped_early``: why decoding ended before the end of the file ("" when it did not); ``reached``: the
            time in seconds where the last decoded frame ends (frames past ``end`` included: they prove the stream
            goes on); ``before_start``: frames decoded and dropped before ``start``; ``seeked``: whether a seek to
            ``start`` happened (then ``before_start`` does not count the frames before the key frame).
        copy_luma: False hands out each luma plane as a view of the decoder's frame buffer (row-strided, read-only
            use; for a caller that copies it anyway).
    """
    reader = Reader(path, export_mvs=export_mvs, fast=fast, threads=threads)
    seeked = False
    if start is not None and start > 0 and reader.time_base:
        # Jump to the key frame before the window; frames before `start` are dropped below.
        seeked = reader.seek(start)
        if not seeked:
            reader.seek(0.0)  # a damaged index: decode on from here, frames before `start` are dropped below
    index = 0
    before_start = 0
    reached = -math.inf
    tb = reader.time_base
    try:
        for t, frame in reader:
            if not math.isnan(t):
                dur = float(frame.duration * tb) if frame.duration and tb else reader.frame_step
                reached = max(reached, t + dur)
            if start is not None and t == t and t < start - 1e-6:
                before_start += 1
                continue
            if end is not None and t == t and t > end + 1e-6:
                return
            yield reader.to_decoded(index, t, frame, copy_luma=copy_luma)
            index += 1
        if reader.tail_error and not reader.frames_decoded:
            raise DecodeError(f"{reader.path}: decoding failed before any frame ({reader.tail_error}). The file is "
                              "truncated or corrupt.")
    finally:
        reader.close()
        if stats is not None:
            stats.update(decode_errors=reader.decode_errors, failed_packets=reader.failed_packets,
                         stopped_early=reader.tail_error, reached=reached if reached > -math.inf else math.nan,
                         before_start=before_start, seeked=seeked)
    if not reader.frames_decoded:
        raise DecodeError(f"{reader.path}: no decodable video frame (codec {reader.codec}). The file is truncated, "
                          "empty or corrupt; re-encode it.")
