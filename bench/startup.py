"""Start-up: process start -> first MIDI message of `midigan play`, and `midigan generate --count 1`,
next to `python -c "import torch"`, measured in the same run (these machines are noisy).

Run: python bench/startup.py [--runs 5] [--model export/default.onnx]
The first-note figure needs jackd (it starts a private dummy-driver server, as bench/live.py does).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def wall(cmd, runs):
    out = []
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.monotonic() - t0)
    return out


def fmt(xs):
    return f"median {statistics.median(xs):.3f} s (min {min(xs):.3f}, max {max(xs):.3f}, n={len(xs)})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", default=None)
    a = ap.parse_args()
    import live  # bench/live.py: model lookup, private JACK server and a recording client

    model = live.find_model(a.model)  # export/default.onnx unless this runtime refuses it
    if model is None:
        sys.exit("no model this runtime reads in export/: pass --model PATH")
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        plain_t = wall([py, "-c", "pass"], a.runs)
        bare_t = wall([py, "-S", "-c", "pass"], a.runs)
        torch_t = wall([py, "-c", "import torch"], a.runs)
        deps_t = wall([py, "-c", "import onnxruntime, numpy, mido, rtmidi, click"], a.runs)
        gen_cmd = [py, "-m", "midigan", "generate", "--count", "1", "-o", str(Path(tmp) / "x.mid"),
                   "--model", str(model)]
        gen_t = wall(gen_cmd, a.runs)
    print(f"python -c pass:                                {fmt(plain_t)}")
    print(f"python -S -c pass (no site, no .pth files):    {fmt(bare_t)}")
    print("  (the difference is this environment's site-packages start-up, part of every figure below:\n"
          "   a sandbox's .pth that imports certifi costs about 40 ms; python -X importtime -c pass shows it)")
    print(f"python -c 'import torch':                      {fmt(torch_t)}")
    print(f"import onnxruntime, numpy, mido, rtmidi, click: {fmt(deps_t)}")
    print(f"midigan generate --count 1 (whole process):    {fmt(gen_t)}")
    print(f"  -> generate is {statistics.median(torch_t) / statistics.median(gen_t):.1f}x faster than "
          "importing torch alone")

    jackd = live.start_jack()
    if jackd is None:
        print("first note: jackd not installed or did not start; skipped")
        return
    try:
        live.first_note(model, runs=a.runs)
    finally:
        jackd.terminate()
        jackd.wait(5)


if __name__ == "__main__":
    main()
