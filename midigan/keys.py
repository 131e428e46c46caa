"""Key estimation: which major or minor key a handful of notes is in.

The standard key-profile method: the notes' pitch-class durations are compared with each
of the 24 rotated major and minor profiles, and the closest names the key. Compared by
Euclidean distance between shares (Albrecht and Shanahan, 2013; the default) or by
correlation (Krumhansl-Schmuckler). Two profiles: Temperley's (2007, from the Kostka-Payne
corpus; the default) and Krumhansl and Kessler's (1982, "kk"). Of 123 piano-midi.de pieces
of known key, Temperley's by distance names 111, by correlation 109; kk by correlation 96
(bench/keys.py, which also scores five other published profiles).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .music import NOTE_NAMES

PROFILES = {
    # probe-tone ratings, tonic first
    "kk": ((6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
           (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)),
    # Temperley (2007), from the Kostka-Payne corpus: share of segments holding each degree
    "temperley": ((0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
                  (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330)),
}
DEFAULT_PROFILE = "temperley"
METHODS = ("distance", "correlation")
DEFAULT_METHOD = "distance"
MODES = ("major", "minor")  # names in music.SCALES


class Key(NamedTuple):
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" or "minor" (a scale name of music.SCALES)
    score: float  # higher = closer: minus the distance (0 at best), or the correlation (-1..1)

    @property
    def name(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {self.mode}"

    @property
    def relative_major(self) -> int:
        """The tonic of the major key with the same signature (A minor -> C)."""
        return self.tonic if self.mode == "major" else (self.tonic + 3) % 12


def pitch_class_durations(pitches, durations=None) -> np.ndarray:
    """[12] total duration per pitch class (each note counts 1 without durations)."""
    p = np.asarray(pitches, np.int64).reshape(-1)
    w = np.ones(len(p)) if durations is None else np.asarray(durations, np.float64).reshape(-1)
    if len(w) != len(p):
        raise ValueError(f"{len(p)} pitches but {len(w)} durations")
    return np.bincount(p % 12, weights=np.maximum(w, 0), minlength=12)


def key_scores(pitches, durations=None, profile=DEFAULT_PROFILE, method: str = DEFAULT_METHOD) -> np.ndarray:
    """[2, 12] closeness to the major (row 0) and minor (row 1) key on each tonic, higher =
    closer: minus the Euclidean distance between the notes' pitch-class shares and the
    profile's ("distance"), or their correlation ("correlation"). `profile`: a PROFILES name,
    or a (major, minor) pair of 12 weights, tonic first."""
    if isinstance(profile, str) and profile not in PROFILES:
        raise ValueError(f"unknown key profile {profile!r} (one of {', '.join(PROFILES)})")
    if method not in METHODS:
        raise ValueError(f"unknown key method {method!r} (one of {', '.join(METHODS)})")
    x = pitch_class_durations(pitches, durations)
    out = np.zeros((2, 12))
    if x.sum() == 0 or (method == "correlation" and np.ptp(x) == 0):
        return out
    x = x / x.sum() if method == "distance" else (x - x.mean()) / np.linalg.norm(x - x.mean())
    for m, prof in enumerate(PROFILES[profile] if isinstance(profile, str) else profile):
        prof = np.asarray(prof, np.float64)
        # y[tonic, pc] = the profile's weight for pc's degree in the key on that tonic
        y = np.stack([np.roll(prof, tonic) for tonic in range(12)])
        if method == "distance":
            out[m] = -np.linalg.norm(x - y / prof.sum(), axis=1)
        else:
            y = y - y.mean(1, keepdims=True)
            out[m] = y @ x / np.linalg.norm(y, axis=1)
    return out


def estimate_key(pitches, durations=None, profile=DEFAULT_PROFILE, method: str = DEFAULT_METHOD) -> Key:
    """The major or minor key closest to the notes' pitch-class durations. ValueError without notes (or with
    one pitch class only: every key containing it would do)."""
    p = np.asarray(pitches).reshape(-1)
    if not len(p) or len(np.unique(p % 12)) < 2:
        raise ValueError("a key needs notes of at least two pitch classes")
    s = key_scores(p, durations, profile, method)
    m, tonic = np.unravel_index(int(np.argmax(s)), s.shape)
    return Key(int(tonic), MODES[m], float(s[m, tonic]))
