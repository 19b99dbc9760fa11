"""``run_batch``: validate, skip what is done, run an engine, record every result."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from .engines import run_local, run_ray
from .manifest import ENGINES, FORMATS, BatchSummary, build_items, read_manifest
from .store import OutputStore
from .worker import CONSUMER_FORMATS, BatchConfig

__all__ = ["run_batch"]


def run_batch(
    manifest,
    out_dir: str | os.PathLike,
    *,
    engine: str = "local",
    fmt: str | None = None,
    workers: int | None = None,
    budget: int | None = None,
    geometry: str | None = None,
    policy: str | None = None,
    timeout: float | None = None,
    select_options: dict | None = None,
    image_format: str = "jpg",
    quality: int = 95,
    relative_paths: bool = False,
    allow_partial: bool = False,
    video_root: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    numba_threads: int = 1,
    ffmpeg_threads: int = 1,
    ray_address: str | None = None,
    start_method: str | None = None,
) -> BatchSummary:
    """Select every video of ``manifest`` and write one output per video into ``out_dir``.

    Args:
        manifest: a manifest path (see :func:`read_manifest`) or a list of :class:`BatchItem`.
        engine: ``"local"`` (a process pool, default) or ``"ray"`` (Ray Data; a local instance, or the cluster at
            ``ray_address``).
        fmt: ``"npz"`` (default on the local engine), ``"reference"``, ``"llava"`` or ``"parquet"`` (default on Ray).
        workers: worker processes / Ray actors (default: the CPU count).
        budget, geometry, policy, timeout, select_options: passed to :func:`~codec_select.select_patches`
            (``geometry`` defaults to ``llava576`` for the llava format, ``ap224`` otherwise); a manifest entry's
            ``start`` / ``end`` keys set its time window. The ``reference`` and ``llava`` formats feed the encoder:
            without a ``policy`` (or another option a recipe does not take) they use the geometry's reference recipe
            (``onevision-stage1`` on llava576, ``onevision-ap`` on ap224), the selection the encoder was trained on.
        image_format, quality, relative_paths: LLaVA mosaics (jpg quality 95, or lossless png) and whether the
            JSONL paths are relative to ``out_dir`` (default absolute).
        allow_partial: write partial videos (``Selection.report.partial``) as successes instead of failures.
        overwrite: redo videos whose output exists (default: skip them, which makes a rerun resume).
        numba_threads, ffmpeg_threads: per worker (1 and 1: parallelism comes from the workers).
    """
    if engine not in ENGINES:
        raise ValueError(f"Invalid engine ({engine!r}). Supported values are {', '.join(ENGINES)}.")
    fmt = fmt or ("parquet" if engine == "ray" else "npz")
    if fmt not in FORMATS:
        raise ValueError(f"Invalid format ({fmt!r}). Supported values are {', '.join(FORMATS)}.")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"Invalid image_format ({image_format!r}). Supported values are jpg, png.")
    if workers is not None and workers < 1:
        raise ValueError(f"Invalid workers ({workers!r}). It must be >= 1.")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"Invalid timeout ({timeout!r}). It must be > 0 seconds.")
    geometry = geometry or ("llava576" if fmt == "llava" else "ap224")
    cells = {"ap224": 256, "llava576": 1296}.get(geometry)
    if fmt == "llava" and budget is not None and cells and budget % cells:
        raise ValueError(
            f"Invalid budget ({budget}) for LLaVA mosaics: it must be a multiple of {cells} on {geometry}."
        )
    if isinstance(manifest, (str, os.PathLike)):
        items = read_manifest(manifest, video_root=video_root)
    else:
        items = build_items(list(manifest), Path(os.path.abspath(video_root or os.getcwd())), "manifest")
    options = {"geometry": geometry, **(select_options or {})}
    for key, value in (("budget", budget), ("policy", policy), ("timeout", timeout)):
        if value is not None:
            options[key] = value
    if fmt == "llava-ov2":  # its own options (llava_ov2.prepare_llava_ov2); the time limit is the hard one
        if budget is not None or policy is not None or geometry not in ("ap224", "qwen"):
            raise ValueError("--budget, --policy and --geometry do not apply to --format llava-ov2 (qwen canvases; "
                             "see --ov2-frames, --group-size, --images-per-group).")
        options = dict(select_options or {})
    out = Path(out_dir)
    cfg = BatchConfig(str(out), fmt, options, image_format, int(quality), relative_paths, bool(allow_partial),
                  consumer=fmt in CONSUMER_FORMATS)
    store = OutputStore(out, fmt, items)
    done = set() if overwrite else store.done_ids()
    if overwrite and fmt == "parquet":
        store.drop_rows()
    todo = [it for it in items if it.id not in done]
    store.clean_temps(todo)
    store.forget_done(done)
    summary = BatchSummary(total=len(items), skipped=len(items) - len(todo), engine=engine)
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(items), initial=summary.skipped, unit="video", desc="codec-select batch",
                   dynamic_ncols=True, smoothing=0.05, file=sys.stderr)
    t0 = time.perf_counter()

    def on_result(row: dict) -> None:
        if summary.ok + summary.failed == 0:
            summary.startup_seconds = time.perf_counter() - t0
        store.record(row)
        if row["error_class"] is None:
            summary.ok += 1
            summary.frames += int(row.get("num_frames") or 0)
        else:
            summary.failed += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(frames_s=f"{summary.frames / max(time.perf_counter() - t0, 1e-9):.0f}",
                            failed=summary.failed, refresh=False)

    previous = None
    if hasattr(signal, "SIGTERM") and _in_main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if todo and engine == "local":
            summary.workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
            hard = max(2 * timeout, timeout + 30.0) if timeout else None
            run_local(todo, cfg, on_result, workers=summary.workers, numba_threads=numba_threads,
                       ffmpeg_threads=ffmpeg_threads, hard_timeout=hard, start_method=start_method)
        elif todo:
            summary.workers = run_ray(todo, cfg, on_result, workers=workers, numba_threads=numba_threads,
                                       ffmpeg_threads=ffmpeg_threads, address=ray_address)
    finally:
        summary.seconds = time.perf_counter() - t0
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
        store.dirty = True
        store.flush()
        if fmt == "llava":
            store.write_llava_jsonl()
    ids = {it.id for it in items}
    summary.failures = sum(1 for k in store.failures if k in ids)
    return summary


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
