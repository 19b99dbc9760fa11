"""Per-video work of a batch, in the workers: select one video, write its output, return its result row."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .manifest import BatchItem

__all__ = ["BatchConfig", "CONSUMER_FORMATS", "TIMING_KEYS", "configure_worker", "worker_select_options", "process_item",
           "result_row", "reference_stem", "llava_record_path"]


@dataclass(frozen=True)
class BatchConfig:
    out_dir: str
    fmt: str
    select: dict
    image_format: str = "jpg"
    quality: int = 95
    relative_paths: bool = False
    allow_partial: bool = False
    consumer: bool = False
    """The output feeds the encoder: the reference's own selection unless the options ask otherwise."""


CONSUMER_FORMATS = ("reference", "llava")
"""Formats whose selections feed OneVision-Encoder: they default to the geometry's reference recipe
(:func:`codec_select.select.consumer_options`)."""

_WORKER_DECODE_THREADS = 0
"""Decoder threads per video in this process (set by :func:`configure_worker`; 0 = FFmpeg's choice)."""


def worker_select_options(options: dict) -> dict:
    """``options`` plus this worker's decoder-thread setting, unless the caller chose one."""
    out = dict(options)
    if _WORKER_DECODE_THREADS:
        out.setdefault("decode_threads", _WORKER_DECODE_THREADS)
    return out


def configure_worker(numba_threads: int = 1, ffmpeg_threads: int = 1, *, warm: bool = True) -> None:
    """Make this process a good batch / DataLoader worker: ``numba_threads`` numba threads, ``ffmpeg_threads``
    decoder threads for the selector's decode (0 = FFmpeg's choice), and the numba kernels compiled or loaded
    from the cache once, now, instead of inside the first video."""
    if numba_threads:
        import numba

        numba.set_num_threads(max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS)))
    global _WORKER_DECODE_THREADS
    _WORKER_DECODE_THREADS = int(ffmpeg_threads or 0)
    torch = sys.modules.get("torch")
    if torch is not None:
        # A fork()ed worker (DataLoader's default) inherits a parent whose OpenMP pool already ran torch ops; the
        # first parallel torch op in the child then waits for threads that do not exist (measured: a DataLoader
        # worker hung in preprocess_frames after the parent had encoded). One torch thread per worker avoids it,
        # and workers get their parallelism from processes anyway.
        torch.set_num_threads(1)
    if warm:
        from ..kernels import warmup

        warmup()


def reference_stem(item: BatchItem) -> str:
    """Start of the stage-1 file names of ``item`` (everything before ``_T64_…_K{K}``, see export.reference_prefix)."""
    sid, stem = item.name, Path(item.video).stem
    key = f"{item.video}|{sid}|0"
    sha = hashlib.sha1
    return f"sample_{sid}__{stem}__{sha(item.video.encode()).hexdigest()[:8]}__{sha(key.encode()).hexdigest()[:8]}_T"


def llava_record_path(item: BatchItem, out: Path) -> Path:
    from ..export.llava import RECORD_NAME, llava_dir_name

    return out / llava_dir_name(item.video, item.name) / RECORD_NAME


def result_row(item: BatchItem, seconds: float, sel=None, exc: BaseException | None = None, arrays: bool = False) -> dict:
    """One result row (the Parquet schema; array columns only filled when ``arrays``)."""
    row = {"id": item.id, "video": item.video, "error_class": None, "error": None, "seconds": round(seconds, 6),
           "worker": f"{os.uname().nodename}:{os.getpid()}", "extra": json.dumps(item.extra) if item.extra else None}
    if exc is not None:
        row.update(error_class=type(exc).__name__, error=str(exc) or repr(exc))
        return row
    row.update(
        codec=sel.codec, signals=sel.signals, policy=sel.policy, geometry=sel.geometry.name,
        grid_thw=list(sel.grid_thw), budget=sel.budget, num_frames=sel.num_frames, damaged_frames=sel.damaged_frames,
        timings={k: float(sel.timings.get(k, 0.0)) for k in TIMING_KEYS}, report=sel.report.to_json(),
    )
    if arrays:
        row.update(
            visible_indices=sel.visible_indices.tolist(), positions_thw=sel.positions_thw.tolist(),
            frame_ids=sel.frame_ids.tolist(), timestamps=sel.timestamps.tolist(),
            selection=json.dumps(sel.to_dict()),
        )
    return row


TIMING_KEYS = ("decode", "signals", "scoring", "topk", "total")


def process_item(item: BatchItem, cfg: BatchConfig) -> dict:
    """Select one video and write its output; never raises for a bad video (the error goes in the row)."""
    from ..select import consumer_options, select_patches

    t0 = time.perf_counter()
    out = Path(cfg.out_dir)
    if cfg.fmt == "llava-ov2":
        return _process_ov2(item, cfg, out, t0)
    try:
        options = worker_select_options(cfg.select)
        for key in ("start", "end"):
            if item.extra.get(key) is not None:
                options[key] = float(item.extra[key])
        if cfg.consumer:  # a time window (or any option a recipe does not take) keeps our own selector
            options = consumer_options(options.pop("geometry"), options)
        sel = select_patches(item.video, **options)
        if sel.report.partial and not cfg.allow_partial:
            from ..errors import PartialVideoError

            r = sel.report
            raise PartialVideoError(
                f"{item.video}: partial video, {r.partial_reason} ({r.frames_found} frames found, "
                f"{r.frames_declared or 'no count'} declared). Re-download or re-encode it, or pass --allow-partial "
                "to keep what decoded."
            )
        if cfg.fmt == "npz":
            sel.save_npz(out / f"{item.name}.npz")
        elif cfg.fmt == "reference":
            from ..export import write_reference

            write_reference(sel, out, sample_id=item.name)
        elif cfg.fmt == "llava":
            from ..export.llava import write_llava

            write_llava(sel, out, sample_id=item.name, conversations=item.extra.get("conversations"),
                        image_format=cfg.image_format, quality=cfg.quality,
                        relative_to=out if cfg.relative_paths else None)
        return result_row(item, time.perf_counter() - t0, sel, arrays=cfg.fmt == "parquet")
    except Exception as exc:  # one bad video never stops the batch
        return result_row(item, time.perf_counter() - t0, exc=exc)


def _process_ov2(item: BatchItem, cfg: BatchConfig, out: Path, t0: float) -> dict:
    """``--format llava-ov2``: one video's LLaVA-OneVision-2 folder ``out/<name>/`` (meta.json written last)."""
    try:
        from ..export.llava_ov2 import prepare_llava_ov2

        res = prepare_llava_ov2(item.video, out / item.name, image_format=cfg.image_format, quality=cfg.quality,
                                **cfg.select)
        report = res.meta.get("report") or {}
        if report.get("partial") and not cfg.allow_partial:
            import shutil

            from ..errors import PartialVideoError

            shutil.rmtree(out / item.name, ignore_errors=True)  # not "done": a rerun retries it, the failure is kept

            raise PartialVideoError(
                f"{item.video}: partial video, {report.get('partial_reason')} ({report.get('frames_found')} frames "
                f"found, {report.get('frames_declared') or 'no count'} declared). Re-download or re-encode it, or "
                "pass --allow-partial to keep what decoded."
            )
    except Exception as exc:  # one bad video never stops the batch
        return result_row(item, time.perf_counter() - t0, exc=exc)
    meta = res.meta
    return {"id": item.id, "video": item.video, "error_class": None, "error": None,
            "seconds": round(time.perf_counter() - t0, 6), "worker": f"{os.uname().nodename}:{os.getpid()}",
            "extra": json.dumps(item.extra) if item.extra else None, "codec": meta["metadata"]["codec"],
            "signals": meta["metadata"]["signals"], "policy": meta["config"]["blocks"], "geometry": "qwen",
            "num_frames": int(meta["total_frames"]), "budget": int(meta["total_patches"])}
