"""``codec-select``: the command line. Every subcommand lives in its own module and registers itself here.

Errors about the input (``CodecSelectError``) and bad options (``ValueError``) print one line and exit 2;
no PyAV traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .errors import CodecSelectError

__all__ = ["main", "warm_kernels"]

# Modules with `add_parser(subparsers)`; each must import only argparse-level things at module import time.
_SUBCOMMAND_MODULES = (
    "codec_select.encoder._cli",
    "codec_select.eval.bench",
    "codec_select.batch",
    "codec_select.viz_cli",
)


def _add_select(sub) -> None:
    p = sub.add_parser(
        "select", help="choose the top-K patches of a video", description="Choose K patch cells of a video's 64-slot grid."
    )
    p.add_argument("video", nargs="?", help="video file (default: the bundled sample clip)")
    p.add_argument("--budget", "-k", type=int, default=None, help="K cells to keep (default 4096; 10368 on llava576)")
    p.add_argument("--geometry", "-g", default="ap224", choices=["ap224", "llava576", "native", "qwen"],
                   help="canvas: ap224 crop, llava576 letterbox, native aspect, qwen (LLaVA-OneVision-2 smart_resize)")
    p.add_argument("--policy", default=None, choices=["refresh", "topk", "uniform"],
                   help="budget policy (default refresh, ours; for the encoder's own training input use --recipe)")
    p.add_argument("--compensation", default="median", choices=["median", "similarity", "none"])
    p.add_argument("--signals", default="auto", choices=["auto", "codec-mv", "estimated-motion"])
    p.add_argument("--no-accumulate", action="store_true", help="score slot k by frame ids[k] alone (the reference)")
    p.add_argument("--no-first-full", action="store_true", help="do not force every cell of slot 0")
    p.add_argument("--mode", default="auto", choices=["auto", "full", "windowed"],
                   help="decode every frame, or windows before each slot (long videos); auto picks by length")
    p.add_argument("--recipe", default=None, choices=["onevision-stage1", "onevision-ap"],
                   help="reproduce a OneVision reference selector literally (sets geometry, policy, budget default)")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (per video)")
    p.add_argument("--start", type=float, default=None, help="time window start (s)")
    p.add_argument("--end", type=float, default=None, help="time window end (s)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--out", type=Path, help="write the selection to this .npz")
    out.add_argument("--reference-dir", type=Path, help="write the OneVision stage-1 files (visidx_thw, frame_ids, meta)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=_run_select)


def _run_select(args) -> int:
    from . import sample_video
    from .select import DEFAULT_POLICY, kernels_needed, select_patches

    video = args.video or sample_video()
    if args.recipe:
        from .kernels import cache_is_empty

        if cache_is_empty("h264_emulate"):  # the emulation compiles inside the run: say why it waits
            print("codec-select: first recipe run: compiling the H.264 emulation kernels once (~20 s on 2 cores; "
                  "cached for later runs)", file=sys.stderr)
    else:
        # Compile (first run) or load the kernels this run needs before timing anything; say why a first run waits.
        warm_kernels(kernels_needed(policy=args.policy or DEFAULT_POLICY, motion_compensation=args.compensation,
                                    signals=args.signals))
    sel = select_patches(
        video, budget=args.budget, geometry=args.geometry, policy=args.policy or DEFAULT_POLICY,
        first_full=not args.no_first_full, accumulate=not args.no_accumulate,
        motion_compensation=args.compensation, signals=args.signals, start=args.start, end=args.end,
        progress=args.progress, mode=args.mode, timeout=args.timeout, recipe=args.recipe,
    )
    if sel.report.partial:  # on stderr too, so that --json output and pipes do not hide it
        print(f"codec-select: warning: {sel.video}: partial video, {sel.report.partial_reason}", file=sys.stderr)
    written = []
    if args.out:
        written.append(str(sel.save_npz(args.out)))
    if args.reference_dir:
        from .export import write_reference

        written += [str(p) for p in write_reference(sel, args.reference_dir).values()]
    if args.json:
        info = sel.to_dict()
        info["patches_per_slot"] = sel.patches_per_slot.tolist()
        info["written"] = written
        print(json.dumps(info, indent=1))
    else:
        print(sel.summary())
        for path in written:
            print(f"wrote    {path}")
    return 0


def warm_kernels(steps: list[str]) -> float:
    """Compile or load the numba kernels of ``steps``; on a first run, say so on stderr *before* the wait, with a
    progress line per kernel (the compiled code is cached, later runs load it in well under a second)."""
    from .kernels import cache_is_empty, kernel_cache_dir, warmup

    if not cache_is_empty():
        seconds = warmup(steps)
        if seconds > 2.0:  # a new option's kernels, or a cache from another version
            print(f"codec-select: compiled numba kernels in {seconds:.1f} s (cached for later runs)", file=sys.stderr)
        return seconds
    print(f"codec-select: first run: compiling {len(steps)} numba kernels once (~10 s on 2 cores; cached in "
          f"{kernel_cache_dir()}, set CODEC_SELECT_CACHE_DIR to move it)", file=sys.stderr)
    tty = sys.stderr.isatty()

    def progress(name: str, i: int, n: int) -> None:
        line = f"codec-select:   [{i + 1}/{n}] {name}"
        print(f"\r{line:<60}" if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    seconds = warmup(steps, progress=progress)
    print(("\r" if tty else "") + f"codec-select: compiled in {seconds:.1f} s".ljust(60 if tty else 0), file=sys.stderr)
    return seconds


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="codec-select",
        description="Choose the patches of a video a ViT should see, from the codec's motion vectors and residuals.",
    )
    parser.add_argument("--version", action="version", version=f"codec-select {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_select(sub)
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CodecSelectError as exc:
        print(f"codec-select: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"codec-select: invalid option: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"codec-select: missing dependency: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codec-select: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
