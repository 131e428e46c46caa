"""Model output + preset -> timed notes -> a MIDI file.

An event model (the default) times its own notes; the preset steers it: key, scale and
range as masks on the keys it may sample, density as a bias on its onset steps (both
`sampling_bias`, applied at sampling), then velocity range, swing and an optional
quantise applied to the notes (`shape_notes`). The paper's sequence model makes only
pitches; for it (or with `timing = "preset"`) the preset's step, rhythm, gate and
velocity time them (`Arranger`).
Times here are in beats (quarter notes), so the same notes serve an offline file
at a fixed tempo and a live player that follows a DAW's changing clock.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import events as ev
from .music import BEATS_PER_BAR, FILE_TICKS_PER_BEAT, GRID_STEPS_PER_BEAT, PITCH_LOW, SCALES
from .ports import SUSTAIN
from .presets import Preset


@dataclass(frozen=True)
class Note:
    start: float  # beats from the start
    duration: float  # beats
    pitch: int
    velocity: int


def _snap_table(key_pc: int, scale: str) -> np.ndarray:
    """128-entry table: each MIDI pitch -> the nearest pitch in the scale (ties go down)."""
    allowed = np.zeros(128, dtype=bool)
    for iv in SCALES[scale]:
        allowed[(key_pc + iv) % 12::12] = True
    table = np.arange(128)
    for p in range(128):
        for d in (0, -1, 1, -2, 2, -3, 3):
            if 0 <= p + d < 128 and allowed[p + d]:
                table[p] = p + d
                break
    return table


def allowed_keys(preset: Preset) -> np.ndarray:
    """[128] bool: the MIDI keys the preset's scale and range allow."""
    ok = np.zeros(128, bool)
    ok[preset.low:preset.high + 1] = True
    if preset.scale != "chromatic":
        in_scale = np.zeros(12, bool)
        in_scale[[(preset.key_pc + iv) % 12 for iv in SCALES[preset.scale]]] = True
        ok &= in_scale[np.arange(128) % 12]
    return ok


def sampling_bias(preset: Preset) -> np.ndarray:
    """[events.WIDTH] logits an event model adds at sampling: the keys outside the preset's
    scale and range forbidden, and `density` favouring shorter (> 0) or longer (< 0) steps
    between onsets (chords untouched)."""
    from .runtime import NEG

    b = np.zeros(ev.WIDTH, np.float32)
    b[ev.SPANS["pitch"]] = np.where(allowed_keys(preset)[PITCH_LOW:PITCH_LOW + ev.SIZES["pitch"]], 0.0, NEG)
    steps = np.arange(1, ev.SIZES["step"])
    b[ev.SPANS["step"]][1:] = -preset.density * np.log(steps / GRID_STEPS_PER_BEAT)
    return b


def shape_notes(notes: np.ndarray, preset: Preset) -> list[Note]:
    """An event model's notes [n, 4] (pitch, onset, duration, velocity) with the preset's
    velocity range, swing and quantise applied."""
    pitch, start, dur, vel = (notes[:, i] for i in range(4))
    if preset.quantise:
        q = preset.quantise_beats
        start = np.round(start / q) * q
    if preset.swing:
        sb = preset.step_beats
        k = np.round(start / sb)
        off = (np.abs(start - k * sb) < 1e-6) & (k % 2 == 1)  # the off-beat step of each pair
        start = start + off * preset.swing * sb
    lo, hi = preset.velocity_low, preset.velocity_high
    vel = np.clip(np.rint(lo + (vel - 1) * (hi - lo) / 126), 1, 127)
    return [Note(float(s), float(d), int(p), int(v)) for p, s, d, v in zip(pitch, start, dur, vel)]


def phrases(generator, preset: Preset, seed: int = 0, count: int = 1, candidates: int | None = None,
            critic_temperature: float | None = None, prime=None, start_at: float | None = None):
    """Yield, phrase after phrase, `count` lists of Notes (one per independent line): what
    `play` sends and `generate` writes. Each phrase continues the last. `candidates`: how many
    phrases an event model's critic chooses among (None: the model's recommendation). `prime`,
    `start_at`: notes the model continues, and the beat its first note may come (runtime's
    Generator.stream; an event model only)."""
    timed = generator.timed and preset.timing == "model"
    extra = ({"bias": sampling_bias(preset), "candidates": candidates, "critic_temperature": critic_temperature,
              "figures": preset.figures} if generator.timed else {})
    if prime is not None or start_at is not None:
        extra.update(prime=prime, start_at=start_at)
    stream = generator.stream(seed=seed, count=count, noise_scale=preset.noise_scale,
                              temperature=preset.temperature, morph=preset.morph, **extra)
    arrangers = [Arranger(preset, seed + i) for i in range(count)]
    for out in stream:
        if timed:
            yield [shape_notes(line, preset) for line in out]
        elif generator.timed:  # the model's keys and chords, the preset's rhythm
            yield [a.arrange(line[:, 0].astype(np.int64), np.r_[False, np.diff(line[:, 1]) == 0]
                             if preset.chords else None) for a, line in zip(arrangers, out)]
        else:
            yield [a.arrange(line) for a, line in zip(arrangers, out)]


def take_until(stream, end: float) -> list[Note]:
    """The first line of `phrases(...)` up to beat `end`: phrases are taken until one reaches
    it; notes starting at or after it are dropped and those held over it cut there, so a clip
    of whole bars loops cleanly."""
    out: list[Note] = []
    while True:
        line = next(stream)[0]
        out += [Note(n.start, min(n.duration, end - n.start), n.pitch, n.velocity) for n in line if n.start < end]
        if not line or max(n.start for n in line) >= end:
            return out


def shape_pitches(pitches, preset: Preset) -> np.ndarray:
    """Snap pitches into the preset's key and scale, then fold octaves into its range."""
    p = np.asarray(pitches, dtype=np.int64)
    if preset.scale != "chromatic":
        p = _snap_table(preset.key_pc, preset.scale)[p]
    # Octave folding keeps the pitch class, so a snapped note stays in the scale.
    low, high = preset.low, preset.high
    p = np.where(p < low, p + 12 * ((low - p + 11) // 12), p)
    p = np.where(p > high, p - 12 * ((p - high + 11) // 12), p)
    return p


class Arranger:
    """Turns successive pitch sequences into notes on one continuous step grid."""

    def __init__(self, preset: Preset, seed: int = 0):
        self.preset = preset
        self.rng = np.random.default_rng(seed)
        self.step = 0  # grid position (in steps) where the next note starts
        self.count = 0  # onsets arranged so far (drives the rhythm cycle)
        self.chord: list[Note] = []  # the notes struck at the last onset

    def arrange(self, pitches, together=None) -> list[Note]:
        """Notes for one pitch sequence. `together[i]` (optional): note i sounds with the
        note before it, as one chord, instead of taking the next step of the rhythm."""
        pr = self.preset
        sb = pr.step_beats
        out = []
        shaped = shape_pitches(pitches, pr)
        jitter = (self.rng.integers(-pr.humanize, pr.humanize + 1, size=len(shaped))
                  if pr.humanize else np.zeros(len(shaped), dtype=np.int64))
        for i, p in enumerate(shaped):
            if together is not None and together[i] and self.chord:
                first = self.chord[0]
                if all(n.pitch != p for n in self.chord):  # a key folded onto one already down: skip it
                    vel = first.velocity + int(jitter[i]) // 2  # the chord's dynamic, a little spread
                    note = Note(first.start, first.duration, int(p), int(min(127, max(1, vel))))
                    self.chord.append(note)
                    out.append(note)
                continue
            slots = pr.rhythm[self.count % len(pr.rhythm)]
            start = self.step * sb
            if self.step % 2 == 1:  # swing delays the off-beat step
                start += pr.swing * sb
            length = slots * sb - (pr.swing * sb if self.step % 2 == 1 else 0.0)
            vel = pr.velocity + int(jitter[i])
            if pr.accent and abs(start - round(start)) < 1e-9:  # on a beat
                vel += pr.accent
            note = Note(start, length * pr.gate, int(p), int(min(127, max(1, vel))))
            self.chord = [note]
            out.append(note)
            self.step += slots
            self.count += 1
        return out


def arrange(sequences, preset: Preset, seed: int = 0) -> list[Note]:
    """Arrange one or more pitch sequences, one after another, into notes."""
    arr = Arranger(preset, seed)
    notes = []
    for seq in sequences:
        notes.extend(arr.arrange(seq))
    return notes


def notes_array(notes: list[Note]) -> np.ndarray:
    """(n, 4) float64 array of pitch, onset beats, duration beats, velocity: onset order,
    a chord low to high (the corpus's order)."""
    a = np.array([(n.pitch, n.start, n.duration, n.velocity) for n in notes], np.float64).reshape(-1, 4)
    return a[np.lexsort((a[:, 0], a[:, 1]))]


PEDAL_LAG = 0.125  # beats: the pedal goes down this long after the note that changes it
BASS_BELOW = 60  # "bass": a new note under middle C with another pitch class re-pedals


class Pedal:
    """Where a pianist changes the sustain pedal (legato pedalling): lift as the new bar
    ("bar") or the new bass note ("bass") is struck, press again PEDAL_LAG beats after, so
    the old harmony stops and the new one is held. `change(note)`, note by note in onset
    order: True when the pedal changes at this note."""

    def __init__(self, mode: str):
        self.mode, self.last, self.bass = mode, None, None

    def change(self, n: Note) -> bool:
        if self.mode == "bar":
            bar = int(n.start // BEATS_PER_BAR + 1e-9)
            if bar == self.last:
                return False
            self.last = bar
            return True
        if self.mode == "bass" and n.pitch < BASS_BELOW and n.pitch % 12 != self.bass:
            if self.last is not None and n.start - self.last < 0.5:  # not twice within half a beat
                return False
            self.last, self.bass = n.start, n.pitch % 12
            return True
        return False


def to_midi_file(notes: list[Note], preset: Preset, *, title: str = "midigan"):
    """A type-1 MIDI file: a tempo track and one piano track on the preset's channel."""
    import mido

    ch = preset.channel - 1
    meta = mido.MidiTrack([
        mido.MetaMessage("track_name", name=title, time=0),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(preset.bpm), time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
    ])
    events = []  # (tick, order, message); note-offs sort before note-ons at one tick, the pedal's lift first
    pedal, last = Pedal(preset.pedal), 0
    for n in sorted(notes, key=lambda n: (n.start, n.pitch)):
        on = round(n.start * FILE_TICKS_PER_BEAT)
        off = max(on + 1, round((n.start + n.duration) * FILE_TICKS_PER_BEAT))
        if pedal.change(n):
            events.append((on, -1, 0, mido.Message("control_change", channel=ch, control=SUSTAIN, value=0)))
            down = on + round(PEDAL_LAG * FILE_TICKS_PER_BEAT)
            events.append((down, 2, 0, mido.Message("control_change", channel=ch, control=SUSTAIN, value=127)))
        events.append((on, 1, n.pitch, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity)))
        events.append((off, 0, n.pitch, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
        last = max(last, off)
    if preset.pedal and notes:
        events.append((last, 3, 0, mido.Message("control_change", channel=ch, control=SUSTAIN, value=0)))
    events.sort(key=lambda e: e[:3])
    piano = mido.MidiTrack([mido.MetaMessage("track_name", name="piano", time=0)])
    if preset.program >= 0:
        piano.append(mido.Message("program_change", channel=ch, program=preset.program, time=0))
    last = 0
    for tick, _o, _p, msg in events:
        piano.append(msg.copy(time=tick - last))
        last = tick
    mf = mido.MidiFile(type=1, ticks_per_beat=FILE_TICKS_PER_BEAT)
    mf.tracks.extend([meta, piano])
    return mf
