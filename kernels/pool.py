"""Pool block-grid energy onto canvas patch cells by exact area overlap (separable: rows, then columns)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT, check_array

__all__ = ["pool_cells", "pool_cells_planned", "pool_plan"]


@njit(**JIT)
def _cell_span(lo, hi, cell, n):
    """Indices [first, last) of the cells [i·cell, (i+1)·cell), i < n, that can overlap [lo, hi)."""
    a = np.floor(lo / cell)
    b = np.ceil(hi / cell)
    a = min(max(a, 0.0), float(n))
    b = min(max(b, 0.0), float(n))
    return int(a), int(b)


@njit(**JIT)
def _pool_into(energy, cell, row_edges, col_edges, out, rowbuf):
    gh = energy.shape[0]
    gw = energy.shape[1]
    hp = out.shape[0]
    wp = out.shape[1]
    # Only the source columns under the canvas matter.
    j_first, j_end = _cell_span(col_edges[0], col_edges[wp], cell, gw)
    for h in range(hp):
        r0 = row_edges[h]
        r1 = row_edges[h + 1]
        for j in range(j_first, j_end):
            rowbuf[j] = 0.0
        i_first, i_end = _cell_span(r0, r1, cell, gh)
        for i in range(i_first, i_end):
            wgt = min((i + 1) * cell, r1) - max(i * cell, r0)
            if wgt > 0.0:
                for j in range(j_first, j_end):
                    rowbuf[j] += wgt * energy[i, j]
        for w in range(wp):
            c0 = col_edges[w]
            c1 = col_edges[w + 1]
            jj_first, jj_end = _cell_span(c0, c1, cell, gw)
            acc = 0.0
            for j in range(jj_first, jj_end):
                wgt = min((j + 1) * cell, c1) - max(j * cell, c0)
                if wgt > 0.0:
                    acc += wgt * rowbuf[j]
            out[h, w] = acc


@njit(**JIT)
def _edges_ok(edges):
    """Finite and non-decreasing (checked here: the numpy version of this test costs more than the pooling)."""
    for k in range(edges.shape[0]):
        if not np.isfinite(edges[k]):
            return False
        if k > 0 and edges[k] < edges[k - 1]:
            return False
    return True


@njit(**JIT)
def _pool_cells_kernel(energy, cell, row_edges, col_edges, out):
    if not (_edges_ok(row_edges) and _edges_ok(col_edges)):
        return out, False
    rowbuf = np.zeros(energy.shape[1], dtype=np.float64)
    _pool_into(energy, cell, row_edges, col_edges, out, rowbuf)
    return out, True


def _check_pool_args(cell_px, row_edges, col_edges) -> float:
    cell_px = float(cell_px)
    if not (cell_px > 0.0 and np.isfinite(cell_px)):
        raise ValueError(f"cell_px must be a positive number of source pixels, got {cell_px}.")
    for name, edges in (("row_edges", row_edges), ("col_edges", col_edges)):
        check_array(name, edges, np.float64, ndim=1)
        if edges.shape[0] < 2:
            raise ValueError(f"{name} needs at least 2 boundaries, got {edges.shape[0]}.")
    return cell_px


def _raise_bad_edges() -> None:
    raise ValueError("row_edges and col_edges must be finite and non-decreasing.")


def pool_cells(energy: np.ndarray, cell_px: float, row_edges: np.ndarray, col_edges: np.ndarray) -> np.ndarray:
    """Area-weighted sum of block energy over canvas cells.

    ``energy`` float32 ``[gh, gw]`` is constant over source pixels, cell (i, j) covering rows
    ``[i·cell_px, (i+1)·cell_px)`` and columns likewise. ``row_edges`` float64 ``[Hp + 1]`` and ``col_edges``
    float64 ``[Wp + 1]`` are the source-pixel boundaries of the canvas cells (non-decreasing; parts outside the
    source contribute nothing). Returns float32 ``[Hp, Wp]``:
    ``out[h, w] = Σ_ij energy[i, j] · overlap(rows i, row cell h) · overlap(cols j, col cell w)``.
    """
    check_array("energy", energy, np.float32, ndim=2)
    cell_px = _check_pool_args(cell_px, row_edges, col_edges)
    out = np.empty((row_edges.shape[0] - 1, col_edges.shape[0] - 1), dtype=np.float32)
    out, ok = _pool_cells_kernel(energy, cell_px, row_edges, col_edges, out)
    if not ok:
        _raise_bad_edges()
    return out


# ---------------------------------------------------------------------------------------------------------------
# A pooling plan: the overlaps of one geometry computed once, then every frame is pure multiply-adds


@njit(**JIT)
def _axis_plan_kernel(edges, cell, n, count, index, weight):
    """Per canvas cell along one axis: the source cells with a positive overlap, in the order _pool_into adds
    them, and the overlaps (the same float64 expressions, so the same bits)."""
    for h in range(edges.shape[0] - 1):
        lo = edges[h]
        hi = edges[h + 1]
        first, end = _cell_span(lo, hi, cell, n)
        m = 0
        for i in range(first, end):
            wgt = min((i + 1) * cell, hi) - max(i * cell, lo)
            if wgt > 0.0:
                index[h, m] = i
                weight[h, m] = wgt
                m += 1
        count[h] = m


def pool_plan(cell_px: float, row_edges: np.ndarray, col_edges: np.ndarray, grid_h: int, grid_w: int) -> tuple:
    """The overlaps :func:`pool_cells` computes for every frame, computed once for a ``grid_h × grid_w`` block grid
    (one video's geometry): pass the result to :func:`pool_cells_planned`. An opaque tuple of arrays."""
    cell_px = _check_pool_args(cell_px, row_edges, col_edges)
    grid_h, grid_w = int(grid_h), int(grid_w)
    if grid_h < 0 or grid_w < 0:
        raise ValueError(f"grid_h and grid_w must be >= 0, got {grid_h}x{grid_w}.")
    if not (_edges_ok(row_edges) and _edges_ok(col_edges)):
        _raise_bad_edges()
    axes = []
    for edges, n in ((row_edges, grid_h), (col_edges, grid_w)):
        m = edges.shape[0] - 1
        count = np.zeros(m, dtype=np.int64)
        index = np.zeros((m, n + 1), dtype=np.int64)
        weight = np.zeros((m, n + 1), dtype=np.float64)
        _axis_plan_kernel(edges, cell_px, n, count, index, weight)
        axes.append((count, index, weight))
    j_first, j_end = _cell_span(col_edges[0], col_edges[-1], cell_px, grid_w)
    return (grid_h, grid_w, *axes[0], *axes[1], int(j_first), int(j_end))


@njit(**JIT)
def _pool_planned_kernel(energy, r_count, r_index, r_weight, c_count, c_index, c_weight, j_first, j_end, out, rowbuf):
    # The loops of _pool_into with the overlaps looked up: the same products summed in the same order.
    hp = out.shape[0]
    wp = out.shape[1]
    for h in range(hp):
        for j in range(j_first, j_end):
            rowbuf[j] = 0.0
        for k in range(r_count[h]):
            i = r_index[h, k]
            wgt = r_weight[h, k]
            for j in range(j_first, j_end):
                rowbuf[j] += wgt * energy[i, j]
        for w in range(wp):
            acc = 0.0
            for k in range(c_count[w]):
                acc += c_weight[w, k] * rowbuf[c_index[w, k]]
            out[h, w] = acc
    return out


def pool_cells_planned(energy: np.ndarray, plan: tuple) -> np.ndarray:
    """:func:`pool_cells` with a :func:`pool_plan`: the same float32 ``[Hp, Wp]``, bit for bit."""
    grid_h, grid_w, r_count, r_index, r_weight, c_count, c_index, c_weight, j_first, j_end = plan
    check_array("energy", energy, np.float32, shape=(grid_h, grid_w))
    out = np.empty((r_count.shape[0], c_count.shape[0]), dtype=np.float32)
    rowbuf = np.zeros(max(grid_w, 1), dtype=np.float64)
    return _pool_planned_kernel(energy, r_count, r_index, r_weight, c_count, c_index, c_weight, j_first, j_end, out,
                                rowbuf)
