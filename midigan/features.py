"""Evaluation-only feature families that no training term computes.

`midigan evaluate` reports these apart from the metrics in `metrics.py`. No loss, style
code or discriminator input computes any of them; that is their point: a model cannot
have been optimised towards them, so they measure what it learnt on its own. Training code
must never import this module. Only numpy is used.

Families (each ``f(windows) -> (X, names)``, X float64 (N, F), no NaN/inf; degenerate
cases such as constant windows or a single onset give 0):

- ``longrange``  (pitch windows, int (N, L), meant for L = 400, any L >= 16): 4- and
  6-gram repetition of pitches and of intervals (transposed repeats), repetition at lags
  24/32/48, self-similarity of the two halves, contour runs, register drift over blocks,
  pitch autocorrelation at lags 1..16, pitch- and interval-trigram entropy.
- ``rhythm``     (notes windows, float (N, L, 4): pitch, onset and duration in beats,
  velocity): inter-onset-interval histogram, onset position within the beat, durations
  and legato, notes per onset, onset density and polyphony.
- ``dynamics``   (notes windows): velocity level, spread and histogram, change between
  successive onsets, velocity against pitch, chord accent, slope over the window.

Also ``longest_copied_run``: per window, the longest run of pitches found verbatim in
one training sequence (exact: suffix sorting, no hashing).
"""
from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- constants

LONGRANGE_MIN_LEN = 16
REPEAT_NGRAMS = (4, 6)           # n-gram repetition, in notes
REPEAT_LAGS = (24, 32, 48)       # long lags: multiples of common bar/phrase lengths in notes
ACF_LAGS = (1, 2, 4, 8, 16)
HALF_INTERVAL_CLIP = 12          # interval histogram of the halves: -12..12
DRIFT_BLOCK = 50                 # notes per register block (L // 8 if that is shorter)

SAME_ONSET = 1e-6                # beats: onsets closer than this form one chord
IOI_CENTRES = np.array([1 / 8, 1 / 6, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 1, 2, 4])  # beats; 4 = "longer"
IOI_EDGES = np.sqrt(IOI_CENTRES[:-1] * IOI_CENTRES[1:])  # geometric midpoints
IOI_NAMES = ("ioi_1/8", "ioi_1/6", "ioi_1/4", "ioi_1/3", "ioi_1/2", "ioi_2/3", "ioi_1", "ioi_2", "ioi_long")
GRID = 24                        # onset grid: 1/24 beat holds both sixteenths and triplets
GRID_TOL = 1 / 96                # beats off the nearest grid point before an onset is off-grid
POSITION_SLOTS = {0: 0, 6: 1, 12: 2, 18: 3, 8: 4, 16: 5}  # grid index -> category below
POSITION_NAMES = ("pos_0", "pos_1/4", "pos_1/2", "pos_3/4", "pos_1/3", "pos_2/3", "pos_grid", "pos_off")
_GRID_SLOT = np.full(GRID, 6)    # other 1/24-grid points: "pos_grid"
_GRID_SLOT[list(POSITION_SLOTS)] = list(POSITION_SLOTS.values())
DUR_LOG2_EDGES = np.arange(-3.5, 3.0, 1.0)  # log2 beats, bins centred on powers of two
DUR_NAMES = ("dur_short", "dur_1/8", "dur_1/4", "dur_1/2", "dur_1", "dur_2", "dur_4", "dur_long")
LEGATO_CAP = 4.0                 # duration/IOI ratios above this count as this (pedal tones)
MAX_CHORD = 5                    # notes-per-onset shares: 1, 2, 3, 4, 5+
VEL_BINS = 8                     # equal bins over 1..127
MIDDLE_C = 60


# ---------------------------------------------------------------- input checks and helpers

def _as_pitch(x, min_len: int = 1) -> np.ndarray:
    """int64 (N, L) pitch windows (a 1-D array is one window)."""
    w = np.asarray(x)
    w = w[None, :] if w.ndim == 1 else w
    if w.ndim != 2 or not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"expected integer pitch windows (N, L), got {w.dtype} {w.shape}")
    if w.shape[0] == 0 or w.shape[1] < min_len:
        raise ValueError(f"need windows of at least {min_len} notes, got shape {w.shape}")
    if w.min() < 0 or w.max() > 127:
        raise ValueError("pitches must be MIDI note numbers 0..127")
    return w.astype(np.int64)


def _as_notes(x) -> np.ndarray:
    """float64 (N, L, 4) notes windows (pitch, onset, duration, velocity); (L, 4) is one window."""
    a = np.asarray(x, dtype=np.float64)
    a = a[None] if a.ndim == 2 else a
    if a.ndim != 3 or a.shape[2] != 4 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"expected notes windows (N, L, 4), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("notes must be finite")
    if (np.diff(a[:, :, 1], axis=1) < -SAME_ONSET).any():
        raise ValueError("onsets must be non-decreasing within a window")
    if (a[:, :, 2] <= 0).any():
        raise ValueError("durations must be positive")
    return a


def _safe_div(a, b) -> np.ndarray:
    """a / b, 0 where b is (nearly) 0: degenerate windows get 0, never NaN."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.abs(b) > 1e-12
    return np.where(ok, a / np.where(ok, b, 1.0), 0.0)


def _masked_mean(x, m) -> np.ndarray:
    return _safe_div(np.where(m, x, 0.0).sum(axis=1), m.sum(axis=1))


def _masked_std(x, m) -> np.ndarray:
    mu = _masked_mean(x, m)
    return np.sqrt(_masked_mean((np.where(m, x, 0.0) - mu[:, None]) ** 2, m))


def _row_hist(idx, mask, bins: int) -> np.ndarray:
    """(N, bins) shares of the masked bin indices of each row (all 0 for an empty row)."""
    n = idx.shape[0]
    rows = np.broadcast_to(np.arange(n)[:, None], idx.shape)
    c = np.bincount((rows * bins + idx)[mask], minlength=n * bins).reshape(n, bins).astype(float)
    return _safe_div(c, c.sum(axis=1, keepdims=True))


def _row_corr(a, b) -> np.ndarray:
    """Pearson correlation along axis 1; 0 where either row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.clip(_safe_div((a * b).sum(axis=1), den), -1.0, 1.0)


def _row_slope(y) -> np.ndarray:
    """Least-squares slope of each row against its index 0..K-1."""
    k = np.arange(y.shape[1]) - (y.shape[1] - 1) / 2
    return _safe_div(y @ k, np.full(len(y), k @ k))


def _ngram_keys(x, n: int, bits: int) -> np.ndarray:
    """(N, L-n+1) int64 keys of the n-grams of each row; values must fit in `bits` bits."""
    m = x.shape[1] - n + 1
    keys = np.zeros((len(x), max(m, 0)), dtype=np.int64)
    for k in range(n):
        keys = (keys << bits) | x[:, k:k + m]
    return keys


def _run_counts(keys):
    """Sorted-key run structure per row: (row of each distinct key, its count)."""
    s = np.sort(keys, axis=1)
    start = np.ones(s.shape, dtype=bool)
    start[:, 1:] = s[:, 1:] != s[:, :-1]
    first = np.flatnonzero(start.ravel())
    return first // s.shape[1], np.diff(np.append(first, s.size))


def _repeat_share(keys) -> np.ndarray:
    """Share of a row's keys equal to one seen earlier in the row: 1 - distinct/total."""
    n, m = keys.shape
    if m == 0:
        return np.zeros(n)
    rows, _ = _run_counts(keys)
    return 1.0 - np.bincount(rows, minlength=n) / m


def _entropy_bits(keys) -> np.ndarray:
    """Shannon entropy (bits) of each row's key distribution."""
    n, m = keys.shape
    if m == 0:
        return np.zeros(n)
    rows, c = _run_counts(keys)
    return np.maximum(np.log2(m) - np.bincount(rows, c * np.log2(c), minlength=n) / m, 0.0)


# ---------------------------------------------------------------- longrange family

def _repetition(w, d):
    n, L = w.shape
    iv = d + 128  # 1..255: 8 bits per interval
    X, names = [], []
    for g in REPEAT_NGRAMS:  # an n-note pattern transposed = its n-1 intervals repeated
        X += [_repeat_share(_ngram_keys(w, g, 7)), _repeat_share(_ngram_keys(iv, g - 1, 8))]
        names += [f"rep{g}", f"irep{g}"]
    for lag in REPEAT_LAGS:
        X.append((w[:, lag:] == w[:, :-lag]).mean(axis=1) if lag < L else np.zeros(n))
        X.append((d[:, lag:] == d[:, :-lag]).mean(axis=1) if lag < L - 1 else np.zeros(n))
        names += [f"lag{lag}", f"ilag{lag}"]
    return X, names


def _halves(w, d):
    n, L = w.shape
    h = L // 2
    a, b = w[:, :h], w[:, L - h:]  # odd L: the middle note belongs to neither half
    rows = np.arange(n)[:, None]

    def counts(x, bins):
        return np.bincount((rows * bins + x).ravel(), minlength=n * bins).reshape(n, bins).astype(float)

    pc_corr = _row_corr(counts(a % 12, 12), counts(b % 12, 12))
    c = HALF_INTERVAL_CLIP
    ia, ib = (counts(np.clip(np.diff(x, axis=1), -c, c) + c, 2 * c + 1) / (h - 1) for x in (a, b))
    X = [pc_corr, np.minimum(ia, ib).sum(axis=1), np.abs(b.mean(1) - a.mean(1)), np.abs(b.std(1) - a.std(1))]
    return X, ["half_pc_corr", "half_iv_overlap", "half_dmean", "half_dstd"]


def _contour(d):
    """Runs of same-direction steps; repeated notes are skipped, they neither count nor break."""
    n = len(d)
    rows, cols = np.nonzero(d)
    s = np.sign(d[rows, cols])
    new = np.ones(len(s), dtype=bool)
    new[1:] = (rows[1:] != rows[:-1]) | (s[1:] != s[:-1])
    first = np.flatnonzero(new)
    length = np.diff(np.append(first, len(s)))
    run_row = rows[first]
    runs = np.bincount(run_row, minlength=n)
    steps = np.bincount(rows, minlength=n)
    longest = np.zeros(n)
    if len(first):  # runs are ordered by row: one maximum per row's segment
        seg = np.flatnonzero(np.r_[True, run_row[1:] != run_row[:-1]])
        longest[run_row[seg]] = np.maximum.reduceat(length, seg)
    return [_safe_div(steps, runs), longest, _safe_div(runs - 1, steps - 1) * (steps > 1)], \
        ["run_mean", "run_max", "dir_changes"]


def _drift(w):
    n, L = w.shape
    b = max(min(DRIFT_BLOCK, L // 8), 1)
    means = w[:, :(L // b) * b].reshape(n, L // b, b).mean(axis=2)
    return [_row_slope(means), means.std(axis=1), np.ptp(means, axis=1)], \
        ["drift_slope", "drift_std", "drift_range"]


def _acf(w):
    n, L = w.shape
    x = w - w.mean(axis=1, keepdims=True)
    den = (x * x).sum(axis=1)
    X = [_safe_div((x[:, k:] * x[:, :-k]).sum(axis=1), den) if k < L else np.zeros(n) for k in ACF_LAGS]
    return X, [f"acf{k}" for k in ACF_LAGS]


def longrange_features(pitch_windows):
    """Long-range structure of (N, L >= 16) pitch windows: repetition, self-similarity, contour, drift."""
    w = _as_pitch(pitch_windows, LONGRANGE_MIN_LEN)
    d = np.diff(w, axis=1)
    X, names = [], []
    for f, args in ((_repetition, (w, d)), (_halves, (w, d)), (_contour, (d,)), (_drift, (w,)), (_acf, (w,))):
        x, nm = f(*args)
        X += x
        names += nm
    X += [_entropy_bits(_ngram_keys(w, 3, 7)), _entropy_bits(_ngram_keys(d + 128, 3, 8))]
    names += ["tri_entropy", "itri_entropy"]
    return np.nan_to_num(np.stack(X, axis=1).astype(np.float64)), tuple(names)


# ---------------------------------------------------------------- rhythm family

def _onset_groups(onset):
    """Chords: start mask (a note opens a new onset), onset-group id per note, groups per row."""
    start = np.ones(onset.shape, dtype=bool)
    start[:, 1:] = np.diff(onset, axis=1) > SAME_ONSET
    gid = np.cumsum(start, axis=1) - 1
    return start, gid, gid[:, -1] + 1


def _group_sizes(gid):
    """(N, L) notes per onset group, indexed by group id (0 past the last group)."""
    n, L = gid.shape
    return np.bincount((np.arange(n)[:, None] * L + gid).ravel(), minlength=n * L).reshape(n, L)


def _next_onset(onset, start, gid, ngroups):
    """Per note: the time to the next distinct onset, and whether there is one."""
    n, L = onset.shape
    table = np.zeros((n, L + 1))
    rows = np.broadcast_to(np.arange(n)[:, None], onset.shape)
    table[rows[start], gid[start]] = onset[start]
    has = gid + 1 < ngroups[:, None]
    return np.where(has, table[rows, gid + 1] - onset, 1.0), has


def _polyphony(onset, dur, start):
    """Mean notes sounding at each onset = notes begun by then - notes ended by then."""
    n = len(onset)
    o = onset - onset[:, :1]
    e = o + dur
    width = e.max() + 1.0  # shift each row into its own interval: one global sorted search
    shift = np.arange(n)[:, None] * width
    t = (o + shift)[start] + SAME_ONSET
    # both global ranks carry the same row * L offset, which cancels in the difference
    sounding = np.searchsorted((o + shift).ravel(), t, "right") \
        - np.searchsorted((np.sort(e, axis=1) + shift).ravel(), t, "right")
    p = np.zeros(o.shape)
    p[start] = sounding
    return _masked_mean(p, start)


def _beat_position(onset):
    """Category (index into POSITION_NAMES) of each onset's position within its beat."""
    g = np.mod(onset, 1.0) * GRID
    k = np.rint(g)
    off = np.abs(g - k) > GRID_TOL * GRID + 1e-9
    return np.where(off, len(POSITION_NAMES) - 1, _GRID_SLOT[k.astype(np.int64) % GRID])  # 0.999 -> 0


def rhythm_features(notes):
    """Rhythm of notes windows: IOIs, onset positions in the beat, durations, chords, density."""
    a = _as_notes(notes)
    onset, dur = a[:, :, 1], a[:, :, 2]
    L = onset.shape[1]
    start, gid, ngroups = _onset_groups(onset)
    ioi, m = np.diff(onset, axis=1), start[:, 1:]  # one IOI per onset after the first
    lioi = np.log2(np.where(m, ioi, 1.0))
    ioi_h = _row_hist(np.searchsorted(IOI_EDGES, ioi), m, len(IOI_CENTRES))
    ioi_ent = -(ioi_h * np.log2(np.where(ioi_h > 0, ioi_h, 1.0))).sum(axis=1)
    pos_h = _row_hist(_beat_position(onset), start, len(POSITION_NAMES))
    ld = np.log2(dur)
    dur_h = _row_hist(np.searchsorted(DUR_LOG2_EDGES, ld), np.ones_like(start), len(DUR_NAMES))
    nxt, has = _next_onset(onset, start, gid, ngroups)
    legato = _masked_mean(np.minimum(dur / nxt, LEGATO_CAP), has)
    overlap = _masked_mean((dur > nxt + SAME_ONSET).astype(float), has)
    sizes = _group_sizes(gid)
    chord_h = _row_hist(np.clip(sizes, 1, MAX_CHORD) - 1, np.arange(L)[None, :] < ngroups[:, None], MAX_CHORD)
    density = _safe_div(ngroups - 1, onset[:, -1] - onset[:, 0])
    X = np.column_stack([ioi_h, _masked_mean(lioi, m), _masked_std(lioi, m), ioi_ent, pos_h, dur_h,
                         ld.mean(axis=1), ld.std(axis=1), legato, overlap, chord_h, L / ngroups,
                         density, _polyphony(onset, dur, start)])
    names = IOI_NAMES + ("ioi_log2_mean", "ioi_log2_std", "ioi_entropy") + POSITION_NAMES + DUR_NAMES + \
        ("dur_log2_mean", "dur_log2_std", "legato", "overlap_next") + \
        tuple(f"chord{c}" for c in range(1, MAX_CHORD)) + (f"chord{MAX_CHORD}+", "notes_per_onset",
                                                          "onsets_per_beat", "polyphony")
    return np.nan_to_num(X.astype(np.float64)), names


# ---------------------------------------------------------------- dynamics family

def _onset_changes(vel, start):
    """Mean |change| and std of the change of the loudest velocity between successive onsets."""
    n, L = vel.shape
    first = np.flatnonzero(start.ravel())
    loud = np.maximum.reduceat(vel.ravel(), first)  # segments never cross rows: each row opens one
    row = first // L
    same = row[1:] == row[:-1]
    dv, r = np.diff(loud)[same], row[1:][same]
    cnt = np.bincount(r, minlength=n)
    mean_abs = _safe_div(np.bincount(r, np.abs(dv), minlength=n), cnt)
    mu = _safe_div(np.bincount(r, dv, minlength=n), cnt)
    var = _safe_div(np.bincount(r, dv * dv, minlength=n), cnt) - mu * mu
    return mean_abs, np.sqrt(np.maximum(var, 0.0))


def _difference(x, m1, m2) -> np.ndarray:
    """Mean of x over m1 minus over m2; 0 unless both masks are non-empty."""
    both = m1.any(axis=1) & m2.any(axis=1)
    return np.where(both, _masked_mean(x, m1) - _masked_mean(x, m2), 0.0)


def dynamics_features(notes):
    """Dynamics of notes windows: velocity level, spread, changes, pitch relation, chord accent, slope."""
    a = _as_notes(notes)
    pitch, vel = a[:, :, 0], a[:, :, 3]
    start, gid, _ = _onset_groups(a[:, :, 1])
    p5, p95 = np.percentile(vel, [5, 95], axis=1)
    bins = np.clip(np.floor((vel - 1) * VEL_BINS / 127), 0, VEL_BINS - 1).astype(np.int64)
    hist = _row_hist(bins, np.ones(vel.shape, dtype=bool), VEL_BINS)
    change, change_std = _onset_changes(vel, start)
    in_chord = np.take_along_axis(_group_sizes(gid), gid, axis=1) >= 2
    X = np.column_stack([
        vel.mean(axis=1), vel.std(axis=1), vel.min(axis=1), vel.max(axis=1), p95 - p5, hist,
        change, change_std, _row_corr(vel, pitch),
        _difference(vel, pitch < MIDDLE_C, pitch >= MIDDLE_C),
        _difference(vel, in_chord, ~in_chord), _row_slope(vel)])
    names = ("vel_mean", "vel_std", "vel_min", "vel_max", "vel_range") + \
        tuple(f"vel_h{i}" for i in range(VEL_BINS)) + \
        ("vel_change", "vel_change_std", "vel_pitch_corr", "vel_low_minus_high", "chord_accent", "vel_slope")
    return np.nan_to_num(X.astype(np.float64)), names


FAMILIES = {"longrange": longrange_features, "rhythm": rhythm_features, "dynamics": dynamics_features}


# ---------------------------------------------------------------- longest copied run

def _suffix_ranks(s, end, depth: int) -> list[np.ndarray]:
    """Prefix doubling: ranks[k][p] orders the first 2**k symbols of the suffix at p exactly
    (equal rank = equal strings); a suffix stops at end[p], and a shorter one sorts first."""
    pos = np.arange(len(s))
    r = np.unique(s, return_inverse=True)[1].astype(np.int64).ravel() + 1  # 0 = past the end
    ranks, k = [r.astype(np.int32)], 1
    while k < depth and r.max() < len(r):  # all distinct: longer prefixes order nothing new
        nxt = np.where(pos + k < end, r[np.minimum(pos + k, len(r) - 1)], 0)
        key = r * (r.max() + 1) + nxt
        order = np.argsort(key)
        sk = key[order]
        r = np.empty_like(r)
        r[order] = np.cumsum(np.r_[True, sk[1:] != sk[:-1]])
        ranks.append(r.astype(np.int32))
        k *= 2
    return ranks


def _common_prefix(ranks, end, a, b, cap: int) -> np.ndarray:
    """Exact length of the common prefix of the suffixes at a and b (capped at cap), built
    greedily from the largest power of two down, as with a sparse table."""
    top = len(end) - 1
    n = np.zeros(len(a), dtype=np.int64)
    for lev in reversed(range(len(ranks))):
        pa, pb = a + n, b + n
        r = ranks[lev]
        eq = (pa < end[a]) & (pb < end[b]) & (r[np.minimum(pa, top)] == r[np.minimum(pb, top)])
        n += eq * (1 << lev)
    # equal ranks of two suffixes cut short by their ends can overshoot: cap at what is left
    return np.minimum(np.minimum(n, cap), np.minimum(end[a] - a, end[b] - b))


def _lcp_with_last_marked(h, marked, cap: int) -> np.ndarray:
    """In suffix order with h[k] = common prefix of suffixes k-1 and k: for each k, the common
    prefix with the nearest marked suffix before it = min of h since then (0 if none).
    A segmented running minimum, done as one running maximum: segment ids dominate the values."""
    seg = np.cumsum(marked)
    big = cap + 2
    run = np.maximum.accumulate(seg * big + np.where(marked, 0, cap + 1 - h)) - seg * big
    return np.where(seg > 0, cap + 1 - run, 0)


def longest_copied_run(pitch_windows, train_sequences, max_len=None) -> np.ndarray:
    """Per window, the length of the longest contiguous run of its pitches that occurs
    verbatim in any one training sequence (runs never cross sequences); (N,) int64.

    Exact, without hashing: the suffixes of all training sequences and all windows are
    sorted together by prefix doubling on their first min(L, max_len) notes (a suffix
    ends with its own sequence or window). The longest training match of a window suffix
    is its common prefix with the nearest training suffix before or after it in that
    order, which is the minimum of the adjacent common prefixes in between. Cost:
    log2(L) sorts of (training + window) notes, whatever the windows copy.
    """
    w = _as_pitch(pitch_windows)
    n_win, L = w.shape
    cap = L if max_len is None else min(int(max_len), L)
    seqs = [s for s in (np.asarray(s, dtype=np.int64).ravel() for s in train_sequences) if len(s)]
    if not seqs or cap < 1:
        return np.zeros(n_win, dtype=np.int64)
    lens = [len(s) for s in seqs] + [L] * n_win
    end = np.repeat(np.cumsum(lens), lens)  # one past the last note of each note's own sequence
    s = np.concatenate(seqs + [w.ravel()])
    train = np.arange(len(s)) < len(s) - w.size
    ranks = _suffix_ranks(s, end, cap)
    order = np.argsort(ranks[-1], kind="stable")
    h = np.zeros(len(s), dtype=np.int64)
    h[1:] = _common_prefix(ranks, end, order[:-1], order[1:], cap)
    marked = train[order]
    before = _lcp_with_last_marked(h, marked, cap)
    after = _lcp_with_last_marked(np.r_[0, h[::-1][:-1]], marked[::-1], cap)[::-1]
    best = np.empty(len(s), dtype=np.int64)
    best[order] = np.maximum(before, after)
    return best[~train].reshape(n_win, L).max(axis=1)
