"""codec_select: choose the patches of a video a vision transformer should see, from the codec's own signals.

Public API::

    sel = codec_select.select_patches("clip.mp4", budget=4096, geometry="ap224")
    sel.visible_indices, sel.positions_thw, sel.frame_ids
    out = codec_select.select_and_encode("clip.mp4", model="lmms-lab-encoder/onevision-encoder-large")
"""

from __future__ import annotations

from .decode.pixels import slot_frames
from .errors import (
    CodecSelectError,
    DecodeError,
    NoVideoStreamError,
    PartialVideoError,
    SelectionTimeoutError,
    UnsupportedVideoError,
    VideoOpenError,
)
from .geometry import Geometry, make_geometry
from .report import SelectionReport
from .select import select_patches
from .selection import Selection

__version__ = "0.1.0"

__all__ = [
    "select_patches",
    "select_and_encode",
    "Selection",
    "slot_frames",
    "SelectionReport",
    "Geometry",
    "make_geometry",
    "sample_video",
    "CodecSelectError",
    "VideoOpenError",
    "NoVideoStreamError",
    "UnsupportedVideoError",
    "DecodeError",
    "PartialVideoError",
    "SelectionTimeoutError",
    "__version__",
]


def sample_video() -> str:
    """Path of the bundled sample clip (synthetic, made by ``python -m codec_select.synth``; CC0)."""
    from pathlib import Path

    return str(Path(__file__).parent / "data" / "sample.mp4")


def __getattr__(name: str):
    # The encoder needs torch; importing it lazily keeps `import codec_select` light.
    if name == "select_and_encode":
        from .encoder.pipeline import select_and_encode

        return select_and_encode
    raise AttributeError(f"module 'codec_select' has no attribute {name!r}")
