"""``codec-select viz``: select (or load a ``select -o`` .npz), then draw it with :mod:`.viz`.

The suffix of ``--out`` picks the picture: ``.mp4`` / ``.gif`` get one four-panel frame per slot (:func:`.viz.render`),
``.png`` the contact sheet (:func:`.viz.contact_sheet`). Kept apart from :mod:`.viz` so that the drawing library has
no command-line code and the CLI can grow options without touching it.
"""

from __future__ import annotations

import os
from pathlib import Path

from .selection import Selection
from .viz import PANELS, contact_sheet, render, write_image, write_video

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``codec-select viz``."""
    p = subparsers.add_parser(
        "viz", help="draw the selection (MP4/GIF panels or a PNG contact sheet)",
        description="Draw a selection: .mp4/.gif = one four-panel frame per slot (frame, uniform at the same K, "
        "saliency, selected cells); .png = contact sheet of the 64 slots with a bar chart of kept cells per slot.",
    )
    p.add_argument("video", nargs="?", help="video file, or a selection .npz from `select -o` (default: sample clip)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output .mp4, .gif or .png")
    p.add_argument("--budget", "-k", type=int, default=None, help="K cells to keep (default 4096; 10368 on llava576)")
    p.add_argument("--geometry", "-g", default="ap224", choices=["ap224", "llava576", "native"])
    p.add_argument("--policy", default=None, choices=["refresh", "topk", "uniform"], help="default: refresh")
    p.add_argument("--compensation", default="median", choices=["median", "similarity", "none"])
    p.add_argument("--signals", default="auto", choices=["auto", "codec-mv", "estimated-motion"])
    p.add_argument("--start", type=float, default=None, help="time window start (s)")
    p.add_argument("--end", type=float, default=None, help="time window end (s)")
    p.add_argument("--panels", default=",".join(PANELS), help="video panels, comma-separated (default: all four)")
    p.add_argument("--fps", type=float, default=4.0, help="video frame rate (default 4: 16 s for 64 slots)")
    p.add_argument("--thumb", type=int, default=112, help="contact sheet thumbnail height in pixels (default 112)")
    p.add_argument("--colors", type=int, default=None, help="PNG palette size (smaller file), e.g. 128")
    p.add_argument("--no-chart", action="store_true", help="contact sheet without the bar chart")
    p.set_defaults(func=_run_viz)


def _run_viz(args) -> int:
    suffix = args.out.suffix.lower()
    if suffix not in (".mp4", ".gif", ".png"):
        raise ValueError(f"Invalid output ({args.out.name!r}). Supported suffixes are .mp4, .gif, .png.")
    panels = tuple(p.strip() for p in args.panels.split(",") if p.strip())
    if suffix != ".png" and (not panels or any(p not in PANELS for p in panels)):
        raise ValueError(f"Invalid panels ({args.panels!r}). Supported values are {', '.join(PANELS)}.")
    if args.video and args.video.endswith(".npz"):
        selection = Selection.load_npz(args.video)
    else:
        from . import sample_video
        from .select import DEFAULT_POLICY, select_patches

        selection = select_patches(
            args.video or sample_video(), budget=args.budget, geometry=args.geometry,
            policy=args.policy or DEFAULT_POLICY, motion_compensation=args.compensation, signals=args.signals,
            start=args.start, end=args.end,
        )
    print(selection.summary())
    if suffix == ".png":
        image = contact_sheet(selection, thumb=args.thumb, chart=not args.no_chart)
        write_image(args.out, image, colors=args.colors)
        shape = image.shape
        if not args.no_chart:
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                print('note     no matplotlib: bar chart drawn with Pillow (pip install "codec-select[viz]")')
    else:
        frames = render(selection, panels=panels)
        write_video(args.out, frames, fps=args.fps)
        shape = frames.shape[1:]
    print(f"wrote    {args.out} ({shape[1]}x{shape[0]}, {os.path.getsize(args.out) / 1024:.0f} KB)")
    return 0
