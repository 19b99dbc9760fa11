"""Qwen-style canvas size: ``smart_resize`` as codec-video-prep 0.2.5 states it (../shared/reference/llava_ov2_prep.md §1).

A Qwen2-VL-style LMM (LLaVA-OneVision-2) takes images whose sides are multiples of ``patch × merge`` (14 × 2 = 28)
and whose area lies in ``[min_pixels, max_pixels]``; the aspect ratio is kept, nothing is cropped. One 2×2 group of
14-px patches (a 28-px *block*) becomes one LLM token after the merger.

Two details differ from Qwen2-VL's own ``smart_resize`` and are kept on purpose, because the reference's output files
(and any cache keyed on them) depend on them: the ``max_pixels`` / ``min_pixels`` tests use the **original** area
``h·w`` (Qwen2-VL tests the rounded one), and each side is clamped to at least one block at the end.
"""

from __future__ import annotations

import math

__all__ = [
    "LLAVA_OV2_MAX_PIXELS",
    "MAX_ASPECT",
    "QWEN_FACTOR",
    "QWEN_MAX_PIXELS",
    "QWEN_MERGE",
    "QWEN_MIN_PIXELS",
    "QWEN_PATCH",
    "smart_resize",
]

QWEN_PATCH = 14
"""Vision-tower patch side in pixels."""
QWEN_MERGE = 2
"""Spatial merge: 2×2 patches become one LLM token."""
QWEN_FACTOR = QWEN_PATCH * QWEN_MERGE
"""Canvas sides are multiples of this (28)."""
QWEN_MIN_PIXELS = 3136
"""Smallest canvas area (56²), the reference's default."""
QWEN_MAX_PIXELS = 153664
"""Largest canvas area: ``run_preinfer`` / CLI default of the reference (392²)."""
LLAVA_OV2_MAX_PIXELS = 150000
"""``LlavaCodecPreprocessConfig``'s default (the integration's); gives the same 504×280 for 640×360 input."""
MAX_ASPECT = 200
"""Longer / shorter side above this is refused (as the reference)."""


def smart_resize(
    height: int, width: int, *, factor: int = QWEN_FACTOR, min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
) -> tuple[int, int]:
    """Canvas ``(H, W)`` for a ``height × width`` source: multiples of ``factor``, aspect kept, area bounded.

    Start from each side rounded to the nearest multiple of ``factor`` (Python ``round``, ties to even). If the
    original area exceeds ``max_pixels``, shrink by β = √(area / max_pixels) and floor; if it is under
    ``min_pixels``, grow by β = √(min_pixels / area) and ceil. Each side is at least ``factor``.

    Raises ``ValueError`` for a non-positive size or an aspect ratio above 200.
    """
    if height < 1 or width < 1:
        raise ValueError(f"Invalid size {height}x{width}: both sides must be >= 1.")
    if factor < 1 or min_pixels < 1 or max_pixels < min_pixels:
        raise ValueError(f"Invalid smart_resize bounds (factor={factor}, min_pixels={min_pixels}, "
                         f"max_pixels={max_pixels}).")
    if max(height, width) / min(height, width) > MAX_ASPECT:
        raise ValueError(
            f"Absolute aspect ratio must be smaller than {MAX_ASPECT}, got {max(height, width) / min(height, width)}."
        )
    area = height * width  # the original area, not the rounded one (see the module docstring)
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if area > max_pixels:
        beta = math.sqrt(area / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif area < min_pixels:
        beta = math.sqrt(min_pixels / area)
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return max(factor, h_bar), max(factor, w_bar)
