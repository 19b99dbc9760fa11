"""Encoder speed with random weights (a forward pass costs the same whatever the values; nothing is downloaded).

Scenarios at the AP video setting (224² canvas, 16×16 cells of 14 px, 64-slot RoPE grid):

- ``codec_k4096``: K = 4096 codec-style tokens (slot 0 full + 3840 cells spread over slots 1..63) as 16 mosaic
  pseudo-frames + ``visible_indices``;
- ``uniform_16f``: 16 full frames at slots round(linspace(0, 63, 16)) (4096 tokens, the model card's call);
- ``dense_64x256``: all 64 frames, 16384 tokens;
- ``packed_batch_<n>``: n videos with different K in one ``forward_packed`` call (no padding).

Used by ``benchmarks/bench_encoder.py`` and by ``codec-select bench`` (through
:func:`codec_select.eval.bench.run_bench`).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..eval.timing import bench
from .attention import resolve_attn_implementation
from .configuration import OneVisionEncoderConfig
from .modeling import OneVisionEncoderModel

__all__ = ["CONFIGS", "encoder_benchmark", "codec_like_indices"]

CONFIGS = {
    "tiny": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4},
    "large": {},  # the published defaults: 1024 wide, 24 layers, 16 heads, 315,509,760 parameters
}


def codec_like_indices(k: int, rng: np.random.Generator, cells: int = 256) -> np.ndarray:
    """Slot 0 in full, the rest random cells of slots 1..63, sorted: the shape of a selector's output."""
    rest = rng.choice(np.arange(cells, 64 * cells), k - cells, replace=False)
    return np.sort(np.concatenate([np.arange(cells), rest])).astype(np.int64)


def _scenarios(device: torch.device, dtype: torch.dtype, batch: int) -> dict:
    """name -> (callable(model) running one forward, tokens)."""
    rng = np.random.default_rng(0)
    gen = torch.Generator(device="cpu").manual_seed(0)

    def frames(n):
        return torch.randn(1, 3, n, 224, 224, generator=gen).to(device=device, dtype=dtype)

    codec_idx = torch.from_numpy(codec_like_indices(4096, rng)).to(device)[None]
    slots = np.round(np.linspace(0, 63, 16)).astype(np.int64)
    uniform_idx = torch.from_numpy((slots[:, None] * 256 + np.arange(256)).ravel()).to(device)[None]
    mosaic, clip16, clip64 = frames(16), frames(16), frames(64)
    ks = [(2048, 4096, 3072, 4096, 1024, 2048, 4096, 3072)[i % 8] for i in range(batch)]
    packed = [frames(k // 256) for k in ks]
    packed_idx = [torch.from_numpy(codec_like_indices(k, rng)).to(device) for k in ks]
    return {
        "codec_k4096": (lambda m: m(mosaic, visible_indices=codec_idx), 4096),
        "uniform_16f": (lambda m: m(clip16, visible_indices=uniform_idx), 4096),
        "dense_64x256": (lambda m: m(clip64), 64 * 256),
        f"packed_batch_{batch}": (lambda m: m.forward_packed(packed, packed_idx), sum(ks)),
    }


def encoder_benchmark(
    video: str | os.PathLike | None = None,
    *,
    config: str | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    attn_implementation: str = "auto",
    repeats: int = 3,
    warmup: int = 1,
    batch: int = 4,
    only: list[str] | None = None,
    log=None,
) -> dict:
    """Time the scenarios above (and ``select_and_encode`` on ``video`` when given); returns a JSON-able dict.

    Defaults: the large config in bfloat16 with flash-attn when available on CUDA, the tiny config in float32 with
    SDPA on CPU (the large one takes ~35 s per 4096-token forward on 2 CPU cores).
    """
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = dev.type == "cuda"
    name = config or ("large" if cuda else "tiny")
    if name not in CONFIGS:
        raise ValueError(f"Invalid config ({name!r}). Supported values are {', '.join(CONFIGS)}.")
    dt = dtype or (torch.bfloat16 if cuda else torch.float32)
    attn = resolve_attn_implementation(attn_implementation, device=dev, dtype=dt)
    torch.manual_seed(0)
    with torch.device(dev):
        model = OneVisionEncoderModel(OneVisionEncoderConfig(**CONFIGS[name], attn_implementation=attn)).to(dt).eval()
    out = {"config": name, "parameters": sum(p.numel() for p in model.parameters()), "device": str(dev),
           "dtype": str(dt).removeprefix("torch."), "attn_implementation": attn, "repeats": repeats, "scenarios": {}}
    if cuda:
        out["gpu"] = torch.cuda.get_device_name(dev)
    if log:
        log(f"config {name} ({out['parameters']:,} parameters), {dev} {out['dtype']}, attention {attn}")

    def timed(fn):
        def call():
            with torch.inference_mode():
                fn(model)
            if cuda:
                torch.cuda.synchronize(dev)
        return call

    for scenario, (fn, tokens) in _scenarios(dev, dt, batch).items():
        if only and scenario not in only:
            continue
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        r = bench(timed(fn), warmup=warmup, repeats=repeats)
        row = {"tokens": tokens, "median_ms": r["median"] * 1e3, "min_ms": r["min"] * 1e3, "max_ms": r["max"] * 1e3,
               "tokens_per_s": tokens / r["median"]}
        if cuda:
            row["peak_mem_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
        out["scenarios"][scenario] = row
        if log:
            log(f"{scenario:16s} {tokens:6d} tokens  {row['median_ms']:9.1f} ms (min {row['min_ms']:.1f}, max "
                f"{row['max_ms']:.1f})  {row['tokens_per_s']:12,.0f} tokens/s")
    dense = out["scenarios"].get("dense_64x256")
    for row in out["scenarios"].values():
        if dense:
            row["vs_dense"] = row["median_ms"] / dense["median_ms"]
    if video is not None:
        from .pipeline import select_and_encode

        timings = []
        r = bench(lambda: timings.append(select_and_encode(video, model=model).timings), warmup=1,
                  repeats=max(1, repeats // 2))
        out["end_to_end"] = {"video": os.fspath(video), "median_s": r["median"], "stages_median_s": {
            k: float(np.median([t[k] for t in timings])) for k in ("select", "prepare", "encode")}}
    return out
