"""One call per frame for everything after the residual: camera compensation, dead zones, p95 normalisation and
the 1:1 fusion of motion and residual — fewer Python round trips on the scoring thread, which shares the GIL with
the decoding thread."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array
from .motion import compensate_median_into
from .order import normalise_p95_into

__all__ = ["fuse_energy"]


@njit(**JIT)
def _fuse_energy_kernel(velocity, residual, median, mv_deadzone, mv_floor, res_deadzone, res_floor, comp, out):
    gh, gw = residual.shape
    n = gh * gw
    if median:
        compensate_median_into(velocity, comp)
    else:
        # An explicit copy: numba's `comp[:] = velocity` pulls in its broadcasting machinery, 2.7 s of compile.
        for y in range(gh):
            for x in range(gw):
                comp[y, x, 0] = velocity[y, x, 0]
                comp[y, x, 1] = velocity[y, x, 1]
    speed = np.empty(n, dtype=np.float32)
    res = np.empty(n, dtype=np.float32)
    i = 0
    for y in range(gh):
        for x in range(gw):
            vx = comp[y, x, 0]
            vy = comp[y, x, 1]
            s = 0.0
            if not (np.isnan(vx) or np.isnan(vy)):
                s = np.sqrt(vx * vx + vy * vy) - mv_deadzone
            speed[i] = s if s > 0.0 else 0.0
            r = residual[y, x] - res_deadzone
            res[i] = r if r > 0.0 else 0.0
            i += 1
    speed_n = np.empty(n, dtype=np.float32)
    res_n = np.empty(n, dtype=np.float32)
    for which in range(2):  # one call site: each inlined copy of the order statistic costs ~0.6 s to compile
        src = speed if which == 0 else res
        dst = speed_n if which == 0 else res_n
        normalise_p95_into(src, mv_floor if which == 0 else res_floor, dst)
    i = 0
    for y in range(gh):
        for x in range(gw):
            out[y, x] = 0.5 * speed_n[i] + 0.5 * res_n[i]
            i += 1
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
        np.empty_like(velocity), out,
    )
