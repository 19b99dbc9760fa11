"""Index math for packed variable-length token sequences: no weights, no modules, just tensors in and out.

The encoder runs every batch as one packed sequence of tokens ``[N_total, D]`` cut into segments (one per video or
image) by ``cu_seqlens``, the Qwen2-VL / flash-attn varlen convention: int32, a leading 0, then running sums.
Keeping this here means the modules never do index arithmetic, and the same helpers serve the attention backends
(segment bounds) and the 3D RoPE (positions → rotation angles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["PackedSeqs", "cu_seqlens_from_counts", "rope_positions_thw", "gather_rope"]


@dataclass(frozen=True)
class PackedSeqs:
    """Segment layout of a packed batch, computed once per forward and shared by every layer."""

    cu_seqlens: torch.Tensor
    """int32 [B+1] on the tokens' device: segment ``i`` is rows ``cu_seqlens[i]:cu_seqlens[i+1]``."""
    max_seqlen: int
    """Longest segment (flash-attn's ``max_seqlen_q``/``max_seqlen_k``)."""
    lengths: tuple[int, ...]
    """Segment lengths as Python ints (SDPA/eager split by these without a device sync per layer)."""

    @classmethod
    def from_counts(cls, counts: Sequence[int], device: torch.device | str | None = None) -> PackedSeqs:
        """Layout for segments of ``counts`` tokens each (every count ≥ 1)."""
        lengths = tuple(int(c) for c in counts)
        if not lengths or min(lengths) < 1:
            raise ValueError(f"Invalid segment lengths ({list(lengths)!r}). Each segment needs at least one token.")
        return cls(cu_seqlens_from_counts(lengths, device=device), max(lengths), lengths)

    @property
    def total(self) -> int:
        """N_total, the number of packed tokens."""
        return sum(self.lengths)

    @property
    def uniform(self) -> bool:
        """True when every segment has the same length (the batch can be viewed as ``[B, L, ...]``)."""
        return len(set(self.lengths)) == 1

    def __repr__(self) -> str:
        return f"PackedSeqs(segments={len(self.lengths)}, total={self.total}, max_seqlen={self.max_seqlen})"


def cu_seqlens_from_counts(
    counts: Sequence[int] | torch.Tensor, device: torch.device | str | None = None
) -> torch.Tensor:
    """int32 ``[B+1]``: ``[0, c0, c0+c1, ...]`` for segment lengths ``counts``."""
    counts = torch.as_tensor(counts, dtype=torch.int64).reshape(-1)
    out = torch.zeros(counts.numel() + 1, dtype=torch.int32)
    out[1:] = torch.cumsum(counts, 0).to(torch.int32)
    return out.to(device) if device is not None else out


def rope_positions_thw(visible_indices: torch.Tensor, grid_thw: tuple[int, int, int]) -> torch.Tensor:
    """``(t, h, w)`` of flat indices ``t·Hp·Wp + h·Wp + w`` into a ``T × Hp × Wp`` grid.

    Returns int64 ``[..., 3]``, the same leading shape as ``visible_indices``. Row ``n`` equals the ``n``-th cell
    of the t-major / h / w raster, which is how the encoder lays out a clip's tokens.
    """
    _, grid_h, grid_w = (int(v) for v in grid_thw)
    idx = visible_indices.to(torch.int64)
    cells = grid_h * grid_w
    t = torch.div(idx, cells, rounding_mode="floor")
    rem = idx - t * cells
    h = torch.div(rem, grid_w, rounding_mode="floor")
    w = rem - h * grid_w
    return torch.stack((t, h, w), dim=-1)


def gather_rope(positions: torch.Tensor, inv_freqs: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotation angles ``[..., half]`` for ``positions [..., 3]`` (t, h, w; ints or floats).

    Each axis contributes ``position × inv_freq`` for its own slots, concatenated t | h | w. Multiplying a position by
    the per-axis frequencies is exactly the row of the precomputed ``T × Hp × Wp`` angle table at that cell (same
    single float32 product), so positions given as ``(t, h, w)`` and as flat ``visible_indices`` agree bit for bit.
    Computed in float32 whatever the model dtype.
    """
    inv_t, inv_h, inv_w = (f.to(device=positions.device, dtype=torch.float32) for f in inv_freqs)
    pos = positions.to(torch.float32)
    return torch.cat(
        (pos[..., 0:1] * inv_t, pos[..., 1:2] * inv_h, pos[..., 2:3] * inv_w),
        dim=-1,
    )
