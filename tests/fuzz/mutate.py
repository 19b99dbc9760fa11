"""Byte mutations of small valid videos, shared by the CI fuzz test (``test_fuzz.py``, hypothesis) and the long run
(``run_fuzz.py``, subprocess workers that survive segfaults and hangs).

A case is a seed clip, a list of mutation ops and a decode mode. Positions are fractions of the file length, so an
op means the same thing on every seed and a case replays exactly from its description.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from codec_select import CodecSelectError, Selection, select_patches
from codec_select.decode.pixels import read_frames
from codec_select.synth import Scene, make_clip

__all__ = ["SEEDS", "OPS", "make_seeds", "apply_ops", "random_case", "run_case", "Bug"]

# name → make_clip keyword arguments: 64×48, 24 frames, H.264 and MPEG-4 in three containers.
SEEDS: dict[str, dict] = {
    "x264.mp4": {"encoder": "libx264", "bframes": 2, "gop": 12},
    "x264.mkv": {"encoder": "libx264", "bframes": 2, "gop": 12},
    "x264_nob.avi": {"encoder": "libx264", "bframes": 0, "gop": 12},
    "mpeg4.mp4": {"encoder": "mpeg4", "bframes": 1, "gop": 12},
    "mpeg4.avi": {"encoder": "mpeg4", "bframes": 0, "gop": 12},
}
OPS = ("flip", "set", "int32", "fill", "insert", "delete", "copy", "truncate")
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
MODES = ("full", "windowed", "auto")


class Bug(Exception):
    """An outcome the library must never produce: an exception outside the CodecSelectError hierarchy, or an error
    that does not name the file."""


def make_seeds(folder: str | os.PathLike) -> dict[str, bytes]:
    """Write the seed clips into ``folder`` (once) and return their bytes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, kwargs in SEEDS.items():
        path = folder / name
        if not path.exists():
            tmp = folder / ("tmp_" + name)
            make_clip(tmp, Scene(kind="square", width=64, height=48, frames=24, square=16, speed=2.0), **kwargs)
            tmp.replace(path)
        out[name] = path.read_bytes()
    return out


def _pos(data: bytearray | bytes, frac: float) -> int:
    return min(len(data) - 1, max(0, int(frac * len(data)))) if data else 0


def apply_ops(data: bytes, ops: list[tuple]) -> bytes:
    """Apply mutation ops in order. Each op is ``(kind, frac, *args)`` with ``frac`` in [0, 1)."""
    buf = bytearray(data)
    for op in ops:
        kind, frac, *args = op
        if not buf:
            break
        i = _pos(buf, frac)
        if kind == "flip":
            buf[i] ^= 1 << (int(args[0]) % 8)
        elif kind == "set":
            buf[i] = int(args[0]) & 0xFF
        elif kind == "int32":  # sizes and counts in container headers are 32-bit big- or little-endian
            value = int(args[0]) & 0xFFFFFFFF
            buf[i : i + 4] = value.to_bytes(4, "big" if args[1] else "little")
        elif kind == "fill":
            n = int(args[0])
            buf[i : i + n] = bytes([int(args[1]) & 0xFF]) * len(buf[i : i + n])
        elif kind == "insert":
            buf[i:i] = bytes(args[0])
        elif kind == "delete":
            del buf[i : i + int(args[0])]
        elif kind == "copy":  # duplicate a chunk elsewhere (a repeated atom, a packet spliced in)
            j = _pos(buf, float(args[0]))
            chunk = bytes(buf[i : i + int(args[1])])
            buf[j:j] = chunk
        elif kind == "truncate":
            del buf[max(1, i) :]
        else:
            raise ValueError(f"Invalid op ({kind!r}). Supported values are {', '.join(OPS)}.")
    return bytes(buf)


def random_case(rng: np.random.Generator) -> tuple[str, list[tuple], str]:
    """A random (seed, ops, mode) for the long run: 1–6 ops, mostly small local damage, some structural."""
    seed = list(SEEDS)[int(rng.integers(len(SEEDS)))]
    ops: list[tuple] = []
    for _ in range(int(rng.integers(1, 7))):
        kind = OPS[int(rng.choice(len(OPS), p=[0.3, 0.15, 0.12, 0.1, 0.1, 0.1, 0.08, 0.05]))]
        frac = float(rng.random())
        if kind == "flip":
            ops.append((kind, frac, int(rng.integers(8))))
        elif kind == "set":
            ops.append((kind, frac, int(rng.integers(256))))
        elif kind == "int32":
            ops.append((kind, frac, int(INTERESTING[int(rng.integers(len(INTERESTING)))]), bool(rng.integers(2))))
        elif kind == "fill":
            ops.append((kind, frac, int(rng.integers(1, 512)), int(rng.choice([0, 0xFF, int(rng.integers(256))]))))
        elif kind == "insert":
            ops.append((kind, frac, rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tolist()))
        elif kind == "delete":
            ops.append((kind, frac, int(rng.integers(1, 256))))
        elif kind == "copy":
            ops.append((kind, frac, float(rng.random()), int(rng.integers(1, 2048))))
        else:
            ops.append((kind, frac))
    return seed, ops, MODES[int(rng.integers(len(MODES)))]


def run_case(path: str | os.PathLike, mode: str, *, timeout: float = 20.0) -> str:
    """Select patches of a (mutated) file and read back its slot frames. Returns ``"ok"`` or ``"error:<Type>"``;
    raises :class:`Bug` for anything outside the error hierarchy or an error that does not name the file."""
    path = os.fspath(path)
    name = os.path.basename(path)
    t0 = time.perf_counter()
    try:
        sel = select_patches(path, mode=mode, timeout=timeout)
        if not isinstance(sel, Selection) or sel.visible_indices.size != sel.budget:
            raise Bug(f"select_patches returned {sel!r}")
        frames = read_frames(path, sel.frame_ids[::16], rgb=False)
        if frames.shape[0] != 4:
            raise Bug(f"read_frames returned {frames.shape}")
        return "ok"
    except CodecSelectError as exc:
        if name not in str(exc):
            raise Bug(f"{type(exc).__name__} does not name the file: {exc}") from exc
        return f"error:{type(exc).__name__}"
    except Bug:
        raise
    except Exception as exc:
        raise Bug(f"{type(exc).__name__} escaped after {time.perf_counter() - t0:.1f} s: {exc}") from exc
