"""PROTOTYPE: logits added to the key at sampling, judged on validation; neither adopted.

    python bench/keybias.py KIND WEIGHT --stats MODEL
    python bench/keybias.py KIND WEIGHT bench/sampling.py MODEL --corpus DATA --count 600 --seeds 0,1,2

The runtime's `_Lines.phrase` is patched in-process (nothing in the tree changes) and the bench
script named runs under it; WEIGHT 0 is the same code path with the bias off. `--stats` prints,
for 300 unprimed lines at `piano` (seed 0, first and second phrase), the two statistics below.
KIND:
- `pc`, a pitch-class memory. The shipped default's windows are less diatonic than the music's:
  the share of a window's notes in its best-fitting major scale is 0.833 (sd 0.074) against the
  validation pieces' 0.905 (sd 0.081). Before each note, each key gets WEIGHT * (log of its pitch
  class's smoothed share among the line's last 48 notes, minus the mean over the 12).
- `repeat`: the key of the note before gets -WEIGHT (a chord never repeats a key, so this acts on
  new onsets). 2.4 % / 3.6 % of the shipped lines' new onsets (first / second phrase) strike
  the key just struck, against 1.2 % in the validation pieces' windows.

Measured (thirty-sixth session, export/default.onnx, `piano`; rules written before the figures):
- `pc`: diatonic share 0.833 / 0.854 off, 0.892 / 0.913 at 0.25, 0.913 / 0.948 at 0.4, 0.975 /
  0.994 at 1. Judged (timed, judge seeds 0 / 1 / 2): off 0.597 / 0.593 / 0.621 (mean 0.604,
  pitch 0.596); 0.25 0.629 / 0.622 / 0.622 (0.624, pitch 0.596). The key content moves to the
  music's and the judge does not follow: what it tells apart is not how diatonic a window is.
  The memory also raises the repeated keys (3.4 % / 2.7 % at 0.25), which may be part of it.
- `repeat`: 0.7 brings the repeats to 1.3 % / 1.1 %; judged 0.593 / 0.589 / 0.610 (0.597, pitch 0.586)
  against 0.604 off: lower on every judge seed, but −0.007 where the rule asked −0.010 before
  judging the other runs. At 1.5 on three models (export/default.onnx and the 6,000-step runs of
  seeds 2 and 3): 0.596 / 0.582 / 0.595 against 0.604 / 0.576 / 0.592 off, no change on the mean.
  Not adopted.
"""
from __future__ import annotations

import inspect
import re
import runpy
import sys
import textwrap
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from midigan import events as ev  # noqa: E402
from midigan import runtime as rt  # noqa: E402
from midigan.music import PITCH_LOW  # noqa: E402

MEMORY = 48  # notes of a line's past the pitch-class memory counts
PCS = (np.arange(ev.SIZES["pitch"]) + PITCH_LOW) % 12
MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)


def pc_bias(keys: np.ndarray, weight: float) -> np.ndarray | float:
    """keys [rows, L] (key classes) -> logits [rows, 88] to add: weight * centred log share."""
    if keys.shape[1] < 8 or not weight:
        return 0.0
    pc, rows = PCS[np.clip(keys, 0, len(PCS) - 1)], len(keys)
    counts = np.bincount((pc + 12 * np.arange(rows)[:, None]).ravel(), minlength=12 * rows).reshape(rows, 12)
    share = np.log((counts + 0.5) / (counts.sum(1, keepdims=True) + 6.0))
    return weight * (share - share.mean(1, keepdims=True))[:, PCS]


def repeat_bias(prev_keys: np.ndarray, weight: float) -> np.ndarray:
    """prev_keys [rows] (START past the top) -> logits [rows, 88]: -weight on the key just struck."""
    out = np.zeros((len(prev_keys), ev.SIZES["pitch"]), np.float32)
    real = np.flatnonzero(prev_keys < ev.SIZES["pitch"])
    out[real, prev_keys[real]] = -weight
    return out


BIAS = {"pc": "pc_bias(memory[:, max(0, before + t - MEMORY):before + t, 1], WEIGHT)",
        "repeat": "repeat_bias(prev[:, 1], WEIGHT)"}


def patch(kind: str, weight: float) -> None:
    """_Lines.phrase with the bias added to the key logits before each note is drawn."""
    src = textwrap.dedent(inspect.getsource(rt._Lines.phrase))
    m = re.search(r"\n( +)prev, h, c = g\.session\.run\(", src)
    add = f"\n{m.group(1)}bt = bt + 0.0\n{m.group(1)}bt[:, p] += {BIAS[kind]}"
    ns = dict(vars(rt), pc_bias=pc_bias, repeat_bias=repeat_bias, MEMORY=MEMORY, WEIGHT=weight)
    exec(src[:m.start()] + add + src[m.start():], ns)
    rt._Lines.phrase = ns["phrase"]


def stats(model: str) -> None:
    from midigan.evaluate import model_streams
    from midigan.presets import load_preset
    streams = model_streams(model, load_preset("piano"), 300, 2, 0)
    for k in (0, 1):
        w = np.stack([s[k * 100:(k + 1) * 100] for s in streams])
        pc = w[..., 0].astype(int) % 12
        share = np.stack([MAJOR[(pc - r) % 12].mean(1) for r in range(12)], 1).max(1)
        onset = np.diff(w[..., 1], axis=1) > 1e-6
        again = (np.diff(w[..., 0], axis=1) == 0)[onset].mean()
        print(f"phrase {k}: share in the best-fitting major scale {share.mean():.3f} (sd {share.std():.3f}); "
              f"new onsets on the key just struck {100 * again:.1f} %")


if __name__ == "__main__":
    patch(sys.argv[1], float(sys.argv[2]))
    if sys.argv[3] == "--stats":
        stats(sys.argv[4])
    else:
        sys.argv = sys.argv[3:]
        runpy.run_path(sys.argv[0], run_name="__main__")
