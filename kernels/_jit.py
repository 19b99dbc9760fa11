"""The one place for numba options (STYLE.md §3).

``FASTMATH`` is a safe flag set: it leaves out ``nnan``/``ninf`` because motion fields carry NaN for "no vector"
and the kernels test for it. Kernels never spell ``fastmath=`` themselves; they use ``@njit(**JIT)`` or
``@njit(**PJIT)`` (a test checks the sources).

Caching caveat: numba's on-disk cache is keyed by each kernel's own source file. A kernel that calls a kernel from
another file (``fuse.py`` → ``motion._compensate_median_kernel``, ``motion.py`` → ``policy._order_pair``) keeps the
old compiled callee after only the callee's file changes. After editing a shared helper, delete
``kernels/__pycache__`` (CI starts from a fresh ``NUMBA_CACHE_DIR``; installed packages never change).
"""

from __future__ import annotations

import numpy as np

__all__ = ["FASTMATH", "JIT", "PJIT", "check_array"]

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
"""LLVM fast-math flags: no signed zeros, reciprocal, contraction, approximate functions, reassociation."""

JIT = {"cache": True, "nogil": True, "fastmath": FASTMATH}
"""Options of every serial kernel: cached on disk, GIL released (scoring runs on a worker thread)."""

PJIT = {**JIT, "parallel": True}
"""Options of kernels that ``prange`` over frames."""


def check_array(name: str, a, dtype, shape: tuple | None = None, ndim: int | None = None) -> None:
    """Raise ``ValueError`` unless ``a`` is a C-contiguous ndarray of ``dtype`` (and ``shape``/``ndim``).

    Shared by the public wrappers (it lives here, beside the jit options, to keep one helper module);
    ``None`` entries in ``shape`` match any length. The happy path costs well under a microsecond: wrappers run
    once per frame per kernel.
    """
    if shape is not None:
        ndim = len(shape)
    if (
        isinstance(a, np.ndarray)
        and a.dtype == dtype
        and (ndim is None or a.ndim == ndim)
        and (shape is None or all(w is None or w == g for w, g in zip(shape, a.shape)))
        and a.flags.c_contiguous
    ):
        return
    dtype = np.dtype(dtype)
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of {dtype}, got {type(a).__name__}.")
    if a.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {a.dtype}; convert it with .astype(np.{dtype.name}).")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}.")
    if shape is not None and not all(w is None or w == g for w, g in zip(shape, a.shape)):
        dims = ", ".join("*" if s is None else str(s) for s in shape)
        expected = f"({dims},)" if len(shape) == 1 else f"({dims})"
        raise ValueError(f"{name} must have shape {expected}, got {a.shape}.")
    raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name}).")
