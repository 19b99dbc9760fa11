"""Pictures of a selection: layout, what kept and dropped cells look like, the files written, the CLI."""

from __future__ import annotations

import re
import subprocess
import sys

import av
import numpy as np
import pytest
from PIL import Image

from codec_select import Selection, make_geometry, select_patches, slot_frames, viz
from codec_select.cli import main
from codec_select.decode.pixels import read_frames
from codec_select.select import frame_grid


def _box_selection(path, scene, budget_slots: int = 0, **options) -> Selection:
    """Slot 0 in full plus, in every other slot, the cells the moving square overlaps (its ground-truth boxes)."""
    g = make_geometry("ap224", scene.height, scene.width)
    ids = frame_grid(scene.frames)
    rows, cols = g.row_edges(), g.col_edges()
    mask = np.zeros((64, g.grid_h, g.grid_w), dtype=bool)
    mask[0] = True
    for t in range(1, 64):
        for y0, y1, x0, x1 in scene.boxes[ids[t]]:
            r = (rows[1:] > y0) & (rows[:-1] < y1)
            c = (cols[1:] > x0) & (cols[:-1] < x1)
            mask[t] |= r[:, None] & c[None, :]
    mask &= g.valid_mask()[None] | (np.arange(64) == 0)[:, None, None]
    return Selection(
        visible_indices=np.flatnonzero(mask).astype(np.int64), frame_ids=ids, timestamps=ids / scene.fps,
        scores=mask.astype(np.float32) * g.valid_mask()[None], geometry=g, signals="codec-mv", codec="h264",
        policy="refresh", video=str(path), num_frames=scene.frames, options=options,
    )


@pytest.fixture(scope="module")
def box_sel(square_clip):
    return _box_selection(*square_clip)


@pytest.fixture(scope="module")
def canvas(box_sel):
    return slot_frames(box_sel)


@pytest.fixture(scope="module")
def rendered(box_sel, canvas):
    return viz.render(box_sel, canvas)


def _panel(out: np.ndarray, i: int, g) -> np.ndarray:
    """Panel ``i`` of every rendered frame: [64, Hc, Wc, 3] (layout: margin, title line, panels)."""
    top = viz._MARGIN + viz._LINE + 2
    x = viz._MARGIN + i * (g.canvas_w + viz._GAP)
    return out[:, top : top + g.canvas_h, x : x + g.canvas_w]


def _cell_means(panels: np.ndarray, patch: int) -> np.ndarray:
    """Mean brightness of each cell's interior (1-px border left out: outlines live there): [64, Hp, Wp]."""
    t, h, w, _ = panels.shape
    cells = panels.astype(np.float64).mean(axis=3).reshape(t, h // patch, patch, w // patch, patch)
    return cells[:, :, 1:-1, :, 1:-1].mean(axis=(2, 4))


def test_canvas_frames(box_sel, canvas, square_clip):
    g = box_sel.geometry
    assert canvas.shape == (64, g.canvas_h, g.canvas_w, 3) and canvas.dtype == np.uint8
    # The square sits where the scene put it: its (uniform-colour) centre shows up on the canvas.
    path, scene = square_clip
    y0, _, x0, _ = scene.boxes[box_sel.frame_ids[40]][0]  # the square's lower-right quarter is one colour
    cy, cx = (y0 + 30) * g.scaled_h / scene.height + g.off_y, (x0 + 30) * g.scaled_w / scene.width + g.off_x
    square = canvas[40, int(cy) - 4 : int(cy) + 4, int(cx) - 4 : int(cx) + 4].reshape(-1, 3).astype(float)
    assert square.std(axis=0).max() < 12


def test_render_layout(box_sel, canvas, rendered):
    g = box_sel.geometry
    assert rendered.dtype == np.uint8 and rendered.shape[0] == 64
    assert rendered.shape[2] == 2 * viz._MARGIN + 4 * g.canvas_w + 3 * viz._GAP
    assert rendered.shape[1] % 2 == 0 and rendered.shape[1] > g.canvas_h
    np.testing.assert_array_equal(_panel(rendered, 0, g), canvas)  # the 'frame' panel is the canvas frame
    # Frames given at source size go through the geometry: same pictures.
    source = read_frames(box_sel.video, box_sel.frame_ids)
    assert source.shape[1:3] == (240, 320)
    one = viz.render(box_sel, source, panels=("frame",))
    assert one.shape[2] == 2 * viz._MARGIN + g.canvas_w
    np.testing.assert_array_equal(_panel(one, 0, g), canvas)


def test_selected_panel_dims_dropped_cells(box_sel, canvas, rendered):
    g = box_sel.geometry
    ratio = _cell_means(_panel(rendered, 3, g), g.patch) / np.maximum(_cell_means(canvas, g.patch), 1.0)
    kept, valid = box_sel.mask, canvas.mean(axis=3).reshape(64, 16, 14, 16, 14).mean(axis=(2, 4)) > 20
    assert kept[1:].sum() > 100 and (~kept[1:]).sum() > 1000
    kept_ratio, dropped_ratio = ratio[kept & valid], ratio[~kept & valid]
    np.testing.assert_allclose(kept_ratio, 1.0, atol=0.02, err_msg="kept cells must show the frame as it is")
    assert dropped_ratio.max() < viz.DIM + 0.05, "dropped cells must be dimmed"
    # Outlines: kept cells next to dropped ones carry the outline colour on their border.
    # Outlines: kept cells next to dropped ones are tinted on their 1-px border, nowhere else.
    keep_px = np.repeat(np.repeat(kept, g.patch, axis=1), g.patch, axis=2)
    changed = np.any(_panel(rendered, 3, g) != canvas, axis=3) & keep_px
    assert changed[1:].sum() > 0 and not changed[0].any()  # slot 0 is kept whole: no edge inside it
    tile = viz._dim_and_outline(canvas[5], keep_px[5], outline=True)
    edge = np.any(tile != viz._dim_and_outline(canvas[5], keep_px[5], outline=False), axis=2)
    np.testing.assert_array_equal(edge, changed[5])
    expected = (0.4 * canvas[5][edge] + 0.6 * np.array(viz._OUTLINE)).astype(np.uint8)
    np.testing.assert_array_equal(tile[edge], expected)


def test_uniform_panel_keeps_whole_slots(box_sel, canvas, rendered):
    g = box_sel.geometry
    mask, k = viz._uniform_mask(box_sel)
    assert k == (box_sel.budget // g.cells) * g.cells and k != box_sel.budget  # rounded down to whole frames
    slots = np.flatnonzero(mask.any(axis=(1, 2)))
    assert slots.size == k // g.cells and slots[0] == 0 and mask[slots].all()
    panel = _panel(rendered, 1, g)
    np.testing.assert_array_equal(panel[slots], canvas[slots])
    dropped = np.setdiff1d(np.arange(64), slots)
    np.testing.assert_array_equal(panel[dropped], (canvas[dropped] * viz.DIM).astype(np.uint8))


def test_saliency_panel_is_hot_where_scores_are(box_sel, rendered):
    g = box_sel.geometry
    heat = _cell_means(_panel(rendered, 2, g), g.patch)
    scored = box_sel.scores > 0
    assert heat[scored].mean() > 3 * heat[~scored].mean()


def test_render_panels_subset_and_errors(box_sel, canvas, rendered):
    g = box_sel.geometry
    one = viz.render(box_sel, canvas, panels=("selected",))
    assert one.shape[2] == 2 * viz._MARGIN + g.canvas_w
    np.testing.assert_array_equal(_panel(one, 0, g), _panel(rendered, 3, g))
    with pytest.raises(ValueError, match=re.escape("Invalid panels (['bogus']). Supported values are frame,")):
        viz.render(box_sel, canvas, panels=("frame", "bogus"))
    with pytest.raises(ValueError, match="frames must be uint8"):
        viz.render(box_sel, canvas[:10])
    with pytest.raises(ValueError, match="expected the canvas 224x224 or the source 240x320"):
        viz.render(box_sel, canvas[:, :100])


def test_write_mp4_and_gif(rendered, tmp_path):
    h, w = rendered.shape[1:3]
    mp4 = viz.write_video(tmp_path / "v.mp4", rendered, fps=8)
    with av.open(str(mp4)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.width, s.height) == ("h264", w, h)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    assert len(frames) == 64
    assert np.abs(frames[40].astype(int) - rendered[40]).mean() < 6  # lossy, but the same picture
    gif = viz.write_video(tmp_path / "v.gif", rendered[:, ::2, ::2].copy(), fps=8)
    with Image.open(gif) as im:
        assert im.n_frames == 64 and im.size == (rendered[:, ::2, ::2].shape[2], rendered[:, ::2, ::2].shape[1])
    odd = viz.write_video(tmp_path / "odd.mp4", rendered[:3, :101, :201].copy())
    with av.open(str(odd)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (202, 102)
    with pytest.raises(ValueError, match=re.escape("Invalid video file ('v.avi'). Supported suffixes are .mp4, .gif.")):
        viz.write_video(tmp_path / "v.avi", rendered)


def test_contact_sheet(box_sel, canvas, tmp_path, monkeypatch):
    sheet = viz.contact_sheet(box_sel, canvas, thumb=64)
    bare = viz.contact_sheet(box_sel, canvas, thumb=64, chart=False)
    assert sheet.dtype == np.uint8 and sheet.shape[1] == bare.shape[1] == 2 * viz._MARGIN + 8 * 64 + 7 * viz._GAP
    assert sheet.shape[0] > bare.shape[0] + 100  # the bar chart
    plain_tile = viz._dim_and_outline
    monkeypatch.setattr(viz, "_dim_and_outline", lambda image, keep, outline: plain_tile(image, keep, outline=False))
    plain = viz.contact_sheet(box_sel, canvas, thumb=64, chart=False)
    monkeypatch.undo()
    changed = np.any(bare != plain, axis=2)
    assert changed.sum() > 1000  # kept cells outlined (a 1-px ring around each kept region)...
    tinted = (0.4 * plain[changed] + 0.6 * np.array(viz._OUTLINE)).astype(np.uint8)
    np.testing.assert_array_equal(bare[changed], tinted)  # ...tinted towards the outline colour
    png = viz.write_image(tmp_path / "s.png", sheet, colors=64)
    with Image.open(png) as im:
        assert im.size == (sheet.shape[1], sheet.shape[0]) and im.mode == "P"


def test_without_matplotlib(box_sel, canvas, monkeypatch):
    with_mpl = viz.contact_sheet(box_sel, canvas, thumb=32)
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import matplotlib...` raise ImportError
    lut = viz._colormap()
    assert lut.shape == (256, 3) and tuple(lut[0]) == (0, 0, 4) and tuple(lut[-1]) == (252, 255, 164)
    sheet = viz.contact_sheet(box_sel, canvas, thumb=32)
    assert sheet.shape == with_mpl.shape
    chart = sheet[-170:]
    assert np.all(chart == viz._OUTLINE, axis=2).sum() > 500  # Pillow drew the bars


def test_time_window_frames_are_the_scored_ones(square_clip):
    path, scene = square_clip
    sel = select_patches(path, start=1.0, budget=1024)  # frame_ids count from the window's first frame
    assert sel.report.frame_offset == scene.fps  # 1 s of frames before the window
    got = slot_frames(sel, canvas=False)
    np.testing.assert_array_equal(got, read_frames(path, sel.frame_ids + sel.report.frame_offset))
    np.testing.assert_array_equal(slot_frames(sel), np.stack([sel.geometry.to_canvas(f) for f in got]))


def test_cli_video_and_sheet(square_clip, tmp_path, capsys):
    path, _ = square_clip
    mp4 = tmp_path / "sel.mp4"
    assert main(["viz", str(path), "--budget", "1024", "-o", str(mp4), "--panels", "frame,selected"]) == 0
    assert "wrote" in capsys.readouterr().out
    with av.open(str(mp4)) as c:
        s = c.streams.video[0]
        assert sum(1 for _ in c.decode(s)) == 64 and s.width == 2 * viz._MARGIN + 2 * 224 + viz._GAP
    npz = tmp_path / "sel.npz"
    assert main(["select", str(path), "--budget", "1024", "-o", str(npz)]) == 0
    png = tmp_path / "sel.png"
    assert main(["viz", str(npz), "-o", str(png), "--thumb", "48"]) == 0
    with Image.open(png) as im:
        assert im.size[0] == 2 * viz._MARGIN + 8 * 48 + 7 * viz._GAP
    # The real selector's cells look kept / dropped the same way.
    sel = Selection.load_npz(npz)
    frames = slot_frames(sel)
    out = viz.render(sel, frames, panels=("selected",))
    ratio = _cell_means(_panel(out, 0, sel.geometry), 14) / np.maximum(_cell_means(frames, 14), 1.0)
    bright = _cell_means(frames, 14) > 20
    assert ratio[sel.mask & bright].min() > 0.97 and ratio[~sel.mask & bright].max() < viz.DIM + 0.05


def test_cli_rejects_bad_output(square_clip, capsys):
    path, _ = square_clip
    assert main(["viz", str(path), "-o", "x.avi"]) == 2
    assert "Supported suffixes are .mp4, .gif, .png" in capsys.readouterr().err
    assert main(["viz", str(path), "-o", "x.mp4", "--panels", "frame,nope"]) == 2


def test_import_is_light():
    code = "import sys, codec_select.viz; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
