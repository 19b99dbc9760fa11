"""A short fuzz run in CI: hypothesis mutates small valid clips (bit flips, header integers, inserted, deleted,
duplicated and truncated bytes); every case ends in a Selection or a typed error naming the file, within a time
limit. In-process, so a segfault would take the test run down with it (the long run, ``run_fuzz.py``, isolates each
case in a subprocess and reports segfaults and hangs)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutate import INTERESTING, SEEDS, apply_ops, make_seeds, run_case

CASE_LIMIT_S = 60.0
"""A hang guard, not a speed target: a case takes well under a second once the kernels are compiled (the
``warm_kernels`` fixture compiles them before any case is timed); the long run (run_fuzz.py) kills real hangs."""
_DIR = Path(tempfile.mkdtemp(prefix="codec_select_fuzz_"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
_SEED_BYTES: dict[str, bytes] = {}


def _seeds() -> dict[str, bytes]:
    if not _SEED_BYTES:
        _SEED_BYTES.update(make_seeds(_DIR / "seeds"))
    return _SEED_BYTES


frac = st.floats(0.0, 1.0, exclude_max=True, allow_nan=False)
op = st.one_of(
    st.tuples(st.just("flip"), frac, st.integers(0, 7)),
    st.tuples(st.just("set"), frac, st.integers(0, 255)),
    st.tuples(st.just("int32"), frac, st.sampled_from(INTERESTING), st.booleans()),
    st.tuples(st.just("fill"), frac, st.integers(1, 512), st.sampled_from([0, 0xFF, 0x47])),
    st.tuples(st.just("insert"), frac, st.lists(st.integers(0, 255), min_size=1, max_size=32)),
    st.tuples(st.just("delete"), frac, st.integers(1, 256)),
    st.tuples(st.just("copy"), frac, frac, st.integers(1, 2048)),
    st.tuples(st.just("truncate"), frac),
)


@pytest.mark.timeout(300)
@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(seed=st.sampled_from(sorted(SEEDS)), ops=st.lists(op, min_size=1, max_size=5),
       mode=st.sampled_from(["full", "windowed"]))
def test_mutated_clips_never_crash(warm_kernels, seed, ops, mode):
    path = _DIR / f"case{Path(seed).suffix}"
    path.write_bytes(apply_ops(_seeds()[seed], ops))
    t0 = time.perf_counter()
    outcome = run_case(path, mode, timeout=CASE_LIMIT_S / 2)
    assert time.perf_counter() - t0 < CASE_LIMIT_S, f"{seed} {ops} {mode}: took too long"
    assert outcome == "ok" or outcome.startswith("error:")


def test_unmutated_seeds_select():
    for name, data in _seeds().items():
        path = _DIR / f"clean_{name}"
        path.write_bytes(data)
        for mode in ("full", "windowed"):
            assert run_case(path, mode) == "ok", (name, mode)


@pytest.mark.timeout(120)
def test_long_run_harness_catches_segfaults_and_hangs():
    """run_fuzz.py isolates cases in workers: a planted SIGSEGV and a planted hang are reported, the run goes on."""
    import subprocess
    import sys

    script = Path(__file__).with_name("run_fuzz.py")
    res = subprocess.run([sys.executable, str(script), "--self-test"], capture_output=True, text=True, timeout=110)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "caught both" in res.stdout


# Cases the long run found (seed, case): read_frames stacking frames of two sizes after a mid-stream resolution
# change (263, 4340), a failing fallback seek escaping as av.PermissionError / MemoryError (4816, 10518).
REGRESSIONS = [(1, 263), (1, 4340), (1, 4816), (1, 10518)]


@pytest.mark.parametrize(("seed", "case"), REGRESSIONS)
def test_long_run_regressions(seed, case):
    import numpy as np
    from mutate import random_case

    name, ops, mode = random_case(np.random.default_rng([seed, case]))
    path = _DIR / f"regression_{seed}_{case}{Path(name).suffix}"
    path.write_bytes(apply_ops(_seeds()[name], ops))
    outcome = run_case(path, mode)
    assert outcome == "ok" or outcome.startswith("error:")
