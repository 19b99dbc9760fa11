"""Selection quality without an LLM: hold-reconstruction PSNR and motion recall (DESIGN.md, "Measuring ...").

Reconstruction: every cell of every slot shows the most recent kept version of itself (the next one if it was not
kept yet; mid-grey if never kept), and the 64 rebuilt canvas frames are compared with the true ones through ONE
MSE over all of them (valid cells only). Averaging per-frame PSNR would let exactly-kept frames (infinite PSNR)
dominate and flatter uniform sampling.

Motion recall: the share of the true change energy Σ|F_t − F_{t−1}| (every decoded frame, accumulated per slot,
summed per cell) that falls on kept cells.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..decode.container import probe
from ..decode.reader import iter_frames
from ..geometry import Geometry
from ..kernels import frame_change
from ..signals import CanvasPooler

__all__ = [
    "hold_reconstruction", "hold_psnr", "kept_mask", "motion_recall", "true_change", "TrueChange",
]


def kept_mask(selected: np.ndarray, grid_thw: tuple[int, int, int]) -> np.ndarray:
    """bool [T, Hp, Wp] from flat indices (or a mask of that shape)."""
    selected = np.asarray(selected)
    if selected.dtype == bool:
        return selected.reshape(grid_thw)
    mask = np.zeros(int(np.prod(grid_thw)), dtype=bool)
    mask[selected.astype(np.int64)] = True
    return mask.reshape(grid_thw)


def hold_reconstruction(canvas: np.ndarray, selected: np.ndarray, patch: int) -> np.ndarray:
    """Rebuild ``canvas`` [T, H, W] from kept cells (bool mask [T, Hp, Wp] or flat indices) by the hold rule."""
    t, h, w = canvas.shape
    hp, wp = h // patch, w // patch
    mask = kept_mask(selected, (t, hp, wp)).reshape(t, hp * wp)
    slots = np.arange(t)[:, None]
    last = np.maximum.accumulate(np.where(mask, slots, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(mask, slots, t)[::-1], axis=0)[::-1]
    src = np.where(last >= 0, last, np.where(nxt < t, nxt, -1))  # [T, C]
    cells = canvas[:, : hp * patch, : wp * patch].reshape(t, hp, patch, wp, patch).transpose(0, 1, 3, 2, 4)
    cells = cells.reshape(t, hp * wp, patch, patch)
    out = cells[np.maximum(src, 0), np.arange(hp * wp)[None, :]].astype(np.float32)
    out[src < 0] = 128.0
    out = out.reshape(t, hp, wp, patch, patch).transpose(0, 1, 3, 2, 4).reshape(t, hp * patch, wp * patch)
    full = canvas.astype(np.float32).copy()
    full[:, : hp * patch, : wp * patch] = out
    return full


def hold_psnr(canvas: np.ndarray, selected: np.ndarray, geometry: Geometry) -> float:
    """PSNR (dB) of the hold reconstruction over all slots, valid cells only; ``inf`` when exact."""
    recon = hold_reconstruction(canvas, selected, geometry.patch)
    p = geometry.patch
    valid = np.kron(geometry.valid_mask(), np.ones((p, p), dtype=bool))
    diff = (recon[:, : valid.shape[0], : valid.shape[1]] - canvas[:, : valid.shape[0], : valid.shape[1]].astype(np.float32))
    mse = float(np.mean(diff[:, valid] ** 2)) if valid.any() else 0.0
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def motion_recall(change: np.ndarray, selected: np.ndarray) -> float:
    """Share of slot change energy ``change`` [T, Hp, Wp] on kept cells (1.0 when there is no change)."""
    mask = kept_mask(selected, change.shape)
    total = float(change.sum())
    return 1.0 if total <= 0 else float(change[mask].sum()) / total


class TrueChange:
    """Per-frame true change pooled onto the canvas grid, from a full decode: ``per_frame`` [N, Hp, Wp]."""

    def __init__(self, per_frame: np.ndarray) -> None:
        self.per_frame = per_frame

    @property
    def num_frames(self) -> int:
        return int(self.per_frame.shape[0])

    def slots(self, frame_ids: np.ndarray) -> np.ndarray:
        """Accumulated per slot [64, Hp, Wp]; slot 0 has no previous frame (0)."""
        from ..select import slot_scores

        out = slot_scores(self.per_frame, frame_ids, accumulate=True)
        out[0] = 0.0
        return out


def true_change(video: str | os.PathLike, geometry: Geometry, *, rotation: int | None = None) -> TrueChange:
    """Σ|F_t − F_{t−1}| per cell for every decoded frame (the oracle's and the recall's ground truth).

    ``rotation`` (degrees CCW) defaults to the video's display rotation, as the selector uses it."""
    pooler = CanvasPooler(geometry, probe(video).rotation if rotation is None else rotation)
    prev = None
    maps = []
    for frame in iter_frames(video, export_mvs=False, fast=False):
        luma = frame.luma
        if prev is None or prev.shape != luma.shape:
            maps.append(np.zeros((geometry.grid_h, geometry.grid_w), np.float32))
        else:
            maps.append(pooler.energy(frame_change(luma, prev, block=4, step=1), 4.0))
        prev = luma
    return TrueChange(np.stack(maps) if maps else np.zeros((0, geometry.grid_h, geometry.grid_w), np.float32))

