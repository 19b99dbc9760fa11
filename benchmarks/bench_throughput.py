"""Throughput at dataset scale: CPU seconds of each selector against the decode it needs (issue 15).

The floor is what any selector on codec vectors must pay: PyAV decode with MV export (``flags2=+export_mvs``), slice
threads and ``skip_loop_filter=all`` (the selector's own decoder options), reading every frame's vectors (side data
``to_ndarray``) and luma plane. Wall time (``perf_counter``) and process CPU (``process_time``: all threads, FFmpeg's
included) are medians of ``--repeats`` runs after one warm-up run (so numba's JIT and the OS file cache are out).
Then one profiled run per selector splits the CPU per frame into stages (``codec_select.signals.STAGE_CLOCK``,
``thread_time`` per thread; ``rest`` = process CPU minus the stages: Python glue, FFmpeg's own threads, probing,
the queue). Imports only the installed package.

    python benchmarks/bench_throughput.py [VIDEO ...] [--repeats 7] [--out DIR] [--selectors refresh topk]

Target (issue 15): CPU(selection) / CPU(floor) <= 1.3 and wall ratio <= 1.15 for the default selector.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

import codec_select
from codec_select import signals
from codec_select.decode import reader
from codec_select.decode.frames import side_data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "videos"
SELECTORS = {
    "refresh": {},
    "topk": {"policy": "topk"},
    "refresh-llava576": {"geometry": "llava576"},
    "refresh-estimated": {"signals": "estimated-motion"},
    "refresh-slot-frames": {"accumulate": False},
}
STAGES = ("decode", "mv_export", "mv", "residual", "fuse", "thumbnails", "pooling", "policy", "rest")


def synthetic_clips(folder: Path) -> list[Path]:
    """The issue's two synthetic clips: 640x272, 250 frames with B-frames; 1280x720, 132 frames (a pan)."""
    from codec_select.synth import Scene, make_clip

    folder.mkdir(parents=True, exist_ok=True)
    clips = [(folder / "synth_640x272_250f.mp4", Scene(kind="objects", width=640, height=272, frames=250, speed=4.0)),
             (folder / "synth_1280x720_132f.mp4", Scene(kind="pan", width=1280, height=720, frames=132, speed=3.0))]
    for path, scene in clips:
        if not path.exists():
            make_clip(path, scene, bframes=2)
    return [path for path, _ in clips]


def floor(path: str) -> int:
    """Decode with the selector's options, read every frame's vectors and luma; returns the frame count."""
    container = av.open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.codec_context.options = {"flags2": "+export_mvs", "skip_loop_filter": "all"}
        n = 0
        for frame in container.decode(stream):
            mvs = side_data(frame).get("MOTION_VECTORS")
            if mvs is not None:
                mvs.to_ndarray()
            plane = frame.planes[0]
            np.frombuffer(plane, np.uint8)
            n += 1
        return n
    finally:
        container.close()


def measure(fn, repeats: int) -> dict:
    """Median wall and process-CPU seconds of ``fn()`` over ``repeats`` runs after one warm-up run."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "walls": walls, "cpus": cpus}


def _timed(fn, clock: signals.StageClock, stage: str):
    def wrapper(*args, **kwargs):
        t = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            clock.lap(stage, t)

    return wrapper


def profile(path: str, options: dict) -> dict | None:
    """µs of CPU per frame per stage, from one run (after a warm-up run by the caller)."""
    if not hasattr(signals, "StageClock"):
        return None  # a build without the stage clock
    import codec_select.select as select_module

    clock = signals.StageClock()
    saved = (reader.motion_vector_fields, select_module.apply_policy)
    reader.motion_vector_fields = _timed(reader.motion_vector_fields, clock, "mv_export")
    select_module.apply_policy = _timed(select_module.apply_policy, clock, "policy")
    signals.STAGE_CLOCK = clock
    try:
        c0 = time.process_time()
        sel = codec_select.select_patches(path, **options)
        total = time.process_time() - c0
    finally:
        signals.STAGE_CLOCK = None
        reader.motion_vector_fields, select_module.apply_policy = saved
    sec = dict(clock.seconds)
    sec["decode"] = sec.pop("decode_thread", 0.0) - sec.get("mv_export", 0.0)
    sec["rest"] = total - sum(sec.values())
    n = max(sel.num_frames, 1)
    return {"frames": sel.num_frames, "cpu_s": total, "us_per_frame": {k: 1e6 * sec.get(k, 0.0) / n for k in STAGES}}


def run(videos: list[str], selectors: list[str], repeats: int, with_profile: bool) -> dict:
    rows = []
    for video in videos:
        frames = floor(video)
        base = measure(lambda video=video: floor(video), repeats)
        print(f"{Path(video).name}: {frames} frames, floor {base['wall_s']:.3f} s wall, {base['cpu_s']:.3f} s CPU",
              flush=True)
        for name in selectors:
            options = SELECTORS[name]
            got = measure(lambda video=video, options=options: codec_select.select_patches(video, **options), repeats)
            row = {"clip": Path(video).name, "frames": frames, "selector": name, "options": options,
                   "floor_wall_s": base["wall_s"], "floor_cpu_s": base["cpu_s"], "wall_s": got["wall_s"],
                   "cpu_s": got["cpu_s"], "wall_ratio": got["wall_s"] / base["wall_s"],
                   "cpu_ratio": got["cpu_s"] / base["cpu_s"], "floor_runs": base, "runs": got}
            if with_profile:
                row["profile"] = profile(video, options)
                row["floor_us_per_frame"] = 1e6 * base["cpu_s"] / frames
            rows.append(row)
            print(f"  {name:18s} wall {got['wall_s']:.3f} s (x{row['wall_ratio']:.2f})  CPU {got['cpu_s']:.3f} s "
                  f"(x{row['cpu_ratio']:.2f})", flush=True)
    return {"repeats": repeats, "rows": rows, "target": {"cpu_ratio": 1.3, "wall_ratio": 1.15}}


def markdown(result: dict) -> str:
    lines = [(f"Medians of {result['repeats']} runs after a warm-up; floor = decode + MV export + luma, the "
              "selector's decoder options."), "",
             "| clip | frames | selector | floor CPU s | CPU s | CPU ÷ floor | floor wall s | wall s | wall ÷ floor |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['clip']} | {r['frames']} | {r['selector']} | {r['floor_cpu_s']:.3f} | {r['cpu_s']:.3f} | "
                     f"{r['cpu_ratio']:.2f} | {r['floor_wall_s']:.3f} | {r['wall_s']:.3f} | {r['wall_ratio']:.2f} |")
    profiled = [r for r in result["rows"] if r.get("profile")]
    if profiled:
        lines += ["", "CPU µs per frame by stage (one profiled run; `decode` = the decoding thread less MV export):",
                  "", "| clip | selector | floor | " + " | ".join(STAGES) + " | total |",
                  "|---|---|---|" + "---|" * (len(STAGES) + 1)]
        for r in profiled:
            us = r["profile"]["us_per_frame"]
            lines.append(f"| {r['clip']} | {r['selector']} | {r['floor_us_per_frame']:.0f} | "
                         + " | ".join(f"{us[k]:.0f}" for k in STAGES) + f" | {sum(us.values()):.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", help="videos (default: the shared clips and two synthetic ones)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--selectors", nargs="+", default=list(SELECTORS), choices=list(SELECTORS))
    parser.add_argument("--no-profile", action="store_true", help="skip the per-stage profile runs")
    parser.add_argument("--out", type=Path, help="folder for throughput.json and throughput.md")
    args = parser.parse_args(argv)
    videos = [str(v) for v in args.videos]
    if not videos:
        folder = args.out / "clips" if args.out else Path(tempfile.mkdtemp(prefix="codec-select-tp-"))
        videos = [str(v) for v in sorted(SHARED.glob("*.mp4"))] + [str(v) for v in synthetic_clips(folder)]
    result = run(videos, args.selectors, args.repeats, not args.no_profile)
    table = markdown(result)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "throughput.json").write_text(json.dumps(result, indent=1))
        (args.out / "throughput.md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
