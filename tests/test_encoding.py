import numpy as np
import pytest

from midigan import encoding as enc


def test_linear_round_trip_every_key():
    keys = np.arange(enc.PITCH_LOW, enc.PITCH_HIGH + 1)
    v = enc.normalize(keys)
    assert v.dtype == np.float32
    assert v.min() > -1 and v.max() < 1  # strictly inside tanh's range
    assert np.all(np.diff(v) > 0)
    assert np.array_equal(enc.denormalize(v), keys)


def test_linear_decode_tolerates_noise_and_clips():
    keys = np.arange(enc.PITCH_LOW, enc.PITCH_HIGH + 1)
    v = enc.normalize(keys) + 0.004  # less than half a key's width
    assert np.array_equal(enc.denormalize(v), keys)
    assert enc.denormalize([-5.0, 5.0]).tolist() == [enc.PITCH_LOW, enc.PITCH_HIGH]


def test_categorical_round_trip():
    keys = np.arange(enc.PITCH_LOW, enc.PITCH_HIGH + 1)
    idx = enc.to_index(keys)
    assert idx.tolist() == list(range(88))
    assert np.array_equal(enc.from_index(idx), keys)
    assert np.array_equal(enc.decode(idx, "pitch-categorical"), keys)


@pytest.mark.parametrize("bad", [20, 109, 0, 127])
def test_off_piano_pitch_is_an_error(bad):
    with pytest.raises(ValueError, match=str(bad)):
        enc.normalize([60, bad])


def test_unknown_encoding():
    with pytest.raises(ValueError, match="unknown encoding"):
        enc.decode([0.0], "midi-bytes")
    with pytest.raises(ValueError):
        enc.from_index([88])


def test_onset_categorical_classes():
    """pitch-onset-categorical: class = key + 88 * (starts with the note before)."""
    classes = np.array([[0, 88 + 4, 88 + 7, 87, 175]])
    keys, together = enc.split_classes(classes)
    assert keys.tolist() == [[0, 4, 7, 87, 87]]
    assert together.tolist() == [[False, True, True, False, True]]
    assert enc.decode(classes, "pitch-onset-categorical").tolist() == [[21, 25, 28, 108, 108]]
    assert enc.N_CLASSES == {"pitch-categorical": 88, "pitch-onset-categorical": 176}
    with pytest.raises(ValueError, match="class index outside 0-175"):
        enc.split_classes([176])
