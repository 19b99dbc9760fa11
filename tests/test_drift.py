"""The drift-aware refresh kernels against their plain-NumPy twins, and the rule on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from codec_select.kernels.drift import block_means, refresh_drift_mask, refresh_drift_select
from naive_drift import naive_block_means, naive_refresh_drift_mask, naive_refresh_drift_select

RNG = np.random.default_rng(7)

LUMA_CASES = [
    np.zeros((16, 16), np.uint8),
    RNG.integers(0, 256, (64, 40), dtype=np.uint8),
    RNG.integers(0, 256, (17, 31), dtype=np.uint8),  # odd sizes: the ragged edge is ignored
    np.full((8, 8), 255, np.uint8),
]


@pytest.mark.parametrize("luma", LUMA_CASES)
@pytest.mark.parametrize("block,step", [(8, 2), (8, 1), (4, 4), (1, 1)])
def test_block_means_matches_numpy(luma, block, step):
    np.testing.assert_allclose(block_means(luma, block, step), naive_block_means(luma, block, step), rtol=1e-6,
                               err_msg=f"{luma.shape} block={block} step={step}")


def _case(seed, t=12, c=9, s=4, drift=True):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (1, c, s))
    steps = rng.normal(0, 6, (t, c, s)) if drift else np.zeros((t, c, s))
    thumbs = np.clip(base + np.cumsum(steps, axis=0), 0, 255).astype(np.float32)
    energy = (rng.random((t, c)) * (rng.random((t, c)) < 0.3)).astype(np.float32)
    eligible = np.ones((t, c), bool)
    mandatory = np.zeros((t, c), bool)
    mandatory[0] = True
    eligible[0] = False
    return thumbs, energy, eligible, mandatory


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tau", [0.0, 10.0, 150.0, 1e9])
@pytest.mark.parametrize("age_weight", [0.0, 0.5])
def test_drift_mask_matches_numpy(seed, tau, age_weight):
    args = _case(seed)
    keep, stale = refresh_drift_mask(*args, tau, 64.0, age_weight)
    keep_n, stale_n = naive_refresh_drift_mask(*args, tau, 64.0, age_weight)
    np.testing.assert_array_equal(keep, keep_n)
    np.testing.assert_allclose(stale, stale_n, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("k", [9, 20, 40, 108])
@pytest.mark.parametrize("age_weight", [0.0, 0.5])
def test_drift_select_exact_k_and_matches_numpy(seed, k, age_weight):
    args = _case(seed)
    keep = refresh_drift_select(*args, k, weight=64.0, age_weight=age_weight)
    assert keep.sum() == k and keep[0].all()
    np.testing.assert_array_equal(keep, naive_refresh_drift_select(*args, k, weight=64.0, age_weight=age_weight))


def test_age_spreads_refreshes_of_a_static_shot_over_time():
    t, c = 33, 16
    thumbs = np.full((t, c, 4), 90.0, np.float32)
    energy = np.zeros((t, c), np.float32)
    eligible = np.ones((t, c), bool)
    eligible[0] = False
    mandatory = ~eligible
    keep = refresh_drift_select(thumbs, energy, eligible, mandatory, c * 5, age_weight=1.0)
    per_cell = keep[1:].sum(axis=0)
    assert per_cell.min() >= 3 and per_cell.max() <= 5, "every cell is refreshed about equally often"


def test_static_cells_never_refresh_and_drifting_ones_do():
    t, c = 20, 4
    thumbs = np.full((t, c, 4), 100.0, np.float32)
    thumbs[:, 2] += np.arange(t, dtype=np.float32)[:, None] * 5  # cell 2 drifts 5 levels per slot
    energy = np.zeros((t, c), np.float32)
    eligible = np.ones((t, c), bool)
    eligible[0] = False
    mandatory = np.zeros((t, c), bool)
    mandatory[0] = True
    keep = refresh_drift_select(thumbs, energy, eligible, mandatory, c + 6)
    assert keep[1:, [0, 1, 3]].sum() == 0
    assert keep[1:, 2].sum() == 6
    kept_slots = np.flatnonzero(keep[:, 2])[1:]
    assert np.all(np.diff(kept_slots) >= 2) and np.ptp(np.diff(kept_slots)) <= 1, "refreshes are evenly spaced"


def test_codec_energy_triggers_refresh_without_drift():
    thumbs, _, eligible, mandatory = _case(0, drift=False)
    energy = np.zeros(thumbs.shape[:2], np.float32)
    energy[5, 3] = 10.0
    keep = refresh_drift_select(thumbs, energy, eligible, mandatory, thumbs.shape[1] + 1)
    assert keep[5, 3] and keep[1:].sum() == 1


def test_bad_input():
    thumbs, energy, eligible, mandatory = _case(0)
    with pytest.raises(ValueError, match="thumbs must have dtype float32"):
        refresh_drift_select(thumbs.astype(np.float64), energy, eligible, mandatory, 10)
    with pytest.raises(ValueError, match="energy must have shape"):
        refresh_drift_select(thumbs, energy[:3], eligible, mandatory, 10)
