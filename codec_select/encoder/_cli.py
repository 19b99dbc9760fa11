"""``codec-select encode VIDEO --model ID|DIR [--out features.safetensors]``: select patches, encode them.

Imports nothing heavy at module level (the CLI builds its parser on every start); torch loads in the handler.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..geometry import GEOMETRIES
from ._hub import DEFAULT_MODEL_ID

__all__ = ["add_parser", "run_encode"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``encode`` subcommand on the CLI's subparsers."""
    p = subparsers.add_parser(
        "encode",
        help="select K patches of a video and encode them with OneVision-Encoder",
        description="Select K patch cells from the codec's signals, then run OneVision-Encoder on them "
        "(mosaic pseudo-frames + visible_indices). Needs the encoder extra: pip install \"codec-select[encoder]\".",
    )
    p.add_argument("video", nargs="?", help="video file (default: the bundled sample clip)")
    p.add_argument("--model", "-m", default=DEFAULT_MODEL_ID,
                   help=f"Hub id or folder with config.json + model.safetensors (default {DEFAULT_MODEL_ID})")
    p.add_argument("--out", "-o", type=Path, help="write features + selection arrays to this .safetensors file")
    p.add_argument("--budget", "-k", type=int, default=None, help="K cells (default 4096; 10368 on llava576)")
    p.add_argument("--geometry", "-g", default="ap224", choices=list(GEOMETRIES))
    p.add_argument("--policy", default=None, choices=["refresh", "topk", "uniform"],
                   help="budget policy (default: the geometry's reference recipe, onevision-ap on ap224 / "
                   "onevision-stage1 on llava576, the input the encoder was trained on; refresh on native)")
    p.add_argument("--device", default=None, help="torch device (default cuda when available, else cpu)")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16", "auto"],
                   help="weights dtype (default bfloat16 on cuda, float32 on cpu)")
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager", "flash_attention_2", "auto"],
                   help="attention backend (default sdpa)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.set_defaults(func=run_encode)
    return p


def run_encode(args: argparse.Namespace) -> int:
    """Handler of ``codec-select encode``."""
    from .. import sample_video
    from .pipeline import select_and_encode

    video = args.video or sample_video()
    options = {} if args.policy is None else {"policy": args.policy}
    result = select_and_encode(
        video, model=args.model, budget=args.budget, geometry=args.geometry, device=args.device, dtype=args.dtype,
        attn_implementation=args.attn, **options,
    )
    written = str(result.save(args.out, model=str(args.model))) if args.out else None
    tokens = tuple(result.last_hidden_state.shape)
    if args.json:
        info = result.selection.to_dict()
        info.update(model=str(args.model), last_hidden_state=list(tokens), encode_timings=result.timings,
                    written=written, pooler_output=None if result.pooler_output is None
                    else list(result.pooler_output.shape))
        print(json.dumps(info, indent=1))
        return 0
    print(result.selection.summary())
    t = result.timings
    print(f"encoder  {args.model}: {tokens[0]} tokens -> {list(tokens)} on {result.last_hidden_state.device} "
          f"({result.last_hidden_state.dtype}); prepare {t['prepare'] * 1000:.0f} ms, "
          f"encode {t['encode'] * 1000:.0f} ms")
    if written:
        print(f"wrote    {written}")
    return 0
