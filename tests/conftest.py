"""Shared fixtures: synthetic clips with known motion (made with PyAV encoders once per session) and markers."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner otherwise

from codec_select.synth import ENCODERS, Scene, available_encoders, make_clip  # noqa: E402

SHARED_VIDEOS = sorted((Path(__file__).resolve().parents[1].parent / "shared" / "videos").glob("*.mp4"))
# CI clones main with shared/ beside it; a developer checkout has it one level up too.

FAIL_WITHOUT_CUDA = os.environ.get("FAIL_WITHOUT_CUDA") == "1"


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    try:
        import flash_attn  # noqa: F401

        has_flash = has_cuda
    except ImportError:
        has_flash = False
    for item in items:
        if "needs_cuda" in item.keywords and not has_cuda:
            if FAIL_WITHOUT_CUDA:
                item.add_marker(pytest.mark.xfail(reason="CUDA required", strict=True, run=False))
            else:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
        if "needs_flash_attn" in item.keywords and not has_flash:
            item.add_marker(pytest.mark.skip(reason="needs flash-attn on CUDA"))


@pytest.fixture(autouse=True)
def _restore_rng():
    state = np.random.get_state(), random.getstate()
    yield
    np.random.set_state(state[0])
    random.setstate(state[1])


@pytest.fixture(scope="session")
def warm_kernels() -> None:
    """Compile (or load) every kernel once, so that no test that bounds a duration counts the JIT in it."""
    from codec_select.kernels import warmup

    warmup()


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


def _clip(clip_dir: Path, name: str, scene: Scene, **kwargs) -> tuple[Path, Scene]:
    ext = ENCODERS[kwargs.get("encoder", "libx264")][2]
    path = clip_dir / f"{name}{ext}"
    return path, make_clip(path, scene, **kwargs)


@pytest.fixture(scope="session")
def square_clip(clip_dir):
    """A 40 px square crossing a static textured 320×240 background, H.264 with B-frames."""
    return _clip(clip_dir, "square_h264_b", Scene(kind="square", frames=128, speed=2.0), encoder="libx264", bframes=2)


@pytest.fixture(scope="session")
def square_clip_nob(clip_dir):
    return _clip(clip_dir, "square_h264_nob", Scene(kind="square", frames=128, speed=2.0), encoder="libx264", bframes=0)


@pytest.fixture(scope="session")
def pan_clip(clip_dir):
    """The camera pans over a static texture: nothing moves in the scene."""
    return _clip(clip_dir, "pan_h264", Scene(kind="pan", frames=96, speed=3.0), encoder="libx264")


@pytest.fixture(scope="session")
def static_clip(clip_dir):
    return _clip(clip_dir, "static_h264", Scene(kind="static", frames=96), encoder="libx264")


@pytest.fixture(scope="session")
def encoded_clips(clip_dir):
    """The square scene through every encoder this PyAV has: {encoder: (path, scene)}."""
    out = {}
    for enc in available_encoders():
        out[enc] = _clip(clip_dir, f"square_{enc}", Scene(kind="square", frames=96, speed=2.0), encoder=enc)
    return out


def shared_videos() -> list[Path]:
    return SHARED_VIDEOS
