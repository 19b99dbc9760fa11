"""Batch mode: manifests, 20 videos with 3 broken on both engines, every output format, kill + resume, crashes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import shared_videos

from codec_select import Selection, sample_video, select_patches
from codec_select.batch import BatchItem, read_manifest, run_batch
from codec_select.batch import engines as batch_engines
from codec_select.batch.worker import BatchConfig
from codec_select.cli import main
from codec_select.export import read_reference
from codec_select.export.llava import read_llava
from codec_select.select import consumer_options


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _broken(folder: Path, good: Path) -> dict[str, Path]:
    """Truncated to 1 %, random bytes, audio-only: each fails differently."""
    data = good.read_bytes()
    trunc = folder / "truncated.mp4"
    trunc.write_bytes(data[: len(data) // 100])
    rand = folder / "random.mp4"
    rand.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    audio = folder / "audio_only.mp4"
    _audio_only(audio)
    return {"bad_truncated": trunc, "bad_random": rand, "bad_audio": audio}


@pytest.fixture(scope="module")
def batch20(tmp_path_factory, square_clip, square_clip_nob, pan_clip, static_clip):
    """20 entries: 17 good (5 distinct clips, linked under several names) and 3 broken, as a JSONL manifest with
    relative paths."""
    folder = tmp_path_factory.mktemp("batch20")
    clips = [square_clip[0], square_clip_nob[0], pan_clip[0], static_clip[0], Path(sample_video())]
    lines = []
    for i in range(17):
        link = folder / f"clip{i:02d}{clips[i % 5].suffix}"
        os.symlink(clips[i % 5], link)
        lines.append({"id": f"good{i:02d}", "video": link.name, "label": i})
    broken = _broken(folder, clips[0])
    for pos, (sid, path) in zip((3, 9, 15), broken.items()):
        lines.insert(pos, {"id": sid, "video": path.name})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return manifest


def _failures(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (out / "failures.jsonl").read_text().splitlines())}


EXPECTED_FAILURES = {
    "bad_truncated": "VideoOpenError", "bad_random": "VideoOpenError", "bad_audio": "NoVideoStreamError",
}


def test_local_engine_20_videos_3_broken(batch20, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["batch", str(batch20), "--out", str(out), "--workers", "2", "--budget", "1024", "--no-progress", "--json"]
    assert main(argv) == 1  # something failed
    summary = json.loads(capsys.readouterr().out)
    assert (summary["ok"], summary["failed"], summary["skipped"], summary["failures"]) == (17, 3, 0, 3)
    assert summary["videos_per_s"] > 0 and summary["frames_per_s"] > 0
    assert sorted(p.name for p in out.iterdir()) == sorted([f"good{i:02d}.npz" for i in range(17)] + ["failures.jsonl"])
    failures = _failures(out)
    assert {k: v["error_class"] for k, v in failures.items()} == EXPECTED_FAILURES
    assert "no video stream" in failures["bad_audio"]["error"] and "random.mp4" in failures["bad_random"]["error"]
    for sid in ("good00", "good08"):
        ref = select_patches(batch20.parent / f"clip{sid[4:]}.mp4", budget=1024)
        np.testing.assert_array_equal(Selection.load_npz(out / f"{sid}.npz").visible_indices, ref.visible_indices)
    # rerun: nothing to redo but the failures, which fail again
    assert main(argv) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["ok"], summary["failed"], summary["skipped"]) == (0, 3, 17)
    # fix one broken video: it succeeds and leaves failures.jsonl
    shutil.copy(sample_video(), batch20.parent / "fixed.mp4")
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(batch20.read_text().replace('"truncated.mp4"', f'"{batch20.parent / "fixed.mp4"}"'))
    assert main(["batch", str(fixed), "--out", str(out), "--budget", "1024", "--no-progress", "--json"]) == 1
    assert set(_failures(out)) == {"bad_random", "bad_audio"} and (out / "bad_truncated.npz").exists()


@pytest.fixture()
def ray_local():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_engine_20_videos_3_broken(batch20, tmp_path, ray_local):
    import pyarrow.parquet as pq

    out = tmp_path / "ray"
    summary = run_batch(batch20, out, engine="ray", workers=2, budget=1024, progress=False)
    assert (summary.ok, summary.failed, summary.failures, summary.engine) == (17, 3, 3, "ray")
    assert {k: v["error_class"] for k, v in _failures(out).items()} == EXPECTED_FAILURES
    table = pq.read_table(out / "parquet")
    rows = {r["id"]: r for r in table.to_pylist()}
    assert len(rows) == table.num_rows == 20
    assert {k for k, r in rows.items() if r["error_class"] is not None} == set(EXPECTED_FAILURES)
    ref = select_patches(batch20.parent / "clip01.mp4", budget=1024)
    good = rows["good01"]
    np.testing.assert_array_equal(good["visible_indices"], ref.visible_indices)
    np.testing.assert_array_equal(np.array(good["positions_thw"]), ref.positions_thw)
    np.testing.assert_array_equal(good["frame_ids"], ref.frame_ids)
    np.testing.assert_allclose(good["timestamps"], ref.timestamps)
    assert good["signals"] == "codec-mv" and good["timings"]["total"] > 0 and json.loads(good["extra"]) == {"label": 1}
    # rerun on the same Ray instance: finished videos skipped, no duplicate row
    again = run_batch(batch20, out, engine="ray", workers=2, budget=1024, progress=False)
    assert (again.ok, again.failed, again.skipped) == (0, 3, 17)
    ids = pq.read_table(out / "parquet", columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == sorted(rows)
    # file formats are written by the Ray workers
    npz = run_batch(batch20, tmp_path / "ray_npz", engine="ray", fmt="npz", workers=2, budget=1024, progress=False)
    assert (npz.ok, npz.failed) == (17, 3) and len(list((tmp_path / "ray_npz").glob("*.npz"))) == 17


def _small_manifest(folder: Path, clips: list[Path]) -> Path:
    manifest = folder / "m.csv"
    rows = ["id,video,caption"] + [f"s{i},{c},clip {i}" for i, c in enumerate(clips)] + ["gone,missing.mp4,x"]
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


@pytest.mark.parametrize("fmt", ["reference", "llava", "parquet"])
def test_formats_match_the_selection(fmt, square_clip, pan_clip, tmp_path):
    clips = [square_clip[0], pan_clip[0]]
    manifest = _small_manifest(tmp_path, clips)
    out = tmp_path / "out"
    summary = run_batch(manifest, out, fmt=fmt, workers=2, progress=False, image_format="png")
    assert (summary.ok, summary.failed) == (2, 1)
    assert _failures(out)["gone"]["error_class"] == "VideoOpenError"
    geometry = "llava576" if fmt == "llava" else "ap224"
    # The formats that feed the encoder default to the geometry's reference recipe; parquet to our own selector.
    options = consumer_options(geometry, {}) if fmt in ("reference", "llava") else {"geometry": geometry}
    assert options.get("recipe") == {"reference": "onevision-ap", "llava": "onevision-stage1"}.get(fmt)
    refs = [select_patches(c, **options) for c in clips]
    if fmt == "reference":
        for i, ref in enumerate(refs):
            (meta,) = out.glob(f"sample_s{i}__*.meta.json")
            thw, frame_ids, info = read_reference(meta)
            np.testing.assert_array_equal(thw[np.lexsort(thw.T[::-1])], ref.positions_thw)  # same cells
            np.testing.assert_array_equal(frame_ids, ref.frame_ids)
            assert info["sample_id"] == f"s{i}" and info["K"] == 4096
    elif fmt == "llava":
        records = [json.loads(x) for x in (out / "training_codec.jsonl").read_text().splitlines()]
        assert [r["id"] for r in records] == ["s0", "s1"]
        for rec, ref in zip(records, refs):
            images, positions = read_llava(rec)
            assert images.shape == (8, 576, 576, 3) and rec["conversations"][0]["value"].count("<image>") == 8
            np.testing.assert_array_equal(positions, ref.positions_thw)
    else:
        import pyarrow.parquet as pq

        rows = {r["id"]: r for r in pq.read_table(out / "parquet").to_pylist()}
        assert set(rows) == {"s0", "s1", "gone"} and rows["gone"]["error_class"] == "VideoOpenError"
        for i, ref in enumerate(refs):
            np.testing.assert_array_equal(rows[f"s{i}"]["visible_indices"], ref.visible_indices)
            assert json.loads(rows[f"s{i}"]["extra"]) == {"caption": f"clip {i}"}
    # resumable: a rerun redoes only the failure
    again = run_batch(manifest, out, fmt=fmt, workers=1, progress=False, image_format="png")
    assert (again.ok, again.failed, again.skipped) == (0, 1, 2)
    if fmt == "parquet":  # --overwrite redoes everything and replaces the old rows instead of duplicating them
        import pyarrow.parquet as pq

        redo = run_batch(manifest, out, fmt=fmt, workers=2, progress=False, overwrite=True)
        assert (redo.ok, redo.failed, redo.skipped) == (2, 1, 0)
        assert sorted(pq.read_table(out / "parquet", columns=["id"]).column("id").to_pylist()) == ["gone", "s0", "s1"]


def _slow_clip(folder: Path) -> Path:
    videos = shared_videos()
    if videos:
        return videos[0]
    from codec_select.synth import Scene, make_clip

    path = folder / "long.mp4"
    make_clip(path, Scene(kind="objects", width=640, height=360, frames=600))
    return path


def test_kill_midway_then_rerun(tmp_path):
    """SIGKILL the batch CLI (and its workers) once a few outputs exist; the rerun finishes with exactly one output
    per video, none lost, none duplicated, no temp file left."""
    clip = _slow_clip(tmp_path)
    n = 10
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"k{i:02d}", "video": str(clip)}) + "\n" for i in range(n)))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "codec_select.cli", "batch", str(manifest), "--out", str(out), "--workers", "1",
           "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120

    def finished() -> list[str]:  # final names only: "k01.npz.tmp.npz" is a write in progress
        return sorted(p.name for p in out.glob("k*.npz") if re.fullmatch(r"k\d\d\.npz", p.name))

    try:
        while not (out.is_dir() and len(finished()) >= 2):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the batch produced no output in 120 s"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    done = finished()
    assert 2 <= len(done) < n, "the batch finished before the kill; make the clip longer"
    (out / ".k09.npz.12345.tmp").write_bytes(b"partial")  # what a kill inside a write leaves
    (out / "k08.npz.tmp.npz").write_bytes(b"partial")
    summary = run_batch(manifest, out, workers=2, progress=False)
    assert (summary.ok, summary.failed, summary.skipped, summary.failures) == (n - len(done), 0, len(done), 0)
    assert sorted(p.name for p in out.iterdir()) == sorted([f"k{i:02d}.npz" for i in range(n)] + ["failures.jsonl"])
    assert (out / "failures.jsonl").read_text() == ""
    ref = select_patches(clip)
    for i in range(n):
        np.testing.assert_array_equal(Selection.load_npz(out / f"k{i:02d}.npz").visible_indices, ref.visible_indices)


def test_worker_crash_and_hang_cost_one_video_each(tmp_path, monkeypatch):
    """A worker that dies or hangs loses its own video only; it is replaced and the rest goes on."""

    def fake_process(item, cfg):
        if item.id == "crash":
            os._exit(3)
        if item.id == "hang":
            time.sleep(120)
        return {"id": item.id, "video": item.video, "error_class": None, "error": None, "num_frames": 5}

    monkeypatch.setattr(batch_engines, "process_item", fake_process)  # inherited by fork-started workers
    items = [BatchItem(s, f"{s}.mp4") for s in ("a", "crash", "b", "hang", "c", "d")]
    cfg = BatchConfig(str(tmp_path), "npz", {})
    rows: list[dict] = []
    batch_engines.run_local(items, cfg, rows.append, workers=2, numba_threads=1, ffmpeg_threads=0,
                            hard_timeout=3.0, start_method="fork")
    result = {r["id"]: r["error_class"] for r in rows}
    assert len(rows) == 6
    assert result == {"a": None, "b": None, "c": None, "d": None, "crash": "WorkerCrashedError",
                      "hang": "SelectionTimeoutError"}


def test_read_manifest_formats(tmp_path):
    (tmp_path / "v").mkdir()
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"id": 1, "video": "v/x.mp4", "conversations": []}\n\n"v/y.mp4"\n{"path": "/abs/z.mp4"}\n')
    items = read_manifest(jsonl)
    assert [(i.id, i.video) for i in items] == [
        ("1", str(tmp_path / "v/x.mp4")), ("y", str(tmp_path / "v/y.mp4")), ("z", "/abs/z.mp4")]
    assert items[0].extra == {"conversations": []}
    as_json = tmp_path / "b.json"
    as_json.write_text(json.dumps(["x.mp4", {"video": "d/x.mp4"}]))
    ids = [i.id for i in read_manifest(as_json, video_root="/data")]
    assert len(set(ids)) == 2 and all(i.startswith("x-") for i in ids)  # same stem: made unique
    headerless = tmp_path / "c.csv"
    headerless.write_text("one.mp4\ntwo.mp4\n")
    assert [i.id for i in read_manifest(headerless)] == ["one", "two"]
    text = tmp_path / "d.txt"
    text.write_text("# videos\nthree.mp4\n")
    assert [i.video for i in read_manifest(text)] == [str(tmp_path / "three.mp4")]
    assert BatchItem("a/b c", "x").name.startswith("a_b_c-") and BatchItem("ok-1.2", "x").name == "ok-1.2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "video": "x.mp4"}\n{"id": "a", "video": "y.mp4"}\n', "duplicate id 'a'"),
        ('{"id": "a"}\n', "Manifest entry 1 has no video path"),
        ('{"id": "a", "video": "x.mp4"}\n{oops\n', "m.jsonl:2: not valid JSON"),
    ],
)
def test_manifest_errors(tmp_path, content, message):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_manifest(manifest)


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    manifest = tmp_path / "m.txt"
    manifest.write_text(f"{sample_video()}\n")
    assert main(["batch", str(manifest), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert main(["batch", str(manifest), "--out", str(tmp_path / "o"), "--format", "llava", "--budget", "1000"]) == 2
    assert "multiple of 1296" in capsys.readouterr().err


def test_import_is_cheap():
    code = ("import sys, codec_select.batch; "
            "print(sorted(m for m in ('torch', 'ray', 'tqdm', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
