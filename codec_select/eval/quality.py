"""The benchmark's quality axes beyond hold PSNR (DESIGN.md, "Measuring selection quality without an LLM").

- :func:`hold_reconstruction_rgb`: the hold rule of :mod:`codec_select.eval.metrics` on RGB canvases (each cell shows
  its most recent kept version, the next one if none yet, mid-grey if never kept).
- :func:`feature_retention`: mean over slots of the cosine similarity between a frozen network's embedding of the
  true canvas frame and of its hold reconstruction (ImageNet MobileNetV2, :mod:`codec_select.eval.mobilenet`).
- :func:`object_recall` / :func:`masked_hold_psnr`: on scenes with ground-truth masks (:mod:`codec_select.eval.scenes`),
  the share of (slot, cell) pairs where an object moved that a selection kept, and hold PSNR inside the masks.
- :func:`selection_agreement`: IoU beyond slot 0 and per-slot count correlation with another selection.
- :func:`padding_tokens`: how many kept tokens are letterbox padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..geometry import Geometry
from .metrics import hold_reconstruction, kept_mask

__all__ = [
    "cosine_rows",
    "feature_retention",
    "hold_reconstruction_rgb",
    "masked_hold_psnr",
    "object_recall",
    "padding_tokens",
    "psnr_of",
    "selection_agreement",
]


def hold_reconstruction_rgb(canvas: np.ndarray, selected: np.ndarray, patch: int) -> np.ndarray:
    """uint8 [T, H, W, 3]: the hold reconstruction of RGB canvases ``[T, H, W, 3]`` (the luma rule per channel)."""
    out = np.stack([hold_reconstruction(np.ascontiguousarray(canvas[..., ch]), selected, patch)
                    for ch in range(canvas.shape[-1])], axis=-1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 [N]: cosine similarity of matching rows (1.0 for two zero rows, 0.0 for one)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = np.sum(a * b, axis=1)
    out = np.where((na > 0) & (nb > 0), dot / np.maximum(na * nb, 1e-300), 0.0)
    out[(na == 0) & (nb == 0)] = 1.0
    return np.clip(out, -1.0, 1.0)


def feature_retention(
    embed: Callable[[np.ndarray], np.ndarray], truth: np.ndarray, recon: np.ndarray,
    truth_embeddings: np.ndarray | None = None,
) -> float:
    """Mean over slots of cos(embed(truth_t), embed(recon_t)).

    ``embed`` maps uint8 RGB frames [N, H, W, 3] to [N, D]. Reconstructed frames identical to their true frame
    reuse its embedding, and repeated reconstructed frames (a slot where nothing was kept shows the previous one)
    are embedded once: the network is the expensive part."""
    t = truth.shape[0]
    te = embed(truth) if truth_embeddings is None else truth_embeddings
    re = np.empty_like(te)
    todo, owner, seen = [], {}, {}
    for i in range(t):
        if np.array_equal(recon[i], truth[i]):
            re[i] = te[i]
            continue
        key = hash(recon[i].tobytes())
        if key in seen and np.array_equal(recon[seen[key]], recon[i]):
            owner[i] = seen[key]
            continue
        seen[key] = i
        todo.append(i)
    if todo:
        re[todo] = embed(recon[todo])
    for i, j in owner.items():
        re[i] = re[j]
    return float(np.mean(cosine_rows(te, re)))


def object_recall(moved: np.ndarray, selected: np.ndarray) -> float:
    """Share of (slot, cell) pairs in ``moved`` (bool [T, Hp, Wp]) that the selection kept; 1.0 when none moved."""
    mask = kept_mask(selected, moved.shape)
    total = int(moved.sum())
    return 1.0 if total == 0 else float((moved & mask).sum()) / total


def psnr_of(recon: np.ndarray, canvas: np.ndarray, pixels: np.ndarray) -> float:
    """PSNR (dB) of ``recon`` against ``canvas`` over the pixels where the bool mask ``pixels`` ([T, H, W], or
    [H, W] for every frame) is set: one MSE over all of them; ``inf`` when exact or empty."""
    if pixels.ndim == 2:
        pixels = np.broadcast_to(pixels, canvas.shape[:1] + pixels.shape)
    if not pixels.any():
        return math.inf
    diff = recon[pixels].astype(np.float64) - canvas[pixels].astype(np.float64)
    mse = float(np.mean(diff**2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def masked_hold_psnr(canvas: np.ndarray, selected: np.ndarray, geometry: Geometry, masks: np.ndarray) -> float:
    """Hold-reconstruction PSNR (dB) over the pixels inside ``masks`` (bool [T, H, W]) only; ``inf`` when exact
    (or when the masks are empty)."""
    return psnr_of(hold_reconstruction(canvas, selected, geometry.patch), canvas, masks)


def selection_agreement(a: np.ndarray, b: np.ndarray, grid_thw: tuple[int, int, int]) -> dict:
    """``{"iou", "corr"}``: IoU of kept cells beyond slot 0, Pearson correlation of kept cells per slot (1..T−1).

    Uses :func:`codec_select.recipes.select.agreement` (the issues' measure) when it is there; same definition otherwise."""
    try:
        from ..recipes.select import agreement
    except ImportError:
        agreement = None
    if agreement is not None:
        res = agreement(np.asarray(a), np.asarray(b), grid=grid_thw)
        return {"iou": float(res["iou"]), "corr": float(res["corr"])}
    t, h, w = grid_thw
    c = h * w
    a = np.unique(np.asarray(a, np.int64))
    b = np.unique(np.asarray(b, np.int64))
    a, b = a[a >= c], b[b >= c]
    union = np.union1d(a, b).size
    ca = np.bincount(a // c, minlength=t)[1:].astype(np.float64)
    cb = np.bincount(b // c, minlength=t)[1:].astype(np.float64)
    corr = float(np.corrcoef(ca, cb)[0, 1]) if ca.std() > 0 and cb.std() > 0 else float("nan")
    return {"iou": np.intersect1d(a, b).size / union if union else 1.0, "corr": corr}


def padding_tokens(selected: np.ndarray, geometry: Geometry) -> int:
    """How many kept tokens are letterbox padding cells (no source pixel under the whole patch)."""
    valid = geometry.valid_mask().ravel()
    idx = np.asarray(selected, np.int64)
    return int((~valid[idx % geometry.cells]).sum())
