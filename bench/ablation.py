"""The adversarial ablation: each model with its critic's vote (its own `candidates`, at one or more
critic temperatures) and without it (candidates = 1, the same generator: adversarial weight 0),
judged by `midigan evaluate` on the validation split. Prints one row per model and arm, then the
paired difference over models; with several judge seeds, each seed's, then the differences
averaged over the seeds per model, with their standard error over the models (the training runs).

    python bench/ablation.py export/default.onnx runs/seed2.onnx runs/seed3.onnx \
        --reference ../shared/corpus/piano-midi-de --count 600 --seed 0,1,2
"""
from __future__ import annotations

import argparse
import json
import math
import time

from midigan.evaluate import evaluate
from midigan.runtime import Generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="ONNX generators (each with its critic beside it)")
    ap.add_argument("--reference", required=True, help="corpus folder; its validation split is the reference")
    ap.add_argument("--count", type=int, default=1000, help="windows a side")
    ap.add_argument("--seed", default="0", help="generation and judge seed(s), comma-separated")
    ap.add_argument("--preset", default="piano", help="preset the models are sampled with")
    ap.add_argument("--candidates", type=int, default=None, help="phrases the critic chooses among [the model's]")
    ap.add_argument("--critic-temperatures", default=None,
                    help="comma-separated: each is an arm (0 = the best-scored phrase) [the model's]")
    ap.add_argument("--json", default=None, help="also write every result here")
    a = ap.parse_args()

    measures = (("timed", lambda r: r["neural"]["timed"]["accuracy"]),
                ("pitch", lambda r: r["neural"]["pitch"]["accuracy"]),
                ("rhythm", lambda r: r["features"]["rhythm"]),
                ("dynamics", lambda r: r["features"]["dynamics"]),
                ("untargeted", lambda r: r["features"]["untargeted"]))
    results, pooled = [], {}
    for seed in [int(x) for x in a.seed.split(",")]:
        diffs = _judge(a, seed, measures, results)
        for arm, per in diffs.items():
            for m, d in per.items():
                pooled.setdefault(arm, {}).setdefault(m, []).append(d)
    if len(a.seed.split(",")) > 1:
        for arm, per in pooled.items():
            _print_diffs(f"mean over judge seeds {a.seed}, {arm[0]} candidates at critic temperature {arm[1]:g} "
                         "minus no choice", {m: [sum(x) / len(x) for x in zip(*runs)] for m, runs in per.items()},
                         len(a.models))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


def _judge(a, seed: int, measures, results: list) -> dict:
    """One judge seed: every model with its vote and without; returns {arm: {measure: [diff per model]}}."""
    print(f"validation split, {a.count} windows a side, preset {a.preset}, seed {seed}")
    print(f"{'model':<24}{'K':>5}{'t':>6}" + "".join(f"{m:>12}" for m, _ in measures) + f"{'s':>7}")
    diffs = {}
    for path in a.models:
        gen = Generator(path)
        k = a.candidates or gen.candidates
        temps = ([float(t) for t in a.critic_temperatures.split(",")] if a.critic_temperatures
                 else [gen.critic_temperature])
        row = {}
        for arm in [(k, t) for t in temps] + [(1, 0.0)]:
            t0 = time.time()
            res = evaluate(path, a.reference, split="validation", preset=a.preset, count=a.count, seed=seed,
                           baselines=False, streams=False, candidates=arm[0], critic_temperature=arm[1])
            r = res["rows"][0]
            row[arm] = {m: f(r) for m, f in measures}
            results.append({"model": path, "seed": seed, "candidates": arm[0], "critic_temperature": arm[1],
                            **row[arm], "timed_se": r["neural"]["timed"]["se"], "pitch_se": r["neural"]["pitch"]["se"]})
            se = r["neural"]["timed"]["se"]
            print(f"{path[-24:]:<24}{arm[0]:>5}{arm[1]:>6g}" + "".join(f"{row[arm][m]:>12.3f}" for m, _ in measures)
                  + f"{time.time() - t0:>7.0f}   (timed se {se:.3f})", flush=True)
        for arm in row:
            if arm != (1, 0.0):
                for m, _ in measures:
                    diffs.setdefault(arm, {}).setdefault(m, []).append(row[arm][m] - row[(1, 0.0)][m])
    for arm, per in diffs.items():
        _print_diffs(f"paired difference, seed {seed}, {arm[0]} candidates at critic temperature {arm[1]:g} "
                     "minus no choice", per, len(a.models))
    return diffs


def _print_diffs(title: str, per: dict, n: int) -> None:
    print(f"\n{title} (mean over {n} models, SE = sd/sqrt(n)):")
    for m, d in per.items():
        mean = sum(d) / n
        se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n) if n > 1 else float("nan")
        print(f"  {m:<11}{mean:+.3f}  (SE {se:.3f}; per model {', '.join(f'{x:+.3f}' for x in d)})", flush=True)


if __name__ == "__main__":
    main()
