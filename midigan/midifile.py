"""A fast Standard MIDI File reader for note onsets, with mido as its reference.

``note_onsets(data)`` returns the note-on events (velocity > 0, drums on
channel 10 excluded) of a type 0 or type 1 file as onset seconds and pitches,
plus the file's length in seconds, exactly as iterating ``mido.MidiFile``
would give them (pitches identical, times equal up to float rounding).

Two paths give the same answer:

- a vectorised numpy path for well-formed files: it computes, for every byte
  position at once, where the event starting there would end, walks that
  table from each track's start (one list lookup per event), then decodes all
  events of the file with array operations;
- a plain Python byte loop that follows mido's reading rules step by step
  (running status, meta and sysex events, chunk lengths checked the way mido
  checks them). The numpy path hands any file it finds unusual to this loop,
  so odd and damaged files get mido's verdict, without mido's cost.

Bad files raise ``ValueError`` with a short reason. Work is linear in the file
size whatever the header claims: nothing is allocated or looped over from a
declared length without checking it against the bytes that are there.
No torch, no mido import on the common path.
"""
from __future__ import annotations

import math
import struct

import numpy as np

DEFAULT_TEMPO = 500000  # microseconds per beat, as mido
MAX_MESSAGE_LENGTH = 1000000  # mido refuses longer meta/sysex data
DRUM_CHANNEL = 9  # channel 10, counted from 0

# Bytes in a channel or system message, status included (mido's SPEC_BY_STATUS).
_MSG_LEN = {}
for _hi, _n in ((0x80, 3), (0x90, 3), (0xA0, 3), (0xB0, 3), (0xC0, 2), (0xD0, 2), (0xE0, 3)):
    for _ch in range(16):
        _MSG_LEN[_hi | _ch] = _n
_MSG_LEN.update({0xF1: 2, 0xF2: 3, 0xF3: 2, 0xF6: 1, 0xF8: 1, 0xFA: 1, 0xFB: 1, 0xFC: 1, 0xFE: 1})

# Meta types mido decodes without ever failing, whatever their data; the others are
# checked by _mido_meta_check (tests compare it with mido's decoder).
_SAFE_META = set(range(0x01, 0x10)) | {0x2F, 0x7F}
_MIDO_META = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x20, 0x21, 0x2F,
              0x51, 0x54, 0x58, 0x59, 0x7F}


_JUMP_LOG = 4
_JUMP = 1 << _JUMP_LOG
# body length of the event whose status (or first running data) byte has this value
_BODY = np.full(256, 3, dtype=np.int32)
_BODY[0xC0:0xE0] = 2
_BODY[:0x80] = 2  # running status: assumed to continue a 3-byte status, checked after the walk
_BODY[0xF0:] = 1 << 30  # system messages, meta and sysex: set per file (or left to the loop)
_MIDO_META_NP = np.zeros(256, dtype=bool)
_MIDO_META_NP[sorted(_MIDO_META)] = True
_MIDO_CHECK = np.zeros(256, dtype=bool)  # meta types to put to mido's decoder (rare ones)
_MIDO_CHECK[sorted(_MIDO_META - _SAFE_META - {0x51})] = True
_RUNNING_OK = np.zeros(16, dtype=bool)
_RUNNING_OK[[0x8, 0x9, 0xA, 0xB, 0xE]] = True
_TWO_DATA = np.zeros(16, dtype=bool)
_TWO_DATA[[0x8, 0x9, 0xA, 0xB, 0xE]] = True


# mido checks a time signature's denominator 2**k with a float log: a few large k fail
_POW2_OK = [math.log(2 ** k, 2) == int(math.log(2 ** k, 2)) for k in range(256)]
_POW2_OK_NP = np.array(_POW2_OK)
_ARANGE = np.arange(1 << 20, dtype=np.int32)


def _arange(m: int) -> np.ndarray:
    global _ARANGE
    if m > len(_ARANGE):
        _ARANGE = np.arange(max(m, 2 * len(_ARANGE)), dtype=np.int32)
    return _ARANGE[:m]


class _Unusual(Exception):
    """The numpy path met something it leaves to the byte loop."""


def read_header(data: bytes) -> tuple[int, int, int, int]:
    """(format, tracks, ticks per beat, offset of the first track chunk), as mido reads them."""
    if len(data) < 8:
        if not data:
            raise ValueError("empty file")
        raise ValueError("truncated file" if b"MThd".startswith(data[:4]) else "not a MIDI file")
    name, size = struct.unpack(">4sL", data[:8])
    if name != b"MThd":
        raise ValueError("not a MIDI file (no MThd header)")
    if size < 6 or len(data) < 14:
        raise ValueError("truncated file")
    fmt, ntracks, division = struct.unpack(">hhh", data[8:14])
    return fmt, ntracks, division, 8 + size


def track_chunks(data: bytes, offset: int, ntracks: int) -> list[tuple[int, int]]:
    """[(data start, declared size)] for the declared tracks, as mido reads them."""
    out = []
    pos = offset
    for _ in range(max(ntracks, 0)):
        if pos + 8 > len(data):
            raise ValueError("truncated file")
        name, size = struct.unpack(">4sL", data[pos:pos + 8])
        if name != b"MTrk":
            raise ValueError("no MTrk header at start of track")
        out.append((pos + 8, size))
        if pos + 8 + size > len(data):
            # mido reads on until the data runs out: always an error
            raise ValueError("truncated file (track length runs past the end)")
        pos += 8 + size
    return out


def note_onsets(data: bytes, *, engine: str = "auto"):
    """(onset seconds float64, pitches int64, length seconds) of a MIDI file's bytes.

    engine: "auto" (numpy, falling back to the byte loop), "numpy" (raise
    ValueError instead of falling back; for tests), or "loop".
    """
    data = bytes(data)
    fmt, ntracks, tpb, offset = read_header(data)
    if fmt == 2:
        raise ValueError("format 2 (asynchronous tracks) not supported")
    if tpb <= 0:
        raise ValueError("SMPTE time division not supported" if tpb < 0 else "0 ticks per beat")
    chunks = track_chunks(data, offset, ntracks)
    if engine == "loop":
        parsed = _parse_loop(data, chunks)
    else:
        try:
            parsed = _parse_numpy(data, chunks)
        except _Unusual as e:
            if engine == "numpy":
                raise ValueError(f"unusual file: {e}") from None
            parsed = _parse_loop(data, chunks)
    note_ticks, pitches, tempo_ticks, tempos, end_tick = parsed
    return _to_seconds(note_ticks, pitches, tempo_ticks, tempos, end_tick, tpb)


def _to_seconds(note_ticks, pitches, tempo_ticks, tempos, end_tick, tpb):
    """Absolute ticks -> seconds through the tempo map, as mido's merged iteration does."""
    order = np.argsort(tempo_ticks, kind="stable")  # track order breaks ties, as mido's merge
    starts = np.concatenate([[0], np.asarray(tempo_ticks, np.int64)[order]])
    scales = np.concatenate([[DEFAULT_TEMPO], np.asarray(tempos, np.float64)[order]]) * 1e-6 / tpb
    base = np.concatenate([[0.0], np.cumsum(np.diff(starts) * scales[:-1])])

    def sec(ticks):
        ticks = np.asarray(ticks, dtype=np.int64)
        k = np.searchsorted(starts, ticks, side="right") - 1
        return base[k] + (ticks - starts[k]) * scales[k]

    return sec(note_ticks), np.asarray(pitches, np.int64), float(sec([end_tick])[0])


# ---------------------------------------------------------------- numpy path

def _parse_numpy(data: bytes, chunks):
    n = len(data)
    if not chunks:
        z = np.zeros(0, np.int64)
        return z, z, z, z, 0
    a = np.frombuffer(data + bytes(16), dtype=np.uint8)
    m = len(a)
    big = n + 1  # "past the end": the walk stops there and the file goes to the loop
    # next byte < 0x80 at or after each position: where a variable-length number ends
    next_low = np.where(a < 0x80, _arange(m), m - 1)
    next_low = np.minimum.accumulate(next_low[::-1])[::-1]
    # bytes in the event body that starts at each position (status or running data byte)
    body = _BODY[a]
    fx = np.flatnonzero(a[:n] >= 0xF0)
    fx_val = a[fx]
    for status, lead in ((0xFF, 2), (0xF0, 1), (0xF7, 1)):
        at = fx[fx_val == status]
        if len(at):
            val, ln = _vlq_at(a, next_low, np.minimum(at + lead, m - 1))
            ok = (ln <= 4) & (val <= MAX_MESSAGE_LENGTH)
            body[at] = np.where(ok, lead + ln + val, big)
    s = np.minimum(next_low + 1, m - 1)
    nxt = np.minimum(s + body[s], big).astype(np.int32)  # where the event starting at i ends
    nxt[big] = big  # past the end stays past the end
    # jump tables: JUMP events at once, so the Python walk takes one step per JUMP events
    far = nxt
    for _ in range(_JUMP_LOG):
        far = far[far]
    far_v, nxt_v = memoryview(far), memoryview(nxt)  # indexing gives Python ints, fast

    sparse, tails, counts = [], [], []  # per track: sparse walk positions, the rest one by one
    for start, size in chunks:
        end = start + size
        if end > n:
            raise _Unusual("track runs past the end of the file")
        p = start
        sp_t = []
        while p < end:
            q = far_v[p]
            if q > end:
                break
            sp_t.append(p)
            p = q
        tail = []
        while p < end:
            tail.append(p)
            p = nxt_v[p]
        if p != end:
            raise _Unusual("events overrun the track length")
        sparse.append(sp_t)
        tails.append(tail)
        counts.append(len(sp_t) * _JUMP + len(tail))
    # expand every sparse position into the JUMP events that follow it, for all tracks at once
    cols = [np.fromiter((x for sp_t in sparse for x in sp_t), dtype=np.int32)]
    for _ in range(_JUMP - 1):
        cols.append(nxt[cols[-1]])
    block = np.stack(cols, axis=1).ravel()
    parts, k = [], 0
    for sp_t, tail in zip(sparse, tails):
        parts.append(block[k:k + len(sp_t) * _JUMP])
        k += len(sp_t) * _JUMP
        parts.append(np.asarray(tail, dtype=np.int32))
    starts = np.concatenate(parts).astype(np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    ends = np.cumsum(counts)
    firsts = ends - counts
    track_of = np.repeat(np.arange(len(chunks), dtype=np.int64), counts)
    e = starts
    if not len(e):
        z = np.zeros(0, np.int64)
        return z, z, z, z, 0

    deltas, dlen = _vlq_at(a, next_low, e)
    if dlen.max() > 4:
        raise _Unusual("long delta time")
    sp = e + dlen  # status byte positions
    c = a[sp].astype(np.int64)
    d1 = a[sp + 1].astype(np.int64)
    d2 = a[sp + 2].astype(np.int64)
    is_status = c >= 0x80
    sets_running = is_status & (c != 0xFF)
    last = np.maximum.accumulate(np.where(sets_running, np.arange(len(e)), -1))
    running = ~is_status
    if running.any():
        lr = last[running]
        if (lr < firsts[track_of[running]]).any():
            raise _Unusual("running status without a previous status")
        eff_r = c[lr]
        if (~_RUNNING_OK[eff_r >> 4]).any():
            raise _Unusual("running status after a short or system message")
    eff = c.copy()
    eff[running] = c[last[running]] if running.any() else eff[running]
    chan = is_status & (c < 0xF0)
    three = chan & _TWO_DATA[(c >> 4) & 0xF]
    if (d1[chan] >= 0x80).any() or (d2[three] >= 0x80).any() or (d1[running] >= 0x80).any():
        raise _Unusual("data byte out of range")

    # ticks: cumulative per track
    # mido 1.3 builds meta events of unknown type without their delta time (a mido
    # quirk, kept so that both readers agree): the time they carry is lost
    unknown_meta = (c == 0xFF) & ~_MIDO_META_NP[d1]
    if unknown_meta.any():
        deltas = np.where(unknown_meta, 0, deltas)
    ticks = np.cumsum(deltas)
    track_base = np.concatenate([[0], ticks])[firsts]  # running total before each track
    ticks = ticks - track_base[track_of]
    end_ticks = [int(ticks[ends[t] - 1]) if ends[t] > firsts[t] else 0 for t in range(len(chunks))]

    # meta events: tempo map, and mido's verdict on the rare ones it may refuse
    metas = np.flatnonzero(c == 0xFF)
    tempo_ticks, tempos = np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(metas):
        mtype = d1[metas]
        mlen, llen = _vlq_at(a, next_low, sp[metas] + 2)
        dstart = sp[metas] + 2 + llen
        tempo = mtype == 0x51
        if (mlen[tempo] < 3).any():
            raise _Unusual("short tempo event")
        sig = mtype == 0x58
        check = _MIDO_CHECK[mtype] & ~(sig & (mlen >= 4) & _POW2_OK_NP[a[np.minimum(dstart + 1, m - 1)]])
        for i in np.flatnonzero(check):
            _mido_meta_check(int(mtype[i]), data[dstart[i]:dstart[i] + mlen[i]])
        ds = dstart[tempo]
        tempo_ticks = ticks[metas[tempo]]
        tempos = (a[ds].astype(np.int64) << 16) | (a[ds + 1].astype(np.int64) << 8) | a[ds + 2]

    for i in np.flatnonzero((c == 0xF0) | (c == 0xF7)).tolist():  # sysex: rare
        length, ln = _vlq_at(a, next_low, sp[i:i + 1] + 1)
        begin = int(sp[i] + 1 + ln[0])
        _check_sysex(data[begin:begin + int(length[0])])

    on = ((eff >> 4) == 0x9) & ((eff & 0xF) != DRUM_CHANNEL)
    pitch = np.where(is_status, d1, c)
    vel = np.where(is_status, d2, d1)
    on &= vel > 0
    return ticks[on], pitch[on], tempo_ticks, tempos, max(end_ticks)


def _vlq_at(a, next_low, pos):
    """(value, length in bytes) of the variable-length numbers at positions pos (values of <= 4 bytes)."""
    ln = next_low[pos] - pos + 1
    val = (a[pos] & 0x7F).astype(np.int64)
    more = np.flatnonzero(ln > 1)  # most delta times are one byte: work on the rest only
    for k in range(1, 4):
        if not len(more):
            break
        val[more] = (val[more] << 7) | (a[np.minimum(pos[more] + k, len(a) - 1)] & 0x7F)
        more = more[ln[more] > k + 1]
    return val, ln


def _mido_meta_check(mtype: int, payload: bytes) -> None:
    """Raise ValueError where mido's meta decoder would refuse this event (no mido import)."""
    n = len(payload)
    if mtype == 0x00:
        ok = n != 1  # sequence number: empty, or two bytes
    elif mtype == 0x20:
        ok = n >= 1  # channel prefix
    elif mtype == 0x51:
        ok = n >= 3  # tempo
    elif mtype == 0x54:  # SMPTE offset: a known frame rate, mido's ranges
        ok = n >= 5 and payload[0] >> 5 <= 3 and payload[1] <= 59 and payload[2] <= 59 and payload[4] <= 99
    elif mtype == 0x58:
        ok = n >= 4 and _POW2_OK[payload[1]]  # time signature
    elif mtype == 0x59:
        ok = n >= 2 and (payload[0] <= 7 or payload[0] >= 256 - 7) and payload[1] in (0, 1)  # key
    else:
        ok = True  # text, port, end of track, sequencer data, unknown types: anything goes
    if not ok:
        raise ValueError(f"bad meta event 0x{mtype:02x} ({n} data bytes)")


def _check_sysex(payload: bytes) -> None:
    """mido refuses sysex data bytes over 127 (the framing F0 ... F7 aside)."""
    if payload[:1] == b"\xf0":
        payload = payload[1:]
    if payload[-1:] == b"\xf7":
        payload = payload[:-1]
    if payload and max(payload) > 127:
        raise ValueError("sysex data byte out of range 0..127")


# ---------------------------------------------------------------- byte loop

def _parse_loop(data: bytes, chunks):
    """mido's reading rules, one byte at a time. Returns what _parse_numpy returns."""
    n = len(data)
    note_ticks, pitches, tempo_ticks, tempos, end_ticks = [], [], [], [], [0]
    msg_len = _MSG_LEN
    for start, size in chunks:
        pos, tick, last = start, 0, None
        try:
            while pos - start != size:  # mido's end-of-track test: exact, else read on
                b = data[pos]
                pos += 1
                delta = b & 0x7F
                while b & 0x80:
                    b = data[pos]
                    pos += 1
                    delta = (delta << 7) | (b & 0x7F)
                tick += delta
                status = data[pos]
                pos += 1
                peek = None
                if status < 0x80:
                    if last is None:
                        raise ValueError("running status without a previous status")
                    peek, status = status, last
                elif status != 0xFF:
                    last = status
                if status == 0xFF:
                    mtype = data[pos]
                    if mtype not in _MIDO_META:
                        tick -= delta  # mido drops the delta time of unknown meta events
                    pos += 1
                    length, pos = _vlq(data, pos)
                    if length > MAX_MESSAGE_LENGTH:
                        raise ValueError(f"message length {length} too large")
                    if pos + length > n:
                        raise IndexError
                    payload = data[pos:pos + length]
                    pos += length
                    if mtype == 0x51:
                        if length < 3:
                            raise ValueError("bad meta event 0x51: IndexError")
                        tempo_ticks.append(tick)
                        tempos.append((payload[0] << 16) | (payload[1] << 8) | payload[2])
                    elif mtype in _MIDO_META and mtype not in _SAFE_META:
                        _mido_meta_check(mtype, payload)
                elif status == 0xF0 or status == 0xF7:
                    length, pos = _vlq(data, pos)
                    if length > MAX_MESSAGE_LENGTH:
                        raise ValueError(f"message length {length} too large")
                    if pos + length > n:
                        raise IndexError
                    _check_sysex(data[pos:pos + length])
                    pos += length
                else:
                    full = msg_len.get(status)
                    if full is None:
                        raise ValueError(f"undefined status byte 0x{status:02x}")
                    if peek is None:
                        body = data[pos:pos + full - 1]
                        pos += full - 1
                    else:
                        if full < 2:
                            raise ValueError(f"running status after 0x{status:02x}")
                        body = bytes([peek]) + data[pos:pos + full - 2]
                        pos += full - 2
                    if pos > n:
                        raise IndexError
                    if any(x > 127 for x in body):
                        raise ValueError("data byte out of range 0..127")
                    if status >> 4 == 0x9 and (status & 0xF) != DRUM_CHANNEL and body[1] > 0:
                        note_ticks.append(tick)
                        pitches.append(body[0])
        except IndexError:
            raise ValueError("truncated file") from None
        if tick >= 2**53:
            raise ValueError("implausible delta times")
        end_ticks.append(tick)
    return (np.array(note_ticks, np.int64), np.array(pitches, np.int64), np.array(tempo_ticks, np.int64),
            np.array(tempos, np.int64), max(end_ticks))


def _vlq(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos
