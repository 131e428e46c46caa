"""Pictures of generated music. matplotlib is an optional extra, imported lazily."""
from __future__ import annotations

from .music import NOTE_NAMES

BLACK_KEYS = {1, 3, 6, 8, 10}


def note_name(pitch: int) -> str:
    """MIDI pitch -> scientific pitch name (60 -> 'C4')."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def piano_roll(notes, path, title: str = "", beats_per_bar: int = 4, mark: float | None = None) -> None:
    """Draw notes (midigan.arrange.Note: start/duration in beats, pitch, velocity) as a
    piano roll PNG at `path`: pitch up the keyboard (C's named), time in bars and beats,
    velocity as colour and opacity; `mark`: a beat to draw a red line at (where a prime ends)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    notes = list(notes)
    lo, hi, end_bar = _extent(notes, beats_per_bar)
    width = min(24.0, max(8.0, 1.6 * end_bar / beats_per_bar + 2))
    height = min(12.0, max(4.5, 0.13 * (hi - lo + 1) + 1.5))
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    try:
        _draw_grid(ax, lo, hi, end_bar, beats_per_bar)
        _draw_notes(fig, ax, notes)
        if mark is not None:
            ax.axvline(mark, color="#c0392b", lw=1.6, zorder=3)
        _label_axes(ax, lo, hi, end_bar, beats_per_bar)
        ax.set_title(f"{title}  ({len(notes)} notes)" if title else f"{len(notes)} notes", loc="left")
        fig.tight_layout()
        fig.savefig(str(path), format="png")
    finally:
        plt.close(fig)


def _extent(notes, beats_per_bar: int) -> tuple[int, int, float]:
    """(lowest key, highest key, last bar line in beats) to show: two octaves at least, so a
    narrow line still has context."""
    if notes:
        lo, hi = min(n.pitch for n in notes), max(n.pitch for n in notes)
        end = max(n.start + n.duration for n in notes)
    else:
        lo, hi, end = 60, 72, float(beats_per_bar)
    lo, hi = max(0, lo - 2), min(127, hi + 2)
    if hi - lo < 24:
        mid = (lo + hi) // 2
        lo, hi = max(0, mid - 12), min(127, mid + 12)
    return lo, hi, max(1, -(-end // beats_per_bar)) * beats_per_bar


def _draw_grid(ax, lo: int, hi: int, end_bar: float, beats_per_bar: int) -> None:
    """Keyboard rows (darker for black keys, a line under every C), bar and beat lines."""
    for p in range(lo, hi + 1):
        if p % 12 in BLACK_KEYS:
            ax.axhspan(p - 0.5, p + 0.5, color="#eceff3", zorder=0, lw=0)
        if p % 12 == 0:
            ax.axhline(p - 0.5, color="#b9c0c9", lw=0.8, zorder=0.5)
    for beat in range(int(end_bar) + 1):
        bar = beat % beats_per_bar == 0
        ax.axvline(beat, color="#8a929c" if bar else "#dde1e6", lw=1.0 if bar else 0.5, zorder=0.5)


def _draw_notes(fig, ax, notes) -> None:
    """One rectangle a note, coloured by velocity (louder = more opaque), and the colour bar."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    cmap, norm = plt.get_cmap("viridis"), Normalize(1, 127)
    rects, colors = [], []
    for n in notes:
        rects.append(Rectangle((n.start, n.pitch - 0.42), max(n.duration, 0.02), 0.84))
        c = list(cmap(norm(n.velocity)))
        c[3] = 0.45 + 0.55 * n.velocity / 127
        colors.append(c)
    if rects:
        ax.add_collection(PatchCollection(rects, facecolors=colors, edgecolors="#1f2a36",
                                          linewidths=0.4, zorder=2))
    cb = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.01, fraction=0.025)
    cb.set_label("velocity")


def _label_axes(ax, lo: int, hi: int, end_bar: float, beats_per_bar: int) -> None:
    """C's named up the keyboard (E and G too when few octaves show); bar numbers, 24 at most."""
    ax.set_xlim(0, end_bar)
    ax.set_ylim(lo - 0.5, hi + 0.5)
    cs = [p for p in range(lo, hi + 1) if p % 12 == 0]
    if len(cs) < 4:
        cs = [p for p in range(lo, hi + 1) if p % 12 in (0, 4, 7)]
    ax.set_yticks(cs)
    ax.set_yticklabels([note_name(p) for p in cs])
    bars = list(range(0, int(end_bar) + 1, beats_per_bar))
    step = max(1, len(bars) // 24)
    ax.set_xticks(bars[::step])
    ax.set_xticklabels([str(b // beats_per_bar + 1) for b in bars[::step]])
    ax.set_xlabel(f"bar ({beats_per_bar} beats each)")
    ax.set_ylabel("pitch")
    ax.tick_params(length=0)
    for sp in ax.spines.values():
        sp.set_visible(False)


def _smooth(steps, values, n: int = 25):
    """(steps, moving average) over the steps where a value was logged."""
    import numpy as np

    s, y = np.asarray(steps, float), np.asarray(values, float)
    m = ~np.isnan(y)
    s, y = s[m], y[m]
    if len(y) < n:
        return s, y
    return s[n - 1:], np.convolve(y, np.ones(n) / n, mode="valid")


def training_curves(log: dict, out) -> None:
    """The paper's two figures from a run's log (training/log.read_log): losses.png (likelihood,
    held out and in training, and the discriminator's loss) and accuracy.png (the
    discriminator's accuracy on real and generated windows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from pathlib import Path

    s = np.asarray(log["step"], float)
    if not len(s):
        return
    for name, keys, ylabel in (
            ("losses.png", (("nll", "generator NLL per note (train)"),
                            ("val_nll", "NLL per note (validation; a latent's bound)"),
                            ("g_adv", "generator (adversarial)"), ("d_loss", "discriminator")), "loss"),
            ("accuracy.png", (("acc_real", "real windows"), ("acc_fake", "generated windows"),
                              ("val_acc", "balanced, validation")), "discriminator accuracy")):
        fig, ax = plt.subplots(figsize=(8, 4))
        for k, label in keys:
            y = np.asarray(log[k], float)
            if np.any(~np.isnan(y)):
                if k.startswith("val"):
                    m = ~np.isnan(y)
                    ax.plot(s[m], y[m], "o-", label=label)
                else:
                    ax.plot(*_smooth(s, y), label=label)
        ax.set(xlabel="step", ylabel=ylabel, xlim=(0, s.max()))
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        fig.savefig(Path(out) / name, dpi=100)
        plt.close(fig)
