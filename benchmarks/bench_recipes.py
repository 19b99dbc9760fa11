"""Cost of the faithful recipes (``onevision-stage1``, ``onevision-ap``) against the decode they need, per stage.

    python benchmarks/bench_recipes.py [VIDEO ...] [--runs 5] [--json out.json]

Per clip: the floor (PyAV decode with MV export, SLICE threads, ``skip_loop_filter``, reading each frame's MVs and
luma) and each recipe, wall and process CPU (``time.process_time``), medians of ``--runs`` runs after one warm-up.
Each recipe's CPU is split by stage, timed in-process around the public functions the recipe calls: ``inter``,
``intra``, ``deblock`` (the emulated residual picture's kernels), ``energy`` (per-frame scores), ``top-K`` (the
selection rule) and ``decode+rest`` (the decode with MV export, header parsing and everything else: total minus the
others). Imports only the installed package.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
RECIPES = (("onevision-stage1", "llava576"), ("onevision-ap", "ap224"))
STAGES = ("decode+rest", "inter", "intra", "deblock", "energy", "top-K")


def floor(path: str) -> None:
    """Decode with MV export as the recipes' decoder is set up, touching each frame's vectors and luma."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"flags2": "+export_mvs", "skip_loop_filter": "all"}
        stream.thread_type = "SLICE"
        for frame in container.decode(stream):
            sd = frame.side_data.get("MOTION_VECTORS")
            if sd is not None:
                sd.to_ndarray()
            np.frombuffer(frame.planes[0], np.uint8)


@contextmanager
def stage_timers(cpu: dict):
    """Wrap the functions each stage runs (in the namespaces the recipes call them from) with CPU timers."""
    from codec_select.recipes import ap, picture
    from codec_select.recipes import select as recipe_select

    targets = [(picture, "emulate_inter", "inter"), (picture, "emulate_intra", "intra"),
               (picture, "deblock_picture", "deblock"), (picture, "block_motion", "deblock"),
               (recipe_select, "stage1_cell_scores", "energy"), (ap, "ap_frame_energy", "energy"),
               (recipe_select, "stage1_order", "top-K"), (ap, "ap_select", "top-K")]
    saved = []
    for module, name, stage in targets:
        fn = getattr(module, name)
        saved.append((module, name, fn))

        def timed(*args, _fn=fn, _stage=stage, **kwargs):
            t0 = time.process_time()
            try:
                return _fn(*args, **kwargs)
            finally:
                cpu[_stage] = cpu.get(_stage, 0.0) + time.process_time() - t0

        setattr(module, name, timed)
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


def measure(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def run_recipe(path: str, recipe: str, geometry: str) -> tuple[float, float, dict]:
    from codec_select import select_patches

    cpu: dict[str, float] = {}
    with stage_timers(cpu):
        wall, total = measure(lambda: select_patches(path, recipe=recipe, geometry=geometry))
    cpu["decode+rest"] = total - sum(cpu.values())
    return wall, total, cpu


def bench_clip(path: str, runs: int) -> dict:
    floor(path)  # warm-up (file cache)
    floors = [measure(lambda: floor(path)) for _ in range(runs)]
    out = {"floor": {"wall": statistics.median(f[0] for f in floors), "cpu": statistics.median(f[1] for f in floors)}}
    for recipe, geometry in RECIPES:
        run_recipe(path, recipe, geometry)  # warm-up: kernels compiled or loaded from the cache
        samples = [run_recipe(path, recipe, geometry) for _ in range(runs)]
        row = {"wall": statistics.median(s[0] for s in samples), "cpu": statistics.median(s[1] for s in samples),
               "stages": {k: statistics.median(s[2].get(k, 0.0) for s in samples) for k in STAGES}}
        row["wall_ratio"] = row["wall"] / out["floor"]["wall"]
        row["cpu_ratio"] = row["cpu"] / out["floor"]["cpu"]
        out[recipe] = row
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", help="clips (default: the shared H.264 clips)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", help="write the numbers here too")
    args = parser.parse_args(argv)
    videos = args.videos or sorted(str(p) for p in SHARED.glob("*.mp4"))
    if not videos:
        parser.error(f"no clips given and none in {SHARED}")
    results = {}
    print(f"median of {args.runs} runs after a warm-up; seconds; ratios against the floor")
    head = " ".join(f"{s:>11s}" for s in STAGES)
    for path in videos:
        res = bench_clip(path, args.runs)
        results[path] = res
        f = res["floor"]
        print(f"\n{Path(path).name}: floor (decode + MV export) wall {f['wall']:.3f}  CPU {f['cpu']:.3f}")
        print(f"  {'recipe':18s} {'wall':>6s} {'CPU':>6s} {'wall×':>6s} {'CPU×':>6s}  CPU by stage: {head}")
        for recipe, _ in RECIPES:
            r = res[recipe]
            stages = " ".join(f"{r['stages'][s]:11.3f}" for s in STAGES)
            print(f"  {recipe:18s} {r['wall']:6.3f} {r['cpu']:6.3f} {r['wall_ratio']:6.2f} {r['cpu_ratio']:6.2f}"
                  f"                {stages}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
