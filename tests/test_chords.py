"""Chord-aware generators (config chords = 1, encoding pitch-onset-categorical), end to end."""
from pathlib import Path

import mido
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from midigan.recall import next_hints  # noqa: E402
from midigan.runtime import Generator, ModelError  # noqa: E402

from .conftest import record_steps, relabel_onnx  # noqa: E402


def write_chords(path: Path, chords, step: int = 240) -> Path:
    """One track: each item a chord (a list of pitches struck together), `step` ticks apart."""
    tr = mido.MidiTrack()
    for ch in chords:
        for i, p in enumerate(ch):
            tr.append(mido.Message("note_on", note=p, velocity=70, time=0))
        for i, p in enumerate(ch):
            tr.append(mido.Message("note_on", note=p, velocity=0, time=step if i == 0 else 0))
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    mf.tracks.append(tr)
    path.parent.mkdir(parents=True, exist_ok=True)
    mf.save(str(path))
    return path


@pytest.fixture(scope="module")
def chord_run(tmp_path_factory):
    """A tiny chord model trained on block chords and a melody over them, and its export."""
    from midigan.training.export import export_onnx
    from midigan.training.train import run_training

    base = tmp_path_factory.mktemp("chords")
    for k in range(4):
        root = 48 + 2 * k
        chords = [[root + d, root + d + 4, root + d + 7] if i % 2 == 0 else [root + 12 + d]
                  for i, d in enumerate([0, 5, 7, 0] * 40)]
        write_chords(base / "corpus" / f"p{k}.mid", chords)
    cfg = base / "tinyc.toml"
    cfg.write_text('base = "tiny"\nchords = 1\nd_intervals = 1\n')
    ckpt = run_training(base / "corpus", base / "run", config=str(cfg), progress=False)
    onnx_path = base / "tinyc.onnx"
    export_onnx(ckpt, onnx_path, command="test")
    return ckpt, onnx_path


def test_training_windows_are_key_plus_chord_classes(tmp_path):
    from midigan.corpus import load_corpus
    from midigan.training.train import Windows

    write_chords(tmp_path / "c" / "a.mid", [[60, 64, 67], [72], [50, 53]] * 20)
    (piece,) = load_corpus(tmp_path / "c").pieces
    w = Windows([piece], 6, chords=True)
    x = w.sample(16, 0, torch.Generator().manual_seed(0)).numpy()
    assert x.max() < 176
    # every window is a stretch of the piece: class = key + 88 * (starts with the note before)
    classes = piece.pitches.astype(np.int64) - 21 + 88 * piece.together
    strings = {tuple(classes[i:i + 6]) for i in range(len(classes) - 5)}
    assert all(tuple(r) in strings for r in x)
    assert (x >= 88).any() and (x < 88).any()
    assert Windows([piece], 6).sample(4, 0, torch.Generator()).numpy().max() < 88


def test_chord_model_exports_and_the_runtime_decodes_it(chord_run):
    from midigan.training.config import Config, make_config
    from midigan.training.model import build
    from midigan.training.train import load_checkpoint

    ckpt, path = chord_run
    gen = Generator(path)
    assert gen.encoding == "pitch-onset-categorical" and gen.bos == 176
    ck = load_checkpoint(ckpt)
    cfg = make_config(ck["config"], Config())
    G, _ = build(cfg)
    G.load_state_dict(ck["generator"])
    G.eval()
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, gen.noise_dim)).astype(np.float32)
    rec = record_steps(gen)
    prevs, hints, logits_rt = rec["prev"], rec["recall"], rec["logits"]
    pitches, _, last = gen._run_steps(z, gen.initial_state(3), np.full(3, gen.bos), cfg.seq_len, rng, 1.0)
    classes = np.concatenate([np.stack(prevs, axis=1)[:, 1:], last[:, None]], axis=1)  # what was sampled
    assert classes.shape == (3, cfg.seq_len) and classes.max() < 176
    assert np.array_equal(pitches, classes % 88 + 21)  # decoded keys are the sampled classes' keys
    assert (classes >= 88).any()  # it did start a note with the one before somewhere
    # a chord climbs: 'with the note before' only for a higher key, and never first
    assert (classes[:, 0] < 88).all()
    tog = classes[:, 1:] >= 88
    assert (classes[:, 1:][tog] % 88 > classes[:, :-1][tog] % 88).all()
    # the recall hints are computed on keys, never on classes
    for t in range(cfg.seq_len):
        assert np.array_equal(hints[t], next_hints(classes[:, :t] % 88, cfg.recall))
    # and teacher forcing on those classes in torch gives the runtime's logits, step for step
    x = torch.from_numpy(classes)
    prev = torch.cat([torch.full_like(x[:, :1], G.bos), x[:, :-1]], dim=1)
    with torch.no_grad():  # (teacher_inputs would put the windows' style codes in the noise)
        want = G(torch.from_numpy(z), prev, hints=G.hints(x % 88))[0].numpy()
    assert np.abs(np.stack(logits_rt, axis=1) - want).max() < 1e-4


def test_runtime_refuses_an_encoding_that_does_not_fit_the_graph(chord_run, tmp_path):
    _, path = chord_run
    with pytest.raises(ModelError, match="176 logits per step, but the 'pitch-categorical' encoding has 88"):
        Generator(relabel_onnx(path, tmp_path / "x.onnx", encoding="pitch-categorical"))
    with pytest.raises(ModelError, match="cannot have the 'pitch-linear' encoding"):
        Generator(relabel_onnx(path, tmp_path / "y.onnx", encoding="pitch-linear"))


def test_generate_plays_the_models_chords(chord_run, tmp_path):
    """`generate` strikes flagged notes together; a preset with chords = false plays them in turn."""
    from click.testing import CliRunner

    from midigan.cli import main

    _, path = chord_run
    gen = Generator(path)
    pitches, together = next(gen.stream(seed=0, temperature=0.9, morph=0.25, chords=True))
    assert together.any() and len(pitches) == len(together) == gen.seq_len

    def onsets(preset_args):
        out = tmp_path / f"{Path(preset_args[0]).stem}.mid"
        r = CliRunner().invoke(main, ["generate", "--model", str(path), "-o", str(out), "--seed", "0",
                                      "--preset", *preset_args])
        assert r.exit_code == 0, r.output
        t, starts = 0, []
        for m in mido.MidiFile(out).tracks[1]:
            t += m.time
            if m.type == "note_on" and m.velocity:
                starts.append(t)
        return starts
    on, off = tmp_path / "on.toml", tmp_path / "arpeggiated.toml"
    on.write_text('chords = true\n')
    off.write_text('chords = false\n')
    chorded, arpeggiated = onsets([str(on)]), onsets([str(off)])
    assert len(set(arpeggiated)) == len(arpeggiated)  # one note per step
    assert len(set(chorded)) < len(chorded)  # some notes share an onset
