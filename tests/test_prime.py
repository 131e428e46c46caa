"""Priming: timed notes fed through the event model teacher-forced, then sampling continues."""
import numpy as np
import pytest

from midigan.runtime import Continuation, Generator, default_model_path
from midigan.files import data_dir


def test_feeding_sampled_notes_retraces_the_sampling_exactly(tiny_run):
    """Notes the model sampled, fed back teacher-forced from the same start, leave the line in
    exactly the state sampling left it in: same LSTM state, previous note and bar position."""
    gen = Generator(tiny_run[1])
    a = Continuation(gen, seed=5)
    notes = np.concatenate([a.sample(n=20), a.sample(n=20)])
    assert notes[0, 1] == 0 and (np.diff(notes[:, 1]) >= 0).all()
    b = Continuation(gen, seed=5)
    assert b.feed(notes) == len(notes)
    assert np.allclose(a.lines.h, b.lines.h, atol=1e-5) and np.allclose(a.lines.c, b.lines.c, atol=1e-5)
    assert np.array_equal(a.lines.prev, b.lines.prev) and np.array_equal(a.lines.grid, b.lines.grid)
    # ... so both continue alike (same random stream from here on)
    b.lines.rng = np.random.default_rng(9)
    a.lines.rng = np.random.default_rng(9)
    assert np.array_equal(a.sample(n=10), b.sample(n=10))
    # fed in two parts, the second counting its first step from the first part's last onset
    c = Continuation(gen, seed=5)
    c.feed(notes[:17])
    c.feed(notes[17:])
    d = Continuation(gen, seed=5)
    d.feed(notes)
    assert np.allclose(c.lines.h, d.lines.h, atol=1e-5) and np.array_equal(c.lines.grid, d.lines.grid)



def test_a_following_line_reads_its_noise_from_the_last_notes_it_heard(tiny_run):
    """With an encoder, `hear` sets the noise to the encoder's mean (x noise_scale) over the last
    seq_len notes heard, never the line's own; snapshot/restore carry the noise and those notes;
    bad notes change nothing; without following, the noise stays as drawn."""
    gen = Generator(tiny_run[1])
    assert gen.encoder is not None  # (tiny runs are latent, like the default)
    call = np.array([[60 + (i * 5) % 12, i * 0.5, 0.4, 70 + i] for i in range(gen.seq_len - 4)], float)
    line = Continuation(gen, seed=2, noise_scale=0.5)
    drawn = line.z.copy()
    snap = line.snapshot()
    line.hear(call)
    line.feed(call)
    assert np.allclose(line.z, gen.noise_for(call, drawn) * 0.5) and not np.allclose(line.z, drawn)
    line.sample(n=50, start=8.0)  # its own notes: not read
    t = line.last_onset + 1
    more = np.array([[62, t, 1.0, 90], [65, t + 1, 1.0, 90], [67, t + 2, 1.0, 90], [69, t + 3, 1.0, 90],
                     [71, t + 4, 1.0, 90], [72, t + 5, 1.0, 90]], float)
    line.hear(more)
    heard = np.concatenate([call, more])[-gen.seq_len:]
    assert np.array_equal(line.heard, heard) and len(heard) == gen.seq_len  # the oldest two dropped
    assert np.allclose(line.z, gen.noise_for(heard, drawn) * 0.5)
    z = line.z.copy()
    with pytest.raises(ValueError, match="finite"):
        line.hear([[60, np.nan, 1, 80]])
    assert np.array_equal(line.z, z) and np.array_equal(line.heard, heard)
    line.restore(snap)
    assert np.array_equal(line.z, drawn) and len(line.heard) == 0 and line.last_onset is None
    kept = Continuation(gen, seed=2, noise_scale=0.5, follow=False)
    kept.hear(call)
    assert np.array_equal(kept.z, drawn)

def test_prime_changes_the_state_and_the_stream_continues_after_it(tiny_run):
    gen = Generator(tiny_run[1])
    prime = np.array([[60 + (i * 7) % 12, i * 0.5, 0.4, 90] for i in range(24)], float)
    plain = next(gen.stream(seed=3, count=2, candidates=1))
    primed = next(gen.stream(seed=3, count=2, candidates=1, prime=prime))
    assert not np.array_equal(plain, primed)
    assert (primed[:, 0, 1] >= prime[-1, 1]).all()  # on the prime's timeline, after its last onset
    assert (np.diff(primed[..., 1], axis=1) >= 0).all()
    late = next(gen.stream(seed=3, count=2, candidates=1, prime=prime, start_at=13.0))
    assert (late[:, 0, 1] >= 13.0).all()
    far = next(gen.stream(seed=3, count=2, candidates=1, prime=prime, start_at=30.0))  # > a bar after
    assert (far[:, 0, 1] == 30.0).all()


def test_continuation_start_window_and_until(tiny_run):
    gen = Generator(tiny_run[1])
    c = Continuation(gen, seed=1)
    c.feed([[60, 0, 1, 80], [64, 1, 1, 80], [67, 2.5, 1, 80]])
    assert c.last_onset == 2.5
    snap = c.snapshot()
    for s in range(20):
        c.restore(snap)
        c.lines.rng = np.random.default_rng(s)
        out = c.sample(n=50, start=4.0, window=0.25, until=8.0)
        assert 4.0 <= out[0, 1] < 4.25
        assert (out[:, 1] < 8.0).all()
    c.restore(snap)
    assert c.last_onset == 2.5
    with pytest.raises(ValueError, match="before the line's last note"):
        c.feed([[60, 1.0, 1, 80]])
    # pitches off the piano are folded in by octaves, keeping their pitch class
    c.restore(snap)
    c.feed([[12, 3.0, 1, 80], [120, 3.0, 1, 80]])
    assert c.lines.prev[0, 1] + 21 == 108  # 120 -> 108, the higher of the chord comes last


def test_priming_needs_an_event_model():
    seed_model = data_dir("export") / "seed.onnx"
    if not seed_model.is_file():
        pytest.skip("export/seed.onnx is not shipped here")
    gen = Generator(seed_model)
    with pytest.raises(ValueError, match="priming needs an event model"):
        next(gen.stream(prime=[[60, 0, 1, 80]]))
    with pytest.raises(ValueError, match="priming needs an event model"):
        Continuation(gen)


def pc_profile(pitches, durations):
    prof = np.bincount(np.asarray(pitches, np.int64) % 12, weights=durations, minlength=12)
    return prof / max(prof.sum(), 1e-9)


def test_a_primed_stream_sounds_more_like_its_prime_than_a_fresh_one():
    """With the shipped model, over 50 seeds: the first phrase's pitch-class profile correlates
    with the prime's better when primed than when not (a prime far from C: F# major)."""
    try:
        gen = Generator(default_model_path())
    except ValueError as e:
        pytest.skip(str(e))
    scale = [66, 68, 70, 71, 73, 75, 77, 78]
    prime = np.array([[scale[(i * 3) % 8] - 12 * (i % 2), i * 0.5, 0.5, 80] for i in range(48)], float)
    want = pc_profile(prime[:, 0], prime[:, 2])
    primed = next(gen.stream(seed=0, count=50, candidates=1, prime=prime))
    fresh = next(gen.stream(seed=0, count=50, candidates=1))
    corr = [[np.corrcoef(pc_profile(line[:, 0], line[:, 2]), want)[0, 1] for line in out]
            for out in (primed, fresh)]
    assert np.nanmean(corr[0]) > np.nanmean(corr[1]) + 0.2
