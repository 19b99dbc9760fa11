"""Loading OneVision-Encoder weights: safetensors only, strict keys, no remote code, dtype and device on the way in.

The model is built on the meta device (no random init of 315 M parameters), the checkpoint tensors are read
straight onto the target device, passed through :func:`~.modeling.checkpoint_filter_fn`, checked key by key and
shape by shape, then assigned.
"""

from __future__ import annotations

import json
import os

import torch

from ._hub import DEFAULT_MODEL_ID, WeightsNotFoundError, resolve_checkpoint_dir, weight_files
from .attention import resolve_attn_implementation
from .configuration import OneVisionEncoderConfig
from .modeling import OneVisionEncoderModel, checkpoint_filter_fn

__all__ = ["load_encoder", "count_parameters", "resolve_dtype"]


def count_parameters(config: OneVisionEncoderConfig | None = None) -> int:
    """Number of parameters for ``config`` (default: the large model), computed on the meta device (no memory)."""
    with torch.device("meta"):
        model = OneVisionEncoderModel(config if config is not None else OneVisionEncoderConfig())
    return sum(p.numel() for p in model.parameters())


_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}


def resolve_dtype(dtype, device: torch.device) -> torch.dtype | None:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return None
    if dtype not in _DTYPES:
        raise ValueError(
            f"Invalid dtype ({dtype!r}). Supported values are a torch.dtype, 'auto', {', '.join(_DTYPES)}."
        )
    return _DTYPES[dtype]


def _read_config(folder) -> OneVisionEncoderConfig:
    path = folder / "config.json"
    if not path.is_file():
        raise WeightsNotFoundError(f"{folder}: no config.json; it is not a OneVision-Encoder checkpoint folder.")
    raw = json.loads(path.read_text())
    if raw.get("model_type", OneVisionEncoderConfig.model_type) != OneVisionEncoderConfig.model_type:
        raise ValueError(f"{path}: model_type {raw['model_type']!r} is not {OneVisionEncoderConfig.model_type!r}.")
    raw.pop("model_type", None)
    return OneVisionEncoderConfig(**raw)


def load_encoder(
    name_or_path: str | os.PathLike = DEFAULT_MODEL_ID,
    *,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    attn_implementation: str = "sdpa",
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> OneVisionEncoderModel:
    """Load OneVision-Encoder weights from a Hub id or a local folder (safetensors only, strict keys, no remote code).

    Args:
        name_or_path: ``"lmms-lab-encoder/onevision-encoder-large"`` (also ``"lmms-lab/..."``) or a folder holding
            ``config.json`` and ``model.safetensors`` (or a sharded ``model.safetensors.index.json``).
        dtype: parameter dtype; default bfloat16 on CUDA, float32 elsewhere; ``"auto"`` keeps the stored dtype.
        device: default ``"cuda"`` when available, else ``"cpu"``.
        attn_implementation: ``"sdpa"`` (default), ``"eager"``, ``"flash_attention_2"`` or ``"auto"``.
        revision, cache_dir, local_files_only: passed to ``huggingface_hub.snapshot_download``.

    Returns the model in eval mode. Raises :class:`WeightsNotFoundError` (saying how to download the weights) when
    they are neither local nor reachable, and ``ValueError`` listing the keys when the checkpoint does not match.
    """
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    want = resolve_dtype(dtype, dev)
    impl = resolve_attn_implementation(attn_implementation, device=dev, dtype=want)
    folder = resolve_checkpoint_dir(name_or_path, revision=revision, cache_dir=cache_dir,
                                    local_files_only=local_files_only)
    config = _read_config(folder)
    config._attn_implementation = impl
    config.name_or_path = os.fspath(name_or_path)
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for file in weight_files(folder):
        state.update(load_file(file, device=str(dev)))
    state = checkpoint_filter_fn(state)
    with torch.device("meta"):
        model = OneVisionEncoderModel(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k]))
    if missing or unexpected or wrong:
        raise ValueError(
            f"{folder}: checkpoint does not match {type(model).__name__} ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(wrong)} wrong shape): missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"wrong shape {[(k, tuple(state[k].shape), tuple(expected[k])) for k in wrong[:5]]}."
        )
    if want is not None:
        state = {k: v.to(want) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
