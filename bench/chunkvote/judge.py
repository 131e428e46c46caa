"""Prototype bench (needs chunk.diff applied): the critic's vote every CHUNK notes, judged as
bench/ablation.py judges (midigan evaluate on the validation split, 600 windows a side).
Arms are K:T:CHUNK (candidates, critic temperature, notes per vote); prints a JSON line each.

    python bench/chunkvote/judge.py export/default.onnx 0,1,2 8:1:100,8:1:25,8:1:10,1:0:100
"""
import json
import sys
import time

from midigan import runtime
from midigan.evaluate import evaluate
model, seeds, arms = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], sys.argv[3].split(",")
orig = runtime.Generator.__init__
CHUNK = {"v": None}
def init(self, *a, **k):
    orig(self, *a, **k)
    if CHUNK["v"]:
        self.critic_chunk = CHUNK["v"]
runtime.Generator.__init__ = init
out = []
for seed in seeds:
    for arm in arms:  # "K:T:CHUNK"
        k, t, c = arm.split(":")
        CHUNK["v"] = int(c)
        t0 = time.time()
        r = evaluate(model, sys.argv[4] if len(sys.argv) > 4 else "../shared/corpus/piano-midi-de", split="validation", preset="piano", count=600, seed=seed,
                     baselines=False, streams=False, candidates=int(k), critic_temperature=float(t))["rows"][0]
        row = dict(seed=seed, arm=arm, timed=r["neural"]["timed"]["accuracy"], pitch=r["neural"]["pitch"]["accuracy"],
                   rhythm=r["features"]["rhythm"], dyn=r["features"]["dynamics"], s=round(time.time()-t0))
        print(json.dumps(row), flush=True)
