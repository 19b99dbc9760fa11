"""The Dataset in a DataLoader with worker processes, and the collate of equal / different K."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import shared_videos
from torch.utils.data import DataLoader

from codec_select import VideoOpenError, sample_video, select_patches
from codec_select import data as data_module
from codec_select.data import VideoDataset, collate, unpack_batch
from codec_select.encoder.pipeline import encoder_inputs


@pytest.fixture(scope="module")
def videos(square_clip, pan_clip, static_clip):
    return [str(p) for p in shared_videos()] + [square_clip[0], pan_clip[0], static_clip[0], sample_video()]


def test_dataloader_two_workers(videos):
    """Items from 2 worker processes equal a selection made here (deterministic), in order, with the mosaic."""
    select_patches(sample_video())  # the parent has used PyAV + numba threads before the workers fork
    entries = [{"id": f"v{i}", "video": v, "label": i} for i, v in enumerate(videos)]
    ds = VideoDataset(entries, budget=2048)
    seen = []
    for batch in DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate):
        assert not batch["packed"] and batch["failed"] == []
        b = len(batch["id"])
        assert batch["pixel_values"].shape == (b, 3, 8, 224, 224) and batch["pixel_values"].dtype == torch.float32
        assert batch["visible_indices"].shape == (b, 2048) and batch["positions_thw"].shape == (b, 2048, 3)
        assert batch["frame_ids"].shape == (b, 64) and batch["timestamps"].dtype == torch.float64
        assert batch["cu_seqlens"].tolist() == [2048 * i for i in range(b + 1)]
        assert [m["label"] for m in batch["meta"]] == [int(i[1:]) for i in batch["id"]]
        seen += batch["id"]
        ref = select_patches(batch["video"][0], budget=2048)
        np.testing.assert_array_equal(batch["visible_indices"][0].numpy(), ref.visible_indices)
        np.testing.assert_array_equal(batch["positions_thw"][0].numpy(), ref.positions_thw)
        np.testing.assert_array_equal(batch["frame_ids"][0].numpy(), ref.frame_ids)
        np.testing.assert_array_equal(batch["timestamps"][0].numpy(), ref.timestamps)
        assert batch["signals"][0] == ref.signals
    assert seen == [f"v{i}" for i in range(len(videos))]


@pytest.mark.timeout(300)
def test_forked_workers_after_the_parent_used_torch_threads(square_clip):
    """A parent that already ran parallel torch ops (encoding, a training step) forks DataLoader workers that build
    mosaics with torch: they must not wait forever for OpenMP threads the fork did not copy."""
    a = torch.randn(512, 512)
    for _ in range(3):
        a = torch.nn.functional.interpolate((a @ a)[None, None], size=(300, 300), mode="bilinear")[0, 0]
    ds = VideoDataset([square_clip[0]] * 4, budget=1024)
    batches = list(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate, timeout=240))
    assert [b["pixel_values"].shape[0] for b in batches] == [2, 2]


def test_item_pixels_are_the_pipeline_mosaic(square_clip):
    path, _ = square_clip
    item = VideoDataset([path], budget=1024)[0]
    mosaic, idx = encoder_inputs(select_patches(path, budget=1024))
    torch.testing.assert_close(item["pixel_values"], mosaic[0], rtol=0, atol=0)
    assert torch.equal(item["visible_indices"], idx[0]) and item["num_tokens"] == 1024
    assert item["grid_thw"].tolist() == [64, 16, 16] and item["id"] == path.stem


def test_collate_different_k_packs(square_clip, pan_clip):
    a = VideoDataset([square_clip[0]], budget=1024)[0]
    b = VideoDataset([pan_clip[0]], budget=2560)[0]
    batch = collate([a, b])
    assert batch["packed"]
    assert batch["cu_seqlens"].tolist() == [0, 1024, 3584] and batch["cu_seqlens"].dtype == torch.int32
    assert batch["frame_offsets"].tolist() == [0, 4, 14]
    assert batch["pixel_values"].shape == (1, 3, 14, 224, 224)
    assert batch["visible_indices"].shape == (3584,) and batch["positions_thw"].shape == (3584, 3)
    pixels, indices = unpack_batch(batch)
    for item, pv, idx in zip((a, b), pixels, indices):
        assert torch.equal(pv[0], item["pixel_values"]) and torch.equal(idx, item["visible_indices"])
    assert torch.equal(batch["positions_thw"][1024:], b["positions_thw"])
    # equal K stacks, and unpack_batch gives the same per-item views
    stacked = collate([a, VideoDataset([pan_clip[0]], budget=1024)[0]])
    assert not stacked["packed"] and stacked["pixel_values"].shape == (2, 3, 4, 224, 224)
    pixels, indices = unpack_batch(stacked)
    assert torch.equal(pixels[0][0], a["pixel_values"]) and torch.equal(indices[0], a["visible_indices"])


def test_skip_bad_videos_and_raise(square_clip, tmp_path):
    bad = tmp_path / "random.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    ds = VideoDataset([square_clip[0], bad, tmp_path / "missing.mp4"], budget=1024, on_error="skip", pixels=False)
    batch = collate([ds[i] for i in range(3)])
    assert batch["id"] == ["square_h264_b"] and "pixel_values" not in batch
    assert [f["error_class"] for f in batch["failed"]] == ["VideoOpenError", "VideoOpenError"]
    assert "missing.mp4: no such file" in batch["failed"][1]["error"]
    with pytest.raises(VideoOpenError):
        VideoDataset([bad], budget=1024)[0]
    assert collate([ds[1]])["id"] == []  # a batch of only failures is still a batch


def test_options_and_validation(square_clip, tmp_path):
    path, _ = square_clip
    ds = VideoDataset([path, path], metadata=[{"caption": "a"}, {"caption": "b"}], pixels=False)
    assert ds.items[0].id != ds.items[1].id  # same stem twice: ids made unique
    assert ds[1]["meta"] == {"caption": "b"} and "pixel_values" not in ds[1]
    with pytest.raises(ValueError, match=re.escape("Invalid on_error ('ignore')")):
        VideoDataset([path], on_error="ignore")
    with pytest.raises(ValueError, match=re.escape("metadata has 1 entries for 2 videos")):
        VideoDataset([path, path], metadata=[{}])
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(f'{{"id": "x", "video": "{path}", "start": 1.0}}\n')
    item = VideoDataset.from_manifest(manifest, pixels=False)[0]
    assert item["id"] == "x" and item["timestamps"][0] >= 1.0 - 1e-6  # the entry's time window


def test_process_prepared_once(square_clip, monkeypatch):
    calls = []
    monkeypatch.setattr("codec_select.kernels.warmup", lambda: calls.append(1))
    ds = VideoDataset([square_clip[0]] * 2, budget=1024, pixels=False)
    ds[0], ds[1]
    assert calls == [1]
    assert data_module.worker_init_fn is not None


def test_batches_feed_the_encoder(square_clip, pan_clip):
    """Stacked batches go to ``forward``, packed ones to ``forward_packed`` via unpack_batch: same tokens per item."""
    from codec_select.encoder import OneVisionEncoderConfig, OneVisionEncoderModel

    torch.manual_seed(0)
    model = OneVisionEncoderModel(OneVisionEncoderConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, patch_size=14,
    )).eval()
    a = VideoDataset([square_clip[0]], budget=512)[0]
    b = VideoDataset([pan_clip[0]], budget=1024)[0]
    with torch.inference_mode():
        alone = [model(x["pixel_values"][None], visible_indices=x["visible_indices"][None]).last_hidden_state[0]
                 for x in (a, b)]
        packed = collate([a, b])
        out = model.forward_packed(*unpack_batch(packed))
        stacked = model(**{k: collate([a, a])[k] for k in ("pixel_values", "visible_indices")}).last_hidden_state
    cu = packed["cu_seqlens"].tolist()
    for i, ref in enumerate(alone):
        torch.testing.assert_close(out.last_hidden_state[cu[i] : cu[i + 1]], ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(stacked[1], alone[0], rtol=1e-4, atol=1e-4)
