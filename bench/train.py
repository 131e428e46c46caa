"""Training throughput: seconds per step of each phase of the default and seed configs on this machine.

Times a few steps of each training phase on real windows from the corpus: the default
(event) config's likelihood step (teacher forcing) and critic step (the generator samples
continuations, the discriminator learns from them), and the seed config's GAN step, with
the training loop's own step functions; then what a full run of each config's steps would
take. The data pipeline is tensor gathers, timed separately so it shows it is off the
critical path. Run: python bench/train.py [CORPUS] [--steps N] [--device cpu|cuda] [--threads N]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from midigan.corpus import load_corpus
from midigan.training.config import CONFIGS
from midigan.training.data import EventWindows, PitchWindows
from midigan.training.model import build
from midigan.training.train import _critic_step, _device, _gan_step, _mle_step

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(HERE.parent.parent / "shared/corpus/piano-midi-de"))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: what training uses)")
    ap.add_argument("--configs", default="seed,default", help="comma-separated config names")
    args = ap.parse_args()
    dev = _device(args.device)  # as `midigan train` picks it, CPU threads included
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = load_corpus(args.corpus, splits=("train",))
    print(f"device {dev}, torch threads {torch.get_num_threads()}")
    print(f"{'config':<9}{'phase':<8}{'batch':>6}{'s/step':>9}{'windows/s':>11}{'data ms/batch':>15}")
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        torch.manual_seed(0)
        G, D = (m.to(dev) for m in build(cfg))
        og = torch.optim.Adam(G.parameters(), cfg.lr_g, betas=(cfg.beta1, 0.999))
        od = torch.optim.Adam(D.parameters(), cfg.lr_d, betas=(cfg.beta1, 0.999))
        w = (EventWindows if cfg.model == "event" else PitchWindows)(corpus.split("train"), cfg.seq_len)
        g = torch.Generator().manual_seed(0)
        t0 = time.perf_counter()
        for _ in range(100):
            w.sample(cfg.batch_size, cfg.transpose, g)
        data_ms = (time.perf_counter() - t0) * 10
        if cfg.model == "event":
            phases = [("mle", cfg.mle_steps, lambda: _mle_step(cfg, G, G, og, w, g, dev, 0)),
                      ("critic", cfg.adv_steps, lambda: _critic_step(cfg, G, D, od, w, g, dev))]
        else:
            phases = [("gan", cfg.adv_steps, lambda: _gan_step(cfg, G, D, og, od, w, g, dev))]
        total = []
        for phase, steps, step in phases:
            step()  # warm-up
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t0) / args.steps
            print(f"{name:<9}{phase:<8}{cfg.batch_size:>6}{dt:>9.3f}{cfg.batch_size / dt:>11.1f}{data_ms:>15.3f}")
            total.append(f"{steps} {phase} steps (~{steps * dt / 60:.1f} min)")
        print(f"  {name}: {' + '.join(total)} per full run, validation and checkpoints not counted")


if __name__ == "__main__":
    main()
