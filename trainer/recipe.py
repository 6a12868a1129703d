"""`python -m trainer recipe FILE`: a model rebuilt by one command, from the music folders to the model file
and its card, resuming after any interruption.

A recipe (TOML, e.g. `trainer/recipes/default.toml`) names its folders and a list of stages run in order:
`cache` (spectrograms), `train` (a run; `init_from` another stage), `tune-tiles` (the tile fingerprint of a
stage's run), `evaluate` (a stage's run, or the model file, on one or more draws), `export` (the model file,
threshold from the evaluation of the same encoder), `style` (the genre head for songs outside the library)
and `card` (the model card). A finished stage is written to `<runs>/recipe.json` and skipped the next time;
training stages checkpoint every few minutes, so an interrupted stage continues where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from trainer.atomic import write_json
from trainer.recipe_file import Recipe, RecipeError, Stage
from trainer.variant import Variant

class Progress:
    """`<runs>/recipe.json`: which stages are done, when, and how long each took (written atomically)."""

    def __init__(self, runs: Path) -> None:
        self.path = runs / "recipe.json"
        try:
            self.done: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise RecipeError(f"{self.path}: not the recipe's progress ({exc}): remove it, and finished stages "
                              f"run again (training resumes from its checkpoints)") from None
        if not isinstance(self.done, dict):
            raise RecipeError(f"{self.path}: not the recipe's progress (not a JSON object): remove it, and finished "
                              f"stages run again (training resumes from its checkpoints)")

    def finish(self, stage: Stage, minutes: float, device: str, files: dict[str, str]) -> None:
        self.done[stage.name] = {"kind": stage.kind, "minutes": round(minutes, 1), "device": device,
                                 "finished": time.strftime("%Y-%m-%d %H:%M:%S"), **files}
        write_json(self.path, self.done)

    def check_files(self, recipe: Recipe) -> None:
        """RecipeError unless the finished stages wrote (or read) the model file and card the recipe names
        now: resumed with another `--model`, `style` would add its head to a file `export` never wrote."""
        for name, entry in self.done.items():
            for key in ("model", "card"):
                then, now = entry.get(key) if isinstance(entry, dict) else None, str(getattr(recipe, key))
                if then is not None and then != now:
                    remake = " ".join(st.name for st in recipe.stages if key in _files(recipe, st))
                    raise RecipeError(f"{self.path}: stage {name!r} used --{key} {then}, not {now}: resume with "
                                      f"--{key} {then}, or rerun what uses it (--only {remake})")


def _unwritable(path: Path, folder: bool) -> str | None:
    """Why a file (or with `folder`, a folder) cannot be written at `path`; None if it can."""
    if path.exists() and path.is_dir() != folder:
        return "is a folder" if not folder else "is a file"
    parent = path if folder and path.exists() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file"
    return None if os.access(parent, os.W_OK | os.X_OK) else f"{parent} is not writable"


def _files(recipe: Recipe, stage: Stage) -> dict[str, str]:
    """The model file and card a stage wrote or read, kept in its progress entry (`Progress.check_files`)."""
    if stage.kind == "card":
        return {"model": str(recipe.model), "card": str(recipe.card)}
    if stage.kind in ("export", "style") or (stage.kind == "evaluate" and stage.options.get("model")):
        return {"model": str(recipe.model)}
    return {}


def run_recipe(recipe: Recipe, only: list[str] | None = None, threads: int = 0) -> None:
    """Every stage not yet done (or just those in `only`, done or not), in order."""
    import torch

    from shazamlet.model.embedder import pick_device

    names = [st.name for st in recipe.stages]
    for name in only or []:
        if name not in names:
            raise RecipeError(f"{recipe.path}: no stage named {name!r} (its stages: {', '.join(names)})")
    if not recipe.data.is_dir():
        raise RecipeError(f"{recipe.data} is not a folder of music: lay out the corpus with "
                          f"`../shared/corpus/build.sh DIR` or pass --data DIR (one folder per genre)")
    if recipe.noise and not recipe.noise.is_dir():
        raise RecipeError(f"{recipe.noise} is not a folder of noise recordings and impulse responses: pass "
                          f"--noise DIR (`../shared/corpus/build.sh` lays it out), or --noise '' to train without")
    if threads:
        torch.set_num_threads(threads)
    recipe.threads = threads
    recipe.runs.mkdir(parents=True, exist_ok=True)
    progress = Progress(recipe.runs)
    device = pick_device().type
    todo = [st for st in recipe.stages if (st.name in only if only else st.name not in progress.done)]
    if not only:
        progress.check_files(recipe)
    for stage in recipe.stages:  # before any stage runs: a trained stage is what the recipe says now
        if stage.kind == "train" and (recipe.run_folder(stage.name) / "run.json").exists():
            _check_unchanged(recipe, stage, resumed=stage in todo)
            _check_songs(recipe, stage)
    for stage in todo:  # a model file or card that cannot be written is told now, not after the training
        key = {"export": "model", "style": "model", "card": "card"}.get(stage.kind)
        if key and (problem := _unwritable(getattr(recipe, key), folder=key == "card")):
            raise RecipeError(f"{recipe.path}: --{key} {getattr(recipe, key)}: {problem}")
    if not todo:
        print(f"{recipe.path}: all {len(recipe.stages)} stages are done ({progress.path}); --only STAGE runs one "
              "again", flush=True)
    for stage in todo:
        print(f"== {stage.name} ({stage.kind}) ==", flush=True)
        started = time.monotonic()
        try:
            STEPS[stage.kind](recipe, stage)
        except RecipeError:
            raise
        except ValueError as exc:  # the music (too few songs to split, one genre), training that diverged
            raise RecipeError(f"stage {stage.name!r}: {exc}") from None
        progress.finish(stage, (time.monotonic() - started) / 60, device, _files(recipe, stage))


def _cache(recipe: Recipe, stage: Stage) -> None:
    from trainer.cache import build_cache

    print(build_cache(str(recipe.data), str(recipe.noise) if recipe.noise else None, str(recipe.cache)), flush=True)


def _train(recipe: Recipe, stage: Stage) -> None:
    from trainer.loop import Run, Trainer
    from trainer.settings import TrainConfig

    opts = {**recipe.train, **stage.options}
    init = opts.pop("init_from", None)
    folder = recipe.run_folder(stage.name)
    start = _trained(recipe, stage, init) if init and not (folder / "checkpoint.pt").exists() else None
    if (folder / "run.json").exists():
        run = Run(folder)
        changes = _changes(recipe, stage)  # only _MAY_CHANGE ones (`_check_unchanged`)
        for key, (had, now) in changes.items():
            print(f"note: {key} {had} -> {now}" + (" (the cosine schedule stretches)" if key == "epochs" else ""),
                  flush=True)
            setattr(run.config, key, now)
            run.info["config"][key] = now
        if changes:
            write_json(folder / "run.json", run.info)
    else:
        run = Run.create(TrainConfig(data=str(recipe.data.resolve()), out=str(folder), cache=str(recipe.cache),
                                     noise=str(recipe.noise.resolve()) if recipe.noise else None, **opts))
    if any(st.kind == "evaluate" for st in recipe.stages):  # told now, not after hours of training
        from trainer.evaluate import labelled_test_songs

        labelled_test_songs(run)
    run.make_room_views()  # finishes copies an interrupted start left undone
    trainer = Trainer(run, threads=recipe.threads)
    if trainer.resume():
        print(f"resumed at step {trainer.step} ({trainer.elapsed / 60:.1f} min trained)", flush=True)
    elif start:
        trainer.init_from(start)
    trainer.train()


_MAY_CHANGE = ("epochs", "minutes")  # a run resumes with the recipe's new ones, as `train --resume --epochs` does


def _changes(recipe: Recipe, stage: Stage) -> dict[str, tuple]:
    """{option: (its run's, the recipe's)} for the training options of the stage's existing run that the
    recipe now sets otherwise; the folders are left out (a corpus may move)."""
    from trainer.settings import TrainConfig

    run_json = recipe.run_folder(stage.name) / "run.json"
    opts = {k: v for k, v in {**recipe.train, **stage.options}.items() if k != "init_from"}
    try:
        had = json.loads(json.dumps(asdict(TrainConfig.from_run(json.loads(run_json.read_text())["config"]))))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RecipeError(f"{run_json}: not a run's description ({exc}): remove {run_json.parent} to train the "
                          f"stage anew") from None
    now = json.loads(json.dumps(asdict(TrainConfig(data="", out="", **opts))))
    return {k: (had[k], v) for k, v in now.items() if k not in ("data", "out", "cache", "noise") and had[k] != v}


def _check_unchanged(recipe: Recipe, stage: Stage, resumed: bool) -> None:
    """RecipeError unless the stage's existing run was trained as the recipe now says: resuming it (or skipping
    it as done) would otherwise make a model the recipe does not describe. Only `_MAY_CHANGE` options of a
    stage about to run may differ."""
    changes = _changes(recipe, stage)
    said = ", ".join(f"{k} = {now!r} (its run has {had!r})" for k, (had, now) in changes.items())
    folder = recipe.run_folder(stage.name)
    if any(k not in _MAY_CHANGE for k in changes):
        raise RecipeError(f"{recipe.path}: stage {stage.name!r} now says {said}: put the recipe back, or remove "
                          f"{folder} to train the stage anew")
    if changes and not resumed:
        raise RecipeError(f"{recipe.path}: stage {stage.name!r} is done, but now says {said}: `--only {stage.name}` "
                          f"(and the stages after it) continues its training, or put the recipe back")


def _check_songs(recipe: Recipe, stage: Stage) -> None:
    """RecipeError unless the stage's existing run was made from the songs of the recipe's data folder (those
    it trained on and those the cache skipped). A corpus that moved (the same songs, another folder) is written
    into the run, so that what reads its songs reads them there."""
    from trainer.songs import scan_songs

    run_json = recipe.run_folder(stage.name) / "run.json"
    info = json.loads(run_json.read_text())  # `_check_unchanged` read it already
    old, data = info["config"]["data"], str(recipe.data.resolve())
    if old == data:
        return
    try:
        now = {s.rel for s in scan_songs(recipe.data)}
    except ValueError as exc:  # no genre folders, a manifest that does not read
        raise RecipeError(str(exc)) from None
    had = set(info["songs"]) | set(info.get("skipped", []))
    if now != had:
        raise RecipeError(f"{recipe.path}: stage {stage.name!r} was made from the songs of {old}, and {data} holds "
                          f"others ({len(had - now)} of its {len(had)} missing, {len(now - had)} new): --data {old}, "
                          "or another --runs folder for these songs")
    print(f"note: {stage.name}'s songs are now read from {data} (not {old})", flush=True)
    info["config"]["data"] = data
    write_json(run_json, info)


def _trained(recipe: Recipe, stage: Stage, name: str) -> Path:
    """The run folder of training stage `name`, which `stage` reads; RecipeError if it was never trained (a
    stage run with `--only` before the one it needs)."""
    folder = recipe.run_folder(name)
    if not (folder / "run.json").exists() or not (folder / "checkpoint.pt").exists():
        raise RecipeError(f"{recipe.path}: stage {stage.name!r} needs {name!r}, but {name!r} has not been trained "
                          f"({folder}): run it first")
    return folder


def _variant(opts: dict) -> Variant:
    return Variant(tile_dim=opts.get("tile_dim", 0), tile_weight=opts.get("tile_weight", Variant.tile_weight),
                   tile_residual=opts.get("residual", 0))


def _tune_tiles(recipe: Recipe, stage: Stage) -> None:
    from trainer.loop import Run
    from trainer.tune_tiles import TuneConfig, tune_tiles

    o = stage.options
    tune_tiles(Run(_trained(recipe, stage, o["run"])), TuneConfig(tile_dim=o["tile_dim"], minutes=o["minutes"],
                                                            residual=o.get("residual", 0)))


def _evaluate(recipe: Recipe, stage: Stage) -> None:
    from trainer.evaluate import EvalConfig, evaluate_run

    o = stage.options
    model = str(recipe.model) if o.get("model") else None
    for draw in o.get("draws", [0]):
        try:
            evaluate_run(_trained(recipe, stage, o["run"]),
                         EvalConfig(seed=draw, variant=Variant() if model else _variant(o),
                                    queries=o.get("queries", EvalConfig.queries)), model=model)
        except ValueError as exc:  # a split too small to measure
            raise RecipeError(f"stage {stage.name!r}: {exc}") from None


def _export(recipe: Recipe, stage: Stage) -> None:
    from trainer.export import export_run

    o = stage.options
    recipe.model.parent.mkdir(parents=True, exist_ok=True)
    print(export_run(_trained(recipe, stage, o["run"]), recipe.model, variant=_variant(o)), flush=True)


def _style(recipe: Recipe, stage: Stage) -> None:
    from trainer.style import style_run

    style_run(_trained(recipe, stage, stage.options["run"]), recipe.model)


def _card(recipe: Recipe, stage: Stage) -> None:
    from trainer.card import write_card

    print(write_card(_trained(recipe, stage, stage.options["run"]), recipe.model, recipe.card, recipe), flush=True)


STEPS = {"cache": _cache, "train": _train, "tune-tiles": _tune_tiles, "evaluate": _evaluate, "export": _export,
         "style": _style, "card": _card}
