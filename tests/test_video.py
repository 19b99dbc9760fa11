"""Reading the codec with PyAV: probe, display order, luma straight from the buffer, deterministic vectors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from conftest import SHARED_VIDEOS

from codec_select.decode.container import probe
from codec_select.decode.pixels import read_frames
from codec_select.decode.reader import iter_frames


def _mv_digest(path, **kw) -> str:
    h = hashlib.sha1()
    for f in iter_frames(path, **kw):
        if f.mvs is not None:
            for name in sorted(f.mvs):  # named fields only: the raw structured bytes hold garbage padding
                h.update(f.mvs[name].tobytes())
    return h.hexdigest()


def test_probe_synthetic(square_clip):
    path, scene = square_clip
    info = probe(path)
    assert (info.codec, info.width, info.height, info.num_frames) == ("h264", 320, 240, scene.frames)
    assert info.has_codec_mvs and info.fps == pytest.approx(30) and info.rotation == 0


@pytest.mark.skipif(not SHARED_VIDEOS, reason="../shared/videos not present")
def test_probe_shared():
    info = probe(SHARED_VIDEOS[0])
    assert (info.codec, info.width, info.height) == ("h264", 360, 640)
    assert info.upright_hw == (640, 360)


def test_display_order_and_types(square_clip):
    path, scene = square_clip
    frames = list(iter_frames(path))
    assert [f.index for f in frames] == list(range(scene.frames))
    times = np.array([f.time for f in frames])
    assert np.all(np.diff(times) > 0), "frames come out in display order"
    types = {f.pict_type for f in frames}
    assert {"I", "P", "B"} <= types
    assert frames[0].mvs is None and any(f.mvs is not None for f in frames)
    assert all(f.packet_size > 0 for f in frames)


def test_luma_is_plane0_without_swscale(square_clip):
    import av

    path, _ = square_clip
    ours = [f.luma for f in iter_frames(path, fast=False)][:5]
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == 5:
                break
            ref = frame.to_ndarray(format="yuv420p")[: frame.height]
            np.testing.assert_array_equal(ours[i], ref)


def test_mv_export_is_deterministic(square_clip):
    path, _ = square_clip
    assert _mv_digest(path) == _mv_digest(path)


def test_skip_loop_filter_keeps_vectors(square_clip):
    path, _ = square_clip
    assert _mv_digest(path, fast=True) == _mv_digest(path, fast=False)


def test_read_frames_repeats_and_order(square_clip):
    path, _ = square_clip
    out = read_frames(path, np.array([5, 0, 5, 127]))
    assert out.shape == (4, 240, 320, 3)
    np.testing.assert_array_equal(out[0], out[2])
    assert not np.array_equal(out[0], out[3])
