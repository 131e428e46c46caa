"""The command line, through click's CliRunner: help, happy paths, one-line errors."""
import hashlib

import pytest
from click.testing import CliRunner

from midigan.cli import main

COMMANDS = ["generate", "info", "presets", "corpus", "train", "export"]


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize("cmd", [[]] + [[c] for c in COMMANDS])
def test_help(runner, cmd):
    r = runner.invoke(main, cmd + ["--help"])
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output


def test_every_option_has_help(runner):
    for name, cmd in main.commands.items():
        for p in cmd.params:
            if p.param_type_name == "option" and p.name not in ("help",):
                assert p.help, f"{name} --{p.name} has no help"


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_generate_is_deterministic(runner, tiny_run, tmp_path):
    _, model = tiny_run
    a, b, c = tmp_path / "a.mid", tmp_path / "b.mid", tmp_path / "c.mid"
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        r = runner.invoke(main, ["generate", "--model", str(model), "--count", "3", "--seed", str(seed),
                                 "-o", str(out), "--preset", "raw"])
        assert r.exit_code == 0, r.output
    assert _sha(a) == _sha(b) != _sha(c)


def test_generate_count_writes_sequences_back_to_back(runner, tiny_run, tmp_path):
    import mido
    _, model = tiny_run
    out = tmp_path / "x.mid"
    r = runner.invoke(main, ["generate", "--model", str(model), "--count", "2", "-o", str(out),
                             "--preset", "raw"])
    assert r.exit_code == 0, r.output
    ons = [m for m in mido.MidiFile(out).tracks[1] if m.type == "note_on"]
    assert len(ons) == 2 * 32  # the tiny config makes 32-note sequences
    # one continuous line: what `play --seed 0 --preset raw` streams (the second continues the first)
    from midigan.arrange import phrases
    from midigan.presets import load_preset
    from midigan.runtime import Generator
    s = phrases(Generator(model), load_preset("raw"), seed=0)
    assert [m.note for m in ons] == [n.pitch for _ in range(2) for n in next(s)[0]]


def test_info_and_presets(runner, tiny_run):
    _, model = tiny_run
    r = runner.invoke(main, ["info", str(model)])
    assert r.exit_code == 0 and "format_version" in r.output and "note-event" in r.output
    r = runner.invoke(main, ["presets"])
    assert r.exit_code == 0 and "nocturne" in r.output and "raw" in r.output


def test_corpus_command(runner, tiny_corpus):
    r = runner.invoke(main, ["corpus", str(tiny_corpus)])
    assert r.exit_code == 0, r.output
    assert "4 files: 4 parsed, 0 skipped; 800 notes" in r.output


@pytest.mark.parametrize("args,needle", [
    (["generate", "--count", "0"], "--count"),
    (["generate", "--seed", "-1"], "--seed"),
    (["generate", "--preset", "nope"], "unknown preset 'nope'"),
    (["generate", "--bpm", "0"], "bpm"),
    (["generate", "--model", "missing.onnx"], "no such model file"),
    (["generate", "--candidates", "0"], "must be 1-64"),
    (["play", "--candidates", "65", "--bars", "1"], "must be 1-64"),
    (["info", "missing.onnx"], "no such model file"),
    (["corpus", "no/such/folder"], "no such folder"),
    (["export", "missing.pt", "-o", "x.onnx"], "no checkpoint"),
])
def test_errors_are_one_line(runner, args, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(main, args)
    assert r.exit_code != 0
    assert needle in r.output
    assert "Traceback" not in r.output
    assert not list(tmp_path.glob("*.mid"))



def _notes(path):
    """(start tick, end tick, key) of each note in a written file, in onset order."""
    import mido
    t, down, out = 0, {}, []
    for m in mido.MidiFile(path).tracks[1]:
        t += m.time
        if m.type == "note_on" and m.velocity:
            down.setdefault(m.note, []).append(t)
        elif m.type in ("note_on", "note_off"):
            out.append((down[m.note].pop(0), t, m.note))
    return sorted(out)


def test_generate_bars_is_the_same_line_cut_at_the_bar_line(runner, tiny_run, tmp_path):
    """--bars N writes the line --count writes, up to the Nth bar line: notes from there on
    dropped, notes held over it cut there."""
    from midigan.music import BEATS_PER_BAR, FILE_TICKS_PER_BEAT
    _, model = tiny_run
    clip, long = tmp_path / "clip.mid", tmp_path / "long.mid"
    said = {}
    for out, length in ((clip, ["--bars", "3"]), (long, ["--count", "12"])):
        r = runner.invoke(main, ["generate", "--model", str(model), "--seed", "2", "-o", str(out), *length])
        assert r.exit_code == 0, r.output
        said[out] = r.output
    assert "3 bars" in said[clip]
    end = 3 * BEATS_PER_BAR * FILE_TICKS_PER_BEAT
    whole = _notes(long)
    assert whole[-1][0] >= end  # (the long line goes past the clip's end)
    want = [(on, min(off, end), key) for on, off, key in whole if on < end]
    assert _notes(clip) == want and len(want) > 0


def test_generate_bars_and_count_are_exclusive(runner, tiny_run, tmp_path):
    _, model = tiny_run
    r = runner.invoke(main, ["generate", "--model", str(model), "--bars", "2", "--count", "2", "-o", str(tmp_path / "x.mid")])
    assert r.exit_code == 1 and "--count or --bars" in r.output and not (tmp_path / "x.mid").exists()
    r = runner.invoke(main, ["generate", "--model", str(model), "--bars", "0", "-o", str(tmp_path / "x.mid")])
    assert r.exit_code == 1 and "--bars" in r.output and "at least 1" in r.output

def test_generate_keeps_existing_file_on_error(runner, tmp_path):
    out = tmp_path / "keep.mid"
    out.write_bytes(b"precious")
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    r = runner.invoke(main, ["generate", "--model", str(bad), "-o", str(out)])
    assert r.exit_code == 1 and "not a loadable ONNX model" in r.output
    assert out.read_bytes() == b"precious"


def test_generate_unwritable_output(runner, tiny_run, tmp_path):
    _, model = tiny_run
    r = runner.invoke(main, ["generate", "--model", str(model), "-o", str(tmp_path / "no" / "x.mid")])
    assert r.exit_code == 1 and "output folder does not exist" in r.output


def test_python_dash_m():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "midigan", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "generate" in r.stdout


def test_take_seeds_a_fixed_seed_replays_without_one_each_take_is_drawn_ahead_and_told(capsys):
    from midigan.cli import _take_seed

    assert _take_seed(7, quiet=False) == (7, (None, None))
    seed, (new_take, on_take) = _take_seed(None, quiet=False)
    drawn = {seed, new_take(), new_take()}
    assert len(drawn) == 3 and all(isinstance(s, int) and s >= 0 for s in drawn)
    assert capsys.readouterr().err == ""  # drawn ahead, in silence
    on_take(1234)
    assert "new take: seed 1234" in capsys.readouterr().err
    _take_seed(None, quiet=True)[1][1](5)
    assert capsys.readouterr().err == ""


def test_notes_wait_after_their_tick_only_following_midi_clock_on_a_port_that_sends_at_once():
    from midigan.cli import _stop_hold
    from midigan.player import HOLD_FOR_STOP
    from midigan.ports import MemoryPort

    class Scheduling(MemoryPort):
        def send_at(self, msg, due):
            self.send(msg)
    clock = object()
    assert _stop_hold("DAW clock out", clock, MemoryPort()) == HOLD_FOR_STOP > 0
    assert _stop_hold("DAW clock out", clock, Scheduling()) == 0.0  # it drops such a note itself
    assert _stop_hold("jack", clock, MemoryPort()) == _stop_hold("Link", clock, MemoryPort()) == 0.0
    assert _stop_hold(None, None, MemoryPort()) == 0.0
