"""The torch-free runtime: load a midigan ONNX generator, check it, make music.

Two graph kinds exist, named by the ``output`` metadata key:

- ``sequence`` (the paper's design, the seed model): noise[batch, steps, noise_dim] ->
  pitch[batch, steps], one tanh value per note (pitch-linear); a preset times the notes.
- ``event`` (the default): one sampled note per call. noise[batch, noise_dim],
  prev[batch, 4] (the previous note's classes), pos[batch] (its place in the bar), h, c,
  gumbel[batch, W] (Gumbel noise times each attribute's temperature) and bias[batch, W]
  (logits added: a preset's masks and density) -> event[batch, 4], h_out, c_out.
  The attributes and the tables that decode them are in the metadata (midigan/events.py),
  with the recommended sampling settings. When ``sampling`` asks for several candidates,
  the file named by ``critic`` (an ``output = critic`` graph: events, pos -> score) is
  the discriminator, and each phrase played is the candidate it scores most real.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import events as ev
from .encoding import denormalize
from .music import GRID_STEPS_PER_BEAT, PITCH_HIGH, PITCH_LOW
from .files import data_dir

FORMAT = "midigan"
FORMAT_VERSION = 2  # 2: note-event models; bump when the graph contract changes, the runtime refuses others
OUTPUTS = ("sequence", "event", "critic", "encoder")
REQUIRED = ("format", "format_version", "seq_len", "noise_dim", "pitch_low", "pitch_high",
            "encoding", "output")
ENCODING = {"sequence": "pitch-linear", "event": "note-event", "critic": "note-event", "encoder": "note-event"}
IO = {
    "sequence": (("noise",), ("pitch",)),
    "event": (("noise", "prev", "pos", "h", "c", "gumbel", "bias"), ("event", "h_out", "c_out")),
    "critic": (("events", "pos"), ("score",)),
    "encoder": (("events", "pos"), ("mean",)),
}
NEG = -1e9  # a forbidden class's bias
MAX_CANDIDATES = 64


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
    if meta["output"] not in OUTPUTS:
        raise ModelError(f"{path}: unknown output kind {meta['output']!r}")
    if meta["encoding"] != ENCODING[meta["output"]]:
        raise ModelError(f"{path}: unknown encoding {meta['encoding']!r} for a {meta['output']!r} graph")
    try:
        ints = {k: int(meta[k]) for k in ("seq_len", "noise_dim", "pitch_low", "pitch_high")}
    except ValueError:
        raise ModelError(f"{path}: metadata has a non-integer size") from None
    if (ints["pitch_low"], ints["pitch_high"]) != (PITCH_LOW, PITCH_HIGH):
        raise ModelError(f"{path}: pitch range {ints['pitch_low']}-{ints['pitch_high']} is not the piano's")
    if not (1 <= ints["seq_len"] <= 100_000 and 1 <= ints["noise_dim"] <= 4096):
        raise ModelError(f"{path}: metadata sizes out of range")
    if meta["output"] != "sequence":
        _check_events(meta, path)
    return meta


def _json(meta: dict, key: str, path):
    try:
        return json.loads(meta.get(key, ""))
    except ValueError:
        raise ModelError(f"{path}: metadata {key!r} is not JSON") from None


def _check_events(meta: dict, path) -> None:
    """A note-event model's attributes and tables must be the ones this runtime decodes."""
    if meta.get("attributes") != ",".join(ev.ATTRS):
        raise ModelError(f"{path}: attributes {meta.get('attributes')!r} are not {','.join(ev.ATTRS)!r}")
    t = _json(meta, "event_tables", path)
    want = ev.tables()
    optional = {"velocity_stay"}  # models exported before it keep a velocity never
    if not isinstance(t, dict) or not set(want) - optional <= set(t) <= set(want):
        raise ModelError(f"{path}: event_tables should have the keys {', '.join(sorted(want))}")
    for k in ("steps_per_beat", "step_classes", "bar_steps"):
        if t[k] != want[k]:
            raise ModelError(f"{path}: event_tables {k} = {t[k]!r}; this runtime reads {want[k]}")
    for k, lo, hi in (("duration_beats", 1e-3, 64.0), ("velocity_values", 1, 127)):
        v = t[k]
        if not (isinstance(v, list) and len(v) == len(want[k]) and
                all(isinstance(x, (int, float)) and lo <= x <= hi for x in v)):
            raise ModelError(f"{path}: event_tables {k} should be {len(want[k])} numbers in {lo}..{hi}")
    stay = t.get("velocity_stay", [0.0, 0.0])
    if not (isinstance(stay, list) and len(stay) == 2 and all(isinstance(x, (int, float)) and 0 <= x <= 1 for x in stay)):
        raise ModelError(f"{path}: event_tables velocity_stay should be 2 numbers in 0..1")
    if meta["output"] == "event":
        s = _json(meta, "sampling", path)
        temps = s.get("temperature") if isinstance(s, dict) else None
        if not (isinstance(temps, dict) and set(temps) == set(ev.ATTRS) and
                all(isinstance(x, (int, float)) and 0.05 <= x <= 4 for x in temps.values())):
            raise ModelError(f"{path}: sampling should give a temperature 0.05-4 for each of {', '.join(ev.ATTRS)}")
        k = s.get("candidates")
        if not (isinstance(k, int) and 1 <= k <= MAX_CANDIDATES):
            raise ModelError(f"{path}: sampling candidates should be a whole number 1-{MAX_CANDIDATES}")
        if k > 1 and not meta.get("critic"):
            raise ModelError(f"{path}: sampling asks for {k} candidates but names no critic file")
        ct = s.get("critic_temperature", 0)
        if not (isinstance(ct, (int, float)) and 0 <= ct <= 100):
            raise ModelError(f"{path}: sampling critic_temperature should be a number 0-100")


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


def _open(path, kind: str | None, threads: int):
    """(session, checked metadata) of a graph of `kind` (None: a generator, either kind)."""
    session, meta = _session(path, threads)
    meta = _check_meta(meta, path)
    if kind is None:
        if meta["output"] in ("critic", "encoder"):
            article = "an" if meta["output"].startswith("e") else "a"
            raise ModelError(f"{path} is {article} {meta['output']}, not a generator; pass the generator it belongs to")
        kind = meta["output"]
    if meta["output"] != kind:
        raise ModelError(f"{path}: a {meta['output']!r} graph, not a {kind!r} one")
    ins = tuple(i.name for i in session.get_inputs())
    outs = tuple(o.name for o in session.get_outputs())
    if (ins, outs) != IO[kind]:
        raise ModelError(f"{path}: graph inputs {ins} / outputs {outs} do not match a {kind!r} model")
    return session, meta


class _Companion:
    """A graph that ships beside a generator and reads windows of its events (the critic, the encoder)."""

    kind = ""

    def __init__(self, path, threads: int = 1):
        self.path = Path(path)
        self.session, self.meta = _open(self.path, self.kind, threads)

    def _run(self, events: np.ndarray, pos: np.ndarray) -> np.ndarray:
        (y,) = self.session.run(None, {"events": np.ascontiguousarray(events, np.int64),
                                       "pos": np.ascontiguousarray(pos, np.int64)})
        return y


class Critic(_Companion):
    """The discriminator a model ships with: scores windows of notes, higher = more real."""

    kind = "critic"

    def score(self, events: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """events [batch, n, 4], bar positions [batch, n] -> logits [batch]."""
        return self._run(events, pos)


class Encoder(_Companion):
    """The encoder a latent model ships with: the noise that explains a passage (its posterior's mean)."""

    kind = "encoder"

    def mean(self, events: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """events [batch, n, 4], bar positions [batch, n] -> noise [batch, noise_dim]."""
        return self._run(events, pos)


class Generator:
    """A loaded midigan ONNX generator."""

    def __init__(self, path=None, threads: int = 1):
        self.path = Path(path) if path else default_model_path()
        self.session, self.meta = _open(self.path, None, threads)  # loaded once
        self.kind = kind = self.meta["output"]
        self.encoding = self.meta["encoding"]
        self.seq_len = int(self.meta["seq_len"])
        self.noise_dim = int(self.meta["noise_dim"])
        self.timed = kind == "event"
        self.critic = self.encoder = None
        if self.timed:
            self.tables = json.loads(self.meta["event_tables"])
            s = json.loads(self.meta["sampling"])
            self.temperatures = np.array([s["temperature"][a] for a in ev.ATTRS], np.float32)
            self.candidates = s["candidates"]
            self.critic_temperature = float(s.get("critic_temperature", 0))
            h = self.session.get_inputs()[3].shape  # [layers, batch, hidden]
            self.layers, self.hidden = int(self.meta.get("num_layers", h[0])), int(self.meta.get("hidden_size", h[2]))
            if self.candidates > 1:
                self.critic = self._beside(Critic, threads)
            if self.meta.get("encoder"):
                self.encoder = self._beside(Encoder, threads)

    def _beside(self, cls, threads: int):
        """The companion graph the metadata names, beside the model, never elsewhere."""
        path = self.path.parent / Path(self.meta[cls.kind]).name
        if not path.is_file():
            raise ModelError(f"{self.path}: its {cls.kind} {path.name} is missing beside it")
        return cls(path, threads)

    # -------------------------------------------------------------- the paper's model

    def noise_for(self, notes, z: np.ndarray) -> np.ndarray:
        """The noise for lines that continue timed `notes` [n, 4]: with an encoder (a latent
        model), what it reads in their last seq_len notes, for every line (the noise asks for a
        texture, and a continuation should ask for the prime's); otherwise `z` unchanged."""
        notes = np.asarray(notes, np.float64).reshape(-1, 4)[-self.seq_len:]
        if self.encoder is None or not len(notes) or not np.isfinite(notes).all():
            return z  # (feed reports bad notes)
        events, pos = ev.encode(fold_into_piano(np.rint(notes[:, 0])), notes[:, 1], notes[:, 2],
                                np.clip(np.rint(notes[:, 3]), 1, 127))
        m = self.encoder.mean(events[None], pos[None])
        return np.repeat(m, len(z), axis=0).astype(np.float32)

    def _run_sequence(self, z: np.ndarray) -> np.ndarray:
        (y,) = self.session.run(None, {"noise": z})
        return denormalize(y)

    # -------------------------------------------------------------- streams

    def stream(self, seed: int = 0, count: int = 1, noise_scale: float = 1.0, temperature: float = 1.0,
               morph: float = 0.25, bias: np.ndarray | None = None, candidates: int | None = None,
               critic_temperature: float | None = None, prime=None, start_at: float | None = None,
               figures: float = 0.0):
        """Yield phrases of `seq_len` notes forever, each continuing the last, for `count`
        independent lines at once.

        A sequence model yields MIDI pitches [count, seq_len] (a preset times them). An event
        model yields timed notes [count, seq_len, 4] (pitch, onset in beats from the stream's
        start, duration in beats, velocity), carrying its LSTM state and bar position across
        phrases. The noise walks by spherical interpolation, `morph` of the way per phrase.
        `temperature` scales the model's recommended temperatures; `bias` [W] (events.WIDTH)
        is added to the logits (masks, density); `candidates` overrides how many phrases the
        critic chooses among (1 = no choice), and `critic_temperature` how: 0 takes the phrase it
        scores highest, t > 0 draws one with probability softmax(score / t) (importance resampling:
        a calibrated critic's exp(score) is the ratio of real to generated densities).
        `figures` (0 = off): the logit added to the key and (a share of it) to the onset step that
        a line's own figures lead to, so it comes back to them (`figure_hits`).

        `prime`: timed notes [n, 4] (pitch, onset and duration in beats, velocity) fed through the
        model first, teacher-forced (see `_Lines.feed`): the stream continues them, on their
        timeline (its onsets are beats of the prime's). `start_at`: the first note is struck at
        or after this beat (a bar at most after the last fed onset: the model's longest step).
        """
        rng = np.random.default_rng(seed)
        if figures < 0:
            raise ValueError(f"figures should be 0 or more, got {figures}")
        if not self.timed and (prime is not None or start_at is not None):
            raise ValueError(f"{self.path.name} is a pitch-only (sequence) model: priming needs an event model")
        if not self.timed:
            shape = (count, self.seq_len, self.noise_dim)
            z = rng.standard_normal(shape).astype(np.float32)
            while True:
                yield self._run_sequence((z * noise_scale).astype(np.float32))
                z = slerp_rows(z, rng.standard_normal(shape), morph).astype(np.float32)
        k = self.candidates if candidates is None else candidates
        if not 1 <= k <= MAX_CANDIDATES:
            raise ValueError(f"candidates should be 1-{MAX_CANDIDATES}, got {k}")
        if k > 1 and self.critic is None:
            raise ValueError(f"{self.path.name} has no critic to choose among {k} candidates")
        ct = self.critic_temperature if critic_temperature is None else float(critic_temperature)
        if ct < 0:
            raise ValueError(f"critic_temperature should be 0 or more, got {ct}")
        lines = _Lines(self, count, k, rng, ct, figures)
        bias = np.zeros(ev.WIDTH, np.float32) if bias is None else np.asarray(bias, np.float32)
        if bias.shape != (ev.WIDTH,):
            raise ValueError(f"bias should have {ev.WIDTH} values, got shape {bias.shape}")
        z = rng.standard_normal((count, self.noise_dim)).astype(np.float32)
        temps = self.temperatures * temperature
        if prime is not None:
            z = self.noise_for(prime, z)
            lines.feed((z * noise_scale).astype(np.float32), prime)
        start = None if start_at is None else grid_step(start_at)
        while True:
            yield lines.phrase(np.repeat((z * noise_scale).astype(np.float32), k, axis=0), temps, bias,
                               start=start)
            start = None
            z = slerp_rows(z, rng.standard_normal(z.shape), morph).astype(np.float32)


def grid_step(beat: float) -> int:
    """The first onset-grid step (1/24 beat) at or after `beat`."""
    return int(np.ceil(float(beat) * GRID_STEPS_PER_BEAT - 1e-6))


def fold_into_piano(pitches) -> np.ndarray:
    """MIDI pitches moved by octaves into the piano's range (the pitch class is kept)."""
    p = np.asarray(pitches, np.int64)
    p = np.where(p < PITCH_LOW, p + 12 * ((PITCH_LOW - p + 11) // 12), p)
    return np.where(p > PITCH_HIGH, p - 12 * ((p - PITCH_HIGH + 11) // 12), p)


FIGURE_CONTEXT = 3  # notes whose (interval, onset step) pairs must recur for a figure to come back
FIGURE_MEMORY = 100  # notes of a line's past the figure memory looks back over
FIGURE_STEP_SHARE = 0.375  # of `figures` added to the step a figure leads to (chosen on validation)


def figure_hits(past: np.ndarray, context: int = FIGURE_CONTEXT) -> tuple[np.ndarray, np.ndarray]:
    """Where each line's own figures lead next. `past` [rows, L, 2]: each line's last notes as
    (onset step, key) classes, oldest first. Wherever the last `context` notes' (interval from
    the note before, onset step) pairs occurred earlier in the line, the note that came next there
    names a step and a key (the last key moved by its interval). Returns boolean masks
    [rows, steps] and [rows, keys]: each class marked once, however often its figure recurred."""
    rows, L = past.shape[:2]
    steps_hit = np.zeros((rows, ev.SIZES["step"]), bool)
    keys_hit = np.zeros((rows, ev.SIZES["pitch"]), bool)
    iv, st = np.diff(past[:, :, 1], axis=1), past[:, 1:, 0]  # note i + 1's interval and step
    n = iv.shape[1] - context  # earlier places a figure may start and still have a next note
    if n <= 0:
        return steps_hit, keys_hit
    same = np.ones((rows, n), bool)
    for i in range(context):
        same &= (iv[:, i:n + i] == iv[:, n + i, None]) & (st[:, i:n + i] == st[:, n + i, None])
    r, j = np.nonzero(same)
    steps_hit[r, st[r, j + context]] = True
    key = past[r, -1, 1] + iv[r, j + context]
    ok = (key >= 0) & (key < ev.SIZES["pitch"])
    keys_hit[r[ok], key[ok]] = True
    return steps_hit, keys_hit


class _Lines:
    """The state of `count` event lines, each sampled as `k` candidates per phrase.

    `grid` is each line's last onset in grid steps from the stream's start (its true place:
    a step longer than a bar is clipped to one in the model's input, never in `grid`)."""

    def __init__(self, gen: Generator, count: int, k: int, rng, critic_temperature: float = 0.0,
                 figures: float = 0.0):
        self.gen, self.count, self.k, self.rng, self.ct = gen, count, k, rng, critic_temperature
        self.figures = float(figures)  # logit added where a line's own figures lead (figure_hits)
        self.past = np.zeros((count, 0, 2), np.int64)  # each line's last notes: (step, key) classes
        shape = (gen.layers, count, gen.hidden)
        self.h, self.c = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        self.prev = np.tile(np.array([ev.START[a] for a in ev.ATTRS], np.int64), (count, 1))
        self.grid = np.zeros(count, np.int64)  # grid steps from the stream's start to the last onset
        self.started = False

    def snapshot(self) -> tuple:
        """The lines' state, to `restore` later (copies)."""
        return self.h.copy(), self.c.copy(), self.prev.copy(), self.grid.copy(), self.started, self.past.copy()

    def restore(self, state: tuple) -> None:
        h, c, prev, grid, started, past = state
        self.h, self.c, self.prev, self.grid, self.started = h.copy(), c.copy(), prev.copy(), grid.copy(), started
        self.past = past.copy()

    def _remember(self, events: np.ndarray) -> None:
        """Add each line's new events [count, n, 4] to its past (the figure memory's)."""
        self.past = np.concatenate([self.past, events[:, :, :2]], axis=1)[:, -FIGURE_MEMORY:]

    def feed(self, z, notes) -> int:
        """Teacher-force timed notes [n, 4] (pitch, onset beats on the stream's timeline, duration
        beats, velocity) through every line: the state, previous note and bar position advance
        through them in the model's own encoding (events.encode), as if it had sampled them.
        Each attribute is forced by a bias that forbids every other class (the graph samples
        argmax(logits + bias + gumbel), with the Gumbel noise 0 here). `z` [count, noise_dim].
        Pitches outside the piano are folded in by octaves. Returns how many events were fed."""
        notes = np.asarray(notes, np.float64).reshape(-1, 4)
        if not len(notes):
            return 0
        if not np.isfinite(notes).all():
            raise ValueError("notes to feed must be finite numbers")
        p, q, d, v = ev.quantise(fold_into_piano(np.rint(notes[:, 0])), notes[:, 1], notes[:, 2],
                                 np.clip(np.rint(notes[:, 3]), 1, 127))
        events, _ = ev.encode(p, q / GRID_STEPS_PER_BEAT, d, v)
        steps = None  # a fresh line's first step counts from its bar's start, as in training
        if self.started:  # otherwise from each line's last onset
            if q[0] < self.grid.max():
                raise ValueError("notes to feed must not start before the line's last note")
            steps = np.minimum(q[0] - self.grid, ev.MAX_STEP)
        elif q[0] < 0:
            raise ValueError("notes to feed must not start before beat 0")
        force = np.full((len(events), ev.WIDTH), NEG, np.float32)
        for i, a in enumerate(ev.ATTRS):
            force[np.arange(len(events)), ev.OFFSETS[a] + events[:, i]] = 0.0
        zero = np.zeros((self.count, ev.WIDTH), np.float32)
        h, c, prev, sess = self.h, self.c, self.prev, self.gen.session
        for t in range(len(events)):
            b = np.repeat(force[t][None], self.count, axis=0)
            want = np.repeat(events[t][None], self.count, axis=0)
            if t == 0 and steps is not None:
                b[:, :ev.SIZES["step"]] = NEG
                b[np.arange(self.count), steps] = 0.0
                want[:, 0] = steps
            out, h, c = sess.run(None, {"noise": z, "prev": prev, "pos": self.grid % ev.BAR_STEPS,
                                        "h": h, "c": c, "gumbel": zero, "bias": b})
            if not np.array_equal(out, want):
                raise RuntimeError("teacher forcing failed: the graph did not take the forced classes")
            prev = out
            self.grid = np.full(self.count, q[t], np.int64)
        self.h, self.c, self.prev, self.started = h, c, prev, True
        fed = np.repeat(events[None], self.count, axis=0)
        if steps is not None:
            fed[:, 0, 0] = steps  # each line's own first step
        self._remember(fed)
        return len(events)

    def phrase(self, z, temps, bias, n: int | None = None, start: int | None = None,
               window: int | None = None, until: int | None = None) -> np.ndarray:
        """Sample `n` notes (default: the model's sequence length) per line, continuing it.
        `start` (grid steps): the first note is struck at or after it, and before
        `start + window` when `window` is given (a bar at most after the last onset: a longer
        rest is the model's longest step, and the note lands on `start` itself). `until` (grid
        steps): stop early once every line's last onset is at or after it."""
        g, k, n = self.gen, self.k, self.gen.seq_len if n is None else int(n)
        rows = self.count * k
        h, c = np.repeat(self.h, k, axis=1), np.repeat(self.c, k, axis=1)
        prev, grid = np.repeat(self.prev, k, axis=0), np.repeat(self.grid, k)
        b = np.repeat(bias[None], rows, axis=0)
        p = ev.SPANS["pitch"]
        allowed = np.flatnonzero(bias[p] > NEG / 2)
        if not len(allowed):
            raise ValueError("the bias forbids every key")
        high = allowed.max()
        scale = np.repeat(temps, [ev.SIZES[a] for a in ev.ATTRS]).astype(np.float32)
        events = np.empty((rows, n, 4), np.int64)
        where = np.empty((rows, n), np.int64)
        classes = np.arange(ev.SIZES["step"])
        before = self.past.shape[1]  # the figure memory: the lines' past, then this phrase's notes
        memory = np.concatenate([np.repeat(self.past, k, axis=0), np.zeros((rows, n, 2), np.int64)], axis=1)
        for t in range(n):
            # A chord climbs: with no allowed key above the last one, the next note cannot join it.
            b[:, 0] = np.where((prev[:, 1] >= high) & (prev[:, 1] < ev.SIZES["pitch"]), NEG, bias[0])
            # A stream starts on its first downbeat, so its first note sounds at once.
            b[:, 1:ev.SIZES["step"]] = NEG if not self.started and start is None else bias[1:ev.SIZES["step"]]
            if t == 0 and start is not None:
                lo = np.clip(start - grid, 0, ev.MAX_STEP)[:, None]
                hi = lo + (window if window else ev.SIZES["step"])
                hi = np.maximum(hi, lo + 1 + (b[:, :1] <= NEG / 2))  # never an empty range
                b[:, :ev.SIZES["step"]] = np.where((classes >= lo) & (classes < hi), b[:, :ev.SIZES["step"]], NEG)
            self.started = True
            gumbel = (self.rng.gumbel(size=(rows, ev.WIDTH)) * scale).astype(np.float32)
            bt = b
            if self.figures:  # a line comes back to its own figures (as the music does; the model seldom)
                steps_hit, keys_hit = figure_hits(memory[:, max(0, before + t - FIGURE_MEMORY):before + t])
                bt = b.copy()
                bt[:, :ev.SIZES["step"]] += self.figures * FIGURE_STEP_SHARE * steps_hit
                bt[:, p] += self.figures * keys_hit
            prev, h, c = g.session.run(None, {"noise": z, "prev": prev, "pos": grid % ev.BAR_STEPS,
                                              "h": h, "c": c, "gumbel": gumbel, "bias": bt})
            grid = grid + prev[:, 0]
            if t == 0 and start is not None:  # a rest longer than a bar: the note lands on `start`
                grid = np.where(prev[:, 0] >= ev.MAX_STEP, np.maximum(grid, start), grid)
            events[:, t], where[:, t] = prev, grid
            memory[:, before + t] = prev[:, :2]
            if until is not None and (grid >= until).all():
                events, where, n = events[:, :t + 1], where[:, :t + 1], t + 1
                break
        pick = np.arange(self.count) * k
        if k > 1:
            scores = g.critic.score(events, where % ev.BAR_STEPS).reshape(self.count, k).astype(np.float64)
            if self.ct > 0:  # Gumbel-max again: a draw from softmax(scores / ct)
                scores = scores / self.ct + self.rng.gumbel(size=scores.shape)
            pick = pick + scores.argmax(1)
        self.h, self.c, self.prev, self.grid = h[:, pick], c[:, pick], prev[pick], grid[pick]
        self._remember(events[pick])
        return ev.to_notes(events[pick], where[pick], g.tables, self.rng)


class Continuation:
    """One event line steered by hand, for a live listener: `feed` it heard (or played) notes,
    teacher-forced, and `sample` from where it stands; `snapshot`/`restore` go back to a point.
    Onsets are beats on the caller's timeline (beat 0 = the line's start, on a downbeat).

    `hear` is told which notes a player played (before they are fed): with `follow` and a
    latent model (one with an encoder), the noise becomes what the encoder reads in the last
    seq_len of them, as a primed stream's (`Generator.noise_for`), so the line goes on in the
    player's texture; otherwise the noise drawn at the start stays. (Its own notes are not
    read: played along, they would ask for ever busier lines.)"""

    def __init__(self, gen: Generator, seed: int = 0, temperature: float = 1.0, noise_scale: float = 1.0,
                 bias: np.ndarray | None = None, follow: bool = True, figures: float = 0.0):
        if not gen.timed:
            raise ValueError(f"{gen.path.name} is a pitch-only (sequence) model: priming needs an event model")
        self.gen = gen
        rng = np.random.default_rng(seed)
        self.noise_scale = float(noise_scale)
        self.z = (rng.standard_normal((1, gen.noise_dim)) * noise_scale).astype(np.float32)
        self.follow = follow and gen.encoder is not None
        self.heard = np.empty((0, 4))  # the last seq_len notes a player played: what the encoder reads
        self.lines = _Lines(gen, 1, 1, rng, figures=figures)
        self.temperature = float(temperature)
        self.bias = np.zeros(ev.WIDTH, np.float32) if bias is None else np.asarray(bias, np.float32)

    def reseed(self, seed: int) -> None:
        """A new random stream for what is sampled from here on (the state stays: a new take
        of the same context)."""
        self.lines.rng = np.random.default_rng(seed)

    @property
    def last_onset(self) -> float | None:
        """Beat of the last note fed or sampled (None before any)."""
        return float(self.lines.grid[0]) / GRID_STEPS_PER_BEAT if self.lines.started else None

    def hear(self, notes) -> None:
        """Timed notes [n, 4] a player played, in time order (feed them too, for the state)."""
        notes = np.asarray(notes, np.float64).reshape(-1, 4)
        if not np.isfinite(notes).all():
            raise ValueError("notes heard must be finite numbers")
        if not len(notes):
            return
        self.heard = np.concatenate([self.heard, notes])[-self.gen.seq_len:]
        if self.follow:
            self.z = (self.gen.noise_for(self.heard, self.z) * self.noise_scale).astype(np.float32)

    def feed(self, notes) -> int:
        return self.lines.feed(self.z, notes)

    @property
    def figures(self) -> float:
        """How strongly the line comes back to the figures it has played or been fed (0 = off)."""
        return self.lines.figures

    @figures.setter
    def figures(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"figures should be 0 or more, got {value}")
        self.lines.figures = float(value)

    def sample(self, n: int = 64, start: float | None = None, window: float | None = None,
               until: float | None = None) -> np.ndarray:
        """Up to `n` notes [m, 4] (pitch, onset beats, duration beats, velocity): the first at or
        after beat `start` (and before `start + window` beats); with `until`, only the notes with
        onsets before that beat (the sampling stops at the first past it)."""
        s = None if start is None else grid_step(start)
        w = None if window is None else max(1, int(round(window * GRID_STEPS_PER_BEAT)))
        u = None if until is None else grid_step(until)
        notes = self.lines.phrase(self.z, self.gen.temperatures * self.temperature, self.bias, n=n,
                                  start=s, window=w, until=u)[0]
        return notes if until is None else notes[notes[:, 1] < until - 1e-9]

    def snapshot(self) -> tuple:
        return self.lines.snapshot(), self.z.copy(), self.heard.copy()

    def restore(self, state: tuple) -> None:
        lines, z, heard = state
        self.lines.restore(lines)
        self.z, self.heard = z.copy(), heard.copy()
