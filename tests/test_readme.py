"""The README is the user's truth: every name its Python examples import exists, and the examples that need no model
weights, no network and no extra files run as written on the bundled sample clip."""

from __future__ import annotations

import ast
import importlib
import re
import shutil
from pathlib import Path

import pytest

import codec_select

README = Path(codec_select.__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples():
    assert len(_blocks()) >= 5


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_every_imported_name_exists(index):
    code = _blocks()[index]
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("codec_select"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    importlib.import_module(f"{node.module}.{alias.name}")  # a submodule (e.g. `viz`)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("codec_select"):
                    importlib.import_module(alias.name)


RUNNABLE = ("select_patches(\"clip.mp4\", budget=4096", "write_reference(sel", "viz.render(sel", "write_llava(sel")


@pytest.mark.parametrize("marker", RUNNABLE)
def test_examples_run_on_the_sample(marker, tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    code = next(b for b in _blocks() if marker in b)
    shutil.copy(codec_select.sample_video(), tmp_path / "clip.mp4")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README example ({marker})", "exec"), {})
