"""Metrics on hand-made sequences with known answers, and the `midigan evaluate` command."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from midigan import metrics as M
from midigan.cli import main

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


def test_pooled_histograms():
    pc = M.pc_histogram([[60, 72, 61, 73]])
    assert pc[0] == pc[1] == 0.5 and pc.sum() == pytest.approx(1)
    iv = M.interval_histogram([[60, 62, 60, 62]])
    assert iv[87 + 2] == pytest.approx(2 / 3) and iv[87 - 2] == pytest.approx(1 / 3)


def test_bad_windows_are_value_errors():
    with pytest.raises(ValueError):
        M.as_windows(np.zeros((0, 100), dtype=int))
    with pytest.raises(ValueError):
        M.as_windows([[60.5, 61.0]])
    with pytest.raises(ValueError):
        M.as_windows([[60, 200]])


# ---------------------------------------------------------------- overlaps

def test_overlap_of_identical_sets_is_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=300)
    assert M.overlap(a, a) == pytest.approx(1.0, abs=1e-9)
    assert M.overlap(np.full(50, 3.0), np.full(80, 3.0)) == pytest.approx(1.0, abs=1e-9)
    assert M.histogram_overlap([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)


def test_overlap_of_disjoint_sets_is_about_zero():
    rng = np.random.default_rng(0)
    assert M.overlap(rng.normal(0, 1, 300), rng.normal(50, 1, 300)) < 0.01
    assert M.overlap(np.zeros(10), np.ones(10)) < 0.01
    assert M.histogram_overlap([1, 0], [0, 1]) == 0


def test_overlap_of_two_samples_of_one_distribution_is_high():
    rng = np.random.default_rng(1)
    assert M.overlap(rng.normal(size=400), rng.normal(size=800)) > 0.85


def test_overlaps_of_a_set_with_itself():
    w = np.random.default_rng(2).integers(50, 80, (40, 100))
    ov = M.overlaps(w, w)
    assert set(ov) == set(M.OVERLAP_KEYS) | {"mean_overlap"}
    assert ov["mean_overlap"] == pytest.approx(1.0)
    assert M.overlaps(w, np.full((10, 100), 30))["mean_overlap"] < 0.1


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


def test_diversity_of_identical_sequences():
    w = np.tile(np.arange(60, 100), (8, 1))
    d = M.diversity(w)
    assert d["distinct"] == pytest.approx(1 / 8)
    assert d["pairwise_hamming"] == 0 and d["pairwise_abs"] == 0


def test_diversity_of_different_sequences():
    w = np.array([[60] * 10, [62] * 10])
    d = M.diversity(w)
    assert d["distinct"] == 1.0 and d["pairwise_hamming"] == 1.0 and d["pairwise_abs"] == 2.0


# ---------------------------------------------------------------- baselines

def test_uniform_baseline_covers_the_piano():
    u = M.uniform_baseline(50, 100, seed=1)
    assert u.shape == (50, 100) and u.min() >= 21 and u.max() <= 108
    assert len(np.unique(u)) > 80


def _is_cycle_slice(row, cycle):
    n = len(cycle)
    return any(all(row[t] == cycle[(s + t) % n] for t in range(len(row))) for s in range(n))


@pytest.mark.parametrize("order", [2, 4])
def test_markov_chain_reproduces_a_deterministic_cycle(order):
    cycle = [60, 62, 64, 62, 60, 67]  # order 1 is ambiguous (62 -> 64 or 60); order 2 is not
    mc = M.MarkovChain(order).fit([np.array(cycle * 30)])
    out = mc.sample(20, 50, seed=3)
    assert out.shape == (20, 50)
    assert all(_is_cycle_slice(r, cycle) for r in out)


def test_markov_chain_order_1_is_not_deterministic_on_that_cycle():
    cycle = [60, 62, 64, 62, 60, 67]
    out = M.MarkovChain(1).fit([np.array(cycle * 30)]).sample(20, 50, seed=3)
    assert not all(_is_cycle_slice(r, cycle) for r in out)
    assert set(np.unique(out)) <= set(cycle)


def test_markov_chain_backs_off_on_unseen_contexts():
    # (61, 62) ends the only piece: it has no successor, so sampling backs off to order 0.
    out = M.MarkovChain(2).fit([np.array([60, 61, 62])]).sample(5, 30, seed=0)
    assert set(np.unique(out)) <= {60, 61, 62}
    with pytest.raises(ValueError):
        M.MarkovChain(3).fit([np.array([60, 61])])
    with pytest.raises(ValueError):
        M.MarkovChain(9)


# ---------------------------------------------------------------- two-sample test

def test_c2st_separates_different_sets_and_not_equal_ones():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    a, b = rng.integers(21, 109, (60, 100)), rng.integers(21, 109, (80, 100))
    scale = rng.choice(C_MAJOR, (60, 100))
    assert M.c2st(a, scale) > 0.95
    assert 0.25 < M.c2st(a, b) < 0.75  # balanced: 60 of b are drawn
    assert M.c2st_features(a).shape == (60, 150)


# ---------------------------------------------------------------- the evaluate command

def _write_piece(path: Path, pitches) -> None:
    import mido

    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    for p in pitches:
        tr.append(mido.Message("note_on", note=int(p), velocity=80, time=0))
        tr.append(mido.Message("note_off", note=int(p), velocity=0, time=120))
    path.parent.mkdir(parents=True, exist_ok=True)
    mf.save(str(path))


def _corpus(folder: Path, pieces: int, notes: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for k in range(pieces):
        # a random walk in a major key: melodic, different in every piece
        key = int(rng.integers(0, 12))
        steps = np.cumsum(rng.choice([-2, -1, 1, 2], notes))
        idx = 34 - np.abs((steps + 20) % 68 - 34)  # reflect at the ends: never stuck on one key
        scale = np.array([key + 36 + 12 * o + s for o in range(6) for s in (0, 2, 4, 5, 7, 9, 11)])
        _write_piece(folder / f"p{k}.mid", scale[idx])
    return folder


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    return _corpus(root / "corpus", 6, 1200, 0), _corpus(root / "gen", 2, 1200, 1), root


def test_evaluate_cli_table_and_json(corpora, monkeypatch):
    pytest.importorskip("sklearn")
    corpus, gen, _ = corpora
    with monkeypatch.context() as m:  # the table's layout needs no real classifier: keep it fast
        m.setattr(M, "c2st", lambda gen, ref, seed=0, folds=5: 0.5)
        r = CliRunner().invoke(main, ["evaluate", str(gen), "--reference", str(corpus), "--count", "12"])
    assert r.exit_code == 0, r.output
    for name in ("gen/ (MIDI)", "uniform random", "markov order 1", "markov order 2", "markov order 4",
                 "real (train pieces)", "C2ST", "novelty%", "0.500"):
        assert name in r.output
    r = CliRunner().invoke(main, ["evaluate", str(gen), "--reference", str(corpus), "--count", "12",
                                  "--json", "--no-baselines"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["held_out_split"] is True and res["seq_len"] == 100
    (row,) = res["rows"]
    assert 0 <= row["mean_overlap"] <= 1 and 0 <= row["c2st"] <= 1 and 0 <= row["novelty"] <= 1
    assert set(row["overlaps"]) == set(M.OVERLAP_KEYS)
    assert row["distinct"] == 1.0


def test_evaluate_with_a_separate_train_folder(corpora):
    corpus, gen, _ = corpora
    res = M.evaluate(gen, corpus, train=gen, count=12, with_c2st=False)
    assert res["held_out_split"] is False
    assert res["reference_pieces"] == 6 and res["train_pieces"] == 2
    src = res["rows"][0]
    assert src["novelty"] == 1.0  # the source windows are the training pieces themselves
    real = next(r for r in res["rows"] if r["kind"] == "real")
    assert real["novelty"] < 0.2  # the reference's own 8-grams are not in the train folder


def test_evaluate_errors(corpora, tmp_path):
    corpus, gen, root = corpora
    run = CliRunner().invoke
    r = run(main, ["evaluate", str(tmp_path / "missing"), "--reference", str(corpus)])
    assert r.exit_code == 1 and "Error: no such model file or MIDI folder" in r.output
    assert "Traceback" not in r.output
    r = run(main, ["evaluate", str(gen), "--reference", str(corpus), "--count", "3"])
    assert r.exit_code == 1 and "count must be at least 10" in r.output
    r = run(main, ["evaluate", str(gen), "--reference", str(corpus), "--temperature", "0"])
    assert r.exit_code == 1 and "temperature must be above 0" in r.output
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    r = run(main, ["evaluate", str(bad), "--reference", str(corpus)])
    assert r.exit_code == 1 and "not a loadable ONNX model" in r.output
    short = _corpus(tmp_path / "short", 3, 150, 2)  # too few 100-note windows to compare with
    r = run(main, ["evaluate", str(gen), "--reference", str(short), "--train", str(corpus)])
    assert r.exit_code == 1 and "reference has only" in r.output
    r = run(main, ["evaluate", str(gen), "--reference", str(corpus), "--seed-model", str(tmp_path / "no.onnx")])
    assert r.exit_code == 1 and "no such seed model" in r.output


# ---------------------------------------------------------------- the real corpus (sanity)

@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared corpus not present at {SHARED}")
def test_baselines_rank_sensibly_on_the_shared_corpus():
    res = M.evaluate(SHARED, SHARED, count=200, with_c2st=False)  # the folder itself as source
    by = {r["kind"]: r for r in res["rows"]}
    assert by["uniform"]["mean_overlap"] < by["markov-2"]["mean_overlap"] < by["markov-4"]["mean_overlap"] \
        < by["real"]["mean_overlap"]
    assert by["real"]["mean_overlap"] > 0.85 and by["uniform"]["mean_overlap"] < 0.35
    assert by["real"]["novelty"] < 0.05 < 0.3 < by["markov-4"]["novelty"]


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
