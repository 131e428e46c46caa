import io

import mido
import numpy as np

from midigan.arrange import Arranger, Note, Pedal, arrange, shape_pitches, to_midi_file
from midigan.presets import load_preset, make_preset


def test_scale_snap_and_range_fold():
    pr = make_preset({"key": "C", "scale": "major", "low": 48, "high": 72})
    out = shape_pitches(np.arange(21, 109), pr)
    assert set(out % 12) <= {0, 2, 4, 5, 7, 9, 11}
    assert out.min() >= 48 and out.max() <= 72
    # Pitches already in scale and range are untouched.
    assert shape_pitches([60, 62, 64], pr).tolist() == [60, 62, 64]


def test_raw_keeps_pitches_step_and_velocity():
    pr = load_preset("raw")
    pitches = [21, 60, 108, 61, 61]
    notes = arrange([pitches], pr)
    assert [n.pitch for n in notes] == pitches
    assert {n.velocity for n in notes} == {pr.velocity}
    starts = [n.start for n in notes]
    assert np.allclose(np.diff(starts), pr.step_beats)
    assert {n.duration for n in notes} == {pr.step_beats * pr.gate}


def test_rhythm_swing_and_accent():
    pr = make_preset({"step": "1/8", "rhythm": [1, 1, 2], "swing": 0.2, "accent": 10, "velocity": 60})
    notes = Arranger(pr).arrange([60] * 6)
    # steps: 0, 1, 2 (2 long), 4, 5, 6 -> beats 0, .5+swing, 1, 2, 2.5+swing, 3
    assert [round(n.start, 3) for n in notes] == [0, 0.6, 1.0, 2.0, 2.6, 3.0]
    assert [n.velocity for n in notes] == [70, 60, 70, 70, 60, 70]
    for a, b in zip(notes, notes[1:]):
        assert a.start + a.duration <= b.start + 1e-9  # never overlapping


def test_arranger_continues_across_sequences():
    pr = load_preset("piano")
    arr = Arranger(pr)
    a = arr.arrange([60] * 10)
    b = arr.arrange([62] * 10)
    assert b[0].start == a[-1].start + pr.step_beats


def test_midi_file_is_type1_with_tempo_and_paired_notes():
    pr = load_preset("ballad")
    notes = arrange([np.arange(50, 80)], pr, seed=1)
    mf = to_midi_file(notes, pr)
    buf = io.BytesIO()
    mf.save(file=buf)
    back = mido.MidiFile(file=io.BytesIO(buf.getvalue()))
    assert back.type == 1 and len(back.tracks) == 2
    tempos = [m.tempo for m in back.tracks[0] if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(pr.bpm)]
    ons = [m for m in back.tracks[1] if m.type == "note_on" and m.velocity > 0]
    offs = [m for m in back.tracks[1] if m.type == "note_off"]
    assert len(ons) == len(offs) == len(notes)
    assert {m.channel for m in ons} == {pr.channel - 1}


def test_chord_flags_strike_notes_together():
    """together[i]: note i joins the chord of the note before, and the rhythm moves per onset."""
    pr = make_preset({"step": "1/8", "rhythm": [1, 2], "velocity": 60})
    arr = Arranger(pr)
    notes = arr.arrange([48, 55, 64, 60, 67, 67, 72], [False, True, True, False, True, True, False])
    # onsets: {48, 55, 64} at beat 0 (1 step), {60, 67} at 0.5 (2 steps; the second 67 is
    # the same key again and is dropped), 72 at 1.5
    assert [(n.start, n.pitch) for n in notes] == [(0, 48), (0, 55), (0, 64), (0.5, 60), (0.5, 67), (1.5, 72)]
    assert {n.duration for n in notes[:3]} == {0.5 * pr.gate} and notes[3].duration == notes[4].duration
    # a chord continues across sequences: the first note of the next one joins the last onset
    more = arr.arrange([76, 40], [True, False])
    assert [(n.start, n.pitch) for n in more] == [(1.5, 76), (2.0, 40)]
    # no flags (or all False): one note per step, as before
    plain = Arranger(pr).arrange([48, 55, 64])
    assert [n.start for n in plain] == [0, 0.5, 1.5]
    # a flag on the very first note has nothing to join: it starts the line
    assert [n.start for n in Arranger(pr).arrange([50, 53], [True, True])] == [0, 0]


def test_sampling_bias_masks_scale_and_range_and_density_favours_short_steps():
    from midigan import events as ev
    from midigan.arrange import allowed_keys, sampling_bias

    pr = make_preset({"key": "D", "scale": "dorian", "low": 50, "high": 74, "density": 1.0})
    b = sampling_bias(pr)
    keys = b[ev.OFFSETS["pitch"]:ev.OFFSETS["pitch"] + 88]
    ok = np.flatnonzero(keys == 0) + 21
    assert ok.min() >= 50 and ok.max() <= 74 and set(ok % 12) == {2, 4, 5, 7, 9, 11, 0}
    assert np.array_equal(allowed_keys(pr)[21:109], keys == 0)
    steps = b[:ev.SIZES["step"]]
    assert steps[0] == 0 and np.all(np.diff(steps[1:]) < 0)  # chords untouched; shorter gaps favoured
    assert np.all(sampling_bias(make_preset({}))[:ev.SIZES["step"]] == 0)


def test_shape_notes_rescales_velocity_swings_and_quantises():
    from midigan.arrange import shape_notes

    notes = np.array([[60, 0.0, 0.5, 1], [62, 0.5, 0.5, 127], [64, 1.04, 0.5, 64], [67, 1.04, 0.5, 64]])
    plain = shape_notes(notes, make_preset({}))
    assert [(n.pitch, n.start, n.velocity) for n in plain] == [(60, 0, 1), (62, 0.5, 127), (64, 1.04, 64), (67, 1.04, 64)]
    pr = make_preset({"velocity_low": 40, "velocity_high": 80, "swing": 0.2, "step": "1/8", "quantise": "1/16"})
    out = shape_notes(notes, pr)
    assert [n.velocity for n in out] == [40, 80, 60, 60]
    assert [round(n.start, 3) for n in out] == [0, 0.6, 1.0, 1.0]  # the off-beat eighth swung; a chord stays one


def test_phrases_follow_the_preset_with_a_timed_model(tiny_run):
    """play/generate's notes from an event model: keys in the preset's scale and range, chords
    struck together and climbing; with timing = "preset", the preset's grid instead."""
    from midigan.arrange import phrases
    from midigan.runtime import Generator

    gen = Generator(tiny_run[1])
    pr = make_preset({"key": "A", "scale": "minor", "low": 57, "high": 81})
    stream = phrases(gen, pr, seed=2)
    notes = [n for _ in range(3) for n in next(stream)[0]]
    assert len(notes) == 3 * gen.seq_len and notes[0].start == 0
    assert all(57 <= n.pitch <= 81 and n.pitch % 12 in {9, 11, 0, 2, 4, 5, 7} for n in notes)
    assert all(a.start <= b.start for a, b in zip(notes, notes[1:]))
    fixed = next(phrases(gen, make_preset({"timing": "preset", "step": "1/16", "chords": False}), seed=2))[0]
    assert [n.start for n in fixed] == [0.25 * i for i in range(gen.seq_len)]


def test_pedal_changes_on_new_bass_notes_not_twice_in_half_a_beat():
    ped = Pedal("bass")
    notes = [Note(0, 1, 48, 80), Note(0, 1, 64, 80), Note(1, 1, 48, 80), Note(2, 1, 43, 80),
             Note(2.25, 1, 45, 80), Note(3, 1, 45, 80), Note(4, 1, 72, 80)]
    assert [ped.change(n) for n in notes] == [True, False, False, True, False, True, False]
    assert not any(Pedal("").change(n) for n in notes)


def test_a_pedalled_file_has_its_program_lifts_presses_and_ends_with_the_pedal_up():
    pr = make_preset({"pedal": "bar", "program": 5})
    notes = [Note(b, 0.5, 60 + b, 80) for b in range(9)]
    mf = to_midi_file(notes, pr)
    msgs = [m for m in mido.merge_tracks(mf.tracks) if not m.is_meta]
    assert msgs[0].type == "program_change" and msgs[0].program == 5
    pedal = [m.value for m in msgs if m.type == "control_change" and m.control == 64]
    assert pedal == [0, 127, 0, 127, 0, 127, 0]  # bars 1, 2, 3, then up at the end
    assert msgs[-1].type == "control_change" and msgs[-1].value == 0
    plain = to_midi_file(notes, make_preset({"program": -1}))
    assert not [m for m in mido.merge_tracks(plain.tracks) if m.type in ("control_change", "program_change")]



def test_a_presets_figures_and_bias_reach_the_sampler(tiny_run, monkeypatch):
    """phrases() hands the event model's sampler the preset's figure memory and masks (what
    they do to the notes: tests/test_runtime.py)."""
    from midigan.arrange import phrases, sampling_bias
    from midigan.runtime import Generator

    gen, seen = Generator(tiny_run[1]), {}
    real = gen.stream

    def stream(**kw):
        seen.update(kw)
        return real(**kw)
    monkeypatch.setattr(gen, "stream", stream)
    pr = make_preset({"figures": 8.0, "scale": "major"})
    next(phrases(gen, pr, seed=1))
    assert seen["figures"] == 8.0 and np.array_equal(seen["bias"], sampling_bias(pr))
