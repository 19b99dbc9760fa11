"""Per-frame saliency of the OneVision reference's stage-1 selector, as literally as the reference computes it.

:func:`stage1_cell_scores`: ``CVR/tool/stage1.py`` (selector A, LLaVA training data), one sampled frame → float32
sums per 16×16 cell of the 576² letterbox. (The attentive-probe loader's formula is :mod:`codec_select.recipes.ap`.)

The float element-wise steps (``x / a``, clips, the mean, median, percentile) stay in numpy on purpose: they are
the reference's own numpy float32 arithmetic, so numpy's type promotion and interpolation rules apply unchanged.
The per-pixel integer and resampling work runs in the kernels of :mod:`codec_select.kernels.stage1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels.stage1 import bgr_as_luma, letterbox_cell_sums, resize_linear, resize_nearest, yuv420p_to_rgb24

__all__ = [
    "Letterbox",
    "letterbox",
    "stage1_cell_scores",
    "stage1_mv_norm",
    "stage1_residual_norm",
]

MV_UNIT_DIV = 4.0
"""``--mv_unit_div``: the reference divides cv_reader's whole-pixel vectors by 4 once more ("qpel → px")."""
MV_PCT = 95.0
RES_PCT = 95.0


@dataclass(frozen=True)
class Letterbox:
    """``_resize_longer_pad_square_map``'s geometry: longer side → ``out_size``, centred zero padding."""

    scale: float
    h0: int
    w0: int
    hn: int
    wn: int
    pad_top: int
    pad_left: int
    out_size: int

    @property
    def pad_bottom(self) -> int:
        return self.out_size - self.hn - self.pad_top

    @property
    def pad_right(self) -> int:
        return self.out_size - self.wn - self.pad_left

    def pad_info(self) -> dict:
        """The reference's ``pad_info`` dict (meta.json), key for key."""
        return {
            "scale": self.scale, "Hn": self.hn, "Wn": self.wn, "pad_top": self.pad_top, "pad_left": self.pad_left,
            "pad_bottom": self.pad_bottom, "pad_right": self.pad_right, "out_size": self.out_size,
            "H0": self.h0, "W0": self.w0,
        }


def letterbox(h0: int, w0: int, out_size: int = 576) -> Letterbox:
    """``scale = out/max(H, W)``, ``Hn = max(1, round(H·scale))`` (Python's round: half to even), centred pad."""
    scale = float(out_size) / float(max(h0, w0))
    hn = max(1, round(h0 * scale))
    wn = max(1, round(w0 * scale))
    return Letterbox(scale, h0, w0, hn, wn, (out_size - hn) // 2, (out_size - wn) // 2, out_size)


def _p95_floor(x: np.ndarray, pct: float, floor: float) -> float:
    # float(np.percentile(...)): numpy's linear interpolation, then a Python float as in the reference
    return max(float(np.percentile(x, pct)), floor)


def stage1_mv_norm(mv: np.ndarray, height: int, width: int, compensate: str = "median") -> np.ndarray:
    """Reference ``_mv_energy_norm`` on cv_reader's int32 ``[H/4, W/4, ≥2]`` grid (L0 channels): float32 ``[H, W]``.

    ``v = mv / 4`` (float32), minus the per-frame median of each component over the whole grid zeros included,
    magnitude, ``/ max(p95, 1e-6)``, clip to [0, 1], nearest upsample to ``height × width``.
    """
    vx = mv[:, :, 0].astype(np.float32) / float(MV_UNIT_DIV)
    vy = mv[:, :, 1].astype(np.float32) / float(MV_UNIT_DIV)
    if compensate == "median":
        vx = vx - np.median(vx)
        vy = vy - np.median(vy)
    elif compensate == "mean":
        vx = vx - float(np.mean(vx))
        vy = vy - float(np.mean(vy))
    elif compensate != "none":
        raise ValueError(f"Invalid compensate ({compensate!r}). Supported values are median, mean, none.")
    mag = np.sqrt(vx * vx + vy * vy).astype(np.float32)
    a = _p95_floor(mag, MV_PCT, 1e-6)
    norm = np.clip(mag / a, 0.0, 1.0).astype(np.float32)
    return resize_nearest(np.ascontiguousarray(norm), height, width)


def stage1_residual_norm(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Reference ``_residual_energy_norm(_residual_y_generic(rgb))``: float32 ``[H, W]`` in [0, 1].

    The patched picture's planes → swscale's RGB24 → OpenCV ``BGR2YUV`` luma (R and B weights swapped) →
    ``x = |Y′ − 128|`` → ``/ max(p95, 1)`` → clip.
    """
    luma = bgr_as_luma(yuv420p_to_rgb24(y, u, v))
    x = np.abs(luma.astype(np.float32) - 128.0)
    a = _p95_floor(x, RES_PCT, 1.0)
    return np.clip(x / a, 0.0, 1.0).astype(np.float32)


def stage1_cell_scores(
    mv: np.ndarray, planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None, box: Letterbox, patch: int = 16,
) -> np.ndarray:
    """One sampled frame's stage-1 scores: float32 ``[out/patch, out/patch]`` sums of the letterboxed fused map.

    ``planes`` = the residual picture's (Y, U, V); ``None`` drops the residual term (fused = mv / 2: the same
    ranking as neutral planes, whose residual term is 1 everywhere).
    """
    height, width = box.h0, box.w0
    mv_norm = stage1_mv_norm(mv, height, width)
    if planes is None:
        res_norm = np.zeros((height, width), dtype=np.float32)
    else:
        y, u, v = planes
        if y.shape != (height, width):
            raise ValueError(f"Residual picture {y.shape} does not match the first frame's {height}x{width}.")
        res_norm = stage1_residual_norm(y, u, v)
    fused = np.clip((1.0 * mv_norm + 1.0 * res_norm) / 2.0, 0.0, 1.0).astype(np.float32)
    small = resize_linear(fused, box.hn, box.wn)
    return letterbox_cell_sums(small, box.pad_top, box.pad_left, box.out_size, patch)
