"""Attention backends for packed sequences, all in one place and with one signature.

``fn(q, k, v, seqs, *, scale, dropout_p) -> out`` with ``q, k, v, out`` of shape ``[N_total, heads, head_dim]`` and
``seqs`` a :class:`~codec_select._packing.PackedSeqs`. Tokens of different segments (videos) never attend to each
other; no padding and no N×N mask are ever built:

- ``"sdpa"`` (default): ``torch.nn.functional.scaled_dot_product_attention``, one batched call when every segment
  has the same length, one call per segment otherwise.
- ``"eager"``: matmul + float32 softmax, same splitting; for reference checks (memory grows with N²).
- ``"flash_attention_2"``: ``flash_attn_varlen_func`` over the packed tokens (CUDA, fp16/bf16). flash-attn is
  imported lazily, inside the backend.

:func:`resolve_attn_implementation` turns what the user asked for (including ``"auto"``) into one of these keys,
with clear errors for impossible requests and a logged fall back for ``"auto"``.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._packing import PackedSeqs

__all__ = [
    "ATTENTION_BACKENDS",
    "ATTN_IMPLEMENTATIONS",
    "resolve_attn_implementation",
    "flash_attn_available",
]

logger = logging.getLogger("codec_select.encoder")

ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "auto")
"""Values ``attn_implementation`` accepts (``"flash"`` is an alias of ``"flash_attention_2"``)."""

FLASH_INSTALL = 'pip install "codec-select[flash]"  (flash-attn builds against your CUDA torch; see its README)'


def _as_batch(x: torch.Tensor, batch: int) -> torch.Tensor:
    """``[B·L, H, Dh]`` → ``[B, H, L, Dh]`` (a view plus a transpose)."""
    return x.view(batch, x.shape[0] // batch, x.shape[1], x.shape[2]).transpose(1, 2)


def _from_batch(x: torch.Tensor) -> torch.Tensor:
    """``[B, H, L, Dh]`` → ``[B·L, H, Dh]``."""
    return x.transpose(1, 2).reshape(-1, x.shape[1], x.shape[3])


def _segments(fn: Callable, q, k, v, seqs: PackedSeqs, **kw) -> torch.Tensor:
    """Run a ``[B, H, L, Dh]`` attention function on every segment (batched when they are all the same length)."""
    if seqs.uniform:
        b = len(seqs.lengths)
        return _from_batch(fn(_as_batch(q, b), _as_batch(k, b), _as_batch(v, b), **kw))
    outs = [
        _from_batch(fn(_as_batch(qs, 1), _as_batch(ks, 1), _as_batch(vs, 1), **kw))
        for qs, ks, vs in zip(q.split(seqs.lengths), k.split(seqs.lengths), v.split(seqs.lengths), strict=True)
    ]
    return torch.cat(outs, 0)


def _sdpa_batched(q, k, v, *, scale: float, dropout_p: float) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale)


def _eager_batched(q, k, v, *, scale: float, dropout_p: float) -> torch.Tensor:
    weights = torch.matmul(q, k.transpose(-1, -2)) * scale
    weights = torch.softmax(weights.float(), dim=-1).to(q.dtype)
    if dropout_p:
        weights = F.dropout(weights, p=dropout_p)
    return torch.matmul(weights, v)


def sdpa_attention(q, k, v, seqs: PackedSeqs, *, scale: float, dropout_p: float = 0.0) -> torch.Tensor:
    """PyTorch SDPA per segment (picks flash / memory-efficient / math kernels itself)."""
    return _segments(_sdpa_batched, q, k, v, seqs, scale=scale, dropout_p=dropout_p)


def eager_attention(q, k, v, seqs: PackedSeqs, *, scale: float, dropout_p: float = 0.0) -> torch.Tensor:
    """Plain matmul + softmax (float32 softmax) per segment: the reference for checks."""
    return _segments(_eager_batched, q, k, v, seqs, scale=scale, dropout_p=dropout_p)


def flash_attention_2(q, k, v, seqs: PackedSeqs, *, scale: float, dropout_p: float = 0.0) -> torch.Tensor:
    """flash-attn's varlen kernel over the packed tokens: segments of different lengths, no padding."""
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError as exc:
        raise ImportError(f"attn_implementation='flash_attention_2' needs flash-attn: {FLASH_INSTALL}") from exc
    if not q.is_cuda or q.dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(
            f"flash_attention_2 runs on CUDA in float16/bfloat16, got {q.device.type} {q.dtype}. "
            "Load the model with dtype=torch.bfloat16 on a CUDA device, or use attn_implementation='sdpa'."
        )
    cu = seqs.cu_seqlens.to(device=q.device, dtype=torch.int32)
    return flash_attn_varlen_func(
        q, k, v, cu, cu, seqs.max_seqlen, seqs.max_seqlen, dropout_p=dropout_p, softmax_scale=scale, causal=False
    )


ATTENTION_BACKENDS: dict[str, Callable[..., torch.Tensor]] = {
    "sdpa": sdpa_attention,
    "eager": eager_attention,
    "flash_attention_2": flash_attention_2,
}


def flash_attn_available() -> bool:
    """Whether the ``flash_attn`` package is importable (without importing it)."""
    return importlib.util.find_spec("flash_attn") is not None


def resolve_attn_implementation(
    requested: str | None, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> str:
    """Map the user's choice to a key of :data:`ATTENTION_BACKENDS`.

    ``None`` → ``"sdpa"``. ``"flash_attention_2"`` (or ``"flash"``) without flash-attn raises ``ImportError`` with the
    install command; on a non-CUDA device or in float32 it raises ``ValueError``. ``"auto"`` picks flash-attn when it
    can run (CUDA, fp16/bf16, installed) and otherwise logs once why it uses SDPA.
    """
    name = "sdpa" if requested is None else str(requested)
    if name == "flash":
        name = "flash_attention_2"
    if name not in ATTN_IMPLEMENTATIONS:
        raise ValueError(
            f"Invalid attn_implementation ({requested!r}). Supported values are {', '.join(ATTN_IMPLEMENTATIONS)}."
        )
    dev = torch.device(device) if device is not None else None
    half = dtype in (torch.float16, torch.bfloat16)
    if name == "flash_attention_2":
        if not flash_attn_available():
            raise ImportError(f"attn_implementation='flash_attention_2' needs flash-attn: {FLASH_INSTALL}")
        if dev is not None and dev.type != "cuda":
            raise ValueError(
                f"flash_attention_2 needs a CUDA device, got device={str(dev)!r}. Use 'sdpa' on {dev.type}."
            )
        if dtype is not None and not half:
            raise ValueError(
                f"flash_attention_2 needs dtype float16 or bfloat16, got {dtype}. Pass dtype=torch.bfloat16."
            )
        return name
    if name == "auto":
        reasons = []
        if not flash_attn_available():
            reasons.append("flash-attn is not installed")
        if dev is None or dev.type != "cuda":
            reasons.append(f"device is {'unset' if dev is None else dev.type}, not cuda")
        if not half:
            reasons.append(f"dtype is {dtype}, not float16/bfloat16")
        if not reasons:
            return "flash_attention_2"
        logger.info("attn_implementation='auto': using sdpa (%s).", "; ".join(reasons))
        return "sdpa"
    return name
