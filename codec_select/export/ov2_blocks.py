"""LLaVA-OneVision-2 input, block side: 2×2-patch block scores, per-group top-K, canvas packing, canvas pixels.

Pure numpy on arrays (../shared/reference/llava_ov2_prep.md §1, §4). Terms: the canvas is ``H × W`` pixels, the
patch grid ``hb × wb`` (14-px patches), a *block* is 2×2 patches (28 px, one LLM token after the 2×2 merger), so a
frame has ``S_full / 4`` blocks on a ``hb/2 × wb/2`` grid. A group of L frames gets ``ipg`` canvases: its anchor
frame whole (identity layout) and the K = (ipg−1)·S_full/4 best blocks of its other frames.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BLOCK_POLICIES",
    "PAD",
    "accumulated_scores",
    "block_grid",
    "block_scores",
    "group_budget",
    "pack_group",
    "render_canvases",
    "select_blocks",
]

BLOCK_POLICIES = ("refresh", "energy", "uniform")
PAD = -1
"""Position value of a padding patch (black pixels, row [−1, −1, −1])."""


def block_grid(hb: int, wb: int) -> tuple[int, int]:
    """Block rows and columns of an ``hb × wb`` patch grid (both must be even: canvases are multiples of 28)."""
    if hb % 2 or wb % 2 or hb < 2 or wb < 2:
        raise ValueError(f"Patch grid {hb}x{wb} cannot be cut into 2x2 blocks (canvas sides must be multiples of 28).")
    return hb // 2, wb // 2


def block_scores(cell_scores: np.ndarray) -> np.ndarray:
    """float64 ``[N, hb/2, wb/2]``: the sum of each block's four patch scores (``cell_scores`` ``[N, hb, wb]``)."""
    n, hb, wb = cell_scores.shape
    bh, bw = block_grid(hb, wb)
    return cell_scores.astype(np.float64).reshape(n, bh, 2, bw, 2).sum(axis=(2, 4))


def accumulated_scores(energy: np.ndarray, frame_ids: np.ndarray) -> np.ndarray:
    """Per sampled frame, the energy of every decoded frame since the previous sampled one (in display order).

    Why accumulate: a block that moved during frames nobody samples changed all the same; summing
    ``(previous sampled, fid]`` makes the score "how much this block changed since it was last seen" instead of
    the instantaneous motion of one frame (the same choice as the 64-slot selector's ``accumulate=True``)."""
    ids = np.asarray(frame_ids, dtype=np.int64)
    csum = np.concatenate([np.zeros((1,) + energy.shape[1:]), np.cumsum(energy, axis=0, dtype=np.float64)])
    uniq = np.unique(ids)
    prev = np.concatenate([[-1], uniq[:-1]])[np.searchsorted(uniq, ids)]
    return np.maximum(csum[ids + 1] - csum[prev + 1], 0.0)


def group_budget(images_per_group: int, s_full: int) -> int:
    """K: blocks of the non-anchor canvases, ((ipg − 1) · S_full) // 4."""
    if images_per_group < 1:
        raise ValueError(f"Invalid images_per_group ({images_per_group!r}). It must be >= 1.")
    return ((images_per_group - 1) * s_full) // 4


def select_blocks(
    scores: np.ndarray, candidate: np.ndarray, k: int, *, policy: str = "energy", thumbs: np.ndarray | None = None,
) -> np.ndarray:
    """Choose up to ``k`` blocks of one group; int64 ``[k', 3]`` rows (relative frame, bh, bw), k' = min(k, #cand).

    ``scores`` float ``[L, bh, bw]``; ``candidate`` bool ``[L]`` (the anchor and bad frames are False). Rows come
    sorted by (frame, bh, bw), the reference's packing order.

    - ``energy``: the top-k by score, ties broken by (frame, bh, bw) so the result is deterministic.
    - ``refresh``: the 64-slot selector's drift-aware rule on blocks (:func:`codec_select.kernels.
      refresh_drift_select`): a block is re-sent once what was last sent of it (frame 0 sends all) no longer matches
      its 4 patch means ``thumbs`` float ``[L, bh·bw, 4]`` plus the energy it gathered reaches τ, bisected for
      exactly k. ``scores`` must then be in block-area units (1.0 = a fully busy block for one frame).
    - ``uniform`` (the baseline at equal tokens): whole frames, ``ceil(k / blocks per frame)`` of the candidates at
      evenly spaced positions (``round(linspace)``), then the first k of their blocks in order.
    """
    L, bh, bw = scores.shape
    cand = np.flatnonzero(np.asarray(candidate, dtype=bool))
    per_frame = bh * bw
    if k <= 0 or cand.size == 0:
        return np.zeros((0, 3), np.int64)
    if policy == "energy":
        flat = scores[cand].reshape(-1)
        take = min(k, flat.size)
        order = np.lexsort((np.arange(flat.size), -flat))[:take]  # descending score, then (frame, bh, bw)
        chosen = np.sort(order)
    elif policy == "refresh":
        if thumbs is None:
            raise ValueError("The refresh block policy needs the blocks' patch means (thumbs).")
        from ..kernels import refresh_drift_select
        from ..policies import AGE_WEIGHT, DRIFT_WEIGHT

        eligible = np.zeros((L, per_frame), dtype=bool)
        eligible[cand] = True
        mandatory = np.zeros((L, per_frame), dtype=bool)
        mandatory[0] = True  # the anchor: sent whole, what the drift is measured against
        eligible[0] = False
        take = min(k, int(eligible.sum()))
        keep = refresh_drift_select(
            np.ascontiguousarray(thumbs, dtype=np.float32), np.ascontiguousarray(scores.reshape(L, -1), np.float32),
            eligible, mandatory, take + per_frame, weight=DRIFT_WEIGHT, age_weight=AGE_WEIGHT,
        )
        keep[0] = False
        flat_keep = np.flatnonzero(keep.reshape(-1))
        frame, rem = np.divmod(flat_keep, per_frame)
        rows, cols = np.divmod(rem, bw)
        return np.stack([frame, rows, cols], axis=1).astype(np.int64)
    elif policy == "uniform":
        n_frames = min(cand.size, -(-k // per_frame))
        picks = np.unique(np.round(np.linspace(0, cand.size - 1, n_frames)).astype(np.int64))
        chosen = (picks[:, None] * per_frame + np.arange(per_frame)[None, :]).reshape(-1)[:k]
    else:
        raise ValueError(f"Invalid block policy ({policy!r}). Supported values are {', '.join(BLOCK_POLICIES)}.")
    frame, rem = np.divmod(chosen, per_frame)
    rows, cols = np.divmod(rem, bw)
    return np.stack([cand[frame], rows, cols], axis=1).astype(np.int64)


def pack_group(anchor_fid: int, blocks: np.ndarray, hb: int, wb: int, images_per_group: int) -> np.ndarray:
    """int32 ``[ipg · S_full, 3]``: the source (fid, h, w) of every canvas patch of one group, canvas raster order.

    ``blocks``: int ``[n, 3]`` rows (absolute fid, bh, bw) already in packing order. Block k (the anchor's
    S_full/4 blocks in raster order first, then ``blocks``) goes to canvas k // (S_full/4), slot j = k mod
    (S_full/4) at block row j // (wb/2), column j mod (wb/2), its 2×2 patches keeping their arrangement. Slots
    past the last block are padding [−1, −1, −1]."""
    bh_n, bw_n = block_grid(hb, wb)
    per_canvas = bh_n * bw_n
    total = images_per_group * per_canvas
    anchor_rows, anchor_cols = np.divmod(np.arange(per_canvas), bw_n)
    src = np.concatenate([
        np.stack([np.full(per_canvas, anchor_fid), anchor_rows, anchor_cols], axis=1),
        np.asarray(blocks, dtype=np.int64).reshape(-1, 3),
    ])
    if src.shape[0] > total:
        raise ValueError(f"{src.shape[0]} blocks do not fit {images_per_group} canvases of {per_canvas} blocks.")
    out = np.full((images_per_group, hb, wb, 3), PAD, dtype=np.int32)
    k = np.arange(src.shape[0])
    canvas, slot = np.divmod(k, per_canvas)
    srow, scol = np.divmod(slot, bw_n)
    for dh in (0, 1):
        for dw in (0, 1):
            out[canvas, 2 * srow + dh, 2 * scol + dw] = np.stack(
                [src[:, 0], 2 * src[:, 1] + dh, 2 * src[:, 2] + dw], axis=1)
    return out.reshape(images_per_group * hb * wb, 3)


def render_canvases(positions: np.ndarray, frames: dict[int, np.ndarray], hb: int, wb: int, patch: int) -> np.ndarray:
    """uint8 ``[C, hb·patch, wb·patch, 3]``: every canvas patch copied from ``frames[fid]`` (canvas-sized RGB) at
    patch (h, w); padding rows stay black."""
    pos = np.asarray(positions).reshape(-1, hb * wb, 3)
    c = pos.shape[0]
    out = np.zeros((c, hb, wb, patch, patch, 3), dtype=np.uint8)
    flat = pos.reshape(-1, 3)
    for fid in np.unique(flat[:, 0]):
        if fid < 0:
            continue
        img = frames[int(fid)]
        cells = img.reshape(hb, patch, wb, patch, 3).swapaxes(1, 2)  # [hb, wb, p, p, 3]
        rows = np.flatnonzero(flat[:, 0] == fid)
        out.reshape(-1, patch, patch, 3)[rows] = cells[flat[rows, 1], flat[rows, 2]]
    return np.ascontiguousarray(out.transpose(0, 1, 3, 2, 4, 5).reshape(c, hb * patch, wb * patch, 3))
