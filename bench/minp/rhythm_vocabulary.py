"""How many different inter-onset intervals a model's 100-note windows use, against the music's.

A diagnostic for bench/minp (read on validation only; nothing here feeds training): per window,
the distinct inter-onset intervals (1/24 beat), those used only once, the share of interval
pairs seen before in the window, bar rhythms repeated from the bar before, and onsets mixing
duple and triplet grids; each as the model's mean, the validation pieces' and Cohen's d.

    python bench/minp/rhythm_vocabulary.py export/default.onnx --reference ../shared/corpus/piano-midi-de
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from midigan.corpus import load_corpus  # noqa: E402
from midigan.evaluate import model_streams, real_material, stream_material  # noqa: E402
from midigan.music import GRID_STEPS_PER_BEAT as Q  # noqa: E402
from midigan.presets import load_preset  # noqa: E402

NAMES = ("distinct intervals", "intervals used once", "pairs seen before", "bar rhythm repeated",
         "duple and triplet mixed")


def window_stats(w: np.ndarray) -> list[float]:
    onsets = np.unique(np.round(w[:, 1] * Q).astype(int))
    ioi = np.diff(onsets)
    _values, counts = np.unique(ioi, return_counts=True)
    pairs, seen, again = list(zip(ioi[:-1], ioi[1:])), set(), 0
    for p in pairs:
        again += p in seen
        seen.add(p)
    bars: dict[int, tuple] = {}
    for o in onsets:
        bars[o // (4 * Q)] = bars.get(o // (4 * Q), ()) + (o % (4 * Q),)
    repeated = [bars[b] == bars[b - 1] for b in bars if b - 1 in bars]
    off = onsets[onsets % Q != 0] % Q
    duple, triplet = np.sum(off % 3 == 0), np.sum((off % 4 == 0) & (off % 3 != 0))
    return [len(counts), np.sum(counts == 1), again / max(len(pairs), 1),
            np.mean(repeated) if repeated else 0.0, min(duple, triplet) / max(len(off), 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="ONNX generator")
    ap.add_argument("--reference", required=True, help="corpus folder; its validation split is the reference")
    ap.add_argument("--count", type=int, default=600, help="windows a side")
    ap.add_argument("--seed", type=int, default=0, help="generation and window-sampling seed")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    corpus = load_corpus(args.reference)
    ref = real_material("validation", "reference", corpus.split("validation"), args.count, rng)
    gen = stream_material("model", "source", model_streams(args.model, load_preset("piano"), args.count, 4, args.seed))
    a = np.array([window_stats(w) for w in gen.notes])
    b = np.array([window_stats(w) for w in ref.notes])
    print(f"{Path(args.model).name}: {len(a)} model windows, {len(b)} validation windows")
    for j, name in enumerate(NAMES):
        d = (a[:, j].mean() - b[:, j].mean()) / np.sqrt((a[:, j].var() + b[:, j].var()) / 2 + 1e-12)
        print(f"  {name:24s} model {a[:, j].mean():6.3f}  validation {b[:, j].mean():6.3f}  d {d:+.2f}")


if __name__ == "__main__":
    main()
