"""Synthetic scenes with ground-truth object masks, for the benchmark's object-recall axis.

Textured objects move over a background that is static, panning, zooming or shaking, and a distractor changes
pixels without any object motion: a global brightness flicker, a cut (the background switches), or bursts of
noise. One object never moves (it must not count as motion). Every frame's object boxes are the ground truth, so a
selector can be asked: of the (slot, cell) pairs where an object moved, how many did it keep — something a pixel
metric alone cannot tell, since the distractors change as many pixels as the objects do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..geometry import Geometry
from ..synth import texture, write_frames

__all__ = ["OBJECT_SCENES", "ObjectScene", "moved_cells", "object_masks", "render_scene", "write_scene"]

Background = Literal["static", "pan", "zoom", "shake"]
Distractor = Literal["none", "flicker", "cut", "noise"]


@dataclass
class ObjectScene:
    """What a scene shows; :func:`render_scene` fills ``boxes`` (the ground truth)."""

    background: Background = "static"
    distractor: Distractor = "none"
    width: int = 320
    height: int = 240
    frames: int = 192
    fps: int = 30
    size: int = 48
    """Side of each (square, textured) object in pixels."""
    speed: float = 2.0
    """Object speed, and pan speed, in pixels per frame."""
    moving: tuple[bool, ...] = (True, True, False)
    """One entry per object: whether it moves (the last one stands still by default)."""
    seed: int = 0
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 4), np.int64))
    """int64 [frames, objects, 4]: ``(y0, y1, x0, x1)`` of every object in every frame."""


OBJECT_SCENES: dict[str, ObjectScene] = {
    "obj-static-flicker": ObjectScene("static", "flicker", seed=11),
    "obj-pan-noise": ObjectScene("pan", "noise", seed=12),
    "obj-zoom-cut": ObjectScene("zoom", "cut", seed=13),
    "obj-shake-flicker": ObjectScene("shake", "flicker", seed=14),
}
"""The benchmark's scenes: every background once, every distractor at least once."""


def _background(scene: ObjectScene, rng: np.random.Generator) -> list[np.ndarray]:
    from PIL import Image

    h, w, n = scene.height, scene.width, scene.frames
    margin = 16
    big = texture(rng, h + 2 * margin, w + int(scene.speed * n) + 2 * margin)
    other = texture(rng, h + 2 * margin, w + 2 * margin)  # after the cut
    jitter = rng.integers(-6, 7, size=(n, 2))
    out = []
    for i in range(n):
        src = other if scene.distractor == "cut" and i >= n // 2 else big
        if scene.background == "pan" and src is big:
            x = round(scene.speed * i)
            out.append(src[margin : margin + h, margin + x : margin + x + w].copy())
        elif scene.background == "zoom":
            f = 1.0 - 0.35 * i / max(1, n - 1)  # the window shrinks to 65 %: a slow zoom in
            ch, cw = round(h * f), round(w * f)
            y0, x0 = margin + (h - ch) // 2, margin + (w - cw) // 2
            crop = Image.fromarray(src[y0 : y0 + ch, x0 : x0 + cw])
            out.append(np.array(crop.resize((w, h), Image.Resampling.BILINEAR)))
        elif scene.background == "shake":
            dy, dx = jitter[i]
            out.append(src[margin + dy : margin + dy + h, margin + dx : margin + dx + w].copy())
        else:
            out.append(src[margin : margin + h, margin : margin + w].copy())
    return out


def render_scene(scene: ObjectScene) -> list[np.ndarray]:
    """uint8 RGB frames [H, W, 3]; fills ``scene.boxes``."""
    rng = np.random.default_rng(scene.seed)
    h, w, n, s = scene.height, scene.width, scene.frames, scene.size
    frames = _background(scene, rng)
    count = len(scene.moving)
    sprites = [np.clip(texture(rng, s, s, cell=6).astype(np.int16) * 2 - 128, 0, 255).astype(np.uint8)
               for _ in range(count)]  # high-contrast textures: a moving object changes its cells a lot
    span_y, span_x = h - s, w - s
    starts = rng.integers(0, [span_y, span_x], size=(count, 2))
    angles = rng.uniform(0, 2 * np.pi, size=count)
    boxes = np.zeros((n, count, 4), np.int64)
    for i in range(n):
        for k in range(count):
            step = scene.speed * i if scene.moving[k] else 0.0
            y = round(starts[k, 0] + np.sin(angles[k]) * step) % (2 * span_y)
            x = round(starts[k, 1] + np.cos(angles[k]) * step) % (2 * span_x)
            y = y if y <= span_y else 2 * span_y - y  # bounce off the borders
            x = x if x <= span_x else 2 * span_x - x
            frames[i][y : y + s, x : x + s] = sprites[k]
            boxes[i, k] = (y, y + s, x, x + s)
    for i in range(n):
        img = frames[i].astype(np.float32)
        if scene.distractor == "flicker":  # global brightness, no motion: ±20 % with a 0.5 s period
            img *= 1.0 + 0.2 * np.sin(2 * np.pi * i / (scene.fps / 2))
        elif scene.distractor == "noise" and (i // 12) % 4 == 1:  # 12-frame bursts every 48 frames
            img += rng.normal(0.0, 24.0, img.shape)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    scene.boxes = boxes
    return frames


def write_scene(path: str | os.PathLike, scene: ObjectScene, *, encoder: str = "libx264") -> ObjectScene:
    """Render and encode ``scene``; return it with its boxes."""
    write_frames(path, render_scene(scene), fps=scene.fps, encoder=encoder)
    return scene


def object_masks(scene: ObjectScene, frame_ids: np.ndarray, geometry: Geometry, *,
                 moving_only: bool = False) -> np.ndarray:
    """bool [len(frame_ids), canvas_h, canvas_w]: the objects' pixels on the canvas at those frames."""
    out = np.zeros((len(frame_ids), geometry.canvas_h, geometry.canvas_w), bool)
    for t, fid in enumerate(np.asarray(frame_ids, np.int64)):
        src = np.zeros((scene.height, scene.width), np.uint8)
        for k, (y0, y1, x0, x1) in enumerate(scene.boxes[fid]):
            if scene.moving[k] or not moving_only:
                src[y0:y1, x0:x1] = 255
        out[t] = geometry.to_canvas(src) > 127
    return out


def moved_cells(scene: ObjectScene, frame_ids: np.ndarray, geometry: Geometry) -> np.ndarray:
    """bool [T, Hp, Wp]: cells of slot t (t ≥ 1) an object covered at slot t or t−1 while it moved between the two
    slot frames (the object's old place is uncovered, its new place covered: both change). Valid cells only."""
    ids = np.asarray(frame_ids, np.int64)
    t_n = len(ids)
    p = geometry.patch
    out = np.zeros((t_n, geometry.grid_h, geometry.grid_w), bool)
    valid = geometry.valid_mask()
    for t in range(1, t_n):
        src = np.zeros((scene.height, scene.width), np.uint8)
        for k in range(scene.boxes.shape[1]):
            a, b = scene.boxes[ids[t - 1], k], scene.boxes[ids[t], k]
            if np.array_equal(a, b):
                continue  # did not move between these slots (a still object, or a repeated frame)
            for y0, y1, x0, x1 in (a, b):
                src[y0:y1, x0:x1] = 255
        mask = geometry.to_canvas(src) > 127
        cells = mask[: geometry.grid_h * p, : geometry.grid_w * p].reshape(geometry.grid_h, p, geometry.grid_w, p)
        out[t] = cells.any(axis=(1, 3)) & valid
    return out
