"""Side-by-side for the LLaVA-OneVision-2 input (issue 14): our codec-energy blocks vs uniform blocks, same sampling.

For each shared clip and setting, every method gets the same sampled frames, the same groups and the same token
count (``ipg`` canvases per group: the anchor whole plus K = (ipg−1)·S_full/4 blocks):

- ``refresh`` (the default): the drift-aware rule of the 64-slot selector on blocks: a block is re-sent once its
  patch means drifted from what was last sent plus the codec energy it gathered reaches τ (bisected for exactly K);
- ``energy``: top-K blocks by codec energy accumulated since the previous sampled frame;
- ``energy-frame``: top-K by each frame's own energy (``accumulate=False``);
- ``uniform``: ipg−1 whole frames evenly spaced in the group (the classic baseline at equal tokens).

Metric: canvas-level hold PSNR. Every sampled frame of a group is rebuilt block by block from the most recent
block sent for that position (the anchor sends all of them), and one MSE over the luma of all sampled frames of
all groups gives the PSNR (codec_select.eval.metrics.hold_reconstruction with 28-px cells). Time: wall seconds of
prepare_llava_ov2 (decode + signals + pixels + packing, files written). codec-video-prep itself is compared only when
it is importable (it needs a patched FFmpeg and an ffprobe binary; not installable on this machine).

Run: ``python benchmarks/bench_llava_ov2.py [--videos ...] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from codec_select.decode.container import probe
from codec_select.decode.pixels import read_frames
from codec_select.eval.metrics import hold_reconstruction
from codec_select.eval.mobilenet import embed as mobilenet_embed
from codec_select.export.llava_ov2 import prepare_llava_ov2
from codec_select.geometry import make_geometry

SHARED = Path(__file__).resolve().parents[2] / "shared" / "videos"
SETTINGS = {
    "64f-g16": {"num_sampled": 64, "group_size": 16},
    "all-g32": {"num_sampled": 1024, "group_size": 32},
}
METHODS = {
    "refresh": {"blocks": "refresh", "accumulate": True},
    "energy": {"blocks": "energy", "accumulate": True},
    "energy-frame": {"blocks": "energy", "accumulate": False},
    "uniform": {"blocks": "uniform"},
}


def true_canvases(video: str, frame_ids: np.ndarray, times: np.ndarray, *, rgb: bool = False) -> dict[int, np.ndarray]:
    """Luma (float32) or RGB (uint8) of every sampled frame on the qwen canvas, found by timestamp as the exporter
    does."""
    info = probe(video)
    geo = make_geometry("qwen", *info.upright_hw)
    frames = read_frames(video, frame_ids, rgb=rgb, timestamps=times)
    if rgb:
        return {int(f): geo.to_canvas(x) for f, x in zip(frame_ids, frames)}
    return {int(f): geo.to_canvas(y).astype(np.float32) for f, y in zip(frame_ids, frames)}


def group_masks(meta: dict, positions: np.ndarray):
    """Per group: the sampled frame ids in display order and the bool [n, hb/2, wb/2] mask of the blocks sent."""
    hb, wb = meta["hb_wb"]
    s_full, ipg = meta["S_full"], meta["config"]["images_per_group"]
    for gi, group in enumerate(meta["groups"]):
        fids = sorted(group["frame_ids"])  # display order (an anchor swap reorders the group's list)
        row = {f: i for i, f in enumerate(fids)}
        pos = positions[gi * ipg * s_full : (gi + 1) * ipg * s_full]
        pos = pos[pos[:, 0] >= 0]
        mask = np.zeros((len(fids), hb // 2, wb // 2), dtype=bool)
        mask[[row[int(f)] for f in pos[:, 0]], pos[:, 1] // 2, pos[:, 2] // 2] = True
        yield fids, mask


def feature_cosine(meta: dict, positions: np.ndarray, truth_rgb: dict[int, np.ndarray], model, cache: dict) -> float:
    """Mean over sampled frames of the MobileNetV2 cosine between the true canvas and its RGB hold rebuild."""
    from codec_select.eval.quality import feature_retention, hold_reconstruction_rgb

    def embed(frames):
        return mobilenet_embed(model, frames)

    values = []
    for fids, mask in group_masks(meta, positions):
        stack = np.stack([truth_rgb[f] for f in fids])
        key = tuple(fids)
        if key not in cache:
            cache[key] = embed(stack)
        recon = hold_reconstruction_rgb(stack, mask, 28)
        values.append(feature_retention(embed, stack, recon, truth_embeddings=cache[key]) * len(fids))
    return float(sum(values) / sum(len(f) for f, _ in group_masks(meta, positions)))


def hold_mse(meta: dict, positions: np.ndarray, truth: dict[int, np.ndarray]) -> tuple[float, int]:
    """Sum of squared errors and pixel count of the hold rebuild of every sampled frame, all groups."""
    sse, count = 0.0, 0
    for fids, mask in group_masks(meta, positions):
        stack = np.stack([truth[f] for f in fids])
        recon = hold_reconstruction(stack, mask, 28)
        sse += float(((recon - stack) ** 2).sum())
        count += stack.size
    return sse, count


def run(videos: list[Path], settings: list[str]) -> list[dict]:
    rows = []
    model = None
    try:
        from codec_select.eval.mobilenet import load_mobilenet_v2

        model = load_mobilenet_v2()
    except (ImportError, FileNotFoundError) as exc:
        print(f"feature axis skipped: {exc}", file=sys.stderr)
    for video in videos:
        for name in settings:
            truth = truth_rgb = None
            cache: dict = {}
            for method, opts in METHODS.items():
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    res = prepare_llava_ov2(video, Path(tmp) / "out", **SETTINGS[name], **opts)
                    seconds = time.perf_counter() - t0
                if truth is None:
                    truth = true_canvases(str(video), res.frame_ids, np.asarray(res.meta["frame_times"]))
                sse, count = hold_mse(res.meta, res.positions, truth)
                features = None
                if model is not None:
                    if truth_rgb is None:
                        truth_rgb = true_canvases(str(video), res.frame_ids, np.asarray(res.meta["frame_times"]),
                                                  rgb=True)
                    features = round(feature_cosine(res.meta, res.positions, truth_rgb, model, cache), 3)
                psnr = math.inf if sse == 0 else 10 * math.log10(255.0**2 / (sse / count))
                row = {"video": video.name, "setting": name, "method": method, "groups": res.meta["num_groups"],
                       "sampled": res.meta["sampled_frames"], "tokens": int((res.positions[:, 0] >= 0).sum()) // 4,
                       "hold_psnr_db": round(psnr, 2), "feature_cosine": features, "seconds": round(seconds, 2),
                       "padding": res.meta["padding_patches"]}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def codec_video_prep_available() -> bool:
    try:
        import codec_video_prep  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", nargs="*", type=Path, default=sorted(SHARED.glob("*.mp4")))
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    if not args.videos:
        print("no videos (../shared/videos is empty)", file=sys.stderr)
        return 2
    if not codec_video_prep_available():
        print("codec-video-prep: not importable here (needs its patched FFmpeg + ffprobe); compared without it",
              file=sys.stderr)
    rows = run(args.videos, args.settings)
    print("\n| clip | setting | method | tokens | hold PSNR (dB) | feature cosine | time (s) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['video'][:15]} | {r['setting']} | {r['method']} | {r['tokens']} | {r['hold_psnr_db']:.2f} | "
              f"{r['feature_cosine']} | {r['seconds']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
