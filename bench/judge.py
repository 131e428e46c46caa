"""Time and accuracy of the neural two-sample test (midigan.judge.neural_c2st) on hand-made windows.

"Real" = random walks in C major in steady sixteenths (velocity 70 +- 4), one walk per piece cut
into windows; compared with the same process in other pieces (should read ~0.5), with uniform
random keys (~1.0), with the same walks in a random rhythm (timed ~1.0, pitch-only ~0.5), and
with a faint change: velocity spread 5 instead of 4 (timed only). Run:

    python bench/judge.py                      # 1,000 windows a side, L = 100 and 400
    python bench/judge.py --lengths 100 --count 500 --threads 2
"""
from __future__ import annotations

import argparse

import numpy as np

from midigan.judge import EPOCHS, neural_c2st

MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])


def pieces(seed, count, length, per_piece=25, pitch="walk", rhythm="steady", spread=4.0, first_group=0):
    """(windows (count, length, 4), group ids): each piece one stream cut into per_piece windows."""
    rng = np.random.default_rng(seed)
    n_pieces, notes = -(-count // per_piece), per_piece * length
    out = []
    for _ in range(n_pieces):
        if pitch == "walk":  # scale degrees C3..C6, turned back at the edges
            degree = np.empty(notes, int)
            degree[0] = rng.integers(17, 32)
            steps = rng.choice([-2, -1, 0, 1, 2], notes, p=[.15, .3, .1, .3, .15])
            for t in range(1, notes):
                d = degree[t - 1] + steps[t]
                degree[t] = d if 14 <= d <= 35 else degree[t - 1] - steps[t]
            key = 24 + 12 * (degree // 7) + MAJOR[degree % 7]
        else:
            key = rng.integers(21, 109, notes)
        if rhythm == "steady":
            ioi = np.full(notes, 0.25)
            velocity = np.clip(np.rint(70 + rng.normal(0, spread, notes)), 1, 127)
        else:
            ioi = rng.integers(1, 13, notes) / 24
            velocity = rng.integers(30, 111, notes).astype(float)
        onset = np.cumsum(ioi) - ioi[0]
        out.append(np.stack([key, onset, ioi, velocity], axis=-1).reshape(per_piece, length, 4))
    groups = np.repeat(np.arange(n_pieces), per_piece) + first_group
    return np.concatenate(out)[:count], groups[:count]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="100,400", help="comma-separated window lengths")
    ap.add_argument("--count", type=int, default=1000, help="windows a side")
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (2 is faster on an idle machine, "
                    "far slower on a busy one)")
    a = ap.parse_args()
    print(f"{a.count} windows a side, {a.splits} splits, {a.epochs} epochs, {a.threads} threads")
    for length in (int(x) for x in a.lengths.split(",")):
        real = pieces(1, a.count, length)
        others = {
            "same process": pieces(2, a.count, length, first_group=10_000),
            "random keys": pieces(3, a.count, length, pitch="uniform", first_group=10_000),
            "random rhythm": pieces(4, a.count, length, rhythm="random", first_group=10_000),
            "velocity spread 5": pieces(5, a.count, length, spread=5.0, first_group=10_000),
        }
        for name, other in others.items():
            for timed in (True, False):
                if name.startswith("velocity") and not timed:
                    continue
                r = neural_c2st(real[0], other[0], real[1], other[1], timed=timed, splits=a.splits,
                                epochs=a.epochs, threads=a.threads)
                print(f"L={length:4d} {name:18s} {'timed' if timed else 'pitch':5s} "
                      f"accuracy {r['accuracy']:.3f} +- {r['se']:.3f}  "
                      f"[{' '.join(f'{x:.3f}' for x in r['per_split'])}]  {r['seconds']:6.1f} s", flush=True)


if __name__ == "__main__":
    main()
