"""Synthetic test clips with known motion, written with PyAV encoders (tests, benchmarks, the bundled sample).

Every clip is deterministic for a given seed: a smooth random texture as background plus optional moving squares,
a camera pan over a larger texture, or scene cuts. The ground truth of "what moves" is returned alongside.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import av
import numpy as np

__all__ = ["Scene", "make_clip", "write_frames", "ENCODERS", "available_encoders", "texture"]

# Encoder name → (codec as PyAV knows it, pixel format, container extension).
ENCODERS = {
    "libx264": ("libx264", "yuv420p", ".mp4"),
    "mpeg4": ("mpeg4", "yuv420p", ".mp4"),
    "libx265": ("libx265", "yuv420p", ".mp4"),
    "libvpx-vp9": ("libvpx-vp9", "yuv420p", ".webm"),
    "libsvtav1": ("libsvtav1", "yuv420p", ".mkv"),
    "libaom-av1": ("libaom-av1", "yuv420p", ".mkv"),
}


def available_encoders() -> list[str]:
    """The encoders of :data:`ENCODERS` this PyAV build has."""
    return [name for name in ENCODERS if name in av.codecs_available]


@dataclass
class Scene:
    """What a synthetic clip shows; the boxes are the ground truth of moving content."""

    kind: Literal["square", "pan", "static", "cuts", "objects"] = "square"
    """``square``: one square crossing a static background; ``objects``: three squares; ``pan``: the camera moves
    over a static texture; ``static``: nothing moves; ``cuts``: static shots of different textures."""
    width: int = 320
    height: int = 240
    frames: int = 96
    fps: int = 30
    square: int = 40
    """Side of the moving square(s) in pixels."""
    speed: float = 3.0
    """Square speed (or pan speed) in pixels per frame."""
    seed: int = 0
    boxes: list = field(default_factory=list)
    """Filled by :func:`make_clip`: per frame, a list of ``(y0, y1, x0, x1)`` boxes of moving content."""


def texture(rng: np.random.Generator, h: int, w: int, cell: int = 8) -> np.ndarray:
    """Smooth random texture (bilinear upsampled noise) with strong edges, uint8 [h, w, 3]."""
    from PIL import Image

    small = rng.integers(30, 226, size=(h // cell + 2, w // cell + 2, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(((w // cell + 2) * cell, (h // cell + 2) * cell), Image.Resampling.BILINEAR)
    return np.asarray(img)[:h, :w].copy()


def _render(scene: Scene) -> list[np.ndarray]:
    rng = np.random.default_rng(scene.seed)
    h, w, n = scene.height, scene.width, scene.frames
    frames: list[np.ndarray] = []
    scene.boxes = []
    if scene.kind == "pan":
        big = texture(rng, h + 8, w + int(scene.speed * n) + 8)
        for i in range(n):
            x = int(round(scene.speed * i))
            frames.append(big[4 : 4 + h, x : x + w].copy())
            scene.boxes.append([])
        return frames
    if scene.kind == "cuts":
        textures = [texture(rng, h, w) for _ in range(4)]
        for i in range(n):
            frames.append(textures[(4 * i) // n].copy())
            scene.boxes.append([])
        return frames
    bg = texture(rng, h, w)
    count = {"square": 1, "objects": 3, "static": 0}[scene.kind]
    colours = rng.integers(0, 256, size=(max(count, 1), 3), dtype=np.uint8)
    starts = [(h // 2 - scene.square // 2, 0), (h // 5, w - scene.square), (3 * h // 5, w // 3)]
    velocities = [(0.0, 1.0), (0.35, -0.8), (-0.5, 0.6)]
    for i in range(n):
        img = bg.copy()
        boxes = []
        for k in range(count):
            sy, sx = starts[k]
            vy, vx = velocities[k]
            span_y, span_x = max(1, h - scene.square), max(1, w - scene.square)
            y = int(round(sy + vy * scene.speed * i)) % (2 * span_y)
            x = int(round(sx + vx * scene.speed * i)) % (2 * span_x)
            y = y if y <= span_y else 2 * span_y - y  # bounce
            x = x if x <= span_x else 2 * span_x - x
            img[y : y + scene.square, x : x + scene.square] = colours[k]
            img[y + scene.square // 4 : y + scene.square // 2, x + scene.square // 4 : x + scene.square // 2] = 255 - colours[k]
            boxes.append((y, y + scene.square, x, x + scene.square))
        frames.append(img)
        scene.boxes.append(boxes)
    return frames


def make_clip(
    path: str | os.PathLike,
    scene: Scene | None = None,
    *,
    encoder: str = "libx264",
    bframes: int = 2,
    gop: int = 48,
    crf: int = 23,
    rotation: int = 0,
) -> Scene:
    """Render ``scene`` and encode it to ``path`` with a PyAV encoder; return the scene with its ground-truth boxes.

    ``bframes`` is honoured by encoders that have B-frames (0 = none); ``rotation`` writes a display matrix.
    """
    scene = scene or Scene()
    if encoder not in ENCODERS:
        raise ValueError(f"Invalid encoder ({encoder!r}). Supported values are {', '.join(ENCODERS)}.")
    write_frames(path, _render(scene), fps=scene.fps, encoder=encoder, bframes=bframes, gop=gop, crf=crf,
                 rotation=rotation)
    return scene


def write_frames(
    path: str | os.PathLike,
    frames: list[np.ndarray],
    *,
    fps: int = 30,
    encoder: str = "libx264",
    bframes: int = 2,
    gop: int = 48,
    crf: int = 23,
    rotation: int = 0,
) -> None:
    """Encode uint8 RGB frames ``[H, W, 3]`` (even sizes) to ``path`` with a PyAV encoder (options as :func:`make_clip`)."""
    if encoder not in ENCODERS:
        raise ValueError(f"Invalid encoder ({encoder!r}). Supported values are {', '.join(ENCODERS)}.")
    codec, pix_fmt, _ = ENCODERS[encoder]
    with av.open(os.fspath(path), mode="w") as out:
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        stream.codec_context.gop_size = gop
        options: dict[str, str] = {}
        if encoder == "libx264":
            options = {"crf": str(crf), "preset": "veryfast", "bf": str(bframes), "threads": "1"}
        elif encoder == "mpeg4":
            stream.codec_context.bit_rate = 2_000_000
            options = {"bf": str(bframes), "qscale": "4"}
        elif encoder == "libx265":
            options = {"crf": str(crf), "preset": "ultrafast",
                       "x265-params": f"bframes={bframes}:log-level=error:pools=1:frame-threads=1"}
        elif encoder == "libvpx-vp9":
            options = {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8", "threads": "1"}
        elif encoder == "libsvtav1":
            options = {"crf": "40", "preset": "12", "svtav1-params": "lp=1"}
        elif encoder == "libaom-av1":
            options = {"crf": "40", "cpu-used": "8", "usage": "realtime", "threads": "1"}
        stream.options = options
        if rotation:
            stream.set_display_rotation(rotation)
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write a synthetic clip with known motion.")
    parser.add_argument("out", help="output file (.mp4 for libx264/mpeg4/libx265, .webm for vp9, .mkv for av1)")
    parser.add_argument("--kind", default="objects", choices=["square", "objects", "pan", "static", "cuts"])
    parser.add_argument("--encoder", default="libx264", choices=list(ENCODERS))
    parser.add_argument("--size", default="320x240", help="WxH")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    make_clip(args.out, Scene(kind=args.kind, width=w, height=h, frames=args.frames, seed=args.seed), encoder=args.encoder)


if __name__ == "__main__":
    _main()
