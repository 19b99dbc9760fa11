"""The quality metrics on cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codec_select.eval.metrics import hold_psnr, hold_reconstruction, motion_recall
from codec_select.geometry import make_geometry

G = make_geometry("ap224", 224, 224)


def _frames(seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(64, 224, 224), dtype=np.uint8)


def test_identical_frames_any_selection_is_exact():
    frame = _frames()[0]
    canvas = np.broadcast_to(frame, (64, 224, 224)).copy()
    rng = np.random.default_rng(1)
    for _ in range(3):
        mask = rng.random((64, 16, 16)) < 0.1
        mask[0] = True  # every cell shown at least once
        assert hold_psnr(canvas, mask, G) == math.inf


def test_select_everything_is_exact():
    canvas = _frames()
    assert hold_psnr(canvas, np.ones((64, 16, 16), bool), G) == math.inf
    np.testing.assert_array_equal(hold_reconstruction(canvas, np.arange(64 * 256), 14), canvas)


def test_hold_rule_last_then_next():
    canvas = np.zeros((64, 224, 224), np.uint8)
    canvas[:] = np.arange(64, dtype=np.uint8)[:, None, None]  # frame t has value t
    mask = np.zeros((64, 16, 16), bool)
    mask[10, 0, 0] = mask[30, 0, 0] = True
    recon = hold_reconstruction(canvas, mask, 14)
    cell = recon[:, 0, 0]
    assert np.all(cell[:10] == 10), "before the first keep a cell shows its next kept version"
    assert np.all(cell[10:30] == 10) and np.all(cell[30:] == 30)
    assert np.all(recon[:, 20, 20] == 128), "a never-kept cell is mid-grey"


def test_psnr_is_one_mse_over_all_frames():
    canvas = np.zeros((64, 224, 224), np.uint8)
    canvas[32:] = 10  # half the frames differ by 10 everywhere
    mask = np.zeros((64, 16, 16), bool)
    mask[0] = True
    expected = 10 * math.log10(255**2 / (0.5 * 100))
    assert hold_psnr(canvas, mask, G) == pytest.approx(expected, abs=1e-6)


def test_padding_cells_do_not_count():
    g = make_geometry("llava576", 640, 360)
    canvas = np.zeros((64, 576, 576), np.uint8)
    canvas[1:, :, :100] = 200  # changes only inside the left padding band
    mask = np.zeros((64, 36, 36), bool)
    mask[0] = True
    assert hold_psnr(canvas, mask, g) == math.inf


def test_motion_recall():
    change = np.zeros((64, 16, 16), np.float32)
    change[5, 3, 4] = 2.0
    change[9, 1, 1] = 6.0
    mask = np.zeros((64, 16, 16), bool)
    assert motion_recall(change, mask) == 0.0
    mask[9, 1, 1] = True
    assert motion_recall(change, mask) == pytest.approx(0.75)
    mask[5, 3, 4] = True
    assert motion_recall(change, mask) == 1.0
    assert motion_recall(np.zeros_like(change), mask) == 1.0
    # oracle at K = all changed cells has recall 1
    order = np.argsort(-change.ravel(), kind="stable")[: int((change > 0).sum())]
    assert motion_recall(change, order) == 1.0
