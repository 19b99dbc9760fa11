"""The SelectionReport and frame identity: every slot's ``frame_ids[k]`` is the frame shown at ``timestamps[k]``, in
both decode modes, at constant and variable frame rates; a truncated or damaged file is reported as partial (and
fails a batch unless ``--allow-partial``), never passed off as whole.

The clips carry their own frame index in their pixels: 16 black/white blocks of 16×16 px (robust to compression)
in the top strip, read back after decoding, so "which frame is this" never depends on the code under test.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import shared_videos

from codec_select import DecodeError, PartialVideoError, Selection, SelectionReport, select_patches
from codec_select.batch import run_batch
from codec_select.cli import main
from codec_select.decode.container import probe
from codec_select.decode.pixels import read_frames, slot_frames
from codec_select.decode.timeline import read_timeline
from codec_select.report import FRAME_SHARE

W, H, BLOCK, BITS = 128, 96, 16, 16

# ---------------------------------------------------------------------------------------------------------------
# Index-coded clips


def _image(i: int, background: np.ndarray) -> np.ndarray:
    img = background.copy()
    for b in range(BITS):
        r, c = divmod(b, W // BLOCK)
        img[r * BLOCK : (r + 1) * BLOCK, c * BLOCK : (c + 1) * BLOCK] = 235 if (i >> b) & 1 else 16
    x = (3 * i) % (W - 24)  # a moving square: the codec has motion vectors to export
    img[56:80, x : x + 24] = (230, 40, 30)
    return img


def pixel_index(img: np.ndarray) -> int:
    """The frame index a decoded frame carries (RGB or luma)."""
    gray = img.mean(axis=2) if img.ndim == 3 else img.astype(np.float64)
    value = 0
    for b in range(BITS):
        r, c = divmod(b, W // BLOCK)
        if gray[r * BLOCK + 4 : (r + 1) * BLOCK - 4, c * BLOCK + 4 : (c + 1) * BLOCK - 4].mean() > 128:
            value |= 1 << b
    return value


def write_indexed(path: Path, n: int, *, vfr: bool, gop: int = 12, seed: int = 0,
                  container_options: dict | None = None) -> Path:
    """``n`` frames of H.264 with B-frames; VFR: frame durations drawn from 17–100 ms (per-frame pts)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, size=(H // 8, W // 8, 3), dtype=np.uint8)
    background = np.asarray(Image.fromarray(small).resize((W, H), Image.Resampling.BILINEAR)).copy()
    durations = rng.integers(17, 101, n) if vfr else np.full(n, 40)
    pts = np.concatenate([[0], np.cumsum(durations)[:-1]])
    tb = Fraction(1, 1000)
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.time_base = tb
        stream.options = {"preset": "veryfast", "threads": "1", "g": str(gop), "bf": "2"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_image(i, background), format="rgb24")
            frame.pts, frame.time_base = int(pts[i]), tb
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def decoded(path: Path) -> list[tuple[int, float]]:
    """``(pixel index, time)`` of every frame a plain PyAV decode gives, in display order."""
    with av.open(str(path)) as container:
        return [(pixel_index(f.to_ndarray(format="gray")), float(f.time)) for f in container.decode(video=0)]


def slot_mismatches(sel: Selection, frames: list[tuple[int, float]]) -> list[int]:
    """Slots whose frame (decoded frame ``frame_ids[k] + offset`` of the file) does not carry that index in its
    pixels or is not shown at ``timestamps[k]``."""
    bad = []
    for k, (fid, t) in enumerate(zip(sel.frame_ids.tolist(), sel.timestamps.tolist())):
        i = fid + sel.report.frame_offset
        if not (0 <= i < len(frames) and frames[i][0] == i and abs(frames[i][1] - t) < 1e-6):
            bad.append(k)
    return bad


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("indexed")
    return {
        "cfr.mp4": write_indexed(folder / "cfr.mp4", 200, vfr=False),
        "vfr.mp4": write_indexed(folder / "vfr.mp4", 300, vfr=True, seed=1),
        "vfr.mkv": write_indexed(folder / "vfr.mkv", 300, vfr=True, seed=2),
    }


@pytest.fixture(scope="module")
def truth(clips) -> dict[str, list[tuple[int, float]]]:
    out = {}
    for name, path in clips.items():
        frames = decoded(path)
        assert [i for i, _ in frames] == list(range(len(frames))), "the pixel code reads back"
        out[name] = frames
    return out


# ---------------------------------------------------------------------------------------------------------------
# Frame identity


@pytest.mark.parametrize("mode", ["full", "windowed"])
@pytest.mark.parametrize("name", ["cfr.mp4", "vfr.mp4", "vfr.mkv"])
@pytest.mark.parametrize("window", [None, (1.3, 7.7)], ids=["whole", "start-end"])
def test_slot_frames_are_the_frames_at_their_timestamps(clips, truth, name, mode, window):
    path, frames = clips[name], truth[name]
    start, end = window or (None, None)
    sel = select_patches(path, budget=1024, mode=mode, start=start, end=end)
    assert sel.mode == mode
    times = np.array([t for _, t in frames])
    inside = np.flatnonzero((times >= (start or 0) - 1e-6) & (times <= (end if end is not None else np.inf) + 1e-6))
    assert sel.num_frames == inside.size, "N is the true count of frames in the window"
    assert sel.report.frame_ids_exact and sel.report.frame_offset == inside[0]
    assert slot_mismatches(sel, frames) == []
    np.testing.assert_array_equal(sel.frame_ids, np.floor(np.linspace(0, inside.size - 1, 64)).astype(np.int64))
    assert not sel.report.partial and not sel.report.fallback
    # The one pixel reader returns exactly those frames: each slot's own index is in its pixels.
    pixels = slot_frames(sel, canvas=False, luma=True)
    assert [pixel_index(img) for img in pixels] == (sel.frame_ids + sel.report.frame_offset).tolist()


def test_full_and_windowed_agree_on_vfr(clips):
    full = select_patches(clips["vfr.mkv"], budget=1024, mode="full")
    win = select_patches(clips["vfr.mkv"], budget=1024, mode="windowed")
    np.testing.assert_array_equal(win.frame_ids, full.frame_ids)
    np.testing.assert_array_equal(win.timestamps, full.timestamps)
    np.testing.assert_array_equal(win.thumbnails, full.thumbnails)  # the same slot frames, the same pixels


def test_timeline_is_the_display_order(clips, truth):
    for name, path in clips.items():
        timeline = read_timeline(path)
        np.testing.assert_allclose(timeline.times, [t for _, t in truth[name]], atol=1e-9)
        assert timeline.index_of(timeline.times[17]) == 17
        assert timeline.index_of(-1.0) == -1 and timeline.index_of(1e6) == timeline.times.size


def test_read_frames_never_substitutes_a_neighbour(clips, truth):
    path = clips["vfr.mp4"]
    got = read_frames(path, np.array([0, 150, 299]), rgb=False)
    assert [pixel_index(img) for img in got] == [0, 150, 299]
    with pytest.raises(DecodeError, match=r"1 requested frame\(s\) did not decode \(display-order index 300"):
        read_frames(path, np.array([5, 300]))


@pytest.mark.slow
def test_long_vfr_clip_goes_windowed_with_exact_ids(tmp_path):
    path = write_indexed(tmp_path / "long_vfr.mp4", 2400, vfr=True, seed=3)
    sel = select_patches(path, budget=1024)
    assert sel.mode == "windowed" and sel.num_frames == 2400 and sel.report.frame_ids_exact
    assert slot_mismatches(sel, decoded(path)) == []


# ---------------------------------------------------------------------------------------------------------------
# Partial videos


def _cut(src: Path, dst: Path, share: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * share)])
    return dst


def _noise(src: Path, dst: Path, lo: float, hi: float) -> Path:
    """Overwrite the packets between shares ``lo`` and ``hi`` of the stream with random bytes."""
    with av.open(str(src)) as c:
        packets = sorted((p.pos, p.size) for p in c.demux(video=0) if p.size)
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(1)
    for pos, size in packets[int(len(packets) * lo) : int(len(packets) * hi)]:
        data[pos : pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def damaged_clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("damaged")
    faststart = write_indexed(folder / "whole_faststart.mp4", 150, vfr=True,
                              container_options={"movflags": "+faststart"})
    mkv = write_indexed(folder / "whole.mkv", 150, vfr=True)
    return {
        "whole_faststart.mp4": faststart,
        "whole.mkv": mkv,
        "cut_third.mp4": _cut(faststart, folder / "cut_third.mp4", 1 / 3),
        "cut_80.mkv": _cut(mkv, folder / "cut_80.mkv", 0.8),
        "noise_tail.mp4": _noise(faststart, folder / "noise_tail.mp4", 0.6, 1.0),
    }


@pytest.mark.parametrize("mode", ["full", "windowed"])
def test_whole_files_are_not_partial(damaged_clips, mode):
    for name in ("whole_faststart.mp4", "whole.mkv"):
        sel = select_patches(damaged_clips[name], budget=1024, mode=mode)
        r = sel.report
        assert not r.partial and r.partial_reason == "", (name, str(r))
        assert r.frames_found == sel.num_frames == 150
        assert abs(r.seconds_decoded - r.seconds_declared) < 0.2, str(r)
        assert "WARNING" not in sel.summary()


@pytest.mark.parametrize("mode", ["full", "windowed"])
@pytest.mark.parametrize("name", ["cut_third.mp4", "cut_80.mkv", "noise_tail.mp4"])
def test_truncated_and_damaged_tails_are_partial(damaged_clips, name, mode):
    sel = select_patches(damaged_clips[name], budget=1024, mode=mode)
    r = sel.report
    assert r.partial and r.partial_reason, str(r)
    assert r.seconds_decoded < r.seconds_declared or r.frames_found < FRAME_SHARE * r.frames_declared, str(r)
    if name.endswith(".mp4"):  # the MP4 sample table declares the whole file's frames
        assert r.frames_declared == 150 and r.frames_found < FRAME_SHARE * 150
    assert "WARNING  partial video" in sel.summary()
    assert "partial   YES" in str(r)


@pytest.mark.parametrize("recipe", ["onevision-stage1", "onevision-ap"])
@pytest.mark.parametrize("name", ["cut_third.mp4", "noise_tail.mp4"])
def test_recipes_report_partial_and_damaged_videos(damaged_clips, name, recipe):
    """A recipe never passes a damaged file off as whole: a slot frame of the reference's grid that does not decode
    is a typed error naming the file (the reference's grid cannot be kept), anything else is reported partial with
    what the shared decoder saw of the damage."""
    try:
        r = select_patches(damaged_clips[name], recipe=recipe).report
    except DecodeError as exc:
        assert name in str(exc) and "damaged" in str(exc)
    else:
        assert r.partial and r.partial_reason, str(r)


def test_report_round_trips_and_old_files_load(damaged_clips, tmp_path):
    sel = select_patches(damaged_clips["cut_third.mp4"], budget=1024)
    back = Selection.load_npz(sel.save_npz(tmp_path / "sel.npz"))
    assert back.report == sel.report and back.report.partial
    assert json.loads(sel.report.to_json())["partial"] is True
    # A file written before the report existed: its meta has no "report" key; it loads with the defaults.
    with np.load(tmp_path / "sel.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["report"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    old = Selection.load_npz(tmp_path / "old.npz")
    assert old.report == SelectionReport() and not old.report.partial
    assert np.array_equal(old.frame_ids, sel.frame_ids)


def test_signals_reason_and_fallback(tmp_path, clips):
    sel = select_patches(clips["cfr.mp4"], budget=1024)
    assert sel.report.signals == sel.signals == "codec-mv" and "exports motion vectors" in sel.report.signals_reason
    assert not sel.report.fallback
    intra = tmp_path / "intra.mp4"
    write_indexed(intra, 40, vfr=False, gop=1)
    sel = select_patches(intra, budget=1024)
    assert sel.signals == "estimated-motion" and sel.report.signals_fallback and sel.report.fallback
    assert "fell back" in sel.report.signals_reason and "signals fell back" in sel.summary()


def test_probe_notes_what_it_could_not_read(tmp_path, clips):
    assert probe(clips["cfr.mp4"]).notes == ()
    raw = tmp_path / "raw.h264"  # an elementary stream: no container duration for the video stream
    with av.open(str(clips["cfr.mp4"])) as src, av.open(str(raw), "w", format="h264") as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    info = probe(raw)
    assert info.duration_source in ("", "container") and info.notes, info


@pytest.mark.skipif(not any(p.name == "ytb_YVQwAEKZpaU.mp4" for p in shared_videos()), reason="needs shared/videos")
def test_the_issue_truncated_third(tmp_path):
    src = next(p for p in shared_videos() if p.name == "ytb_YVQwAEKZpaU.mp4")
    whole = select_patches(src)
    third = select_patches(_cut(src, tmp_path / "third.mp4", 1 / 3))
    assert not whole.report.partial and whole.report.frames_found == whole.report.frames_declared
    assert third.report.partial and third.report.frames_declared == whole.report.frames_declared
    assert third.report.frames_found < whole.report.frames_declared / 2


# ---------------------------------------------------------------------------------------------------------------
# Batch


def test_batch_records_partial_videos_as_failures(damaged_clips, tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"id": n, "video": str(damaged_clips[n])}) + "\n"
                                for n in ("whole.mkv", "cut_third.mp4")))
    out = tmp_path / "out"
    args = ["batch", str(manifest), "--out", str(out), "--budget", "1024", "--no-progress", "--workers", "1"]
    assert main(args) == 1
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [(f["id"], f["error_class"]) for f in failures] == [("cut_third.mp4", PartialVideoError.__name__)]
    assert "--allow-partial" in failures[0]["error"] and not (out / "cut_third.mp4.npz").exists()
    assert (out / "whole.mkv.npz").exists()
    assert main(args + ["--allow-partial"]) == 0
    assert (out / "failures.jsonl").read_text() == ""
    assert Selection.load_npz(out / "cut_third.mp4.npz").report.partial


def test_parquet_rows_carry_the_report(damaged_clips, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    summary = run_batch([str(damaged_clips["cut_80.mkv"])], tmp_path / "pq", fmt="parquet", workers=1,
                        budget=1024, progress=False, allow_partial=True)
    assert summary.failures == 0
    (part,) = sorted((tmp_path / "pq" / "parquet").glob("part-*.parquet"))
    report = json.loads(pq.read_table(part).column("report").to_pylist()[0])
    assert report["partial"] is True and report["frame_ids_exact"] is True


def test_cli_select_warns_about_a_partial_video(damaged_clips, capsys):
    assert main(["select", str(damaged_clips["cut_80.mkv"]), "--budget", "1024"]) == 0
    out, err = capsys.readouterr()
    assert "WARNING  partial video" in out and "warning: " in err and "partial video" in err
    assert main(["select", str(damaged_clips["whole.mkv"]), "--budget", "1024", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["report"]["partial"] is False and "warning" not in err


# ---------------------------------------------------------------------------------------------------------------
# Consumers read the slot frames through the one pixel reader


@pytest.mark.parametrize("mode", ["full", "windowed"])
def test_consumers_show_the_scored_frames(clips, truth, monkeypatch, mode):
    """Encoding, the LLaVA mosaic and viz all get their pixels from ``slot_frames``, by timestamp: on a VFR clip
    with a window, every frame a consumer asks for carries the index the selection names for that slot."""
    pytest.importorskip("torch")
    import codec_select.decode.pixels as pixels_module
    import codec_select.encoder.pipeline as pipeline
    import codec_select.export.llava as llava
    import codec_select.viz as viz

    sel = select_patches(clips["vfr.mkv"], budget=1024, mode=mode, start=1.3, end=7.7)
    seen: dict[str, list[int]] = {}

    def recording(name):
        def read(selection, *, canvas=True, slots=None, luma=False):
            slots_used = np.arange(64) if slots is None else np.asarray(slots).reshape(-1)
            raw = pixels_module.slot_frames(selection, canvas=False, slots=slots_used, luma=True)
            seen[name] = [pixel_index(img) - int(selection.frame_ids[k] + selection.report.frame_offset)
                          for img, k in zip(raw, slots_used.tolist())]
            return pixels_module.slot_frames(selection, canvas=canvas, slots=slots, luma=luma)
        return read

    for name, module in (("encode", pipeline), ("llava", llava), ("viz", viz)):
        monkeypatch.setattr(module, "slot_frames", recording(name))
    mosaic, _ = pipeline.encoder_inputs(sel, patch_size=None)
    images = llava.mosaic_images(sel)
    drawn = viz.render(sel, panels=("frame",))
    assert set(seen) == {"encode", "llava", "viz"}, "every consumer reads through slot_frames"
    for name, offsets in seen.items():
        assert offsets and all(d == 0 for d in offsets), f"{name} was shown other frames than the scored ones"
    assert mosaic.shape[2] == images.shape[0] and drawn.shape[0] == 64
