"""Cold compile of the numba kernels: seconds per warm-up step and in total, as a first run pays them.

    python benchmarks/bench_compile.py [--json out.json]

Each measurement runs in a fresh process with an empty kernel cache (CODEC_SELECT_CACHE_DIR in a temp folder):
first the steps a default ``codec-select select`` run compiles (in the order the CLI warms them: shared callees
compile with the first step that needs them), then every other step, then a second process that loads everything
from the cache. Wall and CPU seconds are both reported; the target is ≤ 15 s of compile for the default run on a
2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
t = time.perf_counter(); c = time.process_time()
import codec_select.kernels as K
from codec_select.select import kernels_needed
rows = [("import", time.perf_counter() - t, time.process_time() - c)]
default = kernels_needed()
steps = default + [s for s in K.WARMUP_STEPS if s not in default]
for name in steps:
    t = time.perf_counter(); c = time.process_time()
    K.warmup([name])
    rows.append((name, time.perf_counter() - t, time.process_time() - c))
print(json.dumps({"rows": rows, "default": default}))
"""


def run(cache: str) -> dict:
    env = dict(os.environ, CODEC_SELECT_CACHE_DIR=cache)
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        cold = run(cache)
        warm = run(cache)
    default = set(cold["default"])
    print(f"{'step':24s} {'cold wall':>10s} {'cold cpu':>9s} {'cached':>8s}")
    totals = {"default": [0.0, 0.0, 0.0], "all": [0.0, 0.0, 0.0]}
    for (name, wall, cpu), (_, wall2, _) in zip(cold["rows"], warm["rows"]):
        mark = "*" if name in default else " "
        print(f"{name + mark:24s} {wall:9.2f}s {cpu:8.2f}s {wall2:7.2f}s")
        for key in ("default", "all") if name in default or name == "import" else ("all",):
            for i, v in enumerate((wall, cpu, wall2)):
                totals[key][i] += v
    for key, (wall, cpu, wall2) in totals.items():
        label = "default select run (*)" if key == "default" else "every kernel"
        print(f"total, {label:24s}: cold {wall:.1f} s wall / {cpu:.1f} s cpu, cached {wall2:.2f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cold": cold, "cached": warm, "totals": totals}, f, indent=1)


if __name__ == "__main__":
    main()
