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
import functools
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from midigan.judge import EPOCHS, neural_c2st  # noqa: E402
from tests.test_judge import pieces as _pieces  # noqa: E402  (the tests' synthetic windows)

pieces = functools.partial(_pieces, per_piece=25)


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
