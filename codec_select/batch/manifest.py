"""Batch inputs: the manifest (JSONL / JSON / CSV / text of videos and ids), its items, and the run summary."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CodecSelectError

__all__ = ["BatchItem", "BatchSummary", "WorkerCrashedError", "read_manifest", "build_items", "FORMATS", "ENGINES",
           "FAILURES_NAME", "LLAVA_JSONL", "PARQUET_DIR"]

FORMATS = ("npz", "reference", "llava", "parquet", "llava-ov2")
ENGINES = ("local", "ray")
FAILURES_NAME = "failures.jsonl"
LLAVA_JSONL = "training_codec.jsonl"
PARQUET_DIR = "parquet"
_VIDEO_KEYS = ("video", "path", "video_path", "file")
_ID_KEYS = ("id", "sample_id")


class WorkerCrashedError(CodecSelectError, RuntimeError):
    """A batch worker process died (segfault, out of memory) while selecting a video; the batch went on."""


@dataclass(frozen=True)
class BatchItem:
    """One manifest entry."""

    id: str
    """Sample id (the manifest's ``id``; the file stem when absent)."""
    video: str
    """Video path (relative paths resolved against the video root)."""
    extra: dict = field(default_factory=dict)
    """The entry's other keys (``conversations`` for LLaVA, ``start``/``end`` windows, labels, ...)."""

    @property
    def name(self) -> str:
        """File-safe form of :attr:`id` (unchanged when it is already safe, else sanitised + a hash suffix)."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.id).lstrip(".") or "_"
        if safe == self.id and len(safe) <= 150:
            return safe
        return f"{safe[:150]}-{hashlib.sha1(self.id.encode()).hexdigest()[:8]}"


@dataclass
class BatchSummary:
    """What a batch run did."""

    total: int = 0
    """Videos in the manifest."""
    ok: int = 0
    """Selected and written in this run."""
    failed: int = 0
    """Failed in this run."""
    skipped: int = 0
    """Already done before this run (resumed)."""
    frames: int = 0
    """Frames decoded by the videos of this run that succeeded."""
    seconds: float = 0.0
    """Wall time of the run, worker start-up included."""
    startup_seconds: float = 0.0
    """Time until the first result came back (worker start, imports, numba warm-up, first video)."""
    workers: int = 1
    engine: str = "local"
    failures: int = 0
    """Entries of this manifest left in ``failures.jsonl`` after the run (0 → exit code 0)."""

    @property
    def videos_per_s(self) -> float:
        return (self.ok + self.failed) / self.seconds if self.seconds else 0.0

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        return (
            f"{self.ok} ok, {self.failed} failed, {self.skipped} already done (of {self.total}) "
            f"in {self.seconds:.1f} s "
            f"with {self.workers} {self.engine} worker(s): {self.videos_per_s:.2f} videos/s, "
            f"{self.frames_per_s:.0f} frames/s"
        )


# --------------------------------------------------------------------------------------------------------------
# Manifest


def _item(entry, row: int, root: Path) -> tuple[str | None, str, dict]:
    if isinstance(entry, str):
        entry = {"video": entry}
    if not isinstance(entry, dict):
        raise ValueError(f"Manifest entry {row} is {type(entry).__name__}; expected an object or a path string.")
    key = next((k for k in _VIDEO_KEYS if entry.get(k) not in (None, "")), None)
    if key is None:
        raise ValueError(f"Manifest entry {row} has no video path (keys tried: {', '.join(_VIDEO_KEYS)}).")
    video = os.path.expanduser(str(entry[key]))
    if "://" not in video and not os.path.isabs(video):
        video = os.path.normpath(root / video)
    sid = next((str(entry[k]) for k in _ID_KEYS if entry.get(k) not in (None, "")), None)
    extra = {k: v for k, v in entry.items() if k != key and k not in _ID_KEYS}
    return sid, video, extra


def read_manifest(path: str | os.PathLike, *, video_root: str | os.PathLike | None = None) -> list[BatchItem]:
    """Read a JSONL / JSON / CSV / plain-text manifest of videos.

    - JSONL: one object per line, ``{"id": ..., "video": path, ...}`` (the reference's keys; ``path``,
      ``video_path`` or ``file`` also work), or a bare path string;
    - JSON: a list of such objects or strings;
    - CSV: a header row naming a ``video`` (or ``path``) column and optionally ``id``; a file without such a
      header is read as one path per row;
    - anything else: one path per line (``#`` comments).

    Relative paths resolve against ``video_root`` (default: the manifest's folder). Missing ids become the file
    stem (made unique with a hash of the path). Duplicate ids raise ``ValueError``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Manifest {path} does not exist or is not a file.")
    root = Path(os.path.abspath(video_root if video_root is not None else path.parent))
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    entries: list = []
    if suffix in (".jsonl", ".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg}).") from None
    elif suffix == ".json":
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from None
        if not isinstance(entries, list):
            raise ValueError(f"{path}: a JSON manifest must be a list of objects or paths.")
    elif suffix in (".csv", ".tsv"):
        rows = list(csv.reader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ","))
        rows = [r for r in rows if any(c.strip() for c in r)]
        header = [c.strip() for c in rows[0]] if rows else []
        if set(header) & set(_VIDEO_KEYS):
            entries = [dict(zip(header, (c.strip() for c in r))) for r in rows[1:]]
        else:
            entries = [r[0].strip() for r in rows]
    else:
        entries = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return build_items(entries, root, str(path))


def build_items(entries: list, root: Path, label: str) -> list[BatchItem]:
    parsed = [
        (e.id, e.video, e.extra) if isinstance(e, BatchItem) else _item(e, n, root) for n, e in enumerate(entries, 1)
    ]
    seen: set[str] = set()
    for sid in (sid for sid, _, _ in parsed if sid is not None):
        if sid in seen:
            raise ValueError(f"{label}: duplicate id {sid!r}; every manifest entry needs its own id.")
        seen.add(sid)
    from collections import Counter

    stems = Counter(Path(v).stem for sid, v, _ in parsed if sid is None)
    paths = Counter(v for sid, v, _ in parsed if sid is None)
    items = []
    for row, (sid, video, extra) in enumerate(parsed, 1):
        if sid is None:  # the stem; made unique by a hash of the path, and the row for a repeated path
            sid = Path(video).stem
            if stems[sid] > 1 or sid in seen:
                sid = f"{sid}-{hashlib.sha1(video.encode()).hexdigest()[:8]}"
                if paths[video] > 1:
                    sid = f"{sid}-{row}"
        items.append(BatchItem(sid, video, extra))
    return items
