"""Recall hints: known answers, a brute-force reference, and training == runtime."""
import numpy as np
import pytest

from midigan.recall import KINDS, NONE, next_hints, sequence_hints

from .conftest import record_steps, relabel_onnx


def reference_hints(seq, window):
    """The definition, one note at a time, in plain Python."""
    n = len(seq)
    out = [NONE, NONE, NONE]
    if n < 2:
        return out
    last = seq[-1]
    for j in range(n - 2, max(-1, n - 2 - window), -1):  # j = n-2 .. n-1-window
        if seq[j] == last:
            if out[1] == NONE:
                out[1] = seq[j + 1]
            if out[0] == NONE and j >= 1 and seq[j - 1] == seq[-2]:
                out[0] = seq[j + 1]
        if (out[2] == NONE and n >= 4 and j >= 2 and seq[j] - seq[j - 1] == seq[-1] - seq[-2]
                and seq[j - 1] - seq[j - 2] == seq[-2] - seq[-3]):
            key = last + seq[j + 1] - seq[j]
            out[2] = key if 0 <= key < NONE else -1  # -1: the nearest match is off the keyboard
    return [NONE if v == -1 else v for v in out]


def test_alberti_bass_and_a_sequence_by_step():
    c, e, g = 39, 43, 46  # keys 0..87 (C4 = 39)
    h = sequence_hints(np.array([[c, g, e, g, c, g, e, g]]))[0]
    assert h[:3].tolist() == [[NONE] * 3] * 3  # nothing to recall yet
    assert h[4].tolist() == [NONE, e, NONE]  # after C G E G: G was followed by E
    assert h[6].tolist() == [e, c, NONE]  # after ... C G: "C G" was followed by E; G last by C
    assert h[7][0] == g and h[7][2] == g  # after C G E: the figure C G E continues with G
    # A motif one step higher: 0 2 4 | 2 4 6 -> the hint continues it (up a step, then 7).
    assert next_hints(np.array([[10, 12, 14, 15, 12, 14, 16]]))[0, 2] == 17  # 14 -> 15 then, so 16 -> 17


@pytest.mark.parametrize("window", [1, 3, 8, 96])
def test_matches_the_reference_on_random_lines(window):
    rng = np.random.default_rng(window)
    for alphabet in (3, 6, 88):
        x = rng.integers(0, alphabet, (20, 40)) + (0 if alphabet == 88 else 40)
        # some lines walk off the keyboard's ends, so transposed hints must be dropped there
        x[:3] = np.clip(np.cumsum(rng.choice([-5, 5], (3, 40)), axis=1) + 44, 0, 87)
        got = sequence_hints(x, window)
        for b in range(len(x)):
            for t in range(x.shape[1]):
                assert got[b, t].tolist() == reference_hints(x[b, :t].tolist(), window), (b, t)


def test_next_hints_sees_only_the_window_and_keeps_shape():
    assert next_hints(np.zeros((4, 0), np.int64)).shape == (4, len(KINDS))
    line = np.array([[5, 9, 1, 2, 3, 5]])
    assert next_hints(line, window=8)[0, 1] == 9
    assert next_hints(line, window=4)[0, 1] == NONE  # the earlier 5 is 5 notes back
    # a long history gives the same answer as its last window + 3 notes
    long = np.random.default_rng(0).integers(0, 88, (3, 500))
    assert np.array_equal(next_hints(long, 20), next_hints(long[:, -23:], 20))
    with pytest.raises(ValueError, match="history"):
        next_hints(np.zeros(5, np.int64))


def test_runtime_feeds_the_hints_training_used(tiny_run):
    """Step by step through onnxruntime (runtime hints) == teacher forcing in torch (training hints)."""
    torch = pytest.importorskip("torch")
    from midigan.runtime import Generator
    from midigan.training.config import Config, make_config
    from midigan.training.model import build
    from midigan.training.train import load_checkpoint

    ckpt, path = tiny_run
    ck = load_checkpoint(ckpt)
    cfg = make_config(ck["config"], Config())
    assert cfg.recall > 0
    G, _ = build(cfg)
    G.load_state_dict(ck["generator"])
    G.eval()
    gen = Generator(path)
    assert gen.kind == "step-recall" and gen.recall == cfg.recall
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, gen.noise_dim)).astype(np.float32)
    # Sample through the runtime, capturing every step's logits.
    rec = record_steps(gen)
    seen, logits_rt = rec["recall"], rec["logits"]
    keys = gen._run_steps(z, gen.initial_state(4), np.full(4, gen.bos), cfg.seq_len, rng, 1.0)[0] - 21
    x = torch.from_numpy(keys)
    prev = torch.cat([torch.full_like(x[:, :1], G.bos), x[:, :-1]], dim=1)
    hints = G.hints(x)
    assert np.array_equal(np.stack(seen, axis=1), hints.numpy())
    assert (hints != NONE).any()  # the line did recall something
    with torch.no_grad():
        want = G(torch.from_numpy(z), prev, hints=hints)[0].numpy()
    assert np.abs(np.stack(logits_rt, axis=1) - want).max() < 1e-4


def test_runtime_refuses_unknown_recall_metadata(tiny_run, tmp_path):
    from midigan.runtime import Generator, ModelError

    _, path = tiny_run
    with pytest.raises(ModelError, match="recall hints 'key3,key1' are not"):
        Generator(relabel_onnx(path, tmp_path / "h.onnx", recall_hints="key3,key1"))
    with pytest.raises(ModelError, match="recall_window"):
        Generator(relabel_onnx(path, tmp_path / "w.onnx", recall_window="many"))
    with pytest.raises(ModelError, match="do not match"):  # a plain step graph can't claim recall
        Generator(relabel_onnx(path, tmp_path / "o.onnx", output="step"))


@pytest.mark.parametrize("window", [1, 2, 7, 96])
def test_incremental_recall_equals_the_rescan(window):
    """The runtime's O(1) Recall gives next_hints' answers note by note, forever (bounded memory)."""
    from midigan.recall import Recall

    rng = np.random.default_rng(window)
    for alphabet in (2, 5, 88):
        line = rng.integers(0, alphabet, 400) + (0 if alphabet == 88 else 80)  # near the top: off-keyboard
        r = Recall(window)
        assert r.hints() == [NONE] * 3
        for t, k in enumerate(line):
            assert r.push(k) == next_hints(line[None, : t + 1], window)[0].tolist(), (alphabet, t)
        assert len(r._ring) == window + 4
    with pytest.raises(ValueError, match="window"):
        Recall(0)
