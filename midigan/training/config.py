"""Training configs: plain typed values, named or read from TOML, failing loudly on unknown keys.

`Config()` is the default, what ships: an LSTM generator over note events (onset step,
key, duration, velocity; midigan/events.py; each key scored also by its interval from the
note before) fed one noise vector per line, trained by
maximum likelihood with that noise as a VAE's latent (an encoder reads each training
window; a KL term with free bits keeps the noise near N(0, I), where the runtime draws it);
then an LSTM discriminator trained with binary cross-entropy to tell
real windows from the generator's. Its job is at run time: it chooses each phrase among
`candidates` the generator sampled (discriminator rejection sampling). A phase in which
the generator also learned from it (REINFORCE) was measured and did not help (CHANGELOG.md),
so it is gone. `seed` is the paper's design (one tanh
value per note, noise sequence in, LSTM discriminator, binary cross-entropy), kept as a
reproducible baseline. `tiny` is seconds on a CPU, for tests.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Config:
    name: str = "default"
    model: str = "event"  # "event" (the default) or "scalar" (the paper)
    seq_len: int = 100  # notes per training window (the paper's 100)
    noise_dim: int = 32
    hidden: int = 256  # generator LSTM width
    layers: int = 1  # generator LSTM layers
    emb: int = 32  # width of each attribute's input embedding (event)
    intervals: int = 1  # 1: the key head adds a logit per interval from the note before (event)
    dropout: float = 0.2  # on the generator's LSTM outputs (event): the onset head overfits first
    d_hidden: int = 128  # discriminator LSTM width
    d_emb: int = 24  # the discriminator's attribute embedding width (event)
    batch_size: int = 64
    mle_steps: int = 3000  # likelihood steps (event)
    adv_steps: int = 500  # discriminator steps (event: against the frozen generator; scalar: the GAN)
    lr_g: float = 2e-3  # falls by a cosine to lr_g * lr_final over the likelihood steps
    lr_final: float = 0.05
    lr_d: float = 1e-3
    kl_weight: float = 1.0  # > 0: the noise is a VAE's latent (an encoder reads it); 0: noise ignored
    free_bits: float = 1.0  # nats per noise dimension the KL term leaves free (the latent is used, not collapsed)
    beta1: float = 0.9  # Adam's first moment (the paper's GAN: 0.5)
    label_smoothing: float = 0.9  # the discriminator's target for real windows
    temperature: float = 1.0  # sampling temperature of the lines the discriminator learns from, and the shipped default
    candidates: int = 8  # phrases sampled per phrase played; the discriminator picks one (1 = its vote off)
    transpose: int = 5  # augmentation: random transposition up to +- this many semitones
    grad_clip: float = 1.0
    val_windows: int = 512  # validation windows for the likelihood and the discriminator's accuracy
    val_every: int = 250  # steps between validations and checkpoints
    seed: int = 1234


CONFIGS = {
    "default": Config(),
    # The paper: 100-note sequences, pitches normalised to (-1, 1), noise -> LSTM -> tanh per
    # step, LSTM discriminator, BCE, Adam(2e-4, beta1 0.5). 600 steps: longer does not help it.
    "seed": Config(name="seed", model="scalar", noise_dim=16, hidden=128, layers=1, mle_steps=0,
                   adv_steps=600, val_every=200, lr_g=2e-4, lr_final=1.0, lr_d=2e-4, beta1=0.5, label_smoothing=1.0,
                   candidates=1, transpose=0, kl_weight=0.0),
    # Seconds on a CPU: for tests and smoke runs.
    "tiny": Config(name="tiny", seq_len=32, noise_dim=8, hidden=32, layers=1, emb=8, d_hidden=16, d_emb=8,
                   batch_size=8, mle_steps=6, adv_steps=4, candidates=2, val_windows=16, val_every=5),
}

FIELDS = {f.name: f.type for f in dataclasses.fields(Config)}
POSITIVE = ("seq_len", "noise_dim", "hidden", "layers", "emb", "d_hidden", "d_emb", "batch_size",
            "candidates", "val_windows", "val_every")


def make_config(data: dict, base: Config | None = None) -> Config:
    """A Config from a dict, checking names and types; unknown keys are errors."""
    base = base or Config()
    for k, v in data.items():
        if k not in FIELDS:
            raise ValueError(f"config: unknown key {k!r} (known: {', '.join(FIELDS)})")
        typ = FIELDS[k]
        ok = {"int": isinstance(v, int) and not isinstance(v, bool),
              "float": isinstance(v, (int, float)) and not isinstance(v, bool),
              "str": isinstance(v, str)}[typ]
        if not ok:
            raise ValueError(f"config: {k} = {v!r} should be {typ}")
    data = {k: float(v) if FIELDS[k] == "float" else v for k, v in data.items()}
    cfg = dataclasses.replace(base, **data)
    if cfg.model not in ("scalar", "event"):
        raise ValueError(f"config: model = {cfg.model!r} should be 'event' or 'scalar'")
    for k in POSITIVE:
        if getattr(cfg, k) < 1:
            raise ValueError(f"config: {k} = {getattr(cfg, k)} should be at least 1")
    for k in ("mle_steps", "adv_steps"):
        if getattr(cfg, k) < 0:
            raise ValueError(f"config: {k} = {getattr(cfg, k)} should be 0 or more")
    if cfg.mle_steps + cfg.adv_steps < 1:
        raise ValueError("config: mle_steps + adv_steps should be at least 1")
    if cfg.model == "scalar" and (cfg.mle_steps or cfg.candidates != 1 or cfg.kl_weight):
        raise ValueError("config: a scalar model has no likelihood phase (mle_steps = 0, kl_weight = 0) "
                         "and candidates = 1")
    if cfg.intervals not in (0, 1):
        raise ValueError(f"config: intervals = {cfg.intervals} should be 0 or 1")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"config: dropout = {cfg.dropout} should be in [0, 1)")
    if not 0.0 <= cfg.lr_final <= 1.0:
        raise ValueError(f"config: lr_final = {cfg.lr_final} should be between 0 and 1")
    if cfg.kl_weight < 0 or cfg.free_bits < 0:
        raise ValueError("config: kl_weight and free_bits should be 0 or more")
    if not 0.1 <= cfg.temperature <= 2.0:
        raise ValueError(f"config: temperature = {cfg.temperature} should be between 0.1 and 2")
    return cfg


def load_config(name_or_path: str) -> Config:
    """A named config (default, seed, tiny) or a TOML file of overrides on one (key `base`, default `default`)."""
    if name_or_path in CONFIGS:
        return CONFIGS[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"unknown config {name_or_path!r} (named: {', '.join(CONFIGS)}; or a TOML file)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config {path.name!r} is not valid TOML: {e}") from None
    base = CONFIGS.get(data.pop("base", "default"))
    if base is None:
        raise ValueError(f"config {path.name!r}: base should be one of {', '.join(CONFIGS)}")
    data.setdefault("name", path.stem)
    return make_config(data, base)
