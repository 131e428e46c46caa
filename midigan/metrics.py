"""Pitch-window metrics: the *targeted* feature family, copying, and the feature C2ST.

Everything here works on windows: int arrays of MIDI pitches, shape (N, L). Only
numpy at import time; scikit-learn is imported inside `feature_c2st`.

``c2st_features`` is the targeted family: pitch-class profile, interval histogram,
interval-class bigrams, repetition at lags 1..16, register and contour statistics. The
shipped model's training matched these same statistics (an MMD term over them, see its
model card), so `midigan evaluate` reports them apart and never as its headline. Its
per-window building blocks (in the spirit of Yang & Lerch's mgeval) are ``pitch_count``,
``pitch_range``, ``mean_interval``, ``scale_consistency`` (share of notes in the best of
36 major/minor/harmonic-minor scales), ``repetition_3gram``, ``mean_pitch``, ``pc_entropy``.

Novelty is the share of generated 8-note pitch n-grams found verbatim in the training
pieces (lower = less copying). ``feature_c2st`` is a classifier two-sample test on any
feature rows, with folds grouped by piece.
"""
from __future__ import annotations

import numpy as np

NGRAM = 8  # novelty n-gram length

FEATURES = ("pitch_count", "pitch_range", "mean_interval", "scale_consistency",
            "repetition_3gram", "mean_pitch", "pc_entropy")

_SCALE_STEPS = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
                "harmonic-minor": (0, 2, 3, 5, 7, 8, 11)}


def _scale_templates() -> np.ndarray:
    """(36, 12) 0/1 matrix: 3 scale kinds x 12 keys."""
    rows = []
    for steps in _SCALE_STEPS.values():
        for key in range(12):
            r = np.zeros(12)
            r[[(key + s) % 12 for s in steps]] = 1
            rows.append(r)
    return np.array(rows)


SCALE_TEMPLATES = _scale_templates()


def as_windows(x) -> np.ndarray:
    """Check and return x as an int64 (N, L) array of MIDI pitches (a 1-D array is one window)."""
    w = np.asarray(x)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2:
        raise ValueError(f"expected windows of shape (N, L), got shape {w.shape}")
    if w.shape[0] == 0 or w.shape[1] < 2:
        raise ValueError(f"need at least one window of at least 2 notes, got shape {w.shape}")
    if not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"pitches must be integers, got {w.dtype}")
    w = w.astype(np.int64)
    if w.min() < 0 or w.max() > 127:
        raise ValueError("pitches must be MIDI note numbers 0..127")
    return w


# ---------------------------------------------------------------- per-window features

def pc_counts(w) -> np.ndarray:
    """(N, 12) pitch-class counts per window."""
    w = as_windows(w)
    out = np.zeros((len(w), 12))
    np.add.at(out, (np.repeat(np.arange(len(w)), w.shape[1]), (w % 12).ravel()), 1)
    return out


def _distinct_per_row(keys: np.ndarray) -> np.ndarray:
    s = np.sort(keys, axis=1)
    return 1 + (np.diff(s, axis=1) != 0).sum(axis=1)


def pitch_count(w) -> np.ndarray:
    return _distinct_per_row(as_windows(w)).astype(float)


def pitch_range(w) -> np.ndarray:
    w = as_windows(w)
    return (w.max(axis=1) - w.min(axis=1)).astype(float)


def mean_interval(w) -> np.ndarray:
    return np.abs(np.diff(as_windows(w), axis=1)).mean(axis=1)


def scale_consistency(w) -> np.ndarray:
    w = as_windows(w)
    return (pc_counts(w) @ SCALE_TEMPLATES.T).max(axis=1) / w.shape[1]


def repetition_3gram(w) -> np.ndarray:
    w = as_windows(w)
    if w.shape[1] < 3:
        return np.zeros(len(w))
    keys = (w[:, :-2] << 16) | (w[:, 1:-1] << 8) | w[:, 2:]
    return 1.0 - _distinct_per_row(keys) / keys.shape[1]


def mean_pitch(w) -> np.ndarray:
    return as_windows(w).mean(axis=1)


def _entropy(counts: np.ndarray) -> np.ndarray:
    p = counts / np.maximum(counts.sum(axis=-1, keepdims=True), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=-1)


def pc_entropy(w) -> np.ndarray:
    return _entropy(pc_counts(w))


_FEATURE_FUNCS = {"pitch_count": pitch_count, "pitch_range": pitch_range, "mean_interval": mean_interval,
                  "scale_consistency": scale_consistency, "repetition_3gram": repetition_3gram,
                  "mean_pitch": mean_pitch, "pc_entropy": pc_entropy}


def window_features(w) -> dict[str, np.ndarray]:
    """{feature name: (N,) values} for every per-window feature in FEATURES."""
    w = as_windows(w)
    return {name: _FEATURE_FUNCS[name](w) for name in FEATURES}


# ---------------------------------------------------------------- novelty and diversity

def ngram_keys(seq, n: int = NGRAM) -> np.ndarray:
    """uint64 keys of every n-gram (n <= 8) of a 1-D sequence or within each row of (N, L) windows."""
    if not 1 <= n <= 8:
        raise ValueError(f"n-gram length must be 1..8, got {n}")
    w = np.asarray(seq)
    if w.ndim == 1:
        w = w[None, :]
    if w.shape[-1] < n:
        return np.zeros(0, dtype=np.uint64)
    grams = np.lib.stride_tricks.sliding_window_view(w.astype(np.uint8), n, axis=1).reshape(-1, n)
    packed = np.zeros((len(grams), 8), dtype=np.uint8)
    packed[:, :n] = grams
    return packed.view("<u8").ravel()


def train_ngrams(sequences, n: int = NGRAM) -> np.ndarray:
    """Sorted unique n-gram keys of a list of 1-D pitch sequences (n-grams never cross sequences)."""
    keys = [ngram_keys(np.asarray(s), n) for s in sequences if len(s) >= n]
    return np.unique(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.uint64)


def novelty(gen, train_keys, n: int = NGRAM) -> float:
    """Share of the generated windows' n-grams found verbatim in the training n-grams
    (`train_keys` from `train_ngrams`). 1.0 = everything copied; lower is more original."""
    g = ngram_keys(as_windows(gen), n)
    if not len(g):
        raise ValueError(f"windows are shorter than the {n}-gram length")
    return float(np.isin(g, train_keys).mean())


# ---------------------------------------------------------------- classifier two-sample test

INTERVAL_CLASSES = np.array([-np.inf, -12.5, -5.5, -2.5, -0.5, 0.5, 2.5, 5.5, 12.5, np.inf])  # 9 classes
REPEAT_LAGS = (1, 2, 3, 4, 6, 8, 12, 16)


def c2st_features(w) -> np.ndarray:
    """Per-window feature matrix for the two-sample test (N, 150): pitch-class profile (12),
    interval histogram -13..13 clipped (27), coarse interval-class bigrams (9x9), repetition
    at lags 1..16 of pitches (8) and of intervals (8, i.e. transposed motifs), and pitch
    statistics (14)."""
    w = as_windows(w)
    n, L = w.shape
    pc = pc_counts(w) / L
    d = np.diff(w, axis=1)
    ih = np.zeros((n, 27))
    np.add.at(ih, (np.repeat(np.arange(n), L - 1), (np.clip(d, -13, 13) + 13).ravel()), 1)
    ih /= L - 1
    cls = np.digitize(d, INTERVAL_CLASSES[1:-1])  # 0..8
    bg = np.zeros((n, 81))
    if L > 2:
        np.add.at(bg, (np.repeat(np.arange(n), L - 2), (cls[:, :-1] * 9 + cls[:, 1:]).ravel()), 1)
        bg /= L - 2
    rep = np.stack([(w[:, lag:] == w[:, :-lag]).mean(axis=1) if lag < L else np.zeros(n)
                    for lag in REPEAT_LAGS], axis=1)
    irep = np.stack([(d[:, lag:] == d[:, :-lag]).mean(axis=1) if lag < L - 1 else np.zeros(n)
                     for lag in REPEAT_LAGS], axis=1)
    f = window_features(w)
    ad = np.abs(d)
    stats = np.stack([
        f["mean_pitch"], w.std(axis=1), w.min(axis=1), w.max(axis=1), f["pitch_range"],
        f["pitch_count"], f["mean_interval"], ad.std(axis=1), (d > 0).mean(axis=1),
        (ad > 12).mean(axis=1), f["scale_consistency"], f["repetition_3gram"], f["pc_entropy"],
        np.abs(np.diff(np.sign(d), axis=1)).mean(axis=1) / 2 if L > 2 else np.zeros(n),  # direction changes
    ], axis=1)
    return np.concatenate([pc, ih, bg, rep, irep, stats], axis=1)


def feature_c2st(a, b, groups_a=None, groups_b=None, *, seed: int = 0, folds: int = 5) -> float:
    """Classifier two-sample test on feature rows: mean cross-validated accuracy of a fresh
    HistGradientBoostingClassifier telling rows of `a` from rows of `b` (0.5 = indistinguishable).

    Classes are balanced by subsampling the larger side. With groups (the piece or stream
    each row came from), folds keep a group on one side, so the classifier cannot score by
    recognising a piece it has seen; without them, folds are stratified over rows.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    if n < folds:
        raise ValueError(f"the two-sample test needs at least {folds} windows per side, got {n}")
    ia, ib = rng.choice(len(a), n, replace=False), rng.choice(len(b), n, replace=False)
    X = np.concatenate([a[ia], b[ib]])
    y = np.r_[np.zeros(n), np.ones(n)]
    # Small trees and coarse bins: as accurate here as sklearn's defaults, three times faster.
    # Leaves of at most 20 rows (sklearn's default), fewer on small sets, which could not split at all.
    clf = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.15, max_bins=32, max_leaf_nodes=15,
                                         min_samples_leaf=max(2, min(20, n // 10)), random_state=seed)
    groups = None
    if groups_a is not None and groups_b is not None:
        ga, gb = np.asarray(groups_a)[ia], np.asarray(groups_b)[ib]
        if len(np.unique(ga)) >= folds and len(np.unique(gb)) >= folds:
            _, groups = np.unique(np.r_[ga.astype(str), np.char.add("b", gb.astype(str))], return_inverse=True)
    cv = (StratifiedGroupKFold(folds, shuffle=True, random_state=seed) if groups is not None
          else StratifiedKFold(folds, shuffle=True, random_state=seed))
    # One OpenMP thread: these fits are tiny, and on a busy machine sklearn's threads
    # spin-wait for each other (ten times slower here than a single thread).
    with threadpool_limits(limits=1, user_api="openmp"):
        return float(cross_val_score(clf, X, y, cv=cv, groups=groups, scoring="accuracy").mean())
