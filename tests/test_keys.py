"""Key estimation: scales in every key, and piano-midi.de pieces whose key is known."""
import importlib.util

import numpy as np
import pytest

from midigan.keys import METHODS, PROFILES, estimate_key, key_scores
from midigan.music import NOTE_NAMES, SCALES

from .conftest import ROOT


def scale_line(tonic, scale, octaves=2):
    """A scale up and down from the tonic, the tonic held longer (as a phrase would end on it)."""
    steps = [tonic + 60 + 12 * o + iv for o in range(octaves) for iv in SCALES[scale]] + [tonic + 60 + 12 * octaves]
    pitches = steps + steps[-2::-1]
    durs = [0.5] * len(pitches)
    durs[0] = durs[-1] = 2.0
    return np.array(pitches), np.array(durs)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("tonic", range(12))
def test_scales_and_their_keys(tonic, profile, method):
    est = estimate_key(*scale_line(tonic, "major"), profile=profile, method=method)
    assert (est.tonic, est.mode) == (tonic, "major"), est.name
    est = estimate_key(*scale_line(tonic, "harmonic-minor"), profile=profile, method=method)
    assert (est.tonic, est.mode) == (tonic, "minor"), est.name
    assert est.relative_major == (tonic + 3) % 12
    assert est.name == f"{NOTE_NAMES[tonic]} minor"


@pytest.mark.parametrize("method", METHODS)
def test_transposing_moves_the_key_and_nothing_else(method):
    rng = np.random.default_rng(0)
    p, d = rng.integers(48, 84, 200), rng.uniform(0.1, 2, 200)
    s = key_scores(p, d, method=method)
    for k in range(1, 12):
        assert np.allclose(np.roll(s, k, axis=1), key_scores(p + k, d, method=method))


def test_distance_is_zero_where_the_notes_are_the_profile():
    """Notes whose pitch-class durations are a profile rotated to a key sit at distance 0 from
    it (its score, the highest possible) and correlate 1 with it."""
    major = np.asarray(PROFILES["temperley"][0])
    d = np.roll(major, 7)  # G major's shares on pitch classes 0..11
    s = key_scores(np.arange(12), d)
    assert s[0, 7] == pytest.approx(0) and (np.delete(s.ravel(), 7) < 0).all()
    assert key_scores(np.arange(12), d, method="correlation")[0, 7] == pytest.approx(1)
    with pytest.raises(ValueError, match="unknown key method"):
        key_scores([60, 62], method="cosine")


def test_too_few_notes():
    with pytest.raises(ValueError, match="two pitch classes"):
        estimate_key([])
    with pytest.raises(ValueError, match="two pitch classes"):
        estimate_key([60, 72, 48])
    with pytest.raises(ValueError, match="durations"):
        estimate_key([60, 62], [1.0])


def test_pieces_of_known_key(shared_corpus):
    """Preludes Op. 28, named sonata movements and titled pieces: key and mode right for at
    least 85 % (bench/keys.py prints the figures per profile and the misses)."""
    from midigan.corpus import read_notes

    spec = importlib.util.spec_from_file_location("bench_keys", ROOT / "bench" / "keys.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lab = bench.labelled(shared_corpus)
    assert len(lab) >= 40 and sum(k.endswith("minor") for k in lab.values()) >= 15
    hits = 0
    for name, key in lab.items():
        n = read_notes(shared_corpus / name)
        hits += estimate_key(n.pitches, n.durations).name == key
    assert hits / len(lab) >= 0.85, f"{hits}/{len(lab)}"
