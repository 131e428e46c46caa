"""The neural two-sample test on hand-made windows with known answers.

"Real" music here is a random walk in C major (steps of up to two scale degrees) in steady
sixteenths at velocity 70 +- 4; each piece is one walk cut into windows (its group). Against it:
the same process with other pieces (indistinguishable), uniform random keys (told apart by any
judge), and the same walk in a random rhythm (told apart only by a judge that sees timing).
"""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from midigan.judge import neural_c2st

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")

MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
PIECES, PER_PIECE, LENGTH = 40, 10, 32  # 400 windows a side


def pieces(seed, count=PIECES * PER_PIECE, length=LENGTH, per_piece=PER_PIECE, pitch="walk", rhythm="steady",
           spread=4.0, first_group=0):
    """(windows (count, length, 4), group ids): each piece one stream cut into per_piece windows.

    "Real": random walks in C major in steady sixteenths, velocity 70 +- `spread` (bench/judge.py
    measures the judge on these too)."""
    rng = np.random.default_rng(seed)
    n_pieces, notes = -(-count // per_piece), per_piece * length
    out = []
    for _ in range(n_pieces):
        if pitch == "walk":  # scale degrees C3..C6, turned back at the edges
            degree = np.empty(notes, int)
            degree[0] = rng.integers(17, 32)
            steps = rng.choice([-2, -1, 0, 1, 2], notes, p=[.15, .3, .1, .3, .15])
            for t in range(1, notes):
                d = degree[t - 1] + steps[t]
                degree[t] = d if 14 <= d <= 35 else degree[t - 1] - steps[t]
            key = 24 + 12 * (degree // 7) + MAJOR[degree % 7]
        else:
            key = rng.integers(21, 109, notes)
        if rhythm == "steady":
            ioi = np.full(notes, 0.25)
            velocity = np.clip(np.rint(70 + rng.normal(0, spread, notes)), 1, 127)
        else:
            ioi = rng.integers(1, 13, notes) / 24
            velocity = rng.integers(30, 111, notes).astype(float)
        onset = np.cumsum(ioi) - ioi[0]
        out.append(np.stack([key, onset, ioi, velocity], axis=-1).reshape(per_piece, length, 4))
    groups = np.repeat(np.arange(n_pieces), per_piece) + first_group
    return np.concatenate(out)[:count], groups[:count]


@pytest.fixture(scope="module")
def real():
    return pieces(1)


@needs_torch
def test_two_halves_of_one_process_are_indistinguishable(real):
    other, groups = pieces(2)
    r = neural_c2st(real[0], other, real[1], groups + 1000)
    assert r["accuracy"] <= 0.6
    assert r["grouped"] and r["timed"] and r["n"] == len(other) and len(r["per_split"]) == 3
    assert r["se"] >= 0 and r["seconds"] > 0


@needs_torch
@pytest.mark.parametrize("timed", [False, True])
def test_random_keys_are_told_apart(real, timed):
    noise, groups = pieces(3, pitch="uniform")
    # Half the epochs: a difference this plain is learnt long before that.
    assert neural_c2st(real[0], noise, real[1], groups, timed=timed, epochs=6)["accuracy"] >= 0.95


@needs_torch
def test_a_changed_rhythm_is_seen_only_with_timing(real):
    # Same pitch process, other rhythm and dynamics: the pitch-only judge must not see it.
    loose, groups = pieces(4, rhythm="random")
    assert neural_c2st(real[0], loose, real[1], groups, timed=True)["accuracy"] >= 0.9
    assert neural_c2st(real[0], loose, real[1], groups, timed=False)["accuracy"] <= 0.65


@needs_torch
def test_same_seed_same_result_and_the_callers_torch_untouched(real):
    import torch

    other, groups = pieces(5, count=60, per_piece=5)  # a small, quick pair
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    runs = [neural_c2st(real[0][:80], other, real[1][:80], groups, splits=2, seed=7, epochs=3, threads=1)
            for _ in range(2)]
    assert runs[0]["per_split"] == runs[1]["per_split"]
    assert runs[0]["n"] == 60
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)


@needs_torch
def test_pitch_arrays_and_ungrouped_sides(real):
    keys = real[0][..., 0].astype(int)
    r = neural_c2st(keys[:120], keys[120:], timed=False, splits=2, epochs=2)
    assert not r["grouped"] and not r["timed"] and r["n"] == 120
    one_piece = np.zeros(120, int)  # a single group cannot be split by group
    r = neural_c2st(real[0][:120], real[0][120:240], one_piece, one_piece + 1, splits=2, epochs=2)
    assert not r["grouped"]


def test_held_out_windows_are_whole_groups():
    from midigan.judge import _test_mask

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30) * 7, rng.integers(1, 9, 30))  # pieces of 1 to 8 windows
    held, grouped = _test_mask(groups, len(groups), rng)
    assert grouped and not set(groups[held]) & set(groups[~held])
    assert len(set(groups[held])) == 10  # a third of the pieces
    held, grouped = _test_mask(np.zeros(30), 30, rng)  # one piece: a third of its windows instead
    assert not grouped and held.sum() == 10


def test_bad_inputs_are_refused(real):
    w, groups = real
    keys = w[..., 0].astype(int)
    nan = w.copy()
    nan[3, 4, 1] = np.nan
    bad = [
        (w[..., :3], w, {}, "shape"),  # three fields, not four
        (w[None], w, {}, "shape"),  # one axis too many
        (w[:, :20], w, {}, "differ in length"),
        (w[:5], w, {}, "at least 10 windows"),
        (w[:, :6], w[:, :6], {}, "at least 8 notes"),
        (nan, w, {}, "NaN"),
        (keys, keys, {}, "timed=True"),  # pitches alone cannot be judged with timing
        (w[..., 0], w[..., 0], {"timed": False}, "integer"),  # float (N, L): fields lost, not pitches
        (keys - 30, keys, {"timed": False}, "21..108"),
        (w, w, {"groups_a": groups[:10]}, "group ids"),
        (w, w, {"splits": 1}, "splits"),
    ]
    for a, b, kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            neural_c2st(a, b, **kwargs)


def test_imports_without_torch():
    code = "import sys; sys.modules['torch'] = None; import midigan.judge"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
