"""The kernels and scorer paths sped up for throughput (issue 15) against exact twins (tests/naive.py), and the
stage clock: the faster paths must give the same bytes as the plain ones.

Also runs with ``NUMBA_DISABLE_JIT=1`` (kernel bodies as plain Python)."""

from __future__ import annotations

import sys
from pathlib import Path

import numba
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import naive
from codec_select.kernels.fuse import fuse_energy, kth_pair_split

from codec_select import kernels as K
from codec_select import signals
from codec_select.decode.frames import DecodedFrame
from codec_select.geometry import make_geometry

RNG = np.random.default_rng(15)

# ---------------------------------------------------------------------------------------------------------------
# block_means (integer sums, optional region)

LUMAS = [
    RNG.integers(0, 256, (64, 40), dtype=np.uint8),
    RNG.integers(0, 256, (17, 31), dtype=np.uint8),  # ragged edges ignored
    np.full((24, 24), 255, np.uint8),
]


@pytest.mark.parametrize("index", range(len(LUMAS)))
@pytest.mark.parametrize("block,step", [(8, 2), (8, 4), (3, 1), (5, 2)])
@pytest.mark.parametrize("region", [None, ((1, 3), (0, 2)), ((-2, 99), (2, 3)), ((2, 2), (0, 9))])
def test_block_means_exact(index, block, step, region):
    luma = LUMAS[index]
    rows, cols = region if region is not None else (None, None)
    got = K.block_means(luma, block, step, rows=rows, cols=cols)
    want = naive.naive_block_means_region(luma, block, step, rows, cols)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------------------------
# fuse_energy: order statistics over the non-zero groups only


def _groups(values):
    v = np.asarray(values, np.float64)
    neg, pos = np.sort(v[v < 0]), np.sort(v[v > 0])
    def pad(a):  # unsorted, with spare slots past the count
        return np.concatenate([RNG.permutation(a), np.full(3, 7.0)])

    return pad(neg), neg.size, int((v == 0).sum()), pad(pos), pos.size


@pytest.mark.parametrize("seed", range(6))
def test_kth_pair_split_matches_sort(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    values = np.round(rng.normal(0, 2, n), 1) * (rng.random(n) < 0.6)  # ties, zeros, both signs
    neg, n_neg, n_zero, pos, n_pos = _groups(values)
    for k in range(n):
        got = kth_pair_split(neg, n_neg, n_zero, pos, n_pos, k)
        assert tuple(map(float, got)) == naive.naive_kth_pair(values, k), (values, k)


def _fuse_case(seed, gh, gw, kind):
    rng = np.random.default_rng(seed)
    v = rng.normal(0, 2, (gh, gw, 2)).astype(np.float32)
    if kind == "quarter_pel":
        v = (np.round(v * 4) / 4).astype(np.float32)
    elif kind == "zero_heavy":
        v[rng.random((gh, gw)) < 0.7] = 0.0
    elif kind == "signed_zero_nan":
        v[rng.random((gh, gw)) < 0.5] = -0.0
        v[rng.random((gh, gw)) < 0.3] = np.nan
    elif kind == "all_nan":
        v[:] = np.nan
    r = (rng.gamma(1, 4, (gh, gw)) * (rng.random((gh, gw)) < 0.4)).astype(np.float32)
    return v, r


FUSE_KINDS = ["normal", "quarter_pel", "zero_heavy", "signed_zero_nan", "all_nan"]


@pytest.mark.parametrize("kind", FUSE_KINDS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (20, 11)])
@pytest.mark.parametrize("median", [True, False])
def test_fuse_energy_exact(kind, shape, median):
    v, r = _fuse_case(FUSE_KINDS.index(kind) * 10 + shape[0], *shape, kind)
    kw = {"mv_deadzone": 0.5, "mv_floor": 1.0, "res_deadzone": 3.0, "res_floor": 6.0}
    got = fuse_energy(v, r, median=median, **kw)
    want = naive.naive_fuse_energy_exact(v, r, median, **kw)
    assert got.tobytes() == want.tobytes()


def test_fuse_energy_equals_the_unfused_kernels():
    """The fused kernel gives the bytes of compensate_median → speed → normalise_p95 run one by one."""
    v, r = _fuse_case(3, 30, 17, "quarter_pel")
    comp = K.compensate_median(v)
    with np.errstate(invalid="ignore"):
        speed = np.sqrt(comp[..., 0] * comp[..., 0] + comp[..., 1] * comp[..., 1]).astype(np.float64) - 0.5
    speed = np.where(speed > 0, speed, 0.0).astype(np.float32)
    res = np.maximum(r.astype(np.float64) - 3.0, 0.0).astype(np.float32)
    want = (0.5 * K.normalise_p95(speed, 1.0).astype(np.float64)
            + 0.5 * K.normalise_p95(res, 6.0).astype(np.float64)).astype(np.float32)
    got = fuse_energy(v, r, median=True, mv_deadzone=0.5, mv_floor=1.0, res_deadzone=3.0, res_floor=6.0)
    assert got.tobytes() == want.tobytes()


# ---------------------------------------------------------------------------------------------------------------
# CanvasPooler.means_region: thumbnails from the region's means equal those from the whole frame's


@pytest.mark.parametrize("geometry,h,w", [("ap224", 640, 360), ("ap224", 272, 640), ("llava576", 360, 640),
                                          ("native", 100, 300), ("ap224", 70, 50)])
def test_means_region_keeps_thumbnails(geometry, h, w):
    luma = RNG.integers(0, 256, (h, w), dtype=np.uint8)
    pooler = signals.CanvasPooler(make_geometry(geometry, h, w), 0)
    rows, cols = pooler.means_region(h, w)
    full = pooler.thumbnails(K.block_means(luma, signals.THUMB_BLOCK, 2))
    part = pooler.thumbnails(K.block_means(luma, signals.THUMB_BLOCK, 2, rows=rows, cols=cols))
    assert part.tobytes() == full.tobytes()
    if geometry == "ap224" and h > w:
        assert rows[1] - rows[0] < h // signals.THUMB_BLOCK  # a centre crop really skips blocks


def test_means_region_is_whole_frame_when_rotated():
    assert signals.CanvasPooler(make_geometry("ap224", 640, 360), 90).means_region(360, 640) is None


# ---------------------------------------------------------------------------------------------------------------
# FrameScorer: remembered reference candidates, stage clock


def test_candidate_cache_matches_fresh_search():
    scorer = signals.FrameScorer(16, 16, estimated=False, sink=lambda *a: None)
    types = "IBBPBBPBBPPPBIBBBBP" * 3
    for i, kind in enumerate(types):
        scorer.count = i + 1
        scorer.kinds[i % scorer.capacity] = kind
        for index in range(max(0, i - signals.LOOKAHEAD), i + 1):
            got = scorer._candidates(index)
            oldest = max(0, scorer.count - scorer.capacity)
            want = scorer._find_candidates(index, oldest)
            for a, b in zip(got, want):
                assert a.dtype == b.dtype and np.array_equal(a, b), (i, index)


def _frames(n, h=48, w=64):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (h + 8, w + 8), dtype=np.uint8)
    for i in range(n):
        luma = np.ascontiguousarray(base[i % 4: i % 4 + h, :w])
        yield DecodedFrame(i, i / 30, "I" if i == 0 else "P", i == 0, luma, None, 0, False)


def test_stage_clock_off_and_on_give_the_same_energy():
    def run():
        got = []
        scorer = signals.FrameScorer(48, 64, estimated=False, sink=lambda i, e, m: got.append((e.copy(), m.copy())))
        for frame in _frames(9):
            scorer.push(frame)
        scorer.flush()
        return got

    plain = run()
    clock = signals.StageClock()
    signals.STAGE_CLOCK = clock
    try:
        timed = run()
    finally:
        signals.STAGE_CLOCK = None
    assert len(plain) == len(timed) == 9
    for (e0, m0), (e1, m1) in zip(plain, timed):
        assert e0.tobytes() == e1.tobytes() and m0.tobytes() == m1.tobytes()
    assert clock.frames == 9 and {"residual", "fuse", "thumbnails"} <= set(clock.seconds)
    assert all(v >= 0 for v in clock.seconds.values())


# ---------------------------------------------------------------------------------------------------------------
# pool_plan + pool_cells_planned: pool_cells with the overlaps computed once per geometry

POOL_CASES = {
    "crop_inside": (8.0, np.linspace(100.0, 460.0, 33), np.linspace(0.0, 360.0, 33), 80, 45),
    "letterbox_outside": (8.0, np.linspace(-40.0, 400.0, 17), np.linspace(0.0, 640.0, 17), 45, 80),
    "degenerate_and_ragged": (3.0, np.array([0.0, 0.0, 5.5, 7.0, 7.0, 20.0]), np.array([-2.0, 1.5, 9.0, 30.0]), 6, 8),
    "empty_grid": (4.0, np.array([0.0, 4.0]), np.array([0.0, 4.0]), 0, 0),
}


@pytest.mark.parametrize("name", POOL_CASES)
def test_pool_cells_planned_equals_pool_cells(name):
    cell, rows, cols, gh, gw = POOL_CASES[name]
    plan = K.pool.pool_plan(cell, rows, cols, gh, gw)
    for seed in range(3):
        energy = np.random.default_rng(seed).random((gh, gw)).astype(np.float32) * 255
        got = K.pool.pool_cells_planned(energy, plan)
        if not numba.config.DISABLE_JIT:  # plain Python multiplies a Python float by a float32 in float32
            assert got.tobytes() == K.pool_cells(energy, cell, rows, cols).tobytes()
        np.testing.assert_allclose(got, naive.naive_pool_cells(energy, cell, rows, cols), rtol=1e-5, atol=1e-3)


def test_pool_plan_checks_its_inputs():
    with pytest.raises(ValueError, match="non-decreasing"):
        K.pool.pool_plan(8.0, np.array([0.0, 9.0, 4.0]), np.array([0.0, 8.0]), 2, 2)
    plan = K.pool.pool_plan(8.0, np.array([0.0, 8.0]), np.array([0.0, 8.0]), 2, 2)
    with pytest.raises(ValueError, match="shape"):
        K.pool.pool_cells_planned(np.ones((3, 2), np.float32), plan)
