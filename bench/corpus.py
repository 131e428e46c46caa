"""Corpus preprocessing throughput: mido reference vs symusic, cold and warm.

    python bench/corpus.py [FOLDER] [--repeats N] [--mido-every K]

FOLDER defaults to ../shared/corpus/piano-midi-de. Prints, for each way of loading,
seconds, MB/s and notes/s, the speed-up over mido, and the time extrapolated to
MAESTRO (about 1,300 files, 85 MB, 7 M notes). "Cold" means no parse cache (a
fresh, empty cache folder); the MIDI bytes themselves may sit in the OS page
cache, as they do on a second run of any tool. Figures only, no asserts.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from midigan.corpus import list_midi_files, load_corpus, read_notes  # noqa: E402

MAESTRO_MB, MAESTRO_NOTES, MAESTRO_FILES = 85.0, 7.0e6, 1300


def cpu_now() -> float:
    """CPU seconds of this process (and of any finished children)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median wall seconds, CPU seconds of that run)."""
    runs = []
    for _ in range(repeats):
        c, t = cpu_now(), time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t, cpu_now() - c))
    runs.sort()
    return runs[len(runs) // 2]


def fresh_cache() -> None:
    os.environ["MIDIGAN_CACHE"] = tempfile.mkdtemp(prefix="midigan-bench-cache-")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared" / "corpus" / "piano-midi-de"))
    ap.add_argument("--repeats", type=int, default=3, help="median of this many runs (mido: one run)")
    ap.add_argument("--mido-every", type=int, default=1,
                    help="time mido on every K-th file only and scale up (K=1: all files)")
    args = ap.parse_args()
    root = Path(args.folder)
    names = list_midi_files(root)
    sizes = {n: (root / n).stat().st_size for n in names}
    mb = sum(sizes.values()) / 1e6

    fresh_cache()
    ref = load_corpus(root, use_cache=False)
    notes = sum(len(p.pitches) for p in ref.pieces)
    st = ref.stats()
    print(f"corpus {root}: {st['files']} files, {mb:.2f} MB, {notes} notes, {st['hours']} hours, "
          f"{st['skipped']} skipped, {st['dropped_out_of_range']} notes outside 21-108 dropped")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start "
          f"(other jobs share these cores: figures are noisy)")
    rows = []

    def add(label, wall_cpu, frac=1.0):
        seconds, cpu = wall_cpu[0] / frac, wall_cpu[1] / frac
        rows.append((label, seconds, mb / seconds, notes / seconds, cpu, mb / cpu))

    # mido, the reference, one process
    subset = names[:: args.mido_every]
    frac = sum(sizes[n] for n in subset) / (mb * 1e6)
    def mido_all():
        for n in subset:
            try:
                read_notes(root / n, engine="mido")
            except ValueError:
                pass
    add(f"mido reference, 1 process{' (every %d-th file, scaled)' % args.mido_every if args.mido_every > 1 else ''}",
        timed(mido_all, 1), frac)

    # symusic, cold, one process, through load_corpus (reads the files, no cache)
    def cold1():
        fresh_cache()
        load_corpus(root, use_cache=False)
    add("symusic, cold, 1 process", timed(cold1, args.repeats))

    # warm: everything served from the cache
    fresh_cache()
    load_corpus(root)
    c = load_corpus(root)
    add(f"warm cache (load_corpus, {c.cached} of {len(names)} files cached)", timed(lambda: load_corpus(root), max(5, args.repeats)))

    mido_s = rows[0][1]
    print(f"\n{'':58} {'seconds':>8} {'MB/s':>8} {'notes/s':>11} {'vs mido':>8} {'MAESTRO':>9}"
          f" {'CPU s':>7} {'MB/CPU-s':>9}")
    for label, s, mbs, nps, cpu, mbc in rows:
        maestro = max(MAESTRO_MB / mbs, MAESTRO_NOTES / nps)
        print(f"{label:58} {s:8.3f} {mbs:8.2f} {nps:11,.0f} {mido_s / s:7.1f}x {maestro:8.1f}s {cpu:7.3f} {mbc:9.2f}")
    print(f"\nMAESTRO column: max(85 MB / MB/s, 7 M notes / notes/s), for ~{MAESTRO_FILES} files. "
          f"\n"
          f"MB/CPU-s is the per-core rate, which the "
          f"load of other jobs on the machine does not change (wall-clock figures it does).")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
