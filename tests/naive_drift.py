"""Plain-NumPy twins of kernels/drift.py, written for clarity, not speed."""

from __future__ import annotations

import numpy as np


def naive_block_means(luma, block, step):
    gh, gw = luma.shape[0] // block, luma.shape[1] // block
    idx = np.arange(step // 2, block, step)
    out = np.zeros((gh, gw), np.float32)
    for by in range(gh):
        for bx in range(gw):
            out[by, bx] = luma[by * block + idx][:, bx * block + idx].astype(np.float64).mean()
    return out


def naive_refresh_drift_mask(thumbs, energy, eligible, mandatory, tau, weight, age_weight=0.0):
    t_n, c_n, _ = thumbs.shape
    last = np.full(thumbs.shape[1:], 128.0)
    acc = np.zeros(c_n)
    age = np.zeros(c_n)
    keep = np.zeros((t_n, c_n), bool)
    stale = np.zeros((t_n, c_n))
    for t in range(t_n):
        acc += energy[t]
        age += 1.0
        score = ((thumbs[t].astype(np.float64) - last) ** 2).mean(axis=1) + weight * acc + age_weight * age
        stale[t] = score
        take = mandatory[t] | (eligible[t] & (score >= tau))
        keep[t] = take
        acc[take] = 0.0
        age[take] = 0.0
        last[take] = thumbs[t][take]
    return keep, stale


def naive_refresh_drift_select(thumbs, energy, eligible, mandatory, k, weight=64.0, age_weight=0.0, iters=80):
    def count(tau):
        return int(naive_refresh_drift_mask(thumbs, energy, eligible, mandatory, tau, weight, age_weight)[0].sum())

    hi = 1.0
    while count(hi) > k and hi < 1e30:
        hi *= 16.0
    lo = hi
    while count(lo) <= k and lo > 1e-12:
        lo /= 16.0
    for _ in range(iters):
        mid = np.sqrt(lo * hi)
        if mid <= lo or mid >= hi:
            break
        if count(mid) > k:
            lo = mid
        else:
            hi = mid
    keep, stale = naive_refresh_drift_mask(thumbs, energy, eligible, mandatory, hi, weight, age_weight)
    keep, stale = keep.ravel().copy(), stale.ravel()
    n_kept = int(keep.sum())
    if n_kept < k:
        for i in np.argsort(-stale, kind="mergesort"):
            if n_kept >= k:
                break
            if eligible.ravel()[i] and not keep[i]:
                keep[i] = True
                n_kept += 1
    elif n_kept > k:
        for i in np.argsort(stale, kind="mergesort"):
            if n_kept <= k:
                break
            if keep[i] and not mandatory.ravel()[i]:
                keep[i] = False
                n_kept -= 1
    return keep.reshape(thumbs.shape[:2])
