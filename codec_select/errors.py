"""The one small exception hierarchy users catch: everything we raise on bad input derives from CodecSelectError."""

from __future__ import annotations

__all__ = [
    "CodecSelectError",
    "VideoOpenError",
    "NoVideoStreamError",
    "DecodeError",
    "PartialVideoError",
    "UnsupportedVideoError",
    "SelectionTimeoutError",
]


class CodecSelectError(Exception):
    """Base class of every error codec_select raises about a video or an option."""


class VideoOpenError(CodecSelectError, OSError):
    """The file is missing, unreadable, or not a media container FFmpeg recognises."""


class NoVideoStreamError(CodecSelectError, ValueError):
    """The container opened but holds no video stream (audio-only, subtitles, data)."""


class UnsupportedVideoError(CodecSelectError, ValueError):
    """The video stream exists but cannot be used (unknown codec, zero-sized frames, ...)."""


class DecodeError(CodecSelectError, RuntimeError):
    """Decoding failed before enough frames came out (truncated or corrupt stream, zero decodable frames)."""


class PartialVideoError(DecodeError):
    """Only part of the video decoded (a truncated file, a damaged tail): raised by ``codec-select batch`` unless
    ``--allow-partial``; :func:`~codec_select.select_patches` itself returns the Selection and says so in its
    ``report``."""


class SelectionTimeoutError(CodecSelectError, TimeoutError):
    """A per-video time budget ran out before the selection finished."""
