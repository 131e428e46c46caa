"""A neural classifier two-sample test (C2ST): how well can a fresh network tell two sets of windows apart?

This is the headline figure of `midigan evaluate`. Each call initialises a small 1-D CNN from
scratch, trains it to tell windows of `a` from windows of `b`, and reports its accuracy on windows
it did not train on: 0.5 = indistinguishable, 1.0 = always told apart.

Why this shape:

- A fresh network per call, never one trained alongside the generator (a GAN's own discriminator
  has been beaten by construction, so its verdict says nothing), and it learns from raw notes,
  not from hand-picked musical statistics a generator could match one by one.
- Splits are by group (the piece or generated stream a window came from), not by window: windows
  of one piece share register, key and tempo, and a net that has seen a piece's other windows
  recognises the piece instead of judging the music, which lifts every score.
- Accuracy is balanced (per class, then averaged): grouped splits leave unequal numbers of test
  windows per class, and plain accuracy would reward guessing the larger one.
- Several splits, each with its own freshly seeded net, give the mean and its standard error, so
  a difference between two models can be told from the judge's own noise.

Inputs are note windows (N, L, 4) of (pitch, onset in beats, duration in beats, velocity), or
(N, L) integer pitches for the pitch-only test. Only numpy is needed to import this module;
torch is imported inside `neural_c2st` (the runtime ships without it).
"""
from __future__ import annotations

import time

import numpy as np

PITCH_LOW, PITCH_HIGH = 21, 108
MIN_LENGTH = 8
MIN_WINDOWS = 10
EPOCHS = 12
BATCH = 64
CHANNELS = 40
DILATIONS = (1, 2, 4)
PC_EMBED = 4  # pitch class: key and scale, the same in every octave
INTERVAL_EMBED = 8
MAX_INTERVAL = 24  # semitones; wider leaps share the outermost embedding
TIMED_CHANNELS = 5  # inter-onset interval, sin and cos of the beat position, duration, velocity
GRID = 1 / 48  # finest note value written, in beats: keeps the log of a zero IOI or duration finite


def _windows(x, name: str) -> np.ndarray:
    """x as a float64 (N, L, 4) or (N, L) array, checked."""
    w = np.asarray(x)
    if w.ndim not in (2, 3) or (w.ndim == 3 and w.shape[2] != 4):
        raise ValueError(f"{name}: expected windows of shape (N, L, 4) or (N, L), got {w.shape}")
    if w.ndim == 2 and not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"{name}: (N, L) windows must be integer pitches, got {w.dtype}")
    w = w.astype(np.float64)
    if w.shape[1] < MIN_LENGTH:
        raise ValueError(f"{name}: windows need at least {MIN_LENGTH} notes, got {w.shape[1]}")
    if w.shape[0] < MIN_WINDOWS:
        raise ValueError(f"{name}: need at least {MIN_WINDOWS} windows, got {w.shape[0]}")
    if not np.isfinite(w).all():
        raise ValueError(f"{name}: windows contain NaN or infinite values")
    pitch = w if w.ndim == 2 else w[..., 0]
    if pitch.min() < PITCH_LOW or pitch.max() > PITCH_HIGH:
        raise ValueError(f"{name}: pitches must lie in {PITCH_LOW}..{PITCH_HIGH}")
    return w


def _groups(g, n: int, name: str) -> np.ndarray | None:
    if g is None:
        return None
    g = np.asarray(g)
    if g.shape != (n,):
        raise ValueError(f"{name}: expected {n} group ids, got shape {g.shape}")
    return g


def features(w: np.ndarray, timed: bool) -> tuple[np.ndarray, np.ndarray]:
    """The net's raw inputs: key indices (N, L) int64 and per-note channels (N, C, L) float32.

    Channels 0 and 1 are the pitch height and the signed interval to the previous note (first
    note 0), in octaves; with `timed` also the inter-onset interval and the duration (log2 of
    beats, so a chord's 0 and a long rest stay on one scale), the position within the beat on the
    unit circle (so 0.99 sits next to 0.0), and velocity / 127.
    """
    pitch = w if w.ndim == 2 else w[..., 0]
    keys = np.rint(pitch).astype(np.int64) - PITCH_LOW
    step = np.diff(pitch, axis=1, prepend=pitch[:, :1]) / 12
    chans = [(pitch - 60) / 12, step]
    if timed:
        onset, dur, vel = w[..., 1], w[..., 2], w[..., 3]
        # Negative IOIs (an unsorted window) or durations would break the log; they count as zero.
        ioi = np.clip(np.diff(onset, axis=1, prepend=onset[:, :1]), 0, None)
        phase = 2 * np.pi * np.mod(onset, 1.0)
        chans += [np.log2(ioi + GRID) / 4, np.sin(phase), np.cos(phase),
                  np.log2(np.clip(dur, 0, None) + GRID) / 4, vel / 127]
    return keys, np.stack(chans, axis=1).astype(np.float32)


def _standardised(chans: np.ndarray) -> np.ndarray:
    """Each channel to mean 0, spread 1 over all windows of both sides (labels unused): a velocity
    spread of 4 against 8 is 0.03 against 0.06 after /127, too faint for a fresh net to pick up."""
    spread = chans.std(axis=(0, 2), keepdims=True)
    return (chans - chans.mean(axis=(0, 2), keepdims=True)) / np.where(spread > 0, spread, 1)


def _build(torch, timed: bool):
    """A fresh judge: pitch-class and interval embeddings + channels -> dilated convs (batch norm,
    ReLU) -> mean and max pool -> 1 logit. With dilations 1, 2, 4 each note sees 29 notes around it.

    Pitch enters as height (a channel), pitch class and interval, not as one embedding per key: a
    net with 88 key vectors learns the registers of its training pieces and judges real against
    within-window shuffled piano windows (pitch only) at 0.80; this one at 0.93."""
    nn = torch.nn

    class Judge(nn.Module):
        def __init__(self):
            super().__init__()
            self.pitch_class = nn.Embedding(12, PC_EMBED)
            self.interval = nn.Embedding(2 * MAX_INTERVAL + 1, INTERVAL_EMBED)
            c_in = PC_EMBED + INTERVAL_EMBED + 2 + (TIMED_CHANNELS if timed else 0)
            layers = []
            for i, dilation in enumerate(DILATIONS):
                # Batch norm: without it, faint differences (a velocity spread of 5 against 4)
                # are still unlearnt after twice the epochs.
                layers += [nn.Conv1d(c_in if i == 0 else CHANNELS, CHANNELS, 5, dilation=dilation,
                                     padding=2 * dilation), nn.BatchNorm1d(CHANNELS), nn.ReLU()]
            self.convs = nn.Sequential(*layers)
            self.out = nn.Linear(2 * CHANNELS, 1)

        def forward(self, keys, chans):
            step = torch.diff(keys, dim=1, prepend=keys[:, :1]).clamp(-MAX_INTERVAL, MAX_INTERVAL)
            codes = [self.pitch_class((keys + PITCH_LOW) % 12), self.interval(step + MAX_INTERVAL)]
            x = torch.cat([c.transpose(1, 2) for c in codes] + [chans], dim=1)
            h = self.convs(x)
            return self.out(torch.cat([h.mean(2), h.amax(2)], dim=1)).squeeze(1)

    return Judge()


def _test_mask(groups, n: int, rng) -> tuple[np.ndarray, bool]:
    """Which of one side's n windows are held out: a third of its groups, or of its windows when
    it has fewer than two groups (then False: the split is not grouped)."""
    if groups is not None and len(np.unique(groups)) >= 2:
        _, labels = np.unique(groups, return_inverse=True)
        grouped = True
    else:
        labels, grouped = np.arange(n), False
    k = labels.max() + 1
    held = rng.permutation(k)[:max(1, round(k / 3))]
    return np.isin(labels, held), grouped


def _train(torch, net, keys, chans, y, epochs: int) -> None:
    """Adam on BCE in batches of 64 for a fixed number of epochs, one-cycle learning rate (a short
    warm-up, then annealed to zero): close to converged on easy problems at this budget."""
    n = len(y)
    # Grouped splits leave the classes unequal in the training set: weight them back to equal,
    # so the net gains nothing by leaning toward the larger one.
    share = y.mean()
    weight = torch.where(y > 0, 0.5 / share, 0.5 / (1 - share))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    steps = epochs * -(-n // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.2)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(n).split(BATCH):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(keys[idx], chans[idx]), y[idx], weight=weight[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()


def _balanced_accuracy(torch, net, keys, chans, y) -> float:
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(k, c) for k, c in zip(keys.split(512), chans.split(512))])
    right = (logits > 0) == (y > 0)
    return 0.5 * (right[y == 0].double().mean().item() + right[y == 1].double().mean().item())


def _one_split(torch, keys, chans, y, test, timed: bool, epochs: int, seed: int) -> float:
    """Train a fresh net on the windows outside `test`, return its balanced accuracy on `test`."""
    torch.manual_seed(seed)  # both the initial weights and the batch order
    net = _build(torch, timed)
    train = torch.from_numpy(~test)
    _train(torch, net, keys[train], chans[train], y[train], epochs)
    held = torch.from_numpy(test)
    return _balanced_accuracy(torch, net, keys[held], chans[held], y[held])


def _prepare(a, b, groups_a, groups_b, timed: bool):
    """Checked inputs: (a, b, groups_a, groups_b), the windows reduced to pitches unless timed."""
    a, b = _windows(a, "a"), _windows(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b windows differ in length: {a.shape[1]} vs {b.shape[1]}")
    if timed and (a.ndim == 2 or b.ndim == 2):
        raise ValueError("timed=True needs (N, L, 4) note windows; (N, L) pitches allow timed=False only")
    if not timed:
        a, b = (w if w.ndim == 2 else w[..., 0] for w in (a, b))
    return a, b, _groups(groups_a, len(a), "groups_a"), _groups(groups_b, len(b), "groups_b")


def neural_c2st(a, b, groups_a=None, groups_b=None, *, timed: bool = True, splits: int = 3,
                seed: int = 0, epochs: int = EPOCHS, threads: int = 1) -> dict:
    """Balanced held-out accuracy of fresh small CNNs telling windows of `a` from windows of `b`.

    a, b: (N, L, 4) note windows (pitch, onset, duration, velocity), or (N, L) integer pitches
    (then timed=False). groups_a, groups_b: a group id per window (piece or stream); windows
    of one group never sit on both sides of a split. Without them, or with fewer than two
    groups on a side, that side's windows are split at random and "grouped" is False.
    The larger side is subsampled to the smaller's size. Each of `splits` splits holds out a third
    of each side's groups and trains a fresh net (seeded) on the rest for `epochs` epochs.

    Returns {"accuracy", "se" (over splits), "per_split", "n" (windows per side), "timed",
    "grouped", "seconds"}. Same inputs and seed, same result.
    """
    start = time.perf_counter()
    if splits < 2:
        raise ValueError(f"splits must be at least 2 (for a standard error), got {splits}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    a, b, groups_a, groups_b = _prepare(a, b, groups_a, groups_b, timed)
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    pick_a, pick_b = (np.sort(rng.choice(len(w), n, replace=False)) for w in (a, b))
    groups_a = None if groups_a is None else groups_a[pick_a]
    groups_b = None if groups_b is None else groups_b[pick_b]
    keys, chans = features(np.concatenate([a[pick_a], b[pick_b]]), timed)
    y = np.r_[np.zeros(n), np.ones(n)].astype(np.float32)

    import torch

    keys, chans, y = torch.from_numpy(keys), torch.from_numpy(_standardised(chans)), torch.from_numpy(y)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    per_split, grouped = [], True
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's torch random state stays as it was
            for s in range(splits):
                (held_a, ok_a), (held_b, ok_b) = _test_mask(groups_a, n, rng), _test_mask(groups_b, n, rng)
                grouped = grouped and ok_a and ok_b
                per_split.append(_one_split(torch, keys, chans, y, np.r_[held_a, held_b], timed, epochs,
                                            seed * 1009 + s))
    finally:
        torch.set_num_threads(before)
    acc = np.array(per_split)
    return {"accuracy": float(acc.mean()), "se": float(acc.std(ddof=1) / np.sqrt(splits)),
            "per_split": [float(x) for x in acc], "n": n, "timed": timed, "grouped": grouped,
            "seconds": time.perf_counter() - start}
