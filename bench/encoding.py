"""What the note-event encoding alone costs: real pieces passed through it and back, told from
the same pieces as written, by evaluate's rhythm and dynamics feature tests.

A model can sound no more real than its own encoding lets it: onsets on a 1/24-beat grid,
lengths in 32 log-spaced classes, velocities in bins of 4. This bench measures that floor for
several ways of decoding the classes (the runtime's is the last row), on one set of pieces:
two independent samples of their windows, one side encoded and decoded, folds by piece (a
piece's windows on both sides fall in one fold, so only the encoding can tell them apart).
0.5 = the encoding costs nothing.

    python bench/encoding.py --corpus ../shared/corpus/piano-midi-de [--count 1500]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from midigan import events as ev  # noqa: E402
from midigan import features  # noqa: E402
from midigan.corpus import load_corpus  # noqa: E402
from midigan.evaluate import encoded_pieces, real_material  # noqa: E402


def c2st(xa, xb, ga, gb, seed: int = 0) -> float:
    """Balanced accuracy of gradient boosting telling rows a from b, 5 folds by piece."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

    X, y = np.concatenate([xa, xb]), np.r_[np.zeros(len(xa)), np.ones(len(xb))]
    clf = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.15, max_bins=32, max_leaf_nodes=15,
                                         min_samples_leaf=20, random_state=seed)
    cv = StratifiedGroupKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, X, y, groups=np.r_[ga, gb], cv=cv, scoring="balanced_accuracy").mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="corpus folder: its validation pieces and the first train pieces")
    ap.add_argument("--count", type=int, default=1500, help="windows a side")
    ap.add_argument("--train-pieces", type=int, default=60, help="train pieces added to the validation ones")
    a = ap.parse_args()
    c = load_corpus(a.corpus)
    train = c.split("train")
    pieces = c.split("validation") + train[:a.train_pieces]
    medians = ev.tables([p.notes for p in train])
    no_stay = {**medians, "velocity_stay": [0.0, 0.0]}
    decodes = (("as written (no encoding)", None, None),
               ("lengths: class middle, velocities: bin middle", ev.tables(), None),
               ("lengths: median, velocities: bin middle", medians, None),
               ("lengths: class middle, velocities: drawn in bin", ev.tables(), 0),
               ("lengths: median, velocities: drawn in bin", no_stay, 0),
               ("lengths: median, velocities: drawn, kept (runtime)", medians, 0))
    b = real_material("b", "", pieces, a.count, np.random.default_rng(2))
    print(f"{len(pieces)} pieces, {a.count} windows a side; feature C2ST (0.5 = the encoding costs nothing)")
    print(f"{'decode':<54}{'rhythm':>8}{'dynamics':>10}")
    for name, tables, seed in decodes:
        side = pieces if tables is None else encoded_pieces(
            pieces, tables, None if seed is None else np.random.default_rng(seed))
        w = real_material("a", "", side, a.count, np.random.default_rng(1))
        r = [c2st(fn(w.notes)[0], fn(b.notes)[0], w.groups, b.groups)
             for fn in (features.rhythm_features, features.dynamics_features)]
        print(f"{name:<54}{r[0]:>8.3f}{r[1]:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
