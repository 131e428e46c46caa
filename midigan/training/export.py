"""Checkpoint -> self-describing ONNX files, checked against torch before they are kept.

An event model exports two graphs: the generator's step (OUTPUT.onnx) and, when its
config samples several candidate phrases, the discriminator that picks among them
(OUTPUT-critic.onnx, named in the generator's metadata). The seed model exports its
one sequence graph.
"""
from __future__ import annotations

import datetime
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import events as ev
from .. import runtime
from ..files import write_atomic
from ..music import PITCH_HIGH, PITCH_LOW
from .checkpoint import load_checkpoint
from .config import Config, make_config
from .model import build

OPSET = 17
TOLERANCE = 1e-4
PIANO_MIDI_DE = "Bernd Krueger, www.piano-midi.de, CC BY-SA 3.0 DE"


class _Step(torch.nn.Module):
    """The exported graph of an event generator: one sampled note, state in and out."""

    def __init__(self, G):
        super().__init__()
        self.G = G

    def forward(self, noise, prev, pos, h, c, gumbel, bias):
        return self.G.step(noise, prev, pos, h, c, gumbel, bias)


class _Mean(torch.nn.Module):
    """The exported encoder: a passage's posterior mean (its variance is for training only)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, events, pos):
        return self.encoder(events, pos)[0]


def _example(cfg: Config, batch: int, seed: int = 0):
    """Inputs for tracing and for the parity check, in runtime.IO's order."""
    g = torch.Generator().manual_seed(seed)
    if cfg.model == "scalar":
        return (torch.randn(batch, cfg.seq_len, cfg.noise_dim, generator=g),)
    shape = (cfg.layers, batch, cfg.hidden)
    prev = torch.stack([torch.randint(0, ev.SIZES[a] + 1, (batch,), generator=g) for a in ev.ATTRS], dim=1)
    gumbel = -torch.log(-torch.log(torch.rand(batch, ev.WIDTH, generator=g).clamp_min(1e-9)))
    return (torch.randn(batch, cfg.noise_dim, generator=g), prev,
            torch.randint(0, ev.BAR_STEPS, (batch,), generator=g),
            torch.randn(shape, generator=g) * 0.5, torch.randn(shape, generator=g) * 0.5,
            gumbel, torch.zeros(batch, ev.WIDTH))


def _critic_example(batch: int, steps: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    events = torch.stack([torch.randint(0, ev.SIZES[a], (batch, steps), generator=g) for a in ev.ATTRS], dim=-1)
    return events, torch.randint(0, ev.BAR_STEPS, (batch, steps), generator=g)


def metadata(cfg: Config, ck: dict, command: str, critic: str = "", sampling: dict | None = None,
             encoder: str = "") -> dict[str, str]:
    """What the runtime needs to decode and sample the model, and where it came from."""
    corpus = ck["corpus"]
    credit = PIANO_MIDI_DE if "piano-midi" in corpus.get("name", "") else "see the training corpus's licence"
    meta = {
        "format": runtime.FORMAT,
        "format_version": str(runtime.FORMAT_VERSION),
        "output": "sequence" if cfg.model == "scalar" else "event",
        "encoding": "pitch-linear" if cfg.model == "scalar" else "note-event",
        "seq_len": str(cfg.seq_len),
        "noise_dim": str(cfg.noise_dim),
        "pitch_low": str(PITCH_LOW),
        "pitch_high": str(PITCH_HIGH),
        "hidden_size": str(cfg.hidden),
        "num_layers": str(cfg.layers),
        "config": cfg.name,
        "config_json": json.dumps(ck["config"], sort_keys=True),
        "seed": str(cfg.seed),
        "steps": str(ck["step"]),
        "training_corpus": corpus.get("name", ""),
        "training_corpus_stats": json.dumps(corpus, sort_keys=True),
        "data_credit": credit,
        "training_command": ck["command"],
        "export_command": command,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "torch_version": torch.__version__,
    }
    if cfg.model == "event":
        meta["attributes"] = ",".join(ev.ATTRS)
        meta["event_tables"] = json.dumps(ck["tables"])
        s = {"temperature": cfg.temperature, "candidates": cfg.candidates, "critic_temperature": 0.0,
             **{k: v for k, v in (sampling or {}).items() if v is not None}}
        t = s["temperature"]
        temps = {a: cfg.temperature for a in ev.ATTRS} | (t if isinstance(t, dict) else dict.fromkeys(ev.ATTRS, t))
        meta["sampling"] = json.dumps({"temperature": temps,
                                       "candidates": s["candidates"] if critic else 1,
                                       "critic_temperature": s["critic_temperature"]})
        if critic:
            meta["critic"] = critic
        if encoder:
            meta["encoder"] = encoder
    return meta


def _save(module, example, names, dyn, meta: dict, tmp: Path) -> None:
    import onnx

    # The TorchScript exporter maps nn.LSTM onto ONNX's LSTM operator: one fused op per layer.
    with warnings.catch_warnings():  # tracer chatter about LSTM batch sizes: h/c are inputs here
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(tmp), input_names=list(names[0]), output_names=list(names[1]),
                          dynamic_axes=dyn, opset_version=OPSET, dynamo=False, do_constant_folding=True)
    model = onnx.load(str(tmp))
    onnx.helper.set_model_props(model, meta)
    model.doc_string = "midigan: see metadata_props for what this graph is and how to decode it"
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp), save_as_external_data=False)


def _parity(module, example, names, tmp: Path) -> float:
    """Largest difference between torch and onnxruntime on the same inputs; integer outputs
    (sampled notes) must agree exactly."""
    import onnxruntime as ort

    with torch.no_grad():
        want = module(*example)
    want = [want] if isinstance(want, torch.Tensor) else list(want)
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: t.numpy() for n, t in zip(names[0], example)})
    diff = 0.0
    for w, o in zip(want, got):
        if w.dtype == torch.int64 and not np.array_equal(w.numpy(), o):
            return float("inf")
        diff = max(diff, float(np.max(np.abs(w.numpy().astype(np.float64) - o))))
    return diff


def _write(output: Path, module, example, check, names, dyn, meta: dict, load=None) -> float:
    """Export, check parity at another batch size and that `load` (the runtime) accepts the
    file, then move it into place: nothing half-written or unreadable replaces anything."""
    diffs = []

    def write(tmp: Path) -> None:
        _save(module, example, names, dyn, meta, tmp)
        diffs.append(_parity(module, check, names, tmp))
        if not diffs[-1] <= TOLERANCE:
            raise RuntimeError(f"torch and onnxruntime disagree by {diffs[-1]:.2e} (> {TOLERANCE:g}); "
                               "nothing written")
        if load:
            load(tmp)
    write_atomic(output, write)
    return diffs[0]


def parse_temperatures(text: str) -> dict[str, float]:
    """'0.9' (every attribute) or 'velocity=0.7,step=0.9' (those attributes), each 0.05-4:
    {attribute: temperature} for the attributes it sets."""
    def value(v: str) -> float:
        try:
            t = float(v)
        except ValueError:
            raise ValueError(f"temperature {v!r} is not a number") from None
        if not 0.05 <= t <= 4:
            raise ValueError(f"temperature must be 0.05-4, got {t:g}")
        return t
    if "=" not in text:
        return dict.fromkeys(ev.ATTRS, value(text))
    out = {}
    for pair in text.split(","):
        name, _, v = pair.partition("=")
        if name.strip() not in ev.ATTRS:
            raise ValueError(f"unknown attribute {name.strip()!r} (one of {', '.join(ev.ATTRS)})")
        out[name.strip()] = value(v)
    return out


def export_onnx(checkpoint, output, command: str = "", sampling: dict | None = None) -> tuple[float, int]:
    """Export a checkpoint's shipped generator (and its critic). Returns (max diff, bytes of OUTPUT).

    `sampling`: recommended settings chosen after training, on validation, overriding the config's
    (temperature: one for every attribute or {attribute: temperature}; candidates,
    critic_temperature; None keeps a value)."""
    ck = load_checkpoint(checkpoint)
    cfg = make_config(ck["config"], Config())
    G, D = build(cfg)
    G.load_state_dict(ck["best_generator"])
    D.load_state_dict(ck["discriminator"])
    G.eval(), D.eval()
    output = Path(output)
    if cfg.model == "scalar":
        diff = _write(output, G, _example(cfg, 2), _example(cfg, 3, seed=1), runtime.IO["sequence"],
                      {"noise": {0: "batch", 1: "steps"}, "pitch": {0: "batch", 1: "steps"}},
                      metadata(cfg, ck, command), runtime.Generator)  # the runtime must accept what we ship
        return diff, output.stat().st_size

    critic = ""
    diffs = []
    k = (sampling or {}).get("candidates") or cfg.candidates
    if k > 1 and ck["step"] > cfg.mle_steps:  # a critic that has been trained, and a choice for it to make
        critic = output.with_name(output.stem + "-critic.onnx")
        batch = {0: "batch", 1: "steps"}
        diffs.append(_write(critic, D, _critic_example(2, 12), _critic_example(3, 20, seed=1),
                            runtime.IO["critic"], {"events": batch, "pos": batch, "score": {0: "batch"}},
                            {**metadata(cfg, ck, command), "output": "critic"}))
        critic = critic.name
    encoder = ""
    if G.encoder is not None:  # a latent model: priming reads the noise of what it continues
        encoder = output.with_name(output.stem + "-encoder.onnx")
        batch = {0: "batch", 1: "steps"}
        diffs.append(_write(encoder, _Mean(G.encoder).eval(), _critic_example(2, 12), _critic_example(3, 20, seed=1),
                            runtime.IO["encoder"], {"events": batch, "pos": batch, "mean": {0: "batch"}},
                            {**metadata(cfg, ck, command), "output": "encoder"}))
        encoder = encoder.name
    b = {1: "batch"}
    dyn = {"noise": {0: "batch"}, "prev": {0: "batch"}, "pos": {0: "batch"}, "h": b, "c": b,
           "gumbel": {0: "batch"}, "bias": {0: "batch"}, "event": {0: "batch"}, "h_out": b, "c_out": b}
    # eval(): the exporter restores the wrapper's training flag afterwards, and with it G's
    # (dropout on would make the parity check compare different samples).
    diffs.append(_write(output, _Step(G).eval(), _example(cfg, 2), _example(cfg, 3, seed=1), runtime.IO["event"],
                        dyn, metadata(cfg, ck, command, critic, sampling, encoder), runtime.Generator))
    return max(diffs), output.stat().st_size
