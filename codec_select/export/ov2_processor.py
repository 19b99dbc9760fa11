"""Feeding LLaVA-OneVision-2 output to a Qwen2-VL-style processor: merge-order positions and timestamped prompts.

../shared/reference/llava_ov2_prep.md §7. A Qwen2-VL image processor emits each image's patches in 2×2 merge
order (every 4 consecutive patches are one LLM token), so the raster-order positions of ``src_patch_position.npy``
are permuted the same way; the prompt's vision span becomes one ``<{t:.1f} seconds><|vision_start|>…<|vision_end|>``
run per stretch of consecutive tokens from one source frame.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .llava_ov2 import FRAME_IDS_NAME, META_NAME, POSITIONS_NAME, Ov2Result

__all__ = [
    "IMAGE_PAD",
    "VISION_END",
    "VISION_START",
    "drop_padding_canvases",
    "load_llava_ov2",
    "merge_order_positions",
    "prepare_llava_ov2_inputs",
    "rewrite_prompt",
    "timestamp_runs",
]

VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"


def load_llava_ov2(folder: str | os.PathLike) -> Ov2Result:
    """Read an output folder back (canvases as uint8 RGB, positions, frame ids, meta)."""
    from PIL import Image

    folder = Path(folder)
    meta = json.loads((folder / META_NAME).read_text())
    images = [np.asarray(Image.open(folder / name).convert("RGB")) for name in meta["canvas_files"]]
    canvases = np.stack(images) if images else np.zeros((0, 1, 1, 3), np.uint8)
    return Ov2Result(canvases, np.load(folder / POSITIONS_NAME), np.load(folder / FRAME_IDS_NAME), meta, folder,
                     [str(folder / n) for n in meta["canvas_files"]])


def drop_padding_canvases(canvases: np.ndarray, positions: np.ndarray, s_full: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove canvases made only of padding; raise ``ValueError`` on a partly padded one (its padding patches would
    be image tokens with no place in the prompt)."""
    pos = np.asarray(positions).reshape(-1, s_full, 3)
    if pos.shape[0] != len(canvases):
        raise ValueError(f"{len(canvases)} canvases but positions for {pos.shape[0]}.")
    pad = pos[:, :, 0] < 0
    partial = np.flatnonzero(pad.any(axis=1) & ~pad.all(axis=1))
    if partial.size:
        raise ValueError(f"Canvas {int(partial[0])} is partly padding; its group had too few usable frames "
                         "(use more frames per group, or tail='merge').")
    keep = ~pad.all(axis=1)
    return np.asarray(canvases)[keep], pos[keep].reshape(-1, 3)


def merge_order_positions(positions: np.ndarray, grid_thw: np.ndarray, merge: int = 2) -> np.ndarray:
    """Raster-order positions → the processor's patch order: per image (t, h, w), rows viewed as
    ``(t, h/m, m, w/m, m)``, permuted to ``(t, h/m, w/m, m, m)`` and flattened."""
    pos = np.asarray(positions)
    grid = np.asarray(grid_thw, dtype=np.int64).reshape(-1, 3)
    total = int(grid.prod(axis=1).sum())
    if total != pos.shape[0]:
        raise ValueError(f"Positions hold {pos.shape[0]} rows but the image grids hold {total} patches.")
    out, start = [], 0
    for t, h, w in grid.tolist():
        if h % merge or w % merge:
            raise ValueError(f"Grid {h}x{w} is not a multiple of the merge size {merge}.")
        block = pos[start : start + t * h * w].reshape(t, h // merge, merge, w // merge, merge, -1)
        out.append(block.transpose(0, 1, 3, 2, 4, 5).reshape(t * h * w, -1))
        start += t * h * w
    return np.concatenate(out) if out else pos[:0]


def timestamp_runs(merged_positions: np.ndarray, fps: float, *, merge: int = 2) -> list[tuple[int, int]]:
    """(frame id, tokens) per run of consecutive equal frame ids over the merge-ordered positions (runs cross
    canvas boundaries; padding, fid < 0, is skipped); tokens = patches // merge²."""
    fids = np.asarray(merged_positions)[:, 0]
    if fids.size == 0:
        return []
    edges = np.flatnonzero(np.diff(fids)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [fids.size]])
    return [(int(fids[s]), int((e - s) // (merge * merge))) for s, e in zip(starts, ends) if fids[s] >= 0]


def rewrite_prompt(text: str, runs: list[tuple[int, int]], fps: float, *, decimals: int = 1) -> str:
    """Replace the text from the first ``<|vision_start|>`` through the last ``<|vision_end|>`` (plus one following
    newline) with ``<{fid/fps:.{decimals}f} seconds><|vision_start|>`` + pads + ``<|vision_end|>\\n`` per run.
    Text without both markers comes back unchanged."""
    first = text.find(VISION_START)
    last = text.rfind(VISION_END)
    if first < 0 or last < 0 or last < first:
        return text
    end = last + len(VISION_END)
    if text.startswith("\n", end):
        end += 1
    body = "".join(f"<{fid / fps:.{decimals}f} seconds>{VISION_START}{IMAGE_PAD * tokens}{VISION_END}\n"
                   for fid, tokens in runs)
    return text[:first] + body + text[end:]


def prepare_llava_ov2_inputs(
    processor, text: str, result: Ov2Result | str | os.PathLike, *, max_pixels: int = 150000,
    spatial_merge_size: int = 2, timestamp_decimals: int | None = None,
) -> dict:
    """What a Qwen2-VL-style model needs for one video, from a processor the caller passes in.

    ``processor``: a processor with ``image_processor`` (and ``tokenizer``) attributes, or an image processor
    alone. The canvases go through ``image_processor`` with ``max_pixels`` at least the largest canvas, so each
    keeps its size (grid (1, hb, wb)); its ``patch_size`` must equal the canvases' patch (14).

    Returns ``pixel_values``, ``image_grid_thw``, ``patch_positions`` (torch.long [Σ t·h·w, 3] (fid, h, w) in the
    processor's patch order: 4 consecutive rows = one source 2×2 block = one token), ``text`` (the rewritten
    prompt) and, with a tokenizer, ``input_ids`` / ``attention_mask``.
    """
    import torch

    if not isinstance(result, Ov2Result):
        result = load_llava_ov2(result)
    image_processor = getattr(processor, "image_processor", processor)
    tokenizer = getattr(processor, "tokenizer", None)
    s_full = int(result.meta["S_full"])
    patch = int(result.meta.get("config", {}).get("patch", 14))
    proc_patch = getattr(image_processor, "patch_size", patch)
    if proc_patch != patch:
        raise ValueError(f"The image processor's patch size ({proc_patch}) differs from the canvases' ({patch}).")
    canvases, positions = drop_padding_canvases(result.canvases, result.positions, s_full)
    if len(canvases) == 0:
        raise ValueError("No canvas left after dropping padding canvases.")
    largest = max(int(c.shape[0]) * int(c.shape[1]) for c in canvases)
    images = [np.ascontiguousarray(c) for c in canvases]
    bound = max(int(max_pixels), largest)
    min_px = int((getattr(image_processor, "size", None) or {}).get("shortest_edge", 3136) or 3136)
    try:
        feats = image_processor(images, size={"shortest_edge": min(min_px, bound), "longest_edge": bound},
                                return_tensors="pt")
    except (TypeError, ValueError):  # processors that predate ``size`` as a dict of pixel bounds
        feats = image_processor(images, max_pixels=bound, return_tensors="pt")
    grid = feats["image_grid_thw"]
    hb, wb = result.meta["hb_wb"]
    if not bool(torch.all(grid[:, 1:] == torch.tensor([hb, wb]))):
        raise ValueError(f"The image processor resized the canvases (grid {grid[0].tolist()}, expected 1x{hb}x{wb}).")
    merged = merge_order_positions(positions, grid.numpy(), spatial_merge_size)
    decimals = 1 if timestamp_decimals is None else int(timestamp_decimals)
    runs = timestamp_runs(merged, result.fps, merge=spatial_merge_size)
    prompt = rewrite_prompt(text, runs, result.fps, decimals=decimals)
    out = {"pixel_values": feats["pixel_values"], "image_grid_thw": grid,
           "patch_positions": torch.as_tensor(merged, dtype=torch.long), "text": prompt}
    if tokenizer is not None:
        enc = tokenizer(prompt, return_tensors="pt")
        out["input_ids"], out["attention_mask"] = enc["input_ids"], enc["attention_mask"]
    return out
