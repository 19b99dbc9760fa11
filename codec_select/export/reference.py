"""Writers for the OneVision-Encoder training layouts, so its users switch without touching their trainer.

Stage-1 ("reference") layout, per video: ``<prefix>.visidx_thw.npy`` int32 [K, 3] (t, h, w), ``<prefix>.frame_ids.npy``
int32 [64] and ``<prefix>.meta.json`` with the reference's keys. Rows are sorted by (t, h, w) — stage 2 sorts them
anyway, and a sorted file is what every consumer can rely on — except for a ``recipe="onevision-stage1"``
selection, whose rows keep the reference's own order (slot 0 raster, then descending score).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..selection import NUM_SLOTS, Selection

__all__ = ["reference_prefix", "reference_rows", "write_reference", "read_reference", "atomic_write_bytes"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


def reference_prefix(selection: Selection, sample_id: str | int | None = None, row_idx: int = 0) -> str:
    """``sample_{id}__{stem}__{sha1(video)[:8]}__{sha1(sample_key)[:8]}_T64_square{S}_p{p}_K{K}`` (stage-1 naming)."""
    video = selection.video
    stem = Path(video).stem
    sid = stem if sample_id is None else str(sample_id)
    sample_key = f"{video}|{sid}|{row_idx}"
    g = selection.geometry
    return (
        f"sample_{sid}__{stem}__{hashlib.sha1(video.encode()).hexdigest()[:8]}__"
        f"{hashlib.sha1(sample_key.encode()).hexdigest()[:8]}_T{NUM_SLOTS}_square{g.canvas_h}_p{g.patch}_K{selection.budget}"
    )


def _meta(selection: Selection, sample_id: str, sample_key: str) -> dict:
    g = selection.geometry
    valid = g.valid_mask()
    rows = np.flatnonzero(valid.any(axis=1))
    cols = np.flatnonzero(valid.any(axis=0))
    y0, y1, x0, x1 = g.content_box()
    positions = selection.positions_thw
    flat_valid = valid.ravel()
    invalid_kept = int((~flat_valid[positions[:, 1] * g.grid_w + positions[:, 2]]).sum())
    equiv = selection.budget / g.cells
    # The reference's scale is out_size / max(H0, W0) (its Hn, Wn are rounded from it), not Hn / H0.
    scale = g.canvas_h / max(g.source_h, g.source_w) if g.name == "llava576" else g.scaled_h / g.source_h
    return {
        "sample_id": sample_id, "sample_key": sample_key, "video": selection.video, "T": NUM_SLOTS, "frame_ids": None,
        "preprocess": "square576" if g.name == "llava576" else g.name, "square_size": g.canvas_h, "patch": g.patch,
        "keep_frames_equiv": int(equiv) if equiv == int(equiv) else equiv, "padding_policy": "zero",
        "keep_uniform_first": False, "keep_first_full_frame": bool(selection.options.get("first_full", True)),
        "H0": g.source_h, "W0": g.source_w,
        "pad_info": {
            "scale": scale, "Hn": g.scaled_h, "Wn": g.scaled_w, "pad_top": max(0, g.off_y),
            "pad_left": max(0, g.off_x), "pad_bottom": max(0, g.canvas_h - y1), "pad_right": max(0, g.canvas_w - x1),
            "out_size": g.canvas_h, "H0": g.source_h, "W0": g.source_w,
        },
        "hb": g.grid_h, "wb": g.grid_w, "S_total": g.cells, "S_valid": int(valid.sum()), "K": selection.budget,
        "padding_patch_filtered": invalid_kept,
        "valid_ranges": {
            "S_valid": int(valid.sum()), "hb_total": g.grid_h, "wb_total": g.grid_w,
            "valid_h_start": int(rows[0]) if rows.size else 0, "valid_h_end": int(rows[-1] + 1) if rows.size else 0,
            "valid_w_start": int(cols[0]) if cols.size else 0, "valid_w_end": int(cols[-1] + 1) if cols.size else 0,
        },
        # Ours, beyond the reference's keys: what produced the file.
        "codec_select": selection.to_dict(),
    }


def reference_rows(selection: Selection) -> np.ndarray:
    """int32 [K, 3] (t, h, w) rows as the stage-1 file holds them: the reference's own order for a recipe selection
    (:attr:`Selection.reference_order`: slot 0 raster, then descending score), else sorted by (t, h, w)."""
    if selection.reference_order is None:
        return selection.positions_thw.astype(np.int32)
    g = selection.geometry
    t, rem = np.divmod(np.asarray(selection.reference_order, dtype=np.int64), g.cells)
    h, w = np.divmod(rem, g.grid_w)
    return np.stack([t, h, w], axis=1).astype(np.int32)


def write_reference(
    selection: Selection, out_dir: str | os.PathLike, *, sample_id: str | int | None = None, row_idx: int = 0
) -> dict[str, Path]:
    """Write the stage-1 files for one selection into ``out_dir``; returns their paths by suffix."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = reference_prefix(selection, sample_id, row_idx)
    sid = Path(selection.video).stem if sample_id is None else str(sample_id)
    paths = {
        "visidx_thw": out / f"{prefix}.visidx_thw.npy",
        "frame_ids": out / f"{prefix}.frame_ids.npy",
        "meta": out / f"{prefix}.meta.json",
    }
    _atomic_save_npy(paths["visidx_thw"], reference_rows(selection))
    _atomic_save_npy(paths["frame_ids"], selection.frame_ids.astype(np.int32))
    meta = _meta(selection, sid, f"{selection.video}|{sid}|{row_idx}")
    atomic_write_bytes(paths["meta"], json.dumps(meta, indent=1).encode())  # meta last: its presence means "done"
    return paths


def read_reference(meta_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read back ``(visidx_thw [K,3] int32, frame_ids [64] int32, meta)`` from a ``.meta.json`` path."""
    meta_path = Path(meta_path)
    prefix = str(meta_path)[: -len(".meta.json")]
    meta = json.loads(meta_path.read_text())
    return np.load(prefix + ".visidx_thw.npy"), np.load(prefix + ".frame_ids.npy"), meta
