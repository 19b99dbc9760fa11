"""codec_select.kernels against their numpy twins (tests/naive.py), hand-computed cases, argument checks.

The whole file also runs with ``NUMBA_DISABLE_JIT=1`` (kernel bodies as plain Python). Speed is measured in
``benchmarks/bench_select.py``, never here: a timing in a test depends on the machine's load and on the JIT.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/naive.py, also when run from elsewhere

import naive  # noqa: E402
from codec_select.kernels.order import argsort_stable, heapsort, order_pair  # noqa: E402

from codec_select import kernels as K  # noqa: E402

NO_JIT = bool(numba.config.DISABLE_JIT)
KERNEL_DIR = Path(K.__file__).resolve().parent
MV_FIELDS = ("source", "w", "h", "dst_x", "dst_y", "motion_x", "motion_y", "motion_scale")
MV_DTYPES = (np.int32, np.uint8, np.uint8, np.int16, np.int16, np.int32, np.int32, np.uint16)
NAN = np.nan


def mvs(rows) -> tuple[np.ndarray, ...]:
    """Motion-vector fields from rows ``(source, w, h, dst_x, dst_y, motion_x, motion_y, motion_scale)``."""
    cols = list(zip(*rows)) if rows else [[] for _ in MV_FIELDS]
    return tuple(np.ascontiguousarray(np.asarray(c), dtype=t) for c, t in zip(cols, MV_DTYPES))


def random_mvs(rng, n, height, width, sizes=(4, 8, 16), scales=(0, 1, 2, 4), sources=(-2, -1, 0, 1, 2)):
    rows = []
    for _ in range(n):
        w, h = int(rng.choice(sizes)), int(rng.choice(sizes))
        rows.append(
            (
                int(rng.choice(sources)),
                w,
                h,
                int(rng.integers(-10, width + 10)),
                int(rng.integers(-10, height + 10)),
                int(rng.integers(-64, 65)),
                int(rng.integers(-64, 65)),
                int(rng.choice(scales)),
            )
        )
    return mvs(rows)


def assert_flow_equal(actual, desired, msg, atol=1e-5):
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(desired), err_msg=f"{msg}: NaN pattern")
    np.testing.assert_allclose(actual, desired, rtol=1e-5, atol=atol, equal_nan=True, err_msg=msg)


# ---------------------------------------------------------------------------------------------------------------
# rasterise_mvs

_HAND_MVS = mvs(
    [
        (-1, 8, 8, 8, 4, 6, -2, 4),  # x ∈ [4, 12), y ∈ [0, 8) → cells (0..1, 1..2), L0 (1.5, −0.5)
        (1, 4, 4, 2, 10, 3, 1, 2),  # x ∈ [0, 4), y ∈ [8, 12) → cell (2, 0), L1 (1.5, 0.5)
        (-1, 4, 4, 6, 2, -4, 0, 4),  # → cell (0, 1), L0 (−1, 0): overwrites the first vector there
        (-1, 8, 8, 8, 8, 100, 100, 0),  # motion_scale 0: skipped
        (0, 16, 16, 8, 8, 4, 4, 4),  # source 0: skipped
        (1, 8, 4, 6, 2, -1, 2, 4),  # x ∈ [2, 10): top-left pixels 4, 8 → cells (0, 1..2), L1 (−0.25, 0.5)
        (-1, 16, 16, 14, 10, 2, 2, 1),  # x ∈ [6, 22), y ∈ [2, 18) → cells (1..2, 2..3) after clipping, L0 (2, 2)
        (1, 8, 8, -2, -2, 4, 4, 4),  # x, y ∈ [−6, 2) → cell (0, 0) only, L1 (1, 1)
    ]
)


def _hand_rasterised() -> np.ndarray:
    out = np.full((2, 3, 4, 2), NAN, dtype=np.float32)
    out[0, 0, 1] = (-1.0, 0.0)
    out[0, 0, 2] = (1.5, -0.5)
    out[0, 1, 1] = (1.5, -0.5)
    out[0, 1:3, 2:4] = (2.0, 2.0)
    out[1, 2, 0] = (1.5, 0.5)
    out[1, 0, 1:3] = (-0.25, 0.5)
    out[1, 0, 0] = (1.0, 1.0)
    return out


_rng = np.random.default_rng(1)
RASTER_CASES = {
    "hand": (_HAND_MVS, 3, 4, 4, _hand_rasterised()),
    "no_vectors": (mvs([]), 2, 3, 4, np.full((2, 2, 3, 2), NAN, dtype=np.float32)),
    "empty_grid": (_HAND_MVS, 0, 0, 4, np.full((2, 0, 0, 2), NAN, dtype=np.float32)),
    "random": (random_mvs(_rng, 300, 68, 92), 17, 23, 4, None),
    "random_block8_odd": (random_mvs(_rng, 60, 40, 56), 5, 7, 8, None),
    "random_block3": (random_mvs(_rng, 40, 20, 20, sizes=(4, 8)), 7, 7, 3, None),
}


@pytest.mark.parametrize("name", RASTER_CASES)
def test_rasterise_mvs(name):
    fields, gh, gw, block, expected = RASTER_CASES[name]
    out = K.rasterise_mvs(*fields, gh, gw, block)
    assert out.dtype == np.float32 and out.shape == (2, gh, gw, 2)
    ref = naive.naive_rasterise_mvs(*fields, gh, gw, block)
    np.testing.assert_array_equal(out, ref, err_msg=f"{name}: kernel vs naive")
    if expected is not None:
        np.testing.assert_array_equal(out, expected, err_msg=f"{name}: kernel vs hand-computed")


def test_rasterise_mvs_keeps_sub_pixel_precision():
    out = K.rasterise_mvs(*mvs([(-1, 4, 4, 2, 2, 5, -3, 4)]), 1, 1, 4)
    np.testing.assert_array_equal(out[0, 0, 0], np.float32([1.25, -0.75]), err_msg="quarter-pel must not truncate")


# ---------------------------------------------------------------------------------------------------------------
# order statistics (private, but every percentile and median goes through it)

_rng = np.random.default_rng(2)
ORDER_CASES = {
    "uniform": _rng.random(5000),
    "normal_ties": np.round(_rng.standard_normal(3000), 1),
    "mostly_zero": np.r_[np.zeros(2000), _rng.random(300), -_rng.random(200)],
    "negative_heavy": -np.abs(_rng.standard_normal(1500)) * 3 + (_rng.random(1500) < 0.3) * 0.0,
    "outliers": np.r_[_rng.random(1000) * 1e-6, 1e6, -1e6],
    "constant": np.full(700, 3.5),
    "small": _rng.random(7),
    "single": np.array([2.0]),
    "with_inf": np.r_[_rng.random(200), np.inf, np.inf],
    "quantised": np.round(_rng.standard_normal(4000) * 8) / 16,
}


@pytest.mark.parametrize("name", ORDER_CASES)
def test_order_pair_matches_sort(name):
    values = np.ascontiguousarray(ORDER_CASES[name], dtype=np.float64)
    srt = np.sort(values)
    n = len(values)
    for k in sorted({0, 1, n // 2 - 1, n // 2, int(0.95 * (n - 1)), n - 2, n - 1} & set(range(n))):
        a, b = order_pair(values.copy(), k)
        want_b = srt[k + 1] if k + 1 < n else np.inf
        assert (a, b) == (srt[k], want_b), f"{name}: k={k}: got {(a, b)}, want {(srt[k], want_b)}"


SORT_CASES = {**ORDER_CASES, "with_nan": np.r_[_rng.random(50), np.nan, -np.inf, np.nan, 0.5, 0.5], "empty": np.zeros(0)}


@pytest.mark.parametrize("name", SORT_CASES)
def test_heapsort_matches_numpy_sort(name):
    values = np.ascontiguousarray(SORT_CASES[name], dtype=np.float64)
    np.testing.assert_array_equal(heapsort(values.copy()), np.sort(values), err_msg=name)


@pytest.mark.parametrize("name", SORT_CASES)
def test_argsort_stable_matches_numpy_stable(name):
    values = np.ascontiguousarray(SORT_CASES[name], dtype=np.float64)
    np.testing.assert_array_equal(argsort_stable(values), np.argsort(values, kind="stable"), err_msg=name)
    np.testing.assert_array_equal(argsort_stable(-values), np.argsort(-values, kind="stable"), err_msg=name)


# ---------------------------------------------------------------------------------------------------------------
# camera-motion compensation and magnitude


def _flow(rng, gh, gw, nan_frac=0.3, scale=3.0, quantise=False):
    f = (rng.standard_normal((gh, gw, 2)) * scale).astype(np.float32)
    if quantise:
        f = np.round(f * 4) / 4
    f[rng.random((gh, gw)) < nan_frac] = NAN
    return np.ascontiguousarray(f, dtype=np.float32)


def _similarity_field(gh, gw, tx, ty, a, b):
    y, x = np.meshgrid((2 * np.arange(gh) + 1) / gh - 1, (2 * np.arange(gw) + 1) / gw - 1, indexing="ij")
    return np.stack([tx + a * x - b * y, ty + b * x + a * y], axis=-1).astype(np.float32)


_rng = np.random.default_rng(3)
_zero_heavy = _flow(_rng, 20, 30, nan_frac=0.1, quantise=True)
_zero_heavy[_rng.random((20, 30)) < 0.5] = 0.0
FLOW_CASES = {
    "random": _flow(_rng, 12, 17),
    "quantised_zero_heavy": _zero_heavy,
    "negative_median": np.ascontiguousarray(_flow(_rng, 9, 11, nan_frac=0.2) - 4.0),
    "no_nan": _flow(_rng, 8, 8, nan_frac=0.0),
    "all_nan": np.full((3, 5, 2), NAN, dtype=np.float32),
    "single_cell": np.array([[[1.5, -2.0]]], dtype=np.float32),
    "one_component_nan": np.array([[[1.0, NAN], [3.0, 4.0]]], dtype=np.float32),
    "odd_large": _flow(_rng, 45, 80, nan_frac=0.25),
}


def test_compensate_median_hand():
    flow = np.array([[[1, 0], [2, 4]], [[NAN, NAN], [10, -2]]], dtype=np.float32)  # medians x 2, y 0
    want = np.array([[[-1, 0], [0, 4]], [[NAN, NAN], [8, -2]]], dtype=np.float32)
    assert_flow_equal(K.compensate_median(flow), want, "hand, odd count")
    flow = np.array([[[1, 1], [2, 2]], [[3, 3], [10, 10]]], dtype=np.float32)  # even count: median 2.5
    assert_flow_equal(K.compensate_median(flow), flow - 2.5, "hand, even count")


@pytest.mark.parametrize("name", FLOW_CASES)
def test_compensate_median(name):
    flow = FLOW_CASES[name]
    out = K.compensate_median(flow)
    assert out.dtype == np.float32 and out.shape == flow.shape and out is not flow
    assert_flow_equal(out, naive.naive_compensate_median(flow), f"{name}: kernel vs naive")


@pytest.mark.parametrize("name", FLOW_CASES)
def test_compensate_similarity(name):
    flow = FLOW_CASES[name]
    assert_flow_equal(K.compensate_similarity(flow), naive.naive_compensate_similarity(flow), name, atol=1e-4)


def test_compensate_similarity_removes_exact_camera_motion():
    flow = _similarity_field(12, 16, tx=1.5, ty=-0.5, a=0.2, b=-0.1)
    np.testing.assert_allclose(K.compensate_similarity(flow), 0.0, atol=1e-5, err_msg="a pure similarity field")


def test_compensate_similarity_ignores_outliers():
    rng = np.random.default_rng(4)
    flow = _similarity_field(16, 20, tx=-2.0, ty=1.0, a=0.05, b=0.3)
    movers = rng.random((16, 20)) < 0.2
    flow[movers] += rng.uniform(5, 10, size=(int(movers.sum()), 2)).astype(np.float32)
    out = K.compensate_similarity(flow)
    np.testing.assert_allclose(out[~movers], 0.0, atol=1e-4, err_msg="camera motion left on static cells")
    assert np.all(np.abs(out[movers]).max(axis=-1) > 4), "moving cells lost their own motion"
    assert_flow_equal(out, naive.naive_compensate_similarity(flow), "outliers: kernel vs naive", atol=1e-4)


def test_compensate_similarity_falls_back_and_strides():
    few = np.full((4, 4, 2), NAN, dtype=np.float32)
    few[:3, :5] = np.arange(12, dtype=np.float32).reshape(3, 4, 1)  # 12 points < 16
    assert_flow_equal(K.compensate_similarity(few), K.compensate_median(few), "fewer than 16 points → median")
    flow = _flow(np.random.default_rng(5), 20, 20, nan_frac=0.1)
    for max_points in (17, 50, 399):
        for iters, keep in ((0, 0.7), (1, 0.5), (3, 0.9)):
            got = K.compensate_similarity(flow, iters=iters, keep=keep, max_points=max_points)
            want = naive.naive_compensate_similarity(flow, iters=iters, keep=keep, max_points=max_points)
            assert_flow_equal(got, want, f"max_points={max_points} iters={iters} keep={keep}", atol=1e-4)


@pytest.mark.parametrize("name", FLOW_CASES)
def test_flow_magnitude(name):
    flow = FLOW_CASES[name]
    out = K.flow_magnitude(flow)
    assert out.dtype == np.float32 and out.shape == flow.shape[:2]
    np.testing.assert_allclose(out, naive.naive_flow_magnitude(flow), rtol=1e-6, err_msg=name)


def test_flow_magnitude_hand():
    flow = np.array([[[3, 4], [NAN, NAN]], [[0, -2], [NAN, 1]]], dtype=np.float32)
    np.testing.assert_array_equal(K.flow_magnitude(flow), np.float32([[5, 0], [2, 0]]))


# ---------------------------------------------------------------------------------------------------------------
# mc_residual


def _cands(*entries):
    slots, dirs, dists = zip(*entries) if entries else ((), (), ())
    return (np.asarray(slots, dtype=np.int64), np.asarray(dirs, dtype=np.int8), np.asarray(dists, dtype=np.int32))


def _const_ring(*values, size=(8, 8)):
    return np.stack([np.full(size, v, dtype=np.uint8) for v in values])


def _hand_flow(l0=None, l1=None, grid=(2, 2)):
    flow = np.full((2, *grid, 2), NAN, dtype=np.float32)
    for lst, cells in enumerate((l0 or {}, l1 or {})):
        for (i, j), v in cells.items():
            flow[lst, i, j] = v
    return flow


def _mc_hand_cases():
    cases = {}
    # ring: 0 = cur (100), 1 = 60 (past d1), 2 = 100 (past d2), 3 = 80 (future d1)
    ring = _const_ring(100, 60, 100, 80)
    flow = _hand_flow(l0={(0, 0): (0.5, 0.0), (1, 1): (0.25, -0.25)}, l1={(0, 1): (1.0, 2.0), (1, 1): (0.0, 0.0)})
    cases["lists_and_intra"] = {
        "ring": ring,
        "cands": _cands((1, -1, 1), (2, -1, 2), (3, 1, 1)),
        "flow": flow,
        "step": 2,
        "accept": 2.0,
        "residual": [[0, 20], [40, 0]],  # L0 finds slot 2; L1 only 80; intra: zero motion from slot 1; best 0 wins
        "velocity": [[(-0.25, 0), (1, 2)], [(NAN, NAN), (-0.125, 0.125)]],
    }
    ring = _const_ring(100, 90, 110)
    flow = _hand_flow(
        l0={(i, j): (0.25, 0.5) for i in range(2) for j in range(2)},
        l1={(i, j): (-0.5, 0.75) for i in range(2) for j in range(2)},
    )
    cases["bi_average_wins"] = {
        "ring": ring,
        "cands": _cands((1, -1, 2), (2, 1, 1)),
        "flow": flow,
        "step": 2,
        "accept": 2.0,
        "residual": np.zeros((2, 2)),
        "velocity": np.tile(np.float32([-0.3125, 0.25]), (2, 2, 1)),
    }
    ramp = np.tile(np.arange(8, dtype=np.uint8) * 8, (8, 1))
    ring = np.stack([ramp + 4, ramp])  # cur = ramp + 4 = ramp sampled half a pixel to the right
    flow = _hand_flow(l0={(i, j): (0.5, 0.0) for i in range(2) for j in range(2)})
    for step, edge in ((2, 2.0), (1, 1.0)):  # column 7 reads x = 7.5, clamped to 7: error 4 there
        cases[f"clamped_ramp_step{step}"] = {
            "ring": ring,
            "cands": _cands((1, -1, 1)),
            "flow": flow,
            "step": step,
            "accept": 2.0,
            "residual": [[0, edge], [0, edge]],
            "velocity": np.tile(np.float32([-0.5, 0.0]), (2, 2, 1)),
        }
    ring = _const_ring(100, 103, 100)
    flow = _hand_flow(l0={(i, j): (1.0, 1.0) for i in range(2) for j in range(2)})
    for accept, res, dist in ((5.0, 3.0, 1), (2.0, 0.0, 3)):  # the first candidate within `accept` stops the search
        cases[f"early_accept_{accept}"] = {
            "ring": ring,
            "cands": _cands((1, -1, 1), (2, -1, 3)),
            "flow": flow,
            "step": 1,
            "accept": accept,
            "residual": np.full((2, 2), res),
            "velocity": np.full((2, 2, 2), -1.0 / dist),
        }
    flow = _hand_flow(l0={(0, 0): (1.0, 1.0)}, l1={(1, 1): (1.0, 1.0)})
    cases["no_candidates"] = {
        "ring": _const_ring(100, 50),
        "cands": _cands(),
        "flow": flow,
        "step": 2,
        "accept": 2.0,
        "residual": np.zeros((2, 2)),
        "velocity": np.full((2, 2, 2), NAN),
    }
    cases["future_vector_without_future_frames"] = {
        "ring": _const_ring(100, 70),
        "cands": _cands((1, -1, 1)),
        "flow": _hand_flow(l1={(0, 0): (0.5, 0.5)}),
        "step": 2,
        "accept": 2.0,
        "residual": np.full((2, 2), 30.0),
        "velocity": np.full((2, 2, 2), NAN),
    }
    return cases


MC_HAND = _mc_hand_cases()


@pytest.mark.parametrize("name", MC_HAND)
def test_mc_residual_hand(name):
    c = MC_HAND[name]
    ring = c["ring"]
    args = (ring[0], ring, *c["cands"], c["flow"])
    residual, velocity = K.mc_residual(*args, block=4, step=c["step"], accept=c["accept"])
    np.testing.assert_allclose(residual, np.asarray(c["residual"], dtype=np.float32), err_msg=f"{name}: residual")
    assert_flow_equal(velocity, np.asarray(c["velocity"], dtype=np.float32), f"{name}: velocity")
    nres, nvel = naive.naive_mc_residual(*args, block=4, step=c["step"], accept=c["accept"])
    np.testing.assert_allclose(residual, nres, err_msg=f"{name}: kernel vs naive residual")
    assert_flow_equal(velocity, nvel, f"{name}: kernel vs naive velocity")


def _texture(rng, shape):
    """Smooth-ish random texture: blocks of a shifted copy stay similar, like real content."""
    base = rng.integers(0, 256, (shape[0] + 2, shape[1] + 2)).astype(np.float64)
    smooth = (base[:-2, :-2] + base[1:-1, 1:-1] * 2 + base[2:, 2:] + base[1:-1, :-2] + base[:-2, 1:-1]) / 6
    return np.clip(smooth, 0, 255).astype(np.uint8)


def _mc_random_case(seed, height, width, block, step, n_past, n_future, subpel=4, nan_frac=0.3, vmax=6.0):
    rng = np.random.default_rng(seed)
    cur = _texture(rng, (height, width))
    refs = []
    for _ in range(n_past + n_future):  # shifted copies with a little noise
        shifted = np.roll(cur, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1))
        refs.append(shifted ^ rng.integers(0, 4, cur.shape, dtype=np.uint8))
    ring = np.stack([cur, *refs])
    cands = _cands(*[(1 + i, -1, 1 + i) for i in range(n_past)], *[(1 + n_past + i, 1, 1 + i) for i in range(n_future)])
    gh, gw = height // block, width // block
    flow = np.round(rng.uniform(-vmax, vmax, (2, gh, gw, 2)) * subpel) / subpel
    flow[rng.random((2, gh, gw)) < nan_frac] = NAN
    return ring, cands, np.ascontiguousarray(flow, dtype=np.float32)


# name: (seed, (height, width), block, step, past frames, future frames, extra options, accept)
MC_RANDOM = {
    "q_pel_step2": (10, (24, 40), 4, 2, 3, 2, {}, 2.0),
    "q_pel_step1_odd": (11, (21, 30), 4, 1, 2, 2, {}, 2.0),
    "half_pel_block8": (12, (33, 40), 8, 2, 1, 3, {"subpel": 2}, 3.0),
    "block8_step3": (13, (24, 24), 8, 3, 2, 1, {}, 0.0),
    "non_dyadic_vectors": (14, (20, 28), 4, 2, 2, 2, {"subpel": 3}, 2.0),
    "far_out_of_frame": (15, (16, 20), 4, 1, 2, 1, {"vmax": 30.0}, 1.0),
    "past_only": (16, (16, 16), 4, 2, 3, 0, {"nan_frac": 0.1}, 2.0),
    "future_only": (17, (16, 16), 4, 2, 0, 2, {}, 2.0),
    "all_intra": (18, (12, 16), 4, 2, 1, 1, {"nan_frac": 1.0}, 2.0),
    "accept_everything": (19, (16, 24), 4, 2, 4, 4, {}, 1e9),
}


@pytest.mark.parametrize("name", MC_RANDOM)
def test_mc_residual_random(name):
    seed, (height, width), block, step, n_past, n_future, extra, accept = MC_RANDOM[name]
    ring, cands, flow = _mc_random_case(seed, height, width, block, step, n_past, n_future, **extra)
    args = (ring[0], ring, *cands, flow)
    residual, velocity = K.mc_residual(*args, block=block, step=step, accept=accept)
    nres, nvel = naive.naive_mc_residual(*args, block=block, step=step, accept=accept)
    assert residual.dtype == np.float32 and velocity.dtype == np.float32
    np.testing.assert_allclose(residual, nres, rtol=1e-5, atol=1e-4, err_msg=f"{name}: residual")
    assert_flow_equal(velocity, nvel, f"{name}: velocity")


def test_mc_residual_ring_slot_views_and_aliasing():
    """``cur`` may be a slot of ``ring`` itself (the scorer passes ring[slot]), and never changes the ring."""
    ring, cands, flow = _mc_random_case(seed=20, height=16, width=16, block=4, step=2, n_past=2, n_future=2)
    before = ring.copy()
    a = K.mc_residual(ring[0], ring, *cands, flow)
    b = K.mc_residual(ring[0].copy(), ring, *cands, flow)
    np.testing.assert_array_equal(ring, before)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------------------------------------------------
# frame_change, downscale2, block_match


def _lumas(rng, shape, levels=256):
    """Two random uint8 planes."""
    return tuple(rng.integers(0, levels, shape, dtype=np.uint8) for _ in range(2))


_rng = np.random.default_rng(6)
CHANGE_CASES = {
    "random_step2": (*_lumas(_rng, (24, 32)), 4, 2),
    "random_step1_odd": (*_lumas(_rng, (23, 29)), 4, 1),
    "block3_step2": (*_lumas(_rng, (10, 14)), 3, 2),
    "identical": (np.full((8, 8), 7, np.uint8), np.full((8, 8), 7, np.uint8), 4, 1),
    "smaller_than_a_block": (np.zeros((3, 3), np.uint8), np.ones((3, 3), np.uint8), 4, 2),
}


@pytest.mark.parametrize("name", CHANGE_CASES)
def test_frame_change(name):
    cur, prev, block, step = CHANGE_CASES[name]
    out = K.frame_change(cur, prev, block=block, step=step)
    assert out.dtype == np.float32 and out.shape == (cur.shape[0] // block, cur.shape[1] // block)
    np.testing.assert_allclose(out, naive.naive_frame_change(cur, prev, block, step), rtol=1e-6, err_msg=name)


def test_frame_change_hand():
    cur = np.zeros((8, 8), np.uint8)
    prev = cur.copy()
    prev[0:4, 4:8] = 10
    np.testing.assert_array_equal(K.frame_change(cur, prev, 4, 2), np.float32([[0, 10], [0, 0]]))
    prev = cur.copy()
    prev[::2, ::2] = 40  # only even rows/columns differ: step 2 samples offsets 1 and 3
    np.testing.assert_array_equal(K.frame_change(cur, prev, 4, 2), np.zeros((2, 2), np.float32))
    np.testing.assert_array_equal(K.frame_change(cur, prev, 4, 1), np.full((2, 2), 10, np.float32))


def test_downscale2():
    x = np.array([[0, 1, 1, 1, 9], [1, 1, 2, 2, 9], [255, 255, 3, 4, 9]], dtype=np.uint8)
    np.testing.assert_array_equal(K.downscale2(x), np.uint8([[1, 2]]), err_msg="rounded half up, odd edges drop")
    y = np.array([[255, 255], [255, 254]], dtype=np.uint8)
    np.testing.assert_array_equal(K.downscale2(y), np.uint8([[255]]))
    for shape in ((1, 1), (2, 2), (17, 31), (40, 64)):
        z = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
        np.testing.assert_array_equal(K.downscale2(z), naive.naive_downscale2(z), err_msg=str(shape))


_rng = np.random.default_rng(7)
_tex = _texture(_rng, (41, 57))
MATCH_CASES = {
    "shifted_texture": (np.ascontiguousarray(np.roll(_tex, (-1, -2), axis=(0, 1))), _tex, 8, 4),
    "binary_many_ties": (*_lumas(_rng, (37, 51), levels=2), 8, 4),
    "block4_radius2": (*_lumas(_rng, (20, 28), levels=4), 4, 2),
    "block5_odd": (*_lumas(_rng, (23, 26)), 5, 3),
    "radius0": (*_lumas(_rng, (16, 16)), 8, 0),
    "constant": (np.full((16, 24), 9, np.uint8), np.full((16, 24), 9, np.uint8), 8, 4),
    "radius_larger_than_frame": (*_lumas(_rng, (8, 8), levels=3), 4, 6),
}


@pytest.mark.parametrize("name", MATCH_CASES)
def test_block_match(name):
    cur, ref, block, radius = MATCH_CASES[name]
    error, vector = K.block_match(cur, ref, block=block, radius=radius)
    nerr, nvec = naive.naive_block_match(cur, ref, block=block, radius=radius)
    np.testing.assert_allclose(error, nerr, rtol=1e-6, err_msg=f"{name}: error")
    np.testing.assert_array_equal(vector, nvec, err_msg=f"{name}: vector (tie-breaking)")


def test_block_match_hand():
    cur, ref, _, _ = MATCH_CASES["shifted_texture"]  # cur[y, x] = ref[y + 1, x + 2]
    error, vector = K.block_match(cur, ref, block=8, radius=4)
    inner = (slice(0, 4), slice(0, 6))  # blocks whose match stays inside ref
    np.testing.assert_array_equal(vector[inner], np.broadcast_to(np.float32([2, 1]), vector[inner].shape))
    np.testing.assert_array_equal(error[inner], 0.0)
    error, vector = K.block_match(*MATCH_CASES["constant"][:2], block=8, radius=4)
    assert not error.any() and not vector.any(), "a tie everywhere goes to the zero vector"


# ---------------------------------------------------------------------------------------------------------------
# pool_cells


def test_pool_cells_hand():
    e = np.array([[1, 2], [3, 4]], dtype=np.float32)
    f64 = np.float64
    np.testing.assert_allclose(K.pool_cells(e, 4.0, f64([0, 4, 8]), f64([0, 8])), [[48], [112]])
    np.testing.assert_allclose(
        K.pool_cells(e, 4.0, f64([2, 6]), f64([-2, 3])), [[24]], err_msg="rows 2+2 px of cells 0/1, cols 3 px of cell 0"
    )
    np.testing.assert_allclose(K.pool_cells(e, 4.0, f64([10, 12]), f64([0, 8])), [[0]], err_msg="outside the source")
    np.testing.assert_allclose(K.pool_cells(e, 16.0, f64([0, 32]), f64([0, 16, 40])), [[256 * 4, 256 * 6]])
    np.testing.assert_allclose(
        K.pool_cells(e, 4.0, f64([0, 0, 8]), f64([0, 8])), [[0], [160]], err_msg="a zero-height canvas cell"
    )


def _edges(n, lo, hi):
    return np.linspace(lo, hi, n + 1)


_rng = np.random.default_rng(8)
POOL_CASES = {
    "ap224_crop": (_rng.random((90, 160)).astype(np.float32), 4.0, _edges(16, 0, 360), _edges(16, 140, 500)),
    "letterbox_outside": (_rng.random((45, 80)).astype(np.float32), 8.0, _edges(36, -142.5, 502.5), _edges(36, 0, 640)),
    "fine_canvas": (_rng.random((5, 7)).astype(np.float32), 16.0, _edges(13, 0.3, 79.1), _edges(9, -5, 111.7)),
    "irregular_edges": (
        _rng.random((11, 13)).astype(np.float32),
        4.0,
        np.sort(_rng.uniform(-5, 50, 8)),
        np.sort(_rng.uniform(-3, 60, 6)),
    ),
    "single_cell": (np.array([[2.5]], np.float32), 4.0, _edges(1, 0, 4), _edges(1, 0, 4)),
    "all_zero": (np.zeros((6, 6), np.float32), 4.0, _edges(3, 0, 24), _edges(3, 0, 24)),
}


@pytest.mark.parametrize("name", POOL_CASES)
def test_pool_cells(name):
    energy, cell, rows, cols = POOL_CASES[name]
    out = K.pool_cells(energy, cell, rows, cols)
    assert out.dtype == np.float32 and out.shape == (len(rows) - 1, len(cols) - 1)
    np.testing.assert_allclose(
        out, naive.naive_pool_cells(energy, cell, rows, cols), rtol=1e-5, atol=1e-4, err_msg=name
    )


def test_pool_conserves_mass_on_full_coverage():
    energy = np.random.default_rng(9).random((30, 50)).astype(np.float32)
    out = K.pool_cells(energy, 4.0, _edges(7, 0, 120), _edges(11, 0, 200))
    np.testing.assert_allclose(out.sum(), energy.sum() * 16, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# normalise_p95

_rng = np.random.default_rng(10)
P95_CASES = {
    "hand_ramp": (np.arange(21, dtype=np.float32), 1.0),  # p95 = 19
    "floor_dominates": (np.arange(21, dtype=np.float32), 100.0),
    "random_2d": (_rng.random((90, 160)).astype(np.float32) * 30, 6.0),
    "zero_heavy": (np.where(_rng.random((40, 50)) < 0.97, 0, _rng.random((40, 50)) * 50).astype(np.float32), 1.0),
    "negative": (_rng.standard_normal(500).astype(np.float32), 0.5),
    "all_zero": (np.zeros((4, 5), np.float32), 6.0),
    "single": (np.array([5.0], np.float32), 1.0),
    "empty": (np.zeros(0, np.float32), 1.0),
}


@pytest.mark.parametrize("name", P95_CASES)
def test_normalise_p95(name):
    x, floor = P95_CASES[name]
    out = K.normalise_p95(x, floor)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, naive.naive_normalise_p95(x, floor), rtol=1e-6, atol=1e-7, err_msg=name)
    if name == "hand_ramp":
        np.testing.assert_allclose(out, np.minimum(np.arange(21) / 19, 1), rtol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# topk_cells


def _flags(bits):
    return np.array([b == "1" for b in bits])


TOPK_HAND = {
    "ties_by_index": (np.float32([5, 1, 5, 3, 9]), _flags("11111"), _flags("01000"), 3, [0, 1, 4]),
    "too_many_mandatory": (np.float32([0, 9, 0, 0, 9]), _flags("01001"), _flags("10110"), 2, [0, 2]),
    "fewer_candidates": (np.float32([1, 2, 3, 4, 5]), _flags("10000"), _flags("00000"), 4, [0]),
    "nan_last": (np.float32([NAN, 1, NAN, 0]), _flags("1111"), _flags("0000"), 3, [0, 1, 3]),
    "k_zero": (np.float32([1, 2]), _flags("11"), _flags("11"), 0, []),
    "mandatory_not_eligible": (np.float32([0, 5, 7]), _flags("011"), _flags("100"), 2, [0, 2]),
}


@pytest.mark.parametrize("name", TOPK_HAND)
def test_topk_cells_hand(name):
    scores, eligible, mandatory, k, want = TOPK_HAND[name]
    got = K.topk_cells(scores, eligible, mandatory, k)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want, err_msg=name)
    np.testing.assert_array_equal(got, naive.naive_topk_cells(scores, eligible, mandatory, k), err_msg=name)


@pytest.mark.parametrize("seed", range(6))
def test_topk_cells_random(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 3000))
    scores = (rng.integers(0, 4, n) if seed % 2 else rng.random(n)).astype(np.float32)  # even seeds: ties galore
    eligible = rng.random(n) < 0.8
    mandatory = rng.random(n) < (0.0 if seed == 0 else 0.05)
    for k in sorted({0, 1, n // 3, n // 2, n}):
        got = K.topk_cells(scores, eligible, mandatory, k)
        np.testing.assert_array_equal(
            got, naive.naive_topk_cells(scores, eligible, mandatory, k), err_msg=f"seed={seed} n={n} k={k}"
        )


# ---------------------------------------------------------------------------------------------------------------
# refresh_mask / refresh_select

_E4 = np.array([[1, 0], [1, 0], [1, 5], [0, 0]], dtype=np.float32)
_M4 = np.array([[1, 1], [0, 0], [0, 0], [0, 0]], dtype=bool)
_L4 = ~_M4


def test_refresh_mask_hand():
    keep, stale = K.refresh_mask(_E4, _L4, _M4, 2.0)
    np.testing.assert_array_equal(keep, [[1, 1], [0, 0], [1, 1], [0, 0]])
    np.testing.assert_array_equal(stale, np.float32([[1, 0], [1, 0], [2, 5], [0, 0]]))
    keep, _ = K.refresh_mask(_E4, _L4, _M4, 0.0)
    assert keep.all(), "τ = 0 keeps every eligible cell, zero energy included"
    for tau in (0.0, 0.5, 1.0, 2.0, 3.0, 6.0):
        got = K.refresh_mask(_E4, _L4, _M4, tau)
        want = naive.naive_refresh_mask(_E4, _L4, _M4, tau)
        np.testing.assert_array_equal(got[0], want[0], err_msg=f"tau={tau}")
        np.testing.assert_array_equal(got[1], want[1], err_msg=f"tau={tau}")


REFRESH_HAND = {
    # count(τ): 8 at 0, 5 on (0, 1], 4 on (1, 2], 3 on (2, 5], 2 above
    "exact_count": (_E4, _L4, _M4, 4, [[1, 1], [0, 0], [1, 1], [0, 0]]),
    "three": (_E4, _L4, _M4, 3, [[1, 1], [0, 0], [0, 1], [0, 0]]),
    "fill_by_staleness": (_E4, _L4, _M4, 6, [[1, 1], [1, 1], [1, 1], [0, 0]]),  # 5 kept + stalest (all 0) by index
    "too_many_mandatory": (_E4, _L4, _M4, 1, [[1, 0], [0, 0], [0, 0], [0, 0]]),
    "everything": (_E4, _L4, _M4, 100, [[1, 1], [1, 1], [1, 1], [1, 1]]),
    "all_zero_energy": (np.zeros((4, 2), np.float32), _L4, _M4, 3, [[1, 1], [1, 0], [0, 0], [0, 0]]),
    "k_zero": (_E4, _L4, _M4, 0, np.zeros((4, 2))),
}


@pytest.mark.parametrize("name", REFRESH_HAND)
def test_refresh_select_hand(name):
    energy, eligible, mandatory, k, want = REFRESH_HAND[name]
    got = K.refresh_select(energy, eligible, mandatory, k)
    assert got.dtype == np.bool_ and got.shape == energy.shape
    np.testing.assert_array_equal(got, np.asarray(want, dtype=bool), err_msg=name)
    np.testing.assert_array_equal(got, naive.naive_refresh_select(energy, eligible, mandatory, k), err_msg=name)


@pytest.mark.parametrize("seed", range(6))
def test_refresh_select_random(seed):
    rng = np.random.default_rng(200 + seed)
    t, c = int(rng.integers(2, 20)), int(rng.integers(1, 40))
    energy = (rng.random((t, c)) ** 3).astype(np.float32)
    if seed % 3 == 0:
        energy[rng.random((t, c)) < 0.5] = 0.0
    eligible = rng.random((t, c)) < 0.9
    mandatory = np.zeros((t, c), dtype=bool)
    mandatory[0] = True
    eligible[0] = False
    available = int((eligible | mandatory).sum())
    for k in sorted({1, c, (c + available) // 2, available - 1, available, available + 3}):
        got = K.refresh_select(energy, eligible, mandatory, k)
        np.testing.assert_array_equal(
            got, naive.naive_refresh_select(energy, eligible, mandatory, k), err_msg=f"seed={seed} T={t} C={c} k={k}"
        )
        assert got.sum() == min(k, available), f"exactly k kept (seed={seed}, k={k})"
        assert not (got & ~(eligible | mandatory)).any(), "kept a cell that is neither eligible nor mandatory"
        if k >= mandatory.sum():
            assert got[mandatory].all(), "a mandatory cell was dropped"


# ---------------------------------------------------------------------------------------------------------------
# argument checks


def test_errors_name_the_argument():
    f = np.zeros((2, 2, 2), np.float32)
    with pytest.raises(ValueError, match=re.escape("flow must have dtype float32, got float64")):
        K.compensate_median(f.astype(np.float64))
    with pytest.raises(ValueError, match=re.escape("flow must be C-contiguous")):
        K.flow_magnitude(np.zeros((2, 4, 2), np.float32)[:, ::2])
    with pytest.raises(ValueError, match=re.escape("flow must have shape (*, *, 2), got (2, 2, 3)")):
        K.compensate_similarity(np.zeros((2, 2, 3), np.float32))
    fields = list(mvs([(-1, 4, 4, 2, 2, 1, 1, 4)]))
    fields[3] = fields[3].astype(np.int32)
    with pytest.raises(ValueError, match=re.escape("dst_x must have dtype int16, got int32")):
        K.rasterise_mvs(*fields, 2, 2)
    fields = list(mvs([(-1, 4, 4, 2, 2, 1, 1, 4)]))
    fields[6] = np.zeros(2, np.int32)
    with pytest.raises(ValueError, match=re.escape("motion_y must have shape (1,), got (2,)")):
        K.rasterise_mvs(*fields, 2, 2)
    ring = np.zeros((3, 8, 8), np.uint8)
    flow = np.full((2, 2, 2, 2), NAN, np.float32)
    with pytest.raises(ValueError, match="cand_slots must index the ring"):
        K.mc_residual(ring[0], ring, *_cands((3, -1, 1)), flow)
    with pytest.raises(ValueError, match="cand_dirs must be -1"):
        K.mc_residual(ring[0], ring, *_cands((1, 0, 1)), flow)
    with pytest.raises(ValueError, match="cand_dists must be > 0"):
        K.mc_residual(ring[0], ring, *_cands((1, 1, 0)), flow)
    with pytest.raises(ValueError, match=re.escape("flow must have shape (2, 4, 4, 2)")):
        K.mc_residual(ring[0], ring, *_cands(), flow, block=2)
    with pytest.raises(ValueError, match="step must be >= 1"):
        K.frame_change(ring[0], ring[1], block=4, step=8)
    with pytest.raises(ValueError, match=re.escape("ref must have shape (8, 8)")):
        K.block_match(ring[0], np.zeros((8, 9), np.uint8))
    e = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="finite and non-decreasing"):
        K.pool_cells(e, 4.0, np.array([0.0, 4.0, 2.0]), np.array([0.0, 8.0]))
    with pytest.raises(ValueError, match="cell_px must be a positive"):
        K.pool_cells(e, 0.0, np.array([0.0, 4.0]), np.array([0.0, 8.0]))
    with pytest.raises(ValueError, match="floor must be > 0"):
        K.normalise_p95(e, 0.0)
    s, b = np.zeros(3, np.float32), np.ones(3, bool)
    with pytest.raises(ValueError, match="k must be a non-negative integer"):
        K.topk_cells(s, b, b, -1)
    with pytest.raises(ValueError, match="energy must be finite and >= 0"):
        K.refresh_select(np.float32([[1, -1]]), np.ones((1, 2), bool), np.zeros((1, 2), bool), 1)


# ---------------------------------------------------------------------------------------------------------------
# conventions: jit options in one place, plain-Python bodies


def test_no_kernel_hard_codes_jit_options():
    for path in sorted(KERNEL_DIR.glob("*.py")):
        if path.name == "_jit.py":
            continue
        source = path.read_text()
        assert "fastmath" not in source, f"{path.name} hard-codes fastmath; use JIT from _jit.py"
        assert "prange" not in source and "parallel" not in source, f"{path.name}: parallel kernels cost compile time"
        for line in source.splitlines():
            if line.strip().startswith("@njit"):
                assert line.strip() == "@njit(**JIT)", f"{path.name}: {line.strip()}"
        assert not re.search(r"@(numba\.)?(njit|jit)\(\s*['\"]", source), f"{path.name}: eager signature string"


def _tiny_checks() -> None:
    """Every public kernel against its twin on tiny inputs (run in a NUMBA_DISABLE_JIT=1 subprocess)."""
    for name in ("hand", "no_vectors", "random_block3"):
        test_rasterise_mvs(name)
    for name in ("random", "all_nan", "single_cell"):
        test_compensate_median(name)
        test_compensate_similarity(name)
        test_flow_magnitude(name)
    for name in ("lists_and_intra", "bi_average_wins", "clamped_ramp_step2", "no_candidates"):
        test_mc_residual_hand(name)
    test_mc_residual_random("q_pel_step1_odd")
    test_mc_residual_random("non_dyadic_vectors")
    test_frame_change("block3_step2")
    test_downscale2()
    test_block_match("block4_radius2")
    test_pool_cells("fine_canvas")
    test_normalise_p95("zero_heavy")
    test_order_pair_matches_sort("quantised")
    test_heapsort_matches_numpy_sort("with_nan")
    test_argsort_stable_matches_numpy_stable("normal_ties")
    test_topk_cells_random(1)
    test_refresh_select_hand("fill_by_staleness")
    test_refresh_select_random(0)
    K.warmup()


@pytest.mark.skipif(NO_JIT, reason="already running without the JIT")
def test_kernel_bodies_run_as_plain_python():
    code = (
        "import numba, sys; assert numba.config.DISABLE_JIT; "
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
        "import test_kernels; from codec_select.kernels import residual; "
        "assert not hasattr(residual._mc_residual_kernel(4, 2), 'py_func'), 'JIT still on'; "
        "test_kernels._tiny_checks(); print('plain python ok')"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plain python ok" in result.stdout
