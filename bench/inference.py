"""Inference: the shipped generator in onnxruntime vs the same weights in torch eager.

Prints p50/p99 latency per sequence at batch 1 and 16 with 1 and 2 threads, the
per-note cost of the live stream, FLOPs per sequence, and the achieved GFLOP/s
next to this CPU's measured matrix-multiply peak. Needs torch for the comparison
(pip install '.[train]'); run: python bench/inference.py [--model export/default.onnx]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def matmul_peak(threads: int) -> float:
    """GFLOP/s of a large float32 matmul in torch with `threads` threads (the BLAS peak)."""
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        a @ b
        n += 1
    return 2 * 1024 ** 3 * n / (time.perf_counter() - t0) / 1e9


def flops_per_note(meta: dict) -> float:
    """Multiply-adds x 2 of one generator step (LSTM layers + output layer)."""
    cfg = __import__("json").loads(meta["config_json"])
    if meta["output"] == "sequence":
        h, i = cfg["hidden"], cfg["noise_dim"]
        return 2 * 4 * h * (i + h) + 2 * h
    h, L = cfg["hidden"], cfg["layers"]
    i = cfg["emb"] + cfg["noise_dim"] + (3 * cfg["hint_emb"] if cfg.get("recall") else 0)
    lstm = sum(2 * 4 * h * ((i if k == 0 else h) + h) for k in range(L))
    return lstm + 2 * h * 88


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()

    import torch

    from midigan.recall import next_hints
    from midigan.runtime import Generator
    from midigan.training.config import Config, make_config
    from midigan.training.model import build

    gen = Generator(args.model)
    meta = gen.meta
    T = gen.seq_len
    fl = flops_per_note(meta)
    print(f"model {gen.path} ({meta['output']}, config {meta['config']}): "
          f"{fl / 1e6:.2f} MFLOP per note, {fl * T / 1e6:.1f} MFLOP per {T}-note sequence")
    print(f"matmul peak: {matmul_peak(1):.1f} GFLOP/s on 1 thread, {matmul_peak(2):.1f} on 2")

    # The same architecture in torch eager. Its weights are a fresh initialisation: the
    # checkpoint is not shipped, and the arithmetic (so the timing) does not depend on them.
    cfg = make_config(__import__("json").loads(meta["config_json"]), Config())
    G, _ = build(cfg)
    G.eval()

    print(f"\n{'engine':<12}{'threads':>8}{'batch':>6}{'p50 ms/seq':>12}{'p99 ms/seq':>12}"
          f"{'p99 ms/note':>13}{'GFLOP/s':>9}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        g = Generator(args.model, threads=threads)
        for batch in (1, 16):
            res = {}
            rng = np.random.default_rng(0)
            if gen.kind != "sequence":
                z = rng.standard_normal((batch, gen.noise_dim)).astype(np.float32)
                ort_t = _time(lambda: g._run_steps(z, g.initial_state(batch), np.full(batch, g.bos), T, rng, 1.0),
                              args.runs)
                zt = torch.from_numpy(z)

                @torch.no_grad()
                def torch_seq():  # the same loop in torch, recall hints included
                    h = torch.zeros(cfg.layers, batch, cfg.hidden)
                    c = torch.zeros_like(h)
                    prev = torch.full((batch,), G.bos, dtype=torch.long)
                    keys = np.zeros((batch, 0), np.int64)
                    for _ in range(T):
                        hint = torch.from_numpy(next_hints(keys, cfg.recall)) if cfg.recall else None
                        logits, h, c = G.step(zt, prev, h, c, hint)
                        prev = torch.argmax(logits, -1)
                        if cfg.recall:
                            keys = np.concatenate([keys[:, -cfg.recall - 2:], prev.numpy()[:, None] % 88], axis=1)
                torch_t = _time(torch_seq, args.runs)
            else:
                z = rng.standard_normal((batch, T, gen.noise_dim)).astype(np.float32)
                ort_t = _time(lambda: g._run_sequence(z), args.runs)
                zt = torch.from_numpy(z)
                torch_t = _time(lambda: G(zt), args.runs, no_grad=True)
            res = {"onnxruntime": ort_t, "torch eager": torch_t}
            for name, ts in res.items():
                gf = fl * T * batch / np.median(ts) / 1e9
                print(f"{name:<12}{threads:>8}{batch:>6}{pct(ts, 50):>12.2f}{pct(ts, 99):>12.2f}"
                      f"{pct(ts, 99) / T:>13.4f}{gf:>9.2f}")
            print(f"{'':<12}{'':>8}{'':>6}  speed-up onnxruntime vs torch (p50): "
                  f"{np.median(torch_t) / np.median(ort_t):.2f}x")

    # The live stream: one note at a time (batch 1, 1 thread), as the player asks for them.
    s = gen.stream(seed=0)
    next(s)
    times = []
    for _ in range(max(args.runs // 2, 50)):  # sequences; enough of them for a stable p99
        t0 = time.perf_counter()
        next(s)
        times.append((time.perf_counter() - t0) / T)
    print(f"\nlive stream per-note cost: p50 {pct(times, 50):.4f} ms, p99 {pct(times, 99):.4f} ms "
          f"(target p99 <= 0.2 ms)")


def _time(fn, runs, no_grad=False):
    import torch
    for _ in range(5):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        if no_grad:
            with torch.no_grad():
                fn()
        else:
            fn()
        ts.append(time.perf_counter() - t0)
    return ts


if __name__ == "__main__":
    main()
