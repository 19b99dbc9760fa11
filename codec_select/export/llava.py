"""Stage-2 LLaVA export: mosaic images, ``positions_thw.npy`` and the training JSONL line of one selection.

The OneVision-Encoder LLaVA pipeline feeds a video as 8 square images plus the (t, h, w) RoPE coordinate of every
patch token. With the ``llava576`` geometry and the default budget (8 × 1296 cells, first frame kept whole):

- the K kept cells, sorted by (t, h, w), are cut into chunks of Hp·Wp = 1296 rows;
- image ``i`` places row ``1296·i + j`` at cell ``(j // 36, j % 36)``, its pixels taken from the letterboxed frame
  ``frame_ids[t]`` at ``(16h, 16w)``; image 0 is therefore the full letterboxed first frame;
- ``positions_thw.npy`` (int32 [K, 3]) holds the rows in that order: row ``r`` is the coordinate of token ``r`` of
  the 8 images' patch sequence (image-major, then row-major).

Files per sample, named as the reference's stage 2: ``sample_{id}__{stem}__{sha1(video)[:8]}/{stem}_{i:03d}.jpg``
(JPEG quality 95, or lossless PNG) and ``positions_thw.npy``, then ``record.json`` (the JSONL line) written last, so
its presence means the sample is complete. The code works for any geometry whose K is a multiple of Hp·Wp.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import numpy as np

from ..decode.pixels import slot_frames
from ..selection import NUM_SLOTS, Selection
from .reference import atomic_write_bytes

__all__ = [
    "IMAGE_TOKEN",
    "VIDEO_TOKEN",
    "RECORD_NAME",
    "mosaic_images",
    "llava_dir_name",
    "video_to_image_tokens",
    "llava_record",
    "write_llava",
    "read_llava",
]

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
RECORD_NAME = "record.json"
"""Per-sample JSONL line, written last: its presence marks a complete sample (batch mode resumes on it)."""


def _sorted_positions(selection: Selection) -> np.ndarray:
    """int32 [K, 3] (t, h, w) sorted lexicographically (``visible_indices`` is sorted, so this is a view of it)."""
    return selection.positions_thw  # flat index order == (t, h, w) order


def _num_images(selection: Selection) -> int:
    cells = selection.geometry.cells
    if selection.budget % cells:
        raise ValueError(
            f"Invalid budget ({selection.budget}) for mosaics: it must be a multiple of the {cells} cells per image "
            f"(e.g. {8 * cells} for 8 images)."
        )
    return selection.budget // cells


def mosaic_images(selection: Selection, canvases: np.ndarray | None = None) -> np.ndarray:
    """Pack the kept cells into K / (Hp·Wp) mosaic images (uint8 ``[n, canvas_h, canvas_w, 3]``).

    ``canvases``: uint8 ``[64, canvas_h, canvas_w, 3]``, the canvas frame of every slot (default: decoded here,
    only the slots that hold a kept cell). Row ``r`` of :attr:`Selection.positions_thw` lands in image
    ``r // (Hp·Wp)`` at cell ``divmod(r % (Hp·Wp), Wp)``.
    """
    g = selection.geometry
    n = _num_images(selection)
    pos = _sorted_positions(selection)
    p, hp, wp = g.patch, g.grid_h, g.grid_w
    if canvases is None:
        used = np.unique(pos[:, 0])
        stack = slot_frames(selection, slots=used)
        row_of_slot = np.full(NUM_SLOTS, -1, np.int64)
        row_of_slot[used] = np.arange(used.size)
    else:
        stack = np.asarray(canvases)
        if stack.shape[:3] != (NUM_SLOTS, g.canvas_h, g.canvas_w):
            raise ValueError(f"canvases must be [64, {g.canvas_h}, {g.canvas_w}, C], got {list(stack.shape)}.")
        row_of_slot = np.arange(NUM_SLOTS)
    channels = stack.shape[3:]
    # [U, H, W, C] → [U, Hp, Wp, p, p, C]: one patch per (frame, h, w), then pick the kept ones in order.
    cells = stack.reshape((stack.shape[0], hp, p, wp, p) + channels).swapaxes(2, 3)
    picked = cells[row_of_slot[pos[:, 0]], pos[:, 1], pos[:, 2]]  # [K, p, p, C]
    out = picked.reshape((n, hp, wp, p, p) + channels).swapaxes(2, 3)
    return np.ascontiguousarray(out.reshape((n, hp * p, wp * p) + channels))


def llava_dir_name(video: str, sample_id: str | int | None = None) -> str:
    """``sample_{id}__{stem}__{sha1(video)[:8]}``: the reference's stage-2 folder name for ``video`` (the path string
    the selection was made from, :attr:`Selection.video`)."""
    stem = Path(video).stem
    sid = stem if sample_id is None else str(sample_id)
    return f"sample_{sid}__{stem}__{hashlib.sha1(str(video).encode()).hexdigest()[:8]}"


def video_to_image_tokens(conversations: list[dict] | None, num_images: int) -> list[dict]:
    """Copy of ``conversations`` whose first human turn has its first ``<video>`` replaced by ``num_images``
    ``<image>`` lines (prepended to that turn when it has no ``<video>``; a lone human turn when there is none)."""
    tokens = "\n".join([IMAGE_TOKEN] * num_images)
    convs = copy.deepcopy(conversations) if conversations else [{"from": "human", "value": VIDEO_TOKEN}]
    for turn in convs:
        if turn.get("from") in ("human", "user"):
            value = str(turn.get("value", ""))
            if VIDEO_TOKEN in value:
                turn["value"] = value.replace(VIDEO_TOKEN, tokens, 1)
            else:
                turn["value"] = tokens + ("\n" + value if value else "")
            return convs
    return [{"from": "human", "value": tokens}, *convs]


def llava_record(
    sample_id: str, conversations: list[dict] | None, images: list[str], positions_thw: str
) -> dict:
    """The training JSONL line: ``{"id", "conversations", "image": [paths], "positions_thw": path}``."""
    return {
        "id": sample_id,
        "conversations": video_to_image_tokens(conversations, len(images)),
        "image": list(images),
        "positions_thw": positions_thw,
    }


def _atomic_save_image(path: Path, image: np.ndarray, fmt: str, quality: int) -> None:
    from PIL import Image

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if fmt == "jpg":
        # 4:4:4 keeps chroma per pixel: mosaic cells come from unrelated frames, 4:2:0 would bleed colour across them.
        Image.fromarray(image).save(tmp, format="JPEG", quality=quality, subsampling=0)
    else:
        Image.fromarray(image).save(tmp, format="PNG", compress_level=1)
    tmp.replace(path)


def write_llava(
    selection: Selection,
    out_dir: str | os.PathLike,
    *,
    sample_id: str | int | None = None,
    conversations: list[dict] | None = None,
    image_format: Literal["jpg", "png"] = "jpg",
    quality: int = 95,
    canvases: np.ndarray | None = None,
    relative_to: str | os.PathLike | None = None,
) -> dict:
    """Write one sample's stage-2 files into ``out_dir/<llava_dir_name>/`` and return its JSONL record.

    Args:
        selection: a selection whose budget is a multiple of Hp·Wp (``llava576`` with its default K gives 8 images).
        sample_id: the ``id`` of the record (default: the video's stem).
        conversations: the sample's LLaVA conversation turns; the first ``<video>`` becomes the ``<image>`` lines.
        image_format: ``"jpg"`` (quality ``quality``, 4:4:4) or ``"png"`` (lossless, for pixel-exact checks).
        canvases: the canvas frames of all 64 slots if you already have them (see :func:`mosaic_images`).
        relative_to: write the record's paths relative to this folder (default: absolute paths).

    Returns the record; ``record["image"]`` and ``record["positions_thw"]`` are the written paths.
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"Invalid image_format ({image_format!r}). Supported values are jpg, png.")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"Invalid quality ({quality!r}). It must be between 1 and 100.")
    images = mosaic_images(selection, canvases)
    sid = Path(selection.video).stem if sample_id is None else str(sample_id)
    folder = Path(out_dir) / llava_dir_name(selection.video, sid)
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(selection.video).stem
    paths = [folder / f"{stem}_{i:03d}.{image_format}" for i in range(images.shape[0])]
    for path, image in zip(paths, images):
        _atomic_save_image(path, image, image_format, int(quality))
    pos_path = folder / "positions_thw.npy"
    tmp = pos_path.with_name(f".{pos_path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, _sorted_positions(selection).astype(np.int32))
    tmp.replace(pos_path)

    def shown(p: Path) -> str:
        return os.path.relpath(p, relative_to) if relative_to is not None else str(p.resolve())

    record = llava_record(sid, conversations, [shown(p) for p in paths], shown(pos_path))
    atomic_write_bytes(folder / RECORD_NAME, json.dumps(record).encode())  # last: its presence means "done"
    return record


def read_llava(
    record: dict | str | os.PathLike, root: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read a sample back: ``(images uint8 [n, H, W, 3], positions_thw int32 [K, 3])``.

    ``record`` is a JSONL record (dict) or the path of a sample's ``record.json``; relative paths in it resolve
    against ``root`` (default: the current folder for a dict, the output folder for a ``record.json``).
    """
    from PIL import Image

    if not isinstance(record, dict):
        rec_path = Path(record)
        record = json.loads(rec_path.read_text())
        root = root if root is not None else rec_path.parent.parent
    base = Path(root) if root is not None else Path.cwd()
    images = np.stack([np.asarray(Image.open(base / p).convert("RGB")) for p in record["image"]])
    return images, np.load(base / record["positions_thw"])
