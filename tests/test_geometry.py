"""Geometry presets: sizes, valid cells and the source-pixel edges of each cell."""

from __future__ import annotations

import re

import numpy as np
import pytest

from codec_select.geometry import make_geometry


def test_ap224_landscape_crop():
    g = make_geometry("ap224", 240, 320)
    assert (g.canvas_h, g.canvas_w, g.patch, g.grid_h, g.grid_w) == (224, 224, 14, 16, 16)
    assert (g.scaled_h, g.scaled_w) == (224, 298) and g.off_x == -37 and g.off_y == 0
    assert g.valid_mask().all()
    cols = g.col_edges()
    assert cols[0] == pytest.approx(37 * 320 / 298) and cols[-1] == pytest.approx((37 + 224) * 320 / 298)


def test_llava576_letterbox_matches_reference_demo():
    g = make_geometry("llava576", 640, 360)  # the reference's demo: H0=640, W0=360
    assert (g.scaled_h, g.scaled_w, g.off_y, g.off_x) == (576, 324, 0, 126)
    valid = g.valid_mask()
    assert valid.sum() == 720
    cols = np.flatnonzero(valid.any(axis=0))
    assert (cols[0], cols[-1]) == (8, 27)


def test_native_caps_cells_and_keeps_aspect():
    g = make_geometry("native", 640, 360, max_cells=256)
    assert g.cells <= 256 and g.canvas_h % 14 == 0 and g.canvas_w % 14 == 0
    assert g.canvas_h / g.canvas_w == pytest.approx(640 / 360, rel=0.1)


def test_to_canvas_shapes_and_padding():
    g = make_geometry("llava576", 640, 360)
    img = np.full((640, 360), 200, np.uint8)
    out = g.to_canvas(img)
    assert out.shape == (576, 576) and out[:, :126].max() == 0 and out[:, 130:440].min() > 190


def test_invalid_name():
    with pytest.raises(ValueError, match=re.escape("Invalid geometry ('big'). Supported values are ap224, llava576, native, qwen.")):
        make_geometry("big", 10, 10)
