"""PROTOTYPE: the generator trained on its own lines through the discriminator (straight-through Gumbel).

    python bench/drift/adversarial.py runs/default OUT [--steps 300] [--mle 1.0] [--lr 1e-4] [--tau 1.0]

From the run's `best_generator` and its trained discriminator: each step the generator continues
`PREFIX` real notes for `seq_len` notes of its own, sampled at temperature 1 with the
straight-through Gumbel-softmax (the forward pass takes the sampled class, the backward pass the
gradient of softmax((logits + Gumbel) / tau)), so the discriminator's verdict reaches every choice
of the line through the embeddings that feed each next note and the discriminator's own. The
generator's loss is the non-saturating -log D(line) plus `--mle` times the likelihood of a real
batch (an anchor); the discriminator keeps learning (binary cross-entropy, real windows toward
the run's label smoothing) one step per generator step. Bar positions follow the sampled steps
without a gradient. Writes OUT/checkpoint.pt with the new generator as `best_generator`, to be
judged with `python bench/drift/judge.py OUT --reference DATA`.

Measured here (nineteenth session, from runs/default, 300 steps of 32 lines, about 3 min each
alone on the 2 cores; judged as above, where runs/default itself gives 0.755):

    --mle   val NLL   timed  pitch  rhythm  dynamics  chord share   discriminator accuracy
    1       5.7864    0.865  0.779  0.896   0.788     0.532         0.86-0.92 throughout
    5       5.6699    0.786  0.730  0.824   0.747     0.585         0.86-0.92 throughout

The discriminator stayed ahead (its loss on the lines, -log D, did not fall: 1.7-2.7) and the
straight-through gradient made every judge worse, the more so the weaker the likelihood anchor.
Not used.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: torch_lines

from midigan import events as ev  # noqa: E402
from midigan.corpus import load_corpus  # noqa: E402
from midigan.music import N_PITCHES  # noqa: E402
from midigan.training.checkpoint import save_checkpoint  # noqa: E402
from midigan.training.data import EventWindows  # noqa: E402
from midigan.training.model import NEG, build  # noqa: E402
from midigan.training.train import PREFIX, _nll, _val_nll  # noqa: E402
from torch_lines import load_generator  # noqa: E402


def soft_embed(embed, hots, pos):
    """Embed (the model's input tables) applied to one-hot rows [B, T, SIZES[a]] per attribute."""
    parts = [h @ t.weight[:ev.SIZES[a]] for h, t, a in zip(hots, embed.tables, ev.ATTRS)]
    return torch.cat(parts + [embed.pos(pos)], dim=-1)


def straight_through(logits, tau: float, g: torch.Generator):
    """(sampled index, one-hot whose gradient is that of the Gumbel-softmax)."""
    u = torch.rand(logits.shape, generator=g).clamp(1e-10, 1 - 1e-7)
    y = logits - torch.log(-torch.log(u))
    soft = torch.softmax(y / tau, -1)
    idx = y.argmax(-1)
    hard = F.one_hot(idx, logits.shape[-1]).float()
    return idx, hard - soft.detach() + soft


def lines(G, cfg, e, pos, tau, g):
    """Continuations of the real prefixes in e [B, T+1, 4]: (one-hots per attribute [B, L, n], positions [B, L])."""
    z = torch.randn(len(e), cfg.noise_dim, generator=g)
    _, (h, c) = G(z, e[:, :PREFIX + 1], pos[:, :PREFIX + 1])
    prev = [F.one_hot(e[:, PREFIX, i], ev.SIZES[a] + 1)[..., :ev.SIZES[a]].float() for i, a in enumerate(ev.ATTRS)]
    prev_pitch, p = e[:, PREFIX, 1], pos[:, PREFIX]
    outs, where = [[] for _ in ev.ATTRS], []
    for _ in range(cfg.seq_len):
        x = torch.cat([soft_embed(G.embed, [q[:, None] for q in prev], p[:, None]),
                       z[:, None]], -1)
        y, (h, c) = G.lstm(x, (h, c))
        y = G.drop(y[:, 0])
        top = torch.zeros(len(y), ev.SIZES["step"])
        top[:, 0] = (prev_pitch == N_PITCHES - 1).float() * NEG  # nothing above the top key: no chord
        step, step_hot = straight_through(G.step_head(y) + top, tau, g)
        u = torch.tanh(y + step_hot @ G.with_step.weight + G.with_pos((p + step) % ev.BAR_STEPS))
        pitch, pitch_hot = straight_through(G._pitch_logits(u, step, prev_pitch), tau, g)
        v = torch.tanh(u + pitch_hot @ G.with_pitch.weight)
        _, dur_hot = straight_through(G.duration_head(v), tau, g)
        _, vel_hot = straight_through(G.velocity_head(v), tau, g)
        prev = [step_hot, pitch_hot, dur_hot, vel_hot]
        prev_pitch, p = pitch, (p + step) % ev.BAR_STEPS
        for o, q in zip(outs, prev):
            o.append(q)
        where.append(p)
    return [torch.stack(o, 1) for o in outs], torch.stack(where, 1)


def d_soft(D, hots, pos):
    y, _ = D.lstm(soft_embed(D.embed, hots, pos))
    return D.out(torch.cat([y.mean(1), y.max(1).values], dim=-1)).squeeze(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="run folder: its best generator and its discriminator")
    ap.add_argument("out", help="folder for the new checkpoint")
    ap.add_argument("--reference", default="../shared/corpus/piano-midi-de", help="the corpus folder")
    ap.add_argument("--steps", type=int, default=300, help="generator steps")
    ap.add_argument("--mle", type=float, default=1.0, help="weight of the real batch's likelihood")
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam's rate, both networks")
    ap.add_argument("--tau", type=float, default=1.0, help="Gumbel-softmax temperature of the gradient")
    ap.add_argument("--batch", type=int, default=32, help="lines per step")
    a = ap.parse_args()
    torch.set_num_threads(2)
    G, cfg, ck = load_generator(a.run)
    _, D = build(cfg)
    D.load_state_dict(ck["discriminator"])
    corpus = load_corpus(a.reference, splits=("train", "validation"))
    data, val = EventWindows(corpus.split("train"), cfg.seq_len), EventWindows(corpus.split("validation"), cfg.seq_len)
    g = torch.Generator().manual_seed(7)
    opt_g = torch.optim.Adam(G.parameters(), lr=a.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=a.lr, betas=(0.5, 0.999))
    t0 = time.time()
    for step in range(a.steps):
        G.train()
        e, pos = data.sample(a.batch, cfg.transpose, g)
        hots, where = lines(G, cfg, e, pos, a.tau, g)
        g_adv = F.softplus(-d_soft(D, hots, where)).mean()  # -log sigmoid(D)
        e2, pos2 = data.sample(a.batch, cfg.transpose, g)
        z = torch.randn(a.batch, cfg.noise_dim, generator=g)
        nll = sum(_nll(G(z, e2, pos2)[0], e2[:, 1:]).values())
        opt_g.zero_grad(set_to_none=True)
        (g_adv + a.mle * nll).backward()
        torch.nn.utils.clip_grad_norm_(G.parameters(), cfg.grad_clip)
        opt_g.step()
        fake = [h.detach().argmax(-1) for h in hots]
        d_real = D(e[:, 1:], pos[:, 1:])
        d_fake = D(torch.stack(fake, -1), where)
        d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, cfg.label_smoothing))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if (step + 1) % 25 == 0:
            acc = ((d_real > 0).float().mean() + (d_fake < 0).float().mean()).item() / 2
            print(f"step {step + 1}: g_adv {g_adv.item():.3f} nll {nll.item():.3f} d_loss {d_loss.item():.3f} "
                  f"d_acc {acc:.2f} chord share {(fake[0] == 0).float().mean().item():.3f}, {time.time() - t0:.0f} s",
                  flush=True)
    nll = _val_nll(cfg, G, val, "cpu")["val_nll"]
    print(f"validation NLL {nll:.4f}")
    Path(a.out).mkdir(parents=True, exist_ok=True)
    save_checkpoint({**ck, "best_generator": G.state_dict(), "discriminator": D.state_dict(), "best_nll": nll},
                    Path(a.out) / "checkpoint.pt")


if __name__ == "__main__":
    main()
