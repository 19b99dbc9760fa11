"""Opening a video and describing it: the container, its first video stream, what the header declares.

Every PyAV/FFmpeg failure on the way in is turned into a :class:`~codec_select.errors.CodecSelectError` that names
the file and says what to do; nothing here shells out to an ffmpeg binary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

from ..errors import NoVideoStreamError, UnsupportedVideoError, VideoOpenError

__all__ = ["VideoInfo", "MV_CODECS", "open_container", "probe", "upright", "declared_frames",
           "stream_duration"]

# Decoders whose stock FFmpeg build exports motion vectors through AV_FRAME_DATA_MOTION_VECTORS.
MV_CODECS = frozenset({"h264", "mpeg4", "mpeg1video", "mpeg2video", "h263", "h263p", "msmpeg4v2", "msmpeg4v3"})

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
        duration, source, note = stream_duration(container, stream)
        notes += [note] if note else []
        declared = declared_frames(stream)
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


def _tags(stream) -> dict[str, str]:
    return {str(k).upper(): str(v) for k, v in (stream.metadata or {}).items()}


def declared_frames(stream) -> int:
    """Frame count the container states for ``stream`` (MP4 sample table, Matroska ``NUMBER_OF_FRAMES``), or 0."""
    declared = int(stream.frames or 0)
    tag = _tags(stream).get("NUMBER_OF_FRAMES", "")
    return declared or (int(tag) if tag.isdigit() else 0)


def stream_duration(container, stream) -> tuple[float, str, str]:
    """``(seconds, source, note)``: the stream's own duration, else a Matroska ``DURATION`` tag, else the whole
    container's (with a note saying so); ``(0.0, "", note)`` when nothing states one."""
    tb = stream.time_base
    if stream.duration is not None and tb is not None:
        return float(stream.duration * tb), "stream", ""
    tagged = _tag_seconds(_tags(stream).get("DURATION"))
    if tagged is not None:
        return tagged, "tag", ""
    if container.duration is not None:
        return container.duration / av.time_base, "container", \
            "the video stream states no duration; the container's (all streams) is used"
    return 0.0, "", "the container states no duration"
