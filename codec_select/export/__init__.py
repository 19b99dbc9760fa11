"""Files a selection becomes, one module per consumer:

- :mod:`.reference`: the OneVision stage-1 layout (``visidx_thw.npy``, ``frame_ids.npy``, ``meta.json``);
- :mod:`.llava`: LLaVA-OneVision stage-2 mosaics, ``positions_thw.npy`` and the JSONL record;
- :mod:`.llava_ov2` (with :mod:`.ov2_frames`, :mod:`.ov2_readiness`, :mod:`.ov2_blocks`, :mod:`.ov2_processor`):
  LLaVA-OneVision-2 canvases, ``src_patch_position.npy`` and the Qwen2-VL processor inputs.

Every writer reads pixels through :func:`codec_select.slot_frames` (or the decode layer, by timestamp) and writes
atomically.
"""

from __future__ import annotations

from .reference import atomic_write_bytes, read_reference, reference_prefix, reference_rows, write_reference

__all__ = ["atomic_write_bytes", "read_reference", "reference_prefix", "reference_rows", "write_reference"]
