"""Selection speed on the real clips, in one run: plain decode, decode with MV export (both with the selector's
``skip_loop_filter``), the whole selection, and the numba scoring kernels against vectorised NumPy versions of the
same math (``benchmarks/numpy_baselines.py``; the Python-loop twins in tests/ are correctness references only).
Imports only the installed package and this folder.

    python benchmarks/bench_select.py [VIDEO ...] [--repeats 5] [--json out.json]

Reports medians and ratios; the target is selection ≤ 1.15 × decode-with-MV-export on H.264.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"


def kernel_speed(repeats: int) -> dict:
    """Per-frame kernels on a 360×640 frame vs vectorised NumPy doing the same math (checked to agree first)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numpy_baselines as nb  # this folder, not tests/

    from codec_select import kernels as K
    from codec_select.eval.timing import bench

    rng = np.random.default_rng(0)
    h, w = 640, 360
    cur = rng.integers(0, 256, (h, w), dtype=np.uint8)
    ring = np.stack([np.roll(cur, (d, 2 * d), axis=(0, 1)) for d in range(9)]).astype(np.uint8)
    n = 1500
    mv = {
        "source": rng.choice([-1, 1], n).astype(np.int32), "w": np.full(n, 16, np.uint8), "h": np.full(n, 16, np.uint8),
        "dst_x": rng.integers(8, w - 8, n).astype(np.int16), "dst_y": rng.integers(8, h - 8, n).astype(np.int16),
        "motion_x": rng.integers(-40, 40, n).astype(np.int32), "motion_y": rng.integers(-40, 40, n).astype(np.int32),
        "motion_scale": np.full(n, 4, np.uint16),
    }
    args = (mv["source"], mv["w"], mv["h"], mv["dst_x"], mv["dst_y"], mv["motion_x"], mv["motion_y"], mv["motion_scale"])
    flow = K.rasterise_mvs(*args, h // 8, w // 8, 8)  # production: 8-pixel blocks, residual sampled every 4 px
    slots = np.array([1, 2, 3, 4, 5, 6, 7, 8], np.int64)
    dirs = np.array([-1, -1, -1, -1, 1, 1, 1, 1], np.int8)
    dists = np.array([1, 2, 3, 4, 1, 2, 3, 4], np.int32)
    energy = rng.random((h // 8, w // 8)).astype(np.float32)
    rows = np.linspace(0, h, 17)
    cols = np.linspace(0, w, 17)
    thumbs = (rng.random((64, 256, 4)) * 255).astype(np.float32)
    slot_energy = rng.random((64, 256)).astype(np.float32)
    eligible = np.ones((64, 256), bool)
    eligible[0] = False
    mandatory = ~eligible
    out = {}
    cases = {
        "rasterise_mvs": (lambda: K.rasterise_mvs(*args, h // 8, w // 8, 8),
                          lambda: nb.rasterise_mvs(*args, h // 8, w // 8, 8)),
        "mc_residual": (lambda: K.mc_residual(cur, ring, slots, dirs, dists, flow, block=8, step=4),
                        lambda: nb.mc_residual(cur, ring, slots, dirs, dists, flow, block=8, step=4)),
        "pool_cells": (lambda: K.pool_cells(energy, 8.0, rows, cols),
                       lambda: nb.pool_cells(energy, 8.0, rows, cols)),
        "refresh_drift_select (64x256, K=4096)": (
            lambda: K.refresh_drift_select(thumbs, slot_energy, eligible, mandatory, 4096, age_weight=0.01),
            lambda: nb.refresh_drift_select(thumbs, slot_energy, eligible, mandatory, 4096, age_weight=0.01)),
    }
    for name, (fast, slow) in cases.items():
        agree = _agree(fast(), slow())
        a = bench(fast, warmup=2, repeats=repeats * 4)["median"]
        b = bench(slow, warmup=1, repeats=repeats)["median"]
        out[name] = {"numba_ms": a * 1e3, "numpy_ms": b * 1e3, "speedup": b / a, "max_abs_diff": agree}
    return out


def _agree(a, b) -> float:
    """Largest difference between the kernel's and the NumPy version's outputs (NaN where both are NaN)."""
    pairs = zip(a, b) if isinstance(a, tuple) else [(a, b)]
    worst = 0.0
    for x, y in pairs:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        both = np.isnan(x) & np.isnan(y)
        if np.any(np.isnan(x) != np.isnan(y)):
            return float("inf")
        worst = max(worst, float(np.max(np.abs(np.where(both, 0.0, x - y)), initial=0.0)))
    return worst


def mv_threading_check(path: str, runs: int = 4) -> dict:
    """Decode with MV export under each FFmpeg thread mode; count frames whose vectors differ from a
    no-thread reference (named fields only) and time each mode."""
    import hashlib

    import av

    def digests(thread_type):
        out = []
        t0 = time.perf_counter()
        with av.open(path) as c:
            s = c.streams.video[0]
            s.thread_type = thread_type
            s.codec_context.options = {"flags2": "+export_mvs"}
            for frame in c.decode(s):
                sd = frame.side_data.get("MOTION_VECTORS")
                h = hashlib.sha1()
                if sd is not None:
                    a = sd.to_ndarray()
                    for name in ("source", "w", "h", "src_x", "src_y", "dst_x", "dst_y", "motion_x", "motion_y"):
                        h.update(np.ascontiguousarray(a[name]).tobytes())
                out.append(h.hexdigest())
        return out, time.perf_counter() - t0

    ref, _ = digests("NONE")
    report = {}
    for mode in ("NONE", "SLICE", "FRAME", "AUTO"):
        diffs, times = [], []
        for _ in range(runs):
            d, dt = digests(mode)
            diffs.append(sum(a != b for a, b in zip(ref, d)) + abs(len(ref) - len(d)))
            times.append(dt)
        report[mode] = {"frames_with_changed_mvs_per_run": diffs, "median_s": float(np.median(times))}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-kernels", action="store_true", help="skip the numba-vs-numpy comparison")
    args = parser.parse_args(argv)
    videos = args.videos or sorted(SHARED.glob("*.mp4"))
    if not videos:
        parser.error("no videos given and ../shared/videos is empty")

    from codec_select.kernels import warmup

    from codec_select import select_patches
    from codec_select.eval.timing import bench, decode_plain, decode_with_mvs, system_metadata

    t0 = time.perf_counter()
    warmup()
    compile_s = time.perf_counter() - t0
    results = {"system": system_metadata(), "warmup_s": compile_s, "videos": {}}
    print(f"kernel warm-up (JIT or cache load): {compile_s:.2f} s")
    header = f"{'video':28s} {'frames':>6s} {'decode':>9s} {'dec+MV':>9s} {'select':>9s} {'sel/dec+MV':>10s} {'sel/dec':>8s}"
    print(header)
    for video in videos:
        path = str(video)
        n = decode_plain(path)
        stats = {}
        # Interleave the three so drift of the machine hits each alike.
        runs = {"decode": [], "decode_mv": [], "select": []}
        timings = []
        for _ in range(args.repeats):
            # The selector skips the loop filter (fast_decode): so do its references.
            runs["decode"].append(bench(partial(decode_plain, path, skip_loop_filter=True), warmup=0,
                                        repeats=1)["median"])
            runs["decode_mv"].append(bench(partial(decode_with_mvs, path, skip_loop_filter=True), warmup=0,
                                           repeats=1)["median"])
            t = time.perf_counter()
            sel = select_patches(path)
            runs["select"].append(time.perf_counter() - t)
            timings.append(sel.timings)
        for key, vals in runs.items():
            stats[key] = float(np.median(vals))
        stats["ratio_select_over_decode_mv"] = stats["select"] / stats["decode_mv"]
        stats["ratio_select_over_decode"] = stats["select"] / stats["decode"]
        stats["frames"] = n
        stats["stage_timings_median"] = {k: float(np.median([t[k] for t in timings])) for k in timings[0]}
        results["videos"][video.name] = stats
        print(
            f"{video.name:28s} {n:6d} {stats['decode'] * 1e3:7.0f}ms {stats['decode_mv'] * 1e3:7.0f}ms "
            f"{stats['select'] * 1e3:7.0f}ms {stats['ratio_select_over_decode_mv']:10.2f} {stats['ratio_select_over_decode']:8.2f}"
        )
    print("\nMV export under FFmpeg threading (frames whose vectors differ from thread_type=NONE, per run):")
    results["mv_threading"] = {}
    for video in videos:
        rep = mv_threading_check(str(video))
        results["mv_threading"][video.name] = rep
        print(f"  {video.name}: " + ", ".join(
            f"{m} {r['frames_with_changed_mvs_per_run']} ({r['median_s'] * 1e3:.0f} ms)" for m, r in rep.items()))
    if not args.no_kernels:
        results["kernels"] = kernel_speed(args.repeats)
        print(f"\n{'kernel (360x640 frame)':24s} {'numba':>9s} {'vectorised numpy':>17s} {'speedup':>8s} {'max diff':>9s}")
        for name, r in results["kernels"].items():
            print(f"{name:24s} {r['numba_ms']:7.3f}ms {r['numpy_ms']:15.2f}ms {r['speedup']:7.1f}x "
                  f"{r['max_abs_diff']:9.2g}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
