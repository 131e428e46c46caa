"""Recall hints: what followed, earlier in this line, the figure just played.

Real piano lines repeat themselves: an Alberti bass, a motif answered a bar later,
a sequence climbing by step. An LSTM that samples one key at a time can learn such
copies only slowly, so a `step-recall` generator is told, before each note, three
candidates found by looking back over the last `window` notes of its own output:

- ``key2``: the key that followed the last occurrence of the last two keys;
- ``key1``: the key that followed the last occurrence of the last key;
- ``interval2``: the last two intervals seen before, transposed: the key that
  would continue that figure from here (a motif repeated a step higher).

Each is a key index 0..87, or NONE (88) when there is no such occurrence. The
generator learns when to take a hint and when to ignore it. This module is
numpy only: training (teacher forcing and sampling) and the runtime call the
same function, so they cannot disagree.
"""
from __future__ import annotations

import numpy as np

from .encoding import N_PITCHES

NONE = N_PITCHES  # "no hint"
KINDS = ("key2", "key1", "interval2")
WINDOW = 96  # default look-back, in notes


def _last_true(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(has any, index of the last True) per row of a 2-D boolean array."""
    has = m.any(axis=1)
    idx = m.shape[1] - 1 - np.argmax(m[:, ::-1], axis=1)
    return has, idx


def next_hints(hist, window: int = WINDOW) -> np.ndarray:
    """Hints for the next note after `hist` ([batch, n] key indices 0..87) -> [batch, 3] int64."""
    hist = np.asarray(hist, dtype=np.int64)
    if hist.ndim != 2:
        raise ValueError(f"history should be [batch, notes], got shape {hist.shape}")
    hist = hist[:, -(window + 3):]  # older notes can never match within the window
    B, n = hist.shape
    out = np.full((B, len(KINDS)), NONE, dtype=np.int64)
    if n < 2:
        return out
    # Candidate positions j = 0..n-2 (the note at j+1 is known), at most `window` back.
    j = np.arange(n - 1)
    inwin = j >= n - 1 - window
    a, nxt = hist[:, :-1], hist[:, 1:]  # hist[j], hist[j+1]
    pad = np.full((B, 1), -1000, dtype=np.int64)
    pa = np.concatenate([pad, hist[:, :-2]], axis=1)  # hist[j-1] (never matches at j = 0)
    ppa = np.concatenate([pad, pad, hist[:, :-3]], axis=1)  # hist[j-2]
    last = hist[:, -1:]
    m1 = (a == last) & inwin
    has, idx = _last_true(m1)
    rows = np.arange(B)
    out[has, 1] = nxt[rows, idx][has]
    m2 = m1 & (pa == hist[:, -2:-1])
    has, idx = _last_true(m2)
    out[has, 0] = nxt[rows, idx][has]
    if n >= 4:
        d1, d2 = hist[:, -1:] - hist[:, -2:-1], hist[:, -2:-1] - hist[:, -3:-2]
        mi = ((a - pa) == d1) & ((pa - ppa) == d2) & (j >= 2) & inwin
        has, idx = _last_true(mi)
        key = hist[:, -1] + (nxt[rows, idx] - a[rows, idx])
        ok = has & (key >= 0) & (key < N_PITCHES)
        out[ok, 2] = key[ok]
    return out


def sequence_hints(x, window: int = WINDOW) -> np.ndarray:
    """Teacher forcing: hints for every position of `x` ([batch, T]) -> [batch, T, 3].

    Position t's hints look only at x[:, :t], exactly as generation will.
    """
    x = np.asarray(x, dtype=np.int64)
    B, T = x.shape
    out = np.empty((B, T, len(KINDS)), dtype=np.int64)
    for t in range(T):
        out[:, t] = next_hints(x[:, :t], window)
    return out


class Recall:
    """The same hints for one line, kept up to date note by note in O(1).

    The runtime's path: a live stream runs forever, and a dictionary look-up per
    note costs microseconds where rescanning the window costs tens of them. Memory
    stays bounded: the last `window` + 3 keys, and one position per distinct key,
    key pair and interval pair.
    """

    def __init__(self, window: int = WINDOW):
        if window < 1:
            raise ValueError(f"recall window must be at least 1, got {window}")
        self.window = window
        self._ring = [0] * (window + 4)
        self._n = 0  # notes pushed so far
        self._key: dict[int, int] = {}  # key -> its last position
        self._pair: dict[tuple, int] = {}  # (key before, key) -> position of the second
        self._ivs: dict[tuple, int] = {}  # (interval before, interval) -> position of its last note
        self._hints = [NONE] * len(KINDS)

    def _at(self, pos: int) -> int:
        return self._ring[pos % len(self._ring)]

    def push(self, key: int) -> list[int]:
        """Add the next key of the line; returns the hints for the note after it."""
        key = int(key)
        p = self._n
        self._ring[p % len(self._ring)] = key
        self._n += 1
        lo = p - self.window  # oldest position a hint may come from
        hints = [NONE] * len(KINDS)
        j = self._key.get(key)
        self._key[key] = p
        if j is not None and j >= lo:
            hints[1] = self._at(j + 1)
        if p >= 1:
            k1 = self._at(p - 1)
            j = self._pair.get((k1, key))
            self._pair[(k1, key)] = p
            if j is not None and j >= lo:
                hints[0] = self._at(j + 1)
            if p >= 2:
                iv = (k1 - self._at(p - 2), key - k1)
                j = self._ivs.get(iv)
                self._ivs[iv] = p
                if j is not None and j >= lo:
                    nxt = key + self._at(j + 1) - self._at(j)
                    if 0 <= nxt < N_PITCHES:
                        hints[2] = nxt
        self._hints = hints
        return hints

    def hints(self) -> list[int]:
        """The hints for the next note (all NONE before any key)."""
        return list(self._hints)
