"""Long-range features on 100-note windows (what the timed judge sees): a model's lines, their
first and second windows, against the validation and train pieces. Cohen's d of the first window
against validation, and of train against validation (what real music varies by).

    python bench/copy/windows.py MODEL --corpus ../shared/corpus/piano-midi-de
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for telltales

from midigan import features  # noqa: E402
from midigan.corpus import load_corpus  # noqa: E402
from midigan.evaluate import WINDOW, model_streams, real_material  # noqa: E402
from midigan.presets import load_preset  # noqa: E402
from telltales import cohens_d  # noqa: E402


def keys(notes: np.ndarray) -> np.ndarray:
    """[n, WINDOW, 4] notes -> [n, features] long-range features of their keys."""
    return features.longrange_features(notes[..., 0].astype(int))[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="an event model (ONNX)")
    ap.add_argument("--corpus", required=True, help="its training corpus")
    ap.add_argument("--lines", type=int, default=300, help="model lines (two windows each)")
    ap.add_argument("--top", type=int, default=14, help="features shown, largest |d| first")
    ap.add_argument("--preset", default="piano", help="preset the lines are sampled with (a name or a TOML file)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    corpus = load_corpus(args.corpus)
    val = keys(real_material("v", "reference", corpus.split("validation"), 400, rng).notes)
    train = keys(real_material("t", "reference", corpus.split("train"), 400, rng).notes)
    lines = np.stack(model_streams(args.model, load_preset(args.preset), args.lines, 2, 0))
    first, second = keys(lines[:, :WINDOW]), keys(lines[:, WINDOW:2 * WINDOW])
    names = features.longrange_features(lines[:1, :WINDOW, 0].astype(int))[1]
    d, d_train = cohens_d(first, val), cohens_d(train, val)
    print(f"{'feature':16s} {'val':>7s} {'train':>7s} {'first':>7s} {'second':>7s} {'d':>6s} {'d train':>7s}")
    for i in np.argsort(-np.abs(d))[:args.top]:
        print(f"{names[i]:16s} {val[:, i].mean():7.3f} {train[:, i].mean():7.3f} {first[:, i].mean():7.3f} "
              f"{second[:, i].mean():7.3f} {d[i]:+6.2f} {d_train[i]:+7.2f}")


if __name__ == "__main__":
    main()
