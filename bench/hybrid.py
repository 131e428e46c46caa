"""What the timed judge hears: the model's keys or its timing, each put on real music's other half.

The timed neural C2ST (`midigan evaluate`) tells the model's 100-note windows from real ones
by keys, onsets, lengths and velocities together. This bench swaps halves between the model's
windows and real windows from the *train* pieces (donors), and judges each hybrid against the
validation pieces as evaluate does (fresh judges, 3 splits by piece):

- model: the model's windows as `play` would send them (the preset, the vote);
- model keys on real timing: each model window's keys, in order, with a donor window's
  onsets, lengths and velocities;
- real keys on model timing: a donor's keys with the model's onsets, lengths and velocities;
- model keys and timing, real velocities: only the dynamics swapped in;
- real keys on other real timing, and real with another real window's velocities: what each
  swap alone costs;
- donors: the train windows themselves (the ceiling);
- keys and timing only: the model's windows and the donors with every velocity 64, judged
  against validation windows with every velocity 64.

A swap also breaks whatever ties keys to timing (a chord's keys landing on a melody's
onsets), so a hybrid is at least as easy to tell as its parts; read the rows against each
other. Validation only; nothing here feeds training.

    python bench/hybrid.py export/default.onnx --reference ../shared/corpus/piano-midi-de

Measured here (seventeenth session, the shipped model, 600 windows a side, seeds 0, 1, 2; 4 min):

    model                                              0.732  0.718  0.765   mean 0.738
    model keys on real timing                          0.951  0.944  0.972   mean 0.956
    real keys on model timing                          0.952  0.967  0.972   mean 0.964
    model keys and timing, real velocities             0.823  0.819  0.859   mean 0.834
    real keys on other real timing                     0.956  0.955  0.961   mean 0.957
    real, other real velocities                        0.751  0.702  0.748   mean 0.734
    donors (train windows)                             0.487  0.475  0.518   mean 0.493
    model, keys and timing only (all velocities 64)    0.728  0.731  0.759   mean 0.739
    donors, keys and timing only (all velocities 64)   0.505  0.486  0.509   mean 0.500

Read: the judge hears how keys sit on their rhythm (any swap of the two, even between real
pieces, is told at 0.96) and how velocities fit their notes (real velocities moved to other
real notes: 0.73); the model's own coupling is far better than a random pairing. With every
velocity set to 64 on both sides the model is told apart just as well (0.739 against 0.738):
the timed judge's verdict rests on keys and timing, not on dynamics, so a dynamics gain
(bench/chordorder: 0.766 to 0.710) cannot move it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from midigan.corpus import load_corpus  # noqa: E402
from midigan.evaluate import WINDOW, model_streams, real_material, stream_material  # noqa: E402
from midigan.judge import neural_c2st  # noqa: E402
from midigan.presets import load_preset  # noqa: E402


MODEL_FLAT = "model, keys and timing only (all velocities 64)"
OWN = ("model", MODEL_FLAT)  # rows of the model's windows alone: grouped by stream


def hybrids(model: np.ndarray, donor: np.ndarray) -> dict[str, np.ndarray]:
    """Rows to judge, each (N, WINDOW, 4): pitch, onset, duration, velocity."""
    n = min(len(model), len(donor))
    m, d = model[:n].copy(), donor[:n].copy()
    crossed = d.copy()  # what a swap alone costs: one real window's keys on another's timing
    crossed[..., 0] = np.roll(d[..., 0], len(d) // 2, axis=0)
    crossed_vel = d.copy()  # and one real window's velocities on another
    crossed_vel[..., 3] = np.roll(d[..., 3], len(d) // 2, axis=0)
    keys_on_real = d.copy()
    keys_on_real[..., 0] = m[..., 0]
    real_on_model = m.copy()
    real_on_model[..., 0] = d[..., 0]
    real_vel = m.copy()
    real_vel[..., 3] = d[..., 3]
    m_flat, d_flat = m.copy(), d.copy()
    m_flat[..., 3] = d_flat[..., 3] = 64
    return {"model": m, "model keys on real timing": keys_on_real, "real keys on model timing": real_on_model,
            "model keys and timing, real velocities": real_vel, "real keys on other real timing": crossed,
            "real, other real velocities": crossed_vel,
            "donors (train windows)": d,
            MODEL_FLAT: m_flat, "donors, keys and timing only (all velocities 64)": d_flat}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="ONNX generator")
    ap.add_argument("--reference", required=True, help="corpus folder: validation judges, train donates")
    ap.add_argument("--count", type=int, default=600, help="windows a side")
    ap.add_argument("--preset", default="piano", help="preset the model is sampled with")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated generation, donor and judge seeds")
    args = ap.parse_args()
    corpus = load_corpus(args.reference)
    train, val = corpus.split("train"), corpus.split("validation")
    seeds = [int(s) for s in args.seeds.split(",")]
    table: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        ref = real_material("validation", "reference", val, args.count, rng)
        donor = real_material("train", "donor", train, args.count, rng)
        gen = stream_material("model", "source", model_streams(args.model, load_preset(args.preset), args.count,
                                                               1, seed)).notes
        flat = ref.notes.copy()
        flat[..., 3] = 64
        for name, w in hybrids(gen, donor.notes).items():
            # a row holding donor halves is grouped by donor piece, so no piece is on both sides of a split
            groups = np.arange(len(w)) if name in OWN else donor.groups[:len(w)]
            against = flat if name.endswith("(all velocities 64)") else ref.notes
            r = neural_c2st(w, against, groups, ref.groups, timed=True, seed=seed, threads=1)
            table.setdefault(name, []).append(r["accuracy"])
    print(f"{Path(args.model).name}: timed neural C2ST against validation windows, {args.count} a side, "
          f"seeds {args.seeds} ({time.perf_counter() - t0:.0f} s)")
    for name, acc in table.items():
        print(f"  {name:50s} " + "  ".join(f"{a:.3f}" for a in acc) + f"   mean {np.mean(acc):.3f}")


if __name__ == "__main__":
    main()
