"""Where the weights come from: a local folder, or a Hugging Face Hub snapshot holding only JSON and safetensors.

No torch here (the CLI imports it for the error type). Nothing is ever unpickled and no remote code is fetched:
the download is restricted to ``*.json`` and ``*.safetensors``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import CodecSelectError

__all__ = ["DEFAULT_MODEL_ID", "HUB_ALIASES", "WeightsNotFoundError", "resolve_checkpoint_dir", "weight_files"]

DEFAULT_MODEL_ID = "lmms-lab-encoder/onevision-encoder-large"
"""The published OneVision-Encoder large checkpoint (ViT-L/14, 24 layers, 1024 wide)."""

HUB_ALIASES: dict[str, tuple[str, ...]] = {
    "lmms-lab/onevision-encoder-large": ("lmms-lab-encoder/onevision-encoder-large",),
    "lmms-lab-encoder/onevision-encoder-large": ("lmms-lab/onevision-encoder-large",),
}
"""Hub ids that name the same weights; tried in order when the first one is not found."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class WeightsNotFoundError(CodecSelectError, OSError):
    """The encoder weights are neither a local folder nor reachable on (or cached from) the Hugging Face Hub."""


def _how_to_get(repo_id: str) -> str:
    return (
        f"Download them once with:\n"
        f'    hf download {repo_id} --include "*.json" "*.safetensors"\n'
        f"(older huggingface_hub: huggingface-cli download {repo_id} ...), then run again: with HF_HUB_OFFLINE=1 "
        f"the cached copy is used without network. Or pass a local folder holding config.json and "
        f"model.safetensors (--model /path/to/folder)."
    )


def resolve_checkpoint_dir(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> Path:
    """Return a local folder with ``config.json`` and the safetensors weights for ``name_or_path``.

    A path to an existing folder is used as is. A Hub id (``owner/name``) is fetched with
    ``huggingface_hub.snapshot_download(allow_patterns=["*.json", "*.safetensors"])`` (from the cache when offline);
    aliases in :data:`HUB_ALIASES` are tried when the id itself is not found. Raises :class:`WeightsNotFoundError`
    saying how to get the weights.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise WeightsNotFoundError(
            f"{text} is a file; pass the folder that holds config.json and model.safetensors, or a Hub id."
        )
    if not _HUB_ID.match(text) or text.startswith((".", "~")):
        raise WeightsNotFoundError(
            f"{text}: no such folder. Pass a folder with config.json + model.safetensors, or a Hub id."
        )
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
    except ImportError as exc:
        raise ImportError('Loading from the Hub needs huggingface_hub: pip install "codec-select[encoder]"') from exc
    reasons = []
    for repo_id in (text, *HUB_ALIASES.get(text, ())):
        try:
            folder = snapshot_download(
                repo_id, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                allow_patterns=["*.json", "*.safetensors"],
            )
        except (RepositoryNotFoundError, RevisionNotFoundError) as exc:  # includes gated/private: try the alias
            kind = "gated" if isinstance(exc, GatedRepoError) else "not found"
            reasons.append(f"{repo_id}: {kind} on the Hub")
            continue
        except Exception as exc:  # offline, no cache, DNS, proxy, HTTP 5xx: the hub raises a zoo of types here
            reasons.append(f"{repo_id}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip())
            continue
        return Path(folder)
    raise WeightsNotFoundError(
        f"Could not get the OneVision-Encoder weights {text!r} (no local folder of that name; "
        f"{'; '.join(reasons)}).\n{_how_to_get(DEFAULT_MODEL_ID if text in HUB_ALIASES else text)}"
    )


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a checkpoint folder: ``model.safetensors``, or the shards listed by
    ``model.safetensors.index.json``. Pickle checkpoints (``*.bin``, ``*.pt``) are refused."""
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        import json

        weight_map = json.loads(index.read_text()).get("weight_map", {})
        shards = sorted({folder / name for name in weight_map.values()})
        missing = [s.name for s in shards if not s.is_file()]
        if not shards or missing:
            raise WeightsNotFoundError(
                f"{index}: shards missing ({', '.join(missing) or 'empty weight_map'}); download the folder again."
            )
        return shards
    others = sorted(p.name for p in folder.glob("*.safetensors"))
    if len(others) == 1:
        return [folder / others[0]]
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
    hint = (
        f" It holds pickle weights ({', '.join(pickles)}), which codec_select never loads; convert them to "
        "safetensors (safetensors.torch.save_file) first."
        if pickles else ""
    )
    raise WeightsNotFoundError(f"{folder}: no model.safetensors (or sharded index) found.{hint}")
