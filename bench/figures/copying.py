"""Copying by a model's lines, as `midigan evaluate` measures it, with no reference split: the
share of 8-note pitch n-grams of each line's first 400 notes found in the training pieces, and
the longest run found verbatim in one of them. One row per preset.

    python bench/figures/copying.py export/default.onnx --corpus ../shared/corpus/piano-midi-de --preset piano --preset etude
"""
import argparse

import numpy as np

from midigan.corpus import load_corpus
from midigan.evaluate import LONG, WINDOW, copying, index_training, model_streams
from midigan.presets import load_preset


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="an event model (ONNX)")
    ap.add_argument("--corpus", required=True, help="its training corpus (the train split is read)")
    ap.add_argument("--preset", action="append", default=[], help="a preset name or TOML file (repeatable; default piano)")
    ap.add_argument("--lines", type=int, default=1000, help="lines sampled (evaluate's default count)")
    ap.add_argument("--seed", type=int, default=0, help="the sampling seed (evaluate's default)")
    args = ap.parse_args()
    index = index_training(load_corpus(args.corpus).split("train"))
    for preset in args.preset or ["piano"]:
        lines = model_streams(args.model, load_preset(preset), args.lines, LONG // WINDOW, args.seed)
        c = copying(np.stack([line[:LONG, 0] for line in lines]).astype(np.int64), index)
        print(f"{preset}: 8-grams in the training pieces {100 * c['novelty']:.2f} %, longest verbatim "
              f"run p50 {c['longest_p50']:.0f}, max {c['longest_max']}", flush=True)


if __name__ == "__main__":
    main()
