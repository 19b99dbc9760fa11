"""Named recipes: the OneVision reference selectors reproduced literally, as :class:`~codec_select.selection.Selection`.

``select_patches(video, recipe="onevision-stage1")`` (or ``codec-select select VIDEO --recipe ...``) runs one of:

- ``onevision-stage1``: ``CVR/tool/stage1.py`` with the flags the reference actually runs
  (``--keep_first_full_frame --padding_policy zero``): 576 letterbox, 16-px patches (36×36), K = 10368 =
  slot 0 whole (padding included) + the global top-9072 of slots 1..63. Frame ids ``floor(linspace(0, N−1, 64))``
  over all decoded frames; per frame ``mean(mv_norm, res_norm)`` (:func:`~codec_select.recipes.energy.stage1_cell_scores`);
  sum per cell; padding cells −1e−4. :attr:`Selection.reference_order` keeps the reference's row order (slot 0 in
  raster order, then descending score) for the stage-1 writer.
- ``onevision-ap``: the attentive-probe loader (``ap_dataloader_dali_codec.py``), :mod:`codec_select.recipes.ap`.

The residual picture is pluggable (:data:`codec_select.recipes.sources.RESIDUALS`). Which one ran, and why, is in
``selection.options["residual"]`` and ``selection.report`` — never silent.

Ties: ``torch.topk`` leaves the order of equal scores unspecified (``std::partial_sort``/``nth_element``); here
equal scores are ranked by ascending flat index ``t·1296 + h·36 + w``, so a run is reproducible byte for byte.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np

from ..decode.container import probe
from ..geometry import make_geometry
from ..kernels.stage1 import smear_partition_mvs
from ..selection import NUM_SLOTS, Selection
from .energy import letterbox, stage1_cell_scores
from .sources import (
    RESIDUALS,
    choose_residual,
    decode_slots,
    estimated_mv_grid,
    reference_frame_ids,
    signal_choice,
)

__all__ = [
    "RECIPES",
    "Recipe",
    "agreement",
    "check_recipe_args",
    "choose_residual",
    "get_recipe",
    "reference_frame_ids",
    "run_recipe",
    "signal_choice",
    "stage1_order",
]

PAD_SCORE = -1e-4
"""Score of padding cells under ``--keep_first_full_frame``: below any content cell (≥ 0)."""
EXCLUDED = -1e6
"""Score given to slot 0 for the remainder top-K."""


@dataclass(frozen=True)
class Recipe:
    """A bundle of defaults that reproduces one reference selector."""

    name: str
    summary: str
    geometry: str
    budget: int
    policy: str
    first_full: bool
    accumulate: bool
    motion_compensation: str


RECIPES: dict[str, Recipe] = {
    "onevision-stage1": Recipe(
        "onevision-stage1", "reference stage1.py --keep_first_full_frame --padding_policy zero (LLaVA data)",
        geometry="llava576", budget=10368, policy="topk", first_full=True, accumulate=False,
        motion_compensation="median",
    ),
    "onevision-ap": Recipe(
        "onevision-ap", "reference attentive-probe codec loader (ap224, similarity compensation, static fallback)",
        geometry="ap224", budget=4096, policy="topk", first_full=False, accumulate=False,
        motion_compensation="similarity",
    ),
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"Invalid recipe ({name!r}). Supported values are {', '.join(RECIPES)}.")
    return RECIPES[name]


def check_recipe_args(recipe: Recipe, given: dict, defaults: dict) -> None:
    """Raise ``ValueError`` for an argument set away from its default to something the recipe does not do.

    ``given``/``defaults``: the caller's values and the function's defaults for the recipe-controlled options
    (geometry, policy, first_full, accumulate, motion_compensation, mode, start, end)."""
    fixed = {"geometry": recipe.geometry, "policy": recipe.policy, "first_full": recipe.first_full,
             "accumulate": recipe.accumulate, "motion_compensation": recipe.motion_compensation,
             "mode": "full", "start": None, "end": None}
    allowed = {"mode": ("auto", "full")}
    for key, value in given.items():
        if key not in fixed or value == defaults.get(key) or value == fixed[key] or value in allowed.get(key, ()):
            continue
        raise ValueError(
            f"Invalid {key} ({value!r}) for recipe {recipe.name!r}: the recipe uses {key}={fixed[key]!r}. "
            f"Leave {key} at its default or drop the recipe."
        )


def stage1_order(scores: np.ndarray, valid: np.ndarray, budget: int) -> np.ndarray:
    """The reference's ``--keep_first_full_frame`` selection as flat indices in its row order.

    ``scores`` float32 [T, C] (cell sums), ``valid`` bool [C]. Slot 0's C cells in raster order first (the first
    ``budget`` of them when ``budget ≤ C``), then the top ``budget − C`` of slots 1.. with padding cells at −1e−4,
    descending score, ties by ascending index."""
    t, c = scores.shape
    if budget < 1 or budget > t * c:
        raise ValueError(f"Invalid budget ({budget}). It must be between 1 and {t * c}.")
    mandatory = np.arange(min(budget, c), dtype=np.int64)
    if budget <= c:
        return mandatory
    s = np.array(scores, dtype=np.float32, copy=True)
    s[:, ~valid] = np.float32(PAD_SCORE)
    s[0, :] = np.float32(EXCLUDED)
    flat = s.ravel()
    order = np.argsort(-flat, kind="stable")[: budget - c]  # descending; stable keeps ties by index
    return np.concatenate([mandatory, order.astype(np.int64)])


def agreement(a_thw: np.ndarray, b_thw: np.ndarray, grid: tuple[int, int, int] = (64, 36, 36)) -> dict:
    """How close two selections are, the issues' measure: IoU of the kept cells beyond slot 0 and the Pearson
    correlation of kept cells per slot over slots 1..T−1.

    ``a_thw``, ``b_thw``: int [K, 3] rows (t, h, w) (any order) or 1-D flat indices ``t·H·W + h·W + w``.
    Returns ``{"iou", "corr", "common", "union", "per_slot_a", "per_slot_b"}`` (corr is NaN when a count is
    constant)."""
    t, h, w = grid

    def flat(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        if x.ndim == 2:
            x = x[:, 0] * (h * w) + x[:, 1] * w + x[:, 2]
        if x.size and (x.min() < 0 or x.max() >= t * h * w):
            raise ValueError(f"Indices fall outside the {t}x{h}x{w} grid.")
        return np.unique(x)

    a, b = flat(a_thw), flat(b_thw)
    a, b = a[a >= h * w], b[b >= h * w]
    common = np.intersect1d(a, b).size
    union = np.union1d(a, b).size
    ca = np.bincount(a // (h * w), minlength=t)[1:].astype(np.float64)
    cb = np.bincount(b // (h * w), minlength=t)[1:].astype(np.float64)
    corr = float(np.corrcoef(ca, cb)[0, 1]) if ca.std() > 0 and cb.std() > 0 else float("nan")
    return {"iou": common / union if union else 1.0, "corr": corr, "common": int(common), "union": int(union),
            "per_slot_a": ca.astype(np.int64), "per_slot_b": cb.astype(np.int64)}


def _mv_grid(inp, height: int, width: int, estimated: bool) -> np.ndarray:
    if estimated:
        if inp.luma is None or inp.prev_luma is None:
            return np.zeros((height // 4, width // 4, 4), dtype=np.int32)
        return estimated_mv_grid(inp.luma, inp.prev_luma)
    if inp.mvs is None:
        return np.zeros((height // 4, width // 4, 4), dtype=np.int32)
    m = inp.mvs
    return smear_partition_mvs(m["source"], m["w"], m["h"], m["dst_x"], m["dst_y"], m["motion_x"], m["motion_y"],
                               m["motion_scale"], height, width)


def run_recipe(
    video: str | os.PathLike, recipe: str, *, budget: int | None = None, residual: str = "auto",
    signals: str = "auto", inconsistency: bool = True, static_fallback: bool = True, timeout: float | None = None,
) -> Selection:
    """Run a named recipe on ``video`` and return its :class:`Selection` (see the module doc).

    ``residual``: the residual-picture source (``"auto"``: emulated for H.264 when available, the decoded picture
    for HEVC, else neutral). ``inconsistency``/``static_fallback``: ``onevision-ap`` options (module
    :mod:`codec_select.recipes.ap`). ``timeout``: per-video time budget in seconds
    (:class:`~codec_select.errors.SelectionTimeoutError`)."""
    deadline = None if timeout is None else time.perf_counter() + float(timeout)
    rec = get_recipe(recipe)
    if residual not in RESIDUALS:  # options first, before the file is touched
        raise ValueError(f"Invalid residual ({residual!r}). Supported values are {', '.join(RESIDUALS)}.")
    if signals not in ("auto", "codec-mv", "estimated-motion"):
        raise ValueError(f"Invalid signals ({signals!r}). Supported values are auto, codec-mv, estimated-motion.")
    if rec.name == "onevision-ap":
        from .ap import run_ap

        return run_ap(video, rec, budget=budget, residual=residual, signals=signals, inconsistency=inconsistency,
                      static_fallback=static_fallback, deadline=deadline)
    return _run_stage1(video, rec, budget=budget, residual=residual, signals=signals, deadline=deadline)


def _run_stage1(
    video, rec: Recipe, *, budget: int | None, residual: str, signals: str, deadline: float | None = None
) -> Selection:
    t_total = time.perf_counter()
    path = os.fspath(video)
    info = probe(path)
    estimated, why_signals, fell_back = signal_choice(info, signals)
    source, why_residual = choose_residual(residual, info.codec, estimated)
    k = rec.budget if budget is None else int(budget)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    notes = [f"recipe {rec.name}: residual picture {source!r} ({why_residual})"]
    if info.rotation:
        notes.append("rotated video: scored in coded orientation, as the reference (cv_reader ignores rotation)")
    dec = decode_slots(path, info, signals=signals, residual=source, estimated=estimated, fell_back=fell_back,
                       notes=notes, deadline=deadline)
    frame_ids, inputs, h0, w0, n = dec.frame_ids, dec.inputs, dec.height, dec.width, dec.report.frames_found
    timings["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    box = letterbox(h0, w0, 576)
    geo = make_geometry("llava576", h0, w0)  # coded orientation: cv_reader ignores the display matrix
    cache: dict[int, np.ndarray] = {}
    scores = np.empty((NUM_SLOTS, geo.grid_h, geo.grid_w), dtype=np.float32)
    for t, fid in enumerate(frame_ids.tolist()):
        if fid not in cache:
            inp = inputs[fid]
            cache[fid] = stage1_cell_scores(_mv_grid(inp, h0, w0, estimated), inp.planes, box, geo.patch)
        scores[t] = cache[fid]
    timings["signals"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    valid = geo.valid_mask().ravel()
    order = stage1_order(scores.reshape(NUM_SLOTS, -1), valid, k)
    timings["topk"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_total
    report = replace(dec.report, signals_reason=why_signals)
    stamps = np.array([inputs[i].time for i in frame_ids.tolist()], dtype=np.float64)
    return Selection(
        visible_indices=np.sort(order), frame_ids=frame_ids, timestamps=stamps,
        scores=scores * geo.valid_mask()[None], geometry=geo,
        signals="estimated-motion" if estimated else "codec-mv", codec=info.codec, policy=rec.policy, video=path,
        num_frames=n, mode="full", timings={key: round(float(v), 6) for key, v in timings.items()},
        options={"recipe": rec.name, "budget": k, "geometry": rec.geometry, "policy": rec.policy,
                 "first_full": True, "accumulate": False, "motion_compensation": "median", "residual": source,
                 "residual_reason": why_residual, "signals": signals, "padding_policy": "zero",
                 "keep_first_full_frame": True},
        report=report, reference_order=order,
    )
