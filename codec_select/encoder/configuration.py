"""OneVision-Encoder's configuration (transformers' ``configuration_*.py`` counterpart): the hyper-parameters the
published ``config.json`` carries, and :func:`check_config`, the limits :mod:`.modeling` relies on.

The defaults are the large model (ViT-L/14, 448 px, a 64-slot temporal RoPE grid). Kept apart from the model so
that the config can be read and checked without building any module.
"""

from __future__ import annotations

from transformers import PretrainedConfig

__all__ = ["OneVisionEncoderConfig", "check_config", "NORM_TYPES"]

NORM_TYPES = ("layer_norm", "rms_norm")
"""Supported ``layer_norm_type`` values."""


class OneVisionEncoderConfig(PretrainedConfig):
    """Hyper-parameters of OneVision-Encoder; accepts the published ``config.json`` (defaults = the large model)."""

    model_type = "onevision_encoder"

    def __init__(
        self,
        hidden_size: int = 1024,
        intermediate_size: int = 4096,
        num_hidden_layers: int = 24,
        num_attention_heads: int = 16,
        num_channels: int = 3,
        image_size: int = 448,
        patch_size: int = 14,
        hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-6,
        layer_norm_type: str = "layer_norm",
        attention_dropout: float = 0.0,
        initializer_range: float = 0.02,
        rope_theta: float = 10000.0,
        rope_temporal_size: int | None = 64,
        use_head: bool = True,
        **kwargs,
    ):
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_channels = num_channels
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.layer_norm_type = layer_norm_type
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.rope_theta = rope_theta
        self.rope_temporal_size = rope_temporal_size
        self.use_head = use_head
        super().__init__(**kwargs)


def check_config(config: OneVisionEncoderConfig) -> None:
    """Raise ``ValueError`` for a config the model cannot be built from.

    Checked when the model is built rather than in ``__init__``, because transformers constructs configs with
    defaults and then overwrites attributes (``from_dict``, ``from_pretrained(..., **kwargs)``).
    """
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(f"hidden_size {config.hidden_size} is not a multiple of num_attention_heads "
                         f"{config.num_attention_heads}.")
    half = config.hidden_size // config.num_attention_heads // 2
    if half % 16:
        raise ValueError(f"head_dim {2 * half} must be a multiple of 32 for the 4:6:6 RoPE split (64 in every "
                         "published size); choose hidden_size / num_attention_heads accordingly.")
    if config.layer_norm_type not in NORM_TYPES:
        raise ValueError(
            f"Invalid layer_norm_type ({config.layer_norm_type!r}). Supported values are {', '.join(NORM_TYPES)}."
        )
