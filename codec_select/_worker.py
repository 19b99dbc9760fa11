"""The scoring thread shared by the full and windowed decode paths: the decoding thread puts items on a bounded
queue, this thread handles them (numba releases the GIL, so the two overlap), and an error is handed back."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

__all__ = ["Consumer"]


class Consumer:
    """Runs ``handle(item)`` for every item :meth:`put`, then ``finish()``, on a daemon thread.

    Seconds spent in both add up in ``seconds``. An exception is kept in ``error`` for the producer to check and
    raise (after :meth:`close`, so it never hides an exception the producer itself is raising); after one, the
    queue is still drained so the producer never blocks.
    """

    def __init__(self, handle: Callable[[object], None], *, name: str, maxsize: int,
                 finish: Callable[[], None] | None = None) -> None:
        self._handle, self._finish = handle, finish
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: object) -> None:
        self._queue.put(item)

    def close(self) -> None:
        """Signal the end and wait for the thread (``finish`` runs unless an error came first)."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                t0 = time.perf_counter()
                self._handle(item)
                self.seconds += time.perf_counter() - t0
            if self._finish is not None:
                t0 = time.perf_counter()
                self._finish()
                self.seconds += time.perf_counter() - t0
        except BaseException as exc:  # surfaced on the producer's thread
            self.error = exc
            while self._queue.get() is not None:
                pass
