"""Bad input ends in one typed error from the CodecSelectError hierarchy, naming the file and what to do."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from codec_select import (
    CodecSelectError,
    DecodeError,
    NoVideoStreamError,
    VideoOpenError,
    select_patches,
)
from codec_select.cli import main


def _audio_only(path):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mp2", rate=44100)
        samples = np.zeros((1, 1152), dtype=np.int16)
        for _ in range(20):
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = 44100
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)


def _zero_frames(path):
    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=Fraction(25))
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoOpenError, match="nope.mp4: no such file"):
        select_patches(path)


def test_not_a_video(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoOpenError, match="noise.mp4: not a readable media file"):
        select_patches(path)


def test_directory(tmp_path):
    with pytest.raises(VideoOpenError, match="is a directory"):
        select_patches(tmp_path)


def test_audio_only(tmp_path):
    path = tmp_path / "audio.mkv"
    _audio_only(path)
    with pytest.raises(NoVideoStreamError, match=r"audio.mkv: the container holds no video stream \(found: audio\)"):
        select_patches(path)


def test_zero_frames(tmp_path):
    path = tmp_path / "empty.mkv"
    _zero_frames(path)
    with pytest.raises(CodecSelectError, match="empty.mkv"):
        select_patches(path)


@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.7])
def test_truncated(square_clip, tmp_path, fraction):
    src, _ = square_clip
    data = src.read_bytes()
    path = tmp_path / f"cut{int(fraction * 100)}.mp4"
    path.write_bytes(data[: int(len(data) * fraction)])
    try:
        sel = select_patches(path, budget=1024)
    except CodecSelectError as exc:
        assert path.name in str(exc)
    else:
        assert sel.budget == 1024 and sel.num_frames >= 1


def test_errors_are_typed_subclasses():
    assert issubclass(VideoOpenError, OSError) and issubclass(DecodeError, RuntimeError)
    assert issubclass(NoVideoStreamError, ValueError)


def test_cli_prints_one_line_no_traceback(tmp_path, capsys):
    path = tmp_path / "noise.mp4"
    path.write_bytes(b"\x00" * 1000)
    assert main(["select", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "noise.mp4" in err and err.count("\n") == 1
    assert main(["select", str(tmp_path / "missing.mp4")]) == 2
    assert "no such file" in capsys.readouterr().err
