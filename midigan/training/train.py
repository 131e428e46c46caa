"""One training loop for both model families, on one CPU, one GPU or many (torchrun).

Run folder layout: checkpoint.pt (one dict of fixed keys, written atomically each
epoch), log.csv (one row per step), accuracy.png and losses.png.
Under `torchrun`, every rank trains on its own random windows, the models are wrapped
in DistributedDataParallel (gradients averaged across ranks), and only rank 0 writes.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..corpus import load_corpus, windows
from ..files import write_atomic
from ..encoding import N_PITCHES, PITCH_HIGH, PITCH_LOW, normalize
from .config import Config, load_config, make_config
from .model import build

CKPT_FORMAT = "midigan-checkpoint"
CKPT_VERSION = 1
CKPT_KEYS = ("format", "version", "config", "epoch", "step", "generator", "discriminator",
             "opt_g", "opt_d", "rng", "corpus", "command")
LOG_FIELDS = ("step", "epoch", "phase", "g_loss", "g_adv", "nll", "code", "d_loss", "acc_real", "acc_fake",
              "val_nll", "seconds", "mmd", "marginal")


# ---------------------------------------------------------------- checkpoints

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
    if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
        raise ValueError(f"{path} is not a midigan checkpoint")
    if ck.get("version") != CKPT_VERSION:
        raise ValueError(f"{path}: checkpoint version {ck.get('version')!r} is not supported")
    missing = [k for k in CKPT_KEYS if k not in ck]
    if missing:
        raise ValueError(f"{path}: checkpoint is missing {', '.join(missing)}")
    return ck


def save_checkpoint(ck: dict, path: Path) -> None:
    # synced: the bytes are on disk before the rename makes them the checkpoint
    write_atomic(path, lambda tmp: torch.save(ck, tmp), sync=True)


# ---------------------------------------------------------------- data

class Windows:
    """Random training windows drawn from whole train pieces, all on tensors."""

    def __init__(self, pieces, seq_len: int, chords: bool = False):
        pieces = [p for p in pieces if len(p.pitches) >= seq_len]
        arrays = [p.pitches.astype(np.int64) - PITCH_LOW for p in pieces]
        if not arrays:
            raise ValueError(f"the corpus has no training piece with at least {seq_len} notes")
        offsets = np.cumsum([0] + [len(a) for a in arrays])
        self.notes = torch.from_numpy(np.concatenate(arrays))
        # With chords, a note's class is key + 88 if it starts with the note before it.
        self.offset = (torch.from_numpy(np.concatenate([p.together for p in pieces]).astype(np.int64))
                       * N_PITCHES if chords else None)
        # A window may start anywhere it does not run past its own piece's end.
        self.starts = torch.from_numpy(np.concatenate(
            [np.arange(o, o + len(a) - seq_len + 1) for o, a in zip(offsets, arrays)]))
        self.seq_len = seq_len

    def sample(self, batch: int, transpose: int, g: torch.Generator) -> torch.Tensor:
        """[batch, seq_len] key indices 0..87 (or classes 0..175 with chords), randomly transposed
        within the keyboard."""
        i = self.starts[torch.randint(len(self.starts), (batch,), generator=g)]
        at = i[:, None] + torch.arange(self.seq_len)
        x = self.notes[at]
        if transpose:
            lo = -x.min(1).values  # the shifts that keep every note on the keyboard
            hi = (PITCH_HIGH - PITCH_LOW) - x.max(1).values
            shift = torch.randint(-transpose, transpose + 1, (batch,), generator=g)
            x = x + torch.minimum(torch.maximum(shift, lo), hi)[:, None]
        return x if self.offset is None else x + self.offset[at]


# ---------------------------------------------------------------- the loop

def _dist():
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() and
                                os.environ.get("MIDIGAN_BACKEND") != "gloo" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _resolve_config(config, resume_ck):
    if resume_ck is None:
        return load_config(config or "default")
    saved = make_config(resume_ck["config"], Config())
    if config is not None and dataclasses.asdict(load_config(config)) != dataclasses.asdict(saved):
        raise ValueError(f"the checkpoint was trained with config {saved.name!r}, not {config!r}; "
                         "drop --config to resume it")
    return saved


def run_training(folder, out, *, config=None, epochs=None, seed=None, resume=False, init=None,
                 device="auto", progress=True) -> Path:
    """Train on the MIDI files under `folder`, writing the run to `out`. Returns the checkpoint path.

    `init`: a checkpoint whose generator and discriminator weights (and style tables) this new
    run starts from, e.g. a maximum-likelihood run fine-tuned adversarially with another schedule.
    """
    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    if resume:
        ck = load_checkpoint(ckpt_path)
    else:
        ck = None
        if ckpt_path.exists():
            raise FileExistsError(f"{out} already holds a run; pass --resume to continue it "
                                  "or choose another --out")
    cfg = _resolve_config(config, ck)
    init_ck = load_checkpoint(init) if init is not None else None
    if epochs is not None:
        if epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {epochs}")
        cfg = dataclasses.replace(cfg, epochs=epochs, pretrain_epochs=min(cfg.pretrain_epochs, epochs))
    if seed is not None:
        if ck is not None and seed != cfg.seed:
            raise ValueError(f"the checkpoint was trained with --seed {cfg.seed}; drop --seed to resume it")
        cfg = dataclasses.replace(cfg, seed=seed)

    rank, world = _dist()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is available")
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    else:
        dev = torch.device("cpu")

    corpus = load_corpus(folder, splits=("train", "validation"))  # the test pieces are never read
    train_w = Windows(corpus.split("train"), cfg.seq_len, bool(cfg.chords))
    val = windows(corpus.split("validation"), cfg.seq_len)[: cfg.val_windows] - PITCH_LOW
    if cfg.chords:
        val = val + N_PITCHES * windows(corpus.split("validation"), cfg.seq_len, together=True)[: cfg.val_windows]
    corpus_info = {"name": Path(folder).resolve().name, **corpus.stats()}

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    G, D = (m.to(dev) for m in build(cfg))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, 0.999))
    g = torch.Generator().manual_seed(cfg.seed * 1000 + rank)  # data and noise: one stream per rank
    epoch, step = 0, 0
    if ck is not None:
        G.load_state_dict(ck["generator"])
        D.load_state_dict(ck["discriminator"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        if len(ck["rng"]) != world:
            raise ValueError(f"the checkpoint was written by {len(ck['rng'])} process(es), not {world}")
        g.set_state(ck["rng"][rank])
        epoch, step = ck["epoch"], ck["step"]
    elif init_ck is not None:
        try:
            G.load_state_dict(init_ck["generator"])
        except RuntimeError:
            raise ValueError(f"--init {init}: its generator does not fit config {cfg.name!r} "
                             f"(trained with {init_ck['config'].get('name')!r})") from None
        try:
            D.load_state_dict(init_ck["discriminator"])
        except RuntimeError:
            # Another discriminator design (e.g. d_intervals): the generator is what --init
            # carries over; this run's discriminator warm-up trains the new one from scratch.
            if rank == 0:
                print(f"--init {init}: its discriminator does not fit config {cfg.name!r}; "
                      "starting a fresh one", file=sys.stderr)
    elif cfg.style:
        # What the noise's first dimensions will mean: statistics of (transposed) training
        # windows, from a stream of their own so the training stream is unchanged.
        from . import style
        table = style.fit(train_w.sample(20_000, cfg.transpose, torch.Generator().manual_seed(cfg.seed)).numpy()
                          % N_PITCHES)
        with torch.no_grad():
            for k, v in table.items():
                getattr(G, f"style_{k}").copy_(v)
    code_sd = None
    if cfg.code_weight:
        # The spread of each style statistic over training windows: the consistency term's units.
        from . import style
        d = style.descriptors(train_w.sample(20_000, cfg.transpose, torch.Generator().manual_seed(cfg.seed + 1))
                              .numpy() % N_PITCHES)
        code_sd = torch.tensor(d.std(0) + 1e-3, dtype=torch.float32, device=dev)
    matcher = None
    if cfg.mmd_weight or cfg.marginal_weight:
        # Training windows' statistics: the MMD terms' units, and their real bank (style.Matcher).
        from . import style
        cls = train_w.sample(8_000, cfg.transpose, torch.Generator().manual_seed(cfg.seed + 2))
        with torch.no_grad():
            f = torch.cat([_window_stats(c, cfg) for c in cls.split(500)])
        matcher = style.Matcher(f.to(dev), cfg.mmd_bank)
    # Under torchrun, forward calls go through DistributedDataParallel, which averages the
    # gradients across ranks during backward. Sampling (G.sample) and the discriminator's
    # read-outs used for the generator's loss bypass the wrappers on purpose: their gradients
    # reach the generator's parameters, whose hooks DDP reduces once per backward.
    Gp, Dp = (torch.nn.parallel.DistributedDataParallel(m) for m in (G, D)) if world > 1 else (G, D)
    if epoch >= cfg.epochs:
        raise ValueError(f"the run in {out} already finished {epoch} epochs; pass --epochs N (> {epoch})")

    log_path = out / "log.csv"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        _trim_log(log_path, step)  # a killed run may have logged past its last checkpoint
    command = shlex.join(["midigan"] + sys.argv[1:]) if ck is None else ck["command"]

    bar = None
    if progress and rank == 0:
        from tqdm import tqdm
        bar = tqdm(total=cfg.epochs * cfg.steps_per_epoch, initial=step, unit="step",
                   desc=f"{cfg.name}", dynamic_ncols=True)
    t0 = time.monotonic()
    fields = list(LOG_FIELDS)
    with open(log_path, "a", newline="") if rank == 0 else open(os.devnull, "w") as logf:
        writer = csv.DictWriter(logf, fieldnames=fields)
        if rank == 0 and log_path.stat().st_size == 0:
            writer.writeheader()
        while epoch < cfg.epochs:
            adversarial = cfg.model == "scalar" or epoch >= cfg.pretrain_epochs
            # The discriminator only matters once it drives the generator: it warms up
            # for the last pretraining epoch instead of costing a sample every step.
            train_d = adversarial or epoch >= cfg.pretrain_epochs - cfg.d_warmup_epochs
            G.train(), D.train()
            for _ in range(cfg.steps_per_epoch):
                if cfg.model == "categorical":
                    for pg in opt_g.param_groups:
                        pg["lr"] = _lr_g(cfg, step, adversarial)
                real = train_w.sample(cfg.batch_size, cfg.transpose, g).to(dev)
                row = _step(cfg, G, D, opt_g, opt_d, real, adversarial, train_d, g, dev, Gp, Dp, code_sd, matcher)
                step += 1
                row.update(step=step, epoch=epoch + 1, phase="adv" if adversarial else "mle",
                           seconds=round(time.monotonic() - t0, 2))
                if bar:
                    bar.update(1)
                    if step % 10 == 0:
                        bar.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}",
                                        real=f"{row['acc_real']:.2f}", fake=f"{row['acc_fake']:.2f}")
                if step % cfg.steps_per_epoch == 0:
                    row["val_nll"] = _validate(cfg, G, val, dev)
                writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else
                                     f"{v:.5f}" if isinstance(v, float) else v) for k, v in row.items()})
            epoch += 1
            logf.flush()
            _check_in_sync(G, D, world)
            rngs = _gather_rng(g, world)
            if rank == 0:
                save_checkpoint({
                    "format": CKPT_FORMAT, "version": CKPT_VERSION, "config": dataclasses.asdict(cfg),
                    "epoch": epoch, "step": step, "generator": G.state_dict(),
                    "discriminator": D.state_dict(), "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(), "rng": rngs, "corpus": corpus_info, "command": command,
                }, ckpt_path)
                _plot(log_path, out)
    if bar:
        bar.close()
    if world > 1:
        dist.barrier()
    return ckpt_path


def _lr_g(cfg: Config, step: int, adversarial: bool) -> float:
    """The generator's rate at `step`: a gentler one once the critic drives it; before that
    a cosine from lr_g to lr_g * lr_final over the likelihood steps (a decayed rate buys
    most of the last likelihood gains, for free)."""
    if adversarial:
        return cfg.adv_lr_g
    t = min(step / max(1, cfg.pretrain_epochs * cfg.steps_per_epoch - 1), 1.0)
    return cfg.lr_g * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


def _check_in_sync(G, D, world: int) -> None:
    """Every rank must hold the same weights; a silent divergence would waste the run."""
    if world == 1:
        return
    with torch.no_grad():
        mine = torch.stack([torch.cat([p.detach().double().flatten() for p in m.parameters()]).sum()
                            for m in (G, D)]).cpu()
    parts = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(parts, mine)
    if any(not torch.equal(parts[0], q) for q in parts[1:]):
        raise RuntimeError(f"ranks disagree on the weights: {[q.tolist() for q in parts]}")


def _gather_rng(g: torch.Generator, world: int) -> list:
    state = g.get_state()
    if world == 1:
        return [state]
    parts = [torch.empty_like(state) for _ in range(world)]
    dist.all_gather(parts, state)  # tensors only: no pickled objects cross processes
    return parts


def _bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _window_stats(x, cfg: Config) -> torch.Tensor:
    """Statistics the MMD terms compare: style.window_stats of the keys, then (for a chord model)
    style.chord_stats of the flags. x: [B, T] classes, or a sampled (one-hot keys, flags) pair."""
    from . import style
    if isinstance(x, tuple):
        keys, flags = x
    else:
        keys, flags = F.one_hot(x % N_PITCHES, N_PITCHES).float(), (x >= N_PITCHES).float()
    stats = style.window_stats(keys)
    return torch.cat([stats, style.chord_stats(flags)], dim=1) if cfg.chords else stats


def _step(cfg: Config, G, D, opt_g, opt_d, real, adversarial, train_d, g, dev, Gp=None, Dp=None,
          code_sd=None, matcher=None) -> dict:
    """One discriminator and one generator update. Gp/Dp: the DDP-wrapped modules, if any;
    code_sd: the style statistics' spread, when the style-consistency term is on; matcher:
    the MMD terms' style.Matcher (the window statistics' units, and its banks), when they are on."""
    Gp, Dp = Gp or G, Dp or D
    B, T = real.shape
    if cfg.model == "scalar":
        x_real = torch.from_numpy(normalize(real.cpu().numpy() + PITCH_LOW)).to(dev)
        z = torch.randn(B, T, cfg.noise_dim, generator=g).to(dev)
        fake = Gp(z)
    else:
        x_real = F.one_hot(real % N_PITCHES, N_PITCHES).float()  # the discriminator judges keys
        z = torch.randn(B, cfg.noise_dim, generator=g).to(dev)
        if code_sd is not None:
            z = G.with_style(z, real % N_PITCHES)  # generated lines get real windows' codes
        if train_d:
            # One sample serves both updates: the discriminator sees it detached, the
            # generator gets the gradient through it (sampling 100 steps is the costly part).
            # (The style-consistency and MMD terms need the gradient before the adversarial phase too.)
            with torch.set_grad_enabled(adversarial or code_sd is not None or matcher is not None):
                fake, flags = G.sample(z, T, cfg.tau, g, flags=True, temperature=cfg.sample_temperature)

    nan = float("nan")
    d_loss, acc_real, acc_fake, g_adv = torch.tensor(nan), nan, nan, torch.tensor(nan)
    code = mmd = marginal = torch.tensor(nan)
    if train_d:
        # Discriminator: real sequences toward `label_smoothing`, generated toward 0.
        d_real, d_fake = Dp(x_real), Dp(fake.detach())
        d_loss = _bce(d_real, cfg.label_smoothing) + _bce(d_fake, 0.0)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        acc_real = (d_real > 0).float().mean().item()
        acc_fake = (d_fake < 0).float().mean().item()
        g_adv = _bce(d_fake.detach(), 1.0)

    # Generator: fool the discriminator; the categorical one also keeps the likelihood
    # of real music, which stops the adversarial drift a pure GAN suffers on a CPU budget.
    nll = torch.zeros((), device=dev)
    if cfg.model == "categorical":
        # With style codes, the likelihood is of the window given its own code (training/style.py).
        logits, _ = Gp(**G.teacher_inputs(z, real))
        nll = F.cross_entropy(logits.reshape(-1, G.n_out), real.reshape(-1))
    if adversarial:
        if cfg.model == "categorical":
            f_fake = D.features(fake)
            g_adv = _bce(D.out(f_fake).squeeze(-1), 1.0)
            g_loss = cfg.adv_weight * g_adv + cfg.mle_weight * nll
            # Feature matching (Salimans et al. 2016): a steadier signal than fooling a
            # discriminator that is near chance; and the repetition rates real music has,
            # which a sampled LSTM under-produces (motifs that come back).
            if cfg.fm_weight:
                f_real = D.features(x_real).detach()
                g_loss = g_loss + cfg.fm_weight * (f_real.mean(0) - f_fake.mean(0)).pow(2).mean()
            if cfg.rep_weight:
                r_real, r_fake = D.repetition(x_real).mean((0, 1)), D.repetition(fake).mean((0, 1))
                g_loss = g_loss + cfg.rep_weight * (r_real - r_fake).pow(2).sum()
        else:
            g_adv = _bce(Dp(fake), 1.0)
            g_loss = cfg.adv_weight * g_adv
    else:
        g_loss = nll
    if code_sd is not None and train_d:
        # Style consistency: a line sampled with a real window's code should show that
        # window's statistics. Likelihood alone teaches the generator to follow its code
        # for register and key but hardly for figuration (repetition, interval classes),
        # so its lines wander between textures where real passages keep one. It applies
        # whenever lines are sampled: with the discriminator's warm-up, before the adversarial phase.
        from .style import soft_descriptors
        code = ((soft_descriptors(fake) - soft_descriptors(x_real)) / code_sd).pow(2).mean()
        g_loss = g_loss + cfg.code_weight * code
    if matcher is not None and train_d:
        # Distribution matching: sampled lines and real windows should look alike in their window
        # statistics as a whole (MMD), not only on average. Per-line consistency and likelihood
        # leave the sampled lines more diffuse than real ones; this pulls them together, so
        # sampling needs less cooling and copies less. The marginal term matches each statistic's
        # whole distribution (its spread too), chord sizes included; with a bank (style.Matcher)
        # both compare against a thousand lines a side, where a batch of 64 soon sits at its noise floor.
        joint, marg = matcher.terms(*(_window_stats(x, cfg) for x in ((fake, flags), real)), g)
        if cfg.mmd_weight:
            mmd = joint
            g_loss = g_loss + cfg.mmd_weight * mmd
        if cfg.marginal_weight:
            marginal = marg
            g_loss = g_loss + cfg.marginal_weight * marginal
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    torch.nn.utils.clip_grad_norm_(G.parameters(), cfg.grad_clip)
    opt_g.step()
    return dict(g_loss=g_loss.item(), g_adv=g_adv.item(),
                nll=nll.item() if cfg.model == "categorical" else "", code=code.item(), mmd=mmd.item(),
                marginal=marginal.item(), d_loss=d_loss.item(),
                acc_real=acc_real, acc_fake=acc_fake, val_nll="")


@torch.no_grad()
def _validate(cfg: Config, G, val: np.ndarray, dev) -> float | str:
    """Mean negative log-likelihood per note on held-out pieces (categorical only)."""
    if cfg.model != "categorical" or not len(val):
        return ""
    G.eval()
    x = torch.from_numpy(val).to(dev)
    z = torch.zeros(len(x), cfg.noise_dim, device=dev)
    logits, _ = G(**G.teacher_inputs(z, x))
    G.train()
    if G.n_out > N_PITCHES:  # the keys' likelihood (chord flags summed out), comparable across models
        logits = logits.unflatten(-1, (2, N_PITCHES)).logsumexp(-2)
    return F.cross_entropy(logits.reshape(-1, N_PITCHES), (x % N_PITCHES).reshape(-1)).item()


def _trim_log(path: Path, step: int) -> None:
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= step]
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(LOG_FIELDS))
            w.writeheader()
            w.writerows(rows)
    write_atomic(path, write)


def read_log(path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for k in ("step", "g_loss", "g_adv", "nll", "code", "mmd", "marginal", "d_loss", "acc_real", "acc_fake", "val_nll"):
        out[k] = np.array([float(r[k]) if r.get(k) else math.nan for r in rows])
    return out


def _smooth(s: np.ndarray, y: np.ndarray, n: int = 25):
    """(steps, moving average) over the steps where y was logged (NaN where it was not)."""
    m = ~np.isnan(y)
    s, y = s[m], y[m]
    if len(y) < n:
        return s, y
    return s[n - 1:], np.convolve(y, np.ones(n) / n, mode="valid")


def _plot(log_path: Path, out: Path) -> None:
    """The paper's two figures: discriminator accuracy (real vs generated) and the losses."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = read_log(log_path)
    if not len(h["step"]):
        return
    s = h["step"]
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, label in (("acc_real", "real sequences"), ("acc_fake", "generated sequences")):
        ax.plot(*_smooth(s, h[k]), label=label)
    ax.set(xlabel="step", ylabel="discriminator accuracy", ylim=(-0.02, 1.02), xlim=(0, s.max()),
           title="Discriminator accuracy (moving average; from its warm-up on)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    for k, label, scale in (("d_loss", "discriminator", 1), ("g_adv", "generator (adversarial)", 1),
                            ("nll", "generator NLL per note (train)", 1),
                            ("code", "style-consistency gap (generator)", 1),
                            ("mmd", "window-statistics MMD x 10 (generator)", 10),
                            ("marginal", "marginal MMD x 100 (generator)", 100)):
        if np.any(~np.isnan(h[k])):
            ax.plot(*_smooth(s, scale * h[k]), label=label)
    m = ~np.isnan(h["val_nll"])
    if m.any():
        ax.plot(s[m], h["val_nll"][m], "o-", label="NLL per note (held out)")
    ax.set(xlabel="step", ylabel="loss", title="Losses (moving average)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=100)
    plt.close(fig)
