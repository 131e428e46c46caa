"""How often a model strikes again the key of the note before (a new onset on the same key).

    python bench/repeats.py export/default.onnx [--run runs/default] [--reference DATA] [--lines 400]

Sampled: `--lines` 100-note lines of the ONNX model from the start (no preset, its vote), the
share of note pairs (in note order: onset, then key) whose second note is a new onset on the
first's key, the share of windows with none, and how often a repeat follows a repeat, beside
the train and validation pieces' 100-note windows. With `--run` (needs torch): the run's
generator teacher-forced on real windows, its mean probability of that repeat among notes with
a new onset, against how often it happens there: an over-estimate under teacher forcing is the
key head's, not drift's.

Measured here (twenty-second session; the latent default before the interval head):

    train windows: 1.17 % of pairs, 74 % of windows none, P(repeat | repeat) 0.26
    validation windows: 0.68 % of pairs, 76 % of windows none
    model: 3.39 % of pairs, 14 % of windows none, P(repeat | repeat) 0.11 (no vote: 3.24 %, 13 %, 0.12)
    teacher-forced mean P(repeat | new onset) on validation 0.065 where 0.013 happen; train 0.073 / 0.024

With the interval head (the default since): 1.08 % of pairs, 48 % of windows none, P(repeat |
repeat) 0.11 (no vote 1.16 %); teacher-forced 0.026 where 0.013 happen on validation, 0.025 / 0.024
on train.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from midigan.corpus import load_corpus, note_windows  # noqa: E402
from midigan.runtime import Generator  # noqa: E402


def repeats(windows: np.ndarray) -> np.ndarray:
    """[n, T - 1] bool: note t + 1 is a new onset on note t's key."""
    return (np.diff(windows[..., 0], axis=1) == 0) & (np.diff(windows[..., 1], axis=1) > 1e-6)


def describe(name: str, windows: np.ndarray) -> None:
    r = repeats(windows)
    again = r[:, 1:][r[:, :-1]].mean() if r[:, :-1].any() else float("nan")
    print(f"{name:>24}: {r.mean():6.2%} of pairs, {np.mean(r.sum(1) == 0):4.0%} of windows none, "
          f"P(repeat | repeat) {again:.2f}  ({len(windows)} windows)")


def teacher_forced(run: str, corpus, count: int = 1000) -> None:
    import torch

    sys.path.insert(1, str(Path(__file__).resolve().parent))
    from torch_lines import load_generator

    from midigan import events as ev
    from midigan.music import N_PITCHES
    from midigan.training.data import EventWindows

    torch.manual_seed(0)
    G, cfg, _ = load_generator(run)
    for split in ("validation", "train"):
        e, pos = EventWindows(corpus.split(split), cfg.seq_len).fixed(count)
        with torch.no_grad():
            z = torch.randn(len(e), cfg.noise_dim)
            out = G(z, e, pos, encode=G.encoder is not None)
            probs = out[0][..., ev.SPANS["pitch"]].softmax(-1)
        prev, cur = e[:, :-1, 1], e[:, 1:]
        new = (cur[..., 0] > 0) & (prev < N_PITCHES)
        p = probs.gather(-1, prev.clamp(max=N_PITCHES - 1)[..., None])[..., 0]
        print(f"{split:>24}: teacher-forced mean P(repeat | new onset) {p[new].mean():.3f}, "
              f"happens {(cur[..., 1] == prev)[new].float().mean():.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="ONNX generator")
    ap.add_argument("--run", default=None, help="its run folder: also the teacher-forced figure (torch)")
    ap.add_argument("--reference", default=str(Path(__file__).resolve().parents[2] / "shared/corpus/piano-midi-de"))
    ap.add_argument("--lines", type=int, default=400, help="lines sampled")
    a = ap.parse_args()
    corpus = load_corpus(a.reference, splits=("train", "validation"))
    for split in ("train", "validation"):
        describe(f"{split} windows", note_windows(corpus.split(split), 100, 100)[0])
    gen = Generator(a.model)
    describe(Path(a.model).name, next(gen.stream(seed=0, count=a.lines)))
    if gen.candidates > 1:
        describe(f"{Path(a.model).name}, no vote", next(gen.stream(seed=0, count=a.lines, candidates=1)))
    if a.run:
        teacher_forced(a.run, corpus)


if __name__ == "__main__":
    main()
