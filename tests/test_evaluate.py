"""`midigan evaluate`: the pipeline on small hand-made corpora, the CLI, and the rule that
training never imports what evaluation measures."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import mido
import numpy as np
import pytest
from click.testing import CliRunner

from midigan import evaluate as E
from midigan.cli import main

from .conftest import SHARED_CORPUS

ROOT = Path(__file__).resolve().parent.parent
EVAL_MODULES = {"metrics", "features", "judge", "evaluate", "baselines"}


def _write_piece(path: Path, pitches, step: int, velocity: int) -> None:
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    for p in pitches:
        tr.append(mido.Message("note_on", note=int(p), velocity=velocity, time=0))
        tr.append(mido.Message("note_off", note=int(p), velocity=0, time=step))
    path.parent.mkdir(parents=True, exist_ok=True)
    mf.save(str(path))


def _corpus(folder: Path, pieces: int, notes: int, seed: int, step: int = 120) -> Path:
    """Random walks in a major key (melodic, different in every piece), in steady notes."""
    rng = np.random.default_rng(seed)
    for k in range(pieces):
        key = int(rng.integers(0, 12))
        steps = np.cumsum(rng.choice([-2, -1, 1, 2], notes))
        idx = 34 - np.abs((steps + 20) % 68 - 34)  # reflect at the ends: never stuck on one key
        scale = np.array([key + 36 + 12 * o + s for o in range(6) for s in (0, 2, 4, 5, 7, 9, 11)])
        _write_piece(folder / f"p{k:02d}.mid", scale[idx], step, int(rng.integers(50, 90)))
    return folder


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    return _corpus(root / "corpus", 60, 800, 0), _corpus(root / "gen", 6, 800, 1, step=80), root


def test_evaluate_table_json_and_calibration_rows(corpora):
    corpus, gen, _ = corpora
    r = CliRunner().invoke(main, ["evaluate", str(gen), "--reference", str(corpus), "--count", "40",
                                  "--no-streams", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["split"] == "validation" and res["window"] == 100 and res["long_window"] == 400
    kinds = [row["kind"] for row in res["rows"]]
    assert kinds[0] == "source" and {"ceiling", "encoded", "halves", "seed-model", "uniform", "markov-2", "markov-4"} <= set(kinds)
    for row in res["rows"]:
        assert 0 < row["windows"] <= 40 and row["long_windows"] > 0
        for mode in ("pitch", "timed"):
            assert 0 <= row["neural"][mode]["accuracy"] <= 1 and row["neural"][mode]["se"] >= 0
        assert set(row["features"]) == set(E.FAMILIES)
        assert 0 <= row["copying"]["novelty"] <= 1 and row["copying"]["longest_max"] >= row["copying"]["longest_p50"]
    by = {row["kind"]: row for row in res["rows"]}
    # the source pieces are eighth-note-and-a-bit walks, the reference sixteenths: rhythm tells them apart
    assert by["source"]["features"]["rhythm"] > 0.9 and by["source"]["neural"]["timed"]["accuracy"] > 0.9
    assert by["uniform"]["neural"]["timed"]["accuracy"] > 0.9 and by["uniform"]["features"]["untargeted"] > 0.9
    r = CliRunner().invoke(main, ["evaluate", str(gen), "--reference", str(corpus), "--count", "40",
                                  "--no-streams", "--no-baselines"])
    assert r.exit_code == 0, r.output
    for text in ("neural C2ST, pitch", "timed", "untarg", "rhythm", "dynam", "target", "nov8%", "gen/ (MIDI)"):
        assert text in r.output


def test_evaluate_a_model_with_streams(corpora):
    corpus, _, _ = corpora
    res = E.evaluate(ROOT / "export" / "default.onnx", corpus, count=20, baselines=False, streams=True)
    (row,) = res["rows"]
    assert row["kind"] == "source" and set(row["streams"]) == {"8", "16"}
    assert res["preset"] == "piano" and res["temperature"] > 0
    assert "streams (timed neural C2ST" in E.format_table(res)


def test_stream_material_windows_by_depth():
    streams = [np.stack([np.full(1700, 60 + i), np.arange(1700) * 0.25, np.full(1700, 0.25), np.full(1700, 80)], 1)
               for i in range(3)]
    m = E.stream_material("x", "source", streams)
    assert m.notes.shape == (3, 100, 4) and m.long.shape == (3, 400) and set(m.deep) == {8, 16}
    w8, g8 = m.deep[8]
    assert np.allclose(w8[:, 0, 1], 700 * 0.25) and g8.tolist() == [0, 1, 2]
    short = E.stream_material("x", "source", [s[:500] for s in streams])
    assert short.deep == {} and short.long.shape == (3, 400)


def test_evaluate_errors(corpora, tmp_path):
    corpus, gen, _ = corpora
    run = CliRunner().invoke
    r = run(main, ["evaluate", str(tmp_path / "missing"), "--reference", str(corpus)])
    assert r.exit_code == 1 and "Error: no such model file or MIDI folder" in r.output
    assert "Traceback" not in r.output
    r = run(main, ["evaluate", str(gen), "--reference", str(corpus), "--count", "3"])
    assert r.exit_code == 1 and "count must be at least 20" in r.output
    r = run(main, ["evaluate", str(gen), "--reference", str(corpus), "--temperature", "0"])
    assert r.exit_code == 1 and "temperature must be above 0" in r.output
    r = run(main, ["evaluate", str(gen), "--reference", str(corpus), "--splits", "1"])
    assert r.exit_code == 1 and "splits must be at least 3" in r.output
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    r = run(main, ["evaluate", str(bad), "--reference", str(corpus), "--no-baselines"])
    assert r.exit_code == 1 and "not a loadable ONNX model" in r.output
    short = _corpus(tmp_path / "short", 3, 150, 2)  # too few windows to compare with
    r = run(main, ["evaluate", str(gen), "--reference", str(short), "--train", str(corpus)])
    assert r.exit_code == 1 and "Error:" in r.output and "Traceback" not in r.output
    r = run(main, ["evaluate", str(gen), "--reference", str(corpus), "--seed-model", str(tmp_path / "no.onnx")])
    assert r.exit_code == 1 and "no such seed model" in r.output


def test_training_never_imports_the_evaluation():
    """No training term may compute the evaluation's features: training code imports none of
    the evaluation's modules (checked on the source, so a lazy import counts too)."""
    for path in (ROOT / "midigan" / "training").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                names = [mod.split(".")[-1]] + [a.name for a in node.names] if node.level or mod.startswith("midigan") \
                    else []
            elif isinstance(node, ast.Import):
                names = [a.name.split(".")[-1] for a in node.names if a.name.startswith("midigan")]
            assert not EVAL_MODULES & set(names), f"{path.name} imports {EVAL_MODULES & set(names)}"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason=f"shared corpus not present at {SHARED_CORPUS}")
def test_calibration_rows_rank_sensibly_on_the_shared_corpus():
    res = E.evaluate(SHARED_CORPUS, SHARED_CORPUS, count=200, streams=False)
    by = {r["kind"]: r for r in res["rows"]}
    assert by["halves"]["neural"]["timed"]["accuracy"] <= 0.65
    assert by["ceiling"]["neural"]["timed"]["accuracy"] <= 0.65
    assert by["uniform"]["neural"]["timed"]["accuracy"] >= 0.95
    assert by["uniform"]["features"]["untargeted"] >= 0.95
    assert by["ceiling"]["copying"]["novelty"] < 0.05 < by["markov-4"]["copying"]["novelty"]  # order 4 copies


def test_encoded_pieces_are_the_pieces_as_a_note_event_model_plays_them(corpora):
    from midigan import events as ev
    from midigan.corpus import load_corpus

    pieces = load_corpus(corpora[0]).pieces[:4]
    tables = ev.tables([p.notes for p in pieces])
    out = E.encoded_pieces(pieces, tables, np.random.default_rng(0))
    for p, q in zip(pieces, out):
        n = q.notes
        assert q.name == p.name and len(n.pitches) == len(p.notes.pitches)
        assert np.allclose(n.starts * 24, np.rint(n.starts * 24), atol=1e-3)  # onsets on the grid
        assert np.isin(np.round(n.durations, 4), np.round(tables["duration_beats"], 4)).all()
        # the classes a model would have sampled are the piece's own
        assert np.array_equal(ev.encode(n.pitches, n.starts, n.durations, n.velocities)[0],
                              ev.encode(p.notes.pitches, p.notes.starts, p.notes.durations, p.notes.velocities)[0])
    assert not np.array_equal(out[0].notes.velocities, pieces[0].notes.velocities)  # drawn across their bins
