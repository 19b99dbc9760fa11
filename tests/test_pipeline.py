"""Pipeline: torch preprocessing vs PIL, mosaic layout, select_and_encode end to end on ../shared/videos, CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from conftest import SHARED_VIDEOS  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from codec_select import select_patches, slot_frames  # noqa: E402
from codec_select.decode.container import probe
from codec_select.decode.pixels import read_frames
from codec_select.encoder import OneVisionEncoderConfig, OneVisionEncoderModel, load_encoder  # noqa: E402
from codec_select.encoder.pipeline import (  # noqa: E402
    build_mosaic,
    encoder_inputs,
    preprocess_frames,
    select_and_encode,
)
from codec_select.geometry import CLIP_MEAN, CLIP_STD, Geometry, make_geometry  # noqa: E402
from codec_select.selection import Selection  # noqa: E402

TINY = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
        "patch_size": 14, "initializer_range": 0.2}
VIDEOS = SHARED_VIDEOS
needs_videos = pytest.mark.skipif(len(VIDEOS) < 2, reason="../shared/videos not found")


def _close(a, b, tol=1e-5):
    assert a.shape == b.shape
    diff = (a.float() - b.float()).abs().max().item()
    assert diff <= tol, f"max abs diff {diff} > {tol}"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = OneVisionEncoderModel(OneVisionEncoderConfig(**TINY))
    folder = tmp_path_factory.mktemp("tiny_ove_pipeline")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(TINY | {"model_type": "onevision_encoder"}))
    return folder


@pytest.fixture(scope="module")
def model(tiny_dir):
    return load_encoder(tiny_dir, device="cpu", dtype=torch.float32)


def hand_selection(path, slots_cells: np.ndarray, first_frames: int = 100, policy: str = "uniform") -> Selection:
    """A Selection made without the selector: the given flat indices on ap224, frames floor(linspace(0, n−1, 64))."""
    info = probe(path)
    geo = make_geometry("ap224", *info.upright_hw)
    ids = np.floor(np.linspace(0, first_frames - 1, 64)).astype(np.int64)
    return Selection(
        visible_indices=np.sort(slots_cells.astype(np.int64)), frame_ids=ids, timestamps=ids / 30.0,
        scores=np.zeros((64, geo.grid_h, geo.grid_w), np.float32), geometry=geo, signals="codec-mv", codec=info.codec,
        policy=policy, video=str(path), num_frames=first_frames,
    )


def uniform_indices(frames: int, cells: int = 256) -> tuple[np.ndarray, np.ndarray]:
    slots = np.round(np.linspace(0, 63, frames)).astype(np.int64)
    return slots, (slots[:, None] * cells + np.arange(cells)).ravel()


def codec_like(path, k: int, seed: int) -> Selection:
    """Slot 0 full + random cells of slots 1..63 over the first 100 frames (decodes fast)."""
    rest = np.random.default_rng(seed).choice(np.arange(256, 64 * 256), k - 256, replace=False)
    return hand_selection(path, np.concatenate([np.arange(256), rest]), policy="topk")


@pytest.fixture(scope="module")
def selection():
    """The selector's own output on a shared clip."""
    if len(VIDEOS) < 2:
        pytest.skip("../shared/videos not found")
    from codec_select.select import select_patches

    return select_patches(VIDEOS[0], budget=1024)


# --- preprocessing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,h,w", [("ap224", 240, 320), ("ap224", 360, 202), ("ap224", 100, 150),
                                      ("llava576", 240, 320), ("llava576", 720, 404), ("native", 240, 320)])
def test_preprocess_matches_pil(name, h, w):
    rng = np.random.default_rng(h * w)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([127 + 100 * np.sin(xx / 7.0 + c) * np.cos(yy / 11.0) for c in range(3)], -1)
    img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    geo = make_geometry(name, h, w)
    reference = geo.to_canvas(img).astype(np.float32)
    ours = preprocess_frames(img[None], geo, normalize=False)[0].permute(1, 2, 0).numpy()
    diff = np.abs(ours - reference)
    # PIL works in fixed point with uint8 between its two passes: a level or two off on a few % of the pixels
    assert diff.max() <= 2.0 and (diff > 0).mean() < 0.03, (diff.max(), (diff > 0).mean())
    normed = preprocess_frames(np.stack([img, img]), geo, chunk=1)
    expected = (torch.from_numpy(ours).permute(2, 0, 1) / 255.0 - torch.tensor(CLIP_MEAN)[:, None, None]) \
        / torch.tensor(CLIP_STD)[:, None, None]
    _close(normed[1], expected, 1e-6)
    if name == "llava576":  # padding is black before normalisation
        _close(normed[0, :, 0, 0], -torch.tensor(CLIP_MEAN) / torch.tensor(CLIP_STD), 1e-6)
    with pytest.raises(ValueError, match="frames must be uint8"):
        preprocess_frames(img, geo)


def test_build_mosaic_layout_and_errors():
    geo = Geometry("native", 56, 56, 56, 56, 14, 56, 56, 0, 0)  # 4×4 cells
    t, y, x = np.meshgrid(np.arange(64), np.arange(56), np.arange(56), indexing="ij")
    code = torch.from_numpy((t * 100 + (y // 14) * 4 + x // 14).astype(np.float32))
    frames = torch.stack([code, code + 0.25, code + 0.5], 1)  # [64, 3, 56, 56]
    idx = np.sort(np.random.default_rng(0).choice(64 * 16, 48, replace=False))
    mosaic = build_mosaic(frames, idx, geo)
    assert mosaic.shape == (1, 3, 3, 56, 56)
    for j, flat in enumerate(idx):
        g, cell = divmod(j, 16)
        patch = mosaic[0, :, g, (cell // 4) * 14 : (cell // 4 + 1) * 14, (cell % 4) * 14 : (cell % 4 + 1) * 14]
        want = (flat // 16) * 100 + flat % 16
        assert torch.all(patch[0] == want) and torch.all(patch[2] == want + 0.5)
    # the same mosaic from a compact frame store + slot_rows
    used = np.unique(idx // 16)
    rows = np.full(64, -1)
    rows[used] = np.arange(used.size)
    assert torch.equal(build_mosaic(frames[used], idx, geo, slot_rows=rows), mosaic)
    with pytest.raises(ValueError, match=re.escape("Invalid budget for a mosaic (K=20). K must be a positive "
                                                   "multiple of the 16 cells per frame")):
        build_mosaic(frames, idx[:20], geo)
    with pytest.raises(ValueError, match="pass all 64 slots or slot_rows"):
        build_mosaic(frames[:10], idx, geo)


@needs_videos
def test_llava576_cells_become_14px_encoder_patches(model):
    """llava576: 16-px cells on the 576 letterbox; frames are resized 576 → 504 once so every cell is one 14-px
    encoder patch (the reference feeds 504² images to the encoder)."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)
    geo = make_geometry("llava576", 180, 320)
    frames504 = preprocess_frames(img[None], geo, patch_size=14, normalize=False)
    assert frames504.shape == (1, 3, 504, 504)
    from PIL import Image

    pil = np.asarray(Image.fromarray(geo.to_canvas(img)).resize((504, 504), Image.Resampling.BICUBIC))
    diff = np.abs(frames504[0].permute(1, 2, 0).numpy() - pil)
    assert diff.max() <= 2 and (diff > 0).mean() < 0.03
    info = probe(VIDEOS[0])
    geo = make_geometry("llava576", *info.upright_hw)
    target = 1296 * 9 + 700  # slot 9, row 19, col 16
    pool = np.setdiff1d(np.arange(1296, 64 * 1296), [target])
    flat = np.sort(np.concatenate([np.arange(1296), [target], rng.choice(pool, 1295, replace=False)]))
    ids = np.floor(np.linspace(0, 99, 64)).astype(np.int64)
    sel = Selection(visible_indices=flat.astype(np.int64), frame_ids=ids, timestamps=ids / 30.0,
                    scores=np.zeros((64, 36, 36), np.float32), geometry=geo, signals="codec-mv", codec=info.codec,
                    policy="topk", video=str(VIDEOS[0]), num_frames=100)
    mosaic, idx = encoder_inputs(sel, patch_size=14)
    assert mosaic.shape == (1, 3, 2, 504, 504)
    j = int(np.searchsorted(flat, target))
    slot_frame = preprocess_frames(read_frames(sel.video, ids[[9]]), geo, patch_size=14)[0]
    g, cell = divmod(j, 1296)
    r, c = divmod(cell, 36)
    got = mosaic[0, :, g, r * 14 : r * 14 + 14, c * 14 : c * 14 + 14]
    _close(got, slot_frame[:, 19 * 14 : 20 * 14, 16 * 14 : 17 * 14], 0)
    out = select_and_encode(sel, model=model)
    assert out.last_hidden_state.shape == (2592, 128)


# --- end to end -------------------------------------------------------------------------------------------------


@needs_videos
def test_select_and_encode_end_to_end(tiny_dir):
    out = select_and_encode(VIDEOS[0], model=str(tiny_dir), budget=1024, output_hidden_states=True)
    assert out.selection.budget == 1024 and out.selection.video == str(VIDEOS[0])
    assert out.last_hidden_state.shape == (1024, 128) and out.pooler_output.shape == (128,)
    assert len(out.hidden_states) == 3 and out.hidden_states[0].shape == (1024, 128)
    assert torch.isfinite(out.last_hidden_state).all()
    assert {"select", "prepare", "encode", "batch"} <= set(out.timings)
    # The encoder's input defaults to the reference's own selection; asking for a policy gives ours.
    assert out.selection.options["recipe"] == "onevision-ap"
    ours = select_and_encode(VIDEOS[0], model=str(tiny_dir), budget=1024, policy="refresh")
    assert ours.selection.policy == "refresh" and "recipe" not in ours.selection.options


def test_consumer_options_pick_the_recipe_of_the_geometry():
    from codec_select.select import consumer_options

    assert consumer_options("llava576", {"budget": 10368})["recipe"] == "onevision-stage1"
    assert consumer_options("ap224", {"signals": "auto"})["recipe"] == "onevision-ap"
    assert "recipe" not in consumer_options("native", {})
    assert "recipe" not in consumer_options("ap224", {"policy": "topk"})
    assert "recipe" not in consumer_options("ap224", {"start": 2.0})  # a window: the recipe reads whole videos


@needs_videos
def test_pipeline_mosaic_equals_sparse_on_all_64_slots(model, selection):
    sel = selection
    mosaic, idx = encoder_inputs(sel)
    assert mosaic.shape == (1, 3, 4, 224, 224) and idx.shape == (1, 1024)
    frames = preprocess_frames(read_frames(sel.video, sel.frame_ids), sel.geometry)  # [64, 3, 224, 224]
    with torch.no_grad():
        sparse = model(frames.transpose(0, 1)[None], visible_indices=idx)
        via_mosaic = model(mosaic, visible_indices=idx)
    _close(sparse.last_hidden_state, via_mosaic.last_hidden_state)
    _close(sparse.pooler_output, via_mosaic.pooler_output)


@needs_videos
def test_uniform_selection_matches_the_quick_start_call(model):
    """select_and_encode on a uniform 16-frame Selection == the model card's call on those 16 frames."""
    slots, flat = uniform_indices(16)
    sel = hand_selection(VIDEOS[1], flat)
    out = select_and_encode(sel, model=model)
    frames16 = preprocess_frames(read_frames(sel.video, sel.frame_ids[slots]), sel.geometry)
    quick_idx = torch.from_numpy(slots[:, None] * 256 + np.arange(256)).reshape(1, -1)
    with torch.no_grad():
        quick = model(frames16.transpose(0, 1)[None], visible_indices=quick_idx)
    _close(out.last_hidden_state, quick.last_hidden_state[0])
    _close(out.pooler_output, quick.pooler_output[0])


@needs_videos
def test_batch_of_two_videos_equals_each_alone(model):
    selections = [codec_like(VIDEOS[0], 1024, seed=1), codec_like(VIDEOS[1], 2048, seed=2)]
    batch = select_and_encode(selections, model=model, batch_size=2)
    assert [b.last_hidden_state.shape[0] for b in batch] == [1024, 2048]
    assert all(b.timings["batch"] == 2 for b in batch)
    for sel, together in zip(selections, batch, strict=True):
        alone = select_and_encode(sel, model=model)
        _close(together.last_hidden_state, alone.last_hidden_state)
        _close(together.pooler_output, alone.pooler_output)


class ReferenceStyleModule(torch.nn.Module):
    """A module with only the reference forward signature (as the remote-code model): no forward_packed."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = []

    def forward(self, pixel_values, visible_indices=None, patch_positions=None, output_hidden_states=None):
        self.calls.append(tuple(pixel_values.shape))
        return self.inner(pixel_values, visible_indices=visible_indices, output_hidden_states=output_hidden_states)


@needs_videos
def test_foreign_module_gets_same_shape_groups(model):
    foreign = ReferenceStyleModule(model)
    items = [codec_like(VIDEOS[0], 1024, seed=3), codec_like(VIDEOS[1], 2048, seed=4), codec_like(VIDEOS[0], 1024, 5)]
    ours = select_and_encode(items, model=model, batch_size=3)
    theirs = select_and_encode(items, model=foreign, batch_size=3)
    assert sorted(foreign.calls) == [(1, 3, 8, 224, 224), (2, 3, 4, 224, 224)]
    for a, b in zip(ours, theirs, strict=True):
        _close(a.last_hidden_state, b.last_hidden_state)
        _close(a.pooler_output, b.pooler_output)


def test_argument_validation(model, tmp_path):
    missing = str(tmp_path / "missing.mp4")  # never opened: validation comes first
    with pytest.raises(ValueError, match=re.escape("Invalid budget (1000). On 'ap224' it must be a multiple of 256")):
        select_and_encode(missing, model=model, budget=1000)
    with pytest.raises(ValueError, match=re.escape("Invalid geometry ('square')")):
        select_and_encode(missing, model=model, geometry="square")
    with pytest.raises(ValueError, match=re.escape("Invalid video (empty sequence)")):
        select_and_encode([], model=model)
    with pytest.raises(ValueError, match=re.escape("Invalid model (int)")):
        select_and_encode(missing, model=3)
    with pytest.raises(ValueError, match="not torch.bfloat16"):
        select_and_encode(missing, model=model, dtype=torch.bfloat16)


@needs_videos
def test_save_features(model, tmp_path):
    _, flat = uniform_indices(4)
    out = select_and_encode(hand_selection(VIDEOS[0], flat), model=model)
    path = out.save(tmp_path / "features.safetensors", model="tiny")
    with safe_open(str(path), "pt") as f:
        assert set(f.keys()) == {"last_hidden_state", "pooler_output", "visible_indices", "positions_thw",
                                 "frame_ids", "timestamps"}
        assert f.get_tensor("last_hidden_state").shape == (1024, 128)
        assert torch.equal(f.get_tensor("visible_indices"), torch.from_numpy(out.selection.visible_indices))
        meta = f.metadata()
    assert meta["model"] == "tiny" and json.loads(meta["selection"])["budget"] == 1024


@needs_videos
def test_cli_encode(tiny_dir, tmp_path, capsys):
    from codec_select.cli import main

    out = tmp_path / "f.safetensors"
    assert main(["encode", str(VIDEOS[0]), "--model", str(tiny_dir), "--budget", "1024", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1024 tokens -> [1024, 128]" in text and out.is_file()
    assert main(["encode", str(VIDEOS[0]), "--model", str(tmp_path / "no" / "model")]) == 2
    assert "no such folder" in capsys.readouterr().err


@needs_videos
def test_window_selection_encodes_the_frames_it_scored():
    import av

    with av.open(str(VIDEOS[0])) as container:
        times = [f.time for f in container.decode(video=0)]
    offset = sum(t < 2.0 - 1e-6 for t in times)
    sel = select_patches(VIDEOS[0], start=2.0, budget=1024)
    assert sel.report.frame_offset == offset
    got = slot_frames(sel, canvas=False, slots=np.array([0, 7]))
    want = read_frames(VIDEOS[0], sel.frame_ids[[0, 7]] + offset)
    assert np.array_equal(got, want)
    for slot, frame in zip([0, 7], got):
        assert abs(times[int(sel.frame_ids[slot]) + offset] - sel.timestamps[slot]) < 1e-6
