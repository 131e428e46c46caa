"""Live timing figures: how close sends and JACK arrivals come to the schedule.

    python bench/live.py [--model PATH] [--seconds S]

Prints figures only (no asserts):
1. send-time error vs schedule (p50/p99/max, ms), in-process, real clock, memory port:
   120 BPM sixteenths, and 1,000 events/s;
2. the same as received by a JACK client (private jackd, dummy driver, period 64);
3. time from process start to the first note-on received (`python -m midigan play`);
4. MIDI clock follow: a JACK client sends 0xF8 at exact frames (steady 100 and 140 BPM, and
   100 -> 140 BPM) into midigan's JACK clock input (frame-stamped, as `play --api jack --sync`
   reads it); the followed tempo (timeline.Timeline) after one bar, and the ticks it takes to
   come within 0.1 BPM of a new tempo;
5. a Stop sent in the place of a note's tick: in how many runs a note still went out with it.
With --all, the whole live picture in one run, each part from its own script (so each can also
run alone): bench/jack.py (onset error into jack_midi_dump at periods 64, 256 and 1024,
JACK-Client and rtmidi side by side), bench/sync.py (JACK transport and Link follow errors,
start to first note) and bench/listen.py (answer latency, listening cost, chord tones).
Without --model it uses export/default.onnx, else any export/*.onnx the runtime
reads, else a numpy stand-in generator (the in-process figures) and a tiny ONNX
stand-in built with the onnx package (the subprocess figures). The in-process runs
time the notes by the preset's grid (timing = "preset"), even for an event model,
so the events/s figures hold.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# bench/jack.py would shadow JACK-Client's `jack` module: this folder off the path, the repo on it.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from midigan.player import Player  # noqa: E402
from midigan.ports import MemoryPort  # noqa: E402
from midigan.presets import load_preset  # noqa: E402
from tests.polled import PolledJackInput  # noqa: E402  (the tests' polled JACK input)


REALTIME = "--no-realtime" not in sys.argv


class NumpyGen:
    """A generator stand-in: random pitches, cheap, with the runtime's stream() signature
    for a pitch (sequence) model: [count, n] per phrase."""

    timed = False

    def stream(self, seed=0, count=1, noise_scale=1.0, temperature=1.0, morph=0.25):
        rng = np.random.default_rng(seed)
        while True:
            pitches = rng.integers(40, 90, 64)
            yield pitches[None]


def find_model(arg):
    """--model, else export/default.onnx, else any export/*.onnx: the first one this runtime
    reads as a generator (an older format or a critic graph is passed over)."""
    if arg:
        return Path(arg)
    from midigan.runtime import ModelError, read_metadata

    export = ROOT / "export"
    found = sorted(export.glob("*.onnx")) if export.is_dir() else []
    if export / "default.onnx" in found:
        found.remove(export / "default.onnx")
        found.insert(0, export / "default.onnx")
    for path in found:
        try:
            if read_metadata(path)["output"] != "critic":
                return path
        except ModelError:
            pass
    return None


def stand_in_onnx(path: Path) -> Path | None:
    """The tests' tiny 'sequence' stand-in, stamped with this runtime's format version."""
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        import onnx
        from test_live_jack import _tiny_onnx

        from midigan.runtime import FORMAT_VERSION
        m = onnx.load(str(_tiny_onnx(path)))
        props = {p.key: p.value for p in m.metadata_props}
        onnx.helper.set_model_props(m, {**props, "format_version": str(FORMAT_VERSION)})
        onnx.save(m, str(path))
        return path
    except BaseException:  # pytest.skip raises a BaseException when onnx is missing
        return None


def scenario(name, events_per_s=None):
    """(preset, bpm): '120' = 120 BPM sixteenths; 'fast' = 1,000 events/s (500 notes/s)."""
    pr = load_preset("raw")
    # The preset's grid times every note (an event model's keys, one per step: no chords).
    pr = dataclasses.replace(pr, step="1/16", gate=0.5, velocity=100, channel=1, timing="preset", chords=False)
    if name == "120":
        return pr, 120.0
    # 1/16 steps: notes/s = bpm / 60 * 4; two events (on, off) per note.
    return pr, events_per_s / 2 / 4 * 60


def stats(err_s) -> str:
    e = np.abs(np.asarray(err_s)) * 1e3
    return (f"p50 {np.percentile(e, 50):.3f} ms  p99 {np.percentile(e, 99):.3f} ms  "
            f"max {e.max():.3f} ms  (n={len(e)})")


class TimedPort(MemoryPort):
    """Keeps (sent at, due at) per message."""

    def __init__(self, player_ref):
        super().__init__()
        self.ref, self.pairs = player_ref, []

    def send(self, msg):
        t = time.perf_counter()
        p = self.ref[0]
        if msg[0] & 0xF0 in (0x80, 0x90) and not p._stop.is_set() and p.last_due:
            self.pairs.append((t, p.last_due))


def run_player(port_factory, gen, name, seconds, events_per_s=1000):
    pr, bpm = scenario(name, events_per_s)
    ref = [None]
    port = port_factory(ref)
    p = Player(port, gen, pr, bars=None, realtime=REALTIME)
    p.bpm = bpm  # past the CLI's 400 BPM cap on purpose, for the events/s figure
    ref[0] = p
    threading.Timer(seconds, p.stop).start()
    p.run()
    return port


def in_process(gen, seconds):
    for name in ("120", "fast"):
        port = run_player(TimedPort, gen, name, seconds)
        err = [s - d for s, d in port.pairs]
        label = "120 BPM sixteenths" if name == "120" else "1,000 events/s    "
        print(f"  send error, {label}: {stats(err)}")


# ------------------------------------------------------------------ JACK

def start_jack():
    if not shutil.which("jackd"):
        return None
    name = f"midigan-bench-{os.getpid()}"
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    # A real-time server where allowed (as on a musician's machine), else not.
    for rt in ([] if REALTIME else ["--no-realtime"], ["--no-realtime"]):
        proc = subprocess.Popen(["jackd", *rt, "-n", name, "-d", "dummy", "-r", "48000", "-p", "64"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if proc.poll() is not None:
                break
            if subprocess.run(["jack_lsp", "-s", name], capture_output=True).returncode == 0:
                proc.mode = "real-time" if not rt else "not real-time"
                return proc
            time.sleep(0.1)
        proc.kill()
        proc.wait()
    return None


class Recorder(PolledJackInput):
    """A python-rtmidi JACK input (polled: tests/polled.py): (seconds, message, monotonic when polled).

    rtmidi stamps each event with jack_get_time() deltas taken in the JACK
    process cycle; their running sum is the arrival time on the system clock."""

    def __init__(self, client="bench-rec"):
        self.t = 0.0
        super().__init__(client)
        self.midiin.open_virtual_port("in")
        self.port = f"{client}:in"

    def receive(self, msg, delta):
        self.t += delta
        self.events.append((self.t, msg, time.monotonic()))


def expected_pitches(n):
    """The pitches NumpyGen (seed 0) makes, in order: the raw preset leaves 40..89 as is."""
    out, stream = [], NumpyGen().stream(seed=0)
    while len(out) < n:
        out.extend(int(p) for p in next(stream)[0])
    return out


def aligned(times_pitches, want, lookahead=16):
    """(time, index in the sent stream) for received notes, matched by pitch, so a
    lost event can't shift every later one onto the wrong grid slot."""
    out, j = [], 0
    for t, p in times_pitches:
        k = next((j + d for d in range(lookahead) if j + d < len(want) and want[j + d] == p), None)
        if k is not None:
            out.append((t, k))
            j = k + 1
    return out


def grid_error(events, step, gate):
    """Errors of received note-ons and note-offs against their slots t0 + i*step (+ gate*step)."""
    ons = [(t, m[1]) for t, m, _ in events if m[0] == 0x90 and m[2] > 0]
    offs = [(t, m[1]) for t, m, _ in events if m[0] == 0x80]
    if len(ons) < 3:
        return None, 0
    want = expected_pitches(len(ons) + 64)
    a_on, a_off = aligned(ons, want), aligned(offs, want)
    t_on = np.array([t - k * step for t, k in a_on])
    t0 = np.median(t_on)
    err = list(t_on - t0) + [t - k * step - gate * step - t0 for t, k in a_off]
    lost = (a_on[-1][1] + 1) - len(a_on)
    return err, lost


def child_jack(name, seconds, events_per_s):
    """Runs in a subprocess: play into the bench recorder on JACK."""
    from midigan.ports import open_output

    with open_output("bench-rec:in", virtual=False, api="jack") as port:
        pr, bpm = scenario(name, events_per_s)
        p = Player(port, NumpyGen(), pr, realtime=REALTIME)
        p.bpm = bpm
        threading.Timer(seconds, p.stop).start()
        p.run()


def via_jack(seconds):
    for name in ("120", "fast"):
        rec = Recorder()
        try:
            subprocess.run([sys.executable, __file__, "--child-jack", name, "--seconds", str(seconds)]
                           + ([] if REALTIME else ["--no-realtime"]),
                           check=True, timeout=60)
            time.sleep(0.1)
        finally:
            rec.close()
        pr, bpm = scenario(name, 1000)
        step = 60 / bpm / 4
        err, lost = grid_error(rec.events, step, pr.gate)
        label = "120 BPM sixteenths" if name == "120" else "1,000 events/s    "
        print(f"  JACK arrival error, {label}: " + (stats(err) + f", {lost} note-ons lost"
                                                    if err else "nothing received"))


def first_note(model, runs=3):
    out = []
    for _ in range(runs):
        rec = Recorder()
        try:
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "midigan", "play", "--api", "jack", "--port", "bench-rec:in",
                            "--bars", "1", "--bpm", "240", "--quiet", "--model", str(model)],
                           check=True, timeout=60, cwd=str(ROOT))
            time.sleep(0.05)
        finally:
            rec.close()
        first = next((w for _t, m, w in rec.events if m[0] == 0x90), None)
        if first is not None:
            out.append(first - t0)
    if out:
        print(f"  process start -> first note-on received: {' / '.join(f'{x:.3f} s' for x in out)} "
              f"(best {min(out):.3f} s)")
    else:
        print("  process start -> first note-on: nothing received")


def clock_follow():
    """Section 4: the followed tempo of a frame-exact MIDI clock sent by another JACK client."""
    try:
        import jack
    except ImportError:
        print("  MIDI clock follow: JACK-Client not installed; skipped")
        return
    plan = [("steady 100 BPM", [(100.0, 96)]), ("steady 140 BPM", [(140.0, 96)]),
            ("100 -> 140 BPM", [(100.0, 96), (140.0, 96)])]
    for label, segments in plan:
        sender = jack.Client("bench-clock")
        out = sender.midi_outports.register("out")
        rate = sender.samplerate
        ticks = [0.0]  # frame of each tick from the first
        for bpm, n in segments:
            ticks += [ticks[-1] + rate * 60 / (24 * bpm) * (k + 1) for k in range(n)]
        state = {"frame": 0, "i": 0, "go": False}

        def process(frames, out=out, ticks=ticks, state=state):
            out.clear_buffer()
            if not state["go"]:
                return
            state.setdefault("wall", [time.perf_counter(), 0.0])[1] = time.perf_counter()
            f0 = state["frame"]
            while state["i"] < len(ticks) and ticks[state["i"]] < f0 + frames:
                out.write_midi_event(int(ticks[state["i"]]) - f0, b"\xf8")
                state["i"] += 1
            state["frame"] += frames
        sender.set_process_callback(process)
        sender.activate()
        for backend in ("JACK-Client", "rtmidi"):
            state.update(frame=0, i=0, go=False)
            state.pop("wall", None)
            bpms = follow(backend, ticks, state)
            # The dummy driver's frames do not pass at exactly 48 kHz of this machine's clock:
            # the tempo to follow is the sent one at the frame rate measured over the run.
            w0, w1 = state["wall"]
            scale = (state["frame"] - sender.blocksize) / rate / (w1 - w0)
            first = segments[0][0] * scale
            line = (f"  {backend:<11} {label:<15} after one bar |error| {abs(bpms[96] - first):.3f} BPM"
                    f" (frames at {scale * rate:,.0f}/s)")
            if len(segments) > 1:
                new = segments[1][0] * scale
                settle = next((k for k in range(97, len(bpms)) if all(abs(b - new) <= 0.1 for b in bpms[k:])), None)
                line += (f"; within 0.1 BPM of {new:.2f} {settle - 97 if settle else '> 95'} ticks after the change"
                         f"; at the end {abs(bpms[-1] - new):.3f}")
            print(line + f"  (load {os.getloadavg()[0]:.1f})")
        sender.deactivate()
        sender.close()


def follow(backend, ticks, state) -> list[float]:
    """The followed tempo after each tick the sender sends (state["go"] starts it)."""
    from midigan.jackport import JackOutput
    from midigan.ports import open_input
    from midigan.timeline import Timeline

    if backend == "JACK-Client":
        port = JackOutput("bench-follow", client_name="bench-follow")
        inbox = port.clock_input("bench-clock:out")
    else:
        port = inbox = open_input("bench-clock:out", api="jack", client_name="bench-follow-rt")
        time.sleep(0.1)  # JACK connects at a later cycle
    tl, bpms = Timeline(120.0, now=time.perf_counter), []
    try:
        time.sleep(1.0)  # midigan waits for the DAW's Start a while, as it would
        state["go"] = True
        deadline = time.monotonic() + 30
        while len(bpms) < len(ticks) and time.monotonic() < deadline:
            inbox.wait(0.05)
            for t, _msg in inbox.take():
                tl.tick(t)
                bpms.append(tl.bpm)
    finally:
        port.close()
    return bpms


def stop_on_tick(model, runs=4):
    """Section 5: a JACK client sends MIDI clock (120 BPM, frame-exact), Start, and Stop in the
    place of a tick that carries a note (a preset of sixteenths); `midigan play --sync` follows it
    into the recorder, which also hears the clock sender. Counts the runs in which a note-on
    arrived with or after the Stop (the stop blip: a note on the tick the Stop replaced)."""
    import signal

    import jack

    preset = Path(tempfile.mkdtemp()) / "sixteenths.toml"
    preset.write_text('timing = "preset"\nbpm = 120.0\nstep = "1/16"\ngate = 0.9\nchords = false\n')
    for backend in ("JACK-Client", "rtmidi"):
        blips, played = 0, []
        for _ in range(runs):
            sender = jack.Client("bench-stop")
            out = sender.midi_outports.register("out")
            tick = sender.samplerate * 60 / (24 * 120)
            stop_tick = 24 * 4 + 6 * 3  # a sixteenth one bar and three sixteenths in
            plan = [(0, b"\xfa")] + [(round(i * tick), b"\xf8") for i in range(stop_tick)]
            plan.append((round(stop_tick * tick), b"\xfc"))
            state = {"frame": 0, "i": 0, "go": False}

            def process(frames, out=out, plan=plan, state=state):
                out.clear_buffer()
                if not state["go"]:
                    return
                f0 = state["frame"]
                while state["i"] < len(plan) and plan[state["i"]][0] < f0 + frames:
                    out.write_midi_event(plan[state["i"]][0] - f0, plan[state["i"]][1])
                    state["i"] += 1
                state["frame"] += frames
            sender.set_process_callback(process)
            sender.activate()
            rec = Recorder("bench-stop-rec")
            rec.midiin.ignore_types(sysex=True, timing=False, active_sense=True)
            sender.connect("bench-stop:out", rec.port)
            env = dict(os.environ, MIDIGAN_JACK_BACKEND="rtmidi") if backend == "rtmidi" else None
            proc = subprocess.Popen([sys.executable, "-m", "midigan", "play", "--api", "jack", "--port", rec.port,
                                     "--sync", "bench-stop:out", "--preset", str(preset), "--seed", "1",
                                     "--quiet", "--model", str(model)], cwd=str(ROOT), env=env)
            try:
                time.sleep(2.0)  # loaded and waiting for the clock
                state["go"] = True
                time.sleep(stop_tick * tick / sender.samplerate + 0.5)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
                time.sleep(0.05)
                rec.close()
                sender.deactivate()
                sender.close()
            stop = next((t for t, m, _w in rec.events if m[0] == 0xFC), None)
            ons = [t for t, m, _w in rec.events if m[0] == 0x90 and m[2] > 0]
            played.append(len(ons))
            blips += stop is not None and any(t >= stop - 0.5 * 60 / (24 * 120) for t in ons)
        print(f"  {backend:<11} Stop in place of a note's tick: a note sent at the Stop in {blips} of {runs} runs "
              f"(note-ons in all: {' / '.join(map(str, played))}; load {os.getloadavg()[0]:.1f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--seconds", type=float, default=4.0, help="length of each timing run")
    ap.add_argument("--no-realtime", action="store_true", help="don't ask for SCHED_FIFO")
    ap.add_argument("--all", action="store_true", help="also run bench/jack.py, bench/sync.py and bench/listen.py")
    ap.add_argument("--child-jack", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child_jack:
        child_jack(a.child_jack, a.seconds, 1000)
        return
    model = find_model(a.model)
    tmp = tempfile.TemporaryDirectory()
    if model is None:
        model = stand_in_onnx(Path(tmp.name) / "stand-in.onnx")
    gen = NumpyGen()
    if model is not None:
        from midigan.runtime import Generator
        gen = Generator(model)
    print(f"model: {model or 'numpy stand-in'}; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; "
          f"SCHED_FIFO {'asked for' if REALTIME else 'off'}")
    print("in-process, memory port:")
    in_process(gen, a.seconds)
    jackd = start_jack()
    if jackd is None:
        print("JACK: jackd not installed or did not start; skipped")
        return
    try:
        print(f"JACK (dummy driver, 48 kHz, period 64 = 1.33 ms, server {jackd.mode}):")
        via_jack(a.seconds)
        if model is not None:
            first_note(model)
        print("MIDI clock follow (JACK-Client input, frame-stamped; rtmidi's, stamped on arrival):")
        clock_follow()
        if model is not None:
            print("Stop on a note's tick (midigan play --sync, sixteenths at 120 BPM):")
            stop_on_tick(model)
    finally:
        jackd.terminate()
        jackd.wait(5)
    if a.all:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JACK_")}  # each starts its own server
        for script in ("jack.py", "sync.py", "listen.py"):
            print(f"\n== bench/{script} ==", flush=True)
            subprocess.run([sys.executable, str(ROOT / "bench" / script)], cwd=str(ROOT), env=env)


if __name__ == "__main__":
    main()
