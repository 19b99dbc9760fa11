"""``recipe="onevision-ap"``: the attentive-probe codec loader (``dataloader/ap_dataloader_dali_codec.py``), literally.

Per sampled frame (``get_frame_id_list``; ids ``floor(linspace(0, N−1, 64))``):

- key frames among the ids (the first 8 at most) → energy 0;
- otherwise the L0 vectors (quarter-pel, on the 4×4 grid) upsampled ×4 to ``H × W`` *before* anything else,
  ``/ 4`` → pixels, camera motion removed by a robust similarity fit (:func:`fit_camera_motion`), magnitude, with
  ``mv_use_inconsistency`` its 3×3 local variance (the eval scripts' default for every dataset except diving48),
  ``/ max(p95, 1e−6)``; residual ``|Y − 128| / max(p95, 1)``; mean of the two; centre prior ``·(1 + 0.3·g)``;
  ``uint8(clip · 255)``;
- each map → shorter side 224 (``cv2`` bicubic) → centre crop 224², sum per 14×14 patch (64 × 16 × 16 scores);
- static fallback (``--static_fallback 1``, abs 126, rel 0.38): 4 whole frames at t = 0, 21, 42, 63 plus the
  top-K of the rest; otherwise top-K. Indices sorted ascending.

The float steps are the reference's numpy code, kept in numpy (float32 cumulative sums and ``lstsq`` included);
the bicubic resize is :func:`codec_select.kernels.ap.resize_cubic_u8`. Ties in the top-K (``argpartition`` picks
any) are broken by ascending index here.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import replace

import numpy as np

from ..decode.container import probe
from ..geometry import make_geometry
from ..kernels.ap import local_variance3, resize_cubic_u8
from ..kernels.stage1 import resize_nearest, smear_partition_mvs
from ..selection import NUM_SLOTS, Selection
from .sources import choose_residual, decode_slots, estimated_mv_grid, signal_choice

__all__ = ["MAX_I_FRAMES", "STATIC_ABS", "STATIC_REL", "ap_frame_energy", "ap_select", "fit_camera_motion"]

CENTER_PRIOR = 0.3
CENTER_SIGMA = 0.35
STATIC_ABS = 126.0
"""``--static_abs_thresh`` as the eval scripts run it."""
STATIC_REL = 0.38
"""``--static_rel_thresh`` as the eval scripts run it."""
STATIC_FRAMES = 4
MAX_I_FRAMES = 8
"""``tokeq_target_frames``: at most the first 8 key frames among the ids are zeroed."""
SIZE, PATCH = 224, 14


@functools.lru_cache(maxsize=4)
def _design(hm: int, wm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Cached per map size (every frame of a video shares it); read-only so no caller can change a shared copy.
    ys = np.linspace(-1.0, 1.0, hm, dtype=np.float32)
    xs = np.linspace(-1.0, 1.0, wm, dtype=np.float32)
    xx, yy = np.meshgrid(xs, ys)
    x = xx.reshape(-1).astype(np.float32)
    y = yy.reshape(-1).astype(np.float32)
    a = np.zeros((2 * x.shape[0], 4), dtype=np.float32)
    a[0::2, 0] = 1.0
    a[0::2, 2] = x
    a[0::2, 3] = -y
    a[1::2, 1] = 1.0
    a[1::2, 2] = y
    a[1::2, 3] = x
    for arr in (x, y, a):
        arr.flags.writeable = False
    return x, y, a


def _predict(x, y, params):
    tx, ty, a, b = (float(v) for v in params.reshape(-1)[:4])
    return (tx + a * x - b * y).astype(np.float32), (ty + b * x + a * y).astype(np.float32)


def fit_camera_motion(vx: np.ndarray, vy: np.ndarray, max_points: int = 5000, trim_ratio: float = 0.7,
                      iters: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The loader's ``_mv_fit_global_model(mode="similarity")``: camera field (vx_cam, vy_cam), float32 like vx.

    Points with ``|vx| + |vy| > 1e−3`` on a [−1, 1] ``linspace`` grid, strided to ≤ 5000; ``lstsq`` fit, then refit
    on the 70 % smallest residuals (at least 64); fewer than 64 points → the median translation (zeros included)."""
    hm, wm = vx.shape
    x, y, a_full = _design(hm, wm)
    vxf = vx.reshape(-1).astype(np.float32)
    vyf = vy.reshape(-1).astype(np.float32)
    mag1 = np.abs(vxf) + np.abs(vyf)
    idx = np.nonzero(np.isfinite(mag1) & (mag1 > 1e-3))[0]
    if idx.size < 64:
        return (np.full_like(vx, float(np.median(vx)), dtype=np.float32),
                np.full_like(vy, float(np.median(vy)), dtype=np.float32))
    if idx.size > max_points:
        idx = idx[:: math.ceil(idx.size / float(max_points))]
    sel = idx
    params = None
    for _ in range(max(1, iters)):
        rows = np.concatenate([2 * sel, 2 * sel + 1])
        b = np.concatenate([vxf[sel], vyf[sel]]).astype(np.float32)
        params = np.linalg.lstsq(a_full[rows], b, rcond=None)[0].astype(np.float32)
        dx, dy = _predict(x, y, params)
        r = np.sqrt((vxf[sel] - dx[sel]) ** 2 + (vyf[sel] - dy[sel]) ** 2)
        if sel.size < 128:
            break
        keep = int(max(64, round(sel.size * trim_ratio)))
        if keep >= sel.size:
            break
        sel = sel[np.argsort(r)[:keep]]
    dx, dy = _predict(x, y, params)
    return dx.reshape(hm, wm), dy.reshape(hm, wm)


@functools.lru_cache(maxsize=4)
def _center_weights(h: int, w: int) -> np.ndarray:
    # Cached per frame size, read-only (see _design).
    sigma = max(CENTER_SIGMA * float(min(h, w)), 1.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d2 = (xx - (w - 1) * 0.5) ** 2 + (yy - (h - 1) * 0.5) ** 2
    g = np.exp(-0.5 * d2 / (sigma * sigma)).astype(np.float32)
    out = g / float(g.max())
    out.flags.writeable = False
    return out


def ap_frame_energy(mv_qpel: np.ndarray | None, luma: np.ndarray | None, height: int, width: int, *,
                    inconsistency: bool = True) -> np.ndarray:
    """One non-key frame's uint8 ``[H, W]`` energy (module doc). ``mv_qpel``: L0 (x, y) in quarter pixels on the
    ``[H/4, W/4]`` grid, zero where none; ``luma``: the residual picture's Y (None → no residual term)."""
    if mv_qpel is None:
        mv_qpel = np.zeros((height // 4, width // 4, 2), np.float32)
    comps = []
    for k in range(2):  # HevcFeatureReader._upsample_mv_to_hw: cv2.resize(mv, (W, H), INTER_NEAREST)
        comps.append(resize_nearest(np.ascontiguousarray(mv_qpel[:, :, k], dtype=np.float32), height, width))
    vx = comps[0] / 4.0
    vy = comps[1] / 4.0
    cam_x, cam_y = fit_camera_motion(vx, vy)
    vx = vx - cam_x
    vy = vy - cam_y
    mag = np.sqrt(vx * vx + vy * vy)
    # _local_var2d(mag, 3), bit for bit (quirk kept: the result is (H−1) × (W−1), each value the window one
    # pixel down-right; the nearest resize below stretches it back): kernels.ap.local_variance3
    mag = np.ascontiguousarray(mag, dtype=np.float32)
    score = local_variance3(mag) if inconsistency else mag
    mv_norm = np.clip(score / max(float(np.percentile(score, 95.0)), 1e-6), 0.0, 1.0).astype(np.float32)
    if mv_norm.shape != (height, width):  # `cv2.resize(norm, (W, H), INTER_NEAREST)` of the (H−1)×(W−1) variance
        mv_norm = resize_nearest(np.ascontiguousarray(mv_norm), height, width)
    if luma is None:
        res_norm = np.zeros((height, width), np.float32)
    else:
        x = np.abs(luma.astype(np.float32) - 128.0)
        res_norm = np.clip(x / max(float(np.percentile(x, 95.0)), 1.0), 0.0, 1.0).astype(np.float32)
    fused = np.clip((1.0 * mv_norm + 1.0 * res_norm) / 2.0, 0.0, 1.0).astype(np.float32)
    fused = np.clip(fused * (1.0 + CENTER_PRIOR * _center_weights(height, width)), 0.0, 1.0).astype(np.float32)
    return (np.clip(fused, 0.0, 1.0) * 255.0).astype(np.uint8)


def _crop_scores(energy: np.ndarray) -> np.ndarray:
    """``resize_and_center_crop_residuals`` + per-patch sums: int64 [16, 16]."""
    h, w = energy.shape
    scale = SIZE / min(h, w)
    new_w, new_h = round(w * scale), round(h * scale)
    small = resize_cubic_u8(np.ascontiguousarray(energy), new_h, new_w)
    y1, x1 = (new_h - SIZE) // 2, (new_w - SIZE) // 2
    crop = small[y1:y1 + SIZE, x1:x1 + SIZE].astype(np.int64)
    g = SIZE // PATCH
    return crop.reshape(g, PATCH, g, PATCH).sum(axis=(1, 3))


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, kind="stable")[:k]  # descending, ties by ascending index


def ap_select(scores: np.ndarray, k: int, *, static_fallback: bool = True) -> tuple[np.ndarray, bool]:
    """``compute_visible_indices_cpu``: sorted flat indices (exactly ``min(k, L)``) and whether the video was
    judged static. ``scores``: integer patch sums ``[T, P]``."""
    t_slots, per = scores.shape
    flat = scores.reshape(-1).astype(np.float64)
    k = int(max(0, min(k, flat.size)))
    if static_fallback and k:
        patch_mean = (flat / float(PATCH * PATCH)).astype(np.float32)
        p95 = float(np.percentile(patch_mean, 95.0))
        p50 = float(np.percentile(patch_mean, 50.0))
        rel = float((p95 - p50) / max(p95, 1e-6))
        if p95 < STATIC_ABS or (p95 < STATIC_ABS * 2.0 and rel < STATIC_REL):
            t_list = list(dict.fromkeys(np.linspace(0, t_slots - 1, STATIC_FRAMES, dtype=int).tolist()))
            if k >= len(t_list) * per:
                uniform = [t * per + p for t in t_list for p in range(per)]
            else:  # budget below the uniform frames: spread it over them
                uniform = []
                base, rem = divmod(k, len(t_list))
                for j, t in enumerate(t_list):
                    k_t = base + (1 if j < rem else 0)
                    step = float(per) / float(max(k_t, 1))
                    pos = list(dict.fromkeys(min(per - 1, round(i * step)) for i in range(k_t)))
                    pos += [p for p in range(per) if p not in pos][: k_t - len(pos)]
                    uniform += [t * per + p for p in pos]
            uniform = np.asarray(uniform[:k], dtype=np.int64)
            rest = flat.copy()
            rest[uniform] = -np.inf
            extra = _top(rest, k - uniform.size)
            return np.sort(np.unique(np.concatenate([uniform, extra]))), True
    return np.sort(_top(flat, k)).astype(np.int64), False


def _mv_qpel(inp, height: int, width: int, estimated: bool) -> np.ndarray | None:
    if estimated:
        if inp.luma is None or inp.prev_luma is None:
            return None
        return estimated_mv_grid(inp.luma, inp.prev_luma)[:, :, :2].astype(np.float32) * 4.0
    if inp.mvs is None:
        return None
    m = inp.mvs
    scale = np.maximum(m["motion_scale"].astype(np.float64), 1.0)
    qx = np.rint(m["motion_x"] * 4.0 / scale).astype(np.int32)  # quarter pixels whatever the codec's unit
    qy = np.rint(m["motion_y"] * 4.0 / scale).astype(np.int32)
    ones = np.ones_like(qx)
    grid = smear_partition_mvs(m["source"], m["w"], m["h"], m["dst_x"], m["dst_y"], qx, qy, ones, height, width)
    return grid[:, :, :2].astype(np.float32)


def run_ap(video, rec, *, budget: int | None, residual: str, signals: str, inconsistency: bool,
           static_fallback: bool, deadline: float | None = None) -> Selection:
    """``run_recipe(..., "onevision-ap")`` (see :func:`codec_select.recipes.select.run_recipe`)."""
    t_total = time.perf_counter()
    path = os.fspath(video)
    info = probe(path)
    estimated, why_signals, fell_back = signal_choice(info, signals)
    source, why_residual = choose_residual(residual, info.codec, estimated, stock_for_hevc=False)
    k = rec.budget if budget is None else int(budget)
    grid_cells = NUM_SLOTS * (SIZE // PATCH) ** 2
    if not 1 <= k <= grid_cells:
        raise ValueError(f"Invalid budget ({k}). It must be between 1 and {grid_cells}.")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    notes = [f"recipe {rec.name}: residual picture {source!r} ({why_residual})"]
    # The loader scores the residual picture's luma only, so the emulation skips chroma (same luma, a third less work).
    dec = decode_slots(path, info, signals=signals, residual=source, estimated=estimated, fell_back=fell_back,
                       notes=notes, deadline=deadline, luma_only=True)
    frame_ids, inputs, h0, w0, n = dec.frame_ids, dec.inputs, dec.height, dec.width, dec.report.frames_found
    timings["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    keys = [int(f) for f in sorted(set(frame_ids.tolist())) if inputs[int(f)].pict_type == "I"][:MAX_I_FRAMES]
    last_pos = {int(f): t for t, f in enumerate(frame_ids.tolist())}  # the loader fills one slot per frame id
    g = SIZE // PATCH
    scores = np.zeros((NUM_SLOTS, g, g), dtype=np.int64)
    for fid, t in last_pos.items():
        if fid in keys:
            continue
        inp = inputs[fid]
        luma = None if inp.planes is None else inp.planes[0]
        energy = ap_frame_energy(_mv_qpel(inp, h0, w0, estimated), luma, h0, w0, inconsistency=inconsistency)
        scores[t] = _crop_scores(energy)
    timings["signals"] = time.perf_counter() - t0
    idx, static = ap_select(scores.reshape(NUM_SLOTS, -1), k, static_fallback=static_fallback)
    timings["total"] = time.perf_counter() - t_total
    geo = make_geometry("ap224", h0, w0)
    extra = (f"key frames zeroed at ids {keys}", "static fallback fired" if static else "top-K (not static)")
    report = replace(dec.report, signals_reason=why_signals, notes=dec.report.notes + extra)
    stamps = np.array([inputs[int(i)].time for i in frame_ids.tolist()], dtype=np.float64)
    return Selection(
        visible_indices=idx.astype(np.int64), frame_ids=frame_ids, timestamps=stamps,
        scores=(scores / float(PATCH * PATCH * 255)).astype(np.float32), geometry=geo,
        signals="estimated-motion" if estimated else "codec-mv", codec=info.codec, policy=rec.policy, video=path,
        num_frames=n, mode="full", timings={key: round(float(v), 6) for key, v in timings.items()},
        options={"recipe": rec.name, "budget": k, "geometry": rec.geometry, "policy": rec.policy,
                 "first_full": False, "accumulate": False, "motion_compensation": "similarity",
                 "residual": source, "residual_reason": why_residual, "signals": signals,
                 "mv_use_inconsistency": inconsistency, "static_fallback": static_fallback, "static": static},
        report=report,
    )
