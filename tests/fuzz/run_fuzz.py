"""The long fuzz run: mutated small clips through ``select_patches`` in subprocess workers, so a segfault or a hang
is caught, reported with the case that caused it, and the run goes on.

    python tests/fuzz/run_fuzz.py --cases 1000                  # 2 workers, 30 s per case
    python tests/fuzz/run_fuzz.py --cases 5000 --seed 7 --jobs 2 --json bench_out/fuzz.json
    python tests/fuzz/run_fuzz.py --replay 123 --seed 7         # re-run one case in this process, with a traceback
    python tests/fuzz/run_fuzz.py --self-test                    # a planted segfault and hang must be caught

Case ``i`` of seed ``s`` is drawn from ``numpy.random.default_rng([s, i])`` (:func:`mutate.random_case`), so any
case replays exactly. Outcomes: ``ok`` (a Selection), ``error:<Type>`` (a typed CodecSelectError naming the file),
and the failures ``bug`` (an exception outside the hierarchy, or an error without the file name), ``crash`` (the
worker died: segfault, abort, out of memory) and ``hang`` (no answer within ``--timeout`` seconds). Exit status 1
when any failure occurred.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _case(seed: int, i: int):
    import numpy as np
    from mutate import random_case

    return random_case(np.random.default_rng([seed, i]))


def worker(seed_dir: str) -> int:
    """Read case numbers on stdin, answer one JSON line per case on stdout."""
    import traceback

    from mutate import Bug, apply_ops, make_seeds, run_case

    seeds = make_seeds(seed_dir)
    work = Path(tempfile.mkdtemp(prefix="fuzz_worker_"))
    print(json.dumps({"ready": True}), flush=True)
    sabotage = json.loads(os.environ.get("CODEC_SELECT_FUZZ_SELFTEST", "{}"))  # only set by --self-test
    for line in sys.stdin:
        req = json.loads(line)
        if sabotage.get(str(req["case"])) == "segfault":
            import ctypes

            ctypes.string_at(0)  # a real SIGSEGV, as a crash in FFmpeg or a kernel would give
        if sabotage.get(str(req["case"])) == "hang":
            time.sleep(10**6)
        name, ops, mode = _case(req["seed"], req["case"])
        path = work / f"case{Path(name).suffix}"
        path.write_bytes(apply_ops(seeds[name], ops))
        t0 = time.perf_counter()
        try:
            outcome, detail = run_case(path, mode, timeout=req["timeout"] * 0.6), ""
        except Bug as exc:
            outcome, detail = "bug", f"{exc}\n{traceback.format_exc(limit=8)}"
        print(json.dumps({"case": req["case"], "outcome": outcome, "detail": detail,
                          "seconds": time.perf_counter() - t0}), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0


class _Worker:
    def __init__(self, seed_dir: str, log) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", seed_dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.lines.get(timeout=300)
        if first is None or not json.loads(first).get("ready"):
            raise RuntimeError("fuzz worker failed to start; see the worker log")
        self.case: int | None = None
        self.started = 0.0

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # EOF: the worker died or exited

    def send(self, seed: int, case: int, timeout: float) -> None:
        self.case, self.started = case, time.perf_counter()
        self.proc.stdin.write(json.dumps({"seed": seed, "case": case, "timeout": timeout}) + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # this worker only: we started it, by its pid
        self.proc.wait()


def run(cases: int, *, seed: int, jobs: int, timeout: float, start: int = 0) -> dict:
    from mutate import make_seeds

    tmp = Path(tempfile.mkdtemp(prefix="codec_select_fuzz_"))
    seed_dir = str(tmp / "seeds")
    make_seeds(seed_dir)
    log = open(tmp / "workers.log", "w")  # noqa: SIM115 -- FFmpeg's complaints go here, for every worker's life
    pending = collections.deque(range(start, start + cases))
    counts: collections.Counter = collections.Counter()
    failures: list[dict] = []
    times: list[float] = []
    t_run = time.perf_counter()
    workers = [_Worker(seed_dir, log) for _ in range(jobs)]
    restarts = 0
    done = 0
    try:
        for w in workers:
            if pending:
                w.send(seed, pending.popleft(), timeout)
        while any(w.case is not None for w in workers):
            for idx, w in enumerate(workers):
                if w.case is None:
                    continue
                left = timeout - (time.perf_counter() - w.started)
                try:
                    line = w.lines.get(timeout=max(0.0, min(left, 0.05)))
                except queue.Empty:
                    line = "" if left > 0 else "HANG"
                if line == "":
                    continue
                result = None
                if line == "HANG":
                    w.kill()
                    result = {"case": w.case, "outcome": "hang", "detail": f"no answer in {timeout:.0f} s"}
                elif line is None:
                    code = w.proc.wait()
                    result = {"case": w.case, "outcome": "crash", "detail": f"worker exit status {code}"}
                else:
                    result = json.loads(line)
                    times.append(result["seconds"])
                counts[result["outcome"]] += 1
                done += 1
                if result["outcome"] in ("bug", "crash", "hang"):
                    name, ops, mode = _case(seed, result["case"])
                    failures.append({**result, "seed_clip": name, "ops": ops, "mode": mode})
                    print(f"FAIL case {result['case']}: {result['outcome']} {result['detail'][:300]}", flush=True)
                if result["outcome"] in ("crash", "hang"):
                    workers[idx] = w = _Worker(seed_dir, log)
                    restarts += 1
                w.case = None
                if pending:
                    w.send(seed, pending.popleft(), timeout)
                if done % 100 == 0:
                    print(f"{done}/{cases} cases, {dict(counts)}", flush=True)
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.stdin.close()
                try:
                    w.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    w.kill()
        log.close()
    wall = time.perf_counter() - t_run
    return {
        "cases": done, "seed": seed, "jobs": jobs, "timeout_s": timeout, "wall_s": round(wall, 1),
        "counts": dict(sorted(counts.items())),
        "crashes": counts["crash"], "hangs": counts["hang"], "bugs": counts["bug"],
        "case_seconds_median": round(sorted(times)[len(times) // 2], 4) if times else None,
        "case_seconds_max": round(max(times), 3) if times else None,
        "worker_restarts": restarts, "failures": failures, "worker_log": str(tmp / "workers.log"),
    }


def replay(seed: int, case: int) -> int:
    from mutate import apply_ops, make_seeds, run_case

    name, ops, mode = _case(seed, case)
    tmp = Path(tempfile.mkdtemp(prefix="codec_select_fuzz_replay_"))
    path = tmp / f"case{Path(name).suffix}"
    path.write_bytes(apply_ops(make_seeds(tmp / "seeds")[name], ops))
    print(f"case {case}: {name}, mode={mode}, ops={ops}\nfile: {path}")
    print(run_case(path, mode))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Long fuzz run of select_patches over mutated clips.")
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--start", type=int, default=0, help="first case number")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per case before it counts as a hang")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--replay", type=int, default=None, help="re-run one case here, exceptions and all")
    p.add_argument("--self-test", action="store_true", help="check that a segfault and a hang are caught")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.replay is not None:
        return replay(args.seed, args.replay)
    os.environ.setdefault("SVT_LOG", "1")
    if args.self_test:
        os.environ["CODEC_SELECT_FUZZ_SELFTEST"] = json.dumps({"3": "segfault", "7": "hang"})
        res = run(12, seed=args.seed, jobs=2, timeout=5.0)
        ok = res["crashes"] == 1 and res["hangs"] == 1 and res["cases"] == 12
        print(f"self-test: {res['counts']} -> {'caught both' if ok else 'FAILED'}")
        return 0 if ok else 1
    res = run(args.cases, seed=args.seed, jobs=args.jobs, timeout=args.timeout, start=args.start)
    summary = {k: v for k, v in res.items() if k != "failures"}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1))
    return 1 if res["crashes"] or res["hangs"] or res["bugs"] else 0


if __name__ == "__main__":
    sys.exit(main())
