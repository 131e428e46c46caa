"""Corpus robustness: mutated MIDI files are parsed or skipped with a reason, never a crash or hang.

Seeded and bounded in time. Mutates real files from the shared piano-midi-de corpus
(or, where it is absent, files built here with mido): bit flips, truncation,
swapped chunks, huge delta times, lengths that lie, inserted and deleted bytes.
Run with ``pytest -s`` to see the counts.
"""
from __future__ import annotations

import random
import re
import signal
import struct
import time
from collections import Counter
from pathlib import Path

import mido
import numpy as np
import pytest

from midigan.corpus import _read_one, list_midi_files, load_corpus, read_notes

from .conftest import SHARED_CORPUS

SEED = 20240611
MUTANTS = 3000  # at least 1,000 are required
TIME_BUDGET_S = 40.0  # stop making mutants after this (never before 1,000)
PER_FILE_LIMIT_S = 5.0  # a file that takes longer counts as a hang
MIDO_SAMPLE = 100  # mutants also read with mido, to compare verdicts

SHARED = [SHARED_CORPUS]  # ../shared/corpus/piano-midi-de beside the checkout


def _sources(tmp_path: Path) -> tuple[list[bytes], str]:
    for root in SHARED:
        if root.is_dir():
            names = list_midi_files(root)
            sized = sorted(names, key=lambda n: (root / n).stat().st_size)
            pick = sized[: len(sized) // 2 : max(1, len(sized) // 40)][:20]  # small and middling files
            return [(root / n).read_bytes() for n in pick], f"{len(pick)} files of {root}"
    rng = random.Random(SEED)
    out = []
    for k in range(8):
        mf = mido.MidiFile(type=1, ticks_per_beat=480)
        cond = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=rng.randint(300000, 900000)),
                               mido.MetaMessage("time_signature", numerator=3, denominator=4),
                               mido.MetaMessage("key_signature", key="D")])
        mf.tracks.append(cond)
        for _hand in range(2):
            tr = mido.MidiTrack()
            for i in range(400):
                p = rng.randint(30, 95)
                tr.append(mido.Message("note_on", note=p, velocity=rng.randint(1, 127), time=rng.choice([0, 60, 120])))
                if i % 17 == 0:
                    tr.append(mido.Message("control_change", control=64, value=rng.choice([0, 127])))
                tr.append(mido.Message("note_on", note=p, velocity=0, time=rng.choice([0, 60])))
            mf.tracks.append(tr)
        path = tmp_path / f"src{k}.mid"
        mf.save(str(path))
        out.append(path.read_bytes())
    return out, "8 files built with mido (shared corpus absent)"


def _chunks(data: bytes) -> list[tuple[int, int]]:
    """(offset, total length) of each chunk, following the declared lengths."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        size = struct.unpack(">L", data[pos + 4:pos + 8])[0]
        out.append((pos, min(8 + size, len(data) - pos)))
        pos += 8 + size
    return out


def _huge_vlq(rng) -> bytes:
    n = rng.choice([4, 5, 8, 12])
    return bytes([0xFF] * (n - 1) + [0x7F])


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    b = bytearray(data)
    kind = rng.choice(["bitflip", "bitflip", "truncate", "swap_chunks", "huge_delta", "lying_track_length",
                       "lying_header", "lying_meta_length", "insert", "delete", "combo"])
    if kind == "combo":
        out, k1 = mutate(data, rng)
        out, k2 = mutate(out, rng)
        return out, f"{k1}+{k2}"
    if kind == "bitflip":
        for _ in range(rng.choice([1, 1, 2, 5, 20])):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        b = b[: rng.randrange(len(b))]
    elif kind == "swap_chunks":
        ch = _chunks(bytes(b))
        if len(ch) >= 2:
            i, j = sorted(rng.sample(range(len(ch)), 2))
            (oi, li), (oj, lj) = ch[i], ch[j]
            b = b[:oi] + b[oj:oj + lj] + b[oi + li:oj] + b[oi:oi + li] + b[oj + lj:]
    elif kind == "huge_delta":
        ch = [c for c in _chunks(bytes(b)) if b[c[0]:c[0] + 4] == b"MTrk"]
        if ch:
            off, ln = rng.choice(ch)
            if rng.random() < 0.5:  # a huge delta before the first event, chunk length kept honest
                v = _huge_vlq(rng)
                size = struct.unpack(">L", b[off + 4:off + 8])[0]
                first = off + 8
                # replace the first event's (single byte) delta by a long one
                b = b[:first] + v + b[first + 1:]
                b[off + 4:off + 8] = struct.pack(">L", size + len(v) - 1)
            else:  # overwrite bytes somewhere inside with a long run of continuation bytes
                i = rng.randrange(off + 8, max(off + 9, off + ln))
                v = _huge_vlq(rng)
                b[i:i + len(v)] = v
    elif kind == "lying_track_length":
        ch = _chunks(bytes(b))
        if len(ch) >= 2:
            off, _ln = rng.choice(ch[1:])
            size = struct.unpack(">L", b[off + 4:off + 8])[0]
            new = rng.choice([0, 1, max(0, size - rng.randint(1, 50)), size + rng.randint(1, 50),
                              0x7FFFFFFF, 0xFFFFFFFF, len(b) * 2])
            b[off + 4:off + 8] = struct.pack(">L", new)
    elif kind == "lying_header":
        field = rng.choice(["hlen", "ntracks", "format", "division"])
        if field == "hlen":
            b[4:8] = struct.pack(">L", rng.choice([0, 5, 7, 100, 0xFFFFFFFF]))
        elif field == "ntracks":
            b[10:12] = struct.pack(">H", rng.choice([0, 1, 3, 100, 0x7FFF, 0xFFFF]))
        elif field == "format":
            b[8:10] = struct.pack(">H", rng.choice([0, 2, 3, 0xFFFF]))
        else:
            b[12:14] = struct.pack(">H", rng.choice([0, 1, 0x7FFF, 0xE728, 0xFFFF]))
    elif kind == "lying_meta_length":
        metas = [i for i in range(len(b) - 3) if b[i] == 0xFF and b[i + 1] in (0x01, 0x03, 0x51, 0x58, 0x59, 0x2F)]
        if metas:
            i = rng.choice(metas)
            b[i + 2] = rng.choice([0, 1, 2, 0x7F, 0x80, 0xFF])
    elif kind == "insert":
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 3, 16])))
    elif kind == "delete":
        i = rng.randrange(len(b))
        del b[i:i + rng.choice([1, 2, 3, 16])]
    return bytes(b), kind


class _Hang(Exception):
    pass


def _alarm(_sig, _frame):
    raise _Hang


def test_fuzzed_midi_parsed_or_skipped(tmp_path):
    sources, where = _sources(tmp_path)
    rng = random.Random(SEED)
    folder = tmp_path / "mutants"
    folder.mkdir()
    verdicts, kinds, reasons = {}, Counter(), Counter()
    slowest = (0.0, "")
    old = signal.signal(signal.SIGALRM, _alarm)
    t0 = time.perf_counter()
    try:
        i = 0
        while i < MUTANTS and (i < 1000 or time.perf_counter() - t0 < TIME_BUDGET_S):
            data, kind = mutate(rng.choice(sources), rng)
            name = f"m{i:05d}.mid"
            (folder / name).write_bytes(data)
            signal.setitimer(signal.ITIMER_REAL, PER_FILE_LIMIT_S)
            start = time.perf_counter()
            try:
                _name, parsed, reason = _read_one((str(folder / name), name, "symusic"))
            except _Hang:
                pytest.fail(f"{name} ({kind}) took more than {PER_FILE_LIMIT_S} s")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            took = time.perf_counter() - start
            slowest = max(slowest, (took, f"{name} ({kind})"))
            assert (parsed is None) != (reason is None), name
            if parsed is not None:
                p, o, d = parsed.pitches, parsed.onsets, parsed.length
                assert p.dtype == np.uint8 and len(p) == len(o) == len(parsed.starts) > 0, name
                assert np.all(np.diff(o) >= 0) and np.all(np.diff(parsed.starts) >= 0), name
                assert np.all(parsed.durations >= 0) and parsed.velocities.min() >= 1, name
                assert 21 <= p.min() and p.max() <= 108 and 0 <= d <= 12 * 3600 and np.isfinite(d), name
            else:
                assert reason.strip() and "\n" not in reason and len(reason) <= 160, (name, reason)
                reasons[re.sub(r"\d+|0x[0-9a-f]+", "N", reason.split(" (")[0].split(":")[0])[:40]] += 1
            verdicts[name] = reason
            kinds[kind.split("+")[0]] += 1
            i += 1
    finally:
        signal.signal(signal.SIGALRM, old)
    elapsed = time.perf_counter() - t0
    n = len(verdicts)
    skipped = sum(r is not None for r in verdicts.values())
    assert n >= 1000

    # the loader itself (process pool included) takes the whole folder and agrees
    t1 = time.perf_counter()
    c = load_corpus(folder, use_cache=False, engine="symusic")
    load_s = time.perf_counter() - t1
    assert len(c.pieces) + len(c.skipped) == n
    assert dict(c.skipped) == {k: v for k, v in verdicts.items() if v is not None}

    # mido's verdict on a sample, for the record: symusic is more lenient with damaged
    # files (lying track counts, for one), so the verdicts may differ; the counts are printed
    agree = both_parse = same_notes = 0
    for name in sorted(verdicts)[:: max(1, n // MIDO_SAMPLE)]:
        try:
            ref = read_notes(folder / name, engine="mido")
        except ValueError:
            ref = None
        if (ref is None) == (verdicts[name] is not None):
            agree += 1
        if ref is not None and verdicts[name] is None:
            both_parse += 1
            fast = read_notes(folder / name, engine="symusic")
            same_notes += np.array_equal(fast.pitches, ref.pitches) and np.array_equal(fast.starts, ref.starts)
    sample = len(sorted(verdicts)[:: max(1, n // MIDO_SAMPLE)])

    print(f"\nfuzz: {n} mutants of {where}, seed {SEED}: {n - skipped} parsed, {skipped} skipped "
          f"in {elapsed:.1f} s (slowest file {slowest[0] * 1000:.0f} ms: {slowest[1]}); "
          f"load_corpus on the folder {load_s:.1f} s")
    print("fuzz: mutations " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print("fuzz: skip reasons " + ", ".join(f"{k!r} {v}" for k, v in reasons.most_common()))
    print(f"fuzz: mido agrees on parse/skip for {agree} of {sample} sampled mutants; "
          f"identical notes on {same_notes} of the {both_parse} both parse")
