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

from ..errors import DecodeError, NoVideoStreamError, UnsupportedVideoError, VideoOpenError

__all__ = ["VideoInfo", "DecodedFrame", "probe", "iter_frames", "read_frames", "MV_CODECS", "upright", "open_container",
           "luma_plane", "motion_vector_fields", "picture_type", "side_data", "MV_FIELDS"]

# Decoders whose stock FFmpeg build exports motion vectors through AV_FRAME_DATA_MOTION_VECTORS.
MV_CODECS = frozenset({"h264", "mpeg4", "mpeg1video", "mpeg2video", "h263", "h263p", "msmpeg4v2", "msmpeg4v3"})

MV_FIELDS = ("source", "w", "h", "dst_x", "dst_y", "motion_x", "motion_y", "motion_scale")

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
    frames_declared: int = 0
    """Frame count the container states (MP4 sample table, Matroska ``NUMBER_OF_FRAMES`` tag); 0 when it states
    none (unlike :attr:`num_frames`, never an estimate)."""
    start_time: float = 0.0
    """Presentation time in seconds where the stream starts (its first frame)."""
    duration_source: str = ""
    """Where :attr:`duration` comes from: ``"stream"`` (the video stream's own duration), ``"tag"`` (a Matroska
    ``DURATION`` tag of the video track), ``"container"`` (the whole file, audio included) or ``""`` (unknown)."""
    notes: tuple[str, ...] = ()
    """What probing could not read (each a sentence); the values above are defaults where a note says so."""

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
    """Read the container header (no decoding beyond the first frame) and describe the first video stream.

    Nothing that fails here is swallowed silently: what could not be read is named in :attr:`VideoInfo.notes`."""
    container, stream = open_container(path)
    notes: list[str] = []
    try:
        cc = stream.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        fps = float(stream.guessed_rate or stream.average_rate or 0.0)
        tb = stream.time_base
        start_time = float(stream.start_time * tb) if stream.start_time is not None and tb is not None else 0.0
        duration, source = 0.0, ""
        tags = {str(k).upper(): str(v) for k, v in (stream.metadata or {}).items()}
        if stream.duration is not None and tb is not None:
            duration, source = float(stream.duration * tb), "stream"
        elif _tag_seconds(tags.get("DURATION")) is not None:
            duration, source = _tag_seconds(tags["DURATION"]), "tag"
        elif container.duration is not None:
            duration, source = container.duration / av.time_base, "container"
            notes.append("the video stream states no duration; the container's (all streams) is used")
        else:
            notes.append("the container states no duration")
        declared = int(stream.frames or 0)
        if not declared and tags.get("NUMBER_OF_FRAMES", "").isdigit():
            declared = int(tags["NUMBER_OF_FRAMES"])
        frames = declared or (int(round(duration * fps)) if fps and duration else 0)
        rotation = 0
        try:  # the rotation sits on the decoded frames' display matrix; one frame tells
            for frame in container.decode(stream):
                rotation = int(round(frame.rotation or 0))
                width, height = frame.width, frame.height
                break
            else:
                notes.append("no frame decoded while probing; rotation assumed 0")
        except Exception as exc:  # a damaged start: the selector's own decode reports the damage with the file name
            notes.append(f"decoding the first frame failed ({type(exc).__name__}: {exc}); rotation assumed 0")
        return VideoInfo(
            path=os.fspath(path), codec=cc.name, width=width, height=height, rotation=rotation % 360,
            num_frames=frames, fps=fps, duration=duration, pix_fmt=str(cc.pix_fmt or ""),
            stream_index=stream.index, num_video_streams=len(container.streams.video), frames_declared=declared,
            start_time=start_time, duration_source=source, notes=tuple(notes),
        )
    finally:
        container.close()


def _tag_seconds(text: str | None) -> float | None:
    """``"HH:MM:SS.fffffffff"`` (Matroska statistics tags) in seconds, or None."""
    if not text:
        return None
    try:
        h, m, sec = text.strip().split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def luma_plane(frame) -> np.ndarray:
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


def side_data(frame):
    """The frame's side data, read without ``frame.side_data``: PyAV caches that container on the frame, a reference
    cycle (frame ↔ container) that only the cycle collector frees, so hundreds of decoded frames (1.4 MB each at
    720p) piled up between collections (+250 MB peak RSS measured). A container of our own points one way and dies
    with the frame."""
    return _SideData(frame) if _SideData is not None else frame.side_data


def motion_vector_fields(frame) -> dict | None:
    """The frame's motion vectors as named, C-contiguous field arrays (:data:`MV_FIELDS`), or None."""
    sd = side_data(frame).get("MOTION_VECTORS")
    if sd is None:
        return None
    arr = sd.to_ndarray()
    if arr.size == 0:
        return None
    # Named fields only: the structured array has padding bytes holding garbage.
    return {name: np.ascontiguousarray(arr[name]) for name in MV_FIELDS}


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
            damaged tail that ended the stream early; ``failed_packets``: the skipped packets alone;
            ``stopped_early``: why decoding ended before the end of the file ("" when it did not); ``reached``: the
            time in seconds where the last decoded frame ends (frames past ``end`` included: they prove the stream
            goes on); ``before_start``: frames decoded and dropped before ``start``; ``seeked``: whether a seek to
            ``start`` happened (then ``before_start`` does not count the frames before the key frame).
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
    seeked = False
    if start is not None and start > 0 and time_base:
        start_pts = int(start / time_base)
        try:  # jump to the key frame before the window; frames before `start` are dropped below
            container.seek(start_pts, stream=stream, backward=True, any_frame=False)
            seeked = True
        except av.error.FFmpegError:
            try:
                container.seek(0, stream=stream)
            except av.error.FFmpegError:
                pass  # a damaged index: decode on from here, frames before `start` are dropped below
    sizes: dict[int, int] = {}
    index = 0
    errors = 0
    failed = 0
    before_start = 0
    reached = -math.inf
    stopped = ""
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
                failed += 1
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
                if not math.isnan(t):
                    dur = float(frame.duration * time_base) if frame.duration and time_base else step
                    reached = max(reached, t + dur)
                if start is not None and t == t and t < start - 1e-6:
                    before_start += 1
                    continue
                if end is not None and t == t and t > end + 1e-6:
                    return
                yield DecodedFrame(
                    index=index,
                    time=t,
                    pict_type=picture_type(frame),
                    key_frame=bool(frame.key_frame),
                    luma=luma_plane(frame),
                    mvs=motion_vector_fields(frame) if want_mvs else None,
                    packet_size=sizes.get(frame.pts, 0) if frame.pts is not None else 0,
                    corrupt=bool(getattr(frame, "is_corrupt", False)),
                )
                index += 1
    except av.error.FFmpegError as exc:
        if not decoded_any:
            raise DecodeError(f"{path}: decoding failed before any frame ({exc}). The file is truncated or corrupt.") from exc
        # A damaged tail after good frames: keep what decoded (the caller records the damage).
        errors += 1
        stopped = f"decoding stopped on an error after {index} frames ({type(exc).__name__}: {exc})"
    finally:
        container.close()
        if stats is not None:
            stats.update(decode_errors=errors, failed_packets=failed, stopped_early=stopped,
                         reached=reached if reached > -math.inf else math.nan, before_start=before_start,
                         seeked=seeked)
    if not decoded_any:
        raise DecodeError(
            f"{path}: no decodable video frame (codec {cc.name}). The file is truncated, empty or corrupt; re-encode it."
        )


# AVPictureType: NONE, I, P, B, S (GMC), SI, SP, BI. PyAV 18 returns the int, older versions an enum.
_PICT_TYPES = {1: "I", 2: "P", 3: "B", 4: "P", 5: "I", 6: "P", 7: "B"}
_PICT_NAMES = {"I": "I", "P": "P", "B": "B", "S": "P", "SI": "I", "SP": "P", "BI": "B"}


def picture_type(frame) -> str:
    pt = frame.pict_type
    if isinstance(pt, int):
        return _PICT_TYPES.get(int(pt), "?")
    return _PICT_NAMES.get(str(getattr(pt, "name", pt)).split(".")[-1], "?")


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
    by_pts: dict[int, int] | None = None
    if timestamps is not None:
        stamps = np.asarray(timestamps, dtype=np.float64)
        if stamps.shape != frame_ids.shape:
            raise ValueError("timestamps must match frame_ids one to one.")
        by_pts = {}
    wanted = set(frame_ids.tolist())
    got: dict[int, np.ndarray] = {}
    decoded = 0
    rot = [rotation]
    for thread_type in ("AUTO", "SLICE"):
        if by_pts is None:
            got.clear()  # counted frames: one pass's numbering only (the passes may drop different frames)
        container, stream = open_container(path)
        stream.thread_type = thread_type
        if by_pts is not None:
            if stream.time_base is None:
                container.close()
                raise DecodeError(f"{os.fspath(path)}: the stream has no time base; read frames by index instead.")
            tb = float(stream.time_base)
            by_pts = {round(t / tb): int(i) for t, i in zip(stamps.tolist(), frame_ids.tolist()) if i not in got}
        try:
            decoded = _read_pass(container, stream, wanted - set(got), by_pts, rgb, rot, got)
        finally:
            container.close()
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
    shape = got[min(got)].shape if got else None
    for key, img in got.items():  # the resolution changed mid-stream: one size for all, the first frame's
        if img.shape != shape:
            from PIL import Image

            got[key] = np.asarray(Image.fromarray(img).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))
    return np.stack([got[int(i)] for i in frame_ids])


def _read_pass(container, stream, wanted: set[int], by_pts: dict[int, int] | None, rgb: bool, rot: list,
               got: dict[int, np.ndarray]) -> int:
    """One decode from the start: put the wanted frames (by display-order count, or by pts when ``by_pts``) in
    ``got``; stop after the last one. Returns the frames decoded."""
    last = max(wanted) if wanted else -1
    last_pts = max(by_pts) if by_pts else None
    if by_pts is not None and not by_pts:
        return 0
    index = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue
            for frame in frames:
                key = index if by_pts is None else by_pts.get(frame.pts) if frame.pts is not None else None
                if key is not None and key in wanted and key not in got:
                    if rot[0] is None:
                        rot[0] = round(frame.rotation or 0)
                    got[key] = upright(frame.to_ndarray(format="rgb24") if rgb else luma_plane(frame), rot[0])
                index += 1
                done = index > last if by_pts is None else frame.pts is not None and frame.pts >= last_pts
                if done:
                    return index
    except av.error.FFmpegError:
        pass  # a damaged tail: keep what decoded; the caller reports what is missing
    return index
