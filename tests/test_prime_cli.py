"""generate --prime: continue a MIDI file in its tempo; --prime-bars; --key auto."""
import mido
import numpy as np
import pytest
from click.testing import CliRunner

from midigan.cli import main
from midigan.corpus import read_notes
from midigan.prime import read_prime, tempo_at_end

from .conftest import write_piece


def prime_file(path, bpm=90.0, pitches=None):
    """A 6-bar line in A minor (sixteenth-notes of 120 ticks at 480 per beat... here eighths)."""
    pitches = pitches or [57, 60, 64, 69, 64, 60, 59, 62, 64, 68, 64, 62] * 4
    write_piece(path, pitches, step_ticks=240)
    mf = mido.MidiFile(str(path))
    mf.tracks[0].insert(0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    mf.save(str(path))
    return path


def test_read_prime_tempo_and_last_bars(tmp_path):
    f = prime_file(tmp_path / "a.mid", bpm=90)
    p = read_prime(f)
    assert p.bpm == pytest.approx(90, abs=0.01)
    assert len(p.notes) == 48 and p.notes[0, 1] == 0 and p.first_bar == 1 and p.bars == 6
    last = read_prime(f, bars=2)
    assert last.first_bar == 5 and last.bars == 2
    assert len(last.notes) == 16 and last.notes[0, 1] == 0.0  # moved by whole bars to start at 0
    assert np.array_equal(last.notes[:, 0], p.notes[-16:, 0])
    assert tempo_at_end([0.0], [0.0]) == 120.0  # one onset: the MIDI default


def test_generate_continues_a_file(tmp_path, tiny_run):
    _, model = tiny_run
    f = prime_file(tmp_path / "a.mid", bpm=90)
    out = tmp_path / "out.mid"
    r = CliRunner().invoke(main, ["generate", "--model", str(model), "--prime", str(f), "--prime-bars", "4",
                                  "-o", str(out), "--key", "auto", "--preset", "piano"])
    assert r.exit_code == 0, r.output
    assert "key: A minor" in r.output
    got = read_notes(out)
    want = read_prime(f, 4)
    n = len(want.notes)
    assert np.array_equal(got.pitches[:n], want.notes[:, 0])  # the prime first, as it was
    assert np.allclose(got.starts[:n], want.notes[:, 1])
    cont = got.starts[n:]
    assert len(cont) == 32 and cont.min() >= want.end - 1e-6  # then the continuation, after its end
    assert set(got.pitches[n:] % 12) <= {9, 11, 0, 2, 4, 5, 7}  # A minor's keys only
    tempo = [m.tempo for m in mido.MidiFile(str(out)).tracks[0] if m.type == "set_tempo"]
    assert mido.tempo2bpm(tempo[0]) == pytest.approx(90, abs=0.01)
    r = CliRunner().invoke(main, ["generate", "--model", str(model), "--prime", str(f), "--bpm", "70",
                                  "-o", str(out)])
    assert r.exit_code == 0 and "at 70 BPM" in r.output


def test_generate_bars_after_a_prime_count_from_its_next_bar_line(tmp_path, tiny_run):
    """A prime that ends mid-bar, then --bars 2: the file ends at the second bar line after the
    prime's last one, not 8 beats after its last note."""
    _, model = tiny_run
    f = prime_file(tmp_path / "a.mid", pitches=[57, 60, 64, 69, 64] * 3)  # 15 eighths: 7.5 beats
    out = tmp_path / "out.mid"
    r = CliRunner().invoke(main, ["generate", "--model", str(model), "--prime", str(f), "--bars", "2",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    got = read_notes(out)
    want = read_prime(f)
    n = len(want.notes)
    assert want.end < 8 and np.array_equal(got.pitches[:n], want.notes[:, 0])
    cont_starts, ends = got.starts[n:], got.starts + got.durations
    assert len(cont_starts) and cont_starts.min() >= want.end - 1e-6 and cont_starts.max() < 16
    assert ends.max() <= 16 + 1e-6

@pytest.mark.parametrize("args,needle", [
    (["--prime", "missing.mid"], "No such file"),
    (["--prime", "bad.mid"], "cannot read bad.mid: not a MIDI file"),
    (["--prime-bars", "2"], "--prime-bars"),
    (["--key", "auto"], "--prime FILE"),
    (["--prime", "bad.mid", "--prime-bars", "0"], "--prime-bars"),
])
def test_bad_primes_are_one_line_errors(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.mid").write_text("hello")
    r = CliRunner().invoke(main, ["generate", "-o", "x.mid"] + args)
    assert r.exit_code != 0 and needle in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.mid").exists()
