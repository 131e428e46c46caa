"""Musical-quality metrics for pitch sequences, and the `midigan evaluate` pipeline.

Everything here works on windows: int arrays of MIDI pitches, shape (N, L).
Only numpy is needed at import time; scikit-learn is imported inside `c2st`,
the corpus loader and the ONNX runtime inside `evaluate`.

Per-window features (in the spirit of Yang & Lerch's mgeval and C-RNN-GAN):

- ``pitch_count``        distinct pitches in the window
- ``pitch_range``        tone span, max - min, semitones
- ``mean_interval``      mean absolute interval between successive notes, semitones
- ``scale_consistency``  share of notes in the best-fitting scale (major, natural
                         minor or harmonic minor, over all 12 keys)
- ``repetition_3gram``   1 - distinct 3-grams / 3-grams: share of 3-note patterns
                         that repeat one seen earlier in the window
- ``mean_pitch``         mean MIDI pitch
- ``pc_entropy``         Shannon entropy (bits) of the window's pitch-class histogram

Pooled over a whole set: the pitch-class histogram (12 bins) and the interval
histogram (one bin per signed interval, -87..87).

Overlap of two sets (1 = identical, 0 = disjoint): for each per-window feature, the
area under min(f, g) of the two sets' Gaussian kernel density estimates (each with
its own Silverman bandwidth, evaluated on one shared grid); for the pooled
histograms, sum(min(p, q)) of the normalised histograms (= 1 - total variation).
``mean_overlap`` is the plain mean of exactly those nine numbers: the seven
per-window feature overlaps plus the two pooled-histogram overlaps (OVERLAP_KEYS).

Novelty is the share of generated 8-note pitch n-grams found verbatim anywhere in
the training pieces (lower = less copying). Diversity is the share of distinct
sequences and the mean pairwise distance between generated sequences.
The classifier two-sample test (C2ST) is the 5-fold cross-validated accuracy of a
fresh gradient-boosted classifier telling generated windows from held-out real
ones on balanced classes; 0.5 = indistinguishable.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

PITCH_LOW, PITCH_HIGH = 21, 108
NGRAM = 8  # novelty n-gram length

FEATURES = ("pitch_count", "pitch_range", "mean_interval", "scale_consistency",
            "repetition_3gram", "mean_pitch", "pc_entropy")
HISTOGRAMS = ("pc_histogram", "interval_histogram")
OVERLAP_KEYS = FEATURES + HISTOGRAMS  # what mean_overlap averages
SHORT = {"pitch_count": "count", "pitch_range": "span", "mean_interval": "intv",
         "scale_consistency": "scale", "repetition_3gram": "rep3", "mean_pitch": "mean",
         "pc_entropy": "ent", "pc_histogram": "pcH", "interval_histogram": "ivH"}

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


def pc_histogram(w) -> np.ndarray:
    """Pooled, normalised pitch-class histogram (12,)."""
    c = pc_counts(w).sum(axis=0)
    return c / c.sum()


def interval_histogram(w) -> np.ndarray:
    """Pooled, normalised histogram of signed intervals -87..87 (175,), index 87 = unison."""
    d = np.clip(np.diff(as_windows(w), axis=1).ravel(), -87, 87)
    c = np.bincount(d + 87, minlength=175).astype(float)
    return c / c.sum()


# ---------------------------------------------------------------- overlaps

def _silverman(x: np.ndarray) -> float:
    n = len(x)
    sd = x.std(ddof=1) if n > 1 else 0.0
    q75, q25 = np.percentile(x, [75, 25])
    spread = min(sd, (q75 - q25) / 1.349) if q75 > q25 else sd
    return 0.9 * spread * n ** (-0.2)


def overlap(a, b, grid: int = 1024) -> float:
    """Overlap area of two 1-D samples' Gaussian KDEs: 1 = identical, ~0 = disjoint.

    Each sample gets its own Silverman bandwidth (floored, so constant samples still
    have a density); both densities are evaluated and renormalised on one shared grid.
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if not len(a) or not len(b):
        raise ValueError("overlap needs two non-empty samples")
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    floor = max(hi - lo, abs(hi), 1.0) * 1e-3
    ha, hb = max(_silverman(a), floor), max(_silverman(b), floor)
    pad = 4 * max(ha, hb)
    xs = np.linspace(lo - pad, hi + pad, grid)
    dx = xs[1] - xs[0]

    def density(x, h):
        # Exact Gaussian KDE, in chunks to bound memory.
        f = np.zeros(grid)
        for i in range(0, len(x), 2048):
            f += np.exp(-0.5 * ((xs[None, :] - x[i:i + 2048, None]) / h) ** 2).sum(axis=0)
        return f / max(f.sum() * dx, 1e-300)

    fa, fb = density(a, ha), density(b, hb)
    return float(np.clip(np.minimum(fa, fb).sum() * dx, 0.0, 1.0))


def histogram_overlap(p, q) -> float:
    """sum(min(p, q)) of two histograms, each normalised to sum 1."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    return float(np.minimum(p / p.sum(), q / q.sum()).sum())


def overlaps(gen, ref) -> dict[str, float]:
    """{key: overlap} for every key in OVERLAP_KEYS, plus 'mean_overlap' (their plain mean)."""
    gen, ref = as_windows(gen), as_windows(ref)
    fg, fr = window_features(gen), window_features(ref)
    out = {k: overlap(fg[k], fr[k]) for k in FEATURES}
    out["pc_histogram"] = histogram_overlap(pc_histogram(gen), pc_histogram(ref))
    out["interval_histogram"] = histogram_overlap(interval_histogram(gen), interval_histogram(ref))
    out["mean_overlap"] = float(np.mean([out[k] for k in OVERLAP_KEYS]))
    return out


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


def diversity(gen, max_pairs_of: int = 500, seed: int = 0) -> dict[str, float]:
    """Distinct share of sequences, and mean pairwise distances among (up to 500 of) them:
    ``pairwise_hamming`` = share of positions that differ; ``pairwise_abs`` = mean |pitch
    difference| in semitones, position by position."""
    w = as_windows(gen)
    distinct = len(np.unique(w, axis=0)) / len(w)
    if len(w) > max_pairs_of:
        w = w[np.random.default_rng(seed).choice(len(w), max_pairs_of, replace=False)]
    n = len(w)
    if n < 2:
        return {"distinct": distinct, "pairwise_hamming": 0.0, "pairwise_abs": 0.0}
    ham = ab = 0.0
    for i in range(0, n, 64):
        d = w[i:i + 64, None, :] - w[None, :, :]
        ham += (d != 0).mean(axis=2).sum()
        ab += np.abs(d).mean(axis=2).sum()
    pairs = n * (n - 1)  # the diagonal contributes zeros
    return {"distinct": float(distinct), "pairwise_hamming": float(ham / pairs),
            "pairwise_abs": float(ab / pairs)}


# ---------------------------------------------------------------- baselines

def uniform_baseline(count: int, length: int, seed: int = 0) -> np.ndarray:
    """Uniformly random piano keys."""
    return np.random.default_rng(seed).integers(PITCH_LOW, PITCH_HIGH + 1, (count, length))


class MarkovChain:
    """Pitch Markov chain of order k, with backoff to shorter contexts when one is unseen.

    Fit on a list of 1-D pitch sequences (transitions never cross sequences). Sampling
    starts from a random k-note context taken from the training sequences.
    """

    def __init__(self, order: int):
        if not 0 <= order <= 8:
            raise ValueError(f"Markov order must be 0..8, got {order}")
        self.order = order
        self.tables = []  # per order j: (ctx_unique, ctx_start, ctx_end, keys, cum)
        self.starts = None

    @staticmethod
    def _ctx(grams: np.ndarray) -> np.ndarray:
        c = np.zeros(len(grams), dtype=np.int64)
        for j in range(grams.shape[1]):
            c = c * 128 + grams[:, j]
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
                ks.append(ctx * 128 + s[j:])
            keys, counts = np.unique(np.concatenate(ks), return_counts=True)
            ctx_u, start = np.unique(keys // 128, return_index=True)
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
                nxt[todo[found]] = keys[np.searchsorted(cum, target, side="right")] % 128
                todo = todo[~found]
                if not len(todo):
                    break
            out[:, t] = nxt
        return out


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


def c2st(gen, ref, seed: int = 0, folds: int = 5) -> float:
    """Classifier two-sample test: mean 5-fold cross-validated accuracy of a fresh
    HistGradientBoostingClassifier telling `gen` windows from `ref` windows.

    Classes are balanced by subsampling the larger set to the smaller one's size.
    0.5 = indistinguishable, 1.0 = always told apart. Folds are stratified, not grouped
    by piece: windows of one reference piece can sit on both sides of a split, which
    lets the classifier recognise pieces and lifts every row alike (two sets of real
    piano-midi.de pieces score about 0.7, not 0.5: that is the ceiling to compare with).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    gen, ref = as_windows(gen), as_windows(ref)
    rng = np.random.default_rng(seed)
    n = min(len(gen), len(ref))
    if n < folds:
        raise ValueError(f"the two-sample test needs at least {folds} windows per side, got {n}")
    g = gen[rng.choice(len(gen), n, replace=False)]
    r = ref[rng.choice(len(ref), n, replace=False)]
    X = c2st_features(np.concatenate([g, r]))
    y = np.r_[np.zeros(n), np.ones(n)]
    # Small trees and coarse bins: as accurate here as sklearn's defaults, three times faster.
    clf = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.15, max_bins=32, max_leaf_nodes=15,
                                         random_state=seed)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    # One OpenMP thread: these fits are tiny, and on a busy machine sklearn's threads
    # spin-wait for each other (ten times slower here than a single thread).
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        return float(cross_val_score(clf, X, y, cv=cv, scoring="accuracy").mean())


# ---------------------------------------------------------------- one row, and the whole evaluation

def score(gen, ref, train_keys, *, seed: int = 0, with_c2st: bool = True, novelty_of=None) -> dict:
    """All metrics for one generated set against the reference windows.

    ``novelty_of`` replaces `gen` for the novelty number only (the real-music ceiling
    row uses the held-out reference there, since training windows are trivially copied).
    """
    gen = as_windows(gen)
    ov = overlaps(gen, ref)
    feats = window_features(gen)
    row = {
        "n": int(len(gen)),
        "c2st": c2st(gen, ref, seed=seed) if with_c2st else None,
        "mean_overlap": ov.pop("mean_overlap"),
        "novelty": novelty(gen if novelty_of is None else novelty_of, train_keys),
        **diversity(gen, seed=seed),
        "overlaps": ov,
        "feature_means": {k: float(v.mean()) for k, v in feats.items()},
    }
    return row


def _export_dir() -> Path:
    here = Path(__file__).resolve().parent
    for d in (here / "_data" / "export", here.parent / "export"):
        if d.is_dir():
            return d
    return here.parent / "export"


def _sample_rows(w: np.ndarray, count: int, rng) -> np.ndarray:
    return w if len(w) <= count else w[np.sort(rng.choice(len(w), count, replace=False))]


def evaluate(source, reference, train=None, *, count: int = 400, seed: int = 0,
             baselines: bool = True, seed_model=None, with_c2st: bool = True,
             temperature: float = 1.0, progress=None) -> dict:
    """Compare a model's (or a MIDI folder's) pitch windows with held-out reference music.

    source: an ONNX generator file, or a folder of MIDI files (its windows are used).
    reference, train: corpus folders. When they are the same folder (or train is None),
    the folder's validation+test pieces are the reference and its train pieces the
    training set; otherwise every piece of each folder is used.
    Rows: the source, then (with baselines) the seed config's model when one is found,
    uniform random, Markov chains of order 1, 2 and 4 fit on the training pieces, and
    the real-music ceiling: `count` training windows (other whole pieces) against the
    same reference, with novelty measured on the held-out reference windows.
    ``temperature`` applies to the source model only (the seed model is scored as shipped).
    """
    from .corpus import load_corpus, windows  # lazy: the loader imports mido

    t0 = time.time()
    say = progress or (lambda msg: None)
    if count < 10:
        raise ValueError(f"count must be at least 10, got {count}")
    if not temperature > 0:
        raise ValueError(f"temperature must be above 0, got {temperature}")
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"no such model file or MIDI folder: {source}")
    ref_root = Path(reference)
    train_root = Path(train) if train is not None else ref_root
    rc = load_corpus(ref_root)
    same = train_root.resolve() == ref_root.resolve()
    if same:
        ref_pieces = rc.split("validation") + rc.split("test")
        train_pieces = rc.split("train")
        if not ref_pieces or not train_pieces:
            raise ValueError(f"{ref_root} is too small to split into held-out and training pieces; "
                             "pass a separate --train folder")
    else:
        ref_pieces, train_pieces = rc.pieces, load_corpus(train_root).pieces

    gen_model = None
    if source.is_dir():
        length = 100
        label = f"{source.name or source}/ (MIDI)"
    else:
        from .runtime import Generator
        gen_model = Generator(source)
        length = gen_model.seq_len
        label = source.name
    if length < NGRAM:
        raise ValueError(f"sequence length {length} is shorter than the {NGRAM}-note novelty n-grams")

    ref = windows(ref_pieces, length)
    if len(ref) < 10:
        raise ValueError(f"the reference has only {len(ref)} windows of {length} notes; need at least 10")
    train_w = windows(train_pieces, length)
    rng = np.random.default_rng(seed)

    if gen_model is not None:
        gen = gen_model.generate(count, seed=seed, temperature=temperature)
    else:
        src = load_corpus(source)
        gen = windows(src.pieces, length)
        if not len(gen):
            raise ValueError(f"no MIDI file under {source} has {length} notes or more")
        gen = _sample_rows(gen, count, rng)

    say("indexing training 8-grams")
    train_seqs = [p.pitches for p in train_pieces]
    tkeys = train_ngrams(train_seqs)
    sets = [(label, "source", gen, None)]
    if baselines:
        sm = Path(seed_model) if seed_model else _export_dir() / "seed.onnx"
        if sm.is_file() and (gen_model is None or sm.resolve() != Path(source).resolve()):
            from .runtime import Generator
            g = Generator(sm)
            s = g.generate(count, seed=seed)
            if s.shape[1] >= length:
                sets.append((f"seed model ({sm.name})", "seed-model", s[:, :length], None))
            else:
                say(f"skipping {sm}: its sequences ({s.shape[1]}) are shorter than {length}")
        elif seed_model:
            raise FileNotFoundError(f"no such seed model: {seed_model}")
        sets.append(("uniform random", "uniform", uniform_baseline(count, length, seed), None))
        for k in (1, 2, 4):
            say(f"fitting Markov order {k}")
            sets.append((f"markov order {k}", f"markov-{k}",
                         MarkovChain(k).fit(train_seqs).sample(count, length, seed=seed + k), None))
        if len(train_w) >= 10:
            sets.append(("real (train pieces)", "real", _sample_rows(train_w, count, rng), ref))

    rows = []
    for name, kind, w, nov in sets:
        say(f"scoring {name}")
        r = score(w, ref, tkeys, seed=seed, with_c2st=with_c2st, novelty_of=nov)
        rows.append({"name": name, "kind": kind, **r})
    return {
        "source": str(source),
        "reference": str(ref_root),
        "train": str(train_root),
        "held_out_split": same,
        "seq_len": int(length),
        "count": int(count),
        "seed": int(seed),
        "temperature": float(temperature),
        "reference_windows": int(len(ref)),
        "reference_pieces": len(ref_pieces),
        "train_pieces": len(train_pieces),
        "train_notes": int(sum(len(p) for p in train_seqs)),
        "reference_feature_means": {k: float(v.mean()) for k, v in window_features(ref).items()},
        "mean_overlap_of": list(OVERLAP_KEYS),
        "rows": rows,
        "seconds": round(time.time() - t0, 1),
    }


def format_table(result: dict) -> str:
    """The evaluation as a readable text table."""
    r = result
    lines = [
        f"reference: {r['reference_windows']} windows of {r['seq_len']} notes from "
        f"{r['reference_pieces']} held-out pieces of {r['reference']}; "
        f"training set: {r['train_pieces']} pieces, {r['train_notes']} notes"
        + (" (same folder: validation+test vs train split)" if r["held_out_split"] else ""),
        "",
    ]
    head = (f"{'':<22} {'C2ST':>5} {'overlap':>7} {'novelty%':>8} {'distinct%':>9} {'pairdist':>8} "
            + " ".join(f"{SHORT[k]:>5}" for k in OVERLAP_KEYS))
    lines += [head, "-" * len(head)]
    for row in r["rows"]:
        c = "  -  " if row["c2st"] is None else f"{row['c2st']:.3f}"
        lines.append(f"{row['name'][:22]:<22} {c:>5} {row['mean_overlap']:>7.3f} {100 * row['novelty']:>8.1f} "
                     f"{100 * row['distinct']:>9.1f} {row['pairwise_hamming']:>8.3f} "
                     + " ".join(f"{row['overlaps'][k]:>5.2f}" for k in OVERLAP_KEYS))
    lines += [
        "",
        "C2ST: 5-fold accuracy of a fresh classifier telling the row from held-out real windows (0.5 = indistinguishable).",
        "overlap: mean of the 9 overlaps on the right (1 = identical): per-window " + ", ".join(
            SHORT[k] for k in FEATURES) + " (KDE overlap) and pooled pitch-class / interval histograms (pcH, ivH).",
        f"novelty%: share of {NGRAM}-note n-grams found verbatim in the training pieces (lower = less copying; "
        "for 'real' rows: the held-out reference's own rate).",
        "distinct%: distinct sequences; pairdist: mean pairwise share of positions that differ.",
        f"({r['count']} sequences per row, seed {r['seed']}, {r['seconds']} s)",
    ]
    return "\n".join(lines)
