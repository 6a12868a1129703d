"""`python -m trainer tune-tiles RUN --tile-dim D`: train the run's linear tile fingerprint contrastively.

`fit_tile_projection` (trainer.reduce) solves for the tile directions in closed form from second-order
statistics: what varies between excerpts against what a room changes. That is the best *linear*
fingerprint for Gaussian tiles, but a room's damage is not Gaussian (noise bursts, reverberant tails,
a 0.5-s misalignment) and cosine ranking is not a covariance. Starting from that fit, this trains the
same linear map with the objective the encoder was trained with: NT-Xent between a clean tile and its
degraded, shifted view, in-batch negatives, fresh pairs every step (made exactly as training makes its
positives, so there is no fixed set of pairs to overfit). The map stays a `TileProjection`: a linear
one costs one matrix product per tile, as the closed form did.

With `--residual C` the projection also gets a `TileResidual` (two small convolutions, C and 2C
channels, whose output is added to the linear map's): a non-linear fingerprint of local shapes that
the linear map cannot form. It starts from the trained linear projection (`tiles<D>.pt`, when there
is one; otherwise from the closed form) with the residual's output at zero, so it starts exactly
where the linear projection stopped, and both are then trained together (`tiles<D>r<C>.pt`). Its batches
are drawn from the same seeds as the linear tune's (step by step), so the pairs are new to the residual
only, not to the basis. With `--widen-from C0` a wider residual starts instead from the trained
`tiles<D>r<C0>.pt`, widened so that it computes exactly what that one did (`TileResidual.widened`):
the extra channels then add capacity without losing the minutes already spent.

The projection lives in `RUN/tiles<D>.pt` beside the run's checkpoint (resumable: run again, it continues
where it stopped until it has trained `--minutes` in all; only the steps' own time counts, as in `train`);
`evaluate`/`export` with `--tile-dim D --tuned-tiles` use it instead of fitting anew. Validation: the share of degraded views of validation-song tiles whose own clean tile
is their nearest among `TuneConfig.val_tiles` clean tiles, logged with the loss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shazamlet.model.resnet import TileProjection


@dataclass
class TuneConfig:
    tile_dim: int
    minutes: float = 30.0  # total training time: a run that has had it already stops at once
    steps: int = 0  # ... or stop sooner, after this many steps in all (0: the time budget alone)
    lr: float = 1e-4  # 3e-4 and above unlearned the closed-form start within the first minutes of probes
    batch: int = 512
    temperature: float = 0.05
    val_every: int = 250  # steps
    val_tiles: int = 4096  # validation: a degraded view must find its own clean tile among this many
    seed: int = 0
    residual: int = 0  # channels of a convolutional residual trained with the linear map (0: linear only)
    residual_lr: float = 3e-4  # the residual starts at zero and has far to go; the fitted basis does not
    widen_from: int = 0  # start from the trained residual with this many channels, widened (TileResidual.widened)


def tuned_path(run, tile_dim: int, residual: int = 0) -> Path:
    return Path(run.folder) / (f"tiles{tile_dim}" + (f"r{residual}" if residual else "") + ".pt")


def load_tuned(run, tile_dim: int, residual: int = 0) -> dict | None:
    """The tuned projection's state (`mean`, `basis`, `residual`, `step`, `minutes`, `fit`, `history`), or None."""
    p = tuned_path(run, tile_dim, residual)
    return torch.load(p, map_location="cpu", weights_only=True) if p.exists() else None


def require_tuned(run, tile_dim: int, residual: int = 0) -> dict:
    """`load_tuned`, or a FileNotFoundError that says how to make it."""
    state = load_tuned(run, tile_dim, residual)
    if state is None:
        how = f" --residual {residual}" if residual else ""
        raise FileNotFoundError(f"{tuned_path(run, tile_dim, residual)} does not exist: run `python -m trainer "
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


def attach_tuned(encoder, run, tile_dim: int, weight: float, residual: int = 0) -> dict:
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


def tune_tiles(run, cfg: TuneConfig, progress: bool = True) -> dict:
    """Fit (or reload) the run's `cfg.tile_dim`-d tile projection and train it until it has trained
    `cfg.minutes` (or `cfg.steps`) in all; checkpoints the closed-form start and every validation.
    Returns the saved state."""
    from tqdm import tqdm

    from trainer.loop import _atomic_save, run_views
    from trainer.objectives import nt_xent
    from trainer.reduce import run_pairs, whitened_projection

    if cfg.minutes <= 0:
        raise ValueError(f"the time budget must be positive (got {cfg.minutes} min)")
    path = tuned_path(run, cfg.tile_dim, cfg.residual)
    state = load_tuned(run, cfg.tile_dim, cfg.residual)
    if state is None and cfg.widen_from:
        narrow = require_tuned(run, cfg.tile_dim, cfg.widen_from)
        wide = _projection(narrow).residual.widened(cfg.residual)
        state = {"mean": narrow["mean"], "basis": narrow["basis"], "fit": narrow["fit"],
                 "start": f"{tuned_path(run, cfg.tile_dim, cfg.widen_from).name} after {narrow['step']} steps "
                          f"({narrow['minutes']:.0f} min; {narrow.get('start', '')}), widened to {cfg.residual} channels",
                 "step": 0, "minutes": 0.0, "history": [], "optim": None, "residual_channels": cfg.residual,
                 "residual": {k: v.clone() for k, v in wide.state_dict().items()}}
        print(f"start: {state['start']}", flush=True)
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
    bar = tqdm(initial=min(elapsed, budget_end), total=budget_end, desc=f"tuning {path.name}", disable=not progress,
               mininterval=5, bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}")
    while elapsed < budget_end and state["step"] < last_step:
        t0 = time.monotonic()
        rng = np.random.default_rng([cfg.seed, state["step"]])
        anchor, view = views.objective.views(views.train_data.sample(cfg.batch, rng), rng)
        loss = nt_xent(proj(anchor), proj(view), cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["step"] += 1
        losses.append(loss.item())
        dt = time.monotonic() - t0
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
    bar.close()
    return state
