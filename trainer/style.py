"""`python -m trainer style RUN`: fit the style head (`shazamlet.model.style`) and put it in a model file.

The head is a logistic regression on `style_features` of tiles of the run's training songs, each tile
once clean and once through the mel-domain room chain (`MelDegrader`, the evaluation's rooms left
out), so it names styles through a microphone too. Style labels follow collections (packages): each
style counts alike and, within a style, each package counts alike (sample weights), so that the head
learns what a style's collections share instead of the largest one. It is judged, before and after,
on the run's test songs of packages held out whole (collections the model never heard), with each
style weighted alike, and the file records both numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from shazamlet.recognition.config import QueryConfig
from shazamlet.features import FLOOR_DB, answerable, tile_peak_db
from shazamlet.model import load_model, save_model
from shazamlet.model.style import StyleHead, style_features
from trainer.augment import DegradeParams, MelDegrader, to_tiles
from trainer.cache import SpectrogramCache
from trainer.loop import Run, load_noise
from trainer.songs import Song

CONTEXT = 24  # frames before a tile, so reverb from earlier sound reaches it
MATCH = QueryConfig()  # which tiles the app leaves out of a query


@dataclass
class StyleConfig:
    tiles_per_song: int = 16  # each drawn clean and degraded
    c: float = 0.01  # inverse regularisation strength of the logistic regression
    seed: int = 0


def _tiles(cache: SpectrogramCache, songs: list[Song], n: int, degrader: MelDegrader,
           rng: np.random.Generator, desc: str = "", progress: bool = True) -> tuple[torch.Tensor, list[int]]:
    """`n` random tiles per song, clean then degraded, less those the app would not classify (silence,
    partly silence); (tiles `(N, n_mels, frames)`, the song index of each)."""
    frames = cache.features.tile_frames
    length = CONTEXT + frames
    out, owner = [], []
    for i, s in enumerate(tqdm(songs, desc=desc, unit="song", disable=not progress)):
        a = np.asarray(cache.song(s.rel), np.float32)
        starts = rng.integers(0, max(1, a.shape[1] - length + 1), n)
        segs = np.full((n, a.shape[0], length), FLOOR_DB, np.float32)
        for j, t in enumerate(starts):
            seg = a[:, t : t + length]
            segs[j, :, : seg.shape[1]] = seg
        power = torch.from_numpy(10.0 ** (segs / 10.0))
        degraded = degrader(power.clone(), rng, region=slice(CONTEXT, length))
        audible = (tile_peak_db(torch.from_numpy(segs[:, :, CONTEXT:])) > cache.features.silence_db).numpy()
        for p in (power, degraded):  # only the tiles the app would classify
            tiles = to_tiles(p[..., CONTEXT:], cache.features.top_db)
            keep = torch.from_numpy(answerable(tiles, audible, cache.features.top_db, MATCH.max_quiet_frames, MATCH.quiet_below_db))
            out.append(tiles[keep])
            owner += [i] * int(keep.sum())
    return torch.cat(out), owner


def package_balanced_weights(genres: list[str], packages: list[str]) -> np.ndarray:
    """Sample weights (mean 1) giving every genre the same total and every package of a genre the same share."""
    g, p = np.asarray(genres), np.asarray(packages)
    w = np.zeros(len(g))
    for genre in np.unique(g):
        pkgs = np.unique(p[g == genre])
        for pkg in pkgs:
            sel = (g == genre) & (p == pkg)
            w[sel] = 1.0 / len(pkgs) / sel.sum()
    return w / w.mean()


def fit_style_head(x: torch.Tensor, labels: np.ndarray, weights: np.ndarray, n_genres: int, c: float) -> StyleHead:
    """Logistic regression on `style_features(x)`, its standardisation folded into the head's linear layer."""
    from sklearn.linear_model import LogisticRegression

    with torch.no_grad():
        f = style_features(x).double().numpy()
    mean, scale = f.mean(0), f.std(0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=3000)
    clf.fit((f - mean) / scale, labels, sample_weight=weights)
    w = np.zeros((n_genres, f.shape[1]))
    b = np.full(n_genres, -30.0)  # a genre without training songs is never named
    coef = clf.coef_ if len(clf.classes_) > 2 else np.vstack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
    icpt = clf.intercept_ if len(clf.classes_) > 2 else np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    for row, k in enumerate(clf.classes_):
        w[k] = coef[row] / scale
        b[k] = icpt[row] - (coef[row] / scale) @ mean
    head = StyleHead(f.shape[1], n_genres)
    with torch.no_grad():
        head.linear.weight.copy_(torch.from_numpy(w).float())
        head.linear.bias.copy_(torch.from_numpy(b).float())
    return head.eval()


def balanced_accuracy(probs: torch.Tensor, labels: np.ndarray, genres: list[str]) -> dict:
    """Tile accuracy per true genre, and their mean (each genre alike)."""
    pred = probs.argmax(1).numpy()
    per = {genres[g]: float((pred[labels == g] == g).mean()) for g in np.unique(labels)}
    return {"balanced": float(np.mean(list(per.values()))), "per_genre": per}


def style_run(run_dir: str | Path, model: str | Path, to: str | Path | None = None,
              cfg: StyleConfig = StyleConfig(), progress: bool = True) -> dict:
    """Fit the style head on the run's training songs, attach it to the model file `model` (written to
    `to`, default in place, same precision) and return what it measured on the held-out packages."""
    run = Run(run_dir)
    loaded = load_model(model)
    genres = list(loaded.meta.genres)
    if len(genres) < 2:
        raise ValueError(f"{model} names {len(genres) or 'no'} genre{'s' * (len(genres) != 1)} "
                         f"({', '.join(genres) or 'none'}): a style head tells at least 2 apart")
    cache = SpectrogramCache(run.info["cache"])
    bank, rirs, eqs = load_noise(cache, run.info["eval_rirs"]) if run.config.noise else (None, None, None)
    degrader = MelDegrader(cache.features, bank, rirs, eqs, DegradeParams())
    rng = np.random.default_rng(cfg.seed)
    train = [s for s in run.songs("train") if s.genre in genres and cache.has_song(s.rel)]
    held_pkgs = set(run.info["split"].get("held_out_packages", []))
    test = [s for s in run.songs("test") if s.genre in genres and s.package in held_pkgs and cache.has_song(s.rel)]
    x, owner = _tiles(cache, train, cfg.tiles_per_song, degrader, rng, "tiles of the training songs", progress)
    y = np.array([genres.index(train[i].genre) for i in owner])
    w = package_balanced_weights([train[i].genre for i in owner], [train[i].package for i in owner])
    head = fit_style_head(x, y, w, len(genres), cfg.c)
    encoder = loaded.encoder.float()
    result: dict = {"training_songs": len(train), "tiles": int(len(x)), "c": cfg.c,
                    "held_out_packages": sorted({s.package for s in test})}
    if test:
        tx, towner = _tiles(cache, test, cfg.tiles_per_song, degrader, np.random.default_rng(cfg.seed + 1),
                            "tiles of the held-out packages", progress)
        ty = np.array([genres.index(test[i].genre) for i in towner])
        with torch.no_grad():
            encoder.attach_style_head(None)
            parts = [encoder.encode(tx[i : i + 256])[1] for i in range(0, len(tx), 256)]
            before = None if parts[0] is None else torch.cat(parts)
            result["held_out_before"] = balanced_accuracy(before, ty, genres) if before is not None else None
            result["held_out"] = balanced_accuracy(torch.softmax(head(tx), -1), ty, genres)
    encoder.attach_style_head(head)
    meta = loaded.meta
    meta.extra["style_head"] = result
    half = loaded.half  # the file's own precision: a float32 rewrite would change the fingerprints' hash
    save_model(to or model, encoder, meta, half=half, graph=True)  # the graph holds the style head too
    print(json.dumps(result))
    return result
