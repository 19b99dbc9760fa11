"""Selection: decode once, score every patch cell of the 64-slot grid, spend the budget with a policy.

``select_patches`` is the orchestration: validate → decode + per-frame energy (signals.py) → pool onto the canvas
grid (the same transform as the pixels) → accumulate per slot → policy → :class:`Selection`.
The policies (pure functions on score arrays) are in :mod:`codec_select.policies`.
"""

from __future__ import annotations

import os
import time
from typing import Literal

import numpy as np

from . import signals
from ._worker import Consumer
from .decode.container import probe
from .decode.frames import DecodedFrame
from .decode.plan import MODES, choose_mode, plan_stream
from .decode.reader import iter_frames
from .decode.timeline import window_offset
from .decode.windowed import select_windowed
from .errors import DecodeError, UnsupportedVideoError
from .geometry import GEOMETRIES, Geometry, make_geometry
from .policies import POLICIES, apply_policy
from .report import build_report
from .selection import Selection, frame_grid
from .signals import COMPENSATIONS, CanvasPooler, FrameScorer

__all__ = ["select_patches", "default_budget", "kernels_needed", "consumer_options", "CONSUMER_RECIPES", "frame_grid", "DEFAULT_POLICY", "SIGNALS"]

SIGNALS = ("auto", "codec-mv", "estimated-motion")
DEFAULT_POLICY = "refresh"
"""Measured (``codec-select bench``, README "Results"): on hold PSNR and feature retention the gain of ``refresh``
comes from its slot-frame thumbnails — the same rule without codec energy (the bench's ``pixel-drift``) is within
−0.86..+0.14 dB and cheaper — while the codec energy pays off only as motion saliency ranked by ``topk`` (object
recall under camera motion and brightness flicker). Where a selection feeds the encoder, the default is the
reference recipe of the geometry instead (:func:`consumer_options`)."""


CONSUMER_RECIPES = {"llava576": "onevision-stage1", "ap224": "onevision-ap"}
"""The recipe a selection that feeds the encoder uses by default, per geometry: OneVision-Encoder and the LLaVA
models on it were trained and evaluated on these selections (:mod:`codec_select.recipes.select`)."""
RECIPE_FREE_OPTIONS = frozenset({"budget", "signals", "timeout", "decode_threads", "progress", "fast_decode"})
"""Options that keep the consumer default (they apply to, or do not matter for, a recipe run)."""


def consumer_options(geometry: str, options: dict) -> dict:
    """:func:`select_patches` options for a selection that feeds the encoder (``select_and_encode``, the LLaVA and
    stage-1 exports): the faithful recipe of ``geometry`` (:data:`CONSUMER_RECIPES`), unless the caller asked for a
    recipe, a policy or anything else a recipe does not do — then exactly the caller's options."""
    chosen = {"geometry": geometry, **options}
    if "recipe" in options or geometry not in CONSUMER_RECIPES or set(options) - RECIPE_FREE_OPTIONS:
        return chosen
    return {**chosen, "recipe": CONSUMER_RECIPES[geometry]}


def kernels_needed(*, policy: str = DEFAULT_POLICY, motion_compensation: str = "median",
                   signals: str = "auto") -> list[str]:
    """Names of :data:`codec_select.kernels.WARMUP_STEPS` a :func:`select_patches` run with these options compiles,
    so a first run compiles only those (the CLI warms them up front and says why it waits). ``signals="auto"``
    counts on codec vectors; a codec without them compiles block matching on first use."""
    steps = ["frame_change", "block_means", "pool_cells", "pool_cells_planned"]
    if signals == "estimated-motion":
        steps += ["block_match", "normalise_p95", "fuse_energy"]
    else:
        steps += ["rasterise_mvs", "mc_residual", "fuse_energy"]
    if motion_compensation == "similarity":
        steps.append("compensate_similarity")
    steps += {"refresh": ["refresh_drift_select"], "topk": ["topk_cells"]}.get(policy, [])
    return steps


def default_budget(geometry: Geometry) -> int:
    """K when the caller gives none: 16 full frames on ``ap224``/``native`` (4096), 8 on ``llava576`` (10368)."""
    return (8 if geometry.name == "llava576" else 16) * geometry.cells


# ---------------------------------------------------------------------------------------------------------------


def _pooled_energy(
    path: str,
    geometry: Geometry,
    rotation: int,
    *,
    estimated: bool,
    compensation: str,
    fast_decode: bool,
    start: float | None,
    end: float | None,
    progress: bool,
    deadline: float | None,
    threads: int = 0,
    stats: dict | None = None,
    slots: frozenset[int] | None = None,
    accumulate: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, dict]:
    """Decode every frame, score it, pool it onto the canvas grid. Returns (E [N, Hp, Wp], thumbnails
    [N, 2Hp, 2Wp] float16, times [N], frames with codec MVs, damaged frames, timings). Decoding runs on this thread,
    scoring on a worker (numba releases the GIL).

    ``slots``: the display indices the 64 slots will show, when the packet timeline tells them before decoding:
    thumbnails are then made for those frames only, and with ``accumulate=False`` energy too (zeros elsewhere; the
    caller checks the decoded count against the plan and redoes the pass unrestricted if they differ)."""
    pooler = CanvasPooler(geometry, rotation)
    pooled: list[np.ndarray] = []
    thumbs: list[np.ndarray] = []
    times: list[float] = []
    timings = {"decode": 0.0, "signals": 0.0}
    clock = signals.STAGE_CLOCK  # the throughput benchmark's stage profile (None: off)

    no_energy = np.zeros((geometry.grid_h, geometry.grid_w), np.float32)
    no_thumbs = np.zeros((2 * geometry.grid_h, 2 * geometry.grid_w), np.float16)

    def sink(index: int, energy: np.ndarray | None, means: np.ndarray | None) -> None:
        t = time.thread_time() if clock is not None else 0.0
        pooled.append(no_energy if energy is None else pooler.energy(energy, scorer_box[0].cell_px))
        if clock is not None:
            t = clock.lap("pooling", t)
        thumbs.append(no_thumbs if means is None else pooler.thumbnails(means))
        if clock is not None:
            clock.lap("thumbnails", t)

    scorer_box: list[FrameScorer] = []

    def handle(batch: list[DecodedFrame]) -> None:
        if not scorer_box:
            h, w = batch[0].luma.shape
            scorer_box.append(FrameScorer(h, w, estimated=estimated, compensation=compensation, sink=sink,
                                          means_region=pooler.means_region(h, w), means_for=slots,
                                          energy_for=None if accumulate else slots))
        for item in batch:
            scorer_box[0].push(item)

    def finish() -> None:
        if scorer_box:
            scorer_box[0].flush()

    # Frames travel in batches: a queue hand-off per frame (lock, wake-up of the other thread) cost ~45 µs of CPU a
    # frame, 12 % of decoding a 360p frame (measured); per 8 frames it costs ~15. Still 32 frames in flight at most.
    batch_frames = 8
    scoring = Consumer(handle, finish=finish, name="codec-select-score", maxsize=32 // batch_frames)
    batch: list[DecodedFrame] = []
    damaged = 0
    stats = {} if stats is None else stats  # iter_frames reports failed packets, a damaged tail, how far it got
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=os.path.basename(path), unit="frame", leave=False)
    t_start = time.perf_counter()
    t_thread = time.thread_time() if clock is not None else 0.0
    try:
        for frame in iter_frames(
            path, export_mvs=not estimated, fast=fast_decode, start=start, end=end, stats=stats, threads=threads,
            copy_luma=False,  # FrameScorer copies each plane into its ring
        ):
            if scoring.error is not None:
                break
            damaged += frame.corrupt
            times.append(frame.time)
            batch.append(frame)
            if len(batch) == batch_frames:
                scoring.put(batch)
                batch = []
            if bar is not None:
                bar.update(1)
            if deadline is not None and time.perf_counter() > deadline:
                from .errors import SelectionTimeoutError

                raise SelectionTimeoutError(
                    f"{path}: the per-video time budget ran out after {len(times)} frames. Raise the timeout or "
                    "select over a shorter time window."
                )
        if batch and scoring.error is None:
            scoring.put(batch)
    finally:
        if clock is not None:
            clock.lap("decode_thread", t_thread)
        scoring.close()
        if bar is not None:
            bar.close()
    timings["decode"] = time.perf_counter() - t_start  # wall time of the decode loop (scoring overlaps it)
    timings["signals"] = scoring.seconds
    if scoring.error is not None:
        raise scoring.error
    damaged += stats.get("decode_errors", 0)
    if not pooled:
        raise DecodeError(f"{path}: no frame decoded inside the requested window; check start/end.")
    frames_mv = scorer_box[0].frames_with_mvs if scorer_box else 0
    return np.stack(pooled), np.stack(thumbs), np.asarray(times, dtype=np.float64), frames_mv, damaged, timings


def slot_scores(energy: np.ndarray, frame_ids: np.ndarray, *, accumulate: bool) -> np.ndarray:
    """Per-slot energy [64, Hp, Wp]: slot k sums frames in (ids[k−1], ids[k]] (or frame ids[k] alone)."""
    if not accumulate:
        return energy[frame_ids].astype(np.float32)
    csum = np.concatenate([np.zeros((1,) + energy.shape[1:], np.float64), np.cumsum(energy, axis=0, dtype=np.float64)])
    upper = csum[frame_ids + 1]
    lower = np.concatenate([np.zeros((1,) + energy.shape[1:]), csum[frame_ids[:-1] + 1]])
    out = (upper - lower).astype(np.float32)
    out[0] = energy[frame_ids[0]]
    return np.maximum(out, 0.0)


def _select_with_recipe(
    video, recipe: str, *, budget: int | None, signals: str, timeout: float | None, given: dict
) -> Selection:
    """``select_patches(recipe=...)``: validate the recipe and the arguments it fixes, then run it."""
    import inspect

    from .recipes.select import check_recipe_args, get_recipe, run_recipe

    rec = get_recipe(recipe)
    defaults = {k: p.default for k, p in inspect.signature(select_patches).parameters.items()}
    check_recipe_args(rec, given, defaults)
    return run_recipe(video, rec.name, budget=budget, signals=signals, timeout=timeout)


def select_patches(
    video: str | os.PathLike,
    *,
    budget: int | None = None,
    geometry: str = "ap224",
    policy: str = DEFAULT_POLICY,
    first_full: bool = True,
    accumulate: bool = True,
    motion_compensation: str = "median",
    signals: str = "auto",
    start: float | None = None,
    end: float | None = None,
    fast_decode: bool = True,
    max_cells: int = 256,
    timeout: float | None = None,
    progress: bool = False,
    mode: Literal["auto", "full", "windowed"] = "auto",
    decode_threads: int = 0,
    recipe: str | None = None,
) -> Selection:
    """Choose ``budget`` patch cells of ``video`` on the 64-slot grid from its codec signals.

    Args:
        video: path of the video file.
        budget: K, the number of cells to keep (default: 4096 on ``ap224``/``native``-sized grids of 256 cells,
            10368 on ``llava576``).
        geometry: ``"ap224"`` (224 crop, 16×16 cells of 14 px), ``"llava576"`` (576 letterbox, 36×36 of 16 px) or
            ``"native"`` (aspect kept, ≤ ``max_cells`` cells of 14 px).
        policy: ``"refresh"`` (default, drift-aware), ``"topk"`` (the reference's global top-K) or ``"uniform"``.
        first_full: keep every cell of slot 0 (inside K).
        accumulate: slot k gathers the energy of every decoded frame since slot k−1 (False = frame ids[k] alone).
        motion_compensation: camera-motion removal, ``"median"``, ``"similarity"`` or ``"none"``.
        signals: ``"auto"`` (codec vectors where the codec exports them, else estimated motion), ``"codec-mv"`` or
            ``"estimated-motion"``.
        start, end: optional time window in seconds.
        fast_decode: skip the deblocking filter while decoding (identical vectors, ~20 % faster).
        timeout: per-video time budget in seconds (raises :class:`~codec_select.errors.SelectionTimeoutError`).
        progress: show a progress bar over decoded frames.
        mode: ``"full"`` decodes every frame; ``"windowed"`` decodes a short window before each slot (long
            videos, bounded cost; :mod:`codec_select.decode.windowed`); ``"auto"`` picks windowed when the video is long
            relative to the 64 slots (:func:`codec_select.decode.plan.choose_mode`).
        decode_threads: FFmpeg decoder threads (0 = FFmpeg's choice; batch workers use 1 and get parallelism from
            processes). With MV export these are slice threads only.
        recipe: reproduce a OneVision reference selector literally (:mod:`codec_select.recipes.select`):
            ``"onevision-stage1"`` (LLaVA stage-1 data, llava576, K 10368) or ``"onevision-ap"`` (attentive-probe
            loader, ap224, K 4096). The recipe sets geometry, policy, first_full, accumulate and
            motion_compensation; setting one of them (or start/end, mode="windowed") to something else raises
            ``ValueError``. ``budget``, ``signals`` and ``timeout`` apply; ``fast_decode``, ``decode_threads`` and
            ``progress`` do not (a recipe decodes as the reference's decoder does, slice threads only).
    """
    if recipe is not None:
        return _select_with_recipe(
            video, recipe, budget=budget, signals=signals, timeout=timeout,
            given={"geometry": geometry, "policy": policy, "first_full": first_full, "accumulate": accumulate,
                   "motion_compensation": motion_compensation, "mode": mode, "start": start, "end": end},
        )
    t_total = time.perf_counter()
    path = os.fspath(video)
    if geometry not in GEOMETRIES:
        raise ValueError(f"Invalid geometry ({geometry!r}). Supported values are {', '.join(GEOMETRIES)}.")
    if policy not in POLICIES:
        raise ValueError(f"Invalid policy ({policy!r}). Supported values are {', '.join(POLICIES)}.")
    if motion_compensation not in COMPENSATIONS:
        raise ValueError(
            f"Invalid motion_compensation ({motion_compensation!r}). Supported values are {', '.join(COMPENSATIONS)}."
        )
    if signals not in SIGNALS:
        raise ValueError(f"Invalid signals ({signals!r}). Supported values are {', '.join(SIGNALS)}.")
    if mode not in MODES:
        raise ValueError(f"Invalid mode ({mode!r}). Supported values are {', '.join(MODES)}.")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"Invalid time window: end ({end}) must be after start ({start}).")
    info = probe(path)
    up_h, up_w = info.upright_hw
    if up_h < 1 or up_w < 1:
        raise UnsupportedVideoError(f"{path}: the video has no pixels ({info.width}x{info.height}); re-encode it.")
    geo = make_geometry(geometry, up_h, up_w, max_cells=max_cells)
    k = default_budget(geo) if budget is None else int(budget)
    if signals == "codec-mv" and not info.has_codec_mvs:
        raise UnsupportedVideoError(
            f"{path}: codec {info.codec} exports no motion vectors; use signals='auto' or 'estimated-motion'."
        )
    estimated = signals == "estimated-motion" or (signals == "auto" and not info.has_codec_mvs)
    asked_estimated = estimated
    deadline = None if timeout is None else t_total + float(timeout)
    run_mode = "full"
    if mode != "full":
        plan = plan_stream(path, info, start=start, end=end)
        run_mode = choose_mode(plan) if mode == "auto" else "windowed"
    if run_mode == "windowed":
        res, estimated = select_windowed(
            path, info, plan, geo, estimated=estimated, compensation=motion_compensation, fast_decode=fast_decode,
            accumulate=accumulate, deadline=deadline, decode_threads=decode_threads,
        )
        n, frame_ids, stamps, slot_thumbs, damaged, timings = (
            res.num_frames, res.frame_ids, res.timestamps, res.thumbnails, res.damaged, res.timings)
        scores = res.scores * geo.valid_mask()[None]
        timeline = plan.timeline
        decode = {"frames_decoded": res.decoded, "reached": timeline.end if timeline is not None else float("nan"),
                  "stopped_early": res.stopped_early, "failed_packets": res.failed_packets, "exact": plan.exact,
                  "offset": plan.first_index if plan.exact else int(round((plan.t0 - info.start_time) * plan.fps))}
    else:
        stats: dict = {}
        # The packet timeline tells the slot frames before decoding: only they get thumbnails (and, without
        # accumulation, energy). A decode that finds another frame count redoes the pass for every frame.
        planned = plan.num_frames if mode != "full" and plan.exact and plan.num_frames > 0 else 0
        slots = frozenset(frame_grid(planned).tolist()) if planned else None
        while True:
            energy, thumbs, times, frames_mv, damaged, timings = _pooled_energy(
                path, geo, info.rotation, estimated=estimated, compensation=motion_compensation,
                fast_decode=fast_decode, start=start, end=end, progress=progress, deadline=deadline,
                threads=decode_threads, stats=stats, slots=slots, accumulate=accumulate,
            )
            n = energy.shape[0]
            if slots is not None and n != planned:
                slots = None  # the stream holds another count than its packets (damage): every frame, again
            elif not estimated and frames_mv == 0 and n > 1:
                # An MV codec that exported nothing (all-intra, MPEG-4 B-only...): fall back to estimated motion.
                estimated = True
            else:
                break
        t0 = time.perf_counter()
        frame_ids = frame_grid(n)
        scores = slot_scores(energy, frame_ids, accumulate=accumulate)
        scores *= geo.valid_mask()[None]
        timings["scoring"] = time.perf_counter() - t0
        slot_thumbs = thumbs[frame_ids]
        stamps = times[frame_ids]
        offset, exact = 0, True  # ids count decoded frames from the first one (from `start` with a window)
        if start is not None and start > 0:
            offset, exact = window_offset(path, float(times[0]), before_start=stats.get("before_start", 0),
                                          seeked=stats.get("seeked", True), fps=info.fps, start_time=info.start_time)
        decode = {"frames_decoded": n, "reached": stats.get("reached", float("nan")), "offset": offset,
                  "stopped_early": stats.get("stopped_early", ""), "failed_packets": stats.get("failed_packets", 0),
                  "exact": exact}
    t0 = time.perf_counter()
    indices = apply_policy(policy, scores, geo, k, first_full=first_full, thumbnails=slot_thumbs)
    timings["topk"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_total
    report = build_report(info, requested=signals, estimated=estimated, fell_back=estimated != asked_estimated,
                          frames_found=n, start=start, end=end, **decode)
    return Selection(
        visible_indices=indices, frame_ids=frame_ids, timestamps=stamps, scores=scores.astype(np.float32),
        geometry=geo, signals="estimated-motion" if estimated else "codec-mv", codec=info.codec, policy=policy,
        thumbnails=slot_thumbs, report=report,
        video=path, num_frames=n, mode=run_mode, damaged_frames=int(damaged),
        timings={key: round(float(v), 6) for key, v in timings.items()},
        options={
            "budget": k, "geometry": geometry, "policy": policy, "first_full": first_full, "accumulate": accumulate,
            "motion_compensation": motion_compensation, "signals": signals, "start": start, "end": end,
            "fast_decode": fast_decode, "mode": mode,
        },
    )
