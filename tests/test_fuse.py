"""fuse_energy against the same math written with numpy, and the fusion's known answers."""

from __future__ import annotations

import numpy as np
import pytest
from codec_select.kernels.fuse import fuse_energy


def naive_fuse(velocity, residual, median, mv_dz, mv_floor, res_dz, res_floor):
    v = velocity.astype(np.float64)
    if median:
        for comp in range(2):
            ok = ~np.isnan(v[..., comp])
            if ok.any():
                v[..., comp] -= np.median(v[..., comp][ok])
    speed = np.sqrt(v[..., 0] ** 2 + v[..., 1] ** 2)
    speed = np.where(np.isnan(speed), 0.0, np.maximum(speed - mv_dz, 0.0)).astype(np.float32)
    res = np.maximum(residual - res_dz, 0.0).astype(np.float32)
    a = np.clip(speed / max(np.percentile(speed, 95), mv_floor), 0, 1)
    b = np.clip(res / max(np.percentile(res, 95), res_floor), 0, 1)
    return 0.5 * a + 0.5 * b


RNG = np.random.default_rng(3)


def _flow(gh, gw, nan_share):
    v = RNG.normal(2, 3, (gh, gw, 2)).astype(np.float32)
    v[RNG.random((gh, gw)) < nan_share] = np.nan
    return v


CASES = [
    (_flow(80, 45, 0.2), RNG.gamma(2, 4, (80, 45)).astype(np.float32)),
    (_flow(7, 3, 0.0), np.zeros((7, 3), np.float32)),
    (_flow(5, 5, 1.0), RNG.gamma(2, 4, (5, 5)).astype(np.float32)),  # no vectors at all
    (np.zeros((1, 1, 2), np.float32), np.full((1, 1), 50, np.float32)),
]


@pytest.mark.parametrize("velocity,residual", CASES)
@pytest.mark.parametrize("median", [True, False])
def test_matches_numpy(velocity, residual, median):
    got = fuse_energy(velocity, residual, median=median, mv_deadzone=0.5, mv_floor=1.0, res_deadzone=3.0, res_floor=6.0)
    want = naive_fuse(velocity, residual, median, 0.5, 1.0, 3.0, 6.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{velocity.shape} median={median}")


def test_pure_translation_is_removed_by_median():
    v = np.full((10, 10, 2), 4.0, np.float32)
    out = fuse_energy(v, np.zeros((10, 10), np.float32), median=True, mv_deadzone=0.5, mv_floor=1.0,
                      res_deadzone=3.0, res_floor=6.0)
    assert out.max() == 0.0
    out = fuse_energy(v, np.zeros((10, 10), np.float32), median=False, mv_deadzone=0.5, mv_floor=1.0,
                      res_deadzone=3.0, res_floor=6.0)
    assert np.all(out == 0.5)


def test_rejects_bad_dtype():
    with pytest.raises(ValueError, match="velocity must have dtype float32"):
        fuse_energy(np.zeros((2, 2, 2)), np.zeros((2, 2), np.float32), median=True, mv_deadzone=0, mv_floor=1,
                    res_deadzone=0, res_floor=1)
