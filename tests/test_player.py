"""The live player on a fake clock and an in-memory port: no sound device needed."""
import os
import signal
import subprocess
import sys
import threading
from collections import deque

import numpy as np
import pytest

from midigan.player import HOLD_FOR_STOP, Player
from midigan.stopping import StopOnSignals
from midigan.ports import MemoryPort, PortNotFound, check_channel, open_output, resolve_api
from midigan.presets import load_preset, override

T0 = 100.0


class Clock:
    """A clock whose sleep() moves time exactly, so due times can be checked exactly."""

    def __init__(self, t=T0):
        self.t = t
        self.hooks = []  # (time, fn): fn() runs once the clock reaches time

    def now(self):
        return self.t

    def sleep(self, dt):
        self.t += dt
        while self.hooks and self.t >= self.hooks[0][0]:
            self.hooks.pop(0)[1]()


class FakeGen:
    """Stands in for runtime.Generator: a stream of known pitch sequences."""

    def __init__(self, seqs=None, fail_after=None, error=ValueError("model went bang")):
        self.seqs = seqs or [np.arange(60, 68) + i for i in range(1000)]
        self.fail_after, self.error = fail_after, error

    timed = False  # a pitch model: the preset times its notes

    def stream(self, seed=0, count=1, noise_scale=1.0, temperature=1.0, morph=0.25):
        for i, s in enumerate(self.seqs):
            if self.fail_after is not None and i >= self.fail_after:
                raise self.error
            s = np.asarray(s)
            yield s[None]


class FakeSync:
    """A clock input fed from a script of (time, message); wait() moves the fake clock."""

    def __init__(self, clock, script, end):
        self.clock, self.script, self.end = clock, deque(sorted(script, key=lambda e: e[0])), end
        self.player = None

    def pending(self):
        return bool(self.script) and self.script[0][0] <= self.clock.t

    def take(self):
        out = []
        while self.pending():
            out.append(self.script.popleft())
        return out

    def wait(self, timeout):
        nxt = self.script[0][0] if self.script else float("inf")
        self.clock.t = max(self.clock.t, min(self.clock.t + timeout, nxt))
        if self.clock.t >= self.end:
            self.player.stop("end of script")


def preset(name="piano", **kw):
    kw = {"humanize": 0, "accent": 0, "bpm": 120.0, **kw}
    return override(load_preset(name), **kw)


def make(gen=None, pr=None, **kw):
    clock = Clock()
    port = MemoryPort(now=clock.now)
    p = Player(port, gen or FakeGen(), pr or preset(), now=clock.now, sleep=clock.sleep, spin=0, **kw)
    return p, port, clock


def rel(port):
    return [(round(t - T0, 9), m) for t, m in port.messages]


def ons(port):
    return [(t, m[1]) for t, m in rel(port) if m[0] & 0xF0 == 0x90 and m[2] > 0]


def assert_released(port, channel=0):
    """Every note-on has its note-off, and CC 123 is the very last message."""
    held = {}
    for _t, m in port.messages:
        if m[0] == 0x90 | channel and m[2] > 0:
            held[m[1]] = held.get(m[1], 0) + 1
        elif m[0] == 0x80 | channel or (m[0] == 0x90 | channel and m[2] == 0):
            held[m[1]] = held.get(m[1], 0) - 1
            assert held[m[1]] >= 0, f"note-off for {m[1]} without a note-on"
    assert not any(held.values()), f"left sounding: {held}"
    assert port.messages[-1][1] == (0xB0 | channel, 123, 0)


# ---------------------------------------------------------------- schedule

def test_exact_order_and_due_times():
    p, port, _ = make(bars=1)
    assert p.run() == "bars"
    step, gate = 0.125, 0.9 * 0.125  # sixteenths at 120 BPM
    want = [(0.0, (0xC0, 0))]  # the preset's program (a grand piano) first
    pitches = list(range(60, 68)) + list(range(61, 69))
    for i, pitch in enumerate(pitches):
        want.append((round(i * step, 9), (0x90, pitch, 76)))
        want.append((round(i * step + gate, 9), (0x80, pitch, 0)))
    want.append((2.0, (0xB0, 123, 0)))
    assert rel(port) == want
    assert p.sent == 16


def test_the_pedal_changes_at_each_bar_and_is_up_after_a_stop():
    p, port, _ = make(pr=preset(pedal="bar"), bars=2)
    assert p.run() == "bars"
    pedal = [(t, m[2]) for t, m in rel(port) if m[:2] == (0xB0, 64)]
    beat = 0.5  # seconds at 120 BPM
    # lifted as each bar's first note is struck, pressed an eighth of a beat later, up at the end
    assert pedal == [(0.0, 0), (0.125 * beat, 127), (4 * beat, 0), (4.125 * beat, 127), (8 * beat, 0)]
    first_on = next(i for i, (_t, m) in enumerate(rel(port)) if m[0] == 0x90)
    assert rel(port)[first_on - 1][1] == (0xB0, 64, 0)  # the lift comes before the note it is for
    assert_released(port)


def test_a_stop_mid_pedal_lifts_it_and_no_pedal_no_cc64():
    p, port, clock = make(pr=preset(pedal="bar"))
    clock.hooks.append((T0 + 0.3, lambda: p.stop("test")))
    p.run()
    assert [m for _t, m in port.messages][-2:] == [(0xB0, 64, 0), (0xB0, 123, 0)]
    p, port, _ = make(bars=1)
    p.run()
    assert not [m for _t, m in port.messages if m[:2] == (0xB0, 64)]


def test_channel_and_velocity_from_preset():
    p, port, _ = make(pr=preset(velocity=100, channel=10), bars=1)
    p.run()
    assert {m[0] for _t, m in port.messages} == {0xC9, 0x99, 0x89, 0xB9}  # program, notes, CC 123
    assert_released(port, channel=9)
    with pytest.raises(ValueError, match="channel 17"):
        make(channel=17)
    with pytest.raises(ValueError, match="channel 0"):
        check_channel(0)


def test_repeated_pitch_with_full_gate_sends_off_before_on():
    gen = FakeGen([[60] * 8] * 100)
    p, port, _ = make(gen, preset("raw", bpm=120.0), bars=1)  # raw: 1/8 steps, gate 1.0
    p.run()
    msgs = rel(port)
    assert_released(port)
    for i in range(1, 8):  # at each step boundary: the old note ends, then the new one starts
        t = round(i * 0.25, 9)
        at = [m for tt, m in msgs if tt == t]
        assert at == [(0x80, 60, 0), (0x90, 60, p.preset.velocity)], (t, at)


def test_swing_and_rhythm_keep_every_note_paired():
    p, port, _ = make(pr=preset("ballad", humanize=0), bars=4)
    p.run()
    assert_released(port)
    times = [t for t, _ in ons(port)]
    assert times == sorted(times) and times[0] == 0.0


def test_tempo_change_takes_effect_at_next_step():
    p, port, clock = make(bars=2)
    # The player naps 50 ms at most, so the hook runs at exactly 0.55 s (beat 1.1).
    clock.hooks.append((T0 + 0.55, lambda: p.set_bpm(60.0)))
    p.run()
    t = [tt for tt, _ in ons(port)]
    assert t[:5] == [0.0, 0.125, 0.25, 0.375, 0.5]  # beats 0..1 at 120 BPM
    assert t[5] == pytest.approx(0.55 + 0.15, abs=1e-9)  # beat 1.25, now at 60 BPM
    assert t[6] == pytest.approx(0.55 + 0.40, abs=1e-9)  # then sixteenths last 0.25 s
    assert rel(port)[-1][0] == pytest.approx(0.55 + (8 - 1.1) * 1.0, abs=1e-9)  # beat 8
    assert_released(port)


def test_schedule_is_absolute_not_accumulated():
    """A late wake-up delays one event, not every event after it."""
    p, port, clock = make(bars=1)
    real_sleep = clock.sleep

    def oversleep(dt):
        real_sleep(dt)
        if T0 + 0.3 < clock.t < T0 + 0.32:
            clock.t += 0.02  # the OS woke us 20 ms late once
    p.sleep = oversleep
    p.run()
    t = [tt for tt, _ in ons(port)]
    assert t[3] == pytest.approx(0.375 + 0.0, abs=0.021)
    assert t[8:] == [pytest.approx(i * 0.125) for i in range(8, 16)]


# ---------------------------------------------------------------- every way out releases

def test_stop_event_mid_note_releases():
    p, port, clock = make()
    clock.hooks.append((T0 + 0.3, lambda: p.stop()))
    assert p.run() == "stopped"
    assert_released(port)
    last_on = ons(port)[-1]
    assert rel(port)[-2:] == [(pytest.approx(0.3, abs=0.06), (0x80, last_on[1], 0)),
                              (pytest.approx(0.3, abs=0.06), (0xB0, 123, 0))]


def test_exception_in_producer_releases_and_raises():
    crash = threading.Event()

    class CrashingGen(FakeGen):
        def stream(self, **kw):
            yield np.arange(60, 68), np.zeros(8, dtype=bool)
            crash.wait(10)  # the thread crashes while the first sequence is playing
            raise ValueError("model went bang")
    p, port, clock = make(CrashingGen())
    clock.hooks.append((T0 + 0.3, crash.set))
    with pytest.raises(ValueError, match="model went bang"):
        p.run()
    assert 3 <= p.sent <= 8
    assert_released(port)


def test_non_value_error_in_producer_becomes_runtime_error():
    p, port, _ = make(FakeGen(fail_after=1, error=ZeroDivisionError("x")))
    with pytest.raises(RuntimeError, match="generator failed: ZeroDivisionError"):
        p.run()
    assert_released(port)


def test_keyboard_interrupt_releases():
    p, port, clock = make()

    def interrupt():
        raise KeyboardInterrupt
    clock.hooks.append((T0 + 0.52, interrupt))
    with pytest.raises(KeyboardInterrupt):
        p.run()
    assert_released(port)
    assert p.sent == 5


def test_signals_only_set_a_flag_and_a_second_ctrl_c_cannot_skip_release():
    with StopOnSignals() as stop:
        p, port, clock = make(stop_event=stop)

        def ctrl_c_twice():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        clock.hooks.append((T0 + 0.4, ctrl_c_twice))
        reason = p.run()
    assert reason == "SIGINT"
    assert_released(port)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_signal_inside_the_first_handler_cannot_hang_it():
    """The interpreter runs a signal's handler between any two lines of the code it
    interrupts, the first signal's handler included. Re-enter the handler at every line
    of the flag's set(): with threading.Event (which holds a lock there) this hung."""
    stopper = StopOnSignals()
    handler, nested = stopper._handler, []

    def tracer(frame, event, _arg):
        if frame.f_code.co_name == "set" and event == "line" and len(nested) < 5:
            nested.append(frame.f_lineno)
            handler(signal.SIGTERM, None)  # the second signal, mid-set
        return tracer

    def first_signal():
        sys.settrace(tracer)
        try:
            handler(signal.SIGINT, None)
        finally:
            sys.settrace(None)

    t = threading.Thread(target=first_signal, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "the nested signal handler deadlocked"
    assert nested and stopper.event.is_set() and stopper.event.reason == "SIGINT"


def test_sigterm_stops_too():
    with StopOnSignals() as stop:
        p, port, clock = make(stop_event=stop)
        clock.hooks.append((T0 + 0.2, lambda: os.kill(os.getpid(), signal.SIGTERM)))
        assert p.run() == "SIGTERM"
    assert_released(port)


def test_send_failure_still_releases_the_rest():
    p, port, clock = make()
    sent = []

    class Flaky(MemoryPort):
        def send(self, msg):
            if msg[0] == 0x80 and msg[1] == 61 and len(sent) > 3:
                raise OSError("port vanished")
            sent.append(msg)
            super().send(msg)
    p.port = Flaky(now=clock.now)
    clock.hooks.append((T0 + 0.13, lambda: p.stop()))  # 60 and 61 both sounding? 61 only
    p.run()
    assert p.port.messages[-1][1] == (0xB0, 123, 0)


# ---------------------------------------------------------------- MIDI clock follow

def ticks(t0, bpm, n, start_tick=0):
    dt = 60.0 / bpm / 24
    return [(t0 + i * dt, [0xF8]) for i in range(n)]


def make_sync(script, end, **kw):
    p, port, clock = make(**kw)
    sync = FakeSync(clock, script, end)
    p.sync, p.running = sync, False
    sync.player = p
    return p, port, clock, sync


def test_clock_start_plays_on_the_ticks():
    # The DAW's clock runs before Start (tempo known), Start, then 2 beats.
    pre = ticks(T0, 120, 24)
    start = T0 + 0.5
    run = ticks(start + 0.001, 120, 48)
    p, port, _, _ = make_sync(pre + [(start, [0xFA])] + run, end=start + 0.99)
    p.run()
    tick_time = {i: run[i][0] - T0 for i in range(48)}
    got = [t for t, _ in ons(port)]
    assert len(got) == 8
    for k, t in enumerate(got):  # sixteenth k falls on tick 6k
        assert t == pytest.approx(tick_time[6 * k], abs=1e-9)
    assert p.bpm == pytest.approx(120.0)
    assert_released(port)


def test_clock_tempo_change_mid_stream_is_followed():
    a = ticks(T0 + 0.01, 120, 48)  # 2 beats at 120
    t1 = a[-1][0] + 60 / 90 / 24
    b = ticks(t1, 90, 24 * 6)  # then 6 beats at 90
    script = [(T0, [0xFA])] + a + b
    p, port, _, _ = make_sync(script, end=b[-1][0] + 0.001)
    p.run()
    tick_time = [t - T0 for t, _ in a + b]
    got = [t for t, _ in ons(port)]
    assert len(got) >= 30
    for k, t in enumerate(got):
        err = abs(t - tick_time[6 * k])
        # Half a beat into the new tempo the median estimate has switched; before
        # that a note is off by at most the tempo step of one tick.
        assert err < (1e-9 if 6 * k >= 48 + 12 else 0.0075), (k, err)
    assert p.bpm == pytest.approx(90.0, rel=1e-4)
    assert_released(port)


def test_clock_stop_releases_and_continue_resumes():
    dt = 60 / 120 / 24
    t = [T0 + 0.01 + i * dt for i in range(200)]
    stop_at = t[40] + 0.002  # in the middle of the note that began at tick 36
    script = [(T0, [0xFA])] + [(x, [0xF8]) for x in t[:41]] + [(stop_at, [0xFC])]
    # While stopped the DAW keeps sending clock; no notes may sound.
    script += [(x, [0xF8]) for x in t[60:100]]
    script += [(t[100] - 0.001, [0xFB])] + [(x, [0xF8]) for x in t[100:160]]
    p, port, _, _ = make_sync(script, end=t[159] + 0.001)
    p.run()
    msgs = rel(port)
    stop_rel = stop_at - T0
    at_stop = [m for tt, m in msgs if tt == pytest.approx(stop_rel)]
    assert at_stop == [(0x80, 66, 0), (0xB0, 123, 0)]  # the 7th note (pitch 66) was sounding
    assert not [m for tt, m in msgs if stop_rel < tt < t[100] - T0]
    after = [tt for tt, m in msgs if tt > t[100] - T0 and m[0] == 0x90]
    # Continue resumes at song position 41 ticks: the next sixteenth is tick 42.
    resumed_tick_times = [t[100 + (k - 41)] - T0 for k in range(42, 72, 6)]
    assert after[:5] == [pytest.approx(x, abs=1e-9) for x in resumed_tick_times[:5]]
    # ... with the music that was next, not something new.
    assert [m[1] for tt, m in msgs if tt > t[100] - T0 and m[0] == 0x90][0] == 67
    assert_released(port)


@pytest.mark.parametrize("hold", [0.0, HOLD_FOR_STOP])
def test_a_stop_in_place_of_a_notes_tick_sends_no_note_when_held(hold):
    """Stop comes 2 ms after the predicted time of tick 42, which carries a note (pitch 67).
    Sent at once (hold 0) the note leaves on its predicted tick and blips until the Stop; held,
    it waits, sees the Stop and is never sent, and Continue plays it on its beat. Held or not,
    every other note leaves `hold` after its tick."""
    dt = 60 / 120 / 24
    t = [T0 + 0.01 + i * dt for i in range(120)]
    stop_at = t[42] + 0.002
    script = [(T0, [0xFA])] + [(x, [0xF8]) for x in t[:42]] + [(stop_at, [0xFC])]
    script += [(t[80] - 0.001, [0xFB])] + [(x, [0xF8]) for x in t[80:120]]
    p, port, _, _ = make_sync(script, end=t[119] + 0.001, hold=hold)
    p.run()
    played = ons(port)
    before = [(tt, k) for tt, k in played if tt < stop_at - T0 + 1e-9]
    assert [k for _, k in before] == list(range(60, 67 + (hold == 0)))
    for i, (tt, _k) in enumerate(before[:7]):
        assert tt == pytest.approx(t[6 * i] - T0 + hold, abs=1e-9)
    after = [(tt, k) for tt, k in played if tt > stop_at - T0]
    # Continue resumes at tick 42: held, the note never sent plays there (the first tick after
    # Continue); sent, it is gone and the next sixteenth (tick 48) comes first.
    assert after[0] == (pytest.approx(t[80 if hold else 86] - T0 + hold, abs=1e-9), 67 if hold else 61)
    assert_released(port)
    with pytest.raises(ValueError, match="hold"):
        make(hold=-0.001)


def test_one_late_clock_tick_moves_notes_only_a_little():
    dt = 60 / 120 / 24
    t = [T0 + 0.01 + i * dt for i in range(48)]
    t[29] += 0.012  # ticks 29 and 30 arrive 12 ms late (a busy machine), the rest on time
    t[30] += 0.012
    script = [(T0, [0xFA])] + [(x, [0xF8]) for x in t]
    p, port, _, _ = make_sync(script, end=t[-1] + 0.001)
    p.run()
    got = [tt for tt, _ in ons(port)]
    # The note on tick 30 is due a tick after tick 29: a quarter of the delay, not all of it.
    assert got[5] - (t[30] - 0.012 - T0) == pytest.approx(0.003, abs=1e-6)
    assert got[6] == pytest.approx(t[36] - T0, abs=1e-9)  # and gone by the next note


def test_clock_that_dies_mid_note_still_ends_the_note():
    dt = 60 / 120 / 24
    t = [T0 + 0.01 + i * dt for i in range(8)]  # the clock stops after tick 7, no Stop
    script = [(T0, [0xFA])] + [(x, [0xF8]) for x in t]
    p, port, _, _ = make_sync(script, end=T0 + 2.0)
    p.run()
    msgs = rel(port)
    assert [m for _t, m in msgs if m[0] == 0x90] == [(0x90, 60, 76), (0x90, 61, 76)]  # ticks 0 and 6
    off61 = [tt for tt, m in msgs if m == (0x80, 61, 0)]
    assert off61 == [pytest.approx(t[6] - T0 + 0.9 * 0.125, abs=1e-9)]  # on time, not at the end
    assert msgs[-1] == (pytest.approx(2.0, abs=0.06), (0xB0, 123, 0))


def test_song_position_pointer_moves_position():
    dt = 60 / 120 / 24
    t = [T0 + 0.01 + i * dt for i in range(100)]
    # Stopped: the DAW jumps to bar 3 (32 sixteenths = 8 beats) and continues.
    script = [(T0, [0xF2, 32, 0]), (T0 + 0.005, [0xFB])] + [(x, [0xF8]) for x in t]
    p, port, _, _ = make_sync(script, end=t[-1] + 0.001, bars=4)
    p.run()
    got = [tt for tt, _ in ons(port)]
    # Position 8 beats = tick 192 comes with the first clock; each sixteenth follows.
    assert got[:4] == [pytest.approx(t[i] - T0, abs=1e-9) for i in (0, 6, 12, 18)]
    assert p.beat_at(t[-1]) == pytest.approx(8 + 99 / 24)
    assert_released(port)


def test_sync_bars_end_counts_song_position():
    dt = 60 / 120 / 24
    t = [T0 + 0.01 + i * dt for i in range(24 * 6)]
    script = [(T0, [0xFA])] + [(x, [0xF8]) for x in t]
    p, port, _, _ = make_sync(script, end=t[-1] + 1, bars=1)
    assert p.run() == "bars"
    assert p.sent == 16
    assert rel(port)[-1] == (pytest.approx(t[96] - T0, abs=1e-9), (0xB0, 123, 0))


# ---------------------------------------------------------------- ports

def test_memory_port_panic_and_reset():
    port = MemoryPort(now=lambda: 1.0)
    with port:
        port.panic(channels=[0])
        port.reset(channels=[2])
    assert [m for _t, m in port.messages] == [(0xB0, 120, 0), (0xB0, 123, 0), (0xB2, 123, 0), (0xB2, 121, 0)]
    with pytest.raises(OSError):
        port.send([0x90, 60, 1])


def test_api_names_and_windows_virtual_port(monkeypatch):
    with pytest.raises(ValueError, match="unknown MIDI API 'asio'"):
        resolve_api("asio")
    monkeypatch.setattr("sys.platform", "win32")
    assert resolve_api("auto") == "winmm"
    with pytest.raises(RuntimeError, match="loopMIDI"):
        open_output("midigan", api="auto")


def test_missing_port_is_one_clear_error(monkeypatch):
    import midigan.ports as ports

    class FakeOut:
        def get_ports(self):
            return ["Synth A", "Synth B"]

        def delete(self):
            pass
    monkeypatch.setenv("MIDIGAN_JACK_BACKEND", "rtmidi")  # python-rtmidi's path, faked
    monkeypatch.setattr(ports, "_client", lambda kind, api, name: FakeOut())
    with pytest.raises(PortNotFound, match="no MIDI output port named 'nope' \\(available: 'Synth A', 'Synth B'\\)"):
        open_output("nope", virtual=False, api="jack")
    with pytest.raises(PortNotFound, match="ambiguous"):
        open_output("synth", virtual=False, api="jack")


def test_live_modules_never_import_torch():
    code = ("import sys, midigan.cli, midigan.player, midigan.ports\n"
            "from midigan.cli import main\n"
            "bad = [m for m in ('torch', 'mido', 'onnx') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
