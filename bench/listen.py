"""Listening figures (`play --listen`), in-process, real clock, memory port, the default model:

    python bench/listen.py [--model PATH] [--calls N]

Prints figures only (no asserts):
1. answer latency: a one-bar call arrives on a scripted input (stamped on the real clock); from
   the silence threshold (last key up + --silence beats) to the first answering note-on sent,
   over N calls (p50/p99/max, ms): the model places that onset within the threshold's
   sixteenth (125 ms at 120 BPM); with the count of events sent over 5 ms late;
2. the listening side's cost per heard message and clock look (ListenSource.step with nothing
   due: hear, then due), p50/p99 (ms);
3. chords (`--chords`): the share of accompanying notes whose pitch class is a held C major
   triad's, against no chord (8 bars, 5 seeds; 3 of 12 pitch classes = 0.25 by chance).
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from midigan.listen import Listener, ListenSource  # noqa: E402
from midigan.player import Player  # noqa: E402
from midigan.ports import MemoryPort  # noqa: E402
from midigan.presets import load_preset, override  # noqa: E402
from midigan.runtime import Generator  # noqa: E402

CALL = [60, 64, 67, 72, 67, 64, 60, 62]  # eighths, one bar


class LiveInbox:
    """A scripted input on the real clock: (time, message) pairs released as time passes."""

    def __init__(self):
        self.script, self.lock, self.wake = [], threading.Lock(), threading.Event()

    def add(self, t, msg):
        with self.lock:
            self.script.append((t, msg))

    def take(self):
        now = time.perf_counter()
        with self.lock:
            out = [e for e in self.script if e[0] <= now]
            self.script = [e for e in self.script if e[0] > now]
        return out

    def wait(self, timeout):
        self.wake.wait(timeout)


def answer_latency(gen, calls: int, bpm: float = 120.0):
    pr = override(load_preset("piano"), bpm=bpm, humanize=0)
    beat = 60.0 / bpm
    port, inbox = MemoryPort(), LiveInbox()
    lis = Listener(gen, pr, mode="answer", seed=1, silence=2.0, bars=1)
    player = Player(port, gen, pr, source=ListenSource(lis, inbox), bars=calls * 4)  # 4 bars a call: call, silence, answer, gap
    thresholds = []

    def script():
        while player.anchor_time == 0.0:
            time.sleep(0.001)
        for k in range(calls):
            start = k * 16 + 1  # beats: call, 2 beats of silence, a bar of answer, a gap
            for i, p in enumerate(CALL):
                inbox.add(player.time_at(start + i * 0.5), (0x90, p, 90))
                inbox.add(player.time_at(start + i * 0.5 + 0.45), (0x80, p, 0))
            thresholds.append(player.time_at(start + 3.5 + 0.45 + 2.0))

    threading.Thread(target=script, daemon=True).start()
    player.run()
    ons = [t for t, m in port.messages if m[0] == 0x90 and m[2] > 0]
    out = []
    for th in thresholds:
        first = [t for t in ons if t >= th - 0.25 * beat]
        if first:
            out.append((first[0] - th) * 1e3)
    return out, player.late, player.sent


def step_cost(gen, n: int = 2000) -> np.ndarray:
    pr = load_preset("piano")
    clock = [0.0]

    class P:  # the player's clock, frozen; no clock followed
        running, sync, synced = True, None, False
        now = staticmethod(lambda: clock[0])
        beat_at = staticmethod(lambda t: t * 2)

    inbox = LiveInbox()
    src = ListenSource(Listener(gen, pr, mode="answer", seed=1, silence=2.0), inbox, threaded=False).bind(P)
    costs = []
    for i in range(n):
        inbox.script.append((-1.0, (0x90 if i % 2 == 0 else 0x80, 60 + i % 12, 90)))  # a key, down or up
        t = time.perf_counter()
        src.step()
        costs.append(time.perf_counter() - t)
    return np.array(costs) * 1e3


def chord_share(gen, held, counted, seeds=range(5)) -> float:
    """The share of 8 accompanying bars' notes whose pitch class is in `counted`, with the
    keys `held` down on the chord channel all along."""
    shares = []
    for seed in seeds:
        lis = Listener(gen, load_preset("piano"), mode="accompany", seed=seed, chord_channel=16)
        for p in held:
            lis.hear(0, (0x9F, p, 90))
        notes = [n for b in np.arange(0, 32, 0.125) for n in lis.due(b)]
        shares.append(np.mean([n.pitch % 12 in {p % 12 for p in counted} for n in notes]))
    return float(np.mean(shares))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--calls", type=int, default=8)
    a = ap.parse_args()
    gen = Generator(a.model)
    lat, late, sent = answer_latency(gen, a.calls)
    lat = np.array(lat)
    print(f"answer latency after the silence threshold ({len(lat)} of {a.calls} calls answered), ms: "
          f"p50 {np.percentile(lat, 50):.2f}  p99 {np.percentile(lat, 99):.2f}  max {lat.max():.2f}"
          if len(lat) else "no answer")
    print(f"  (the answer's first onset is the model's, within the threshold's sixteenth; "
          f"events sent over 5 ms late: {late} of {sent} notes' events)")
    c = step_cost(gen)
    print(f"listening cost per heard message (hear + due, nothing due), ms: p50 {np.percentile(c, 50):.4f}  "
          f"p99 {np.percentile(c, 99):.4f}")
    triad = (48, 52, 55)
    print(f"chord tones while C major is held on the chord channel: {chord_share(gen, triad, triad):.2f} "
          f"(no chord held: {chord_share(gen, (), triad):.2f})")


if __name__ == "__main__":
    main()
