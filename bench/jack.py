"""JACK onset timing: `midigan play --api jack` into a separate `jack_midi_dump -a` client.

    python bench/jack.py [--periods 64 256 1024] [--bars 4] [--bpm 120] [--model PATH] [--no-realtime]

For each period it starts a private `jackd -d dummy -r 48000 -p PERIOD` (real-time
where the machine allows it, else --no-realtime; the line says which), and plays a
steady sixteenth line (timing = "preset", one note per step, gate 1/2) with the
JACK-Client backend (midigan/jackport.py) and with python-rtmidi's JACK port
(MIDIGAN_JACK_BACKEND=rtmidi), each recorded by `jack_midi_dump -a` (frame stamps
counted by the recorder's own process cycles). Prints the note-on error against the
grid, in ms: p50 / p99 / max of |frame - (f0 + k * step)|, f0 the median offset, the
nominal 48 kHz rate (no fitted slope), and the load average at that moment. The median
offset is not reported: the recorder's absolute frames sat a constant 1,000-8,700 frames off the
frame count the other clients read (dummy server, nineteenth session), so the latency itself
(one period, by design) is not measured here.
Figures only; no asserts. Needs jackd and jack_midi_dump (Debian: jackd2 jack-tools).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RATE = 48000


def start_jack(name, period, realtime=True):
    for rt in ((["-R"], ["--no-realtime"]) if realtime else (["--no-realtime"],)):
        proc = subprocess.Popen(["jackd", *rt, "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(period)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if proc.poll() is not None:
                break
            if subprocess.run(["jack_lsp", "-s", name], capture_output=True).returncode == 0:
                proc.mode = "real-time" if rt == ["-R"] else "not real-time"
                return proc
            time.sleep(0.1)
        stop(proc)
    return None


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def record(env, cmd):
    """Run `cmd` while jack_midi_dump -a records; (note-on frames, rc, stderr)."""
    dump = subprocess.Popen(["jack_midi_dump", "-a", "bench-dump"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        deadline = time.monotonic() + 5
        while "bench-dump:input" not in subprocess.run(["jack_lsp"], capture_output=True, text=True,
                                                       env=env).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("jack_midi_dump did not come up")
            time.sleep(0.05)
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=str(ROOT))
        time.sleep(0.3)
    finally:
        dump.send_signal(signal.SIGINT)  # it closes its JACK client; SIGTERM stalls a -S server 5 s
        out = dump.communicate(timeout=5)[0]
    ons = [int(line.split(":")[0]) for line in out.splitlines()
           if ":" in line and line.split(":")[1].split()[:1] and line.split(":")[1].split()[0].startswith("9")
           and line.split(":")[1].split()[2] != "00"]
    return np.array(ons, dtype=float), p.returncode, p.stderr


def errors(frames, step_frames):
    """|frame - grid| in ms, the grid's offset being the median one (k: the nearest step)."""
    if len(frames) < 3:
        return None
    k = np.round((frames - frames[0]) / step_frames)
    resid = frames - k * step_frames
    return np.abs(resid - np.median(resid)) / RATE * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--bars", type=int, default=4)
    ap.add_argument("--bpm", type=float, default=120.0)
    ap.add_argument("--model", default=str(ROOT / "export" / "default.onnx"))
    ap.add_argument("--no-realtime", action="store_true")
    a = ap.parse_args()
    if not shutil.which("jackd") or not shutil.which("jack_midi_dump"):
        sys.exit("jackd and jack_midi_dump are needed (Debian: apt-get install jackd2 jack-tools)")
    tmp = tempfile.TemporaryDirectory()
    preset = Path(tmp.name) / "grid.toml"
    preset.write_text(f'timing = "preset"\nbpm = {a.bpm}\nstep = "1/16"\ngate = 0.5\nchords = false\n'
                      'humanize = 0\n')
    step_frames = 60 / a.bpm / 4 * RATE
    print(f"{a.bars} bars of sixteenths at {a.bpm:g} BPM, 48 kHz, recorded by jack_midi_dump -a; "
          f"cpus {os.cpu_count()}")
    print(f"{'period':>6} {'backend':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'notes':>6} {'load':>5}")
    for period in a.periods:
        name = f"mgb{os.getpid()}p{period}"  # short: longer server names failed to start here
        jackd = start_jack(name, period, not a.no_realtime)
        if jackd is None:
            print(f"{period:>6} jackd did not start")
            continue
        try:
            env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
            for backend in ("JACK-Client", "rtmidi"):
                e = dict(env, MIDIGAN_JACK_BACKEND="rtmidi" if backend == "rtmidi" else "jack-client")
                cmd = [sys.executable, "-m", "midigan", "play", "--api", "jack", "--port", "bench-dump:input",
                       "--preset", str(preset), "--bars", str(a.bars), "--seed", "1", "--model", a.model]
                frames, rc, err = record(e, cmd)
                load = os.getloadavg()[0]
                ms = errors(frames, step_frames)
                if rc != 0 or ms is None:
                    print(f"{period:>6} {backend:<12} failed (rc {rc}, {len(frames)} notes): {err.strip()[-200:]}")
                    continue
                jack = err.split("(JACK: ")[1].split(")")[0] if "(JACK: " in err else ""
                print(f"{period:>6} {backend:<12} {np.percentile(ms, 50):8.3f} {np.percentile(ms, 99):8.3f} "
                      f"{ms.max():8.3f} {len(frames):>6} {load:5.2f}  {jack}")
        finally:
            stop(jackd)
        print(f"{'':>6} (server {jackd.mode})")


if __name__ == "__main__":
    main()
