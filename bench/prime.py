"""Does priming make the model continue what it heard? Pitch-class profile correlation of the
first generated phrase (100 notes) with its prime's, primed vs unprimed, over 50 seeds.

Two kinds of prime: 8 bars from the middle of 50 piano-midi.de pieces (one seed each), and
one F# major line (50 seeds, as tests/test_prime.py). Also: the share of generated notes
in the prime's estimated key's scale, and how the continuation's loudness follows the prime's
(the correlation of their mean velocities over the corpus primes, and the slope). Prints the
figures.

    python bench/prime.py [CORPUS] [--model export/default.onnx]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from midigan.corpus import list_midi_files, read_notes  # noqa: E402
from midigan.music import SCALES  # noqa: E402
from midigan.prime import key_of  # noqa: E402
from midigan.runtime import Generator  # noqa: E402


def profile(pitches, durations):
    p = np.bincount(np.asarray(pitches, np.int64) % 12, weights=durations, minlength=12)
    return p / max(p.sum(), 1e-9)


def corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def in_key(notes, key):
    pcs = {(key.tonic + iv) % 12 for iv in SCALES[key.mode]}
    return float(np.isin(notes[:, 0].astype(int) % 12, list(pcs)).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parent.parent.parent
                                                     / "shared" / "corpus" / "piano-midi-de"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--drawn-noise", action="store_true",
                    help="primed lines keep their drawn noise (the encoder's reading of the prime unused)")
    a = ap.parse_args()
    gen = Generator(a.model)
    if a.drawn_noise:
        gen.encoder = None  # Generator.noise_for then leaves the drawn noise as it is
    t0 = time.perf_counter()
    rows = {"primed": [], "fresh": []}
    keyed = {"primed": [], "fresh": []}
    loud = {"prime": [], "primed": [], "fresh": []}  # mean velocities
    names = list_midi_files(a.corpus)
    picks = [names[i] for i in np.linspace(0, len(names) - 1, a.n).astype(int)]
    for seed, name in enumerate(picks):
        n = read_notes(Path(a.corpus) / name)
        mid = n.starts[len(n.starts) // 2] // 4 * 4
        keep = (n.starts >= mid) & (n.starts < mid + 32)
        prime = np.stack([n.pitches[keep], n.starts[keep] - mid, n.durations[keep], n.velocities[keep]], 1)
        prime = prime.astype(np.float64)
        want = profile(prime[:, 0], prime[:, 2])
        key = key_of(prime)
        loud["prime"].append(prime[:, 3].mean())
        for kind, extra in (("primed", {"prime": prime}), ("fresh", {})):
            out = next(gen.stream(seed=seed, candidates=1, **extra))[0]
            rows[kind].append(corr(profile(out[:, 0], out[:, 2]), want))
            keyed[kind].append(in_key(out, key))
            loud[kind].append(out[:, 3].mean())
    print(f"{a.n} corpus primes (8 bars from the middle of {a.n} pieces), one seed each:")
    for k in rows:
        r = np.array(rows[k])
        print(f"  {k:>6}: pitch-class profile correlation with the prime {np.nanmean(r):.3f} "
              f"(± {np.nanstd(r) / np.sqrt(len(r)):.3f} s.e.), notes in the prime's key "
              f"{np.mean(keyed[k]):.1%}")
    v = np.array(loud["prime"])
    for k in ("primed", "fresh"):
        print(f"  {k:>6}: mean velocity against the prime's: correlation {corr(v, loud[k]):.2f}, "
              f"slope {np.polyfit(v, loud[k], 1)[0]:.2f}, mean |difference| {np.abs(np.array(loud[k]) - v).mean():.1f} "
              f"(primes' means {v.mean():.1f} ± {v.std():.1f})")
    scale = [66, 68, 70, 71, 73, 75, 77, 78]
    prime = np.array([[scale[(i * 3) % 8] - 12 * (i % 2), i * 0.5, 0.5, 80] for i in range(48)], float)
    want = profile(prime[:, 0], prime[:, 2])
    for kind, extra in (("primed", {"prime": prime}), ("fresh", {})):
        out = next(gen.stream(seed=0, count=a.n, candidates=1, **extra))
        r = np.array([corr(profile(x[:, 0], x[:, 2]), want) for x in out])
        print(f"  F# major line, {a.n} seeds, {kind:>6}: correlation {np.nanmean(r):.3f} "
              f"(± {np.nanstd(r) / np.sqrt(len(r)):.3f}), notes in F# major {np.mean([in_key(x, key_of(prime)) for x in out]):.1%}")
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
