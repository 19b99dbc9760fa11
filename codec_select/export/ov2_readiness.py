"""LLaVA-OneVision-2 input: ``readiness`` grouping, a group grows until its blocks are worth a group's canvases.

../shared/reference/llava_ov2_prep.md §4, on our block scores instead of bit cost. A group ``[s, e)`` of sampled
frames spends K = ((ipg−1)·S_full)//4 blocks on frames s+1..e−1; it is *ready* when the sum of the top-K block
scores there reaches a threshold and the frames owning them cover at least min(3, ipg−1) of three equal spans of
the group (so one burst does not fill every canvas). The threshold (``legacy``) is the mean of the same sum over
consecutive ``group_size`` chunks that have ≥ 4 frames, so on average a group is as long as a fixed chunk, shorter
where a lot happens, longer where little does. Growth runs e = s+8 … s+64, takes each ready e and stops once
growing gains < 5 %.

Unlike the reference, which drops fewer than 8 trailing frames, the tail joins the last group (or forms its own
group when there is none).
"""

from __future__ import annotations

import numpy as np

from .ov2_frames import GroupSpec

__all__ = ["MAX_GROUP", "MIN_GAIN", "MIN_GROUP", "readiness_groups"]

MIN_GROUP = 8
MAX_GROUP = 64
MIN_GAIN = 0.05
"""Relative gain of the top-K sum under which a ready group stops growing."""


def _topk_sum(scores: np.ndarray, s: int, e: int, k: int) -> tuple[float, np.ndarray]:
    """Sum of the top-k block scores of frames s+1..e−1, and the relative frame (1..e−s−1) of each of those blocks."""
    window = scores[s + 1 : e].reshape(-1)
    if window.size == 0 or k <= 0:
        return 0.0, np.zeros(0, np.int64)
    take = min(k, window.size)
    top = np.argpartition(-window, take - 1)[:take]
    return float(window[top].sum()), top // scores.shape[1] + 1


def _bins_hit(owners: np.ndarray, length: int) -> int:
    """Distinct spans of three (edges int32(linspace(1, max(2, L), 4))) that hold a top-K block's frame."""
    if owners.size == 0:
        return 0
    edges = np.linspace(1, max(2, length), 4).astype(np.int32)
    which = np.clip(np.searchsorted(edges, owners, side="right") - 1, 0, 2)
    return int(np.unique(which).size)


def readiness_groups(
    block_scores: np.ndarray, k: int, images_per_group: int, *, group_size: int = 32, min_group: int = MIN_GROUP,
    max_group: int = MAX_GROUP,
) -> list[GroupSpec]:
    """Readiness groups over ``block_scores`` float ``[n_sampled, blocks]`` (one row per sampled frame).

    Every sampled frame lands in exactly one group; groups hold ``min_group``..``max_group`` frames except a video
    shorter than ``min_group`` (one group) and a last group that took the short tail (up to max + min − 1)."""
    scores = np.asarray(block_scores, dtype=np.float64)
    n = scores.shape[0]
    if n == 0:
        return []
    if not 1 <= min_group <= max_group:
        raise ValueError(f"Invalid group bounds ({min_group}, {max_group}).")
    need = min(3, images_per_group - 1)
    chunks = [_topk_sum(scores, s, min(s + group_size, n), k)[0]
              for s in range(0, n, group_size) if min(s + group_size, n) - s >= 4]
    threshold = float(np.mean(chunks)) if chunks else 0.0
    specs: list[GroupSpec] = []
    s = 0
    while s < n:
        if n - s < min_group:  # the tail: never dropped
            if specs:
                last = specs.pop()
                specs.append(GroupSpec(last.start, n, "tail_merged", last.readiness))
            else:
                specs.append(GroupSpec(s, n, "end", {"threshold": threshold}))
            break
        stop = min(n, s + max_group)
        end, reason, info, prev = None, "max_group_frames", None, None
        for e in range(s + min_group, stop + 1):
            total, owners = _topk_sum(scores, s, e, k)
            if end is not None and prev is not None and total - prev < MIN_GAIN * max(prev, 1e-12):
                reason = "readiness_threshold_low_gain"
                break
            prev = total
            bins = _bins_hit(owners, e - s)
            if total >= threshold and bins >= need:
                end, reason, info = e, "readiness_threshold", {"sum": total, "threshold": threshold, "bins": bins}
        if end is None:
            end, reason = stop, "max_group_frames" if stop - s == max_group else "end"
            info = {"sum": _topk_sum(scores, s, end, k)[0], "threshold": threshold}
        specs.append(GroupSpec(s, end, reason, info))
        s = end
    return specs
