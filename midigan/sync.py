"""Following a shared timeline: JACK transport (`--sync jack`) and Ableton Link (`--sync link`).

Both are turned into what the player already follows from a MIDI clock: the
ClockInput interface (`take`, `pending`, `wait`, `close`, `name`), yielding
Start, Stop, Continue, Song Position and 0xF8 ticks. Unlike a MIDI clock, the
ticks are not measured on arrival: each is stamped with the exact time its beat
has on the followed timeline, and carries that timeline's tempo,
``(0xF8, bpm)``, so the player takes both as they are (no smoothing, no
estimate). The timeline is polled from the player's own thread (the source's
`pending()` and `wait()`), every `poll` seconds while stopped.

- TimelineSync: the common part. A subclass's `_snapshot(t)` says whether the
  timeline plays, and where it is: a `Snap` (a beat at a time, the tempo).
  Starting at beat 0 is a Start (the take replays with a fixed seed); starting
  where the player stopped is a Continue; starting anywhere else, or a jump while
  playing (a locate), is a Song Position at the next sixteenth (the located beat
  itself when it is one) and a Continue; stopping is a Stop at the time the
  timeline stopped.
- JackTransport: `jack_transport_query` (JACK-Client): rolling or not, the
  position in frames, and bar/beat/tick and tempo where a timebase master
  provides them; without a master, beats are frames at the player's tempo.
- LinkSync: an Ableton Link peer (LinkPython-extern, `pip install 'midigan[link]'`),
  with start/stop sync: the song starts at the first bar line (quantum 4) at or
  after the session starts playing, and follows the session's tempo and phase.

`jack` and `link` are imported lazily, only by the classes that need them.
"""
from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass

from .music import CLOCK_PULSES_PER_BEAT

CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
QUANTUM = 4.0  # Link: a bar of 4/4, the arranger's grid
_TICK = 1.0 / CLOCK_PULSES_PER_BEAT
_EPS = 1e-6  # beats: what counts as "on" a tick or a sixteenth


@dataclass
class Snap:
    """A timeline at one moment: playing or not; beat `beat` (song beats, quarters) at time `t`
    (the player's clock), `bpm` quarters a minute; `event`: when it started or stopped playing,
    where the source knows (Link), else None."""

    playing: bool
    t: float
    beat: float
    bpm: float
    event: float | None = None

    def beat_at(self, t: float) -> float:
        return self.beat + (t - self.t) * self.bpm / 60.0

    def time_at(self, beat: float) -> float:
        return self.t + (beat - self.beat) * 60.0 / self.bpm


class TimelineSync:
    """A sync source for the player, driven by polling a timeline (see the module's doc)."""

    def __init__(self, name: str, *, now=time.perf_counter, sleep=time.sleep, poll: float = 0.002):
        self.name, self.now, self.sleep, self.poll = name, now, sleep, poll
        self._out: deque = deque()
        self.k = 0  # the next tick to send: the player's song position, in ticks
        self.playing = False
        self.snap: Snap | None = None  # the last snapshot
        self._last_t: float | None = None  # when it was taken
        self._last_tick = -math.inf  # the time of the last tick sent
        self.starts = self.stops = self.locates = 0  # counts, for status and tests

    # ------------------------------------------------------------------ the subclass's part

    def _snapshot(self, t: float) -> Snap:
        raise NotImplementedError

    # ------------------------------------------------------------------ following

    def _emit(self, t: float, msg) -> None:
        self._out.append((t, msg))

    def _ticks_until(self, s: Snap, until: float) -> None:
        """Send the ticks whose time on `s` has come, up to `until`."""
        bpm = min(400.0, max(20.0, s.bpm))
        while True:
            due = s.time_at(self.k * _TICK)
            if due > until:
                return
            due = max(due, self._last_tick)  # in order, whatever the timeline did
            self._emit(due, (CLOCK, bpm))
            self._last_tick = due
            self.k += 1

    def _begin(self, s: Snap, prev: Snap | None, t: float) -> None:
        """The timeline started playing (or jumped while playing): Start, Continue or Song Position."""
        b = s.beat_at(t)
        # How far it can have moved since it was last seen stopped (or where we expected it):
        # anything started within that window started from there.
        since = (t - self._last_t) if self._last_t is not None else 0.0
        slack = since * max(s.bpm, prev.bpm if prev else 0.0) / 60.0 + 2 * _TICK
        if b <= slack:
            # From the top (or, on Link, towards a coming downbeat): the take starts again.
            self.k, self._last_tick = 0, -math.inf
            self._emit(t, (START,))
            self.starts += 1
            return
        origin = b
        if prev is not None and not prev.playing and prev.beat - _EPS <= b <= prev.beat + slack:
            origin = prev.beat  # rolled from where it stood (a locate there, or where we stopped)
            k = math.ceil(origin * CLOCK_PULSES_PER_BEAT - _EPS)
            if k == self.k:
                self._emit(t, (CONTINUE,))
                return
        sixteenths = max(0, math.ceil(origin * 4 - _EPS))
        sixteenths = min(sixteenths, 0x3FFF)
        self.k, self._last_tick = sixteenths * 6, -math.inf
        self._emit(t, (SONG_POSITION, sixteenths & 0x7F, sixteenths >> 7))
        self._emit(t, (CONTINUE,))
        self.locates += 1

    def _update(self) -> None:
        t = self.now()
        s = self._snapshot(t)
        prev = self.snap
        if s.playing and not self.playing:
            self.playing = True
            self._begin(s, prev, t)
        elif not s.playing and self.playing:
            if s.event is not None:  # Link: when the session stopped (maybe ahead)
                stop_at = s.event
            elif prev is not None and prev.playing:  # JACK: when it reached the frame it stopped at
                stop_at = min(prev.time_at(s.beat), t)
            else:
                stop_at = t
            stop_at = max(stop_at, self._last_tick)
            if stop_at > t:  # a stop scheduled ahead: play on until then
                self._ticks_until(prev or s, t)
                return
            self._ticks_until(prev or s, stop_at - 1e-9)  # (a tick on the stop is the stop's)
            self.playing = False
            self._emit(stop_at, (STOP,))
            self.stops += 1
        elif s.playing and prev is not None and prev.playing:
            # A jump: where the timeline says it is now, against where it was heading.
            if abs(s.beat_at(t) - prev.beat_at(t)) > 2 * _TICK:
                self._emit(t, (STOP,))
                self.snap = Snap(False, t, s.beat_at(t), s.bpm)
                self._last_t = t
                self._begin(s, None, t)
        self.snap, self._last_t = s, t
        if self.playing:
            self._ticks_until(s, t)

    # ------------------------------------------------------------------ the ClockInput interface

    def take(self) -> list:
        self._update()
        out = list(self._out)
        self._out.clear()
        return out

    def pending(self) -> bool:
        if not self._out:
            self._update()
        return bool(self._out)

    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout`: until the next tick is due, and never longer than `poll` while
        stopped (a start is seen within `poll`) or 5 ms while playing (a stop, a locate)."""
        t = self.now()
        nap = timeout
        if self.playing and self.snap is not None:
            nap = min(nap, max(0.0, self.snap.time_at(self.k * _TICK) - t), max(self.poll, 0.005))
        else:
            nap = min(nap, self.poll)
        if nap > 0:
            self.sleep(nap)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _offset(now, other_us, tries: int = 5) -> float:
    """`now()` minus `other_us()`/1e6, in seconds, from the tightest of a few bracketed reads."""
    best = None
    for _ in range(tries):
        a = now()
        o = other_us()
        b = now()
        if best is None or b - a < best[0]:
            best = (b - a, (a + b) * 0.5 - o * 1e-6)
    return best[1]


# ------------------------------------------------------------------ JACK transport

class JackTransport(TimelineSync):
    """Follows JACK transport (see the module's doc). `client`: a jack.Client to query (e.g.
    JackOutput's), else one of its own called `client_name`; `bpm`: the tempo that maps frames
    to beats when no timebase master says bar/beat/tick. `jack_us`: JACK's microsecond clock
    (jack_get_time; injected by tests with `client`)."""

    def __init__(self, bpm: float, *, client=None, client_name: str = "midigan-transport",
                 jack_us=None, now=time.perf_counter, sleep=time.sleep, poll: float = 0.002):
        super().__init__("JACK transport", now=now, sleep=sleep, poll=poll)
        self.bpm = float(bpm)
        self._own = client is None
        if client is None:
            client = _open_jack_client(client_name)
        self.client = client
        try:
            if jack_us is None:
                from .jackport import _CycleTimes

                jack_us = _CycleTimes(client).get_time
            self._jack_us = jack_us
            self._offset_at = -math.inf
            self._refresh()
            self.rolling_states = {_rolling(client)}
        except BaseException:
            if self._own:
                client.close()
            raise
        self.master = False  # a timebase master gave bar/beat/tick at the last look

    def _refresh(self) -> None:
        t = self.now()
        if t - self._offset_at >= 1.0:  # the clocks may drift apart: re-measured every second
            self._offset_s, self._offset_at = _offset(self.now, self._jack_us), t

    def _snapshot(self, t: float) -> Snap:
        self._refresh()
        state, pos = self.client.transport_query()
        at = pos["usecs"] * 1e-6 + self._offset_s
        bpm = self.bpm
        if "beats_per_minute" in pos and pos.get("beats_per_minute", 0) > 0 and pos.get("beats_per_bar", 0) > 0:
            q = 4.0 / (pos.get("beat_type") or 4.0)  # quarters per beat
            beats = ((pos["bar"] - 1) * pos["beats_per_bar"] + (pos["beat"] - 1)
                     + pos["tick"] / max(1.0, pos["ticks_per_beat"]))
            beat, bpm = beats * q, pos["beats_per_minute"] / q
            self.master = True
        else:
            beat = pos["frame"] / pos["frame_rate"] * bpm / 60.0
            self.master = False
        return Snap(state in self.rolling_states, at, beat, bpm)

    def close(self) -> None:
        if self._own:
            self.client.close()


def _rolling(client):
    """jack.ROLLING, where the client is a real jack.Client (a test's fake says its own)."""
    return getattr(client, "ROLLING", None) or _import_jack().ROLLING


def _import_jack():
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    import jack  # noqa: PLC0415 (lazy)

    return jack


def _open_jack_client(name: str):
    from .ports import APIUnavailable, _quiet_stderr, _why_unavailable

    try:
        jack = _import_jack()
    except OSError as e:
        raise APIUnavailable(f"JACK-Client cannot load libjack ({e})") from None
    try:
        with _quiet_stderr():
            return jack.Client(name, no_start_server=True)
    except jack.JackOpenError:
        raise APIUnavailable(_why_unavailable("jack")) from None


# ------------------------------------------------------------------ Ableton Link

class LinkSync(TimelineSync):
    """An Ableton Link peer followed with start/stop sync and a quantum of one bar.

    `link`: a link.Link (LinkPython-extern) or anything with its interface (tests);
    by default a new peer, enabled, proposing `bpm` to a session it founds."""

    def __init__(self, bpm: float, *, link=None, quantum: float = QUANTUM, now=time.perf_counter,
                 sleep=time.sleep, poll: float = 0.002):
        super().__init__("Ableton Link", now=now, sleep=sleep, poll=poll)
        self.quantum = float(quantum)
        self._own = link is None
        if link is None:
            import link as linkmod  # noqa: PLC0415 (lazy: pip install 'midigan[link]')

            link = linkmod.Link(float(bpm))
            link.startStopSyncEnabled = True
            link.enabled = True
        self.link = link
        self._clock = link.clock()
        self._offset_at = -math.inf
        self._b0: float | None = None  # the Link beat of the song's beat 0
        self._started_at: int | None = None  # Link µs of the start it belongs to

    @property
    def peers(self) -> int:
        return self.link.numPeers()

    def _refresh(self) -> None:
        t = self.now()
        if t - self._offset_at >= 1.0:
            self._offset_s, self._offset_at = _offset(self.now, self._clock.micros), t

    def _snapshot(self, t: float) -> Snap:
        self._refresh()
        s = self.link.captureAppSessionState()
        us = self._clock.micros()
        at = us * 1e-6 + self._offset_s
        q, bpm = self.quantum, s.tempo()
        lbeat = s.beatAtTime(us, q)
        if not s.isPlaying():
            self._b0 = self._started_at = None
            return Snap(False, at, math.nan, bpm, s.timeForIsPlaying() * 1e-6 + self._offset_s)
        started = s.timeForIsPlaying()
        if self._b0 is None or started != self._started_at:
            # The song's beat 0: the first bar line (phase 0 of the quantum) at or after the start.
            b = s.beatAtTime(started, q)
            self._b0 = math.ceil(b / q - _EPS) * q
            self._started_at = started
        return Snap(True, at, lbeat - self._b0, bpm, started * 1e-6 + self._offset_s)

    def close(self) -> None:
        if self._own:
            self.link.enabled = False


def open_sync(kind: str, *, bpm: float, port=None):
    """The sync source for `--sync jack` or `--sync link` (None for anything else: a MIDI clock)."""
    kind = (kind or "").lower()
    if kind == "jack":
        try:
            _import_jack()
        except ImportError:
            raise ImportError("--sync jack needs JACK-Client", name="jack") from None
        # JackOutput's own client where there is one; it watches the transport in its process
        # callback, so sleep until the transport changes rather than a whole poll.
        client = getattr(port, "client", None) if getattr(port, "api", None) == "jack" else None
        wait = getattr(port, "wait_transport", None) if client is not None else None
        return JackTransport(bpm, client=client, **({"sleep": wait} if wait else {}))
    if kind == "link":
        try:
            import link  # noqa: F401, PLC0415
        except ImportError:
            raise ImportError("--sync link needs LinkPython-extern", name="link") from None
        return LinkSync(bpm)
    return None
