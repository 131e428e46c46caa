"""The paper's pitch encoding (the seed model): MIDI note numbers <-> values in (-1, 1).

``pitch-linear``: one scalar per note, the piano's 88 keys mapped linearly onto
(-1, 1), so a tanh output decodes by rounding. The default model's note events
have their own module (events.py).
"""
from __future__ import annotations

import numpy as np

from .music import PITCH_HIGH, PITCH_LOW

# Centre and half-width of the linear map; the ends land at ±(1 - margin) so
# every key sits strictly inside tanh's open interval.
_CENTRE = (PITCH_LOW + PITCH_HIGH) / 2
_HALF = (PITCH_HIGH - PITCH_LOW) / 2 + 0.5


def check_pitches(pitches) -> np.ndarray:
    """Return pitches as int64, raising ValueError if any lies off the piano."""
    p = np.asarray(pitches, dtype=np.int64)
    if p.size and (p.min() < PITCH_LOW or p.max() > PITCH_HIGH):
        bad = p[(p < PITCH_LOW) | (p > PITCH_HIGH)][0]
        raise ValueError(f"pitch {bad} outside the piano range {PITCH_LOW}-{PITCH_HIGH}")
    return p


def normalize(pitches) -> np.ndarray:
    """MIDI pitches -> float32 values in (-1, 1)."""
    return ((check_pitches(pitches) - _CENTRE) / _HALF).astype(np.float32)


def denormalize(values) -> np.ndarray:
    """Values in [-1, 1] (or beyond: clipped) -> nearest MIDI pitches, int64."""
    v = np.asarray(values, dtype=np.float64)
    p = np.rint(v * _HALF + _CENTRE)
    return np.clip(p, PITCH_LOW, PITCH_HIGH).astype(np.int64)
