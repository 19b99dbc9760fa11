"""NumPy twin of the attentive-probe loader's local variance (``kernels.ap.local_variance3``): the loader's own code."""

from __future__ import annotations

import numpy as np


def naive_local_var3(x: np.ndarray) -> np.ndarray:
    """``_local_var2d(x, 3)``: box means by a float32 integral image (edge padding), ``max(E[x²] − E[x]², 0)``;
    (H−1) × (W−1) because the integral image has no leading zero row/column."""
    def box(v):
        p = np.pad(v.astype(np.float32), ((1, 1), (1, 1)), mode="edge")
        ii = np.cumsum(np.cumsum(p, axis=0), axis=1)
        return (ii[3:, 3:] - ii[:-3, 3:] - ii[3:, :-3] + ii[:-3, :-3]) / 9.0

    x = x.astype(np.float32)
    m1 = box(x)
    return np.maximum(box(x * x) - m1 * m1, 0.0).astype(np.float32)
