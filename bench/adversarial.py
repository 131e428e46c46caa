"""The adversarial ablation: the default recipe's GAN phase (pg_steps of REINFORCE with the
discriminator's logit as reward, plus likelihood) against the same phase with pg_weight 0
(likelihood alone, same steps and rate), several seeds each, judged by `midigan evaluate`
on the validation split with no critic vote (candidates 1).

The arms branch from one likelihood-trained generator (a run's best_generator, step
mle_steps) and share one discriminator pretrained on it for adv_steps (it does not touch
the generator; the pg_weight 0 arms never read it). Each arm then runs the GAN phase with
its own seed, is exported and judged. Prints one row per arm, the mean of each weight with
its standard error, and the difference with its standard error.

    python bench/adversarial.py runs/default/checkpoint.pt --corpus ../shared/corpus/piano-midi-de \\
        --out runs/ablation --seeds 1,2,3 --count 600 --temperature velocity=0.7
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from midigan.evaluate import evaluate
from midigan.training.checkpoint import load_checkpoint, save_checkpoint
from midigan.training.config import Config, make_config
from midigan.training.export import export_onnx, parse_temperatures
from midigan.training.model import build
from midigan.training.train import run_training

MEASURES = (("timed", lambda r: r["neural"]["timed"]["accuracy"]),
            ("pitch", lambda r: r["neural"]["pitch"]["accuracy"]),
            ("rhythm", lambda r: r["features"]["rhythm"]),
            ("dynamics", lambda r: r["features"]["dynamics"]),
            ("untargeted", lambda r: r["features"]["untargeted"]))


def branch(source: Path, out: Path, config: dict, seed: int, fresh_critic: bool) -> Path:
    """A checkpoint to resume: `source`'s state with `config` overriding its config and a random
    stream seeded by `seed`; with fresh_critic, at step mle_steps with the discriminator as a
    fresh run would have it there (its initial weights, an empty optimiser)."""
    ck = load_checkpoint(source)  # a fresh dict: changing it changes no file
    cfg = make_config({**ck["config"], **config}, Config())
    ck["config"] = {**ck["config"], **config, "seed": seed}
    if fresh_critic:
        torch.manual_seed(cfg.seed)  # as train._build: the initial weights of that run
        _, D = build(cfg)
        ck["discriminator"], ck["opt_d"] = D.state_dict(), torch.optim.Adam(D.parameters()).state_dict()
        ck["generator"], ck["step"] = ck["best_generator"], cfg.mle_steps
    ck["rng"] = [torch.Generator().manual_seed(seed * 1000).get_state()]
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(ck, out / "checkpoint.pt")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="a default run's checkpoint (its best_generator is the branch point)")
    ap.add_argument("--corpus", required=True, help="the corpus it was trained on; its validation split judges")
    ap.add_argument("--out", required=True, help="folder for the arms' runs and models")
    ap.add_argument("--seeds", default="1,2,3", help="comma-separated seeds, one arm per weight each")
    ap.add_argument("--weights", default="1,0", help="comma-separated pg_weight values, one arm each per seed")
    ap.add_argument("--count", type=int, default=600, help="windows a side in each evaluation")
    ap.add_argument("--temperature", default=None,
                    help="sampling temperatures the arms are judged at, as export takes them (velocity=0.7) [the config's]")
    a = ap.parse_args()
    temps = parse_temperatures(a.temperature) if a.temperature else None
    out, seeds = Path(a.out), [int(s) for s in a.seeds.split(",")]
    weights = [float(w) for w in a.weights.split(",")]
    # The phases after the likelihood one as today's default has them (the source may be older).
    phase = {k: getattr(Config(), k) for k in ("adv_steps", "pg_steps", "pg_weight", "lr_pg")}
    cfg = make_config({**load_checkpoint(a.checkpoint)["config"], **phase}, Config())
    t0 = time.time()
    critic = out / "critic"
    if not (critic / "done").exists():
        print(f"pretraining the shared discriminator for {cfg.adv_steps} steps", flush=True)
        run_training(a.corpus, branch(Path(a.checkpoint), critic, {**phase, "pg_steps": 0}, 0, True), resume=True,
                     progress=False)
        (critic / "done").write_text("")
    print(f"validation split, {a.count} windows a side, candidates 1, {cfg.pg_steps} GAN steps per arm")
    print(f"{'arm':<16}" + "".join(f"{m:>12}" for m, _ in MEASURES) + f"{'s':>7}", flush=True)
    results = {}
    for s in seeds:
        for w in weights:
            name = f"w{w:g}-s{s}"
            arm, model = out / name, out / f"{name}.onnx"
            t = time.time()
            if not model.exists():  # (a killed bench picks up where it stopped)
                if not (arm / "checkpoint.pt").exists():
                    branch(critic / "checkpoint.pt", arm, {**phase, "pg_weight": w}, s, False)
                if load_checkpoint(arm / "checkpoint.pt")["step"] < cfg.mle_steps + cfg.adv_steps + cfg.pg_steps:
                    run_training(a.corpus, arm, resume=True, progress=False)
                export_onnx(arm / "checkpoint.pt", model, "bench/adversarial.py", {"candidates": 1, "temperature": temps})
            r = evaluate(model, a.corpus, split="validation", count=a.count, seed=0, baselines=False,
                         streams=False, candidates=1)["rows"][0]
            results[(w, s)] = {m: f(r) for m, f in MEASURES}
            print(f"{name:<16}" + "".join(f"{results[(w, s)][m]:>12.3f}" for m, _ in MEASURES)
                  + f"{time.time() - t:>7.0f}", flush=True)
    print(f"\nmean (SE over {len(seeds)} seeds)")
    for w in weights:
        print(f"pg_weight {w:<6g}" + "".join(f"{_mean_se([results[(w, s)][m] for s in seeds])}" for m, _ in MEASURES))
    base = weights[-1]
    for w in weights[:-1]:
        print(f"\npg_weight {w:g} minus {base:g} (paired by seed; negative = closer to real):")
        for m, _ in MEASURES:
            d = [results[(w, s)][m] - results[(base, s)][m] for s in seeds]
            mean = sum(d) / len(d)
            se = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d)) if len(d) > 1 else math.nan
            print(f"  {m:<11}{mean:+.3f} (SE {se:.3f}; per seed {', '.join(f'{x:+.3f}' for x in d)})")
    (out / "ablation.json").write_text(json.dumps({f"{w:g}/{s}": v for (w, s), v in results.items()}, indent=1))
    print(f"\n{time.time() - t0:.0f} s")


def _mean_se(xs) -> str:
    m = sum(xs) / len(xs)
    se = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)) if len(xs) > 1 else math.nan
    return f"{m:>7.3f} ({se:.3f})"


if __name__ == "__main__":
    main()
