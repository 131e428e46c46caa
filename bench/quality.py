"""Quality over several seeds: the C2ST / overlap / novelty / distinct row of `midigan evaluate`
for one or more models at one or more temperatures, seed by seed, with the mean C2ST.

One seed's row is exactly what `midigan evaluate MODEL --temperature T --seed S` reports for the
model (same sampling, same reference and training split); the corpus, its windows and the
training 8-grams are loaded once for all rows. With --chords, also the shares of onsets with 1, 2,
3, 4 and 5+ notes and of notes that join a chord, over the first seed's lines (chord models), next
to the held-out pieces'. With --stream, the windows 1, 8 and 16 sequences into 300 live streams
(`Generator.stream` as `midigan play` runs it: state, recall and noise walk carried on). Run:

    python bench/quality.py export/default.onnx --temperature 0.8 --seeds 0-11
    python bench/quality.py a.onnx b.onnx --temperature 0.9,0.95 --seeds 0-5 --chords
    python bench/quality.py export/default.onnx --temperature 0.8 --seeds 0 --stream
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from midigan.corpus import load_corpus, windows
from midigan.metrics import score, train_ngrams
from midigan.runtime import Generator

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "piano-midi-de"


def seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def chord_sizes(together: np.ndarray) -> str:
    """'1/2/3/4/5+ notes per onset: a / b / c / d / e %, joining: f %' for rows of chord flags."""
    sizes = []
    for row in np.asarray(together, bool):
        starts = np.flatnonzero(~row[1:]) + 1  # a note not joining the one before starts an onset
        sizes.append(np.diff(np.r_[0, starts, len(row)]))
    sizes = np.concatenate(sizes)
    share = [np.mean(sizes == k) for k in (1, 2, 3, 4)] + [np.mean(sizes >= 5)]
    return (f"onsets of 1/2/3/4/5+ notes {' / '.join(f'{100 * x:.1f}' for x in share)} %, "
            f"joining {100 * np.asarray(together, bool)[:, 1:].mean():.0f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="ONNX generator files")
    ap.add_argument("--corpus", default=str(CORPUS), help="reference = its held-out pieces, train = the rest")
    ap.add_argument("--temperature", default="1.0", help="comma-separated sampling temperatures")
    ap.add_argument("--seeds", default="0-5", help="e.g. 0-5 or 0,3,7")
    ap.add_argument("--count", type=int, default=400, help="sequences per seed (evaluate's default)")
    ap.add_argument("--chords", action="store_true", help="also the chord sizes (first seed's lines)")
    ap.add_argument("--stream", action="store_true", help="also windows 1, 8 and 16 deep into 300 streams")
    a = ap.parse_args()
    run_seeds = seeds(a.seeds)

    rc = load_corpus(a.corpus)
    ref_pieces = rc.split("validation") + rc.split("test")
    train_pieces = rc.split("train")
    tkeys = train_ngrams([p.pitches for p in train_pieces])
    for path in a.models:
        g = Generator(path)
        ref = windows(ref_pieces, g.seq_len)
        if a.chords:
            print(f"held-out pieces: {chord_sizes(windows(ref_pieces, g.seq_len, together=True))}")
        for t in (float(x) for x in a.temperature.split(",")):
            t0, cs, ovs, novs, dis = time.time(), [], [], [], []
            for s in run_seeds:
                r = score(g.generate(a.count, seed=s, temperature=t), ref, tkeys, seed=s)
                cs.append(r["c2st"]), ovs.append(r["mean_overlap"])
                novs.append(100 * r["novelty"]), dis.append(100 * r["distinct"])
            print(f"{Path(path).name} T={t}: C2ST {' / '.join(f'{c:.3f}' for c in cs)}  "
                  f"mean {np.mean(cs):.3f} (sd {np.std(cs):.3f}, {sum(c <= 0.8 for c in cs)}/{len(cs)} <= 0.80)  "
                  f"overlap {min(ovs):.3f}-{max(ovs):.3f} (mean {np.mean(ovs):.3f})  "
                  f"novelty {min(novs):.1f}-{max(novs):.1f} % (mean {np.mean(novs):.2f})  distinct {min(dis):.0f} %  "
                  f"[{time.time() - t0:.0f} s]", flush=True)
            if a.chords and g.bos > 88:
                rng = np.random.default_rng(run_seeds[0])  # the same draw as generate()'s
                z = rng.standard_normal((a.count, g.noise_dim)).astype(np.float32)
                classes = g._sample_steps(z, g.initial_state(a.count), np.full(a.count, g.bos),
                                          g.seq_len, rng, t)[0]
                print(f"  {chord_sizes(g._split(classes)[1])}", flush=True)
            if a.stream:
                at = {1: [], 8: [], 16: []}
                for n in range(300):
                    st = g.stream(seed=n, temperature=t, morph=0.25)
                    for i in range(1, max(at) + 1):
                        w = next(st)
                        if i in at:
                            at[i].append(w)
                for i, ws in at.items():
                    r = score(np.array(ws), ref, tkeys, seed=run_seeds[0])
                    print(f"  stream window {i}: C2ST {r['c2st']:.3f}  overlap {r['mean_overlap']:.3f}  "
                          f"novelty {100 * r['novelty']:.1f} %  mean pitch {np.mean(ws):.1f}", flush=True)


if __name__ == "__main__":
    main()
