"""Does `play --listen` answer what it heard? Call and response on beats, no ports, no clock.

For each of N pieces (spread over the corpus), a call of --bars bars from the middle of the piece
(its keys, onsets, lengths and velocities) is played into a `Listener` in answer mode, and its
answer (2 bars, the default) is compared with the call: pitch-class profile correlation, notes in
the call's estimated key, and across the calls the correlation of the answer's mean velocity,
mean key (register) and notes per beat with the call's. Two arms, the same seeds: the line's
noise following what it heard (`Continuation.hear`, what ships: with a latent model's
encoder) and kept as drawn. `--mode accompany`: the notes it plays along from the call's second
bar to its end (it hears a bar at a time), instead of an answer. Prints the figures.

    python bench/answer.py [CORPUS] [--model export/default.onnx] [--n 50] [--bars 4] [--mode answer]

Measured here (twenty-second session, 100 calls; the latent default before the interval head):

    --bars 2                      pc corr        in key  velocity r  register r  density r  notes/beat
      follow                      0.496 ± 0.030  80.0%   0.80        0.71        0.78       7.15
      keep                        0.147 ± 0.034  65.7%   0.54        0.22        0.13       6.63
      (the previous recipe, no latent, its --seed 2 run: 0.365, 75.7 %, 0.63, 0.59, 0.43)
    --bars 8 --mode accompany
      follow                      0.603 ± 0.024  78.0%   0.50        0.59        0.75       7.35
      keep                        0.078 ± 0.038  60.7%   0.02        0.07       -0.17       6.54

The default with the interval head (shipped since): --bars 2, follow 0.421 ± 0.030, 79.0 %, 0.82,
0.74, 0.83, 6.83; keep 0.201 ± 0.035, 66.8 %, 0.63, 0.31, 0.31; accompanying, follow 0.483 ± 0.030,
74.3 %, 0.48, 0.60, 0.75; keep 0.052 ± 0.039.

The encoder reading the line's own notes as well (tried first): accompanying, it asked for ever
busier lines (notes per beat rising from 7 to 12 over 16 bars against calls of 6); heard notes
only, it settles (9.5 in the first bar, then 5-7).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from midigan.corpus import list_midi_files, read_notes  # noqa: E402
from midigan.listen import Listener  # noqa: E402
from midigan.presets import load_preset  # noqa: E402
from midigan.prime import key_of  # noqa: E402
from midigan.runtime import Generator  # noqa: E402

from prime import corr, in_key, profile  # noqa: E402  (bench/prime.py)


def answer(gen, call, seed: int, follow: bool, mode: str) -> np.ndarray:
    """What a Listener plays [m, 4] (pitch, onset, duration, velocity) to `call` (starting on bar
    2): answering, its first answer; accompanying, its notes from bar 3 to the call's last bar."""
    lis = Listener(gen, load_preset("piano"), mode=mode, seed=seed)
    lis.line.follow = follow and lis.line.follow
    msgs = sorted([(o, 1, (0x90, int(p), int(v))) for p, o, d, v in call]
                  + [(o + d, 0, (0x80, int(p), 0)) for p, o, d, v in call])
    beat, i, out = 0.0, 0, []
    end = 4 * np.ceil(call[:, 1].max() / 4)
    while beat < end + 40:
        while i < len(msgs) and msgs[i][0] <= beat:
            lis.hear(msgs[i][0], msgs[i][2])
            i += 1
        out += [(n.pitch, n.start, n.duration, n.velocity) for n in lis.due(beat)]
        if out and mode == "answer":
            return np.array(out, float)
        if mode == "accompany" and beat >= end:
            out = np.array(out, float)
            return out[(out[:, 1] >= 8) & (out[:, 1] < end)]
        beat = round(beat + 0.125, 9)
    raise RuntimeError("no answer")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(Path(__file__).resolve().parent.parent.parent
                                                     / "shared" / "corpus" / "piano-midi-de"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=50, help="calls (pieces)")
    ap.add_argument("--bars", type=int, default=4, help="bars each call lasts")
    ap.add_argument("--mode", default="answer", choices=("answer", "accompany"), help="listening mode")
    a = ap.parse_args()
    gen = Generator(a.model)
    t0 = time.perf_counter()
    names = list_midi_files(a.corpus)
    arms = ("follow", "keep")
    stats = {k: {"pc": [], "key": [], "vel": [], "reg": [], "dens": []} for k in ("call", *arms)}
    for seed, name in enumerate(names[i] for i in np.linspace(0, len(names) - 1, a.n).astype(int)):
        n = read_notes(Path(a.corpus) / name)
        mid = n.starts[len(n.starts) // 2] // 4 * 4
        keep = (n.starts >= mid) & (n.starts < mid + 4 * a.bars)
        call = np.stack([n.pitches[keep], n.starts[keep] - mid + 4, n.durations[keep], n.velocities[keep]], 1)
        key, want = key_of(call), profile(call[:, 0], call[:, 2])
        for kind in ("call", *arms):
            out = call if kind == "call" else answer(gen, call.astype(np.float64), seed, kind == "follow", a.mode)
            s = stats[kind]
            s["pc"].append(corr(profile(out[:, 0], out[:, 2]), want))
            s["key"].append(in_key(out, key))
            s["vel"].append(out[:, 3].mean())
            s["reg"].append(out[:, 0].mean())
            span = 4 * a.bars if kind == "call" else 8.0 if a.mode == "answer" else 4 * a.bars - 4
            s["dens"].append(len(out) / span)
    c = stats["call"]
    what = "the first answer of each" if a.mode == "answer" else "what it plays along from the call's 2nd bar"
    print(f"{a.n} calls of {a.bars} bars (the middle of {a.n} pieces), {what}, one seed each:")
    print(f"{'arm':>7} {'pc corr':>14} {'in key':>7} {'velocity r':>11} {'register r':>11} {'density r':>10}"
          f" {'notes/beat':>11}")
    for k in arms:
        s = stats[k]
        pc = np.array(s["pc"])
        print(f"{k:>7} {np.nanmean(pc):6.3f} ± {np.nanstd(pc) / np.sqrt(len(pc)):.3f} {np.mean(s['key']):7.1%}"
              f" {corr(c['vel'], s['vel']):11.2f} {corr(c['reg'], s['reg']):11.2f} {corr(c['dens'], s['dens']):10.2f}"
              f" {np.mean(s['dens']):11.2f}")
    print(f"  calls: notes per beat {np.mean(c['dens']):.2f}, mean velocity {np.mean(c['vel']):.1f}; "
          f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
