"""The encoder (ResNet18 on 1x64x64 log-mel tiles) and the training-only heads.

Only model definitions live here; training code is in `trainer/`. The encoder is what the app ships:
ResNet18 (standard 7x7/2 stem + max-pool, so a tile costs ~0.15 GFLOP and a laptop CPU embeds
hundreds of tiles per second) -> 512 -> the paper's 1024-d embedding, plus an optional projection
head that gives the compact, L2-normalised fingerprint the library indexes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shazamlet.model.style import StyleHead


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18Trunk(nn.Module):
    """ResNet18 for one input channel; `(B, 1, H, W)` -> `(B, 512)`."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        layers = []
        c = 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(c, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c = c_out
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1)


def centre_bands(tiles: torch.Tensor) -> torch.Tensor:
    """Subtract each mel band's mean over the tile: tiles `(..., n_mels, frames)`.

    In a log-mel tile a fixed filter (a laptop microphone's band limits, a phone speaker, a resonant
    corner of the room) adds one constant per band, so this removes it exactly, and the encoder never
    has to learn that invariance from augmentation. Measured before any training, on the evaluation's
    library (~11 000 tiles, 240 unaligned single 3-s tiles, exhaustive cosine search of raw tiles):
    band-limiting 27% -> 90% top-1, a resonator-like room (-15..-35 dB outside one region) 18% ->
    86%, the whole mic3 chain 2% -> 71%, clean 90% either way.
    """
    return tiles - tiles.mean(dim=-1, keepdim=True)


def check_tile_weight(weight: float) -> float:
    """A tile projection's share of the cosine: strictly between 0 (no projection) and 1 (no network)."""
    if not 0.0 < weight < 1.0:
        raise ValueError(f"the tile projection's weight must be between 0 and 1 (got {weight})")
    return float(weight)


class TileResidual(nn.Module):
    """A small convolutional correction to the linear tile fingerprint: band-centred tile -> `dim` values.

    The linear map weighs every cell of the tile the same way whatever it holds; it cannot tell a
    talker's burst or a reverberant tail from the music's own detail. Two convolutions with ReLU and a
    max-pool see local shapes (onsets, harmonic stacks, spectral peaks: what landmark fingerprinters
    rely on) and add a learned correction to the linear outputs. The output layer starts at zero, so a
    freshly attached residual leaves the fingerprint exactly as the linear map made it and training
    (`trainer.tune_tiles`) moves it only as far as it helps. With 8 channels about 1.6 M multiply-adds
    per tile, ~1% of the ResNet's ~150 M, but the one-channel 5x5 convolution runs far below the CPU's
    peak: measured 17% more CPU time per tile than the encoder without it (one thread, batch 256).
    """

    def __init__(self, dim: int, channels: int, n_mels: int = 64, frames: int = 64) -> None:
        super().__init__()
        self.channels = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, 2, 1), nn.ReLU(),
        )
        side = lambda n: -(-(n // 2) // 2)  # after the max-pool (floor) and the stride-2 convolution (ceil)
        self.cells = side(n_mels) * side(frames)  # positions per channel that reach the output layer
        self.out = nn.Linear(2 * channels * self.cells, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, centred: torch.Tensor) -> torch.Tensor:
        """Band-centred tiles `(B, n_mels, frames)` -> `(B, dim)`."""
        return self.out(torch.flatten(self.features(centred.unsqueeze(1)), 1))


class TileProjection(nn.Module):
    """A fingerprint of the tile itself: band-centred tile -> `dim` fitted directions (+ a learned residual).

    The ResNet's fingerprint is pooled over the whole tile, so it keeps what tells training songs
    apart but loses fine time-frequency detail; through a room microphone the raw band-centred tile
    stayed nearer its own library tile (single tiles among ~11 000: 71% top-1 for raw tiles against
    40% for the contrastive model). Projected onto directions fitted on training songs, the ones
    that vary most between excerpts relative to how much a room changes them, then trained
    contrastively (`trainer.tune_tiles`), it keeps that in a few hundred numbers, and the encoder
    appends it to its own fingerprint (`Encoder.fingerprint`). With `residual_channels` a
    `TileResidual` adds a non-linear correction to the linear outputs (trained by `tune-tiles --residual`).
    """

    def __init__(self, n_inputs: int, dim: int, residual_channels: int = 0, n_mels: int = 64) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_inputs))
        self.register_buffer("basis", torch.zeros(n_inputs, dim))
        self.residual = TileResidual(dim, residual_channels, n_mels, n_inputs // n_mels) if residual_channels else None

    @property
    def residual_channels(self) -> int:
        return 0 if self.residual is None else self.residual.channels

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        if tiles.dim() == 4:
            tiles = tiles.squeeze(1)
        centred = centre_bands(tiles)
        out = (centred.flatten(1) - self.mean) @ self.basis
        if self.residual is not None:
            out = out + self.residual(centred)
        return F.normalize(out, dim=-1)


class Encoder(nn.Module):
    """Tiles `(B, 64, 64)` or `(B, 1, 64, 64)` in [0, 1] -> embedding `(B, embedding_dim)`.

    `fingerprint()` is what the library indexes: the projection head's output when the model has
    one (contrastive objectives), else the embedding itself; always L2-normalised so ANNOY's
    angular distance is a cosine. With `centre_bands` the encoder sees tiles with each band's mean
    taken out (`centre_bands()`); the model file says so (`ModelMeta.centre_bands`).
    """

    def __init__(self, embedding_dim: int = 1024, fingerprint_dim: int | None = 128, centre_bands: bool = False,
                 tile_dim: int = 0, tile_weight: float = 0.0, tile_inputs: int = 64 * 64, n_genres: int = 0,
                 tile_residual: int = 0) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.fingerprint_dim = fingerprint_dim
        self.centre_bands = centre_bands
        self.tile_weight = tile_weight
        self.tile_projection = TileProjection(tile_inputs, tile_dim, tile_residual) if tile_dim else None
        # the trainer's genre classifier, shipped in the model file when it was trained with one
        self.genre_head = GenreClassifier(embedding_dim, n_genres) if n_genres else None
        # a style classifier on the tile itself (`shazamlet.model.style`), fitted after training: when the
        # file has one, it is what names the genre of songs not in the library instead of `genre_head`
        self.style_head: StyleHead | None = None
        self.trunk = ResNet18Trunk()
        self.embed = nn.Linear(512, embedding_dim)
        self.project = None
        if fingerprint_dim:
            self.project = nn.Sequential(
                nn.ReLU(), nn.Linear(embedding_dim, embedding_dim), nn.ReLU(), nn.Linear(embedding_dim, fingerprint_dim)
            )

    @property
    def output_dim(self) -> int:
        return (self.fingerprint_dim or self.embedding_dim) + self.tile_dim

    @property
    def tile_dim(self) -> int:
        return 0 if self.tile_projection is None else self.tile_projection.basis.shape[1]

    @property
    def tile_residual(self) -> int:
        """Channels of the tile projection's convolutional residual (0: a purely linear projection)."""
        return 0 if self.tile_projection is None else self.tile_projection.residual_channels

    def attach_style_head(self, head: StyleHead | None) -> None:
        self.style_head = head

    def attach_tile_projection(self, projection: TileProjection, weight: float) -> None:
        """Append `projection`'s fingerprint of the tile, worth `weight` of the cosine (`fingerprint`)."""
        self.tile_projection, self.tile_weight = projection, check_tile_weight(weight)

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        if tiles.dim() == 3:
            tiles = tiles.unsqueeze(1)
        if self.centre_bands:
            tiles = centre_bands(tiles)
        return self.embed(self.trunk(tiles))

    def fingerprint_from_embedding(self, emb: torch.Tensor) -> torch.Tensor:
        out = emb if self.project is None else self.project(emb)
        return F.normalize(out, dim=-1)

    def fingerprint(self, tiles: torch.Tensor) -> torch.Tensor:
        """With a `TileProjection`, both unit parts are joined with weights whose squares add to 1,
        so the result stays unit-length and a cosine is `(1 - w) * cos_model + w * cos_tile`."""
        return self.encode(tiles)[0]

    def encode(self, tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(fingerprints, genre probabilities or None) from one pass of the trunk: a query needs both, and
        the trunk is nearly all of the cost. The probabilities are the `style_head`'s when the model has
        one, else the `genre_head`'s."""
        emb = self.forward(tiles)
        fp = self.fingerprint_from_embedding(emb)
        if self.tile_projection is not None:
            w = self.tile_weight
            fp = torch.cat([fp * (1.0 - w) ** 0.5, self.tile_projection(tiles) * w ** 0.5], dim=-1)
        if self.style_head is not None:
            probs = torch.softmax(self.style_head(tiles), dim=-1)
        else:
            probs = None if self.genre_head is None else torch.softmax(self.genre_head(emb), dim=-1)
        return fp, probs


class GenreClassifier(nn.Module):
    """The paper's 3-layer MLP from the embedding to genre logits."""

    def __init__(self, embedding_dim: int, n_genres: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embedding_dim, 512), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(512, 256), nn.ReLU(),
            nn.Linear(256, n_genres),
        )

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.net(emb)
