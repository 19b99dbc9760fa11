"""The Selection: what was chosen, on which grid, from which signals, and how long each stage took."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .geometry import Geometry
from .report import SelectionReport

__all__ = ["Selection", "NUM_SLOTS", "frame_grid"]

NUM_SLOTS = 64
"""Temporal grid of the encoder's 3D RoPE: every selection lives on 64 frame slots."""


def frame_grid(num_frames: int, slots: int = NUM_SLOTS) -> np.ndarray:
    """``floor(linspace(0, N−1, 64))``: the reference's slot → decoded-frame rule (repeats when N < 64)."""
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    return np.floor(np.linspace(0, num_frames - 1, slots)).astype(np.int64)


@dataclass(frozen=True, repr=False)
class Selection:
    """K patch cells chosen out of the ``64 × Hp × Wp`` grid of one video."""

    visible_indices: np.ndarray
    """int64 [K]: flat indices ``t·Hp·Wp + h·Wp + w``, unique and sorted ascending (the encoder's input)."""
    frame_ids: np.ndarray
    """int64 [64]: display-order index of the frame shown at each slot (the frame at ``timestamps[k]``); repeats when
    the video is short. Counted from the first frame of the ``start`` window (``report.frame_offset`` is that
    frame's index in the file; 0 without a window); exact unless ``report.frame_ids_exact`` says otherwise."""
    timestamps: np.ndarray
    """float64 [64]: presentation time in seconds of each slot's frame."""
    scores: np.ndarray
    """float32 [64, Hp, Wp]: the per-slot saliency the policy ranked (padding cells are 0)."""
    geometry: Geometry
    """Canvas transform and patch grid."""
    signals: str
    """Where motion came from: ``"codec-mv"`` (the codec's vectors) or ``"estimated-motion"`` (block matching)."""
    codec: str
    """Decoder name (``"h264"``, ``"hevc"``, ...)."""
    policy: str
    """Budget policy that chose the cells: ``"refresh"``, ``"topk"`` or ``"uniform"``."""
    video: str = ""
    """Path of the source video."""
    num_frames: int = 0
    """Frames decoded in display order (over the optional time window)."""
    mode: str = "full"
    """Decode mode: ``"full"`` (every frame decoded) or ``"windowed"`` (windows around each slot, long videos)."""
    damaged_frames: int = 0
    """Frames FFmpeg reported as corrupt or that failed to decode but were skipped."""
    timings: dict = field(default_factory=dict)
    """Seconds per stage: ``decode``, ``signals``, ``scoring``, ``topk``, ``total``."""
    options: dict = field(default_factory=dict)
    """The options that produced this selection (budget, accumulate, motion_compensation, ...)."""
    thumbnails: np.ndarray | None = None
    """float16 [64, 2·Hp, 2·Wp]: mean luma of each half-cell of every slot frame on the canvas grid (what the
    drift-aware refresh compares; lets the policy be re-run at another K without decoding again)."""
    report: SelectionReport = field(default_factory=SelectionReport)
    """What the selection rests on: signals and why, frames decoded vs declared, partial or whole, exact ids
    (:class:`~codec_select.report.SelectionReport`)."""
    reference_order: np.ndarray | None = None
    """int64 [K] or None: the same cells as :attr:`visible_indices` in the order the reference's stage-1 writer
    emits them (slot 0 in raster order, then descending score); set by ``recipe="onevision-stage1"``, used by
    :func:`codec_select.export.write_reference`."""

    def __post_init__(self) -> None:
        idx = self.visible_indices
        if idx.dtype != np.int64 or idx.ndim != 1:
            raise ValueError("visible_indices must be a 1-D int64 array.")
        if idx.size and (np.any(np.diff(idx) <= 0) or idx[0] < 0 or idx[-1] >= self.grid_size):
            raise ValueError("visible_indices must be unique, sorted and inside the 64×Hp×Wp grid.")
        if self.frame_ids.shape != (NUM_SLOTS,) or self.timestamps.shape != (NUM_SLOTS,):
            raise ValueError("frame_ids and timestamps must have 64 entries.")
        if self.scores.shape != (NUM_SLOTS, self.geometry.grid_h, self.geometry.grid_w):
            raise ValueError(f"scores must be [64, {self.geometry.grid_h}, {self.geometry.grid_w}].")
        if self.reference_order is not None and not np.array_equal(np.sort(self.reference_order), idx):
            raise ValueError("reference_order must hold exactly the cells of visible_indices.")

    def __repr__(self) -> str:
        return (
            f"Selection(K={self.budget}, grid={self.grid_thw}, geometry={self.geometry.name!r}, codec={self.codec!r}, "
            f"signals={self.signals!r}, policy={self.policy!r}, frames={self.num_frames}, mode={self.mode!r})"
        )

    @property
    def budget(self) -> int:
        """K, the number of kept cells."""
        return int(self.visible_indices.size)

    @property
    def grid_thw(self) -> tuple[int, int, int]:
        """``(64, Hp, Wp)``."""
        return (NUM_SLOTS, self.geometry.grid_h, self.geometry.grid_w)

    @property
    def grid_size(self) -> int:
        """64·Hp·Wp."""
        return NUM_SLOTS * self.geometry.cells

    @property
    def positions_thw(self) -> np.ndarray:
        """int32 [K, 3]: ``(t, h, w)`` of each kept cell, in ``visible_indices`` order (sorted by (t, h, w))."""
        cells = self.geometry.cells
        t, rem = np.divmod(self.visible_indices, cells)
        h, w = np.divmod(rem, self.geometry.grid_w)
        return np.stack([t, h, w], axis=1).astype(np.int32)

    @property
    def patch_positions(self) -> np.ndarray:
        """Alias of :attr:`positions_thw` under the encoder's argument name."""
        return self.positions_thw

    @property
    def mask(self) -> np.ndarray:
        """bool [64, Hp, Wp]: True where a cell is kept."""
        out = np.zeros(self.grid_size, dtype=bool)
        out[self.visible_indices] = True
        return out.reshape(self.grid_thw)

    @property
    def patches_per_slot(self) -> np.ndarray:
        """int64 [64]: kept cells per slot."""
        return self.mask.reshape(NUM_SLOTS, -1).sum(axis=1)

    def summary(self) -> str:
        """A short human summary (what the CLI prints)."""
        per = self.patches_per_slot
        lines = [
            f"video    {self.video}",
            f"codec    {self.codec}, {self.num_frames} frames decoded ({self.mode}), signals: {self.signals}"
            + (f", {self.damaged_frames} damaged frames" if self.damaged_frames else ""),
            f"grid     64 x {self.geometry.grid_h} x {self.geometry.grid_w} ({self.geometry.name}, "
            f"canvas {self.geometry.canvas_h}x{self.geometry.canvas_w}, patch {self.geometry.patch})",
            f"budget   K={self.budget} ({self.budget / self.grid_size:.1%} of the grid), policy {self.policy}"
            + (f" (recipe {self.options['recipe']}: the reference's own selection)" if self.options.get("recipe")
               else ""),
            f"per slot min {per.min()} / median {int(np.median(per))} / max {per.max()} "
            f"(slot 0: {per[0]}, slots with none: {int((per == 0).sum())})",
            "time     " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in self.timings.items()),
        ]
        r = self.report
        if r.partial:
            lines.append(f"WARNING  partial video: {r.partial_reason}. Only what decoded was selected from.")
        if r.signals_fallback:
            lines.append(f"note     signals fell back: {r.signals_reason}")
        if r.signals and not r.frame_ids_exact:
            lines.append("note     frame ids are estimated from timestamps (the packets carry none to count)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-able metadata (no arrays)."""
        g = self.geometry
        return {
            "video": self.video, "codec": self.codec, "signals": self.signals, "policy": self.policy,
            "mode": self.mode, "num_frames": self.num_frames, "damaged_frames": self.damaged_frames,
            "budget": self.budget, "grid_thw": list(self.grid_thw),
            "geometry": {k: getattr(g, k) for k in (
                "name", "source_h", "source_w", "canvas_h", "canvas_w", "patch", "scaled_h", "scaled_w",
                "off_y", "off_x", "resample")},
            "timings": self.timings, "options": self.options, "report": self.report.to_dict(),
        }

    def save_npz(self, path: str | Path) -> Path:
        """Write arrays + metadata to one ``.npz`` (atomically: temp file then rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp, visible_indices=self.visible_indices, positions_thw=self.positions_thw, frame_ids=self.frame_ids,
            timestamps=self.timestamps, scores=self.scores, meta=np.array(json.dumps(self.to_dict())),
            **({} if self.thumbnails is None else {"thumbnails": self.thumbnails}),
            **({} if self.reference_order is None else {"reference_order": self.reference_order}),
        )
        tmp.replace(path)
        return path

    @classmethod
    def load_npz(cls, path: str | Path) -> Selection:
        """Read back what :meth:`save_npz` wrote."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            g = Geometry(**meta["geometry"])
            return cls(
                visible_indices=z["visible_indices"].astype(np.int64), frame_ids=z["frame_ids"],
                timestamps=z["timestamps"], scores=z["scores"], geometry=g, signals=meta["signals"],
                codec=meta["codec"], policy=meta["policy"], video=meta["video"], num_frames=meta["num_frames"],
                mode=meta["mode"], damaged_frames=meta["damaged_frames"], timings=meta["timings"],
                options=meta["options"], thumbnails=z["thumbnails"] if "thumbnails" in z.files else None,
                report=SelectionReport.from_dict(meta.get("report")),  # files from before the report: defaults
                reference_order=z["reference_order"].astype(np.int64) if "reference_order" in z.files else None,
            )
