"""`play --listen`: the Player playing a Listener (listen.ListenSource) on a fake clock, with a
scripted MIDI input and an in-memory output; no sound device."""
import pytest
from click.testing import CliRunner

from midigan.cli import main
from midigan.listen import STEP, Listener, ListenSource
from midigan.player import Player
from midigan.ports import MemoryPort
from midigan.runtime import Generator
from tests.test_player import T0, Clock, assert_released, preset

BEAT = 0.5  # seconds, at the preset's 120 BPM
CALL = [(60 + [0, 4, 7, 12, 7, 4, 0, 2][i], 1 + i * 0.5, 0.45) for i in range(8)]  # beats 1..4.95
THRESHOLD = CALL[-1][1] + CALL[-1][2] + 2.0  # the last key up + 2 beats of silence


class Inbox:
    """A MIDI input fed from a script of (beat, message), stamped on the fake clock."""

    def __init__(self, clock, script):
        self.clock = clock
        self.script = sorted(((T0 + b * BEAT, tuple(m)) for b, m in script), key=lambda e: e[0])

    def take(self):
        out = [e for e in self.script if e[0] <= self.clock.t]
        self.script = self.script[len(out):]
        return out

    def wait(self, timeout):
        raise AssertionError("no thread here")


def notes_to_script(notes, channel=0):
    return ([(o, (0x90 | channel, p, 90)) for p, o, _d in notes]
            + [(o + d, (0x80 | channel, p, 0)) for p, o, d in notes])


@pytest.fixture(scope="module")
def gen(tiny_run):
    return Generator(tiny_run[1])


def make(gen, script, mode="answer", thru=False, **kw):
    clock = Clock()
    port = MemoryPort(now=clock.now)
    pr = preset()
    lis = Listener(gen, pr, mode=mode, seed=1, silence=2.0, bars=2)
    src = ListenSource(lis, Inbox(clock, script), thru=thru, threaded=False)
    lines = []
    p = Player(port, gen, pr, now=clock.now, sleep=clock.sleep, spin=0, source=src, status=lines.append, **kw)
    return p, port, clock, lines


def note_ons(port, channel=0):
    return [(round((t - T0) / BEAT, 6), m[1]) for t, m in port.messages if m[0] == 0x90 | channel and m[2] > 0]


def test_answer_starts_within_a_step_of_the_silence_threshold_and_nothing_is_echoed(gen):
    p, port, _clock, lines = make(gen, notes_to_script(CALL), bars=4)
    assert p.run() == "bars"
    ons = note_ons(port)
    assert ons, "no answer"
    # nothing before the answer but the program: the call was heard, not echoed
    assert port.messages[0] == (T0, (0xC0, 0))
    first = min(t for t, _m in port.messages[1:])
    assert first == pytest.approx(T0 + ons[0][0] * BEAT)
    assert THRESHOLD - 1e-6 <= ons[0][0] < THRESHOLD + STEP
    assert not {m[1] for _t, m in port.messages if m[0] & 0xF0 in (0x90, 0x80)} - {n for _b, n in ons}
    assert_released(port)
    assert any("answer" in line for line in lines)  # the mode in the status line


def test_thru_echoes_what_is_heard_and_releases_a_key_held_at_the_stop(gen):
    held = [(0x91, 50, 70)]  # a key still down when the player stops
    script = notes_to_script(CALL, channel=1) + [(5.5, held[0])]
    p, port, _clock, _lines = make(gen, script, thru=True, bars=3)
    assert p.run() == "bars"
    echoed = [(t, m) for t, m in port.messages if m[0] & 0x0F == 1]
    sent = sorted(script)
    assert [m for _t, m in echoed[:len(sent)]] == [m for _b, m in sent]  # in order, unchanged
    for (t, _m), (b, _m2) in zip(echoed, sent):  # within one poll of arriving
        assert T0 + b * BEAT - 1e-9 <= t <= T0 + b * BEAT + 0.005 + 1e-9
    assert echoed[len(sent):] == [(T0 + 6.0, (0x81, 50, 0))]  # released at the end (3 bars = 6 s)
    assert port.messages[-1][1] == (0xB0, 123, 0)
    assert_released(port)  # our own answer, on channel 1 (0)


def test_cc20_switches_the_mode_while_playing(gen):
    script = [(4.0, (0xB0, 20, 127)), (12.0, (0xB0, 20, 64))]  # accompany from beat 4, answer from 12
    p, port, _clock, lines = make(gen, script, bars=8)
    assert p.run() == "bars"
    starts = [b for b, _n in note_ons(port)]
    assert starts and min(starts) >= 4.0  # silent while answering nobody
    assert max(starts) < 12.0 + 2 * 4  # accompany hands out at most two bars ahead; then it waits
    assert any("accompany" in line for line in lines) and p.producer.listener.mode == "answer"
    assert_released(port)


def test_a_stop_mid_answer_releases_every_note(gen):
    p, port, _clock, _lines = make(gen, notes_to_script(CALL), bars=4)
    p.run()
    first = note_ons(port)[0][0]
    stop_at = T0 + first * BEAT + 0.01  # just after the answer's first note-on: it still sounds
    p, port, clock, _lines = make(gen, notes_to_script(CALL), bars=4)
    clock.hooks.append((stop_at, lambda: p.stop("test")))
    assert p.run() == "test"
    offs = [m for t, m in port.messages if t >= stop_at and m[0] == 0x80]
    assert offs, "nothing was sounding at the stop"
    assert not [m for t, m in port.messages if t > stop_at and m[0] == 0x90]
    assert_released(port)


def test_bars_end_while_only_listening(gen):
    p, port, _clock, _lines = make(gen, [], bars=1)
    assert p.run() == "bars"
    assert port.messages == [(T0, (0xC0, 0)), (T0 + 2.0, (0xB0, 123, 0))]


@pytest.mark.parametrize("args, why", [
    (["--key", "auto"], "needs notes to hear"),
    (["--mode", "accompany"], "--mode needs --listen"),
    (["--thru"], "--thru needs --listen"),
    (["--chords", "16"], "--chords needs --listen"),
    (["--listen", "virtual", "--chords", "17"], "must be a MIDI channel 1-16"),
])
def test_play_listen_options_are_checked(args, why):
    r = CliRunner().invoke(main, ["play", "--quiet", *args])
    assert r.exit_code != 0 and why in r.output, r.output


def test_listening_follows_a_clock_and_a_restart_plays_from_the_new_downbeat(gen):
    """accompany under MIDI clock: notes only while the clock runs, each on the tick grid; after
    Stop and a second Start, the playing starts again at the new bar 1, nothing stale."""
    from tests.test_player import FakeSync, ticks

    clock = Clock()
    port = MemoryPort(now=clock.now)
    pr = preset()
    lis = Listener(gen, pr, mode="accompany", seed=2)
    src = ListenSource(lis, Inbox(clock, []), threaded=False)
    a = ticks(T0 + 0.01, 120, 24 * 8)  # 2 bars
    restart = a[-1][0] + 1.0
    b = ticks(restart + 0.01, 120, 24 * 8)
    script = [(T0, [0xFA])] + a + [(a[-1][0] + 0.005, [0xFC]), (restart, [0xFA])] + b
    sync = FakeSync(clock, script, end=b[-1][0] + 0.001)
    p = Player(port, gen, pr, now=clock.now, sleep=clock.sleep, spin=0, source=src, sync=sync)
    sync.player = p
    p.run()
    ons = [t for t, m in port.messages if m[0] == 0x90 and m[2] > 0]
    assert ons, "nothing played"
    first_run = [t for t in ons if t < restart]
    second = [t for t in ons if t >= restart]
    assert first_run and second
    assert not [t for t in ons if a[-1][0] + 0.005 < t < b[0][0] - 1e-9]  # silence while stopped
    grid = [t for t, _ in a + b]
    for t in ons:  # each onset on a clock tick (the model's 1/24-beat grid is the clock's)
        assert min(abs(t - g) for g in grid) < 1e-6
    assert min(second) - b[0][0] < 2.0  # bar 1 of the new take plays within its first bar
    assert_released(port)
