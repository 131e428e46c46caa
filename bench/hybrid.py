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
  against validation windows with every velocity 64; timing only: every key 60 as well
  (a chord becomes one key struck several times: the judge still sees how many).

A swap also breaks whatever ties keys to timing (a chord's keys landing on a melody's
onsets), so a hybrid is at least as easy to tell as its parts; read the rows against each
other. Validation only; nothing here feeds training.

    python bench/hybrid.py export/default.onnx --reference ../shared/corpus/piano-midi-de

Measured here (seventeenth session, the shipped model, 600 windows a side, seeds 0, 1, 2; 5 min):

    model                                              0.732  0.718  0.765   mean 0.738
    model keys on real timing                          0.951  0.944  0.972   mean 0.956
    real keys on model timing                          0.952  0.967  0.972   mean 0.964
    model keys and timing, real velocities             0.823  0.819  0.859   mean 0.834
    real keys on other real timing                     0.956  0.955  0.961   mean 0.957
    real, other real velocities                        0.751  0.702  0.748   mean 0.734
    donors (train windows)                             0.487  0.475  0.518   mean 0.493
    model, keys and timing only (all velocities 64)    0.728  0.731  0.759   mean 0.739
    donors, keys and timing only (all velocities 64)   0.505  0.486  0.509   mean 0.500
    model, timing only (all keys 60, velocities 64)    0.787  0.768  0.773   mean 0.776
    donors, timing only (all keys 60, velocities 64)   0.468  0.512  0.509   mean 0.496

Read: the judge hears how keys sit on their rhythm (any swap of the two, even between real
pieces, is told at 0.96) and how velocities fit their notes (real velocities moved to other
real notes: 0.73); the model's own coupling is far better than a random pairing. Each channel
alone tells the model apart: timing alone at 0.776, keys alone 0.729 (evaluate's pitch judge);
with velocities flattened on both sides the verdict does not fall (0.739 against 0.738). The
judge is a small net trained briefly, not an ideal observer: taking a channel away can raise
its score (timing alone > keys and timing), so the rows are not additive. What they do say:
a dynamics gain alone should not be expected to move the timed verdict (bench/chordorder:
dynamics 0.766 to 0.710, timed not lower), and the model's timing, heard without its keys,
is as telling as anything.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from midigan.corpus import load_corpus  # noqa: E402
from midigan.evaluate import model_streams, real_material, stream_material  # noqa: E402
from midigan.judge import neural_c2st  # noqa: E402
from midigan.presets import load_preset  # noqa: E402


ALL = ("keys", "velocities")


def keep(w: np.ndarray, heard=ALL) -> np.ndarray:
    """Windows with what the judge may not hear flattened: every key 60 without "keys", every
    velocity 64 without "velocities" (onsets and lengths always stay)."""
    w = w.copy()
    if "keys" not in heard:
        w[..., 0] = 60
    if "velocities" not in heard:
        w[..., 3] = 64
    return w


def hybrids(model: np.ndarray, donor: np.ndarray) -> list[tuple[str, np.ndarray, bool, tuple]]:
    """Rows to judge: (name, windows (N, WINDOW, 4), whether any half is a donor's, what is heard)."""
    n = min(len(model), len(donor))
    m, d = model[:n], donor[:n]
    other = np.roll(d, n // 2, axis=0)  # another donor window for each

    def mix(base, part, col):
        w = base.copy()
        w[..., col] = part[..., col]
        return w

    return [("model", m, False, ALL),
            ("model keys on real timing", mix(d, m, 0), True, ALL),
            ("real keys on model timing", mix(m, d, 0), True, ALL),
            ("model keys and timing, real velocities", mix(m, d, 3), True, ALL),
            ("real keys on other real timing", mix(d, other, 0), True, ALL),
            ("real, other real velocities", mix(d, other, 3), True, ALL),
            ("donors (train windows)", d, True, ALL),
            ("model, keys and timing only (all velocities 64)", keep(m, ("keys",)), False, ("keys",)),
            ("donors, keys and timing only (all velocities 64)", keep(d, ("keys",)), True, ("keys",)),
            ("model, timing only (all keys 60, velocities 64)", keep(m, ()), False, ()),
            ("donors, timing only (all keys 60, velocities 64)", keep(d, ()), True, ())]


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
        for name, w, donated, heard in hybrids(gen, donor.notes):
            # a row holding donor halves is grouped by donor piece, so no piece is on both sides of a split
            groups = donor.groups[:len(w)] if donated else np.arange(len(w))
            r = neural_c2st(w, keep(ref.notes, heard), groups, ref.groups, timed=True, seed=seed, threads=1)
            table.setdefault(name, []).append(r["accuracy"])
    print(f"{Path(args.model).name}: timed neural C2ST against validation windows, {args.count} a side, "
          f"seeds {args.seeds} ({time.perf_counter() - t0:.0f} s)")
    for name, acc in table.items():
        print(f"  {name:50s} " + "  ".join(f"{a:.3f}" for a in acc) + f"   mean {np.mean(acc):.3f}")


if __name__ == "__main__":
    main()
