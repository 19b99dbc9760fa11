"""OneVision-Encoder (ViT-L/14 with a 3D RoPE over a 64-frame grid) in plain PyTorch, loadable without remote code.

Top to bottom: modules (embeddings, attention, MLP, layer, encoder, pooling head) → model →
:func:`checkpoint_filter_fn`. The config lives in :mod:`.configuration`, the RoPE in :mod:`.rope`, the attention
backends in :mod:`.attention`; :mod:`.loading` reads the weights. Submodules carry the published checkpoint's names,
so its ``model.safetensors`` loads with ``strict=True`` and no renaming.

Behaviour kept exactly as trained (do not "fix"):

- RoPE on q and k with the 4:6:6 t/h/w split, rotated in interleaved pairs (details in :mod:`.rope`).
- Tokens are t-major, then h, then w; no class token, no absolute position embedding; ``layernorm_pre`` before the
  blocks, ``layernorm_post`` + an attention-pooling head (RMSNorm inside) after them.
- ``visible_indices`` with fewer entries than the clip's patches gathers those tokens (*sparse mode*); with as many
  entries as patches nothing is gathered and they only give positions (*mosaic mode*: K pre-gathered patches laid
  out as K/(Hp·Wp) pseudo-frames).
- ``hidden_states``: the input of every block (after pre-norm and gather) plus the last block's output before
  ``layernorm_post`` (num_hidden_layers + 1 tensors).

Departures that change no trained behaviour: RoPE in float32 without stored buffers (see :mod:`.rope`); attention
runs on packed sequences with SDPA by default (see :mod:`.attention`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .._packing import PackedSeqs, gather_rope, rope_positions_thw
from .attention import ATTENTION_BACKENDS, resolve_attn_implementation
from .configuration import OneVisionEncoderConfig, check_config
from .rope import VideoRotaryEmbedding, apply_video_rope

__all__ = [
    "OneVisionEncoderModel",
    "OneVisionEncoderPackedOutput",
    "checkpoint_filter_fn",
    "register_auto_classes",
]

logger = logging.getLogger("codec_select.encoder")


def _norm(config: OneVisionEncoderConfig) -> nn.Module:
    if config.layer_norm_type == "rms_norm":
        return nn.RMSNorm(config.hidden_size, eps=config.layer_norm_eps)
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class OneVisionEncoderEmbeddings(nn.Module):
    """Per-frame 14×14 patch projection (a strided Conv2d without bias) → tokens ``[B, T·Hp·Wp, D]``, t-major."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.patch_embedding = nn.Conv2d(
            config.num_channels, config.hidden_size, config.patch_size, stride=config.patch_size, bias=False
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = pixel_values.shape
        frames = pixel_values.transpose(1, 2).reshape(b * t, c, h, w).to(self.patch_embedding.weight.dtype)
        x = self.patch_embedding(frames)  # [B·T, D, Hp, Wp]
        return x.flatten(2).transpose(1, 2).reshape(b, -1, x.shape[1])


class OneVisionEncoderAttention(nn.Module):
    """Multi-head self-attention with the video RoPE on q and k, over packed segments."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scale = self.head_dim**-0.5
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor, seqs: PackedSeqs, position_embeddings) -> torch.Tensor:
        n = hidden_states.shape[0]
        q = self.q_proj(hidden_states).view(n, self.num_heads, self.head_dim)
        k = self.k_proj(hidden_states).view(n, self.num_heads, self.head_dim)
        v = self.v_proj(hidden_states).view(n, self.num_heads, self.head_dim)
        cos, sin = position_embeddings
        q, k = apply_video_rope(q, cos, sin), apply_video_rope(k, cos, sin)
        impl = self.config._attn_implementation or "sdpa"
        backend = ATTENTION_BACKENDS.get(impl)
        if backend is None:
            supported = ", ".join(ATTENTION_BACKENDS)
            raise ValueError(f"Invalid attn_implementation ({impl!r}). Supported values are {supported}.")
        dropout = self.config.attention_dropout if self.training else 0.0
        out = backend(q, k, v, seqs, scale=self.scale, dropout_p=dropout)
        return self.out_proj(out.reshape(n, -1))


class OneVisionEncoderMLP(nn.Module):
    """fc1 → activation (exact erf GELU for ``"gelu"``) → fc2, as SigLIP's MLP."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(x)))


class OneVisionEncoderLayer(nn.Module):
    """Pre-norm block: ``x + Attn(LN1(x))`` then ``x + MLP(LN2(x))``."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.self_attn = OneVisionEncoderAttention(config)
        self.layer_norm1 = _norm(config)
        self.mlp = OneVisionEncoderMLP(config)
        self.layer_norm2 = _norm(config)

    def forward(self, x: torch.Tensor, seqs: PackedSeqs, position_embeddings) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x), seqs, position_embeddings)
        return x + self.mlp(self.layer_norm2(x))


class OneVisionEncoderEncoder(nn.Module):
    """The stack of blocks; records hidden states on request and supports gradient checkpointing."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.layers = nn.ModuleList(OneVisionEncoderLayer(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(self, x, seqs: PackedSeqs, position_embeddings, output_hidden_states: bool = False):
        hidden = [] if output_hidden_states else None
        for layer in self.layers:
            if hidden is not None:
                hidden.append(x)
            if self.gradient_checkpointing and self.training:
                x = self._gradient_checkpointing_func(layer.__call__, x, seqs, position_embeddings)
            else:
                x = layer(x, seqs, position_embeddings)
        if hidden is not None:
            hidden.append(x)
        return x, None if hidden is None else tuple(hidden)


class OneVisionEncoderPoolingHead(nn.Module):
    """A learned probe attends over all tokens (torch MHA); ``y = a + MLP(RMSNorm(a))``; returns ``y[:, 0]``."""

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__()
        self.probe = nn.Parameter(torch.empty(1, 1, config.hidden_size))
        self.attention = nn.MultiheadAttention(config.hidden_size, config.num_attention_heads, batch_first=True)
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = OneVisionEncoderMLP(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        probe = self.probe.expand(hidden_states.shape[0], -1, -1).to(hidden_states.dtype)
        a = self.attention(probe, hidden_states, hidden_states, need_weights=False)[0]
        return (a + self.mlp(self.norm(a)))[:, 0]

    def forward_packed(self, x: torch.Tensor, seqs: PackedSeqs) -> torch.Tensor:
        """``[N_total, D]`` → ``[B, D]``, one probe per segment."""
        if seqs.uniform:
            return self(x.view(len(seqs.lengths), seqs.lengths[0], -1))
        return torch.cat([self(part[None]) for part in x.split(seqs.lengths)], 0)


class OneVisionEncoderPreTrainedModel(PreTrainedModel):
    """transformers plumbing: config class, supported attention backends, weight init."""

    config_class = OneVisionEncoderConfig
    base_model_prefix = "onevision_encoder"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["OneVisionEncoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True  # transformers 5
    _supports_flash_attn_2 = True  # transformers 4.x

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
            nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention):
            nn.init.normal_(module.in_proj_weight, mean=0.0, std=std)
            nn.init.zeros_(module.in_proj_bias)
        elif isinstance(module, OneVisionEncoderPoolingHead):
            nn.init.normal_(module.probe, mean=0.0, std=std)


@dataclass
class OneVisionEncoderPackedOutput(ModelOutput):
    """Output of :meth:`OneVisionEncoderModel.forward_packed`: tokens of all items packed along dim 0."""

    last_hidden_state: torch.Tensor | None = None
    """[N_total, D] after ``layernorm_post``; item ``i`` is rows ``cu_seqlens[i]:cu_seqlens[i+1]``."""
    pooler_output: torch.Tensor | None = None
    """[B, D] from the attention-pooling head (None without a head)."""
    hidden_states: tuple[torch.Tensor, ...] | None = None
    """num_hidden_layers + 1 tensors [N_total, D] when requested."""
    cu_seqlens: torch.Tensor | None = None
    """int32 [B+1] segment offsets."""

    def split(self) -> list[torch.Tensor]:
        """``last_hidden_state`` cut back into one ``[N_i, D]`` tensor per item."""
        return list(self.last_hidden_state.split(torch.diff(self.cu_seqlens).tolist()))


class OneVisionEncoderModel(OneVisionEncoderPreTrainedModel):
    """OneVision-Encoder: ``forward(pixel_values, visible_indices=None, patch_positions=None, ...)``.

    ``pixel_values`` is ``[B, C, H, W]`` (an image, t on a 1-slot grid) or ``[B, C, T, H, W]`` (a clip, t on the
    ``rope_temporal_size``-slot grid). ``visible_indices [B, N]`` are flat ``t·Hp·Wp + h·Wp + w`` indices into that
    grid; ``patch_positions [B, N, 3]`` gives ``(t, h, w)`` directly (and wins for the RoPE if both are given).
    """

    def __init__(self, config: OneVisionEncoderConfig):
        super().__init__(config)
        check_config(config)
        self.embeddings = OneVisionEncoderEmbeddings(config)
        self.layernorm_pre = _norm(config)
        self.encoder = OneVisionEncoderEncoder(config)
        self.video_rope = VideoRotaryEmbedding(config)
        self.layernorm_post = _norm(config) if config.use_head else None
        self.head = OneVisionEncoderPoolingHead(config) if config.use_head else None
        self.post_init()

    def set_attn_implementation(self, attn_implementation: str, **kwargs) -> None:
        """Switch the attention backend in place (``"sdpa"``, ``"eager"``, ``"flash_attention_2"``, ``"auto"``),
        checked against the model's device and dtype."""
        param = next(self.parameters())
        self.config._attn_implementation = resolve_attn_implementation(
            attn_implementation, device=param.device, dtype=param.dtype
        )

    def forward(
        self,
        pixel_values: torch.Tensor,
        visible_indices: torch.Tensor | None = None,
        patch_positions: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPooling | tuple:
        """Encode a batch whose items have the same token count N (use :meth:`forward_packed` otherwise)."""
        if output_attentions:
            raise ValueError("output_attentions is not supported (attention runs packed, without weights).")
        if output_hidden_states is None:
            output_hidden_states = bool(getattr(self.config, "output_hidden_states", False))
        tokens, positions = self._embed(pixel_values, visible_indices, patch_positions)
        b, n, d = tokens.shape
        seqs = PackedSeqs.from_counts([n] * b, device=tokens.device)
        last, pooled, hidden = self._encode(tokens.reshape(b * n, d), positions.reshape(b * n, 3), seqs,
                                            output_hidden_states)
        last = last.view(b, n, d)
        hidden = None if hidden is None else tuple(h.view(b, n, d) for h in hidden)
        if return_dict is False:
            return tuple(v for v in (last, pooled, hidden) if v is not None)
        return BaseModelOutputWithPooling(last_hidden_state=last, pooler_output=pooled, hidden_states=hidden)

    def forward_packed(
        self,
        pixel_values: Sequence[torch.Tensor],
        visible_indices: Sequence[torch.Tensor | None] | None = None,
        patch_positions: Sequence[torch.Tensor | None] | None = None,
        output_hidden_states: bool = False,
    ) -> OneVisionEncoderPackedOutput:
        """Encode items with different token counts (or canvas sizes) in one pass, packed without padding.

        Each item is what :meth:`forward` takes with batch size 1 (``[1, C, T, H, W]`` or ``[1, C, H, W]``, indices
        ``[1, N]`` or ``[N]``, positions ``[1, N, 3]`` or ``[N, 3]``); item ``i`` gives the same tokens as
        ``forward`` on it alone.
        """
        count = len(pixel_values)
        indices = list(visible_indices) if visible_indices is not None else [None] * count
        positions_in = list(patch_positions) if patch_positions is not None else [None] * count
        if not count or len(indices) != count or len(positions_in) != count:
            raise ValueError("forward_packed needs one visible_indices / patch_positions entry (or None) per item.")
        tokens, positions = [], []
        for pv, idx, pos in zip(pixel_values, indices, positions_in, strict=True):
            if pv.shape[0] != 1:
                raise ValueError(f"forward_packed items must have batch size 1, got pixel_values {tuple(pv.shape)}.")
            t, p = self._embed(pv, None if idx is None else idx.reshape(1, -1),
                               None if pos is None else pos.reshape(1, -1, 3))
            tokens.append(t[0])
            positions.append(p[0])
        seqs = PackedSeqs.from_counts([t.shape[0] for t in tokens], device=tokens[0].device)
        last, pooled, hidden = self._encode(torch.cat(tokens), torch.cat(positions), seqs, output_hidden_states)
        return OneVisionEncoderPackedOutput(last, pooled, hidden, seqs.cu_seqlens)

    def _embed(self, pixel_values, visible_indices, patch_positions) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch-embed, gather (sparse mode), pre-norm → tokens ``[B, N, D]`` and float positions ``[B, N, 3]``."""
        if pixel_values.dim() not in (4, 5):
            raise ValueError(f"pixel_values must be [B, C, H, W] or [B, C, T, H, W], got {tuple(pixel_values.shape)}.")
        video = pixel_values.dim() == 5
        clip = pixel_values if video else pixel_values.unsqueeze(2)
        b, _, t, h, w = clip.shape
        grid_h, grid_w = h // self.config.patch_size, w // self.config.patch_size
        if grid_h < 1 or grid_w < 1:
            raise ValueError(f"pixel_values {h}x{w} is smaller than one {self.config.patch_size}px patch.")
        total = t * grid_h * grid_w
        t_rope = (self.config.rope_temporal_size or t) if video else 1
        embeds = self.embeddings(clip)
        device = embeds.device
        if visible_indices is None:
            n = total
            idx = torch.arange(total, device=device).expand(b, -1)
        else:
            idx = visible_indices.to(device=device, dtype=torch.int64)
            idx = idx.expand(b, -1) if idx.dim() == 1 else idx
            if idx.dim() != 2 or idx.shape[0] != b:
                raise ValueError(f"visible_indices must be [B, N] with B={b}, got {tuple(visible_indices.shape)}.")
            n = idx.shape[1]
            # sparse mode gathers from the clip's patches; mosaic mode only reads positions on the RoPE grid
            limit, what = (total, "patches of the clip") if n != total else (
                t_rope * grid_h * grid_w, f"the {t_rope}x{grid_h}x{grid_w} RoPE grid")
            if n == 0 or int(idx.min()) < 0 or int(idx.max()) >= limit:
                raise ValueError(f"visible_indices must lie in [0, {limit}) ({what}).")
        tokens = embeds if n == total else embeds.gather(1, idx[..., None].expand(-1, -1, embeds.shape[-1]))
        if patch_positions is not None:
            positions = patch_positions.to(device=device, dtype=torch.float32)
            positions = positions.expand(b, -1, -1) if positions.dim() == 2 else positions
            if positions.shape != (b, n, 3):
                raise ValueError(
                    f"patch_positions must be [B, N, 3] = [{b}, {n}, 3], got {tuple(patch_positions.shape)}.")
        else:
            positions = rope_positions_thw(idx, (t_rope, grid_h, grid_w)).to(torch.float32)
        return self.layernorm_pre(tokens), positions

    def _encode(self, tokens, positions, seqs: PackedSeqs, output_hidden_states: bool):
        """Blocks + post-norm + head on packed tokens ``[N_total, D]``; positions ``[N_total, 3]``."""
        angles = gather_rope(positions, self.video_rope.inv_freqs(tokens.device))
        angles = torch.cat((angles, angles), dim=-1)  # F = [f, f]: half-split layout, rotated in interleaved pairs
        rope = (angles.cos()[:, None, :], angles.sin()[:, None, :])
        x, hidden = self.encoder(tokens, seqs, rope, output_hidden_states)
        if self.layernorm_post is not None:
            x = self.layernorm_post(x)
        pooled = self.head.forward_packed(x, seqs) if self.head is not None else None
        return x, pooled, hidden


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a saved state dict onto :class:`OneVisionEncoderModel` names.

    In order: (1) locate the encoder by its anchor key ``embeddings.patch_embedding.weight`` and strip whatever
    wrapper prefix precedes it (``model.``, ``vision_tower.``, ``model.vision_tower.``, ...), dropping keys outside
    that prefix (a LLaVA-style checkpoint's language model); (2) drop ``video_rope.*`` buffers some exporters save.
    """
    anchor = "embeddings.patch_embedding.weight"
    prefixes = sorted({key[: -len(anchor)] for key in state_dict if key.endswith(anchor)})
    if len(prefixes) > 1:
        raise ValueError(f"The checkpoint holds several encoders (prefixes {prefixes}); extract one first.")
    prefix = prefixes[0] if prefixes else ""
    out = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    return {key: value for key, value in out.items() if not key.startswith("video_rope.")}


def register_auto_classes() -> None:
    """Register ``model_type="onevision_encoder"`` with transformers' AutoConfig / AutoModel (done on import), so
    ``AutoModel.from_pretrained(..., trust_remote_code=False)`` builds this implementation."""
    try:
        AutoConfig.register(OneVisionEncoderConfig.model_type, OneVisionEncoderConfig, exist_ok=True)
        AutoModel.register(OneVisionEncoderConfig, OneVisionEncoderModel, exist_ok=True)
    except ValueError as exc:  # a future transformers shipping its own "onevision_encoder"
        logger.warning("Could not register OneVision-Encoder with transformers' Auto classes: %s", exc)


register_auto_classes()
