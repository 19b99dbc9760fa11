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
  ``meta.json`` last; :mod:`codec_select.export.llava_ov2`; no 64-slot selection is run).

The package imports only the standard library at import time (the CLI builds its parser from it); numpy, PyAV,
numba, tqdm, pyarrow and ray are imported where they are used. Modules, in data-flow order: ``manifest`` (inputs),
``worker`` (one video), ``store`` (the output folder), ``engines`` (local pool, Ray), ``run`` (``run_batch``), ``cli``.
"""

from __future__ import annotations

from .cli import add_parser
from .manifest import (
    ENGINES,
    FAILURES_NAME,
    FORMATS,
    BatchItem,
    BatchSummary,
    WorkerCrashedError,
    build_items,
    read_manifest,
)
from .run import run_batch
from .worker import CONSUMER_FORMATS, configure_worker, worker_select_options

__all__ = [
    "BatchItem", "BatchSummary", "WorkerCrashedError", "read_manifest", "build_items", "run_batch", "configure_worker",
    "worker_select_options", "add_parser", "FORMATS", "ENGINES", "FAILURES_NAME", "CONSUMER_FORMATS",
]
