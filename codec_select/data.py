"""Online use in a training / eval loop: a ``torch.utils.data.Dataset`` over videos and the collate that batches it.

Each item is one video's selection plus its encoder input in mosaic form (the pixels come from
:func:`codec_select.encoder.pipeline.encoder_inputs`, the same tensors ``select_and_encode`` feeds the model)::

    ds = VideoDataset(["a.mp4", {"id": "b", "video": "b.mp4", "label": 3}], budget=4096)
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate)

Worker safety: the dataset holds only paths and options (no open container, no decoder: every item opens its own),
so it pickles and forks cleanly. The first item a process loads configures it once: in a DataLoader worker, 1 numba
thread and 1 decoder thread (``numba_threads`` / ``ffmpeg_threads``: parallelism comes from the workers), and in
every process the numba kernels are warmed (compiled or loaded from the on-disk cache) before the first video.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from .batch import BatchItem, build_items, configure_worker, read_manifest, worker_select_options
from .errors import CodecSelectError

__all__ = ["VideoDataset", "collate", "unpack_batch", "worker_init_fn"]


def worker_init_fn(worker_id: int | None = None, *, numba_threads: int = 1, ffmpeg_threads: int = 1) -> None:
    """``DataLoader(worker_init_fn=...)``: configure and warm a worker at start instead of at its first item."""
    configure_worker(numba_threads, ffmpeg_threads, warm=True)


class VideoDataset(Dataset):
    """Videos → selection + mosaic pixel tensor, one video per item.

    Args:
        videos: paths, or mappings ``{"id": ..., "video": path, ...}`` (the batch manifest's entries; other keys
            become the item's ``meta``), or :class:`~codec_select.batch.BatchItem`.
        metadata: optional per-video mappings merged into each item's ``meta`` (labels, captions, ...).
        budget, geometry, policy: passed to :func:`~codec_select.select_patches` with ``select_options``
            (``signals``, ``start``/``end``, ``timeout``, ...). A mosaic needs K to be a multiple of Hp·Wp.
        pixels: build ``pixel_values`` (False: indices and positions only, no RGB decode, no torch resize).
        dtype: dtype of ``pixel_values``.
        on_error: ``"raise"`` (default) or ``"skip"``: a video that cannot be read gives an item with an ``error``
            key instead, which :func:`collate` moves to ``batch["failed"]``.
        numba_threads, ffmpeg_threads: per DataLoader worker process (the main process keeps its settings).
        video_root: where relative paths resolve (default: the current folder).

    Items are dicts: ``id``, ``video``, ``meta``, ``signals``, ``visible_indices`` int64 [K], ``positions_thw``
    int64 [K, 3], ``frame_ids`` int64 [64], ``timestamps`` float64 [64] (seconds), ``grid_thw`` int64 [3],
    ``num_tokens`` (K), and ``pixel_values`` float [3, K/(Hp·Wp), H, W] (CLIP-normalised mosaic pseudo-frames).
    """

    def __init__(
        self,
        videos: Sequence[str | os.PathLike | Mapping | BatchItem],
        *,
        metadata: Sequence[Mapping] | None = None,
        budget: int | None = None,
        geometry: str = "ap224",
        policy: str | None = None,
        pixels: bool = True,
        dtype: torch.dtype = torch.float32,
        on_error: str = "raise",
        numba_threads: int = 1,
        ffmpeg_threads: int = 1,
        video_root: str | os.PathLike | None = None,
        **select_options,
    ):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"Invalid on_error ({on_error!r}). Supported values are raise, skip.")
        entries = [os.fspath(v) if isinstance(v, os.PathLike) else v for v in videos]
        items = build_items(entries, Path(os.path.abspath(video_root or os.getcwd())), "videos")
        if metadata is not None:
            if len(metadata) != len(items):
                raise ValueError(f"metadata has {len(metadata)} entries for {len(items)} videos.")
            items = [BatchItem(it.id, it.video, {**it.extra, **dict(m)}) for it, m in zip(items, metadata)]
        self.items = items
        self.select_options = dict(select_options, geometry=geometry)
        if budget is not None:
            self.select_options["budget"] = int(budget)
        if policy is not None:
            self.select_options["policy"] = policy
        self.pixels, self.dtype, self.on_error = pixels, dtype, on_error
        self.numba_threads, self.ffmpeg_threads = numba_threads, ffmpeg_threads
        self._ready_pid: int | None = None

    @classmethod
    def from_manifest(cls, manifest: str | os.PathLike, **kwargs) -> VideoDataset:
        """A dataset over a batch manifest (JSONL / JSON / CSV / text, see :func:`~codec_select.batch.read_manifest`);
        relative paths resolve against ``video_root`` (default: the manifest's folder)."""
        items = read_manifest(manifest, video_root=kwargs.pop("video_root", None))
        return cls(items, **kwargs)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.select_options.items())
        return f"VideoDataset({len(self)} videos, {opts}, pixels={self.pixels})"

    def _prepare_process(self) -> None:
        """Once per process: thread limits inside DataLoader workers, numba warm-up everywhere."""
        pid = os.getpid()
        if self._ready_pid == pid:
            return
        if get_worker_info() is not None:
            configure_worker(self.numba_threads, self.ffmpeg_threads, warm=True)
        else:
            from .kernels import warmup

            warmup()
        self._ready_pid = pid

    def __getitem__(self, index: int) -> dict:
        from .select import select_patches

        self._prepare_process()
        item = self.items[index]
        out = {"id": item.id, "video": item.video, "meta": dict(item.extra)}
        options = worker_select_options(self.select_options)
        for key in ("start", "end"):
            if item.extra.get(key) is not None:
                options[key] = float(item.extra[key])
        try:
            sel = select_patches(item.video, **options)
            if self.pixels:
                from .encoder.pipeline import encoder_inputs

                mosaic, _ = encoder_inputs(sel, dtype=self.dtype)
                out["pixel_values"] = mosaic[0]
        except CodecSelectError as exc:
            if self.on_error == "raise":
                raise
            return {**out, "error_class": type(exc).__name__, "error": str(exc)}
        out.update(
            signals=sel.signals,
            visible_indices=torch.from_numpy(sel.visible_indices),
            positions_thw=torch.from_numpy(sel.positions_thw.astype(np.int64)),
            frame_ids=torch.from_numpy(sel.frame_ids.astype(np.int64)),
            timestamps=torch.from_numpy(sel.timestamps.astype(np.float64)),
            grid_thw=torch.tensor(sel.grid_thw, dtype=torch.int64),
            num_tokens=sel.budget,
        )
        return out


def collate(items: Sequence[dict]) -> dict:
    """Batch :class:`VideoDataset` items: stacked when every item has the same K and canvas, packed otherwise.

    Always: ``id``, ``video``, ``meta``, ``signals`` (lists), ``frame_ids`` [B, 64], ``timestamps`` [B, 64],
    ``grid_thw`` [B, 3], ``num_tokens`` [B], ``cu_seqlens`` int32 [B+1] (token offsets, leading 0), ``failed``
    (items that raised with ``on_error="skip"``), ``packed`` (bool).

    - Stacked (``packed=False``): ``pixel_values`` [B, 3, n, H, W], ``visible_indices`` [B, K],
      ``positions_thw`` [B, K, 3] — the encoder's ``forward(pixel_values, visible_indices=...)``.
    - Packed (``packed=True``, different K): ``visible_indices`` [ΣK] and ``positions_thw`` [ΣK, 3] concatenated
      (item ``i`` is rows ``cu_seqlens[i]:cu_seqlens[i+1]``; indices stay on each item's own grid),
      ``pixel_values`` [1, 3, Σn, H, W] concatenated along the pseudo-frame axis with ``frame_offsets`` int64
      [B+1]; a list of [3, n, H, W] when canvases differ in size. :func:`unpack_batch` splits it again for
      ``forward_packed``.
    """
    from ._packing import cu_seqlens_from_counts

    ok = [x for x in items if "error" not in x]
    batch: dict = {
        "id": [x["id"] for x in ok], "video": [x["video"] for x in ok], "meta": [x["meta"] for x in ok],
        "signals": [x["signals"] for x in ok],
        "failed": [{k: x[k] for k in ("id", "video", "error_class", "error")} for x in items if "error" in x],
    }
    counts = [int(x["num_tokens"]) for x in ok]
    batch["num_tokens"] = torch.tensor(counts, dtype=torch.int64)
    batch["cu_seqlens"] = cu_seqlens_from_counts(counts)
    if not ok:
        batch["packed"] = False
        return batch
    for key in ("frame_ids", "timestamps", "grid_thw"):
        batch[key] = torch.stack([x[key] for x in ok])
    has_pixels = all("pixel_values" in x for x in ok)
    shapes = {tuple(x["pixel_values"].shape) for x in ok} if has_pixels else set()
    if len(set(counts)) == 1 and len(shapes) <= 1:
        batch["packed"] = False
        batch["visible_indices"] = torch.stack([x["visible_indices"] for x in ok])
        batch["positions_thw"] = torch.stack([x["positions_thw"] for x in ok])
        if has_pixels:
            batch["pixel_values"] = torch.stack([x["pixel_values"] for x in ok])
        return batch
    batch["packed"] = True
    batch["visible_indices"] = torch.cat([x["visible_indices"] for x in ok])
    batch["positions_thw"] = torch.cat([x["positions_thw"] for x in ok])
    if has_pixels:
        frames = [int(x["pixel_values"].shape[1]) for x in ok]
        batch["frame_offsets"] = torch.tensor(np.concatenate([[0], np.cumsum(frames)]), dtype=torch.int64)
        if len({tuple(x["pixel_values"].shape[2:]) for x in ok}) == 1:
            batch["pixel_values"] = torch.cat([x["pixel_values"] for x in ok], dim=1)[None]
        else:
            batch["pixel_values"] = [x["pixel_values"] for x in ok]
    return batch


def unpack_batch(batch: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-item ``([1, 3, n, H, W] mosaics, [K] visible_indices)`` of a collated batch (stacked or packed): the
    arguments of the encoder's ``forward_packed``."""
    cu = batch["cu_seqlens"].tolist()
    count = len(cu) - 1
    idx = batch["visible_indices"]
    pv = batch.get("pixel_values")
    if not batch["packed"]:
        indices = [idx[i] for i in range(count)]
        pixels = [] if pv is None else [pv[i : i + 1] for i in range(count)]
        return pixels, indices
    indices = [idx[cu[i] : cu[i + 1]] for i in range(count)]
    if pv is None:
        return [], indices
    if isinstance(pv, list):
        return [p[None] for p in pv], indices
    fo = batch["frame_offsets"].tolist()
    return [pv[:, :, fo[i] : fo[i + 1]] for i in range(count)], indices
