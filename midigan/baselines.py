"""Baselines every evaluation row is read against: uniform random notes and Markov chains.

Each makes timed notes as the rest of the evaluation sees them: (count, length, 4) float
arrays of pitch, onset beats, duration beats, velocity. The Markov baselines fit two
chains on the training pieces, one over pitches and one over (inter-onset step, duration,
velocity) tokens, and draw them apart: they know local pitch and rhythm habits and
nothing else.
"""
from __future__ import annotations

import numpy as np

from .music import PITCH_HIGH, PITCH_LOW
from .music import GRID_STEPS_PER_BEAT

MAX_IOI_STEPS = 96  # inter-onset steps (1/24 beat) a baseline draws: up to 4 beats
DUR_LOG2 = np.arange(-5, 4)  # duration classes: powers of two from 1/32 to 8 beats
VEL_STEP = 16  # velocity classes of 16


def uniform_notes(count: int, length: int, seed: int = 0) -> np.ndarray:
    """Uniformly random piano keys, onset steps (0..2 beats on the 1/24 grid), durations
    (1/24..4 beats) and velocities."""
    rng = np.random.default_rng(seed)
    pitch = rng.integers(PITCH_LOW, PITCH_HIGH + 1, (count, length))
    ioi = rng.integers(0, 2 * GRID_STEPS_PER_BEAT + 1, (count, length)) / GRID_STEPS_PER_BEAT
    ioi[:, 0] = 0
    dur = rng.integers(1, 4 * GRID_STEPS_PER_BEAT + 1, (count, length)) / GRID_STEPS_PER_BEAT
    vel = rng.integers(1, 128, (count, length))
    return _sorted(np.stack([pitch, np.cumsum(ioi, axis=1), dur, vel], axis=-1).astype(np.float64))


def _sorted(notes: np.ndarray) -> np.ndarray:
    """Each window's notes in onset order, a chord low to high (as the corpus writes them)."""
    order = np.lexsort((notes[..., 0], notes[..., 1]), axis=-1)
    return np.take_along_axis(notes, order[..., None], axis=1)


def timing_tokens(notes) -> np.ndarray:
    """(length,) int tokens of one piece's notes: inter-onset step, duration class, velocity class."""
    ioi = np.clip(np.rint(np.diff(notes[:, 1], prepend=notes[0, 1]) * GRID_STEPS_PER_BEAT), 0, MAX_IOI_STEPS)
    dur = np.clip(np.rint(np.log2(np.maximum(notes[:, 2], 1e-3))) - DUR_LOG2[0], 0, len(DUR_LOG2) - 1)
    vel = np.clip(notes[:, 3] // VEL_STEP, 0, 127 // VEL_STEP)
    return ((ioi * len(DUR_LOG2) + dur) * (128 // VEL_STEP) + vel).astype(np.int64)


def untoken(tokens: np.ndarray) -> np.ndarray:
    """timing_tokens' inverse on (N, L) tokens: (N, L, 3) onset beats, duration beats, velocity."""
    vel = (tokens % (128 // VEL_STEP)) * VEL_STEP + VEL_STEP // 2
    rest = tokens // (128 // VEL_STEP)
    dur = 2.0 ** (DUR_LOG2[0] + rest % len(DUR_LOG2))
    ioi = (rest // len(DUR_LOG2)) / GRID_STEPS_PER_BEAT
    ioi[:, 0] = 0
    return np.stack([np.cumsum(ioi, axis=1), dur, np.clip(vel, 1, 127)], axis=-1)


def markov_notes(order: int, pieces, count: int, length: int, seed: int = 0) -> np.ndarray:
    """Timed notes from a pitch chain and a timing chain of one order, fit on `pieces`
    (a list of (n, 4) note arrays) and sampled apart."""
    pitch = MarkovChain(order).fit([p[:, 0].astype(np.int64) for p in pieces]).sample(count, length, seed)
    toks = [timing_tokens(p) for p in pieces]
    vocab, inverse = np.unique(np.concatenate(toks), return_inverse=True)
    cuts = np.cumsum([len(t) for t in toks])[:-1]
    chain = MarkovChain(order, base=len(vocab)).fit(np.split(inverse, cuts))
    timing = untoken(vocab[chain.sample(count, length, seed + 1)])
    return _sorted(np.concatenate([pitch[..., None].astype(np.float64), timing], axis=-1))


class MarkovChain:
    """Markov chain of order k over tokens 0..base-1 (MIDI pitches by default), with backoff
    to shorter contexts when one is unseen.

    Fit on a list of 1-D token sequences (transitions never cross sequences). Sampling
    starts from a random k-token context taken from the training sequences.
    """

    def __init__(self, order: int, base: int = 128):
        if not 0 <= order <= 8:
            raise ValueError(f"Markov order must be 0..8, got {order}")
        if base < 2 or base ** (order + 1) >= 2 ** 62:
            raise ValueError(f"{base} tokens are too many for a Markov chain of order {order}")
        self.order, self.base = order, base
        self.tables = []  # per order j: (ctx_unique, ctx_start, ctx_end, keys, cum)
        self.starts = None

    def _ctx(self, grams: np.ndarray) -> np.ndarray:
        c = np.zeros(len(grams), dtype=np.int64)
        for j in range(grams.shape[1]):
            c = c * self.base + grams[:, j]
        return c

    def fit(self, sequences) -> "MarkovChain":
        seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
        seqs = [s for s in seqs if len(s) > self.order]
        if not seqs:
            raise ValueError(f"no training sequence is longer than the Markov order {self.order}")
        self.tables = []
        for j in range(self.order + 1):
            ks = []
            for s in seqs:
                if len(s) <= j:
                    continue
                ctx = self._ctx(np.lib.stride_tricks.sliding_window_view(s[:-1], j)[: len(s) - j]) \
                    if j else np.zeros(len(s), dtype=np.int64)
                ks.append(ctx * self.base + s[j:])
            keys, counts = np.unique(np.concatenate(ks), return_counts=True)
            ctx_u, start = np.unique(keys // self.base, return_index=True)
            end = np.append(start[1:], len(keys))
            self.tables.append((ctx_u, start, end, keys, np.cumsum(counts)))
        k = self.order
        self.starts = np.concatenate([np.lib.stride_tricks.sliding_window_view(s, k) for s in seqs]) \
            if k else np.zeros((1, 0), dtype=np.int64)
        return self

    def sample(self, count: int, length: int, seed: int = 0) -> np.ndarray:
        if not self.tables:
            raise ValueError("fit the Markov chain first")
        rng = np.random.default_rng(seed)
        k = self.order
        out = np.zeros((count, length), dtype=np.int64)
        first = self.starts[rng.integers(0, len(self.starts), count)][:, :length]
        out[:, : first.shape[1]] = first
        for t in range(min(k, length), length):
            todo = np.arange(count)
            nxt = np.zeros(count, dtype=np.int64)
            for j in range(k, -1, -1):  # back off until every context is known
                ctx_u, start, end, keys, cum = self.tables[j]
                c = self._ctx(out[todo, t - j:t]) if j else np.zeros(len(todo), dtype=np.int64)
                pos = np.minimum(np.searchsorted(ctx_u, c), len(ctx_u) - 1)
                found = ctx_u[pos] == c
                lo, hi = start[pos[found]], end[pos[found]]
                base = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0)
                total = cum[hi - 1] - base
                target = base + np.floor(rng.random(len(lo)) * total).astype(np.int64)
                nxt[todo[found]] = keys[np.searchsorted(cum, target, side="right")] % self.base
                todo = todo[~found]
                if not len(todo):
                    break
            out[:, t] = nxt
        return out


