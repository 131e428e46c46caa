"""The player's timeline: beats to seconds on an absolute clock, and MIDI clock follow.

Every event's due time comes from its beat, ``anchor_time + (beat - anchor_beat) * 60 / bpm``;
nothing adds up sleeps, so errors never accumulate. When following a clock, each 0xF8 tick
(24 per quarter) re-anchors the timeline and sets the smoothed tempo; the ticks sync.py makes
from JACK transport or Link carry their timeline's exact tempo.
"""
from __future__ import annotations

from collections import deque

from .music import CLOCK_PULSES_PER_BEAT


def clamp_bpm(bpm: float) -> float:
    return min(400.0, max(20.0, float(bpm)))


class Timeline:
    """Beat `anchor_beat` happens at `anchor_time` (seconds, on the injected clock `now`), at `bpm`."""

    def __init__(self, bpm: float, now, running: bool = True):
        self.bpm, self.now = float(bpm), now
        if not 20 <= self.bpm <= 400:
            raise ValueError(f"tempo {self.bpm:g} BPM is invalid (20..400)")
        self.anchor_time, self.anchor_beat = 0.0, 0.0
        self.running = running  # the followed clock is rolling (always, with no clock)
        self.next_tick = 0  # song position, in ticks, of the next 0xF8
        self.last_tick_time: float | None = None
        self.tick_interval: float | None = None  # smoothed seconds per tick
        self.times: deque = deque(maxlen=25)  # recent tick times since the clock last paused
        self.synced = False  # a tick has anchored the timeline since (re)start

    def time_at(self, beat: float) -> float:
        return self.anchor_time + (beat - self.anchor_beat) * 60.0 / self.bpm

    def beat_at(self, t: float) -> float:
        return self.anchor_beat + (t - self.anchor_time) * self.bpm / 60.0

    def set_bpm(self, bpm: float, t: float | None = None) -> None:
        """Change tempo from time t (default now): re-anchor so the past stays put."""
        t = self.now() if t is None else t
        self.anchor_beat, self.anchor_time = self.beat_at(t), t
        self.bpm = clamp_bpm(bpm)

    def tick(self, t: float, bpm: float | None = None) -> None:
        """A clock tick (0xF8) arrived at `t`; `bpm`: the followed timeline's own tempo, if it has one."""
        last, self.last_tick_time = self.last_tick_time, t
        anchor = t
        if bpm is not None:
            # A tick of a followed timeline (sync.py: JACK transport, Link): its time and
            # tempo are the timeline's own, exact; nothing to smooth or correct.
            self.bpm = clamp_bpm(bpm)
            self.tick_interval, last = 60.0 / (CLOCK_PULSES_PER_BEAT * self.bpm), None
        if self.running and self.synced and self.tick_interval and last is not None:
            # Late against the previous arrival (not the previous anchor, or a
            # slowing clock would pull the grid further back at every tick).
            late = t - (last + self.tick_interval)
            if 0 < late < 2 * self.tick_interval:
                # A tick later than expected was most likely delayed on its way
                # (a busy machine, a JACK cycle): move only part way, so one late
                # tick can't drag the notes after it.
                anchor = t - 0.75 * late
        if last is not None and not 0 < t - last < 0.2:
            self.times.clear()  # a longer gap means the clock paused: don't count it
        self.times.append(t)
        if len(self.times) > 1 and bpm is None:
            self.tick_interval = _median_interval(self.times)
            self.bpm = clamp_bpm(60.0 / (CLOCK_PULSES_PER_BEAT * self.tick_interval))
        if self.running:
            # Each tick is a fixed point of the grid: it anchors the timeline.
            self.anchor_beat, self.anchor_time = self.next_tick / CLOCK_PULSES_PER_BEAT, anchor
            self.next_tick += 1
            self.synced = True

    # ------------------------------------------------------------------ waiting


def _median_interval(times) -> float:
    """Seconds per tick from recent tick times (dropping those before a tempo change).

    Steady: the median over spans of k ticks (k: half the ticks held) of each span's mean
    interval. A span averages out the jitter of incoming ticks (k times less than one
    interval has), and the median ignores the two spans a single late tick spoils.
    Changing: when the median of the last 6 single intervals is 3 % off that, the tempo
    moved: the older ticks go, and the estimate follows within 6 ticks.
    """
    t = list(times)
    k = max(1, (len(t) - 1) // 2)
    spans = sorted((t[j] - t[j - k]) / k for j in range(k, len(t)))
    steady = spans[len(spans) // 2]
    recent = sorted(b - a for a, b in zip(t[-7:], t[-6:]))
    now = recent[len(recent) // 2]
    if len(t) > 7 and abs(now - steady) > 0.03 * steady:
        for _ in range(len(t) - 7):
            times.popleft()
        return now
    return steady
