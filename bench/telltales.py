"""Which evaluation features tell a model's music from real music, and by how much.

`midigan evaluate` says *how well* a fresh judge tells them apart; this bench says *by what*:
for each feature family of `midigan/features.py` it prints the features whose means differ
most between the model's streams and the validation pieces, as a standardised difference
(Cohen's d: difference of means over the pooled standard deviation; |d| ≥ 0.8 is large).
A diagnostic for the next model change, read on validation only; nothing here feeds training.

    python bench/telltales.py export/default.onnx --reference ../shared/corpus/piano-midi-de
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from midigan import features  # noqa: E402
from midigan.corpus import load_corpus  # noqa: E402
from midigan.evaluate import LONG, WINDOW, model_streams, real_material, stream_material  # noqa: E402
from midigan.presets import load_preset  # noqa: E402

FAMILIES = (("longrange", "long", features.longrange_features),
            ("rhythm", "notes", features.rhythm_features),
            ("dynamics", "notes", features.dynamics_features))


def cohens_d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per column: (mean a - mean b) / pooled sd (0 where both columns are constant)."""
    sd = np.sqrt((a.var(0, ddof=1) + b.var(0, ddof=1)) / 2)
    return np.divide(a.mean(0) - b.mean(0), sd, out=np.zeros(a.shape[1]), where=sd > 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="ONNX generator")
    ap.add_argument("--reference", required=True, help="corpus folder; its validation split is the reference")
    ap.add_argument("--count", type=int, default=400, help="streams and windows a side")
    ap.add_argument("--seed", type=int, default=0, help="generation and window-sampling seed")
    ap.add_argument("--preset", default="piano", help="preset the model is sampled with")
    ap.add_argument("--top", type=int, default=8, help="features shown per family")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    ref = real_material("validation", "reference", load_corpus(args.reference).split("validation"), args.count, rng)
    streams = model_streams(args.model, load_preset(args.preset), args.count, LONG // WINDOW, args.seed)
    gen = stream_material(Path(args.model).name, "source", streams)
    print(f"{Path(args.model).name} vs validation pieces: {len(gen.notes)} / {len(ref.notes)} windows "
          f"({WINDOW} notes; long-range {LONG}), seed {args.seed}")
    for family, attr, fn in FAMILIES:
        (xg, names), (xr, _) = fn(getattr(gen, attr)), fn(getattr(ref, attr))
        d = cohens_d(xg, xr)
        print(f"\n{family}: mean |d| {np.abs(d).mean():.2f} over {len(names)} features")
        print(f"  {'feature':24s} {'model':>9s} {'real':>9s} {'d':>7s}")
        for i in np.argsort(-np.abs(d))[:args.top]:
            print(f"  {names[i]:24s} {xg[:, i].mean():9.3f} {xr[:, i].mean():9.3f} {d[i]:+7.2f}")


if __name__ == "__main__":
    main()
