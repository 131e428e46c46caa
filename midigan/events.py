"""The note-event encoding: timed notes <-> the four class indices a model samples per note.

Each note is one event of four attributes, sampled in this order (ATTRS):

- ``step``: grid steps (1/24 beat) from the previous onset to this one, 0..96;
  0 means "struck with the note before" (a chord is written low to high).
  Longer rests are clipped to one bar (4 beats).
- ``pitch``: the piano key, 0..87.
- ``duration``: one of DURATION_CLASSES log-spaced lengths, 1/24 beat to 16 beats; a class
  decodes to the median length of the training notes in it (``duration_values``).
- ``velocity``: one of VELOCITY_CLASSES bins of VELOCITY_BIN MIDI velocities; decoded with a
  random generator, a velocity is drawn across its bin, or kept from the note before when
  both are in one class, as often as the training notes keep it (``to_notes``).

A model's ONNX metadata carries these tables (``tables()``), so the runtime decodes
what the model was trained on and refuses a file whose tables it cannot read.
"""
from __future__ import annotations

import numpy as np

from .music import BEATS_PER_BAR, GRID_STEPS_PER_BEAT, N_PITCHES, PITCH_LOW

ATTRS = ("step", "pitch", "duration", "velocity")
MAX_STEP = 4 * GRID_STEPS_PER_BEAT  # a bar of 4/4: longer rests are clipped to it
BAR_STEPS = BEATS_PER_BAR * GRID_STEPS_PER_BEAT  # the model is told each onset's place in a 4-beat bar
DURATION_CLASSES = 32
DURATION_MAX_STEPS = 16 * GRID_STEPS_PER_BEAT
VELOCITY_CLASSES = 32
VELOCITY_BIN = 4  # MIDI velocities per class
SIZES = {"step": MAX_STEP + 1, "pitch": N_PITCHES, "duration": DURATION_CLASSES,
         "velocity": VELOCITY_CLASSES}
START = {a: n for a, n in SIZES.items()}  # each attribute's 'no previous note' index: one past its classes
OFFSETS = dict(zip(ATTRS, np.cumsum([0] + [SIZES[a] for a in ATTRS])[:-1].tolist()))
WIDTH = sum(SIZES.values())  # the attributes' logits side by side, in ATTRS order
SPANS = {a: slice(OFFSETS[a], OFFSETS[a] + SIZES[a]) for a in ATTRS}  # each attribute's part of those


def duration_edges() -> np.ndarray:
    """Class boundaries in grid steps (DURATION_CLASSES - 1 of them), geometric: ~20 % apart."""
    return np.geomspace(1, DURATION_MAX_STEPS, DURATION_CLASSES + 1)[1:-1]


def duration_values(durations=None) -> np.ndarray:
    """Each duration class's length in beats: the median of `durations` (beats, the training
    notes') that fall in it, else the geometric middle of its bounds.

    Why the median: a class is 20 % wide, and written lengths sit at exact values (a note
    held to the next onset). The class holding a beat has its middle at 1.079 beats, the one
    holding an eighth at 0.513: decoded that way, half of all notes overlap the next onset,
    where a quarter do in the music (bench/encoding.py)."""
    b = np.geomspace(1, DURATION_MAX_STEPS, DURATION_CLASSES + 1)
    out = np.sqrt(b[:-1] * b[1:]) / GRID_STEPS_PER_BEAT
    if durations is not None:
        d = np.asarray(durations, np.float64).reshape(-1)
        cls = np.searchsorted(duration_edges(), d * GRID_STEPS_PER_BEAT)
        for k in np.unique(cls):
            out[k] = np.median(d[cls == k])
    return out


def velocity_values() -> np.ndarray:
    """Each velocity class's MIDI velocity: the middle of its bin."""
    return np.clip(np.arange(VELOCITY_CLASSES) * VELOCITY_BIN + VELOCITY_BIN // 2, 1, 127)


def velocity_stay(notes) -> list[float]:
    """How often a note repeats the exact velocity of the note before it when both fall in one
    velocity class: [at the next onset, within a chord], over `notes` (each with pitches,
    starts, durations and velocities, as corpus.Notes), in the encoding's order.

    Why: the music keeps a velocity (0.53 of the time to the next onset, 0.88 within a chord,
    piano-midi.de's training pieces); a draw across the bin for every note keeps it 0.25 of
    the time and scatters a chord's velocities."""
    same = np.zeros((2, 2), np.int64)  # [next onset, chord] x [pairs in one class, of them equal]
    for n in notes:
        _, q, _, v = quantise(n.pitches, n.starts, n.durations, n.velocities)
        one = np.diff(v // VELOCITY_BIN) == 0
        equal, chord = np.diff(v) == 0, np.diff(q) == 0
        for i, where in enumerate((one & ~chord, one & chord)):
            same[i] += where.sum(), (where & equal).sum()
    return [round(float(e / max(n, 1)), 4) for n, e in same]


def tables(notes=None) -> dict[str, list]:
    """What decodes each attribute, as the ONNX metadata stores it, from the training `notes`
    (as velocity_stay takes them): duration medians (duration_values) and velocity_stay.
    Without notes: class middles, and no velocity kept."""
    durations = None if notes is None else np.concatenate([n.durations for n in notes] or [np.zeros(0)])
    return {"steps_per_beat": GRID_STEPS_PER_BEAT, "step_classes": SIZES["step"], "bar_steps": BAR_STEPS,
            "duration_beats": [round(float(v), 6) for v in duration_values(durations)],
            "velocity_values": [int(v) for v in velocity_values()],
            "velocity_stay": [0.0, 0.0] if notes is None else velocity_stay(notes)}


def quantise(pitches, starts, durations, velocities):
    """Notes onto the grid: onsets rounded to 1/24 beat, then re-sorted (onset, pitch) so
    a chord reads low to high; a key struck twice at one grid onset is kept once."""
    q = np.rint(np.asarray(starts, np.float64) * GRID_STEPS_PER_BEAT).astype(np.int64)
    p = np.asarray(pitches, np.int64)
    order = np.lexsort((p, q))
    q, p = q[order], p[order]
    keep = np.r_[True, (np.diff(q) != 0) | (np.diff(p) != 0)]
    idx = order[keep]
    return p[keep], q[keep], np.asarray(durations, np.float64)[idx], np.asarray(velocities, np.int64)[idx]


def encode(pitches, starts, durations, velocities) -> tuple[np.ndarray, np.ndarray]:
    """Timed notes (starts and durations in beats) -> (events int64 [n, 4] in ATTRS order,
    grid position of each onset in the bar [n]). The first step counts from its bar's start."""
    p, q, d, v = quantise(pitches, starts, durations, velocities)
    step = np.minimum(np.diff(q, prepend=q[:1] - q[:1] % BAR_STEPS), MAX_STEP)
    dur = np.searchsorted(duration_edges(), d * GRID_STEPS_PER_BEAT)
    vel = np.clip(v // VELOCITY_BIN, 0, VELOCITY_CLASSES - 1)
    events = np.stack([step, p - PITCH_LOW, dur, vel], axis=1).astype(np.int64)
    return events, q % BAR_STEPS


def to_notes(events, grid, table: dict | None = None, rng=None) -> np.ndarray:
    """Events [..., 4] at grid positions [...] (steps from a stream's start) -> float64 [..., 4]:
    MIDI pitch, onset in beats, duration in beats, velocity. `table`: a model's tables()
    (default: this module's). With `rng` (a numpy Generator), each velocity is drawn
    uniformly across its class's bin (its value - 2 ... + 1), not its middle; a note in the
    same class as the one before it (along the last events axis) keeps that one's velocity
    with the table's velocity_stay odds (an older table without them: never).

    Why draw: real velocities move by 1 or 2 from note to note; decoded to bin middles they
    all sit 2 above a multiple of 4 and move in steps of 4 or not at all. Real pieces passed
    through the encoding that way are told from the same pieces at 0.86 on dynamics alone
    (evaluate's feature test; drawn across the bin: 0.62; drawn and kept: bench/encoding.py)."""
    t = table or tables()
    e = np.asarray(events, np.int64)
    out = np.empty(e.shape, np.float64)
    out[..., 0] = e[..., 1] + PITCH_LOW
    out[..., 1] = np.asarray(grid) / t["steps_per_beat"]
    out[..., 2] = np.asarray(t["duration_beats"])[e[..., 2]]
    out[..., 3] = np.asarray(t["velocity_values"])[e[..., 3]]
    if rng is not None:
        draw = rng.integers(-(VELOCITY_BIN // 2), VELOCITY_BIN - VELOCITY_BIN // 2, size=e.shape[:-1])
        out[..., 3] = _keep(np.clip(out[..., 3] + draw, 1, 127), e[..., 3], np.asarray(grid),
                            t.get("velocity_stay", [0.0, 0.0]), rng)
    return out


def _keep(vel, cls, grid, stay, rng) -> np.ndarray:
    """vel [..., n] with some notes given the velocity of the note before them: each note in the
    class of the one before it, with odds stay[1] at the same grid position, else stay[0]."""
    if vel.shape[-1] < 2 or not any(stay):
        return vel
    grid = np.broadcast_to(grid, vel.shape)
    odds = np.where(grid[..., 1:] == grid[..., :-1], stay[1], stay[0])
    kept = (cls[..., 1:] == cls[..., :-1]) & (rng.random(odds.shape) < odds)
    fresh = np.concatenate([np.ones(vel.shape[:-1] + (1,), bool), ~kept], axis=-1)
    src = np.maximum.accumulate(np.where(fresh, np.arange(vel.shape[-1]), 0), axis=-1)
    return np.take_along_axis(vel, src, axis=-1)


def decode(events, start: float = 0.0, table: dict | None = None):
    """Events [n, 4] -> (MIDI pitches, onsets in beats from `start`, durations in beats, velocities);
    the first event's step counts from `start`."""
    e = np.asarray(events, np.int64).reshape(-1, 4)
    notes = to_notes(e, np.cumsum(e[:, 0]), table)
    return (notes[:, 0].astype(np.int64), start + notes[:, 1], notes[:, 2], notes[:, 3].astype(np.int64))
