"""Timing helpers shared by the benchmarks and ``codec-select bench``: medians over repeats and the environment."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

__all__ = ["bench", "decode_plain", "decode_with_mvs", "system_metadata"]


def bench(fn: Callable[[], object], *, warmup: int = 1, repeats: int = 5) -> dict:
    """Run ``fn`` ``warmup`` + ``repeats`` times; return the median, min, max (seconds) and the raw times."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e9)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "times": times}


def system_metadata() -> dict:
    """CPU, cores and the versions that matter for the numbers."""
    import av
    import numba
    import numpy

    meta = {
        "python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
        "cpu": _cpu_name(), "cores": os.cpu_count(), "numpy": numpy.__version__, "numba": numba.__version__,
        "av": av.__version__, "libavcodec": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
    }
    try:
        import torch

        meta["torch"] = torch.__version__
        meta["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        meta["torch"] = None
    return meta


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def decode_plain(path: str, thread_type: str = "AUTO", *, skip_loop_filter: bool = False) -> int:
    """Decode every frame with PyAV and touch nothing: the floor any selector pays. ``skip_loop_filter``: the
    selector's ``fast_decode`` option (compare like with like)."""
    import av

    n = 0
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = thread_type
        if skip_loop_filter:
            s.codec_context.options = {"skip_loop_filter": "all"}
        for _ in c.decode(s):
            n += 1
    return n


def decode_with_mvs(path: str, *, skip_loop_filter: bool = False) -> int:
    """Decode every frame with motion-vector export on (slice threads) and read the vectors; ``skip_loop_filter``
    as the selector's ``fast_decode``."""
    import av

    n = 0
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "SLICE"
        s.codec_context.options = {"flags2": "+export_mvs", **({"skip_loop_filter": "all"} if skip_loop_filter else {})}
        for frame in c.decode(s):
            sd = frame.side_data.get("MOTION_VECTORS")
            if sd is not None:
                sd.to_ndarray()
            n += 1
    return n
