"""The one place for numba options (STYLE.md §3).

``FASTMATH`` is a safe flag set: it leaves out ``nnan``/``ninf`` because motion fields carry NaN for "no vector"
and the kernels test for it. Kernels never spell ``fastmath=`` themselves; they use ``@njit(**JIT)`` or
``@njit(**PJIT)`` (a test checks the sources).
"""

from __future__ import annotations

__all__ = ["FASTMATH", "JIT", "PJIT", "check_array"]

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
"""LLVM fast-math flags: no signed zeros, reciprocal, contraction, approximate functions, reassociation."""

JIT = dict(cache=True, nogil=True, fastmath=FASTMATH)
"""Options of every serial kernel: cached on disk, GIL released (scoring runs on a worker thread)."""

PJIT = dict(JIT, parallel=True)
"""Options of kernels that ``prange`` over frames."""


def check_array(name: str, a, dtype, shape: tuple | None = None, ndim: int | None = None) -> None:
    """Raise ``ValueError`` unless ``a`` is a C-contiguous ndarray of ``dtype`` (and ``shape``/``ndim``).

    Shared by the public wrappers (it lives here, beside the jit options, to keep one helper module);
    ``None`` entries in ``shape`` match any length.
    """
    import numpy as np

    dtype = np.dtype(dtype)
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of {dtype}, got {type(a).__name__}.")
    if a.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {a.dtype}; convert it with .astype(np.{dtype.name}).")
    if shape is not None:
        ndim = len(shape)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}.")
    if shape is not None:
        for want, got in zip(shape, a.shape):
            if want is not None and want != got:
                expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
                raise ValueError(f"{name} must have shape {expected}, got {a.shape}.")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name}).")
