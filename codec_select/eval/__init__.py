"""Measurement: ``codec-select bench`` (``bench``, ``report``), the quality axes (``metrics``, ``quality``,
``mobilenet``), the baselines it compares against (``baselines``), synthetic scenes with ground truth (``scenes``)
and timing helpers (``timing``)."""
