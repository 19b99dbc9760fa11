"""Reading the compressed video with PyAV: open, probe, and decode in display order with the codec's side data.

Every PyAV/FFmpeg failure on the way in is turned into a :class:`~codec_select.errors.CodecSelectError` that names
the file and says what to do; nothing here shells out to an ffmpeg binary.

Threading (measured, PyAV 18.1 / FFmpeg 8): frame threading changes the exported motion vectors of some B-frames,
differently on every run, so MV export decodes with ``SLICE`` threads only (identical vectors on every run).
Codecs that export no vectors (HEVC, VP9, AV1) decode with ``AUTO`` threads. ``skip_loop_filter=all`` decodes
~20 % faster with identical vectors; the luma is then un-deblocked, which only adds a little blocking to the residual.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from .errors import DecodeError, NoVideoStreamError, UnsupportedVideoError, VideoOpenError

__all__ = ["VideoInfo", "DecodedFrame", "probe", "iter_frames", "read_frames", "MV_CODECS", "upright"]

# Decoders whose stock FFmpeg build exports motion vectors through AV_FRAME_DATA_MOTION_VECTORS.
MV_CODECS = frozenset({"h264", "mpeg4", "mpeg1video", "mpeg2video", "h263", "h263p", "msmpeg4v2", "msmpeg4v3"})

_MV_FIELDS = ("source", "w", "h", "dst_x", "dst_y", "motion_x", "motion_y", "motion_scale")

try:
    from av.sidedata.sidedata import SideDataContainer as _SideData
except ImportError:  # a PyAV that moved it: fall back to frame.side_data
    _SideData = None


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns from the container without decoding."""

    path: str
    """The file."""
    codec: str
    """Decoder name, e.g. ``"h264"``."""
    width: int
    """Coded frame width in pixels (before rotation)."""
    height: int
    """Coded frame height in pixels."""
    rotation: int
    """Display rotation in degrees counter-clockwise (multiple of 90) the frames need to be upright."""
    num_frames: int
    """Frame count from the container (0 when unknown; an estimate from duration × fps otherwise)."""
    fps: float
    """Guessed frame rate (0.0 when unknown)."""
    duration: float
    """Stream duration in seconds (0.0 when unknown)."""
    pix_fmt: str
    """Pixel format of the decoded frames, e.g. ``"yuv420p"``."""
    stream_index: int
    """Index of the chosen video stream (the first one)."""
    num_video_streams: int
    """How many video streams the container holds."""

    @property
    def has_codec_mvs(self) -> bool:
        """Whether stock FFmpeg exports motion vectors for this codec."""
        return self.codec in MV_CODECS

    @property
    def upright_hw(self) -> tuple[int, int]:
        """``(height, width)`` after the display rotation."""
        return (self.width, self.height) if self.rotation % 180 else (self.height, self.width)


@dataclass(frozen=True, slots=True, repr=False)
class DecodedFrame:
    """One decoded frame in display order, with the codec side data the selector needs."""

    index: int
    """Position in display order among decoded frames, from 0."""
    time: float
    """Presentation time in seconds (extrapolated at the stream's frame rate when the frame has no timestamp)."""
    pict_type: str
    """``"I"``, ``"P"``, ``"B"`` or ``"?"``."""
    key_frame: bool
    """Whether the decoder flagged the frame as a key frame."""
    luma: np.ndarray
    """uint8 [H, W]: plane 0 read straight from the frame buffer (coded orientation, no swscale)."""
    mvs: dict | None
    """Named motion-vector fields as C-contiguous arrays (``source, w, h, dst_x, dst_y, motion_x, motion_y,
    motion_scale``), or None when the frame carries none (key frames, codecs without export)."""
    packet_size: int
    """Size in bytes of the packet that carried this frame (0 if unknown)."""
    corrupt: bool
    """FFmpeg flagged the frame as corrupt (decoded with concealment)."""

    def __repr__(self) -> str:
        nmv = 0 if self.mvs is None else len(self.mvs["source"])
        return (f"DecodedFrame(index={self.index}, time={self.time:.3f}, type={self.pict_type}, "
                f"luma={self.luma.shape}, mvs={nmv}, packet_size={self.packet_size})")


def _fail_open(path: str, exc: BaseException) -> VideoOpenError:
    if isinstance(exc, (FileNotFoundError, av.error.FileNotFoundError)) or not os.path.exists(path):
        return VideoOpenError(f"{path}: no such file. Check the path (relative paths resolve from {os.getcwd()}).")
    if isinstance(exc, (IsADirectoryError, av.error.IsADirectoryError)) or os.path.isdir(path):
        return VideoOpenError(f"{path}: is a directory, not a video file. Pass a video file (mp4, mkv, webm, ...).")
    if isinstance(exc, (PermissionError, av.error.PermissionError)):
        return VideoOpenError(f"{path}: permission denied. Make the file readable.")
    if isinstance(exc, (EOFError, av.error.EOFError)):
        return VideoOpenError(
            f"{path}: the file ends before any media data (empty or truncated). Re-download or re-encode it."
        )
    return VideoOpenError(
        f"{path}: not a readable media file ({type(exc).__name__}: {exc}). "
        "Check that it is a complete video file (re-download or re-encode it)."
    )


def open_container(path: str | os.PathLike) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open ``path`` and return the container and its first video stream, or raise a typed error."""
    path = os.fspath(path)
    try:
        container = av.open(path, mode="r", metadata_errors="ignore")
    except Exception as exc:  # PyAV raises a zoo of FFmpegError / OSError subclasses here
        raise _fail_open(path, exc) from exc
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["nothing"]
        container.close()
        hint = "" if {"audio", "subtitle"} & set(kinds) else " (a truncated or damaged file looks like this too: " \
            "re-download or re-encode it)"
        raise NoVideoStreamError(
            f"{path}: the container holds no video stream (found: {', '.join(kinds)}). Pass a file with video{hint}."
        )
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.name:
        container.close()
        raise UnsupportedVideoError(f"{path}: the video stream's codec is unknown to FFmpeg; re-encode it (e.g. H.264).")
    return container, stream


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate a coded-orientation array (``[H, W, ...]``) by ``rotation`` degrees counter-clockwise."""
    k = (round(rotation / 90)) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read the container header (no decoding beyond the first frame) and describe the first video stream."""
    container, stream = open_container(path)
    try:
        cc = stream.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        fps = float(stream.guessed_rate or stream.average_rate or 0.0)
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        frames = int(stream.frames or 0) or (int(round(duration * fps)) if fps and duration else 0)
        rotation = 0
        try:  # the rotation sits on the decoded frames' display matrix; one frame tells
            for frame in container.decode(stream):
                rotation = int(round(frame.rotation or 0))
                width, height = frame.width, frame.height
                break
        except Exception:
            pass
        return VideoInfo(
            path=os.fspath(path), codec=cc.name, width=width, height=height, rotation=rotation % 360,
            num_frames=frames, fps=fps, duration=duration, pix_fmt=str(cc.pix_fmt or ""),
            stream_index=stream.index, num_video_streams=len(container.streams.video),
        )
    finally:
        container.close()


def _luma_of(frame) -> np.ndarray:
    """Plane 0 as uint8 [H, W] without swscale; 16-bit formats are shifted down to 8 bits."""
    plane = frame.planes[0]
    name = frame.format.name
    if name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray", "yuv411p",
                "yuv410p", "yuv440p", "yuvj440p", "nv21", "nv16", "yuva420p"):
        buf = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        return np.array(buf[: frame.height, : frame.width])
    if name.endswith(("10le", "12le", "16le", "9le", "14le")) and (name.startswith(("yuv", "gray", "p0", "p2"))):
        bits = 16 if name.startswith(("p0", "p2")) else int("".join(c for c in name.split("p")[-1] if c.isdigit())[:2])
        buf = np.frombuffer(plane, "<u2").reshape(plane.height, plane.line_size // 2)[: frame.height, : frame.width]
        return (buf >> (bits - 8)).astype(np.uint8)
    # Anything else (RGB, paletted, exotic): one swscale conversion to gray is the honest fallback.
    return frame.to_ndarray(format="gray")


def _mv_fields(frame) -> dict | None:
    # Not `frame.side_data`: PyAV caches that container on the frame, a reference cycle (frame ↔ container) that
    # only the cycle collector frees, so hundreds of decoded frames (1.4 MB each at 720p) piled up between
    # collections (+250 MB peak RSS measured). A container of our own points one way and dies with the frame.
    sd = (_SideData(frame) if _SideData is not None else frame.side_data).get("MOTION_VECTORS")
    if sd is None:
        return None
    arr = sd.to_ndarray()
    if arr.size == 0:
        return None
    # Named fields only: the structured array has padding bytes holding garbage.
    return {name: np.ascontiguousarray(arr[name]) for name in _MV_FIELDS}


def iter_frames(
    path: str | os.PathLike,
    *,
    export_mvs: bool = True,
    fast: bool = True,
    start: float | None = None,
    end: float | None = None,
    threads: int = 0,
    stats: dict | None = None,
) -> Iterator[DecodedFrame]:
    """Decode the first video stream in display order.

    Args:
        export_mvs: ask the decoder for motion vectors (only effective for :data:`MV_CODECS`).
        fast: skip the deblocking filter (identical vectors, ~20 % faster; pixels slightly blockier).
        start, end: optional time window in seconds; frames outside it are decoded but not yielded.
        threads: decoder thread count (0 = FFmpeg's choice). With MV export only slice threads are used.
        stats: if given, receives ``decode_errors``: packets that failed to decode and were skipped, plus one for a
            damaged tail that ended the stream early.
    """
    path = os.fspath(path)
    container, stream = open_container(path)
    cc = stream.codec_context
    want_mvs = export_mvs and cc.name in MV_CODECS
    options = {}
    if want_mvs:
        options["flags2"] = "+export_mvs"
        stream.thread_type = "SLICE"  # frame threads scramble B-frame vectors run to run
    else:
        stream.thread_type = "AUTO"
    if fast:
        options["skip_loop_filter"] = "all"
    cc.options = options
    if threads:
        cc.thread_count = threads
    time_base = float(stream.time_base) if stream.time_base is not None else 0.0
    rate = float(stream.guessed_rate or stream.average_rate or 0.0)
    step = 1.0 / rate if 0.1 < rate < 1000 else 1.0 / 25
    last_t = math.nan
    start_pts = None
    if start is not None and start > 0 and time_base:
        start_pts = int(start / time_base)
        try:  # jump to the key frame before the window; frames before `start` are dropped below
            container.seek(start_pts, stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            try:
                container.seek(0, stream=stream)
            except av.error.FFmpegError:
                pass  # a damaged index: decode on from here, frames before `start` are dropped below
    sizes: dict[int, int] = {}
    index = 0
    errors = 0
    decoded_any = False
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                sizes[packet.pts] = packet.size
                if len(sizes) > 512:  # bounded: reordering never spans more than a few dozen packets
                    for key in list(sizes)[:256]:
                        del sizes[key]
            try:
                frames = packet.decode()
            except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
                errors += 1
                if errors > 1000:
                    raise DecodeError(f"{path}: too many decode errors ({exc}). The stream is corrupt; re-encode it.")
                continue
            for frame in frames:
                decoded_any = True
                if frame.pts is not None and time_base:
                    t = float(frame.pts * time_base)
                else:  # no timestamp (raw H.264/MPEG elementary streams): extrapolate at the stream's rate
                    t = last_t + step if last_t == last_t else index * step
                last_t = t
                if start is not None and t == t and t < start - 1e-6:
                    continue
                if end is not None and t == t and t > end + 1e-6:
                    return
                yield DecodedFrame(
                    index=index,
                    time=t,
                    pict_type=_pict_type(frame),
                    key_frame=bool(frame.key_frame),
                    luma=_luma_of(frame),
                    mvs=_mv_fields(frame) if want_mvs else None,
                    packet_size=sizes.get(frame.pts, 0) if frame.pts is not None else 0,
                    corrupt=bool(getattr(frame, "is_corrupt", False)),
                )
                index += 1
    except av.error.FFmpegError as exc:
        if not decoded_any:
            raise DecodeError(f"{path}: decoding failed before any frame ({exc}). The file is truncated or corrupt.") from exc
        # A damaged tail after good frames: keep what decoded (the caller records the damage).
        errors += 1
    finally:
        container.close()
        if stats is not None:
            stats["decode_errors"] = errors
    if not decoded_any:
        raise DecodeError(
            f"{path}: no decodable video frame (codec {cc.name}). The file is truncated, empty or corrupt; re-encode it."
        )


# AVPictureType: NONE, I, P, B, S (GMC), SI, SP, BI. PyAV 18 returns the int, older versions an enum.
_PICT_TYPES = {1: "I", 2: "P", 3: "B", 4: "P", 5: "I", 6: "P", 7: "B"}
_PICT_NAMES = {"I": "I", "P": "P", "B": "B", "S": "P", "SI": "I", "SP": "P", "BI": "B"}


def _pict_type(frame) -> str:
    pt = frame.pict_type
    if isinstance(pt, int):
        return _PICT_TYPES.get(int(pt), "?")
    return _PICT_NAMES.get(str(getattr(pt, "name", pt)).split(".")[-1], "?")


def read_frames(
    path: str | os.PathLike, frame_ids: np.ndarray, *, rgb: bool = True, rotation: int | None = None
) -> np.ndarray:
    """Decode the frames at display-order indices ``frame_ids`` (repeats allowed) and return them upright.

    Returns uint8 ``[len(frame_ids), H, W, 3]`` (RGB) or ``[len(frame_ids), H, W]`` (luma).
    """
    frame_ids = np.asarray(frame_ids, dtype=np.int64)
    wanted = set(frame_ids.tolist())
    last = int(frame_ids.max()) if frame_ids.size else -1
    got: dict[int, np.ndarray] = {}
    rot = rotation
    container, stream = open_container(path)
    stream.thread_type = "AUTO"
    try:
        index = 0
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue
            for frame in frames:
                if index in wanted:
                    if rot is None:
                        rot = int(round(frame.rotation or 0))
                    img = frame.to_ndarray(format="rgb24") if rgb else _luma_of(frame)
                    got[index] = upright(img, rot)
                index += 1
                if index > last:
                    break
            if index > last:
                break
    except av.error.FFmpegError:
        pass  # a damaged tail: keep what decoded, the missing frames are filled in below
    finally:
        container.close()
    missing = sorted(wanted - set(got))
    if missing:
        if not got:
            raise DecodeError(f"{os.fspath(path)}: none of the requested frames decoded; the file is corrupt or truncated.")
        # A frame that vanished on re-decode (damaged stream): show the nearest one that decoded.
        keys = np.array(sorted(got))
        for m in missing:
            got[m] = got[int(keys[np.argmin(np.abs(keys - m))])]
    shape = got[min(got)].shape if got else None
    for key, img in got.items():  # the resolution changed mid-stream: one size for all, the first frame's
        if img.shape != shape:
            from PIL import Image

            got[key] = np.asarray(Image.fromarray(img).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))
    return np.stack([got[int(i)] for i in frame_ids])
