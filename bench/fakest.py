"""Which of a model's windows a fresh timed judge finds most fake, and rhythm rates beside the music's.

`midigan evaluate` says how well a fresh judge tells the model's 100-note windows from the
validation pieces'; this prints which windows it is surest about. Judges are trained as
evaluate trains them (3 splits by piece and stream); each window is scored by the judge that
held it out. Printed: the accuracy, how the judge's "real" logit follows each rhythm and
dynamics feature within each side, the windows it finds most fake and most real (inter-onset
intervals and lengths in 1/24 beats, velocities, keys), and rhythm rates of the model's lines
against the train and validation pieces. `--mode timing` judges timing alone (every key 60,
every velocity 64, as bench/hybrid.py does). Validation only; nothing here feeds training.

    python bench/fakest.py export/default.onnx --reference ../shared/corpus/piano-midi-de [--mode timing]

Measured here (twenty-eighth session, the shipped model, 600 windows a side, seed 0; 2 min):
judge accuracy 0.626 / 0.604 / 0.628 (mean 0.619); timing alone 0.743 (`--mode timing`). Its
surest "fake" windows open with long chords (6 to 10 beats) and gaps of 3 to 4 beats, or run
dotted 1.5-beat rhythms in block chords; its surest "real" ones are strict figures (Alberti
basses, broken chords repeating every beat). Rates:

    validation gaps >= 1.5 beats 0.0031 (first 20 notes 0.0135)  chord notes as long as the one below 0.807  melody as long as the note before 0.585  legato 0.624
    train      gaps >= 1.5 beats 0.0078 (first 20 notes 0.0230)  chord notes as long as the one below 0.769  melody as long as the note before 0.576  legato 0.643
    model      gaps >= 1.5 beats 0.0065 (first 20 notes 0.0246)  chord notes as long as the one below 0.791  melody as long as the note before 0.638  legato 0.657

The long gaps are the training pieces' own rate (validation has fewer); the model keeps a
melody note's length a little more often than the music.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from midigan import features  # noqa: E402
from midigan import judge as J  # noqa: E402
from midigan.corpus import load_corpus  # noqa: E402
from midigan.evaluate import model_streams, real_material, stream_material  # noqa: E402
from midigan.presets import load_preset  # noqa: E402


def held_out_logits(a, b, ga, gb, rng, splits: int = 3):
    """Each window's "real" logit from a fresh judge that did not train on its piece or stream,
    and the judges' balanced accuracies."""
    import torch

    n = len(a)
    keys, chans = J.features(np.concatenate([a, b]), True)
    keys, chans = torch.from_numpy(keys), torch.from_numpy(J._standardised(chans))
    y = torch.from_numpy(np.r_[np.zeros(n), np.ones(n)].astype(np.float32))
    torch.set_num_threads(1)
    logits, accs = np.zeros(2 * n), []
    for s in range(splits):
        test = np.r_[J._test_mask(ga, n, rng)[0], J._test_mask(gb, n, rng)[0]]
        torch.manual_seed(s)
        net = J._build(torch, True)
        J._train(torch, net, keys[torch.from_numpy(~test)], chans[torch.from_numpy(~test)],
                 y[torch.from_numpy(~test)], J.EPOCHS)
        held = torch.from_numpy(test)
        net.eval()
        with torch.no_grad():
            logits[test] = net(keys[held], chans[held]).numpy()
        accs.append(J._balanced_accuracy(torch, net, keys[held], chans[held], y[held]))
    return logits, accs


def show(w: np.ndarray, notes: int = 40) -> str:
    on = w[:notes, 1]
    ioi = np.diff(on, prepend=on[0]) * 24
    return ("ioi " + " ".join(str(int(round(x))) for x in ioi) + "\n      len " +
            " ".join(f"{d * 24:.0f}" for d in w[:notes, 2]) + "\n      vel " +
            " ".join(str(int(v)) for v in w[:notes // 2, 3]) + "\n      key " +
            " ".join(str(int(p)) for p in w[:notes // 2, 0]))


def rates(lines, label: str) -> None:
    """Long gaps (overall and in a line's first 20 notes), chord notes as long as the note below,
    melody notes as long as the one before, legato (length 0.8-1.05 of the gap to the next onset)."""
    gaps = [np.diff(s[:, 1]) for s in lines]
    ioi, first = np.concatenate(gaps), np.concatenate([g[:20] for g in gaps])
    chord, same, legato = [], [], []
    for s, g in zip(lines, gaps):
        d = s[:, 2]
        together = g < 1e-6
        alike = np.abs(np.log2(np.maximum(d[1:], 1e-3) / np.maximum(d[:-1], 1e-3))) < 0.1
        chord.append(alike[together])
        same.append(alike[~together])
        ratio = d[:-1] / np.maximum(g, 1e-3)
        legato.append(((ratio > 0.8) & (ratio < 1.05))[~together])
    print(f"  {label:10s} gaps >= 1.5 beats {np.mean(ioi >= 1.5):.4f} (first 20 notes {np.mean(first >= 1.5):.4f})  "
          f"chord notes as long as the one below {np.concatenate(chord).mean():.3f}  "
          f"melody as long as the note before {np.concatenate(same).mean():.3f}  legato {np.concatenate(legato).mean():.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="ONNX generator")
    ap.add_argument("--reference", required=True, help="corpus folder; its validation split is the reference")
    ap.add_argument("--count", type=int, default=600, help="windows a side")
    ap.add_argument("--seed", type=int, default=0, help="generation, window-sampling and judge seed")
    ap.add_argument("--mode", choices=("full", "timing"), default="full",
                    help="full: what evaluate judges; timing: every key 60 and velocity 64 on both sides")
    ap.add_argument("--show", type=int, default=3, help="windows shown at each end")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    corpus = load_corpus(args.reference)
    ref = real_material("validation", "reference", corpus.split("validation"), args.count, rng)
    lines = model_streams(args.model, load_preset("piano"), args.count, 4, args.seed)
    gen = stream_material(Path(args.model).name, "source", lines)
    n = min(len(gen.notes), len(ref.notes))
    a, b = gen.notes[:n].copy(), ref.notes[:n].copy()
    if args.mode == "timing":
        for w in (a, b):
            w[..., 0], w[..., 3] = 60, 64
    logits, accs = held_out_logits(a, b, gen.groups[:n], ref.groups[:n], rng)
    print(f"{Path(args.model).name} against validation, {n} windows a side, mode {args.mode}: judge accuracy "
          + " / ".join(f"{x:.3f}" for x in accs) + f", mean {np.mean(accs):.3f}")
    side = np.r_[np.zeros(n), np.ones(n)]
    both = np.concatenate([gen.notes[:n], ref.notes[:n]])
    for family, fn in (("rhythm", features.rhythm_features), ("dynamics", features.dynamics_features)):
        x, names = fn(both)
        corr = [[np.corrcoef(x[side == k, j], logits[side == k])[0, 1] if x[side == k, j].std() > 0 else 0.0
                 for k in (0, 1)] for j in range(len(names))]
        print(f"\n{family}: correlation of the judge's 'real' logit with each feature, within model / real windows")
        for j in sorted(range(len(names)), key=lambda j: -abs(corr[j][0]))[:8]:
            print(f"  {names[j]:22s} {corr[j][0]:+.2f} {corr[j][1]:+.2f}")
    order = np.argsort(logits[:n])
    for title, idx in (("model windows judged most fake", order[:args.show]),
                       ("model windows judged most real", order[::-1][:args.show]),
                       ("real windows judged most real", n + np.argsort(logits[n:])[::-1][:args.show])):
        print(f"\n{title} (1/24 beats):")
        for i in idx:
            print(f"  {logits[i]:+5.1f} {show(both[i])}")
    print("\nrates (the model's lines, 400 notes each, against whole pieces):")
    for split in ("validation", "train"):
        rates([np.stack([p.notes.pitches, p.notes.starts, p.notes.durations, p.notes.velocities], 1).astype(float)
               for p in corpus.split(split)], split)
    rates(lines, "model")


if __name__ == "__main__":
    main()
