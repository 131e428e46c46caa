"""Live playback: generated notes, played in time on a MIDI port, with no stuck notes.

Three pieces, all in this module:

- a producer thread that runs the generator and the arranger ahead of time, so
  playback never waits on inference;
- a scheduler on an absolute timeline: every event has a due time computed from
  its beat, ``anchor_time + (beat - anchor_beat) * 60 / bpm``; it sleeps until
  just before that, then spins. Nothing accumulates sleeps, so errors never add up;
- optional MIDI clock follow: 0xF8 ticks (24 per quarter) re-anchor the timeline
  and set the (smoothed) tempo; Start, Continue, Stop and Song Position move it.

The clock (`now`, `sleep`), the output port and the clock input are injected, so
tests run the real scheduler on a fake clock with an in-memory port.
"""
from __future__ import annotations

import gc
import heapq
import math
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from fractions import Fraction

from .arrange import phrases
from .music import CLOCK_PULSES_PER_BEAT
from .ports import ALL_NOTES_OFF, check_channel

BEATS_PER_BAR = 4  # the arranger's grid is 4/4
CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2


class Producer:
    """Runs arrange.phrases() (the generator, steered by the preset) on a thread, `ahead` phrases ahead.

    A crash on the thread is handed to the player through the queue, so the
    player releases its notes and re-raises it in the main thread.
    """

    def __init__(self, generator, preset, seed: int = 0, ahead: int = 3, candidates: int | None = None):
        self.generator, self.preset, self.seed, self.candidates = generator, preset, seed, candidates
        self.queue: queue.Queue = queue.Queue(maxsize=ahead)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="midigan-producer", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _put(self, item) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _run(self):
        pr = self.preset
        try:
            for (notes,) in phrases(self.generator, pr, self.seed, candidates=self.candidates):
                if self.stopped.is_set() or not self._put(notes):
                    return
            self._put(RuntimeError("the generator's stream ended"))
        except BaseException as e:  # handed over; the player decides what it means
            self._put(e)

    def get(self, timeout: float):
        """The next list of notes, or None after `timeout`; raises the thread's error."""
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            if isinstance(item, (ValueError, OSError, RuntimeError)):
                raise item
            detail = f"{type(item).__name__}: {item}" if str(item) else type(item).__name__
            raise RuntimeError(f"the generator failed: {detail}") from item
        return item

    def close(self, timeout: float = 2.0):
        """Stop the thread and wait for it: an inference still running while the
        interpreter shuts down can crash it."""
        self.stopped.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)


def _lcm(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(math.lcm(a.numerator, b.numerator), math.gcd(a.denominator, b.denominator))


class Player:
    """Plays a generator's endless stream on `port` until stopped.

    Stops at the end of `bars` bars, on stop() or `stop_event` (see
    StopOnSignals), on any exception, and pauses on clock Stop when syncing;
    every way out releases each sounding note and sends CC 123 on the channel.
    """

    def __init__(self, port, generator, preset, *, seed: int = 0, bpm: float | None = None,
                 bars: int | None = None, channel: int | None = None, sync=None,
                 now=time.perf_counter, sleep=time.sleep, spin: float = 0.0015,
                 status=None, stop_event: StopFlag | None = None, ahead: int = 3,
                 realtime: bool = False, candidates: int | None = None, new_take=None, source=None):
        self.port, self.preset, self.sync = port, preset, sync
        # A port that schedules (jackport.JackOutput) takes each message `lead` seconds
        # early with its due time, and writes it at that time itself: no spinning here.
        self._send_at = getattr(port, "send_at", None)
        self.lead = float(getattr(port, "lead", 0.0) or 0.0) if self._send_at else 0.0
        if self.lead:
            spin, realtime = 0.0, False  # (nor a real-time thread: JACK's own one times the notes)
        self.channel = check_channel(preset.channel if channel is None else channel) - 1
        self.bpm = float(bpm if bpm is not None else preset.bpm)
        if not 20 <= self.bpm <= 400:
            raise ValueError(f"tempo {self.bpm:g} BPM is invalid (20..400)")
        if bars is not None and bars < 1:
            raise ValueError(f"bars must be at least 1, got {bars}")
        self.end_beat = bars * BEATS_PER_BAR if bars else math.inf
        self.now, self.sleep, self.spin = now, sleep, spin
        self.status, self.realtime = status, realtime
        # source (listen.ListenSource): notes from a listener instead of the generator's stream;
        # the player keeps time (note-offs, --bars) while it has nothing to play.
        if source is not None and sync is not None:
            raise ValueError("listening does not follow a clock yet: no sync with a listener")
        self.listening = source is not None
        self.producer = (source.bind(self) if source is not None
                         else Producer(generator, preset, seed, ahead, candidates))
        self.seed, self.new_take = seed, new_take  # new_take() -> a seed for each new take (Start)
        self._old_producers: list = []
        self.taken = False  # a note of this producer's stream was played (or skipped)
        self._land = False  # the pending relocation must land a note on its beat (a locate)
        self._end_at: float | None = None  # when --bars ended (the due time of its end)
        # Relocating keeps the arranger's swing pairs and beats where they were (a timed
        # model's bars: it knows each onset's place in the bar).
        self.grid = (float(BEATS_PER_BAR) if getattr(generator, "timed", False) else
                     float(_lcm(Fraction(preset.step) * 8, Fraction(1))))
        # Timeline: the beat `anchor_beat` happens at `anchor_time` (seconds).
        self.anchor_time, self.anchor_beat = 0.0, 0.0
        self.notes: deque = deque()  # arranged, not yet started (stream beats)
        self.offset = 0.0  # song beat = stream beat + offset
        self.relocate_to: float | None = None
        self.offs: list = []  # heap of (song beat, token, pitch): scheduled note-offs
        self.sounding: dict[int, int] = {}  # pitch -> token of the note holding it
        self.seq = 0
        self.sent = 0  # note-ons sent
        self.late = 0  # events sent more than 5 ms after their due time
        self.stop_reason: str | None = None
        self._stop = stop_event or StopFlag()
        # MIDI clock follow
        self.running = sync is None
        self.next_tick = 0  # song position, in ticks, of the next 0xF8
        self.last_tick_time: float | None = None
        self.tick_interval: float | None = None  # smoothed seconds per tick
        self.intervals: deque = deque(maxlen=12)
        self.synced = False  # a tick has anchored the timeline since (re)start
        self._last_status = -math.inf
        self.last_due = 0.0

    # ------------------------------------------------------------------ timeline

    def time_at(self, beat: float) -> float:
        return self.anchor_time + (beat - self.anchor_beat) * 60.0 / self.bpm

    def beat_at(self, t: float) -> float:
        return self.anchor_beat + (t - self.anchor_time) * self.bpm / 60.0

    def set_bpm(self, bpm: float, t: float | None = None) -> None:
        """Change tempo from time t (default now): re-anchor so the past stays put."""
        t = self.now() if t is None else t
        self.anchor_beat, self.anchor_time = self.beat_at(t), t
        self.bpm = min(400.0, max(20.0, float(bpm)))

    # ------------------------------------------------------------------ control

    def stop(self, reason: str = "stopped") -> None:
        """Ask the player to stop (from any thread or a signal handler)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    # ------------------------------------------------------------------ sending

    def _send(self, msg, due: float | None = None) -> None:
        if due is not None and self._send_at is not None:
            self._send_at(msg, due)
        else:
            self.port.send(msg)

    def _note_on(self, note, beat: float, due: float | None = None) -> None:
        p = note.pitch
        if p in self.sounding:  # the same key again before its off: retrigger cleanly
            self._send([0x80 | self.channel, p, 0], due)
        self.seq += 1
        self._send([0x90 | self.channel, p, note.velocity], due)
        self.sounding[p] = self.seq
        heapq.heappush(self.offs, (round(beat + note.duration, 9), self.seq, p))
        self.sent += 1

    def _note_off(self, due: float | None = None) -> None:
        _beat, token, p = heapq.heappop(self.offs)
        if self.sounding.get(p) == token:
            self._send([0x80 | self.channel, p, 0], due)
            del self.sounding[p]

    def release(self, cut: float | None = None, at: float | None = None) -> None:
        """Note-off for every sounding note, then CC 123 on the channel.

        Each message is tried on its own, so one failing send cannot leave the
        rest of the keyboard held. A scheduling port first drops what it holds
        that is due after `cut` (default: now): nothing handed over early sounds
        after a stop, and a note-off it dropped is sent again here. `at`: the
        time the release is due (default: now).
        """
        held = list(self.sounding)
        if self.listening:  # --thru: the echoed keys still down
            for m in self.producer.unecho():
                try:
                    self._send(m, at)
                except Exception:
                    pass
        cancel = getattr(self.port, "cancel", None)
        if cancel is not None:
            try:
                for m in cancel(cut) or ():
                    if m[0] == 0x80 | self.channel and m[1] not in held:
                        held.append(m[1])
            except Exception:
                pass
        for p in held:
            try:
                self._send([0x80 | self.channel, p, 0], at)
            except Exception:
                pass
        self.sounding.clear()
        self.offs.clear()
        try:
            self._send([0xB0 | self.channel, ALL_NOTES_OFF, 0], at)
        except Exception:
            pass

    # ------------------------------------------------------------------ notes

    def _next_note(self):
        """The next arranged note (waiting for the producer if it has to), or None if stopping."""
        while not self.notes:
            batch = self.producer.get(timeout=0.05)
            if batch:
                self.notes.extend(batch)
            elif self._stop.is_set() or self.listening:  # (listening: nothing to play yet)
                return None
        if self.notes and self.producer.queue.qsize() and len(self.notes) < 64:
            self.notes.extend(self.producer.get(timeout=0) or ())  # top up while it's cheap
        n = self.notes[0]
        if self.relocate_to is not None:
            # Shift the stream by whole grid cells so its next note lands at or
            # just after the new position: beats and swing pairs stay in place,
            # and a Continue where we stopped changes nothing.
            to = self.relocate_to
            self.offset = math.ceil((to - n.start) / self.grid - 1e-9) * self.grid
            if self._land and abs(n.start + self.offset - to) > 1e-9:
                # A locate: the first note sounds on the located beat. Skip to the
                # first coming note at that place in the grid (a bar for a timed
                # model), so the music keeps its bar positions.
                for i, m in enumerate(self.notes):
                    k = (to - m.start) / self.grid
                    if abs(k - round(k)) < 1e-9:
                        for _ in range(i):
                            self.notes.popleft()
                        self.offset, n = round(k) * self.grid, m
                        self.taken = True
                        break
            self.relocate_to, self._land = None, False
        return n

    def relocate(self, beat: float, land: bool = False) -> None:
        """Move the song position: sounding notes end, and the stream continues from `beat`
        (with `land`, from a note on `beat` itself where the coming notes have one)."""
        if self.sounding or self.offs:
            self.release()
        self.relocate_to, self._land = beat, land

    def _new_take(self) -> None:
        """Start from the top: the stream again from its seed (the same notes with the same
        seed), or from new_take()'s seed. Nothing to do before any note was played."""
        if not self.taken:
            return
        if self.new_take is not None:
            self.seed = self.new_take()
        old = self.producer
        old.stopped.set()
        self._old_producers.append(old)
        self.producer = Producer(old.generator, old.preset, self.seed, old.queue.maxsize, old.candidates).start()
        self.notes.clear()
        self.offset, self.taken = 0.0, False

    # ------------------------------------------------------------------ clock follow

    def _handle_sync(self) -> None:
        for t, msg in self.sync.take():
            if not msg:
                continue
            kind = msg[0]
            if kind == CLOCK:
                self._tick(t, msg[1] if len(msg) > 1 else None)
            elif kind == START:
                self.running, self.synced, self.next_tick = True, False, 0
                self.relocate(0.0)
                self._new_take()
            elif kind == CONTINUE:
                self.running, self.synced = True, False
                if self.relocate_to is None:  # (a locate's own relocation stays)
                    self.relocate(self.next_tick / CLOCK_PULSES_PER_BEAT)
            elif kind == STOP:
                self.running = False
                # A note on the tick that came with Stop (within half a tick of it)
                # belongs to the stop: a scheduling port drops it if it has not left.
                half = 0.5 * self.tick_interval if self.tick_interval else 0.0
                self.release(cut=t - half)
            elif kind == SONG_POSITION and len(msg) >= 3:
                sixteenths = msg[1] | (msg[2] << 7)
                self.next_tick = sixteenths * 6
                self.synced = False
                self.relocate(self.next_tick / CLOCK_PULSES_PER_BEAT, land=True)

    def _tick(self, t: float, bpm: float | None = None) -> None:
        last, self.last_tick_time = self.last_tick_time, t
        anchor = t
        if bpm is not None:
            # A tick of a followed timeline (sync.py: JACK transport, Link): its time and
            # tempo are the timeline's own, exact; nothing to smooth or correct.
            self.bpm = min(400.0, max(20.0, float(bpm)))
            self.tick_interval, last = 60.0 / (CLOCK_PULSES_PER_BEAT * self.bpm), None
        if self.running and self.synced and self.tick_interval and last is not None:
            # Late against the previous arrival (not the previous anchor, or a
            # slowing clock would pull the grid further back at every tick).
            late = t - (last + self.tick_interval)
            if 0 < late < 2 * self.tick_interval:
                # A tick later than expected was most likely delayed on its way
                # (a busy machine, a JACK cycle): move only part way, so one late
                # tick can't drag the notes after it.
                anchor = t - 0.75 * late
        if last is not None:
            dt = t - last
            if 0 < dt < 0.2:  # a longer gap means the clock paused: don't count it
                # Tempo from the median of the last dozen intervals: incoming clock
                # jitters, and one late tick makes one long and one short interval,
                # which the median ignores; a real tempo change wins in 6 ticks.
                self.intervals.append(dt)
                self.tick_interval = sorted(self.intervals)[len(self.intervals) // 2]
                self.bpm = min(400.0, max(20.0, 60.0 / (CLOCK_PULSES_PER_BEAT * self.tick_interval)))
        if self.running:
            # Each tick is a fixed point of the grid: it anchors the timeline.
            self.anchor_beat, self.anchor_time = self.next_tick / CLOCK_PULSES_PER_BEAT, anchor
            self.next_tick += 1
            self.synced = True

    # ------------------------------------------------------------------ waiting

    def _wait_until(self, due: float) -> bool:
        """Wait until `due`. False if something needs a look first (a stop, a clock message)."""
        while True:
            left = due - self.now()
            if left <= 0:
                return True
            if self._stop.is_set() or (self.sync is not None and self.sync.pending()):
                return False
            if self.listening and self._hear():
                return False  # new notes: they may come before what is waited for
            if left > self.spin:
                if left > 0.005:
                    self._show_status()
                # Short naps so a stop flag set by a signal is seen promptly.
                nap = min(left - self.spin, 0.005 if self.listening else 0.05)
                if self.sync is not None:
                    self.sync.wait(nap)
                else:
                    self.sleep(nap)
            else:
                while self.now() < due:  # spin: the last stretch, to the microsecond
                    pass
                return True

    def _hear(self) -> bool:
        """Listening: echo what was heard (--thru) now; True when new notes wait and none are queued."""
        ready = self.producer.poll()
        for m in self.producer.echo():
            self._send(m)
        return ready and not self.notes

    def _idle(self, seconds: float = 0.05) -> None:
        if self.listening:
            self._hear()
            self._show_status()
            seconds = min(seconds, 0.005)
        if self.sync is not None:
            self.sync.wait(seconds)
        else:
            self.sleep(seconds)

    def _show_status(self) -> None:
        if self.status is None:
            return
        t = self.now()
        if t - self._last_status < 0.25:
            return
        self._last_status = t
        beat = max(0.0, self.beat_at(t)) if self.running else self.next_tick / CLOCK_PULSES_PER_BEAT
        bar = int(beat // BEATS_PER_BAR) + 1
        state = "" if self.running else "  (waiting for clock)" if self.sync is not None else ""
        self.status(f"{self.bpm:6.1f} BPM  bar {bar:<5d} {self.preset.name:<10} "
                    f"{self.sent} notes{state}" + (f"  {self.producer.status}" if self.listening else ""))

    # ------------------------------------------------------------------ the loop

    def run(self) -> str:
        """Play until stopped; returns why it stopped ('bars', 'SIGINT', 'stopped', ...)."""
        old_switch = sys.getswitchinterval()
        rt = False
        try:
            # The producer thread must hand the GIL back quickly when an event is due: its
            # Python loop between inference steps holds it (0.5 ms measured p99 0.51 ms of
            # send error at 120 BPM with the default model; 0.1 ms gives 0.05-0.08 ms).
            sys.setswitchinterval(0.0001)
            # Keep cyclic-GC pauses short mid-song: everything loaded so far (numpy,
            # onnxruntime, the model) moves out of the collector's sight. (No
            # collect() first: it costs ~7 ms before the first note.)
            gc.freeze()
            self.producer.start()
            rt = self.realtime and _go_realtime()
            if rt:
                self.spin = min(self.spin, 0.0005)  # real-time wake-ups are punctual
            self._loop()
        finally:
            try:
                end = self._end_at
                self.release(cut=end, at=end)
            finally:
                if rt:
                    _leave_realtime()
                self.producer.close()
                for old in self._old_producers:
                    old.close()
                sys.setswitchinterval(old_switch)
                gc.unfreeze()
        return self.stop_reason or getattr(self._stop, "reason", None) or "stopped"

    def _loop(self) -> None:
        if self.sync is None:
            if not self.listening and self._next_note() is None:
                return
            # Beat 0 is now: the first note sounds as soon as it exists.
            self.anchor_beat, self.anchor_time = 0.0, self.now()
        while not self._stop.is_set():
            if self.sync is not None:
                self._handle_sync()
                if not self.running or not self.synced:
                    self._show_status()
                    self._idle()
                    continue
            note = self._next_note()
            if note is None and (self._stop.is_set() or not self.listening):
                break
            # exact ties: offs before ons (listening with nothing to play: only offs and the end)
            on_beat = math.inf if note is None else round(note.start + self.offset, 9)
            off_beat = self.offs[0][0] if self.offs else math.inf
            # At one beat: note-offs first, then the end, then note-ons.
            events = [(off_beat, 0), (self.end_beat, 1), (on_beat, 2)]
            if self.sync is not None:
                # New notes (and the end) never run more than two ticks ahead of
                # the last clock received; a note-off always comes, at the last
                # tempo, so a clock that dies mid-note can't leave it hanging.
                limit = self.anchor_beat + 2 / CLOCK_PULSES_PER_BEAT
                events = [e for e in events if e[1] == 0 or e[0] <= limit]
            beat, kind = min(events)
            if beat == math.inf:
                self._idle()
                continue
            due = self.time_at(beat)
            if not self._wait_until(due - self.lead) or self._stop.is_set():
                continue  # (the loop ends on a stop: no new note after one)
            self.last_due = due  # benches compare each send with its due time
            if self.now() - (due - self.lead) > 0.005:
                self.late += 1
            if kind == 0:
                self._note_off(due)
            elif kind == 1:
                self.stop("bars")
                self._end_at = due  # the release is due at the end, not `lead` before it
                break
            else:
                self.notes.popleft()
                self.taken = True
                self._note_on(note, on_beat, due)
                if self.sync is None and self.now() - due > 0.25:
                    # Far behind (the machine stalled): start the grid again
                    # here rather than firing a burst of stale notes.
                    self.anchor_beat, self.anchor_time = on_beat, self.now()


def _go_realtime() -> bool:
    """Best effort: SCHED_FIFO for the calling (scheduler) thread only, as JACK
    clients do, so a busy machine cannot make notes late. Most desktops refuse
    it without an rtprio limit (audio group); then nothing changes."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        return True
    except (AttributeError, OSError):
        return False


def _leave_realtime() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass


class StopFlag:
    """A stop flag that a signal handler may set: `set()`, `is_set()`, `reason`.

    No lock, unlike threading.Event: a second signal can land while the first one's
    handler is still inside set(), and Event.set() holds a lock there that the nested
    handler then waits for forever (the player hung after a double Ctrl-C). Setting a
    bool is atomic under the GIL, and the player polls the flag between short naps.
    """

    def __init__(self):
        self._set = False
        self.reason = None

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class StopOnSignals:
    """While active, SIGINT and SIGTERM only set `event` (a StopFlag) and its `reason`.

    Only a flag: the player notices within one short nap, and a second Ctrl-C
    can never interrupt the release that follows, nor the port's closing. Wrap
    the whole open-port-play-close sequence in it.
    """

    def __init__(self, event: StopFlag | None = None):
        self.event = event or StopFlag()
        self.old = {}

    def _handler(self, signum, _frame):
        if self.event.reason is None:
            self.event.reason = signal.Signals(signum).name
        self.event.set()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.old[s] = signal.signal(s, self._handler)
        return self.event

    def __exit__(self, *exc):
        for s, h in self.old.items():
            signal.signal(s, h)
        return False
