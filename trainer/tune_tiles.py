"""`python -m trainer tune-tiles RUN --tile-dim D [--residual C]`: the fingerprint of the tile itself, trained.

The shipped model's fingerprint is the encoder's, with a second one appended that is computed from the
band-centred tile directly (`shazamlet.model.resnet.TileProjection`, worth `--tile-weight` of the cosine):
a linear map onto D directions, plus with `--residual C` a `TileResidual` (two small convolutions, C and 2C
channels, whose output is added to the linear map's), a non-linear fingerprint of local shapes.

It starts from a closed form (`whitened_projection`): the tile directions that vary most between excerpts
relative to how much a room changes them. The linear map (and the residual, its output starting at zero)
is then trained with the objective the encoder was trained with: NT-Xent between a clean tile and its
degraded, shifted view, in-batch negatives, fresh pairs every step made exactly as training makes its
positives (`run_pairs`), so there is no fixed set of pairs to overfit. A residual starts from the run's
trained linear projection (`tiles<D>.pt`) when there is one, otherwise from the closed form.

The state lives in `RUN/tiles<D>.pt` (`RUN/tiles<D>r<C>.pt` with a residual) beside the run's checkpoint
and is resumable: run again, it continues where it stopped until it has trained `--minutes` in all (only
the steps' own time counts, as in `train`). `evaluate`/`export --tile-dim D [--tile-residual C]` append it
to the run's encoder. Validation: the share of degraded views of validation-song tiles whose own clean
tile is their nearest among `TuneConfig.val_tiles` clean tiles, logged with the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg
import torch

from shazamlet.model.resnet import TileProjection, centre_bands

if TYPE_CHECKING:
    from shazamlet.model.resnet import Encoder
    from trainer.loop import Run

TILE_FIT_PAIRS = 32768  # covariances of 4096-value tiles need many more examples than of 128-d fingerprints
# The ridge added to the room's covariance, as a share of its mean variance: without it the fit chases
# directions a room barely touches but that carry no music either (0.1-0.3 were best on single-tile probes).
TILE_RIDGE = 0.2


@dataclass
class TuneConfig:
    tile_dim: int
    minutes: float = 30.0  # total training (`trainer.loop.training_clock`): a run that has had it already stops at once
    steps: int = 0  # ... or stop sooner, after this many steps in all (0: the time budget alone)
    lr: float = 1e-4  # 3e-4 and above unlearned the closed-form start within the first minutes of probes
    batch: int = 512
    temperature: float = 0.05
    val_every: int = 250  # steps
    val_tiles: int = 4096  # validation: a degraded view must find its own clean tile among this many
    seed: int = 0
    residual: int = 0  # channels of a convolutional residual trained with the linear map (0: linear only)
    residual_lr: float = 3e-4  # the residual starts at zero and has far to go; the fitted basis does not


def tuned_path(run: Run, tile_dim: int, residual: int = 0) -> Path:
    return Path(run.folder) / (f"tiles{tile_dim}" + (f"r{residual}" if residual else "") + ".pt")


def load_tuned(run: Run, tile_dim: int, residual: int = 0) -> dict | None:
    """The tuned projection's state (`mean`, `basis`, `residual`, `step`, `minutes`, `fit`, `history`), or None."""
    p = tuned_path(run, tile_dim, residual)
    return torch.load(p, map_location="cpu", weights_only=True) if p.exists() else None


def require_tuned(run: Run, tile_dim: int, residual: int = 0) -> dict:
    """`load_tuned`, or a FileNotFoundError that says how to make it."""
    state = load_tuned(run, tile_dim, residual)
    if state is None or not state["history"]:
        how = f" --residual {residual}" if residual else ""
        why = "does not exist" if state is None else "holds a fit interrupted before its first validation"
        raise FileNotFoundError(f"{tuned_path(run, tile_dim, residual)} {why}: run `python -m trainer "
                                f"tune-tiles {run.folder} --tile-dim {tile_dim}{how}` first")
    return state


def _projection(state: dict) -> TileProjection:
    """The app's `TileProjection` holding a saved state's mean, basis and residual."""
    residual = state.get("residual")
    proj = TileProjection(*state["basis"].shape, residual_channels=state.get("residual_channels", 0))
    proj.mean.copy_(state["mean"])
    proj.basis.copy_(state["basis"])
    if residual is not None:
        proj.residual.load_state_dict(residual)
    return proj


def attach_tuned(encoder: Encoder, run: Run, tile_dim: int, weight: float, residual: int = 0) -> dict:
    """Give `encoder` the run's tuned `tile_dim`-d projection (with its `residual`-channel residual),
    worth `weight` of the cosine; returns what the model file records of it."""
    state = require_tuned(run, tile_dim, residual)
    encoder.attach_tile_projection(_projection(state), weight)
    last = state["history"][-1]
    method = "noise-whitened, then contrastively tuned" + (f" with a {residual}-channel convolutional residual"
                                                            if residual else "")
    out = {"dim": tile_dim, "weight": weight, "method": method, "fit": state["fit"], "tuned_steps": state["step"],
           "tuned_minutes": round(state["minutes"], 1), "val_top1": [state["history"][0]["val_top1"], last["val_top1"]]}
    if residual:
        out.update(residual=residual, start=state.get("start", ""))
    return out


@torch.no_grad()
def _val_top1(anchor: torch.Tensor, view: torch.Tensor, proj: TileProjection) -> float:
    fa, fv = proj(anchor), proj(view)
    return float((fv @ fa.T).argmax(1).eq(torch.arange(len(fa))).float().mean())


@torch.no_grad()
def whitened_projection(clean: torch.Tensor, degraded: torch.Tensor, dim: int,
                        ridge: float = TILE_RIDGE) -> tuple[TileProjection, dict]:
    """A `TileProjection` onto the `dim` band-centred tile directions that change most between
    excerpts relative to how much a room changes them.

    `clean` and `degraded` are tiles of training songs and the trainer's degraded, shifted views of
    them (`run_pairs`). The directions solve the generalised eigenproblem `S w = l N w`, where S is the
    covariance of clean tiles and N the covariance of (clean - degraded) differences plus a ridge of
    `ridge` x its mean variance: the fingerprint whitens what a microphone does to a tile and keeps
    what tells excerpts apart. Principal directions of clean tiles alone (S only) keep the loudest
    detail, which is also what reverberation and noise smear most; on single 3-s tiles through the
    evaluation's microphone chain this fit found 75% of tiles against 66% for the principal directions.
    """

    if ridge <= 0:  # band centring leaves null directions: without a ridge the room covariance is singular
        raise ValueError(f"the ridge must be positive (got {ridge})")
    x = centre_bands(clean.float()).flatten(1).double()
    diff = x - centre_bands(degraded.float()).flatten(1).double()
    mean = x.mean(0)
    signal = torch.cov((x - mean).T)
    noise = diff.T @ diff / len(diff)
    scale = float(noise.diagonal().mean())
    if scale < 1e-6 * float(signal.diagonal().mean()):
        raise ValueError("the degraded tiles hardly differ from the clean ones: nothing to whiten")
    noise += ridge * scale * torch.eye(len(noise), dtype=noise.dtype)
    # only the top `dim` of 4096 generalised eigenpairs: LAPACK's subset driver took 17 s against 38 s for the
    # full decomposition (Cholesky + eigh) on 2 busy cores; the vectors come out N-orthonormal (w' N w = 1),
    # i.e. the room's changes whitened
    n = len(noise)
    gains, vectors = scipy.linalg.eigh(signal.numpy(), noise.numpy(), subset_by_index=[n - dim, n - 1])
    gains, vectors = gains[::-1].copy(), vectors[:, ::-1].copy()  # descending
    proj = TileProjection(x.shape[1], dim)
    proj.mean.copy_(mean.float())
    proj.basis.copy_(torch.from_numpy(vectors).float())
    return proj, {"fit_pairs": len(x), "ridge": ridge, "method": "noise-whitened",
                  "signal_to_noise": [round(float(gains[i]), 3) for i in (0, dim // 2, dim - 1)]}


def run_pairs(run: Run, n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` (default `TILE_FIT_PAIRS`) (clean tile, degraded shifted view) pairs of the run's training
    songs, made exactly as training makes its positives (mel-domain room, noise and colour; the
    cached waveform room copies)."""
    from trainer.loop import run_views

    n = n or TILE_FIT_PAIRS
    views = run_views(run)
    rng = np.random.default_rng(seed)
    clean, degraded = [], []
    for i in range(0, n, 512):
        a, p = views.objective.views(views.train_data.sample(min(512, n - i), rng), rng)
        clean.append(a.half())
        degraded.append(p.half())
    return torch.cat(clean), torch.cat(degraded)


def tune_tiles(run: Run, cfg: TuneConfig, progress: bool = True) -> dict:
    """Fit (or reload) the run's `cfg.tile_dim`-d tile projection and train it until it has trained
    `cfg.minutes` (or `cfg.steps`) in all; checkpoints the closed-form start and every validation.
    Returns the saved state."""
    from tqdm import tqdm

    from trainer.loop import _atomic_save, run_views, training_clock
    from trainer.objectives import nt_xent

    path = tuned_path(run, cfg.tile_dim, cfg.residual)
    state = load_tuned(run, cfg.tile_dim, cfg.residual)
    if state is None:
        linear = load_tuned(run, cfg.tile_dim) if cfg.residual else None
        if linear is not None:  # the residual starts where the trained linear projection stopped
            state = {"mean": linear["mean"], "basis": linear["basis"], "fit": linear["fit"],
                     "start": f"{tuned_path(run, cfg.tile_dim).name} after {linear['step']} steps "
                              f"({linear['minutes']:.0f} min)"}
        else:
            tp, fit = whitened_projection(*run_pairs(run), cfg.tile_dim)
            state = {"mean": tp.mean.clone(), "basis": tp.basis.clone(), "fit": fit, "start": "closed form"}
        state.update(step=0, minutes=0.0, history=[], optim=None, residual=None, residual_channels=cfg.residual)
        _atomic_save(state, path)  # the fit took minutes: an interruption from here keeps it
        print(f"start: {state['start']} ({state['fit']})", flush=True)
    budget_end, last_step = cfg.minutes * 60, cfg.steps or 1 << 62
    if state["history"] and (state["minutes"] * 60 >= budget_end or state["step"] >= last_step):
        print(f"{path} has trained {state['minutes']:.1f} min ({state['step']} steps) already: nothing to add "
              "(pass more --minutes to continue)", flush=True)
        return state
    views = run_views(run)
    proj = _projection(state)  # trained as the app runs it: the basis (and residual) learn, the mean stays the fit's
    basis = proj.basis.requires_grad_(True)
    groups = [{"params": [basis], "lr": cfg.lr}]
    if proj.residual is not None:
        groups.append({"params": list(proj.residual.parameters()), "lr": cfg.residual_lr})
    opt = torch.optim.Adam(groups)
    if state.get("optim"):
        opt.load_state_dict(state["optim"])
        for group, fresh in zip(opt.param_groups, groups):  # the saved state carries the old rates: this run's win
            group["lr"] = fresh["lr"]
    vrng = np.random.default_rng([cfg.seed, 999])
    v_anchor, v_view = views.objective.views(views.val_data.sample(cfg.val_tiles, vrng), vrng)

    def save() -> None:
        state.update(basis=basis.detach().clone(), optim=opt.state_dict())
        if proj.residual is not None:
            state["residual"] = {k: v.detach().clone() for k, v in proj.residual.state_dict().items()}
        _atomic_save(state, path)

    if not state["history"]:  # the closed-form start: validated and kept before any step (it took minutes)
        state["history"].append({"step": 0, "minutes": 0.0, "val_top1": _val_top1(v_anchor, v_view, proj)})
        print(f"step 0: val_top1 {state['history'][-1]['val_top1']:.4f}", flush=True)
        save()
    elapsed, losses = state["minutes"] * 60, []
    clock = training_clock(torch.device("cpu"))
    bar = tqdm(initial=min(elapsed, budget_end), total=budget_end, desc=f"tuning {path.name}", disable=not progress,
               mininterval=5, bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}")
    try:
        while elapsed < budget_end and state["step"] < last_step:
            t0 = clock()
            rng = np.random.default_rng([cfg.seed, state["step"]])
            anchor, view = views.objective.views(views.train_data.sample(cfg.batch, rng), rng)
            loss = nt_xent(proj(anchor), proj(view), cfg.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["step"] += 1
            losses.append(loss.item())
            dt = clock() - t0
            elapsed += dt
            state["minutes"] = elapsed / 60
            bar.update(min(dt, bar.total - bar.n))
            if state["step"] % cfg.val_every == 0 or elapsed >= budget_end or state["step"] == last_step:
                row = {"step": state["step"], "minutes": round(state["minutes"], 2),
                       "train_loss": round(float(np.mean(losses)), 4),
                       "val_top1": round(_val_top1(v_anchor, v_view, proj), 4)}
                losses = []
                state["history"].append(row)
                bar.set_postfix(loss=row["train_loss"], val=row["val_top1"])
                if not progress:
                    print(row, flush=True)
                save()  # the loop always ends on a validation step, so this is also the final save
    except KeyboardInterrupt:
        save()  # the steps since the last validation are kept: running it again goes on from here
        print(f"\ninterrupted at step {state['step']}: saved to {path}", flush=True)
        raise
    finally:
        bar.close()
    return state
