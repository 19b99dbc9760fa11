"""Same file + same options → same bytes on any CPU of a cluster.

The kernels carry no fast-math flags, so LLVM may not reorder float sums or fuse multiply-adds per host ISA. A
child process compiled for numba's ``generic`` CPU (no AVX, no FMA: what a different machine of a mixed cluster
amounts to) must give the selection and the scores of the host build bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from conftest import SHARED_VIDEOS

from codec_select import sample_video, select_patches

OPTIONS = [{}, {"geometry": "llava576", "policy": "topk"}]

CHILD = """
import hashlib, json, sys
from codec_select import select_patches
out = []
for video, options in json.loads(sys.argv[1]):
    sel = select_patches(video, **options)
    out.append([hashlib.sha256(sel.visible_indices.tobytes()).hexdigest(), hashlib.sha256(sel.scores.tobytes()).hexdigest()])
print(json.dumps(out))
"""


def _digests(video: str, options: dict) -> list[str]:
    sel = select_patches(video, **options)
    return [hashlib.sha256(sel.visible_indices.tobytes()).hexdigest(), hashlib.sha256(sel.scores.tobytes()).hexdigest()]


@pytest.mark.timeout(900)
def test_generic_cpu_build_selects_the_same_bytes(tmp_path):
    videos = [sample_video(), *map(str, SHARED_VIDEOS)]
    jobs = [(v, o) for v in videos for o in OPTIONS]
    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CPU_FEATURES="")
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(jobs)], env=env, capture_output=True, text=True,
                         timeout=880)
    assert res.returncode == 0, res.stderr[-3000:]
    generic = json.loads(res.stdout.strip().splitlines()[-1])
    for (video, options), theirs in zip(jobs, generic):
        assert _digests(video, options) == theirs, f"{video} {options}: host and generic-CPU builds differ"
