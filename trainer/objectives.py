"""Training objectives: the paper's autoencoders and the contrastive fingerprint (Chang et al. 2021).

- `autoencoder`: augmented tile -> Encoder (1024) -> Decoder -> the clean tile; MAE loss.
- `autoencoder+classifier`: the same + 0.005 x cross-entropy of a 3-layer MLP genre classifier.
- `contrastive`: NT-Xent between a clean tile and a degraded view of the same excerpt shifted by up
  to +-0.5 s (mel-domain laptop-mic degradations and playback speed changes, `trainer.augment`), in-batch
  negatives.
- `contrastive+classifier`: the same + `cls_weight` x cross-entropy on the 1024-d embedding of both
  views, so the embedding keeps genre structure for the library's genre votes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shazamlet.model.resnet import Encoder, GenreClassifier
from trainer.augment import MelDegrader, NoiseBank, light_lowpass, paper_augment, speed_warp, to_tiles
from trainer.data import Batch

OBJECTIVES = ("autoencoder", "autoencoder+classifier", "contrastive", "contrastive+classifier")
PAPER_CLS_WEIGHT = 0.005


class Decoder(nn.Module):
    """The paper's autoencoder half, trained here and never shipped: embedding -> reconstructed tile `(B, 1, 64, 64)` by repeated upsampling + convolutions."""

    def __init__(self, embedding_dim: int = 1024) -> None:
        super().__init__()
        self.fc = nn.Linear(embedding_dim, 256 * 4 * 4)
        blocks = []
        c = 256
        for c_out in (256, 128, 64, 32):  # 4 -> 8 -> 16 -> 32 -> 64
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            ]
            c = c_out
        self.up = nn.Sequential(*blocks)
        self.out = nn.Conv2d(c, 1, 3, 1, 1)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        x = self.fc(emb).view(-1, 256, 4, 4)
        return torch.sigmoid(self.out(self.up(x)))


def is_contrastive(objective: str) -> bool:
    return objective.startswith("contrastive")


def has_classifier(objective: str) -> bool:
    return objective.endswith("+classifier")


def build_modules(objective: str, n_genres: int, embedding_dim: int = 1024, fingerprint_dim: int = 128,
                  centre_bands: bool = False) -> nn.ModuleDict:
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    mods = {"encoder": Encoder(embedding_dim, fingerprint_dim if is_contrastive(objective) else None, centre_bands)}
    if not is_contrastive(objective):
        mods["decoder"] = Decoder(embedding_dim)
    if has_classifier(objective):
        mods["classifier"] = GenreClassifier(embedding_dim, max(1, n_genres))
    return nn.ModuleDict(mods)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric NT-Xent over 2B L2-normalised vectors: (a_i, b_i) positives, all others negatives."""
    z = torch.cat([a, b])
    sim = z @ z.t() / temperature
    n = a.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def _masked_ce(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    ok = labels >= 0
    if not ok.any():
        return logits.sum() * 0.0, float("nan")
    loss = F.cross_entropy(logits[ok], labels[ok])
    acc = (logits[ok].argmax(1) == labels[ok]).float().mean().item()
    return loss, acc


class Objective:
    """Turns a `Batch` of mel power segments into model inputs and a loss."""

    def __init__(self, name: str, top_db: float, tile_frames: int, degrader: MelDegrader, noises: NoiseBank | None,
                 temperature: float = 0.07, cls_weight: float | None = None, p_room: float = 0.0,
                 p_speed: float = 0.0, max_speed_change: float = 0.10) -> None:
        self.name = name
        self.top_db = top_db
        self.tile = tile_frames
        self.degrader = degrader
        self.noises = noises
        self.temperature = temperature
        self.cls_weight = cls_weight if cls_weight is not None else (0.1 if is_contrastive(name) else PAPER_CLS_WEIGHT)
        self.p_room = p_room  # share of positives taken from waveform-degraded copies, where there are some
        self.p_speed = p_speed  # share of positives played faster or slower (tempo and pitch together)
        self.max_speed_change = max_speed_change

    def views(self, batch: Batch, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(clean anchor tiles, degraded shifted tiles), both `(B, n_mels, tile)` in [0, 1]."""
        a0, t = batch.anchor, self.tile
        power = light_lowpass(batch.segments, self.degrader.cfg, rng)
        anchor = to_tiles(power[..., a0 : a0 + t], self.top_db)
        region = slice(a0, a0 + t)
        deg = self.degrader(power, rng, region)
        if batch.room is not None and self.p_room > 0:
            use = batch.has_room & torch.from_numpy(rng.random(len(deg)) < self.p_room)
            deg = torch.where(use.view(-1, 1, 1), batch.room, deg)
        if self.p_speed > 0:  # the library holds the song at its own speed; the room may hear it played off-speed
            use = torch.from_numpy(rng.random(len(deg)) < self.p_speed)
            speeds = torch.from_numpy(rng.uniform(1 - self.max_speed_change, 1 + self.max_speed_change, len(deg)))
            if use.any():
                deg = deg.clone()
                deg[use] = speed_warp(deg[use], speeds[use], self.degrader.cfg, a0 + (t - 1) / 2)
        shift = rng.integers(-batch.max_shift, batch.max_shift + 1, size=len(deg))
        pos = torch.stack([deg[i, :, a0 + s : a0 + s + t] for i, s in enumerate(shift)])
        return anchor, to_tiles(pos, self.top_db)

    def loss(self, mods: nn.ModuleDict, batch: Batch, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
        """The batch's loss and statistics. Views are made on the CPU (numpy's random draws, cheap mel-domain
        work) and only the tiles go to the network's device."""
        enc = mods["encoder"]
        device = next(enc.parameters()).device
        stats: dict[str, float] = {}
        if is_contrastive(self.name):
            anchor, pos = self.views(batch, rng)
            emb = enc(torch.cat([anchor, pos]).to(device))
            fp = enc.fingerprint_from_embedding(emb)
            n = len(anchor)
            loss = nt_xent(fp[:n], fp[n:], self.temperature)
            with torch.no_grad():
                stats["pair_top1"] = (fp[n:] @ fp[:n].t()).argmax(1).cpu().eq(torch.arange(n)).float().mean().item()
            stats["contrastive"] = loss.item()
            labels = torch.cat([batch.labels, batch.labels])
        else:
            a0, t = batch.anchor, self.tile
            clean = batch.segments[..., a0 : a0 + t]
            aug, shifts = paper_augment(clean, self.noises, rng, self.top_db)
            target = to_tiles(torch.stack([torch.roll(clean[i], int(s), dims=-1) for i, s in enumerate(shifts)]), self.top_db)
            emb = enc(aug.to(device))
            recon = mods["decoder"](emb).squeeze(1)
            loss = (recon - target.to(device)).abs().mean()
            stats["recon_mae"] = loss.item()
            labels = batch.labels
        labels = labels.to(device)
        if "classifier" in mods:
            ce, acc = _masked_ce(mods["classifier"](emb), labels)
            loss = loss + self.cls_weight * ce
            stats["ce"] = ce.item()
            stats["genre_acc"] = acc
        stats["loss"] = loss.item()
        return loss, stats
