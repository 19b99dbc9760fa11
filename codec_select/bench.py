"""``codec-select bench``: codec selection against uniform sampling at equal token budget, in one run.

For every video: decode + score once per geometry, then spend each budget K with every selector on the same
scores — codec (default policy), codec-topk (the reference's global top-K), codec-noacc (the reference's
per-frame rule: topk, no accumulation), uniform, oracle (top-K of true pixel change from a full decode) and random —
and measure hold-reconstruction PSNR and motion recall against the true canvas frames. Speed: per-stage time of
our selection against plain decode, decode with MV export, and uniform 64-frame decoding (sequential and seek).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "run_bench", "DEFAULT_BUDGETS", "seek_decode"]

DEFAULT_BUDGETS = {"ap224": (1024, 2048, 4096, 8192), "llava576": (10368,)}
SELECTORS = ("codec", "codec-topk", "codec-noacc", "uniform", "oracle", "random")
SYNTHETIC = (  # name, scene kind, encoder
    ("syn-objects", "objects", "libx264"),
    ("syn-square", "square", "libx264"),
    ("syn-pan", "pan", "libx264"),
    ("syn-static", "static", "libx264"),
    ("syn-cuts", "cuts", "libx264"),
    ("syn-objects-hevc", "objects", "libx265"),
)
MOTION_HEAVY = ("syn-objects", "syn-square", "syn-objects-hevc")
STATIC = ("syn-static",)


def _shared_videos() -> list[Path]:
    here = Path(__file__).resolve()
    for base in (Path.cwd(), here.parents[1], here.parents[2]):
        folder = base.parent / "shared" / "videos" if base.name != "shared" else base / "videos"
        if folder.is_dir():
            found = sorted(folder.glob("*.mp4"))
            if found:
                return found
    return []


def _make_synthetic(folder: Path) -> list[tuple[str, Path]]:
    from .synth import ENCODERS, Scene, available_encoders, make_clip

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    have = set(available_encoders())
    for name, kind, enc in SYNTHETIC:
        if enc not in have:
            print(f"  skip {name}: PyAV has no {enc} encoder")
            continue
        path = folder / f"{name}{ENCODERS[enc][2]}"
        if not path.exists():
            make_clip(path, Scene(kind=kind, width=320, height=240, frames=192, speed=2.0, seed=1), encoder=enc)
        out.append((name, path))
    return out


def _selector_indices(name, sel, change_slots, k, rng_seed=0):
    from .select import apply_policy

    geo = sel.geometry
    if name == "codec":
        return apply_policy(sel.policy, sel.scores, geo, k, thumbnails=sel.thumbnails)
    if name == "codec-topk":
        return apply_policy("topk", sel.scores, geo, k)
    if name == "uniform":
        return apply_policy("uniform", sel.scores, geo, k)
    if name == "oracle":
        return apply_policy("topk", change_slots, geo, k)
    if name == "random":
        c = geo.cells
        valid = np.flatnonzero(np.broadcast_to(geo.valid_mask().ravel(), (63, c)).ravel()) + c
        rng = np.random.default_rng(rng_seed)
        rest = rng.choice(valid, size=k - c, replace=False)
        return np.sort(np.concatenate([np.arange(c), rest])).astype(np.int64)
    raise ValueError(name)


def _speed(path: str, repeats: int) -> dict:
    from ._bench import bench, decode_plain, decode_with_mvs
    from .select import frame_grid
    from .video import probe, read_frames

    out = {}
    info = probe(path)
    out["decode"] = bench(lambda: decode_plain(path), warmup=0, repeats=repeats)["median"]
    if info.has_codec_mvs:
        out["decode_mv"] = bench(lambda: decode_with_mvs(path), warmup=0, repeats=repeats)["median"]
    ids = frame_grid(max(1, info.num_frames))
    out["uniform64_sequential"] = bench(lambda: read_frames(path, ids), warmup=0, repeats=repeats)["median"]
    out["uniform64_seek"] = bench(lambda: seek_decode(path, ids, info), warmup=0, repeats=repeats)["median"]
    try:
        import torchcodec.decoders as tcd  # noqa: F401

        def _tc():
            dec = tcd.VideoDecoder(path, seek_mode="exact")
            dec.get_frames_at(indices=[int(i) for i in ids])

        out["torchcodec_uniform64"] = bench(_tc, warmup=0, repeats=repeats)["median"]
    except Exception as exc:  # not installable here, or fails on this file
        out["torchcodec_uniform64"] = f"skipped: {type(exc).__name__}: {exc}"[:160]
    try:
        import decord

        def _dc():
            vr = decord.VideoReader(path)
            vr.get_batch([int(i) for i in ids])

        out["decord_uniform64"] = bench(_dc, warmup=0, repeats=repeats)["median"]
    except Exception as exc:
        out["decord_uniform64"] = f"skipped: {type(exc).__name__}: {exc}"[:160]
    return out


def seek_decode(path, ids, info):
    """Uniform 64-frame decoding by seeking to each wanted timestamp (PyAV)."""
    import av

    fps = info.fps or 30.0
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        tb = float(s.time_base)
        start = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
        for i in np.unique(ids):
            target = start + i / fps
            c.seek(int(target / tb), stream=s, backward=True)
            for frame in c.decode(s):
                if frame.pts is None or frame.pts * tb >= target - 0.5 / fps:
                    frame.to_ndarray(format="rgb24")
                    break


def run_bench(
    videos: list[Path], out_dir: Path, *, budgets: dict | None = None, repeats: int = 3, synthetic: bool = True,
    encoder: bool = True,
) -> dict:
    from ._bench import system_metadata
    from .kernels import warmup
    from .metrics import hold_psnr, motion_recall, true_change
    from .pixels import slot_frames
    from .select import select_patches

    budgets = budgets or DEFAULT_BUDGETS
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    warmup()
    results: dict = {"system": system_metadata(), "warmup_s": time.perf_counter() - t0, "budgets": budgets,
                     "videos": {}, "selectors": list(SELECTORS)}
    inputs = [(p.stem, p) for p in videos]
    if synthetic:
        inputs += _make_synthetic(out_dir / "clips")
    for name, path in inputs:
        print(f"[bench] {name}", flush=True)
        entry: dict = {"path": str(path), "quality": {}, "recall": {}}
        for geometry, ks in budgets.items():
            sel = select_patches(path, geometry=geometry)
            noacc = select_patches(path, geometry=geometry, policy="topk", accumulate=False)
            truth = slot_frames(sel, luma=True)
            change = true_change(path, sel.geometry).slots(sel.frame_ids)
            entry.setdefault("signals", sel.signals)
            entry.setdefault("codec", sel.codec)
            entry.setdefault("frames", sel.num_frames)
            entry.setdefault("stage_timings", {})[geometry] = sel.timings
            for k in ks:
                key = f"{geometry}/K={k}"
                entry["quality"][key], entry["recall"][key] = {}, {}
                for selector in SELECTORS:
                    src = noacc if selector == "codec-noacc" else sel
                    idx = _selector_indices("codec-topk" if selector == "codec-noacc" else selector, src, change, k)
                    entry["quality"][key][selector] = hold_psnr(truth, idx, sel.geometry)
                    entry["recall"][key][selector] = motion_recall(change, idx)
        entry["speed"] = _speed(str(path), repeats)
        entry["speed"]["select"] = float(np.median([select_patches(path).timings["total"] for _ in range(repeats)]))
        results["videos"][name] = entry
    if encoder:
        results["encoder"] = _encoder_bench(inputs[0][1] if inputs else None)
    results["claims"] = _claims(results)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=_json_default))
    md = render_markdown(results)
    (out_dir / "results.md").write_text(md)
    _plots(results, out_dir)
    return results


def _json_default(x):
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)


def _encoder_bench(video) -> dict:
    try:
        from .encoder.benchmark import encoder_benchmark  # torch + the native encoder
    except ImportError as exc:
        return {"skipped": f"{exc}"}
    try:
        return encoder_benchmark(video)
    except Exception as exc:  # report, never lose the rest of the run
        return {"skipped": f"{type(exc).__name__}: {exc}"}


def _claims(results: dict) -> list[dict]:
    """Check the claims the benchmark exists for; failures are reported, not hidden."""
    claims = []
    for name, entry in results["videos"].items():
        real = not name.startswith("syn-")
        for key, q in entry["quality"].items():
            geometry, k = key.split("/K=")
            k = int(k)
            if (real or name in MOTION_HEAVY) and k <= 4096:
                claims.append({"video": name, "budget": key, "claim": "codec > uniform",
                               "holds": q["codec"] > q["uniform"], "margin_db": q["codec"] - q["uniform"]})
            claims.append({"video": name, "budget": key, "claim": "codec > random",
                           "holds": q["codec"] > q["random"], "margin_db": q["codec"] - q["random"]})
            if name in STATIC:
                claims.append({"video": name, "budget": key, "claim": "codec >= uniform (static)",
                               "holds": q["codec"] >= q["uniform"] - 0.05, "margin_db": q["codec"] - q["uniform"]})
    return claims


def _fmt(x) -> str:
    return "inf" if isinstance(x, float) and math.isinf(x) else f"{x:.2f}"


def render_markdown(results: dict) -> str:
    lines = ["### Hold-reconstruction PSNR (dB), higher is better", ""]
    sels = results["selectors"]
    lines.append("| video | budget | " + " | ".join(sels) + " | codec − uniform |")
    lines.append("|---|---|" + "---|" * len(sels) + "---|")
    means: dict = {}
    for name, entry in results["videos"].items():
        for key, q in entry["quality"].items():
            lines.append(f"| {name} | {key} | " + " | ".join(_fmt(q[s]) for s in sels) + f" | {_fmt(q['codec'] - q['uniform'])} |")
            for s in sels:
                means.setdefault(key, {}).setdefault(s, []).append(q[s])
    lines += ["", "### Motion recall (share of true change on kept cells)", ""]
    lines.append("| video | budget | " + " | ".join(sels) + " |")
    lines.append("|---|---|" + "---|" * len(sels))
    for name, entry in results["videos"].items():
        for key, r in entry["recall"].items():
            lines.append(f"| {name} | {key} | " + " | ".join(f"{r[s]:.3f}" for s in sels) + " |")
    lines += ["", "### Speed (median seconds per video; ratios against decode with MV export)", ""]
    lines.append("| video | frames | decode | decode+MV | select | select/decode+MV | uniform64 seq | uniform64 seek | torchcodec | decord |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for name, entry in results["videos"].items():
        s = entry["speed"]
        dmv = s.get("decode_mv")
        ratio = f"{s['select'] / dmv:.2f}" if isinstance(dmv, float) else "n/a (no MVs)"
        tc = s["torchcodec_uniform64"]
        dc = s["decord_uniform64"]
        lines.append(
            f"| {name} | {entry['frames']} | {s['decode']:.3f} | {dmv if not isinstance(dmv, float) else f'{dmv:.3f}'} | "
            f"{s['select']:.3f} | {ratio} | {s['uniform64_sequential']:.3f} | {s['uniform64_seek']:.3f} | "
            f"{tc if isinstance(tc, str) and tc.startswith('skipped') is False else (f'{tc:.3f}' if isinstance(tc, float) else 'skipped')} | "
            f"{f'{dc:.3f}' if isinstance(dc, float) else 'skipped'} |"
        )
    reasons = sorted({
        f"{key.split('_')[0]}: {val}" for entry in results["videos"].values() for key, val in entry["speed"].items()
        if isinstance(val, str) and val.startswith("skipped")
    })
    for reason in reasons:
        lines.append(f"- {reason}")
    enc = results.get("encoder")
    if enc:
        lines += ["", "### Encoder", "", "```", json.dumps(enc, indent=1, default=_json_default), "```"]
    failed = [c for c in results.get("claims", []) if not c["holds"]]
    lines += ["", f"### Claims: {len(results.get('claims', [])) - len(failed)} hold, {len(failed)} fail", ""]
    for c in failed:
        lines.append(f"- FAILS: {c['claim']} on {c['video']} {c['budget']} (margin {c['margin_db']:+.2f} dB)")
    return "\n".join(lines) + "\n"


def _plots(results: dict, out_dir: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[bench] matplotlib missing: no plots (pip install 'codec-select[viz]')")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for selector in results["selectors"]:
        ks, vals = [], []
        for k in results["budgets"].get("ap224", ()):
            key = f"ap224/K={k}"
            v = [e["quality"][key][selector] for e in results["videos"].values() if key in e["quality"]]
            v = [x for x in v if not math.isinf(x)]
            if v:
                ks.append(k)
                vals.append(float(np.mean(v)))
        ax.plot(ks, vals, marker="o", label=selector)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("budget K (ap224)")
    ax.set_ylabel("mean hold PSNR (dB)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "psnr_vs_k.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = list(results["videos"])
    stages = ("decode", "signals", "scoring", "topk")
    bottom = np.zeros(len(names))
    for stage in stages:
        vals = np.array([results["videos"][n]["stage_timings"]["ap224"].get(stage, 0.0) for n in names])
        ax.bar(names, vals, bottom=bottom, label=stage)
        bottom += vals
    ax.set_ylabel("seconds (signals overlap decode on a worker thread)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "time_per_stage.png", dpi=110)
    plt.close(fig)


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="compare codec selection with uniform sampling at equal K",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="*", type=Path, help="videos or folders (default: ../shared/videos + synthetic)")
    p.add_argument("--out", type=Path, default=Path("bench_out"), help="output folder (results.json/.md, PNG plots)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-synthetic", action="store_true", help="skip the generated clips")
    p.add_argument("--no-encoder", action="store_true", help="skip the encoder timing")
    p.add_argument("--budgets", default=None, help="e.g. 'ap224:1024,4096;llava576:10368'")
    p.set_defaults(func=_run)


def _run(args) -> int:
    videos: list[Path] = []
    for v in args.videos:
        if v.is_dir():
            videos += sorted(x for x in v.iterdir() if x.suffix.lower() in {".mp4", ".mkv", ".webm", ".mov", ".avi"})
        else:
            videos.append(v)
    if not args.videos:
        videos = _shared_videos()
        if not videos:
            print("[bench] ../shared/videos not found: synthetic clips only")
    budgets = None
    if args.budgets:
        budgets = {}
        for part in args.budgets.split(";"):
            geo, ks = part.split(":")
            budgets[geo.strip()] = tuple(int(k) for k in ks.split(","))
    t0 = time.perf_counter()
    results = run_bench(videos, args.out, budgets=budgets, repeats=args.repeats, synthetic=not args.no_synthetic,
                        encoder=not args.no_encoder)
    print(render_markdown(results))
    print(f"[bench] wrote {args.out / 'results.json'}, results.md, psnr_vs_k.png, time_per_stage.png "
          f"in {time.perf_counter() - t0:.0f} s")
    return 0 if all(c["holds"] for c in results["claims"]) else 1


