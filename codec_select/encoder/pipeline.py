"""From a video file to OneVision-Encoder features: select → decode the slots in use → canvas → mosaic → encode.

- :func:`preprocess_frames`: the geometry's resize / crop / letterbox in torch, applied once per decoded frame
  (bicubic for ``ap224``/``native``, bilinear for ``llava576``, antialiased and rounded to uint8 levels like
  PIL), then CLIP mean/std.
- :func:`build_mosaic`: gather the K chosen patches, in ``visible_indices`` order, into K/(Hp·Wp) pseudo-frames
  ``[1, 3, K/(Hp·Wp), H, W]`` (the encoder's *mosaic mode*: the real positions come from ``visible_indices``).
- :func:`select_and_encode`: the whole path for one video or a batch; our model packs a batch of different K
  without padding, any other module with the reference forward signature gets same-shape groups stacked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError('select_and_encode needs torch: pip install "codec-select[encoder]"') from exc

from ..decode.pixels import slot_frames
from ..geometry import CLIP_MEAN, CLIP_STD, GEOMETRIES, Geometry
from ..selection import NUM_SLOTS, Selection
from . import DEFAULT_MODEL_ID

__all__ = [
    "EncodedVideo", "select_and_encode", "preprocess_frames", "build_mosaic", "encoder_inputs",
]

_FIXED_CELLS = {"ap224": 256, "llava576": 1296}
ENCODER_PATCH = 14
"""Patch size of every published OneVision-Encoder (the llava576 canvas is resized so its cells match it)."""


@dataclass(frozen=True, repr=False)
class EncodedVideo:
    """One video's selection and what the encoder made of it."""

    selection: Selection
    """Which K cells of the 64×Hp×Wp grid were encoded."""
    last_hidden_state: torch.Tensor
    """[K, D] token features in ``visible_indices`` order (after ``layernorm_post``)."""
    pooler_output: torch.Tensor | None
    """[D] attention-pooled clip feature (None for a model without head)."""
    hidden_states: tuple[torch.Tensor, ...] | None = None
    """Per-layer [K, D] tensors when requested (block inputs, then the last block's output before post-norm)."""
    timings: dict = field(default_factory=dict)
    """Seconds: ``select`` (the selection's own total), ``prepare`` (decode the RGB of the slots in use, canvas,
    mosaic), ``encode`` (the forward pass of this video's batch); ``batch`` = videos in that pass."""

    def __repr__(self) -> str:
        pooled = None if self.pooler_output is None else tuple(self.pooler_output.shape)
        return (f"EncodedVideo(video={self.selection.video!r}, K={self.selection.budget}, "
                f"last_hidden_state={tuple(self.last_hidden_state.shape)}, pooler_output={pooled})")

    def save(self, path: str | os.PathLike, *, model: str = "") -> Path:
        """Write features + selection arrays to one ``.safetensors`` file (metadata: the selection as JSON)."""
        import json

        from safetensors.torch import save_file

        sel = self.selection
        tensors = {
            "last_hidden_state": self.last_hidden_state,
            "visible_indices": torch.from_numpy(sel.visible_indices),
            "positions_thw": torch.from_numpy(sel.positions_thw),
            "frame_ids": torch.from_numpy(sel.frame_ids),
            "timestamps": torch.from_numpy(sel.timestamps.astype(np.float64)),
        }
        if self.pooler_output is not None:
            tensors["pooler_output"] = self.pooler_output
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata={"selection": json.dumps(sel.to_dict()), "model": str(model)})
        tmp.replace(path)
        return path


def _resize_like_pil(x: torch.Tensor, height: int, width: int, mode: str) -> torch.Tensor:
    """Antialiased separable resize as PIL does it: horizontal pass, round half up + clip to 0..255, vertical pass,
    again (PIL keeps the intermediate image in uint8, which clips bicubic overshoot between the passes). Measured
    against PIL: at most 1-2 levels apart on < 3 % of the pixels (PIL's fixed-point weights), none on most."""
    if x.shape[-1] != width:
        x = F.interpolate(x, size=(x.shape[-2], width), mode=mode, align_corners=False, antialias=True)
        x = x.add_(0.5).floor_().clamp_(0, 255)
    if x.shape[-2] != height:
        x = F.interpolate(x, size=(height, width), mode=mode, align_corners=False, antialias=True)
        x = x.add_(0.5).floor_().clamp_(0, 255)
    return x


def preprocess_frames(
    frames: np.ndarray | torch.Tensor,
    geometry: Geometry,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    normalize: bool = True,
    patch_size: int | None = None,
    chunk: int = 8,
) -> torch.Tensor:
    """uint8 upright RGB ``[n, H, W, 3]`` → canvas ``[n, 3, canvas_h, canvas_w]``, CLIP-normalised.

    Same transform as :meth:`Geometry.to_canvas` (PIL), in torch: antialiased resize to ``scaled_h × scaled_w``,
    rounded and clipped to 0..255 as PIL's uint8 output is, then crop / zero (black) padding onto the canvas. Frames
    are converted ``chunk`` at a time so a batch of 720p frames never sits in memory as float32.
    ``normalize=False`` returns the 0..255 canvas (float) instead.

    ``patch_size``: the encoder's patch when it differs from the geometry's (``llava576``: 16-px cells on the 576
    canvas, the model's 14 px): the canvas is then resized to ``grid × patch_size`` (576 → 504, bicubic) so each
    cell becomes one encoder patch. The reference resizes the assembled 576 mosaics instead, which lets pasted
    neighbours bleed into each other by a pixel; resizing whole frames keeps mosaic mode equal to sparse mode.
    """
    if frames.ndim != 4 or tuple(frames.shape[1:]) != (geometry.source_h, geometry.source_w, 3):
        raise ValueError(f"frames must be uint8 [n, {geometry.source_h}, {geometry.source_w}, 3] (upright RGB), "
                         f"got {tuple(frames.shape)}.")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    n = frames.shape[0]
    p = geometry.patch if patch_size is None else int(patch_size)
    out_h, out_w = geometry.grid_h * p, geometry.grid_w * p
    out = torch.empty(n, 3, out_h, out_w, dtype=dtype, device=dev)
    mean = torch.tensor(CLIP_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=dev).view(1, 3, 1, 1)
    y0, y1, x0, x1 = geometry.content_box()
    resize = (geometry.scaled_h, geometry.scaled_w) != (geometry.source_h, geometry.source_w)
    for start in range(0, n, chunk):
        x = torch.as_tensor(frames[start : start + chunk]).to(dev).permute(0, 3, 1, 2).float()
        if resize:
            x = _resize_like_pil(x, geometry.scaled_h, geometry.scaled_w, geometry.resample)
        canvas = torch.zeros(x.shape[0], 3, geometry.canvas_h, geometry.canvas_w, device=dev)
        canvas[:, :, y0:y1, x0:x1] = x[:, :, y0 - geometry.off_y : y1 - geometry.off_y,
                                       x0 - geometry.off_x : x1 - geometry.off_x]
        if (out_h, out_w) != (geometry.canvas_h, geometry.canvas_w):
            canvas = _resize_like_pil(canvas, out_h, out_w, "bicubic")
        if normalize:
            canvas = (canvas / 255.0 - mean) / std
        out[start : start + x.shape[0]] = canvas.to(dtype)
    return out


def build_mosaic(
    frames_canvas: torch.Tensor,
    visible_indices: np.ndarray | torch.Tensor,
    geometry: Geometry,
    *,
    slot_rows: np.ndarray | torch.Tensor | None = None,
) -> torch.Tensor:
    """Gather the K patches named by ``visible_indices`` into ``[1, C, K/(Hp·Wp), H, W]``.

    Patch ``j`` (in ``visible_indices`` order) lands in pseudo-frame ``j // (Hp·Wp)`` at cell ``j % (Hp·Wp)``
    (raster order). ``frames_canvas`` is ``[64, C, H, W]`` indexed by slot, or any ``[S, C, H, W]`` with
    ``slot_rows[t]`` = the row holding slot ``t`` (so a frame shown at several slots is stored once). The cell grid
    is the geometry's; the pixel patch is ``H / Hp`` (the canvas, or the canvas resized for the encoder's patch).
    """
    idx = torch.as_tensor(np.asarray(visible_indices) if not torch.is_tensor(visible_indices) else visible_indices,
                          dtype=torch.int64).reshape(-1).to(frames_canvas.device)
    cells = geometry.cells
    k = idx.numel()
    if k == 0 or k % cells:
        raise ValueError(
            f"Invalid budget for a mosaic (K={k}). K must be a positive multiple of the {cells} cells per frame of "
            f"geometry {geometry.name!r} (the encoder sees K/{cells} pseudo-frames), e.g. {max(1, k // cells) * cells}."
        )
    s, c, h, w = frames_canvas.shape
    p = h // geometry.grid_h
    if p < 1 or (h, w) != (geometry.grid_h * p, geometry.grid_w * p):
        raise ValueError(f"frames_canvas is {h}x{w}, not a {geometry.grid_h}x{geometry.grid_w} grid of square patches.")
    if int(idx.min()) < 0 or int(idx.max()) >= NUM_SLOTS * cells:
        raise ValueError(f"visible_indices must lie in [0, {NUM_SLOTS * cells}).")
    t = torch.div(idx, cells, rounding_mode="floor")
    rem = idx - t * cells
    hh = torch.div(rem, geometry.grid_w, rounding_mode="floor")
    ww = rem - hh * geometry.grid_w
    if slot_rows is None:
        if s != NUM_SLOTS:
            raise ValueError(f"frames_canvas has {s} frames; pass all 64 slots or slot_rows.")
        rows = t
    else:
        rows = torch.as_tensor(np.asarray(slot_rows), dtype=torch.int64).to(idx.device)[t]
        if int(rows.min()) < 0 or int(rows.max()) >= s:
            raise ValueError("slot_rows does not map every used slot to a row of frames_canvas.")
    grid = frames_canvas.view(s, c, geometry.grid_h, p, geometry.grid_w, p)
    patches = grid[rows, :, hh, :, ww, :]  # [K, C, p, p]
    g = k // cells
    mosaic = patches.view(g, geometry.grid_h, geometry.grid_w, c, p, p).permute(3, 0, 1, 4, 2, 5)
    return mosaic.reshape(1, c, g, h, w)


def encoder_inputs(
    selection: Selection,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    patch_size: int | None = ENCODER_PATCH,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mosaic ``[1, 3, K/(Hp·Wp), H, W]`` and ``visible_indices [1, K]`` for one selection.

    Only the slots that hold a kept cell are decoded, and a decoded frame shown at several slots (short videos)
    is decoded and resized once. ``patch_size``: the encoder's (default 14, so ``llava576`` mosaics come out at
    504²; ``None`` keeps the geometry's canvas; see :func:`preprocess_frames`)."""
    geo = selection.geometry
    slots = np.unique(selection.visible_indices // geo.cells)
    _, first, inverse = np.unique(selection.frame_ids[slots], return_index=True, return_inverse=True)
    rgb = slot_frames(selection, canvas=False, slots=slots[first])  # each distinct frame once, found by timestamp
    canvas = preprocess_frames(rgb, geo, device=device, dtype=dtype, patch_size=patch_size)
    slot_rows = np.full(NUM_SLOTS, -1, dtype=np.int64)
    slot_rows[slots] = inverse.reshape(-1)
    mosaic = build_mosaic(canvas, selection.visible_indices, geo, slot_rows=slot_rows)
    idx = torch.from_numpy(selection.visible_indices).to(canvas.device)[None]
    return mosaic, idx


@lru_cache(maxsize=2)
def _cached_encoder(name: str, device: str | None, dtype, attn: str):
    from . import load_encoder

    return load_encoder(name, device=device, dtype=dtype, attn_implementation=attn)


def _as_encoder(model, device, dtype, attn_implementation) -> torch.nn.Module:
    if isinstance(model, torch.nn.Module):
        from .loading import resolve_dtype

        param = next(model.parameters())
        dtype = None if dtype is None else resolve_dtype(dtype, param.device)
        want = None if device is None else torch.device(device)
        if want is not None and (want.type != param.device.type or want.index not in (None, param.device.index)):
            raise ValueError(f"The model is on {param.device}, not {want}; move it first (model.to(...)).")
        if dtype is not None and dtype != param.dtype:
            raise ValueError(f"The model is {param.dtype}, not {dtype}; convert it first (model.to(dtype)).")
        return model
    if isinstance(model, (str, os.PathLike)):
        return _cached_encoder(os.fspath(model), None if device is None else str(device), dtype, attn_implementation)
    raise ValueError(f"Invalid model ({type(model).__name__}). Pass a Hub id, a folder or a loaded encoder module.")


def _run_encoder(encoder, inputs, output_hidden_states: bool) -> list[tuple]:
    """[(last [K, D], pooled [D] | None, hidden tuple | None)] per input, in order."""
    if hasattr(encoder, "forward_packed"):
        out = encoder.forward_packed([m for m, _ in inputs], [i for _, i in inputs],
                                     output_hidden_states=output_hidden_states)
        sizes = torch.diff(out.cu_seqlens).tolist()
        lasts = out.last_hidden_state.split(sizes)
        hidden = (list(zip(*(h.split(sizes) for h in out.hidden_states), strict=True))
                  if out.hidden_states is not None else [None] * len(inputs))
        pooled = list(out.pooler_output) if out.pooler_output is not None else [None] * len(inputs)
        return list(zip(lasts, pooled, hidden, strict=True))
    results: list = [None] * len(inputs)
    groups: dict[tuple, list[int]] = {}
    for i, (m, idx) in enumerate(inputs):  # the reference forward needs equal shapes within a batch
        groups.setdefault((tuple(m.shape), tuple(idx.shape)), []).append(i)
    for members in groups.values():
        out = encoder(torch.cat([inputs[i][0] for i in members]),
                      visible_indices=torch.cat([inputs[i][1] for i in members]),
                      output_hidden_states=output_hidden_states)
        for row, i in enumerate(members):
            hidden = None if not output_hidden_states else tuple(h[row] for h in out.hidden_states)
            pooled = None if out.pooler_output is None else out.pooler_output[row]
            results[i] = (out.last_hidden_state[row], pooled, hidden)
    return results


def select_and_encode(
    video: str | os.PathLike | Selection | Sequence[str | os.PathLike | Selection],
    *,
    model: str | os.PathLike | torch.nn.Module = DEFAULT_MODEL_ID,
    budget: int | None = None,
    geometry: str = "ap224",
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
    attn_implementation: str = "sdpa",
    batch_size: int = 4,
    output_hidden_states: bool = False,
    **select_options,
) -> EncodedVideo | list[EncodedVideo]:
    """Choose K patches of each video from its codec signals and encode them with OneVision-Encoder.

    Args:
        video: a path, a :class:`Selection` (encoded as is; ``budget``/``geometry``/``select_options`` are then
            ignored), or a sequence of them (returns a list).
        model: Hub id, local folder (loaded once and cached) or a loaded module: ours, or the reference's
            remote-code model (same forward signature). A module is used on its own device and dtype.
        budget: K (default 4096 on ``ap224``, 10368 on ``llava576``); must be a multiple of the cells per frame.
        geometry: ``"ap224"``, ``"llava576"`` or ``"native"``.
        device, dtype: where and how to load ``model`` (default: CUDA + bfloat16 when available, else CPU float32).
        attn_implementation: ``"sdpa"``, ``"eager"``, ``"flash_attention_2"`` or ``"auto"``.
        batch_size: videos per forward pass (our model packs different K without padding).
        output_hidden_states: also return every layer's tokens.
        **select_options: passed to :func:`codec_select.select_patches` (``policy``, ``signals``, ``start``, ...).
            Without a ``policy`` (or another option a recipe does not take), ``ap224`` and ``llava576`` use the
            reference's own selection, the input the encoder was trained on: ``recipe="onevision-ap"`` /
            ``"onevision-stage1"`` (:func:`codec_select.select.consumer_options`); ``policy="refresh"`` is ours.
    """
    single = isinstance(video, (str, os.PathLike, Selection))
    items = [video] if single else list(video)
    if not items:
        raise ValueError("Invalid video (empty sequence). Pass a path, a Selection or a non-empty list of them.")
    if geometry not in GEOMETRIES:
        raise ValueError(f"Invalid geometry ({geometry!r}). Supported values are {', '.join(GEOMETRIES)}.")
    cells = _FIXED_CELLS.get(geometry)
    if budget is not None and cells and (budget < cells or budget % cells):
        raise ValueError(f"Invalid budget ({budget}). On {geometry!r} it must be a multiple of {cells} (the encoder "
                         f"sees K/{cells} pseudo-frames), e.g. {max(1, round(budget / cells)) * cells}.")
    if batch_size < 1:
        raise ValueError(f"Invalid batch_size ({batch_size}). It must be >= 1.")
    encoder = _as_encoder(model, device, dtype, attn_implementation)
    param = next(encoder.parameters())
    patch_size = getattr(getattr(encoder, "config", None), "patch_size", ENCODER_PATCH)
    results: list[EncodedVideo] = []
    for first in range(0, len(items), batch_size):
        batch, inputs, times = [], [], []
        for item in items[first : first + batch_size]:
            if isinstance(item, Selection):
                sel = item
            else:
                from ..select import consumer_options, select_patches

                sel = select_patches(item, budget=budget, **consumer_options(geometry, select_options))
            t0 = time.perf_counter()
            with torch.inference_mode():
                inputs.append(encoder_inputs(sel, device=param.device, dtype=param.dtype, patch_size=patch_size))
            batch.append(sel)
            times.append({"select": float(sel.timings.get("total", 0.0)), "prepare": time.perf_counter() - t0})
        t0 = time.perf_counter()
        with torch.inference_mode():
            outs = _run_encoder(encoder, inputs, output_hidden_states)
        if param.device.type == "cuda":
            torch.cuda.synchronize(param.device)
        encode = time.perf_counter() - t0
        for sel, (last, pooled, hidden), tm in zip(batch, outs, times, strict=True):
            tm.update(encode=encode, batch=len(batch))
            results.append(EncodedVideo(sel, last, pooled, hidden, tm))
    return results[0] if single else results
