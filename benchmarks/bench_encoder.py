"""Encoder speed at equal and unequal token counts, with random weights (the speed of a forward pass does not
depend on the values, so nothing is downloaded):

- ``codec_k4096``: K = 4096 codec-style tokens (slot 0 full + 3840 cells spread over slots 1..63) as 16 mosaic
  pseudo-frames + ``visible_indices`` on the 64×16×16 grid;
- ``uniform_16f``: 16 full frames at slots round(linspace(0, 63, 16)) (4096 tokens, the model card's call);
- ``dense_64x256``: all 64 frames, 16384 tokens;
- ``packed_batch``: several videos with different K in one ``forward_packed`` call (no padding).

    python benchmarks/bench_encoder.py                      # CPU: tiny config in float32; CUDA: large in bf16
    python benchmarks/bench_encoder.py --config large --device cuda --attn flash_attention_2 --json enc.json
    python benchmarks/bench_encoder.py --video ../shared/videos/clip.mp4   # plus select_and_encode end to end
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
CONFIGS = {
    "tiny": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4},
    "large": {},  # the published defaults: 1024 wide, 24 layers, 16 heads, 315,509,760 parameters
}


def codec_like_indices(k: int, rng: np.random.Generator, cells: int = 256) -> np.ndarray:
    """Slot 0 in full, the rest random cells of slots 1..63, sorted: the shape of a selector's output."""
    rest = rng.choice(np.arange(cells, 64 * cells), k - cells, replace=False)
    return np.sort(np.concatenate([np.arange(cells), rest])).astype(np.int64)


def scenarios(device: torch.device, dtype: torch.dtype, batch: int) -> dict:
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


def end_to_end(video: str, model, repeats: int) -> dict:
    from codec_select._bench import bench
    from codec_select.pipeline import select_and_encode

    timings = []

    def run():
        timings.append(select_and_encode(video, model=model).timings)

    result = bench(run, warmup=1, repeats=repeats)
    keys = ("select", "prepare", "encode")
    return {"video": video, "median_s": result["median"],
            "stages_median_s": {k: float(np.median([t[k] for t in timings])) for k in keys}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default=None, help="default: large on CUDA, tiny on CPU")
    parser.add_argument("--device", default=None, help="default cuda when available, else cpu")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="default bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--attn", default="auto", choices=["auto", "sdpa", "eager", "flash_attention_2"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4, help="videos in the packed-batch scenario")
    parser.add_argument("--only", nargs="*", default=None, help="run only these scenarios")
    parser.add_argument("--video", default=None, help="also time select_and_encode on this file")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    from codec_select._bench import bench, system_metadata
    from codec_select.encoder import OneVisionEncoderConfig, OneVisionEncoderModel, resolve_attn_implementation

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    config_name = args.config or ("large" if cuda else "tiny")
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if cuda else torch.float32)
    attn = resolve_attn_implementation(args.attn, device=device, dtype=dtype)
    torch.manual_seed(0)
    config = OneVisionEncoderConfig(**CONFIGS[config_name], attn_implementation=attn)
    with torch.device(device):
        model = OneVisionEncoderModel(config).to(dtype).eval()
    params = sum(p.numel() for p in model.parameters())
    dtype_name = str(dtype).removeprefix("torch.")
    print(f"config {config_name} ({params:,} parameters), {device} {dtype_name}, attention {attn}")

    def timed(fn):
        def call():
            with torch.inference_mode():
                fn(model)
            if cuda:
                torch.cuda.synchronize(device)
        return call

    results = {}
    for name, (fn, tokens) in scenarios(device, dtype, args.batch).items():
        if args.only and name not in args.only:
            continue
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        r = bench(timed(fn), warmup=args.warmup, repeats=args.repeats)
        row = {"tokens": tokens, "median_ms": r["median"] * 1e3, "min_ms": r["min"] * 1e3, "max_ms": r["max"] * 1e3,
               "tokens_per_s": tokens / r["median"]}
        if cuda:
            row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        results[name] = row
        print(f"{name:16s} {tokens:6d} tokens  {row['median_ms']:9.1f} ms (min {row['min_ms']:.1f}, max "
              f"{row['max_ms']:.1f})  {row['tokens_per_s']:12,.0f} tokens/s")
    if "dense_64x256" in results:
        dense = results["dense_64x256"]["median_ms"]
        for row in results.values():
            row["vs_dense"] = row["median_ms"] / dense
    out = {"system_metadata": system_metadata(), "config": config_name, "parameters": params, "device": str(device),
           "dtype": str(dtype), "attn_implementation": attn, "repeats": args.repeats, "scenarios": results}
    try:
        import transformers

        out["system_metadata"]["transformers"] = transformers.__version__
    except ImportError:
        pass
    if args.video:
        out["end_to_end"] = end_to_end(args.video, model, max(1, args.repeats // 2))
        e2e = out["end_to_end"]
        print(f"select_and_encode {e2e['median_s'] * 1e3:.0f} ms: " + ", ".join(
            f"{k} {v * 1e3:.0f} ms" for k, v in e2e["stages_median_s"].items()))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
