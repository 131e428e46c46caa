"""Files: the one atomic write, and where the shipped models and presets live."""
from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path, write, *, sync: bool = False) -> None:
    """Call write(tmp) on a temp file beside `path`, then rename it into place.

    A failure (or a kill) leaves the old file as it was. ``sync`` flushes the bytes to
    disk before the rename, for files a crash must not leave empty (checkpoints).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"output path is a folder: {path}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {parent}")
    tmp = parent / f".{path.name}.tmp{os.getpid()}"
    try:
        write(tmp)
        if sync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def data_dir(kind: str) -> Path:
    """The shipped `export` or `presets` folder: inside the installed package, or in a checkout."""
    here = Path(__file__).resolve().parent
    for d in (here / "_data" / kind, here.parent / kind):
        if d.is_dir():
            return d
    return here.parent / kind
