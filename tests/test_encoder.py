"""OneVision-Encoder: checkpoint names and loading, RoPE quirk, mosaic/sparse/positions equivalences, backends.

Everything runs on a tiny random config (hidden 128, 2 layers, 4 heads: head_dim 32, the smallest the 4:6:6 RoPE
split allows) saved with safetensors and loaded back through ``load_encoder``; GPU cases are marked.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from safetensors.torch import load_file, save_file  # noqa: E402

from codec_select._packing import PackedSeqs, cu_seqlens_from_counts, gather_rope, rope_positions_thw  # noqa: E402
from codec_select.encoder import (  # noqa: E402
    OneVisionEncoderConfig,
    OneVisionEncoderModel,
    WeightsNotFoundError,
    checkpoint_filter_fn,
    count_parameters,
    load_encoder,
    resolve_attn_implementation,
)
from codec_select.encoder.rope import apply_video_rope  # noqa: E402
from codec_select.encoder.pipeline import build_mosaic  # noqa: E402
from codec_select.errors import CodecSelectError  # noqa: E402
from codec_select.geometry import Geometry  # noqa: E402

TINY = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
        "patch_size": 14, "initializer_range": 0.2}
SIDE = 56  # 4×4 cells of 14 px: a 64-slot grid of 1024 positions
CELLS = (SIDE // 14) ** 2
TOL = {torch.float32: 1e-5, torch.bfloat16: 3e-2, torch.float16: 3e-2}
GEO = Geometry("native", SIDE, SIDE, SIDE, SIDE, 14, SIDE, SIDE, 0, 0)

# The published config.json carries auto_map (remote code); we must load it without that code.
PUBLISHED_EXTRAS = {
    "architectures": ["OneVisionEncoderModel"],
    "auto_map": {"AutoConfig": "configuration_onevision_encoder.OneVisionEncoderConfig",
                 "AutoModel": "modeling_onevision_encoder.OneVisionEncoderModel"},
    "model_type": "onevision_encoder",
    "torch_dtype": "float32",
}


def save_checkpoint(folder, model: OneVisionEncoderModel, prefix: str = "", extra: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {prefix + k: v.contiguous() for k, v in model.state_dict().items()}
    state.update(extra or {})
    save_file(state, str(folder / "model.safetensors"))
    cfg = {k: getattr(model.config, k) for k in TINY} | PUBLISHED_EXTRAS
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = OneVisionEncoderModel(OneVisionEncoderConfig(**TINY))
    folder = tmp_path_factory.mktemp("tiny_ove")
    save_checkpoint(folder, model)
    return folder


@pytest.fixture(scope="module")
def model(tiny_dir):
    return load_encoder(tiny_dir, device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def clip():
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 3, 64, SIDE, SIDE, generator=g)


def _sorted_indices(k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.sort(torch.randperm(64 * CELLS, generator=g)[:k]).values


def _close(a, b, tol=1e-5):
    """Max abs difference ≤ tol, relative to the values' scale when they exceed 1: the pooled output reaches ~15,
    where one fp32 ulp is already 1e-6 and two attention kernels summing in another order differ by ~1e-5."""
    assert a.shape == b.shape
    diff = (a.float() - b.float()).abs().max().item()
    scale = max(1.0, b.float().abs().max().item())
    assert diff <= tol * scale, f"max abs diff {diff} > {tol} x scale {scale:.2f}"


# --- names, counts, loading -----------------------------------------------------------------------------------


def test_parameter_count_of_the_large_config():
    per_block = 4 * (1024 * 1024 + 1024) + 2 * 2 * 1024 + (4096 * 1024 + 4096) + (1024 * 4096 + 1024)
    assert per_block == 12_596_224
    assert count_parameters() == 315_509_760
    assert count_parameters(OneVisionEncoderConfig(use_head=False)) == 302_913_536


def test_state_dict_names_match_the_checkpoint_table():
    with torch.device("meta"):
        sd = OneVisionEncoderModel(OneVisionEncoderConfig()).state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes["embeddings.patch_embedding.weight"] == (1024, 3, 14, 14)
    assert "embeddings.patch_embedding.bias" not in shapes
    for name in ("q", "k", "v", "out"):
        assert shapes[f"encoder.layers.23.self_attn.{name}_proj.weight"] == (1024, 1024)
    assert shapes["encoder.layers.0.mlp.fc1.weight"] == (4096, 1024)
    assert shapes["head.probe"] == (1, 1, 1024)
    assert shapes["head.attention.in_proj_weight"] == (3072, 1024)
    assert shapes["head.attention.out_proj.bias"] == (1024,)
    assert shapes["head.norm.weight"] == (1024,) and "head.norm.bias" not in shapes  # RMSNorm always
    assert {"layernorm_pre.bias", "layernorm_post.weight", "encoder.layers.0.layer_norm2.bias"} <= set(shapes)
    assert not any(k.startswith("video_rope") for k in shapes)
    assert len(shapes) == 5 + 24 * 16 + 10  # embed + pre/post norms, 24 blocks, head
    with torch.device("meta"):
        rms = OneVisionEncoderModel(OneVisionEncoderConfig(**TINY, layer_norm_type="rms_norm")).state_dict()
    assert "layernorm_pre.weight" in rms and "layernorm_pre.bias" not in rms


def test_strict_load_round_trip(tiny_dir, model):
    saved = load_file(str(tiny_dir / "model.safetensors"))
    loaded = model.state_dict()
    assert set(saved) == set(loaded)
    for key, value in saved.items():
        assert torch.equal(value, loaded[key]), key
    assert not model.training and model.config._attn_implementation == "sdpa"


def test_load_reports_missing_and_unexpected_keys(tmp_path, model):
    save_checkpoint(tmp_path / "extra", model, extra={"head.unknown": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"1 unexpected.*head\.unknown"):
        load_encoder(tmp_path / "extra", device="cpu")
    save_checkpoint(tmp_path / "missing", model)
    state = load_file(str(tmp_path / "missing" / "model.safetensors"))
    del state["head.probe"]
    save_file(state, str(tmp_path / "missing" / "model.safetensors"))
    with pytest.raises(ValueError, match=r"1 missing.*head\.probe"):
        load_encoder(tmp_path / "missing", device="cpu")


def test_checkpoint_filter_strips_wrapper_prefixes(tmp_path, model, clip):
    save_checkpoint(tmp_path / "wrapped", model, prefix="model.vision_tower.",
                    extra={"model.language_model.embed_tokens.weight": torch.zeros(3, 4),
                           "model.vision_tower.video_rope.inv_freq_t": torch.zeros(8)})
    wrapped = load_encoder(tmp_path / "wrapped", device="cpu")
    for key, value in model.state_dict().items():
        assert torch.equal(value, wrapped.state_dict()[key])
    only = checkpoint_filter_fn({"a.embeddings.patch_embedding.weight": 1, "b.x": 2})
    assert only == {"embeddings.patch_embedding.weight": 1}
    with pytest.raises(ValueError, match="several encoders"):
        checkpoint_filter_fn({"a.embeddings.patch_embedding.weight": 1, "b.embeddings.patch_embedding.weight": 2})


def test_sharded_checkpoint_and_dtypes(tmp_path, model):
    folder = tmp_path / "sharded"
    folder.mkdir()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in shards.items():
        save_file({k: state[k] for k in part}, str(folder / name))
    weight_map = {k: name for name, part in shards.items() for k in part}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps({k: getattr(model.config, k) for k in TINY} | PUBLISHED_EXTRAS))
    bf16 = load_encoder(folder, device="cpu", dtype=torch.bfloat16)
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    auto = load_encoder(folder, device="cpu", dtype="auto")
    assert {p.dtype for p in auto.parameters()} == {torch.float32}
    with pytest.raises(ValueError, match=re.escape("Invalid dtype ('int8')")):
        load_encoder(folder, device="cpu", dtype="int8")


def test_auto_model_without_remote_code(tiny_dir, model, clip):
    from transformers import AutoModel

    auto = AutoModel.from_pretrained(str(tiny_dir), trust_remote_code=False).eval()
    assert type(auto) is OneVisionEncoderModel
    idx = _sorted_indices(2 * CELLS, seed=3)[None]
    with torch.no_grad():
        a, b = auto(clip, visible_indices=idx), model(clip, visible_indices=idx)
    _close(a.last_hidden_state, b.last_hidden_state, 0)
    _close(a.pooler_output, b.pooler_output, 0)


def test_weights_not_found_says_how_to_get_them(tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        load_encoder("lmms-lab/onevision-encoder-large", local_files_only=True, cache_dir=tmp_path, device="cpu")
    assert isinstance(info.value, CodecSelectError) and isinstance(info.value, OSError)
    assert "hf download lmms-lab-encoder/onevision-encoder-large" in str(info.value)
    assert "HF_HUB_OFFLINE" in str(info.value)
    with pytest.raises(WeightsNotFoundError, match="no such folder"):
        load_encoder(str(tmp_path / "nope" / "deeper"), device="cpu")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps(PUBLISHED_EXTRAS))
    (pickled / "pytorch_model.bin").write_bytes(b"\x80")
    with pytest.raises(WeightsNotFoundError, match="pickle weights"):
        load_encoder(pickled, device="cpu")


def test_invalid_configs_and_inputs(model, clip):
    with pytest.raises(ValueError, match="multiple of 32"):
        OneVisionEncoderModel(OneVisionEncoderConfig(hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                                                     num_attention_heads=4))
    with pytest.raises(ValueError, match=re.escape("visible_indices must lie in [0, 32) (patches of the clip)")):
        model(clip[:, :, :2], visible_indices=torch.tensor([[0, 1, 40]]))  # sparse mode: gathers from 2 frames
    mosaic_idx = torch.arange(2 * CELLS)[None].clone()
    mosaic_idx[0, -1] = 64 * CELLS
    with pytest.raises(ValueError, match=re.escape("visible_indices must lie in [0, 1024) (the 64x4x4 RoPE grid)")):
        model(clip[:, :, :2], visible_indices=mosaic_idx)
    with pytest.raises(ValueError, match="patch_positions must be"):
        model(clip[:, :, :1], patch_positions=torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="pixel_values must be"):
        model(clip[0, :, 0])


# --- RoPE -------------------------------------------------------------------------------------------------------


def test_rope_frequencies_and_interleaved_quirk():
    with torch.device("meta"):
        large = OneVisionEncoderModel(OneVisionEncoderConfig())
    inv_t, inv_h, inv_w = large.video_rope.inv_freqs(torch.device("cpu"))
    np.testing.assert_allclose(inv_t.numpy(), 10000.0 ** (-np.arange(8) / 8), rtol=1e-6)
    np.testing.assert_allclose(inv_h.numpy(), 10000.0 ** (-np.arange(12) / 12), rtol=1e-6)
    assert torch.equal(inv_h, inv_w)
    # The rotation, written from the facts in numpy: F = [f, f]; pair (2i, 2i+1) turns by F[2i] and F[2i+1].
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2, 64)).astype(np.float32)
    f = rng.uniform(0, 6, size=(5, 32)).astype(np.float32)
    full = np.concatenate([f, f], -1)[:, None, :]
    rot = np.empty_like(x)
    rot[..., 0::2], rot[..., 1::2] = -x[..., 1::2], x[..., 0::2]
    expected = x * np.cos(full) + rot * np.sin(full)
    got = apply_video_rope(torch.from_numpy(x), torch.from_numpy(np.cos(full)), torch.from_numpy(np.sin(full)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.linalg.norm(expected, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-3)  # not a rotation


def test_packing_helpers():
    assert cu_seqlens_from_counts([3, 1, 4]).tolist() == [0, 3, 4, 8]
    assert cu_seqlens_from_counts([3]).dtype == torch.int32
    seqs = PackedSeqs.from_counts([2, 5])
    assert seqs.max_seqlen == 5 and seqs.total == 7 and not seqs.uniform
    with pytest.raises(ValueError, match="at least one token"):
        PackedSeqs.from_counts([2, 0])
    idx = torch.arange(64 * 12)
    thw = rope_positions_thw(idx, (64, 3, 4))
    assert thw[13].tolist() == [1, 0, 1] and thw[-1].tolist() == [63, 2, 3]
    # Angles from (t, h, w) equal the rows of the full 64×Hp×Wp table, bit for bit.
    inv = (torch.rand(8), torch.rand(12), torch.rand(12))
    t, h, w = torch.meshgrid(torch.arange(64.0), torch.arange(3.0), torch.arange(4.0), indexing="ij")
    table = torch.cat([torch.outer(torch.arange(64.0), inv[0])[t.long().reshape(-1)],
                       torch.outer(torch.arange(3.0), inv[1])[h.long().reshape(-1)],
                       torch.outer(torch.arange(4.0), inv[2])[w.long().reshape(-1)]], -1)
    assert torch.equal(gather_rope(thw, inv), table)


# --- equivalences ---------------------------------------------------------------------------------------------


def test_mosaic_mode_equals_sparse_mode(model, clip):
    idx = _sorted_indices(4 * CELLS, seed=5)
    mosaic = build_mosaic(clip[0].transpose(0, 1).contiguous(), idx, GEO)
    assert mosaic.shape == (1, 3, 4, SIDE, SIDE)
    with torch.no_grad():
        sparse = model(clip, visible_indices=idx[None], output_hidden_states=True)
        mosaic_out = model(mosaic, visible_indices=idx[None], output_hidden_states=True)
    _close(sparse.last_hidden_state, mosaic_out.last_hidden_state)
    _close(sparse.pooler_output, mosaic_out.pooler_output)
    for a, b in zip(sparse.hidden_states, mosaic_out.hidden_states, strict=True):
        _close(a, b)


def test_patch_positions_equal_visible_indices(model, clip):
    idx = _sorted_indices(2 * CELLS, seed=7)
    mosaic = build_mosaic(clip[0].transpose(0, 1).contiguous(), idx, GEO)
    positions = rope_positions_thw(idx, (64, 4, 4))
    with torch.no_grad():
        by_idx = model(mosaic, visible_indices=idx[None])
        by_pos = model(mosaic, patch_positions=positions[None])
        sparse_pos = model(clip, visible_indices=idx[None], patch_positions=positions[None])
        shuffled = model(mosaic, patch_positions=positions.flip(0)[None])
    _close(by_idx.last_hidden_state, by_pos.last_hidden_state, 0)
    _close(by_idx.last_hidden_state, sparse_pos.last_hidden_state)
    assert (by_idx.last_hidden_state - shuffled.last_hidden_state).abs().max() > 1e-2  # positions matter


def test_sdpa_equals_eager(model, clip):
    idx = _sorted_indices(3 * CELLS, seed=9)
    items = [clip[:, :, :2], clip[:, :, 2:5]]
    with torch.no_grad():
        model.set_attn_implementation("eager")
        try:
            eager = model(clip, visible_indices=idx[None])
            eager_packed = model.forward_packed(items)
        finally:
            model.set_attn_implementation("sdpa")
        sdpa = model(clip, visible_indices=idx[None])
        sdpa_packed = model.forward_packed(items)
    _close(eager.last_hidden_state, sdpa.last_hidden_state)
    _close(eager.pooler_output, sdpa.pooler_output)
    _close(eager_packed.last_hidden_state, sdpa_packed.last_hidden_state)


def test_uniform_16_frames_quick_start_semantics(model):
    """The model card's video call: 16 frames [1, 3, 16, H, W] + visible_indices = slot·cells + arange(cells),
    with slots round(linspace(0, 63, 16)) — equals the same frames placed in a 64-slot clip (sparse mode) and
    the same (t, h, w) as patch_positions."""
    g = torch.Generator().manual_seed(11)
    video16 = torch.randn(1, 3, 16, SIDE, SIDE, generator=g)
    slots = torch.from_numpy(np.round(np.linspace(0, 63, 16)).astype(np.int64))
    assert slots.tolist() == [0, 4, 8, 13, 17, 21, 25, 29, 34, 38, 42, 46, 50, 55, 59, 63]
    idx = (slots[:, None] * CELLS + torch.arange(CELLS)).reshape(1, -1)
    clip64 = torch.randn(1, 3, 64, SIDE, SIDE, generator=g)
    clip64[:, :, slots] = video16
    thw = torch.meshgrid(slots, torch.arange(4), torch.arange(4), indexing="ij")
    positions = torch.stack(thw, -1).reshape(1, -1, 3)
    with torch.no_grad():
        quick = model(video16, visible_indices=idx)
        sparse = model(clip64, visible_indices=idx)
        by_pos = model(video16, patch_positions=positions)
        no_idx = model(video16)  # t = 0..15: a different (compressed) timeline
    assert quick.last_hidden_state.shape == (1, 16 * CELLS, 128)
    _close(quick.last_hidden_state, sparse.last_hidden_state)
    _close(quick.last_hidden_state, by_pos.last_hidden_state, 0)
    assert (quick.last_hidden_state - no_idx.last_hidden_state).abs().max() > 1e-2


def test_batch_equals_items_alone(model, clip):
    a_idx, b_idx, c_idx = (_sorted_indices(g * CELLS, seed=13 + g) for g in (2, 3, 2))
    frames = clip[0].transpose(0, 1).contiguous()
    a, b, c = (build_mosaic(frames, i, GEO) for i in (a_idx, b_idx, c_idx))
    image = torch.randn(1, 3, 42, 70)  # another canvas size and a 1-slot grid in the same pack
    with torch.no_grad():
        packed = model.forward_packed([a, b, image], [a_idx, b_idx, None], output_hidden_states=True)
        alone = [model(a, visible_indices=a_idx[None], output_hidden_states=True),
                 model(b, visible_indices=b_idx[None], output_hidden_states=True),
                 model(image, output_hidden_states=True)]
        pair = model(torch.cat([a, c]), visible_indices=torch.stack([a_idx, c_idx]))
        c_alone = model(c, visible_indices=c_idx[None])
    sizes = torch.diff(packed.cu_seqlens).tolist()
    assert sizes == [2 * CELLS, 3 * CELLS, 15]
    for i, (tokens, one) in enumerate(zip(packed.split(), alone, strict=True)):
        _close(tokens, one.last_hidden_state[0])
        _close(packed.pooler_output[i], one.pooler_output[0])
        for layer, h in enumerate(packed.hidden_states):
            _close(h.split(sizes)[i], one.hidden_states[layer][0])
    _close(pair.last_hidden_state[0], alone[0].last_hidden_state[0])
    _close(pair.last_hidden_state[1], c_alone.last_hidden_state[0])


def test_hidden_states_semantics(model, clip):
    idx = _sorted_indices(CELLS, seed=17)
    with torch.no_grad():
        out = model(clip, visible_indices=idx[None], output_hidden_states=True)
        embeds = model.embeddings(clip)[:, idx]
        first = model.layernorm_pre(embeds)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    _close(out.hidden_states[0], first, 1e-6)
    _close(model.layernorm_post(out.hidden_states[-1]), out.last_hidden_state, 1e-6)
    tup = model(clip, visible_indices=idx[None], return_dict=False)
    _close(tup[0], out.last_hidden_state, 0)


def test_image_input_is_a_one_slot_clip(model):
    image = torch.randn(2, 3, SIDE, 70)
    with torch.no_grad():
        as_image = model(image)
        as_clip = model(image[:, :, None])  # T=1, default indices 0..Hp·Wp−1 → t = 0
    _close(as_image.last_hidden_state, as_clip.last_hidden_state, 0)
    assert as_image.last_hidden_state.shape == (2, CELLS // 4 * 5, 128)


def test_gradient_checkpointing_matches(model, clip):
    torch.manual_seed(0)
    local = OneVisionEncoderModel(OneVisionEncoderConfig(**TINY))
    local.load_state_dict(model.state_dict())
    local.train()
    x = clip[:, :, :2]
    local(x).pooler_output.sum().backward()
    plain = [p.grad.clone() for p in local.parameters()]
    local.zero_grad()
    enable = getattr(local, "activation_checkpointing_enable", None) or local.gradient_checkpointing_enable  # v5 / v4
    enable()
    assert local.encoder.gradient_checkpointing
    local(x).pooler_output.sum().backward()
    for g0, p in zip(plain, local.parameters(), strict=True):
        _close(g0, p.grad, 1e-5)


# --- backends ---------------------------------------------------------------------------------------------------


def test_attention_backend_resolution(caplog):
    assert resolve_attn_implementation(None) == "sdpa"
    assert resolve_attn_implementation("eager") == "eager"
    with pytest.raises(ValueError, match=re.escape("Invalid attn_implementation ('flex')")):
        resolve_attn_implementation("flex")
    with pytest.raises(ValueError, match=re.escape("Invalid attn_implementation ('flex')")):
        OneVisionEncoderModel(OneVisionEncoderConfig(**TINY)).set_attn_implementation("flex")
    with caplog.at_level(logging.INFO, logger="codec_select.encoder"):
        assert resolve_attn_implementation("auto", device="cpu", dtype=torch.float32) == "sdpa"
    assert "using sdpa" in caplog.text
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=re.escape('pip install "codec-select[flash]"')):
            resolve_attn_implementation("flash_attention_2", device="cuda", dtype=torch.bfloat16)
    else:
        with pytest.raises(ValueError, match="needs a CUDA device"):
            resolve_attn_implementation("flash_attention_2", device="cpu", dtype=torch.bfloat16)


def test_encoder_import_is_light():
    code = ("import sys, codec_select, codec_select.encoder, codec_select.encoder._cli; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def _large_on_cuda(dtype, attn):
    torch.manual_seed(0)
    config = OneVisionEncoderConfig(attn_implementation=attn)
    with torch.device("cuda"):
        model = OneVisionEncoderModel(config).to(dtype).eval()
    return model


@pytest.mark.needs_cuda
def test_large_config_bf16_on_cuda_sdpa_vs_eager():
    model = _large_on_cuda(torch.bfloat16, "sdpa")
    idx = _sorted_indices_grid(4096, 64 * 256, seed=0).cuda()
    x = torch.randn(1, 3, 16, 224, 224, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        sdpa = model(x, visible_indices=idx[None]).last_hidden_state
        model.set_attn_implementation("eager")
        eager = model(x, visible_indices=idx[None]).last_hidden_state
    assert sdpa.shape == (1, 4096, 1024) and torch.isfinite(sdpa).all()
    assert (sdpa.float() - eager.float()).abs().mean() < TOL[torch.bfloat16]


@pytest.mark.needs_cuda
@pytest.mark.needs_flash_attn
def test_flash_varlen_matches_sdpa_on_a_packed_batch():
    model = _large_on_cuda(torch.bfloat16, "flash_attention_2")
    items = [torch.randn(1, 3, g, 224, 224, device="cuda", dtype=torch.bfloat16) for g in (8, 16, 4)]
    indices = [_sorted_indices_grid(g * 256, 64 * 256, seed=g).cuda() for g in (8, 16, 4)]
    with torch.no_grad():
        flash = model.forward_packed(items, indices)
        model.set_attn_implementation("sdpa")
        sdpa = model.forward_packed(items, indices)
    assert (flash.last_hidden_state.float() - sdpa.last_hidden_state.float()).abs().mean() < TOL[torch.bfloat16]
    assert (flash.pooler_output.float() - sdpa.pooler_output.float()).abs().mean() < TOL[torch.bfloat16]


def _sorted_indices_grid(k: int, grid: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.sort(torch.randperm(grid, generator=g)[:k]).values


def test_encoder_benchmark_runs_on_cpu():
    from codec_select.encoder.benchmark import encoder_benchmark  # the entry point `codec-select bench` uses

    out = encoder_benchmark(None, config="tiny", device="cpu", repeats=1, warmup=0, only=["codec_k4096"])
    assert out["config"] == "tiny" and out["attn_implementation"] == "sdpa"
    row = out["scenarios"]["codec_k4096"]
    assert row["tokens"] == 4096 and row["tokens_per_s"] > 0
    json.dumps(out)
