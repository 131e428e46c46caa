"""Pitch encodings: how MIDI note numbers become model values and back.

Three encodings exist, and a model's ONNX metadata names the one it uses:

- ``pitch-linear``: the paper's. One scalar per note, the piano's 88 keys mapped
  linearly onto (-1, 1), so a tanh output decodes by rounding.
- ``pitch-categorical``: one class per piano key (88 logits per step); the
  generator samples a key, so neighbouring values are never averaged into mush.
- ``pitch-onset-categorical``: two classes per key (176 logits per step): class
  ``key + 88 * together``, where ``together`` says the note starts with the one
  before it (a chord is written low to high, one note at a time). The generator
  says where chords begin and end, so it need not guess them from the pitches.
"""
from __future__ import annotations

import numpy as np

from .music import N_PITCHES, PITCH_HIGH, PITCH_LOW  # noqa: F401  (re-exported: encodings are over these keys)

ENCODINGS = ("pitch-linear", "pitch-categorical", "pitch-onset-categorical")
N_CLASSES = {"pitch-categorical": N_PITCHES, "pitch-onset-categorical": 2 * N_PITCHES}  # logits per step

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
    """MIDI pitches -> float32 values in (-1, 1) (the pitch-linear encoding)."""
    return ((check_pitches(pitches) - _CENTRE) / _HALF).astype(np.float32)


def denormalize(values) -> np.ndarray:
    """Values in [-1, 1] (or beyond: clipped) -> nearest MIDI pitches, int64."""
    v = np.asarray(values, dtype=np.float64)
    p = np.rint(v * _HALF + _CENTRE)
    return np.clip(p, PITCH_LOW, PITCH_HIGH).astype(np.int64)


def to_index(pitches) -> np.ndarray:
    """MIDI pitches -> class indices 0..87 (the pitch-categorical encoding)."""
    return check_pitches(pitches) - PITCH_LOW


def from_index(indices) -> np.ndarray:
    """Class indices 0..87 -> MIDI pitches."""
    i = np.asarray(indices, dtype=np.int64)
    if i.size and (i.min() < 0 or i.max() >= N_PITCHES):
        raise ValueError(f"class index outside 0-{N_PITCHES - 1}")
    return i + PITCH_LOW


def decode(values, encoding: str) -> np.ndarray:
    """Model output -> MIDI pitches, for either encoding."""
    if encoding == "pitch-linear":
        return denormalize(values)
    if encoding == "pitch-categorical":
        return from_index(values)
    if encoding == "pitch-onset-categorical":
        return from_index(split_classes(values)[0])
    raise ValueError(f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")


def split_classes(classes) -> tuple[np.ndarray, np.ndarray]:
    """pitch-onset-categorical class indices -> (key indices 0..87, together flags as bool)."""
    c = np.asarray(classes, dtype=np.int64)
    if c.size and (c.min() < 0 or c.max() >= 2 * N_PITCHES):
        raise ValueError(f"class index outside 0-{2 * N_PITCHES - 1}")
    return c % N_PITCHES, c >= N_PITCHES
