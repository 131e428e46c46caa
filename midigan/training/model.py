"""The LSTM generator and discriminator, in two families.

scalar (the paper, the `seed` config): noise[B, T, nz] -> LSTM -> Linear -> tanh: one value
per note; an LSTM discriminator reads the values.

event (the default): an autoregressive LSTM over note events (midigan/events.py),
conditioned on one noise vector per sequence fed at every step. In training that noise is
drawn from an encoder's posterior over the window (a VAE's latent, `kl_weight` > 0), so it
comes to mean the window's texture; at run time it is drawn from N(0, I). Each step samples,
in order, the onset step, the key, the duration and the velocity, each head seeing
what was sampled before it in the same note, so a chord's keys know they are a chord
and a note's length knows its key. The discriminator is a bidirectional LSTM over
the same four attributes and each onset's place in the bar.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import events as ev
from ..music import N_PITCHES
from .config import Config

NEG = -1e9  # a forbidden class's logit (finite, so it survives the ONNX export's arithmetic)

# ---------------------------------------------------------------- the paper's design

class ScalarGenerator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.lstm = nn.LSTM(cfg.noise_dim, cfg.hidden, cfg.layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden, 1)

    def forward(self, noise):  # [B, T, nz] -> [B, T] in (-1, 1)
        y, _ = self.lstm(noise)
        return torch.tanh(self.out(y)).squeeze(-1)


class ScalarDiscriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.lstm = nn.LSTM(1, cfg.d_hidden, 1, batch_first=True)
        self.out = nn.Linear(cfg.d_hidden, 1)

    def forward(self, x):  # [B, T] -> logit [B]
        y, _ = self.lstm(x.unsqueeze(-1))
        return self.out(y[:, -1]).squeeze(-1)


# ---------------------------------------------------------------- note events

class Embed(nn.Module):
    """Events [..., 4] and bar positions [...] -> one input vector per note."""

    def __init__(self, emb: int):
        super().__init__()
        # One row more per attribute: the 'no previous note' index (events.START).
        self.tables = nn.ModuleList(nn.Embedding(ev.SIZES[a] + 1, emb) for a in ev.ATTRS)
        self.pos = nn.Embedding(ev.BAR_STEPS, emb)

    def forward(self, events, pos):
        return torch.cat([t(events[..., i]) for i, t in enumerate(self.tables)] + [self.pos(pos)], dim=-1)


def chord_rule(step, prev_pitch):
    """[..., 88] logits to add: a note struck with the one before (step 0) lies above it,
    since a chord is written low to high; after the start any key may begin."""
    keys = torch.arange(N_PITCHES, device=step.device)
    bad = (step == 0).unsqueeze(-1) & (prev_pitch < N_PITCHES).unsqueeze(-1) & (keys <= prev_pitch.unsqueeze(-1))
    return bad.float() * NEG


class Encoder(nn.Module):
    """q(z | window): a bidirectional LSTM over a window's notes -> the mean and log variance of
    the noise that explains it. It gives the noise a meaning (the window's texture: density,
    register, loudness) that sampling from N(0, I) then asks for; exported, its mean is the
    noise a primed line starts from."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.embed = Embed(cfg.emb)
        self.lstm = nn.LSTM(5 * cfg.emb, cfg.d_hidden, 1, batch_first=True, bidirectional=True)
        self.out = nn.Linear(4 * cfg.d_hidden, 2 * cfg.noise_dim)

    def forward(self, events, pos):  # [B, T, 4], [B, T] -> (mean, log variance) [B, nz]
        y, _ = self.lstm(self.embed(events, pos))
        mean, logvar = self.out(torch.cat([y.mean(1), y.max(1).values], dim=-1)).chunk(2, dim=-1)
        return mean, logvar.clamp(-8.0, 4.0)


class EventGenerator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.encoder = Encoder(cfg) if cfg.kl_weight > 0 else None
        self.embed = Embed(cfg.emb)
        self.lstm = nn.LSTM(5 * cfg.emb + cfg.noise_dim, cfg.hidden, cfg.layers, batch_first=True,
                            dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        H = cfg.hidden
        # Each head reads the LSTM's output plus what the note has sampled so far.
        self.step_head = nn.Linear(H, ev.SIZES["step"])
        self.with_step = nn.Embedding(ev.SIZES["step"], H)
        self.with_pos = nn.Embedding(ev.BAR_STEPS, H)
        self.pitch_head = nn.Linear(H, N_PITCHES)
        # Logits over the interval from the note before (-87..87), added to each key's: "not the
        # key before" is one logit here, which the key head alone over-estimated five times.
        self.interval_head = nn.Linear(H, 2 * N_PITCHES - 1) if cfg.intervals else None
        self.with_pitch = nn.Embedding(N_PITCHES, H)
        self.duration_head = nn.Linear(H, ev.SIZES["duration"])
        self.velocity_head = nn.Linear(H, ev.SIZES["velocity"])
        self.layers, self.hidden = cfg.layers, cfg.hidden

    def _run(self, z, prev, prev_pos, state=None):
        x = self.embed(prev, prev_pos)
        x = torch.cat([x, z.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
        y, state = self.lstm(x, state)
        return self.drop(y), state

    def _after_step(self, y, step, prev_pos):
        return torch.tanh(y + self.with_step(step) + self.with_pos((prev_pos + step) % ev.BAR_STEPS))

    def _pitch_logits(self, u, step, prev_pitch):
        """[..., 88]: the key head, the chord rule and (with intervals) the interval head's logit
        of each key's interval from the note before."""
        logits = self.pitch_head(u) + chord_rule(step, prev_pitch)
        if self.interval_head is None:
            return logits
        keys = torch.arange(N_PITCHES, device=u.device)
        idx = (keys - prev_pitch.unsqueeze(-1) + N_PITCHES - 1).clamp(0, 2 * N_PITCHES - 2)
        known = (prev_pitch < N_PITCHES).unsqueeze(-1).float()  # after START: no note before
        return logits + torch.gather(self.interval_head(u), -1, idx) * known

    def _after_pitch(self, u, pitch):
        return torch.tanh(u + self.with_pitch(pitch))

    def forward(self, z, events, pos, state=None, encode=False):
        """Teacher forcing. events [B, T+1, 4] (the first row is context: the note before, or
        START), pos [B, T+1] their bar positions -> logits [B, T, WIDTH] for rows 1..T, state.

        encode=True (a model with an encoder): `z` is standard normal and the noise fed is
        drawn from the encoder's posterior over rows 1..T (reparametrised); a third value is
        returned, the KL divergence from N(0, I) per noise dimension, averaged over the batch."""
        prev, prev_pos, cur = events[:, :-1], pos[:, :-1], events[:, 1:]
        if encode:
            mean, logvar = self.encoder(cur, pos[:, 1:])
            z = mean + torch.exp(0.5 * logvar) * z
            kl = (0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)).mean(0)
        y, state = self._run(z, prev, prev_pos, state)
        step, pitch = cur[..., 0], cur[..., 1]
        u = self._after_step(y, step, prev_pos)
        v = self._after_pitch(u, pitch)
        logits = [self.step_head(y), self._pitch_logits(u, step, prev[..., 1]),
                  self.duration_head(v), self.velocity_head(v)]
        if encode:
            return torch.cat(logits, dim=-1), state, kl
        return torch.cat(logits, dim=-1), state

    def step(self, z, prev, pos, h, c, gumbel, bias):
        """One sampled note, as exported: prev [B, 4], pos [B] (its bar position), state,
        gumbel and bias [B, WIDTH] (Gumbel noise already scaled by each attribute's
        temperature, and logits to add: masks, density) -> (event [B, 4], h, c).

        argmax(logits + bias + T * Gumbel) draws from softmax((logits + bias) / T)."""
        y, (h, c) = self._run(z, prev.unsqueeze(1), pos.unsqueeze(1), (h, c))
        y = y[:, 0]
        def pick(logits, a):
            s = ev.SPANS[a]
            return torch.argmax(logits + bias[:, s] + gumbel[:, s], dim=-1)
        step = pick(self.step_head(y), "step")
        u = self._after_step(y, step, pos)
        pitch = pick(self._pitch_logits(u, step, prev[:, 1]), "pitch")
        v = self._after_pitch(u, pitch)
        dur, vel = pick(self.duration_head(v), "duration"), pick(self.velocity_head(v), "velocity")
        return torch.stack([step, pitch, dur, vel], dim=1), h, c

    @torch.no_grad()
    def sample(self, z, steps: int, temperature: float, generator: torch.Generator,
               prev=None, pos=None, state=None):
        """`steps` notes per noise row, from the start (or after prev at pos, with the LSTM
        state that consumed what came before): (events [B, steps, 4], bar positions [B, steps])."""
        B = z.shape[0]
        if prev is None:
            prev = torch.tensor([ev.START[a] for a in ev.ATTRS], device=z.device).expand(B, 4)
            pos = torch.zeros(B, dtype=torch.long, device=z.device)
        if state is None:
            state = (z.new_zeros(self.layers, B, self.hidden), z.new_zeros(self.layers, B, self.hidden))
        h, c = state
        bias = z.new_zeros(B, ev.WIDTH)
        out, where = [], []
        for _ in range(steps):
            # Nothing lies above the top key: after it, no chord (as the runtime's bias does).
            bias[:, 0] = (prev[:, 1] == N_PITCHES - 1).float() * NEG
            # Drawn where the generator lives (the CPU) and moved: the same draws on any device.
            u = torch.rand(B, ev.WIDTH, generator=generator, device=generator.device).to(z.device)
            # Gumbel(0, 1) = -log(E), E = -log(U) ~ Exp(1); E kept above 0 so the log stays finite.
            g = -torch.log((-torch.log(u.clamp_min(1e-10))).clamp_min(1e-10)) * temperature
            prev, h, c = self.step(z, prev, pos, h, c, g, bias)
            pos = (pos + prev[:, 0]) % ev.BAR_STEPS
            out.append(prev)
            where.append(pos)
        return torch.stack(out, 1), torch.stack(where, 1)


class EventDiscriminator(nn.Module):
    """Bidirectional LSTM over events and their bar positions -> one logit per window."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.embed = Embed(cfg.d_emb)
        self.lstm = nn.LSTM(5 * cfg.d_emb, cfg.d_hidden, 1, batch_first=True, bidirectional=True)
        self.out = nn.Linear(4 * cfg.d_hidden, 1)

    def forward(self, events, pos):  # [B, T, 4], [B, T] -> [B]
        y, _ = self.lstm(self.embed(events, pos))
        return self.out(torch.cat([y.mean(1), y.max(1).values], dim=-1)).squeeze(-1)


def build(cfg: Config):
    """(generator, discriminator) for a config."""
    if cfg.model == "scalar":
        return ScalarGenerator(cfg), ScalarDiscriminator(cfg)
    return EventGenerator(cfg), EventDiscriminator(cfg)
