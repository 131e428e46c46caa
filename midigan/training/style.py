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


STAT_LAGS = (1, 2, 3, 4, 6, 8, 12, 16)  # window_stats' repetition lags


@functools.lru_cache(maxsize=None)
def clipped_interval_bands() -> torch.Tensor:
    """[88, 27 * 88]: bands[i, v * 88 + j] = 1 where key j minus key i, clipped to -13..13, is v - 13."""
    dist = torch.arange(N_PITCHES)[None, :] - torch.arange(N_PITCHES)[:, None]
    return F.one_hot(dist.clamp(-13, 13) + 13, 27).permute(0, 2, 1).reshape(N_PITCHES, -1).float()


def window_stats(x: torch.Tensor) -> torch.Tensor:
    """[B, T, 88] one-hot (or straight-through) key sequences -> [B, 141] window statistics, differentiably:
    pitch-class shares (12), intervals clipped to -13..13 (27), bigrams of the 9 interval classes (81),
    repetition of the key and of the clipped interval at 8 lags (16), mean and spread of the keys, the
    share of rising steps and of leaps beyond an octave, and how often the direction turns (5).

    These are the window-level statistics a listener (or a two-sample test) compares real and
    generated lines by; the generator's loss can match their distribution (mmd_weight)."""
    B, T, n = x.shape
    # e[b, t, v]: the (clipped) interval into step t + 1 is v - 13, exactly on one-hots.
    e = ((x[:, :-1] @ clipped_interval_bands().to(x)).unflatten(-1, (27, n)) * x[:, 1:, None, :]).sum(-1)
    iv = torch.arange(-13, 14, device=x.device)
    cls = F.one_hot(torch.bucketize(iv.double(), torch.from_numpy(INTERVAL_EDGES).to(x.device)),
                    len(INTERVAL_EDGES) + 1).to(x)
    c = e @ cls  # [B, T-1, 9] interval classes
    bigrams = torch.einsum("bti,btj->bij", c[:, :-1], c[:, 1:]).flatten(1) / (T - 2)
    rep = [(x[:, L:] * x[:, :-L]).sum(-1).mean(1) if L < T else x.new_zeros(B) for L in STAT_LAGS]
    irep = [(e[:, L:] * e[:, :-L]).sum(-1).mean(1) if L < T - 1 else x.new_zeros(B) for L in STAT_LAGS]
    k = torch.arange(n, dtype=x.dtype, device=x.device)
    m1 = (x @ k).mean(1)
    sd = ((x @ k ** 2).mean(1) - m1 ** 2).clamp_min(1e-8).sqrt()
    up, down = e @ (iv > 0).to(x), e @ (iv < 0).to(x)
    turns = (up[:, :-1] * down[:, 1:] + down[:, :-1] * up[:, 1:]).mean(1)
    return torch.cat([(x @ pitch_class_fold().to(x)).mean(1), e.mean(1), bigrams,
                      torch.stack([*rep, *irep, m1 / 88, sd / 12, up.mean(1), (e @ (iv.abs() > 12).to(x)).mean(1),
                                   turns], dim=1)], dim=1)


STATS = 141  # window_stats' columns


def mmd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Maximum mean discrepancy between two sets of (standardised) rows, Gaussian kernels at three
    widths around the median distance: zero when the two samples come from one distribution."""
    x = torch.cat([a, b])
    d2 = torch.cdist(x, x).pow(2)
    apart = d2.detach()[d2.detach() > 0]
    med = apart.median() if len(apart) else d2.new_tensor(1.0)  # every row alike: any width will do
    k = sum(torch.exp(-d2 / (s * med)) for s in (0.25, 1.0, 4.0))
    n = len(a)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


CHORD_RUNS = 4  # chord_stats: runs of 1..4 flags, i.e. notes in chords of 2+ .. 5+ keys


def chord_stats(flags: torch.Tensor) -> torch.Tensor:
    """[B, T] chord flags (1: the note starts with the one before; straight-through samples
    allowed) -> [B, 4]: the share of steps that end a run of at least 1, 2, 3, 4 flags, i.e.
    that sit in a chord of at least 2, 3, 4, 5 keys. Chord sizes are what the flags encode,
    and the key statistics above cannot see them."""
    out, run = [], flags
    for k in range(CHORD_RUNS):
        if k:
            run = run[:, 1:] * flags[:, :-k]
        out.append(run.mean(1) if run.shape[1] else flags.new_zeros(len(flags)))
    return torch.stack(out, dim=1)


def marginal_mmd(a: torch.Tensor, b: torch.Tensor, widths=(0.5, 1.0, 2.0)) -> torch.Tensor:
    """Unbiased MMD of each column of two sets of standardised rows (Gaussian kernels at the
    given widths, in standard deviations), averaged over the columns. A joint MMD in a hundred
    dimensions sees mostly the mean; this one sees each statistic's whole distribution (its
    spread, its tails), which is where a line that is right on average still differs."""
    def within(x):
        n = len(x)
        k = sum(torch.exp(-(x[:, None] - x[None]).pow(2) / (2 * w * w)) for w in widths)  # [n, n, D]
        return (k.sum((0, 1)) - len(widths) * n) / (n * (n - 1))  # the diagonal is exp(0) per width
    k_ab = sum(torch.exp(-(a[:, None] - b[None]).pow(2) / (2 * w * w)) for w in widths).mean((0, 1))
    return (within(a) + within(b) - 2 * k_ab).mean()


def _joint_kernel(x, y, med):
    d2 = torch.cdist(x, y).pow(2)
    return sum(torch.exp(-d2 / (s * med)) for s in (0.25, 1.0, 4.0))


def _marginal_kernel(x, y, widths=(0.5, 1.0, 2.0)):
    d2 = (x[:, None] - y[None]).pow(2)  # [n, m, D]
    return sum(torch.exp(-d2 / (2 * w * w)) for w in widths).mean(-1)


class Matcher:
    """The MMD terms' state: the statistics' units (mean, spread over training windows) and, with
    a bank, the standardised statistics of those windows and of the last `bank` sampled lines.

    Without a bank (bank = 0) a batch of sampled lines is compared with the batch of real windows
    it trained with: at 64 lines a side that estimate soon sits at its noise floor. With one, the
    loss is the witness function at the sampled lines (mean kernel to recent samples minus mean
    kernel to real windows), with `bank` lines on each side: the gradient then points where real
    windows are denser than generated ones, a direction 64 lines cannot resolve."""

    def __init__(self, stats: torch.Tensor, bank: int = 0):
        self.mu, self.sd = stats.mean(0), stats.std(0) + 1e-3
        self.real = (stats - self.mu) / self.sd
        self.bank = bank
        self.fake = stats.new_zeros(0, stats.shape[1])

    def terms(self, s_fake, s_real, g: torch.Generator | None = None):
        """(joint, marginal) discrepancy terms for a batch of sampled lines' statistics s_fake
        (with their gradient) and the real batch's s_real; joint over the window_stats columns only."""
        x, y = (s_fake - self.mu) / self.sd, (s_real - self.mu) / self.sd
        if not self.bank:
            return mmd(x[:, :STATS], y[:, :STATS]), marginal_mmd(x, y)
        r = self.real[torch.randperm(len(self.real), generator=g)[:self.bank].to(self.real.device)]
        f = torch.cat([self.fake, x.detach()])[-self.bank:]
        self.fake = f
        med = torch.cdist(x.detach()[:, :STATS], r[:, :STATS]).pow(2).median()
        joint = (_joint_kernel(x[:, :STATS], f[:, :STATS], med).mean()
                 - _joint_kernel(x[:, :STATS], r[:, :STATS], med).mean())
        marginal = _marginal_kernel(x, f).mean() - _marginal_kernel(x, r).mean()
        return joint, marginal


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
