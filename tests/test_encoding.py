import numpy as np
import pytest

from midigan import encoding as enc
from midigan import events as ev


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


@pytest.mark.parametrize("bad", [20, 109, 0, 127])
def test_off_piano_pitch_is_an_error(bad):
    with pytest.raises(ValueError, match=str(bad)):
        enc.normalize([60, bad])


def test_events_round_trip_on_the_grid():
    """Notes on the 1/24-beat grid come back with the same keys and onsets; durations and
    velocities within their classes' resolution; a chord reads low to high with step 0."""
    pitches = [60, 64, 67, 48, 72, 72, 50]
    starts = [0.5, 0.5, 0.5, 1.0, 1.0 + 1 / 3, 2.25, 9.0]  # a rest over two bars is clipped to one
    durations = [0.5, 0.5, 0.45, 2.0, 1 / 24, 0.25, 3.0]
    velocities = [80, 70, 75, 40, 127, 1, 64]
    events, pos = ev.encode(pitches, starts, durations, velocities)
    assert events[:, 0].tolist() == [12, 0, 0, 12, 8, 22, 96]  # grid steps; the first from its bar's start
    assert pos.tolist() == [12, 12, 12, 24, 32, 54, 24]
    p, on, d, v = ev.decode(events)
    assert p.tolist() == pitches
    assert on[:6].tolist() == pytest.approx(starts[:6])
    assert np.all(np.abs(np.log(d / np.array(durations))) < np.log(1.2))  # classes ~20 % apart
    assert np.all(np.abs(v - velocities) <= 3)
    assert ev.SIZES == {"step": 97, "pitch": 88, "duration": 32, "velocity": 32}
    assert ev.WIDTH == 249 and list(ev.OFFSETS.values()) == [0, 97, 185, 217]


def test_duration_classes_decode_to_the_median_of_the_notes_in_them():
    middle = ev.duration_values()
    notes = [0.25, 0.25, 0.24, 1.0, 1.0, 1.0, 0.99, 1.1]  # a sixteenth's class; a beat's
    values = ev.duration_values(notes)
    cls = np.searchsorted(ev.duration_edges(), np.array(notes) * 24)
    assert len(set(cls)) == 2
    assert values[cls[0]] == 0.25 and values[cls[3]] == 1.0
    assert middle[cls[0]] != 0.25 and middle[cls[3]] != 1.0  # the geometric middles are not
    others = np.setdiff1d(np.arange(ev.DURATION_CLASSES), cls)
    assert np.array_equal(values[others], middle[others])  # classes no note falls in keep the middle
    # a written length round-trips exactly through its class
    events, _ = ev.encode([60, 62], [0.0, 1.0], [1.0, 0.25], [80, 80])
    assert ev.decode(events, table=ev.tables([_notes(durations=notes)]))[2].tolist() == [1.0, 0.25]


def _notes(pitches=None, starts=None, durations=None, velocities=None):
    """A corpus.Notes-like record (what events.tables reads), defaults filled in."""
    from midigan.corpus import Notes

    n = len(next(x for x in (pitches, starts, durations, velocities) if x is not None))
    arr = lambda x, fill: np.asarray(fill if x is None else x)  # noqa: E731
    return Notes(arr(pitches, np.full(n, 60)), arr(starts, np.arange(n, dtype=float)), arr(durations, np.ones(n)),
                 arr(velocities, np.full(n, 64)), np.zeros(n), float(n), 0)


def test_velocity_stay_counts_kept_velocities_apart_for_chords_and_next_onsets():
    # onsets 0, 0, 1, 2, 3, 4: a chord (same class, kept), then four next onsets in one class,
    # two of which keep the velocity before them; 41 -> 60 changes class and counts nowhere
    notes = _notes(pitches=[60, 64, 60, 60, 60, 60], starts=[0, 0, 1, 2, 3, 4],
                   velocities=[41, 41, 42, 42, 43, 43])
    assert ev.velocity_stay([notes]) == [0.5, 1.0]
    other = _notes(pitches=[60, 64, 60], starts=[0, 0, 1], velocities=[40, 41, 60])
    assert ev.velocity_stay([notes, other]) == [0.5, 0.5]
    assert ev.tables()["velocity_stay"] == [0.0, 0.0]
    assert ev.tables([notes])["velocity_stay"] == [0.5, 1.0]


def test_a_note_in_the_class_before_it_keeps_that_velocity_at_the_table_odds():
    n = 20000
    events = np.zeros((2, n, 4), np.int64)
    events[..., 3] = (np.arange(n) // 3) % 2 + 10  # runs of three notes in one class
    grid = np.broadcast_to(np.arange(n) // 2, (2, n))  # pairs of notes share an onset
    table = {**ev.tables(), "velocity_stay": [0.5, 0.9]}
    v = ev.to_notes(events, grid, table, np.random.default_rng(0))[..., 3]
    one, chord = events[:, 1:, 3] == events[:, :-1, 3], grid[:, 1:] == grid[:, :-1]
    kept = v[:, 1:] == v[:, :-1]
    # kept at the odds, plus the 1 in 4 that a fresh draw lands on the same value
    assert kept[one & chord].mean() == pytest.approx(0.9 + 0.1 / 4, abs=0.02)
    assert kept[one & ~chord].mean() == pytest.approx(0.5 + 0.5 / 4, abs=0.02)
    assert kept[~one].mean() == 0  # another class never shares a velocity
    again, _ = ev.encode(np.full(n, 60), np.arange(n, dtype=float), np.ones(n), v[0].astype(np.int64))
    assert np.array_equal(again[:, 3], events[0, :, 3])  # still each note's own class
    # without odds (an older model's tables) a class run is drawn fresh: a quarter equal by chance
    old = ev.to_notes(events, grid, ev.tables(), np.random.default_rng(0))[..., 3]
    assert (old[:, 1:] == old[:, :-1])[one].mean() == pytest.approx(0.25, abs=0.02)


def test_velocities_decode_across_their_bin_with_a_generator():
    events = np.zeros((4000, 4), np.int64)
    events[:, 3] = np.arange(4000) % ev.VELOCITY_CLASSES
    middle = ev.to_notes(events, np.zeros(4000))[:, 3]
    drawn = ev.to_notes(events, np.zeros(4000), rng=np.random.default_rng(0))[:, 3]
    assert np.array_equal(middle, ev.velocity_values()[events[:, 3]])
    # every drawn velocity re-encodes to its own class, and each class's whole bin is used
    again, _ = ev.encode(np.full(4000, 60), np.arange(4000.0), np.ones(4000), drawn.astype(np.int64))
    assert np.array_equal(again[:, 3], events[:, 3]) and drawn.min() >= 1 and drawn.max() <= 127
    assert set(drawn[events[:, 3] == 10]) == {40, 41, 42, 43}


def test_events_quantise_sorts_chords_and_drops_doubled_keys():
    """Onsets a hair apart become one chord, written low to high; a key struck twice at one
    grid onset is kept once."""
    events, _ = ev.encode([67, 60, 64, 60], [1.001, 1.0, 0.999, 1.0], [1, 1, 1, 1], [60, 61, 62, 63])
    assert (events[:, 1] + 21).tolist() == [60, 64, 67] and events[:, 0].tolist() == [24, 0, 0]
