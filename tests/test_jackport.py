"""The sample-accurate JACK backend (midigan/jackport.py) and the clock-follow fixes of issue 18.

Hardware-free: the player on a fake clock with a scheduling port (send_at / lead /
cancel), JackOutput's frame map and buffer writing with a fake MIDI buffer, Start
replaying a take, a locate landing on its beat, --sync never matching our own port.
With a JACK server (the `jack` marker, see conftest.jack_server): `midigan play`
into a separate jack_midi_dump client, a second instance's name, exit codes.
"""
from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from midigan.jackport import SETTLE_CYCLES, JackOutput
from midigan.player import Player
from midigan.ports import MemoryPort, PortNotFound
from tests.test_player import T0, Clock, FakeGen, FakeSync, preset

ROOT = Path(__file__).resolve().parent.parent


class SchedPort(MemoryPort):
    """A scheduling port like JackOutput: keeps (handed over at, due, message); cancel() drops
    what is due after a cut and returns it."""

    lead = 0.01

    def __init__(self, now):
        super().__init__(now)
        self.queue = []  # (due, msg) not yet 'written'
        self.handed = []  # (now, due, msg)
        self.dropped = []

    def send_at(self, msg, due):
        self.handed.append((self.now(), due, tuple(msg)))
        self.queue.append((due, tuple(msg)))

    def send(self, msg):
        self.send_at(msg, self.now())

    def cancel(self, after=None):
        cut = self.now() if after is None else after
        out = [m for d, m in self.queue if d > cut]
        self.dropped += out
        self.queue = [(d, m) for d, m in self.queue if d <= cut]
        return out

    def played(self):
        """What reaches the synth: everything not dropped, in due order (stable)."""
        return sorted(self.queue, key=lambda e: e[0])


def test_player_hands_each_message_over_lead_early_with_its_grid_time():
    clock = Clock()
    port = SchedPort(clock.now)
    pr = preset(step="1/16", gate=0.5, rhythm=[1], chords=False)
    p = Player(port, FakeGen(), pr, bars=1, now=clock.now, sleep=clock.sleep)
    p.run()
    ons = [(t, d) for t, d, m in port.handed if m[0] == 0x90]
    assert len(ons) == 16
    step = 60 / 120 / 4
    t0 = ons[0][1]
    for k, (handed, due) in enumerate(ons):
        assert due == pytest.approx(t0 + k * step, abs=1e-9)  # the grid, exactly
        if k:  # (the first note is due the moment play starts)
            assert handed == pytest.approx(due - port.lead, abs=1e-9)  # lead early, not at due
    offs = [d for _t, d, m in port.handed if m[0] == 0x80]
    assert offs == pytest.approx([t0 + k * step + step / 2 for k in range(16)], abs=1e-9)
    # The end of --bars: its release is due at the end, so the last note keeps its length.
    assert port.handed[-1][2] == (0xB0, 123, 0)
    assert port.handed[-1][1] == pytest.approx(t0 + 16 * step, abs=1e-9)


def test_a_free_running_start_waits_until_the_port_can_place_its_first_note():
    """A JACK output's frame line needs its first cycles (jackport.SETTLE_CYCLES): beat 0 is
    then, not the moment the first note exists, and the grid runs on from it."""
    clock = Clock()
    port = SchedPort(clock.now)
    port.settled_at = clock.t + 0.17
    pr = preset(step="1/16", gate=0.5, rhythm=[1], chords=False)
    Player(port, FakeGen(), pr, bars=1, now=clock.now, sleep=clock.sleep).run()
    ons = [(t, d) for t, d, m in port.handed if m[0] == 0x90]
    assert len(ons) == 16
    assert ons[0][1] == pytest.approx(T0 + 0.17, abs=1e-9)
    assert ons[0][0] == pytest.approx(T0 + 0.17 - port.lead, abs=1e-9)  # handed over lead early
    assert [d for _t, d in ons] == pytest.approx([T0 + 0.17 + k * 0.125 for k in range(16)], abs=1e-9)
    # A port already settled: the first note is due the moment it exists, as before.
    clock2 = Clock()
    port2 = SchedPort(clock2.now)
    port2.settled_at = clock2.t - 1.0
    Player(port2, FakeGen(), pr, bars=1, now=clock2.now, sleep=clock2.sleep).run()
    assert [d for _t, d, m in port2.handed if m[0] == 0x90][0] == pytest.approx(T0, abs=1e-9)


def test_stop_drops_what_was_handed_over_early_and_leaves_nothing_held():
    clock = Clock()
    port = SchedPort(clock.now)
    # Short notes: the player wakes for a note-off 6 ms after handing over the note-on of
    # step 7 (due at 0.875 s), and sees the stop then, before that note-on is due.
    pr = preset(step="1/16", gate=0.05, rhythm=[1], chords=False)
    p = Player(port, FakeGen(), pr, now=clock.now, sleep=clock.sleep)
    stop_at = clock.t + 7 * 0.125 - 0.007
    T = clock.t + 7 * 0.125 - 0.0001
    clock.hooks.append((stop_at, lambda: p.stop("test")))
    p.run()
    assert any(m[0] == 0x90 for m in port.dropped), "no note-on was handed over early: the test is moot"
    played = port.played()
    assert not any(m[0] == 0x90 and d > T for d, m in played), "a note sounds after the stop"
    held = {}
    for _d, m in played:
        if m[0] == 0x90:
            held[m[1]] = held.get(m[1], 0) + 1
        elif m[0] == 0x80 and held.get(m[1]):
            held[m[1]] -= 1
    assert not any(held.values()), held
    assert played[-1][1] == (0xB0, 123, 0)


def _ticks(t0, dt, n, first=0):
    return [(t0 + (first + i) * dt, [0xF8]) for i in range(n)]


def _two_takes(t0, wait=0.1):
    """A clock's script: Start at t0 + wait, two beats, Stop, and after `wait` more a Start and two
    beats again (120 BPM). Returns (script, first Start, second Start, end)."""
    dt = 60 / 120 / 24
    t = t0 + wait
    t3 = t + 50 * dt + wait
    script = [(t, [0xFA])] + _ticks(t, dt, 48) + [(t + 50 * dt, [0xFC])] + [(t3, [0xFA])] + _ticks(t3, dt, 48)
    return script, t, t3, t3 + 50 * dt


def test_start_replays_the_same_notes_with_a_fixed_seed():
    clock = Clock()
    port = MemoryPort(clock.now)
    dt = 60 / 120 / 24
    t = clock.t + 0.1
    script = [(t, [0xFA])] + _ticks(t, dt, 96)  # a bar
    t2 = t + 100 * dt
    script += [(t2, [0xFC])]
    t3 = t2 + 0.5
    script += [(t3, [0xFA])] + _ticks(t3, dt, 96)
    sync = FakeSync(clock, script, end=t3 + 98 * dt)
    p = Player(port, FakeGen(seqs=[np.arange(40, 100) + i for i in range(50)]), preset(step="1/16"),
               sync=sync, now=clock.now, sleep=clock.sleep, spin=0)
    sync.player = p
    p.run()
    ons = [(w, m[1]) for w, m in port.messages if m[0] == 0x90]
    take1 = [n for w, n in ons if w < t2]
    take2 = [n for w, n in ons if w >= t3]
    assert len(take1) >= 8 and take1 == take2[:len(take1)]


def test_start_without_a_seed_begins_a_new_take_with_a_new_seed():
    clock = Clock()
    port = MemoryPort(clock.now)
    script, _, _, end = _two_takes(clock.t)
    seeds, told = [], []
    sync = FakeSync(clock, script, end=end)
    p = Player(port, FakeGen(), preset(step="1/16"), sync=sync, now=clock.now, sleep=clock.sleep, spin=0,
               seed=5, new_take=lambda: seeds.append(100 + len(seeds)) or seeds[-1], on_take=told.append)
    sync.player = p
    p.run()
    # The first Start keeps the first take's seed; the second plays seed 100 (drawn at the Stop) and says so.
    assert told == [100] and p.seed == 100 and seeds == [100]


def test_the_next_take_is_made_once_the_clock_stops(monkeypatch):
    """A Start must not wait for the model: its first phrases were made after the Stop before it
    (with the default model they take 30-45 ms, and the first note was handed over that late)."""
    import midigan.player as player_module

    clock = Clock()
    made = []

    class Recorded(player_module.Producer):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append((clock.t, self))

    monkeypatch.setattr(player_module, "Producer", Recorded)
    port = MemoryPort(clock.now)
    script, t, t3, end = _two_takes(clock.t)
    stop = next(w for w, m in script if m == [0xFC])
    sync = FakeSync(clock, script, end=end)
    p = Player(port, FakeGen(), preset(step="1/16"), sync=sync, now=clock.now, sleep=clock.sleep, spin=0, seed=7)
    sync.player = p
    p.run()
    assert len(made) == 2  # the first take's and the second's (no Stop after it: no third)
    (t1, first), (t2, second) = made
    assert t1 < t and stop <= t2 < t3  # the second take's was made after the Stop, before its Start
    assert p.producer is second and second.seed == 7 and first.stopped.is_set()


def test_a_start_finds_its_first_phrase_already_taken_off_the_producer():
    """Taking a phrase off a producer's queue sets its thread to work on the next; at a Start
    that thread would compete for the GIL with the first note, which must leave within a
    period. So while the clock is stopped both the take's first phrase and the next take's are held."""
    seen = []

    class Watching(FakeSync):
        def take(self):
            out = super().take()
            if any(m[0] == 0xFA for _t, m in out):
                seen.append((len(self.player.notes), self.player._standby_first is not None))
            return out

    clock = Clock()
    port = MemoryPort(clock.now)
    script, _, _, end = _two_takes(clock.t, wait=1.0)
    sync = Watching(clock, script, end=end)
    p = Player(port, FakeGen(), preset(step="1/16"), sync=sync, now=clock.now, sleep=clock.sleep, spin=0, seed=3)
    sync.player = p
    real_wait = sync.wait

    def wait(timeout):  # (the producers are threads: give them real time to make their phrases)
        time.sleep(0.005)
        real_wait(timeout)

    sync.wait = wait
    p.run()
    assert seen[0][0] > 0  # first Start: this take's first phrase held
    assert seen[1][1]  # second Start: the next take's first phrase held, ready to swap in


@pytest.mark.parametrize("port_priority, sync, want", [(30, True, [29]), (30, False, []), (0, True, [0]),
                                                     (None, True, [0])])
def test_the_scheduler_is_real_time_just_below_a_jack_thread_only_when_following(monkeypatch, port_priority,
                                                                                  sync, want):
    """With a scheduling port, a Start's first note is due at once: following a clock, the
    scheduler thread goes real-time one priority below the port's own thread, and never when
    that thread is not real-time (priority 0: _go_realtime does nothing) or nothing is followed."""
    import midigan.player as player_module

    asked = []
    monkeypatch.setattr(player_module, "_go_realtime", lambda prio=10: asked.append(prio) or False)
    clock = Clock()
    port = SchedPort(clock.now)
    port.thread_priority = port_priority
    t = clock.t + 0.1
    fake = FakeSync(clock, [(t, [0xFA])] + _ticks(t, 60 / 120 / 24, 24), end=t + 0.3) if sync else None
    p = Player(port, FakeGen(), preset(step="1/16"), sync=fake, now=clock.now, sleep=clock.sleep,
               realtime=True, bars=None if sync else 1)
    if fake is not None:
        fake.player = p
    p.run()
    assert asked == want


@pytest.mark.parametrize("api, want", [("jack", [1]), ("alsa", [10])])
def test_on_rtmidis_jack_port_the_scheduler_stays_below_jacks_threads(monkeypatch, api, want):
    import midigan.player as player_module

    asked = []
    monkeypatch.setattr(player_module, "_go_realtime", lambda prio=10: asked.append(prio) or False)
    clock = Clock()
    port = MemoryPort(clock.now)
    port.api = api
    Player(port, FakeGen(), preset(step="1/16"), now=clock.now, sleep=clock.sleep, spin=0, realtime=True,
           bars=1).run()
    assert asked == want


def test_go_realtime_at_priority_0_changes_nothing():
    import os

    from midigan.player import _go_realtime

    before = os.sched_getscheduler(0)
    assert _go_realtime(0) is False and os.sched_getscheduler(0) == before


def test_locate_plays_a_note_on_the_located_downbeat():
    clock = Clock()
    port = MemoryPort(clock.now)
    dt = 60 / 120 / 24
    t = clock.t + 0.1
    # Dotted-eighth steps (0.75 beats): only every fourth note falls on a beat.
    pr = preset(step="1/16", rhythm=[3], gate=0.5, chords=False)
    script = [(t, [0xFA])] + _ticks(t, dt, 40)  # play a little, stop mid-bar
    ts = t + 41 * dt
    script += [(ts, [0xFC]), (ts + 0.01, [0xF2, 16 * 4 % 128, 16 * 4 // 128]), (ts + 0.02, [0xFB])]
    tc = ts + 0.1
    script += _ticks(tc, dt, 30, first=0)
    sync = FakeSync(clock, script, end=tc + 30 * dt)
    p = Player(port, FakeGen(), pr, sync=sync, now=clock.now, sleep=clock.sleep, spin=0)
    sync.player = p
    p.run()
    after = [w for w, m in port.messages if m[0] == 0x90 and w >= tc]
    assert after, "nothing played after the locate"
    # Song position 64 sixteenths = beat 16 (bar 5): its first tick is at tc.
    assert after[0] == pytest.approx(tc, abs=1e-9)


class _FakeIn:
    def __init__(self, names):
        self.names = names

    def get_ports(self):
        return self.names

    def open_port(self, i, name):
        self.opened = i

    def ignore_types(self, **kw):
        self.ignored = kw

    def get_message(self):
        return None

    def close_port(self):
        pass

    def delete(self):
        pass


def test_sync_never_matches_our_own_output(monkeypatch):
    from midigan import ports

    names = ["midigan:midigan 128:0", "Bitwig:clock out 129:0"]
    monkeypatch.setattr(ports, "_client", lambda kind, api, name: _FakeIn(names))
    with pytest.raises(PortNotFound) as e:
        ports.open_input("midigan", api="alsa", exclude=("midigan:",))
    assert "midigan:midigan" not in str(e.value) and "Bitwig:clock out" in str(e.value)
    clock = ports.open_input("clock", api="alsa", exclude=("midigan:",))
    assert clock.name == "Bitwig:clock out 129:0"
    clock.close()


class _ScriptedIn(_FakeIn):
    """An rtmidi input whose queue holds `script`: (message, rtmidi's delta) pairs."""

    def __init__(self, script):
        super().__init__([])
        self.script = list(script)

    def get_message(self):
        return self.script.pop(0) if self.script else None


def test_clock_input_times_arrivals_by_rtmidi_deltas_anchored_on_the_earliest_poll():
    from midigan.ports import ClockInput

    inbox = ClockInput(_ScriptedIn([]), "clock")
    try:
        assert inbox._in.ignored == dict(sysex=False, timing=False, active_sense=False)  # no delta lost
        # The second tick polled late (at 10.025): its delta places it 0.02 after the first.
        inbox.receive([0xF8], 0.0, polled=10.0)
        inbox.receive([0xF8], 0.02, polled=10.025)
        # A poll that came sooner than the chain says pulls the chain back to it.
        inbox.receive([0xF8], 0.02, polled=10.035)
        inbox.receive([0xFE], 0.02, polled=10.06)  # active sensing: counts for time, not kept
        inbox.receive([0xFA], 0.01, polled=10.07)
        got = inbox.take()
        assert [m for _t, m in got] == [[0xF8], [0xF8], [0xF8], [0xFA]]
        assert [t for t, _m in got] == pytest.approx([10.0, 10.02, 10.035, 10.065], abs=1e-4)
    finally:
        inbox.close()


def test_clock_input_reads_its_port_on_a_thread_and_close_stops_it():
    from midigan.ports import ClockInput

    fake = _ScriptedIn([([0xFA], 0.0), ([0xF8], 0.01), ([0xF0, 1, 0xF7], 0.0)])
    inbox = ClockInput(fake, "clock", now=lambda: 5.0)
    try:
        deadline = time.monotonic() + 5
        while len(inbox._inbox) < 2:
            assert time.monotonic() < deadline, "the reader thread took nothing"
            inbox.wait(0.01)
    finally:
        inbox.close()
    assert not inbox._thread.is_alive()
    assert inbox.take() == [(5.0, [0xFA]), (5.0, [0xF8])]  # sysex not kept; each no later than its poll


# ---------------------------------------------------------------- JackOutput without a server

class _Buf:
    """Stands in for a jack.OwnMidiPort: what the process callback writes."""

    def __init__(self):
        self.events = []

    def write_midi_event(self, off, msg):
        if self.events and off < self.events[-1][0]:
            raise ValueError("JACK refuses out-of-order events")
        self.events.append((off, bytes(msg)))


def _bare(rate=48000, period=256):
    import threading
    from collections import deque

    from midigan.jackport import _FrameLine

    out = object.__new__(JackOutput)
    out.rate, out.period, out.port = rate, period, _Buf()
    out._queue, out._lock, out.late, out._errors = deque(), threading.Lock(), 0, 0
    out._line = _FrameLine(rate, period)
    return out


def _cycles(line, start, seconds, period=64, rate=48000, late=None, skew=0.0, rng=None):
    """Feed `line` the process cycles from `start` to `start + seconds` (s): frame f is due at
    f / (rate * (1 + skew ppm)) s, and each cycle's callback is late by `late(rng)` seconds."""
    rng = rng or np.random.default_rng(0)
    fps = rate * (1 + skew * 1e-6)
    for k in range(math.ceil(start * fps / period), math.ceil((start + seconds) * fps / period)):
        line.add(k * period, k * period / fps + (late(rng) if late else 0.0))


def test_frame_map_is_exact_in_frames_though_callbacks_wake_late():
    out = _bare(period=64)
    # callbacks late by 20-300 µs, one in 50 by 2-10 ms (a busy machine): the line is the earliest
    late = lambda r: r.uniform(2e-5, 3e-4) if r.random() > 0.02 else r.uniform(2e-3, 1e-2)  # noqa: E731
    t = 12.0
    _cycles(out._line, 10.0, 2.0, late=late)
    frames = []
    for k in range(64):  # a sixteenth line at 120 BPM, each note mapped as the next cycles arrive
        due = t + k * 0.125
        frames.append(out._frame(due))
        _cycles(out._line, due, 0.125, late=late, rng=np.random.default_rng(k))
    d = np.diff(frames)
    assert set(d) <= {5999, 6000, 6001} and np.mean(d == 6000) > 0.9, d
    # on the grid of when the frames were due (+ one period of latency), within a frame
    assert abs(frames[0] - t * 48000 - 64) <= 1


def test_frame_map_follows_a_card_a_few_ppm_off_the_system_clock():
    for skew in (50, -50):  # frames 50 ppm fast or slow: 2.4 frames a second off the system clock
        line = _bare()._line
        _cycles(line, 0.0, 20.0, period=256, skew=skew)
        assert abs(line.frame(20.0) - 20.0 * 48000 * (1 + skew * 1e-6)) <= 3  # off by the window's lag at most


def test_frame_map_keeps_its_grid_through_lost_frames_and_a_busy_second():
    line = _bare(period=64)._line
    _cycles(line, 0.0, 2.0)
    before = line.frame(2.0)
    # the server loses a period's frames (an xrun), then its callbacks run 3 ms late for a second
    for k in range(1500):
        t = 2.0 + k * 64 / 48000
        line.add(96000 + (k - 1) * 64, t + 0.003)
    # the notes stay on the old grid, drifting back by 100 ppm at most (4.8 frames a second),
    # not the 208 frames (a period and 3 ms) the callbacks' times alone would move them
    assert -2 * 4.8 <= line.frame(2.0 + 1500 * 64 / 48000) - (before + 1500 * 64) <= 0


def test_frame_map_jumps_when_the_server_jumps():
    out = _bare()
    line = out._line
    line.add(480000, 10.0)
    a = out._frame(10.0)
    line.add(480000 + 4800 + 256, 10.0 + 256 / 48000)  # the server's frames moved on 100 ms (skipped cycles)
    b = out._frame(10.001)
    assert b - a == pytest.approx(4800 + 48, abs=1)
    assert _bare()._frame(10.0) is None  # before the first cycle: written at once


def test_a_transport_change_wakes_the_sync_at_once():
    """The process callback watches the JACK transport's state; wait_transport() returns as
    soon as it changes (a start is seen in its own cycle), and sleeps its whole timeout when
    nothing changed."""
    import threading

    out = JackOutput.__new__(JackOutput)  # only the transport watch: no client, no server
    out.transport_changed, out._transport_state = threading.Event(), None
    out._watch_transport("stopped")
    t0 = time.perf_counter()
    out.wait_transport(5.0)  # the first state counts as a change: returns at once
    assert time.perf_counter() - t0 < 1.0 and not out.transport_changed.is_set()
    out._watch_transport("stopped")  # no change: nothing to wake for
    t0 = time.perf_counter()
    out.wait_transport(0.05)
    assert time.perf_counter() - t0 >= 0.04  # (the event's clock is not perf_counter)
    threading.Timer(0.05, out._watch_transport, ("rolling",)).start()
    t0 = time.perf_counter()
    out.wait_transport(5.0)  # woken by the start, long before the timeout
    assert time.perf_counter() - t0 < 2.5 and out._transport_state == "rolling"


def test_buffer_gets_each_message_at_its_offset_in_order_and_late_ones_first():
    out = _bare(period=256)
    q = out._queue
    q.extend([(1000 + 10, 0, b"\x90\x3c\x40"), (1000 + 10, 0, b"\x80\x3c\x00"), (1000 + 200, 0, b"\x90\x3e\x40"),
              (1000 + 100, 0, b"\x80\x3e\x00"),  # sent after, due before: kept after, in order
              (1000 + 300, 0, b"\x90\x40\x40")])  # the next cycle
    out._write(1000, 256)
    assert out.port.events == [(10, b"\x90\x3c\x40"), (10, b"\x80\x3c\x00"), (200, b"\x90\x3e\x40"),
                               (200, b"\x80\x3e\x00")]
    assert len(q) == 1
    out.port = _Buf()
    q.appendleft((900, 0, b"\x90\x41\x40"))  # its cycle has passed: written first, counted late
    out._write(1256, 256)
    assert out.port.events == [(0, b"\x90\x41\x40"), (44, b"\x90\x40\x40")] and out.late == 1


class _SmallBuf(_Buf):
    """A port buffer that holds `room` events a cycle (JACK 2's: 32 KB, about 2,700 note-offs)."""

    def __init__(self, room):
        super().__init__()
        self.room = room

    def write_midi_event(self, off, msg):
        if len(self.events) >= self.room or len(msg) > 3:
            raise RuntimeError("Error writing MIDI event")
        super().write_midi_event(off, msg)


def test_a_burst_larger_than_the_buffer_leaves_over_the_next_cycles_none_dropped():
    """The release on stop (a note-off per sounding key, then CC 123), all due at once: what
    does not fit in a cycle's buffer waits for the next; only a message too big for an empty
    buffer is dropped (and counted)."""
    out = _bare(period=64)
    burst = [bytes([0x80, k, 0]) for k in range(40, 90)] + [b"\xb0\x7b\x00"]
    out._queue.extend((None, 0, m) for m in burst[:10])
    out._queue.append((None, 0, b"\xf0\x01\x02\x03\xf7"))  # sysex: bigger than the buffer takes
    out._queue.extend((None, 0, m) for m in burst[10:])
    got = []
    for k in range(10):
        out.port = _SmallBuf(16)
        out._write(1000 + 64 * k, 64)
        got += [m for _off, m in out.port.events]
        assert len(out.port.events) <= 16
    assert got == burst and not out._queue and out._errors == 1


def test_cancel_keeps_what_is_due_before_the_cut():
    out = _bare()
    out.now = lambda: 5.0
    out._queue.extend([(1, 4.9, b"a"), (2, 5.1, b"b"), (3, 5.0, b"c"), (4, 6.0, b"d")])
    assert out.cancel() == [b"b", b"d"]
    assert [m for _f, _d, m in out._queue] == [b"a", b"c"]


# ---------------------------------------------------------------- with a JACK server

jack_mark = pytest.mark.jack


@pytest.fixture
def grid16(tmp_path):
    p = tmp_path / "grid.toml"
    p.write_text('timing = "preset"\nbpm = 100.0\nstep = "1/16"\ngate = 0.5\nchords = false\nhumanize = 0\n')
    return p


def _model():
    m = ROOT / "export" / "default.onnx"
    if not m.exists():
        pytest.skip("export/default.onnx is not there")
    return m


def _need_jack_client():
    pytest.importorskip("jack", reason="JACK-Client is not installed (pip install '.[jack]')")


def _wait_port(name, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name in subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.split("\n"):
            return True
        time.sleep(0.05)
    return False


@jack_mark
def test_an_open_output_lets_its_callback_take_the_gil_within_a_period(jack_server):
    """The process callback is Python: while an output is open, a thread holding the GIL lets
    go within a quarter period (Python's 5 ms would miss a 64-frame period); restored after."""
    _need_jack_client()
    before = sys.getswitchinterval()
    a = JackOutput("t-gil-a", client_name="t-gil-a")
    try:
        quarter = a.period / a.rate / 4
        assert quarter < before and sys.getswitchinterval() == pytest.approx(quarter, abs=1e-6)
        b = JackOutput("t-gil-b", client_name="t-gil-b")
        b.close()
        assert sys.getswitchinterval() == pytest.approx(quarter, abs=1e-6)  # still open: a keeps its own
    finally:
        a.close()
    assert sys.getswitchinterval() == before
    with pytest.raises(PortNotFound):  # an output that fails to open leaves it as it was
        JackOutput("t-gil-c", client_name="t-gil-c", connect_to="no-such-port")
    assert sys.getswitchinterval() == before


@jack_mark
def test_an_output_says_when_its_first_cycles_have_run(jack_server):
    """settled_at: SETTLE_CYCLES periods (and the lead) after the client starts; by then that
    many process callbacks have drawn the frame line."""
    _need_jack_client()
    out = JackOutput("t-settle", client_name="t-settle")
    try:
        wait = SETTLE_CYCLES * out.period / out.rate + out.lead
        assert 0 < out.settled_at - time.perf_counter() <= wait
        time.sleep(max(0.0, out.settled_at - time.perf_counter()))
        assert out._line.s is not None  # the callbacks have drawn the frame line by then
    finally:
        out.close()


@jack_mark
def test_an_output_knows_its_process_threads_priority(jack_server):
    """Read in the process callback itself: the player's real-time priority is set below it."""
    import os

    from midigan.jackport import _thread_priority

    _need_jack_client()
    assert os.sched_getscheduler(0) != os.SCHED_OTHER or _thread_priority() == 0  # (this test's own thread)
    out = JackOutput("t-prio", client_name="t-prio")
    try:
        time.sleep(max(0.0, out.settled_at - time.perf_counter()))
        assert isinstance(out.thread_priority, int) and out.thread_priority >= 0
        assert (out.thread_priority > 0) == bool(out.client.realtime)  # JACK says whether it is real-time
    finally:
        out.close()


@jack_mark
def test_an_output_on_a_stalled_server_counts_what_never_left(tmp_path, monkeypatch):
    """A server that stops running its clients (stopped here by SIGSTOP; a stall or an overload
    in life): what was queued when the port closed is counted as undelivered, never reported
    as released. Its own server, so the session's is not stopped."""
    import os
    import threading

    from tests.conftest import running_jackd

    _need_jack_client()
    name = f"midigan-stall-{os.getpid()}"
    with running_jackd(name, tmp_path / "jackd.log") as server:
        monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
        out = JackOutput("t-stall", client_name="t-stall")
        resume = threading.Timer(1.5, os.kill, (server.pid, signal.SIGCONT))
        try:
            out.send((0x90, 60, 100))
            deadline = time.monotonic() + 5
            while out.pending() and time.monotonic() < deadline:
                time.sleep(0.005)
            assert out.pending() == 0, "the note-on never left a running server"
            os.kill(server.pid, signal.SIGSTOP)
            time.sleep(0.05)  # the cycle running at the stop ends; no other starts
            out.send((0x80, 60, 0))
            out.send((0xB0, 123, 0))
            resume.start()  # closing asks the server to deactivate the client: it must answer
            out.close(timeout=0.2)
        finally:
            os.kill(server.pid, signal.SIGCONT)
            resume.cancel()
            out.close()
    assert out.undelivered == 2


def test_the_stop_line_claims_a_release_only_when_every_message_left():
    from midigan.cli import _stopped_line

    class Port:
        late, xruns = 0, 3

    assert _stopped_line("SIGINT", 12, Port(), 0) == "stopped (SIGINT): 12 notes sent, all released " \
                                                       "(JACK: 0 messages late, 3 xruns)"
    line = _stopped_line("SIGINT", 12, Port(), 2)
    assert "all released" not in line and "last 2 MIDI messages" in line and "left sounding" in line


def test_notes_land_on_their_frames_in_a_separate_client(jack_server, grid16):
    """jack_midi_dump (C, its own process) receives every note at its own frame inside the
    cycle: python-rtmidi's port could only give multiples of the period."""
    _need_jack_client()
    if not shutil.which("jack_midi_dump"):
        pytest.skip("jack_midi_dump is not installed (Debian: jack-tools)")
    dump = subprocess.Popen(["jack_midi_dump", "-a", "t-dump"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert _wait_port("t-dump:input")
        p = subprocess.run([sys.executable, "-m", "midigan", "play", "--api", "jack", "--port", "t-dump:input",
                            "--preset", str(grid16), "--bars", "1", "--seed", "1", "--model", str(_model())],
                           capture_output=True, text=True, timeout=60)
        time.sleep(0.2)
    finally:
        dump.send_signal(signal.SIGINT)  # SIGINT: it closes its JACK client (killed, it stalls the -S server 5 s)
        out = dump.communicate(timeout=5)[0]
    assert p.returncode == 0, p.stderr
    assert "(jack, latency 1.33 ms (64 frames))" in p.stderr
    ev = [(int(l.split(":")[0]), bytes.fromhex("".join(l.split(":")[1].split()[:3])))
          for l in out.splitlines() if ":" in l and l.split(":")[0].strip().isdigit()]
    ons = [f for f, m in ev if m[0] == 0x90 and m[2] > 0]
    offs = [f for f, m in ev if m[0] == 0x80]
    assert len(ons) == len(offs) == 16
    assert ev[-1][1] == bytes([0xB0, 123, 0])
    # Where in its cycle each note lands: python-rtmidi writes every message at a cycle's
    # first frame. (How exact the frames are is bench/jack.py's business: this test server
    # is synchronous and not real-time, so its frames need not keep pace with the clock.)
    assert len({f % jack_server["period"] for f in ons}) > 1, "every note at a cycle start: not sample-accurate"


@jack_mark
def test_second_instance_prints_its_real_name_and_sigint_exits_130(jack_server, grid16):
    _need_jack_client()
    cmd = [sys.executable, "-m", "midigan", "play", "--api", "jack", "--preset", str(grid16), "--seed", "1",
           "--model", str(_model())]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = None
    try:
        assert _wait_port("midigan:midigan"), "the first instance's port never appeared"
        second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 15
        ports = ""
        while time.monotonic() < deadline:
            ports = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout
            if sum(1 for l in ports.splitlines() if l.endswith(":midigan")) >= 2:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        second.send_signal(2)
        _o, err2 = second.communicate(timeout=20)
        first.terminate()
        _o, err1 = first.communicate(timeout=20)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert second.returncode == 130, err2
    assert first.returncode == 143, err1
    name2 = err2.split("playing grid on '")[1].split("'")[0]
    assert name2 != "midigan:midigan" and name2.endswith(":midigan"), err2
    assert name2 in ports.splitlines(), (name2, ports)


@jack_mark
def test_sync_by_our_own_name_is_an_error_that_lists_only_others(jack_server, grid16):
    _need_jack_client()
    p = subprocess.run([sys.executable, "-m", "midigan", "play", "--api", "jack", "--virtual", "mg-own",
                        "--sync", "mg-own", "--bars", "1", "--model", str(_model()), "--quiet"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    line = p.stderr.strip()
    assert line.startswith("Error: no MIDI input port named 'mg-own'") and "mg-own:" not in line, line


# ---------------------------------------------------------------- --wait: the first note waits for a reader

ALSA_CLIENTS = """Client info
  cur  clients : 3
Client   0 : "System" [Kernel]
  Port   0 : "Timer" (Rwe-)
Client 128 : "midigan" [User UMP MIDI1]
  Port   0 : "midigan" (R-e-)
    Connecting To: 129:0
Client 130 : "midigan" [User UMP MIDI1]
  Port   0 : "other" (R-e-)
Client 131 : "lonely" [User]
  Port   0 : "midigan" (R-e-)
"""


def test_alsa_readers_reads_the_connections_of_our_port_only():
    from midigan.ports import alsa_readers

    assert alsa_readers(ALSA_CLIENTS, "midigan", "midigan") is True
    assert alsa_readers(ALSA_CLIENTS, "midigan", "other") is False
    assert alsa_readers(ALSA_CLIENTS, "lonely", "midigan") is False
    assert alsa_readers(ALSA_CLIENTS, "absent", "midigan") is None


def test_wait_for_reader_holds_until_connected_or_stopped():
    from midigan.ports import wait_for_reader

    port, polls = MemoryPort(), []

    def sleep(dt):
        polls.append(dt)
        port.reader = len(polls) >= 3
    port.reader = False
    assert wait_for_reader(port, lambda: False, sleep=sleep) is True and len(polls) == 3
    port.reader, polls = False, []
    assert wait_for_reader(port, lambda: len(polls) >= 2, sleep=sleep) is False
    port.reader = None  # an API that cannot tell: no wait at all
    assert wait_for_reader(port, lambda: False, sleep=lambda dt: 1 / 0) is True


@jack_mark
def test_a_virtual_port_waits_for_its_first_reader_then_plays_from_the_first_note(jack_server, grid16):
    """Nothing connected: midigan says it waits and sends nothing; a reader that connects two
    seconds later gets the whole bar, first note included."""
    _need_jack_client()
    if not shutil.which("jack_midi_dump"):
        pytest.skip("jack_midi_dump is not installed (Debian: jack-tools)")
    play = subprocess.Popen([sys.executable, "-m", "midigan", "play", "--api", "jack", "--virtual", "mg-wait",
                             "--preset", str(grid16), "--bars", "1", "--seed", "1", "--model", str(_model())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dump = None
    try:
        assert _wait_port("mg-wait:mg-wait"), "the port never appeared"
        time.sleep(2.0)
        assert play.poll() is None, "played to the end with nobody listening"
        dump = subprocess.Popen(["jack_midi_dump", "-a", "t-wdump"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert _wait_port("t-wdump:input")
        subprocess.run(["jack_connect", "mg-wait:mg-wait", "t-wdump:input"], check=True, timeout=10)
        err = play.communicate(timeout=60)[1]
        time.sleep(0.2)
    finally:
        play.kill() if play.poll() is None else None
        if dump is not None:
            dump.send_signal(signal.SIGINT)  # SIGINT: it closes its JACK client (killed, it stalls the -S server 5 s)
    out = dump.communicate(timeout=5)[0]
    assert play.returncode == 0, err
    assert "waiting for a connection to 'mg-wait:mg-wait'" in err
    ons = [l for l in out.splitlines() if ":" in l and l.split(":")[1].split()[:1] == ["90"]]
    assert len(ons) == 16, out  # the whole bar, its first note included


def test_frame_clock_smooths_a_jittery_cycle_start_and_jumps_on_a_stall():
    """What the inputs stamp heard messages with: exact frames in, a jitter of up to 3 ms on
    each cycle's estimated start (a dummy driver on a busy machine) smoothed away."""
    from midigan.jackport import _FrameClock

    rng = np.random.default_rng(0)
    fc, rate, period = _FrameClock(48000), 48000, 256
    for k in range(2000):  # about ten seconds of cycles
        fc.update(k * period, 5.0 + k * period / rate + rng.uniform(0, 0.003))
    f = 1999 * period
    spacing = fc.time(f + 1200) - fc.time(f)  # 1,200 frames = 25 ms, a tick at 100 BPM
    assert spacing == pytest.approx(0.025, rel=2e-4)  # within 0.02 BPM at 100 BPM
    assert abs(fc.time(f) - (5.0 + f / rate + 0.0015)) < 0.002  # and on the clock, within the jitter
    fc.update(f + period, 100.0)  # a stall: the loop jumps to the estimate
    assert fc.time(f + period) == 100.0
