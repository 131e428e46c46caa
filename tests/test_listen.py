"""Play along (midigan/listen.py): answer, accompany, knobs and --key auto, on beats, no ports."""
import numpy as np
import pytest

from midigan.listen import Listener
from midigan.presets import load_preset, override
from midigan.runtime import Generator


def play(listener, notes, step=0.125):
    """Feed (pitch, onset, duration) notes as note-on/off messages, asking `due` every `step`
    beats as a player would; returns every (asked at beat, notes handed out)."""
    events = sorted([(o, 1, (0x90, p, 90)) for p, o, d in notes] + [(o + d, 0, (0x80, p, 0)) for p, o, d in notes])
    out, i, beat = [], 0, 0.0
    end = max(o + d for _, o, d in notes) + 40
    while beat < end:
        while i < len(events) and events[i][0] <= beat:
            listener.hear(events[i][0], events[i][2])
            i += 1
        got = listener.due(beat)
        if got:
            out.append((beat, got))
        beat = round(beat + step, 9)
    return out


CALL = [(60 + [0, 4, 7, 12, 7, 4, 0, 2][i], i * 0.5, 0.45) for i in range(8)]  # 1 bar, ends at 3.95


@pytest.fixture
def gen(tiny_run):
    return Generator(tiny_run[1])


def test_answer_starts_at_the_silence_threshold_and_listens_again(gen):
    lis = Listener(gen, load_preset("piano"), mode="answer", seed=1, silence=2.0, bars=2)
    call2 = [(p, o + 20, d) for p, o, d in CALL]
    got = play(lis, CALL + call2)
    assert len(got) == 2 and lis.answers == 2  # one answer per call, none while nobody plays
    threshold = CALL[-1][1] + CALL[-1][2] + 2.0
    first = got[0][1]
    assert threshold <= first[0].start < threshold + 0.25  # within one step of the threshold
    assert got[0][0] >= threshold - 0.25 - 1e-9  # handed out no earlier than a step before it
    assert max(n.start for n in first) < threshold + 8  # two bars
    second = got[1][1]
    t2 = call2[-1][1] + call2[-1][2] + 2.0
    assert t2 <= second[0].start < t2 + 0.25


def test_an_answer_waits_while_a_key_is_held(gen):
    lis = Listener(gen, load_preset("piano"), mode="answer", seed=1, silence=1.0)
    got = play(lis, [(60, 0, 0.5), (48, 0, 9.0)])
    assert got and got[0][1][0].start >= 10.0


def test_priming_from_what_was_heard_changes_the_answer(gen):
    a = Listener(gen, load_preset("piano"), mode="answer", seed=1)
    b = Listener(gen, load_preset("piano"), mode="answer", seed=1)
    other = [(p + 5, o, d) for p, o, d in CALL]
    play(a, CALL), play(b, other)
    # the call reached the model: the state the answer was sampled from differs with it, and so
    # does the noise the encoder read in it (the tiny model is latent)
    (ha, _, _, grid_a, _, past_a), za, heard_a = a.committed
    (hb, _, _, grid_b, _, _), zb, _ = b.committed
    assert not np.allclose(ha, hb, atol=1e-4) and not np.allclose(za, zb, atol=1e-4)
    assert grid_a == grid_b == round((CALL[-1][1]) * 24)  # its last onset, in grid steps
    assert np.allclose(heard_a[:, :3], CALL)  # what the encoder read: the call, not the answer
    assert past_a[0, -len(CALL):, 1].tolist() == [p - 21 for p, _, _ in CALL]  # the figure memory's too


def test_accompany_keeps_a_bar_ahead_and_hears_the_player(gen):
    lis = Listener(gen, load_preset("piano"), mode="accompany", seed=2)
    got = play(lis, CALL + [(p, o + 8, d) for p, o, d in CALL])
    starts = [n.start for _, notes in got for n in notes]
    assert (np.diff(starts) >= 0).all()
    for beat, notes in got:  # each batch is the next bar, handed out before it starts
        assert all(n.start >= beat for n in notes)
    assert max(starts) > 40 and len(got) >= 10
    assert not lis.heard  # what was heard went into the context


def test_knobs_take_effect_at_the_next_note(gen):
    lis = Listener(gen, load_preset("piano"), mode="accompany", seed=3)
    lis.hear(0, (0xB0, 74, 127))  # density up: busier
    lis.hear(0, (0xB0, 1, 0))  # temperature down
    busy = sum(len(lis.due(b)) for b in range(0, 64, 4))
    assert lis.knobs["density"] == 3 and lis.knobs["temperature"] == pytest.approx(0.25)
    sparse_lis = Listener(gen, load_preset("piano"), mode="accompany", seed=3)
    sparse_lis.hear(0, (0xB0, 74, 0))
    sparse = sum(len(sparse_lis.due(b)) for b in range(0, 64, 4))
    assert busy > sparse
    assert lis.line.figures == load_preset("piano").figures
    lis.hear(64, (0xB0, 17, 127))  # figures up: the line comes back to its figures at full strength
    lis.due(64)
    assert lis.knobs["figures"] == 16 and lis.line.figures == 16
    lis.hear(0, (0xB0, 20, 0))
    assert lis.mode == "off"
    lis.hear(0, (0xB0, 20, 64))
    assert lis.mode == "answer"


def test_velocity_and_register_knobs_steer_the_next_notes(gen):
    def bar_notes(*ccs):
        lis = Listener(gen, override(load_preset("piano"), low=48, high=72), mode="accompany", seed=5)
        for cc, v in ccs:
            lis.hear(0, (0xB0, cc, v))
        return [n for b in range(0, 32, 4) for n in lis.due(b)]
    plain, loud, high = bar_notes(), bar_notes((71, 127)), bar_notes((16, 127))
    assert np.mean([n.velocity for n in loud]) > 1.3 * np.mean([n.velocity for n in plain])
    assert 48 <= min(n.pitch for n in plain) and max(n.pitch for n in plain) <= 72
    assert 72 <= min(n.pitch for n in high) and max(n.pitch for n in high) <= 96  # two octaves up
    assert np.mean([n.pitch for n in high]) > np.mean([n.pitch for n in plain]) + 6


def test_a_presets_cc_table_moves_a_knob_and_reseed_starts_a_new_take(gen):
    pr = override(load_preset("piano"), cc={"density": 30})
    lis = Listener(gen, pr, mode="accompany", seed=6)
    lis.hear(0, (0xB0, 74, 127))  # the default density CC: now nothing
    assert lis.knobs["density"] == pr.density
    lis.hear(0, (0xB0, 30, 127))
    assert lis.knobs["density"] == 3

    def take(reseed):
        lis = Listener(gen, load_preset("piano"), mode="accompany", seed=6)
        first = lis.due(0)
        if reseed:
            lis.hear(3.9, (0xB0, 21, 127))
        return first, lis.due(4), lis.status
    a, b = take(False), take(True)
    assert a[0] == b[0] and a[1] != b[1]  # the same take until the press, another after it
    assert "seed 6" in a[2] and "seed 6" not in b[2]


def test_a_held_chord_on_the_chord_channel_favours_its_tones_and_is_not_heard(gen):
    def accompany(chord, seed):
        lis = Listener(gen, load_preset("piano"), mode="accompany", seed=seed, chord_channel=16)
        for p in chord:
            lis.hear(0, (0x9F, p, 90))  # channel 16
        notes = [n for b in np.arange(0, 32, 0.125) for n in lis.due(b)]
        assert not lis.heard and not lis.held  # the chord is not melody
        return notes, lis

    def triad_share(chord):
        notes = [n for seed in range(4) for n in accompany(chord, seed)[0]]
        return np.mean([n.pitch % 12 in (0, 4, 7) for n in notes])
    held, free = triad_share([48, 52, 55]), triad_share([])
    assert held > free + 0.2, (held, free)
    notes, lis = accompany([48, 52, 55], 0)
    assert "chord C E G" in lis.status
    assert max(n.start for n in notes) < 33  # a beat at a time, handed out an eighth before it
    for p in (48, 52, 55):
        lis.hear(32, (0x8F, p, 0))
    assert not lis.chord and "chord" not in lis.status


def test_key_auto_keeps_the_answer_in_the_heard_key(gen):
    lis = Listener(gen, load_preset("piano"), mode="answer", seed=4, key_auto=True)
    d_major = [62, 64, 66, 67, 69, 71, 73, 74, 73, 71, 69, 67, 66, 64, 62, 62]
    got = play(lis, [(p, i * 0.5, 0.45) for i, p in enumerate(d_major)])
    assert lis.key is not None and lis.key.name == "D major" and "D major" in lis.status
    pcs = {n.pitch % 12 for n in got[0][1]}
    assert pcs <= {2, 4, 6, 7, 9, 11, 1}


def test_bad_settings(gen):
    with pytest.raises(ValueError, match="listen mode"):
        Listener(gen, load_preset("piano"), mode="loud")
    with pytest.raises(ValueError, match="silence"):
        Listener(gen, load_preset("piano"), silence=0)
