"""The 3D rotary position embedding of OneVision-Encoder: its 4:6:6 frequencies and the rotation applied to q and k.

Behaviour kept exactly as trained (do not "fix"): per head, ``half = head_dim/2`` angle slots split 4:6:6 between
t, h, w with ``inv = θ^(−k/n)`` per axis (n = 8, 12, 12 for head_dim 64); angles ``F = [f, f]`` (half-split layout)
but rotated in *interleaved* pairs ``(x[2i], x[2i+1]) → (−x[2i+1], x[2i])``, so each pair turns by two different
angles. t lives on a 64-slot grid (``rope_temporal_size``) for video input, on a 1-slot grid for images; the
positions themselves come from :mod:`codec_select._packing` (``rope_positions_thw``, ``gather_rope``).

Departures that change no trained behaviour: the angles and the rotation are computed in float32 whatever the model
dtype, and the frequencies are computed on the fly, not stored in (non-persistent) buffers, so ``.to(bfloat16)``
cannot round them and meta-device loading cannot leave them uninitialised. Weight-free, so nothing here appears in
the checkpoint (:func:`.modeling.checkpoint_filter_fn` drops ``video_rope.*`` buffers some exporters save).
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration import OneVisionEncoderConfig

__all__ = ["VideoRotaryEmbedding", "apply_video_rope"]


class VideoRotaryEmbedding(nn.Module):
    """The 4:6:6 frequencies of the 3D RoPE (``inv_freq_{t,h,w}`` in the reference, which keeps them in
    non-persistent buffers; here they are computed in float32 on first use and cached per device)."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        unit = config.hidden_size // config.num_attention_heads // 2 // 16
        self.sizes = (4 * unit, 6 * unit, 6 * unit)
        self.theta = float(config.rope_theta)
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def inv_freqs(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(inv_t, inv_h, inv_w)``, float32, ``θ^(−k/n)`` for k = 0..n−1 on each axis."""
        key = str(device)
        if key not in self._cache:
            freqs = tuple(
                1.0 / (self.theta ** (torch.arange(n, dtype=torch.float32, device="cpu") / n)) for n in self.sizes
            )
            self._cache[key] = tuple(f.to(device) for f in freqs)
        return self._cache[key]


def _rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """Interleaved rotation: ``out[2i] = −x[2i+1]``, ``out[2i+1] = x[2i]``."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def apply_video_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x·cos + R(x)·sin`` in float32 (``x [N, H, Dh]``, ``cos``/``sin`` ``[N, 1, Dh]`` from angles ``[f, f]``)."""
    xf = x.float()
    return (xf * cos + _rotate_pairs(xf) * sin).to(x.dtype)
