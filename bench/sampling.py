"""Per-attribute sampling temperatures, judged on the validation split.

The model's recommended temperatures (one per attribute: step, pitch, duration, velocity)
travel in its metadata. This bench writes copies of a model with other recommendations and
judges each with `midigan evaluate` (validation split, no calibration rows, no streams), so
the shipped settings are chosen on validation, never on test. Prints one row per setting.

    python bench/sampling.py export/default.onnx --corpus ../shared/corpus/piano-midi-de \\
        --set step=1,pitch=1,duration=1,velocity=1 --set velocity=0.7 --count 600 --candidates 1 --seeds 0,1,2

Each --set overrides the model's own temperatures for the attributes it names.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from midigan.evaluate import evaluate
from midigan.runtime import read_metadata
from midigan.training.export import parse_temperatures

MEASURES = (("timed", lambda r: r["neural"]["timed"]["accuracy"]),
            ("pitch", lambda r: r["neural"]["pitch"]["accuracy"]),
            ("rhythm", lambda r: r["features"]["rhythm"]),
            ("dynamics", lambda r: r["features"]["dynamics"]))


def with_temperatures(model: Path, temps: dict, out: Path) -> Path:
    """A copy of `model` whose recommended temperatures are `temps` (attribute -> value)."""
    m = onnx.load(str(model))
    for p in m.metadata_props:
        if p.key == "sampling":
            s = json.loads(p.value)
            s["temperature"] = {**s["temperature"], **temps}
            p.value = json.dumps(s)
    onnx.save(m, str(out))
    meta = read_metadata(model)
    for key in ("critic", "encoder"):  # the networks the metadata names, beside the copy as beside the model
        if meta.get(key):
            shutil.copyfile(model.parent / meta[key], out.parent / meta[key])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="an event model (ONNX)")
    ap.add_argument("--corpus", required=True, help="its training corpus; the validation split judges")
    ap.add_argument("--set", action="append", default=[], dest="sets",
                    help="attribute=temperature,... (repeat for more settings)")
    ap.add_argument("--count", type=int, default=600, help="windows per side")
    ap.add_argument("--preset", default="piano", help="preset the output is arranged with")
    ap.add_argument("--candidates", type=int, default=None,
                    help="phrases the critic chooses among (1 = no vote) [the model's]")
    ap.add_argument("--seeds", default="0", help="comma-separated generation and judge seeds: a row each, then the mean")
    args = ap.parse_args()
    seeds = [int(x) for x in args.seeds.split(",")]
    base = json.loads(read_metadata(args.model)["sampling"])["temperature"]
    print(f"model {args.model}: recommended {base}")
    print(f"{'step':>5} {'pitch':>5} {'dur':>5} {'vel':>5} {'seed':>5}  " + "  ".join(f"{n:>8}" for n, _ in MEASURES)
          + "  seconds", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(args.sets or [""]):
            temps = {**base, **(parse_temperatures(text) if text else {})}
            path = with_temperatures(args.model, temps, Path(tmp) / f"m{i}.onnx")
            label = " ".join(f"{temps[a]:5.2f}" for a in ("step", "pitch", "duration", "velocity"))
            scores = []
            for seed in seeds:
                t0 = time.time()
                res = evaluate(path, args.corpus, split="validation", preset=args.preset, count=args.count,
                               baselines=False, streams=False, candidates=args.candidates, seed=seed)
                scores.append([f(res["rows"][0]) for _, f in MEASURES])
                print(f"{label} {seed:5d}  " + "  ".join(f"{x:8.3f}" for x in scores[-1])
                      + f"  {time.time() - t0:7.0f}", flush=True)
            if len(seeds) > 1:
                print(f"{label} {'mean':>5}  " + "  ".join(f"{x:8.3f}" for x in np.mean(scores, 0)), flush=True)


if __name__ == "__main__":
    main()
