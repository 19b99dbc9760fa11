"""Batch engine throughput: videos per hour per core, with every core busy, as a dataset job runs.

    python benchmarks/bench_batch.py                          # shared clips + the 10-min 720p clip, both configs
    python benchmarks/bench_batch.py --sets shared            # the shared clips only (about a minute)
    python benchmarks/bench_batch.py --configs refresh --out bench_out/batch.json

Each run is the real command line, ``codec-select batch`` (``python -m codec_select.cli batch``, its default
forkserver pool, 1 numba and 1 decoder thread per worker), in a child process with ``--workers`` = the CPU count:

- ``reference``: ``--format reference --geometry llava576``, the default consumer recipe (``onevision-stage1``, what
  the encoder was trained on; :func:`codec_select.select.consumer_options`), writing the stage-1 files;
- ``llava``: ``--format llava`` (the same recipe plus the 8 LLaVA mosaics per video; not in the default set);
- ``refresh``: ``--format npz`` with the default :func:`codec_select.select_patches` options (policy ``refresh``).

Inputs: ``shared`` = the two shared clips (360×640 H.264, B-frames), each listed ``--repeats`` times so every worker
stays busy and start-up is amortised; ``long`` = a synthetic 10-minute 1280×720 30 fps H.264 clip (libx264
veryfast, CRF 23, 3 B-frames, key frame every 250 frames; a camera pan of varying speed and direction over a
textured background with light noise, three moving squares, a scene cut every 20 s), made once and cached under
``--work``, listed once per worker. Before measuring, one unmeasured one-video batch per config fills numba's
on-disk cache, as in a running dataset job (``--no-warmup`` keeps first-use compiles in).

CPU is the whole process tree: this script becomes a *child subreaper* (Linux ``prctl``), so the forkserver and the
workers it forks are reaped here once the batch exits, and ``getrusage(RUSAGE_CHILDREN)`` then holds their user +
system time (without it, the forkserver is orphaned to init and its workers' CPU is lost). Start-up (interpreter,
imports, numba cache loads) is included, as it is in a real job. Reported per (config, input set):

- ``videos/h/core`` = videos ÷ (tree CPU seconds / 3600): the dataset-scale figure (cores fully used);
- ``videos/h (wall)`` = videos ÷ wall seconds of the whole command at full load (``--workers`` processes);
- ``video s / CPU s`` = seconds of video selected per CPU second.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

SHARED = Path("/work/shared/videos")
CONFIGS = {
    "reference": ["--format", "reference", "--geometry", "llava576"],
    "llava": ["--format", "llava"],
    "refresh": ["--format", "npz"],
}
LONG_NAME = "long_720p_600s.mp4"


# ---------------------------------------------------------------------------------------------------------------
# The 10-minute clip


def make_long_clip(path: Path, *, seconds: float = 600.0, width: int = 1280, height: int = 720, fps: int = 30,
                   seed: int = 0) -> Path:
    """Stream-render and encode the long clip (memory bounded: one scene texture at a time), atomically."""
    import av

    from codec_select.synth import texture

    rng = np.random.default_rng(seed)
    n = round(seconds * fps)
    scene_len = 20 * fps
    margin = 160  # the pan wanders this far in y and, per scene, up to scene_len * 2.5 px in x
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "bf": "3", "g": "250", "keyint_min": "25",
                          "threads": str(os.cpu_count() or 1)}
        big = xs = ys = colours = None
        # Sensor-like noise (a small bank, cycled) so flat areas are not free to code, as in a camera's video.
        noise = rng.integers(-6, 7, size=(7, height, width, 3), dtype=np.int16)
        for i in range(n):
            j = i % scene_len
            if j == 0:  # scene cut: a new background, a new camera path (speed and direction change within it)
                speed = rng.uniform(0.3, 2.5) * np.sin(np.linspace(0, rng.uniform(1, 4) * np.pi, scene_len)) ** 2
                xs = np.cumsum(speed).astype(int)
                ys = (margin / 2 * (1 + np.sin(np.arange(scene_len) / rng.uniform(60, 200)))).astype(int)
                big = texture(rng, height + margin + 2, width + int(xs[-1]) + 2, cell=8)
                colours = rng.integers(0, 256, size=(3, 3), dtype=np.uint8)
            img = big[ys[j] : ys[j] + height, xs[j] : xs[j] + width].copy()
            for o in range(3):  # objects moving against the camera, bouncing off the borders
                s = 80 + 40 * o
                x = int((i * (3 + o) + 300 * o) % (2 * (width - s)))
                x = x if x < width - s else 2 * (width - s) - x
                y = int((height - s) * (0.5 + 0.4 * np.sin(i / (40.0 + 17 * o) + o)))
                img[y : y + s, x : x + s] = colours[o]
            img = np.clip(img + noise[i % len(noise)], 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


def video_seconds(path: Path) -> float:
    """Duration of the video stream (container metadata)."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        return float(c.duration or 0) / 1e6


# ---------------------------------------------------------------------------------------------------------------
# Measuring a batch


def become_subreaper() -> bool:
    """Linux: orphaned descendants (the multiprocessing forkserver) are re-parented to us, so we reap them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_descendants(timeout: float = 60.0) -> int:
    """Wait for every child left (orphans re-parented here included); returns how many were reaped."""
    reaped, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid:
            reaped += 1
        else:
            time.sleep(0.05)
    return reaped


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_one(config: str, videos: list[Path], out_dir: Path, workers: int) -> dict:
    """One ``codec-select batch`` over ``videos`` (one manifest entry each), measured."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    manifest = out_dir.parent / f"{out_dir.name}.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"v{i:04d}_{p.stem}", "video": str(p)}) + "\n"
                                for i, p in enumerate(videos)))
    cmd = [sys.executable, "-m", "codec_select.cli", "batch", str(manifest), "--out", str(out_dir),
           "--workers", str(workers), "--no-progress", "--json", *CONFIGS[config]]
    reap_descendants(1.0)
    load0 = os.getloadavg()[0]
    cpu0, t0 = cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    orphans = reap_descendants()  # the forkserver (and the resource tracker) exit just after the command
    cpu = cpu_children() - cpu0
    summary = {}
    for line in proc.stdout.splitlines()[::-1]:
        with contextlib.suppress(ValueError):
            summary = json.loads(line)
        if isinstance(summary, dict) and summary:
            break
    summary = summary if isinstance(summary, dict) else {}
    if proc.returncode not in (0, 1) or not summary:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    failures = []
    fpath = out_dir / "failures.jsonl"
    if fpath.exists():
        failures = [json.loads(line) for line in fpath.read_text().splitlines() if line.strip()]
    return {"config": config, "command": cmd, "returncode": proc.returncode, "wall_s": wall, "cpu_s": cpu,
            "orphans_reaped": orphans, "loadavg_1min_before_after": [load0, os.getloadavg()[0]],
            "summary": summary, "failures": failures, **_selector(out_dir)}


def _selector(out_dir: Path) -> dict:
    """What actually selected (recipe or policy, full or windowed decode), read back from one output."""
    meta = {}
    with contextlib.suppress(StopIteration, OSError, ValueError, KeyError):
        npz = next(out_dir.glob("*.npz"), None)
        if npz is not None:
            with np.load(npz, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
        else:
            meta = json.loads(next(out_dir.rglob("*meta.json")).read_text()).get("codec_select", {})
    options = meta.get("options") or {}
    return {"selector": options.get("recipe") or meta.get("policy"), "mode": meta.get("mode"),
            "signals": meta.get("signals"), "timings": meta.get("timings")}


def metrics(res: dict, videos: list[Path], durations: dict[Path, float], workers: int) -> dict:
    n = res["summary"].get("ok", 0) + res["summary"].get("failed", 0)
    ok = res["summary"].get("ok", 0)
    vid_s = sum(durations[p] for p in videos)
    return {
        "videos": n, "ok": ok, "workers": workers, "wall_s": round(res["wall_s"], 2), "cpu_s": round(res["cpu_s"], 2),
        "cpu_s_per_video": round(res["cpu_s"] / n, 3) if n else None,
        "videos_per_hour_per_core": round(n / (res["cpu_s"] / 3600), 1) if res["cpu_s"] else None,
        "videos_per_hour_wall": round(n / (res["wall_s"] / 3600), 1) if res["wall_s"] else None,
        "video_s_per_cpu_s": round(vid_s / res["cpu_s"], 3) if res["cpu_s"] else None,
        "core_utilisation": round(res["cpu_s"] / (res["wall_s"] * workers), 3) if res["wall_s"] else None,
        "startup_s": round(res["summary"].get("startup_seconds", 0.0), 2),
        "video_seconds": round(vid_s, 1),
    }


def system_metadata() -> dict:
    import av
    import numba

    import codec_select

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    # The exact code measured (the package may be an editable checkout being changed): a digest of its sources.
    import codec_select.kernels

    digest = hashlib.sha256()
    for root in sorted({Path(m.__file__).resolve().parent for m in (codec_select, codec_select.kernels)}):
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0" + path.read_bytes())
    return {"cpu": cpu, "cores": os.cpu_count(), "source_sha256": digest.hexdigest()[:16], "python": platform.python_version(), "platform": platform.platform(),
            "codec_select": codec_select.__version__, "av": av.__version__,
            "libavcodec": av.library_versions.get("libavcodec"),
            "numba": numba.__version__, "numpy": np.__version__}


# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "codec-select" / "bench",
                        help="cache of the long clip and scratch outputs (default ~/.cache/codec-select/bench)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="batch workers (default: CPUs)")
    parser.add_argument("--configs", default="reference,refresh", help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--sets", default="shared,long", help="comma-separated, of shared, long")
    parser.add_argument("--repeats", type=int, default=None,
                        help="times each shared clip is listed (default: 4 per worker, so start-up is amortised)")
    parser.add_argument("--long-copies", type=int, default=None,
                        help="times the long clip is listed (default: workers)")
    parser.add_argument("--shared-dir", type=Path, default=SHARED, help="folder of the shared clips (*.mp4)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the unmeasured one-video batch per config that fills numba's on-disk cache first")
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if bad := [c for c in configs if c not in CONFIGS] + [s for s in sets if s not in ("shared", "long")]:
        parser.error(f"unknown config or set: {bad}")
    subreaper = become_subreaper()
    if not subreaper:
        print("warning: not a child subreaper (non-Linux?): the forkserver's workers' CPU may be missing",
              file=sys.stderr)
    inputs: dict[str, list[Path]] = {}
    if "shared" in sets:
        clips = sorted(args.shared_dir.glob("*.mp4"))
        if not clips:
            parser.error(f"no *.mp4 in {args.shared_dir}")
        inputs["shared"] = clips * (args.repeats or 4 * args.workers)
    if "long" in sets:
        long_clip = args.work / LONG_NAME
        if not long_clip.exists():
            t = time.perf_counter()
            print(f"making {long_clip} (10 min, 1280x720, once) ...", file=sys.stderr, flush=True)
            make_long_clip(long_clip)
            print(f"  made in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        inputs["long"] = [long_clip] * (args.long_copies or args.workers)
    durations = {p: video_seconds(p) for paths in inputs.values() for p in set(paths)}
    if not args.no_warmup:  # a dataset job runs with a warm numba cache: keep first-use compiles out of the figures
        first = sorted(args.shared_dir.glob("*.mp4"))[:1] or [inputs[next(iter(inputs))][0]]
        for config in configs:
            print(f"[warm-up / {config}] ...", file=sys.stderr, flush=True)
            run_one(config, first, args.work / "runs" / f"warmup_{config}", 1)
    results = []
    for set_name, videos in inputs.items():
        for config in configs:
            print(f"[{set_name} / {config}] {len(videos)} videos on {args.workers} workers ...", file=sys.stderr,
                  flush=True)
            res = run_one(config, videos, args.work / "runs" / f"{set_name}_{config}", args.workers)
            res.update(set=set_name, **metrics(res, videos, durations, args.workers))
            print(f"  wall {res['wall_s']} s, CPU {res['cpu_s']} s, {res['videos_per_hour_per_core']} videos/h/core, "
                  f"failures {len(res['failures'])}", file=sys.stderr, flush=True)
            results.append(res)
    print("| input | config (selector) | videos | wall s | tree CPU s | CPU s/video | videos/h/core | "
          "videos/h (wall) | video s / CPU s | core use |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['set']} | {r['config']} ({r['selector'] or '?'}, {r['mode'] or '?'}) "
              f"| {r['videos']} ({r['ok']} ok) "
              f"| {r['wall_s']:.1f} | "
              f"{r['cpu_s']:.1f} | {r['cpu_s_per_video']:.2f} | {r['videos_per_hour_per_core']:.0f} | "
              f"{r['videos_per_hour_wall']:.0f} | {r['video_s_per_cpu_s']:.2f} | {r['core_utilisation']:.0%} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"system_metadata": system_metadata(), "workers": args.workers, "subreaper": subreaper,
                   "inputs": {k: sorted({str(p) for p in v}) for k, v in inputs.items()},
                   "video_seconds": {str(p): d for p, d in durations.items()}, "results": results}
        args.out.write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
