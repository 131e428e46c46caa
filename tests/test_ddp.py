"""Data-parallel training under torchrun: two CPU processes on the gloo backend."""
import csv
import os
import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from midigan.training.checkpoint import load_checkpoint  # noqa: E402


@pytest.mark.slow
def test_torchrun_two_ranks(tmp_path, tiny_corpus):
    torchrun = shutil.which("torchrun") or shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if not torchrun:
        pytest.skip("torchrun not found")
    out = tmp_path / "run"
    env = dict(os.environ, MIDIGAN_BACKEND="gloo", OMP_NUM_THREADS="1")
    cmd = [torchrun, "--standalone", "--nproc_per_node=2", "-m", "midigan", "train", str(tiny_corpus),
           "--out", str(out), "--config", "tiny", "--quiet", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    # Only rank 0 writes: one checkpoint, one log with one row per step.
    assert sorted(p.name for p in out.iterdir()) == ["accuracy.png", "checkpoint.pt", "log.csv", "losses.png"]
    ck = load_checkpoint(out / "checkpoint.pt")
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, ck["step"] + 1))
    # Both ranks stepped, each on its own random stream (the weights were checked equal
    # across ranks at every checkpoint, or the run would have failed).
    assert len(ck["rng"]) == 2 and not torch.equal(ck["rng"][0], ck["rng"][1])
    assert {r["phase"] for r in rows} == {"mle", "adv"}  # the discriminator's steps run under DDP too
    # Resume reads the checkpoint under torchrun too (a finished run says so and exits 1).
    r = subprocess.run(cmd[:-5] + ["--resume", "--quiet", "--device", "cpu"], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode != 0 and "already finished" in r.stderr
