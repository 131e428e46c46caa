"""Sample-accurate JACK MIDI: a real JACK client (the JACK-Client package) with a process callback.

python-rtmidi's JACK port writes every message at the start of the next process
cycle, so whatever the player does, an onset moves by up to one period (10.7 ms at
1024 frames). Here the player hands each message over *ahead of time* with its due
time (`send_at(msg, due)`, `lead` seconds early), and the process callback writes it
into the MIDI buffer at the frame that due time maps to, plus one period: a
constant latency of `latency` seconds (one period), on a grid exact in frames.

Time: the player's clock (`now`, perf_counter) maps to frames by a line of the nominal
rate through the earliest the process callbacks ran (`_FrameLine`), so a note line is exact
in frames, as a DAW's grid is. (JACK's own estimate, jack_get_cycle_times, settles over
seconds after a server starts and jumps by tens of frames on a late cycle: followed, it put
a sixteenth line up to 6 frames off the grid at 64 frames a period.)

A MIDI clock input on the same client (`clock_input()`) is read in the same
callback; each message is stamped with its own frame, converted back to the
player's clock, so the followed tempo does not move by whole periods.

Import this module only where JACK-Client is wanted: it imports `jack` (and so
libjack) lazily, in `available()` and `JackOutput()`.
"""
from __future__ import annotations

import ctypes
import math
import ctypes.util
import os
import sys
import threading
import time
from collections import deque

from .ports import APIUnavailable, Inbox, PortError, PortNotFound, _find, _Port, _quiet_stderr, _why_unavailable

# How early the player hands messages over (seconds). A message must be queued
# before the process cycle its frame falls in starts, which is never before its
# due time; this margin covers the player thread waking late on a busy machine.
LEAD = 0.010
# The frame line's first cycles: it is drawn through the earliest callbacks, and the first
# one or two come late (3-4 frames at 1,024 frames a period, measured on a dummy server),
# so a note placed by them lands early. After 8 cycles it was within 1.6 frames in every
# probe. A free-running start waits for them (settled_at): 11 ms at 64 frames, 0.17 s at 1,024.
SETTLE_CYCLES = 8
CLOCK_BYTES = frozenset((0xF8, 0xFA, 0xFB, 0xFC, 0xF2))  # what a clock input keeps
CHANNEL_BYTES = frozenset(range(0x80, 0xF0))  # what a --listen input keeps: channel messages


def _import_jack():
    """The jack module, or ImportError (not installed) / OSError (no libjack)."""
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    import jack  # noqa: PLC0415 (lazy: only JACK users load libjack)

    return jack


def available() -> bool:
    """Whether JACK-Client and libjack can be loaded here (not whether a server runs)."""
    try:
        _import_jack()
        return True
    except (ImportError, OSError):
        return False


class _CycleTimes:
    """jack_get_time and jack_get_cycle_times through ctypes (JACK-Client does not wrap them)."""

    def __init__(self, client):
        import jack

        lib = ctypes.CDLL(jack._libname or ctypes.util.find_library("jack"))
        self.get_time = lib.jack_get_time
        self.get_time.restype = ctypes.c_uint64
        self.get_time.argtypes = []
        f = lib.jack_get_cycle_times
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint64),
                      ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_float)]
        self._f = f
        self._ptr = ctypes.c_void_p(int(jack._ffi.cast("uintptr_t", client._ptr)))
        self._frames, self._cur, self._next = ctypes.c_uint32(), ctypes.c_uint64(), ctypes.c_uint64()
        self._period = ctypes.c_float()
        self._args = (self._ptr, ctypes.byref(self._frames), ctypes.byref(self._cur),
                      ctypes.byref(self._next), ctypes.byref(self._period))

    def __call__(self):
        """(first frame of this cycle, its start in JACK µs, the next cycle's start in µs), or None."""
        if self._f(*self._args):
            return None
        return self._frames.value, self._cur.value, self._next.value


class _FrameClock:
    """Seconds on the player's clock of JACK frames, for what the inputs hear: a delay-locked
    loop (as JACK's own, Adriaensen 2005) on JACK's estimate of each cycle's start.

    That estimate is as exact as the driver's clock: a sound card's is smoothed, but the dummy
    driver's is simply when it woke, late by milliseconds on a busy machine, while its frames
    (where another client put a clock tick) stay exact. The loop's bandwidth of 0.2 Hz keeps
    the frame rate steady (a tempo read over a bar is off by well under 0.1 BPM) and follows a
    real drift; it jumps only when the estimate is 10 ms off (an xrun, a stall).
    """

    BANDWIDTH = 0.2  # Hz
    JUMP = 0.010  # s

    def __init__(self, rate: float):
        self.rate, self.f0, self.t0, self.spf = float(rate), None, 0.0, 1.0 / rate

    def update(self, first: int, start: float) -> None:
        """This cycle's first frame, and JACK's estimate of its start (the player's clock, s)."""
        if self.f0 is None or first <= self.f0:
            self.f0, self.t0, self.spf = first, start, 1.0 / self.rate
            return
        n = first - self.f0
        pred = self.t0 + n * self.spf
        e = start - pred
        if abs(e) > self.JUMP:
            self.f0, self.t0, self.spf = first, start, 1.0 / self.rate
            return
        w = 2 * math.pi * self.BANDWIDTH * n / self.rate  # per this cycle's length
        self.f0, self.t0 = first, pred + math.sqrt(2) * w * e
        self.spf += w * w * e / n

    def time(self, frame: float) -> float:
        return self.t0 + (frame - self.f0) * self.spf


class _FrameLine:
    """The player's clock (s) -> JACK frames: frame = rate * t + s, the slope the nominal rate.

    A process callback runs when its cycle's first frame is due or later (by the machine's
    wake-up latency: tens of µs, milliseconds on a busy machine), never earlier. So each
    cycle gives first - rate * t <= s, and s is the largest of these over the last `span`
    seconds or `cycles` cycles, whichever is longer (the earliest wake-up: at 1,024 frames a
    second holds 47 cycles, too few for a steady floor). Frames that jump ahead (skipped
    cycles) raise s at once. s falls no faster than SLEW: a sound card whose clock runs a few
    ppm slower than the system's is followed, but a server that lost a period's frames in an
    xrun, or callbacks late for a second on a busy machine, do not shift the notes off the
    frame grid a DAW records on (they drift back at 100 ppm).
    """

    PARTS = 4  # the window slides a quarter at a time
    SLEW = 1e-4  # the fastest s falls, in frames per frame (100 ppm: 4.8 frames a second at 48 kHz)

    def __init__(self, rate: float, period: int = 64, span: float = 1.0, cycles: int = 200):
        self.rate = float(rate)
        self.part = max(span, cycles * period / self.rate) / self.PARTS
        self.s, self._t = None, None
        self._parts: deque = deque(maxlen=self.PARTS - 1)  # the largest of each earlier part
        self._best, self._until = -math.inf, -math.inf  # this part's largest, and when it ends

    def add(self, first: int, t: float) -> None:
        """A cycle's first frame, and when (the player's clock) its callback began."""
        x = first - self.rate * t
        if t >= self._until:
            if self._best > -math.inf:
                self._parts.append(self._best)
            self._best, self._until = x, t + self.part
        elif x > self._best:
            self._best = x
        top = max(self._best, *self._parts) if self._parts else self._best
        if self.s is not None and top < self.s:
            top = max(top, self.s - self.SLEW * self.rate * (t - self._t))
        self.s, self._t = top, t

    def frame(self, t: float) -> int | None:
        return None if self.s is None else int(round(self.rate * t + self.s))


_SWITCH = sys.getswitchinterval()  # Python's own, restored when the last output closes
_OPEN: set = set()  # the outputs open now, each wanting the GIL within its period


def _thread_priority() -> int:
    """The calling thread's SCHED_FIFO / SCHED_RR priority; 0 when it is not real-time."""
    try:
        if os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR):
            return os.sched_getparam(0).sched_priority
    except (AttributeError, OSError):
        pass
    return 0


def _apply_switch() -> None:
    """The GIL switch interval: a quarter of the shortest open output's period (Python's own
    when none is open). See JackOutput._hand_over_gil."""
    sys.setswitchinterval(min([_SWITCH, *(p.period / p.rate / 4 for p in _OPEN)]))


class JackOutput(_Port):
    """A JACK MIDI output port on its own client: send(), send_at(), cancel(), panic(), reset().

    `name` is the port's short name; the client is called `client_name` (JACK adds
    '-01' etc. when that name is taken: `name` then becomes the real 'client:port').
    With `connect_to`, the port is connected to that existing JACK MIDI input.
    """

    api = "jack"
    lead = LEAD

    def __init__(self, name: str = "midigan", *, client_name: str = "midigan", connect_to: str | None = None,
                 now=time.perf_counter):
        try:
            jack = _import_jack()
        except OSError as e:
            raise APIUnavailable(f"JACK-Client cannot load libjack ({e})") from None
        self.now = now
        self._queue: deque = deque()  # (frame, due, bytes), in the order sent
        self._lock = threading.Lock()  # cancel() vs the process callback
        self._clock = None  # a JackClockInput, when one was opened
        self._heard = None  # the --listen input (a JackClockInput taking channel messages), when opened
        self._errors = 0  # messages the buffer refused (full): dropped, counted
        self.late = 0  # messages written later than their frame (the process cycle had passed)
        self.undelivered = 0  # messages still queued when the port closed: the server did not run us
        # Set in the process callback when the transport's state changes (`--sync jack` sleeps
        # on it: a start is seen in its own cycle, not at the next 2 ms poll; see wait_transport).
        self.transport_changed = threading.Event()
        self._transport_state = None
        self._watching = False  # only once a sync waits on it: no transport query per cycle otherwise
        self.thread_priority = None  # the process thread's real-time priority (0: not real-time), once it ran
        try:
            with _quiet_stderr():
                self.client = jack.Client(client_name, no_start_server=True)
        except jack.JackOpenError:
            raise APIUnavailable(_why_unavailable("jack")) from None
        try:
            self._times = _CycleTimes(self.client)
            self._offset_us = 0.0
            self._offset_at = -1e9
            self._wrap, self._last_first = 0, 0
            self._refresh_offset(force=True)
            self.rate, self.period = self.client.samplerate, self.client.blocksize
            self._line = _FrameLine(self.rate, self.period)  # the player's clock -> frames, for what is sent
            self._hand_over_gil()
            self._heard_at = _FrameClock(self.rate)  # frames -> the player's clock, for the inputs
            self.port = None  # registered once the client is active (below)
            self._cycles = 0  # process callbacks so far (close waits on them)
            self.client.set_process_callback(self._process)
            self.client.set_blocksize_callback(self._blocksize)
            self.xruns = 0
            self.client.set_xrun_callback(self._xrun)
            self.client.activate()
            # Only now visible: JACK refuses a connection to an inactive client's port, so a DAW
            # or patchbay connecting as soon as the port appears would fail (and not retry).
            self.port = self.client.midi_outports.register(name)
            # When a note handed over `lead` early is placed by a settled line (see SETTLE_CYCLES).
            self.settled_at = self.now() + SETTLE_CYCLES * self.period / self.rate + self.lead
            self.name = self.port.name  # the real 'client:port', after any renaming
            self.client_name = self.client.name
            if connect_to is not None:
                names = [p.name for p in self.client.get_ports(is_midi=True, is_input=True)
                         if not p.name.startswith(self.client_name + ":")]
                target = names[_find(names, connect_to, "output")]
                self.client.connect(self.port, target)
                self.name = target
        except BaseException:
            self.client.close()
            _OPEN.discard(self)
            _apply_switch()
            raise

    def connected(self) -> bool:
        """Whether something reads this port (any JACK connection)."""
        return bool(self.port.connections)

    # ------------------------------------------------------------------ time

    @property
    def latency(self) -> float:
        """Seconds from a message's due time to the frame it is written at: one period."""
        return self.period / self.rate

    def _refresh_offset(self, force: bool = False) -> None:
        """The player's clock minus JACK's, in µs: re-measured every second (they may drift apart)."""
        t = self.now()
        if not force and t - self._offset_at < 1.0:
            return
        best = None
        for _ in range(3):
            a = self.now()
            j = self._times.get_time()
            b = self.now()
            if best is None or b - a < best[0]:
                best = (b - a, (a + b) * 0.5e6 - j)
        self._offset_us, self._offset_at = best[1], t

    def _xrun(self, _delay):
        self.xruns += 1

    def _blocksize(self, blocksize):
        self.period = blocksize
        self._hand_over_gil()

    def _hand_over_gil(self) -> None:
        """The process callback is Python: it needs the GIL within one period (1.3 ms at 64
        frames), but a thread holding it lets go only when its switch interval (5 ms by
        default) runs out. At 64 frames that cost hundreds of xruns a minute even on an idle
        16-core machine; a quarter period lets the callback in on time."""
        _OPEN.add(self)
        _apply_switch()

    # ------------------------------------------------------------------ sending

    def _frame(self, due: float) -> int | None:
        """The JACK frame a message due at `due` (the player's clock) is written at: one period
        after the frame `due` falls on; None before the first cycle."""
        f = self._line.frame(due)
        return None if f is None else f + self.period

    def send_at(self, msg, due: float) -> None:
        """Queue `msg` to sound at `due` (the player's clock) + one period."""
        if self.closed:
            raise PortError(f"port {self.name!r} is closed")
        self._refresh_offset()
        self._queue.append((self._frame(due), due, bytes(msg)))

    def send(self, msg) -> None:
        """Now (+ one period, as every message), after anything queued before it."""
        self.send_at(msg, self.now())

    def cancel(self, after: float | None = None) -> list[bytes]:
        """Drop queued messages due after `after` (default: now) that are not written yet,
        and return them (the player sends the note-offs among them again, now).

        The player calls this before releasing its notes, so a note handed over
        early can't sound after the stop.
        """
        cut = self.now() if after is None else after
        q, keep = self._queue, []
        dropped = []
        with self._lock:
            while q:
                item = q.popleft()
                if item[1] > cut:
                    dropped.append(item[2])
                else:
                    keep.append(item)
            q.extendleft(reversed(keep))
        return dropped

    def pending(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------------ the process callback

    def _process(self, frames: int) -> None:
        woke = self.now()  # first: the line is drawn through when callbacks begin
        if self.thread_priority is None:
            self.thread_priority = _thread_priority()
        self._cycles += 1
        port = self.port
        if port is None:  # activated, the port not yet registered
            return
        port.clear_buffer()
        times = self._times()
        if times is None:
            return
        first, cur, nxt = times
        if nxt <= cur:  # a cycle with no length: times not to be trusted
            return
        if first < self._last_first:  # jack_nframes_t wrapped (after ~24 h at 48 kHz)
            self._wrap += 1 << 32
        self._last_first = first
        first += self._wrap
        self._line.add(first, woke)
        if self._watching:
            self._watch_transport(self.client.transport_state)
        clock, heard = self._clock, self._heard
        if clock is not None or heard is not None:
            self._heard_at.update(first, (cur + self._offset_us) * 1e-6)
            for inbox in (clock, heard):
                if inbox is not None:
                    inbox._read(first, self._heard_at.time)
        # cancel() holds the lock while it sorts the queue: then this cycle writes
        # nothing (the messages leave one cycle late) rather than wait in real time.
        if not self._lock.acquire(False):
            return
        try:
            self._write(first, frames)
        finally:
            self._lock.release()

    def _write(self, first: int, frames: int) -> None:
        port, q = self.port, self._queue
        end = first + frames
        last, wrote = 0, False
        while q:
            frame, _due, msg = q[0]
            if frame is None:  # sent before the first cycle: now
                frame = first
            if frame >= end:
                break
            off = frame - first
            if off < 0:
                off = 0
                self.late += 1
            if off < last:
                off = last  # messages leave in the order they were sent
            try:
                port.write_midi_event(off, msg)
            except Exception:  # buffer full: the rest waits for the next cycle
                # Judged by whether anything was written, not by the offset: a burst due at once
                # (the release on stop, or a late cycle) is written at offset 0 until it is full.
                if not wrote:
                    q.popleft()  # one that cannot fit even alone: drop it
                    self._errors += 1
                    continue
                break
            last, wrote = off, True
            q.popleft()

    def _watch_transport(self, state) -> None:
        if state != self._transport_state:
            self._transport_state = state
            self.transport_changed.set()

    def wait_transport(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds, waking as soon as the JACK transport starts or stops.
        With one period of latency, a note due when the transport starts is written on time
        only if it is handed over within that period: at 64 frames (1.33 ms) polling every
        2 ms made the first note leave one period late in most runs (bench/sync.py)."""
        self._watching = True
        if self.transport_changed.wait(timeout):
            self.transport_changed.clear()

    # ------------------------------------------------------------------ clock input

    def clock_input(self, source: str = "virtual", exclude=()) -> JackClockInput:
        """A MIDI clock input on this client: a port called 'midigan clock' (`source` 'virtual'),
        connected from the existing output `source` otherwise (never one of ours)."""
        self._clock = self._input("midigan clock", source, exclude, CLOCK_BYTES)
        return self._clock

    def listen_input(self, source: str = "virtual", exclude=()) -> JackClockInput:
        """What --listen hears (channel messages), read in the process callback as the clock is:
        a port called 'midigan in' (`source` 'virtual'), or connected from the output `source`."""
        self._heard = self._input("midigan in", source, exclude, CHANNEL_BYTES)
        return self._heard

    def _input(self, port_name: str, source: str, exclude, accept) -> JackClockInput:
        port = self.client.midi_inports.register(port_name)
        name = port.name
        if source != "virtual":
            own = (self.client_name + ":", *exclude)
            names = [p.name for p in self.client.get_ports(is_midi=True, is_output=True)
                     if not p.name.startswith(own)]
            try:
                src = names[_find(names, source, "input")]
            except PortNotFound:
                port.unregister()
                raise
            self.client.connect(src, port)
            name = src
        return JackClockInput(port, name, accept)

    # ------------------------------------------------------------------ closing

    def close(self, timeout: float = 1.0) -> None:
        """Let everything queued leave (up to `timeout` s past its due time), then close the client."""
        if self.closed:
            return
        self.closed = True
        try:
            deadline = time.monotonic() + timeout
            while self._queue and time.monotonic() < deadline:
                time.sleep(0.002)
            # A stalled server (or one that dropped this client) never ran the callback that
            # writes them: say so, rather than report the notes released.
            self.undelivered = len(self._queue)
            # The last cycle's buffer is read by the next client in the graph within the same
            # cycle, which on a loaded machine can end long after its period: deactivating
            # disconnects the port, and a reader not yet run would find it empty. Two more of our
            # own cycles and the graph has finished that one.
            seen, deadline = self._cycles, time.monotonic() + 0.5
            while self._cycles < seen + 2 and time.monotonic() < deadline:
                time.sleep(0.001)
            self.client.deactivate()
        finally:
            self._clock = self._heard = None
            self.client.close()
            _OPEN.discard(self)
            _apply_switch()


def open_jack_output(name: str, *, virtual: bool = True, client_name: str = "midigan",
                     explicit: bool = True) -> JackOutput | None:
    """A JackOutput for ports.open_output, or None where it should use python-rtmidi instead:
    JACK-Client not installed (or MIDIGAN_JACK_BACKEND=rtmidi), and, when JACK was not
    asked for by name (`explicit` False: 'auto'), no JACK server or no such JACK port."""
    if os.environ.get("MIDIGAN_JACK_BACKEND", "").lower() == "rtmidi" or not available():
        return None
    try:
        if virtual:
            return JackOutput(name, client_name=client_name)
        return JackOutput(client_name, client_name=client_name, connect_to=name)
    except (APIUnavailable, PortNotFound):
        if explicit:
            raise
        return None


class JackClockInput(Inbox):
    """A MIDI clock input read in JackOutput's process callback: ClockInput's interface
    (take, pending, wait, close), each message stamped with its frame on the player's clock."""

    def __init__(self, port, name: str, accept=None):
        super().__init__()
        self.port, self.name = port, name
        self.accept = CLOCK_BYTES if accept is None else accept  # the status bytes kept

    def _read(self, first: int, time_of):
        """This cycle's messages, each stamped with its frame's time (`time_of(frame)`)."""
        got = False
        for off, data in self.port.incoming_midi_events():
            msg = bytes(data)
            if msg and msg[0] in self.accept:
                self._inbox.append((time_of(first + off), tuple(msg)))
                got = True
        if got:
            self._wake.set()

    def close(self) -> None:
        pass  # the port goes with its client

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
