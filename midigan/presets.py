"""Presets: TOML files that say how generated pitches are played.

A preset is data, never code: every key is checked against a fixed schema, and a
bad one is a ValueError naming the preset, the key and the value.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .files import data_dir
from .music import NOTE_NAMES, PITCH_HIGH, PITCH_LOW, SCALES

_FLATS = {"DB": "C#", "EB": "D#", "GB": "F#", "AB": "G#", "BB": "A#"}


@dataclass(frozen=True)
class Preset:
    name: str = "custom"
    description: str = ""
    bpm: float = 100.0  # quarter notes per minute
    step: str = "1/16"  # one generated note per step, as a fraction of a whole note
    rhythm: tuple[int, ...] = (1,)  # steps each note lasts, cycled (e.g. [2, 1, 1])
    gate: float = 0.9  # share of its slot a note sounds, 0 < gate <= 1
    swing: float = 0.0  # delay of every second step, as a share of a step (0..0.5)
    velocity: int = 80  # base velocity 1..127
    humanize: int = 0  # random velocity spread +- this (0..40)
    accent: int = 0  # added on each beat's downbeat (0..40)
    key: str = "C"
    scale: str = "chromatic"  # chromatic leaves pitches as generated
    low: int = PITCH_LOW  # range: pitches are folded by octaves into [low, high]
    high: int = PITCH_HIGH
    channel: int = 1  # MIDI channel 1..16
    morph: float = 0.25  # how far the noise walks per sequence in a stream (0 = frozen, 1 = new)
    noise_scale: float = 1.0  # spread of the generator's input noise
    temperature: float = 1.0  # sampling temperature for categorical models
    chords: bool = True  # with timing = "preset": strike the model's chords together (false: in turn)
    timing: str = "model"  # "model": the model's onsets, durations and velocities; "preset": step/rhythm/gate/velocity
    density: float = 0.0  # event model: > 0 favours shorter gaps between onsets, < 0 longer (-3..3)
    figures: float = 0.0  # event model: how strongly a line comes back to its own figures (0 = off, 0..16)
    quantise: str = ""  # event model: snap onsets to this grid, e.g. "1/16" ("" = as generated)
    velocity_low: int = 1  # event model: its velocities 1..127 are rescaled onto velocity_low..velocity_high
    velocity_high: int = 127
    program: int = 0  # live: program change sent on start (0 = acoustic grand piano; -1 = none)
    pedal: str = ""  # live and files: sustain pedal (CC 64): "" none, "bar" (re-pedal at each bar), "bass" (at each new bass note)
    cc: tuple[tuple[str, int], ...] = ()  # [cc] table: knob name -> CC number, over CC_DEFAULTS
    source: str = field(default="", compare=False)  # where it was read from

    @property
    def step_beats(self) -> float:
        """Length of one step in quarter notes."""
        return float(Fraction(self.step) * 4)

    @property
    def quantise_beats(self) -> float:
        return float(Fraction(self.quantise) * 4)

    @property
    def key_pc(self) -> int:
        return NOTE_NAMES.index(_norm_key(self.key))


def _norm_key(k: str) -> str:
    k = k.strip().upper()
    return _FLATS.get(k, k)


_FIELDS = {f.name: f for f in dataclasses.fields(Preset) if f.name != "source"}


def _check(name: str, key: str, ok: bool, value, why: str):
    if not ok:
        raise ValueError(f"preset {name!r}: {key} = {value!r} is invalid ({why})")


def make_preset(data: dict, name: str = "custom", source: str = "") -> Preset:
    """Build and validate a Preset from a dict (a parsed TOML table)."""
    data = dict(data)
    name = str(data.pop("name", name))
    p = Preset(name=name, source=source, **_typed_values(name, data))
    _check_ranges(name, p)
    return p


def _typed_values(name: str, data: dict) -> dict:
    """The table's values, each checked against its field's type (unknown keys are errors)."""
    for k in data:
        if k not in _FIELDS:
            raise ValueError(f"preset {name!r}: unknown key {k!r} (known: {', '.join(sorted(_FIELDS))})")
    vals = {}
    for k, v in data.items():
        typ = _FIELDS[k].type
        if typ == "float":
            _check(name, k, isinstance(v, (int, float)) and not isinstance(v, bool), v, "expected a number")
            v = float(v)
        elif typ == "int":
            _check(name, k, isinstance(v, int) and not isinstance(v, bool), v, "expected an integer")
        elif typ == "str":
            _check(name, k, isinstance(v, str), v, "expected a string")
        elif typ == "bool":
            _check(name, k, isinstance(v, bool), v, "expected true or false")
        elif k == "rhythm":
            _check(name, k, isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool)
                                                              and 1 <= x <= 64 for x in v),
                   v, "expected a non-empty list of step counts 1..64")
            v = tuple(v)
        elif k == "cc":
            v = _check_cc(name, v)
        vals[k] = v
    return vals


def _check_ranges(name: str, p: Preset) -> None:
    """Each value within its range, with the range named in the error."""
    _check(name, "bpm", 20 <= p.bpm <= 400, p.bpm, "20..400")
    try:
        step = Fraction(p.step)
    except (ValueError, ZeroDivisionError):
        step = Fraction(0)
    _check(name, "step", Fraction(1, 64) <= step <= 1, p.step, "a fraction like '1/16', between 1/64 and 1")
    _check(name, "gate", 0 < p.gate <= 1, p.gate, "0 < gate <= 1")
    _check(name, "timing", p.timing in ("model", "preset"), p.timing, "'model' or 'preset'")
    _check(name, "density", -3 <= p.density <= 3, p.density, "-3..3")
    try:
        quantise = Fraction(p.quantise) if p.quantise else Fraction(1, 4)
    except (ValueError, ZeroDivisionError):
        quantise = Fraction(0)
    _check(name, "quantise", Fraction(1, 64) <= quantise <= 1, p.quantise,
           "a fraction like '1/16', between 1/64 and 1, or '' for none")
    _check(name, "velocity_low", 1 <= p.velocity_low <= 127, p.velocity_low, "1..127")
    _check(name, "velocity_high", p.velocity_low <= p.velocity_high <= 127, p.velocity_high,
           "velocity_low..127")
    _check(name, "swing", 0 <= p.swing <= 0.5, p.swing, "0..0.5")
    _check(name, "velocity", 1 <= p.velocity <= 127, p.velocity, "1..127")
    _check(name, "humanize", 0 <= p.humanize <= 40, p.humanize, "0..40")
    _check(name, "accent", 0 <= p.accent <= 40, p.accent, "0..40")
    _check(name, "key", _norm_key(p.key) in NOTE_NAMES, p.key, "a note name like C, F# or Bb")
    _check(name, "scale", p.scale in SCALES, p.scale, "one of " + ", ".join(SCALES))
    _check(name, "low", PITCH_LOW <= p.low <= PITCH_HIGH, p.low, f"{PITCH_LOW}..{PITCH_HIGH}")
    _check(name, "high", PITCH_LOW <= p.high <= PITCH_HIGH, p.high, f"{PITCH_LOW}..{PITCH_HIGH}")
    _check(name, "high", p.high - p.low >= 11, p.high, "the range low..high must span at least 12 keys")
    _check(name, "channel", 1 <= p.channel <= 16, p.channel, "1..16")
    _check(name, "morph", 0 <= p.morph <= 1, p.morph, "0..1")
    _check(name, "figures", 0 <= p.figures <= 16, p.figures, "0..16")
    _check(name, "noise_scale", 0 < p.noise_scale <= 4, p.noise_scale, "0 < noise_scale <= 4")
    _check(name, "temperature", 0.05 <= p.temperature <= 4, p.temperature, "0.05..4")
    _check(name, "program", -1 <= p.program <= 127, p.program, "0..127, or -1 for none")
    _check(name, "pedal", p.pedal in PEDALS, p.pedal, "'', 'bar' or 'bass'")


PEDALS = ("", "bar", "bass")
# The listening knobs (listen.py) and the controller each answers unless a preset's [cc] moves it.
CC_DEFAULTS = {"temperature": 1, "density": 74, "velocity": 71, "register": 16, "figures": 17, "mode": 20,
               "reseed": 21}


def _check_cc(name: str, v) -> tuple:
    _check(name, "cc", isinstance(v, dict), v, "expected a table of knob = CC number")
    for knob, num in v.items():
        _check(name, "cc", knob in CC_DEFAULTS, knob, "knobs: " + ", ".join(CC_DEFAULTS))
        _check(name, f"cc.{knob}", isinstance(num, int) and not isinstance(num, bool) and 0 <= num <= 119,
               num, "a controller number 0..119")
    _check(name, "cc", len(set(v.values())) == len(v), v, "one knob per controller")
    return tuple(sorted(v.items()))


def presets_dir() -> Path:
    """The shipped presets: inside the installed package, or beside it in a checkout."""
    d = data_dir("presets")
    if not d.is_dir():
        raise FileNotFoundError("the shipped presets folder is missing; reinstall midigan")
    return d


def read_preset(path) -> Preset:
    """Read one TOML preset file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read preset {str(path)!r}: {e.strerror or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"preset {path.name!r} is not valid TOML: {e}") from None
    return make_preset(data, name=path.stem, source=str(path))


def load_preset(name_or_path: str) -> Preset:
    """A shipped preset by name (e.g. 'nocturne'), or a TOML file by path."""
    s = str(name_or_path)
    if s.endswith(".toml") or "/" in s or "\\" in s:
        return read_preset(s)
    path = presets_dir() / f"{s}.toml"
    if not path.is_file():
        names = ", ".join(p.name for p in list_presets())
        raise ValueError(f"unknown preset {s!r} (shipped: {names})")
    return read_preset(path)


def list_presets() -> list[Preset]:
    return [read_preset(p) for p in sorted(presets_dir().glob("*.toml"))]


def override(p: Preset, **changes) -> Preset:
    """A copy with CLI overrides applied (None means 'keep'), validated again."""
    data = {k: getattr(p, k) for k in _FIELDS}
    data.update({k: v for k, v in changes.items() if v is not None})
    data["rhythm"] = list(data["rhythm"])
    data["cc"] = dict(data["cc"])
    return make_preset(data, name=p.name, source=p.source)
