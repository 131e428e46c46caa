"""PROTOTYPE: the discriminator retrained on the generator's windows deep in its own lines.

    python bench/critic/deep.py runs/default OUT [--steps 500] [--depth 3]
    midigan export OUT/checkpoint.pt -o OUT/default.onnx --candidates 8 --critic-temperature 1 --temperature velocity=0.7
    python bench/ablation.py OUT/default.onnx --reference DATA --count 600 --seed 0,1,2

Why: the shipped discriminator learns from the generator's continuations of real 16-note
openings, but at run time it votes among continuations of the generator's own line, which by
then has drifted (faster, louder, chordier: bench/drift/judge.py --blocks). This one learns,
from scratch and with the recipe's rate, steps, batch and label smoothing, to tell real windows
from the generator's windows 0 to `--depth` phrases deep into lines it plays from the start (the
same depths the runtime's stream and `evaluate` reach). The generator is the run's, unchanged;
OUT/checkpoint.pt is the run's checkpoint with this discriminator.

Measured here (twentieth session; runs/default, 500 steps, 6 min on one thread; its training
accuracy ends at 0.93 where the shipped discriminator's validation accuracy is 0.82; judged by
bench/ablation.py, validation, 600 windows a side, judge seeds 0 / 1 / 2):

    discriminator                         timed with its vote        mean    vote - none
    shipped (continuations of openings)   0.727 / 0.740 / 0.740     0.736   -0.031
    this one (0-3 phrases deep)           0.728 / 0.722 / 0.746     0.732   -0.035
    no vote                               0.754 / 0.764 / 0.783     0.767

Within the judge's noise of the shipped one (rhythm 0.753 against 0.755, pitch 0.711 against
0.707), on one training run. Not adopted; three runs would be needed to see a difference this
small.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: torch_lines

from midigan.corpus import load_corpus  # noqa: E402
from midigan.training.checkpoint import save_checkpoint  # noqa: E402
from midigan.training.data import EventWindows  # noqa: E402
from midigan.training.model import build  # noqa: E402
from midigan.training.train import _bce  # noqa: E402
from torch_lines import load_generator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="run folder: its best generator")
    ap.add_argument("out", help="folder for the checkpoint with the new discriminator")
    ap.add_argument("--reference", default="../shared/corpus/piano-midi-de", help="the corpus folder")
    ap.add_argument("--steps", type=int, default=500, help="discriminator steps")
    ap.add_argument("--depth", type=int, default=3, help="deepest phrase of a line used (0 = the first)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    G, cfg, ck = load_generator(a.run)
    torch.manual_seed(5)
    _, D = build(cfg)
    corpus = load_corpus(a.reference, splits=("train",))
    data = EventWindows(corpus.split("train"), cfg.seq_len)
    opt = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, 0.999))
    g = torch.Generator().manual_seed(5)
    t0, n = time.time(), cfg.seq_len
    for step in range(a.steps):
        e, pos = data.sample(cfg.batch_size, cfg.transpose, g)
        deep = int(torch.randint(a.depth + 1, (1,), generator=g))
        z = torch.randn(cfg.batch_size, cfg.noise_dim, generator=g)
        fe, fpos = G.sample(z, (deep + 1) * n, cfg.temperature, g)
        d_real, d_fake = D(e[:, 1:], pos[:, 1:]), D(fe[:, -n:], fpos[:, -n:])
        loss = _bce(d_real, cfg.label_smoothing) + _bce(d_fake, 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 50 == 0:
            acc = ((d_real > 0).float().mean() + (d_fake < 0).float().mean()).item() / 2
            print(f"step {step + 1}: d_loss {loss.item():.3f} acc {acc:.2f} (depth {deep}), {time.time() - t0:.0f} s",
                  flush=True)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    save_checkpoint({**ck, "discriminator": D.state_dict()}, Path(a.out) / "checkpoint.pt")


if __name__ == "__main__":
    main()
