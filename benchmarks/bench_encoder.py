"""Encoder speed at equal and unequal token counts, with random weights (nothing is downloaded):
K = 4096 codec tokens vs uniform 16 frames vs dense 64×256, plus a packed batch of videos with different K.
The scenarios live in :mod:`codec_select.encoder.benchmark` (``codec-select bench`` reports the same numbers).

    python benchmarks/bench_encoder.py                      # CPU: tiny config in float32; CUDA: large in bf16
    python benchmarks/bench_encoder.py --config large --device cuda --attn flash_attention_2 --json enc.json
    python benchmarks/bench_encoder.py --video ../shared/videos/clip.mp4   # plus select_and_encode end to end
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=["tiny", "large"], default=None, help="default: large on CUDA, tiny on CPU")
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

    import torch

    from codec_select.encoder.benchmark import encoder_benchmark
    from codec_select.eval.timing import system_metadata

    out = encoder_benchmark(
        args.video, config=args.config, device=args.device, dtype=getattr(torch, args.dtype) if args.dtype else None,
        attn_implementation=args.attn, repeats=args.repeats, warmup=args.warmup, batch=args.batch, only=args.only,
        log=print,
    )
    if "end_to_end" in out:
        e2e = out["end_to_end"]
        print(f"select_and_encode {e2e['median_s'] * 1e3:.0f} ms: " + ", ".join(
            f"{k} {v * 1e3:.0f} ms" for k, v in e2e["stages_median_s"].items()))
    meta = system_metadata()
    import transformers

    meta["transformers"] = transformers.__version__
    if args.json:
        args.json.write_text(json.dumps({"system_metadata": meta, **out}, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
