"""The command line as a user runs it: the bundled sample, outputs, JSON."""

from __future__ import annotations

import json

import numpy as np

from codec_select import Selection
from codec_select.cli import main
from codec_select.export import read_reference


def test_select_bundled_sample(capsys):
    assert main(["select"]) == 0
    out = capsys.readouterr().out
    assert "sample.mp4" in out and "signals: codec-mv" in out and "K=4096" in out


def test_select_writes_npz_and_json(square_clip, tmp_path, capsys):
    path, _ = square_clip
    out = tmp_path / "sel.npz"
    assert main(["select", str(path), "--budget", "1024", "-o", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["budget"] == 1024 and info["written"] == [str(out)] and len(info["patches_per_slot"]) == 64
    sel = Selection.load_npz(out)
    assert sel.budget == 1024 and sel.geometry.grid_h == 16


def test_reference_dir(square_clip, tmp_path, capsys):
    path, _ = square_clip
    assert main(["select", str(path), "--geometry", "llava576", "--reference-dir", str(tmp_path)]) == 0
    metas = list(tmp_path.glob("*.meta.json"))
    assert len(metas) == 1 and "_T64_square576_p16_K10368" in metas[0].name
    thw, frame_ids, meta = read_reference(metas[0])
    assert thw.dtype == np.int32 and thw.shape == (10368, 3) and frame_ids.shape == (64,)
    assert meta["K"] == 10368 and meta["S_total"] == 1296 and meta["hb"] == 36
    assert np.all(np.diff(thw[:, 0] * 1296 + thw[:, 1] * 36 + thw[:, 2]) > 0)


def test_help_lists_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "select" in capsys.readouterr().out
