"""The run's log: one CSV row per step, a progress bar, and the curves drawn at each checkpoint."""
from __future__ import annotations

import csv
import math
from pathlib import Path

from ..files import write_atomic

FIELDS = ("step", "phase", "lr", "nll", "nll_step", "nll_pitch", "nll_duration", "nll_velocity", "val_nll",
          "val_nll_step", "val_nll_pitch", "val_nll_duration", "val_nll_velocity", "kl", "val_kl",
          "g_adv", "d_loss", "acc_real", "acc_fake", "val_acc", "seconds")


class Log:
    """log.csv in `out` (trimmed to `step` first: a killed run may have logged past its last
    checkpoint), a tqdm bar, and losses.png / accuracy.png redrawn at every checkpoint."""

    def __init__(self, out: Path, step: int, writer: bool, progress: bool, total: int, name: str):
        import time

        self.out, self.writer, self.clock = Path(out), writer, time.monotonic
        self.t0 = self.clock()
        self.file = self.bar = None
        if not writer:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "log.csv"
        _trim(path, step)
        self.file = open(path, "a", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=FIELDS)
        if path.stat().st_size == 0:
            self.csv.writeheader()
        if progress:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=step, unit="step", desc=name, dynamic_ncols=True)

    def write(self, step: int, row: dict) -> None:
        if not self.writer:
            return
        row = {"step": step, "seconds": self.clock() - self.t0, **row}
        self.csv.writerow({k: f"{v:.5g}" if isinstance(v, float) and not math.isnan(v) else v
                           for k, v in row.items()})
        if self.bar:
            self.bar.update(1)
            show = {k: f"{row[k]:.3f}" for k in ("nll", "val_nll", "d_loss", "val_acc") if k in row}
            if show:
                self.bar.set_postfix(show, refresh=False)

    def flush(self) -> None:
        if self.file:
            self.file.flush()

    def plot(self) -> None:
        if self.writer:
            from ..plots import training_curves
            training_curves(read_log(self.out / "log.csv"), self.out)

    def close(self) -> None:
        if self.bar:
            self.bar.close()
        if self.file:
            self.file.close()


def read_log(path) -> dict[str, list[float]]:
    """log.csv as columns of floats (NaN where a step did not log the value)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) if r.get(k) not in (None, "") else math.nan for r in rows]
            for k in FIELDS if k != "phase"}


def _trim(path: Path, step: int) -> None:
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= step]

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)
    write_atomic(path, write)
