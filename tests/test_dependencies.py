"""Emulating only what the wanted pictures depend on: the same wanted pictures, fewer pictures emulated."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

import codec_select.recipes.picture as picture
from codec_select.recipes.dependencies import emulation_needs
from codec_select.recipes.emulate import iter_emulated


def _short_gop_clip(path: Path, n: int = 90, gop: int = 10) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, size=(96, 128, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.options = {"preset": "veryfast", "threads": "1", "g": str(gop), "keyint_min": str(gop), "bf": "2",
                          "sc_threshold": "0"}
        for i in range(n):
            img = np.roll(base, 2 * i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return _short_gop_clip(tmp_path_factory.mktemp("gop") / "gop10.mp4")


def _wanted_planes(path, wanted, only, monkeypatch) -> tuple[dict[int, str], int]:
    runs = []
    real = picture.PictureEmulator.run
    monkeypatch.setattr(picture.PictureEmulator, "run", lambda self, item: runs.append(item.display) or real(self, item))
    out = {fr.index: hashlib.sha1(fr.y.tobytes() + fr.u.tobytes() + fr.v.tobytes()).hexdigest()
           for fr in iter_emulated(path, wanted=wanted, only_dependencies=only) if fr.index in wanted}
    monkeypatch.undo()
    return out, len(runs)


def test_only_dependencies_gives_the_same_wanted_pictures(clip, monkeypatch):
    wanted = {3, 25, 26, 61}
    every, emulated_every = _wanted_planes(clip, wanted, False, monkeypatch)
    deps, emulated_deps = _wanted_planes(clip, wanted, True, monkeypatch)
    assert set(every) == wanted and deps == every
    # Groups of 10 with one or two wanted pictures each, three groups with none: well under half is needed.
    assert emulated_deps < emulated_every / 2, (emulated_deps, emulated_every)


def test_plan_follows_decoding_order_within_idr_groups(clip):
    with av.open(str(clip)) as c:
        packets = [(p.pts, bool(p.is_keyframe)) for p in c.demux(video=0) if p.size]
    display = sorted(pts for pts, _ in packets)
    needs = emulation_needs(clip, {25})
    decode_of = {pts: d for d, (pts, _) in enumerate(packets)}
    idr = max(d for d, (pts, key) in enumerate(packets) if key and pts <= display[25])
    expected = {pts for pts, _ in packets if idr <= decode_of[pts] <= decode_of[display[25]]}
    assert needs == expected and display[25] in needs
    assert emulation_needs(clip, set()) == set()
