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
    assert f[9:] == pytest.approx([0, 0, 1 / 16, 0])  # no steps, one distinct key
    scale = np.array([[0, 2, 4, 5, 7, 9, 11, 12] * 2]) + c4  # C major up, twice
    f = style.descriptors(scale)[0]
    assert f[4] == 0 and f[8] == 1  # no repeat at lag 1; all at lag 8
    assert f[10] == pytest.approx(14 / 15)  # every step but the jump back goes up
    assert f[11] == pytest.approx(8 / 16) and f[12] == 0  # 8 keys; the jump back is exactly an octave


def test_codes_are_white_on_the_fitted_windows():
    rng = np.random.default_rng(0)
    walks = np.clip(np.cumsum(rng.integers(-15, 16, (3000, 50)), axis=1) + rng.integers(20, 68, (3000, 1)), 0, 87)
    walks[:1000, 1::2] = walks[:1000, ::2]  # some windows repeat every note: not Gaussian at all
    table = style.fit(walks)
    z = style.encode(walks, table)
    assert z.shape == (3000, STYLE_DIM) and z.dtype == np.float32
    assert np.abs(z.mean(0)).max() < 0.05
    assert np.abs(np.cov(z, rowvar=False) - np.eye(STYLE_DIM)).max() < 0.05
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
