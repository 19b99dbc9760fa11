"""Where compiled kernels are cached: a user cache folder (or CODEC_SELECT_CACHE_DIR), never the package's own
folder — numba files there outlive `pip uninstall` and leave an empty `codec_select` folder in site-packages that
shadows a later editable install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import codec_select.kernels as K

CHILD = """
import json
import codec_select.kernels as K
from codec_select.kernels.motion import _rasterise_mvs_kernel
from codec_select.kernels.pool import _pool_cells_kernel
K.warmup(["rasterise_mvs", "pool_cells"])
stats = [_rasterise_mvs_kernel.stats, _pool_cells_kernel.stats]
print(json.dumps({"hits": sum(sum(s.cache_hits.values()) for s in stats),
                  "misses": sum(sum(s.cache_misses.values()) for s in stats),
                  "folder": str(K._jit.locate_cache()), "empty": K.cache_is_empty()}))
"""


def _child(env_updates: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "CODEC_SELECT_CACHE_DIR")}
    env.update(env_updates)
    res = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _package_cache_files(since: float) -> list[Path]:
    folder = Path(K.__file__).resolve().parent
    return [p for p in folder.rglob("*.nb[ic]") if p.stat().st_mtime >= since]


def test_default_cache_is_the_user_cache_folder_and_serves_a_second_process(tmp_path):
    since = time.time() - 1
    env = {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    first = _child(env)
    assert first["misses"] > 0 and not first["empty"]
    assert Path(first["folder"]).is_relative_to(tmp_path / "xdg" / "codec-select")
    assert list(Path(first["folder"]).glob("*.nbi")), "nothing was cached in the user cache folder"
    second = _child(env)
    assert second["hits"] > 0 and second["misses"] == 0, second
    assert not _package_cache_files(since), "kernel cache written into the package folder"


def test_override_folder(tmp_path):
    since = time.time() - 1
    out = _child({"CODEC_SELECT_CACHE_DIR": str(tmp_path / "mine"), "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert Path(out["folder"]).is_relative_to(tmp_path / "mine")
    assert list(Path(out["folder"]).glob("*.nbi"))
    assert not (tmp_path / "xdg").exists()
    assert not _package_cache_files(since)


def test_numba_cache_dir_still_wins(tmp_path):
    out = _child({"NUMBA_CACHE_DIR": str(tmp_path / "numba"), "CODEC_SELECT_CACHE_DIR": str(tmp_path / "mine")})
    assert Path(out["folder"]).is_relative_to(tmp_path / "numba")
    assert list(Path(out["folder"]).glob("*.nbi")) and not (tmp_path / "mine").exists()


def test_warmup_rejects_unknown_steps():
    import pytest

    with pytest.raises(ValueError, match="Invalid warm-up step"):
        K.warmup(["no_such_kernel"])
