"""Training throughput: sequences per second of the seed and default configs on this machine.

Times a few steps of each training phase (maximum likelihood, adversarial) on real windows
from the corpus; the data pipeline is tensor gathers, timed separately so it shows it is
off the critical path. Run: python bench/train.py [CORPUS] [--steps N] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from midigan.corpus import load_corpus
from midigan.training.config import CONFIGS
from midigan.training.model import build
from midigan.training.train import Windows, _step

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(HERE.parent.parent / "shared/corpus/piano-midi-de"))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    corpus = load_corpus(args.corpus)
    print(f"device {dev}, torch threads {torch.get_num_threads()}")
    print(f"{'config':<9}{'phase':<7}{'batch':>6}{'s/step':>9}{'seq/s':>9}{'data ms/batch':>15}")
    for name in ("seed", "default"):
        cfg = CONFIGS[name]
        torch.manual_seed(0)
        G, D = (m.to(dev) for m in build(cfg))
        og = torch.optim.Adam(G.parameters(), cfg.lr_g)
        od = torch.optim.Adam(D.parameters(), cfg.lr_d)
        w = Windows(corpus.split("train"), cfg.seq_len, bool(cfg.chords))
        g = torch.Generator().manual_seed(0)
        t0 = time.perf_counter()
        for _ in range(100):
            w.sample(cfg.batch_size, cfg.transpose, g)
        data_ms = (time.perf_counter() - t0) * 10
        phases = [("adv", True, True)] if cfg.model == "scalar" else [("mle", False, False), ("adv", True, True)]
        for phase, adv, train_d in phases:
            _step(cfg, G, D, og, od, w.sample(cfg.batch_size, cfg.transpose, g).to(dev), adv, train_d, g, dev)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                _step(cfg, G, D, og, od, w.sample(cfg.batch_size, cfg.transpose, g).to(dev), adv, train_d,
                      g, dev)
            dt = (time.perf_counter() - t0) / args.steps
            print(f"{name:<9}{phase:<7}{cfg.batch_size:>6}{dt:>9.3f}{cfg.batch_size / dt:>9.1f}{data_ms:>15.3f}")
        if cfg.model == "categorical":
            mle = cfg.pretrain_epochs * cfg.steps_per_epoch
            adv = (cfg.epochs - cfg.pretrain_epochs) * cfg.steps_per_epoch
            print(f"  {name}: {mle} maximum-likelihood + {adv} adversarial steps per full run")


if __name__ == "__main__":
    main()
