"""``codec-select batch``: run the selector over a manifest of videos, on a local process pool or on Ray Data.

One bad video never stops a batch: its error class and message land in ``DIR/failures.jsonl`` and the exit code is
1. A partial video (truncated, damaged tail: ``Selection.report.partial``) is a failure too
(``PartialVideoError``), unless ``--allow-partial``; every output carries the report (npz meta, Parquet ``report``
column, as JSON). Outputs are written atomically (temp file, then rename) and a video is *done* when its final file exists, so a
rerun after a crash or a kill skips what is finished and redoes the rest, without duplicates.

Outputs per ``--format`` (one per video):

- ``npz``: ``DIR/<id>.npz`` (:meth:`Selection.save_npz`);
- ``reference``: the OneVision stage-1 files ``DIR/sample_<id>__…{.visidx_thw.npy,.frame_ids.npy,.meta.json}``;
- ``llava``: the stage-2 folder ``DIR/sample_<id>__…/`` (8 mosaics, ``positions_thw.npy``, ``record.json``), and
  ``DIR/training_codec.jsonl`` gathered from every finished sample at the end of each run;
- ``parquet``: rows in ``DIR/parquet/part-*.parquet`` (one row per video; failed videos in ``failed.parquet``);
- ``llava-ov2``: LLaVA-OneVision-2 input ``DIR/<id>/`` (canvases, ``src_patch_position.npy``, ``frame_ids.npy``,
  ``meta.json`` last; :mod:`codec_select.llava_ov2`; no 64-slot selection is run).

The module imports only the standard library at import time (the CLI builds its parser from it); numpy, PyAV,
numba, tqdm, pyarrow and ray are imported where they are used.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CodecSelectError, SelectionTimeoutError

__all__ = [
    "BatchItem", "BatchSummary", "WorkerCrashedError", "read_manifest", "build_items", "run_batch", "configure_worker",
    "add_parser",
    "FORMATS",
]

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


# --------------------------------------------------------------------------------------------------------------
# Per-video work (runs in the workers)


@dataclass(frozen=True)
class _Config:
    out_dir: str
    fmt: str
    select: dict
    image_format: str = "jpg"
    quality: int = 95
    relative_paths: bool = False
    allow_partial: bool = False
    consumer: bool = False
    """The output feeds the encoder: the reference's own selection unless the options ask otherwise."""


CONSUMER_FORMATS = ("reference", "llava")
"""Formats whose selections feed OneVision-Encoder: they default to the geometry's reference recipe
(:func:`codec_select.select.consumer_options`)."""

_WORKER_DECODE_THREADS = 0
"""Decoder threads per video in this process (set by :func:`configure_worker`; 0 = FFmpeg's choice)."""


def worker_select_options(options: dict) -> dict:
    """``options`` plus this worker's decoder-thread setting, unless the caller chose one."""
    out = dict(options)
    if _WORKER_DECODE_THREADS:
        out.setdefault("decode_threads", _WORKER_DECODE_THREADS)
    return out


def configure_worker(numba_threads: int = 1, ffmpeg_threads: int = 1, *, warm: bool = True) -> None:
    """Make this process a good batch / DataLoader worker: ``numba_threads`` numba threads, ``ffmpeg_threads``
    decoder threads for the selector's decode (0 = FFmpeg's choice), and the numba kernels compiled or loaded
    from the cache once, now, instead of inside the first video."""
    if numba_threads:
        import numba

        numba.set_num_threads(max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS)))
    global _WORKER_DECODE_THREADS
    _WORKER_DECODE_THREADS = int(ffmpeg_threads or 0)
    if warm:
        from .kernels import warmup

        warmup()


def _reference_stem(item: BatchItem) -> str:
    """Start of the stage-1 file names of ``item`` (everything before ``_T64_…_K{K}``, see export.reference_prefix)."""
    sid, stem = item.name, Path(item.video).stem
    key = f"{item.video}|{sid}|0"
    sha = hashlib.sha1
    return f"sample_{sid}__{stem}__{sha(item.video.encode()).hexdigest()[:8]}__{sha(key.encode()).hexdigest()[:8]}_T"


def _llava_record_path(item: BatchItem, out: Path) -> Path:
    from .llava import RECORD_NAME, llava_dir_name

    return out / llava_dir_name(item.video, item.name) / RECORD_NAME


def _result(item: BatchItem, seconds: float, sel=None, exc: BaseException | None = None, arrays: bool = False) -> dict:
    """One result row (the Parquet schema; array columns only filled when ``arrays``)."""
    row = {"id": item.id, "video": item.video, "error_class": None, "error": None, "seconds": round(seconds, 6),
           "worker": f"{os.uname().nodename}:{os.getpid()}", "extra": json.dumps(item.extra) if item.extra else None}
    if exc is not None:
        row.update(error_class=type(exc).__name__, error=str(exc) or repr(exc))
        return row
    row.update(
        codec=sel.codec, signals=sel.signals, policy=sel.policy, geometry=sel.geometry.name,
        grid_thw=list(sel.grid_thw), budget=sel.budget, num_frames=sel.num_frames, damaged_frames=sel.damaged_frames,
        timings={k: float(sel.timings.get(k, 0.0)) for k in _TIMING_KEYS}, report=sel.report.to_json(),
    )
    if arrays:
        row.update(
            visible_indices=sel.visible_indices.tolist(), positions_thw=sel.positions_thw.tolist(),
            frame_ids=sel.frame_ids.tolist(), timestamps=sel.timestamps.tolist(),
            selection=json.dumps(sel.to_dict()),
        )
    return row


_TIMING_KEYS = ("decode", "signals", "scoring", "topk", "total")


def _process(item: BatchItem, cfg: _Config) -> dict:
    """Select one video and write its output; never raises for a bad video (the error goes in the row)."""
    from .select import consumer_options, select_patches

    t0 = time.perf_counter()
    out = Path(cfg.out_dir)
    if cfg.fmt == "llava-ov2":
        return _process_ov2(item, cfg, out, t0)
    try:
        options = worker_select_options(cfg.select)
        for key in ("start", "end"):
            if item.extra.get(key) is not None:
                options[key] = float(item.extra[key])
        if cfg.consumer:  # a time window (or any option a recipe does not take) keeps our own selector
            options = consumer_options(options.pop("geometry"), options)
        sel = select_patches(item.video, **options)
        if sel.report.partial and not cfg.allow_partial:
            from .errors import PartialVideoError

            r = sel.report
            raise PartialVideoError(
                f"{item.video}: partial video, {r.partial_reason} ({r.frames_found} frames found, "
                f"{r.frames_declared or 'no count'} declared). Re-download or re-encode it, or pass --allow-partial "
                "to keep what decoded."
            )
        if cfg.fmt == "npz":
            sel.save_npz(out / f"{item.name}.npz")
        elif cfg.fmt == "reference":
            from .export import write_reference

            write_reference(sel, out, sample_id=item.name)
        elif cfg.fmt == "llava":
            from .llava import write_llava

            write_llava(sel, out, sample_id=item.name, conversations=item.extra.get("conversations"),
                        image_format=cfg.image_format, quality=cfg.quality,
                        relative_to=out if cfg.relative_paths else None)
        return _result(item, time.perf_counter() - t0, sel, arrays=cfg.fmt == "parquet")
    except Exception as exc:  # one bad video never stops the batch
        return _result(item, time.perf_counter() - t0, exc=exc)


def _process_ov2(item: BatchItem, cfg: _Config, out: Path, t0: float) -> dict:
    """``--format llava-ov2``: one video's LLaVA-OneVision-2 folder ``out/<name>/`` (meta.json written last)."""
    try:
        from .llava_ov2 import prepare_llava_ov2

        res = prepare_llava_ov2(item.video, out / item.name, image_format=cfg.image_format, quality=cfg.quality,
                                **cfg.select)
    except Exception as exc:  # one bad video never stops the batch
        return _result(item, time.perf_counter() - t0, exc=exc)
    meta = res.meta
    return {"id": item.id, "video": item.video, "error_class": None, "error": None,
            "seconds": round(time.perf_counter() - t0, 6), "worker": f"{os.uname().nodename}:{os.getpid()}",
            "extra": json.dumps(item.extra) if item.extra else None, "codec": meta["metadata"]["codec"],
            "signals": meta["metadata"]["signals"], "policy": meta["config"]["blocks"], "geometry": "qwen",
            "num_frames": int(meta["total_frames"]), "budget": int(meta["total_patches"])}


# --------------------------------------------------------------------------------------------------------------
# Output folder state: what is done, stale temp files, failures, Parquet parts


def _is_temp(name: str) -> bool:
    return (name.startswith(".") and ".tmp" in name) or name.endswith((".tmp.npz", ".tmp"))


class _Store:
    """The output folder: done detection, failures.jsonl, Parquet parts, stale temp files."""

    def __init__(self, out: Path, fmt: str, items: list[BatchItem]):
        self.out, self.fmt, self.items = out, fmt, items
        out.mkdir(parents=True, exist_ok=True)
        self.failures: dict[str, dict] = {}
        fpath = out / FAILURES_NAME
        if fpath.exists():
            for line in fpath.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self.failures[str(rec["id"])] = rec
        self.rows: list[dict] = []
        self.last_flush = time.monotonic()
        self.dirty = False

    def clean_temps(self, todo: list[BatchItem]) -> int:
        """Remove temp files a killed run left behind (top folder, Parquet folder, unfinished LLaVA folders)."""
        folders = [self.out, self.out / PARQUET_DIR]
        if self.fmt == "llava":
            folders += [_llava_record_path(it, self.out).parent for it in todo]
        removed = 0
        for folder in folders:
            if folder.is_dir():
                for entry in os.scandir(folder):
                    if entry.is_file() and _is_temp(entry.name):
                        os.unlink(entry.path)
                        removed += 1
                    elif self.fmt == "llava-ov2" and entry.is_dir() and _is_temp(entry.name):
                        import shutil  # an output folder a killed run left half written

                        shutil.rmtree(entry.path, ignore_errors=True)
                        removed += 1
        return removed

    def done_ids(self) -> set[str]:
        if self.fmt == "npz":
            names = {e.name for e in os.scandir(self.out)}
            return {it.id for it in self.items if f"{it.name}.npz" in names}
        if self.fmt == "reference":
            metas = [e.name for e in os.scandir(self.out) if e.name.endswith(".meta.json") and not _is_temp(e.name)]
            stems = {m[: m.rfind("_T64_") + 2] for m in metas if "_T64_" in m}
            return {it.id for it in self.items if _reference_stem(it) in stems}
        if self.fmt == "llava":
            return {it.id for it in self.items if _llava_record_path(it, self.out).exists()}
        if self.fmt == "llava-ov2":
            return {it.id for it in self.items if (self.out / it.name / "meta.json").exists()}
        import pyarrow.parquet as pq

        done: set[str] = set()
        folder = self.out / PARQUET_DIR
        for part in sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []:
            done.update(str(v) for v in pq.read_table(part, columns=["id"]).column("id").to_pylist())
        return done

    def record(self, row: dict) -> None:
        if row["error_class"] is None:
            self.dirty |= self.failures.pop(row["id"], None) is not None
            if self.fmt == "parquet":
                self.rows.append(row)
        else:
            keys = ("id", "video", "error_class", "error", "seconds", "worker")
            self.failures[row["id"]] = {k: row[k] for k in keys}
            self.dirty = True
        if time.monotonic() - self.last_flush > 5.0 or len(self.rows) >= 256:
            self.flush()

    def drop_rows(self) -> None:
        """``--overwrite`` on Parquet: remove this manifest's rows from the existing parts (rewritten atomically)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        folder = self.out / PARQUET_DIR
        ids = [it.id for it in self.items]
        for part in sorted(folder.glob("part-*.parquet")) if folder.is_dir() and ids else []:
            table = pq.read_table(part)
            keep = table.filter(pc.invert(pc.is_in(table.column("id"), value_set=_string_array(ids))))
            if keep.num_rows == table.num_rows:
                continue
            if keep.num_rows:
                tmp = part.with_name(f".{part.name}.{os.getpid()}.tmp")
                pq.write_table(keep, tmp)
                tmp.replace(part)
            else:
                part.unlink()

    def forget_done(self, done: set[str]) -> None:
        stale = [k for k in self.failures if k in done]
        for k in stale:
            del self.failures[k]
        self.dirty |= bool(stale)

    def flush(self) -> None:
        """Write pending Parquet rows as one part and rewrite the failure files (each atomically)."""
        from .export import atomic_write_bytes

        self.last_flush = time.monotonic()
        if self.rows:
            import uuid

            name = f"part-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"
            _write_parquet(self.out / PARQUET_DIR / name, self.rows)
            self.rows = []
        if self.dirty:
            lines = "".join(json.dumps(r) + "\n" for r in self.failures.values())
            atomic_write_bytes(self.out / FAILURES_NAME, lines.encode())
            if self.fmt == "parquet":
                failed = self.out / PARQUET_DIR / "failed.parquet"
                if self.failures:
                    _write_parquet(failed, [dict(r, extra=None) for r in self.failures.values()])
                elif failed.exists():
                    failed.unlink()
            self.dirty = False

    def write_llava_jsonl(self) -> None:
        from .export import atomic_write_bytes

        lines = []
        for it in self.items:
            rec = _llava_record_path(it, self.out)
            if rec.exists():
                lines.append(rec.read_text().strip() + "\n")
        atomic_write_bytes(self.out / LLAVA_JSONL, "".join(lines).encode())


def _schema():
    import pyarrow as pa

    timings = pa.struct([(k, pa.float64()) for k in _TIMING_KEYS])
    return pa.schema([
        ("id", pa.string()), ("video", pa.string()), ("visible_indices", pa.list_(pa.int64())),
        ("positions_thw", pa.list_(pa.list_(pa.int32(), 3))), ("frame_ids", pa.list_(pa.int64())),
        ("timestamps", pa.list_(pa.float64())), ("signals", pa.string()), ("codec", pa.string()),
        ("policy", pa.string()), ("geometry", pa.string()), ("grid_thw", pa.list_(pa.int32())),
        ("budget", pa.int64()), ("num_frames", pa.int64()), ("damaged_frames", pa.int64()), ("timings", timings),
        ("seconds", pa.float64()), ("worker", pa.string()), ("error_class", pa.string()), ("error", pa.string()),
        ("selection", pa.string()), ("extra", pa.string()), ("report", pa.string()),
    ])


def _string_array(values: list[str]):
    import pyarrow as pa

    return pa.array(values, type=pa.string())


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=_schema()), tmp)
    tmp.replace(path)


# --------------------------------------------------------------------------------------------------------------
# Engines: each calls on_result(row) once per video, in completion order.


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when its parent dies (a killed batch leaves no orphan decoding)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _local_worker(conn, cfg: _Config, numba_threads: int, ffmpeg_threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business: it stops us cleanly
    _die_with_parent()
    try:
        configure_worker(numba_threads, ffmpeg_threads)
    except Exception as exc:
        conn.send(("init_error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        conn.send(("result", _process(item, cfg)))


@dataclass
class _Slot:
    proc: object
    conn: object
    ready: bool = False
    item: BatchItem | None = None
    since: float = 0.0


def _run_local(todo, cfg, on_result, *, workers, numba_threads, ffmpeg_threads, hard_timeout, start_method) -> None:
    """A pool of worker processes (spawn / forkserver: PyAV + threads + fork is unsafe), one video in flight per
    worker, so a worker that crashes or hangs costs exactly its own video; it is replaced and the batch goes on."""
    import multiprocessing as mp
    from collections import deque
    from multiprocessing.connection import wait

    method = start_method or ("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    ctx = mp.get_context(method)
    queue = deque(todo)

    def start() -> _Slot:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_local_worker, args=(child, cfg, numba_threads, ffmpeg_threads),
                           name="codec-select-batch", daemon=True)
        proc.start()
        child.close()
        return _Slot(proc, parent)

    def lost(slot: _Slot, why: str, error: type[Exception]) -> None:
        if slot.item is not None:
            on_result(_result(slot.item, time.perf_counter() - slot.since, exc=error(why)))
        slot.conn.close()
        if slot.proc.is_alive():
            slot.proc.kill()
        slot.proc.join(5)

    def poll(s: _Slot) -> bool:
        """Take what the worker sent; False when it is gone."""
        try:
            while s.conn.poll():
                kind, payload = s.conn.recv()
                if kind == "init_error":
                    raise RuntimeError(f"A batch worker failed to start: {payload}")
                if kind == "ready":
                    s.ready = True
                else:
                    s.item = None
                    on_result(payload)
        except (EOFError, OSError):
            return False
        return s.proc.is_alive()

    slots = [start() for _ in range(max(1, min(workers, len(queue))))]
    deaths_before_ready = 0
    try:
        while slots:
            alive = []
            for s in slots:
                if s.ready and s.item is None and queue:
                    s.item, s.since = queue.popleft(), time.perf_counter()
                    with contextlib.suppress(OSError):  # a worker that just died: found below
                        s.conn.send(s.item)
                ok = poll(s)
                if not ok:
                    if not s.ready:
                        deaths_before_ready += 1
                        if deaths_before_ready > 2 * len(slots):
                            raise RuntimeError(
                                f"Batch workers die while starting (exit code {s.proc.exitcode}). A script that "
                                "calls run_batch must guard it with `if __name__ == \"__main__\":` (workers are "
                                "started with spawn / forkserver and import the main module)."
                            )
                    lost(s, f"{s.item.video if s.item else ''}: the worker process died (exit code "
                         f"{s.proc.exitcode}) while selecting this video", WorkerCrashedError)
                elif hard_timeout and s.item is not None and time.perf_counter() - s.since > hard_timeout:
                    lost(s, f"{s.item.video}: killed after {hard_timeout:.0f} s without a result (the decoder hung)",
                         SelectionTimeoutError)
                    ok = False
                if ok and (queue or s.item is not None or not s.ready):
                    alive.append(s)
                elif ok:  # nothing left for it: let it go
                    with contextlib.suppress(OSError):
                        s.conn.send(None)
                    s.proc.join(2)
                    s.conn.close()
                elif queue:
                    alive.append(start())
            slots = alive
            busy = [s for s in slots if s.item is not None or not s.ready]
            if busy and not any(s.ready and s.item is None for s in slots if queue):
                wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], timeout=1.0)
    finally:
        for s in slots:
            with contextlib.suppress(OSError, ValueError):
                s.conn.send(None)
        for s in slots:
            s.proc.join(2 if s.item is None else 0)
            if s.proc.is_alive():
                s.proc.kill()
                s.proc.join(5)
            s.conn.close()


class _RaySelector:
    """Ray Data UDF (a callable class, so each actor configures and warms up once)."""

    def __init__(self, cfg: _Config, numba_threads: int, ffmpeg_threads: int):
        configure_worker(numba_threads, ffmpeg_threads)
        self.cfg = cfg

    def __call__(self, batch):
        import pyarrow as pa

        rows = []
        for sid, video, extra in zip(batch["id"], batch["video"], batch["extra"]):
            item = BatchItem(str(sid), str(video), json.loads(extra) if extra else {})
            rows.append(_process(item, self.cfg))
        return pa.Table.from_pylist(rows, schema=_schema())


def _run_ray(todo, cfg, on_result, *, workers, numba_threads, ffmpeg_threads, address) -> int:
    """Ray Data: the manifest as a dataset, ``map_batches`` over an actor pool of selectors, results streamed back
    to the driver (which writes Parquet parts and the failure files). Returns the pool size."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError('The ray engine needs Ray Data: pip install "codec-select[ray]"') from exc
    import logging

    quiet = {name: logging.getLogger(name).level for name in ("ray", "ray.data")}
    for name in quiet:  # our bar and summary report progress; Ray's INFO lines would drown them
        logging.getLogger(name).setLevel(logging.WARNING if name == "ray" else logging.ERROR)
    started = False
    if not ray.is_initialized():
        kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": "warning"}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), **kwargs)
        started = True
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.")  # Ray's own renames
        ctx = ray.data.DataContext.get_current()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "enable_operator_progress_bars") if hasattr(ctx, k)}
    try:
        for key in saved:  # ours counts videos; restored afterwards for a caller's own Ray work
            setattr(ctx, key, False)
        size = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = max(1, min(size, len(todo)))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.")  # Ray's own renames
            ds = ray.data.from_items(
                [{"id": it.id, "video": it.video, "extra": json.dumps(it.extra) if it.extra else ""} for it in todo]
            )
            ds = ds.map_batches(
                _RaySelector, fn_constructor_kwargs={"cfg": cfg, "numba_threads": numba_threads,
                                                     "ffmpeg_threads": ffmpeg_threads},
                batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1,
            )
            for table in ds.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=0):
                for row in table.to_pylist():
                    on_result(row)
        return size
    finally:
        for key, value in saved.items():
            setattr(ctx, key, value)
        if started:
            ray.shutdown()
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


# --------------------------------------------------------------------------------------------------------------
# Orchestration


def run_batch(
    manifest,
    out_dir: str | os.PathLike,
    *,
    engine: str = "local",
    fmt: str | None = None,
    workers: int | None = None,
    budget: int | None = None,
    geometry: str | None = None,
    policy: str | None = None,
    timeout: float | None = None,
    select_options: dict | None = None,
    image_format: str = "jpg",
    quality: int = 95,
    relative_paths: bool = False,
    allow_partial: bool = False,
    video_root: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    numba_threads: int = 1,
    ffmpeg_threads: int = 1,
    ray_address: str | None = None,
    start_method: str | None = None,
) -> BatchSummary:
    """Select every video of ``manifest`` and write one output per video into ``out_dir``.

    Args:
        manifest: a manifest path (see :func:`read_manifest`) or a list of :class:`BatchItem`.
        engine: ``"local"`` (a process pool, default) or ``"ray"`` (Ray Data; a local instance, or the cluster at
            ``ray_address``).
        fmt: ``"npz"`` (default on the local engine), ``"reference"``, ``"llava"`` or ``"parquet"`` (default on Ray).
        workers: worker processes / Ray actors (default: the CPU count).
        budget, geometry, policy, timeout, select_options: passed to :func:`~codec_select.select_patches`
            (``geometry`` defaults to ``llava576`` for the llava format, ``ap224`` otherwise); a manifest entry's
            ``start`` / ``end`` keys set its time window. The ``reference`` and ``llava`` formats feed the encoder:
            without a ``policy`` (or another option a recipe does not take) they use the geometry's reference recipe
            (``onevision-stage1`` on llava576, ``onevision-ap`` on ap224), the selection the encoder was trained on.
        image_format, quality, relative_paths: LLaVA mosaics (jpg quality 95, or lossless png) and whether the
            JSONL paths are relative to ``out_dir`` (default absolute).
        allow_partial: write partial videos (``Selection.report.partial``) as successes instead of failures.
        overwrite: redo videos whose output exists (default: skip them, which makes a rerun resume).
        numba_threads, ffmpeg_threads: per worker (1 and 1: parallelism comes from the workers).
    """
    if engine not in ENGINES:
        raise ValueError(f"Invalid engine ({engine!r}). Supported values are {', '.join(ENGINES)}.")
    fmt = fmt or ("parquet" if engine == "ray" else "npz")
    if fmt not in FORMATS:
        raise ValueError(f"Invalid format ({fmt!r}). Supported values are {', '.join(FORMATS)}.")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"Invalid image_format ({image_format!r}). Supported values are jpg, png.")
    if workers is not None and workers < 1:
        raise ValueError(f"Invalid workers ({workers!r}). It must be >= 1.")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"Invalid timeout ({timeout!r}). It must be > 0 seconds.")
    geometry = geometry or ("llava576" if fmt == "llava" else "ap224")
    cells = {"ap224": 256, "llava576": 1296}.get(geometry)
    if fmt == "llava" and budget is not None and cells and budget % cells:
        raise ValueError(
            f"Invalid budget ({budget}) for LLaVA mosaics: it must be a multiple of {cells} on {geometry}."
        )
    if isinstance(manifest, (str, os.PathLike)):
        items = read_manifest(manifest, video_root=video_root)
    else:
        items = build_items(list(manifest), Path(os.path.abspath(video_root or os.getcwd())), "manifest")
    options = {"geometry": geometry, **(select_options or {})}
    for key, value in (("budget", budget), ("policy", policy), ("timeout", timeout)):
        if value is not None:
            options[key] = value
    if fmt == "llava-ov2":  # its own options (llava_ov2.prepare_llava_ov2); the time limit is the hard one
        if budget is not None or policy is not None or geometry not in ("ap224", "qwen"):
            raise ValueError("--budget, --policy and --geometry do not apply to --format llava-ov2 (qwen canvases; "
                             "see --ov2-frames, --group-size, --images-per-group).")
        options = dict(select_options or {})
    out = Path(out_dir)
    cfg = _Config(str(out), fmt, options, image_format, int(quality), relative_paths, bool(allow_partial),
                  consumer=fmt in CONSUMER_FORMATS)
    store = _Store(out, fmt, items)
    done = set() if overwrite else store.done_ids()
    if overwrite and fmt == "parquet":
        store.drop_rows()
    todo = [it for it in items if it.id not in done]
    store.clean_temps(todo)
    store.forget_done(done)
    summary = BatchSummary(total=len(items), skipped=len(items) - len(todo), engine=engine)
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(items), initial=summary.skipped, unit="video", desc="codec-select batch",
                   dynamic_ncols=True, smoothing=0.05, file=sys.stderr)
    t0 = time.perf_counter()

    def on_result(row: dict) -> None:
        if summary.ok + summary.failed == 0:
            summary.startup_seconds = time.perf_counter() - t0
        store.record(row)
        if row["error_class"] is None:
            summary.ok += 1
            summary.frames += int(row.get("num_frames") or 0)
        else:
            summary.failed += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(frames_s=f"{summary.frames / max(time.perf_counter() - t0, 1e-9):.0f}",
                            failed=summary.failed, refresh=False)

    previous = None
    if hasattr(signal, "SIGTERM") and _in_main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if todo and engine == "local":
            summary.workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
            hard = max(2 * timeout, timeout + 30.0) if timeout else None
            _run_local(todo, cfg, on_result, workers=summary.workers, numba_threads=numba_threads,
                       ffmpeg_threads=ffmpeg_threads, hard_timeout=hard, start_method=start_method)
        elif todo:
            summary.workers = _run_ray(todo, cfg, on_result, workers=workers, numba_threads=numba_threads,
                                       ffmpeg_threads=ffmpeg_threads, address=ray_address)
    finally:
        summary.seconds = time.perf_counter() - t0
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
        store.dirty = True
        store.flush()
        if fmt == "llava":
            store.write_llava_jsonl()
    ids = {it.id for it in items}
    summary.failures = sum(1 for k in store.failures if k in ids)
    return summary


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------------------------------------------
# CLI


def add_parser(subparsers) -> None:
    """Register ``codec-select batch``."""
    p = subparsers.add_parser(
        "batch", help="select patches for a manifest of videos (local pool or Ray Data)",
        description="Run the selector over every video of MANIFEST (JSONL/JSON/CSV/text of paths + ids), one output "
        "per video in DIR. Resumable: a rerun skips finished videos. Exit code 0: all ok, 1: some failed (see "
        "DIR/failures.jsonl), 2: usage error.",
    )
    p.add_argument("manifest", type=Path, help="JSONL ({\"id\": ..., \"video\": path} per line), JSON, CSV or text")
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    p.add_argument("--engine", default="local", choices=ENGINES, help="local process pool (default) or Ray Data")
    p.add_argument("--workers", "-j", type=int, default=None, help="worker processes / Ray actors (default: CPUs)")
    p.add_argument("--format", dest="fmt", default=None, choices=FORMATS,
                   help="output format (default: npz on local, parquet on ray)")
    p.add_argument("--budget", "-k", type=int, default=None, help="K cells per video (default 4096; 10368 on llava576)")
    p.add_argument("--geometry", "-g", default=None, choices=["ap224", "llava576", "native", "qwen"],
                   help="default ap224 (llava576 for --format llava)")
    p.add_argument("--policy", default=None, choices=["refresh", "topk", "uniform"],
                   help="budget policy (default: refresh; the reference and llava formats use the geometry's "
                   "reference recipe, onevision-stage1 / onevision-ap, unless a policy is given)")
    p.add_argument("--compensation", default=None, choices=["median", "similarity", "none"])
    p.add_argument("--signals", default=None, choices=["auto", "codec-mv", "estimated-motion"])
    p.add_argument("--no-accumulate", action="store_true", help="score slot k by frame ids[k] alone")
    p.add_argument("--no-first-full", action="store_true", help="do not force every cell of slot 0")
    p.add_argument("--timeout", type=float, default=None, help="per-video time budget in seconds")
    p.add_argument("--video-root", type=Path, default=None,
                   help="resolve relative paths here (default: the manifest's folder)")
    p.add_argument("--image-format", default="jpg", choices=["jpg", "png"], help="LLaVA mosaics (png = lossless)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the LLaVA mosaics")
    p.add_argument("--relative-paths", action="store_true", help="LLaVA JSONL paths relative to --out")
    p.add_argument("--overwrite", action="store_true", help="redo videos whose output already exists")
    p.add_argument("--allow-partial", action="store_true",
                   help="keep truncated / damaged-tail videos (default: recorded in failures.jsonl)")
    p.add_argument("--numba-threads", type=int, default=1, help="numba threads per worker (default 1)")
    p.add_argument("--ffmpeg-threads", type=int, default=1, help="decoder threads per worker (default 1; 0 = auto)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local instance)")
    p.add_argument("--ov2-frames", type=int, default=None, help="llava-ov2: frames sampled (uniform_count, 1024)")
    p.add_argument("--ov2-fps", type=float, default=None, help="llava-ov2: sample at this rate instead (fps sampling)")
    p.add_argument("--group-size", type=int, default=None, help="llava-ov2: sampled frames per group (32)")
    p.add_argument("--grouping", default=None, choices=["fixed", "readiness"],
                   help="llava-ov2: fixed chunks (default) or readiness groups of 8-64 frames")
    p.add_argument("--images-per-group", type=int, default=None, help="llava-ov2: canvases per group (4)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_run_cli)


def _ov2_options(args) -> dict:
    """``--format llava-ov2``'s options for :func:`codec_select.llava_ov2.prepare_llava_ov2`."""
    options: dict = {}
    if args.ov2_frames is not None:
        options["num_sampled"] = args.ov2_frames
    if args.ov2_fps is not None:
        options.update(sampling="fps", sample_fps=args.ov2_fps)
    if args.group_size is not None:
        options["group_size"] = args.group_size
    if args.grouping is not None:
        options["grouping"] = args.grouping
    if args.images_per_group is not None:
        options["images_per_group"] = args.images_per_group
    if args.signals:
        options["signals"] = args.signals
    return options


def _run_cli(args) -> int:
    options = {}
    if args.compensation:
        options["motion_compensation"] = args.compensation
    if args.signals:
        options["signals"] = args.signals
    if args.no_accumulate:
        options["accumulate"] = False
    if args.no_first_full:
        options["first_full"] = False
    if args.fmt == "llava-ov2":
        options = _ov2_options(args)
    try:
        summary = run_batch(
            args.manifest, args.out, engine=args.engine, fmt=args.fmt, workers=args.workers, budget=args.budget,
            geometry=args.geometry, policy=args.policy, timeout=args.timeout, select_options=options,
            image_format=args.image_format, quality=args.quality, relative_paths=args.relative_paths,
            allow_partial=args.allow_partial, video_root=args.video_root, overwrite=args.overwrite, progress=not args.no_progress,
            numba_threads=args.numba_threads, ffmpeg_threads=args.ffmpeg_threads, ray_address=args.ray_address,
        )
    except (ValueError, ImportError, RuntimeError) as exc:  # options, manifest, missing extra, workers that die
        print(f"codec-select batch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codec-select batch: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    if args.json:
        info = {k: getattr(summary, k) for k in ("total", "ok", "failed", "skipped", "frames", "seconds",
                                                  "startup_seconds", "workers", "engine", "failures")}
        info.update(videos_per_s=summary.videos_per_s, frames_per_s=summary.frames_per_s)
        print(json.dumps(info))
    else:
        print(str(summary), file=sys.stderr)
        if summary.failures:
            print(f"{summary.failures} failed video(s) listed in {Path(args.out) / FAILURES_NAME}", file=sys.stderr)
    return 1 if summary.failures else 0
