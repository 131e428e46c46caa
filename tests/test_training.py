"""Training smoke tests: a few steps on a tiny corpus -> checkpoint -> export -> parity."""
import csv
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from midigan.training.config import CONFIGS, load_config, make_config  # noqa: E402
from midigan.training.export import export_onnx  # noqa: E402
from midigan.training.train import CKPT_KEYS, LOG_FIELDS, load_checkpoint, run_training  # noqa: E402


def test_run_writes_log_plots_and_checkpoint(tiny_run):
    ckpt, onnx_path = tiny_run
    run = ckpt.parent
    ck = load_checkpoint(ckpt)
    assert set(CKPT_KEYS) <= set(ck)
    cfg = CONFIGS["tiny"]
    assert ck["epoch"] == cfg.epochs and ck["step"] == cfg.epochs * cfg.steps_per_epoch
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert len(rows) == ck["step"] and tuple(rows[0]) == LOG_FIELDS
    assert {r["phase"] for r in rows} == {"mle", "adv"}
    for r in rows:
        for k in ("acc_real", "acc_fake"):
            if r[k]:
                assert 0 <= float(r[k]) <= 1
    assert (run / "accuracy.png").stat().st_size > 1000
    assert (run / "losses.png").stat().st_size > 1000
    assert not list(run.glob("*.tmp"))


def test_scalar_model_trains_and_exports(tmp_path, tiny_corpus):
    cfg_file = tmp_path / "s.toml"
    cfg_file.write_text('base = "seed"\nseq_len = 16\nhidden = 8\nd_hidden = 8\nnoise_dim = 4\n'
                        'epochs = 1\nsteps_per_epoch = 2\nbatch_size = 4\n')
    ckpt = run_training(tiny_corpus, tmp_path / "run", config=str(cfg_file), progress=False)
    diff, size = export_onnx(ckpt, tmp_path / "s.onnx")
    assert diff <= 1e-4 and size > 0
    from midigan.runtime import Generator
    g = Generator(tmp_path / "s.onnx")
    assert g.kind == "sequence" and g.encoding == "pitch-linear"
    out = g.generate(2, seed=0)
    assert out.shape == (2, 16) and out.min() >= 21 and out.max() <= 108


def test_resume_equals_uninterrupted(tmp_path, tiny_corpus):
    """Stop after epoch 1, resume to 2: same parameters as running 2 epochs straight."""
    a = run_training(tiny_corpus, tmp_path / "a", config="tiny", epochs=2, progress=False)
    run_training(tiny_corpus, tmp_path / "b", config="tiny", epochs=1, progress=False)
    b = run_training(tiny_corpus, tmp_path / "b", resume=True, epochs=2, progress=False)
    ga, gb = load_checkpoint(a)["generator"], load_checkpoint(b)["generator"]
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
    rows = list(csv.DictReader(open(tmp_path / "b" / "log.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))


def test_likelihood_rate_follows_a_cosine_to_lr_final(tmp_path, tiny_corpus):
    """lr_final: the rate falls from lr_g to lr_g * lr_final over the likelihood steps (computed
    from the step, so a resumed run picks the schedule up where it stopped), then adv_lr_g."""
    from midigan.training.train import _lr_g
    cfg = make_config({"epochs": 3, "pretrain_epochs": 2, "steps_per_epoch": 3, "lr_g": 0.01,
                       "lr_final": 0.1, "adv_lr_g": 0.003}, CONFIGS["tiny"])
    rates = [_lr_g(cfg, step, adversarial=step >= 6) for step in range(9)]
    assert rates[0] == pytest.approx(0.01) and rates[5] == pytest.approx(0.001)
    assert all(a > b for a, b in zip(rates[:5], rates[1:6])) and rates[6:] == [0.003] * 3
    assert rates[2] == pytest.approx(0.01 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 2 / 5))))
    # a real likelihood-only run ends at lr_g * lr_final
    toml = tmp_path / "decay.toml"
    toml.write_text('base = "tiny"\nepochs = 2\npretrain_epochs = 2\nlr_g = 0.01\nlr_final = 0.1\n')
    ck = load_checkpoint(run_training(tiny_corpus, tmp_path / "r", config=str(toml), progress=False))
    assert ck["opt_g"]["param_groups"][0]["lr"] == pytest.approx(0.001)
    assert CONFIGS["tiny"].lr_final == 1.0 and _lr_g(CONFIGS["tiny"], 4, False) == CONFIGS["tiny"].lr_g
    with pytest.raises(ValueError, match="lr_final = 1.5"):
        make_config({"lr_final": 1.5})


def test_init_starts_a_new_run_from_another_runs_weights(tmp_path, tiny_corpus):
    """--init: the new run's first step starts from the given weights, with its own schedule."""
    src = run_training(tiny_corpus, tmp_path / "mle", config="tiny", epochs=1, progress=False)
    ft = tmp_path / "ft.toml"
    ft.write_text('base = "tiny"\nepochs = 1\npretrain_epochs = 0\nadv_lr_g = 0.0\nlr_d = 0.0\n')
    out = run_training(tiny_corpus, tmp_path / "ft", config=str(ft), init=src, progress=False)
    a, b = load_checkpoint(src), load_checkpoint(out)
    # learning rates 0: the weights are exactly those it started from (style tables included)
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])
    assert all(torch.equal(a["discriminator"][k], b["discriminator"][k]) for k in a["discriminator"])
    assert b["epoch"] == 1 and b["config"]["name"] == "ft"
    rows = list(csv.DictReader(open(tmp_path / "ft" / "log.csv")))
    assert {r["phase"] for r in rows} == {"adv"}  # its own schedule: adversarial from step one
    with pytest.raises(ValueError, match="generator does not fit config 'seed'"):
        run_training(tiny_corpus, tmp_path / "bad", config="seed", init=src, progress=False)
    assert not (tmp_path / "bad" / "checkpoint.pt").exists()


def test_init_with_another_discriminator_design_keeps_the_generator(tmp_path, tiny_corpus, capsys):
    """--init from a run whose discriminator has another input set: generator carried over, fresh critic."""
    src = run_training(tiny_corpus, tmp_path / "mle", config="tiny", epochs=1, progress=False)
    ft = tmp_path / "ftd.toml"
    ft.write_text('base = "tiny"\nepochs = 1\npretrain_epochs = 0\nadv_lr_g = 0.0\nd_intervals = 1\n')
    out = run_training(tiny_corpus, tmp_path / "ftd", config=str(ft), init=src, progress=False)
    assert "discriminator does not fit config 'ftd'; starting a fresh one" in capsys.readouterr().err
    a, b = load_checkpoint(src), load_checkpoint(out)
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])
    assert b["discriminator"]["lstm.weight_ih_l0"].shape[1] == a["discriminator"]["lstm.weight_ih_l0"].shape[1] + 9


def test_discriminator_interval_classes_are_exact_and_differentiable():
    """d_intervals: each step's class from one-hots equals np.digitize of the key difference."""
    from midigan.training.model import INTERVAL_EDGES, build

    _, D = build(make_config({"d_intervals": 1}, CONFIGS["tiny"]))
    keys = torch.tensor([[40, 40, 41, 39, 52, 53, 87, 0, 2, 7, 13, 20, 21]])
    x = torch.nn.functional.one_hot(keys, 88).float().requires_grad_(True)
    m = D.interval_classes(x)
    want = np.digitize(np.diff(keys.numpy()), INTERVAL_EDGES)  # 0 = octave+ down .. 8 = octave+ up
    assert m.shape == (1, 13, 9) and m[0, 0].sum() == 0
    assert torch.equal(m[0, 1:], torch.nn.functional.one_hot(torch.from_numpy(want[0]), 9).float())
    assert want[0].tolist() == [4, 5, 3, 8, 5, 8, 0, 5, 6, 7, 7, 5]
    D(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_refuses_to_overwrite_and_bad_resumes(tmp_path, tiny_corpus):
    run_training(tiny_corpus, tmp_path / "r", config="tiny", epochs=1, progress=False)
    before = (tmp_path / "r" / "checkpoint.pt").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        run_training(tiny_corpus, tmp_path / "r", config="tiny", progress=False)
    with pytest.raises(ValueError, match="config 'tiny', not 'seed'"):
        run_training(tiny_corpus, tmp_path / "r", config="seed", resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run_training(tiny_corpus, tmp_path / "nothing", resume=True, progress=False)
    assert (tmp_path / "r" / "checkpoint.pt").read_bytes() == before


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the point of the test: foreign pickles
def test_checkpoint_with_pickled_object_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    p = tmp_path / "evil.pt"
    torch.save({"format": "midigan-checkpoint", "payload": Evil()}, p)
    with pytest.raises(ValueError, match="not a midigan checkpoint"):
        load_checkpoint(p)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="not a midigan checkpoint"):
        load_checkpoint(junk)


def test_config_fails_loudly(tmp_path):
    with pytest.raises(ValueError, match="unknown key 'hiden'"):
        make_config({"hiden": 3})
    with pytest.raises(ValueError, match="should be int"):
        make_config({"hidden": 1.5})
    with pytest.raises(ValueError, match="unknown config"):
        load_config("huge")
    assert load_config("default") == CONFIGS["default"]


def test_export_parity_catches_mismatch(tiny_run, tmp_path, monkeypatch):
    """A generator that disagrees with its ONNX graph is not written."""
    import midigan.training.export as ex
    ckpt, _ = tiny_run
    monkeypatch.setattr(ex, "TOLERANCE", -1.0)  # no difference can pass
    with pytest.raises(RuntimeError, match="disagree"):
        ex.export_onnx(ckpt, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_shipped_model_metadata_round_trips_into_a_trainable_config():
    """The shipped model loads, generates, and its config_json is a config the trainer accepts."""
    import json

    from midigan.runtime import Generator, default_model_path

    g = Generator(default_model_path())
    cfg = make_config(json.loads(g.meta["config_json"]))
    assert (cfg.seq_len, cfg.noise_dim) == (g.seq_len, g.noise_dim)
    out = g.generate(2, seed=0)
    assert out.shape == (2, g.seq_len) and out.min() >= 21 and out.max() <= 108
