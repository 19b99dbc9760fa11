"""Stage-2 LLaVA export: mosaics rebuilt from frames + positions pixel for pixel, the JSONL line, the layout."""

from __future__ import annotations

import json
import re

import av
import numpy as np
import pytest
from conftest import shared_videos

from codec_select import select_patches
from codec_select.export.llava import (
    RECORD_NAME,
    llava_dir_name,
    mosaic_images,
    read_llava,
    video_to_image_tokens,
    write_llava,
)


def _all_frames_rgb(path) -> list[np.ndarray]:
    """Every frame in display order, decoded here with plain PyAV (independent of codec_select.decode)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _rebuild(sel, positions: np.ndarray, frames: list[np.ndarray]) -> np.ndarray:
    """The reference's stage-2 packing, loop for loop: row r → image r // 1296, cell (j // 36, j % 36), pixels of the
    letterboxed frame ids[t] at (16h, 16w)."""
    g = sel.geometry
    p, cells = g.patch, g.cells
    canvases = {}
    out = np.zeros((len(positions) // cells, g.canvas_h, g.canvas_w, 3), np.uint8)
    for r, (t, h, w) in enumerate(positions):
        fid = int(sel.frame_ids[t])
        if fid not in canvases:
            canvases[fid] = g.to_canvas(frames[fid])
        i, j = divmod(r, cells)
        y, x = divmod(j, g.grid_w)
        out[i, y * p : (y + 1) * p, x * p : (x + 1) * p] = canvases[fid][h * p : (h + 1) * p, w * p : (w + 1) * p]
    return out


@pytest.fixture(scope="module")
def llava_sel(square_clip):
    path, _ = square_clip
    return select_patches(path, geometry="llava576")


CONVERSATION = [
    {"from": "human", "value": "<video>\nWhat moves in this clip?"},
    {"from": "gpt", "value": "A square, left to right."},
]


def test_png_mosaics_match_frames_pixel_for_pixel(llava_sel, tmp_path):
    sel = llava_sel
    record = write_llava(sel, tmp_path, sample_id="sq", conversations=CONVERSATION, image_format="png")
    images, positions = read_llava(tmp_path / llava_dir_name(sel.video, "sq") / RECORD_NAME)
    assert images.shape == (8, 576, 576, 3) and images.dtype == np.uint8
    assert positions.dtype == np.int32 and positions.shape == (10368, 3)
    np.testing.assert_array_equal(positions, sel.positions_thw)  # same cells, sorted by (t, h, w)
    flat = positions[:, 0].astype(np.int64) * 1296 + positions[:, 1] * 36 + positions[:, 2]
    assert np.all(np.diff(flat) > 0)
    frames = _all_frames_rgb(sel.video)
    np.testing.assert_array_equal(images, _rebuild(sel, positions, frames))
    # image 0 is the full letterboxed first frame, padding included
    np.testing.assert_array_equal(images[0], sel.geometry.to_canvas(frames[int(sel.frame_ids[0])]))
    assert np.all(positions[:1296, 0] == 0) and np.all(positions[1296:, 0] > 0)
    assert record["image"][0].endswith("_000.png") and len(record["image"]) == 8


def test_jpeg_record_and_training_line(llava_sel, tmp_path):
    sel = llava_sel
    record = write_llava(sel, tmp_path, sample_id="sq", conversations=CONVERSATION)
    folder = tmp_path / llava_dir_name(sel.video, "sq")
    assert folder.name.startswith("sample_sq__square_h264_b__")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"square_h264_b_{i:03d}.jpg" for i in range(8)] + ["positions_thw.npy", RECORD_NAME]
    )
    assert set(record) == {"id", "conversations", "image", "positions_thw"} and record["id"] == "sq"
    human = record["conversations"][0]["value"]
    assert human == "\n".join(["<image>"] * 8) + "\nWhat moves in this clip?"
    assert record["conversations"][1] == CONVERSATION[1] and "<video>" in CONVERSATION[0]["value"]  # not mutated
    assert json.loads((folder / RECORD_NAME).read_text()) == record
    images, positions = read_llava(record)
    exact = mosaic_images(sel)
    mse = np.mean((images.astype(np.float64) - exact) ** 2)
    assert 10 * np.log10(255**2 / mse) > 38  # quality 95, 4:4:4
    np.testing.assert_array_equal(positions, sel.positions_thw)


def test_relative_paths(llava_sel, tmp_path):
    record = write_llava(llava_sel, tmp_path, sample_id=7, relative_to=tmp_path)
    assert not record["positions_thw"].startswith("/") and record["id"] == "7"
    images, _ = read_llava(record, root=tmp_path)
    assert images.shape[0] == 8


@pytest.mark.parametrize("video", shared_videos()[:1], ids=lambda p: p.stem)
def test_portrait_real_clip(video, tmp_path):
    """A real 360×640 portrait clip: padding columns, image 0 keeps them (black), later images never show them."""
    sel = select_patches(video, geometry="llava576")
    write_llava(sel, tmp_path, image_format="png")
    images, positions = read_llava(tmp_path / llava_dir_name(sel.video) / RECORD_NAME)
    np.testing.assert_array_equal(images, _rebuild(sel, positions, _all_frames_rgb(video)))
    valid = sel.geometry.valid_mask()
    assert valid[positions[1296:, 1], positions[1296:, 2]].all()
    assert images[0][:, :100].max() == 0  # letterbox padding on the left of the first frame


def test_other_geometry_and_bad_budget(square_clip, tmp_path):
    path, _ = square_clip
    sel = select_patches(path, budget=2048)  # ap224: 8 mosaics of 224²
    assert mosaic_images(sel).shape == (8, 224, 224, 3)
    bad = select_patches(path, budget=1000)
    with pytest.raises(ValueError, match=re.escape("must be a multiple of the 256 cells per image")):
        mosaic_images(bad)
    with pytest.raises(ValueError, match=re.escape("Invalid image_format ('gif')")):
        write_llava(sel, tmp_path, image_format="gif")


def test_video_token_replacement():
    assert video_to_image_tokens(None, 2) == [{"from": "human", "value": "<image>\n<image>"}]
    no_token = [{"from": "human", "value": "Describe."}, {"from": "gpt", "value": "ok"}]
    assert video_to_image_tokens(no_token, 2)[0]["value"] == "<image>\n<image>\nDescribe."
    two = [{"from": "human", "value": "<video> then <video>"}]
    assert video_to_image_tokens(two, 1)[0]["value"] == "<image> then <video>"  # only the first is replaced
    gpt_first = [{"from": "gpt", "value": "hi"}]
    assert video_to_image_tokens(gpt_first, 1)[0] == {"from": "human", "value": "<image>"}


def test_time_window(square_clip, tmp_path):
    """With ``start``, frame ids count from the window's first frame: image 0 is that frame, letterboxed."""
    path, _ = square_clip
    sel = select_patches(path, geometry="llava576", start=1.0)
    with av.open(str(path)) as container:
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    window = [img for t, img in frames if t >= 1.0 - 1e-6]
    images = mosaic_images(sel)
    np.testing.assert_array_equal(images[0], sel.geometry.to_canvas(window[int(sel.frame_ids[0])]))
    np.testing.assert_array_equal(images, _rebuild(sel, sel.positions_thw, window))
