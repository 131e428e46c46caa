"""Long-range features on 100-note windows (what the timed judge sees): a model's lines, their
first and second windows, against the validation and train pieces. Cohen's d of the first window
against validation, and of train against validation (what real music varies by).

    python bench/copy/windows.py MODEL --corpus ../shared/corpus/piano-midi-de
"""
import argparse

import numpy as np

from midigan import features
from midigan.corpus import load_corpus
from midigan.evaluate import model_streams, real_material
from midigan.presets import load_preset


def cohen(a, b):
    sd = np.sqrt((a.var(0, ddof=1) + b.var(0, ddof=1)) / 2)
    return np.divide(a.mean(0) - b.mean(0), sd, out=np.zeros(a.shape[1]), where=sd > 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="an event model (ONNX)")
    ap.add_argument("--corpus", required=True, help="its training corpus")
    ap.add_argument("--lines", type=int, default=300, help="model lines (two windows each)")
    ap.add_argument("--top", type=int, default=14, help="features shown, largest |d| first")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    corpus = load_corpus(args.corpus)
    keys = lambda notes: features.longrange_features(notes[..., 0].astype(int))[0]  # noqa: E731
    val = keys(real_material("v", "reference", corpus.split("validation"), 400, rng).notes)
    train = keys(real_material("t", "reference", corpus.split("train"), 400, rng).notes)
    lines = np.stack(model_streams(args.model, load_preset("piano"), args.lines, 2, 0))
    first, second = keys(lines[:, :100]), keys(lines[:, 100:200])
    names = features.longrange_features(lines[:1, :100, 0].astype(int))[1]
    d = cohen(first, val)
    print(f"{'feature':16s} {'val':>7s} {'train':>7s} {'first':>7s} {'second':>7s} {'d':>6s} {'d train':>7s}")
    for i in np.argsort(-np.abs(d))[:args.top]:
        print(f"{names[i]:16s} {val[:, i].mean():7.3f} {train[:, i].mean():7.3f} {first[:, i].mean():7.3f} "
              f"{second[:, i].mean():7.3f} {d[i]:+6.2f} {cohen(train, val)[i]:+7.2f}")


if __name__ == "__main__":
    main()
