"""Live playback: generated notes, played in time on a MIDI port, with no stuck notes.

The Player is the scheduler: it takes arranged notes from a producer thread
(producer.py) or a listener (listen.py) and sends each at the due time its
Timeline (timeline.py) gives its beat: it sleeps until just before that, then spins,
or hands the message early to a port that schedules itself (jackport.py). When
syncing, it follows the clock messages (Start, Continue, Stop, Song Position, ticks).

The clock (`now`, `sleep`), the output port and the clock input are injected, so
tests run the real scheduler on a fake clock with an in-memory port.
"""
from __future__ import annotations

import gc
import heapq
import math
import os
import sys
import time
from collections import deque
from fractions import Fraction

from .music import BEATS_PER_BAR, CLOCK_PULSES_PER_BEAT
from .arrange import PEDAL_LAG, Pedal
from .ports import ALL_NOTES_OFF, SUSTAIN, check_channel
from .producer import Producer
from .stopping import StopFlag
from .timeline import Timeline

CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2


# Player(hold=...) following MIDI clock on a port that sends at once (python-rtmidi): a note is
# due on its tick's predicted time, so when Stop comes in that tick's place (1-4 ms after it,
# measured with python-rtmidi's JACK port) the note has gone and sounds until the Stop (a blip).
# Held this long after its tick, it sees the Stop first and is never sent.
HOLD_FOR_STOP = 0.005


def _lcm(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(math.lcm(a.numerator, b.numerator), math.gcd(a.denominator, b.denominator))


class Player(Timeline):
    """Plays a generator's endless stream on `port` until stopped.

    Stops at the end of `bars` bars, on stop() or `stop_event` (see
    StopOnSignals), on any exception, and pauses on clock Stop when syncing;
    every way out releases each sounding note and sends CC 123 on the channel.
    """

    def __init__(self, port, generator, preset, *, seed: int = 0, bpm: float | None = None,
                 bars: int | None = None, channel: int | None = None, sync=None,
                 now=time.perf_counter, sleep=time.sleep, spin: float = 0.0015,
                 status=None, stop_event: StopFlag | None = None, ahead: int = 3,
                 realtime: bool = False, candidates: int | None = None, new_take=None, on_take=None,
                 source=None, hold: float = 0.0):
        self.port, self.preset, self.sync = port, preset, sync
        # hold: every event leaves this long after its due time, a constant latency (HOLD_FOR_STOP
        # when following MIDI clock on a port that sends at once: see there).
        if hold < 0:
            raise ValueError(f"hold must be 0 or more seconds, got {hold}")
        self.hold = float(hold)
        # A port that schedules (jackport.JackOutput) takes each message `lead` seconds
        # early with its due time, and writes it at that time itself: no spinning here.
        self._send_at = getattr(port, "send_at", None)
        self.lead = float(getattr(port, "lead", 0.0) or 0.0) if self._send_at else 0.0
        if self.lead:
            # JACK's own thread times the notes. But following a clock, a Start's first note is
            # due at once and must be handed over within the port's one period: then this thread
            # is real-time too, just below JACK's (_rt_priority). As a normal thread, with two busy
            # loops beside it, that first note left up to 19 ms late (bench/sync.py, 64 frames).
            spin, realtime = 0.0, realtime and sync is not None
        self.channel = check_channel(preset.channel if channel is None else channel) - 1
        Timeline.__init__(self, bpm if bpm is not None else preset.bpm, now, running=sync is None)
        if bars is not None and bars < 1:
            raise ValueError(f"bars must be at least 1, got {bars}")
        self.end_beat = bars * BEATS_PER_BAR if bars else math.inf
        self.sleep, self.spin = sleep, spin
        self.status, self.realtime = status, realtime
        # source (listen.ListenSource): notes from a listener instead of the generator's stream;
        # the player keeps time (note-offs, --bars) while it has nothing to play.
        self.listening = source is not None
        self.producer = (source.bind(self) if source is not None
                         else Producer(generator, preset, seed, ahead, candidates))
        self.seed, self.new_take = seed, new_take  # new_take() -> a seed for each new take (Start)
        self.on_take = on_take  # on_take(seed): a Start began a new take with new_take()'s seed
        self._old_producers: list = []
        self._standby = None  # the next take's producer, making its first phrases while the clock is stopped
        self._standby_first = None  # its first phrase, taken off its queue ahead (_take_ahead)
        self.taken = False  # a note of this producer's stream was played (or skipped)
        self._land = False  # the pending relocation must land a note on its beat (a locate)
        self._end_at: float | None = None  # when --bars ended (the due time of its end)
        # Relocating keeps the arranger's swing pairs and beats where they were (a timed
        # model's bars: it knows each onset's place in the bar).
        self.grid = (float(BEATS_PER_BAR) if getattr(generator, "timed", False) else
                     float(_lcm(Fraction(preset.step) * 8, Fraction(1))))
        self.notes: deque = deque()  # arranged, not yet started (stream beats)
        self.offset = 0.0  # song beat = stream beat + offset
        self.relocate_to: float | None = None
        self.offs: list = []  # heap of (song beat, token, pitch): scheduled note-offs (pitch -1: pedal down)
        self.pedal = Pedal(preset.pedal)
        self.pedal_used = bool(preset.pedal)
        self.sounding: dict[int, int] = {}  # pitch -> token of the note holding it
        self.seq = 0
        self.sent = 0  # note-ons sent
        self.late = 0  # events sent more than 5 ms after their due time
        self.stop_reason: str | None = None
        self._stop = stop_event or StopFlag()
        self._last_status = -math.inf
        self.last_due = 0.0


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
        if self.pedal.change(note):  # lift as the note is struck, press just after it
            self._send([0xB0 | self.channel, SUSTAIN, 0], due)
            self.seq += 1
            heapq.heappush(self.offs, (round(beat + PEDAL_LAG, 9), self.seq, -1))
        if p in self.sounding:  # the same key again before its off: retrigger cleanly
            self._send([0x80 | self.channel, p, 0], due)
        self.seq += 1
        self._send([0x90 | self.channel, p, note.velocity], due)
        self.sounding[p] = self.seq
        heapq.heappush(self.offs, (round(beat + note.duration, 9), self.seq, p))
        self.sent += 1

    def _note_off(self, due: float | None = None) -> None:
        _beat, token, p = heapq.heappop(self.offs)
        if p < 0:
            self._send([0xB0 | self.channel, SUSTAIN, 127], due)
        elif self.sounding.get(p) == token:
            self._send([0x80 | self.channel, p, 0], due)
            del self.sounding[p]

    def release(self, cut: float | None = None, at: float | None = None) -> None:
        """Note-off for every sounding note, then the sustain pedal up (if it was used, by the
        preset or by what --thru echoed) and CC 123 on the channel.

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
        self.pedal = Pedal(self.preset.pedal)  # (after a relocation, the first note re-pedals)
        ends = [[0xB0 | self.channel, SUSTAIN, 0]] if self.pedal_used else []
        for m in ends + [[0xB0 | self.channel, ALL_NOTES_OFF, 0]]:
            try:
                self._send(m, at)
            except Exception:
                pass

    # ------------------------------------------------------------------ notes

    def _next_note(self):
        """The next arranged note (waiting for the producer if it has to), or None if stopping."""
        if not self._fill_until(-math.inf):
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
                # model), so the music keeps its bar positions. Look a whole grid
                # cell ahead, or where it lands would hang on how far the producer got.
                if not self._fill_until(self.notes[0].start + self.grid):
                    return None
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

    def _fill_until(self, beat: float) -> bool:
        """Take the producer's notes (waiting for them) until there is one and the last starts
        at or after `beat` (stream beats); False if stopping first, or listening with nothing
        to play yet."""
        while not self.notes or self.notes[-1].start < beat:
            batch = self.producer.get(timeout=0.05)
            if batch:
                self.notes.extend(batch)
            elif self._stop.is_set() or self.listening:
                return False
        return True

    def relocate(self, beat: float, land: bool = False) -> None:
        """Move the song position: sounding notes end, and the stream continues from `beat`
        (with `land`, from a note on `beat` itself where the coming notes have one)."""
        if self.sounding or self.offs:
            self.release()
        if self.listening:  # the listener goes on from `beat`; nothing it queued before is played
            self.notes.clear()
            self.producer.restart(beat)
            return
        self.relocate_to, self._land = beat, land

    def _prepare_next_take(self) -> None:
        """Following a clock, once a take has played and the clock stopped, start the next take's
        producer: a Start then finds its first phrases made (making them takes 30-45 ms with the
        default model, and the take's first note was handed over that late). Not while the take
        plays: its work then made the take's first note arrive ~45 ms late in half of the runs
        of tests/test_live_jack.py::test_follows_midi_clock_over_jack."""
        if self.sync is None or self.listening or self._standby is not None or not self.taken:
            return
        old = self.producer
        seed = self.new_take() if self.new_take is not None else self.seed
        self._standby = Producer(old.generator, old.preset, seed, old.queue.maxsize, old.candidates).start()

    def _take_ahead(self) -> None:
        """Following a clock, while stopped: hold the first phrase of this take and of the next
        one, taken off their producers' queues ahead, so a Start wakes no producer thread before
        its first note leaves (a producer thread set to work then competes for the GIL with
        the hand-over of that note, which must leave within a period)."""
        if not self.notes and not self.listening:
            self.notes.extend(self.producer.get(timeout=0) or ())
        if self._standby is not None and self._standby_first is None:
            self._standby_first = self._standby.get(timeout=0)

    def _new_take(self) -> None:
        """Start from the top: the stream again from its seed (the same notes with the same
        seed), or from new_take()'s seed. Nothing to do before any note was played."""
        if not self.taken or self.listening:  # (listening: what is heard makes each take)
            return
        self._prepare_next_take()  # (made already, unless the clock jumped back without a stop)
        old = self.producer
        old.stopped.set()
        self._old_producers.append(old)
        self.producer, self._standby = self._standby, None
        first, self._standby_first = self._standby_first, None
        if self.new_take is not None and self.on_take is not None:
            self.on_take(self.producer.seed)
        self.seed = self.producer.seed
        self.notes.clear()
        self.notes.extend(first or ())
        self.offset, self.taken = 0.0, False

    # ------------------------------------------------------------------ clock follow

    def _handle_sync(self) -> None:
        for t, msg in self.sync.take():
            if not msg:
                continue
            kind = msg[0]
            if kind == CLOCK:
                self.tick(t, msg[1] if len(msg) > 1 else None)
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
            if len(m) > 2 and m[0] & 0xF0 == 0xB0 and m[1] == SUSTAIN:
                self.pedal_used = True
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
            rt = self.realtime and _go_realtime(self._rt_priority())
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
                for old in self._old_producers + ([self._standby] if self._standby else []):
                    old.close()
                sys.setswitchinterval(old_switch)
                gc.unfreeze()
        return self.stop_reason or getattr(self._stop, "reason", None) or "stopped"

    def _rt_priority(self) -> int:
        """The scheduler thread's SCHED_FIFO priority: 10; with a scheduling port, one below the
        port's own thread (0, none, when that thread is not real-time: it must never wait on us);
        on python-rtmidi's JACK port, 1, below any JACK client's process thread (JACK's default is
        5 here: at 10 this thread could hold up every client's cycle on a busy core)."""
        if self.lead:
            return max(0, (getattr(self.port, "thread_priority", None) or 0) - 1)
        return 1 if getattr(self.port, "api", None) == "jack" else 10

    def _loop(self) -> None:
        if self.preset.program >= 0:  # the instrument: on a General MIDI synth, program 0 is a grand piano
            self._send([0xC0 | self.channel, self.preset.program])
        if self.sync is None:
            if not self.listening and self._next_note() is None:
                return
            # Beat 0 is now: the first note sounds as soon as it exists, and as soon as the
            # port can place it exactly (jackport.SETTLE_CYCLES; other ports have no wait).
            self.anchor_beat = 0.0
            self.anchor_time = max(self.now(), getattr(self.port, "settled_at", -math.inf))
        while not self._stop.is_set():
            if self.sync is not None:
                self._handle_sync()
                if not self.running or not self.synced:
                    self._show_status()
                    self._prepare_next_take()
                    self._take_ahead()
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
            due = self.time_at(beat) + self.hold
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


def _go_realtime(priority: int = 10) -> bool:
    """Best effort: SCHED_FIFO at `priority` for the calling (scheduler) thread only, as JACK
    clients do, so a busy machine cannot make notes late. Most desktops refuse
    it without an rtprio limit (audio group); then nothing changes. Priority 0: not at all."""
    if priority < 1:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (AttributeError, OSError):
        return False


def _leave_realtime() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass
