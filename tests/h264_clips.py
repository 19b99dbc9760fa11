"""Shared by the H.264 emulation tests: synthetic textures and clips, random partition tables."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

HAS_X264 = "libx264" in av.codecs_available
needs_x264 = pytest.mark.skipif(not HAS_X264, reason="PyAV build without libx264")


def random_parts(rng, height, width):
    rows = []
    for my in range(height // 16):
        for mx in range(width // 16):
            split = int(rng.integers(0, 4))
            sizes = [(16, 16)] if split == 0 else [(16, 8)] * 2 if split == 1 else [(8, 16)] * 2 if split == 2 \
                else [(8, 8)] * 4
            for k, (w, h) in enumerate(sizes):
                x0 = 16 * mx + (8 * (k & 1) if w == 8 else 0)
                y0 = 16 * my + (8 * (k >> (1 if w == 8 else 0) & 1) if h == 8 else 0)
                use0, use1 = int(rng.integers(0, 2)), int(rng.integers(0, 2))
                if rng.random() < 0.2:  # a macroblock left to intra
                    continue
                mv = [int(v) for v in rng.integers(-12, 12, 4)]
                if rng.random() < 0.3:
                    mv[2:] = [0, 0]
                rows.append([x0, y0, w, h, use0 or not use1, -4, mv[1], use1, mv[2], mv[3]] if rng.random() < 0.3
                            else [x0, y0, w, h, use0 or not use1, mv[0], mv[1], use1, mv[2], mv[3]])
    return np.array(rows, np.int32).reshape(-1, 10)


def texture(rng, h, w, cell=4):
    from PIL import Image

    small = rng.integers(20, 236, (h // cell + 1, w // cell + 1, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(((w // cell + 1) * cell, (h // cell + 1) * cell), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(img)[:h, :w])


def encode(path, frames, *, bframes=0, keyint=250, crf=20, fmt=None):
    """Main-profile x264 (4×4 transforms, as the reference videos), no scene-cut I-frames."""
    with av.open(str(path), mode="w", format=fmt) as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"preset": "medium", "profile": "main", "crf": str(crf), "bf": str(bframes),
                          "threads": "1", "x264-params": f"scenecut=0:keyint={keyint}"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
