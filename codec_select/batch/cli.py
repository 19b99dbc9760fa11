"""``codec-select batch``: the command line of :func:`codec_select.batch.run_batch`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .manifest import ENGINES, FAILURES_NAME, FORMATS
from .run import run_batch

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``codec-select batch``."""
    p = subparsers.add_parser(
        "batch", help="select patches for a manifest of videos (local pool or Ray Data)",
        description="Run the selector over every video of MANIFEST (JSONL/JSON/CSV/text of paths + ids), one output "
        "per video in DIR. Resumable: a rerun skips finished videos. Exit code 0: all ok, 1: some failed (see "
        "DIR/failures.jsonl), 2: usage error.",
    )
    p.add_argument("manifest", type=Path, help="JSONL ({\"id\": ..., \"video\": path} per line), JSON, CSV or text")
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    p.add_argument("--engine", default="local", choices=ENGINES, help="local process pool (default) or Ray Data")
    p.add_argument("--workers", "-j", type=int, default=None, help="worker processes / Ray actors (default: CPUs)")
    p.add_argument("--format", dest="fmt", default=None, choices=FORMATS,
                   help="output format (default: npz on local, parquet on ray)")
    p.add_argument("--budget", "-k", type=int, default=None, help="K cells per video (default 4096; 10368 on llava576)")
    p.add_argument("--geometry", "-g", default=None, choices=["ap224", "llava576", "native", "qwen"],
                   help="default ap224 (llava576 for --format llava)")
    p.add_argument("--policy", default=None, choices=["refresh", "topk", "uniform"],
                   help="budget policy (default: refresh; the reference and llava formats use the geometry's "
                   "reference recipe, onevision-stage1 / onevision-ap, unless a policy is given)")
    p.add_argument("--compensation", default=None, choices=["median", "similarity", "none"])
    p.add_argument("--signals", default=None, choices=["auto", "codec-mv", "estimated-motion"])
    p.add_argument("--no-accumulate", action="store_true", help="score slot k by frame ids[k] alone")
    p.add_argument("--no-first-full", action="store_true", help="do not force every cell of slot 0")
    p.add_argument("--timeout", type=float, default=None, help="per-video time budget in seconds")
    p.add_argument("--video-root", type=Path, default=None,
                   help="resolve relative paths here (default: the manifest's folder)")
    p.add_argument("--image-format", default="jpg", choices=["jpg", "png"], help="LLaVA mosaics (png = lossless)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the LLaVA mosaics")
    p.add_argument("--relative-paths", action="store_true", help="LLaVA JSONL paths relative to --out")
    p.add_argument("--overwrite", action="store_true", help="redo videos whose output already exists")
    p.add_argument("--allow-partial", action="store_true",
                   help="keep truncated / damaged-tail videos (default: recorded in failures.jsonl)")
    p.add_argument("--numba-threads", type=int, default=1, help="numba threads per worker (default 1)")
    p.add_argument("--ffmpeg-threads", type=int, default=1, help="decoder threads per worker (default 1; 0 = auto)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local instance)")
    p.add_argument("--ov2-frames", type=int, default=None, help="llava-ov2: frames sampled (uniform_count, 1024)")
    p.add_argument("--ov2-fps", type=float, default=None, help="llava-ov2: sample at this rate instead (fps sampling)")
    p.add_argument("--group-size", type=int, default=None, help="llava-ov2: sampled frames per group (32)")
    p.add_argument("--grouping", default=None, choices=["fixed", "readiness"],
                   help="llava-ov2: fixed chunks (default) or readiness groups of 8-64 frames")
    p.add_argument("--images-per-group", type=int, default=None, help="llava-ov2: canvases per group (4)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_run_cli)


def _ov2_options(args) -> dict:
    """``--format llava-ov2``'s options for :func:`codec_select.export.llava_ov2.prepare_llava_ov2`."""
    options: dict = {}
    if args.ov2_frames is not None:
        options["num_sampled"] = args.ov2_frames
    if args.ov2_fps is not None:
        options.update(sampling="fps", sample_fps=args.ov2_fps)
    if args.group_size is not None:
        options["group_size"] = args.group_size
    if args.grouping is not None:
        options["grouping"] = args.grouping
    if args.images_per_group is not None:
        options["images_per_group"] = args.images_per_group
    if args.signals:
        options["signals"] = args.signals
    return options


def _run_cli(args) -> int:
    options = {}
    if args.compensation:
        options["motion_compensation"] = args.compensation
    if args.signals:
        options["signals"] = args.signals
    if args.no_accumulate:
        options["accumulate"] = False
    if args.no_first_full:
        options["first_full"] = False
    if args.fmt == "llava-ov2":
        options = _ov2_options(args)
    try:
        summary = run_batch(
            args.manifest, args.out, engine=args.engine, fmt=args.fmt, workers=args.workers, budget=args.budget,
            geometry=args.geometry, policy=args.policy, timeout=args.timeout, select_options=options,
            image_format=args.image_format, quality=args.quality, relative_paths=args.relative_paths,
            allow_partial=args.allow_partial, video_root=args.video_root, overwrite=args.overwrite, progress=not args.no_progress,
            numba_threads=args.numba_threads, ffmpeg_threads=args.ffmpeg_threads, ray_address=args.ray_address,
        )
    except (ValueError, ImportError, RuntimeError) as exc:  # options, manifest, missing extra, workers that die
        print(f"codec-select batch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codec-select batch: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    if args.json:
        info = {k: getattr(summary, k) for k in ("total", "ok", "failed", "skipped", "frames", "seconds",
                                                  "startup_seconds", "workers", "engine", "failures")}
        info.update(videos_per_s=summary.videos_per_s, frames_per_s=summary.frames_per_s)
        print(json.dumps(info))
    else:
        print(str(summary), file=sys.stderr)
        if summary.failures:
            print(f"{summary.failures} failed video(s) listed in {Path(args.out) / FAILURES_NAME}", file=sys.stderr)
    return 1 if summary.failures else 0
