"""`midigan evaluate`: how far a model's music is from held-out real piano music.

The headline is a *fresh neural two-sample test* (judge.py): a new network, trained
from scratch inside this evaluation, tries to tell the model's windows of 100 notes
from real ones; its accuracy on windows it did not train on, over several splits, is
the score (0.5 = indistinguishable). It is run twice: on the pitches alone, and on
timed notes (pitch, onset, duration, velocity). For a model that only makes pitches,
the timed windows are what the user hears: the preset's arrangement.

Beside it, feature two-sample tests by family, kept apart:
- *untargeted*: long-range statistics of 400-note windows (features.py), which no
  training term computes;
- *rhythm* and *dynamics* (features.py), also computed by no training term;
- *targeted* (metrics.c2st_features): statistics a training term of the shipped model
  matched; reported, never the headline.
Copying: the share of 8-note pitch n-grams found in the training pieces, and the longest
run copied verbatim from one training piece. Streams: the timed test again on windows 8
and 16 sequences deep into continued streams, as `play` makes them.

Every table has calibration rows: training pieces against the reference (the ceiling:
real music that is not the reference's), the same pieces passed through the note-event
encoding and back (what the encoding alone costs: any note-event model's floor), two
halves of the reference pieces, uniform
random, Markov chains of order 2 and 4, and the paper-design `seed` model. The reference
is one split of the corpus: validation for every choice, test once, for a model card.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import events as ev
from . import features
from .files import data_dir
from .metrics import NGRAM, c2st_features, feature_c2st, novelty, train_ngrams

WINDOW = 100  # notes per window: the paper's sequence length
LONG = 400  # notes per window of the long-range family
DEPTHS = (8, 16)  # sequences deep into a stream, beside the first
FAMILIES = ("untargeted", "rhythm", "dynamics", "targeted")


@dataclass
class Material:
    """One row's windows: timed notes (N, WINDOW, 4), long pitch windows (M, LONG), and the
    piece or stream each came from."""
    name: str
    kind: str
    notes: np.ndarray
    groups: np.ndarray
    long: np.ndarray
    long_groups: np.ndarray
    deep: dict = field(default_factory=dict)  # depth -> (notes, groups)
    copy: np.ndarray | None = None  # pitch windows whose copying is measured (default: long)
    against: "Material | None" = None  # the row's own reference (default: the evaluation's)


# ---------------------------------------------------------------- material

def _sample(rng, count: int, *arrays):
    n = len(arrays[0])
    pick = np.sort(rng.choice(n, count, replace=False)) if n > count else np.arange(n)
    return [a[pick] for a in arrays]


def real_material(name: str, kind: str, pieces, count: int, rng) -> Material:
    """Windows of whole real pieces (half-overlapping, so short splits still give many)."""
    from .corpus import note_windows

    notes, groups = _sample(rng, count, *note_windows(pieces, WINDOW, WINDOW // 2))
    long, lgroups = _sample(rng, count, *note_windows(pieces, LONG, LONG // 4))
    return Material(name, kind, notes, groups, long[..., 0].astype(np.int64), lgroups)


def encoded_pieces(pieces, tables: dict, rng) -> list:
    """The pieces as a note-event model plays them: onsets on its grid, lengths and velocities
    through their classes and back as the runtime decodes them (tables: events.tables of the
    training notes; velocities drawn across their bins by `rng`, or at their middles if None).
    What the encoding alone costs."""
    out = []
    for p in pieces:
        n = p.notes
        _, q, _, _ = ev.quantise(n.pitches, n.starts, n.durations, n.velocities)
        events, _ = ev.encode(n.pitches, n.starts, n.durations, n.velocities)
        x = ev.to_notes(events, q, tables, rng)
        notes = n._replace(pitches=x[:, 0].astype(np.uint8), starts=x[:, 1].astype(np.float32),
                           durations=x[:, 2].astype(np.float32), velocities=x[:, 3].astype(np.uint8),
                           onsets=np.zeros(len(x), np.float32))
        out.append(dataclasses.replace(p, notes=notes))
    return out


def stream_material(name: str, kind: str, streams: list[np.ndarray]) -> Material:
    """Windows of continued streams of timed notes (one (n, 4) array per stream)."""
    def at(k: int, length: int):
        ok = [i for i, s in enumerate(streams) if len(s) >= (k + 1) * length]
        w = np.stack([streams[i][k * length:(k + 1) * length] for i in ok]) if ok else np.zeros((0, length, 4))
        return w, np.array(ok, np.int64)

    notes, groups = at(0, WINDOW)
    long, lgroups = at(0, LONG)
    deep = {d: at(d - 1, WINDOW) for d in DEPTHS if min(len(s) for s in streams) >= d * WINDOW}
    return Material(name, kind, notes, groups, long[..., 0].astype(np.int64), lgroups, deep)


def model_streams(path, preset, count: int, sequences: int, seed: int, temperature=None,
                  candidates=None, critic_temperature=None) -> list[np.ndarray]:
    """`count` streams of `sequences` phrases from an ONNX model, steered by the preset:
    what `play` would send, as (n, 4) note arrays."""
    from .arrange import notes_array, phrases
    from .presets import override
    from .runtime import Generator

    if temperature is not None:
        preset = override(preset, temperature=temperature)
    stream = phrases(Generator(path), preset, seed=seed, count=count, candidates=candidates,
                     critic_temperature=critic_temperature)
    lines = [[] for _ in range(count)]
    for _ in range(sequences):
        for line, notes in zip(lines, next(stream)):
            line.extend(notes)
    return [notes_array(line) for line in lines]


# ---------------------------------------------------------------- scoring

def index_training(pieces) -> tuple:
    """What copying is measured against: the training pieces' n-gram keys and pitch sequences."""
    seqs = [p.pitches.astype(np.int64) for p in pieces]
    return train_ngrams(seqs), seqs


def copying(windows, train_index) -> dict:
    """How much of the pitch windows (N, L) is found verbatim in the training pieces: the share
    of their 8-grams, and the longest run copied from one piece (median and max over windows)."""
    keys, seqs = train_index
    runs = features.longest_copied_run(windows, seqs)
    return {"novelty": novelty(windows, keys), "longest_p50": float(np.median(runs)),
            "longest_max": int(runs.max()), "windows": int(len(windows))}


def score(m: Material, ref: Material, train_index, *, seed: int, splits: int, deep: bool) -> dict:
    """Every measure of one row against the reference.

    The judges run on one thread: these nets are small, and two threads on a machine that
    is busy with anything else spin-wait for each other (ten times slower here).
    """
    from .judge import neural_c2st

    def neural(a, ga, b, gb, timed):
        r = neural_c2st(a if timed else a[..., 0].astype(np.int64), b if timed else b[..., 0].astype(np.int64),
                        ga, gb, timed=timed, splits=splits, seed=seed, threads=1)
        return {"accuracy": r["accuracy"], "se": r["se"], "n": r["n"]}

    row = {"name": m.name, "kind": m.kind, "windows": int(len(m.notes)), "long_windows": int(len(m.long))}
    row["neural"] = {"pitch": neural(m.notes, m.groups, ref.notes, ref.groups, False),
                     "timed": neural(m.notes, m.groups, ref.notes, ref.groups, True)}
    pairs = {
        "untargeted": (features.longrange_features(m.long)[0], m.long_groups,
                       features.longrange_features(ref.long)[0], ref.long_groups),
        "rhythm": (features.rhythm_features(m.notes)[0], m.groups, features.rhythm_features(ref.notes)[0], ref.groups),
        "dynamics": (features.dynamics_features(m.notes)[0], m.groups,
                     features.dynamics_features(ref.notes)[0], ref.groups),
        "targeted": (c2st_features(m.notes[..., 0].astype(np.int64)), m.groups,
                     c2st_features(ref.notes[..., 0].astype(np.int64)), ref.groups),
    }
    row["features"] = {k: feature_c2st(a, b, ga, gb, seed=seed) for k, (a, ga, b, gb) in pairs.items()}
    row["copying"] = copying(m.long if m.copy is None else m.copy, train_index)
    if deep and m.deep:
        row["streams"] = {str(d): neural(w, g, ref.notes, ref.groups, True) for d, (w, g) in m.deep.items()}
    return row


# ---------------------------------------------------------------- the whole evaluation

def evaluate(source, reference, train=None, *, split: str = "validation", preset: str = "piano",
             count: int = 1000, seed: int = 0, splits: int = 3, temperature=None, baselines: bool = True,
             seed_model=None, streams: bool = True, candidates=None, critic_temperature=None,
             progress=None) -> dict:
    """Score a model (an ONNX file) or a folder of MIDI files against one split of real music.

    reference: a corpus folder; its `split` pieces are the reference. train: the training
    corpus (default: the reference folder's train split), for copying, the Markov
    baselines and the ceiling row. candidates: how many phrases the model's critic chooses
    among (None: the model's recommendation; 1: no choice, the ablation).
    """
    from .corpus import load_corpus
    from .presets import load_preset

    t0 = time.time()
    say = progress or (lambda msg: None)
    _check_args(source, count, splits, temperature, split)
    rng = np.random.default_rng(seed)
    rc = load_corpus(reference)
    ref_pieces = rc.split(split)
    same = train is None or Path(train).resolve() == Path(reference).resolve()
    train_pieces = rc.split("train") if same else load_corpus(train).pieces
    if len(ref_pieces) < 2 or not train_pieces:
        raise ValueError(f"{reference} has {len(ref_pieces)} {split} and {len(train_pieces)} train pieces; "
                         "need at least 2 and 1")
    ref = real_material("reference", "reference", ref_pieces, count, rng)
    if len(ref.notes) < 20 or len(ref.long) < 10:
        raise ValueError(f"the reference has only {len(ref.notes)} windows of {WINDOW} notes and "
                         f"{len(ref.long)} of {LONG}; need at least 20 and 10")
    say("indexing the training pieces")
    train_index = index_training(train_pieces)
    pr = load_preset(preset)
    sequences = max(DEPTHS) if streams else LONG // WINDOW
    rows = [_source_material(source, pr, count, sequences, seed, temperature, (candidates, critic_temperature),
                             rng, say)]
    if baselines:
        rows += _calibration(ref_pieces, train_pieces, source, count, sequences, seed, rng, seed_model, say)
    out = []
    for m in rows:
        say(f"judging {m.name}")
        out.append(score(m, m.against or ref, train_index, seed=seed, splits=splits, deep=streams))
    return {
        "source": str(source), "reference": str(reference), "split": split, "preset": pr.name,
        "temperature": pr.temperature if temperature is None else float(temperature), "candidates": candidates, "critic_temperature": critic_temperature,
        "reference_pieces": len(ref_pieces), "reference_windows": int(len(ref.notes)),
        "reference_long_windows": int(len(ref.long)), "train_pieces": len(train_pieces),
        "window": WINDOW, "long_window": LONG, "count": count, "seed": seed, "splits": splits,
        "families": {"untargeted": "features.longrange_features (no training term computes them)",
                     "rhythm": "features.rhythm_features", "dynamics": "features.dynamics_features",
                     "targeted": "metrics.c2st_features (the pitch statistics an earlier model's MMD terms matched)"},
        "rows": out, "seconds": round(time.time() - t0, 1),
    }


def _check_args(source, count, splits, temperature, split):
    from .splits import SPLITS

    if not Path(source).exists():
        raise FileNotFoundError(f"no such model file or MIDI folder: {source}")
    if count < 20:
        raise ValueError(f"count must be at least 20, got {count}")
    if splits < 3:
        raise ValueError(f"splits must be at least 3, got {splits}")
    if temperature is not None and not temperature > 0:
        raise ValueError(f"temperature must be above 0, got {temperature}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")


def _source_material(source, pr, count, sequences, seed, temperature, choice, rng, say) -> Material:
    source = Path(source)
    if source.is_dir():
        from .corpus import load_corpus
        return real_material(f"{source.name}/ (MIDI)", "source", load_corpus(source).pieces, count, rng)
    say(f"generating {count} streams of {sequences} sequences with {source.name}")
    return stream_material(source.name, "source", model_streams(source, pr, count, sequences, seed, temperature,
                                                                  *choice))


def _calibration(ref_pieces, train_pieces, source, count, sequences, seed, rng, seed_model, say) -> list:
    from .baselines import markov_notes, uniform_notes
    from .presets import load_preset

    rows = [real_material("real: train pieces", "ceiling", train_pieces, count, rng)]
    tables = ev.tables([p.notes for p in train_pieces])
    encoded = real_material("real: train pieces, encoded", "encoded", encoded_pieces(train_pieces, tables, rng),
                            count, rng)
    a, b = ref_pieces[0::2], ref_pieces[1::2]
    halves = real_material("real: reference halves", "halves", a, count, rng)
    halves.against = real_material("reference (other half)", "reference", b, count, rng)
    rows[0].copy = real_material("", "", ref_pieces, count, rng).long  # real music's own copying rate
    encoded.copy = rows[0].copy
    rows += [encoded, halves]
    sm = Path(seed_model) if seed_model else data_dir("export") / "seed.onnx"
    if seed_model and not sm.is_file():
        raise FileNotFoundError(f"no such seed model: {seed_model}")
    if sm.is_file() and sm.resolve() != Path(source).resolve():
        say("generating with the seed model")
        rows.append(stream_material(f"seed model ({sm.name}, raw)", "seed-model",
                                    model_streams(sm, load_preset("raw"), count, sequences, seed)))
    length = sequences * 100
    rows.append(_baseline("uniform random", "uniform", uniform_notes(count, length, seed)))
    pieces = [np.stack([p.notes.pitches, p.notes.starts, p.notes.durations, p.notes.velocities], 1).astype(float)
              for p in train_pieces]
    for k in (2, 4):
        say(f"fitting Markov order {k}")
        rows.append(_baseline(f"markov order {k}", f"markov-{k}", markov_notes(k, pieces, count, length, seed + k)))
    return rows


def _baseline(name, kind, notes: np.ndarray) -> Material:
    m = stream_material(name, kind, list(notes))
    m.deep = {}  # a baseline has no state to drift: its depth rows would repeat its first
    return m


# ---------------------------------------------------------------- the table

def format_table(res: dict) -> str:
    """The evaluation as a readable text table."""
    lines = [f"reference: {res['split']} split of {res['reference']}: {res['reference_pieces']} pieces, "
             f"{res['reference_windows']} windows of {res['window']} notes, {res['reference_long_windows']} of "
             f"{res['long_window']}; training set {res['train_pieces']} pieces; "
             f"preset {res['preset']} at temperature {res['temperature']:g}", ""]
    head = (f"{'':<30} {'windows':>7}  {'neural C2ST, pitch':>18} {'timed':>14}  "
            f"{'untarg':>6} {'rhythm':>6} {'dynam':>6} {'target':>6}  {'nov8%':>5} {'run50':>5} {'max':>4}")
    lines += [head, "-" * len(head)]
    for r in res["rows"]:
        nz, f, c = r["neural"], r["features"], r["copying"]
        lines.append(f"{r['name'][:30]:<30} {r['windows']:>7}  {_acc(nz['pitch']):>18} {_acc(nz['timed']):>14}  "
                     + " ".join(f"{f[k]:>6.3f}" for k in FAMILIES)
                     + f"  {100 * c['novelty']:>5.1f} {c['longest_p50']:>5.0f} {c['longest_max']:>4}")
    deep = [r for r in res["rows"] if r.get("streams")]
    if deep:
        lines += ["", "streams (timed neural C2ST, windows this many sequences deep):",
                  f"{'':<30} {'1':>14} " + " ".join(f"{d:>14}" for d in deep[0]["streams"])]
        for r in deep:
            lines.append(f"{r['name'][:30]:<30} {_acc(r['neural']['timed']):>14} "
                         + " ".join(f"{_acc(v):>14}" for v in r["streams"].values()))
    lines += [
        "",
        f"neural C2ST: accuracy (standard error over {res['splits']} splits by piece/stream) of a network trained "
        "from scratch here to tell the row's windows from the reference's; 0.5 = indistinguishable.",
        "untarg/rhythm/dynam/target: feature C2ST (gradient boosting, folds by piece) on long-range "
        f"{res['long_window']}-note statistics, rhythm, dynamics, and the targeted pitch statistics "
        "(matched in training: not a measure of quality).",
        f"nov8%: {NGRAM}-note pitch n-grams found in the training pieces; run50/max: longest run copied "
        f"verbatim from one training piece, median and max over {res['long_window']}-note windows "
        "(real rows: the reference's own).",
        f"({res['count']} windows per side at most, seed {res['seed']}, {res['seconds']} s)",
    ]
    return "\n".join(lines)


def _acc(r: dict) -> str:
    return f"{r['accuracy']:.3f} ({r['se']:.3f})"
