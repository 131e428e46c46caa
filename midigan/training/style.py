"""Style codes: Gaussian noise that means something.

A generator trained by maximum likelihood with noise that is independent of the
data learns to ignore the noise; every sequence then starts from the same
average texture, and real windows (one piece's key, register, figuration) are
more varied than generated ones. So during maximum-likelihood training the first
`STYLE_DIM` noise dimensions are not drawn at random: they are the window's own
style code, a few plain statistics of the window (register, key direction on the
circle of fifths, repetition at several lags, step size and direction, ...)
mapped through their empirical quantiles to standard normal margins and then
whitened. Across training windows the code is therefore close to N(0, I), so at
generation time the generator is fed ordinary Gaussian noise, as the paper asks,
and each draw picks a plausible texture. The ONNX graph and the runtime do not
change: the code only shapes what the noise means.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..encoding import N_PITCHES, PITCH_LOW

from .config import STYLE_DIM
QUANTILES = 1001


INTERVAL_EDGES = np.array([-12.5, -5.5, -2.5, -0.5, 0.5, 2.5, 5.5, 12.5])  # 9 interval classes


def descriptors(keys: np.ndarray) -> np.ndarray:
    """[B, T] key indices 0..87 -> [B, STYLE_DIM] float64 window statistics: register and spread,
    key direction on the circle of fifths, repetition at lags 1, 2, 3, 4, 8, the share of each of
    9 interval classes (octave+ down ... repeat ... octave+ up), distinct keys, pitch-class entropy."""
    x = np.asarray(keys, dtype=np.int64)
    B, T = x.shape
    d = np.diff(x, axis=1)
    pc = (x + PITCH_LOW) % 12
    angle = 2 * np.pi * ((7 * pc) % 12) / 12  # position on the circle of fifths
    rep = [(x[:, k:] == x[:, :-k]).mean(1) if k < T else np.zeros(B) for k in (1, 2, 3, 4, 8)]
    cls = np.digitize(d, INTERVAL_EDGES)
    ivh = np.stack([(cls == c).mean(1) for c in range(9)], axis=1)
    distinct = np.array([len(np.unique(r)) for r in x]) / T
    pch = np.stack([(pc == k).mean(1) for k in range(12)], axis=1)
    ent = -(pch * np.log(np.where(pch > 0, pch, 1))).sum(1) / np.log(12)
    return np.column_stack([x.mean(1) / 88, x.std(1) / 12, np.cos(angle).mean(1), np.sin(angle).mean(1),
                            *rep, ivh, distinct, ent])


@functools.lru_cache(maxsize=None)
def interval_bands() -> torch.Tensor:
    """[9, 88, 88]: bands[c, i, j] = 1 where key j minus key i falls in interval class c."""
    dist = torch.arange(N_PITCHES)[None, :] - torch.arange(N_PITCHES)[:, None]
    cls = torch.bucketize(dist.to(torch.float64), torch.from_numpy(INTERVAL_EDGES))
    return F.one_hot(cls, len(INTERVAL_EDGES) + 1).permute(2, 0, 1).float()


@functools.lru_cache(maxsize=None)
def pitch_class_fold() -> torch.Tensor:
    """[88, 12]: key index -> one-hot pitch class (C = 0)."""
    fold = torch.zeros(N_PITCHES, 12)
    fold[torch.arange(N_PITCHES), (torch.arange(N_PITCHES) + PITCH_LOW) % 12] = 1
    return fold


def soft_descriptors(x: torch.Tensor) -> torch.Tensor:
    """descriptors() of one-hot key sequences x [B, T, 88], differentiably: on exact one-hots the
    values are descriptors()'s; on straight-through samples the gradient reaches the generator."""
    B, T, n = x.shape
    k = torch.arange(n, dtype=x.dtype, device=x.device)
    pc = pitch_class_fold().to(x)
    angle = 2 * np.pi * ((7 * torch.arange(12, device=x.device)) % 12) / 12
    pos = x @ k
    m1, m2 = pos.mean(1), (x @ k ** 2).mean(1)
    p = x @ pc  # [B, T, 12] pitch classes
    rep = [(x[:, L:] * x[:, :-L]).sum(-1).mean(1) if L < T else x.new_zeros(B) for L in (1, 2, 3, 4, 8)]
    ivh = torch.einsum("bti,cij,btj->bc", x[:, :-1], interval_bands().to(x), x[:, 1:]) / (T - 1)
    distinct = (1 - torch.prod(1 - x, dim=1)).sum(-1) / T  # keys played at least once
    pch = p.mean(1)
    ent = -(pch * torch.log(pch.clamp_min(1e-12))).sum(-1) / np.log(12)
    return torch.stack([m1 / 88, (m2 - m1 ** 2).clamp_min(1e-8).sqrt() / 12, (p @ torch.cos(angle).to(x.dtype)).mean(1),
                        (p @ torch.sin(angle).to(x.dtype)).mean(1), *rep, *ivh.T, distinct, ent], dim=1)


def fit(keys: np.ndarray) -> dict[str, torch.Tensor]:
    """Quantile tables and whitening from training windows: tensors for a state dict."""
    f = descriptors(keys)
    qs = np.quantile(f, np.linspace(0, 1, QUANTILES), axis=0).T  # [STYLE_DIM, QUANTILES]
    g = _gauss(f, qs)
    mean = g.mean(0)
    vals, vecs = np.linalg.eigh(np.cov(g, rowvar=False) + 1e-4 * np.eye(STYLE_DIM))
    white = vecs @ np.diag(vals ** -0.5) @ vecs.T  # symmetric inverse square root
    return {"quantiles": torch.tensor(qs, dtype=torch.float64), "mean": torch.tensor(mean),
            "white": torch.tensor(white)}


def _gauss(f: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Per-dimension mid-rank in the quantile table -> standard normal value."""
    u = np.empty_like(f)
    for k in range(f.shape[1]):
        lo = np.searchsorted(qs[k], f[:, k], side="left")
        hi = np.searchsorted(qs[k], f[:, k], side="right")
        u[:, k] = (lo + hi) / 2 / qs.shape[1]
    u = np.clip(u, 0.5 / qs.shape[1], 1 - 0.5 / qs.shape[1])
    return torch.special.ndtri(torch.from_numpy(u)).numpy()


def encode(keys: np.ndarray, table: dict[str, torch.Tensor]) -> np.ndarray:
    """[B, T] key indices -> [B, STYLE_DIM] float32 style codes (about N(0, I) over the corpus)."""
    qs, mean, white = (table[k].numpy() for k in ("quantiles", "mean", "white"))
    return ((_gauss(descriptors(keys), qs) - mean) @ white).astype(np.float32)
