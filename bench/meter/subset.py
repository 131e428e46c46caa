"""PROTOTYPE bench: a corpus folder of the pieces in duple metre only, to ask whether the model's
4-beat bar positions (wrong for the 3/4, 6/8, 3/8 ... pieces: about 40 % of the training notes
here) are what keeps its timing apart from the music's.

    python bench/meter/subset.py ../shared/corpus/piano-midi-de /tmp/duple
    midigan train /tmp/duple --out runs/duple                                  # 16 min here
    midigan export runs/duple/checkpoint.pt -o runs/duple/duple.onnx --candidates 8 --critic-temperature 1 --temperature velocity=0.7
    python bench/ablation.py runs/duple/duple.onnx --reference /tmp/duple --count 600 --seed 0,1,2
    python bench/ablation.py export/default.onnx --reference /tmp/duple --count 600 --seed 0,1,2

Links (symbolic) every MIDI file whose time signatures all have bars of 1, 2, 4 or 8 beats (or
none: 4/4) under the same relative path, so the split by work puts each piece where it is in the
whole corpus: 134 of 295 files. The run below was made from 133 (a first version of this script
read `*.mid` only and missed `debussy/DEB_PASS.MID`): train 110 pieces (236,404 notes),
validation 13, test 10.

Measured here (twentieth session; judged against the duple pieces' validation windows, 600 a
side, judge seeds 0, 1, 2; means):

    model                                  vote   timed  pitch  rhythm  dynamics
    shipped default (all metres, 241)      8      0.703  0.688  0.743   0.766
                                           none   0.705  0.690  0.767   0.770
    duple pieces only (110), same recipe   8      0.729  0.732  0.753   0.773
                                           none   0.722  0.723  0.767   0.771

The model trained on duple pieces alone, whose bar positions are all right, is further from
them than the shipped model trained on every piece (best validation NLL 6.022 at step 2,250,
then overfitting). Less data costs more than the wrong bar positions of the rest: a metre
input for the whole corpus may still help, but it is not what holds the timed judge at 0.7.
(Against these 13 pieces the judge's spread across splits is wide: per-seed standard errors
up to 0.10.)
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import mido

DUPLE = {1.0, 2.0, 4.0, 8.0}  # beats per bar


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", help="the corpus folder")
    ap.add_argument("out", help="new folder of links (must not exist)")
    a = ap.parse_args()
    root, out = Path(a.corpus).resolve(), Path(a.out)
    out.mkdir(parents=True)
    kept = 0
    for f in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".mid", ".midi")):
        sigs = [(m.numerator, m.denominator) for t in mido.MidiFile(f).tracks for m in t if m.type == "time_signature"]
        if {n * 4 / d for n, d in sigs} <= DUPLE:  # none: 4/4
            link = out / f.relative_to(root)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(f, link)
            kept += 1
    print(f"linked {kept} files in duple metre into {out}")


if __name__ == "__main__":
    main()
