"""Exact order statistics shared by the kernels: sorting, k-th smallest values, median, 95th percentile.

Numba's ``np.sort``/``np.argsort`` compile a quicksort or mergesort specialisation per caller and dtype (1–2 s of
LLVM time each, measured); the selector only sorts short arrays (a rank's last bin) or sorts once per policy run,
so a heap sort — a few dozen lines that compile in a fraction of that — does the job. Every function here is
exact: the same inputs give the same outputs on every CPU (no fast-math, integer or order comparisons only).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT

__all__ = ["heapsort", "argsort_stable", "order_pair", "median", "normalise_p95_into"]


@njit(**JIT)
def sorts_before(a, b):
    """numpy's sort order on floats: ascending, NaN last."""
    return a < b or (b != b and a == a)


@njit(**JIT)
def _sift_down(values, root, end):
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and sorts_before(values[child], values[child + 1]):
            child += 1
        if not sorts_before(values[root], values[child]):
            return
        values[root], values[child] = values[child], values[root]
        root = child


@njit(**JIT)
def heapsort(values):
    """Sort a 1-D float array in place, ascending with NaN last (numpy's order); returns it."""
    n = values.shape[0]
    for root in range(n // 2 - 1, -1, -1):
        _sift_down(values, root, n)
    for end in range(n - 1, 0, -1):
        values[0], values[end] = values[end], values[0]
        _sift_down(values, 0, end)
    return values


@njit(**JIT)
def _key_before(keys, i, j):
    """(keys[i], i) < (keys[j], j) in numpy's float order: a total order, so any sort on it is stable."""
    a = keys[i]
    b = keys[j]
    if sorts_before(a, b):
        return True
    if sorts_before(b, a):
        return False
    return i < j


@njit(**JIT)
def argsort_stable(keys):
    """int64 permutation that sorts ``keys`` ascending (NaN last), ties by index: ``np.argsort(kind="stable")``."""
    n = keys.shape[0]
    order = np.arange(n)
    for root in range(n // 2 - 1, -1, -1):
        _sift_down_order(keys, order, root, n)
    for end in range(n - 1, 0, -1):
        order[0], order[end] = order[end], order[0]
        _sift_down_order(keys, order, 0, end)
    return order


@njit(**JIT)
def _sift_down_order(keys, order, root, end):
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and _key_before(keys, order[child], order[child + 1]):
            child += 1
        if not _key_before(keys, order[root], order[child]):
            return
        order[root], order[child] = order[child], order[root]
        root = child


@njit(**JIT)
def order_pair(values, k):
    """The k-th and (k+1)-th smallest of float64 ``values`` (0-based; the second is +inf when k is the last).

    Exact, O(n) expected, and ``values`` is left untouched: a quickselect on a copy with a median-of-three pivot
    and a three-way partition, so the many equal values of an energy map (mostly exact zeros) cost one pass
    instead of degrading to O(n²); short ranges and non-finite inputs finish with :func:`heapsort`. Measured
    against the 1024-bin histogram selection it replaced: 10 µs vs 10 µs on 3,600 values, 45 vs 34 µs on 14,400,
    and 0.4 s instead of 1.8 s to compile into each kernel that calls it.
    """
    n = values.shape[0]
    a = np.empty(n, dtype=np.float64)
    finite = True
    for i in range(n):
        v = values[i]
        a[i] = v
        finite = finite and np.isfinite(v)
    lo = 0
    hi = n  # rank k lies in a[lo:hi]; everything before lo is <= it, everything from hi on is >= it
    while finite and hi - lo > 16:
        x = a[lo]
        y = a[(lo + hi) // 2]
        z = a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))
        lt = lo
        i = lo
        gt = hi
        while i < gt:  # a[lo:lt] < pivot, a[lt:i] == pivot, a[gt:hi] > pivot
            v = a[i]
            if v < pivot:
                a[i] = a[lt]
                a[lt] = v
                lt += 1
                i += 1
            elif v > pivot:
                gt -= 1
                a[i] = a[gt]
                a[gt] = v
            else:
                i += 1
        if k < lt:
            hi = lt
        elif k >= gt:
            lo = gt
        else:
            nxt = pivot
            if k + 1 >= gt:
                nxt = np.inf
                for j in range(gt, n):
                    nxt = min(nxt, a[j])
            return pivot, nxt
    heapsort(a[lo:hi])
    nxt = a[k + 1] if k + 1 < hi else np.inf
    if k + 1 >= hi:
        for j in range(hi, n):
            nxt = min(nxt, a[j])
    return a[k], nxt


@njit(**JIT)
def median(values):
    """Median of a non-empty float64 array (numpy's: the mean of the two middle values when the count is even)."""
    n = values.shape[0]
    a, b = order_pair(values, (n - 1) // 2)
    if n % 2 == 1:
        return a
    return 0.5 * (a + b)


@njit(**JIT)
def normalise_p95_into(x, floor, out):
    """``out = clip(x / max(p95(x), floor), 0, 1)`` on flat arrays, p95 as numpy's linear percentile."""
    n = x.shape[0]
    if n == 0:
        return out
    # numpy's default ("linear") percentile: virtual index 0.95·(n − 1), lerp between its neighbours.
    pos = 0.95 * (n - 1)
    lo = int(np.floor(pos))
    gamma = pos - lo
    vals = np.empty(n, dtype=np.float64)
    for i in range(n):
        vals[i] = x[i]
    a, b = order_pair(vals, lo)
    if lo + 1 >= n:
        b = a
    diff = b - a
    p95 = b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma
    scale = max(p95, floor)
    for i in range(n):
        v = float(x[i]) / scale
        out[i] = min(max(v, 0.0), 1.0)
    return out
