"""PROTOTYPE bench: a generator that looks one bar back (lookback.diff), judged in torch.

Not wired into export or the runtime. The shipped model almost never repeats a motif
(`bench/telltales.py`), and an LSTM cannot carry exact copies a bar long in its state. This
prototype lets it look a bar back, after Magenta's Lookback RNN:
- Each note's input adds the note one bar (96 grid steps) before it, at the same chord rank,
  and the note that followed that one. It also adds four flags: did the last note repeat the
  one a bar before it?
- A copy logit per attribute, with a state-dependent gate, lands on the class the looked-back
  note holds.

What is here is training-side only, as a patch: the data, the model, and the training
sampler, so the discriminator and GAN phases run too. It comes with a sampler that does the
same look-ups on its own history:

    git checkout 8137f62 && git apply bench/lookback/lookback.diff   # the patch's base (a GAN phase then)
    printf 'hidden = 256\nmle_steps = 3000\nadv_steps = 0\npg_steps = 0\nlookback = 1\n' > lb.toml
    midigan train DATA --config lb.toml --out runs/lb          # about 19 min on 2 cores
    python bench/lookback/judge.py runs/lb --reference DATA --temperatures 1,0.9,0.8,1:0.8:1:1

(`adv_steps` and `pg_steps` above 0 add the discriminator and GAN phases.)

Measured here on validation (hidden 256, 3,000 likelihood steps):
- NLL: 5.305 with lookback, against 5.641 without it.
- Fresh timed C2ST at temperature 1 (3 seeds): the same, 0.742 against 0.740.
- Its motifs recur about as often as real music's only at temperature 0.8, where the judge
  likes it less (0.782).
- 300 discriminator and 300 GAN steps on top doubled its repetition at temperature 0.9
  (irep4 0.094 to 0.211), and the judge stayed where it was (0.735).
- After 1,000 GAN steps more, its repetition at temperature 1 had tripled (irep4 0.030 to 0.091),
  with the judge unchanged (0.741) and a NLL still falling (5.277).

Prints the validation NLL and, per sampling temperature:
- the long-range repetition features of 400-note lines, beside the validation pieces';
- the evaluation's fresh timed and pitch C2ST on 100-note lines against validation windows,
  with no vote and no preset, on 3 seeds.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from midigan import events as ev  # noqa: E402
from midigan import features  # noqa: E402
from midigan.corpus import load_corpus  # noqa: E402
from midigan.evaluate import LONG, WINDOW, real_material  # noqa: E402
from midigan.judge import neural_c2st  # noqa: E402
from midigan.training.checkpoint import load_checkpoint  # noqa: E402
from midigan.training.config import Config, make_config  # noqa: E402
from midigan.training.model import build, chord_rule  # noqa: E402

START = torch.tensor([ev.START[a] for a in ev.ATTRS])
SHOWN = ("irep4", "rep4", "rep6", "tri_entropy", "lag24", "half_pc_corr")


def lookback_index(hq, q, r):
    """hq [B, L] onsets so far (sorted), q, r [B] the new note's onset and chord rank -> [B]
    index of the note a bar earlier at that rank, else the last one in the bar before, else -1
    (the training data's `lookback_index`, on the sampler's own history)."""
    B, L = hq.shape
    if L == 0:
        return torch.full((B,), -1, dtype=torch.long)
    target = (q - ev.BAR_STEPS)[:, None]
    k = torch.searchsorted(hq, target)[:, 0] + r
    exact = (k < L) & (hq.gather(1, k.clamp(max=L - 1)[:, None])[:, 0] == target[:, 0])
    fb = torch.searchsorted(hq, target, right=True)[:, 0] - 1
    fb_ok = (fb >= 0) & (hq.gather(1, fb.clamp(min=0)[:, None])[:, 0] > target[:, 0] - ev.BAR_STEPS)
    return torch.where(exact, k, torch.where(fb_ok, fb, torch.full_like(fb, -1)))


def _row(he, k, B):
    if he.shape[1] == 0:
        return START.expand(B, 4)
    got = he.gather(1, k.clamp(0, he.shape[1] - 1)[:, None, None].expand(-1, 1, 4))[:, 0]
    return torch.where((k >= 0)[:, None], got, START.expand(B, 4))


@torch.no_grad()
def sample(G, cfg, B: int, n: int, seed: int, temp=1.0) -> np.ndarray:
    """[B, n, 4] events from the start at `temp` (one for every attribute, or a dict of them),
    the chord rule as the only bias."""
    temps = temp if isinstance(temp, dict) else {a: temp for a in ev.ATTRS}
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, cfg.noise_dim, generator=g)
    prev, pos = START.repeat(B, 3), torch.zeros(B, dtype=torch.long)
    h = c = torch.zeros(cfg.layers, B, cfg.hidden)
    he, hq = torch.zeros(B, 0, 4, dtype=torch.long), torch.zeros(B, 0, dtype=torch.long)
    q, r = torch.zeros(B, dtype=torch.long), torch.zeros(B, dtype=torch.long)

    def pick(logits, a):
        u = torch.rand(logits.shape, generator=g).clamp_min(1e-10)
        return torch.argmax(logits - temps[a] * torch.log((-torch.log(u)).clamp_min(1e-10)), -1)

    for t in range(n):
        y, (h, c) = G._run(z, prev[:, None, :] if G.lookback else prev[:, None, :4], pos[:, None], (h, c))
        y = y[:, 0]
        step = pick(G.step_head(y) + (G.copy_bonus(y, prev[:, 4], "step") if G.lookback else 0), "step")
        r = torch.where((step == 0) & (t > 0), r + 1, torch.zeros_like(r))
        q = q + step
        k = lookback_index(hq, q, r)
        lb = _row(he, k, B)
        copy = (lambda x, a: G.copy_bonus(x, lb[:, ev.ATTRS.index(a)], a)) if G.lookback else (lambda x, a: 0)
        u = G._after_step(y, step, pos)
        pitch = pick(G.pitch_head(u) + chord_rule(step, prev[:, 1]) + copy(u, "pitch"), "pitch")
        v = G._after_pitch(u, pitch)
        e = torch.stack([step, pitch, pick(G.duration_head(v) + copy(v, "duration"), "duration"),
                         pick(G.velocity_head(v) + copy(v, "velocity"), "velocity")], 1)
        he, hq = torch.cat([he, e[:, None]], 1), torch.cat([hq, q[:, None]], 1)
        prev = torch.cat([e, _row(he, torch.where(k >= 0, k + 1, k), B), lb], 1)
        pos = (pos + step) % ev.BAR_STEPS
    return he.numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="run folder (its checkpoint's best generator)")
    ap.add_argument("--reference", required=True, help="corpus folder; its validation split is the reference")
    ap.add_argument("--count", type=int, default=600, help="lines and windows a side")
    ap.add_argument("--temperatures", default="1",
                    help="comma-separated sampling temperatures, each for every attribute or as "
                         "step:pitch:duration:velocity (e.g. 1:0.8:1:1)")
    args = ap.parse_args()
    ck = load_checkpoint(Path(args.run) / "checkpoint.pt")
    cfg = make_config(ck["config"], Config())
    G, _ = build(cfg)
    G.load_state_dict(ck["best_generator"])
    G.eval()
    torch.set_num_threads(1)
    val = load_corpus(args.reference).split("validation")
    print(f"{args.run}: lookback {getattr(cfg, 'lookback', 0)}, best validation NLL {ck['best_nll']:.4f}")
    ref = real_material("v", "reference", val, args.count, np.random.default_rng(0))
    X, names = features.longrange_features(ref.long)
    col = {nm: i for i, nm in enumerate(names)}
    print(f"{'real':>8s}  " + "  ".join(f"{k} {X[:, col[k]].mean():.3f}" for k in SHOWN))
    for text in args.temperatures.split(","):
        parts = [float(x) for x in text.split(":")]
        temp = dict(zip(ev.ATTRS, parts)) if len(parts) == 4 else parts[0]
        Xg, _ = features.longrange_features(sample(G, cfg, args.count // 2, LONG, 0, temp)[..., 1] + ev.PITCH_LOW)
        print(f"{'T=' + text:>8s}  " + "  ".join(f"{k} {Xg[:, col[k]].mean():.3f}" for k in SHOWN))
        for seed in range(3):
            ref = real_material("v", "reference", val, args.count, np.random.default_rng(seed))
            e = sample(G, cfg, args.count, WINDOW, 1000 + seed, temp)
            notes = ev.to_notes(e, np.cumsum(e[..., 0], axis=1))
            res = [neural_c2st(a, b, np.arange(len(a)), ref.groups, timed=timed, seed=seed)
                   for a, b, timed in ((notes, ref.notes, True),
                                       (notes[..., 0].astype(np.int64), ref.notes[..., 0].astype(np.int64), False))]
            print(f"{'':8s}  seed {seed}: timed C2ST {res[0]['accuracy']:.3f} ({res[0]['se']:.3f}), "
                  f"pitch {res[1]['accuracy']:.3f} ({res[1]['se']:.3f})")


if __name__ == "__main__":
    main()
