"""Shared by the torch prototypes (bench/more, bench/drift): a run's likelihood-phase generator,
and lines it sampled judged as `midigan evaluate` judges them (validation only)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from midigan import features  # noqa: E402
from midigan.judge import neural_c2st  # noqa: E402
from midigan.metrics import feature_c2st  # noqa: E402
from midigan.training.checkpoint import load_checkpoint  # noqa: E402
from midigan.training.config import Config, make_config  # noqa: E402
from midigan.training.model import build  # noqa: E402


def load_generator(run):
    """(generator in eval mode, its config, the checkpoint) from a run folder's best generator."""
    ck = load_checkpoint(Path(run) / "checkpoint.pt")
    cfg = make_config(ck["config"], Config())
    G, _ = build(cfg)
    G.load_state_dict(ck["best_generator"])
    G.eval()
    return G, cfg, ck


def judge_lines(notes: np.ndarray, ref, seed: int) -> list[float]:
    """[timed C2ST, pitch C2ST, rhythm, dynamics] of timed windows `notes` against `ref` (a Material)."""
    groups = np.arange(len(notes))
    timed = neural_c2st(notes, ref.notes, groups, ref.groups, timed=True, seed=seed)["accuracy"]
    pitch = neural_c2st(notes[..., 0].astype(np.int64), ref.notes[..., 0].astype(np.int64), groups,
                        ref.groups, timed=False, seed=seed)["accuracy"]
    fam = [feature_c2st(fn(notes)[0], fn(ref.notes)[0], groups, ref.groups, seed=seed)
           for fn in (features.rhythm_features, features.dynamics_features)]
    return [timed, pitch, *fam]
