"""Pitch-window metrics and baselines on hand-made sequences with known answers."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from midigan import baselines as B
from midigan import metrics as M

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "piano-midi-de"
C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


# ---------------------------------------------------------------- per-window features

def test_c_major_scale_is_fully_consistent():
    w = np.array([C_MAJOR * 4])
    assert M.scale_consistency(w)[0] == 1.0
    # A minor and harmonic minor fit too: every mode of the set counts.
    assert M.scale_consistency([57, 59, 60, 62, 64, 65, 68, 69])[0] == 1.0


def test_chromatic_scale_consistency_is_7_of_12():
    assert M.scale_consistency(np.arange(60, 72))[0] == pytest.approx(7 / 12)


def test_constant_sequence():
    f = M.window_features(np.full((1, 100), 64))
    assert f["pitch_count"][0] == 1
    assert f["pitch_range"][0] == 0
    assert f["mean_interval"][0] == 0
    assert f["mean_pitch"][0] == 64
    assert f["pc_entropy"][0] == 0
    assert f["repetition_3gram"][0] == pytest.approx(1 - 1 / 98)


def test_known_values():
    w = np.array([[60, 64, 67, 72, 67, 64]])
    assert M.pitch_count(w)[0] == 4
    assert M.pitch_range(w)[0] == 12
    assert M.mean_interval(w)[0] == pytest.approx((4 + 3 + 5 + 5 + 3) / 5)
    assert M.pc_entropy(np.arange(60, 72))[0] == pytest.approx(math.log2(12))
    assert M.repetition_3gram(np.arange(60, 70))[0] == 0  # no 3-gram comes back
    assert M.repetition_3gram([60, 62, 64, 60, 62, 64])[0] == pytest.approx(1 - 3 / 4)


def test_bad_windows_are_value_errors():
    with pytest.raises(ValueError):
        M.as_windows(np.zeros((0, 100), dtype=int))
    with pytest.raises(ValueError):
        M.as_windows([[60.5, 61.0]])
    with pytest.raises(ValueError):
        M.as_windows([[60, 200]])


# ---------------------------------------------------------------- novelty and diversity

def test_ngram_keys_are_exact():
    k = M.ngram_keys(np.array([1, 2, 3, 4, 5, 6, 7, 8, 9]))
    assert len(k) == 2 and k[0] != k[1]
    assert M.ngram_keys(np.arange(60, 68))[0] == M.ngram_keys(np.arange(59, 68))[1]
    assert len(M.ngram_keys(np.zeros((3, 10), dtype=int))) == 3 * 3  # never across rows
    assert len(M.ngram_keys(np.arange(7))) == 0


def test_novelty_of_training_windows_is_one_and_of_random_windows_about_zero():
    rng = np.random.default_rng(0)
    pieces = [rng.integers(40, 90, 500) for _ in range(5)]
    keys = M.train_ngrams(pieces)
    train_windows = np.stack([p[i:i + 100] for p in pieces for i in range(0, 400, 100)])
    assert M.novelty(train_windows, keys) == 1.0
    assert M.novelty(rng.integers(21, 109, (50, 100)), keys) < 0.001
    # n-grams never cross pieces: the joint of two pieces is not "in the corpus"
    joint = np.concatenate([pieces[0][-4:], pieces[1][:4]])
    assert M.novelty(joint, keys) == 0.0


def test_uniform_notes_cover_the_piano_and_the_grid():
    u = B.uniform_notes(50, 100, seed=1)
    assert u.shape == (50, 100, 4) and u[..., 0].min() >= 21 and u[..., 0].max() <= 108
    assert len(np.unique(u[..., 0])) > 80 and (np.diff(u[..., 1], axis=1) >= 0).all()
    steps = u[..., 1] * 24
    assert np.allclose(steps, np.rint(steps)) and u[..., 3].min() >= 1 and u[..., 3].max() <= 127


def test_timing_tokens_round_trip():
    notes = np.array([[60, 0, 0.25, 70], [64, 0, 0.25, 70], [67, 0.5, 1.0, 100], [72, 1 + 1 / 3, 2.0, 20]], float)
    back = B.untoken(B.timing_tokens(notes)[None])[0]
    assert np.allclose(back[:, 0], notes[:, 1]) and np.allclose(back[:, 1], notes[:, 2])
    assert (np.abs(back[:, 2] - notes[:, 3]) <= 8).all()


def test_markov_notes_learn_a_rhythm():
    piece = np.array([[60 + k % 5, 0.5 * k, 0.5, 80] for k in range(200)], float)
    out = B.markov_notes(2, [piece, piece.copy()], 10, 50, seed=1)
    assert out.shape == (10, 50, 4) and np.allclose(np.diff(out[..., 1], axis=1), 0.5)
    assert set(np.unique(out[..., 0])) <= set(range(60, 65))


def _is_cycle_slice(row, cycle):
    n = len(cycle)
    return any(all(row[t] == cycle[(s + t) % n] for t in range(len(row))) for s in range(n))


@pytest.mark.parametrize("order", [2, 4])
def test_markov_chain_reproduces_a_deterministic_cycle(order):
    cycle = [60, 62, 64, 62, 60, 67]  # order 1 is ambiguous (62 -> 64 or 60); order 2 is not
    mc = B.MarkovChain(order).fit([np.array(cycle * 30)])
    out = mc.sample(20, 50, seed=3)
    assert out.shape == (20, 50)
    assert all(_is_cycle_slice(r, cycle) for r in out)


def test_markov_chain_order_1_is_not_deterministic_on_that_cycle():
    cycle = [60, 62, 64, 62, 60, 67]
    out = B.MarkovChain(1).fit([np.array(cycle * 30)]).sample(20, 50, seed=3)
    assert not all(_is_cycle_slice(r, cycle) for r in out)
    assert set(np.unique(out)) <= set(cycle)


def test_markov_chain_backs_off_on_unseen_contexts():
    # (61, 62) ends the only piece: it has no successor, so sampling backs off to order 0.
    out = B.MarkovChain(2).fit([np.array([60, 61, 62])]).sample(5, 30, seed=0)
    assert set(np.unique(out)) <= {60, 61, 62}
    with pytest.raises(ValueError):
        B.MarkovChain(3).fit([np.array([60, 61])])
    with pytest.raises(ValueError):
        B.MarkovChain(9)


# ---------------------------------------------------------------- two-sample test

def test_c2st_separates_different_sets_and_not_equal_ones():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    a, b = rng.integers(21, 109, (60, 100)), rng.integers(21, 109, (80, 100))
    scale = rng.choice(C_MAJOR, (60, 100))
    fa, fb, fs = M.c2st_features(a), M.c2st_features(b), M.c2st_features(scale)
    assert fa.shape == (60, 150)
    assert M.feature_c2st(fa, fs) > 0.95
    assert 0.25 < M.feature_c2st(fa, fb) < 0.75  # balanced: 60 of b are drawn
    # grouped folds: rows of one group never on both sides, so a group's quirk cannot be learnt
    groups = np.repeat(np.arange(12), 5)
    assert 0.2 < M.feature_c2st(fa, fb[:60], groups, groups) < 0.8


# ---------------------------------------------------------------- piano roll

def test_piano_roll_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from midigan.arrange import Note
    from midigan.plots import note_name, piano_roll

    notes = [Note(i * 0.25, 0.2, 60 + (i * 5) % 24, 40 + i) for i in range(64)]
    out = tmp_path / "roll.png"
    piano_roll(notes, out, title="test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    piano_roll([], tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 0
    assert note_name(60) == "C4" and note_name(21) == "A0"
