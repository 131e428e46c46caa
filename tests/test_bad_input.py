"""Bad input, every command: a one-line error naming the problem, a non-zero exit, no
traceback, and nothing already written is overwritten or left half-written."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from midigan.cli import main

from .conftest import make_corpus, relabel_onnx, write_piece

SENTINEL = b"precious bytes, not to be lost"


def _plain_onnx(dst):
    """A valid ONNX model that is not a midigan model (an Identity graph)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(g), str(dst))


@pytest.fixture
def w(tmp_path, tiny_run):
    """A workspace of bad (and some good) inputs, built once per test."""
    ckpt, model = tiny_run
    d = tmp_path
    (d / "empty").mkdir()
    (d / "text").mkdir()
    (d / "text" / "readme.txt").write_text("no music here")
    (d / "notmidi").mkdir()
    (d / "notmidi" / "fake.mid").write_text("this is not MIDI")
    good = write_piece(d / "one" / "a.mid", list(range(60, 80)))
    raw = good.read_bytes()
    (d / "trunc").mkdir()
    (d / "trunc" / "t.mid").write_bytes(raw[: len(raw) // 2])
    (d / "nonotes").mkdir()
    import mido
    mf = mido.MidiFile()
    mf.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    mf.save(str(d / "nonotes" / "silent.mid"))
    (d / "absurd").mkdir()
    # A header claiming a 2 GB track.
    (d / "absurd" / "a.mid").write_bytes(raw[:14] + b"MTrk" + (0x7FFFFFF0).to_bytes(4, "big") + raw[22:])
    (d / "short").mkdir()
    write_piece(d / "short" / "s.mid", [60, 62, 64])  # fewer notes than a sequence
    make_corpus(d / "corpus")
    (d / "textmodel.onnx").write_text("definitely not a model")
    _plain_onnx(d / "plain.onnx")
    relabel_onnx(model, d / "v9.onnx", format_version="9")
    relabel_onnx(model, d / "nometa.onnx", seq_len=None, encoding=None)
    (d / "foreign.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    for name, text in {"unknown_key": "tempo = 120\n", "wrong_type": 'bpm = "fast"\n',
                       "tempo0": "bpm = 0\n", "ch17": "channel = 17\n", "gate2": "gate = 2.0\n",
                       "scale": 'scale = "klingon"\n', "badtoml": "bpm = = 1\n"}.items():
        (d / f"{name}.toml").write_text(text)
    (d / "badcfg.toml").write_text("hiden = 3\n")
    (d / "out.mid").write_bytes(SENTINEL)
    (d / "out.onnx").write_bytes(SENTINEL)
    (d / "run").mkdir()
    import shutil
    shutil.copy(ckpt, d / "run" / "checkpoint.pt")
    (d / "foreignrun").mkdir()
    (d / "foreignrun" / "checkpoint.pt").write_bytes(b"garbage")
    return {"d": d, "model": str(model), "ckpt": str(ckpt)}


M = "{model}"
CASES = [
    # corpus
    ("corpus missing folder", ["corpus", "{d}/nope"], "no such folder"),
    ("corpus empty folder", ["corpus", "{d}/empty"], "no .mid or .midi files"),
    ("corpus no MIDI files", ["corpus", "{d}/text"], "no .mid or .midi files"),
    ("corpus a file, not a folder", ["corpus", "{d}/one/a.mid"], "not a folder"),
    ("corpus only non-MIDI content", ["corpus", "{d}/notmidi"], "could be read"),
    ("corpus only a truncated file", ["corpus", "{d}/trunc"], "could be read"),
    ("corpus only a file with no notes", ["corpus", "{d}/nonotes"], "could be read"),
    ("corpus absurd track length", ["corpus", "{d}/absurd"], "could be read"),
    # train
    ("train missing corpus", ["train", "{d}/nope", "--out", "{d}/r1", "--config", "tiny"], "no such folder"),
    ("train finished run", ["train", "{d}/corpus", "--out", "{d}/run", "--resume"], "already finished"),
    ("train unknown config", ["train", "{d}/corpus", "--out", "{d}/r3", "--config", "huge"], "unknown config"),
    ("train config unknown key", ["train", "{d}/corpus", "--out", "{d}/r4", "--config", "{d}/badcfg.toml"],
     "unknown key 'hiden'"),
    ("train resume missing", ["train", "{d}/corpus", "--out", "{d}/r5", "--resume"], "no checkpoint"),
    ("train resume foreign", ["train", "{d}/corpus", "--out", "{d}/foreignrun", "--resume"],
     "not a midigan checkpoint"),
    ("train resume other config", ["train", "{d}/corpus", "--out", "{d}/run", "--resume", "--config", "seed"],
     "trained with config 'tiny'"),
    ("train over an existing run", ["train", "{d}/corpus", "--out", "{d}/run", "--config", "tiny"], "--resume"),
    ("train pieces too short", ["train", "{d}/short", "--out", "{d}/r6", "--config", "tiny"], "at least 32 notes"),
    # export
    ("export missing checkpoint", ["export", "{d}/none.pt", "-o", "{d}/out.onnx"], "no checkpoint"),
    ("export foreign checkpoint", ["export", "{d}/foreign.pt", "-o", "{d}/out.onnx"], "not a midigan checkpoint"),
    ("export unwritable output", ["export", "{ckpt}", "-o", "{d}/no/dir/x.onnx"], "output folder does not exist"),
    # generate
    ("generate count 0", ["generate", "--model", M, "--count", "0", "-o", "{d}/out.mid"], "--count"),
    ("generate count negative", ["generate", "--model", M, "--count", "-4", "-o", "{d}/out.mid"], "--count"),
    ("generate seed negative", ["generate", "--model", M, "--seed", "-1", "-o", "{d}/out.mid"], "--seed"),
    ("generate text file as .onnx", ["generate", "--model", "{d}/textmodel.onnx", "-o", "{d}/out.mid"],
     "not a loadable ONNX model"),
    ("generate non-midigan ONNX", ["generate", "--model", "{d}/plain.onnx", "-o", "{d}/out.mid"],
     "not a midigan model"),
    ("generate unknown format version", ["generate", "--model", "{d}/v9.onnx", "-o", "{d}/out.mid"],
     "format version '9'"),
    ("generate missing metadata", ["generate", "--model", "{d}/nometa.onnx", "-o", "{d}/out.mid"],
     "missing seq_len"),
    ("generate missing model", ["generate", "--model", "{d}/none.onnx", "-o", "{d}/out.mid"], "no such model file"),
    ("preset unknown key", ["generate", "--model", M, "--preset", "{d}/unknown_key.toml", "-o", "{d}/out.mid"],
     "unknown key 'tempo'"),
    ("preset wrong type", ["generate", "--model", M, "--preset", "{d}/wrong_type.toml", "-o", "{d}/out.mid"],
     "bpm = 'fast'"),
    ("preset tempo 0", ["generate", "--model", M, "--preset", "{d}/tempo0.toml", "-o", "{d}/out.mid"], "bpm"),
    ("preset channel 17", ["generate", "--model", M, "--preset", "{d}/ch17.toml", "-o", "{d}/out.mid"],
     "channel = 17"),
    ("preset gate 2", ["generate", "--model", M, "--preset", "{d}/gate2.toml", "-o", "{d}/out.mid"], "gate = 2.0"),
    ("preset unknown scale", ["generate", "--model", M, "--preset", "{d}/scale.toml", "-o", "{d}/out.mid"],
     "scale = 'klingon'"),
    ("preset not TOML", ["generate", "--model", M, "--preset", "{d}/badtoml.toml", "-o", "{d}/out.mid"],
     "not valid TOML"),
    ("preset unknown name", ["generate", "--model", M, "--preset", "lullaby", "-o", "{d}/out.mid"],
     "unknown preset 'lullaby'"),
    ("generate unwritable output", ["generate", "--model", M, "-o", "{d}/no/dir/x.mid"],
     "output folder does not exist"),
    ("generate output is a folder", ["generate", "--model", M, "-o", "{d}/empty"], "is a directory"),
    # info
    ("info text file", ["info", "{d}/textmodel.onnx"], "not a loadable ONNX model"),
    ("info non-midigan", ["info", "{d}/plain.onnx"], "not a midigan model"),
    # play (errors found before any port opens, or the port/API itself)
    ("play channel 17", ["play", "--model", M, "--channel", "17", "--quiet"], "channel 17"),
    ("play tempo 0", ["play", "--model", M, "--bpm", "0", "--quiet"], "bpm"),
    ("play bars 0", ["play", "--model", M, "--bars", "0", "--quiet"], "--bars"),
    ("play non-midigan model", ["play", "--model", "{d}/plain.onnx", "--quiet"], "not a midigan model"),
    ("play no JACK server", ["play", "--model", M, "--api", "jack", "--bars", "1", "--quiet"], "JACK"),
    ("play virtual port where the API cannot", ["play", "--model", M, "--api", "winmm", "--bars", "1", "--quiet"], "cannot create virtual MIDI ports"),
    # evaluate
    ("evaluate missing reference", ["evaluate", M, "--reference", "{d}/nope"], "no such folder"),
    ("evaluate count 0", ["evaluate", M, "--reference", "{d}/corpus", "--count", "0"], "count"),
]


@pytest.mark.parametrize("name,args,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name, args, needle, w, monkeypatch):
    # No JACK server may be started on demand, and none is reachable under this name.
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"midigan-none-{os.getpid()}")
    d = w["d"]
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    args = [a.format(d=d, model=w["model"], ckpt=w["ckpt"]) for a in args]
    r = CliRunner().invoke(main, args)
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code != 0, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    assert needle in lines[0], lines[0]
    after = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p in before} == before  # nothing overwritten
    new = set(after) - set(before)
    assert not [p for p in new if "tmp" in p.name or p.suffix in (".mid", ".onnx", ".pt")], new


def test_at_least_thirty_cases():
    assert len(CASES) >= 30
