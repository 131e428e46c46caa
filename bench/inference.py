"""Inference: the shipped generator (and its critic) in onnxruntime vs the same weights in torch eager.

For an event model: p50/p99 latency of one generator step (one note) at batch 1 and at
batch K (the K candidate phrases the critic chooses among), the cost of a whole phrase
(seq_len steps, plus the critic's vote at batch K), FLOPs, and the achieved GFLOP/s next to
this CPU's measured matrix-multiply peak; then the live stream's per-note cost, as the
player asks for it. For the paper's sequence model: latency per sequence at batch 1 and 16.
Needs torch for the comparison (pip install '.[train]'); run:
python bench/inference.py [--model export/default.onnx] [--runs 50] [--threads 1,2]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from midigan import events as ev


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


def flops_per_note(cfg: dict, kind: str) -> tuple[float, float]:
    """(generator, critic) multiply-adds x 2 per note: LSTM layers + output heads; the critic's
    bidirectional LSTM over each note of a window (its final layer, once per window, left out)."""
    h = cfg["hidden"]
    if kind == "sequence":
        return 2 * 4 * h * (cfg["noise_dim"] + h) + 2 * h, 0.0
    i = 5 * cfg["emb"] + cfg["noise_dim"]
    lstm = sum(2 * 4 * h * ((i if k == 0 else h) + h) for k in range(cfg["layers"]))
    dh = cfg["d_hidden"]
    return lstm + 2 * h * ev.WIDTH, 2 * 2 * 4 * dh * (5 * cfg["d_emb"] + dh)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--runs", type=int, default=50, help="phrases (sequences) timed per row")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    args = ap.parse_args()
    threads_list = [int(x) for x in args.threads.split(",")]

    import torch

    from midigan.runtime import Generator
    from midigan.training.config import Config, make_config
    from midigan.training.model import build

    gen = Generator(args.model)
    meta = gen.meta
    T = gen.seq_len
    cfg_json = json.loads(meta["config_json"])
    fl, fl_d = flops_per_note(cfg_json, gen.kind)
    K = gen.candidates if gen.timed else 1
    print(f"model {gen.path} ({meta['output']}, config {meta['config']}, {T} notes a phrase, "
          f"{K} candidate(s)): {fl / 1e6:.3f} MFLOP per note, {fl * T / 1e6:.1f} MFLOP per phrase"
          + (f"; critic {fl_d * T / 1e6:.1f} MFLOP per window" if K > 1 else ""))
    print("matmul peak: " + ", ".join(f"{matmul_peak(t):.1f} GFLOP/s on {t} thread(s)" for t in threads_list))

    # The same architecture in torch eager. Its weights are a fresh initialisation: the
    # checkpoint is not shipped, and the arithmetic (so the timing) does not depend on them.
    cfg = make_config(cfg_json, Config())
    G, D = build(cfg)
    G.eval(), D.eval()

    if not gen.timed:
        sequence_table(gen, G, threads_list, args, fl)
        return

    print(f"\n{'engine':<12}{'threads':>8}{'batch':>6}{'p50 ms/note':>13}{'p99 ms/note':>13}"
          f"{'p50 ms/phrase':>15}{'p99 ms/phrase':>15}{'critic ms':>11}{'GFLOP/s':>9}")
    for threads in threads_list:
        torch.set_num_threads(threads)
        g = Generator(args.model, threads=threads)
        for batch in sorted({1, K}):
            vote = batch > 1  # batch K: a phrase's candidates, then the critic picks one
            inputs = PhraseInputs(g, batch, T)
            res = {"onnxruntime": time_phrases(ort_phrase(g, inputs, vote), args.runs),
                   "torch eager": time_phrases(torch_phrase(G, D, inputs, vote), args.runs)}
            for name, (notes, phrases, critic) in res.items():
                gf = (fl * T * batch + (fl_d * T * batch if vote else 0)) / np.median(phrases) / 1e9
                print(f"{name:<12}{threads:>8}{batch:>6}{pct(notes, 50):>13.4f}{pct(notes, 99):>13.4f}"
                      f"{pct(phrases, 50):>15.2f}{pct(phrases, 99):>15.2f}"
                      f"{(f'{pct(critic, 50):.3f}' if vote else '-'):>11}{gf:>9.2f}")
            o, t = res["onnxruntime"][1], res["torch eager"][1]
            print(f"{'':<26}speed-up onnxruntime vs torch (p50 per phrase): {np.median(t) / np.median(o):.2f}x")

    # The live stream: phrase after phrase, as the player asks for them (1 thread, batch K,
    # Gumbel noise, masks and the critic's vote included); the first phrase delays the first note.
    torch.set_num_threads(1)
    print()
    for k in sorted({K, 1}, reverse=True):
        s = gen.stream(seed=0, candidates=k)
        t0 = time.perf_counter()
        next(s)
        first = time.perf_counter() - t0
        times = []
        for _ in range(max(args.runs, 20)):  # enough phrases for a stable p99
            t0 = time.perf_counter()
            next(s)
            times.append((time.perf_counter() - t0) / T)
        print(f"live stream, {k} candidate(s): per-note cost p50 {pct(times, 50):.4f} ms, "
              f"p99 {pct(times, 99):.4f} ms; first phrase {first * 1e3:.1f} ms")


class PhraseInputs:
    """A phrase's inputs, drawn once, so both engines run the same arithmetic."""

    def __init__(self, g, batch: int, T: int):
        rng = np.random.default_rng(0)
        self.batch, self.T = batch, T
        self.z = rng.standard_normal((batch, g.noise_dim)).astype(np.float32)
        self.prev = np.tile(np.array([ev.START[a] for a in ev.ATTRS], np.int64), (batch, 1))
        self.state = np.zeros((g.layers, batch, g.hidden), np.float32)
        scale = np.repeat(g.temperatures, [ev.SIZES[a] for a in ev.ATTRS]).astype(np.float32)
        self.gumbel = (rng.gumbel(size=(T, batch, ev.WIDTH)) * scale).astype(np.float32)
        self.bias = np.zeros((batch, ev.WIDTH), np.float32)


def ort_phrase(g, x: PhraseInputs, vote: bool):
    def run(note_times):
        prev, h, c, grid = x.prev, x.state, x.state, np.zeros(x.batch, np.int64)
        events = np.empty((x.batch, x.T, 4), np.int64)
        where = np.empty((x.batch, x.T), np.int64)
        for t in range(x.T):
            t0 = time.perf_counter()
            prev, h, c = g.session.run(None, {"noise": x.z, "prev": prev, "pos": grid % ev.BAR_STEPS, "h": h,
                                              "c": c, "gumbel": x.gumbel[t], "bias": x.bias})
            note_times.append(time.perf_counter() - t0)
            grid = grid + prev[:, 0]
            events[:, t], where[:, t] = prev, grid
        if vote:
            t0 = time.perf_counter()
            g.critic.score(events, where % ev.BAR_STEPS).argmax()
            return time.perf_counter() - t0
        return None
    return run


def torch_phrase(G, D, x: PhraseInputs, vote: bool):
    import torch

    z, prev0, s = (torch.from_numpy(a) for a in (x.z, x.prev, x.state))
    gumbel, bias = torch.from_numpy(x.gumbel), torch.from_numpy(x.bias)

    @torch.no_grad()
    def run(note_times):
        prev, h, c, grid = prev0, s, s, torch.zeros(x.batch, dtype=torch.long)
        events, where = [], []
        for t in range(x.T):
            t0 = time.perf_counter()
            prev, h, c = G.step(z, prev, grid % ev.BAR_STEPS, h, c, gumbel[t], bias)
            note_times.append(time.perf_counter() - t0)
            grid = grid + prev[:, 0]
            events.append(prev)
            where.append(grid)
        if vote:
            t0 = time.perf_counter()
            D(torch.stack(events, 1), torch.stack(where, 1) % ev.BAR_STEPS).argmax()
            return time.perf_counter() - t0
        return None
    return run


def time_phrases(run, runs):
    """(per-note times, per-phrase times, critic times) over `runs` phrases, after warm-up."""
    for _ in range(3):
        run([])
    notes, phrases, critic = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        c = run(notes)
        phrases.append(time.perf_counter() - t0)
        if c is not None:
            critic.append(c)
    return notes, phrases, critic


def sequence_table(gen, G, threads_list, args, fl):
    """The paper's model: one graph call per sequence of seq_len notes."""
    import torch

    from midigan.runtime import Generator

    T = gen.seq_len
    print(f"\n{'engine':<12}{'threads':>8}{'batch':>6}{'p50 ms/seq':>12}{'p99 ms/seq':>12}"
          f"{'p99 ms/note':>13}{'GFLOP/s':>9}")
    for threads in threads_list:
        torch.set_num_threads(threads)
        g = Generator(args.model, threads=threads)
        for batch in (1, 16):
            z = np.random.default_rng(0).standard_normal((batch, T, gen.noise_dim)).astype(np.float32)
            zt = torch.from_numpy(z)
            res = {"onnxruntime": _time(lambda: g._run_sequence(z), args.runs),
                   "torch eager": _time(lambda: G(zt), args.runs, no_grad=True)}
            for name, ts in res.items():
                gf = fl * T * batch / np.median(ts) / 1e9
                print(f"{name:<12}{threads:>8}{batch:>6}{pct(ts, 50):>12.2f}{pct(ts, 99):>12.2f}"
                      f"{pct(ts, 99) / T:>13.4f}{gf:>9.2f}")
            print(f"{'':<26}speed-up onnxruntime vs torch (p50): "
                  f"{np.median(res['torch eager']) / np.median(res['onnxruntime']):.2f}x")
    s = gen.stream(seed=0)
    next(s)
    times = []
    for _ in range(max(args.runs, 50)):
        t0 = time.perf_counter()
        next(s)
        times.append((time.perf_counter() - t0) / T)
    print(f"\nlive stream per-note cost: p50 {pct(times, 50):.4f} ms, p99 {pct(times, 99):.4f} ms")


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
