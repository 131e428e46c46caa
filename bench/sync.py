"""Follow errors of `--sync jack` (JACK transport) and `--sync link` (Ableton Link).

    python bench/sync.py [--periods 64 256 1024] [--seconds 4] [--takes 3] [--no-jack] [--no-link]

JACK transport: for each period, a private `jackd -d dummy -r 48000 -p PERIOD`; `midigan play
--api jack --sync jack --seed 1` (no timebase master: frames at the preset's 100 BPM) plays into a
separate `jack_midi_dump -a`, while another client, `--takes` times, locates the transport to 0,
starts it, lets it roll `--seconds` / `--takes` and stops it (each Start replays the take). Prints the
note-on error against the transport's sixteenth grid (nominal 7200 frames a step; each take's
offset its median one), p50 / p99 / max in ms over all takes, the worst first note of a take,
and the load average. The grid's own offset (the one period of latency) is not measured: on a
dummy server jack_midi_dump's absolute frames sat a constant 1,000-8,700 frames off the frame
count the other clients read.

Link: two peers in this process; the player (on the real clock, with a port that records each
message's due time and when it was handed over) follows one, the other sets 100 BPM, starts,
changes to 132 BPM after two bars and stops. Prints |due - the peer's sixteenth| (µs), how late
each note was handed over against its due time minus the 10 ms lead, start-to-first-note (the
first note's hand-over against the peer's first downbeat), and the load average.
Figures only; no asserts.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# This folder holds jack.py (the onset bench): it must not hide the JACK-Client package `jack`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
RATE = 48000


def jack_transport(periods, seconds, takes):
    import jack

    from jack_bench import errors, start_jack, stop  # bench/jack.py, imported under another name

    tmp = tempfile.TemporaryDirectory()
    preset = Path(tmp.name) / "grid.toml"
    preset.write_text('timing = "preset"\nbpm = 100.0\nstep = "1/16"\ngate = 0.5\nchords = false\nhumanize = 0\n')
    print(f"JACK transport: {takes} takes of {seconds / takes:.3g} s rolling, sixteenths at 100 BPM (no timebase master), 48 kHz")
    print(f"{'period':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'first':>8} {'notes':>6} {'load':>5}")
    for period in periods:
        name = f"mgs{os.getpid()}p{period}"
        jackd = start_jack(name, period, True)
        if jackd is None:
            print(f"{period:>6} jackd did not start")
            continue
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        dump = proc = daw = None
        try:
            daw = jack.Client("bench-daw", no_start_server=True)
            daw.transport_stop()
            daw.transport_frame = 0
            dump = subprocess.Popen(["jack_midi_dump", "-a", "bench-dump"], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True, env=env)
            while "bench-dump:input" not in subprocess.run(["jack_lsp"], capture_output=True, text=True,
                                                           env=env).stdout:
                time.sleep(0.05)
            proc = subprocess.Popen([sys.executable, "-m", "midigan", "play", "--api", "jack", "--port",
                                     "bench-dump:input", "--sync", "jack", "--preset", str(preset), "--seed", "1",
                                     "--quiet"], env=env, cwd=str(ROOT), stderr=subprocess.PIPE, text=True)
            while "midigan:" not in subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True,
                                                   env=env).stdout:
                time.sleep(0.05)
            time.sleep(0.5)
            for _ in range(takes):
                daw.transport_frame = 0
                time.sleep(0.1)
                daw.transport_start()
                time.sleep(seconds / takes)
                daw.transport_stop()
                time.sleep(0.4)
            load = os.getloadavg()[0]
            proc.send_signal(2)
            proc.communicate(timeout=20)
            time.sleep(0.2)
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
            out = ""
            if dump is not None:
                dump.send_signal(signal.SIGINT)  # it closes its JACK client; SIGTERM stalls a -S server 5 s
                out = dump.communicate(timeout=5)[0]
            if daw is not None:
                daw.close()
            stop(jackd)
        frames = []
        for line in out.splitlines():
            head, _, rest = line.partition(":")
            b = rest.split()
            if head.strip().isdigit() and len(b) >= 3 and b[0].startswith("9") and b[2] != "00":
                frames.append(int(head))
        # The takes: note-ons 0.15 s apart within one, a stop of 0.5 s between.
        takes_frames = np.split(np.array(frames, float), np.flatnonzero(np.diff(frames) > 0.3 * RATE) + 1)
        errs = [errors(f, 60 / 100 / 4 * RATE) for f in takes_frames]
        if not frames or any(e is None for e in errs):
            print(f"{period:>6} too few notes ({len(frames)})")
            continue
        ms = np.concatenate(errs)
        first = max(e[0] for e in errs)
        print(f"{period:>6} {np.percentile(ms, 50):8.3f} {np.percentile(ms, 99):8.3f} {ms.max():8.3f} "
              f"{first:8.3f} {len(frames):>6} {load:5.2f}  ({len(errs)} takes; server {jackd.mode})")


def link_follow(seconds):
    import link

    from midigan.player import Player
    from midigan.sync import LinkSync
    from tests.test_jackport import SchedPort
    from tests.test_player import FakeGen, preset

    peer = link.Link(100.0)
    peer.startStopSyncEnabled = True
    peer.enabled = True
    sync = LinkSync(120.0)
    try:
        deadline = time.monotonic() + 5
        while peer.numPeers() < 1 or sync.peers < 1:
            if time.monotonic() > deadline:
                print("Link: the peers did not discover each other here")
                return
            time.sleep(0.05)
        st = peer.captureAppSessionState()
        st.setTempo(100.0, peer.clock().micros())
        peer.commitAppSessionState(st)
        time.sleep(0.5)
        port = SchedPort(time.perf_counter)
        p = Player(port, FakeGen(), preset(bpm=120.0, step="1/16", gate=0.5, rhythm=[1], chords=False),
                   sync=sync, spin=0)
        th = threading.Thread(target=p.run)
        th.start()
        try:
            time.sleep(0.3)
            st = peer.captureAppSessionState()
            st.setIsPlayingAndRequestBeatAtTime(True, peer.clock().micros(), 0.0, 4.0)
            peer.commitAppSessionState(st)
            st = peer.captureAppSessionState()
            down_us = st.timeAtBeat(0.0, 4.0)
            time.sleep(max(0.0, (down_us - peer.clock().micros()) * 1e-6) + 2 * 2.4)  # two bars
            before = peer.captureAppSessionState()  # the timeline up to the change
            change_us = peer.clock().micros()
            st = peer.captureAppSessionState()
            st.setTempo(132.0, change_us)
            peer.commitAppSessionState(st)
            time.sleep(seconds)
            st = peer.captureAppSessionState()
            st.setIsPlaying(False, peer.clock().micros())
            peer.commitAppSessionState(st)
            time.sleep(0.3)
            load = os.getloadavg()[0]
        finally:
            p.stop("bench")
            th.join(5)
        offset = np.median([time.perf_counter() - peer.clock().micros() * 1e-6 for _ in range(9)])
        after = peer.captureAppSessionState()

        def state(d):  # the peer's timeline at time d (its tempo changed once)
            return before if (d - offset) * 1e6 < change_us else after

        ons = [(h, d) for h, d, m in port.handed if m[0] == 0x90]
        due = np.array([d for _h, d in ons])
        handed = np.array([h for h, _d in ons])
        beats = np.array([state(d).beatAtTime(int(round((d - offset) * 1e6)), 4.0) for d in due])
        k = np.round(beats * 4)
        # Error in time: the peer's own time of each sixteenth against the note's due time.
        grid = np.array([state(d).timeAtBeat(kk / 4, 4.0) * 1e-6 + offset for d, kk in zip(due, k)])
        err_us = np.abs(due - grid) * 1e6
        late_ms = np.maximum(0.0, handed - (due - port.lead)) * 1e3
        first = (handed[0] - (down_us * 1e-6 + offset)) * 1e3
        print(f"Link: 100 BPM, start, 132 BPM after two bars, {seconds:g} s more, stop; {len(due)} notes, "
              f"first on the peer's beat {beats[0]:.4f}")
        print(f"  |due - peer's sixteenth| µs: p50 {np.percentile(err_us, 50):.1f}  p99 "
              f"{np.percentile(err_us, 99):.1f}  max {err_us.max():.1f}   load {load:.2f}")
        print(f"  handed over late (ms, against due - {port.lead * 1e3:g} ms lead): p50 "
              f"{np.percentile(late_ms, 50):.3f}  p99 {np.percentile(late_ms, 99):.3f}  max {late_ms.max():.3f}")
        print(f"  start-to-first-note: first note handed over {first:+.2f} ms from the peer's first downbeat "
              f"(due {(due[0] - (down_us * 1e-6 + offset)) * 1e3:+.3f} ms); tempo followed {p.bpm:.3f} BPM")
    finally:
        sync.close()
        peer.enabled = False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--takes", type=int, default=3)
    ap.add_argument("--no-jack", action="store_true")
    ap.add_argument("--no-link", action="store_true")
    a = ap.parse_args()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    if not a.no_jack:
        if shutil.which("jackd") and shutil.which("jack_midi_dump"):
            jack_transport(a.periods, a.seconds, a.takes)
        else:
            print("JACK transport: jackd and jack_midi_dump are needed (apt-get install jackd2 jack-tools)")
    if not a.no_link:
        link_follow(a.seconds)


if __name__ == "__main__":
    import importlib.util

    spec = importlib.util.spec_from_file_location("jack_bench", ROOT / "bench" / "jack.py")
    sys.modules["jack_bench"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules["jack_bench"])
    main()
