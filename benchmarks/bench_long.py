"""Long videos: selection cost against uniform 64-frame decoding, peak memory, and the full/windowed switch point.

    python benchmarks/bench_long.py                      # 10-min 720p clip: time ratio and peak RSS (auto mode)
    python benchmarks/bench_long.py --hour               # also the 1-hour clip (the 10-min clip remuxed 6 times)
    python benchmarks/bench_long.py --switch             # full vs windowed decode cost over lengths and GOPs
    python benchmarks/bench_long.py --json bench_out/long.json

The clips are synthetic (made here, never committed) under ``bench_out/long/``: a camera pan over a textured
background with three moving squares and a scene cut every 20 s, 1280×720 at 30 fps, H.264 (libx264 veryfast,
CRF 23, 3 B-frames, key frame every ``--gop`` frames, 250 = x264's default). Every selection runs in a fresh child
process so its peak RSS (``ru_maxrss``) is its own; times are medians over ``--repeats`` runs.

Targets (issue 7): 10-min 720p selection time ÷ uniform 64-frame PyAV decode time ≤ 2.0, peak RSS < 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench_out" / "long"


def make_long_clip(path: Path, *, seconds: float, width: int = 1280, height: int = 720, fps: int = 30,
                   gop: int = 250, bframes: int = 3, seed: int = 0) -> Path:
    """Stream-render and encode a long synthetic clip (bounded memory: one scene texture at a time)."""
    import av

    from codec_select.synth import texture

    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    scene_len = 20 * fps
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "bf": str(bframes), "g": str(gop),
                          "keyint_min": str(min(gop, 25)), "threads": "2"}
        big = None
        colours = rng.integers(0, 256, size=(3, 3), dtype=np.uint8)
        for i in range(n):
            j = i % scene_len
            if j == 0:
                big = texture(rng, height, width + scene_len + 8, cell=16)
                colours = rng.integers(0, 256, size=(3, 3), dtype=np.uint8)
            img = big[:, j : j + width].copy()
            for o in range(3):
                s = 80 + 40 * o
                x = int((i * (3 + o) + 300 * o) % (2 * (width - s)))
                x = x if x < width - s else 2 * (width - s) - x
                y = int((height - s) * (0.5 + 0.4 * np.sin(i / (40.0 + 17 * o) + o)))
                img[y : y + s, x : x + s] = colours[o]
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


def repeat_clip(src: Path, dst: Path, times: int) -> Path:
    """Remux ``src`` ``times`` times back to back (no re-encode): a long clip in seconds."""
    import av

    tmp = dst.with_name(dst.stem + ".part" + dst.suffix)
    with av.open(str(src)) as probe_c:
        s = probe_c.streams.video[0]
        span = None
        last = 0
        for p in probe_c.demux(s):
            if p.pts is not None and p.duration:
                last = max(last, p.pts + p.duration)
        span = last
    with av.open(str(tmp), "w") as out:
        with av.open(str(src)) as first:
            template = first.streams.video[0]
            ostream = out.add_stream_from_template(template)
        for r in range(times):
            with av.open(str(src)) as inp:
                istream = inp.streams.video[0]
                for p in inp.demux(istream):
                    if p.dts is None and p.pts is None:
                        continue
                    p.stream = ostream
                    if p.pts is not None:
                        p.pts += r * span
                    if p.dts is not None:
                        p.dts += r * span
                    out.mux(p)
    tmp.replace(dst)
    return dst


_CHILD = r"""
import json, resource, sys, time
from codec_select.kernels import warmup
warmup()
what, path = sys.argv[1], sys.argv[2]
t = time.perf_counter()
out = {{}}
if what == "uniform":
    from codec_select.eval.bench import seek_decode
    from codec_select.select import frame_grid
    from codec_select.decode.container import probe
    info = probe(path)
    seek_decode(path, frame_grid(max(1, info.num_frames)), info)
else:
    from codec_select import select_patches
    kw = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {{}}
    sel = select_patches(path, **kw)
    out.update(mode=sel.mode, num_frames=sel.num_frames, timings=sel.timings, signals=sel.signals)
out["seconds"] = time.perf_counter() - t
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over execve from the parent, VmHWM belongs to this process image
with open("/proc/self/status") as f:
    hwm = [line for line in f if line.startswith("VmHWM:")]
peak_kib = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["peak_rss_mib"] = peak_kib / 1024
print(json.dumps(out))
"""


def run_child(what: str, path: Path, **kwargs) -> dict:
    """Run one selection (or the uniform decode) in a fresh process; its time and peak RSS."""
    code = _CHILD.format(root=str(ROOT))
    args = [sys.executable, "-c", code, what, str(path)] + ([json.dumps(kwargs)] if kwargs else [])
    res = subprocess.run(args, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"child failed ({res.returncode}): {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure(path: Path, repeats: int, *, full: bool = False) -> dict:
    """Median selection time (auto mode), uniform 64-frame decode time, their ratio, peak RSS."""
    sel = [run_child("select", path) for _ in range(repeats)]
    uni = [run_child("uniform", path) for _ in range(repeats)]
    out = {
        "clip": path.name, "mode": sel[0]["mode"], "num_frames": sel[0]["num_frames"],
        "select_s": statistics.median(r["seconds"] for r in sel),
        "select_s_all": [round(r["seconds"], 3) for r in sel],
        "uniform64_s": statistics.median(r["seconds"] for r in uni),
        "uniform64_s_all": [round(r["seconds"], 3) for r in uni],
        "select_peak_rss_mib": max(r["peak_rss_mib"] for r in sel),
        "uniform_peak_rss_mib": max(r["peak_rss_mib"] for r in uni),
        "timings": sel[0]["timings"],
    }
    out["ratio"] = out["select_s"] / out["uniform64_s"]
    if full:
        f = run_child("select", path, mode="full")
        out["full_s"], out["full_peak_rss_mib"] = f["seconds"], f["peak_rss_mib"]
    return out


def switch_point(repeats: int, lengths: list[int], gops: list[int], height: int) -> list[dict]:
    """Selection time full vs windowed over clip lengths (prefixes of one clip via ``end=``) and GOPs."""
    rows = []
    width = height * 16 // 9 // 2 * 2
    for gop in gops:
        clip = OUT / f"switch_{height}p_gop{gop}.mp4"
        if not clip.exists():
            make_long_clip(clip, seconds=max(lengths) / 30 + 1, width=width, height=height, gop=gop)
        for n in lengths:
            end = (n - 0.5) / 30
            row = {"gop": gop, "frames": n, "height": height}
            for mode in ("full", "windowed"):
                times = [run_child("select", clip, mode=mode, end=end)["seconds"] for _ in range(repeats)]
                row[mode] = statistics.median(times)
            row["full_over_windowed"] = row["full"] / row["windowed"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--gop", type=int, default=250)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hour", action="store_true", help="also measure the 1-hour clip")
    p.add_argument("--full", action="store_true", help="also time mode='full' on the long clip (slow)")
    p.add_argument("--switch", action="store_true", help="measure the full/windowed switch point")
    p.add_argument("--switch-lengths", default="600,1200,2400,4800,9600")
    p.add_argument("--switch-gops", default="12,48,250")
    p.add_argument("--switch-height", type=int, default=720)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    from codec_select.kernels import warmup

    from codec_select.eval.timing import system_metadata

    results: dict = {"system_metadata": system_metadata()}
    t = time.perf_counter()
    warmup()
    results["kernel_warmup_s"] = time.perf_counter() - t
    if args.switch:
        results["switch"] = switch_point(args.repeats, [int(x) for x in args.switch_lengths.split(",")],
                                         [int(x) for x in args.switch_gops.split(",")], args.switch_height)
    else:
        clip = OUT / f"long_{args.minutes:g}min_720p_gop{args.gop}.mp4"
        if not clip.exists():
            t = time.perf_counter()
            make_long_clip(clip, seconds=args.minutes * 60, gop=args.gop)
            print(f"made {clip} in {time.perf_counter() - t:.0f} s", flush=True)
        results["long"] = measure(clip, args.repeats, full=args.full)
        print(json.dumps(results["long"], indent=1), flush=True)
        if args.hour:
            hour = OUT / f"long_60min_720p_gop{args.gop}.mp4"
            if not hour.exists():
                repeat_clip(clip, hour, int(round(60 / args.minutes)))
            results["hour"] = measure(hour, max(1, args.repeats - 2))
            print(json.dumps(results["hour"], indent=1), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
