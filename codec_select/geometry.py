"""Canvas geometry: how a source frame becomes the encoder's canvas, and which source pixels each patch cell sees.

One object answers every "where" question, so pixels (the encoder input, the metrics) and energy maps (the scores)
go through exactly the same resize / crop / pad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Geometry", "GeometryName", "GEOMETRIES", "make_geometry"]

GeometryName = Literal["ap224", "llava576", "native", "qwen"]
GEOMETRIES: tuple[str, ...] = ("ap224", "llava576", "native", "qwen")

# CLIP normalisation, shared by the encoder preprocessing and anything that shows canvas pixels.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Geometry:
    """Source frame → canvas transform plus the patch grid on the canvas.

    The source is first resized to ``scaled_h × scaled_w`` and then placed on the canvas with its top-left corner at
    ``(off_y, off_x)``: negative offsets crop (``ap224``), positive offsets pad with zeros (``llava576``).
    """

    name: str
    """Preset name: ``"ap224"``, ``"llava576"``, ``"native"`` or ``"qwen"``."""
    source_h: int
    """Height of the upright source frame in pixels (after the display rotation)."""
    source_w: int
    """Width of the upright source frame in pixels."""
    canvas_h: int
    """Canvas height in pixels (a multiple of ``patch``)."""
    canvas_w: int
    """Canvas width in pixels (a multiple of ``patch``)."""
    patch: int
    """Patch size in canvas pixels (14 for the encoder's native grid, 16 for the LLaVA 576 letterbox)."""
    scaled_h: int
    """Height of the resized source before crop / pad."""
    scaled_w: int
    """Width of the resized source before crop / pad."""
    off_y: int
    """Canvas row of the resized source's top edge (negative = cropped, positive = padding above)."""
    off_x: int
    """Canvas column of the resized source's left edge."""
    resample: str = "bicubic"
    """Resampling filter of the pixel resize: ``"bicubic"`` or ``"bilinear"``."""

    def __post_init__(self) -> None:
        if self.canvas_h % self.patch or self.canvas_w % self.patch:
            raise ValueError(f"Canvas {self.canvas_h}x{self.canvas_w} is not a multiple of patch {self.patch}.")
        if min(self.source_h, self.source_w, self.scaled_h, self.scaled_w) < 1:
            raise ValueError(f"Degenerate geometry: {self!r}")

    def __repr__(self) -> str:
        return (
            f"Geometry({self.name!r}, source={self.source_h}x{self.source_w}, canvas={self.canvas_h}x{self.canvas_w}, "
            f"patch={self.patch}, grid={self.grid_h}x{self.grid_w})"
        )

    @property
    def grid_h(self) -> int:
        """Patch rows on the canvas (Hp)."""
        return self.canvas_h // self.patch

    @property
    def grid_w(self) -> int:
        """Patch columns on the canvas (Wp)."""
        return self.canvas_w // self.patch

    @property
    def cells(self) -> int:
        """Patch cells per frame (Hp·Wp)."""
        return self.grid_h * self.grid_w

    def content_box(self) -> tuple[int, int, int, int]:
        """Canvas rows/cols ``(y0, y1, x0, x1)`` covered by source pixels (the rest is zero padding)."""
        y0, x0 = max(0, self.off_y), max(0, self.off_x)
        y1 = min(self.canvas_h, self.off_y + self.scaled_h)
        x1 = min(self.canvas_w, self.off_x + self.scaled_w)
        return y0, y1, x0, x1

    def valid_mask(self) -> np.ndarray:
        """bool [Hp, Wp]: a cell is valid iff its whole patch lies inside the content box (the reference's rule)."""
        y0, y1, x0, x1 = self.content_box()
        rows = np.arange(self.grid_h) * self.patch
        cols = np.arange(self.grid_w) * self.patch
        row_ok = (rows >= y0) & (rows + self.patch <= y1)
        col_ok = (cols >= x0) & (cols + self.patch <= x1)
        return row_ok[:, None] & col_ok[None, :]

    def row_edges(self, sub: int = 1) -> np.ndarray:
        """float64 [sub·Hp+1]: source-pixel row of each cell boundary (may fall outside the source for padding);
        ``sub`` > 1 splits every cell into ``sub`` equal rows."""
        canvas = np.arange(self.grid_h * sub + 1, dtype=np.float64) * (self.patch / sub)
        return (canvas - self.off_y) * (self.source_h / self.scaled_h)

    def col_edges(self, sub: int = 1) -> np.ndarray:
        """float64 [sub·Wp+1]: source-pixel column of each cell boundary (``sub`` as in :meth:`row_edges`)."""
        canvas = np.arange(self.grid_w * sub + 1, dtype=np.float64) * (self.patch / sub)
        return (canvas - self.off_x) * (self.source_w / self.scaled_w)

    def to_canvas(self, image: np.ndarray) -> np.ndarray:
        """Resize / crop / pad one upright uint8 image ``[H, W]`` or ``[H, W, C]`` to ``[canvas_h, canvas_w(, C)]``."""
        from PIL import Image

        if image.shape[:2] != (self.source_h, self.source_w):
            raise ValueError(f"Image {image.shape[:2]} does not match the geometry's source {self.source_h}x{self.source_w}.")
        filt = Image.Resampling.BICUBIC if self.resample == "bicubic" else Image.Resampling.BILINEAR
        scaled = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((self.scaled_w, self.scaled_h), filt))
        out = np.zeros((self.canvas_h, self.canvas_w) + image.shape[2:], dtype=np.uint8)
        y0, y1, x0, x1 = self.content_box()
        out[y0:y1, x0:x1] = scaled[y0 - self.off_y : y1 - self.off_y, x0 - self.off_x : x1 - self.off_x]
        return out


def make_geometry(
    name: str, source_h: int, source_w: int, *, max_cells: int = 256, native_patch: int = 14,
    max_pixels: int | None = None,
) -> Geometry:
    """Build a preset for an upright source of ``source_h × source_w`` pixels.

    - ``ap224``: shorter side → 224 (bicubic, CLIP's integer rule), centre crop 224², patch 14 → 16×16 cells.
    - ``llava576``: longer side → 576 (bilinear), centred zero padding to 576², patch 16 → 36×36 cells.
    - ``native``: keep the aspect ratio, canvas a multiple of ``native_patch`` with at most ``max_cells`` cells.
    - ``qwen``: LLaVA-OneVision-2 / Qwen2-VL input, :func:`~codec_select.qwen_geometry.smart_resize` (sides
      multiples of 28, area ≤ ``max_pixels``, default 153664), aspect kept, no crop, patch 14 (bilinear,
      antialiased: PIL's stand-in for the reference's swscale area filter).
    """
    if source_h < 1 or source_w < 1:
        raise ValueError(f"Invalid source size {source_h}x{source_w}.")
    if name == "ap224":
        size, patch = 224, 14
        if source_h <= source_w:
            scaled_h, scaled_w = size, max(size, int(size * source_w / source_h))
        else:
            scaled_h, scaled_w = max(size, int(size * source_h / source_w)), size
        return Geometry(
            name, source_h, source_w, size, size, patch, scaled_h, scaled_w,
            -((scaled_h - size) // 2), -((scaled_w - size) // 2), "bicubic",
        )
    if name == "llava576":
        size, patch = 576, 16
        scale = size / max(source_h, source_w)
        scaled_h = max(1, min(size, round(source_h * scale)))
        scaled_w = max(1, min(size, round(source_w * scale)))
        return Geometry(
            name, source_h, source_w, size, size, patch, scaled_h, scaled_w,
            (size - scaled_h) // 2, (size - scaled_w) // 2, "bilinear",
        )
    if name == "native":
        if max_cells < 1:
            raise ValueError(f"Invalid max_cells ({max_cells!r}). It must be >= 1.")
        p = native_patch
        scale = math.sqrt(max_cells * p * p / (source_h * source_w))
        gh = max(1, round(source_h * scale / p))
        gw = max(1, round(source_w * scale / p))
        while gh * gw > max_cells:  # rounding may overshoot the cap by a row or column
            if gh >= gw:
                gh -= 1
            else:
                gw -= 1
        return Geometry(name, source_h, source_w, gh * p, gw * p, p, gh * p, gw * p, 0, 0, "bicubic")
    if name == "qwen":
        from .qwen_geometry import QWEN_MAX_PIXELS, QWEN_PATCH, smart_resize

        h, w = smart_resize(source_h, source_w, max_pixels=QWEN_MAX_PIXELS if max_pixels is None else int(max_pixels))
        return Geometry(name, source_h, source_w, h, w, QWEN_PATCH, h, w, 0, 0, "bilinear")
    raise ValueError(f"Invalid geometry ({name!r}). Supported values are {', '.join(GEOMETRIES)}.")
