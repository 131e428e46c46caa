"""`midigan play --api jack` for real: a subprocess plays into a private JACK server
(see the jack_server fixture) and a separate JACK client in this process records it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from midigan.presets import SCALES, load_preset
from midigan.runtime import FORMAT_VERSION
from tests.polled import PolledJackInput

ROOT = Path(__file__).resolve().parent.parent
jack = pytest.mark.jack


def _tiny_onnx(path: Path, seq_len: int = 32, noise_dim: int = 4) -> Path:
    """A stand-in 'sequence' generator (pitch = tanh(0.4 * sum(noise))): enough to drive
    the player when no trained model has been exported yet."""
    onnx = pytest.importorskip("onnx", reason="no export/*.onnx and no onnx package to build a stand-in")
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(
        [helper.make_node("ReduceSum", ["noise", "axes"], ["s"], keepdims=0),
         helper.make_node("Mul", ["s", "k"], ["m"]),
         helper.make_node("Tanh", ["m"], ["pitch"])],
        "stand-in",
        [helper.make_tensor_value_info("noise", TensorProto.FLOAT, ["batch", "steps", noise_dim])],
        [helper.make_tensor_value_info("pitch", TensorProto.FLOAT, ["batch", "steps"])],
        [numpy_helper.from_array(np.array([2], np.int64), "axes"),
         numpy_helper.from_array(np.array(0.4, np.float32), "k")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    helper.set_model_props(m, dict(format="midigan", format_version=str(FORMAT_VERSION), seq_len=str(seq_len),
                                   noise_dim=str(noise_dim), pitch_low="21", pitch_high="108",
                                   encoding="pitch-linear", output="sequence"))
    onnx.save(m, str(path))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The shipped model if exported, else any export/*.onnx, else a stand-in."""
    export = ROOT / "export"
    found = sorted(p for p in export.glob("*.onnx") if not p.stem.endswith("-critic")) if export.is_dir() else []
    if (export / "default.onnx") in found:
        return export / "default.onnx"
    if found:
        return found[0]
    return _tiny_onnx(tmp_path_factory.mktemp("model") / "stand-in.onnx")


@pytest.fixture(scope="module")
def grid_preset(tmp_path_factory):
    """Sixteenths on a fixed grid at 100 BPM, notes 0.9 of a step: what these tests time
    against (the default model's own rhythm would be another test)."""
    p = tmp_path_factory.mktemp("grid") / "grid.toml"
    p.write_text('timing = "preset"\nbpm = 100.0\nstep = "1/16"\ngate = 0.9\nchords = false\n')
    return str(p)


class Recorder(PolledJackInput):
    """A python-rtmidi JACK input keeping (seconds, message) on JACK's clock."""

    def __init__(self, client="midigan-rec"):
        self.t = 0.0
        super().__init__(client)

    def receive(self, msg, delta):
        self.t += delta  # rtmidi's deltas come from jack_get_time() in the process cycle
        self.events.append((self.t, msg, time.monotonic()))

    def open_virtual(self, name="in"):
        self.midiin.open_virtual_port(name)

    def connect_to(self, source, timeout=5.0):
        """Connect to output `source` once it exists."""
        deadline = time.monotonic() + timeout
        while source not in self.midiin.get_ports():
            if time.monotonic() > deadline:
                raise AssertionError(f"{source} never appeared (ports: {self.midiin.get_ports()})")
            time.sleep(0.01)
        self.midiin.open_port(self.midiin.get_ports().index(source), "in")

    def reconnect(self, source):
        self.midiin.close_port()
        self.connect_to(source)


def wait_steady(rec, step, timeout=3.0):
    """True once three successive onsets arrive one step (+-25 ms) apart (a chord's notes are one onset)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        on = [w for _t, m, w in rec.events if m[0] == 0x90 and m[2] > 0]
        on = [w for k, w in enumerate(on) if k == 0 or w - on[k - 1] > 0.003]
        if len(on) >= 3 and all(abs(b - a - step) < 0.025 for a, b in zip(on[-3:], on[-2:])):
            return True
        time.sleep(0.01)
    return False


def play_cmd(model, *args):
    return [sys.executable, "-m", "midigan", "play", "--api", "jack", "--model", str(model), "--quiet", *args]


def counts(events, channel=0):
    """pitch -> note-ons minus note-offs, ignoring note-offs that precede a pitch's first note-on."""
    held, seen = {}, set()
    for _t, m, _w in events:
        if m[0] == 0x90 | channel and m[2] > 0:
            seen.add(m[1])
            held[m[1]] = held.get(m[1], 0) + 1
        elif (m[0] == 0x80 | channel or (m[0] == 0x90 | channel and m[2] == 0)) and m[1] in seen:
            held[m[1]] = held.get(m[1], 0) - 1
    return held


def record_run(model, bpm, bars):
    """Play `bars` bars into a recorder input that exists before the player starts."""
    for _ in range(2):  # an rtmidi JACK input occasionally receives nothing: retry once
        rec = Recorder()
        try:
            rec.open_virtual("in")
            # python-rtmidi's port: this test times arrivals on the system clock, and this
            # server (synchronous, not real-time) lets its frames fall behind that clock under
            # load, which frame-exact scheduling (test_jackport.py, bench/jack.py) then follows.
            proc = subprocess.run(play_cmd(model, "--port", "midigan-rec:in", "--bars", str(bars),
                                           "--bpm", str(bpm), "--preset", "arpeggio", "--seed", "7"),
                                  capture_output=True, text=True, timeout=30,
                                  env=dict(os.environ, MIDIGAN_JACK_BACKEND="rtmidi"))
            time.sleep(0.1)
        finally:
            rec.close()
        assert proc.returncode == 0, proc.stderr
        if rec.events:
            return rec.events
    raise AssertionError("the recorder received nothing, twice")


@jack
def test_play_bars_into_jack(jack_server, model):
    """A connected-from-the-start run: every note arrives, paired, in range and scale, on the grid."""
    pr = load_preset("arpeggio")  # A minor, 57..81, sixteenths, no swing, one note per step
    bpm, bars = 240, 2
    period = jack_server["period"] / jack_server["rate"]
    worst = []
    for attempt in range(3):
        ev = record_run(model, bpm, bars)
        on = [(t, m) for t, m, _ in ev if m[0] == 0x90 and m[2] > 0]
        off = [(t, m) for t, m, _ in ev if m[0] == 0x80 or (m[0] == 0x90 and m[2] == 0)]
        assert len(on) == len(off) == bars * 16, (len(on), len(off))
        assert not any(counts(ev).values())
        assert ev[-1][1] == (0xB0, 123, 0)
        pitches = np.array([m[1] for _t, m in on])
        assert pitches.min() >= pr.low and pitches.max() <= pr.high
        allowed = {(pr.key_pc + i) % 12 for i in SCALES[pr.scale]}
        assert set(pitches % 12) <= allowed
        # Onsets on the grid: note i at t0 + i * step, within one JACK period + 1 ms.
        step = 60 / bpm / 4
        t = np.array([tt for tt, _m in on])
        resid = t - step * np.arange(len(t))
        err = np.abs(resid - np.median(resid))
        if err.max() <= period + 0.001:
            return
        # Neither this server (--no-realtime) nor the recorder are real-time
        # threads: on a busy machine a run can be late for reasons outside the
        # player. Another run, then fail.
        worst.append(f"{err.max() * 1e3:.2f} ms")
    raise AssertionError(f"onsets off the grid by more than {(period + 0.001) * 1e3:.2f} ms in 3 runs "
                         f"(worst per run: {', '.join(worst)}; load {os.getloadavg()[0]:.1f})")


@jack
def test_sigint_mid_note_leaves_nothing_sounding(jack_server, model, grid_preset):
    proc = subprocess.Popen(play_cmd(model, "--preset", grid_preset, "--bpm", "100", "--seed", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rec = Recorder()
    try:
        rec.connect_to("midigan:midigan")
        # `midigan ports` in its own process: opening a JACK client here, while
        # this process's recorder callback waits for the GIL, would stall a
        # synchronous server.
        listing = subprocess.run([sys.executable, "-m", "midigan", "ports"], capture_output=True,
                                 text=True, timeout=30).stdout
        assert "midigan:midigan" in listing.split("jack:")[1], listing
        step = 60 / 100 / 4
        for _ in range(3):
            # Handshake: a fresh connection sometimes drops events, so trust it
            # only once three note-ons in a row arrive one step apart.
            if wait_steady(rec, step):
                break
            rec.reconnect("midigan:midigan")
        else:
            raise AssertionError("no steady stream of notes after 3 connections")
        # From a fresh note-on, interrupt 40 ms into it (notes last 135 ms).
        n, deadline = len(rec.events), time.monotonic() + 2
        while not any(m[0] == 0x90 for _t, m, _w in rec.events[n:]):
            assert time.monotonic() < deadline, "notes stopped arriving"
            time.sleep(0.002)
        n = len(rec.events) - 1
        time.sleep(0.04)
        sigint_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
        rec.close()
    assert proc.returncode == 130, err  # 128 + SIGINT, the shell's convention
    ev = rec.events[n:]
    after = [m for _t, m, w in ev if w > sigint_at]
    assert any(m[0] == 0x80 for m in after), "no note was sounding when SIGINT arrived"
    # (JACK time, seconds after SIGINT as received, message): a note-on after it was sent after it
    assert not any(m[0] == 0x90 and m[2] > 0 for m in after), [(round(t, 4), round(w - sigint_at, 4), m)
                                                               for t, m, w in ev]
    assert not any(counts(ev).values()), (counts(ev), [(round(t, 4), m) for t, m, _w in ev][-8:])
    assert ev[-1][1] == (0xB0, 123, 0)


def test_no_jack_server_is_one_clear_error(tmp_path, model):
    import rtmidi

    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.skip("python-rtmidi was built without JACK")
    env = dict(os.environ, JACK_DEFAULT_SERVER="midigan-nobody-home", JACK_NO_START_SERVER="1")
    p = subprocess.run(play_cmd(model, "--bars", "1"), capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 1
    assert p.stderr.strip() == "Error: no JACK server is running (start jackd, or pick another --api)"


@jack
def test_follows_midi_clock_over_jack(jack_server, model, grid_preset):
    """--sync virtual: a clock sender's Start and 0xF8 ticks drive the notes; --bars ends it."""
    import rtmidi

    # python-rtmidi's port, as in record_run: arrivals timed on the system clock.
    proc = subprocess.Popen(play_cmd(model, "--preset", grid_preset, "--sync", "virtual", "--bars", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, MIDIGAN_JACK_BACKEND="rtmidi"))
    rec = Recorder()
    clk = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "midigan-clock-test")
    try:
        rec.connect_to("midigan:midigan")
        deadline = time.monotonic() + 5
        while not any("midigan clock" in n for n in clk.get_ports()):
            assert time.monotonic() < deadline, f"no clock input appeared: {clk.get_ports()}"
            time.sleep(0.02)
        clk.open_port([i for i, n in enumerate(clk.get_ports()) if "midigan clock" in n][0])
        time.sleep(0.05)
        dt = 60 / 150 / 24  # 150 BPM from the clock; the preset says 100
        t0 = time.perf_counter() + 0.05
        for i in range(24 * 4 + 30):
            if i == 6:
                clk.send_message([0xFA])  # Start, after a few ticks of tempo
            due = t0 + i * dt
            time.sleep(max(0.0, due - time.perf_counter() - 0.001))
            while time.perf_counter() < due:  # spin the last millisecond
                pass
            clk.send_message([0xF8])
            if proc.poll() is not None:
                break
        _out, err = proc.communicate(timeout=10)
        time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
        clk.close_port()
        time.sleep(0.01)  # rtmidi frees the port's ring buffer before its client: let a cycle finish
        clk.delete()
        rec.close()
    assert proc.returncode == 0, err
    on = np.array([t for t, m, _w in rec.events if m[0] == 0x90 and m[2] > 0])
    on = on[np.r_[True, np.diff(on) > 0.003]]  # a chord's notes arrive together: one onset
    assert len(on) == 16  # one bar of sixteenths, counted on the clock's song position
    assert not any(counts(rec.events).values())
    assert rec.events[-1][1] == (0xB0, 123, 0)
    # Sixteenth k sounds with tick 6k, which was sent at 6k * dt after Start's first
    # tick; arrival times are JACK's. A steady lag (two JACK hops) is fine: the
    # spread is what says "on the clock's grid".
    lag = on - 6 * dt * np.arange(16)
    assert lag.max() - lag.min() < 0.010, (np.round(lag * 1e3, 2), err[-2000:])


# A DAW in its own process: its clock runs on, connected to whatever input is offered.
DAW_CLOCK = """
import time, rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "midigan-close-daw")
out.open_virtual_port("clock out")
print("ready", flush=True)
while True:  # until the test kills it, as a DAW's clock runs on
    out.send_message([0xF8])
    time.sleep(0.0005)
"""

CLOSE_MID_CLOCK = """
import subprocess, sys, time
from midigan.ports import open_input

for _ in range(8):
    clock = open_input("virtual", api="jack", client_name="midigan-close")
    subprocess.run(["jack_connect", sys.argv[1], "midigan-close:midigan clock"], check=True)
    t = time.perf_counter() + 0.3
    while time.perf_counter() < t:  # the GIL held as a player's last spin holds it
        pass
    got = len(clock.take())
    clock.close()  # with ticks still arriving
    assert got > 0, "no tick arrived"
print("closed 8 times")
"""


@jack
def test_a_clock_input_closes_while_a_clock_streams_in(jack_server):
    """A DAW's clock runs on after midigan stops: closing the input must neither hang nor crash
    (an rtmidi callback on JACK's process thread did both)."""
    import rtmidi

    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.skip("python-rtmidi was built without JACK")
    daw = subprocess.Popen([sys.executable, "-c", DAW_CLOCK], stdout=subprocess.PIPE, text=True)
    try:
        assert daw.stdout.readline().strip() == "ready"
        # faulthandler: a crash names the thread and line it happened on
        p = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CLOSE_MID_CLOCK,
                            "midigan-close-daw:clock out"], capture_output=True, text=True, timeout=60)
        assert daw.poll() is None, "the DAW's clock stopped"
    finally:
        daw.kill()
        daw.wait()
    assert p.returncode == 0 and "closed 8 times" in p.stdout, p.stderr[-2000:]
