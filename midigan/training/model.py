"""The LSTM generator and discriminator, in two families.

scalar (the paper): noise[B, T, nz] -> LSTM -> Linear -> tanh: one value per note.
categorical (the default): an autoregressive LSTM over the 88 keys, conditioned on
one noise vector per sequence (fed at every step, so a sequence keeps one
character). Teacher forcing gives its likelihood; straight-through Gumbel-softmax
samples let the discriminator's gradient reach it. With `recall` > 0 it is also
fed, before each note, the recall hints of its own line so far (midigan/recall.py):
the keys that followed the figure just played when it last occurred. With
`chords`, each step's class is a key and whether it starts with the note before
(176 classes, the pitch-onset-categorical encoding), so the generator knows where
its chords begin; everything else (hints, style, discriminator) looks at keys.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import recall
from ..encoding import N_PITCHES
from .config import Config
# The discriminator's interval classes are the style codes' nine.
from .style import INTERVAL_EDGES, interval_bands, pitch_class_fold

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


# ---------------------------------------------------------------- autoregressive, categorical

class StepGenerator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.n_out = N_PITCHES * (2 if cfg.chords else 1)  # classes per step
        self.bos = self.n_out
        self.chords = bool(cfg.chords)
        if self.chords:
            # A class's embedding is its key's plus its chord flag's: the two classes of one
            # key share what is learnt about the key (a table per class learns each from half the data).
            self.emb = nn.Embedding(N_PITCHES + 1, cfg.emb)  # 88 keys + BOS
            self.flag_emb = nn.Embedding(2, cfg.emb)
        else:
            self.emb = nn.Embedding(self.n_out + 1, cfg.emb)  # the classes + BOS
        self.recall = cfg.recall
        n_in = cfg.emb + cfg.noise_dim
        if self.recall:
            # One table per hint kind, each 88 keys + NONE; offsets keep the kinds apart.
            self.hint_emb = nn.Embedding(len(recall.KINDS) * (N_PITCHES + 1), cfg.hint_emb)
            self.register_buffer("hint_offset", torch.arange(len(recall.KINDS)) * (N_PITCHES + 1),
                                 persistent=False)
            n_in += len(recall.KINDS) * cfg.hint_emb
        self.lstm = nn.LSTM(n_in, cfg.hidden, cfg.layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden, self.n_out)
        self.layers, self.hidden = cfg.layers, cfg.hidden
        self.style = cfg.style
        if cfg.style:  # filled from the training windows before step one; saved with the weights
            from .style import QUANTILES, STYLE_DIM
            self.register_buffer("style_quantiles", torch.zeros(STYLE_DIM, QUANTILES, dtype=torch.float64))
            self.register_buffer("style_mean", torch.zeros(STYLE_DIM, dtype=torch.float64))
            self.register_buffer("style_white", torch.zeros(STYLE_DIM, STYLE_DIM, dtype=torch.float64))

    def style_table(self) -> dict:
        return {"quantiles": self.style_quantiles, "mean": self.style_mean, "white": self.style_white}

    def with_style(self, z: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """z with its first dimensions replaced by the style code of the real windows `keys`."""
        from . import style
        code = torch.from_numpy(style.encode(keys.cpu().numpy(), {k: v.cpu() for k, v in
                                                                  self.style_table().items()}))
        return torch.cat([code.to(z.device), z[:, code.shape[1]:]], dim=1)

    def teacher_inputs(self, z, classes: torch.Tensor) -> dict:
        """Teacher forcing on real windows `classes` [B, T]: forward()'s keyword arguments.

        The previous classes (BOS first), the noise with the windows' own style codes in
        front (if the model has them), and each position's recall hints (if it uses them).
        """
        keys = classes % N_PITCHES
        prev = torch.cat([torch.full_like(classes[:, :1], self.bos), classes[:, :-1]], dim=1)
        return {"z": self.with_style(z, keys) if self.style else z, "prev": prev,
                "hints": self.hints(keys) if self.recall else None}

    def class_table(self) -> torch.Tensor:
        """[n_out + 1, emb]: each class's input embedding (with chords: its key's plus its flag's;
        BOS last). Built from the weights, so the export folds it into one constant lookup."""
        if not self.chords:
            return self.emb.weight
        keys, bos = self.emb.weight[:N_PITCHES], self.emb.weight[N_PITCHES:]
        f = self.flag_emb.weight
        return torch.cat([keys + f[0], keys + f[1], bos + f[0]])

    def embed(self, prev: torch.Tensor) -> torch.Tensor:
        """Class indices (BOS included) -> input embeddings."""
        return F.embedding(prev, self.class_table())

    def _inputs(self, e, z, hints=None):  # e: [B, T, emb], z: [B, nz], hints: [B, T, 3]
        parts = [e, z.unsqueeze(1).expand(-1, e.shape[1], -1)]
        if self.recall:
            parts.append(self.hint_emb(hints + self.hint_offset).flatten(2))
        return torch.cat(parts, dim=-1)

    def hints(self, keys: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: recall hints for every position of keys [B, T] -> [B, T, 3]."""
        return torch.from_numpy(recall.sequence_hints(keys.cpu().numpy(), self.recall)).to(keys.device)

    def forward(self, z, prev, state=None, hints=None):
        """Teacher forcing: prev [B, T] class indices (BOS first) -> logits [B, T, n_out].

        `hints` [B, T, 3] are those of the target sequence (each position's look only
        at the notes before it); a recall model needs them.
        """
        y, state = self.lstm(self._inputs(self.embed(prev), z, hints), state)
        return self.out(y), state

    def step(self, z, prev, h, c, hint=None):
        """One step, as exported: prev [B] (and hint [B, 3]) -> logits [B, n_out], new (h, c)."""
        hint = None if hint is None else hint.unsqueeze(1)
        y, (h, c) = self.lstm(self._inputs(self.embed(prev).unsqueeze(1), z, hint), (h, c))
        return self.out(y[:, 0]), h, c

    def sample(self, z, steps: int, tau: float, generator: torch.Generator, flags: bool = False,
               temperature: float = 1.0):
        """Straight-through Gumbel-softmax samples: one-hot forward, soft gradient back.

        Returns [B, T, 88] one-hot key tensors (chord flags summed out: the discriminator
        judges keys) that carry gradients to the generator; with `flags`, also the [B, T]
        chord flags (1 where the note starts with the one before), likewise differentiable.
        `temperature` divides the logits first, as the runtime's sampling temperature does.
        """
        B = z.shape[0]
        h = z.new_zeros(self.layers, B, self.hidden)
        c = torch.zeros_like(h)
        e = self.embed(torch.full((B,), self.bos, dtype=torch.long, device=z.device))
        outs, flag, keys = [], [], np.zeros((B, 0), dtype=np.int64)
        for _ in range(steps):
            hint = None
            if self.recall:  # from the hard samples so far, as the runtime will
                hint = torch.from_numpy(recall.next_hints(keys, self.recall)).to(z.device).unsqueeze(1)
            y, (h, c) = self.lstm(self._inputs(e.unsqueeze(1), z, hint), (h, c))
            logits = self.out(y[:, 0]) / temperature
            u = torch.rand(logits.shape, generator=generator, device=logits.device)
            g = -torch.log(-torch.log(u + 1e-10) + 1e-10)
            soft = F.softmax((logits + g) / tau, dim=-1)
            idx = soft.argmax(-1)
            hard = F.one_hot(idx, self.n_out).to(soft.dtype)
            y_st = hard + soft - soft.detach()
            outs.append(y_st[:, :N_PITCHES] + y_st[:, N_PITCHES:] if self.n_out > N_PITCHES else y_st)
            flag.append(y_st[:, N_PITCHES:].sum(-1))  # zeros for a model without chord classes
            if self.recall:
                keys = np.concatenate([keys, (idx % N_PITCHES).cpu().numpy()[:, None]], axis=1)
            e = y_st @ self.class_table()[:self.n_out]  # the sampled class's embedding, differentiably
        return (torch.stack(outs, dim=1), torch.stack(flag, dim=1)) if flags else torch.stack(outs, dim=1)


LAGS = 8  # repetition lags shown to the discriminator


class SeqDiscriminator(nn.Module):
    """Bidirectional LSTM over one-hot key sequences, their intervals and repetitions -> one logit."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.proj = nn.Linear(N_PITCHES, cfg.emb)
        # What separates real piano lines from generated ones is mostly relational: the
        # interval between successive notes, and figures that come back (the same key, or
        # the same pitch class, k notes ago). An LSTM finds those slowly from one-hots, so
        # they are given explicitly, computed differentiably from the (soft) one-hots.
        n_in = cfg.emb + 1 + 2 * LAGS
        self.intervals = cfg.d_intervals
        if self.intervals:
            # Each step's interval class, exactly: P(class c) = x[t-1]' M_c x[t] with M_c a
            # band of the 88x88 key pairs whose distance falls in class c. Generated lines
            # differ from real ones most in which interval follows which (a run that turns
            # back, a chord that does not climb), and classes make those pairs plain.
            bands = interval_bands()
            # The bands side by side, [88, 9 * 88]: one matmul finds every class at once.
            self.register_buffer("bands_flat", bands.permute(1, 0, 2).reshape(N_PITCHES, -1), persistent=False)
            n_in += len(bands)
        self.lstm = nn.LSTM(n_in, cfg.d_hidden, 1, batch_first=True, bidirectional=True)
        self.out = nn.Linear(4 * cfg.d_hidden, 1)
        self.register_buffer("pos", torch.linspace(-1, 1, N_PITCHES))
        self.register_buffer("fold", pitch_class_fold().clone())

    @staticmethod
    def _lag_match(x, lags: int):
        """[B, T, lags]: how much step t repeats step t-k (dot product of one-hots), k = 1..lags."""
        B, T, _ = x.shape
        out = []
        for k in range(1, lags + 1):
            if k >= T:
                out.append(x.new_zeros(B, T))
            else:
                out.append(torch.cat([x.new_zeros(B, k), (x[:, k:] * x[:, :-k]).sum(-1)], dim=1))
        return torch.stack(out, dim=-1)

    def repetition(self, x):
        """[B, T, 16]: repetition of the key and of its pitch class at lags 1..8."""
        return torch.cat([self._lag_match(x, LAGS), self._lag_match(x @ self.fold, LAGS)], dim=-1)

    def interval_classes(self, x):
        """[B, T, 9]: the class of the interval into step t (zeros at t = 0)."""
        # m[b, t, c] = x[t-1]' M_c x[t]: twice as fast as the three-way einsum on a CPU.
        m = ((x[:, :-1] @ self.bands_flat).unflatten(-1, (len(INTERVAL_EDGES) + 1, N_PITCHES)) * x[:, 1:, None, :]).sum(-1)
        return torch.cat([m.new_zeros(m.shape[0], 1, m.shape[2]), m], dim=1)

    def features(self, x):  # x: [B, T, 88] one-hot (or soft) -> pooled features [B, 4 * d_hidden]
        pitch = x @ self.pos  # [B, T] the key's position on the keyboard, differentiable
        step = torch.cat([torch.zeros_like(pitch[:, :1]), pitch[:, 1:] - pitch[:, :-1]], dim=1)
        parts = [self.proj(x), step.unsqueeze(-1) * 4, self.repetition(x)]
        if self.intervals:
            parts.append(self.interval_classes(x))
        y, _ = self.lstm(torch.cat(parts, dim=-1))
        return torch.cat([y.mean(1), y.max(1).values], dim=-1)

    def forward(self, x):  # -> logit [B]
        return self.out(self.features(x)).squeeze(-1)


def build(cfg: Config):
    """(generator, discriminator) for a config."""
    if cfg.model == "scalar":
        return ScalarGenerator(cfg), ScalarDiscriminator(cfg)
    return StepGenerator(cfg), SeqDiscriminator(cfg)
