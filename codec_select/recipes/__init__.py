"""The OneVision reference recipes, reproduced from stock PyAV: ``select`` (``onevision-stage1``), ``ap``
(``onevision-ap``), their per-frame inputs (``sources``, ``energy``) and the patched-FFmpeg residual picture rebuilt
from a stock decode (``emulate``, ``picture``, ``h264_headers``)."""
