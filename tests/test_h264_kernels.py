"""The H.264 prediction and loop-filter kernels against their NumPy twins, and the loop filter against FFmpeg."""

from __future__ import annotations

import av
import numpy as np
import pytest
from codec_select.kernels.h264_deblock import block_motion, boundary_strength, deblock_picture
from codec_select.kernels.h264_inter import bipred, luma_sample, predict_chroma, predict_luma, weight_prediction
from codec_select.kernels.h264_intra import predict_chroma8x8, predict_intra4x4, predict_intra16x16
from h264_clips import encode, needs_x264, random_parts, texture
from naive_h264 import (
    naive_bipred,
    naive_chroma,
    naive_chroma8x8,
    naive_intra4x4,
    naive_intra4x4_valid,
    naive_intra16x16,
    naive_luma,
    naive_weight,
)
from naive_h264_deblock import naive_block_motion, naive_deblock


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_luma_and_chroma_mc_match_numpy(seed):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 256, (24, 40), dtype=np.uint8)
    for _ in range(150):
        w, h = int(rng.choice([4, 8, 16])), int(rng.choice([4, 8, 16]))
        x0, y0 = int(rng.integers(-4, 40)), int(rng.integers(-4, 24))
        mvx, mvy = int(rng.integers(-96, 96)), int(rng.integers(-96, 96))  # reaches well outside the picture
        np.testing.assert_array_equal(predict_luma(ref, x0, y0, w, h, mvx, mvy),
                                      naive_luma(ref, x0, y0, w, h, mvx, mvy), err_msg=f"{x0, y0, w, h, mvx, mvy}")
        np.testing.assert_array_equal(predict_chroma(ref, x0, y0, w, h, mvx, mvy),
                                      naive_chroma(ref, x0, y0, w, h, mvx, mvy), err_msg=f"{x0, y0, w, h, mvx, mvy}")


def test_mc_known_cases():
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    # Whole-sample vectors copy; a flat picture stays flat at every fraction.
    np.testing.assert_array_equal(predict_luma(ref, 8, 8, 8, 8, 4 * 3, -4 * 2), ref[6:14, 11:19])
    np.testing.assert_array_equal(predict_chroma(ref, 8, 8, 4, 4, 8 * 2, 8), ref[9:13, 10:14])
    flat = np.full((16, 16), 77, np.uint8)
    for mv in range(16):
        assert (predict_luma(flat, 4, 4, 4, 4, mv, 15 - mv) == 77).all()
    a, b = rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)
    np.testing.assert_array_equal(bipred(a, b), ((a.astype(int) + b + 1) >> 1).astype(np.uint8))
    np.testing.assert_array_equal(bipred(a, b, 40, 24), naive_bipred(a, b, 40, 24))
    for weight, offset, log2 in ((1, -1, 0), (2, 0, 1), (5, 7, 2), (-3, 200, 0), (64, 0, 6)):
        np.testing.assert_array_equal(weight_prediction(a, weight, offset, log2), naive_weight(a, weight, offset, log2))
    np.testing.assert_array_equal(weight_prediction(a, 4, 0, 2), a)  # default weights: the identity
    # The per-sample reference formula agrees with the block routine.
    got = predict_luma(ref, 5, 3, 8, 4, 7, -6)
    assert all(got[r, c] == luma_sample(ref, 5 + c + (7 >> 2), 3 + r + (-6 >> 2), 7 & 3, -6 & 3)
               for r in range(4) for c in range(8))


@pytest.mark.parametrize("seed", [0, 1])
def test_intra_predictions_match_numpy(seed):
    rng = np.random.default_rng(seed)
    plane = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    for y in (0, 4, 16, 20):
        for x in (0, 4, 12, 16):
            for top, left in ((y > 0, x > 0), (False, x > 0), (y > 0, False)):
                for tr in (False, True) if top else (False,):
                    for mode in range(9):
                        if naive_intra4x4_valid(mode, top, left):
                            got = predict_intra4x4(plane, x, y, mode, has_top=top, has_left=left, has_topright=tr)
                            np.testing.assert_array_equal(got, naive_intra4x4(plane, x, y, mode, top, left, tr),
                                                          err_msg=f"4x4 mode {mode} at {x, y} {top, left, tr}")
    for y, x in ((0, 0), (0, 16), (16, 0), (16, 16)):
        top, left = y > 0, x > 0
        for mode in range(4):
            if (mode != 0 or top) and (mode != 1 or left) and (mode != 3 or (top and left)):
                np.testing.assert_array_equal(predict_intra16x16(plane, x, y, mode, has_top=top, has_left=left),
                                              naive_intra16x16(plane, x, y, mode, top, left), err_msg=f"16 {mode}")
            if (mode != 1 or left) and (mode != 2 or top) and (mode != 3 or (top and left)):
                np.testing.assert_array_equal(predict_chroma8x8(plane, x, y, mode, has_top=top, has_left=left),
                                              naive_chroma8x8(plane, x, y, mode, top, left), err_msg=f"c {mode}")


def test_intra_rejects_unavailable_mode():
    plane = np.zeros((16, 16), np.uint8)
    with pytest.raises(ValueError, match="not available"):
        predict_intra16x16(plane, 0, 0, 0, has_top=False, has_left=False)


def _deblock_case(rng, height=32, width=48):
    smooth = np.cumsum(rng.integers(-2, 3, (height, width)), axis=1) + 128  # small steps: filters engage
    y = np.clip(smooth + rng.integers(0, 3, (height, width)) * 8 * (rng.random((height, width)) < 0.2), 0, 255)
    planes = [y.astype(np.uint8)] + [np.clip(smooth[::2, ::2] + rng.integers(-6, 7, (height // 2, width // 2)),
                                             0, 255).astype(np.uint8) for _ in range(2)]
    mb, blocks = (height // 16, width // 16), (height // 4, width // 4)
    intra = rng.random(mb) < 0.3
    nnz = rng.random(blocks) < 0.3
    refs = rng.integers(-1, 2, blocks + (2,)).astype(np.int32)  # few pictures: equal references are common
    refs[(refs < 0).all(axis=2), 0] = 0
    mvs = rng.integers(-6, 7, blocks + (4,)).astype(np.int32)
    qp = rng.integers(20, 52, mb).astype(np.int32)
    return planes, intra, nnz, refs, mvs, qp


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("offsets", [(0, 0, 0), (2, -4, 6)])
def test_deblock_matches_numpy(seed, offsets):
    rng = np.random.default_rng(seed)
    planes, intra, nnz, refs, mvs, qp = _deblock_case(rng)
    got = [p.copy() for p in planes]
    deblock_picture(*got, intra, nnz, refs, mvs, qp, chroma_qp_offset=offsets[0], alpha_offset=offsets[1],
                    beta_offset=offsets[2])
    want = [p.copy() for p in planes]
    naive_deblock(*want, intra, nnz, refs, mvs, qp, *offsets)
    assert any((g != p).any() for g, p in zip(got, planes))  # the case exercises the filter
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_boundary_strength_cases():
    rp, none = np.array([3, -1], np.int32), np.zeros(4, np.int32)
    mv = np.array([4, 0, 0, 0], np.int32)
    assert boundary_strength(True, False, True, False, False, rp, rp, none, none) == 4
    assert boundary_strength(False, True, False, False, False, rp, rp, none, none) == 3
    assert boundary_strength(False, False, False, True, False, rp, rp, none, none) == 2
    assert boundary_strength(False, False, False, False, False, rp, rp, none, mv) == 1  # a whole sample apart
    assert boundary_strength(False, False, False, False, False, rp, rp, none, mv - 1) == 0
    assert boundary_strength(False, False, False, False, False, rp, np.array([5, -1], np.int32), none, none) == 1
    both, swapped = np.array([3, 5], np.int32), np.array([5, 3], np.int32)
    a, b = np.array([0, 0, 8, 8], np.int32), np.array([8, 8, 0, 0], np.int32)
    assert boundary_strength(False, False, False, False, False, both, swapped, a, b) == 0  # matched by picture
    assert boundary_strength(False, False, False, False, False, both, both, a, b) == 1


@pytest.mark.parametrize("seed", [0, 1])
def test_block_motion_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    parts = random_parts(rng, 32, 48)
    choice = np.stack([rng.integers(-1, 3, len(parts)), rng.integers(0, 2, len(parts)),
                       np.zeros(len(parts), int)], axis=1).astype(np.int32)
    ids0, ids1 = np.array([7, 9], np.int32), np.array([11], np.int32)
    for got, want in zip(block_motion(parts, choice, ids0, ids1, 32, 48),
                         naive_block_motion(parts, choice, ids0, ids1, 32, 48)):
        np.testing.assert_array_equal(got, want)


@needs_x264
def test_deblock_reproduces_ffmpeg_on_intra_picture(tmp_path):
    # An intra picture's boundary strengths need no guessing (4 on macroblock edges, 3 inside), so filtering the
    # decoder's unfiltered output must give exactly the decoder's filtered output.
    img = texture(np.random.default_rng(8), 64, 96, cell=5)
    path = encode(tmp_path / "intra.mp4", [img] * 2, crf=30)
    decoded = []
    for options in ({"skip_loop_filter": "all"}, {}):
        container = av.open(str(path))
        stream = container.streams.video[0]
        stream.codec_context.options = {**options, "export_side_data": "venc_params"}
        frame = next(container.decode(stream))
        qp = np.ascontiguousarray(frame.side_data.get("VIDEO_ENC_PARAMS").qp_map(), dtype=np.int32)
        decoded.append(([np.array(frame.planes[k], copy=True).reshape(frame.planes[k].height, -1)
                         [: 64 >> min(k, 1), : 96 >> min(k, 1)].copy() for k in range(3)], qp))
        container.close()
    (unfiltered, qp), (filtered, _) = decoded
    assert any((a != b).any() for a, b in zip(unfiltered, filtered))
    from codec_select.recipes.h264_headers import nal_length_size, parameter_sets, slice_header

    container = av.open(str(path))
    stream = container.streams.video[0]
    extradata = stream.codec_context.extradata
    header = slice_header(bytes(next(container.demux(stream))), nal_length_size(extradata),
                          parameter_sets(extradata))
    container.close()
    _, alpha, beta = header["deblock"]  # x264 writes its chroma QP offset and filter offsets into the headers
    blocks = (16, 24)
    deblock_picture(*unfiltered, np.ones((4, 6), bool), np.zeros(blocks, bool), np.full(blocks + (2,), -1, np.int32),
                    np.zeros(blocks + (4,), np.int32), qp, chroma_qp_offset=header["chroma_qp_offset"],
                    alpha_offset=alpha, beta_offset=beta)
    for a, b in zip(unfiltered, filtered):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", [0, 1])
def test_deblock_with_shared_motion_and_luma_only(seed):
    # Motion shared by whole macroblocks (as skip regions have it) takes the kernel's bS-0 shortcut on most inner
    # edges; chroma=False must filter the luma identically and leave chroma alone.
    rng = np.random.default_rng(seed)
    planes, intra, nnz, refs, mvs, qp = _deblock_case(rng)
    nnz &= rng.random(nnz.shape) < 0.3
    refs = np.repeat(np.repeat(refs[::4, ::4], 4, axis=0), 4, axis=1)
    mvs = np.repeat(np.repeat(mvs[::4, ::4], 4, axis=0), 4, axis=1)
    got = [p.copy() for p in planes]
    deblock_picture(*got, intra, nnz, refs, mvs, qp)
    want = [p.copy() for p in planes]
    naive_deblock(*want, intra, nnz, refs, mvs, qp, 0, 0, 0)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    luma_only = [p.copy() for p in planes]
    deblock_picture(*luma_only, intra, nnz, refs, mvs, qp, chroma=False)
    np.testing.assert_array_equal(luma_only[0], want[0])
    for g, p in zip(luma_only[1:], planes[1:]):
        np.testing.assert_array_equal(g, p)


@pytest.mark.parametrize("seed", [0, 1])
def test_mc_inside_and_across_edges_match_numpy(seed):
    # Blocks well inside a larger picture read the reference in place; blocks at the edges gather a clamped window.
    # Every quarter (luma) and eighth (chroma) fraction, both routes.
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    for fy in range(4):
        for fx in range(4):
            for x0, y0, w, h in ((24, 16, 16, 16), (8, 8, 8, 8), (0, 0, 8, 16), (48, 32, 16, 16), (20, 40, 16, 8)):
                mvx = 4 * int(rng.integers(-3, 4)) + fx
                mvy = 4 * int(rng.integers(-3, 4)) + fy
                np.testing.assert_array_equal(predict_luma(ref, x0, y0, w, h, mvx, mvy),
                                              naive_luma(ref, x0, y0, w, h, mvx, mvy), err_msg=f"{x0, y0, mvx, mvy}")
                cmx, cmy = 8 * int(rng.integers(-2, 3)) + 2 * fx + 1, 8 * int(rng.integers(-2, 3)) + 2 * fy
                np.testing.assert_array_equal(predict_chroma(ref, x0, y0, w // 2, h // 2, cmx, cmy),
                                              naive_chroma(ref, x0, y0, w // 2, h // 2, cmx, cmy))


def test_sad_bounded_is_exact_below_its_limit():
    from codec_select.kernels.h264_inter import sad_bounded, sad_region

    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    cur = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    exact = int(np.abs(a.astype(int) - cur[5:21, 3:19]).sum())
    assert sad_region(a, 0, 0, cur, 5, 3, 16, 16) == exact
    assert sad_bounded(a, 0, 0, cur, 5, 3, 16, 16, exact + 1) == exact  # below the limit: the exact sum
    assert sad_bounded(a, 0, 0, cur, 5, 3, 16, 16, 1 << 60) == exact
    for limit in (1, exact // 3, exact):
        got = sad_bounded(a, 0, 0, cur, 5, 3, 16, 16, limit)
        assert limit <= got <= exact  # stopped early: a partial sum that already reaches the limit
