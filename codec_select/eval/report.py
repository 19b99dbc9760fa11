"""``codec-select bench`` output: the claims it checks, ``results.md`` (one table per axis) and the plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["AXES", "claims", "render_markdown", "wins", "write_plots"]

AXES = {  # key → (title, format, higher is better)
    "psnr": ("Hold-reconstruction PSNR (dB)", "{:.2f}"),
    "features": ("Feature retention: MobileNetV2 cosine, true frame vs hold reconstruction (mean of 64 slots)",
                 "{:.4f}"),
    "object_recall": ("Object recall: share of (slot, cell) pairs where an object moved that were kept", "{:.3f}"),
    "object_psnr": ("Hold PSNR inside the object masks (dB)", "{:.2f}"),
    "motion_recall": ("Motion recall: share of true change energy on kept cells", "{:.3f}"),
    "agree_iou": ("Agreement with the reference recipe: IoU of kept cells beyond slot 0", "{:.3f}"),
    "agree_corr": ("Agreement with the reference recipe: correlation of kept cells per slot", "{:.3f}"),
}
ORACLES = ("drift-oracle", "hold-oracle")
"""Upper references: never counted as a winner."""
CLAIMS = (  # (axis, better, worse, what it would show)
    ("psnr", "refresh", "uniform-valid", "default beats uniform at equal valid tokens (hold PSNR)"),
    ("psnr", "refresh", "pixel-drift", "codec signals add hold PSNR over thumbnails alone"),
    ("psnr", "codec-only", "uniform-valid", "codec energy alone beats uniform (hold PSNR)"),
    ("psnr", "refresh", "random", "default beats random (hold PSNR)"),
    ("features", "refresh", "uniform-valid", "default beats uniform (feature retention)"),
    ("features", "refresh", "pixel-drift", "codec signals add feature retention over thumbnails alone"),
    ("object_recall", "refresh", "pixel-drift", "codec signals add object recall over thumbnails alone"),
    ("object_recall", "codec-only", "uniform-valid", "codec energy alone beats uniform (object recall)"),
    ("object_psnr", "refresh", "pixel-drift", "codec signals add in-mask PSNR over thumbnails alone"),
    ("object_recall", "topk", "pixel-drift", "codec energy (top-K) finds moving objects better than thumbnails"),
    ("object_recall", "topk", "change-topk", "codec energy (top-K) beats true pixel change under distractors"),
)


def _val(row: dict | None, axis: str):
    if not row or axis not in row:
        return None
    v = row[axis]
    if isinstance(v, str):
        v = math.inf if v == "inf" else None
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def claims(results: dict) -> list[dict]:
    """Every claim on every (video, budget) where both sides were measured; failures are reported, not hidden."""
    out = []
    for name, entry in results["videos"].items():
        for key, rows in entry["axes"].items():
            for axis, better, worse, what in CLAIMS:
                a, b = _val(rows.get(better), axis), _val(rows.get(worse), axis)
                if a is None or b is None:
                    continue
                margin = a - b if not (math.isinf(a) and math.isinf(b)) else 0.0
                out.append({"video": name, "budget": key, "axis": axis, "claim": f"{better} > {worse}", "what": what,
                            "holds": bool(a > b), "margin": margin})
    return out


def wins(results: dict, axis: str, *, real: bool | None = None) -> dict:
    """selector → how many (video, budget) rows it is best on (ties count for each; oracles excluded)."""
    count: dict = {}
    for entry in results["videos"].values():
        if real is not None and entry.get("real") != real:
            continue
        for rows in entry["axes"].values():
            vals = {s: _val(r, axis) for s, r in rows.items() if s not in ORACLES}
            vals = {s: v for s, v in vals.items() if v is not None}
            if not vals:
                continue
            top = max(vals.values())
            for s, v in vals.items():
                if v == top:
                    count[s] = count.get(s, 0) + 1
    return dict(sorted(count.items(), key=lambda kv: -kv[1]))


def _fmt(v, fmt: str) -> str:
    if v is None:
        return "–"
    return "inf" if isinstance(v, float) and math.isinf(v) else fmt.format(v)


def _axis_table(results: dict, axis: str, fmt: str) -> list[str]:
    sels = [s for s in results["selectors"]
            if any(_val(rows.get(s), axis) is not None for e in results["videos"].values() for rows in e["axes"].values())]
    if not sels:
        return []
    lines = ["| video | budget | " + " | ".join(sels) + " |", "|---|---|" + "---|" * len(sels)]
    for name, entry in results["videos"].items():
        for key, rows in entry["axes"].items():
            vals = [_val(rows.get(s), axis) for s in sels]
            if all(v is None for v in vals):
                continue
            best = max((v for s, v in zip(sels, vals) if v is not None and s not in ORACLES), default=None)
            cells = [("**" + _fmt(v, fmt) + "**") if v is not None and v == best else _fmt(v, fmt) for v in vals]
            lines.append(f"| {name} | {key} | " + " | ".join(cells) + " |")
    return lines


def _cost_table(results: dict) -> list[str]:
    sels = list(results["selectors"]) + ["slot frames"]
    lines = ["| video | budget | " + " | ".join(sels) + " |", "|---|---|" + "---|" * len(sels)]
    for name, entry in results["videos"].items():
        for cost in entry["cost"].values():
            ks = list(cost["per_budget"])
            key = next((k for k in ks if k.endswith("=4096")), ks[0] if ks else None)
            if key is None:
                continue
            per = dict(cost["per_budget"][key])
            per["slot frames"] = cost["base"].get("slot frames")
            cells = [f"{per[s]['wall']:.2f} / {per[s]['cpu']:.2f}" if per.get(s) else "–" for s in sels]
            lines.append(f"| {name} | {key} | " + " | ".join(cells) + " |")
    return lines


def _tokens_table(results: dict) -> list[str]:
    lines = []
    for name, entry in results["videos"].items():
        for key, rows in entry["axes"].items():
            pads = {s: r.get("padding") for s, r in rows.items() if "padding" in r}
            if not pads or max(pads.values()) == 0:
                continue
            if not lines:
                sels = list(results["selectors"])
                lines = ["| video | budget | " + " | ".join(sels) + " |", "|---|---|" + "---|" * len(sels)]
            cells = [f"{rows[s]['valid_tokens']} / {rows[s]['padding']}" if s in pads else "–" for s in sels]
            lines.append(f"| {name} | {key} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(results: dict) -> str:
    system = results["system"]
    lines = [f"Run: {results.get('total_s', 0):.0f} s on {system.get('cores')} cores ({system.get('cpu')}).", ""]
    for reason in results.get("skipped", []):
        lines.append(f"- skipped: {reason}")
    for name, entry in results["videos"].items():
        for note in entry.get("notes", []):
            lines.append(f"- {name}: {note}")
    for axis, (title, fmt) in AXES.items():
        table = _axis_table(results, axis, fmt)
        if table:
            lines += ["", f"### {title}", "", "Best non-oracle value per row in bold.", ""] + table
    tokens = _tokens_table(results)
    if tokens:
        lines += ["", "### Tokens: valid / padding (letterboxed geometries)", ""] + tokens
    lines += ["", "### Cost: wall / CPU seconds per video to decide the selection", "",
              ("Decode + signals + policy of each selector, the faster of two runs (recipes: one whole run); "
               "`slot frames`: decoding the 64 exact slot frames onto the canvas, which every selector then pays "
               "again to feed the encoder."), ""]
    lines += _cost_table(results)
    lines += ["", "### Decode references (median seconds, the selector's decoder options: skip_loop_filter)", "",
              ("| video | frames | decode | decode+MV | refresh (ap224) | refresh ÷ decode+MV | pixel-drift (ap224) | "
               "uniform64 seq | uniform64 seek |"), "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in results["videos"].items():
        s = entry.get("speed")
        if not s:
            continue
        dmv = s.get("decode_mv")
        base = entry["cost"].get("ap224", {}).get("base", {})
        ref, pix = base.get("refresh", {}).get("wall"), base.get("pixel-drift", {}).get("wall")
        ratio = f"{ref / dmv:.2f}" if isinstance(dmv, float) and ref else "–"
        lines.append(f"| {name} | {entry.get('frames')} | {s['decode']:.3f} | "
                     f"{f'{dmv:.3f}' if isinstance(dmv, float) else 'no MVs'} | {_fmt(ref, '{:.3f}')} | {ratio} | "
                     f"{_fmt(pix, '{:.3f}')} | {s['uniform64_sequential']:.3f} | {s['uniform64_seek']:.3f} |")
    lines += ["", "### Wins per axis (rows where a selector is best; ties count for each; oracles excluded)", ""]
    for axis in AXES:
        for real, label in ((True, "real"), (False, "synthetic")):
            w = wins(results, axis, real=real)
            if w:
                lines.append(f"- {axis} ({label}): " + ", ".join(f"{s} {n}" for s, n in w.items()))
    enc = results.get("encoder")
    if enc and "skipped" in enc:
        lines += ["", f"Encoder timing skipped: {enc['skipped']}"]
    cl = results.get("claims", [])
    failed = [c for c in cl if not c["holds"]]
    lines += ["", f"### Claims: {len(cl) - len(failed)} hold, {len(failed)} fail", ""]
    for c in failed:
        lines.append(f"- FAILS: {c['claim']} ({c['axis']}) on {c['video']} {c['budget']} (margin {c['margin']:+.3f})")
    return "\n".join(lines) + "\n"


def write_plots(results: dict, out_dir: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[bench] matplotlib missing: no plots (pip install 'codec-select[viz]')")
        return
    ks = results["budgets"].get("ap224", ())
    colours = plt.cm.tab20(np.linspace(0, 1, 20))
    real = [e for e in results["videos"].values() if e.get("real")] or list(results["videos"].values())
    scenes = [e for e in results["videos"].values() if e.get("object_scene")]
    for axis, fname, entries in (("psnr", "psnr_vs_k.png", real), ("object_recall", "object_recall_vs_k.png", scenes)):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        plotted = False
        for i, selector in enumerate(results["selectors"]):
            xs, ys = [], []
            for k in ks:
                v = [_val(e["axes"].get(f"ap224/K={k}", {}).get(selector), axis) for e in entries]
                v = [x for x in v if x is not None and not math.isinf(x)]
                if v:
                    xs.append(k)
                    ys.append(float(np.mean(v)))
            if xs:
                ax.plot(xs, ys, marker="os^Dv<>ph*x"[i % 11], color=colours[(2 * i) % 20 + (i // 10)], label=selector,
                        linestyle="--" if selector in ORACLES else "-")
                plotted = True
        if not plotted:
            plt.close(fig)
            continue
        ax.set_xscale("log", base=2)
        ax.set_xlabel("budget K (ap224)")
        ax.set_ylabel(f"mean {axis} ({'real clips' if axis == 'psnr' else 'object scenes'})")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out_dir / fname, dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = [n for n, e in results["videos"].items() if e.get("real")] or list(results["videos"])
    sels = list(results["selectors"])
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        per = next(iter(results["videos"][name]["cost"].get("ap224", {}).get("per_budget", {}).values()), {})
        ax.bar(np.arange(len(sels)) + i * width, [per.get(s, {}).get("wall", 0.0) for s in sels], width, label=name)
    ax.set_xticks(np.arange(len(sels)) + width * (len(names) - 1) / 2, sels, rotation=40, ha="right")
    ax.set_ylabel("wall seconds to decide (ap224)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "cost_per_selector.png", dpi=110)
    plt.close(fig)
