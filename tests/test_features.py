"""Evaluation-only feature families on hand-made inputs with known answers."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from midigan import features as F

ROOT = Path(__file__).resolve().parent.parent


def notes(onsets, durations=0.25, pitches=None, velocities=80.0):
    """One (L, 4) notes window; scalars broadcast, pitches default to a C-major walk."""
    onsets = np.asarray(onsets, dtype=float)
    if pitches is None:
        pitches = 60 + np.array([0, 2, 4, 5, 7, 9, 11])[np.arange(len(onsets)) % 7]
    cols = [np.broadcast_to(np.asarray(c, dtype=float), onsets.shape) for c in (pitches, onsets, durations, velocities)]
    return np.stack(cols, axis=1)


def feats(family, x) -> dict[str, float]:
    X, names = F.FAMILIES[family](x)
    assert X.shape == (1, len(names)) and X.dtype == np.float64 and np.isfinite(X).all()
    return dict(zip(names, X[0]))


# ---------------------------------------------------------------- shapes and the import rule

@pytest.mark.parametrize("family", sorted(F.FAMILIES))
def test_family_shapes_and_names(family):
    rng = np.random.default_rng(0)
    if family == "longrange":
        x = rng.integers(21, 109, (5, 64))
    else:
        x = np.stack([notes(np.cumsum(rng.choice([0, 0.25, 0.5], 40)), velocities=rng.integers(1, 128, 40))
                      for _ in range(5)])
    X, names = F.FAMILIES[family](x)
    assert X.shape == (5, len(names)) and len(set(names)) == len(names)
    assert all(isinstance(n, str) and n for n in names) and np.isfinite(X).all()
    assert np.allclose(F.FAMILIES[family](x[2:3])[0], X[2:3])  # a window's features depend on it only


def test_numpy_only_and_never_imported_by_training():
    code = "import sys, midigan.features; assert not {'torch', 'sklearn'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    for path in (ROOT / "midigan" / "training").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mods = [f"{node.module or ''}.{a.name}" for a in node.names] + [node.module or ""]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            assert not any(m.split(".")[-1] == "features" or ".features." in m + "." for m in mods), path


# ---------------------------------------------------------------- rhythm

def test_constant_sixteenths():
    f = feats("rhythm", notes(np.arange(64) * 0.25, 0.25))
    assert f["ioi_1/4"] == 1 and sum(f[n] for n in F.IOI_NAMES) == pytest.approx(1)
    assert f["ioi_log2_mean"] == pytest.approx(-2) and f["ioi_log2_std"] == 0 and f["ioi_entropy"] == 0
    for p in ("pos_0", "pos_1/4", "pos_1/2", "pos_3/4"):
        assert f[p] == pytest.approx(0.25)
    assert f["pos_off"] == 0 and f["pos_grid"] == 0
    assert f["chord1"] == 1 and f["notes_per_onset"] == 1
    assert f["onsets_per_beat"] == pytest.approx(4)
    assert f["dur_1/4"] == 1 and f["dur_log2_mean"] == pytest.approx(-2)
    assert f["legato"] == pytest.approx(1) and f["overlap_next"] == 0 and f["polyphony"] == pytest.approx(1)


def test_block_chords():
    x = notes(np.repeat(np.arange(20.0), 3), 1.0, np.tile([60, 64, 67], 20))
    f = feats("rhythm", x)
    assert f["chord3"] == 1 and f["notes_per_onset"] == pytest.approx(3)
    assert f["ioi_1"] == 1 and f["pos_0"] == 1 and f["onsets_per_beat"] == pytest.approx(1)
    assert f["polyphony"] == pytest.approx(3)  # notes ending on the next onset no longer sound
    held = feats("rhythm", notes(np.repeat(np.arange(20.0), 3), 2.0, np.tile([60, 64, 67], 20)))
    assert held["overlap_next"] == pytest.approx(57 / 57) and held["legato"] == pytest.approx(2)
    assert held["polyphony"] == pytest.approx((3 + 19 * 6) / 20)


def test_triplets():
    f = feats("rhythm", notes(np.arange(60) / 3, 1 / 3))
    assert f["ioi_1/3"] == pytest.approx(1)
    assert f["pos_0"] == f["pos_1/3"] == f["pos_2/3"] == pytest.approx(1 / 3)
    assert feats("rhythm", notes(np.arange(60) * 2 / 3))["ioi_2/3"] == pytest.approx(1)
    six = feats("rhythm", notes(np.arange(60) / 6))
    assert six["ioi_1/6"] == pytest.approx(1)
    assert six["pos_grid"] == pytest.approx(2 / 6)  # 1/6 and 5/6: on the 1/24 grid, no named slot


def test_off_grid_onsets():
    assert feats("rhythm", notes(np.arange(40) * 0.5 + 0.013))["pos_off"] == 1
    near = feats("rhythm", notes(np.arange(40) * 0.5 + 0.005))  # within 1/96 beat: still on the grid
    assert near["pos_off"] == 0 and near["pos_0"] == near["pos_1/2"] == pytest.approx(0.5)
    assert feats("rhythm", notes(np.arange(40) * 0.5 - 0.005))["pos_0"] == pytest.approx(0.5)  # wraps


# ---------------------------------------------------------------- dynamics

def test_constant_velocity():
    f = feats("dynamics", notes(np.arange(32) * 0.5, velocities=64))
    assert f["vel_mean"] == 64 and f["vel_std"] == 0 and f["vel_range"] == 0
    assert f["vel_change"] == 0 and f["vel_change_std"] == 0 and f["vel_slope"] == 0
    assert f["vel_pitch_corr"] == 0 and f["chord_accent"] == 0  # degenerate: defined as 0
    assert f["vel_h3"] == 1  # 64 lies in the fourth of eight bins over 1..127


def test_velocity_follows_pitch_and_slope():
    p = np.arange(40, 80)
    f = feats("dynamics", notes(np.arange(40) * 0.5, pitches=p, velocities=p))
    assert f["vel_pitch_corr"] == pytest.approx(1)
    assert f["vel_slope"] == pytest.approx(1) and f["vel_change"] == pytest.approx(1)
    assert f["vel_low_minus_high"] == pytest.approx(np.mean(p[p < 60]) - np.mean(p[p >= 60]))
    assert f["vel_min"] == 40 and f["vel_max"] == 79


def test_louder_chords():
    onsets = np.array([0, 0, 0, 1, 2, 2, 2, 3], dtype=float)
    vel = np.array([100, 100, 100, 80, 100, 100, 100, 80])
    f = feats("dynamics", notes(onsets, 1.0, [60, 64, 67, 65, 60, 64, 67, 65], vel))
    assert f["chord_accent"] == pytest.approx(20)
    assert f["vel_change"] == pytest.approx(20)  # loudest of each onset: 100, 80, 100, 80


# ---------------------------------------------------------------- longrange

def test_repeated_motif():
    motif = [60, 62, 64, 65, 67, 65, 64, 62]
    f = feats("longrange", np.array([motif * 50]))
    assert f["rep4"] == pytest.approx(1 - 8 / 397) and f["rep6"] > 0.97 and f["irep4"] > 0.97
    for lag in F.REPEAT_LAGS:
        assert f[f"lag{lag}"] == 1 and f[f"ilag{lag}"] == 1
    assert f["tri_entropy"] == pytest.approx(3, abs=0.01)  # 8 trigrams, nearly equally often


def test_random_pitches_repeat_little():
    X, names = F.longrange_features(np.random.default_rng(1).integers(21, 109, (20, 400)))
    f = dict(zip(names, X.mean(axis=0)))
    assert f["rep4"] < 0.01 and f["irep4"] < 0.01 and f["lag24"] < 0.05 and f["ilag48"] < 0.05
    assert abs(f["acf1"]) < 0.1 and abs(f["drift_slope"]) < 1 and f["tri_entropy"] > 8


def test_rising_line():
    line = 21 + np.arange(400) * 87 // 399  # 21..108 with repeated notes, which must not break the run
    f = feats("longrange", line)
    assert f["drift_slope"] > 10 and f["drift_range"] > 70
    assert f["run_max"] == 87 and f["run_mean"] == 87 and f["dir_changes"] == 0
    assert f["acf1"] > 0.95


def test_identical_halves_and_alternation():
    half = np.random.default_rng(2).integers(40, 90, 200)
    f = feats("longrange", np.concatenate([half, half]))
    assert f["half_pc_corr"] == pytest.approx(1) and f["half_iv_overlap"] == pytest.approx(1)
    assert f["half_dmean"] == 0 and f["half_dstd"] == 0
    alt = feats("longrange", np.array([60, 67] * 200))
    assert alt["acf1"] == pytest.approx(-1, abs=0.01) and alt["acf2"] == pytest.approx(1, abs=0.01)
    assert alt["dir_changes"] == 1 and alt["run_max"] == 1


def test_short_windows():
    f = feats("longrange", np.arange(60, 76))  # L = 16: lags beyond the window are 0
    assert f["lag24"] == f["ilag48"] == f["acf16"] == 0 and f["acf8"] != 0
    with pytest.raises(ValueError):
        F.longrange_features(np.arange(60, 75))


# ---------------------------------------------------------------- degenerate inputs

def test_degenerate_inputs_are_finite():
    const = feats("longrange", np.full(400, 64))
    assert const["rep4"] > 0.99 and const["acf1"] == 0 and const["run_max"] == 0
    assert const["tri_entropy"] == 0 and const["half_pc_corr"] == 1  # equal one-hot halves
    assert const["drift_slope"] == 0 and const["half_iv_overlap"] == 1
    one = notes([3.0], 1.0, [60], 90)
    for fam in ("rhythm", "dynamics"):
        assert np.isfinite(F.FAMILIES[fam](one)[0]).all()
    chord = feats("rhythm", notes([2.0] * 4, 1.0, [60, 64, 67, 72]))
    assert chord["onsets_per_beat"] == 0 and chord["chord4"] == 1 and chord["ioi_log2_std"] == 0
    assert sum(chord[n] for n in F.IOI_NAMES) == 0  # no IOI at all
    d = feats("dynamics", notes([0.0, 0.0], 1.0, [60, 60], [70, 90]))
    assert d["vel_pitch_corr"] == 0 and d["vel_low_minus_high"] == 0 and d["vel_change"] == 0
    with pytest.raises(ValueError):
        F.rhythm_features(notes([1.0, 0.0]))  # onsets going backwards
    with pytest.raises(ValueError):
        F.rhythm_features(notes([0.0, 1.0], 0.0))


# ---------------------------------------------------------------- longest copied run

def brute_longest(window, seqs):
    best = 0
    for s in seqs:
        prev = np.zeros(len(s) + 1, dtype=int)
        for p in window:
            cur = np.zeros_like(prev)
            cur[1:] = np.where(s == p, prev[:-1] + 1, 0)
            best, prev = max(best, cur.max()), cur
    return best


def test_planted_run_and_chance():
    rng = np.random.default_rng(3)
    seqs = [rng.integers(21, 109, int(k)) for k in rng.integers(500, 3000, 40)]
    win = rng.integers(21, 109, (3, 100))
    src, a, b = seqs[7], 200, 30
    win[0, b:b + 37] = src[a:a + 37]
    win[0, b - 1], win[0, b + 37] = (src[a - 1] + 1 - 21) % 88 + 21, (src[a + 37] + 1 - 21) % 88 + 21
    r = F.longest_copied_run(win, seqs)
    assert r[0] == 37 and r.dtype == np.int64
    assert 1 <= r[1] <= 5 and 1 <= r[2] <= 5  # chance matches only
    assert F.longest_copied_run(win, seqs, max_len=10)[0] == 10
    assert (F.longest_copied_run(win, []) == 0).all()


def test_whole_sequences_and_no_crossing():
    rng = np.random.default_rng(4)
    A, B, C = rng.integers(21, 109, 50), rng.integers(21, 109, 60), rng.integers(21, 109, 300)
    filler = rng.integers(21, 109, 100)
    whole = np.concatenate([filler[:10], A, filler[10:30]])  # contains A entirely
    capped = C[100:180]  # a window inside a longer sequence: capped at L
    across = np.concatenate([A[-20:], B[:30], filler[:30]])  # end of A then start of B
    r = F.longest_copied_run(np.stack([whole, capped, across]), [A, B, C])
    assert list(r) == [50, 80, 30]


def test_matches_brute_force_on_a_small_alphabet():
    rng = np.random.default_rng(5)  # three pitches: long chance runs and many equal n-grams
    seqs = [rng.integers(60, 63, int(k)) for k in rng.integers(5, 80, 12)]
    seqs[3] = np.full(40, 61)
    wins = rng.integers(60, 63, (30, 25))
    wins[0] = 61
    want = [brute_longest(w, seqs) for w in wins]
    assert list(F.longest_copied_run(wins, seqs)) == want
    assert list(F.longest_copied_run(wins, seqs, max_len=6)) == [min(x, 6) for x in want]
