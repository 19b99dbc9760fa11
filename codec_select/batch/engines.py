"""Batch engines: a local process pool and Ray actors; each calls ``on_result(row)`` once per video."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass

from ..errors import SelectionTimeoutError
from .manifest import BatchItem, WorkerCrashedError
from .store import parquet_schema
from .worker import BatchConfig, configure_worker, process_item, result_row

__all__ = ["run_local", "run_ray"]


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when its parent dies (a killed batch leaves no orphan decoding)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _local_worker(conn, cfg: BatchConfig, numba_threads: int, ffmpeg_threads: int) -> None:
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
        conn.send(("result", process_item(item, cfg)))


@dataclass
class _Slot:
    proc: object
    conn: object
    ready: bool = False
    item: BatchItem | None = None
    since: float = 0.0


def run_local(todo, cfg, on_result, *, workers, numba_threads, ffmpeg_threads, hard_timeout, start_method) -> None:
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
            on_result(result_row(slot.item, time.perf_counter() - slot.since, exc=error(why)))
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

    def __init__(self, cfg: BatchConfig, numba_threads: int, ffmpeg_threads: int):
        configure_worker(numba_threads, ffmpeg_threads)
        self.cfg = cfg

    def __call__(self, batch):
        import pyarrow as pa

        rows = []
        for sid, video, extra in zip(batch["id"], batch["video"], batch["extra"]):
            item = BatchItem(str(sid), str(video), json.loads(extra) if extra else {})
            rows.append(process_item(item, self.cfg))
        return pa.Table.from_pylist(rows, schema=parquet_schema())


def run_ray(todo, cfg, on_result, *, workers, numba_threads, ffmpeg_threads, address) -> int:
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
