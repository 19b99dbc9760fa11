"""The output folder of a batch: what is done, stale temp files, failures, Parquet parts, the LLaVA JSONL."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .manifest import FAILURES_NAME, LLAVA_JSONL, PARQUET_DIR, BatchItem
from .worker import TIMING_KEYS, llava_record_path, reference_stem

__all__ = ["OutputStore", "parquet_schema"]


def _is_temp(name: str) -> bool:
    return (name.startswith(".") and ".tmp" in name) or name.endswith((".tmp.npz", ".tmp"))


class OutputStore:
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
            folders += [llava_record_path(it, self.out).parent for it in todo]
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
            return {it.id for it in self.items if reference_stem(it) in stems}
        if self.fmt == "llava":
            return {it.id for it in self.items if llava_record_path(it, self.out).exists()}
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
        from ..export import atomic_write_bytes

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
        from ..export import atomic_write_bytes

        lines = []
        for it in self.items:
            rec = llava_record_path(it, self.out)
            if rec.exists():
                lines.append(rec.read_text().strip() + "\n")
        atomic_write_bytes(self.out / LLAVA_JSONL, "".join(lines).encode())


def parquet_schema():
    import pyarrow as pa

    timings = pa.struct([(k, pa.float64()) for k in TIMING_KEYS])
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
    pq.write_table(pa.Table.from_pylist(rows, schema=parquet_schema()), tmp)
    tmp.replace(path)
