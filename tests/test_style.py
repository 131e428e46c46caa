"""Style codes: window statistics with known answers, whitening, and the trained generator's tables."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from midigan.training import style  # noqa: E402
from midigan.training.config import STYLE_DIM  # noqa: E402


def test_descriptors_of_known_lines():
    c4 = 60 - 21
    repeated = np.full((1, 16), c4)
    f = style.descriptors(repeated)[0]
    assert f.shape == (STYLE_DIM,)
    assert f[0] == pytest.approx(c4 / 88) and f[1] == 0  # register, spread
    assert f[2:4] == pytest.approx([1, 0])  # all C: angle 0 on the circle of fifths
    assert f[4:9] == pytest.approx([1, 1, 1, 1, 1])  # repeats at every lag
    assert f[9:18] == pytest.approx(np.eye(9)[4])  # every interval is a repeat (class 4 of 9)
    assert f[18:] == pytest.approx([1 / 16, 0])  # one distinct key, pitch-class entropy 0
    scale = np.array([[0, 2, 4, 5, 7, 9, 11, 12] * 2]) + c4  # C major up, twice
    f = style.descriptors(scale)[0]
    assert f[4] == 0 and f[8] == 1  # no repeat at lag 1; all at lag 8
    want = np.zeros(9)
    want[5], want[1] = 14 / 15, 1 / 15  # steps of 1-2 up, and one octave down
    assert f[9:18] == pytest.approx(want)
    entropy = -(0.25 * np.log(0.25) + 6 * 0.125 * np.log(0.125)) / np.log(12)  # C 4 of 16, six others 2
    assert f[18:] == pytest.approx([8 / 16, entropy])


def test_codes_are_white_on_the_fitted_windows():
    rng = np.random.default_rng(0)
    walks = np.clip(np.cumsum(rng.integers(-15, 16, (3000, 50)), axis=1) + rng.integers(20, 68, (3000, 1)), 0, 87)
    walks[:1000, 1::2] = walks[:1000, ::2]  # some windows repeat every note: not Gaussian at all
    table = style.fit(walks)
    z = style.encode(walks, table)
    assert z.shape == (3000, STYLE_DIM) and z.dtype == np.float32
    assert np.abs(z.mean(0)).max() < 0.05
    # white, up to the small ridge: the nine interval-class shares sum to one, which leaves one
    # direction (nearly) without variance; it stays small instead of being blown up
    eig = np.linalg.eigvalsh(np.cov(z, rowvar=False))
    assert eig.max() < 1.05 and (eig > 0.95).sum() >= STYLE_DIM - 1
    # a window's code depends on that window only
    assert np.allclose(style.encode(walks[:5], table), z[:5], atol=1e-6)


def test_trained_generator_carries_its_table(tiny_run):
    from midigan.training.config import CONFIGS
    from midigan.training.train import load_checkpoint

    assert CONFIGS["tiny"].style == 1
    ck = load_checkpoint(tiny_run[0])
    white = ck["generator"]["style_white"]
    assert white.shape == (STYLE_DIM, STYLE_DIM) and torch.linalg.matrix_rank(white) == STYLE_DIM
    assert (ck["generator"]["style_quantiles"].diff(dim=1) >= 0).all()  # sorted quantile tables


def test_soft_descriptors_equal_descriptors_on_one_hots():
    rng = np.random.default_rng(1)
    keys = np.clip(np.cumsum(rng.integers(-14, 15, (40, 100)), axis=1) + 40, 0, 87)
    keys[:10, 1::2] = keys[:10, ::2]  # repeated notes, so every lag statistic is non-trivial
    x = torch.nn.functional.one_hot(torch.from_numpy(keys), 88).double().requires_grad_()
    soft = style.soft_descriptors(x)
    assert np.allclose(soft.detach().numpy(), style.descriptors(keys), atol=1e-6)
    soft[:, 4].sum().backward()  # lag-1 repetition: its gradient reaches the one-hots
    assert x.grad.abs().sum() > 0


def test_style_consistency_term_trains(tmp_path, tiny_corpus):
    from midigan.training.config import make_config, CONFIGS
    from midigan.training.train import load_checkpoint, run_training

    with pytest.raises(ValueError, match="code_weight"):
        make_config({"code_weight": 1.0, "style": 0}, CONFIGS["tiny"])
    cfg = tmp_path / "c.toml"
    cfg.write_text('base = "tiny"\ncode_weight = 1.0\n')
    ckpt = run_training(tiny_corpus, tmp_path / "run", config=str(cfg), progress=False)
    ck = load_checkpoint(ckpt)
    assert ck["config"]["code_weight"] == 1.0
    assert all(torch.isfinite(v).all() for v in ck["generator"].values() if v.is_floating_point())
    import csv
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    sampled = [r for r in rows if r["acc_real"]]  # steps that sampled lines (warm-up and adversarial)
    assert sampled and all(float(r["code"]) > 0 for r in sampled)
    assert all(not r["code"] for r in rows if not r["acc_real"])


@pytest.mark.parametrize("adversarial", [True, False])
def test_style_consistency_term_adds_the_statistics_gap(adversarial):
    """One step (adversarial, or the discriminator's warm-up) from the same weights, data and
    noise, with and without the term: the discriminator's update is the same; the generator's
    loss grows by the gap between the sampled lines' statistics and their windows'."""
    import dataclasses
    from midigan.training.config import CONFIGS
    from midigan.training.model import build
    from midigan.training.train import _step

    def one_step(weight):
        cfg = dataclasses.replace(CONFIGS["tiny"], code_weight=weight)
        torch.manual_seed(0)
        G, D = build(cfg)
        with torch.no_grad():  # a usable style table: the identity map around the middle
            G.style_quantiles.copy_(torch.linspace(0, 1, G.style_quantiles.shape[1]).expand_as(G.style_quantiles))
            G.style_white.copy_(torch.eye(G.style_white.shape[0], dtype=torch.float64))
        opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (G, D))
        g = torch.Generator().manual_seed(3)
        real = torch.randint(0, 88, (4, cfg.seq_len), generator=torch.Generator().manual_seed(4))
        return _step(cfg, G, D, opt_g, opt_d, real, adversarial, True, g, torch.device("cpu"),
                     code_sd=torch.ones(20))

    without, with_term = one_step(0.0), one_step(1.0)
    assert with_term["d_loss"] == without["d_loss"] and with_term["nll"] == without["nll"]
    assert with_term["g_loss"] > without["g_loss"] + 1e-3


def test_window_stats_of_a_repeated_note():
    c4 = 60 - 21
    x = torch.nn.functional.one_hot(torch.full((1, 16), c4), 88).float()
    f = style.window_stats(x)[0].numpy()
    assert f.shape == (141,)
    assert f[:12] == pytest.approx(np.eye(12)[0])  # all C
    assert f[12:39] == pytest.approx(np.eye(27)[13])  # every interval 0
    assert f[39:120] == pytest.approx(np.eye(81)[4 * 9 + 4])  # repeat after repeat
    assert f[120:128] == pytest.approx([1, 1, 1, 1, 1, 1, 1, 0])  # key repeats at lags 1..12; 16 >= length
    assert f[128:136] == pytest.approx([1, 1, 1, 1, 1, 1, 1, 0])  # interval repeats likewise
    assert f[136:] == pytest.approx([c4 / 88, 0, 0, 0, 0], abs=1e-3)  # register, spread, rising, leaps, turns


def test_window_stats_match_the_two_sample_tests_features():
    """On one-hot lines with steps within an octave and a sixth, the statistics are the two-sample
    test's (metrics.c2st_features) for pitch classes, intervals, interval-class bigrams and repetition;
    and their gradient reaches the one-hots."""
    from midigan import metrics

    rng = np.random.default_rng(1)
    keys = np.clip(np.cumsum(rng.integers(-6, 7, (30, 100)), axis=1) + 40, 0, 87)
    keys[:8, 1::2] = keys[:8, ::2]
    x = torch.nn.functional.one_hot(torch.from_numpy(keys), 88).double().requires_grad_()
    f = style.window_stats(x)
    want = metrics.c2st_features(keys + 21)[:, :136]
    assert np.allclose(f[:, :136].detach().numpy(), want, atol=1e-9)
    turns = np.abs(np.diff(np.sign(np.diff(keys, axis=1)), axis=1))
    assert f[:, 140].detach().numpy() == pytest.approx(((turns == 2).sum(1)) / 98)  # up-then-down or down-then-up
    f[:, 120].sum().backward()
    assert x.grad.abs().sum() > 0


def test_mmd_is_small_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 10, generator=g), torch.randn(64, 10, generator=g)
    same, shifted = style.mmd(a, b).item(), style.mmd(a, b + 1.0).item()
    assert abs(same) < 0.1 < shifted


def test_mmd_term_is_refused_for_the_scalar_model_and_logged(tmp_path, tiny_corpus):
    from midigan.training.config import CONFIGS, make_config
    from midigan.training.train import run_training

    with pytest.raises(ValueError, match="mmd_weight"):
        make_config({"mmd_weight": 1.0}, CONFIGS["seed"])
    cfg = tmp_path / "c.toml"
    cfg.write_text('base = "tiny"\nmmd_weight = 5.0\n')
    run_training(tiny_corpus, tmp_path / "run", config=str(cfg), progress=False)
    import csv
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    sampled = [r for r in rows if r["acc_real"]]
    assert sampled and all(r["mmd"] for r in sampled)
    assert all(not r["mmd"] for r in rows if not r["acc_real"])
    assert not any(r["marginal"] for r in rows)
    # The marginal term against banks, on a chord model: logged on the same steps.
    cfg.write_text('base = "tiny"\nchords = 1\nmmd_weight = 5.0\nmarginal_weight = 5.0\nmmd_bank = 16\n')
    run_training(tiny_corpus, tmp_path / "run2", config=str(cfg), progress=False)
    rows = list(csv.DictReader(open(tmp_path / "run2" / "log.csv")))
    sampled = [r for r in rows if r["acc_real"]]
    assert sampled and all(r["mmd"] and r["marginal"] for r in sampled)
    assert all(not r["marginal"] for r in rows if not r["acc_real"])


@pytest.mark.parametrize("adversarial", [True, False])
def test_mmd_term_adds_to_the_generator_loss_only(adversarial):
    import dataclasses
    from midigan.training.config import CONFIGS
    from midigan.training.model import build
    from midigan.training.train import _step

    def one_step(weight):
        cfg = dataclasses.replace(CONFIGS["tiny"], mmd_weight=weight)
        torch.manual_seed(0)
        G, D = build(cfg)
        opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (G, D))
        real = torch.randint(0, 88, (6, cfg.seq_len), generator=torch.Generator().manual_seed(4))
        return _step(cfg, G, D, opt_g, opt_d, real, adversarial, True, torch.Generator().manual_seed(3),
                     torch.device("cpu"), matcher=_unit_matcher(141))

    without, with_term = one_step(0.0), one_step(10.0)
    assert with_term["d_loss"] == without["d_loss"] and with_term["nll"] == without["nll"]
    assert with_term["mmd"] > 0 and with_term["g_loss"] == pytest.approx(without["g_loss"] + 10 * with_term["mmd"], rel=1e-5)


def test_mmd_of_identical_rows_is_zero_not_nan():
    a = torch.zeros(4, 3)
    assert style.mmd(a, a.clone()).item() == pytest.approx(0.0)


def test_chord_stats_count_notes_in_chords_of_each_size():
    # Chords of 3 keys (notes 0-2) and 5 keys (notes 3-7): flags mark notes that start with the one before.
    flags = torch.tensor([[0., 1, 1, 0, 1, 1, 1, 1]])
    got = style.chord_stats(flags)[0].tolist()
    assert got == pytest.approx([6 / 8, 4 / 7, 2 / 6, 1 / 5])
    assert style.chord_stats(torch.zeros(2, 8)).abs().sum().item() == 0


def test_marginal_mmd_sees_a_change_of_spread_alone():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 20, generator=g), torch.randn(64, 20, generator=g)
    same, wider = style.marginal_mmd(a, b).item(), style.marginal_mmd(a, 2 * b).item()
    assert abs(same) < 0.01 < wider
    x = a.clone().requires_grad_()
    style.marginal_mmd(x, 2 * b).backward()
    assert x.grad.abs().sum() > 0


def test_marginal_term_adds_chord_sizes_and_its_weight():
    import dataclasses
    from midigan.training.config import CONFIGS, make_config
    from midigan.training.model import build
    from midigan.training.train import _step

    with pytest.raises(ValueError, match="marginal_weight"):
        make_config({"marginal_weight": 1.0}, CONFIGS["seed"])

    def one_step(weight):
        cfg = dataclasses.replace(CONFIGS["tiny"], chords=1, marginal_weight=weight)
        torch.manual_seed(0)
        G, D = build(cfg)
        opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (G, D))
        # Rising scales in two-note chords: nothing like an untrained model's lines.
        t = torch.arange(cfg.seq_len)
        real = (40 + t % 12 + 88 * (t % 2)).repeat(6, 1)
        n = style.STATS + style.CHORD_RUNS
        return _step(cfg, G, D, opt_g, opt_d, real, False, True, torch.Generator().manual_seed(3),
                     torch.device("cpu"), matcher=_unit_matcher(n))

    without, with_term = one_step(0.0), one_step(10.0)
    assert with_term["nll"] == without["nll"] and with_term["d_loss"] == without["d_loss"]
    assert with_term["marginal"] > 0
    assert with_term["g_loss"] == pytest.approx(without["g_loss"] + 10 * with_term["marginal"], rel=1e-5)


def _unit_matcher(n, bank=0):
    """A Matcher whose units are the identity: mean 0 and spread 1 (to within its 1e-3)."""
    z = torch.cat([torch.ones(1, n), -torch.ones(1, n)]) / np.sqrt(2)
    return style.Matcher(z - z.mean(0), bank)


def test_matcher_bank_keeps_recent_lines_and_points_toward_real_windows():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 6, generator=g)
    m = style.Matcher(real, bank=100)
    # Sampled lines so far sit 3 spreads above the real windows.
    for _ in range(3):
        m.terms(torch.randn(64, 6, generator=g) + 3, torch.randn(64, 6, generator=g), g)
    assert m.fake.shape == (100, 6) and m.fake.mean() > 2
    x = torch.full((8, 6), 1.5, requires_grad=True)
    joint, marginal = m.terms(x, torch.randn(8, 6, generator=g), g)
    (joint + marginal).backward()
    assert (x.grad > 0).all()  # descending the loss moves the lines down, toward the real windows
    near, far = (m.terms(torch.full((8, 6), v), real[:8], g) for v in (0.0, 3.0))
    assert near[0] < 0 < far[0] and near[1] < 0 < far[1]
    with pytest.raises(ValueError, match="mmd_bank"):
        from midigan.training.config import make_config
        make_config({"mmd_bank": -1})


def test_sample_temperature_divides_the_logits_as_the_runtime_does():
    from midigan.training.config import CONFIGS, make_config
    from midigan.training.model import build

    with pytest.raises(ValueError, match="sample_temperature"):
        make_config({"sample_temperature": 0.0})
    torch.manual_seed(0)
    G, _ = build(CONFIGS["tiny"])
    z = torch.randn(4, CONFIGS["tiny"].noise_dim)
    with torch.no_grad():
        cooled = G.sample(z, 12, 1.0, torch.Generator().manual_seed(1), temperature=0.5)
        G.out.weight.mul_(2), G.out.bias.mul_(2)  # the same logits, doubled
        doubled = G.sample(z, 12, 1.0, torch.Generator().manual_seed(1))
        plain = G.sample(z, 12, 1.0, torch.Generator().manual_seed(1), temperature=2.0)
    assert torch.allclose(cooled, doubled, atol=1e-5)
    assert not torch.allclose(cooled, plain)
