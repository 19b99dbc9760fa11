"""LLaVA-OneVision-2 input (issue 14): Qwen geometry, sampling, groups, block packing, files, processor, prompt.

The compatibility checks of ../shared/reference/llava_ov2_prep.md §9 on synthetic clips, plus the spec's worked
example (§8 B) on the shared ytb_XwB clip when it is present.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_VIDEOS, shared_videos

from codec_select.cli import main
from codec_select.decode.pixels import read_frames
from codec_select.export.llava_ov2 import prepare_llava_ov2
from codec_select.export.ov2_blocks import group_budget, pack_group, render_canvases, select_blocks
from codec_select.export.ov2_frames import avoid_keyframes, fixed_groups, frame_is_bad, sample_frame_ids
from codec_select.export.ov2_processor import (
    IMAGE_PAD,
    load_llava_ov2,
    merge_order_positions,
    prepare_llava_ov2_inputs,
    rewrite_prompt,
    timestamp_runs,
)
from codec_select.export.ov2_readiness import readiness_groups
from codec_select.geometry import make_geometry
from codec_select.qwen_geometry import smart_resize
from codec_select.synth import texture, write_frames

XWB = next((p for p in shared_videos() if "XwB" in p.name), None)
XWB_KEYFRAMES = [0, 94, 173, 231, 283, 352]

# ------------------------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(("hw", "expected"), [((640, 360), (504, 280)), ((1080, 1920), (280, 504)),
                                              ((224, 224), (224, 224))])
def test_smart_resize_spec_examples(hw, expected):
    assert smart_resize(*hw) == expected
    assert smart_resize(*hw, max_pixels=150000) == expected  # the LLaVA integration's bound gives the same
    g = make_geometry("qwen", *hw)
    assert (g.canvas_h, g.canvas_w, g.patch) == (*expected, 14)
    assert (g.scaled_h, g.scaled_w, g.off_y, g.off_x) == (*expected, 0, 0)  # aspect kept, no crop
    assert g.valid_mask().all()


def test_smart_resize_rules():
    # The original area is tested, not the rounded one: 392x393 rounds to 392x392 (= max_pixels) but its area is
    # larger, so it shrinks (Qwen2-VL's own rule would keep 392x392).
    assert smart_resize(392, 393) == (364, 392)
    assert smart_resize(20, 30) == (56, 84)  # under min_pixels: grows, ceil
    assert smart_resize(10, 1000) == (28, 1008)  # clamped to one block
    with pytest.raises(ValueError, match="aspect"):
        smart_resize(1, 201)
    for h, w in [(361, 641), (97, 1001), (2000, 30)]:
        hh, ww = smart_resize(h, w)
        assert hh % 28 == 0 and ww % 28 == 0 and hh * ww <= 153664


# ------------------------------------------------------------------------------------------------- sampling


def test_sampling_worked_example_ids():
    # §8 B: 64 of 487 frames, linspace truncated, keyframe 0 → 1 and 231 → 232.
    ids = sample_frame_ids(487, 30.0, num_sampled=64, keyframes=np.array(XWB_KEYFRAMES))
    base = np.linspace(0, 486, 64, dtype=np.int32)
    assert ids.size == 64 and ids[0] == 1 and ids[-1] == 486
    expected = base.copy()
    expected[expected == 0], expected[expected == 231] = 1, 232
    assert np.array_equal(ids, expected)
    assert not set(ids.tolist()) & set(XWB_KEYFRAMES)
    # §8 A: N=1024 > T gives every frame once, keyframes refilled last.
    assert np.array_equal(sample_frame_ids(487, 30.0, keyframes=np.array(XWB_KEYFRAMES)), np.arange(487))


def test_keyframe_refill_prefers_non_key_near_kept():
    # 0..9 with keyframes {0, 5}: sampling [0, 5] moves to [1, 4]... refilled to 4 frames, non-key first.
    out = avoid_keyframes(np.array([0, 5, 9]), np.array([0, 5]), 10, 4)
    assert out.tolist() == sorted(out.tolist()) and len(set(out.tolist())) == 4
    assert not {0, 5} & set(out.tolist())
    fps_ids = sample_frame_ids(90, 30.0, sampling="fps", sample_fps=2.0)
    assert fps_ids.tolist() == [0, 15, 30, 45, 60, 75]


def test_fixed_groups_never_drop_the_tail():
    for n in range(1, 80):
        for tail in ("merge", "own"):
            specs = fixed_groups(n, 16, min_tail=4, tail=tail)
            covered = [i for s in specs for i in range(s.start, s.end)]
            assert covered == list(range(n))  # contiguous, in order, nothing dropped
    specs = fixed_groups(34, 16, min_tail=4)
    assert [(s.start, s.end, s.stop_reason) for s in specs] == [(0, 16, "group_size"), (16, 34, "tail_merged")]
    assert [s.frame_count for s in fixed_groups(34, 16, tail="own")] == [16, 16, 2]
    assert [s.frame_count for s in fixed_groups(40, 16)] == [16, 16, 8]


def test_readiness_groups_cover_every_frame_and_follow_activity():
    rng = np.random.default_rng(4)
    quiet = rng.random((120, 45)) * 0.01
    busy = rng.random((120, 45))
    scores = np.concatenate([quiet, busy, quiet[:5]])  # 245 frames: quiet, busy, a 5-frame tail
    k = group_budget(4, 180)  # S_full 180 → 45 blocks per frame, K = 135
    specs = readiness_groups(scores, k, 4, group_size=32)
    assert [i for s in specs for i in range(s.start, s.end)] == list(range(245))  # nothing dropped
    assert all(8 <= s.frame_count <= 64 for s in specs[:-1])
    assert specs[-1].stop_reason == "tail_merged" or specs[-1].frame_count >= 8
    sizes_quiet = [s.frame_count for s in specs if s.end <= 120]
    sizes_busy = [s.frame_count for s in specs if s.start >= 120 and s.end <= 240]
    assert max(sizes_busy) < min(sizes_quiet), (sizes_quiet, sizes_busy)
    for s in specs:
        if s.stop_reason.startswith("readiness"):
            assert s.readiness["sum"] >= s.readiness["threshold"] and s.readiness["bins"] >= 3
    assert [(s.start, s.end) for s in readiness_groups(scores[:5], k, 4)] == [(0, 5)]  # shorter than a group


def test_frame_is_bad_thresholds():
    rng = np.random.default_rng(0)
    assert frame_is_bad(np.zeros((56, 56, 3), np.uint8)) == "black"
    assert frame_is_bad(np.full((56, 56, 3), 128, np.uint8)) == "solid"
    assert frame_is_bad(np.full((56, 56, 3), (0, 200, 0), np.uint8)) == "solid"  # solid is tested first
    green = rng.integers(0, 60, (56, 56, 3), dtype=np.uint8)
    green[..., 1] += 180
    assert frame_is_bad(green) == "green"
    assert frame_is_bad(texture(rng, 56, 56)) == ""
    noisy_dark = rng.integers(0, 40, (56, 56, 3), dtype=np.uint8)  # dark but textured: usable
    assert frame_is_bad(noisy_dark) == ""


# ------------------------------------------------------------------------------------------------- blocks


def test_pack_group_spec_rows_and_merge_layout():
    # §8 B, canvas 1 of group 0: blocks of frame 7 at block (9, 1) and (10, 3) first.
    hb, wb = 36, 20
    blocks = np.array([[7, 9, 1], [7, 10, 3], [15, 0, 0]])
    pos = pack_group(1, blocks, hb, wb, 4)
    assert pos.shape == (4 * 720, 3) and pos.dtype == np.int32
    assert pos[:3].tolist() == [[1, 0, 0], [1, 0, 1], [1, 0, 2]] and pos[20].tolist() == [1, 1, 0]
    assert np.array_equal(pos[:720, 1:], np.stack(np.divmod(np.arange(720), wb), axis=1))  # identity anchor
    assert pos[720:724].tolist() == [[7, 18, 2], [7, 18, 3], [7, 20, 6], [7, 20, 7]]
    assert pos[740:743].tolist() == [[7, 19, 2], [7, 19, 3], [7, 21, 6]]
    assert (pos[1440:] == -1).all() and (pos[726:740] == -1).all()  # unfilled slots are padding
    merged = merge_order_positions(pos, np.array([[1, hb, wb]] * 4))
    assert merged[720:725].tolist() == [[7, 18, 2], [7, 18, 3], [7, 19, 2], [7, 19, 3], [7, 20, 6]]
    assert merged[:4].tolist() == [[1, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]]
    assert sorted(map(tuple, merged.tolist())) == sorted(map(tuple, pos.tolist()))  # a permutation


def test_select_blocks_topk_and_candidates():
    rng = np.random.default_rng(1)
    scores = rng.random((5, 3, 4))
    cand = np.array([False, True, False, True, True])
    got = select_blocks(scores, cand, 7)
    assert got.shape == (7, 3) and set(got[:, 0].tolist()) <= {1, 3, 4}
    pool = sorted(scores[[1, 3, 4]].reshape(-1), reverse=True)
    assert np.isclose(scores[got[:, 0], got[:, 1], got[:, 2]].sum(), sum(pool[:7]))
    assert [tuple(r) for r in got.tolist()] == sorted(tuple(r) for r in got.tolist())  # packing order
    uni = select_blocks(scores, cand, 24, policy="uniform")
    assert sorted(set(uni[:, 0].tolist())) == [1, 4] and uni.shape[0] == 24
    assert select_blocks(scores, np.zeros(5, bool), 7).shape == (0, 3)


def test_select_blocks_refresh_sends_the_block_that_drifted():
    thumbs = np.full((5, 12, 4), 100.0, np.float32)
    thumbs[3:, 1] = 200.0  # block (0, 1) changes at frame 3 and stays changed
    quiet = np.zeros((5, 3, 4))
    cand = np.array([False, True, True, True, True])
    got = select_blocks(quiet, cand, 1, policy="refresh", thumbs=thumbs)
    assert got.tolist() == [[3, 0, 1]]
    cand[3] = False  # a bad frame is never sent: the change goes out with the next good frame
    assert select_blocks(quiet, cand, 1, policy="refresh", thumbs=thumbs).tolist() == [[4, 0, 1]]
    many = select_blocks(quiet, cand, 20, policy="refresh", thumbs=thumbs)
    assert many.shape == (20, 3) and not (many[:, 0] == 3).any() and not (many[:, 0] == 0).any()
    with pytest.raises(ValueError, match="thumbs"):
        select_blocks(quiet, cand, 1, policy="refresh")


def test_render_canvases_copies_source_patches():
    rng = np.random.default_rng(2)
    frames = {3: rng.integers(0, 255, (56, 84, 3), dtype=np.uint8), 8: rng.integers(0, 255, (56, 84, 3), np.uint8)}
    pos = pack_group(3, np.array([[8, 1, 2], [8, 0, 0]]), 4, 6, 2)
    can = render_canvases(pos, frames, 4, 6, 14)
    assert np.array_equal(can[0], frames[3])
    assert np.array_equal(can[1, :28, :28], frames[8][28:56, 56:84])
    assert np.array_equal(can[1, :28, 28:56], frames[8][:28, :28])
    assert not can[1, 28:].any()  # padding is black


def test_prompt_text_for_known_positions():
    fps = 30.0
    hb, wb = 4, 4
    pos = pack_group(1, np.array([[7, 0, 0], [7, 1, 1], [15, 0, 1], [15, 1, 0]]), hb, wb, 2)
    merged = merge_order_positions(pos, np.array([[1, hb, wb]] * 2))
    runs = timestamp_runs(merged, fps)
    assert runs == [(1, 4), (7, 2), (15, 2)]
    text = "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>\nWhat happens?"
    v0, v1, pad = "<|vision_start|>", "<|vision_end|>", IMAGE_PAD
    assert rewrite_prompt(text, runs, fps) == (
        f"<|im_start|>user\n<0.0 seconds>{v0}{pad * 4}{v1}\n<0.2 seconds>{v0}{pad * 2}{v1}\n"
        f"<0.5 seconds>{v0}{pad * 2}{v1}\nWhat happens?"
    )
    assert rewrite_prompt("no markers here", runs, fps) == "no markers here"


# ------------------------------------------------------------------------------------------------- end to end


def _bad_frames_clip(path: Path) -> tuple[set[int], int]:
    """A moving square on texture, 40 frames, with black / solid / green frames at known display positions."""
    rng = np.random.default_rng(3)
    bg = texture(rng, 240, 320)
    frames, bad = [], {0: "black", 13: "black", 20: "solid", 27: "green"}
    for i in range(40):
        img = bg.copy()
        x = 10 + 5 * i
        img[100:140, x % 280 : x % 280 + 40] = (255, 40, 40)
        if bad.get(i) == "black":
            img[:] = 0
        elif bad.get(i) == "solid":
            img[:] = 90
        elif bad.get(i) == "green":  # a decoder's zeroed chroma: saturated green, with some texture left
            img = rng.integers(0, 60, img.shape, dtype=np.uint8)
            img[..., 1] += 180
        frames.append(img)
    write_frames(path, frames, bframes=2, gop=12)
    return set(bad), len(frames)


@pytest.fixture(scope="module")
def bad_clip(clip_dir):
    path = clip_dir / "ov2_bad_frames.mp4"
    return (path, *_bad_frames_clip(path))


@pytest.fixture(scope="module")
def ov2_out(square_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("ov2") / "square"
    res = prepare_llava_ov2(square_clip[0], out, num_sampled=40, group_size=16, image_format="png")
    return res, out


def test_outputs_match_the_contract(ov2_out, square_clip):
    _, out = ov2_out
    meta = json.loads((out / "meta.json").read_text())
    hb, wb = meta["hb_wb"]
    s_full = meta["S_full"]
    assert (hb, wb, s_full) == (18, 22, 396)  # 240x320 → 252x308
    pos = np.load(out / "src_patch_position.npy")
    ids = np.load(out / "frame_ids.npy")
    assert pos.dtype == np.int32 and ids.dtype == np.int32 and ids.size == 40
    ipg, groups = 4, meta["groups"]
    assert [g["frame_ids"] for g in groups] == [ids[0:16].tolist(), ids[16:32].tolist(), ids[32:40].tolist()]
    assert pos.shape == (ipg * len(groups) * s_full, 3) and meta["total_images"] == ipg * len(groups)
    assert sorted(p.name for p in out.glob("canvas_*.png")) == meta["canvas_files"]
    real = pos[pos[:, 0] >= 0]
    assert len({tuple(r) for r in real.tolist()}) == real.shape[0]  # no duplicate (fid, h, w)
    per_canvas = pos.reshape(-1, hb, wb, 3)
    for gi, g in enumerate(groups):
        first = per_canvas[g["global_img_offset"]]
        assert (first[..., 0] == g["frame_ids"][0]).all()  # single-frame, identity
        assert np.array_equal(first[..., 1:], np.stack(np.mgrid[0:hb, 0:wb], axis=-1))
        assert set(per_canvas[gi * ipg : (gi + 1) * ipg, ..., 0].ravel().tolist()) <= set(g["frame_ids"]) | {-1}
    # Each canvas 2x2 block is one source block: one fid, the patches (2bh+dh, 2bw+dw) of one (bh, bw).
    blk = per_canvas.reshape(-1, hb // 2, 2, wb // 2, 2, 3).transpose(0, 1, 3, 2, 4, 5).reshape(-1, 4, 3)
    blk = blk[blk[:, 0, 0] >= 0]
    assert (blk[:, :, 0] == blk[:, :1, 0]).all()
    assert (blk[:, 0, 1] % 2 == 0).all() and (blk[:, 0, 2] % 2 == 0).all()
    offsets = blk[:, :, 1:] - blk[:, :1, 1:]
    assert (offsets == np.array([[0, 0], [0, 1], [1, 0], [1, 1]])).all()
    # Canvas pixels are the source frames' patches (lossless png).
    loaded = load_llava_ov2(out)
    geo = make_geometry("qwen", 240, 320)
    fids = sorted(set(real[:, 0].tolist()))[:6]
    src = {f: geo.to_canvas(img) for f, img in zip(fids, read_frames(square_clip[0], np.array(fids)))}
    rows = np.flatnonzero(np.isin(pos[:, 0], fids))
    cells = loaded.canvases.reshape(-1, hb, 14, wb, 14, 3).swapaxes(2, 3).reshape(-1, 14, 14, 3)
    for r in rows[:: max(1, rows.size // 200)]:
        f, h, w = pos[r]
        assert np.array_equal(cells[r], src[int(f)][14 * h : 14 * h + 14, 14 * w : 14 * w + 14])


def test_same_file_same_options_same_output(ov2_out, square_clip):
    res, _ = ov2_out
    again = prepare_llava_ov2(square_clip[0], None, num_sampled=40, group_size=16, image_format="png")
    assert np.array_equal(again.positions, res.positions) and np.array_equal(again.canvases, res.canvases)
    assert again.meta["groups"] == res.meta["groups"]


def test_blocks_follow_the_moving_square(ov2_out):
    res, _ = ov2_out
    hb, wb = res.meta["hb_wb"]
    g = make_geometry("qwen", 240, 320)
    pos = res.positions.reshape(-1, hb * wb, 3)[1:4].reshape(-1, 3)  # group 0's block canvases
    pos = pos[pos[:, 0] >= 0]
    # The square crosses rows 100..140 of 240 (canvas rows ~105..147, patch rows 7..10): most picks lie there.
    rows = pos[:, 1]
    band = (rows >= int(100 * g.canvas_h / 240) // 14 - 1) & (rows <= int(140 * g.canvas_h / 240) // 14 + 1)
    assert band.mean() > 0.3, band.mean()


def test_bad_frames_are_never_candidates_and_anchor_swaps(bad_clip, tmp_path):
    path, bad, n = bad_clip
    res = prepare_llava_ov2(path, tmp_path / "bad", num_sampled=n, group_size=10, image_format="png")
    pos = res.positions
    assert np.array_equal(res.frame_ids, np.arange(n))  # N >= T: every frame, keyframes included
    used = set(pos[pos[:, 0] >= 0, 0].tolist())
    assert not used & bad
    g0 = res.meta["groups"][0]
    assert g0["frame_ids"][0] != 0 and g0["anchor_swapped_in"] == g0["frame_ids"][0]  # black frame 0 swapped out
    found = {int(k): v for g in res.meta["groups"] for k, v in g["bad_frames"].items()}
    assert found == {0: "black", 13: "black", 20: "solid", 27: "green"}
    assert sum(len(g["frame_ids"]) for g in res.meta["groups"]) == n


def test_tail_group_kept_with_padding_when_own(square_clip, tmp_path):
    res = prepare_llava_ov2(square_clip[0], None, num_sampled=34, group_size=16, tail="own", blocks="uniform")
    groups = res.meta["groups"]
    assert [len(g["frame_ids"]) for g in groups] == [16, 16, 2]
    s_full = res.meta["S_full"]
    last = res.positions.reshape(-1, s_full, 3)[-4:]
    assert (last[0, :, 0] >= 0).all() and (last[1, :, 0] >= 0).all() and (last[2:, :, 0] == -1).all()
    assert groups[-1]["padding_blocks"] == 2 * s_full // 4


def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|vision_start|>", "<|vision_end|>", IMAGE_PAD, "<|video_pad|>", "<unk>"]
    words = ["seconds", "What", "happens", "?", "<", ">", "."] + [str(d) for d in range(10)]
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(specials + words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", additional_special_tokens=specials[:4])


def test_processor_inputs_from_a_local_qwen2vl_processor(ov2_out):
    transformers = pytest.importorskip("transformers")
    from types import SimpleNamespace

    cls = getattr(transformers, "Qwen2VLImageProcessorPil", None) or transformers.Qwen2VLImageProcessor
    image_processor = cls(patch_size=14, merge_size=2, temporal_patch_size=2)
    tokenizer = _tiny_tokenizer()
    processor = SimpleNamespace(image_processor=image_processor, tokenizer=tokenizer)
    res, out = ov2_out
    hb, wb = res.meta["hb_wb"]
    text = "<|vision_start|><|video_pad|><|vision_end|>\nWhat happens?"
    got = prepare_llava_ov2_inputs(processor, text, out)
    c = res.meta["total_images"]
    assert got["image_grid_thw"].tolist() == [[1, hb, wb]] * c
    assert tuple(got["pixel_values"].shape) == (c * hb * wb, 3 * 2 * 14 * 14)
    expected = merge_order_positions(res.positions, np.array([[1, hb, wb]] * c))
    assert np.array_equal(got["patch_positions"].numpy(), expected)
    pad_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    assert int((got["input_ids"] == pad_id).sum()) == c * hb * wb // 4
    runs = re.findall(r"<(\d+\.\d) seconds><\|vision_start\|>", got["text"])
    assert runs[0] == f"{res.frame_ids[0] / res.fps:.1f}" and got["text"].endswith("What happens?")
    bad_patch = cls(patch_size=16, merge_size=2)
    with pytest.raises(ValueError, match="patch size"):
        prepare_llava_ov2_inputs(bad_patch, text, out)


# ------------------------------------------------------------------------------------------------- CLI, batch


def test_batch_llava_ov2_resume_and_failures(square_clip, tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    manifest.write_text(json.dumps({"id": "sq", "video": str(square_clip[0])}) + "\n"
                        + json.dumps({"id": "broken", "video": str(broken)}) + "\n")
    out = tmp_path / "out"
    args = ["batch", str(manifest), "-o", str(out), "--format", "llava-ov2", "-j", "1", "--no-progress",
            "--ov2-frames", "24", "--group-size", "8", "--json"]
    assert main(args) == 1
    assert (out / "sq" / "meta.json").exists() and len(list((out / "sq").glob("canvas_*.jpg"))) == 12
    fails = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["id"] for f in fails] == ["broken"]
    capsys.readouterr()
    (out / ".sq.999.tmp").mkdir()  # a folder a killed run left behind
    assert main(args) == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["skipped"] == 1 and summary["ok"] == 0 and not (out / ".sq.999.tmp").exists()


def test_select_geometry_qwen_cli(square_clip, capsys):
    assert main(["select", str(square_clip[0]), "--geometry", "qwen"]) == 0
    text = capsys.readouterr().out
    assert "qwen" in text and "canvas 252x308, patch 14" in text


# ------------------------------------------------------------------------------------------------- shared clip


@pytest.mark.skipif(XWB is None, reason="shared ytb_XwB clip not present")
def test_worked_example_b_on_shared_clip(tmp_path):
    res = prepare_llava_ov2(XWB, tmp_path / "xwb", num_sampled=64, group_size=16)
    meta = res.meta
    assert meta["keyframes"] == XWB_KEYFRAMES and meta["total_frames"] == 487
    assert meta["hb_wb"] == [36, 20] and meta["S_full"] == 720
    ids = res.frame_ids.tolist()
    assert ids[:5] == [1, 7, 15, 23, 30] and ids[-2:] == [478, 486] and 232 in ids and 231 not in ids
    assert meta["num_groups"] == 4 and meta["total_images"] == 16 and res.positions.shape == (11520, 3)
    assert res.positions[:3].tolist() == [[1, 0, 0], [1, 0, 1], [1, 0, 2]] and res.positions[20].tolist() == [1, 1, 0]
    assert (res.positions[:, 0] >= 0).all()  # 16 frames per group fill every canvas
    assert len({tuple(r) for r in res.positions.tolist()}) == 11520
    assert res.canvases.shape == (16, 504, 280, 3)
    # The blocks follow our energy: every chosen frame of canvas 1 is one of group 0's non-anchor frames.
    canvas1 = set(res.positions[720:1440, 0].tolist())
    assert canvas1 <= set(ids[1:16])


@pytest.mark.skipif(not SHARED_VIDEOS, reason="../shared/videos not found")
def test_batch_records_a_truncated_video_as_partial(tmp_path):
    """A truncated file is never passed off as whole: failures.jsonl unless --allow-partial, and no output folder."""
    import json

    from codec_select.batch import run_batch

    path = SHARED_VIDEOS[-1]  # ytb_YVQ: its index sits up front, so the first third still opens
    data = path.read_bytes()
    cut = tmp_path / f"cut{path.suffix}"
    cut.write_bytes(data[: len(data) // 3])
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "cut", "video": str(cut)}) + "\n")
    summary = run_batch(manifest, tmp_path / "out", fmt="llava-ov2", workers=1, progress=False)
    assert (summary.ok, summary.failed) == (0, 1)
    failure = json.loads((tmp_path / "out" / "failures.jsonl").read_text().splitlines()[0])
    assert failure["error_class"] == "PartialVideoError" and "partial video" in failure["error"]
    assert not (tmp_path / "out" / "cut" / "meta.json").exists()
    kept = run_batch(manifest, tmp_path / "out2", fmt="llava-ov2", workers=1, progress=False, allow_partial=True)
    assert (kept.ok, kept.failed) == (1, 0)
    meta = json.loads((tmp_path / "out2" / "cut" / "meta.json").read_text())
    assert meta["report"]["partial"] and meta["report"]["frames_found"] < meta["report"]["frames_declared"]
