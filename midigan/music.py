"""Facts of music and MIDI that every step shares, defined once.

The piano's range, note names and scales; the beat grids (the model's onset grid, a
MIDI file's ticks, MIDI clock's pulses: three different numbers with three names).
"""
from __future__ import annotations

PITCH_LOW = 21  # A0, the piano's lowest key
PITCH_HIGH = 108  # C8, the highest
N_PITCHES = PITCH_HIGH - PITCH_LOW + 1  # 88
MIDDLE_C = 60

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# Scale intervals in semitones above the key.
SCALES = {
    "chromatic": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic-minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor-pentatonic": (0, 3, 5, 7, 10),
    "whole-tone": (0, 2, 4, 6, 8, 10),
}

BEATS_PER_BAR = 4  # every grid here is 4/4: the arranger's, the model's bar positions, the player's bars
GRID_STEPS_PER_BEAT = 24  # the onset grid: 1/24 beat holds sixteenths, triplets and thirty-seconds
FILE_TICKS_PER_BEAT = 480  # resolution of the MIDI files midigan writes
CLOCK_PULSES_PER_BEAT = 24  # MIDI clock: 24 pulses per quarter note (the MIDI standard)
