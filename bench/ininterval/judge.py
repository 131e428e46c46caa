"""PROTOTYPE bench: runs' generators sampled in torch with and without their critic's vote,
judged on validation as `midigan evaluate` judges (the interval-input patch, interval-input.diff).

    git apply bench/ininterval/interval-input.diff
    printf 'in_interval = 1\n' > iin.toml
    midigan train DATA --config iin.toml --out runs/iinS --seed S      # 53 min here, two at once
    python bench/ininterval/judge.py runs/iinS runs/seedS --reference DATA

Each run: 600 lines of 100 notes from the start (its best generator, no preset, temperatures
1 / 0.9 / 1 / 0.7), 8 candidates a line; "vote" draws one by the softmax of the run's critic's
scores (critic temperature 1, as shipped), "none" draws one with the same noise and no
scores. Prints the timed, pitch, rhythm and dynamics judges per judge seed and their mean.
Works on runs with and without the patch (without it the key before last is never passed).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: torch_lines

from torch_lines import judge_lines, load_generator  # noqa: E402  (puts the repo first on the path)

from midigan import events as ev  # noqa: E402
from midigan.corpus import load_corpus  # noqa: E402
from midigan.evaluate import WINDOW, real_material  # noqa: E402
from midigan.music import N_PITCHES  # noqa: E402
from midigan.training.model import NEG, build  # noqa: E402

TEMPS = {"step": 1.0, "pitch": 0.9, "duration": 1.0, "velocity": 0.7}


def sample(G, cfg, B: int, n: int, g: torch.Generator):
    """[B, n, 4] events and [B, n] bar positions, from the start."""
    z = torch.randn(B, cfg.noise_dim, generator=g)
    prev = torch.tensor([ev.START[a] for a in ev.ATTRS]).repeat(B, 1)
    pos, prev2 = torch.zeros(B, dtype=torch.long), torch.full((B,), N_PITCHES)
    state = (torch.zeros(cfg.layers, B, cfg.hidden), torch.zeros(cfg.layers, B, cfg.hidden))
    patched = getattr(G, "interval_in", None) is not None
    out, where = [], []

    def pick(logits, a):
        u = torch.rand(logits.shape, generator=g).clamp_min(1e-10)
        return torch.argmax(logits / TEMPS[a] - torch.log((-torch.log(u)).clamp_min(1e-10)), -1)

    for t in range(n):
        extra = (prev2[:, None],) if patched else ()
        y, state = G._run(z, prev[:, None], pos[:, None], state, *extra)
        y = y[:, 0]
        s = G.step_head(y)
        if t > 0:  # nothing above the top key: no chord after it
            s[:, 0] += (prev[:, 1] == N_PITCHES - 1).float() * NEG
        step = pick(s, "step")
        u = G._after_step(y, step, pos)
        pitch = pick(G._pitch_logits(u, step, prev[:, 1]), "pitch")
        v = G._after_pitch(u, pitch)
        e = torch.stack([step, pitch, pick(G.duration_head(v), "duration"), pick(G.velocity_head(v), "velocity")], 1)
        prev2, prev, pos = prev[:, 1], e, (pos + step) % ev.BAR_STEPS
        out.append(e)
        where.append(pos)
    return torch.stack(out, 1), torch.stack(where, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders (best generator and critic of each)")
    ap.add_argument("--reference", required=True, help="corpus folder; its validation split is the reference")
    ap.add_argument("--count", type=int, default=600, help="lines and windows a side")
    ap.add_argument("--candidates", type=int, default=8, help="phrases the critic chooses among")
    ap.add_argument("--seeds", default="0,1,2", help="judge seeds")
    args = ap.parse_args()
    torch.set_num_threads(1)
    val = load_corpus(args.reference).split("validation")
    for run in args.runs:
        G, cfg, ck = load_generator(run)
        _, D = build(cfg)
        D.load_state_dict(ck["discriminator"])
        D.eval()
        print(f"{run}: best validation NLL {ck['best_nll']:.4f}")
        res = {"vote": [], "none": []}
        for seed in (int(s) for s in args.seeds.split(",")):
            K = args.candidates
            with torch.no_grad():
                x, xp = sample(G, cfg, args.count * K, WINDOW, torch.Generator().manual_seed(1000 + seed))
                score = torch.cat([D(x[i:i + 1200], xp[i:i + 1200]) for i in range(0, len(x), 1200)]).view(-1, K)
            gumbel = -torch.log(-torch.log(torch.rand(score.shape, generator=torch.Generator().manual_seed(seed)).clamp_min(1e-10)))
            ref = real_material("v", "reference", val, args.count, np.random.default_rng(seed))
            for arm, choice in (("vote", torch.argmax(score + gumbel, 1)), ("none", torch.argmax(gumbel, 1))):
                e = x[choice + torch.arange(args.count) * K].numpy()
                notes = ev.to_notes(e, np.cumsum(e[..., 0], axis=1), ck["tables"], np.random.default_rng(seed))
                res[arm].append(judge_lines(notes, ref, seed))
                print(f"  seed {seed} {arm}: timed {res[arm][-1][0]:.3f}  pitch {res[arm][-1][1]:.3f}  "
                      f"rhythm {res[arm][-1][2]:.3f}  dynamics {res[arm][-1][3]:.3f}", flush=True)
        for arm, rows in res.items():
            m = np.mean(rows, 0)
            print(f"  mean {arm}: timed {m[0]:.3f}  pitch {m[1]:.3f}  rhythm {m[2]:.3f}  dynamics {m[3]:.3f}")


if __name__ == "__main__":
    main()
