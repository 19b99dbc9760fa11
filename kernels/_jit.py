"""The one place for numba options (STYLE.md §3) and for where compiled kernels are cached.

No fast-math: the flags ``reassoc``/``contract``/``afn``/``arcp`` let LLVM reorder sums, fuse multiply-adds and
approximate divisions differently per host ISA, and every kernel here feeds a threshold, a tie or a top-K, so two
machines of one cluster could pick different patches. Without them a kernel gives the same bits on any x86 or ARM
host (``NUMBA_CPU_NAME=generic`` included; CI checks it). Kernels never spell ``fastmath=`` themselves; they use
``@njit(**JIT)`` (a test checks the sources).

Where the cache goes: never into the package's own folder. numba's default writes ``__pycache__/*.nbi|*.nbc`` beside
the source when that folder is writable, i.e. into ``site-packages/codec_select/kernels`` — files pip does not own,
so an uninstall or a later ``pip install -e`` leaves an empty ``codec_select`` folder behind that shadows the real
package. :class:`KernelCacheLocator` sends our kernels (and only ours) to :func:`kernel_cache_dir` instead:
``$CODEC_SELECT_CACHE_DIR`` if set, else the platform's user cache folder (``~/.cache/codec-select/numba`` on
Linux). ``NUMBA_CACHE_DIR``, when the user sets it, still wins for everything (numba's own rule).

Caching caveat: numba keys a kernel's cache by its own source file. A kernel that calls a kernel from another file
(``fuse.py`` → ``motion.compensate_median_into``, ``policy.py`` → ``order.order_pair``) keeps the old compiled
callee after only the callee's file changes. After editing a shared helper during development, delete the cache
folder (``python -c "import codec_select.kernels as k; print(k.kernel_cache_dir())"`` prints it); installed
packages never change under their cache.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["FASTMATH", "JIT", "check_array", "kernel_cache_dir", "locate_cache", "KernelCacheLocator"]

FASTMATH = False
"""No LLVM fast-math flags: results must not depend on the host's instruction set (see the module docstring)."""

JIT = {"cache": True, "nogil": True, "fastmath": FASTMATH}
"""Options of every kernel: cached on disk (in :func:`kernel_cache_dir`), GIL released (scoring runs on a worker
thread)."""

_KERNELS_DIR = os.path.dirname(os.path.abspath(__file__))


def kernel_cache_dir() -> Path:
    """Where the compiled kernels are cached: ``$CODEC_SELECT_CACHE_DIR``, else the user cache folder."""
    override = os.environ.get("CODEC_SELECT_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("codec-select", appauthor=False) / "numba"


def _install_locator() -> None:
    """Put :class:`KernelCacheLocator` first in numba's list of cache locators (once per process)."""
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # renamed public in numba 0.61
    base = getattr(caching, "UserProvidedCacheLocator", None) or caching._UserProvidedCacheLocator
    global KernelCacheLocator

    class _Locator(base):
        """numba cache locator for the files of this folder only: :func:`kernel_cache_dir`, else a temp folder."""

        def __init__(self, py_func, py_file, root=None):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            root = root if root is not None else kernel_cache_dir()
            self._cache_path = os.path.join(os.fspath(root), self.get_suitable_cache_subpath(py_file))

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.environ.get("NUMBA_CACHE_DIR") or not os.path.exists(py_file):
                return None  # the user's numba-wide setting (numba's own locator) wins
            if os.path.dirname(os.path.abspath(py_file)) != _KERNELS_DIR:
                return None  # not one of our kernels: numba's usual rules
            fallback = Path(tempfile.gettempdir()) / f"codec-select-numba-{os.getuid() if hasattr(os, 'getuid') else 0}"
            for root in (None, fallback):  # an unwritable cache folder → a private temp folder, never site-packages
                self = cls(py_func, py_file, root)
                try:
                    self.ensure_cache_path()
                except OSError:
                    continue
                return self
            return None

    _Locator.__name__ = _Locator.__qualname__ = "KernelCacheLocator"
    KernelCacheLocator = _Locator
    if not any(getattr(c, "__name__", "") == "KernelCacheLocator" for c in impl._locator_classes):
        impl._locator_classes = [_Locator, *impl._locator_classes]


KernelCacheLocator = None
"""The numba cache locator class for our kernels (set when this module is imported)."""

_install_locator()


def locate_cache() -> Path:
    """The folder that holds (or will hold) this package's compiled kernels: ``$NUMBA_CACHE_DIR`` when set (numba's
    own rule), else :func:`kernel_cache_dir`, each with numba's per-source-folder subpath."""
    root = os.environ.get("NUMBA_CACHE_DIR") or kernel_cache_dir()
    return Path(root) / KernelCacheLocator.get_suitable_cache_subpath(__file__)


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
