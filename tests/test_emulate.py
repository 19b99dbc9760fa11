"""The H.264 patched-picture emulation: its kernels against their NumPy twins, the driver on synthetic clips, and the
header parsing it relies on."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from codec_select.kernels.h264_emulate import emulate_inter, emulate_intra
from codec_select.kernels.h264_inter import predict_luma
from h264_clips import encode, needs_x264, random_parts, texture
from naive_h264_emulate import naive_emulate_inter, naive_emulate_intra

from codec_select.errors import UnsupportedVideoError
from codec_select.recipes.emulate import EmulatedFrame, iter_emulated
from codec_select.recipes.picture import implicit_weights

# --- kernels vs twins ----------------------------------------------------------------------------------------


def test_implicit_weights():
    assert implicit_weights(4, 2, 6) == (32, 32)  # symmetric: the plain average
    w0, w1 = implicit_weights(4, 2, 10)  # closer to L0: L0 weighs more
    assert w0 + w1 == 64 and w0 > w1
    assert implicit_weights(4, 4, 4) == (32, 32)


def _ring_case(rng, height=32, width=48, slots=3):
    ring = [rng.integers(0, 256, (slots, height // s, width // s), dtype=np.uint8) for s in (1, 2, 2)]
    emu = [rng.integers(100, 156, (slots, height // s, width // s), dtype=np.uint8) for s in (1, 2, 2)]
    # The current picture: mostly a shifted copy of slot 0 (uncoded blocks), plus noise in one corner (coded).
    cur = [np.ascontiguousarray(np.roll(r[0], 1, axis=1)) for r in ring]
    cur[0][:8, :8] = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    return cur, ring, emu


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("thresholds", [(0, 0), (16, 8), (10**6, 10**6)])
@pytest.mark.parametrize("explicit", [False, True])
def test_emulate_inter_matches_numpy(seed, thresholds, explicit):
    rng = np.random.default_rng(seed)
    cur, ring, emu = _ring_case(rng)
    parts = random_parts(rng, 32, 48)
    l0, l1 = np.array([0, 0, 2], np.int64), np.array([1], np.int64)  # slot 0 twice, as x264's weighted duplicate
    weights = np.array([[[32, 32]], [[32, 32]], [[40, 24]]], np.int32)
    wp = np.array([[1, 0, 1, 0, 1, 0], [1, -1, 1, 2, 1, 0], [3, 5, 1, 0, 2, -3]], np.int32) if explicit else None
    log2 = np.array([1, 0], np.int32) if explicit else None
    out = [np.zeros_like(c) for c in cur]
    coded, coded_n = np.zeros((8, 12), bool), np.zeros((8, 12), bool)
    covered, choice = emulate_inter(*cur, *ring, *emu, parts, l0, l1, weights, *thresholds, *out, wp, log2, coded)
    want = [np.zeros_like(c) for c in cur]
    covered_n, choice_n = naive_emulate_inter(cur, ring, emu, parts, l0, l1, weights, *thresholds, want,
                                              *((None, (0, 0)) if wp is None else (wp.tolist(), log2.tolist())),
                                              coded=coded_n)
    np.testing.assert_array_equal(coded, coded_n)
    np.testing.assert_array_equal(covered, covered_n)
    np.testing.assert_array_equal(choice, choice_n)
    for got, exp in zip(out, want):
        np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("thresholds", [(0, 0), (40, 8), (10**6, 10**6)])
@pytest.mark.parametrize("bias", [0, -10**6, 10**6])
def test_emulate_intra_matches_numpy(seed, thresholds, bias):
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(rng.integers(-3, 4, (48, 64)), axis=1) + 128  # some blocks predict well, others do not
    cur = [np.clip(smooth, 0, 255).astype(np.uint8), rng.integers(0, 256, (24, 32), dtype=np.uint8),
           np.full((24, 32), 90, np.uint8)]
    covered = rng.random((3, 4)) < 0.3
    base = [rng.integers(0, 256, c.shape, dtype=np.uint8) for c in cur]  # what the inter pass left
    out = [b.copy() for b in base]
    coded, coded_n = np.zeros((12, 16), bool), np.zeros((12, 16), bool)
    kinds = emulate_intra(*cur, covered, *thresholds, bias, *out, coded)
    want = [b.copy() for b in base]
    kinds_n = naive_emulate_intra(cur, covered, *thresholds, bias, want, coded_n)
    np.testing.assert_array_equal(coded, coded_n)
    np.testing.assert_array_equal(kinds, kinds_n)
    for got, exp in zip(out, want):
        np.testing.assert_array_equal(got, exp)


def test_emulate_inter_rejects_bad_partition():
    z = np.zeros((16, 16), np.uint8)
    c = np.zeros((8, 8), np.uint8)
    ring, cring = np.zeros((1, 16, 16), np.uint8), np.zeros((1, 8, 8), np.uint8)
    parts = np.array([[4, 0, 8, 8, 1, 0, 0, 0, 0, 0]], np.int32)
    with pytest.raises(ValueError, match="8-pixel grid"):
        emulate_inter(z, c, c, ring, cring, cring, ring, cring, cring, parts, np.zeros(1, np.int64),
                      np.zeros(0, np.int64), np.full((1, 1, 2), 32, np.int32), 16, 8, z.copy(), c.copy(), c.copy())


# --- the driver on synthetic H.264 ---------------------------------------------------------------------------


@needs_x264
def test_static_clip_carries_the_iframe_residual(tmp_path):
    still = texture(np.random.default_rng(0), 64, 96)
    path = encode(tmp_path / "static.mp4", [still] * 12, bframes=2)
    frames = list(iter_emulated(path))
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].pict_type == "I" and {f.pict_type for f in frames[1:]} <= {"P", "B"}
    first = frames[0]
    assert np.abs(first.y.astype(int) - 128).mean() > 2  # the I-frame's intra residual is visible
    for f in frames[1:]:
        for a, b in ((f.y, first.y), (f.u, first.u), (f.v, first.v)):
            # Skipped blocks show the I-frame's residual, not a flat 128.
            assert np.abs(a.astype(int) - b).mean() < 1.0, f.index


@needs_x264
def test_translation_predicts_exactly(tmp_path):
    # A texture moving ½ px right and ¼ px down per frame (rendered at 4× and box-filtered): stock decodes without
    # deblocking (pictures = prediction + residual) must equal the 6-tap prediction from the exported vectors in
    # most 4×4 blocks, sub-pixel vectors included.
    big = texture(np.random.default_rng(1), 4 * 80, 4 * 110, cell=24).astype(np.float64)
    frames = []
    for t in range(10):
        crop = big[t: t + 4 * 64, 40 - 2 * t: 40 - 2 * t + 4 * 96]
        frames.append(np.rint(crop.reshape(64, 4, 96, 4, 3).mean(axis=(1, 3))).astype(np.uint8))
    path = encode(tmp_path / "pan.mp4", frames, crf=26)
    container = av.open(str(path))
    stream = container.streams.video[0]
    stream.codec_context.options = {"flags2": "+export_mvs", "skip_loop_filter": "all"}
    decoded = []
    for f in container.decode(stream):
        sd = f.side_data.get("MOTION_VECTORS")
        decoded.append((np.array(f.planes[0], copy=True).reshape(f.planes[0].height, -1)[:64, :96],
                        None if sd is None else sd.to_ndarray()))
    container.close()
    zero = total = fractional = 0
    for t in range(1, len(decoded)):
        cur, mvs = decoded[t]
        refs = [np.ascontiguousarray(decoded[r][0]) for r in range(t - 1, max(t - 4, -1), -1)]
        for m in mvs:
            x0, y0 = int(m["dst_x"]) - m["w"] // 2, int(m["dst_y"]) - m["h"] // 2
            block = cur[y0: y0 + m["h"], x0: x0 + m["w"]].astype(int)
            # The vector does not say which of the (up to 3) references it points into: take the best.
            err = min((np.abs(predict_luma(ref, x0, y0, int(m["w"]), int(m["h"]), int(m["motion_x"]),
                                           int(m["motion_y"])).astype(int) - block) for ref in refs),
                      key=lambda e: e.sum()).reshape(m["h"] // 4, 4, m["w"] // 4, 4).sum(axis=(1, 3))
            zero += int((err == 0).sum())
            total += err.size
            fractional += int(err.size if (m["motion_x"] | m["motion_y"]) & 3 else 0)
    assert total and fractional > total // 4  # the vectors really are sub-pixel
    assert zero / total > 0.6
    emulated = list(iter_emulated(path))
    # Inter frames of a pure translation: almost everything is predicted, so the picture stays near the I-frame's.
    assert np.abs(emulated[1].y.astype(int) - 128).mean() < np.abs(emulated[0].y.astype(int) - 128).mean() * 1.5


@needs_x264
def test_scene_change_forces_intra(tmp_path):
    rng = np.random.default_rng(2)
    a, b = texture(rng, 64, 96), texture(rng, 64, 96, cell=3)
    cut = encode(tmp_path / "cut.mp4", [a] * 6 + [b] * 4)
    alone = encode(tmp_path / "alone.mp4", [b] * 2)
    frames = list(iter_emulated(cut))
    assert frames[6].pict_type == "P"  # scenecut=0: no new I-frame, the cut is coded with intra blocks
    mvs = frames[6].mvs
    assert mvs is None or len(mvs["source"]) < 0.5 * (64 // 16) * (96 // 16)
    ref_i = next(iter(iter_emulated(alone, wanted={0})))
    assert ref_i.pict_type == "I"
    cut_res = frames[6].y.astype(float) - 128
    before = frames[5].y.astype(float) - 128
    i_res = ref_i.y.astype(float) - 128
    # Intra blocks get clip(128 + Y − pred): the same content coded as an I-frame gives a similar picture.
    assert np.corrcoef(cut_res.ravel(), i_res.ravel())[0, 1] > 0.5
    assert abs(np.corrcoef(cut_res.ravel(), before.ravel())[0, 1]) < 0.3


@needs_x264
def test_wanted_subset_and_determinism(tmp_path):
    rng = np.random.default_rng(4)
    frames = [texture(rng, 48, 64)] * 3 + [texture(rng, 48, 64)] * 5
    path = encode(tmp_path / "small.mp4", frames, bframes=2)
    full = list(iter_emulated(path))
    part = list(iter_emulated(path, wanted={2, 5}))
    assert [f.index for f in part] == list(range(8))
    assert all(isinstance(f, EmulatedFrame) for f in part)
    assert [f.index for f in part if f.y is not None] == [2, 5]
    for i in (2, 5):
        for name in ("y", "u", "v"):
            np.testing.assert_array_equal(getattr(part[i], name), getattr(full[i], name))
    assert full[0].y.shape == (48, 64) and full[0].u.shape == (24, 32)
    assert all(f.mvs is None or set(f.mvs) >= {"source", "motion_x", "motion_scale"} for f in full)


@needs_x264
def test_raw_annexb_stream_matches_mp4(tmp_path):
    # A raw .h264 stream has no timestamps: decoding order must still be recovered (B-frames need their future
    # reference emulated first). Single-threaded x264 writes the same bitstream into both containers.
    rng = np.random.default_rng(5)
    big = texture(rng, 96, 160)
    frames = [big[t: t + 48, 2 * t: 2 * t + 64] for t in range(10)]
    mp4 = list(iter_emulated(encode(tmp_path / "a.mp4", frames, bframes=2)))
    raw = list(iter_emulated(encode(tmp_path / "a.h264", frames, bframes=2, fmt="h264")))
    assert [f.pict_type for f in raw] == [f.pict_type for f in mp4] and "B" in {f.pict_type for f in raw}
    for a, b in zip(mp4, raw):
        for name in ("y", "u", "v"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"frame {a.index} {name}")


def test_h264_headers():
    from codec_select.recipes.h264_headers import is_reference, max_ref_frames, nal_length_size

    sps = bytes.fromhex("674d401ee880b828f2f80b50101014000003000400000300f03c58b448")  # x264, Main, ref=3
    avcc = bytes([1, 0x4D, 0x40, 0x1E, 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps
    assert nal_length_size(avcc) == 4 and nal_length_size(None) == 0
    assert max_ref_frames(avcc) == 3
    assert max_ref_frames(b"\x00\x00\x01\x67") is None and max_ref_frames(avcc[:10]) is None
    slice_ref, slice_nonref = bytes([0x41, 0x9A]), bytes([0x01, 0x9E])  # nal_ref_idc 2 / 0, type 1
    sei = bytes([0x06, 0x05])
    length = lambda nal: len(nal).to_bytes(4, "big") + nal
    assert is_reference(length(sei) + length(slice_ref), 4)
    assert not is_reference(length(sei) + length(slice_nonref), 4)
    assert not is_reference(b"\x00\x00\x00\x01" + slice_nonref, 0)
    assert is_reference(b"\x00\x00\x01" + sei, 0)  # no slice: assume it is needed


def test_list0_follows_reordering_commands():
    from codec_select.recipes.h264_headers import list0

    refs = [(5, "A"), (6, "B"), (7, "C")]  # (frame_num, picture), current frame_num 8
    plain = {"frame_num": 8, "max_frame_num": 16, "num_ref_idx_l0": 3, "list0": []}
    assert [r[1] for r in list0(plain, refs)] == ["C", "B", "A"]
    # x264's weighted duplicate: ref 0 = C, ref 1 = C again (abs_diff 16 wraps to the same picture), then B, A.
    dup = dict(plain, num_ref_idx_l0=4, list0=[(0, 0), (0, 15), (0, 0), (0, 0)])
    assert [r[1] for r in list0(dup, refs)] == ["C", "C", "B", "A"]
    swap = dict(plain, list0=[(0, 1)])  # B first, the rest keep their order
    assert [r[1] for r in list0(swap, refs)] == ["B", "C", "A"]
    wrapped = {"frame_num": 1, "max_frame_num": 16, "num_ref_idx_l0": 2, "list0": []}
    assert [r[1] for r in list0(wrapped, [(15, "X"), (0, "Y")])] == ["Y", "X"]  # frame_num wrapped past 15
    assert list0(dict(plain, list0=[(0, 5)]), refs) is None  # names a picture that is not held


@needs_x264
def test_slice_headers_of_x264_clip(tmp_path):
    from codec_select.recipes.h264_headers import nal_length_size, parameter_sets, slice_header

    rng = np.random.default_rng(6)
    img = texture(rng, 48, 64).astype(np.float64)
    frames = [np.clip(img * (1 - 0.06 * t), 0, 255).astype(np.uint8) for t in range(10)]  # a fade to black
    path = tmp_path / "fade.mp4"
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"profile": "main", "bf": "0", "threads": "1", "x264-params": "weightp=2:ref=2"}
        for im in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(im, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    container = av.open(str(path))
    stream = container.streams.video[0]
    extradata = stream.codec_context.extradata
    sets, size = parameter_sets(extradata), nal_length_size(extradata)
    headers = [slice_header(bytes(p), size, sets) for p in container.demux(stream) if p.size]
    container.close()
    assert sets["pps"][0]["weighted_pred"] == 1
    assert headers[0]["slice_type"] == 2 and all(h["slice_type"] == 0 for h in headers[1:])
    assert headers[0]["idr"] and not any(h["idr"] for h in headers[1:])
    assert [h["frame_num"] for h in headers] == list(range(10))  # every picture is a reference
    assert any(w != (1 << h["luma_log2"], 0, 1 << h["chroma_log2"], 0, 1 << h["chroma_log2"], 0)
               for h in headers[1:] for w in h.get("weights", ()))  # the fade is coded with explicit weights
    assert len(list(iter_emulated(path))) == 10


def test_non_h264_is_unsupported(tmp_path):
    from codec_select.synth import Scene, make_clip

    path = tmp_path / "clip.mp4"
    make_clip(path, Scene(kind="static", frames=4, width=64, height=48), encoder="mpeg4")
    with pytest.raises(UnsupportedVideoError, match="needs H.264"):
        next(iter_emulated(path))


@pytest.mark.parametrize("seed", [0, 1])
def test_luma_only_emulation_matches_full(seed):
    # chroma=False: the same luma, coded map and choices (nothing in luma depends on chroma), chroma untouched.
    # A larger picture than the twin test, so most partitions read their references in place.
    rng = np.random.default_rng(seed)
    cur, ring, emu = _ring_case(rng, 64, 96)
    parts = random_parts(rng, 64, 96)
    l0, l1 = np.array([0, 0, 2], np.int64), np.array([1], np.int64)
    weights = np.array([[[32, 32]], [[32, 32]], [[40, 24]]], np.int32)
    wp = np.array([[1, 0, 1, 0, 1, 0], [1, -1, 1, 2, 1, 0], [3, 5, 1, 0, 2, -3]], np.int32)
    log2 = np.array([1, 0], np.int32)
    full = [np.zeros_like(c) for c in cur]
    coded_f = np.zeros((16, 24), bool)
    cov_f, choice_f = emulate_inter(*cur, *ring, *emu, parts, l0, l1, weights, 0, 0, *full, wp, log2, coded_f)
    want = [np.zeros_like(c) for c in cur]
    coded_n = np.zeros((16, 24), bool)
    naive_emulate_inter(cur, ring, emu, parts, l0, l1, weights, 0, 0, want, wp.tolist(), log2.tolist(), coded=coded_n)
    for got, exp in zip(full, want):
        np.testing.assert_array_equal(got, exp)
    luma = [np.zeros_like(cur[0]), np.full_like(cur[1], 7), np.full_like(cur[2], 7)]
    coded_l = np.zeros((16, 24), bool)
    cov_l, choice_l = emulate_inter(*cur, *ring, *emu, parts, l0, l1, weights, 0, 0, *luma, wp, log2, coded_l,
                                    chroma=False)
    np.testing.assert_array_equal(luma[0], full[0])
    np.testing.assert_array_equal(coded_l, coded_f)
    np.testing.assert_array_equal(choice_l, choice_f)
    np.testing.assert_array_equal(cov_l, cov_f)
    assert (luma[1] == 7).all() and (luma[2] == 7).all()
    kinds_f = emulate_intra(*cur, cov_f, 0, 0, 0, *full, coded_f)
    kinds_l = emulate_intra(*cur, cov_l, 0, 0, 0, *luma, coded_l, chroma=False)
    np.testing.assert_array_equal(kinds_l, kinds_f)
    np.testing.assert_array_equal(luma[0], full[0])
    assert (luma[1] == 7).all() and (luma[2] == 7).all()


@needs_x264
def test_iter_emulated_luma_only(tmp_path):
    rng = np.random.default_rng(6)
    big = texture(rng, 96, 160)
    frames = [big[t: t + 48, 2 * t: 2 * t + 64] for t in range(8)]
    path = encode(tmp_path / "pan.mp4", frames, bframes=2)
    full = list(iter_emulated(path))
    luma = list(iter_emulated(path, chroma=False))
    assert [f.index for f in luma] == [f.index for f in full]
    for a, b in zip(full, luma):
        np.testing.assert_array_equal(a.y, b.y)
        assert b.u is None and b.v is None
