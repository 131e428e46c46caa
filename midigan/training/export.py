"""Checkpoint -> one self-describing ONNX file, checked against torch before it is kept."""
from __future__ import annotations

import datetime
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import recall, runtime
from ..files import write_atomic
from ..encoding import N_PITCHES, PITCH_HIGH, PITCH_LOW
from .config import Config, make_config
from .model import build
from .train import load_checkpoint

OPSET = 17
TOLERANCE = 1e-4
PIANO_MIDI_DE = "Bernd Krueger, www.piano-midi.de, CC BY-SA 3.0 DE"


class _Step(torch.nn.Module):
    """The exported graph of a categorical generator: one step, state in and out."""

    def __init__(self, G):
        super().__init__()
        self.G = G

    def forward(self, noise, prev, h, c):
        return self.G.step(noise, prev, h, c)


class _RecallStep(_Step):
    """The same, for a generator fed recall hints (midigan/recall.py)."""

    def forward(self, noise, prev, hint, h, c):
        return self.G.step(noise, prev, h, c, hint)


def _example(cfg: Config, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    if cfg.model == "scalar":
        return (torch.randn(batch, cfg.seq_len, cfg.noise_dim, generator=g),)
    shape = (cfg.layers, batch, cfg.hidden)
    noise = torch.randn(batch, cfg.noise_dim, generator=g)
    prev = torch.randint(0, N_PITCHES * (2 if cfg.chords else 1) + 1, (batch,), generator=g)
    hint = (torch.randint(0, N_PITCHES + 1, (batch, len(recall.KINDS)), generator=g),) if cfg.recall else ()
    return (noise, prev, *hint, torch.randn(shape, generator=g) * 0.5, torch.randn(shape, generator=g) * 0.5)


def metadata(cfg: Config, ck: dict, command: str) -> dict[str, str]:
    corpus = ck["corpus"]
    credit = PIANO_MIDI_DE if "piano-midi" in corpus.get("name", "") else "see the training corpus's licence"
    return {
        "format": runtime.FORMAT,
        "format_version": str(runtime.FORMAT_VERSION),
        "seq_len": str(cfg.seq_len),
        "noise_dim": str(cfg.noise_dim),
        "pitch_low": str(PITCH_LOW),
        "pitch_high": str(PITCH_HIGH),
        "encoding": ("pitch-linear" if cfg.model == "scalar" else
                     "pitch-onset-categorical" if cfg.chords else "pitch-categorical"),
        "output": "sequence" if cfg.model == "scalar" else "step-recall" if cfg.recall else "step",
        "hidden_size": str(cfg.hidden),
        "num_layers": str(cfg.layers),
        "config": cfg.name,
        "config_json": json.dumps({k: v for k, v in ck["config"].items()}, sort_keys=True),
        **({"recall_window": str(cfg.recall), "recall_hints": ",".join(recall.KINDS)} if cfg.recall else {}),
        "seed": str(cfg.seed),
        "epochs": str(ck["epoch"]),
        "steps": str(ck["step"]),
        "training_corpus": corpus.get("name", ""),
        "training_corpus_stats": json.dumps(corpus, sort_keys=True),
        "data_credit": credit,
        "training_command": ck["command"],
        "export_command": command,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "torch_version": torch.__version__,
    }


def export_onnx(checkpoint, output, command: str = "") -> tuple[float, int]:
    """Export, check parity with onnxruntime, then move into place. Returns (max diff, bytes)."""
    import onnx
    import onnxruntime as ort

    ck = load_checkpoint(checkpoint)
    cfg = make_config(ck["config"], Config())
    G, _ = build(cfg)
    G.load_state_dict(ck["generator"])
    G.eval()
    output = Path(output)

    if cfg.model == "scalar":
        module, names = G, runtime.IO["sequence"]
        dyn = {"noise": {0: "batch", 1: "steps"}, "pitch": {0: "batch", 1: "steps"}}
    else:
        kind = "step-recall" if cfg.recall else "step"
        module, names = (_RecallStep if cfg.recall else _Step)(G), runtime.IO[kind]
        dyn = {"noise": {0: "batch"}, "prev": {0: "batch"}, "h": {1: "batch"}, "c": {1: "batch"},
               "logits": {0: "batch"}, "h_out": {1: "batch"}, "c_out": {1: "batch"}}
        if cfg.recall:
            dyn["recall"] = {0: "batch"}
    diffs = []

    def write(tmp: Path) -> None:
        # The TorchScript exporter maps nn.LSTM onto ONNX's LSTM operator: one fused op per layer.
        with warnings.catch_warnings():  # tracer chatter about LSTM batch sizes: h/c are inputs here
            warnings.simplefilter("ignore")
            torch.onnx.export(module, _example(cfg, 2), str(tmp), input_names=list(names[0]),
                              output_names=list(names[1]), dynamic_axes=dyn, opset_version=OPSET,
                              dynamo=False, do_constant_folding=True)
        model = onnx.load(str(tmp))
        onnx.helper.set_model_props(model, metadata(cfg, ck, command))
        model.doc_string = "midigan generator: see metadata_props for how to decode it"
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp), save_as_external_data=False)

        # Parity: the same inputs through torch and onnxruntime, at a batch size not used above.
        example = _example(cfg, 3, seed=1)
        with torch.no_grad():
            want = module(*example)
        want = [want] if isinstance(want, torch.Tensor) else list(want)
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = sess.run(None, {n: t.numpy() for n, t in zip(names[0], example)})
        diff = max(float(np.max(np.abs(w.numpy() - o))) for w, o in zip(want, got))
        diffs.append(diff)
        if not diff <= TOLERANCE:
            raise RuntimeError(f"torch and onnxruntime disagree by {diff:.2e} (> {TOLERANCE:g}); "
                               "nothing written")
        runtime.Generator(tmp)  # the runtime itself must accept what we ship

    write_atomic(output, write)  # checked before it replaces anything
    return diffs[0], output.stat().st_size
