"""select_patches end to end on synthetic clips with known motion, and on the real phone clips."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import SHARED_VIDEOS

import codec_select
from codec_select import select_patches
from codec_select.policies import POLICIES, apply_policy
from codec_select.select import frame_grid, slot_scores


def covered_cells(sel, scene) -> np.ndarray:
    """bool [64, Hp, Wp]: cells the moving boxes touch in each slot or since the previous slot."""
    g = sel.geometry
    rows, cols = g.row_edges(), g.col_edges()
    out = np.zeros(sel.grid_thw, dtype=bool)
    ids = sel.frame_ids
    for k in range(64):
        lo = ids[k - 1] if k else ids[0]
        for f in range(lo, ids[k] + 1):
            for y0, y1, x0, x1 in scene.boxes[f]:
                hr = (rows[:-1] < y1) & (rows[1:] > y0)
                wr = (cols[:-1] < x1) & (cols[1:] > x0)
                out[k] |= hr[:, None] & wr[None, :]
    return out


def check_indices(sel, k):
    idx = sel.visible_indices
    assert idx.dtype == np.int64 and idx.size == k
    assert np.all(np.diff(idx) > 0), "indices must be unique and sorted"
    assert idx[0] >= 0 and idx[-1] < 64 * sel.geometry.cells
    pos = sel.positions_thw
    assert pos.dtype == np.int32 and pos.shape == (k, 3)
    g = sel.geometry
    np.testing.assert_array_equal(pos[:, 0] * g.cells + pos[:, 1] * g.grid_w + pos[:, 2], idx)


@pytest.mark.parametrize("policy", ["refresh", "topk"])
@pytest.mark.parametrize("fixture", ["square_clip", "square_clip_nob"])
def test_moving_square_wins_the_budget(request, fixture, policy):
    path, scene = request.getfixturevalue(fixture)
    sel = select_patches(path, budget=1024, policy=policy)
    check_indices(sel, 1024)
    assert sel.signals == "codec-mv" and sel.codec == "h264"
    mask = sel.mask
    assert mask[0].all(), "first_full keeps every cell of slot 0"
    covered = covered_cells(sel, scene)
    rest = mask[1:]
    share = (rest & covered[1:]).sum() / rest.sum()
    assert share >= 0.85, f"only {share:.1%} of the non-mandatory cells are on the moving square"


def test_same_bytes_every_run(square_clip):
    path, _ = square_clip
    a = select_patches(path, budget=1024)
    b = select_patches(path, budget=1024)
    assert a.visible_indices.tobytes() == b.visible_indices.tobytes()
    assert a.scores.tobytes() == b.scores.tobytes()


def _cell_area(sel) -> float:
    g = sel.geometry
    return float(np.diff(g.row_edges())[0] * np.diff(g.col_edges())[0])


def test_pan_alone_does_not_win(pan_clip):
    """A camera pan over a static scene is compensated: it leaves a small fraction of the uncompensated energy,
    spread evenly, instead of winning the budget."""
    path, _ = pan_clip
    for how in ("median", "similarity"):
        comp = select_patches(path, budget=2048, policy="topk", motion_compensation=how)
        raw = select_patches(path, budget=2048, policy="topk", motion_compensation="none")
        assert comp.scores[1:].sum() < 0.1 * raw.scores[1:].sum(), f"{how} compensation removed too little"
        cols = comp.scores[1:].sum(axis=(0, 1))
        assert cols.max() < 2 * cols.mean(), "compensated pan energy piles up in some columns"
        assert comp.patches_per_slot.sum() == 2048


def test_static_scene_is_quiet(static_clip, square_clip):
    path, _ = static_clip
    sel = select_patches(path, budget=1024)
    # A cell fully busy for one frame scores its source area; compression noise and I-frame refreshes stay far below.
    assert float(sel.scores[1:].max()) < 0.05 * _cell_area(sel)
    moving = select_patches(square_clip[0], budget=1024)
    assert float(moving.scores[1:].max()) > 0.5 * _cell_area(moving)


@pytest.mark.parametrize("encoder", ["libx265", "libvpx-vp9", "libsvtav1", "mpeg4"])
def test_other_codecs(encoded_clips, encoder):
    if encoder not in encoded_clips:
        pytest.skip(f"PyAV has no {encoder} encoder here")
    path, scene = encoded_clips[encoder]
    sel = select_patches(path, budget=1024)
    check_indices(sel, 1024)
    if encoder == "mpeg4":
        assert sel.signals == "codec-mv"
    else:
        assert sel.signals == "estimated-motion"
    covered = covered_cells(sel, scene)
    share = (sel.mask[1:] & covered[1:]).sum() / sel.mask[1:].sum()
    assert share >= 0.6, f"{encoder}: only {share:.1%} on the square"


def test_estimated_motion_on_h264_when_asked(square_clip):
    path, scene = square_clip
    sel = select_patches(path, budget=1024, signals="estimated-motion")
    assert sel.signals == "estimated-motion"
    check_indices(sel, 1024)


@pytest.mark.parametrize("geometry,k,cells", [("ap224", 4096, 256), ("llava576", 10368, 1296), ("native", 4096, None)])
def test_geometries(square_clip, geometry, k, cells):
    path, _ = square_clip
    sel = select_patches(path, budget=k if geometry != "native" else None, geometry=geometry)
    if cells:
        assert sel.geometry.cells == cells
    check_indices(sel, sel.budget)
    assert sel.mask[0].all()
    if geometry == "llava576":
        valid = sel.geometry.valid_mask()
        assert not (sel.mask[1:] & ~valid[None]).any(), "padding cells are never chosen by the policy"


def test_shared_video_llava_layout_matches_reference_shape():
    if not SHARED_VIDEOS:
        pytest.skip("../shared/videos not present")
    sel = select_patches(SHARED_VIDEOS[0], geometry="llava576")
    assert sel.budget == 10368 and sel.geometry.grid_h == 36
    assert sel.geometry.valid_mask().sum() == 720  # 360x640 portrait: 36 x 20 valid cells, as the reference
    assert sel.patches_per_slot[0] == 1296
    assert sel.frame_ids[-1] == sel.num_frames - 1
    np.testing.assert_array_equal(sel.frame_ids, np.floor(np.linspace(0, sel.num_frames - 1, 64)).astype(np.int64))


def test_public_api_is_small():
    assert {"select_patches", "Selection", "Geometry", "CodecSelectError"} <= set(codec_select.__all__)


def test_frame_grid_repeats_for_short_videos():
    ids = frame_grid(10)
    assert ids.shape == (64,) and ids[0] == 0 and ids[-1] == 9 and np.all(np.diff(ids) >= 0)


def test_slot_scores_accumulate():
    energy = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    ids = np.array([0, 3, 3, 9] + [9] * 60)
    out = slot_scores(energy, ids, accumulate=True)
    assert out[0, 0, 0] == 0 and out[1, 0, 0] == 1 + 2 + 3 and out[2, 0, 0] == 0 and out[3, 0, 0] == sum(range(4, 10))
    np.testing.assert_array_equal(slot_scores(energy, ids, accumulate=False)[:, 0, 0], ids)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_policies_exact_k_with_mandatory(policy):
    from codec_select.geometry import make_geometry

    g = make_geometry("ap224", 240, 320)
    rng = np.random.default_rng(0)
    scores = rng.random((64, 16, 16)).astype(np.float32)
    idx = apply_policy(policy, scores, g, 2048)
    assert idx.size == 2048 and np.all(np.diff(idx) > 0)
    assert set(range(256)) <= set(idx.tolist())


def test_uniform_policy_is_linspace_frames():
    from codec_select.geometry import make_geometry

    g = make_geometry("ap224", 240, 320)
    idx = apply_policy("uniform", np.zeros((64, 16, 16), np.float32), g, 16 * 256)
    slots = np.unique(idx // 256)
    np.testing.assert_array_equal(slots, np.round(np.linspace(0, 63, 16)).astype(int))


def test_bad_options_are_value_errors(square_clip):
    path, _ = square_clip
    with pytest.raises(ValueError, match=re.escape("Invalid geometry ('square'). Supported values are")):
        select_patches(path, geometry="square")
    with pytest.raises(ValueError, match=re.escape("Invalid policy ('best')")):
        select_patches(path, policy="best")
    with pytest.raises(ValueError, match="Invalid budget"):
        select_patches(path, budget=10)
    with pytest.raises(ValueError, match="Invalid budget"):
        select_patches(path, budget=10**7)


@pytest.mark.parametrize("accumulate", [True, False])
def test_slot_frames_known_in_advance_cut_work_not_bytes(accumulate, monkeypatch):
    """With the packet timeline (mode="auto") the slot frames are known before decoding: only they get thumbnails
    (and, without accumulation, energy). The selection is byte for byte the one of a pass that scores every frame
    (mode="full" plans nothing)."""
    import codec_select.signals as signals

    calls = {"means": 0, "residual": 0}
    means, residual = signals.block_means, signals.mc_residual

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(signals, "block_means", counted("means", means))
    monkeypatch.setattr(signals, "mc_residual", counted("residual", residual))
    video = codec_select.sample_video()
    planned = select_patches(video, accumulate=accumulate)
    cut = dict(calls)
    calls.update(means=0, residual=0)
    every = select_patches(video, accumulate=accumulate, mode="full")
    assert planned.mode == every.mode == "full"
    np.testing.assert_array_equal(planned.visible_indices, every.visible_indices)
    np.testing.assert_array_equal(planned.thumbnails, every.thumbnails)
    np.testing.assert_array_equal(planned.scores, every.scores)
    assert calls["means"] == every.num_frames and cut["means"] <= 64
    if accumulate:
        assert cut["residual"] == calls["residual"]
    else:
        assert cut["residual"] < 64 < calls["residual"]
