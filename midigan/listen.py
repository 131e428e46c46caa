"""Play along: what the DAW plays is heard by the model (teacher-forced, runtime.Continuation),
and midigan answers it or plays along with it.

`Listener` is the musical part, free of threads and ports: `hear(beat, message)` takes each
incoming MIDI message at its beat on the player's timeline (notes, CCs); `due(beat)`, called
as time passes, returns the notes to schedule from now on. Modes:

- ``answer``: call and response. Once every key is up and `silence` beats have passed since
  the last one was released, the model (having heard the call) plays `bars` bars starting
  on that beat (within one 1/16 step of it), then listens again.
- ``accompany``: midigan keeps playing, a bar ahead; before each bar it hears what was played
  since the last one, merged in time with its own notes.
- ``off``: midigan plays on its own (its own notes only as context); input is ignored.

Knobs (CC numbers in CC_DEFAULTS, each overridable in a preset's [cc] table), applied to the
next note sampled: CC 1 temperature (x0.25..x2 of the preset's), CC 74 density (-3..3), CC 71
velocity (each note's velocity scaled x0.5..x2, 64 = as is), CC 16 register (the preset's key
range moved -24..+24 semitones, 64 = as is; a mask, as the range always is), CC 17 figures
(0..16: how strongly the line comes back to figures, its own and the player's), CC 20 mode (0-42
off, 43-85 answer, 86-127 accompany), CC 21 re-seed (a press, value >= 64: a new take of the
sampler's random stream, its seed in the status line). With `key_auto`, the key and scale
(major or minor) are estimated from the last `key_bars` bars heard (keys.estimate_key) and
sampling keeps to them (the preset's masks).
Incoming notes are never echoed: only the returned notes are played. With a latent model
(one with an encoder), the last 100 notes heard also set its noise at each commit
(`Continuation.hear`): it goes on in the texture the player plays in.

Chords: with `chord_channel`, notes on that channel are a chord track, not a melody: they
are not heard as context; while they are held, sampling favours their pitch classes (a bias
of CHORD_BIAS on those keys' logits, a nudge, not a mask). Sampling then runs in beats, an
eighth of a beat ahead (CHORD_LEAD), so a chord steers the notes that start from an eighth of
a beat after it is heard.

`ListenSource` puts a Listener in the Player's place of its Producer (`Player(source=...)`):
what a MIDI input hears is stamped with the player's beat and heard, and what the Listener
hands out is played on the player's timeline; with `thru`, what is heard is echoed.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
from collections import deque

import numpy as np

from . import events as ev
from .arrange import Note, sampling_bias, shape_notes
from .keys import estimate_key
from .music import BEATS_PER_BAR, NOTE_NAMES, PITCH_HIGH, PITCH_LOW
from .presets import CC_DEFAULTS, override
from .runtime import Continuation

MODES = ("answer", "accompany", "off")
STEP = 0.25  # beats: the answer starts within one 1/16 step of the silence threshold
KEY_MIN_NOTES = 8  # notes heard before --key auto names a key
NOTE_ON, NOTE_OFF, CONTROL = 0x90, 0x80, 0xB0
CHORD_BIAS = 1.0  # logits added to a held chord's keys (x2.7 as likely): 72 % chord tones, not 95 % as at 2
CHORD_LEAD = 0.125  # beats: with a chord track, each beat is sampled this long before it starts


class Listener:
    def __init__(self, generator, preset, mode: str = "answer", seed: int = 0, silence: float = 2.0,
                 bars: int = 2, key_auto: bool = False, key_bars: int = 4, chord_channel: int | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown listen mode {mode!r} (one of {', '.join(MODES)})")
        if not silence > 0:
            raise ValueError(f"silence must be more than 0 beats, got {silence:g}")
        if bars < 1:
            raise ValueError(f"answer bars must be at least 1, got {bars}")
        self.preset, self.mode, self.silence, self.bars = preset, mode, float(silence), int(bars)
        self.key_auto, self.key_bars = key_auto, key_bars
        if chord_channel is not None and not 1 <= chord_channel <= 16:
            raise ValueError(f"chord channel must be 1-16, got {chord_channel}")
        self.chord_channel = chord_channel
        self.chord: set[int] = set()  # keys of the chord track held now
        self.line = Continuation(generator, seed=seed, temperature=preset.temperature,
                                 noise_scale=preset.noise_scale, bias=sampling_bias(preset),
                                 figures=preset.figures)
        self.committed = self.line.snapshot()  # the line's state after everything before `at`
        self.at = 0.0  # beat up to which the context is committed
        self.held: dict[int, tuple[float, int, bool]] = {}  # pitch -> (onset beat, velocity, fed yet) of keys down
        self.heard: list[tuple] = []  # (pitch, onset, duration, velocity) heard, not yet committed
        self.recent: list[tuple] = []  # heard notes, for the key estimate
        self.ours: list[tuple] = []  # our notes handed out, not yet committed
        self.released = None  # beat the last key went up (None: nothing heard since the last answer)
        self.until = 0.0  # beat up to which our notes are handed out
        self.key = None  # keys.Key, with key_auto, once estimated
        self.knobs = {"temperature": preset.temperature, "density": preset.density, "velocity": 1.0,
                      "register": 0, "figures": preset.figures}
        self.cc = {num: knob for knob, num in {**CC_DEFAULTS, **dict(preset.cc)}.items()}
        self.seeds = np.random.default_rng(seed)  # re-seeds: a take's seed follows from the first's
        self.seed = seed
        self.steered = preset  # the preset as the knobs and the key estimate change it
        self.answers = 0

    # ------------------------------------------------------------------ input

    def hear(self, beat: float, msg) -> None:
        """One incoming MIDI message (bytes) at `beat`."""
        if not msg:
            return
        kind = msg[0] & 0xF0
        if kind == CONTROL and len(msg) >= 3:
            self._knob(msg[1], msg[2])
        if self.chord_channel is not None and msg[0] & 0x0F == self.chord_channel - 1:
            if kind in (NOTE_ON, NOTE_OFF) and len(msg) >= 3:  # the chord track: held, never heard as melody
                (self.chord.add if kind == NOTE_ON and msg[2] > 0 else self.chord.discard)(msg[1])
            return
        if self.mode == "off" or kind not in (NOTE_ON, NOTE_OFF) or len(msg) < 3:
            return
        pitch, vel = msg[1], msg[2]
        if kind == NOTE_ON and vel > 0:
            if pitch in self.held:  # struck again before its release
                self._heard_note(pitch, beat)
            self.held[pitch] = (float(beat), vel, False)
            self.released = None
        elif pitch in self.held:
            self._heard_note(pitch, beat)
            if not self.held:
                self.released = float(beat)

    def _heard_note(self, pitch: int, end: float) -> None:
        onset, vel, fed = self.held.pop(pitch)
        note = (pitch, max(onset, self.at), max(end - onset, 1e-3), vel)
        if not fed:  # (a key held over a commit was fed then, as long as it had sounded)
            self.heard.append(note)
        self.recent.append(note)

    def _knob(self, cc: int, value: int) -> None:
        what = self.cc.get(cc)
        if what == "temperature":
            self.knobs["temperature"] = self.preset.temperature * 0.25 * 8 ** (value / 127)
        elif what == "density":
            self.knobs["density"] = round(-3 + 6 * value / 127, 3)
        elif what == "velocity":
            self.knobs["velocity"] = 2 ** ((value - 64) / 64)
        elif what == "register":
            self.knobs["register"] = round((value - 64) * 24 / 64)
        elif what == "figures":
            self.knobs["figures"] = round(16 * value / 127, 2)
        elif what == "mode":
            self.mode = MODES[2] if value < 43 else MODES[0] if value < 86 else MODES[1]
        elif what == "reseed" and value >= 64:
            self.seed = int(self.seeds.integers(2**31))
            self.line.reseed(self.seed)

    def cc_names(self) -> list[tuple[str, int]]:
        """(knob, CC number), in CC_DEFAULTS's order: what to print for the user."""
        return sorted(((k, n) for n, k in self.cc.items()), key=lambda kn: list(CC_DEFAULTS).index(kn[0]))

    def jump(self) -> float:
        """The song moved under us (a DAW Start, locate or Continue elsewhere): forget what was
        pending (keys down, notes handed out but not yet played, an answer owed) and go on, in
        the line's own beats, from the bar after everything so far. Returns that beat; what was
        heard and played before stays the model's context."""
        self._commit(self.at)  # (drops our notes after `at` from the line)
        self.line.restore(self.committed)
        last = max(self.at, self.until, self.line.last_onset or 0.0)
        self.held, self.heard, self.ours, self.released = {}, [], [], None
        self.at = self.until = (last // BEATS_PER_BAR + 1) * BEATS_PER_BAR
        return self.at

    # ------------------------------------------------------------------ output

    def due(self, beat: float) -> list[Note]:
        """The notes to schedule now that the player is at `beat` (often none)."""
        if self.mode == "answer":
            if self.held or self.released is None or beat < self.until:
                return []
            start = self.released + self.silence
            if beat < start - STEP:
                return []
            start = max(start, beat)
            self._commit(start)
            out = self._sample(start, start + self.bars * BEATS_PER_BAR, window=STEP)
            self.released = None
            self.answers += 1
            return out
        # accompany, off: a bar ahead; with a chord track, a beat at a time, just before it
        chunk, lead = (1.0, CHORD_LEAD) if self.chord_channel is not None else (BEATS_PER_BAR, BEATS_PER_BAR)
        if beat + lead <= self.until:
            return []
        start = max(self.until, beat)
        self._commit(beat)
        return self._sample(start, start + chunk)

    def _commit(self, beat: float) -> None:
        """Everything heard and played before `beat` into the committed state; then our notes
        handed out from there on (they will sound) into the line."""
        held = [(p, o, max(beat - o, 1e-3), v) for p, (o, v, fed) in self.held.items() if o < beat and not fed]
        heard = self.heard + held
        past = [n for n in self.ours if n[1] < beat]
        future = [n for n in self.ours if n[1] >= beat]
        self.line.restore(self.committed)
        if heard:
            self.line.hear(np.array(sorted(heard, key=lambda n: (n[1], n[0])), np.float64))
        if heard or past:
            self.line.feed(np.array(sorted(heard + past, key=lambda n: (n[1], n[0])), np.float64))
        self.committed, self.at = self.line.snapshot(), max(self.at, beat)
        self.heard = []
        self.held = {p: (o, v, fed or o < beat) for p, (o, v, fed) in self.held.items()}
        self.ours = future
        if future:
            self.line.feed(np.array(future, np.float64))
        self._steer(beat)

    def _steer(self, beat: float) -> None:
        """Knobs and the estimated key into the sampling settings."""
        self.recent = [n for n in self.recent if n[1] >= beat - self.key_bars * BEATS_PER_BAR]
        changes = {"density": self.knobs["density"]}
        if self.key_auto and len(self.recent) >= KEY_MIN_NOTES:
            r = np.array(self.recent, np.float64)
            try:
                self.key = estimate_key(r[:, 0].astype(np.int64), r[:, 2])
                changes.update(key=NOTE_NAMES[self.key.tonic], scale=self.key.mode)
            except ValueError:
                pass
        changes.update(_register(self.preset, self.knobs["register"]))
        self.steered = override(self.preset, **changes)
        self.line.bias = sampling_bias(self.steered)
        if self.chord:
            keys = np.arange(PITCH_LOW, PITCH_LOW + ev.SIZES["pitch"])
            self.line.bias[ev.SPANS["pitch"]] += np.where(np.isin(keys % 12, [p % 12 for p in self.chord]),
                                                          CHORD_BIAS, 0.0).astype(np.float32)
        self.line.temperature = self.knobs["temperature"]
        self.line.figures = self.knobs["figures"]

    def _sample(self, start: float, end: float, window: float | None = None) -> list[Note]:
        notes = self.line.sample(n=256, start=start, window=window, until=end)
        self.ours.extend(tuple(float(x) for x in n) for n in notes)
        self.until = max(self.until, end)
        v = self.knobs["velocity"]
        return [dataclasses.replace(n, velocity=min(127, max(1, round(n.velocity * v))))
                for n in shape_notes(notes, self.steered)]

    @property
    def status(self) -> str:
        key = f"  key {self.key.name}" if self.key is not None else ""
        chord = "  chord " + " ".join(NOTE_NAMES[p % 12] for p in sorted(self.chord)) if self.chord else ""
        return f"{self.mode}{key}{chord}  seed {self.seed}"


def _register(preset, shift: int) -> dict:
    """The preset's key range moved by `shift` semitones, kept on the keyboard at its width."""
    shift = min(max(shift, PITCH_LOW - preset.low), PITCH_HIGH - preset.high)
    return {"low": preset.low + shift, "high": preset.high + shift}


POLL = 0.005  # seconds: how often the listening side looks at its input and the beat clock


class ListenSource:
    """The Player's note source while it listens, in place of its Producer (get, start, close,
    queue): the Listener's notes, on the player's timeline.

    `inbox` is a MIDI input: take() -> [(time on the player's clock, message)], wait(timeout)
    (ports.ClockInput). Each message is heard at the player's beat for its time. `threaded`
    (live): a thread hears and samples (milliseconds of model per answer or bar), so the
    player's timing never waits on the model; otherwise poll() does it on the caller's thread
    (deterministic on a fake clock). With `thru`, heard channel messages are handed to the
    player to echo (echo()), and unecho() gives the note-offs for echoed notes still down.
    """

    idle = True  # nothing to play for a while is normal: the player keeps time meanwhile

    def __init__(self, listener: Listener, inbox, *, thru: bool = False, threaded: bool = True):
        self.listener, self.inbox, self.thru, self.threaded = listener, inbox, thru, threaded
        self.generator, self.preset, self.candidates = listener.line.gen, listener.preset, None
        self.queue: queue.Queue = queue.Queue()  # lists of notes, or the thread's error
        self._echo: deque = deque()
        self.echoed: dict[tuple[int, int], int] = {}  # (channel, pitch) -> echoed note-ons not yet off
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="midigan-listener", daemon=True)
        self.player = None
        # The listener's beats run on, whatever the song does: listener beat = song beat + shift
        # (a whole number of bars, so bar positions stay). A jump of the song changes the shift
        # and the generation; batches queued before it are dropped.
        self.shift, self.generation = 0.0, 0
        self._lock = threading.Lock()  # step() on the listener's thread vs restart() on the player's

    def bind(self, player) -> ListenSource:
        """The player whose clock (now, beat_at) stamps what is heard."""
        self.player = player
        return self

    def start(self) -> ListenSource:
        if self.threaded:
            self.thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self.stopped.is_set():
                self.inbox.wait(POLL)
                self.step()
        except BaseException as e:  # handed to the player, which releases and re-raises
            self.queue.put(e)

    def step(self) -> None:
        """Hear what arrived, then queue what is due now."""
        with self._lock:
            pl = self.player
            # Following a clock that is stopped (or not yet anchored by a tick): no beat to
            # stamp notes with, so only the knobs are heard, and nothing is due.
            live = pl.running and (pl.sync is None or pl.synced)
            beat_at, shift = pl.beat_at, self.shift
            for t, msg in self.inbox.take():
                if self.thru and msg and 0x80 <= msg[0] < 0xF0:
                    self._echo.append(msg)
                if live or (msg and msg[0] & 0xF0 == CONTROL):
                    self.listener.hear(beat_at(t) + shift, msg)
            if not live:
                return
            notes = self.listener.due(beat_at(pl.now()) + shift)
            if notes:
                self.queue.put((self.generation, [dataclasses.replace(n, start=n.start - shift) for n in notes]))

    def restart(self, beat: float) -> None:
        """The song is now at `beat` (a clock Start, Continue or locate): go on from there."""
        with self._lock:
            # the listener's next bar line is where the song's current bar began
            self.shift = self.listener.jump() - (beat - beat % BEATS_PER_BAR)
            self.generation += 1

    def poll(self) -> bool:
        """Whether notes wait to be fetched (without a thread: hear and sample first)."""
        if not self.threaded:
            self.step()
        return self.queue.qsize() > 0

    def get(self, timeout: float = 0.0):
        """The next list of notes, or None (never waits: the player keeps time); raises the
        thread's error."""
        if not self.threaded and self.queue.empty():
            self.step()
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return None
            if isinstance(item, (ValueError, OSError, RuntimeError)):
                raise item
            if isinstance(item, BaseException):
                raise RuntimeError(f"the listener failed: {type(item).__name__}: {item}") from item
            generation, notes = item
            if generation == self.generation:  # (older: notes for where the song was)
                return notes

    def echo(self) -> list[list[int]]:
        """The heard messages to echo now (--thru), oldest first."""
        out = []
        while self._echo:
            m = list(self._echo.popleft())
            out.append(m)
            if len(m) < 3 or m[0] & 0xE0 != 0x80:
                continue
            key = (m[0] & 0x0F, m[1])
            if m[0] & 0xF0 == NOTE_ON and m[2] > 0:
                self.echoed[key] = self.echoed.get(key, 0) + 1
            elif self.echoed.get(key):
                self.echoed[key] -= 1
        return out

    def unecho(self) -> list[list[int]]:
        """Note-offs for the echoed notes still down (at a stop), and forget them."""
        out = [[NOTE_OFF | ch, p, 0] for (ch, p), n in self.echoed.items() for _ in range(n)]
        self.echoed.clear()
        return out

    def close(self, timeout: float = 2.0) -> None:
        self.stopped.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    @property
    def status(self) -> str:
        return self.listener.status
