"""Corpus loading: parsing (symusic, with mido as the reference), splits, cache."""
from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

from midigan.corpus import cache_dir, list_midi_files, load_corpus, note_windows, read_notes, windows
from midigan.splits import work_splits

from .conftest import SHARED_CORPUS

SHARED = [SHARED_CORPUS]  # ../shared/corpus/piano-midi-de beside the checkout


# ---------------------------------------------------------------- builders

def vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def smf(*tracks: bytes, fmt: int = 1, tpb: int = 480) -> bytes:
    """Raw Standard MIDI File bytes from raw track bodies."""
    out = b"MThd" + struct.pack(">LHHH", 6, fmt, len(tracks), tpb)
    for t in tracks:
        out += b"MTrk" + struct.pack(">L", len(t)) + t
    return out


EOT = b"\x00\xff\x2f\x00"


def notes_track(notes, channel=0, step=240, extra=()):
    """A mido track: [(pitch, onset tick)]; note-offs as note_on velocity 0."""
    ev = []
    for p, t in notes:
        ev.append((t, mido.Message("note_on", note=p, velocity=70, channel=channel)))
        ev.append((t + step // 2, mido.Message("note_on", note=p, velocity=0, channel=channel)))
    ev.extend(extra)
    ev.sort(key=lambda e: e[0])
    tr, now = mido.MidiTrack(), 0
    for t, m in ev:
        tr.append(m.copy(time=t - now))
        now = t
    return tr


def save(path: Path, tracks, fmt=1, tpb=480) -> Path:
    mf = mido.MidiFile(type=fmt, ticks_per_beat=tpb)
    mf.tracks.extend(tracks)
    path.parent.mkdir(parents=True, exist_ok=True)
    mf.save(str(path))
    return path


def same(a, b, name=""):
    """Two parses of one file agree: every note array, the length, the dropped count."""
    for k in ("pitches", "starts", "durations", "velocities"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), (name, k)
    np.testing.assert_allclose(a.onsets, b.onsets, atol=1e-4, err_msg=name)
    assert abs(a.length - b.length) < 1e-4 and a.dropped == b.dropped, name


def both(path):
    """read_notes with symusic, checked against mido; returns (pitches, onsets s, length s, dropped)."""
    fast = read_notes(path, engine="symusic")
    same(fast, read_notes(path, engine="mido"), str(path))
    return fast.pitches, fast.onsets, fast.length, fast.dropped


# ---------------------------------------------------------------- parsing

def test_format0_and_format1(tmp_path):
    tr = notes_track([(60, 0), (64, 480), (67, 960)])
    p, o, d, dropped = both(save(tmp_path / "f0.mid", [tr], fmt=0))
    assert p.tolist() == [60, 64, 67] and np.allclose(o, [0, 0.5, 1.0]) and dropped == 0
    rh = notes_track([(72, 0), (74, 480)])
    lh = notes_track([(48, 240), (50, 720)])
    p, o, d, _ = both(save(tmp_path / "f1.mid", [rh, lh], fmt=1))
    assert p.tolist() == [72, 48, 74, 50] and np.allclose(o, [0, 0.25, 0.5, 0.75])
    assert d == pytest.approx(0.75 + 0.125)


def test_running_status_raw_bytes(tmp_path):
    body = (b"\x00\x90\x3c\x40"  # note on 60
            b"\x60\x3e\x40"  # running status: note on 62 at tick 96
            b"\x00\x3c\x00"  # running status: note off 60 (velocity 0)
            b"\x60\x40\x40"  # note on 64 at tick 192
            b"\x00\xb0\x40\x7f"  # pedal down: new status
            b"\x10\x40\x00"  # running status CC: pedal up
            b"\x10\x80\x40\x00"  # note off 64
            b"\x00\x91\x30\x50" + EOT)  # note on 48 on channel 2 at tick 224
    path = tmp_path / "rs.mid"
    path.write_bytes(smf(body, fmt=0, tpb=96))
    p, o, _d, _ = both(path)
    assert p.tolist() == [60, 64]  # 62 and 48 are never released: dropped (as symusic does)
    assert np.allclose(o, [0, 1.0])


def test_tempo_changes_give_onset_seconds(tmp_path):
    conductor = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=500000, time=0),
        mido.MetaMessage("set_tempo", tempo=1000000, time=960),  # at beat 2: half speed
        mido.MetaMessage("set_tempo", tempo=250000, time=960),  # at beat 4: double speed
    ])
    notes = notes_track([(60, 0), (62, 960), (64, 1920), (65, 2400)])
    p, o, d, _ = both(save(tmp_path / "tempo.mid", [conductor, notes]))
    # beats 0-2 at 0.5 s, 2-4 at 1.0 s, then 0.25 s per beat
    assert np.allclose(o, [0.0, 1.0, 3.0, 3.25], atol=1e-6)
    # format 0, tempo in the same track as the notes
    tr = notes_track([(60, 0), (62, 480)], extra=[(240, mido.MetaMessage("set_tempo", tempo=1500000))])
    _, o, _, _ = both(save(tmp_path / "tempo0.mid", [tr], fmt=0))
    assert np.allclose(o, [0.0, 0.25 + 0.75])


def test_pedal_ignored_and_drums_excluded(tmp_path):
    pedal = [(0, mido.Message("control_change", control=64, value=127)),
             (400, mido.Message("control_change", control=64, value=0))]
    tr = notes_track([(60, 0), (62, 240)], extra=pedal)
    drums = notes_track([(36, 0), (38, 240), (42, 120)], channel=9)
    p, o, _, _ = both(save(tmp_path / "pd.mid", [tr, drums]))
    assert p.tolist() == [60, 62]


def test_out_of_range_counted_and_dropped(tmp_path):
    tr = notes_track([(10, 0), (60, 240), (115, 480), (108, 720), (21, 960)])
    p, o, _, dropped = both(save(tmp_path / "r.mid", [tr]))
    assert p.tolist() == [60, 108, 21] and dropped == 2
    c = load_corpus(tmp_path)
    assert c.dropped == 2 and c.stats()["dropped_out_of_range"] == 2


def test_simultaneous_onsets_low_to_high(tmp_path):
    a = notes_track([(72, 0), (67, 0), (64, 480)])
    b = notes_track([(48, 0), (60, 480), (40, 480)])
    p, o, _, _ = both(save(tmp_path / "ch.mid", [a, b]))
    assert p.tolist() == [48, 67, 72, 40, 60, 64]


def test_chord_flags_and_windows(tmp_path):
    """Piece.together: a note that starts with the one before (a chord, low to high) is flagged."""
    a = notes_track([(60, 0), (64, 0), (67, 0), (72, 480), (48, 960), (55, 960)])
    save(tmp_path / "c" / "ch.mid", [a])
    (piece,) = load_corpus(tmp_path / "c").pieces
    assert piece.pitches.tolist() == [60, 64, 67, 72, 48, 55]
    assert piece.together.tolist() == [False, True, True, False, False, True]
    assert windows([piece], 3, together=True).tolist() == [[0, 1, 1], [0, 0, 1]]
    assert windows([piece], 3).tolist() == [[60, 64, 67], [72, 48, 55]]


def test_bad_files_skipped_with_reasons(tmp_path):
    good = save(tmp_path / "good.mid", [notes_track([(60, 0), (62, 240)])])
    data = good.read_bytes()
    (tmp_path / "truncated.mid").write_bytes(data[: len(data) - 9])
    (tmp_path / "text.mid").write_text("this is not a MIDI file\n")
    (tmp_path / "empty.midi").write_bytes(b"")
    save(tmp_path / "nonotes.mid", [mido.MidiTrack([mido.MetaMessage("track_name", name="x")])])
    # a header that claims an absurd track length
    (tmp_path / "absurd.mid").write_bytes(data[:18] + b"\x7f\xff\xff\xff" + data[22:])
    (tmp_path / "ignored.txt").write_text("not listed")
    c = load_corpus(tmp_path)
    reasons = dict(c.skipped)
    assert [p.name for p in c.pieces] == ["good.mid"]
    assert set(reasons) == {"truncated.mid", "text.mid", "empty.midi", "nonotes.mid", "absurd.mid"}
    assert "truncated" in reasons["truncated.mid"] and "truncated" in reasons["absurd.mid"]
    assert "not a MIDI file" in reasons["text.mid"]
    assert reasons["nonotes.mid"] == "no notes"
    assert all("\n" not in r and r for r in reasons.values())
    for name in reasons:
        with pytest.raises(ValueError):
            read_notes(tmp_path / name)
        with pytest.raises(ValueError):
            read_notes(tmp_path / name, engine="mido")


def test_nothing_readable_is_an_error(tmp_path):
    (tmp_path / "a.mid").write_text("junk")
    with pytest.raises(ValueError, match="could be read"):
        load_corpus(tmp_path)
    with pytest.raises(ValueError, match="no .mid"):
        load_corpus(_empty(tmp_path))
    with pytest.raises(FileNotFoundError):
        load_corpus(tmp_path / "missing")


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_upper_case_extension_found(tmp_path):
    save(tmp_path / "sub" / "LOUD.MID", [notes_track([(60, 0)])])
    save(tmp_path / "quiet.midi", [notes_track([(62, 0)])])
    assert list_midi_files(tmp_path) == ["quiet.midi", "sub/LOUD.MID"]
    c = load_corpus(tmp_path)
    assert sorted(p.name for p in c.pieces) == ["quiet.midi", "sub/LOUD.MID"]


def test_unusual_but_valid_files_match_mido(tmp_path):
    # sysex, program change + running status on a 2-byte message, pitch bend, a text meta
    body = (b"\x00\xf0\x05\x7e\x7f\x09\x01\xf7"
            b"\x00\xc0\x05"
            b"\x00\x90\x3c\x40"
            b"\x10\xe0\x00\x40"
            b"\x10\xff\x01\x03abc"
            b"\x10\x90\x3e\x40"
            b"\x00\xc0\x06\x05\x07"  # program change, then running status on it
            b"\x10\x90\x40\x40"
            b"\x10\x80\x3c\x00\x00\x3e\x00\x00\x40\x00" + EOT)  # note offs, running status
    path = tmp_path / "odd.mid"
    path.write_bytes(smf(body, fmt=0))
    p, _, _, _ = both(path)
    assert p.tolist() == [60, 62, 64]
    n = read_notes(path)
    assert np.allclose(n.durations, np.array([85, 37, 16]) / 480) and n.velocities.tolist() == [64, 64, 64]


def test_durations_velocities_and_beats(tmp_path):
    """Onsets and durations in beats from the file's own ticks per beat, whatever the tempo."""
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=1000000, time=0)])
    tr = notes_track([(60, 0), (64, 96), (67, 96)], step=96)
    for tpb in (96, 960):
        scale = tpb // 96
        tr2 = mido.MidiTrack(m.copy(time=m.time * scale) for m in tr)
        n = read_notes(save(tmp_path / f"b{tpb}.mid", [conductor, tr2], tpb=tpb))
        assert n.starts.tolist() == [0.0, 1.0, 1.0] and n.durations.tolist() == [0.5, 0.5, 0.5]
        assert n.velocities.tolist() == [70, 70, 70] and np.allclose(n.onsets, [0, 1, 1])
        same(n, read_notes(tmp_path / f"b{tpb}.mid", engine="mido"))


def _random_file(path: Path, rng: random.Random) -> Path:
    tracks = []
    for k in range(rng.randint(1, 4)):
        ev, t = [], 0
        for _ in range(rng.randint(0, 120)):
            t += rng.choice([0, 0, 1, 7, 60, 120, 480, 5000, 300000])
            ch = rng.choice([0, 0, 1, 9, 15])
            kind = rng.random()
            if kind < 0.5:
                ev.append((t, mido.Message("note_on", note=rng.randint(0, 127), velocity=rng.choice([0, 1, 64, 127]),
                                           channel=ch)))
            elif kind < 0.6:
                ev.append((t, mido.Message("note_off", note=rng.randint(0, 127), channel=ch)))
            elif kind < 0.7:
                ev.append((t, mido.Message("control_change", control=64, value=rng.choice([0, 127]), channel=ch)))
            elif kind < 0.75:
                ev.append((t, mido.Message("program_change", program=rng.randint(0, 127), channel=ch)))
            elif kind < 0.8:
                ev.append((t, mido.Message("pitchwheel", pitch=rng.randint(-8192, 8191), channel=ch)))
            elif kind < 0.83:
                ev.append((t, mido.Message("aftertouch", value=5, channel=ch)))
            elif kind < 0.86:
                ev.append((t, mido.Message("sysex", data=[1, 2, 3])))
            elif kind < 0.95:
                ev.append((t, mido.MetaMessage("set_tempo", tempo=rng.randint(1, 2_000_000))))
            else:
                ev.append((t, rng.choice([mido.MetaMessage("text", text="hello"),
                                          mido.MetaMessage("key_signature", key="Eb"),
                                          mido.MetaMessage("time_signature", numerator=3, denominator=8)])))
        tr, now = mido.MidiTrack(), 0
        for at, m in ev:
            tr.append(m.copy(time=at - now))
            now = at
        tracks.append(tr)
    return save(path, tracks, fmt=0 if len(tracks) == 1 else 1, tpb=rng.choice([96, 384, 480, 960]))


def test_symusic_matches_mido_on_generated_files(tmp_path):
    rng = random.Random(1234)
    compared = 0
    for i in range(60):
        path = _random_file(tmp_path / f"r{i}.mid", rng)
        try:
            both(path)
            compared += 1
        except ValueError:
            with pytest.raises(ValueError):  # both refuse it
                read_notes(path, engine="mido")
    assert compared > 20


def _shared():
    for p in SHARED:
        if p.is_dir():
            return p
    pytest.skip("shared corpus piano-midi-de not found at ../shared/corpus/piano-midi-de")


def _check_against_mido(root: Path, names):
    for n in names:
        same(read_notes(root / n, engine="symusic"), read_notes(root / n, engine="mido"), n)


def test_symusic_matches_mido_on_real_corpus_sample():
    root = _shared()
    names = list_midi_files(root)
    _check_against_mido(root, names[::15] + [n for n in names if n.endswith(".MID")])


@pytest.mark.slow
def test_symusic_matches_mido_on_whole_real_corpus():
    root = _shared()
    names = list_midi_files(root)
    assert len(names) >= 295
    _check_against_mido(root, names)


def test_engine_checked(tmp_path):
    with pytest.raises(ValueError, match="engine"):
        read_notes(tmp_path / "x.mid", engine="pretty")


def test_corpus_code_never_imports_torch(tmp_path):
    save(tmp_path / "a.mid", [notes_track([(60, 0), (62, 240)])])
    code = ("import sys; from midigan.corpus import load_corpus; load_corpus(sys.argv[1]); "
            "assert 'torch' not in sys.modules and 'mido' not in sys.modules, 'imported'")
    env = dict(os.environ, MIDIGAN_CACHE=str(tmp_path / "cache"))
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env)


# ---------------------------------------------------------------- splits

def test_maestro_csv_decides_splits(tmp_path):
    for k, split in enumerate(["train", "validation", "test", "train"]):
        save(tmp_path / "2004" / f"p{k}.midi", [notes_track([(60 + k, 0)])])
    rows = ["canonical_composer,split,midi_filename,duration"]
    rows += [f"X,{s},2004/p{k}.midi,1.0" for k, s in enumerate(["train", "validation", "test", "train"])]
    (tmp_path / "maestro-v3.0.0.csv").write_text("\n".join(rows) + "\n")
    c = load_corpus(tmp_path)
    assert {p.name: p.split for p in c.pieces} == {
        "2004/p0.midi": "train", "2004/p1.midi": "validation", "2004/p2.midi": "test", "2004/p3.midi": "train"}
    assert c.stats()["test_files"] == 1


def test_work_split_deterministic_three_ways(tmp_path):
    names = [f"composer{k % 7}/piece{k}.mid" for k in range(300)]
    a, _ = work_splits(names)
    b, _ = work_splits(list(reversed(names)))
    assert a == b and set(a) == set(names)
    counts = {s: sum(v == s for v in a.values()) for s in ("train", "validation", "test")}
    assert 10 <= counts["test"] <= 50 and 10 <= counts["validation"] <= 50, counts
    for n in (3, 4, 10):  # small corpora: every split gets a work
        assert set(work_splits([f"p{k}.mid" for k in range(n)])[0].values()) == {"train", "validation", "test"}
    assert set(work_splits(["x.mid", "y.mid"])[0].values()) >= {"train"}
    for k in range(5):
        save(tmp_path / f"p{k}.mid", [notes_track([(60 + j, 240 * j) for j in range(30)])])
    c = load_corpus(tmp_path)
    assert {p.name: p.split for p in c.pieces} == work_splits(list_midi_files(tmp_path))[0]
    # windows never cross pieces, and each piece is in exactly one split
    splits = [{p.name for p in c.split(s)} for s in ("train", "validation", "test")]
    assert all(splits) and sum(map(len, splits)) == 5 and not (splits[0] & splits[1] | splits[0] & splits[2])
    w = windows(c.pieces, 10)
    assert w.shape == (15, 10) and w.dtype == np.int64
    nw, groups = note_windows(c.pieces, 10)
    assert nw.shape == (15, 10, 4) and np.array_equal(nw[..., 0], w) and groups.tolist() == sorted(groups.tolist())
    assert np.allclose(nw[0, :, 1], np.arange(10) * 0.5) and np.allclose(nw[0, :, 2], 0.25)


def test_movements_of_one_work_stay_together():
    names = [f"schumann/scn15_{k}.mid" for k in range(1, 14)] + [f"chopin/chpn-p{k}.mid" for k in range(1, 25)]
    names += [f"solo/piece_{c}.mid" for c in "abcdefghijklmnopqrstuvwxyz"]  # letters: separate works
    split, notices = work_splits(names)
    assert len({split[n] for n in names if n.startswith("schumann/")}) == 1
    assert len({split[n] for n in names if n.startswith("chopin/")}) == 1
    assert notices == ["2 works of several files (37 files) kept whole on one side of the split"]


def test_training_can_leave_test_pieces_unread(tmp_path):
    for k in range(10):
        save(tmp_path / f"p{k}.mid", [notes_track([(60 + k, 0)])])
    every = load_corpus(tmp_path)
    some = load_corpus(tmp_path, splits=("train", "validation"))
    assert every.split("test") and not some.split("test") and some.held_back == len(every.split("test"))
    assert some.stats()["files"] == every.stats()["files"]
    with pytest.raises(ValueError, match="unknown split"):
        load_corpus(tmp_path, splits=("train", "valid"))


# ---------------------------------------------------------------- MAESTRO's CSV, checked

def _maestro(root: Path, rows, files=None, name="maestro-v3.0.0.csv", encoding="utf-8", header=None):
    for f in files if files is not None else [r[1].replace("\\", "/") for r in rows]:
        save(root / f, [notes_track([(60, 0)])])
    lines = [header or "canonical_composer,canonical_title,split,year,midi_filename,duration"]
    lines += [f"X,Y,{split},2004,{fn},1.0" for split, fn in rows]
    (root / name).write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return root


@pytest.mark.parametrize("bad", ["valid", "Test", "test ", ""])
def test_maestro_split_values_other_than_the_three_are_errors(tmp_path, bad):
    root = _maestro(tmp_path, [("train", "2004/a.midi"), (bad, "2004/b.midi")])
    with pytest.raises(ValueError, match=r"maestro-v3.0.0.csv line 3: split .* is not one of train"):
        load_corpus(root)


def test_maestro_problems_counted_or_strict_errors(tmp_path):
    rows = [("train", "2004/a.midi"), ("test", "2004\\b.midi"), ("validation", "2004/gone.midi"),
            ("train", "2004/a.midi")]
    root = _maestro(tmp_path, rows, files=["2004/a.midi", "2004/b.midi", "2004/c.midi", "2005/d.midi"])
    c = load_corpus(root)
    assert {p.name: p.split for p in c.pieces} == {
        "2004/a.midi": "train", "2004/b.midi": "test", "2004/c.midi": "train", "2005/d.midi": "train"}
    text = " | ".join(c.notices)
    for part in ("1 file names with backslashes", "1 duplicate rows", "1 rows naming files that are not there",
                 "2 files not in the CSV: put in train (first: 2004/c.midi)"):
        assert part in text
    with pytest.raises(ValueError, match=r"\(--strict\)"):
        load_corpus(root, strict=True)


def test_maestro_conflicts_and_several_csvs_are_errors(tmp_path):
    root = _maestro(tmp_path / "a", [("train", "x.midi"), ("test", "x.midi")])
    with pytest.raises(ValueError, match="listed as both train and test"):
        load_corpus(root)
    root = _maestro(tmp_path / "b", [("train", "x.midi")])
    _maestro(root, [("test", "x.midi")], name="maestro-v2.0.0.csv")
    with pytest.raises(ValueError, match="several MAESTRO CSVs"):
        load_corpus(root)


def test_maestro_csv_with_bom_or_latin1(tmp_path):
    root = _maestro(tmp_path / "bom", [("test", "x.midi"), ("train", "y.midi")], encoding="utf-8-sig")
    assert {p.name: p.split for p in load_corpus(root).pieces} == {"x.midi": "test", "y.midi": "train"}
    rows = [("test", "Dvo\u0159\u00e1k.midi"), ("train", "y.midi")]
    root = _maestro(tmp_path / "latin", [("test", "caf\u00e9.midi"), ("train", "y.midi")], encoding="latin-1")
    c = load_corpus(root)
    assert {p.name: p.split for p in c.pieces} == {"caf\u00e9.midi": "test", "y.midi": "train"}
    assert any("not UTF-8" in n for n in c.notices)
    del rows


def test_file_name_not_utf8_loads(tmp_path):
    save(tmp_path / "good.mid", [notes_track([(60, 0)])])
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.mid")
    with open(raw, "wb") as f:
        f.write((tmp_path / "good.mid").read_bytes())
    c = load_corpus(tmp_path)
    assert len(c.pieces) == 2 and load_corpus(tmp_path).cached == 2
    from click.testing import CliRunner

    from midigan.cli import main
    r = CliRunner().invoke(main, ["corpus", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output


def test_linked_folders_followed_without_loops(tmp_path):
    real = tmp_path / "elsewhere"
    save(real / "a.mid", [notes_track([(60, 0)])])
    root = tmp_path / "root"
    save(root / "b.mid", [notes_track([(62, 0)])])
    (root / "linked").symlink_to(real, target_is_directory=True)
    (real / "loop").symlink_to(root, target_is_directory=True)  # a link back up
    names = list_midi_files(root)
    assert "linked/a.mid" in names and "b.mid" in names and len(names) == len(set(names)) <= 3


# ---------------------------------------------------------------- cache

def test_cache_reused_and_invalidated(tmp_path):
    root = tmp_path / "corpus"
    for k in range(3):
        save(root / f"p{k}.mid", [notes_track([(60 + k, 0), (64, 240)])])
    first = load_corpus(root)
    assert first.cached == 0
    cached = list(cache_dir().glob("corpus-*.npz"))
    assert len(cached) == 1 and root not in cached[0].parents
    second = load_corpus(root)
    assert second.cached == 3
    for a, b in zip(first.pieces, second.pieces):
        assert a.name == b.name and np.array_equal(a.pitches, b.pitches) and np.array_equal(a.onsets, b.onsets)
        assert a.duration == b.duration and a.split == b.split
    # a modified file is parsed again
    p1 = root / "p1.mid"
    save(p1, [notes_track([(70, 0), (71, 240), (72, 480)])])
    os.utime(p1, ns=(p1.stat().st_atime_ns, p1.stat().st_mtime_ns + 10**9))
    third = load_corpus(root)
    assert third.cached == 2
    assert [p for p in third.pieces if p.name == "p1.mid"][0].pitches.tolist() == [70, 71, 72]
    # skip reasons are cached too
    (root / "bad.mid").write_text("junk, not music")
    assert load_corpus(root).skipped == load_corpus(root).skipped == [("bad.mid", "not a MIDI file (no MThd header)")]
    # no cache: everything parsed, nothing written
    assert load_corpus(root, use_cache=False).cached == 0


def test_corpus_folder_untouched_and_read_only(tmp_path, monkeypatch):
    root = tmp_path / "ro"
    for k in range(3):
        save(root / f"p{k}.mid", [notes_track([(60 + k, 0)])])
    before = sorted((p.name, p.stat().st_mtime_ns) for p in root.rglob("*"))
    for p in [root, *root.iterdir()]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        load_corpus(root)
        assert load_corpus(root).cached == 3
        assert sorted((p.name, p.stat().st_mtime_ns) for p in root.rglob("*")) == before
        # an unwritable cache only costs speed
        monkeypatch.setenv("MIDIGAN_CACHE", str(root / "p0.mid" / "cache"))
        assert load_corpus(root).cached == 0
    finally:
        for p in [root, *root.iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_damaged_cache_rebuilt(tmp_path):
    save(tmp_path / "c" / "a.mid", [notes_track([(60, 0)])])
    load_corpus(tmp_path / "c")
    for f in cache_dir().glob("corpus-*.npz"):
        f.write_bytes(b"garbage")
    assert load_corpus(tmp_path / "c").cached == 0
    assert load_corpus(tmp_path / "c").cached == 1


def test_progress_reported(tmp_path):
    for k in range(10):
        save(tmp_path / f"p{k}.mid", [notes_track([(60 + k, 0)])])
    seen = []
    c = load_corpus(tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert len(c.pieces) == 10 and seen == [(k, 10) for k in range(1, 11)]
    seen.clear()
    load_corpus(tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert seen == []  # all cached


def test_without_symusic_mido_reads_with_a_notice(tmp_path):
    save(tmp_path / "a.mid", [notes_track([(60, 0), (64, 240)])])
    code = ("import sys; sys.modules['symusic'] = None; from midigan.corpus import load_corpus; "
            "c = load_corpus(sys.argv[1]); print(c.pieces[0].pitches.tolist())")
    env = dict(os.environ, MIDIGAN_CACHE=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "[60, 64]"
    assert r.stderr.count("symusic is not installed") == 1 and len(r.stderr.splitlines()) == 1


def test_size_bound(tmp_path, monkeypatch):
    import midigan.corpus as corpus_mod

    save(tmp_path / "big.mid", [notes_track([(60 + k % 20, 240 * k) for k in range(400)])])
    save(tmp_path / "small.mid", [notes_track([(60, 0)])])
    monkeypatch.setattr(corpus_mod, "MAX_FILE_BYTES", 1000)
    c = load_corpus(tmp_path)
    assert [p.name for p in c.pieces] == ["small.mid"]
    assert c.skipped[0][0] == "big.mid" and "too large" in c.skipped[0][1]


def test_links_and_special_files_skipped(tmp_path):
    save(tmp_path / "good.mid", [notes_track([(60, 0)])])
    (tmp_path / "dangling.mid").symlink_to(tmp_path / "nowhere.mid")
    os.mkfifo(tmp_path / "fifo.mid")
    c = load_corpus(tmp_path)
    reasons = dict(c.skipped)
    assert [p.name for p in c.pieces] == ["good.mid"]
    assert "cannot open" in reasons["dangling.mid"] and reasons["fifo.mid"] == "not a regular file"
    assert load_corpus(tmp_path).cached == 2  # good.mid and the FIFO's verdict
