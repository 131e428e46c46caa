"""Which pieces train, which choose (validation), which judge once (test).

Whole pieces, never parts of one, and deterministically:

- a ``maestro-v*.csv`` at the corpus root decides by its ``split`` column, checked
  strictly: a split value other than train/validation/test, one file listed on two
  sides, or several such CSVs are errors; file names with backslashes, rows naming
  missing files, duplicate rows and files the CSV does not list are counted and
  reported (the last go to train), and are errors with ``strict``;
- otherwise a hash decides per *work*: files of one folder whose names differ only by
  a trailing movement or number (``scn15_1.mid``, ``scn15_2.mid``) stay together, so
  movements of one work never sit on both sides.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

SPLITS = ("train", "validation", "test")
TEST_PERMILLE = 100  # hash < this: test
VALIDATION_PERMILLE = 200  # hash < this: validation; the rest train
_MOVEMENT = re.compile(r"[_\- ]+[A-Za-z]?\d+$")  # "_3", "-p14", "_e12", " 2" at the end of a stem


def assign_splits(root, names: list[str], strict: bool = False) -> tuple[dict[str, str], list[str]]:
    """({file name: split}, notices): by the MAESTRO CSV at root when there is one, else by work."""
    csvs = sorted(p for p in Path(root).glob("maestro-v*.csv") if p.is_file())
    if len(csvs) > 1:
        raise ValueError(f"several MAESTRO CSVs in {root} ({', '.join(p.name for p in csvs)}); keep one")
    if csvs:
        return csv_splits(csvs[0], names, strict)
    return work_splits(names)


# ---------------------------------------------------------------- MAESTRO CSV

def _read_text(path: Path) -> tuple[str, str | None]:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig"), None  # a byte-order mark is dropped
    except UnicodeDecodeError:
        return data.decode("latin-1"), f"{path.name} is not UTF-8: read as Latin-1"


def csv_splits(path: Path, names: list[str], strict: bool = False) -> tuple[dict[str, str], list[str]]:
    """Splits from a MAESTRO-style CSV (columns ``split`` and ``midi_filename``)."""
    text, note = _read_text(path)
    notices = [note] if note else []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [f.strip() for f in reader.fieldnames or []]
    if not {"split", "midi_filename"} <= set(fields):
        raise ValueError(f"{path.name}: needs 'split' and 'midi_filename' columns")
    reader.fieldnames = fields
    listed, counts = {}, defaultdict(int)
    for line, row in enumerate(reader, start=2):
        split, name = (row.get("split") or ""), (row.get("midi_filename") or "")
        if split not in SPLITS:
            raise ValueError(f"{path.name} line {line}: split {split!r} is not one of {', '.join(SPLITS)}")
        if "\\" in name:
            name = name.replace("\\", "/")
            counts["backslash"] += 1
        name = name.removeprefix("./")
        if name in listed:
            if listed[name] != split:
                raise ValueError(f"{path.name} line {line}: {name} is listed as both {listed[name]} and {split}")
            counts["duplicate"] += 1
        listed[name] = split
    present = set(names)
    missing = [n for n in listed if n not in present]
    unlisted = [n for n in names if n not in listed]
    found = {
        "backslash": (counts["backslash"], "file names with backslashes, read as folders"),
        "duplicate": (counts["duplicate"], "duplicate rows"),
        "missing": (len(missing), "rows naming files that are not there" + _first(missing)),
        "unlisted": (len(unlisted), "files not in the CSV: put in train" + _first(unlisted)),
    }
    for count, what in found.values():
        if count:
            msg = f"{path.name}: {count} {what}"
            if strict:
                raise ValueError(msg + " (--strict)")
            notices.append(msg)
    return {n: listed.get(n, "train") for n in names}, notices


def _first(names: list[str]) -> str:
    return f" (first: {names[0]})" if names else ""


# ---------------------------------------------------------------- hash by work

def work_of(name: str) -> str:
    """The work a file belongs to: its folder and its stem less a trailing movement number."""
    folder, _, file = name.rpartition("/")
    stem = file.rsplit(".", 1)[0]
    return f"{folder}/{_MOVEMENT.sub('', stem) or stem}"


def _permille(name: str) -> int:
    return int(hashlib.sha1(os.fsencode(name)).hexdigest(), 16) % 1000  # any name, even not valid UTF-8


def work_splits(names: list[str]) -> tuple[dict[str, str], list[str]]:
    """Deterministic split by work: ~10% test, ~10% validation, the rest train.

    The hash is of the work's name (of the file's, for a work of one file), so adding
    files to a folder never moves the others.
    """
    members = defaultdict(list)
    for n in names:
        members[work_of(n)].append(n)
    groups = {}
    for work, files in members.items():
        if len(files) > 1:
            groups[work] = files
        else:
            groups[files[0]] = files
    h = {g: _permille(g) for g in groups}
    side = {g: "test" if v < TEST_PERMILLE else "validation" if v < VALIDATION_PERMILLE else "train"
            for g, v in h.items()}
    _fill_empty(side, h)
    multi = [files for files in groups.values() if len(files) > 1]
    notices = [f"{len(multi)} works of several files ({sum(map(len, multi))} files) kept whole "
               "on one side of the split"] if multi else []
    return {n: side[g] for g, files in groups.items() for n in files}, notices


def _fill_empty(side: dict, h: dict) -> None:
    """With at least three works no split is left empty: the biggest gives its nearest work."""
    if len(side) < 3:
        if len(side) == 2 and "train" not in side.values():
            side[max(h, key=h.get)] = "train"
        return
    for split in SPLITS:
        if split not in side.values():
            counts = Counter(side.values())
            pool = [g for g in side if side[g] == max(counts, key=counts.get)]
            side[(max if split == "train" else min)(pool, key=h.get)] = split
