"""LLaVA-OneVision-2 input from codec signals: canvases + source positions, a drop-in for codec-video-prep's files.

Contract: ../shared/reference/llava_ov2_prep.md. :func:`prepare_llava_ov2` samples frames (``uniform_count`` or
``fps``, keyframes avoided), groups them (``fixed`` chunks, the tail kept), and per group writes ``ipg`` canvases
of the Qwen geometry (:func:`~codec_select.qwen_geometry.smart_resize`): the anchor frame whole, then the top-K 2×2
blocks of the group's other frames. Output folder::

    canvas_{i:03d}.jpg        # or .png; i global, group g owns [g·ipg, (g+1)·ipg)
    src_patch_position.npy    # int32 [C·S_full, 3], row c·S_full + h·wb + w = [fid, h, w]; padding [-1, -1, -1]
    frame_ids.npy             # int32 [n_sampled], display-order ids after keyframe avoidance
    meta.json                 # fps, hb_wb, S_full, groups, total_images, ... (written last: its presence = done)

Block scores are the codec energy of :class:`~codec_select.signals.FrameScorer` (motion vectors + motion-compensated
residual, camera motion removed; estimated motion for codecs without vectors) pooled onto the 14-px patch grid with
the same :class:`~codec_select.signals.CanvasPooler` as the 64-slot selector, accumulated since the previous sampled
frame, summed per block. The reference scores per-macroblock bit cost, which stock FFmpeg does not export.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..decode.container import probe
from ..decode.pixels import read_frames
from ..decode.reader import iter_frames
from ..decode.timeline import read_timeline
from ..errors import DecodeError, UnsupportedVideoError
from ..geometry import Geometry, make_geometry
from ..qwen_geometry import QWEN_MAX_PIXELS
from ..report import build_report
from ..signals import CanvasPooler, FrameScorer
from .ov2_blocks import (
    BLOCK_POLICIES,
    PAD,
    accumulated_scores,
    block_scores,
    group_budget,
    pack_group,
    render_canvases,
    select_blocks,
)
from .ov2_frames import (
    DEFAULT_NUM_FRAMES,
    DEFAULT_SAMPLE_FPS,
    fixed_groups,
    frame_is_bad,
    sample_frame_ids,
)
from .ov2_readiness import readiness_groups

__all__ = ["FRAME_IDS_NAME", "META_NAME", "POSITIONS_NAME", "Ov2Result", "prepare_llava_ov2", "write_llava_ov2"]

META_NAME = "meta.json"
POSITIONS_NAME = "src_patch_position.npy"
FRAME_IDS_NAME = "frame_ids.npy"
PIXEL_CHUNK_BYTES = 256 << 20
"""Source-size RGB frames decoded per pixel pass at most (several groups per pass; bounded memory)."""


@dataclass
class Ov2Result:
    """One video's LLaVA-OneVision-2 input."""

    canvases: np.ndarray
    """uint8 [C, H, W, 3] RGB canvases, group-major (group g owns ``[g·ipg, (g+1)·ipg)``)."""
    positions: np.ndarray
    """int32 [C·S_full, 3]: (fid, h, w) of every canvas patch, canvas raster order; padding [−1, −1, −1]."""
    frame_ids: np.ndarray
    """int32 [n_sampled]: sampled display-order frame ids."""
    meta: dict
    """What meta.json holds (fps, hb_wb, S_full, groups, ...)."""
    out_dir: Path | None = None
    files: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return float(self.meta.get("fps") or 30.0)

    @property
    def hb_wb(self) -> tuple[int, int]:
        return tuple(self.meta["hb_wb"])


def _frame_energy(path: str, geo: Geometry, rotation: int, *, estimated: bool, score: bool) -> tuple:
    """One decode of every frame: per-frame energy pooled on the patch grid [N, hb, wb] (zeros when not
    ``score``), presentation times [N], decoder key-frame flags [N], frames that carried codec vectors."""
    pooler = CanvasPooler(geo, rotation)
    pooled: list[np.ndarray] = []
    times: list[float] = []
    keys: list[bool] = []
    box: list[FrameScorer] = []

    def sink(index: int, energy: np.ndarray, means: np.ndarray) -> None:
        pooled.append(pooler.energy(energy, box[0].cell_px))

    for frame in iter_frames(path, export_mvs=score and not estimated, fast=True):
        times.append(frame.time)
        keys.append(frame.key_frame)
        if score:
            if not box:
                h, w = frame.luma.shape
                box.append(FrameScorer(h, w, estimated=estimated, sink=sink))
            box[0].push(frame)
    if box:
        box[0].flush()
    n = len(times)
    energy = np.stack(pooled) if score else np.zeros((n, geo.grid_h, geo.grid_w), np.float32)
    return energy, np.asarray(times), np.asarray(keys, dtype=bool), box[0].frames_with_mvs if box else 0


def _keyframes(timeline, times: np.ndarray, decoder_keys: np.ndarray) -> np.ndarray:
    """Display-order keyframe indices: the container's key packets on the packet timeline (what the reference
    reads from ``stss``); the decoder's key flags when the packets carry no timestamps or disagree in count."""
    if timeline is not None and timeline.times.size == times.size:
        idx = np.searchsorted(timeline.times, timeline.keyframe_times)
        return np.unique(np.concatenate([[0], idx[idx < times.size]])).astype(np.int64)
    return np.unique(np.concatenate([[0], np.flatnonzero(decoder_keys)])).astype(np.int64)


def _block_thumbs(canvas: np.ndarray, hb: int, wb: int, patch: int) -> np.ndarray:
    """float32 [hb/2 · wb/2, 4]: mean luma of the 4 patches of every block (raster block order, patch order
    (0,0), (0,1), (1,0), (1,1))."""
    y = canvas.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    means = y.reshape(hb, patch, wb, patch).mean(axis=(1, 3))
    return means.reshape(hb // 2, 2, wb // 2, 2).transpose(0, 2, 1, 3).reshape(-1, 4)


def _decode_canvases(path: str, geo: Geometry, ids: np.ndarray, stamps: np.ndarray | None) -> dict[int, np.ndarray]:
    """Canvas RGB of frames ``ids`` found by presentation timestamp (by display-order count without timestamps)."""
    ids = np.asarray(ids, dtype=np.int64)
    frames = read_frames(path, ids, rgb=True, timestamps=stamps)
    return {int(i): geo.to_canvas(f) for i, f in zip(ids, frames)}


def prepare_llava_ov2(
    video: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    sampling: str = "uniform_count",
    num_sampled: int = DEFAULT_NUM_FRAMES,
    sample_fps: float = DEFAULT_SAMPLE_FPS,
    avoid_keyframes: bool = True,
    grouping: str = "fixed",
    group_size: int = 32,
    images_per_group: int = 4,
    tail: str = "merge",
    max_pixels: int = QWEN_MAX_PIXELS,
    blocks: str = "refresh",
    accumulate: bool = True,
    signals: str = "auto",
    filter_bad: bool = True,
    image_format: str = "jpg",
    quality: int = 95,
) -> Ov2Result:
    """Build one video's LLaVA-OneVision-2 canvases and positions (and write them to ``out_dir`` when given).

    Args:
        sampling: ``"uniform_count"`` (``num_sampled`` frames, linspace truncated) or ``"fps"`` (``sample_fps``).
        avoid_keyframes: move sampled keyframes to a non-key neighbour (they carry no motion signal).
        grouping: ``"fixed"`` (chunks of ``group_size``) or ``"readiness"`` (groups of 8–64 frames that grow until
            their top-K block energy reaches the mean of fixed chunks', :mod:`codec_select.ov2_readiness`).
        group_size, images_per_group: chunk size; each group gets ``images_per_group`` canvases.
        tail: a last chunk shorter than ``images_per_group`` frames is ``"merge"``d into the group before it, or
            kept as its ``"own"`` group (its canvases may then hold padding). No frame is ever dropped.
        max_pixels: canvas area bound of :func:`~codec_select.qwen_geometry.smart_resize` (150000 in the
            reference's LLaVA integration gives the same canvas for 640×360).
        blocks: ``"refresh"`` (drift-aware: a block is re-sent once its pixels drifted from what was last sent
            plus the codec energy it gathered reaches a threshold, the 64-slot selector's default rule), ``"energy"``
            (top-K codec energy) or ``"uniform"`` (whole frames evenly spaced: the baseline at equal token count).
        accumulate: score a frame by the energy since the previous sampled frame (False: its own energy).
        signals: ``"auto"`` (codec vectors where exported, else estimated motion) or ``"estimated-motion"``.
        filter_bad: black / solid / green-corrupt frames are never candidates and never anchors (when avoidable).
        image_format, quality: ``jpg`` (4:4:4, ``quality``) or lossless ``png`` canvases.
    """
    t_start = time.perf_counter()
    path = os.fspath(video)
    if blocks not in BLOCK_POLICIES:
        raise ValueError(f"Invalid blocks ({blocks!r}). Supported values are {', '.join(BLOCK_POLICIES)}.")
    if signals not in ("auto", "estimated-motion"):
        raise ValueError(f"Invalid signals ({signals!r}). Supported values are auto, estimated-motion.")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"Invalid image_format ({image_format!r}). Supported values are jpg, png.")
    if grouping not in ("fixed", "readiness") or (grouping == "readiness" and blocks == "uniform"):
        raise ValueError(f"Invalid grouping ({grouping!r}) for blocks={blocks!r}. Supported values are fixed, "
                         "readiness (the latter needs codec scores: not with blocks='uniform').")
    if group_size < 1 or images_per_group < 1:
        raise ValueError(f"Invalid group_size / images_per_group ({group_size!r}, {images_per_group!r}): >= 1.")
    info = probe(path)
    up_h, up_w = info.upright_hw
    if up_h < 1 or up_w < 1:
        raise UnsupportedVideoError(f"{path}: the video has no pixels ({info.width}x{info.height}); re-encode it.")
    geo = make_geometry("qwen", up_h, up_w, max_pixels=max_pixels)
    hb, wb = geo.grid_h, geo.grid_w
    s_full = hb * wb
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    score = blocks != "uniform"
    estimated = signals == "estimated-motion" or not info.has_codec_mvs
    energy, times, dec_keys, frames_mv = _frame_energy(path, geo, info.rotation, estimated=estimated, score=score)
    n = times.size
    fell_back = False
    if score and not estimated and frames_mv == 0 and n > 1:  # an MV codec that exported nothing: estimate motion
        estimated = fell_back = True
        energy, times, dec_keys, _ = _frame_energy(path, geo, info.rotation, estimated=True, score=True)
        n = times.size
    if n == 0:
        raise DecodeError(f"{path}: no frame decoded.")
    timings["decode_signals"] = time.perf_counter() - t0
    fps = info.fps if 0.1 < info.fps < 1000 else (n / info.duration if info.duration else 30.0)
    timeline = read_timeline(path)
    # Whole or partial, signals and why: the same report a 64-slot selection carries (never passed off as whole).
    report = build_report(
        info, requested=signals, estimated=estimated, fell_back=fell_back, frames_decoded=n, frames_found=n,
        reached=float(timeline.end) if timeline is not None else math.nan, stopped_early="", failed_packets=0,
        exact=timeline is not None, offset=0, start=None, end=None,
    )
    keyframes = _keyframes(timeline, times, dec_keys)
    ids = sample_frame_ids(n, fps, sampling=sampling, num_sampled=num_sampled, sample_fps=sample_fps,
                           keyframes=keyframes if avoid_keyframes else None)
    frame_scores = block_scores(accumulated_scores(energy, ids) if accumulate else energy[ids].astype(np.float64))
    k = group_budget(images_per_group, s_full)
    if grouping == "readiness":
        specs = readiness_groups(frame_scores.reshape(ids.size, -1), k, images_per_group, group_size=group_size)
    else:
        specs = fixed_groups(ids.size, group_size, min_tail=images_per_group, tail=tail)
    block_area = 4.0 * (up_h / hb) * (up_w / wb)  # source pixels under one 2x2 block
    stamps = times[ids] if timeline is not None and np.all(np.isfinite(times)) else None
    t0 = time.perf_counter()
    canvases, positions, groups = [], [], []
    per_pass = max(1, PIXEL_CHUNK_BYTES // (up_h * up_w * 3))
    g = 0
    while g < len(specs):  # several groups per pixel pass, bounded by PIXEL_CHUNK_BYTES of source frames
        last = g
        while last + 1 < len(specs) and specs[last + 1].end - specs[g].start <= per_pass:
            last += 1
        sel = slice(specs[g].start, specs[last].end)
        pixels = _decode_canvases(path, geo, ids[sel], None if stamps is None else stamps[sel])
        for spec in specs[g : last + 1]:
            members = ids[spec.start : spec.end].astype(np.int64)
            scores = frame_scores[spec.start : spec.end]
            bad = [frame_is_bad(pixels[int(f)]) if filter_bad else "" for f in members]
            order = np.arange(members.size)
            good = np.flatnonzero([not b for b in bad])
            swapped = None
            if bad[0] and good.size:  # the first good frame takes the anchor's place
                j = int(good[0])
                order[[0, j]] = order[[j, 0]]
                swapped = int(members[j])
            members, scores = members[order], scores[order]
            candidate = np.array([not bad[i] for i in order], dtype=bool)
            candidate[0] = False
            thumbs = None
            if blocks == "refresh":  # what the drift rule compares: the 4 patch means of every block, per frame
                thumbs = np.stack([_block_thumbs(pixels[int(f)], hb, wb, geo.patch) for f in members])
                scores = scores / block_area  # block-area units: 1.0 = a fully busy block for one frame
            chosen = select_blocks(scores, candidate, k, policy=blocks, thumbs=thumbs)
            absolute = np.column_stack([members[chosen[:, 0]], chosen[:, 1:]]) if chosen.size else chosen
            pos = pack_group(int(members[0]), absolute, hb, wb, images_per_group)
            canvases.append(render_canvases(pos, pixels, hb, wb, geo.patch))
            positions.append(pos)
            per_frame = np.bincount(chosen[:, 0], minlength=members.size) if chosen.size else np.zeros(members.size)
            groups.append({
                "frame_ids": members.tolist(), "global_img_offset": len(groups) * images_per_group,
                "num_canvases": images_per_group, "selected_blocks": int(chosen.shape[0]),
                "selected_blocks_per_frame": {str(i): int(c) for i, c in enumerate(per_frame) if c},
                "padding_blocks": int(k - chosen.shape[0]), "anchor_swapped_in": swapped,
                "bad_frames": {str(int(members[i])): bad[o] for i, o in enumerate(order) if bad[o]},
            })
        g = last + 1
    timings["pixels_select_pack"] = time.perf_counter() - t0
    positions_arr = np.concatenate(positions) if positions else np.zeros((0, 3), np.int32)
    canvases_arr = np.concatenate(canvases) if canvases else np.zeros((0, geo.canvas_h, geo.canvas_w, 3), np.uint8)
    total = len(groups) * images_per_group
    ext = "jpg" if image_format == "jpg" else "png"
    meta = {
        "fps": fps, "hb_wb": [hb, wb], "S_full": s_full, "orig_hw": [up_h, up_w],
        "processed_hw": [geo.canvas_h, geo.canvas_w], "resize_hw": [geo.canvas_h, geo.canvas_w],
        "padded_hw": [geo.canvas_h, geo.canvas_w], "pad_bottom_right": [0, 0],
        "total_frames": int(n), "sampled_frames": int(ids.size),
        "sampling_debug": {"mode": sampling, "requested": int(num_sampled) if sampling == "uniform_count" else None,
                           "sample_fps": sample_fps if sampling == "fps" else None,
                           "avoid_keyframes": bool(avoid_keyframes)},
        "keyframes_found": int(keyframes.size), "keyframes": keyframes.tolist(),
        "num_groups": len(groups), "total_images": total, "total_patches": int(positions_arr.shape[0]),
        "padding_patches": int((positions_arr[:, 0] == PAD).sum()) if positions_arr.size else 0,
        "canvas_files": [f"canvas_{i:03d}.{ext}" for i in range(total)],
        "jpg_files": [f"canvas_{i:03d}.{ext}" for i in range(total)],
        "frame_times": [float(t) for t in times[ids]],
        "group_specs": [s.to_dict() for s in specs],
        "groups": groups,
        "config": {"sampling": sampling, "num_sampled": num_sampled, "sample_fps": sample_fps,
                   "avoid_keyframes": avoid_keyframes, "grouping_mode": grouping, "group_size": group_size,
                   "images_per_group": images_per_group, "tail": tail, "patch": geo.patch, "max_pixels": max_pixels,
                   "blocks": blocks, "accumulate": accumulate, "filter_bad": filter_bad,
                   "image_format": image_format, "quality": quality},
        "metadata": {"video": path, "codec": info.codec, "signals": "estimated-motion" if estimated else "codec-mv",
                     "block_score": "codec energy (FrameScorer), pooled per 14-px patch, summed per 2x2 block"
                     if score else "none (uniform frames)"},
        "decode_backend": "pyav",
        "report": report.to_dict(),
    }
    timings["total"] = time.perf_counter() - t_start
    meta["timing_sec"] = meta["timings"] = {key: round(v, 6) for key, v in timings.items()}
    result = Ov2Result(canvases_arr, positions_arr, ids.astype(np.int32), meta)
    if out_dir is not None:
        write_llava_ov2(result, out_dir, image_format=image_format, quality=quality)
    return result


def write_llava_ov2(result: Ov2Result, out_dir: str | os.PathLike, *, image_format: str | None = None,
                    quality: int | None = None) -> Path:
    """Write ``result`` into ``out_dir`` atomically: everything goes into a temp folder beside it that is renamed
    into place, meta.json last, so ``out_dir/meta.json`` exists only for a complete output (and a rerun that finds
    it can skip the video). An existing ``out_dir`` is replaced. ``image_format`` / ``quality`` default to the
    result's config (``jpg`` 4:4:4 at 95, or lossless ``png``)."""
    from PIL import Image

    config = result.meta.setdefault("config", {})
    image_format = image_format or config.get("image_format", "jpg")
    quality = int(quality or config.get("quality", 95))
    if image_format not in ("jpg", "png"):
        raise ValueError(f"Invalid image_format ({image_format!r}). Supported values are jpg, png.")
    names = [f"canvas_{i:03d}.{image_format}" for i in range(len(result.canvases))]
    config.update(image_format=image_format, quality=quality)
    result.meta["canvas_files"] = result.meta["jpg_files"] = names

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for name, image in zip(names, result.canvases):
        if image_format == "jpg":  # 4:4:4: blocks of unrelated frames sit side by side; 4:2:0 bleeds colour
            Image.fromarray(image).save(tmp / name, format="JPEG", quality=int(quality), subsampling=0)
        else:
            Image.fromarray(image).save(tmp / name, format="PNG", compress_level=3)
    np.save(tmp / POSITIONS_NAME, result.positions.astype(np.int32))
    np.save(tmp / FRAME_IDS_NAME, result.frame_ids.astype(np.int32))
    (tmp / META_NAME).write_text(json.dumps(result.meta, indent=2))
    if out.exists():
        old = out.with_name(f".{out.name}.{os.getpid()}.old.tmp")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)
    result.out_dir = out
    result.files = [str(out / nm) for nm in names] + [str(out / POSITIONS_NAME), str(out / FRAME_IDS_NAME),
                                                       str(out / META_NAME)]
    return out
