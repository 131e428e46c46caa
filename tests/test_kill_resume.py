"""SIGKILL `midigan train` at random moments: no checkpoint is ever corrupt, and the
resumed run ends with exactly the parameters of an uninterrupted one (CPU)."""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from midigan.training.checkpoint import load_checkpoint  # noqa: E402

CFG = 'base = "tiny"\nmle_steps = 24\nadv_steps = 12\nval_every = 4\n'
STEPS = 36


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, tiny_corpus):
    cfg = tmp_path / "k.toml"
    cfg.write_text(CFG)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # The reference runs the same way (a subprocess, one thread): float sums depend on threading.
    subprocess.run([sys.executable, "-m", "midigan", "train", str(tiny_corpus), "--out", str(tmp_path / "ref"),
                    "--config", str(cfg), "--quiet"], env=env, check=True, timeout=300)
    ref = tmp_path / "ref" / "checkpoint.pt"

    out = tmp_path / "killed"
    ckpt = out / "checkpoint.pt"
    rng = random.Random(7)
    kills, steps_seen = 0, []
    for attempt in range(60):
        if ckpt.exists() and load_checkpoint(ckpt)["step"] == STEPS:
            if kills >= 5:
                break
            # A fast machine finished before five kills (or a kill landed after the last
            # checkpoint): go again from scratch, so every run here is killed five times.
            shutil.rmtree(out)
            steps_seen = []
        cmd = [sys.executable, "-m", "midigan", "train", str(tiny_corpus), "--out", str(out), "--quiet"]
        cmd += ["--resume"] if ckpt.exists() else ["--config", str(cfg)]
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < 5:
            time.sleep(rng.uniform(1.5, 5.0))  # torch's import alone takes about 1.5 s
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
        err = p.communicate(timeout=300)[1].decode()
        if ckpt.exists():
            ck = load_checkpoint(ckpt)  # never corrupt: it loads and has every key
            steps_seen.append(ck["step"])
        assert p.returncode in (0, -signal.SIGKILL), err
    assert kills >= 5
    assert load_checkpoint(ckpt)["step"] == STEPS
    assert not list(out.glob("*.tmp"))
    assert steps_seen == sorted(steps_seen)  # progress is never lost
    a, b = load_checkpoint(ref), load_checkpoint(ckpt)
    for part in ("generator", "best_generator", "discriminator"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    rows = (out / "log.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, STEPS + 1))
