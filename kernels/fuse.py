"""One call per frame for everything after the residual: camera compensation, dead zones, p95 normalisation and
the 1:1 fusion of motion and residual — fewer Python round trips on the scoring thread, which shares the GIL with
the decoding thread."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array
from .order import order_pair

__all__ = ["fuse_energy", "kth_pair_split"]


@njit(**JIT)
def _min_or_inf(values, n):
    m = np.inf
    for i in range(n):
        m = min(m, values[i])
    return m


@njit(**JIT)
def kth_pair_split(neg, n_neg, n_zero, pos, n_pos, k):
    """The k-th and (k+1)-th smallest (0-based; the second +inf past the end) of ``n_neg`` negatives ``neg[:n_neg]``,
    ``n_zero`` zeros and ``n_pos`` positives ``pos[:n_pos]``: :func:`order_pair` over only the group that holds the
    rank (energy maps are mostly exact zeros). Exact; a zero comes back as +0.0 whatever its sign was."""
    if k < n_neg:
        a, b = order_pair(neg[:n_neg], k)
        if k + 1 >= n_neg:
            b = 0.0 if n_zero > 0 else _min_or_inf(pos, n_pos)
        return a, b
    k -= n_neg
    if k < n_zero:
        if k + 1 < n_zero:
            return 0.0, 0.0
        return 0.0, _min_or_inf(pos, n_pos)
    return order_pair(pos[:n_pos], k - n_zero)


@njit(**JIT)
def _median_of_component(f, comp, n, neg, pos):
    """numpy's median of ``f[2·i + comp]`` over i < n, NaN skipped (0.0 when all are NaN), in one pass that sorts
    the values into negatives, zeros and positives, then :func:`kth_pair_split`."""
    n_neg = 0
    n_pos = 0
    n_zero = 0
    for i in range(n):
        v = f[2 * i + comp]
        if v < 0.0:
            neg[n_neg] = v
            n_neg += 1
        elif v > 0.0:
            pos[n_pos] = v
            n_pos += 1
        elif v == 0.0:
            n_zero += 1
    m = n_neg + n_zero + n_pos
    if m == 0:
        return 0.0
    a, b = kth_pair_split(neg, n_neg, n_zero, pos, n_pos, (m - 1) // 2)
    if m % 2 == 1:
        return a
    return 0.5 * (a + b)


@njit(**JIT)
def _p95_scale(x, floor, pos):
    """``max(p95(x), floor)`` for ``x >= 0`` (NaN-free), p95 as numpy's linear percentile: the order statistic
    over the positives only (the zeros are counted, not sorted)."""
    n = x.shape[0]
    pos_n = 0
    for i in range(n):
        v = x[i]
        if v > 0.0:
            pos[pos_n] = v
            pos_n += 1
    # numpy's default ("linear") percentile: virtual index 0.95·(n − 1), lerp between its neighbours.
    p = 0.95 * (n - 1)
    lo = int(np.floor(p))
    gamma = p - lo
    a, b = kth_pair_split(pos, 0, n - pos_n, pos, pos_n, lo)
    if lo + 1 >= n:
        b = a
    diff = b - a
    p95 = b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma
    return max(p95, floor)


@njit(**JIT)
def _fuse_energy_kernel(velocity, residual, median, mv_deadzone, mv_floor, res_deadzone, res_floor, out):
    gh, gw = residual.shape
    n = gh * gw
    if n == 0:
        return out
    f = velocity.reshape(2 * n)  # (x, y) interleaved
    neg = np.empty(n, dtype=np.float64)
    pos = np.empty(n, dtype=np.float64)
    med_x = 0.0
    med_y = 0.0
    if median:
        # The median translation per component over the cells with a vector, as motion.compensate_median_into;
        # only |v − median| is used below, so a zero's sign cannot matter.
        med_x = _median_of_component(f, 0, n, neg, pos)
        med_y = _median_of_component(f, 1, n, neg, pos)
    speed = np.empty(n, dtype=np.float32)
    res = np.empty(n, dtype=np.float32)
    r2 = residual.reshape(n)
    for i in range(n):
        # float32 like the compensated flow it replaces: (float(v) − median) rounded to float32, then squared.
        vx = np.float32(float(f[2 * i]) - med_x)
        vy = np.float32(float(f[2 * i + 1]) - med_y)
        s = 0.0
        if not (np.isnan(vx) or np.isnan(vy)):
            s = np.sqrt(vx * vx + vy * vy) - mv_deadzone
        speed[i] = s if s > 0.0 else 0.0
        r = r2[i] - res_deadzone
        res[i] = r if r > 0.0 else 0.0
    speed_scale = 0.0
    res_scale = 0.0
    for which in range(2):  # one call site: each inlined copy of the order statistic costs ~0.6 s to compile
        scale = _p95_scale(speed if which == 0 else res, mv_floor if which == 0 else res_floor, pos)
        if which == 0:
            speed_scale = scale
        else:
            res_scale = scale
    o = out.reshape(n)
    for i in range(n):
        # Each half rounded to float32 first, as the normalised maps were stored.
        a = np.float32(min(max(float(speed[i]) / speed_scale, 0.0), 1.0))
        b = np.float32(min(max(float(res[i]) / res_scale, 0.0), 1.0))
        o[i] = 0.5 * a + 0.5 * b
    return out


def fuse_energy(
    velocity: np.ndarray, residual: np.ndarray, *, median: bool, mv_deadzone: float, mv_floor: float,
    res_deadzone: float, res_floor: float,
) -> np.ndarray:
    """float32 [gh, gw] energy of one frame.

    ``½·clip(s / max(p95(s), mv_floor)) + ½·clip(r / max(p95(r), res_floor))`` with ``s = max(|v − median(v)| −
    mv_deadzone, 0)`` (median over cells with a vector; NaN velocity → 0; no median when ``median`` is False) and
    ``r = max(residual − res_deadzone, 0)``. velocity float32 [gh, gw, 2] (NaN = no vector), residual float32 [gh, gw].
    """
    check_array("velocity", velocity, np.float32, shape=(None, None, 2))
    check_array("residual", residual, np.float32, shape=velocity.shape[:2])
    if not (mv_floor > 0 and res_floor > 0):
        raise ValueError("floors must be > 0")
    out = np.empty(residual.shape, dtype=np.float32)
    return _fuse_energy_kernel(
        velocity, residual, bool(median), float(mv_deadzone), float(mv_floor), float(res_deadzone), float(res_floor),
        out,
    )
