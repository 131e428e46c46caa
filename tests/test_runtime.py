"""The torch-free runtime: model checks, generation, determinism."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from midigan.runtime import Generator, ModelError, read_metadata, slerp, slerp_rows

from .conftest import relabel_onnx


def test_generate_shapes_range_and_determinism(tiny_run):
    _, path = tiny_run
    gen = Generator(path)
    a = gen.generate(3, seed=7)
    assert a.shape == (3, gen.seq_len)
    assert a.min() >= 21 and a.max() <= 108
    assert np.array_equal(a, gen.generate(3, seed=7))
    assert not np.array_equal(a, gen.generate(3, seed=8))
    with pytest.raises(ValueError, match="count"):
        gen.generate(0)


def test_stream_continues_and_is_deterministic(tiny_run):
    _, path = tiny_run
    gen = Generator(path)
    s1, s2 = gen.stream(seed=1, morph=0.2), gen.stream(seed=1, morph=0.2)
    a = [next(s1) for _ in range(3)]
    b = [next(s2) for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(len(x) == gen.seq_len for x in a)


class FixedLogits:
    """Stands in for the runtime's Stepper: the same logits every step, the state untouched."""

    def __init__(self, logits, z, prev, h, c, hints):
        self.logits = np.tile(np.asarray(logits, np.float32), (len(z), 1))
        self.prev, self.h, self.c = np.array(prev), h, c
        self.recall = np.zeros((len(z), 3), np.int64) if hints else None

    def run(self):
        return self.logits.copy()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.5])
def test_sampling_follows_the_tempered_softmax(tiny_run, temperature):
    """Each note is drawn from softmax(logits / T): counts over many lines match it."""
    gen = Generator(tiny_run[1])
    logits = np.full(gen.bos, -np.inf)
    logits[[3, 40, 41, 87]] = np.log([0.1, 0.2, 0.3, 0.4])
    gen._stepper = lambda *args, **kwargs: FixedLogits(logits, *args, **kwargs)
    n, steps = 2000, 3
    z = np.zeros((n, gen.noise_dim), np.float32)
    classes, _, _ = gen._sample_steps(z, gen.initial_state(n), np.full(n, gen.bos), steps,
                                      np.random.default_rng(0), temperature)
    p = np.exp(np.where(np.isfinite(logits), logits / temperature, -np.inf))
    p /= p.sum()
    counts = np.bincount(classes.ravel(), minlength=gen.bos) / classes.size
    assert set(np.flatnonzero(counts)) == {3, 40, 41, 87}
    assert np.abs(counts - p).max() < 4 * np.sqrt(0.25 / classes.size)


def test_metadata_is_checked(tiny_run, tmp_path):
    _, path = tiny_run
    meta = read_metadata(path)
    for k in ("format_version", "seq_len", "noise_dim", "pitch_low", "pitch_high", "encoding",
              "training_corpus", "seed"):
        assert k in meta
    with pytest.raises(ModelError, match="format version '99'"):
        Generator(relabel_onnx(path, tmp_path / "v99.onnx", format_version="99"))
    with pytest.raises(ModelError, match="not a midigan model"):
        Generator(relabel_onnx(path, tmp_path / "plain.onnx", format=None))
    with pytest.raises(ModelError, match="missing seq_len"):
        Generator(relabel_onnx(path, tmp_path / "noseq.onnx", seq_len=None))
    with pytest.raises(ModelError, match="unknown encoding"):
        Generator(relabel_onnx(path, tmp_path / "enc.onnx", encoding="words"))


def test_not_a_model(tmp_path):
    txt = tmp_path / "notes.onnx"
    txt.write_text("hello")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        Generator(txt)
    with pytest.raises(ModelError, match="no such model file"):
        Generator(tmp_path / "missing.onnx")


def test_slerp_keeps_norm():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(64), rng.standard_normal(64)
    mid = slerp(a, b, 0.5)
    assert abs(np.linalg.norm(mid) - (np.linalg.norm(a) + np.linalg.norm(b)) / 2) < 1.0
    assert np.allclose(slerp(a, b, 0.0), a) and np.allclose(slerp(a, b, 1.0), b)
    rows = slerp_rows(np.stack([a, b]), np.stack([b, b]), 0.5)
    assert np.allclose(rows[0], mid) and np.allclose(rows[1], b)  # parallel rows: a straight line


def test_runtime_never_imports_torch(tiny_run, tmp_path):
    """The whole generate command runs with torch made unimportable."""
    _, path = tiny_run
    out = tmp_path / "x.mid"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any import of torch now raises
        from midigan.cli import main
        try:
            main(["generate", "--model", {str(path)!r}, "-o", {str(out)!r}, "--count", "2"])
        except SystemExit as e:
            assert e.code in (0, None), e.code
        import midigan.runtime, midigan.player, midigan.ports, midigan.arrange, midigan.corpus
        assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout and out.stat().st_size > 100


def test_runtime_opens_no_sockets(tiny_run, tmp_path, monkeypatch):
    """Generating (model load, inference, arrangement, file write) never touches the network."""
    import socket

    from click.testing import CliRunner

    from midigan.cli import main

    def refuse(*a, **k):
        raise AssertionError("the runtime tried to open a network socket")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    _, path = tiny_run
    r = CliRunner().invoke(main, ["generate", "--model", str(path), "-o", str(tmp_path / "x.mid"),
                                  "--count", "2", "--preset", "ballad"])
    assert r.exit_code == 0, r.output
