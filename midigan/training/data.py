"""Training windows from whole pieces, as tensors: note events (the default) or pitches (seed)."""
from __future__ import annotations

import numpy as np
import torch

from .. import events as ev
from ..encoding import normalize
from ..music import N_PITCHES

_START = np.array([[ev.START[a] for a in ev.ATTRS]], np.int64)


def piece_events(piece) -> tuple[np.ndarray, np.ndarray]:
    """One piece as (events [n + 1, 4], bar positions [n + 1]): a START row, then its notes."""
    n = piece.notes
    e, pos = ev.encode(n.pitches, n.starts, n.durations, n.velocities)
    return np.concatenate([_START, e]), np.r_[0, pos]


class EventWindows:
    """Windows of seq_len notes, each with the row before it as context (the note before, or
    START at a piece's beginning), never crossing pieces."""

    def __init__(self, pieces, seq_len: int):
        parts = [piece_events(p) for p in pieces if len(p.pitches) >= seq_len]
        if not parts:
            raise ValueError(f"the corpus has no piece with at least {seq_len} notes")
        sizes = [len(e) for e, _ in parts]
        offsets = np.cumsum([0] + sizes)
        self.events = torch.from_numpy(np.concatenate([e for e, _ in parts]))
        self.pos = torch.from_numpy(np.concatenate([p for _, p in parts]))
        self.starts = torch.from_numpy(np.concatenate(
            [np.arange(o, o + n - seq_len) for o, n in zip(offsets, sizes)]))
        self.seq_len = seq_len

    def _take(self, i: torch.Tensor):
        at = i[:, None] + torch.arange(self.seq_len + 1)
        return self.events[at], self.pos[at]

    def sample(self, batch: int, transpose: int, g: torch.Generator):
        """(events [batch, seq_len + 1, 4], positions [batch, seq_len + 1]), randomly transposed
        by up to +- transpose semitones within the keyboard."""
        e, pos = self._take(self.starts[torch.randint(len(self.starts), (batch,), generator=g)])
        if transpose:
            key = e[..., 1]
            real = key < N_PITCHES  # START rows have no key
            lo = -torch.where(real, key, N_PITCHES).min(1).values
            hi = (N_PITCHES - 1) - torch.where(real, key, -1).max(1).values
            shift = torch.randint(-transpose, transpose + 1, (batch,), generator=g)
            shift = torch.minimum(torch.maximum(shift, lo), hi)
            e = e.clone()
            e[..., 1] = torch.where(real, key + shift[:, None], key)
        return e, pos

    def fixed(self, count: int):
        """Up to `count` windows spread evenly over the pieces (validation: the same every time)."""
        idx = self.starts[torch.linspace(0, len(self.starts) - 1, min(count, len(self.starts))).long()]
        return self._take(idx)


class PitchWindows:
    """The paper's data: windows of seq_len pitches in the pitch-linear encoding."""

    def __init__(self, pieces, seq_len: int):
        arrays = [p.pitches.astype(np.int64) for p in pieces if len(p.pitches) >= seq_len]
        if not arrays:
            raise ValueError(f"the corpus has no piece with at least {seq_len} notes")
        offsets = np.cumsum([0] + [len(a) for a in arrays])
        self.values = torch.from_numpy(normalize(np.concatenate(arrays)))
        self.starts = torch.from_numpy(np.concatenate(
            [np.arange(o, o + len(a) - seq_len + 1) for o, a in zip(offsets, arrays)]))
        self.seq_len = seq_len

    def sample(self, batch: int, transpose: int, g: torch.Generator):
        i = self.starts[torch.randint(len(self.starts), (batch,), generator=g)]
        return self.values[i[:, None] + torch.arange(self.seq_len)]

