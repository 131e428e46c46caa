"""The timeline alone: beats to seconds, and following a MIDI clock's ticks (no port, no thread)."""
import numpy as np
import pytest

from midigan.music import CLOCK_PULSES_PER_BEAT
from midigan.timeline import Timeline


def follow(ticks, running=True):
    tl = Timeline(120.0, now=lambda: 0.0, running=running)
    for t in ticks:
        tl.tick(t)
    return tl


def test_time_and_beat_are_inverse_and_tempo_change_keeps_the_past():
    tl = Timeline(120.0, now=lambda: 3.0)
    assert tl.time_at(4.0) == pytest.approx(2.0) and tl.beat_at(2.0) == pytest.approx(4.0)
    tl.set_bpm(60.0)  # at t = 3 s = beat 6
    assert tl.beat_at(3.0) == pytest.approx(6.0) and tl.time_at(7.0) == pytest.approx(4.0)


@pytest.mark.parametrize("bpm", [60.0, 100.0, 140.0, 200.0])
def test_a_jittery_steady_clock_is_followed_within_a_tenth_of_a_bpm_after_one_bar(bpm):
    rng = np.random.default_rng(int(bpm))
    dt = 60.0 / (CLOCK_PULSES_PER_BEAT * bpm)
    n = 4 * CLOCK_PULSES_PER_BEAT  # one bar
    ticks = np.arange(n) * dt + rng.uniform(0, 0.0004, n)  # up to 0.4 ms late each
    tl = follow(ticks)
    assert tl.bpm == pytest.approx(bpm, abs=0.1)
    assert tl.next_tick == n and tl.synced


def test_a_tempo_change_wins_within_a_quarter_note():
    a, b = 60.0 / (24 * 100.0), 60.0 / (24 * 140.0)
    ticks = list(np.arange(48) * a)
    ticks += list(ticks[-1] + np.arange(1, 7) * b)
    assert follow(ticks).bpm == pytest.approx(140.0, abs=0.1)  # six ticks into it


def test_a_stopped_clock_keeps_its_place_and_a_pause_is_not_an_interval():
    tl = follow([0.0, 0.02, 0.04], running=False)
    assert tl.next_tick == 0 and not tl.synced  # tempo learnt, no position moved
    tl.running = True
    tl.tick(5.0)  # after a long pause: no 5 s interval enters the tempo
    assert tl.bpm == pytest.approx(60.0 / (24 * 0.02)) and tl.anchor_time == 5.0


def test_ticks_from_a_followed_timeline_carry_their_exact_tempo():
    tl = follow([])
    tl.tick(1.0, bpm=97.3)
    assert tl.bpm == 97.3 and tl.anchor_time == 1.0 and tl.next_tick == 1
