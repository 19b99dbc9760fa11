"""Pictures of a Selection: four-panel frames (MP4 / GIF) and a PNG contact sheet (``codec-select viz`` is in
:mod:`.viz_cli`).

Per grid slot, side by side: the canvas ``frame``; what ``uniform`` sampling at the same K keeps (whole frames,
dropped slots dimmed); the ``saliency`` heatmap (slot scores over a global percentile); the ``selected`` cells over
a dimmed frame (kept cells outlined). Everything is drawn with numpy + Pillow; matplotlib (extra ``viz``) only
supplies the colormap and the contact sheet's bar chart, with built-in stand-ins when it is missing.
Importing this module is cheap: PIL, PyAV and matplotlib are imported inside the functions that need them.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from .decode.pixels import slot_frames
from .selection import NUM_SLOTS, Selection

__all__ = ["PANELS", "DIM", "render", "contact_sheet", "write_video", "write_image"]

PANELS = ("frame", "uniform", "saliency", "selected")
"""Panel names, in the default order."""
DIM = 0.3
"""Brightness factor of dropped cells in the ``uniform`` and ``selected`` panels and the contact sheet."""
SALIENCY_PERCENTILE = 99.0
"""Scores are divided by this percentile of the positive valid scores over all 64 slots, then clipped to 1."""

_BG = (20, 20, 20)
_TEXT = (235, 235, 235)
_OUTLINE = (255, 214, 0)
_MARGIN, _GAP, _LINE = 4, 4, 13
_SEP = "  \u00b7  "  # caption item separator
# Inferno at five stops: the colormap when matplotlib is not installed.
_RAMP_POS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Frames and per-cell helpers


def _as_canvas(selection: Selection, frames: np.ndarray | None) -> np.ndarray:
    if frames is None:
        return slot_frames(selection)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or frames.shape[0] != NUM_SLOTS:
        raise ValueError(f"frames must be uint8 [64, H, W(, 3)], got {frames.dtype} {frames.shape}.")
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=3)
    g = selection.geometry
    if frames.shape[1:3] == (g.canvas_h, g.canvas_w):
        return frames
    if frames.shape[1:3] == (g.source_h, g.source_w):
        return np.stack([g.to_canvas(img) for img in frames])
    raise ValueError(
        f"frames are {frames.shape[1]}x{frames.shape[2]}; expected the canvas {g.canvas_h}x{g.canvas_w} "
        f"or the source {g.source_h}x{g.source_w}."
    )


def _cells_to_pixels(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-cell upsampling of a [Hp, Wp] array to [height, width] (any size, not only multiples)."""
    rows = np.arange(height) * mask.shape[0] // height
    cols = np.arange(width) * mask.shape[1] // width
    return mask[rows[:, None], cols[None, :]]


def _dim_and_outline(image: np.ndarray, keep: np.ndarray, *, outline: bool) -> np.ndarray:
    """Dim pixels where ``keep`` (bool [H, W]) is False; tint a 1-px line inside kept regions along their edge."""
    out = np.where(keep[..., None], image, (image * DIM).astype(np.uint8))
    if outline:
        pad = np.pad(keep, 1, constant_values=True)  # the image border is not an edge
        inner = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
        edge = keep & ~inner
        # Tinted, not opaque: with many scattered single cells, opaque lines would hide the pixels they frame.
        out[edge] = (0.4 * out[edge] + 0.6 * np.array(_OUTLINE)).astype(np.uint8)
    return out


def _colormap() -> np.ndarray:
    """uint8 [256, 3]: matplotlib's inferno, or a five-stop approximation without matplotlib."""
    try:
        import matplotlib

        return np.round(matplotlib.colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    except ImportError:
        x = np.linspace(0, 1, 256)
        return np.stack([np.interp(x, _RAMP_POS, _RAMP[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def _heat_levels(selection: Selection) -> np.ndarray:
    """uint8 [64, Hp, Wp]: scores over the global percentile, 0..255."""
    scores = np.nan_to_num(selection.scores.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    positive = scores[(scores > 0) & selection.geometry.valid_mask()[None]]
    scale = np.percentile(positive, SALIENCY_PERCENTILE) if positive.size else 1.0
    return np.round(np.clip(scores / scale, 0.0, 1.0) * 255).astype(np.uint8)


def _uniform_mask(selection: Selection) -> tuple[np.ndarray, int]:
    """bool [64, Hp, Wp] kept by uniform sampling at the largest multiple of the cells per frame ≤ K, and that K."""
    from .policies import apply_policy

    g = selection.geometry
    cells = g.cells
    available = (NUM_SLOTS - 1) * int(g.valid_mask().sum()) + cells  # what apply_policy allows with first_full
    n = min(selection.budget // cells, available // cells, NUM_SLOTS)
    mask = np.zeros(selection.grid_size, dtype=bool)
    if n >= 1:
        mask[apply_policy("uniform", selection.scores, g, n * cells)] = True
    return mask.reshape(selection.grid_thw), n * cells


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def _wrap(items: list[str], font, width: int) -> list[str]:
    """Join caption items with a separator into as few lines as fit ``width`` pixels."""
    lines: list[str] = []
    for item in items:
        if lines and font.getlength(lines[-1] + _SEP + item) <= width:
            lines[-1] += _SEP + item
        else:
            lines.append(item)
    return lines


# ---------------------------------------------------------------------------------------------------------------
# The four-panel frames


def render(
    selection: Selection, frames: np.ndarray | None = None, *, panels: tuple[str, ...] | list[str] = PANELS
) -> np.ndarray:
    """Draw one picture per grid slot: ``panels`` side by side plus a caption. Returns uint8 ``[64, H, W, 3]``.

    Args:
        selection: what to show.
        frames: the 64 slot frames, RGB uint8 ``[64, Hc, Wc, 3]`` on the canvas (or at source size, or luma);
            decoded from ``selection.video`` when None.
        panels: any of ``"frame"``, ``"uniform"``, ``"saliency"``, ``"selected"``, in the order to draw them.
    """
    from PIL import Image, ImageDraw

    panels = tuple(panels)
    bad = [p for p in panels if p not in PANELS]
    if bad or not panels:
        raise ValueError(f"Invalid panels ({bad or panels!r}). Supported values are {', '.join(PANELS)}.")
    canvas = _as_canvas(selection, frames)
    g = selection.geometry
    ch, cw, cells = g.canvas_h, g.canvas_w, g.cells
    kept = selection.mask
    per_slot = kept.reshape(NUM_SLOTS, -1).sum(axis=1)
    uniform, k_uniform = _uniform_mask(selection) if "uniform" in panels else (None, 0)
    heat = _heat_levels(selection) if "saliency" in panels else None
    lut = _colormap() if "saliency" in panels else None
    rounded = "" if k_uniform == selection.budget else f" (rounded down from {selection.budget})"
    titles = {
        "frame": "frame", "uniform": f"uniform K={k_uniform}{rounded}",
        "saliency": f"saliency (scores / p{SALIENCY_PERCENTILE:g})",
        "selected": f"selected: {selection.policy} K={selection.budget}",
    }
    font = _font()
    width = 2 * _MARGIN + len(panels) * cw + (len(panels) - 1) * _GAP
    captions = []
    name = os.path.basename(selection.video) or "(frames given)"
    for t in range(NUM_SLOTS):
        ts = selection.timestamps[t]
        items = [f"slot {t}/{NUM_SLOTS - 1}", f"t={ts:.2f} s" if np.isfinite(ts) else "t=?",
                 f"frame {int(selection.frame_ids[t])}", f"kept {int(per_slot[t])}/{cells} cells"]
        if uniform is not None:
            items.append("uniform keeps this slot" if uniform[t].any() else "uniform drops this slot")
        items += [f"signals: {selection.signals} ({selection.codec})", f"{g.name} 64x{g.grid_h}x{g.grid_w}", name]
        captions.append(_wrap(items, font, width - 2 * _MARGIN))
    top = _MARGIN + _LINE + 2
    height = top + ch + 4 + _LINE * max(len(c) for c in captions) + _MARGIN
    height += height % 2
    out = np.empty((NUM_SLOTS, height, width, 3), dtype=np.uint8)
    header = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(header)
    for i, p in enumerate(panels):
        draw.text((_MARGIN + i * (cw + _GAP), _MARGIN), titles[p], fill=_TEXT, font=font)
    header = np.asarray(header)
    for t in range(NUM_SLOTS):
        frame = canvas[t]
        out[t] = header
        for i, p in enumerate(panels):
            if p == "frame":
                tile = frame
            elif p == "uniform":
                tile = frame if uniform[t].any() else (frame * DIM).astype(np.uint8)
            elif p == "saliency":
                luma = frame.mean(axis=2, keepdims=True)
                tile = (0.75 * lut[_cells_to_pixels(heat[t], ch, cw)] + 0.25 * luma).astype(np.uint8)
            else:
                tile = _dim_and_outline(frame, _cells_to_pixels(kept[t], ch, cw), outline=True)
            x = _MARGIN + i * (cw + _GAP)
            out[t, top : top + ch, x : x + cw] = tile
        img = Image.fromarray(out[t])
        draw = ImageDraw.Draw(img)
        for j, line in enumerate(captions[t]):
            draw.text((_MARGIN, top + ch + 4 + j * _LINE), line, fill=_TEXT, font=font)
        out[t] = np.asarray(img)
    return out


# ---------------------------------------------------------------------------------------------------------------
# The contact sheet


def contact_sheet(
    selection: Selection, frames: np.ndarray | None = None, *, thumb: int = 112, columns: int = 8, chart: bool = True
) -> np.ndarray:
    """All 64 slots in a grid (kept cells outlined, dropped ones dimmed) plus a bar chart of kept cells per slot.

    ``thumb`` is the thumbnail height in pixels. Returns uint8 ``[H, W, 3]`` (write it with :func:`write_image`).
    The chart uses matplotlib when it is installed and Pillow otherwise.
    """
    from PIL import Image, ImageDraw

    if thumb < 16 or columns < 1:
        raise ValueError(f"Invalid thumb ({thumb!r}) or columns ({columns!r}). thumb must be >= 16, columns >= 1.")
    canvas = _as_canvas(selection, frames)
    g = selection.geometry
    th, tw = thumb, max(16, round(thumb * g.canvas_w / g.canvas_h))
    kept = selection.mask
    per_slot = kept.reshape(NUM_SLOTS, -1).sum(axis=1)
    rows = -(-NUM_SLOTS // columns)
    font = _font()
    name = os.path.basename(selection.video) or "(frames given)"
    width = 2 * _MARGIN + columns * tw + (columns - 1) * _GAP
    title = _wrap([
        name, f"{selection.codec}, signals: {selection.signals}", f"{g.name} 64x{g.grid_h}x{g.grid_w}",
        f"policy {selection.policy}, K={selection.budget} ({selection.budget / selection.grid_size:.1%})",
        "kept cells outlined, dropped cells dimmed; label: slot, time, kept cells",
    ], font, width - 2 * _MARGIN)
    top = _MARGIN + _LINE * len(title) + 4
    cell_h = th + _LINE + 2
    sheet = Image.new("RGB", (width, top + rows * cell_h + _MARGIN), _BG)
    draw = ImageDraw.Draw(sheet)
    for j, line in enumerate(title):
        draw.text((_MARGIN, _MARGIN + j * _LINE), line, fill=_TEXT, font=font)
    for t in range(NUM_SLOTS):
        r, c = divmod(t, columns)
        x, y = _MARGIN + c * (tw + _GAP), top + r * cell_h
        small = np.asarray(Image.fromarray(canvas[t]).resize((tw, th), Image.Resampling.BILINEAR))
        tile = _dim_and_outline(small, _cells_to_pixels(kept[t], th, tw), outline=True)
        sheet.paste(Image.fromarray(tile), (x, y))
        ts = selection.timestamps[t]
        label = f"{t}  " + (f"{ts:.1f}s" if np.isfinite(ts) else "?") + f"  {int(per_slot[t])}"
        draw.text((x + 1, y + th + 1), label, fill=_TEXT, font=font)
    out = np.asarray(sheet)
    if chart:
        bars = _bar_chart(per_slot, g.cells, width, 170)
        out = np.concatenate([out, bars, np.full((_MARGIN, width, 3), _BG, np.uint8)], axis=0)
    return out


def _bar_chart(per_slot: np.ndarray, cells: int, width: int, height: int) -> np.ndarray:
    """uint8 [height, width, 3]: kept cells per slot, a dashed line at a full frame."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return _bar_chart_pillow(per_slot, cells, width, height)
    bg, fg = tuple(v / 255 for v in _BG), tuple(v / 255 for v in _TEXT)
    fig = Figure(figsize=(width / 100, height / 100), dpi=100, facecolor=bg)
    ax = fig.add_axes((0.06, 0.22, 0.92, 0.66), facecolor=bg)
    ax.bar(np.arange(per_slot.size), per_slot, width=0.8, color=tuple(v / 255 for v in _OUTLINE))
    ax.axhline(cells, color=fg, linestyle="--", linewidth=0.8)
    ax.text(per_slot.size - 0.5, cells, " full frame", color=fg, fontsize=7, va="bottom", ha="right")
    ax.set_xlim(-0.7, per_slot.size - 0.3)
    ax.set_ylim(0, max(cells, int(per_slot.max())) * 1.15)
    ax.set_xticks(np.arange(0, per_slot.size, 8))
    ax.set_xlabel("slot", color=fg, fontsize=8, labelpad=1)
    ax.set_title("kept cells per slot", color=fg, fontsize=8, pad=3)
    ax.tick_params(colors=fg, labelsize=7)
    for spine in ax.spines.values():
        spine.set_color(fg)
    agg = FigureCanvasAgg(fig)
    agg.draw()
    img = np.asarray(agg.buffer_rgba())[..., :3]
    return np.ascontiguousarray(img[:height, :width])


def _bar_chart_pillow(per_slot: np.ndarray, cells: int, width: int, height: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(img)
    font = _font()
    x0, x1, y0, y1 = 40, width - 10, 20, height - 22  # plot box
    top = max(cells, int(per_slot.max())) * 1.15
    step = (x1 - x0) / per_slot.size
    for t, n in enumerate(per_slot):
        bx = x0 + t * step
        draw.rectangle((bx + 0.1 * step, y1 - (y1 - y0) * n / top, bx + 0.9 * step, y1), fill=_OUTLINE)
    yf = y1 - (y1 - y0) * cells / top
    for x in range(x0, x1, 8):
        draw.line((x, yf, min(x + 4, x1), yf), fill=_TEXT)
    draw.line((x0, y0, x0, y1, x1, y1), fill=_TEXT)
    for t in range(0, per_slot.size, 8):
        draw.text((x0 + t * step, y1 + 3), str(t), fill=_TEXT, font=font)
    draw.text((4, yf - 6), str(cells), fill=_TEXT, font=font)
    draw.text((x0, 4), "kept cells per slot (dashed: full frame)", fill=_TEXT, font=font)
    return np.asarray(img)


# ---------------------------------------------------------------------------------------------------------------
# Writers


def write_video(path: str | os.PathLike, frames: np.ndarray, *, fps: float = 4.0) -> Path:
    """Write RGB uint8 ``[N, H, W, 3]`` frames to ``.mp4`` (PyAV, H.264 yuv420p, padded to even sizes) or ``.gif``."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or not len(frames):
        raise ValueError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}.")
    if not fps > 0:
        raise ValueError(f"Invalid fps ({fps!r}). It must be > 0.")
    suffix = path.suffix.lower()
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
        return path
    if suffix != ".mp4":
        raise ValueError(f"Invalid video file ({path.name!r}). Supported suffixes are .mp4, .gif.")
    import av

    h, w = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"  # stock wheels have libx264
    with av.open(os.fspath(path), mode="w") as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "20", "preset": "medium"} if codec == "libx264" else {"qscale": "3"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_image(path: str | os.PathLike, image: np.ndarray, *, colors: int | None = None) -> Path:
    """Write an RGB uint8 ``[H, W, 3]`` image with Pillow (PNG, JPEG, ...); ``colors`` makes a palette PNG."""
    from PIL import Image

    path = Path(path)
    img = Image.fromarray(np.ascontiguousarray(image))
    if colors:
        img = img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(path, optimize=True)
    return path
