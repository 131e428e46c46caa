"""Soak: `midigan play` for minutes at a high event rate into a JACK client.

    python bench/soak.py [--minutes 10] [--bpm 300] [--step 1/32] [--gate 0.5] [--model PATH]

Starts a private JACK server (dummy driver, 48 kHz, period 64; real-time where
allowed, as bench/live.py does; synchronous, -S, so a late client delays a cycle
instead of dropping its MIDI), a python-rtmidi JACK input in this process, and
`python -m midigan play --api jack --port soak-rec:in` with `--bars` set so it
plays for the given minutes. Prints figures, asserts nothing:

- events: note-ons / note-offs received against the count the bars imply
  (bars * 4 / step beats, one note per step), and against the player's own
  "N notes sent"; dropped and duplicated grid slots; CC 123 at the end;
- schedule drift: arrival of each note-on (jack_get_time(), i.e. CLOCK_MONOTONIC,
  at the recorder's process cycle) against its grid time, the grid anchored on
  the first 200 notes; drift at the end = median over the last 200 notes
  (target <= 2 ms), plus p99/max over the whole run. Not jack_midi_dump's frame
  stamps: the dummy driver's frame clock runs ~100 ppm off the system clock,
  which alone reads as 50 ms of "drift" over 10 minutes;
- memory: VmRSS of the play process from /proc/PID/status every --sample
  seconds: start (first sample once notes flow), peak (and VmHWM), end, growth
  (end - start, and end - the sample 1/10 into the run); targets peak <= 150 MB,
  growth <= 5 MB. VmRSS includes the JACK server's shared-memory segment, which
  every JACK client maps and locks (~105 MB with jackd2's defaults), so the
  process's own memory (RssAnon + RssFile) is printed too; --port-max 128
  shrinks the segment to ~40 MB. Also its CPU share.

32nd notes at 300 BPM (the default) are 40 notes/s, 80 events/s.
The 2-minute run is the memory benchmark of issue 5: --minutes 2.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live import Recorder, find_model  # noqa: E402  (bench/live.py: JACK recorder, model lookup)

ROOT = Path(__file__).resolve().parent.parent


def start_jack(name, period, rate, realtime, synchronous, log, port_max=None):
    """A private jackd (dummy driver); real-time first where allowed, like bench/live.py."""
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    for rt in ([[]] if realtime else []) + [["--no-realtime"]]:
        cmd = ["jackd", *rt, *(["-S"] if synchronous else []),
               *(["--port-max", str(port_max)] if port_max else []), "-n", name,
               "-d", "dummy", "-r", str(rate), "-p", str(period)]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(50):
            if proc.poll() is not None:
                break
            if subprocess.run(["jack_lsp", "-s", name], capture_output=True).returncode == 0:
                proc.mode = ("real-time" if not rt else "not real-time") + (", synchronous" if synchronous else "")
                return proc
            time.sleep(0.1)
        proc.kill()
        proc.wait()
    return None


def proc_status(pid):
    """{'VmRSS': kB, 'VmHWM': kB} from /proc/PID/status, or None once it's gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out = {}
    for key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "VmLck"):
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        if m:
            out[key] = int(m.group(1))
    return out


def cpu_seconds(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mb(kb):
    return kb / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--bpm", type=float, default=300.0)
    ap.add_argument("--step", default="1/32", help="note length on the grid, e.g. 1/32 (one note per step)")
    ap.add_argument("--gate", type=float, default=0.5)
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sample", type=float, default=2.0, help="seconds between RSS samples")
    ap.add_argument("--period", type=int, default=64)
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--no-realtime", action="store_true", help="jackd without real-time scheduling")
    ap.add_argument("--port-max", type=int, default=None,
                    help="jackd --port-max: its shared-memory segment, which every client maps and locks "
                         "(and so counts in VmRSS), scales with it (default 2048 ports: ~102 MB; 128: ~40 MB)")
    ap.add_argument("--async-server", action="store_true",
                    help="jackd without -S: a late client's cycle may drop MIDI (an xrun)")
    a = ap.parse_args()

    for tool in ("jackd", "jack_lsp"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (Debian: apt-get install jackd2 jack-tools)")
    model = find_model(a.model)
    if model is None:
        sys.exit("no model: pass --model PATH (export/*.onnx)")

    step_beats = Fraction(a.step) * 4
    bar_s = 4 * 60 / a.bpm
    bars = max(1, math.ceil(a.minutes * 60 / bar_s))
    expected = int(bars * 4 / step_beats)
    step_s = float(step_beats) * 60 / a.bpm
    print(f"model {model}; {a.bpm:g} BPM, step {a.step} = {step_s * 1e3:.2f} ms, gate {a.gate}: "
          f"{1 / step_s:.1f} notes/s, {2 / step_s:.1f} events/s; {bars} bars = {bars * bar_s / 60:.2f} min, "
          f"{expected} notes expected")
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")

    tmp = Path(tempfile.mkdtemp(prefix="midigan-soak-"))
    preset = tmp / "soak.toml"
    # One note per grid slot, what the drop/duplicate count checks: an event model's keys on
    # the preset's grid (timing = "preset"), not its own onsets and chords.
    preset.write_text(f'description = "soak"\nbpm = {a.bpm}\nstep = "{a.step}"\ngate = {a.gate}\n'
                      f'velocity = 100\nhumanize = 0\naccent = 0\nchannel = 1\n'
                      'chords = false\ntiming = "preset"\n')
    jack_log = open(tmp / "jackd.log", "w")
    jackd = start_jack(f"midigan-soak-{os.getpid()}", a.period, a.rate, not a.no_realtime,
                       not a.async_server, jack_log, a.port_max)
    if jackd is None:
        sys.exit("jackd did not start")
    rec = player = None
    try:
        rec = Recorder("soak-rec")
        print(f"JACK: dummy driver, {a.rate} Hz, period {a.period} = {a.period / a.rate * 1e3:.2f} ms, "
              f"server {jackd.mode}, port-max {a.port_max or 'default'}; client python-rtmidi input {rec.port}")

        cmd = [sys.executable, "-m", "midigan", "play", "--api", "jack", "--model", str(model),
               "--preset", str(preset), "--bars", str(bars), "--seed", str(a.seed), "--port", rec.port]
        print("command:", " ".join(cmd[2:]))
        err_path = tmp / "play.err"
        t_start = time.monotonic()
        player = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(err_path, "w"), cwd=str(ROOT))
        samples = []  # (seconds since start, VmRSS kB)
        own = []  # RssAnon + RssFile kB: VmRSS without shared memory (JACK's)
        shm = (None, None)
        hwm = None
        cpu0 = None
        next_sample = t_start + 1.0
        while player.poll() is None:
            now = time.monotonic()
            if now >= next_sample:
                st = proc_status(player.pid)
                if st and "VmRSS" in st:
                    samples.append((now - t_start, st["VmRSS"]))
                    own.append(st.get("RssAnon", 0) + st.get("RssFile", 0))
                    shm = (st.get("RssShmem"), st.get("VmLck"))
                    hwm = st.get("VmHWM", hwm)
                    c = cpu_seconds(player.pid)
                    if cpu0 is None and c is not None:
                        cpu0 = (now, c)
                    cpu1 = (now, c)
                next_sample += a.sample
            time.sleep(min(0.2, max(0.0, next_sample - time.monotonic())))
        wall = time.monotonic() - t_start
        time.sleep(0.3)
    finally:
        if player is not None and player.poll() is None:
            player.terminate()
            player.wait(10)
        if rec is not None:
            rec.close()
        jackd.terminate()
        try:
            jackd.wait(5)
        except subprocess.TimeoutExpired:
            jackd.kill()
        jack_log.close()

    err_text = err_path.read_text(errors="replace")
    final = re.findall(r"stopped \((\w+)\): (\d+) notes sent", err_text)
    print(f"play: exit {player.returncode} after {wall:.1f} s"
          + (f"; it says: stopped ({final[-1][0]}), {final[-1][1]} notes sent" if final else
             f"; stderr tail: {err_text[-300:]!r}"))
    sent = int(final[-1][1]) if final else None

    ev = rec.events
    ons = np.array([t for t, m, _w in ev if m[0] == 0x90 and m[2] > 0])
    ons_wall = np.array([w for _t, m, w in ev if m[0] == 0x90 and m[2] > 0])
    offs = [t for t, m, _w in ev if m[0] == 0x80 or (m[0] == 0x90 and m[2] == 0)]
    cc = [t for t, m, _w in ev if m[:2] == (0xB0, 123)]
    print("\nevents")
    print(f"  note-ons received {len(ons)}, note-offs {len(offs)}, expected {expected} each"
          + (f", player sent {sent}" if sent is not None else ""))
    xruns = sum(1 for ln in (tmp / "jackd.log").read_text(errors="replace").splitlines() if "xrun" in ln.lower())
    if len(ons) >= 2:
        k = np.round((ons - ons[0]) / step_s).astype(np.int64)
        uniq = np.unique(k)
        dup = len(k) - len(uniq)
        missing = expected - len(uniq)
        print(f"  dropped (grid slots without a note-on) {missing}, duplicated {dup}; "
              f"CC 123 at the end: {'yes' if cc and cc[-1] >= ons[-1] else 'NO'}; "
              f"JACK xrun lines {xruns}")
        r = ons - ons[0] - k * step_s
        base = np.median(r[:200])
        r = (r - base) * 1e3
        end = r[-200:]
        print("\nschedule (note-on arrival vs grid, jack_get_time at the recorder's cycle, grid from the first 200 notes)")
        print(f"  drift at the end: median {np.median(end):+.3f} ms over the last {len(end)} notes, "
              f"max |err| {np.abs(r[-20:]).max():.3f} ms over the last 20 (target <= 2 ms)")
        print(f"  whole run: |err| p50 {np.percentile(np.abs(r), 50):.3f} ms, p99 {np.percentile(np.abs(r), 99):.3f} ms, "
              f"max {np.abs(r).max():.3f} ms; late > 5 ms: {int((r > 5).sum())} notes")
        span = (ons[-1] - ons[0]) / (k[-1] * step_s) if k[-1] else float("nan")
        print(f"  clock ratio (received span / grid span) {span:.7f} ({(span - 1) * 1e6:+.1f} ppm)")
        rw = ons_wall - ons_wall[0] - k * step_s
        rw = (rw - np.median(rw[:200])) * 1e3
        print(f"  cross-check, time.monotonic() in the recorder's callback: drift at the end "
              f"{np.median(rw[-200:]):+.3f} ms, p99 |err| {np.percentile(np.abs(rw), 99):.3f} ms")
    else:
        print("  nothing received")

    print("\nmemory (VmRSS of the play process)")
    if samples:
        t = np.array([s for s, _ in samples])
        rss = np.array([v for _, v in samples], dtype=float)
        playing = t >= 3.0  # skip start-up: model load, first inference
        t_p, rss_p = (t[playing], rss[playing]) if playing.sum() >= 2 else (t, rss)
        tenth = rss_p[min(len(rss_p) - 1, len(rss_p) // 10)]
        slope = np.polyfit(t_p / 60, rss_p, 1)[0] if len(t_p) >= 3 else float("nan")
        print(f"  {len(samples)} samples every {a.sample:g} s; start {mb(rss_p[0]):.1f} MB (t={t_p[0]:.0f} s), "
              f"peak {mb(rss.max()):.1f} MB (VmHWM {mb(hwm or 0):.1f} MB), end {mb(rss_p[-1]):.1f} MB")
        print(f"  growth: end - start {mb(rss_p[-1] - rss_p[0]):+.2f} MB, end - sample at 1/10 "
              f"{mb(rss_p[-1] - tenth):+.2f} MB, fitted slope {slope:+.1f} kB/min "
              f"(targets: peak <= 150 MB, growth <= 5 MB)")
        own_p = np.array(own, dtype=float)[playing] if playing.sum() >= 2 else np.array(own, dtype=float)
        if shm[0] is not None:
            print(f"  of which shared memory (RssShmem) {mb(shm[0]):.1f} MB, locked (VmLck) {mb(shm[1] or 0):.1f} MB: "
                  f"the JACK server's /dev/shm segment, mapped (and mlocked) by every JACK client")
            print(f"  without it (RssAnon + RssFile): start {mb(own_p[0]):.1f} MB, peak {mb(own_p.max()):.1f} MB, "
                  f"end {mb(own_p[-1]):.1f} MB, growth {mb(own_p[-1] - own_p[0]):+.2f} MB")
        if cpu0 and cpu1[0] > cpu0[0]:
            print(f"  CPU: {100 * (cpu1[1] - cpu0[1]) / (cpu1[0] - cpu0[0]):.1f} % of one core while playing")
    else:
        print("  no samples")
    print(f"\nlogs in {tmp}")


if __name__ == "__main__":
    main()
