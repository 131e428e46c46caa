"""MIDI files -> a corpus of timed notes, split three ways by whole pieces, cached.

A piece is the notes of one file (drums excluded) in onset order, simultaneous
notes low to high: pitch, onset and duration in beats (the file's own ticks per
quarter note), velocity, and onset in seconds through the tempo map. Files are
read with symusic (maintained, fast); where it is not installed, with mido,
which tests also use as the reference. Our own checks stand in front of either
(regular file, size, plausible length), since the libraries accept files that
are not music.

Whole pieces go to train / validation / test, so held-out music is never seen
in pieces: a MAESTRO-style ``maestro-v*.csv`` decides when present (checked
strictly, see splits.py); otherwise a hash of the piece's *work* does. Parsed
files are cached as numpy ``.npz`` (no pickle) in the user's cache directory,
never inside the corpus folder.
"""
from __future__ import annotations

import hashlib
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .music import PITCH_HIGH, PITCH_LOW
from .files import write_atomic
from .splits import SPLITS, assign_splits

MIDI_SUFFIXES = (".mid", ".midi")
MAX_FILE_BYTES = 16 * 1024 * 1024  # no piano MIDI file is this big (MAESTRO's are < 1 MB); a bigger one is junk
MAX_PIECE_SECONDS = 12 * 3600  # longer is a damaged file (huge delta times), not music
CACHE_VERSION = 4  # 4: timed notes (beats, durations, velocities); older caches are rebuilt
CHORD_GAP = 0.01  # seconds: onsets this close are one chord (sequenced MIDI: 48% of notes exactly 0)
GRID = 1 / 24  # beats: fine enough for sixteenths, triplets and thirty-seconds
GRID_TOLERANCE = 1 / 192  # beats an onset may sit off the grid and still count as on it
PERFORMANCE_SHARE = 0.6  # below this share of onsets on the grid, a file's beats are not meaningful
ENGINES = ("symusic", "mido")
MAX_TICKS = 1 << 40  # beyond any real file's length in ticks; keeps int64 arithmetic exact


class Notes(NamedTuple):
    """One parsed file: per note arrays in onset order, and per file facts."""
    pitches: np.ndarray  # uint8 MIDI pitches
    starts: np.ndarray  # float32 onset, beats (quarter notes)
    durations: np.ndarray  # float32 beats
    velocities: np.ndarray  # uint8 1..127
    onsets: np.ndarray  # float32 onset, seconds
    length: float  # seconds, to the end of the last note
    dropped: int  # notes outside the piano range


@dataclass
class Piece:
    name: str  # path relative to the corpus root, with forward slashes
    notes: Notes
    split: str = "train"

    @property
    def pitches(self) -> np.ndarray:
        return self.notes.pitches

    @property
    def onsets(self) -> np.ndarray:
        return self.notes.onsets

    @property
    def duration(self) -> float:
        return self.notes.length

    @property
    def together(self) -> np.ndarray:
        """bool per note: it starts with the note before it (within CHORD_GAP), i.e. in one chord."""
        return np.r_[False, np.diff(self.onsets) <= CHORD_GAP]

    @property
    def on_grid(self) -> float:
        """Share of onsets on the 1/24-beat grid: near 1 for sequenced music, low for a performance."""
        off = np.abs(self.notes.starts / GRID - np.rint(self.notes.starts / GRID)) * GRID
        return float((off <= GRID_TOLERANCE).mean())


@dataclass
class Corpus:
    root: str
    pieces: list[Piece] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    notices: list[str] = field(default_factory=list)  # what the split assignment reports
    dropped: int = 0  # notes outside the piano range, counted and dropped
    cached: int = 0  # files served from the cache in this load
    held_back: int = 0  # pieces of splits not asked for (not loaded into `pieces`)

    def split(self, name: str) -> list[Piece]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r} (choose from {', '.join(SPLITS)})")
        return [p for p in self.pieces if p.split == name]

    def performances(self) -> list[str]:
        """Pieces whose onsets mostly miss the beat grid (played at one nominal tempo)."""
        return [p.name for p in self.pieces if p.on_grid < PERFORMANCE_SHARE]

    def stats(self) -> dict:
        out = {
            "files": len(self.pieces) + len(self.skipped) + self.held_back,
            "parsed": len(self.pieces),
            "skipped": len(self.skipped),
            "notes": int(sum(len(p.pitches) for p in self.pieces)),
            "hours": round(sum(p.duration for p in self.pieces) / 3600, 2),
            "dropped_out_of_range": int(self.dropped),
            "performances": len(self.performances()),
        }
        for s in SPLITS:
            out[f"{s}_files"] = sum(1 for p in self.pieces if p.split == s)
        return out


# ---------------------------------------------------------------- parsing

def read_notes(path, engine: str | None = None) -> Notes:
    """Parse one MIDI file into Notes. Raises ValueError with a short reason when it cannot.

    ``engine``: "symusic" (the default where installed) or "mido" (the fallback, and the
    reference tests compare with). Both give the same notes.
    """
    engine = engine or default_engine()
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file")  # a FIFO named .mid would block a read forever
    if st.st_size > MAX_FILE_BYTES:
        raise ValueError(f"file too large ({st.st_size} bytes)")
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"file too large ({len(data)} bytes)")
    if not data.startswith(b"MThd"):
        raise ValueError("not a MIDI file (no MThd header)")
    raw = _symusic_notes(data) if engine == "symusic" else _mido_notes(data)
    return _finish(*raw)


_notice_given = False


def default_engine() -> str:
    """symusic where installed; otherwise mido, with a one-line notice (once)."""
    global _notice_given
    try:
        import symusic  # noqa: F401
        return "symusic"
    except ImportError:
        if not _notice_given:
            sys.stderr.write("midigan: symusic is not installed; reading MIDI with mido (slower; "
                             "pip install symusic)\n")
            _notice_given = True
        return "mido"


def _symusic_notes(data: bytes):
    import symusic

    try:
        score = symusic.Score.from_midi(data)
    except Exception as e:  # symusic raises RuntimeError with its C++ parser's message
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        text = text.removeprefix("MiniMidi: ").split(": iostream error")[0][:100]
        truncated = "chunk length" in text or "less than" in text or "nexpected end" in text
        raise ValueError(f"truncated file ({text})" if truncated else text) from None
    if score.tpq <= 0:
        raise ValueError("0 ticks per beat")
    cols = [t.notes.numpy() for t in score.tracks if not t.is_drum and t.note_num()]
    start = np.concatenate([c["time"] for c in cols]) if cols else np.zeros(0, np.int64)
    dur = np.concatenate([c["duration"] for c in cols]) if cols else np.zeros(0, np.int64)
    pitch = np.concatenate([c["pitch"] for c in cols]) if cols else np.zeros(0, np.int64)
    vel = np.concatenate([c["velocity"] for c in cols]) if cols else np.zeros(0, np.int64)
    tempo = score.tempos.numpy()
    return start, dur, pitch, vel, tempo["time"], tempo["mspq"], score.tpq


def _mido_notes(data: bytes):
    """The same arrays as _symusic_notes, from mido: notes paired first-in first-out per
    track, channel and key, as symusic pairs them; notes never released are dropped."""
    import io

    import mido

    try:
        mid = mido.MidiFile(file=io.BytesIO(data), clip=False)
    except Exception as e:  # mido raises many kinds; each is a reason to skip the file
        raise ValueError(_reason(e)) from None
    if mid.ticks_per_beat <= 0:
        raise ValueError("SMPTE time division not supported" if mid.ticks_per_beat < 0 else "0 ticks per beat")
    notes, tempo_t, tempo_us = [], [], []
    for track in mid.tracks:
        tick, open_ = 0, {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempo_t.append(tick)
                tempo_us.append(msg.tempo)
            elif msg.type in ("note_on", "note_off") and msg.channel != 9:
                key = (msg.channel, msg.note)
                if msg.type == "note_on" and msg.velocity > 0:
                    open_.setdefault(key, []).append((tick, msg.velocity))
                elif open_.get(key):
                    t0, v = open_[key].pop(0)
                    notes.append((t0, tick - t0, msg.note, v))
        if tick > MAX_TICKS:
            raise ValueError("implausible length (huge delta times)")
    a = np.array(notes, dtype=np.int64).reshape(-1, 4)
    order = np.argsort(tempo_t, kind="stable")
    return (a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.array(tempo_t, np.int64)[order],
            np.array(tempo_us, np.int64)[order], mid.ticks_per_beat)


def ticks_to_seconds(ticks, tempo_ticks, tempo_us, tpq: int) -> np.ndarray:
    """Seconds at each tick through a tempo map (120 BPM before the first tempo event)."""
    tt = np.r_[0, np.asarray(tempo_ticks, np.int64)]
    us = np.r_[500000, np.asarray(tempo_us, np.int64)]
    keep = np.r_[tt[1:] != tt[:-1], True]  # of several tempi at one tick, the last rules
    tt, us = tt[keep], us[keep]
    at = np.r_[0.0, np.cumsum(np.diff(tt) * us[:-1] / 1e6 / tpq)]  # seconds at each tempo change
    ticks = np.asarray(ticks, np.float64)
    i = np.searchsorted(tt, ticks, side="right") - 1
    return at[i] + (ticks - tt[i]) * us[i] / 1e6 / tpq


def _finish(start, dur, pitch, vel, tempo_t, tempo_us, tpq) -> Notes:
    """Common to both engines: piano range, order, units, and sanity bounds.

    A piece lasts until its last note ends (trailing meta events do not count).
    """
    if not len(pitch):
        raise ValueError("no notes")
    length = float(ticks_to_seconds([(start + np.maximum(dur, 0)).max()], tempo_t, tempo_us, tpq)[0])
    if not np.isfinite(length) or length > MAX_PIECE_SECONDS or length < 0:
        raise ValueError(f"implausible length ({length / 3600:.3g} hours)")
    keep = (pitch >= PITCH_LOW) & (pitch <= PITCH_HIGH)
    dropped = int((~keep).sum())
    if not keep.any():
        raise ValueError("no notes in the piano range")
    start, dur, pitch, vel = start[keep], dur[keep], pitch[keep], vel[keep]
    order = np.lexsort((pitch, start))  # time order, then low to high
    start, dur, pitch, vel = start[order], dur[order], pitch[order], vel[order]
    seconds = ticks_to_seconds(start, tempo_t, tempo_us, tpq)
    return Notes(pitch.astype(np.uint8), (start / tpq).astype(np.float32),
                 (np.maximum(dur, 0) / tpq).astype(np.float32), np.clip(vel, 1, 127).astype(np.uint8),
                 seconds.astype(np.float32), length, dropped)


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, EOFError):
        return "truncated file"
    if isinstance(e, ValueError) and text:
        return text[:120]
    return f"{type(e).__name__}: {text}"[:120] if text else type(e).__name__


def _read_one(args):
    """(name, Notes or None, reason or None); never raises, whatever the file holds."""
    path, name, engine = args
    try:
        return name, read_notes(path, engine), None
    except (ValueError, OSError) as e:
        return name, None, (str(e) or type(e).__name__).splitlines()[0][:160]
    except Exception as e:  # a parser bug must cost one file, not the whole run
        return name, None, f"unreadable ({type(e).__name__}: {e})".splitlines()[0][:160]


# ---------------------------------------------------------------- folders

def list_midi_files(root) -> list[str]:
    """Names (relative, forward slashes, sorted) of every .mid/.midi under root.

    Linked folders are followed, each real folder once (a link back up cannot loop).
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no such folder: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    names, seen = [], set()
    for dirpath, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        for f in files:
            if f.lower().endswith(MIDI_SUFFIXES):
                names.append(Path(dirpath, f).relative_to(root).as_posix())
    return sorted(names)


def display(name: str) -> str:
    """A file name safe to print (names that are not valid UTF-8 keep their bytes as escapes)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------- cache

def cache_dir() -> Path:
    base = os.environ.get("MIDIGAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "midigan")
    return Path(base)


def _cache_path(root: Path, engine: str) -> Path:
    key = hashlib.sha1(os.fsencode(str(root.resolve()))).hexdigest()[:16]
    return cache_dir() / f"corpus-{key}-{engine}.npz"


_NOTE_ARRAYS = ("pitches", "starts", "durations", "velocities", "onsets")


def _load_cache(path: Path) -> dict:
    """{name: (size, mtime_ns, entry)} where entry is Notes or a skip reason."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION:
                return {}
            z = {k: z[k] for k in z.files}
    except Exception:
        return {}  # a missing, damaged or older cache is simply rebuilt
    out, offs = {}, z["offsets"]
    for i, n in enumerate(z["names"]):
        a, b = offs[i], offs[i + 1]
        entry = str(z["reasons"][i]) or Notes(*(z[k][a:b] for k in _NOTE_ARRAYS),
                                               float(z["lengths"][i]), int(z["dropped"][i]))
        out[_unescape(str(n))] = (int(z["sizes"][i]), int(z["mtimes"][i]), entry)
    return out


def _escape(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").hex()  # any file name, even not valid UTF-8


def _unescape(name: str) -> str:
    return bytes.fromhex(name).decode("utf-8", "surrogateescape")


def _save_cache(path: Path, entries: dict) -> None:
    names = sorted(entries)
    parsed = [entries[n][2] for n in names]
    notes = [e for e in parsed if not isinstance(e, str)]
    arrays = dict(
        version=np.array(CACHE_VERSION),
        names=np.array([_escape(n) for n in names], dtype=str),
        sizes=np.array([entries[n][0] for n in names], dtype=np.int64),
        mtimes=np.array([entries[n][1] for n in names], dtype=np.int64),
        offsets=np.r_[0, np.cumsum([0 if isinstance(e, str) else len(e.pitches) for e in parsed])].astype(np.int64),
        lengths=np.array([0.0 if isinstance(e, str) else e.length for e in parsed]),
        dropped=np.array([0 if isinstance(e, str) else e.dropped for e in parsed], dtype=np.int64),
        reasons=np.array([e if isinstance(e, str) else "" for e in parsed], dtype=str),
    )
    for k, dtype in zip(_NOTE_ARRAYS, (np.uint8, np.float32, np.float32, np.uint8, np.float32)):
        arrays[k] = np.concatenate([np.zeros(0, dtype)] + [getattr(e, k) for e in notes])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda tmp: _savez(tmp, arrays))
    except OSError:
        pass  # an unwritable cache only costs speed


def _savez(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


# ---------------------------------------------------------------- the loader

def load_corpus(root, *, use_cache: bool = True, progress=None,
                splits=SPLITS, strict: bool = False, engine: str | None = None) -> Corpus:
    """Parse every MIDI file under root (cached), assign splits, return a Corpus.

    ``splits``: the splits whose pieces to load (training asks for train and validation
    only, so the test pieces never reach it). ``strict``: a split problem that is
    otherwise reported (files a MAESTRO CSV does not list, ...) is an error.
    Unreadable files are skipped with a reason; raises ValueError if nothing parses.
    ``progress`` is called as progress(done, total) while files are parsed.
    """
    root = Path(root)
    names = list_midi_files(root)
    if not names:
        raise ValueError(f"no .mid or .midi files under {root}")
    bad = set(splits) - set(SPLITS)
    if bad:
        raise ValueError(f"unknown split {sorted(bad)[0]!r} (choose from {', '.join(SPLITS)})")
    assigned, notices = assign_splits(root, names, strict=strict)
    engine = engine or default_engine()
    cpath = _cache_path(root, engine)
    old = _load_cache(cpath) if use_cache else {}
    entries, todo, unreadable = {}, [], {}
    for n in names:
        try:
            st = os.stat(root / n)
        except OSError as e:  # a dangling link, a file removed while we list
            unreadable[n] = f"cannot open ({e.strerror or type(e).__name__})"
            continue
        prev = old.get(n)
        if prev and prev[0] == st.st_size and prev[1] == st.st_mtime_ns:
            entries[n] = prev
        else:
            todo.append((n, st.st_size, st.st_mtime_ns))
    cached = len(entries)
    for k, (n, size, mtime) in enumerate(todo):  # symusic reads ~25 MB/s: no worker processes needed
        _n, parsed, reason = _read_one((str(root / n), n, engine))
        entries[n] = (size, mtime, parsed if parsed is not None else reason)
        if progress:
            progress(k + 1, len(todo))
    if use_cache and todo:
        _save_cache(cpath, entries)  # unreadable files are not cached: the next run looks again

    corpus = Corpus(root=str(root), cached=cached, notices=notices)
    for n in names:
        e = unreadable.get(n) or entries[n][2]
        if isinstance(e, str):
            corpus.skipped.append((n, e))
        elif assigned[n] in splits:
            corpus.dropped += e.dropped
            corpus.pieces.append(Piece(n, e, assigned[n]))
        else:
            corpus.held_back += 1
    if not corpus.pieces:
        raise ValueError(f"none of the {len(names)} MIDI files under {root} could be read"
                         if not corpus.held_back else f"no readable piece of {root} is in {', '.join(splits)}")
    return corpus


# ---------------------------------------------------------------- windows

def windows(pieces: list[Piece], length: int, stride: int | None = None, *,
            together: bool = False) -> np.ndarray:
    """Non-overlapping (or strided) windows of `length` pitches, never crossing pieces.

    Returns an int64 array of shape (N, length); with ``together``, the pieces'
    chord flags (Piece.together, as 0/1) for the same windows instead of pitches.
    """
    w, _g = _windows(pieces, length, stride, lambda p: p.together if together else p.pitches)
    return w.astype(np.int64)


def note_windows(pieces: list[Piece], length: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Windows of `length` timed notes, never crossing pieces: (float64 (N, length, 4) of
    pitch, onset beats, duration beats, velocity; int64 (N,) index of each window's piece)."""
    def fields(p: Piece):
        n = p.notes
        return np.stack([n.pitches, n.starts, n.durations, n.velocities], axis=1).astype(np.float64)
    w, g = _windows(pieces, length, stride, fields)
    return (w if len(w) else np.zeros((0, length, 4))), g


def _windows(pieces, length, stride, values):
    stride = stride or length
    out, groups = [], []
    for k, p in enumerate(pieces):
        n = len(p.pitches)
        if n < length:
            continue
        starts = np.arange(0, n - length + 1, stride)
        out.append(np.asarray(values(p))[starts[:, None] + np.arange(length)])
        groups.append(np.full(len(starts), k))
    if not out:
        return np.zeros((0, length)), np.zeros(0, np.int64)
    return np.concatenate(out), np.concatenate(groups).astype(np.int64)
