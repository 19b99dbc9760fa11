"""LLaVA-OneVision-2 input, frame side: which frames are sampled, how they are grouped, which are unusable.

Rules from ../shared/reference/llava_ov2_prep.md (§3 sampling and keyframe avoidance, §4 grouping, §5 filtering),
implemented on arrays so they are testable without a video. One deliberate difference: the reference drops the
frames of a short tail (its ``readiness`` grouping drops < 8 trailing frames; groups of < 4 frames get no canvases).
Here no sampled frame is ever dropped: a short tail is merged into the group before it (or, with
``tail="own"``, kept as its own group), and :class:`GroupSpec.stop_reason` says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_NUM_FRAMES",
    "DEFAULT_SAMPLE_FPS",
    "SAMPLINGS",
    "GroupSpec",
    "avoid_keyframes",
    "fixed_groups",
    "frame_is_bad",
    "sample_frame_ids",
]

SAMPLINGS = ("uniform_count", "fps")
DEFAULT_NUM_FRAMES = 1024
"""``uniform_count``'s N: the reference's ``run_preinfer`` default (every frame of a clip shorter than that)."""
DEFAULT_SAMPLE_FPS = 4.0
"""``fps`` sampling's rate: the reference's ``sample_fps``."""
KEYFRAME_REACH = 4
"""A sampled keyframe moves to the first non-key frame among fid+1, fid−1, … fid±4."""


def sample_frame_ids(
    num_frames: int, fps: float, *, sampling: str = "uniform_count", num_sampled: int = DEFAULT_NUM_FRAMES,
    sample_fps: float = DEFAULT_SAMPLE_FPS, keyframes: np.ndarray | None = None,
) -> np.ndarray:
    """Display-order frame ids to feed (int32, the reference's order; see :func:`avoid_keyframes`).

    - ``uniform_count``: ``np.linspace(0, T−1, N, dtype=int32)`` (values truncated, not rounded).
    - ``fps``: n = max(1, ⌈T / fps · sample_fps⌉) frames at ``round(i / sample_fps · fps)``, clipped to the video.

    ``keyframes`` (display-order indices) are avoided when given (None: no avoidance).
    """
    t = int(num_frames)
    if t < 1:
        raise ValueError(f"Invalid num_frames ({num_frames!r}). The video has no frame to sample.")
    if sampling == "uniform_count":
        if num_sampled < 1:
            raise ValueError(f"Invalid num_sampled ({num_sampled!r}). It must be >= 1.")
        ids = np.linspace(0, t - 1, int(num_sampled), dtype=np.int32)
        want = int(num_sampled)
    elif sampling == "fps":
        if not (fps > 0 and sample_fps > 0):
            raise ValueError(f"fps sampling needs a positive video fps and sample_fps (got {fps!r}, {sample_fps!r}).")
        want = max(1, math.ceil(t / fps * sample_fps))
        ids = np.clip(np.round(np.arange(want) / sample_fps * fps), 0, t - 1).astype(np.int32)
    else:
        raise ValueError(f"Invalid sampling ({sampling!r}). Supported values are {', '.join(SAMPLINGS)}.")
    if keyframes is None:
        return np.asarray(list(dict.fromkeys(ids.tolist())), dtype=np.int32)
    return avoid_keyframes(ids, keyframes, t, want)


def avoid_keyframes(ids: np.ndarray, keyframes: np.ndarray, num_frames: int, want: int) -> np.ndarray:
    """Move sampled keyframes to a neighbour, dedupe, refill to ``min(want, T)`` (the reference's rules, §3).

    Why: a keyframe carries no motion information, so the codec signals have nothing to say about it. A keyframe
    moves to the first non-key frame among fid+1, fid−1, fid+2, … fid±4 (stays if there is none). Duplicates are
    removed keeping order. If fewer than ``min(want, T)`` remain, unused non-key frames are added by (distance to
    the nearest kept frame, distance to the middle, fid), then any unused frame; only this refill path sorts."""
    t = int(num_frames)
    keys = {int(k) for k in np.asarray(keyframes).reshape(-1).tolist() if 0 <= k < t}
    moved = []
    for fid in np.asarray(ids).reshape(-1).tolist():
        if fid in keys:
            for d in range(1, KEYFRAME_REACH + 1):
                if fid + d < t and fid + d not in keys:
                    fid += d
                    break
                if fid - d >= 0 and fid - d not in keys:
                    fid -= d
                    break
        moved.append(int(fid))
    kept = list(dict.fromkeys(moved))
    target = min(int(want), t)
    if len(kept) >= target:
        return np.asarray(kept[:target], dtype=np.int32)
    used = np.zeros(t, dtype=bool)
    used[kept] = True
    kept_arr = np.flatnonzero(used)
    free = np.flatnonzero(~used)
    pos = np.searchsorted(kept_arr, free)  # distance to the nearest kept frame, on either side
    left = np.where(pos > 0, free - kept_arr[np.maximum(pos - 1, 0)], t)
    right = np.where(pos < kept_arr.size, kept_arr[np.minimum(pos, kept_arr.size - 1)] - free, t)
    dist = np.minimum(left, right)
    is_key = np.isin(free, np.fromiter(keys, dtype=np.int64, count=len(keys)))
    order = np.lexsort((free, np.abs(free - t // 2), dist, is_key))  # non-key first, then the reference's keys
    extra = free[order[: target - len(kept)]]
    return np.sort(np.concatenate([kept_arr, extra])).astype(np.int32)


@dataclass(frozen=True)
class GroupSpec:
    """One group: a contiguous run ``[start, end)`` of the sampled frames (indices into ``frame_ids``)."""

    start: int
    end: int
    stop_reason: str
    """``"group_size"`` (a full chunk), ``"tail"`` (a short last chunk kept as its own group) or
    ``"tail_merged"`` (a full chunk that also took the short tail after it); readiness grouping:
    ``"readiness_threshold_low_gain"``, ``"readiness_threshold"``, ``"max_group_frames"``, ``"end"``."""
    readiness: dict | None = None
    """Readiness grouping only: the window's top-K score sum, the threshold and the coverage bins hit."""

    @property
    def frame_count(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "frame_count": self.frame_count, "stop_reason": self.stop_reason,
                "readiness": self.readiness}


def fixed_groups(num_sampled: int, group_size: int, *, min_tail: int = 4, tail: str = "merge") -> list[GroupSpec]:
    """Chunks of ``group_size`` sampled frames (the reference's ``fixed`` grouping), without dropping the tail.

    A last chunk shorter than ``min_tail`` frames (too few to fill a group's canvases with whole frames) joins
    the chunk before it when ``tail="merge"`` (default), or stays its own group with ``tail="own"``; a chunk
    with at least ``min_tail`` frames is always its own group. A video with fewer frames than ``group_size`` is one
    group."""
    if group_size < 1:
        raise ValueError(f"Invalid group_size ({group_size!r}). It must be >= 1.")
    if tail not in ("merge", "own"):
        raise ValueError(f"Invalid tail ({tail!r}). Supported values are merge, own.")
    specs = [GroupSpec(s, min(s + group_size, num_sampled), "group_size") for s in range(0, num_sampled, group_size)]
    if len(specs) > 1 and specs[-1].frame_count < group_size:
        last = specs.pop()
        if last.frame_count < min_tail and tail == "merge":
            prev = specs.pop()
            specs.append(GroupSpec(prev.start, last.end, "tail_merged"))
        else:
            specs.append(GroupSpec(last.start, last.end, "tail"))
    elif specs and specs[-1].frame_count < group_size:
        specs[-1] = GroupSpec(specs[-1].start, specs[-1].end, "tail")
    return specs


def frame_is_bad(rgb: np.ndarray) -> str:
    """Why a (resized, RGB) frame is unusable — ``"black"``, ``"solid"``, ``"green"`` — or ``""`` (§5 thresholds;
    Y is OpenCV's BGR→YUV luma, 0.299 R + 0.587 G + 0.114 B).

    Black: mean Y ≤ 8 and std Y ≤ 6. Solid: std Y ≤ 4, every channel's std ≤ 4 and max−min ≤ 12. Green-corrupt
    (a decoder's zeroed YUV shows as saturated green): ≥ 35 % of pixels with G ≥ 180, R ≤ 90, B ≤ 90; or mean G > 120,
    mean G − max(mean R, mean B) > 80 and std G < 50."""
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"frame_is_bad needs an RGB image [H, W, 3], got {img.shape}.")
    planes = np.ascontiguousarray(np.moveaxis(img, 2, 0)).reshape(3, -1)  # R, G, B rows: fast reductions
    y = 0.299 * planes[0].astype(np.float32) + 0.587 * planes[1] + 0.114 * planes[2]
    mean_y, std_y = float(y.mean()), float(y.std())
    if mean_y <= 8.0 and std_y <= 6.0:
        return "black"
    if std_y <= 4.0:  # only then can every channel be flat (checked on the channels themselves)
        span = planes.max(axis=1).astype(np.int32) - planes.min(axis=1)
        if bool(np.all(span <= 12)) and bool(np.all(planes.std(axis=1, dtype=np.float32) <= 4.0)):
            return "solid"
    mean_r, mean_g, mean_b = (float(m) for m in planes.mean(axis=1, dtype=np.float64))
    # ≥ 35 % of pixels with G ≥ 180 needs mean G ≥ 63: skip the per-pixel test on ordinary frames.
    if mean_g >= 0.35 * 180:
        r, g, b = planes
        if float(np.count_nonzero((g >= 180) & (r <= 90) & (b <= 90))) / g.size >= 0.35:
            return "green"
    if mean_g > 120 and mean_g - max(mean_r, mean_b) > 80 and float(planes[1].std(dtype=np.float32)) < 50:
        return "green"
    return ""
