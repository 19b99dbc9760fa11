"""OneVision-Encoder in plain PyTorch (needs the ``encoder`` extra: torch, transformers, safetensors, huggingface_hub).

Public API::

    from codec_select.encoder import load_encoder
    model = load_encoder("lmms-lab-encoder/onevision-encoder-large", dtype=torch.bfloat16, device="cuda")
    out = model(pixel_values, visible_indices=idx)          # last_hidden_state [B, K, 1024], pooler_output [B, 1024]

Names resolve lazily, so ``import codec_select.encoder`` (and the CLI that imports ``codec_select.encoder._cli``)
does not import torch. Accessing any model name (the config included) imports :mod:`.modeling`, which also registers
``model_type="onevision_encoder"`` with transformers' ``AutoConfig``/``AutoModel``.
"""

from __future__ import annotations

import importlib

from ._hub import DEFAULT_MODEL_ID, WeightsNotFoundError

__all__ = [
    "OneVisionEncoderConfig",
    "OneVisionEncoderModel",
    "OneVisionEncoderPackedOutput",
    "load_encoder",
    "checkpoint_filter_fn",
    "count_parameters",
    "register_auto_classes",
    "ATTENTION_BACKENDS",
    "resolve_attn_implementation",
    "DEFAULT_MODEL_ID",
    "WeightsNotFoundError",
]

_LAZY = {
    # The config is defined in .configuration but resolved through .modeling, so that using it registers
    # the Auto classes as before (``AutoConfig.from_pretrained`` on a published config then works).
    "OneVisionEncoderConfig": ".modeling",
    "OneVisionEncoderModel": ".modeling",
    "OneVisionEncoderPackedOutput": ".modeling",
    "load_encoder": ".loading",
    "checkpoint_filter_fn": ".modeling",
    "count_parameters": ".loading",
    "register_auto_classes": ".modeling",
    "ATTENTION_BACKENDS": ".attention",
    "resolve_attn_implementation": ".attention",
}

INSTALL_HINT = (
    'The encoder needs torch, transformers, safetensors and huggingface_hub: pip install "codec-select[encoder]"'
)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codec_select.encoder' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except ImportError as exc:
        if exc.name in ("torch", "transformers", "safetensors", "huggingface_hub"):
            raise ImportError(f"{INSTALL_HINT} (missing {exc.name}).") from exc
        raise
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
