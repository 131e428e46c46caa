"""Following JACK transport and Ableton Link (midigan/sync.py).

Hardware-free: the real player and the real sync sources on a fake clock, with a
scripted JACK transport (cycles of 64 frames at 48 kHz, with or without a timebase
master) and a scripted Link session in their place. The port records each
message's due time (a scheduling port, as the JACK-Client one), so the times are
checked exactly. With a JACK server (the `jack` marker): `midigan play --sync jack`
started and stopped by another client's transport. With LinkPython-extern: a
second Link peer in this process drives the player.
"""
from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from midigan.player import Player
from midigan.sync import JackTransport, LinkSync, Snap, TimelineSync
from tests.test_jackport import SchedPort
from tests.test_player import Clock, FakeGen, preset

ROOT = Path(__file__).resolve().parent.parent
RATE, PERIOD = 48000, 64
CYCLES = RATE / PERIOD  # 750 cycles a second: event times below are whole cycles


class FakeTransport:
    """A JACK client's view of the transport: what jack_transport_query gives at the start of
    the current cycle. `script`: (cycle, action, *args), actions 'start', 'stop',
    'locate' (frame), 'tempo' (bpm: a timebase master's, continuous in beats).
    With `bbt`, a timebase master gives bar/beat/tick and its tempo."""

    ROLLING = "rolling"

    def __init__(self, clock, script, bbt=False, bpm=120.0):
        self.clock, self.script = clock, deque(sorted(script, key=lambda e: e[0]))
        self.bbt, self.bpm = bbt, bpm
        self.rolling, self.frame, self.beats = False, 0, 0.0
        self.cycle = min([math.floor(clock.t * CYCLES + 1e-6)] + [e[0] for e in self.script])
        self.queries = 0

    def _advance(self, cycle):
        if self.rolling and cycle > self.cycle:
            n = cycle - self.cycle
            self.frame += n * PERIOD
            self.beats += n * PERIOD / RATE * self.bpm / 60
        self.cycle = max(self.cycle, cycle)

    def transport_query(self):
        self.queries += 1
        now = math.floor(self.clock.t * CYCLES + 1e-6)
        while self.script and self.script[0][0] <= now:
            cycle, what, *arg = self.script.popleft()
            self._advance(cycle)
            if what == "start":
                self.rolling = True
            elif what == "stop":
                self.rolling = False
            elif what == "locate":
                self.frame = arg[0]
                self.beats = arg[0] / RATE * self.bpm / 60
            elif what == "tempo":
                self.bpm = arg[0]
        self._advance(now)
        pos = {"usecs": now / CYCLES * 1e6, "frame_rate": RATE, "frame": self.frame}
        if self.bbt:
            b = self.beats
            pos.update(bar=int(b // 4) + 1, beat=int(b % 4) + 1, tick=(b % 1) * 1920, bar_start_tick=0.0,
                       beats_per_bar=4.0, beat_type=4.0, ticks_per_beat=1920.0, beats_per_minute=self.bpm)
        return ("rolling" if self.rolling else "stopped"), pos


def at(cycle):
    return cycle / CYCLES


def run_player(clock, sync, pr, end, seqs=None, **kw):
    port = SchedPort(clock.now)
    p = Player(port, FakeGen(seqs), pr, sync=sync, now=clock.now, sleep=clock.sleep, spin=0, **kw)
    clock.hooks.append((end, lambda: p.stop("test")))
    p.run()
    return p, port


def jack_sync(clock, script, **kw):
    fake = FakeTransport(clock, script, **{k: kw.pop(k) for k in ("bbt", "bpm") if k in kw})
    return JackTransport(120.0, client=fake, jack_us=lambda: clock.t * 1e6, now=clock.now, sleep=clock.sleep,
                         **kw), fake


def note_ons(port):
    """(due, pitch) of every note-on that reaches the synth."""
    return [(d, m[1]) for d, m in port.played() if m[0] == 0x90]


def assert_all_released(port):
    held = {}
    for _d, m in port.played():
        if m[0] == 0x90:
            held[m[1]] = held.get(m[1], 0) + 1
        elif m[0] == 0x80 and held.get(m[1]):
            held[m[1]] -= 1
    assert not any(held.values()), held
    assert port.played()[-1][1] == (0xB0, 123, 0)


SIXTEENTHS = dict(step="1/16", gate=0.5, rhythm=[1], chords=False)


# ---------------------------------------------------------------- JACK transport, no timebase master

def test_transport_start_and_stop_play_exactly_while_rolling():
    clock = Clock(100.0)
    c0 = math.floor(100.0 * CYCLES)
    start, stop = c0 + 101, c0 + 101 + 6 * 375  # rolls for 3 s (375 cycles a beat at 120 BPM)
    sync, _ = jack_sync(clock, [(start, "start"), (stop, "stop")])
    p, port = run_player(clock, sync, preset(bpm=120.0, **SIXTEENTHS), end=at(stop) + 1.0)
    ons = note_ons(port)
    step = 60 / 120 / 4
    # Every sixteenth from the transport's first rolling frame, and none at or after the stop.
    want = [at(start) + k * step for k in range(24)]
    assert [d for d, _ in ons] == pytest.approx(want, abs=1e-9)
    assert all(d < at(stop) for d, _ in ons)
    assert sync.starts == 1 and sync.stops == 1
    assert p.bpm == pytest.approx(120.0)  # frames at the player's own tempo: no master
    assert_all_released(port)
    # Nothing was handed over before the transport rolled (the first note: when it was seen).
    assert min(h for h, _d, m in port.handed if m[0] == 0x90) >= at(start)


def test_stop_releases_the_sounding_note_at_the_stop():
    clock = Clock(100.0)
    c0 = math.floor(100.0 * CYCLES)
    start = c0 + 10
    stop = start + 375 + 47  # a stop mid-note (notes last half a sixteenth: 62.5 ms)
    pr = preset(bpm=120.0, step="1/8", gate=0.9, rhythm=[1], chords=False)
    sync, _ = jack_sync(clock, [(start, "start"), (stop, "stop")])
    _p, port = run_player(clock, sync, pr, end=at(stop) + 0.5)
    played = port.played()
    last_on = max(d for d, m in played if m[0] == 0x90)
    assert at(stop) - 0.25 < last_on < at(stop)  # a note was sounding at the stop
    offs_after = [d for d, m in played if m[0] == 0x80 and d >= last_on]
    # Released when the stop is seen (the transport is polled every 5 ms while rolling),
    # not at the note's end.
    assert offs_after and max(offs_after) <= at(stop) + 0.005 + 1 / CYCLES
    assert_all_released(port)


def test_start_from_zero_replays_the_take_with_a_fixed_seed():
    clock = Clock(100.0)
    c0 = math.floor(100.0 * CYCLES)
    s1, e1 = c0 + 10, c0 + 10 + 750
    s2, e2 = e1 + 300, e1 + 300 + 750
    script = [(s1, "start"), (e1, "stop"), (e1 + 150, "locate", 0), (s2, "start"), (e2, "stop")]
    sync, _ = jack_sync(clock, script)
    seqs = [np.arange(40, 100) + i for i in range(50)]
    _p, port = run_player(clock, sync, preset(bpm=120.0, **SIXTEENTHS), end=at(e2) + 0.5, seqs=seqs, seed=3)
    ons = note_ons(port)
    take1 = [n for d, n in ons if d < at(e1)]
    take2 = [n for d, n in ons if d >= at(s2)]
    assert len(take1) == 8 and take2 == take1
    assert sync.starts == 2
    assert_all_released(port)


def test_locate_while_stopped_plays_the_located_downbeat_then_the_grid():
    clock = Clock(100.0)
    c0 = math.floor(100.0 * CYCLES)
    s1, e1 = c0 + 10, c0 + 10 + 200
    bar5 = 16 * RATE // 2  # beat 16 at 120 BPM: frame 384000
    s2 = e1 + 100
    script = [(s1, "start"), (e1, "stop"), (e1 + 50, "locate", bar5), (s2, "start"), (s2 + 750, "stop")]
    sync, _ = jack_sync(clock, script)
    # Dotted-eighth steps: only every fourth note falls on a beat, so landing is not luck.
    pr = preset(bpm=120.0, step="1/16", rhythm=[3], gate=0.5, chords=False)
    _p, port = run_player(clock, sync, pr, end=at(s2 + 750) + 0.5)
    after = [d for d, _n in note_ons(port) if d >= at(s2)]
    assert after[0] == pytest.approx(at(s2), abs=1e-9)  # the note on bar 5's downbeat
    assert np.diff(after) == pytest.approx(0.375, abs=1e-9)  # dotted eighths at 120 BPM
    assert sync.locates == 1
    assert_all_released(port)


def test_locate_while_rolling_releases_and_continues_from_the_new_place():
    clock = Clock(100.0)
    c0 = math.floor(100.0 * CYCLES)
    s1 = c0 + 10
    jump = s1 + 500 + 7  # mid-note: 0.676 s after the start
    frame = 10 * RATE // 2 + 1000  # beat 10 + 1000 frames (41.7 ms, a third of a sixteenth)
    script = [(s1, "start"), (jump, "locate", frame), (jump + 750, "stop")]
    sync, _ = jack_sync(clock, script)
    _p, port = run_player(clock, sync, preset(bpm=120.0, **SIXTEENTHS), end=at(jump + 750) + 0.5)
    ons = [d for d, _n in note_ons(port)]
    before = [d for d in ons if d < at(jump)]
    after = [d for d in ons if d >= at(jump)]
    assert len(before) == 6
    # The next sixteenth after the new place: beat 10.25, which the transport reaches
    # (0.125 - 1000/48000) s after the jump's cycle.
    first = at(jump) + 0.125 - 1000 / RATE
    assert after[0] == pytest.approx(first, abs=1e-9)
    assert np.diff(after) == pytest.approx(0.125, abs=1e-9)
    assert sync.locates == 1
    assert_all_released(port)


def test_joining_a_rolling_transport_starts_on_the_next_sixteenth():
    clock = Clock(100.0)
    c0 = math.floor(100.0 * CYCLES)
    script = [(c0 - 1000, "start"), (c0 + 750, "stop")]  # rolling since before midigan started
    sync, fake = jack_sync(clock, script)
    _p, port = run_player(clock, sync, preset(bpm=120.0, **SIXTEENTHS), end=at(c0 + 750) + 0.5)
    ons = [d for d, _n in note_ons(port)]
    # The transport's frame 0 was at cycle c0 - 1000: sixteenths fall at at(c0 - 1000) + k/8.
    k = np.array([(d - at(c0 - 1000)) / 0.125 for d in ons])
    assert k == pytest.approx(np.round(k), abs=1e-7)
    assert ons[0] >= clock.t - 1.5 and ons[0] - at(c0) < 0.125 + 1e-9
    assert_all_released(port)


# ---------------------------------------------------------------- JACK transport with a timebase master

def test_timebase_master_tempo_and_bar_beat_tick_are_followed():
    clock = Clock(100.0)
    c0 = math.floor(100.0 * CYCLES)
    start = c0 + 10
    change = start + 4 * 300  # 150 BPM for a bar (0.4 s a beat = 300 cycles), then 100 BPM
    stop = change + 4 * 450
    script = [(start, "start"), (change, "tempo", 100.0), (stop, "stop")]
    sync, _ = jack_sync(clock, script, bbt=True, bpm=150.0)
    p, port = run_player(clock, sync, preset(bpm=120.0, **SIXTEENTHS), end=at(stop) + 0.5)
    ons = [d for d, _n in note_ons(port)]
    want = [at(start) + k * 0.1 for k in range(16)] + [at(change) + k * 0.15 for k in range(16)]
    assert ons == pytest.approx(want, abs=1e-9)
    assert sync.master and p.bpm == pytest.approx(100.0)
    assert_all_released(port)


# ---------------------------------------------------------------- Ableton Link, injected

class FakeLinkState:
    """A captured session state: the fake's timeline as it is now."""

    def __init__(self, link):
        self.l, self.seg = link, link.segments[-1]

    def tempo(self):
        return self.seg[2]

    def isPlaying(self):
        return self.l.playing

    def timeForIsPlaying(self):
        return self.l.play_us

    def beatAtTime(self, us, quantum):
        us0, b0, bpm = self.seg
        return b0 + (us - us0) * bpm / 60e6

    def timeAtBeat(self, beat, quantum):
        us0, b0, bpm = self.seg
        return us0 + (beat - b0) * 60e6 / bpm


class FakeLink:
    """A Link session on the fake clock, behind link.Link's method names. `script`:
    (time, 'tempo', bpm) keeps the beat continuous; (time, 'play') and (time, 'stop')."""

    def __init__(self, clock, script, bpm=120.0):
        self.fake_clock, self.script = clock, deque(sorted(script, key=lambda e: e[0]))
        self.segments = [(clock.t * 1e6, 1.3, bpm)]  # (from µs, beat there, tempo); a phase that is not 0
        self.playing, self.play_us = False, 0

    def clock(self):
        return self

    def micros(self):
        return self.fake_clock.t * 1e6

    def numPeers(self):
        return 1

    def captureAppSessionState(self):
        while self.script and self.script[0][0] <= self.fake_clock.t:
            t, what, *arg = self.script.popleft()
            if what == "tempo":
                self.segments.append((t * 1e6, self.beat(t), arg[0]))
            else:
                self.playing, self.play_us = what == "play", t * 1e6
        return FakeLinkState(self)

    def beat(self, t):
        """The session's beat at time t (seconds), from the tempo history."""
        us0, b0, bpm = [s for s in self.segments if s[0] <= t * 1e6 + 1e-3][-1]
        return b0 + (t * 1e6 - us0) * bpm / 60e6


def link_sync(clock, link):
    return LinkSync(120.0, link=link, now=clock.now, sleep=clock.sleep)


def test_link_start_lands_on_the_next_bar_line_and_follows_tempo_and_stop():
    clock = Clock(100.0)
    # (A tempo change between two ticks moves a note handed over before it: here it comes
    # on a sixteenth, where the note's due time is the change's.)
    t_play, t_tempo, t_stop = 100.37, 101.35 + 16 * 0.125, 105.0
    link = FakeLink(clock, [(t_play, "play"), (t_tempo, "tempo", 90.0), (t_stop, "stop")])
    sync = link_sync(clock, link)
    p, port = run_player(clock, sync, preset(bpm=100.0, **SIXTEENTHS), end=t_stop + 0.5)
    ons = [d for d, _n in note_ons(port)]
    beats = np.array([link.beat(d) for d in ons])
    # The session's beat at t_play is 1.3 + 0.37 * 2 = 2.04: the song starts on the next bar line, beat 4.
    assert beats[0] == pytest.approx(4.0, abs=1e-7)
    assert np.diff(beats) == pytest.approx(0.25, abs=1e-7)  # sixteenths in the session's beats, both tempos
    assert all(d < t_stop for d in ons) and ons[-1] > t_stop - 0.2  # to the stop, not beyond
    assert p.bpm == pytest.approx(90.0)
    assert sync.starts == 1 and sync.stops == 1
    assert_all_released(port)


def test_link_stop_scheduled_ahead_plays_on_until_then():
    clock = Clock(100.0)
    link = FakeLink(clock, [(100.05, "play")], bpm=120.0)
    sync = link_sync(clock, link)

    def stop_ahead():  # a peer stops at a bar line 2 s ahead, announcing it now
        link.playing, link.play_us = False, 103.0 * 1e6

    clock.hooks.append((101.0, stop_ahead))
    _p, port = run_player(clock, sync, preset(bpm=120.0, **SIXTEENTHS), end=103.5)
    ons = [d for d, _n in note_ons(port)]
    # Beat 1.4 at the start (1.3 at t=100, 120 BPM): the song's beat 0 is the session's beat 4,
    # at 101.35; sixteenths from there to the stop at 103.
    assert ons == pytest.approx([101.35 + k * 0.125 for k in range(14)], abs=1e-9)
    assert sync.stops == 1
    assert_all_released(port)


# ---------------------------------------------------------------- the common part

class ScriptedTimeline(TimelineSync):
    def __init__(self, clock, snaps):
        super().__init__("scripted", now=clock.now, sleep=clock.sleep)
        self.snaps = snaps

    def _snapshot(self, t):
        return self.snaps(t)


def test_a_tick_on_the_stop_time_is_not_sent():
    clock = Clock(10.0)
    # Playing from beat 0 at t=10 at 120 BPM; stopped at exactly beat 1 (t=10.5).
    play = Snap(True, 10.0, 0.0, 120.0)
    sync = ScriptedTimeline(clock, lambda t: play if t < 10.5 else Snap(False, 10.5, 1.0, 120.0))
    msgs = []
    while clock.t < 11.0:
        msgs += sync.take()
        clock.sleep(0.003)
    ticks = [t for t, m in msgs if m[0] == 0xF8]
    assert msgs[0][1] == (0xFA,) and msgs[-1] == (pytest.approx(10.5), (0xFC,))
    assert len(ticks) == 24 and ticks[-1] == pytest.approx(10.5 - 1 / 48)
    assert all(m[1] == 120.0 for _t, m in msgs if m[0] == 0xF8)


# ---------------------------------------------------------------- with a JACK server

def _dump_events(out):
    """(frame, bytes) from `jack_midi_dump -a` lines 'FRAME: 90 3c 40'."""
    ev = []
    for line in out.splitlines():
        head, _, rest = line.partition(":")
        if head.strip().isdigit() and rest.split():
            ev.append((int(head), bytes.fromhex("".join(rest.split()[:3]))))
    return ev


@pytest.mark.jack
def test_play_follows_jack_transport_started_and_stopped_by_another_client(jack_server, tmp_path):
    """A second JACK client is the DAW: midigan plays only while the transport rolls, releases
    everything at each stop, and a start from frame 0 replays the take (fixed --seed)."""
    jack = pytest.importorskip("jack", reason="JACK-Client is not installed (pip install '.[jack]')")
    if not shutil.which("jack_midi_dump"):
        pytest.skip("jack_midi_dump is not installed (Debian: jack-tools)")
    model = ROOT / "export" / "default.onnx"
    if not model.exists():
        pytest.skip("export/default.onnx is not there")
    grid = tmp_path / "grid.toml"
    grid.write_text('timing = "preset"\nbpm = 100.0\nstep = "1/16"\ngate = 0.5\nchords = false\nhumanize = 0\n')
    from tests.test_jackport import _wait_port

    daw = jack.Client("t-daw", no_start_server=True)  # never activated: only the transport
    daw.transport_stop()
    daw.transport_frame = 0
    dump = subprocess.Popen(["jack_midi_dump", "-a", "t-sdump"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    proc = None
    roll, rest = 2.0, 0.7
    try:
        assert _wait_port("t-sdump:input")
        proc = subprocess.Popen([sys.executable, "-m", "midigan", "play", "--api", "jack", "--port", "t-sdump:input",
                                 "--sync", "jack", "--preset", str(grid), "--seed", "1", "--model", str(model)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while "midigan:" not in subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True).stdout:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
            time.sleep(0.05)
        time.sleep(0.5)  # stopped: nothing may sound
        for _take in range(2):
            daw.transport_start()
            time.sleep(roll)
            daw.transport_stop()
            time.sleep(rest - 0.1)
            daw.transport_frame = 0  # back to the top: the next start replays the take
            time.sleep(0.1)
        proc.send_signal(2)
        _o, err = proc.communicate(timeout=20)
        time.sleep(0.2)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        dump.send_signal(signal.SIGINT)  # SIGINT: it closes its JACK client (killed, it stalls the -S server 5 s)
        out = dump.communicate(timeout=5)[0]
        daw.close()
    assert proc.returncode == 130, err
    assert "following clock from 'JACK transport'" in err, err
    ev = _dump_events(out)
    rate = jack_server["rate"]
    # The takes, each up to the all-notes-off that its stop sends.
    cuts = [i for i, (_f, m) in enumerate(ev) if m == bytes([0xB0, 123, 0])]
    assert len(cuts) >= 2, ev
    takes = [ev[:cuts[0] + 1], ev[cuts[0] + 1:cuts[1] + 1]]
    assert not any(m[0] == 0x90 for _f, m in ev[cuts[1] + 1:])  # nothing after the second stop
    pitches = []
    for take in takes:
        ons = [(f, m[1]) for f, m in take if m[0] == 0x90 and m[2] > 0]
        assert len(ons) >= 8, take  # 2 s of sixteenths at 100 BPM: 13 or 14
        held = {}
        for _f, m in take:
            if m[0] == 0x90 and m[2] > 0:
                held[m[1]] = held.get(m[1], 0) + 1
            elif m[0] == 0x80 and held.get(m[1]):  # a spare note-off (a cancelled note's, resent) is harmless
                held[m[1]] -= 1
        assert not any(held.values()), held  # every note released at the stop
        # Notes only while rolling: from the first note to the stop's release, at most the roll.
        assert take[-1][0] - ons[0][0] <= (roll + 0.1) * rate, (take[-1][0] - ons[0][0]) / rate
        pitches.append([p for _f, p in ons])
    # Silence while stopped between the takes.
    first2 = next(f for f, m in takes[1] if m[0] == 0x90)
    assert first2 - takes[0][-1][0] >= (rest - 0.2) * rate
    # Nothing before the DAW's first start: a note sounding early would stretch the first take
    # past the roll (checked above); mapping the dump's frames onto the controller's is too
    # loose on a loaded machine to check it directly.
    n = min(len(p) for p in pitches) - 2
    assert pitches[0][:n] == pitches[1][:n]  # Start from frame 0 with --seed: the same notes


# ---------------------------------------------------------------- a second Link peer

class _Recorder(SchedPort):
    """SchedPort on the real clock, handing over 10 ms ahead like the JACK-Client port."""

    def __init__(self):
        super().__init__(time.perf_counter)


def test_follows_a_second_link_peer_tempo_phase_and_start_stop():
    """A second Link peer in this process sets the tempo and starts: every note falls on the
    peer's sixteenths (its due time, within 1 ms of the peer's beat times), from a bar line;
    nothing before the start or after the stop; everything released."""
    import threading

    link = pytest.importorskip("link", reason="LinkPython-extern is not installed (pip install '.[link]')")
    peer = link.Link(100.0)
    peer.startStopSyncEnabled = True
    peer.enabled = True
    sync = LinkSync(120.0)
    try:
        deadline = time.monotonic() + 5
        while peer.numPeers() < 1 or sync.peers < 1:
            if time.monotonic() > deadline:
                pytest.skip("Link peers do not discover each other on this machine (no loopback multicast)")
            time.sleep(0.05)
        st = peer.captureAppSessionState()
        st.setTempo(100.0, peer.clock().micros())
        peer.commitAppSessionState(st)
        deadline = time.monotonic() + 5
        while abs(sync.link.captureAppSessionState().tempo() - 100.0) > 1e-6:
            assert time.monotonic() < deadline, "the tempo never reached the follower"
            time.sleep(0.02)
        port = _Recorder()
        p = Player(port, FakeGen(), preset(bpm=120.0, **SIXTEENTHS), sync=sync, spin=0)
        th = threading.Thread(target=p.run)
        th.start()
        try:
            time.sleep(0.4)
            st = peer.captureAppSessionState()
            st.setIsPlayingAndRequestBeatAtTime(True, peer.clock().micros(), 0.0, 4.0)
            peer.commitAppSessionState(st)
            t_start = time.perf_counter()
            time.sleep(4.0)
            st = peer.captureAppSessionState()
            stop_us = peer.clock().micros()
            st.setIsPlaying(False, stop_us)
            peer.commitAppSessionState(st)
            t_stop = time.perf_counter()
            time.sleep(0.3)
        finally:
            p.stop("test")
            th.join(5)
        offset = np.median([time.perf_counter() - peer.clock().micros() * 1e-6 for _ in range(5)])
        st = peer.captureAppSessionState()
        ons = [d for d, _n in note_ons(port)]
        assert len(ons) >= 8, ons  # 4 s at 100 BPM from the next bar line (2.4 s a bar): 10 to 26 sixteenths
        beats = np.array([st.beatAtTime(int(round((d - offset) * 1e6)), 4.0) for d in ons])
        err_s = np.abs(beats * 4 - np.round(beats * 4)) * (60 / 100 / 4)
        assert err_s.max() < 0.001, err_s  # on the peer's sixteenths
        assert abs(beats[0] - 4 * round(beats[0] / 4)) * 0.6 < 0.001, beats[:4]  # from a bar line
        assert ons[0] >= t_start - 0.001 and max(ons) < t_stop + 0.001
        assert p.bpm == pytest.approx(100.0, abs=1e-3)
        assert_all_released(port)
    finally:
        sync.close()
        peer.enabled = False


def test_missing_binding_is_an_import_error_that_names_its_extra(monkeypatch):
    from midigan.cli import _extra_hint
    from midigan.sync import open_sync

    monkeypatch.setitem(sys.modules, "link", None)  # as if LinkPython-extern were not installed
    with pytest.raises(ImportError) as e:
        open_sync("link", bpm=120.0)
    assert e.value.name == "link" and _extra_hint(e.value) == "--sync link needs: pip install 'midigan[link]'"
    monkeypatch.setitem(sys.modules, "jack", None)
    with pytest.raises(ImportError) as e:
        open_sync("jack", bpm=120.0)
    assert _extra_hint(e.value) == "--sync jack needs: pip install 'midigan[jack]'"
    assert open_sync("Bitwig clock", bpm=120.0) is None  # a MIDI port name: the clock input's business


def test_the_sync_module_imports_neither_binding_nor_torch():
    code = ("import sys, midigan.sync, midigan.cli\n"
            "bad = [m for m in ('torch', 'jack', 'link') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
