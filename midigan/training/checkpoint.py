"""The run's checkpoint: one dict of fixed keys, written atomically, read without pickle."""
from __future__ import annotations

from pathlib import Path

import torch

from ..files import write_atomic

FORMAT = "midigan-checkpoint"
VERSION = 4  # 2: note-event models, steps instead of epochs, the best generator kept apart; 3: tables;
# 4: no policy-gradient phase (its config keys gone)
KEYS = ("format", "version", "config", "step", "generator", "best_generator", "best_nll", "discriminator",
        "opt_g", "opt_d", "rng", "corpus", "tables", "command")


def load_checkpoint(path) -> dict:
    """Load and check a checkpoint; weights_only=True, so no pickled code ever runs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ValueError(f"{path} is not a midigan checkpoint ({first})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise ValueError(f"{path} is not a midigan checkpoint")
    if ck.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint version {ck.get('version')!r} is not supported "
                         f"(this midigan writes version {VERSION})")
    missing = [k for k in KEYS if k not in ck]
    if missing:
        raise ValueError(f"{path}: checkpoint is missing {', '.join(missing)}")
    if isinstance(ck["config"], dict):
        # Written before the noise became a latent (or the key head read intervals): its
        # generator has no encoder (no interval head).
        ck["config"].setdefault("kl_weight", 0.0)
        ck["config"].setdefault("intervals", 0)
    return ck


def save_checkpoint(ck: dict, path: Path) -> None:
    """Synced: the bytes are on disk before the rename makes them the checkpoint."""
    assert tuple(ck) == KEYS, sorted(set(ck) ^ set(KEYS))
    write_atomic(path, lambda tmp: torch.save(ck, tmp), sync=True)
