"""MIDI files -> a corpus of pitch sequences, with splits and an on-disk cache.

A piece is the note onsets of one file in time order (simultaneous onsets low to
high, drums excluded). Whole pieces go to train/validation/test, so held-out
music is never seen in pieces. Parsed corpora are cached as numpy ``.npz`` (no
pickle) in the user's cache directory, never inside the corpus folder.
"""
from __future__ import annotations

import csv
import hashlib
import os
import stat
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .encoding import PITCH_HIGH, PITCH_LOW

MIDI_SUFFIXES = (".mid", ".midi")
MAX_FILE_BYTES = 16 * 1024 * 1024  # no piano MIDI file is this big (MAESTRO's are < 1 MB); a bigger one is junk
VALIDATION_PERCENT = 10
CACHE_VERSION = 3
POOL_MIN_BYTES = 1 << 20  # below this, starting worker processes costs more than it saves
CHORD_GAP = 0.01  # seconds: onsets this close are one chord (sequenced MIDI: 48% of notes exactly 0)


@dataclass
class Piece:
    name: str  # path relative to the corpus root, with forward slashes
    pitches: np.ndarray  # uint8 MIDI pitches, onset order
    onsets: np.ndarray  # float32 seconds
    duration: float  # seconds
    split: str = "train"

    @property
    def together(self) -> np.ndarray:
        """bool per note: it starts with the note before it (within CHORD_GAP), i.e. in one chord."""
        return np.r_[False, np.diff(self.onsets) <= CHORD_GAP]


@dataclass
class Corpus:
    root: str
    pieces: list[Piece] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    dropped: int = 0  # notes outside the piano range, counted and dropped
    cached: int = 0  # files served from the cache in this load

    def split(self, name: str) -> list[Piece]:
        return [p for p in self.pieces if p.split == name]

    def stats(self) -> dict:
        out = {
            "files": len(self.pieces) + len(self.skipped),
            "parsed": len(self.pieces),
            "skipped": len(self.skipped),
            "notes": int(sum(len(p.pitches) for p in self.pieces)),
            "hours": round(sum(p.duration for p in self.pieces) / 3600, 2),
            "dropped_out_of_range": int(self.dropped),
        }
        for s in ("train", "validation", "test"):
            out[f"{s}_files"] = sum(1 for p in self.pieces if p.split == s)
        return out


# ---------------------------------------------------------------- parsing

MAX_PIECE_SECONDS = 12 * 3600  # longer is a damaged file (huge delta times), not music
ENGINES = ("fast", "mido")


def read_notes(path, engine: str = "fast") -> tuple[np.ndarray, np.ndarray, float, int]:
    """Parse one MIDI file: (pitches uint8, onsets float32 s, duration s, dropped).

    ``engine="fast"`` uses midigan.midifile (numpy, no mido on the common path);
    ``engine="mido"`` iterates ``mido.MidiFile``, the reference the fast parser
    is tested against. Both give the same pieces. Raises ValueError with a short
    reason when the file cannot be read.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file")  # a FIFO named .mid would block a read forever
    size = st.st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"file too large ({size} bytes)")
    if engine == "fast":
        from .midifile import note_onsets

        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(f"file too large ({len(data)} bytes)")
        onsets, pitches, t = note_onsets(data)
    else:
        onsets, pitches, t = _mido_onsets(path)
    return _finish(onsets, pitches, t)


def _mido_onsets(path):
    import mido  # imported here so that `import midigan.corpus` stays cheap

    try:
        mid = mido.MidiFile(path, clip=False)
        if mid.ticks_per_beat <= 0:
            raise ValueError("SMPTE time division not supported" if mid.ticks_per_beat < 0 else "0 ticks per beat")
        t = 0.0
        events = []  # (onset seconds, pitch)
        for msg in mid:  # merged tracks, delta times in seconds through the tempo map
            t += msg.time
            if msg.type == "note_on" and msg.velocity > 0 and msg.channel != 9:
                events.append((t, msg.note))
    except Exception as e:  # mido raises many kinds; each is a reason to skip the file
        raise ValueError(_reason(e)) from None
    ev = np.array(events, dtype=np.float64).reshape(-1, 2)
    return ev[:, 0], ev[:, 1].astype(np.int64), t


def _finish(onsets, pitches, t) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Common to both engines: piano range, order, and sanity bounds."""
    if not len(pitches):
        raise ValueError("no notes")
    if not np.isfinite(t) or t > MAX_PIECE_SECONDS or t < 0:
        raise ValueError(f"implausible length ({t / 3600:.3g} hours)")
    keep = (pitches >= PITCH_LOW) & (pitches <= PITCH_HIGH)
    dropped = int((~keep).sum())
    onsets, pitches = onsets[keep], pitches[keep]
    if not len(pitches):
        raise ValueError("no notes in the piano range")
    order = np.lexsort((pitches, onsets))  # time order, then low to high
    return pitches[order].astype(np.uint8), onsets[order].astype(np.float32), float(t), dropped


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    kind = type(e).__name__
    if isinstance(e, EOFError):
        return "truncated file"
    if isinstance(e, ValueError) and text:
        return text[:120]
    return f"{kind}: {text}"[:120] if text else kind


def _read_one(args):
    """(name, parsed or None, reason or None); never raises, whatever the file holds."""
    path, name = args
    try:
        p, o, d, dropped = read_notes(path)
        return name, (p, o, d, dropped), None
    except (ValueError, OSError) as e:
        return name, None, (str(e) or type(e).__name__).splitlines()[0][:160]
    except Exception as e:  # a parser bug must cost one file, not the whole run
        return name, None, f"unreadable ({type(e).__name__}: {e})".splitlines()[0][:160]


# ---------------------------------------------------------------- folders and splits

def list_midi_files(root) -> list[str]:
    """Names (relative, forward slashes, sorted) of every .mid/.midi under root."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no such folder: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    names = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.lower().endswith(MIDI_SUFFIXES):
                names.append(Path(dirpath, f).relative_to(root).as_posix())
    return sorted(names)


def read_maestro_splits(root) -> dict[str, str] | None:
    """{midi_filename: split} from a maestro-v*.csv at the root, or None."""
    csvs = sorted(Path(root).glob("maestro-v*.csv"))
    if not csvs:
        return None
    with open(csvs[-1], newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"split", "midi_filename"} <= set(reader.fieldnames):
            raise ValueError(f"{csvs[-1].name}: needs 'split' and 'midi_filename' columns")
        return {row["midi_filename"]: row["split"] for row in reader}


def hash_split(names: list[str]) -> dict[str, str]:
    """Deterministic whole-file split: about VALIDATION_PERCENT% go to validation."""
    h = {n: int(hashlib.sha1(n.encode()).hexdigest(), 16) % 1000 for n in names}
    out = {n: "validation" if h[n] < VALIDATION_PERCENT * 10 else "train" for n in names}
    if len(names) >= 2 and "validation" not in out.values():
        out[min(names, key=lambda n: h[n])] = "validation"
    if len(names) >= 2 and "train" not in out.values():
        out[max(names, key=lambda n: h[n])] = "train"
    return out


# ---------------------------------------------------------------- cache

def cache_dir() -> Path:
    base = os.environ.get("MIDIGAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "midigan")
    return Path(base)


def _cache_path(root: Path) -> Path:
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / f"corpus-{key}.npz"


def _load_cache(path: Path) -> dict:
    """{name: (size, mtime_ns, entry)} where entry is parsed arrays or a skip reason."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION:
                return {}
            names, sizes, mtimes = z["names"], z["sizes"], z["mtimes"]
            offs, pitches, onsets = z["offsets"], z["pitches"], z["onsets"]
            durs, drops, reasons = z["durations"], z["dropped"], z["reasons"]
    except Exception:
        return {}  # a missing or damaged cache is simply rebuilt
    out = {}
    for i, n in enumerate(names):
        a, b = offs[i], offs[i + 1]
        entry = str(reasons[i]) if reasons[i] else (pitches[a:b], onsets[a:b], float(durs[i]), int(drops[i]))
        out[str(n)] = (int(sizes[i]), int(mtimes[i]), entry)
    return out


def _save_cache(path: Path, entries: dict) -> None:
    names = sorted(entries)
    parsed = [entries[n][2] for n in names]
    lens = [0 if isinstance(e, str) else len(e[0]) for e in parsed]
    arrays = dict(
        version=np.array(CACHE_VERSION),
        names=np.array(names, dtype=str),
        sizes=np.array([entries[n][0] for n in names], dtype=np.int64),
        mtimes=np.array([entries[n][1] for n in names], dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        pitches=np.concatenate([np.zeros(0, np.uint8)] + [e[0] for e in parsed if not isinstance(e, str)]),
        onsets=np.concatenate([np.zeros(0, np.float32)] + [e[1] for e in parsed if not isinstance(e, str)]),
        durations=np.array([0.0 if isinstance(e, str) else e[2] for e in parsed]),
        dropped=np.array([0 if isinstance(e, str) else e[3] for e in parsed], dtype=np.int64),
        reasons=np.array([e if isinstance(e, str) else "" for e in parsed], dtype=str),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)  # atomic: a reader never sees half a cache
    except OSError:
        pass  # an unwritable cache only costs speed


# ---------------------------------------------------------------- the loader

def load_corpus(root, *, use_cache: bool = True, workers: int | None = None, progress=None) -> Corpus:
    """Parse every MIDI file under root (cached), assign splits, return a Corpus.

    Unreadable files are skipped with a reason; raises ValueError if nothing parses.
    ``progress`` is called as progress(done, total) while files are parsed.
    """
    root = Path(root)
    names = list_midi_files(root)
    if not names:
        raise ValueError(f"no .mid or .midi files under {root}")
    splits = read_maestro_splits(root) or hash_split(names)

    cpath = _cache_path(root)
    old = _load_cache(cpath) if use_cache else {}
    entries, todo = {}, []
    unreadable = {}
    for n in names:
        try:
            st = os.stat(root / n)
        except OSError as e:  # a dangling link, a file removed while we list
            unreadable[n] = (-1, -1, f"cannot open ({e.strerror or type(e).__name__})")
            continue
        prev = old.get(n)
        if prev and prev[0] == st.st_size and prev[1] == st.st_mtime_ns:
            entries[n] = prev
        else:
            todo.append((n, st.st_size, st.st_mtime_ns))
    cached = len(entries)
    entries.update(unreadable)  # not cached: the next run looks again

    jobs = [(str(root / n), n) for n, _s, _m in todo]
    meta = {n: (s, m) for n, s, m in todo}
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    todo_bytes = sum(s for _n, s, _m in todo)
    done = 0
    if workers > 1 and len(jobs) > 8 and todo_bytes >= POOL_MIN_BYTES:
        # biggest files first, small chunks: the workers finish together
        jobs.sort(key=lambda j: -meta[j[1]][0])
        chunk = max(1, min(8, len(jobs) // (workers * 6)))
        try:
            with ProcessPoolExecutor(workers) as ex:
                for n, parsed, reason in ex.map(_read_one, jobs, chunksize=chunk):
                    entries[n] = (*meta[n], parsed if parsed else reason)
                    done += 1
                    if progress:
                        progress(done, len(jobs))
        except (OSError, BrokenProcessPool):
            pass  # no processes here (or a worker died): parse what is left in this one
    for job in jobs:
        if job[1] in entries:
            continue
        n, parsed, reason = _read_one(job)
        entries[n] = (*meta[n], parsed if parsed else reason)
        done += 1
        if progress:
            progress(done, len(jobs))
    if use_cache and todo:
        _save_cache(cpath, {n: e for n, e in entries.items() if n not in unreadable})

    corpus = Corpus(root=str(root), cached=cached)
    for n in names:
        e = entries[n][2]
        if isinstance(e, str):
            corpus.skipped.append((n, e))
            continue
        p, o, d, dropped = e
        corpus.dropped += dropped
        split = splits.get(n, "train")
        if split not in ("train", "validation", "test"):
            split = "train"
        corpus.pieces.append(Piece(n, p, o, d, split))
    if not corpus.pieces:
        raise ValueError(f"none of the {len(names)} MIDI files under {root} could be read")
    return corpus


def windows(pieces: list[Piece], length: int, stride: int | None = None, *,
            together: bool = False) -> np.ndarray:
    """Non-overlapping (or strided) windows of `length` pitches, never crossing pieces.

    Returns an int64 array of shape (N, length); with ``together``, the pieces'
    chord flags (Piece.together, as 0/1) for the same windows instead of pitches.
    """
    stride = stride or length
    out = []
    for p in pieces:
        n = len(p.pitches)
        if n < length:
            continue
        starts = np.arange(0, n - length + 1, stride)
        out.append((p.together if together else p.pitches)[starts[:, None] + np.arange(length)])
    if not out:
        return np.zeros((0, length), dtype=np.int64)
    return np.concatenate(out).astype(np.int64)
