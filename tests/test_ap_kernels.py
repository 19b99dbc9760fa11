"""The attentive-probe recipe's local-variance kernel against the loader's NumPy code, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from codec_select.kernels.ap import local_variance3
from naive_ap import naive_local_var3


@pytest.mark.parametrize("shape", [(2, 2), (3, 9), (17, 11), (40, 72)])
@pytest.mark.parametrize("scale", [1.0, 37.5, 1e4])
def test_local_variance3_matches_numpy(shape, scale):
    rng = np.random.default_rng(int(scale) + shape[0])
    x = (rng.random(shape) * scale).astype(np.float32)
    x[rng.random(shape) < 0.4] = 0  # flat patches: variances that cancel to zero
    got, want = local_variance3(x), naive_local_var3(x)
    assert got.dtype == np.float32 and got.shape == (shape[0] - 1, shape[1] - 1)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))  # the same bits, signed zeros too
    assert (got > 0).any() or scale == 0


def test_local_variance3_flat_and_invalid():
    np.testing.assert_array_equal(local_variance3(np.full((5, 6), 3.25, np.float32)), np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError):
        local_variance3(np.zeros((1, 5), np.float32))
    with pytest.raises((TypeError, ValueError)):
        local_variance3(np.zeros((4, 4), np.float64))
