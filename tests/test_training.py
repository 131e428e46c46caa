"""Training: a few steps on a tiny corpus -> checkpoint -> export -> parity; resume; configs."""
import csv
import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from midigan.training.checkpoint import KEYS, load_checkpoint  # noqa: E402
from midigan.training.config import CONFIGS, Config, load_config, make_config  # noqa: E402
from midigan.training.export import export_onnx  # noqa: E402
from midigan.training.log import FIELDS  # noqa: E402
from midigan.training.train import run_training  # noqa: E402


def test_run_writes_log_plots_and_checkpoint(tiny_run):
    ckpt, onnx_path = tiny_run
    run = ckpt.parent
    ck = load_checkpoint(ckpt)
    assert tuple(ck) == KEYS
    cfg = CONFIGS["tiny"]
    assert ck["step"] == cfg.mle_steps + cfg.adv_steps
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, ck["step"] + 1)) and tuple(rows[0]) == FIELDS
    assert [r["phase"] for r in rows] == ["mle"] * cfg.mle_steps + ["adv"] * cfg.adv_steps
    assert all(0 <= float(r[k]) <= 1 for r in rows for k in ("acc_real", "acc_fake") if r[k])
    vals = [float(r["val_nll"]) for r in rows if r["val_nll"] and r["phase"] == "mle"]
    assert len(vals) == len({*range(cfg.val_every, cfg.mle_steps + 1, cfg.val_every), cfg.mle_steps})
    assert ck["best_nll"] == pytest.approx(min(vals), rel=1e-4)
    # each head's validation NLL is logged beside the total, and they add up to it
    parts = [sum(float(r[f"val_nll_{a}"]) for a in ("step", "pitch", "duration", "velocity"))
             for r in rows if r["val_nll"] and r["phase"] == "mle"]
    assert parts == pytest.approx(vals, rel=1e-3)
    # a GAN ships its last generator
    assert all(torch.equal(ck["generator"][k], ck["best_generator"][k]) for k in ck["generator"])
    assert (run / "accuracy.png").stat().st_size > 1000
    assert (run / "losses.png").stat().st_size > 1000
    assert not list(run.glob(".*tmp*"))


def test_export_writes_generator_and_critic_that_describe_themselves(tiny_run):
    from midigan import events as ev
    from midigan.corpus import Notes
    from midigan.runtime import Generator, read_metadata

    _, onnx_path = tiny_run
    meta = read_metadata(onnx_path)
    assert meta["output"] == "event" and meta["encoding"] == "note-event"
    # durations decode to the training notes' medians: the tiny corpus holds eighths of a beat only
    tables = json.loads(meta["event_tables"])
    assert tables["duration_beats"] == ev.tables([Notes(*[np.array([x]) for x in (60, 0.0, 0.125, 64, 0.0)], 1.0, 0)]
                                                 )["duration_beats"]
    stay = tables["velocity_stay"]  # counted on the training notes, both kinds present in the tiny corpus
    assert len(stay) == 2 and all(0 <= x <= 1 for x in stay)
    eighth = int(np.searchsorted(ev.duration_edges(), 0.125 * 24))
    assert tables["duration_beats"][eighth] == 0.125 != round(ev.duration_values()[eighth], 6)
    sampling = json.loads(meta["sampling"])
    assert sampling["candidates"] == CONFIGS["tiny"].candidates and set(sampling["temperature"]) == set(ev.ATTRS)
    assert meta["critic"] == onnx_path.stem + "-critic.onnx" and "/tmp" not in meta["training_command"]
    assert make_config(json.loads(meta["config_json"])) == CONFIGS["tiny"]
    g = Generator(onnx_path)
    assert g.critic is not None and read_metadata(g.critic.path)["output"] == "critic"
    assert g.critic_temperature == 0 and (g.temperatures == 1.0).all()


def test_export_stores_sampling_settings_chosen_after_training(tiny_run, tmp_path):
    """The recommended settings (chosen on validation) travel in the model; the runtime uses them."""
    from midigan.runtime import Generator

    ckpt, _ = tiny_run
    export_onnx(ckpt, tmp_path / "t.onnx", sampling={"temperature": 0.8, "critic_temperature": 2.0,
                                                      "candidates": None})
    g = Generator(tmp_path / "t.onnx")
    assert (g.temperatures == np.float32(0.8)).all() and g.critic_temperature == 2.0
    assert g.candidates == CONFIGS["tiny"].candidates


def test_export_takes_a_temperature_per_attribute(tiny_run, tmp_path):
    from click.testing import CliRunner

    from midigan.cli import main
    from midigan.runtime import Generator

    ckpt, _ = tiny_run
    out = tmp_path / "v.onnx"
    r = CliRunner().invoke(main, ["export", str(ckpt), "-o", str(out), "--temperature", "velocity=0.7,step=0.9"])
    assert r.exit_code == 0, r.output
    assert Generator(out).temperatures.tolist() == pytest.approx([0.9, 1.0, 1.0, 0.7])
    for bad, why in (("loudness=0.7", "unknown attribute 'loudness'"), ("velocity=9", "must be 0.05-4"),
                     ("hot", "'hot' is not a number")):
        r = CliRunner().invoke(main, ["export", str(ckpt), "-o", str(tmp_path / "x.onnx"), "--temperature", bad])
        assert r.exit_code == 1 and why in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.onnx").exists()


def test_scalar_model_trains_and_exports(tmp_path, tiny_corpus):
    cfg_file = tmp_path / "s.toml"
    cfg_file.write_text('base = "seed"\nseq_len = 16\nhidden = 8\nd_hidden = 8\nnoise_dim = 4\n'
                        'adv_steps = 3\nval_every = 2\nbatch_size = 4\n')
    ckpt = run_training(tiny_corpus, tmp_path / "run", config=str(cfg_file), progress=False)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [r["phase"] for r in rows] == ["adv"] * 3 and all(r["g_adv"] for r in rows)
    diff, size = export_onnx(ckpt, tmp_path / "s.onnx")
    assert diff <= 1e-4 and size > 0 and not (tmp_path / "s-critic.onnx").exists()
    from midigan.runtime import Generator
    g = Generator(tmp_path / "s.onnx")
    assert g.kind == "sequence" and g.encoding == "pitch-linear" and not g.timed
    out = next(g.stream(seed=0, count=2))
    assert out.shape == (2, 16) and out.min() >= 21 and out.max() <= 108


@pytest.mark.parametrize("latent", [{}, {"kl_weight": 0.0}], ids=["latent", "noise"])
def test_resume_after_a_kill_equals_uninterrupted(tmp_path, tiny_corpus, monkeypatch, latent):
    """Killed after the step-5 checkpoint (inside the likelihood phase), resumed: the same weights,
    optimisers and log as a run that was never stopped, across the switch to the critic phase."""
    monkeypatch.setitem(CONFIGS, "tiny", make_config({"mle_steps": 8, **latent}, CONFIGS["tiny"]))
    from midigan.training import log as log_mod

    a = load_checkpoint(run_training(tiny_corpus, tmp_path / "a", config="tiny", progress=False))
    write = log_mod.Log.write

    def killed_at_7(self, step, row):
        if step == 7:
            raise KeyboardInterrupt
        write(self, step, row)
    monkeypatch.setattr(log_mod.Log, "write", killed_at_7)
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny_corpus, tmp_path / "b", config="tiny", progress=False)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 5
    monkeypatch.setattr(log_mod.Log, "write", write)
    b = load_checkpoint(run_training(tiny_corpus, tmp_path / "b", resume=True, progress=False))
    for k in ("generator", "best_generator", "discriminator"):
        assert all(torch.equal(a[k][n], b[k][n]) for n in a[k]), k
    assert a["opt_d"]["state"][0]["exp_avg"].equal(b["opt_d"]["state"][0]["exp_avg"])
    rows = lambda r: [(x["step"], x["nll"], x["d_loss"]) for x in csv.DictReader(open(tmp_path / r / "log.csv"))]
    assert rows("a") == rows("b")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_every_phase_trains_on_cuda_and_the_run_resumes_on_cpu(tmp_path, tiny_corpus, monkeypatch):
    """cuDNN refuses what the CPU allows (an LSTM's backward in eval mode, a CPU generator drawing
    on the GPU): both once broke `--device cuda`, which CI (no GPU) cannot see."""
    from midigan.training import log as log_mod
    write = log_mod.Log.write

    def killed_at_8(self, step, row):  # in the discriminator's phase; the last checkpoint is step 6's
        if step == 8:
            raise KeyboardInterrupt
        write(self, step, row)
    monkeypatch.setattr(log_mod.Log, "write", killed_at_8)
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny_corpus, tmp_path / "run", config="tiny", device="cuda", progress=False)
    monkeypatch.setattr(log_mod.Log, "write", write)
    ckpt = run_training(tiny_corpus, tmp_path / "run", resume=True, device="cpu", progress=False)
    cfg = CONFIGS["tiny"]
    assert load_checkpoint(ckpt)["step"] == cfg.mle_steps + cfg.adv_steps
    diff, _ = export_onnx(ckpt, tmp_path / "t.onnx")
    assert diff <= 1e-4


def test_likelihood_rate_follows_a_cosine_to_lr_final():
    from midigan.training.train import _lr
    cfg = make_config({"mle_steps": 6, "lr_g": 0.01, "lr_final": 0.1}, CONFIGS["tiny"])
    rates = [_lr(cfg, s) for s in range(6)]
    assert rates[0] == pytest.approx(0.01) and rates[5] == pytest.approx(0.001)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert rates[2] == pytest.approx(0.01 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 2 / 5))))


def test_windows_keep_chords_climbing_and_transpose_within_the_keyboard(shared_or_tiny_pieces):
    from midigan import events as ev
    from midigan.training.data import EventWindows

    w = EventWindows(shared_or_tiny_pieces, 32)
    e, pos = w.sample(64, 5, torch.Generator().manual_seed(0))
    real = e[..., 1] < ev.SIZES["pitch"]
    assert e.shape == (64, 33, 4) and real[:, 1:].all()
    assert e[..., 1][real].min() >= 0 and e[..., 1][real].max() < 88
    chord = (e[:, 1:, 0] == 0) & real[:, :-1]
    assert (e[:, 1:, 1][chord] > e[:, :-1, 1][chord]).all()  # a chord's keys climb, as the model is told
    assert torch.equal(pos[:, 1:], (pos[:, :-1] + e[:, 1:, 0]) % ev.BAR_STEPS)


@pytest.fixture
def shared_or_tiny_pieces(tiny_corpus):
    from midigan.corpus import load_corpus
    return load_corpus(tiny_corpus).pieces


def test_refuses_to_overwrite_and_bad_resumes(tmp_path, tiny_corpus):
    run_training(tiny_corpus, tmp_path / "r", config="tiny", progress=False)
    before = (tmp_path / "r" / "checkpoint.pt").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        run_training(tiny_corpus, tmp_path / "r", config="tiny", progress=False)
    with pytest.raises(ValueError, match="config 'tiny', not 'seed'"):
        run_training(tiny_corpus, tmp_path / "r", config="seed", resume=True, progress=False)
    with pytest.raises(ValueError, match="already finished"):
        run_training(tiny_corpus, tmp_path / "r", resume=True, progress=False)
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
    with pytest.raises(ValueError, match="candidates = 1"):
        make_config({"candidates": 4}, CONFIGS["seed"])
    with pytest.raises(ValueError, match="kl_weight and free_bits"):
        make_config({"kl_weight": -1.0})
    with pytest.raises(ValueError, match="intervals = 2 should be 0 or 1"):
        make_config({"intervals": 2})
    with pytest.raises(ValueError, match="unknown config"):
        load_config("huge")
    toml = tmp_path / "mine.toml"
    toml.write_text('base = "seed"\nhiden = 3\n')
    with pytest.raises(ValueError, match="unknown key 'hiden'"):
        load_config(str(toml))
    assert load_config("default") == Config()


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
    from midigan.runtime import Generator, default_model_path

    g = Generator(default_model_path())
    cfg = make_config(json.loads(g.meta["config_json"]))
    assert (cfg.seq_len, cfg.noise_dim) == (g.seq_len, g.noise_dim)
    notes = next(g.stream(seed=0, count=2, candidates=1))
    assert notes.shape == (2, g.seq_len, 4) and notes[..., 0].min() >= 21 and notes[..., 0].max() <= 108
    assert "/tmp/" not in g.meta["training_command"] + g.meta["export_command"]


def test_chord_rule_lets_a_chord_only_climb():
    """Step 0 (struck with the note before): keys at or below that note are forbidden, since a
    chord is written low to high; after the start (key 88) or with a step, anything goes."""
    from midigan.training.model import chord_rule
    r = chord_rule(torch.tensor([0, 0, 5]), torch.tensor([40, 88, 40]))
    assert (r[0, :41] < -1e8).all() and (r[0, 41:] == 0).all()
    assert (r[1] == 0).all() and (r[2] == 0).all()


def test_training_samples_follow_the_generators_distribution():
    """G.sample draws each attribute from softmax(logits / T), never a forbidden key: the
    discriminator learns from these samples, and the runtime's candidates are drawn the same way."""
    from midigan import events as ev
    from midigan.training.model import build

    cfg = CONFIGS["tiny"]
    G, _ = build(cfg)
    G.eval()
    p = torch.full((ev.SIZES["step"],), 1e-6)
    p[[0, 6, 24]] = torch.tensor([0.5, 0.3, 0.2])
    with torch.no_grad():
        G.step_head.weight.zero_()
        G.step_head.bias.copy_(p.log())
    z = torch.randn(4000, cfg.noise_dim)
    for t in (1.0, 0.5):
        e, _ = G.sample(z, 2, t, torch.Generator().manual_seed(0))
        want = p ** (1 / t) / (p ** (1 / t)).sum()
        freq = torch.bincount(e[:, 1, 0], minlength=ev.SIZES["step"]).float() / len(z)
        assert (freq - want).abs().max() < 0.03, (t, freq[[0, 6, 24]], want[[0, 6, 24]])
        chord = e[:, 1, 0] == 0
        assert (e[chord, 1, 1] > e[chord, 0, 1]).all()  # a chord climbs


def test_the_encoders_posterior_is_the_noise_the_generator_reads():
    """encode=True: the noise fed is mean + sigma * eps from the encoder over the window, the KL
    is per noise dimension (0 at N(0, I)), and the likelihood's gradient reaches the encoder."""
    from midigan.training.model import build

    cfg = CONFIGS["tiny"]
    G, _ = build(cfg)
    G.eval()
    e = torch.randint(0, 8, (3, cfg.seq_len + 1, 4))
    pos = torch.randint(0, 8, (3, cfg.seq_len + 1))
    eps = torch.randn(3, cfg.noise_dim)
    with torch.no_grad():
        G.encoder.out.weight.zero_()
        G.encoder.out.bias.zero_()
    logits, _, kl = G(eps, e, pos, encode=True)
    assert kl.shape == (cfg.noise_dim,) and torch.allclose(kl, torch.zeros_like(kl))
    assert torch.allclose(logits, G(eps, e, pos)[0])  # the posterior is N(0, I): the noise is eps itself
    with torch.no_grad():
        G.encoder.out.bias[0] = 2.0  # the first dimension's mean
    logits, _, kl = G(eps, e, pos, encode=True)
    assert kl[0].item() == pytest.approx(2.0) and torch.allclose(kl[1:], torch.zeros_like(kl[1:]))
    z = eps.clone()
    z[:, 0] += 2.0
    assert torch.allclose(logits, G(z, e, pos)[0], atol=1e-6)
    with torch.no_grad():
        G.encoder.out.weight.normal_()
    logits, _, _ = G(eps, e, pos, encode=True)
    logits.logsumexp(-1).sum().backward()
    assert G.encoder.lstm.weight_ih_l0.grad.abs().sum() > 0


def test_a_latent_run_logs_its_kl_and_bounds_the_likelihood_with_it(tmp_path, tiny_corpus):
    """kl_weight > 0: each likelihood step logs the KL, validation adds KL per note to the NLL (the
    bound that picks the generator), and the export leaves the encoder behind."""
    ckpt = run_training(tiny_corpus, tmp_path / "run", config="tiny", progress=False)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    mle = [r for r in rows if r["phase"] == "mle"]
    assert all(float(r["kl"]) >= 0 for r in mle)
    val = [r for r in mle if r["val_nll"]]
    cfg = CONFIGS["tiny"]
    for r in val:
        parts = sum(float(r[f"val_nll_{a}"]) for a in ("step", "pitch", "duration", "velocity"))
        assert float(r["val_nll"]) == pytest.approx(parts + float(r["val_kl"]) / cfg.seq_len, rel=1e-4)
    diff, _ = export_onnx(ckpt, tmp_path / "l.onnx")
    assert diff <= 1e-4


def test_a_latent_model_ships_its_encoder_and_priming_reads_the_noise_with_it(tiny_run, tmp_path):
    """The encoder is exported beside the generator (named in its metadata, checked against
    torch); a primed stream's noise is the encoder's mean over the prime, for every line; a
    model without its encoder file is refused, and the encoder file is not a generator."""
    from midigan import events as ev
    from midigan.runtime import Generator, ModelError, read_metadata
    from midigan.training.model import build

    ckpt, onnx_path = tiny_run
    enc = onnx_path.with_name("tiny-encoder.onnx")
    assert read_metadata(onnx_path)["encoder"] == enc.name and read_metadata(enc)["output"] == "encoder"
    gen = Generator(onnx_path)
    prime = np.array([[60 + i % 7, i * 0.5, 0.5, 40 + i] for i in range(40)], np.float64)
    z = np.zeros((3, gen.noise_dim), np.float32)
    got = gen.noise_for(prime, z)
    G, _ = build(CONFIGS["tiny"])
    G.load_state_dict(load_checkpoint(ckpt)["best_generator"])
    G.eval()
    tail = prime[-CONFIGS["tiny"].seq_len:]
    e, pos = ev.encode(tail[:, 0].astype(int), tail[:, 1], tail[:, 2], tail[:, 3].astype(int))
    with torch.no_grad():
        want = G.encoder(torch.from_numpy(e)[None], torch.from_numpy(pos)[None])[0].numpy()
    assert got.shape == (3, gen.noise_dim) and np.allclose(got, want, atol=1e-4)
    with pytest.raises(ModelError, match="not a generator"):
        Generator(enc)
    for f in ("tiny.onnx", "tiny-critic.onnx"):
        (tmp_path / f).write_bytes((onnx_path.parent / f).read_bytes())
    with pytest.raises(ModelError, match="encoder tiny-encoder.onnx is missing"):
        Generator(tmp_path / "tiny.onnx")


def test_the_interval_head_adds_each_keys_interval_from_the_note_before():
    """Key k's logit gains the interval head's logit of k - (the key before); after START
    nothing; the chord rule still forbids a chord's keys at or below the one before."""
    from midigan import events as ev
    from midigan.music import N_PITCHES
    from midigan.training.model import NEG, build

    G, _ = build(make_config({}, CONFIGS["tiny"]))
    assert G.interval_head is not None and build(make_config({"intervals": 0}, CONFIGS["tiny"]))[0].interval_head is None
    u = torch.zeros(1, 3, CONFIGS["tiny"].hidden)
    with torch.no_grad():
        G.pitch_head.weight.zero_()
        G.pitch_head.bias.zero_()
        G.interval_head.weight.zero_()
        G.interval_head.bias.copy_(torch.arange(2 * N_PITCHES - 1, dtype=torch.float32))  # logit = interval + 87
        step, prev = torch.tensor([[3, 0, 3]]), torch.tensor([[40, 40, ev.START["pitch"]]])
        logits = G._pitch_logits(u, step, prev)
    keys = torch.arange(N_PITCHES, dtype=torch.float32)
    assert torch.equal(logits[0, 0], keys - 40 + 87)
    assert torch.equal(logits[0, 1, 41:], (keys - 40 + 87)[41:]) and (logits[0, 1, :41] < NEG / 2).all()
    assert torch.equal(logits[0, 2], torch.zeros(N_PITCHES))


def test_a_checkpoint_from_before_the_latent_still_exports(tiny_run, tmp_path):
    """A run written before `kl_weight` and `intervals` existed has no encoder and no interval
    head: its config reads as kl_weight 0, intervals 0."""
    import dataclasses

    from midigan.training.model import build

    ck = load_checkpoint(tiny_run[0])
    cfg = make_config({"kl_weight": 0.0, "intervals": 0}, CONFIGS["tiny"])
    G, _ = build(cfg)
    old = {**ck, "config": {k: v for k, v in dataclasses.asdict(cfg).items()
                            if k not in ("kl_weight", "free_bits", "intervals")},
           "generator": G.state_dict(), "best_generator": G.state_dict()}
    torch.save(old, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["config"]["kl_weight"] == 0.0
    assert load_checkpoint(tmp_path / "old.pt")["config"]["intervals"] == 0
    diff, _ = export_onnx(tmp_path / "old.pt", tmp_path / "old.onnx")
    assert diff <= 1e-4 and not (tmp_path / "old-encoder.onnx").exists()
    from midigan.runtime import Generator
    gen = Generator(tmp_path / "old.onnx")
    z = np.ones((2, gen.noise_dim), np.float32)
    assert gen.encoder is None and gen.noise_for(np.array([[60, 0, 1, 64]], float), z) is z
