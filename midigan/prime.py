"""A MIDI file as a prime: its notes (read by corpus.read_notes), its tempo at the end, the
last bars of it, and the key they are in.

Onsets stay in beats; the prime is moved by whole 4/4 bars so its first kept bar starts at
beat 0, which keeps every note's place in the bar (what the event model is told).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .keys import Key, estimate_key
from .music import NOTE_NAMES
from .music import BEATS_PER_BAR

DEFAULT_BPM = 120.0  # a MIDI file without a tempo event plays at 120 BPM (the standard)
TEMPO_SPAN = 2 * BEATS_PER_BAR  # beats over which the tempo at the end is measured


class Prime(NamedTuple):
    notes: np.ndarray  # [n, 4] float64: pitch, onset beats (first kept bar at 0), duration beats, velocity
    bpm: float  # the tempo at the file's end
    first_bar: int  # the first kept bar of the file, from 1
    bars: int  # bars kept

    @property
    def end(self) -> float:
        """Beat where the last note ends: where a continuation starts."""
        return float((self.notes[:, 1] + self.notes[:, 2]).max())


def tempo_at_end(starts, seconds) -> float:
    """BPM over the last TEMPO_SPAN beats of onsets (beats, and seconds through the file's tempo
    map), to 0.01; DEFAULT_BPM where the onsets do not span any time."""
    b, s = np.asarray(starts, np.float64), np.asarray(seconds, np.float64)
    recent = b >= b[-1] - TEMPO_SPAN
    db, ds = b[-1] - b[recent].min(), s[-1] - s[recent].min()
    if db <= 0 or ds <= 0:
        db, ds = b[-1] - b[0], s[-1] - s[0]
    if db <= 0 or ds <= 0:
        return DEFAULT_BPM
    return float(np.clip(round(60.0 * db / ds, 2), 20.0, 400.0))


def read_prime(path, bars: int | None = None) -> Prime:
    """The notes of a MIDI file to continue (the last `bars` 4/4 bars of it: from the bar of its
    last onset back), its tempo at the end. ValueError naming the file when it cannot be read."""
    from .corpus import read_notes

    if bars is not None and bars < 1:
        raise ValueError(f"prime bars must be at least 1, got {bars}")
    try:
        n = read_notes(path)
    except ValueError as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    bpm = tempo_at_end(n.starts, n.onsets)
    starts = n.starts.astype(np.float64)
    last_bar = int(starts[-1] // BEATS_PER_BAR)
    first_bar = 0 if bars is None else max(0, last_bar - bars + 1)
    keep = starts >= first_bar * BEATS_PER_BAR
    notes = np.stack([n.pitches[keep].astype(np.float64), starts[keep] - first_bar * BEATS_PER_BAR,
                      n.durations[keep].astype(np.float64), n.velocities[keep].astype(np.float64)], axis=1)
    return Prime(notes, bpm, first_bar + 1, last_bar - first_bar + 1)


def key_of(notes) -> Key:
    """The key of timed notes [n, 4], by their pitch-class durations (keys.estimate_key)."""
    notes = np.asarray(notes, np.float64).reshape(-1, 4)
    return estimate_key(notes[:, 0].astype(np.int64), notes[:, 2])


def key_preset_values(key: Key) -> dict:
    """The preset keys that constrain sampling to `key`: {'key': 'E', 'scale': 'minor'}."""
    return {"key": NOTE_NAMES[key.tonic], "scale": key.mode}
