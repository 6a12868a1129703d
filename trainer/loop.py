"""The training loop: run folder, resumable checkpoints, per-epoch metrics, curves.

A run folder holds `run.json` (the configuration, genres and the split: everything needed to resume or
evaluate without command-line flags), `checkpoint.pt` (all modules + optimizer + counters, written
atomically every few minutes and at each epoch end), `metrics.csv` / `metrics.json` (one row per
epoch) and `curves.png`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch

from shazamlet.model.embedder import pick_device
from trainer.augment import DegradeParams, MelDegrader, NoiseBank
from trainer.cache import SpectrogramCache, build_cache, rir_room
from trainer.data import TileSampler
from trainer.objectives import Objective, build_modules
from trainer.settings import TrainConfig
from trainer.songs import Song, genres_of, scan_songs, split_songs

EVAL_RIR_EVERY = 3  # every third real impulse response is held out of training for `evaluate`


def training_clock(device: torch.device) -> Callable[[], float]:
    """What a stage's `minutes` count, in seconds. On a GPU, wall time. On a CPU, the process's CPU time
    shared out over its torch threads: other work on the machine slows each step but does not take steps
    away, so the model a recipe makes does not depend on what else ran beside it."""
    if device.type != "cpu":
        return time.monotonic
    threads = max(1, torch.get_num_threads())
    return lambda: time.process_time() / threads


def held_out_rirs(cache: SpectrogramCache) -> list[str]:
    real = [rel for rel, cat in cache.noise_items("rir") if cat == "rir_real"]
    return [rel for i, rel in enumerate(real) if i % EVAL_RIR_EVERY == 0]


def load_noise(cache: SpectrogramCache, exclude_rirs: list[str]) -> tuple[NoiseBank, torch.Tensor, torch.Tensor]:
    """Noise bank, training RIR envelopes and cabinet EQs; every room of `exclude_rirs` is left out."""
    bank = NoiseBank([(cat, np.asarray(cache.noise(rel))) for rel, cat in cache.noise_items("noise")])
    rooms = {rir_room(rel) for rel in exclude_rirs}
    rirs = [np.asarray(cache.noise(rel)) for rel, _ in cache.noise_items("rir") if rir_room(rel) not in rooms]
    eqs = [np.asarray(cache.noise(rel)) for rel, _ in cache.noise_items("eq")]
    r = torch.from_numpy(np.stack(rirs)).float() if rirs else None
    e = torch.from_numpy(np.stack(eqs)).float() if eqs else None
    return bank, r, e


def lr_at(step: int, progress: float, base: float, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay over `progress` in [0, 1]."""
    w = min(1.0, (step + 1) / max(1, warmup))
    return base * w * max(0.02, 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class TrainingDiverged(ValueError):
    """The loss is no longer a number: the steps from here would only spread NaN through the weights."""


class Run:
    """A training run in a folder: created from a config, or reopened to resume or evaluate."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.info = json.loads((self.folder / "run.json").read_text())
        self.config = TrainConfig.from_run(self.info["config"])
        self.genres: list[str] = self.info["genres"]

    @staticmethod
    def create(cfg: TrainConfig, progress: bool = True) -> "Run":
        folder = Path(cfg.out)
        folder.mkdir(parents=True, exist_ok=True)
        root = build_cache(cfg.data, cfg.noise, cfg.cache, progress=progress)
        cache = SpectrogramCache(root)
        found = scan_songs(cfg.data)
        songs = [s for s in found if cache.has_song(s.rel)]  # what the cache could not read is in no split
        skipped = sorted(s.rel for s in found if not cache.has_song(s.rel))
        if skipped:
            print(f"{len(skipped)} of {len(found)} songs left out: the cache skipped them", flush=True)
        if not songs:
            raise ValueError(f"none of the {len(found)} songs in {cfg.data} could be used (unreadable, silent, or "
                             "shorter than one 3-s tile)")
        genres = genres_of(songs)
        if "classifier" in cfg.objective and len(genres) < 2:
            inner = sorted({s.rel.split("/")[1] for s in songs if s.rel.count("/") >= 2})
            hint = (f"; if {genres[0]}'s subfolders ({', '.join(inner[:3])}, ...) are the genres, --data "
                    f"{Path(cfg.data) / genres[0]}" if len(genres) == 1 and len(inner) >= 2 else "")
            raise ValueError(f"the genre classifier needs songs in at least 2 genre folders of {cfg.data} (found: "
                             f"{', '.join(genres) or 'none'}); the objective `contrastive` trains without it{hint}")
        if genres and all(g.isdigit() for g in genres):
            print(f"note: the genre folders of {cfg.data} are numbered ({', '.join(genres[:3])}, ...): FMA's own "
                  "folders are not genres; sort the files into genre folders (trainer/README.md)", flush=True)
        split = split_songs(songs, cfg.seed)
        train = split.train
        if cfg.max_songs and len(train) > cfg.max_songs:
            rng = np.random.default_rng(cfg.seed)
            train = [train[i] for i in sorted(rng.choice(len(train), cfg.max_songs, replace=False))]
        info = {
            "config": asdict(cfg), "cache": str(root), "genres": genres,
            "split": {"train": [s.rel for s in train], "val": [s.rel for s in split.val],
                      "test": [s.rel for s in split.test], "held_out_packages": split.held_out_packages},
            "songs": {s.rel: [s.genre, s.group, s.package] for s in songs},
            "skipped": skipped,  # with "songs", the folder's songs all told
            "eval_rirs": held_out_rirs(cache) if cfg.noise else [],
        }
        (folder / "run.json").write_text(json.dumps(info, indent=1))
        run = Run(folder)
        run.make_room_views(progress)
        return run

    def make_room_views(self, progress: bool = True) -> None:
        """Compute the missing waveform-degraded copies of the training songs (resumable)."""
        if self.config.room_views:
            from trainer.wave_views import build_wave_views

            build_wave_views(self.info["cache"], self.songs("train"), self.config.noise, self.info["eval_rirs"],
                             self.config.room_views, self.config.seed, progress=progress)

    def set_epochs(self, epochs: int) -> None:
        self.config.epochs = epochs
        self.info["config"]["epochs"] = epochs
        (self.folder / "run.json").write_text(json.dumps(self.info, indent=1))

    def songs(self, side: str) -> list[Song]:
        root = Path(self.config.data).resolve()
        out = []
        for rel in self.info["split"][side]:
            genre, group, package = self.info["songs"][rel]
            out.append(Song(str(root / rel), rel, genre, group, package))
        return out

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / "checkpoint.pt"


class Views(NamedTuple):
    """What makes a run's training pairs: its objective (views of a batch) and its tile samplers."""
    objective: Objective
    train_data: TileSampler
    val_data: TileSampler


def run_views(run: Run) -> Views:
    """The run's pair makers, as training uses them (also for `tune_tiles.run_pairs`, which
    need pairs made exactly like training's positives but no network)."""
    cfg = run.config
    cache = SpectrogramCache(run.info["cache"])
    feats = cache.features
    bank, rirs, eqs = load_noise(cache, run.info["eval_rirs"]) if cfg.noise else (None, None, None)
    degrader = MelDegrader(feats, bank, rirs, eqs, DegradeParams(
        p_colour=cfg.p_colour, babble_voices=tuple(cfg.babble_voices), babble_snr_db=tuple(cfg.babble_snr_db)))
    objective = Objective(cfg.objective, feats.top_db, feats.tile_frames, degrader, bank,
                          cfg.temperature, cfg.cls_weight, cfg.p_room if cfg.room_views else 0.0,
                          cfg.p_speed, cfg.max_speed_change)
    train_data = TileSampler(cache, run.songs("train"), run.genres, feats.tile_frames, views=cfg.room_views)
    val_data = TileSampler(cache, run.songs("val") or run.songs("train"), run.genres, feats.tile_frames)
    return Views(objective, train_data, val_data)


class Trainer:
    def __init__(self, run: Run, progress: bool = True, threads: int = 0) -> None:
        self.run = run
        cfg = self.cfg = run.config
        self.progress = progress
        self.device = pick_device()
        if self.device.type == "cpu":
            torch.set_num_threads(threads or os.cpu_count() or 1)
        self.clock = training_clock(self.device)
        self.objective, self.train_data, self.val_data = run_views(run)
        self.mods = build_modules(cfg.objective, len(run.genres), fingerprint_dim=cfg.fingerprint_dim,
                                  centre_bands=cfg.centre_bands).to(self.device)
        self.opt = torch.optim.Adam(self.mods.parameters(), lr=cfg.lr)
        self.steps_per_epoch = cfg.steps_per_epoch or max(1, len(self.train_data) * cfg.tiles_per_song // cfg.batch)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.step, self.elapsed, self.history = 0, 0.0, []

    # --- checkpoints --------------------------------------------------------------------------
    def _diverged(self, what: str) -> "TrainingDiverged":
        return TrainingDiverged(f"{self.run.folder}: training diverged at step {self.step} ({what}, lr "
                                f"{self.opt.param_groups[0]['lr']:.1e}): remove the folder and train it anew with a "
                                "lower `lr`")

    def save(self) -> None:
        if not all(torch.isfinite(p).all() for p in self.mods.parameters()):  # the checkpoint keeps the last good step
            raise self._diverged("weights no longer numbers")
        _atomic_save({"modules": self.mods.state_dict(), "optim": self.opt.state_dict(), "step": self.step,
                      "elapsed": self.elapsed, "history": self.history}, self.run.checkpoint_path)

    def init_from(self, other: str | Path) -> None:
        """Weights of another run of the same objective, or the encoder of a model file (the app's
        `.pt`, e.g. the shipped default: its genre head too when the genres are the same; a tile
        projection is left out, `export` fits it anew); optimizer, step and schedule start fresh."""
        if Path(other).is_file():
            from shazamlet.model import load_model

            m = load_model(other)
            state = m.encoder.float().state_dict()
            self.mods["encoder"].load_state_dict(
                {k: v for k, v in state.items() if not k.startswith(("tile_projection.", "genre_head.", "style_head."))})
            head = {k.removeprefix("genre_head."): v for k, v in state.items() if k.startswith("genre_head.")}
            if head and "classifier" in self.mods and list(m.meta.genres) == list(self.run.genres):
                self.mods["classifier"].load_state_dict(head)
            # the file's tile projection is left out, so is the part of its description that says how it was made
            encoder_trained_on = m.meta.trained_on.split("; tile projection")[0]
            self.run.info["init_from"] = {"run": m.meta.name, "model": str(other), "trained_on": encoder_trained_on}
        else:
            ck = torch.load(Path(other) / "checkpoint.pt", map_location=self.device, weights_only=True)
            self.mods.load_state_dict(ck["modules"])
            self.run.info["init_from"] = {"run": str(other), "step": ck["step"], "minutes": round(ck["elapsed"] / 60, 1)}
        (self.run.folder / "run.json").write_text(json.dumps(self.run.info, indent=1))

    def resume(self) -> bool:
        p = self.run.checkpoint_path
        if not p.exists():
            return False
        ck = torch.load(p, map_location=self.device, weights_only=True)
        self.mods.load_state_dict(ck["modules"])
        self.opt.load_state_dict(ck["optim"])
        self.step, self.elapsed, self.history = ck["step"], ck["elapsed"], ck["history"]
        return True

    # --- validation ---------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict:
        """Mel-domain check on validation songs: degraded view -> its clean anchor among `val_pairs`."""
        rng = np.random.default_rng([self.cfg.seed, 999])
        batch = self.val_data.sample(self.cfg.val_pairs, rng)
        self.mods.eval()
        anchor, pos = self.objective.views(batch, rng)
        enc = self.mods["encoder"]
        fa = torch.cat([enc.fingerprint(anchor[i:i + 128].to(self.device)) for i in range(0, len(anchor), 128)])
        fp = torch.cat([enc.fingerprint(pos[i:i + 128].to(self.device)) for i in range(0, len(pos), 128)])
        out = {"val_mic_top1": (fp @ fa.t()).argmax(1).cpu().eq(torch.arange(len(fa))).float().mean().item()}
        if "decoder" in self.mods:
            emb = torch.cat([enc(anchor[i:i + 128].to(self.device)) for i in range(0, len(anchor), 128)])
            out["val_recon_mae"] = (self.mods["decoder"](emb).squeeze(1).cpu() - anchor).abs().mean().item()
        if "classifier" in self.mods:
            ok = batch.labels >= 0
            emb = torch.cat([enc(anchor[i:i + 128].to(self.device)) for i in range(0, len(anchor), 128)])
            pred = self.mods["classifier"](emb).argmax(1).cpu()
            out["val_genre_acc"] = pred[ok].eq(batch.labels[ok]).float().mean().item() if ok.any() else float("nan")
        self.mods.train()
        return out

    def schedule_position(self) -> float:
        """How far through the planned training: by steps, or by time when a `--minutes` budget is set
        (so the cosine schedule ends on time whatever the machine's speed)."""
        by_steps = self.step / max(1, self.total_steps)
        pos = max(by_steps, self.elapsed / (self.cfg.minutes * 60)) if self.cfg.minutes else by_steps
        return min(1.0, pos)

    # --- the loop -----------------------------------------------------------------------------
    def train(self) -> None:
        self.mods.train()
        try:
            self._epochs(self.step // self.steps_per_epoch, time.monotonic())
        except KeyboardInterrupt:
            self.save()  # the steps since the last checkpoint are kept: `--resume` goes on from here
            raise

    def _epochs(self, epoch: int, last_ckpt: float) -> None:
        from tqdm import tqdm

        cfg = self.cfg
        while epoch < cfg.epochs:
            sums: dict[str, list[float]] = {}
            start_step = self.step
            bar = tqdm(total=self.steps_per_epoch, initial=self.step - epoch * self.steps_per_epoch,
                       desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not self.progress, mininterval=5)
            try:  # the bar ends its line whatever stops the epoch
                while self.step < (epoch + 1) * self.steps_per_epoch:
                    t0 = self.clock()
                    rng = np.random.default_rng([cfg.seed, self.step])
                    batch = self.train_data.sample(cfg.batch, rng)
                    for g in self.opt.param_groups:
                        g["lr"] = lr_at(self.step, self.schedule_position(), cfg.lr, cfg.warmup)
                    loss, stats = self.objective.loss(self.mods, batch, rng)
                    if not math.isfinite(stats["loss"]):  # stopped before the step: the checkpoint stays finite
                        raise self._diverged(f"loss {stats['loss']}")
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.opt.step()
                    self.step += 1
                    self.elapsed += self.clock() - t0
                    for k, v in stats.items():
                        sums.setdefault(k, []).append(v)
                    bar.update(1)
                    bar.set_postfix(loss=f"{stats['loss']:.4f}", lr=f"{self.opt.param_groups[0]['lr']:.1e}")
                    if time.monotonic() - last_ckpt > cfg.ckpt_minutes * 60:
                        self.save()
                        last_ckpt = time.monotonic()
                    if cfg.minutes and self.elapsed > cfg.minutes * 60:
                        break
            finally:
                bar.close()
            if self.step == start_step:
                break
            row = {"epoch": epoch + 1, "step": self.step, "minutes": round(self.elapsed / 60, 2),
                   "lr": self.opt.param_groups[0]["lr"]}
            row.update({f"train_{k}": float(np.nanmean(v)) for k, v in sums.items()})
            done = self.step % self.steps_per_epoch == 0 or self.step >= self.total_steps
            out_of_time = bool(cfg.minutes and self.elapsed > cfg.minutes * 60)
            if done or out_of_time:  # a budget stop logs its partial epoch too
                if not done:
                    row["epoch"] = round(self.step / self.steps_per_epoch, 2)
                row.update(self.validate())
                self.history.append(row)
                epoch += int(done)
            self.save()
            last_ckpt = time.monotonic()
            self.write_metrics()
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
            if cfg.minutes and self.elapsed > cfg.minutes * 60:
                print(f"time budget of {cfg.minutes} min reached at step {self.step}; `--resume` continues", flush=True)
                break

    def write_metrics(self) -> None:
        folder = self.run.folder
        (folder / "metrics.json").write_text(json.dumps(self.history, indent=1))
        keys = sorted({k for r in self.history for k in r}, key=lambda k: (k not in ("epoch", "step", "minutes"), k))
        with open(folder / "metrics.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, keys)
            w.writeheader()
            w.writerows(self.history)
        plot_curves(self.history, folder / "curves.png", self.cfg.objective)


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    ep = [r["epoch"] for r in history]
    loss_keys = [k for k in ("train_loss", "train_contrastive", "train_recon_mae", "train_ce") if k in history[0]]
    acc_keys = [k for k in ("val_mic_top1", "val_genre_acc", "train_pair_top1", "train_genre_acc", "val_recon_mae")
                if k in history[0]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for k in loss_keys:
        axes[0].plot(ep, [r.get(k, np.nan) for r in history], marker="o", label=k)
    axes[0].set_xlabel("epoch"), axes[0].set_title("training losses"), axes[0].legend(fontsize=8)
    for k in acc_keys:
        axes[1].plot(ep, [r.get(k, np.nan) for r in history], marker="o", label=k)
    axes[1].set_xlabel("epoch"), axes[1].set_title("accuracy / validation"), axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
