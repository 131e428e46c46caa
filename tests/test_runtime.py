"""The torch-free runtime: model checks, generation, determinism."""
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from midigan.runtime import Generator, ModelError, read_metadata, slerp, slerp_rows

from .conftest import relabel_onnx


def test_stream_shapes_range_continuation_and_determinism(tiny_run):
    _, path = tiny_run
    gen = Generator(path)
    s1, s2 = gen.stream(seed=1, count=3), gen.stream(seed=1, count=3)
    a = [next(s1) for _ in range(3)]
    b = [next(s2) for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], next(gen.stream(seed=2, count=3)))
    notes = np.concatenate(a, axis=1)  # three phrases of each line, back to back
    assert notes.shape == (3, 3 * gen.seq_len, 4)
    assert notes[..., 0].min() >= 21 and notes[..., 0].max() <= 108
    assert (np.diff(notes[..., 1], axis=1) >= 0).all()  # onsets never go back, across phrases too
    assert (notes[:, 0, 1] == 0).all()  # a stream starts with a note at once
    assert np.isin(notes[..., 2], gen.tables["duration_beats"]).all()
    # each velocity is drawn across its class's bin of 4, so velocities are not only the middles
    middles = np.asarray(gen.tables["velocity_values"])
    off = notes[..., 3][..., None] - middles
    assert ((off >= -2) & (off <= 1)).any(-1).all() and notes[..., 3].min() >= 1
    assert not np.isin(notes[..., 3], middles).all()
    chord = np.diff(notes[..., 1], axis=1) == 0
    assert (np.diff(notes[..., 0], axis=1)[chord] > 0).all()  # a chord's keys climb


class FakeStep:
    """Stands in for the event graph: argmax(L + bias + gumbel) per attribute, fixed logits L."""

    def __init__(self, logits):
        self.logits = logits

    def run(self, _names, feed):
        from midigan import events as ev
        x = self.logits + feed["bias"] + feed["gumbel"]
        picks = [np.argmax(x[:, ev.OFFSETS[a]:ev.OFFSETS[a] + ev.SIZES[a]], axis=1) for a in ev.ATTRS]
        return np.stack(picks, axis=1), feed["h"], feed["c"]


@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.5])
def test_sampling_follows_the_tempered_softmax(tiny_run, temperature):
    """Each attribute is drawn from softmax((logits + bias) / T): counts over many notes match it."""
    from midigan import events as ev
    gen = Generator(tiny_run[1])
    logits = np.full(ev.WIDTH, -1e9, np.float32)
    keys = ev.OFFSETS["pitch"] + np.array([3, 40, 41, 87])
    logits[keys] = np.log([0.1, 0.2, 0.3, 0.4])
    logits[ev.OFFSETS["step"] + 6] = logits[ev.OFFSETS["duration"]] = logits[ev.OFFSETS["velocity"]] = 0
    gen.session = FakeStep(logits)
    notes = np.concatenate([next(gen.stream(seed=0, count=500, temperature=temperature, candidates=1))
                            for _ in range(2)], axis=1)
    t = temperature * gen.temperatures[1]
    p = np.exp(np.log([0.1, 0.2, 0.3, 0.4]) / t)
    p /= p.sum()
    counts = np.array([(notes[..., 0] == 21 + k).mean() for k in (3, 40, 41, 87)])
    assert counts.sum() == pytest.approx(1)
    assert np.abs(counts - p).max() < 4 * np.sqrt(0.25 / notes[..., 0].size)


def test_bias_masks_keys_and_chords_never_get_stuck(tiny_run):
    """Forbidden keys are never sampled; a chord cannot need a key above the highest allowed one."""
    from midigan import events as ev
    gen = Generator(tiny_run[1])
    bias = np.zeros(ev.WIDTH, np.float32)
    allowed = np.array([30, 31, 35])  # key indices
    bias[ev.OFFSETS["pitch"]:ev.OFFSETS["pitch"] + 88] = -1e9
    bias[ev.OFFSETS["pitch"] + allowed] = 0
    notes = next(gen.stream(seed=3, count=8, bias=bias))
    assert set(np.unique(notes[..., 0]).astype(int) - 21) <= set(allowed)
    chord = np.diff(notes[..., 1], axis=1) == 0
    assert (np.diff(notes[..., 0], axis=1)[chord] > 0).all()
    with pytest.raises(ValueError, match="every key"):
        next(gen.stream(bias=np.full(ev.WIDTH, -1e9, np.float32)))


def test_the_critic_picks_the_phrase_it_scores_highest(tiny_run):
    """candidates = k: k phrases are sampled from the same state, and the line continues with
    the one the critic scores highest (here a stand-in critic that likes high keys)."""
    gen = Generator(tiny_run[1])
    seen = []

    class HighKeys:
        def score(self, events, pos):
            seen.append(events.copy())
            return events[..., 1].mean(axis=1).astype(np.float32)
    gen.critic = HighKeys()
    stream = gen.stream(seed=5, count=2, candidates=4)
    first = next(stream)
    cands = seen[0].reshape(2, 4, gen.seq_len, 4)
    best = cands[..., 1].mean(axis=2).argmax(axis=1)
    for line in range(2):
        assert np.array_equal(first[line, :, 0] - 21, cands[line, best[line], :, 1])
    one = next(Generator(tiny_run[1]).stream(seed=5, count=2, candidates=1))
    assert first[..., 0].mean() > one[..., 0].mean() - 1e-9
    with pytest.raises(ValueError, match="candidates"):
        next(gen.stream(candidates=0))


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
    with pytest.raises(ModelError, match="attributes"):
        Generator(relabel_onnx(path, tmp_path / "attr.onnx", attributes="pitch,step,duration,velocity"))
    tables = json.loads(meta["event_tables"])
    with pytest.raises(ModelError, match="steps_per_beat"):
        Generator(relabel_onnx(path, tmp_path / "grid.onnx", event_tables=json.dumps({**tables, "steps_per_beat": 48})))
    with pytest.raises(ModelError, match="velocity_values"):
        Generator(relabel_onnx(path, tmp_path / "vel.onnx",
                               event_tables=json.dumps({**tables, "velocity_values": [200] * 32})))
    with pytest.raises(ModelError, match="velocity_stay"):
        Generator(relabel_onnx(path, tmp_path / "stay.onnx",
                               event_tables=json.dumps({**tables, "velocity_stay": [0.5, 1.5]})))
    with pytest.raises(ModelError, match="should have the keys"):
        Generator(relabel_onnx(path, tmp_path / "key.onnx", event_tables=json.dumps({**tables, "swing": 1})))
    with pytest.raises(ModelError, match="temperature"):
        Generator(relabel_onnx(path, tmp_path / "temp.onnx", sampling='{"candidates": 1}'))
    with pytest.raises(ModelError, match="not JSON"):
        Generator(relabel_onnx(path, tmp_path / "json.onnx", sampling="hot"))
    with pytest.raises(ModelError, match="critic.*missing"):
        Generator(relabel_onnx(path, tmp_path / "alone.onnx"))  # its critic stayed behind
    with pytest.raises(ModelError, match="is a critic"):
        Generator(path.with_name(path.stem + "-critic.onnx"))
    # a model exported before velocity_stay still loads, and keeps no velocity
    older = {k: v for k, v in tables.items() if k != "velocity_stay"}
    for companion in ("critic", "encoder"):
        shutil.copy(path.with_name(meta[companion]), tmp_path / meta[companion])
    assert "velocity_stay" not in Generator(relabel_onnx(path, tmp_path / "old.onnx", event_tables=json.dumps(older))).tables


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


def test_critic_temperature_draws_candidates_by_softmax_of_their_scores(tiny_run):
    """critic_temperature t > 0: candidate i is kept with probability softmax(score / t)_i
    (importance resampling), not always the best one."""
    gen = Generator(tiny_run[1])
    seen = []

    class Fixed:
        def score(self, events, pos):
            seen.append(events.copy())
            return np.tile(np.log([1.0, 3.0]), len(events) // 2).astype(np.float32)
    gen.critic = Fixed()
    n = 400
    out = next(gen.stream(seed=9, count=n, candidates=2, critic_temperature=1.0))
    cands = seen[0].reshape(n, 2, gen.seq_len, 4)
    second = np.array([np.array_equal(out[i, :, 0] - 21, cands[i, 1, :, 1]) for i in range(n)])
    first = np.array([np.array_equal(out[i, :, 0] - 21, cands[i, 0, :, 1]) for i in range(n)])
    assert (first | second).all()
    assert abs(second.mean() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / n)
    seen.clear()
    best = next(gen.stream(seed=9, count=n, candidates=2, critic_temperature=0))
    cands = seen[0].reshape(n, 2, gen.seq_len, 4)
    assert all(np.array_equal(best[i, :, 0] - 21, cands[i, 1, :, 1]) for i in range(n))


def test_figure_hits_name_where_a_lines_own_figures_led():
    """A figure is the last notes' (interval, onset step) pairs; where it occurred before, the
    note after it there names the next step and key, moved to where the line now stands."""
    from midigan.runtime import figure_hits
    # (step, key): a rising third C D E, a step 12 back down, C D E again (transposed by 0), ...
    past = np.array([[[0, 39], [6, 41], [6, 43], [12, 39], [6, 41], [6, 43]],
                     # the same keys, but the second figure in another rhythm: no figure
                     [[0, 39], [6, 41], [6, 43], [12, 39], [3, 41], [3, 43]],
                     # the figure again a fifth higher: the next key is moved with it
                     [[0, 39], [6, 41], [6, 43], [12, 39], [0, 46], [6, 48]]])
    steps, keys = figure_hits(past, context=2)
    assert np.flatnonzero(steps[0]).tolist() == [12] and np.flatnonzero(keys[0]).tolist() == [39]
    assert not steps[1].any() and not keys[1].any()
    steps2, keys2 = figure_hits(past[2:, 3:], context=2)  # too short to hold a figure twice
    assert not steps2.any() and not keys2.any()
    edge = np.array([[[0, 60], [6, 62], [6, 64], [6, 80], [6, 82], [6, 84]]])  # leads above the top key
    s, k = figure_hits(edge, context=2)
    assert np.flatnonzero(s).tolist() == [6] and not k.any()


def test_figures_bring_a_primed_figure_back(tiny_run):
    """With `figures`, a line primed with a figure played three times plays it on: the key (and,
    a share of the strength, the step) its figure leads to; without, any key of the 88."""
    from midigan import events as ev
    gen = Generator(tiny_run[1])
    gen.session = FakeStep(np.zeros(ev.WIDTH, np.float32))  # every class equally likely
    prime = np.array([[60 + 2 * (i % 3), 0.25 * i, 0.25, 80] for i in range(9)], np.float64)
    first = {}
    for figures in (0.0, 16.0):
        line = next(gen.stream(seed=4, count=300, candidates=1, prime=prime, figures=figures))[:, 0]
        first[figures] = ((line[:, 0] == 60).mean(), (np.abs(line[:, 1] - 2.25) < 1e-9).mean())
    assert first[16.0][0] > 0.95 and first[0.0][0] < 0.1  # C after C D E, as three times before
    assert first[16.0][1] > 0.5 and first[0.0][1] < 0.1  # a quarter beat after the last onset
    with pytest.raises(ValueError, match="figures"):
        next(gen.stream(figures=-1))
