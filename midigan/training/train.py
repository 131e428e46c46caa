"""One training loop, on one CPU, one GPU or many (torchrun).

The default (event) model trains in two phases: `mle_steps` of maximum likelihood
(teacher forcing over real windows; with `kl_weight` > 0 the noise is drawn from an
encoder's posterior over the window and a KL term is added: a VAE's bound), keeping the
generator that scores best on the validation pieces; then `adv_steps` in which the
discriminator learns, by binary cross-entropy, to tell real windows from that
generator's sampled continuations. The discriminator's work is at run time, choosing
among sampled phrases (runtime.py); a third phase that rewarded the generator through it
(REINFORCE) did not help in its ablation and was removed. The seed (scalar) model is the paper's GAN: generator and
discriminator alternate for `adv_steps`.

Run folder: checkpoint.pt (every `val_every` steps), log.csv (one row per step),
losses.png and accuracy.png. Under `torchrun` every rank draws its own windows, the
models are wrapped in DistributedDataParallel, and only rank 0 writes.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import shlex
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .. import events as ev
from ..corpus import load_corpus
from .checkpoint import FORMAT, VERSION, load_checkpoint, save_checkpoint
from .config import Config, load_config, make_config
from .data import EventWindows, PitchWindows
from .log import Log
from .model import build

PREFIX = 16  # real notes a sampled continuation follows, as the runtime's candidates follow the stream


def run_training(folder, out, *, config=None, seed=None, resume=False, device="auto", progress=True) -> Path:
    """Train on the MIDI files under `folder`, writing the run to `out`. Returns the checkpoint path."""
    out = Path(out)
    ck = _open_run(out, resume)
    cfg = _resolve_config(config, seed, ck)
    rank, world = _dist()
    dev = _device(device)

    corpus = load_corpus(folder, splits=("train", "validation"))  # the test pieces are never read
    Windows = EventWindows if cfg.model == "event" else PitchWindows
    data = Windows(corpus.split("train"), cfg.seq_len)
    val = Windows(corpus.split("validation"), cfg.seq_len) if cfg.model == "event" else None
    G, D, opt_g, opt_d, g = _build(cfg, dev, rank)
    step, best_nll, best = _restore(ck, G, D, opt_g, opt_d, g, rank, world)
    # DDP averages gradients across ranks in backward; sampling bypasses the wrapper (no gradient).
    Gp, Dp = (torch.nn.parallel.DistributedDataParallel(m) for m in (G, D)) if world > 1 else (G, D)
    total = cfg.mle_steps + cfg.adv_steps
    if step >= total:
        raise ValueError(f"the run in {out} already finished its {total} steps")
    command = shlex.join(["midigan"] + sys.argv[1:]) if ck is None else ck["command"]
    corpus_info = {"name": Path(folder).resolve().name, **corpus.stats()}
    # How the exported model decodes its classes: durations to the training notes' medians,
    # velocities kept from note to note as often as the training notes keep them.
    tables = ev.tables([p.notes for p in corpus.split("train")])
    log = Log(out, step, rank == 0, progress, total, cfg.name)

    while step < total:
        # Dropout draws from torch's global generator: reseeding it from the run's own stream
        # each step keeps a resumed run exact without saving that generator too.
        torch.manual_seed(int(torch.randint(2 ** 62, (1,), generator=g)))
        if cfg.model == "event" and step == cfg.mle_steps:
            G.load_state_dict(best)  # the discriminator learns against the generator that ships
        if step < cfg.mle_steps:
            row = _mle_step(cfg, G, Gp, opt_g, data, g, dev, step)
        elif cfg.model == "event":
            row = _critic_step(cfg, G, Dp, opt_d, data, g, dev)
        else:
            row = _gan_step(cfg, Gp, Dp, opt_g, opt_d, data, g, dev)
        step += 1
        due = step % cfg.val_every == 0 or step in (cfg.mle_steps, total)
        if due and val is not None:
            best_nll, best = _validate(cfg, G, D, val, dev, step, row, best_nll, best)
        log.write(step, row)
        if not due:
            continue
        if cfg.model == "scalar":
            best = copy.deepcopy(G.state_dict())  # a GAN ships its last generator
        log.flush()  # before the checkpoint: the log never lags behind it
        _check_in_sync(G, D, world)
        rngs = _gather_rng(g, world)
        if rank == 0:
            save_checkpoint({
                "format": FORMAT, "version": VERSION, "config": dataclasses.asdict(cfg), "step": step,
                "generator": G.state_dict(), "best_generator": best, "best_nll": best_nll,
                "discriminator": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "rng": rngs, "corpus": corpus_info, "tables": tables, "command": command}, out / "checkpoint.pt")
            log.plot()
    log.close()
    if world > 1:
        dist.barrier()
        # Gloo's worker threads must stop while the interpreter still runs: left to exit they
        # can abort the process (SIGABRT, "terminate called without an active exception").
        dist.destroy_process_group()
    return out / "checkpoint.pt"


def _validate(cfg: Config, G, D, val, dev, step: int, row: dict, best_nll: float, best):
    """Adds the validation figures to the step's row; returns (best NLL, best generator).
    In the likelihood phase the generator with the lowest NLL is kept; after it, the
    discriminator's accuracy is what is watched."""
    if step <= cfg.mle_steps:
        row.update(_val_nll(cfg, G, val, dev))
        if row["val_nll"] < best_nll:
            return row["val_nll"], copy.deepcopy(G.state_dict())
        return best_nll, best
    row["val_acc"] = _val_accuracy(cfg, G, D, val, dev)
    return best_nll, best


# ---------------------------------------------------------------- the steps

def _lr(cfg: Config, step: int) -> float:
    """A cosine from lr_g to lr_g * lr_final over the likelihood steps: a decayed rate buys the
    last likelihood gains for free."""
    t = min(step / max(1, cfg.mle_steps - 1), 1.0)
    return cfg.lr_g * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


def _nll(logits, target):
    """Per-attribute cross-entropy: {attribute: mean over notes}."""
    return {a: F.cross_entropy(logits[..., ev.SPANS[a]].reshape(-1, ev.SIZES[a]),
                               target[..., i].reshape(-1)) for i, a in enumerate(ev.ATTRS)}


def _teacher_forced(cfg, G, z, e, pos):
    """(logits, KL per noise dimension or None): with a latent (kl_weight > 0) `z` is the
    standard normal draw the encoder's posterior is reparametrised with; otherwise the noise."""
    if cfg.kl_weight > 0:
        logits, _, kl = G(z, e, pos, encode=True)
        return logits, kl
    return G(z, e, pos)[0], None


def _mle_step(cfg, G, Gp, opt, data, g, dev, step) -> dict:
    """Teacher forcing: the negative log-likelihood of a batch of real windows, summed over attributes."""
    for pg in opt.param_groups:
        pg["lr"] = _lr(cfg, step)
    G.train()
    e, pos = (t.to(dev) for t in data.sample(cfg.batch_size, cfg.transpose, g))
    z = torch.randn(cfg.batch_size, cfg.noise_dim, generator=g).to(dev)
    logits, kl = _teacher_forced(cfg, Gp, z, e, pos)
    parts = _nll(logits, e[:, 1:])
    loss = sum(parts.values())
    if kl is not None:
        # Per note, like the likelihood; free bits: no pressure below free_bits per dimension,
        # so the generator learns to use the noise rather than ignore it.
        loss = loss + cfg.kl_weight * kl.clamp_min(cfg.free_bits).sum() / cfg.seq_len
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(G.parameters(), cfg.grad_clip)
    opt.step()
    row = {"phase": "mle", "lr": _lr(cfg, step), "nll": sum(parts.values()).item(),
           **{f"nll_{a}": v.item() for a, v in parts.items()}}
    if kl is not None:
        row["kl"] = kl.sum().item()
    return row


@torch.no_grad()
def _continuations(cfg, G, e, pos, g, dev):
    """The generator's continuations of real prefixes: (events, positions) [B, seq_len]."""
    G.eval()
    z = torch.randn(len(e), cfg.noise_dim, generator=g).to(dev)
    _, state = G(z, e[:, :PREFIX + 1], pos[:, :PREFIX + 1])
    return G.sample(z, cfg.seq_len, cfg.temperature, g, prev=e[:, PREFIX], pos=pos[:, PREFIX], state=state)


def _bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _critic_step(cfg, G, Dp, opt, data, g, dev) -> dict:
    """The discriminator: real windows toward `label_smoothing`, the generator's toward 0."""
    e, pos = (t.to(dev) for t in data.sample(cfg.batch_size, cfg.transpose, g))
    fe, fpos = _continuations(cfg, G, e, pos, g, dev)
    d_real, d_fake = Dp(e[:, 1:], pos[:, 1:]), Dp(fe, fpos)
    loss = _bce(d_real, cfg.label_smoothing) + _bce(d_fake, 0.0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"phase": "adv", "d_loss": loss.item(), "acc_real": (d_real > 0).float().mean().item(),
            "acc_fake": (d_fake < 0).float().mean().item()}


def _gan_step(cfg, Gp, Dp, opt_g, opt_d, data, g, dev) -> dict:
    """The paper's GAN step: the discriminator on real and generated values, then the generator."""
    real = data.sample(cfg.batch_size, 0, g).to(dev)
    z = torch.randn(cfg.batch_size, cfg.seq_len, cfg.noise_dim, generator=g).to(dev)
    fake = Gp(z)
    d_real, d_fake = Dp(real), Dp(fake.detach())
    d_loss = _bce(d_real, cfg.label_smoothing) + _bce(d_fake, 0.0)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    g_loss = _bce(Dp(fake), 1.0)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    torch.nn.utils.clip_grad_norm_(Gp.parameters(), cfg.grad_clip)
    opt_g.step()
    return {"phase": "adv", "g_adv": g_loss.item(), "d_loss": d_loss.item(),
            "acc_real": (d_real > 0).float().mean().item(), "acc_fake": (d_fake < 0).float().mean().item()}


@torch.no_grad()
def _val_nll(cfg, G, val, dev) -> dict:
    """Negative log-likelihood per note on the validation pieces: all four attributes (val_nll)
    and each apart (val_nll_step, ...), since the heads overfit at different times."""
    G.eval()
    e, pos = (t.to(dev) for t in val.fixed(cfg.val_windows))
    # With a latent, the bound on the likelihood: reconstruction at the posterior's mean plus the KL per note.
    logits, kl = _teacher_forced(cfg, G, torch.zeros(len(e), cfg.noise_dim, device=dev), e, pos)
    parts = {f"val_nll_{a}": v.item() for a, v in _nll(logits, e[:, 1:]).items()}
    row = {"val_nll": sum(parts.values()), **parts}
    if kl is not None:
        row["val_kl"] = kl.sum().item()
        row["val_nll"] += row["val_kl"] / cfg.seq_len
    return row


@torch.no_grad()
def _val_accuracy(cfg, G, D, val, dev) -> float:
    """The discriminator's balanced accuracy on validation windows against continuations of them."""
    D.eval()
    e, pos = (t.to(dev) for t in val.fixed(cfg.val_windows))
    fe, fpos = _continuations(cfg, G, e, pos, torch.Generator().manual_seed(0), dev)
    acc = ((D(e[:, 1:], pos[:, 1:]) > 0).float().mean() + (D(fe, fpos) < 0).float().mean()) / 2
    D.train()
    return acc.item()


# ---------------------------------------------------------------- set-up

def _build(cfg: Config, dev, rank: int):
    """(G, D, their Adam optimisers, the run's random stream) for a fresh run."""
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    G, D = (m.to(dev) for m in build(cfg))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, 0.999))
    g = torch.Generator().manual_seed(cfg.seed * 1000 + rank)  # data and noise: one stream per rank
    return G, D, opt_g, opt_d, g


def _restore(ck, G, D, opt_g, opt_d, g, rank: int, world: int):
    """Load a checkpoint into the run (weights, optimisers, random stream): (step, best NLL,
    best generator); a fresh run's are (0, inf, its initial weights)."""
    if ck is None:
        return 0, math.inf, copy.deepcopy(G.state_dict())
    G.load_state_dict(ck["generator"]), D.load_state_dict(ck["discriminator"])
    opt_g.load_state_dict(ck["opt_g"]), opt_d.load_state_dict(ck["opt_d"])
    if len(ck["rng"]) != world:
        raise ValueError(f"the checkpoint was written by {len(ck['rng'])} process(es), not {world}")
    g.set_state(ck["rng"][rank])
    return ck["step"], ck["best_nll"], ck["best_generator"]


def _open_run(out: Path, resume: bool):
    if resume:
        return load_checkpoint(out / "checkpoint.pt")
    if (out / "checkpoint.pt").exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    return None


def _resolve_config(config, seed, ck) -> Config:
    if ck is None:
        cfg = load_config(config or "default")
        return cfg if seed is None else dataclasses.replace(cfg, seed=seed)
    saved = make_config(ck["config"], Config())
    if config is not None and dataclasses.asdict(load_config(config)) != dataclasses.asdict(saved):
        raise ValueError(f"the checkpoint was trained with config {saved.name!r}, not {config!r}; "
                         "drop --config to resume it")
    if seed is not None and seed != saved.seed:
        raise ValueError(f"the checkpoint was trained with --seed {saved.seed}; drop --seed to resume it")
    return saved


def _device(device: str) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    # Half the cores: these LSTM steps are small, and two threads on two busy cores spin-wait
    # on each other (measured here: ten times slower whenever anything else runs).
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    return torch.device("cpu")


def _dist():
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() and
                                os.environ.get("MIDIGAN_BACKEND") != "gloo" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


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
