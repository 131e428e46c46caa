"""The torch-free runtime: load a midigan ONNX generator, check it, make pitches.

Three graph kinds exist, named by the ``output`` metadata key:

- ``sequence`` (the paper's design): noise[batch, steps, noise_dim] -> pitch[batch, steps],
  one tanh value per note in the pitch-linear encoding.
- ``step`` (autoregressive): noise[batch, noise_dim], prev[batch], h, c ->
  logits[batch, 88], h_out, c_out. The runtime samples a key per step and feeds
  it back, carrying the LSTM state, so a live stream can run forever.
- ``step-recall``: the same, with a fifth input recall[batch, 3]: the recall hints
  (midigan/recall.py) the runtime computes from the keys sampled so far, over the
  look-back the ``recall_window`` metadata names.

A step model's ``encoding`` says what its logits are: 88 keys (``pitch-categorical``)
or 176 key-and-chord classes (``pitch-onset-categorical``, see encoding.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import recall
from .files import data_dir
from .encoding import ENCODINGS, N_CLASSES, N_PITCHES, PITCH_HIGH, PITCH_LOW, decode, from_index, split_classes

FORMAT = "midigan"
FORMAT_VERSION = 1  # bump when the graph contract changes; the runtime refuses others
OUTPUTS = ("sequence", "step", "step-recall")
REQUIRED = ("format", "format_version", "seq_len", "noise_dim", "pitch_low", "pitch_high",
            "encoding", "output")
BOS = N_PITCHES  # the 'previous pitch' fed at the start of a pitch-categorical stream (N_CLASSES in general)

IO = {
    "sequence": (("noise",), ("pitch",)),
    "step": (("noise", "prev", "h", "c"), ("logits", "h_out", "c_out")),
    "step-recall": (("noise", "prev", "recall", "h", "c"), ("logits", "h_out", "c_out")),
}


# _CHORD_RULE[k]: added to a chord model's logits after key k (row 88: no previous note).
# A chord is written low to high, so 'with the note before' (classes 88..175) is only
# possible for a key above that note, and never first; the model gives the rest ~1%.
_CHORD_RULE = np.concatenate([np.zeros((N_PITCHES + 1, N_PITCHES), np.float32), np.where(
    np.arange(N_PITCHES)[None, :] <= np.arange(N_PITCHES + 1)[:, None], -np.inf, 0).astype(np.float32)], axis=1)
_RULE_ROW = np.r_[np.arange(2 * N_PITCHES) % N_PITCHES, N_PITCHES]  # previous class (176 = start) -> row
GUMBEL_BLOCK = 64  # steps of Gumbel noise drawn at once (one draw per note costs as much as the rest)


class ModelError(ValueError):
    """A file that is not a usable midigan model."""


def default_model_path() -> Path:
    """The shipped default model: inside the installed package, or in a checkout's export/."""
    path = data_dir("export") / "default.onnx"
    if path.is_file():
        return path
    raise ModelError("the shipped default model (export/default.onnx) is missing; pass --model PATH")


def read_metadata(path) -> dict[str, str]:
    """The midigan metadata of an ONNX file, checked; raises ModelError otherwise."""
    return _check_meta(_session(path, 1)[1], path)


def _session(path, threads: int):
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no such model file: {path}")
    opts = ort.SessionOptions()
    # One intra-op thread: these graphs are small, and a live player shares the CPU.
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path} is not a loadable ONNX model ({first})") from None
    return sess, dict(sess.get_modelmeta().custom_metadata_map)


def _check_meta(meta: dict, path) -> dict:
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path} is not a midigan model (its metadata has no format='midigan')")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ModelError(f"{path}: midigan metadata is missing {', '.join(missing)}")
    v = meta["format_version"]
    if v != str(FORMAT_VERSION):
        raise ModelError(f"{path}: midigan format version {v!r} is not supported "
                         f"(this runtime reads version {FORMAT_VERSION})")
    if meta["encoding"] not in ENCODINGS:
        raise ModelError(f"{path}: unknown encoding {meta['encoding']!r}")
    if meta["output"] not in OUTPUTS:
        raise ModelError(f"{path}: unknown output kind {meta['output']!r}")
    try:
        ints = {k: int(meta[k]) for k in ("seq_len", "noise_dim", "pitch_low", "pitch_high")}
    except ValueError:
        raise ModelError(f"{path}: metadata has a non-integer size") from None
    if (ints["pitch_low"], ints["pitch_high"]) != (PITCH_LOW, PITCH_HIGH):
        raise ModelError(f"{path}: pitch range {ints['pitch_low']}-{ints['pitch_high']} is not the piano's")
    if not (1 <= ints["seq_len"] <= 100_000 and 1 <= ints["noise_dim"] <= 4096):
        raise ModelError(f"{path}: metadata sizes out of range")
    if meta["output"] == "step-recall":
        if meta.get("recall_hints") != ",".join(recall.KINDS):
            raise ModelError(f"{path}: recall hints {meta.get('recall_hints')!r} are not the ones this "
                             f"runtime computes ({','.join(recall.KINDS)!r})")
        w = meta.get("recall_window", "")
        if not (w.isdigit() and 1 <= int(w) <= 10_000):
            raise ModelError(f"{path}: recall_window {w!r} should be a whole number of notes, 1-10000")
    return meta


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation: walks Gaussian noise without shrinking its norm."""
    return slerp_rows(a.reshape(1, -1), b.reshape(1, -1), t).reshape(a.shape)


def slerp_rows(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """slerp of each row of a [batch, ...] array towards the same row of b."""
    fa, fb = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    na, nb = np.linalg.norm(fa, axis=1), np.linalg.norm(fb, axis=1)
    cos = (fa * fb).sum(axis=1) / np.maximum(na * nb, 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))[:, None]
    straight = omega < 1e-6  # (nearly) parallel: a straight line is the same walk
    so = np.where(straight, 1.0, np.sin(omega))
    out = np.where(straight, (1 - t) * fa + t * fb,
                   (np.sin((1 - t) * omega) * fa + np.sin(t * omega) * fb) / so)
    return out.reshape(a.shape)


class Stepper:
    """A step model run note after note through bound buffers.

    The caller writes the previous class (and the recall hints) into `prev` (and
    `recall`) in place; each `run()` is one step: it returns the logits and leaves the
    new LSTM state in `h` and `c`. Binding these arrays once, and swapping two state
    buffers, spares onnxruntime converting five inputs and allocating three outputs
    every note (~15 of the ~140 microseconds a live note costs).
    """

    def __init__(self, session, z, prev, h, c, n_out: int, hints: bool = False):
        import onnxruntime as ort

        self.session, self.io = session, session.io_binding()
        self.z = np.ascontiguousarray(z, np.float32)
        self.prev = np.array(prev, np.int64)
        self.recall = np.zeros((len(self.z), len(recall.KINDS)), np.int64) if hints else None
        self.logits = np.empty((len(self.z), n_out), np.float32)
        self._h = [np.array(h, np.float32), np.empty_like(h, np.float32)]
        self._c = [np.array(c, np.float32), np.empty_like(c, np.float32)]
        # CPU OrtValues made from numpy arrays share their memory: in-place writes are seen.
        # Every array here is an attribute, so it lives as long as the binding that points at it.
        self._hv = [ort.OrtValue.ortvalue_from_numpy(a) for a in self._h]
        self._cv = [ort.OrtValue.ortvalue_from_numpy(a) for a in self._c]
        bound = {"noise": self.z, "prev": self.prev, "recall": self.recall, "logits": self.logits}
        self._bound = {k: ort.OrtValue.ortvalue_from_numpy(a) for k, a in bound.items() if a is not None}
        for name, v in self._bound.items():
            (self.io.bind_ortvalue_output if name == "logits" else self.io.bind_ortvalue_input)(name, v)
        self._cur = 0

    @property
    def h(self) -> np.ndarray:
        return self._h[self._cur]

    @property
    def c(self) -> np.ndarray:
        return self._c[self._cur]

    def run(self) -> np.ndarray:
        """One step: the logits for the next note (the buffer is reused by the next call)."""
        a, b = self._cur, 1 - self._cur
        self.io.bind_ortvalue_input("h", self._hv[a])
        self.io.bind_ortvalue_input("c", self._cv[a])
        self.io.bind_ortvalue_output("h_out", self._hv[b])
        self.io.bind_ortvalue_output("c_out", self._cv[b])
        self.session.run_with_iobinding(self.io)
        self._cur = b
        return self.logits


class Generator:
    """A loaded midigan ONNX generator."""

    def __init__(self, path=None, threads: int = 1):
        self.path = Path(path) if path else default_model_path()
        self.session, meta = _session(self.path, threads)
        self.meta = _check_meta(meta, self.path)
        self.kind = self.meta["output"]
        self.encoding = self.meta["encoding"]
        self.seq_len = int(self.meta["seq_len"])
        self.noise_dim = int(self.meta["noise_dim"])
        ins = tuple(i.name for i in self.session.get_inputs())
        outs = tuple(o.name for o in self.session.get_outputs())
        if (ins, outs) != IO[self.kind]:
            raise ModelError(f"{self.path}: graph inputs {ins} / outputs {outs} do not match "
                             f"a {self.kind!r} model")
        self.recall = int(self.meta.get("recall_window", 0)) if self.kind == "step-recall" else 0
        if (self.kind == "sequence") != (self.encoding == "pitch-linear"):
            raise ModelError(f"{self.path}: a {self.kind!r} model cannot have the {self.encoding!r} encoding")
        if self.kind != "sequence":
            self.bos = N_CLASSES[self.encoding]  # the 'previous class' fed at the start
            width = self.session.get_outputs()[0].shape[-1]
            if isinstance(width, int) and width != self.bos:
                raise ModelError(f"{self.path}: {width} logits per step, but the {self.encoding!r} "
                                 f"encoding has {self.bos} classes")
            h = self.session.get_inputs()[-1].shape  # [layers, batch, hidden]
            self.layers, self.hidden = int(self.meta.get("num_layers", h[0])), int(self.meta.get("hidden_size", h[2]))

    # -------------------------------------------------------------- batch generation

    def generate(self, count: int, seed: int = 0, noise_scale: float = 1.0,
                 temperature: float = 1.0) -> np.ndarray:
        """`count` independent sequences of MIDI pitches, shape (count, seq_len)."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        rng = np.random.default_rng(seed)
        if self.kind == "sequence":
            z = rng.standard_normal((count, self.seq_len, self.noise_dim)).astype(np.float32) * noise_scale
            return self._run_sequence(z)
        z = rng.standard_normal((count, self.noise_dim)).astype(np.float32) * noise_scale
        state = self.initial_state(count)
        return self._run_steps(z, state, np.full(count, self.bos, np.int64), self.seq_len, rng, temperature)[0]

    def initial_state(self, batch: int = 1):
        """(h, c, recall): zero LSTM state and, for a recall model, one empty Recall per line."""
        shape = (self.layers, batch, self.hidden)
        lines = [recall.Recall(self.recall) for _ in range(batch)] if self.recall else None
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32), lines

    def _run_sequence(self, z: np.ndarray) -> np.ndarray:
        (y,) = self.session.run(None, {"noise": z})
        return decode(y, "pitch-linear")

    def _run_steps(self, z, state, prev, steps, rng, temperature):
        """`steps` sampled notes per line: (MIDI pitches, new state, last class fed back)."""
        classes, state, prev = self._sample_steps(z, state, prev, steps, rng, temperature)
        return decode(classes, self.encoding), state, prev

    def _split(self, classes) -> tuple[np.ndarray, np.ndarray]:
        """Sampled classes -> (MIDI pitches, together flags: the note starts with the one before)."""
        if self.encoding == "pitch-onset-categorical":
            keys, together = split_classes(classes)
            return from_index(keys), together
        return decode(classes, self.encoding), np.zeros(np.shape(classes), dtype=bool)

    def _stepper(self, z, prev, h, c, hints: bool) -> Stepper:
        return Stepper(self.session, z, prev, h, c, self.bos, hints)

    def _sample_steps(self, z, state, prev, steps, rng, temperature):
        h, c, lines = state
        out = np.empty((len(z), steps), np.int64)
        step = self._stepper(z, prev, h, c, hints=lines is not None)
        rule = _CHORD_RULE if self.bos > N_PITCHES else None
        for t in range(steps):
            if t % GUMBEL_BLOCK == 0:
                # Gumbel-max: argmax(logits/T + G) = argmax(logits + T*G) samples softmax(logits/T).
                gumbel = (temperature * rng.gumbel(size=(min(GUMBEL_BLOCK, steps - t), len(z), self.bos))
                          ).astype(np.float32)
            if lines is not None:
                step.recall[:] = [r.hints() for r in lines]
            logits = step.run()
            if rule is not None:
                logits = logits + rule[_RULE_ROW[step.prev]]
            idx = np.argmax(logits + gumbel[t % GUMBEL_BLOCK], axis=1)
            out[:, t] = idx
            step.prev[:] = idx
            if lines is not None:
                for r, k in zip(lines, (idx % N_PITCHES).tolist()):
                    r.push(k)
        return out, (step.h.copy(), step.c.copy(), lines), step.prev.copy()

    def streams(self, count: int, sequences: int, seed: int = 0, noise_scale: float = 1.0,
                temperature: float = 1.0, morph: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
        """`count` independent streams of `sequences` sequences each, made as `stream` makes one
        (noise walk, state carried): (pitches, together flags), each [count, sequences * seq_len]."""
        if count < 1 or sequences < 1:
            raise ValueError(f"need at least one stream of one sequence, got {count} x {sequences}")
        rng = np.random.default_rng(seed)
        n = self.seq_len
        shape = (count, n, self.noise_dim) if self.kind == "sequence" else (count, self.noise_dim)
        z = rng.standard_normal(shape).astype(np.float32)
        pitches = np.empty((count, sequences * n), np.int64)
        together = np.zeros((count, sequences * n), bool)
        if self.kind != "sequence":
            state, prev = self.initial_state(count), np.full(count, self.bos, np.int64)
        for k in range(sequences):
            part = slice(k * n, (k + 1) * n)
            scaled = (z * noise_scale).astype(np.float32)
            if self.kind == "sequence":
                pitches[:, part] = self._run_sequence(scaled)
            else:
                classes, state, prev = self._sample_steps(scaled, state, prev, n, rng, temperature)
                pitches[:, part], together[:, part] = self._split(classes)
            z = slerp_rows(z, rng.standard_normal(shape), morph).astype(np.float32)
        return pitches, together

    # -------------------------------------------------------------- endless stream

    def stream(self, seed: int = 0, noise_scale: float = 1.0, temperature: float = 1.0,
               morph: float = 0.25, length: int | None = None, chords: bool = False):
        """Yield pitch sequences forever, each flowing from the last.

        The noise walks by spherical interpolation (``morph`` = how far per
        sequence), and a step model carries its LSTM state and last pitch across
        sequence boundaries, so the music continues rather than restarting.
        With ``chords``, yield (pitches, together) pairs: together[i] says note i
        starts with the note before it (always False for models without chords).
        """
        rng = np.random.default_rng(seed)
        n = length or self.seq_len
        if self.kind == "sequence":
            shape = (1, n, self.noise_dim)
            z = rng.standard_normal(shape).astype(np.float32)
            while True:
                pitches = self._run_sequence((z * noise_scale).astype(np.float32))[0]
                yield (pitches, np.zeros(len(pitches), dtype=bool)) if chords else pitches
                z = slerp(z, rng.standard_normal(shape), morph).astype(np.float32)
        z = rng.standard_normal((1, self.noise_dim)).astype(np.float32)
        state, prev = self.initial_state(1), np.full(1, self.bos, np.int64)
        while True:
            classes, state, prev = self._sample_steps((z * noise_scale).astype(np.float32), state, prev,
                                                      n, rng, temperature)
            pitches, together = self._split(classes[0])
            yield (pitches, together) if chords else pitches
            z = slerp(z, rng.standard_normal(z.shape), morph).astype(np.float32)

