"""The package's shape: no import cycles (lazy imports inside functions included) and no private name imported
from another module, so the folder list shows the data flow and every module can be read on its own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import codec_select.kernels

import codec_select

PACKAGE = Path(codec_select.__file__).resolve().parent
KERNELS = Path(codec_select.kernels.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for root, prefix in ((PACKAGE, "codec_select"), (KERNELS, "codec_select.kernels")):
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if root == PACKAGE and parts[:1] == ["kernels"]:
                continue
            out[".".join([prefix, *parts])] = path
    return out


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, imported names) for every import statement, at any depth (lazy ones included)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, names in _imports(name, path):
            for candidate in [f"{target}.{n}" for n in names] + [target]:
                if candidate in mods and candidate != name:
                    # A package's __init__ re-exporting its own submodules is its public face, not data flow.
                    if not (mods[name].name == "__init__.py" and candidate.startswith(name + ".")):
                        graph[name].add(candidate)
                    break
    return graph


def test_no_private_names_imported_across_modules():
    mods = _modules()
    bad = []
    for name, path in mods.items():
        for target, names in _imports(name, path):
            if target.startswith("codec_select") and target != name:
                bad += [f"{name} imports {target}.{n}" for n in names if n.startswith("_") and n != "__version__"]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(cycles)


MAX_LINES = 420
"""One job per module: about 400 lines at most (a little slack for a docstring that grows)."""


def test_modules_stay_small():
    big = {name: n for name, path in _modules().items()
           if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_one_decoder():
    """Only the decode layer opens a decoder: everything else reads frames through ``decode.reader.Reader`` (the
    benchmark's plain-PyAV floor aside, which measures PyAV itself)."""
    allowed = {"codec_select.decode.reader", "codec_select.decode.container", "codec_select.eval.timing",
               "codec_select.eval.bench"}
    bad = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if name not in allowed and re.search(r"\b(packet|container|c|s|stream)\.decode\(", text):
            bad.append(name)
    assert not bad, f"modules decoding outside codec_select.decode: {bad}"


def test_benchmarks_import_the_installed_package():
    """Benchmarks measure what users install: no checkout root or tests/ folder put on sys.path."""
    root = PACKAGE.parent
    bad = []
    for path in sorted((root / "benchmarks").glob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "sys.path" in line and ("tests" in line or "parents[1]" in line or "ROOT" in line):
                bad.append(f"{path.name}: {line.strip()}")
    assert not bad, "\n".join(bad)
