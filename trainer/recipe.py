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
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from trainer.variant import Variant

KINDS = ("cache", "train", "tune-tiles", "evaluate", "export", "style", "card")


class RecipeError(ValueError):
    """A recipe that cannot run as written: one line for the user."""


@dataclass
class Stage:
    name: str
    kind: str
    options: dict = field(default_factory=dict)


@dataclass
class Recipe:
    path: Path
    data: Path  # music, one folder per genre (the corpus, GTZAN or FMA style)
    noise: Path | None  # noise recordings and room impulse responses (optional)
    cache: Path
    runs: Path  # each training stage's run folder is runs/<stage name>
    model: Path  # the model file written by `export`
    card: Path  # the folder of the model card and its figures
    train: dict  # options every `train` stage shares
    stages: list[Stage]
    limits: str = ""  # the model card's known limits (what numbers cannot say)

    def run_folder(self, stage: str) -> Path:
        return self.runs / stage


def load_recipe(path: str | Path, overrides: dict | None = None) -> Recipe:
    """The recipe at `path`, with folders from `overrides` (the command line) instead of its own; relative
    folders are taken from the current directory, as the other trainer commands take them."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{path}: {exc}") from None
    doc.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for key in ("data", "cache", "runs", "model", "card", "stage"):
        if key not in doc:
            raise RecipeError(f"{path}: no `{key}`")
    stages, seen = [], set()
    for i, raw in enumerate(doc["stage"]):
        raw = dict(raw)
        name, kind = raw.pop("name", None), raw.pop("kind", None)
        if kind not in KINDS:
            raise RecipeError(f"{path}: stage {i + 1} has kind {kind!r}; one of {', '.join(KINDS)}")
        name = name or kind
        if name in seen:
            raise RecipeError(f"{path}: two stages are named {name!r}")
        seen.add(name)
        for ref in ("init_from", "run"):
            if isinstance(raw.get(ref), str) and raw[ref] not in seen:
                raise RecipeError(f"{path}: stage {name!r} refers to {raw[ref]!r}, which is not an earlier stage")
        stages.append(Stage(name, kind, raw))
    noise = doc.get("noise")
    return Recipe(path, Path(doc["data"]), Path(noise) if noise else None, Path(doc["cache"]), Path(doc["runs"]),
                  Path(doc["model"]), Path(doc["card"]), dict(doc.get("train", {})), stages,
                  str(doc.get("limits", "")))


class Progress:
    """`<runs>/recipe.json`: which stages are done, when, and how long each took (written atomically)."""

    def __init__(self, runs: Path) -> None:
        self.path = runs / "recipe.json"
        self.done: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def finish(self, stage: Stage, minutes: float, device: str) -> None:
        self.done[stage.name] = {"kind": stage.kind, "minutes": round(minutes, 1), "device": device,
                                 "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.done, indent=1))
        tmp.replace(self.path)


def run_recipe(recipe: Recipe, only: list[str] | None = None, threads: int = 0) -> None:
    """Every stage not yet done (or just those in `only`, done or not), in order."""
    import torch

    from trainer.loop import pick_device

    if not recipe.data.is_dir():
        raise RecipeError(f"{recipe.data} is not a folder of music: lay out the corpus with "
                          f"`../shared/corpus/build.sh DIR` or pass --data DIR (one folder per genre)")
    if threads:
        torch.set_num_threads(threads)
    recipe.runs.mkdir(parents=True, exist_ok=True)
    progress = Progress(recipe.runs)
    device = pick_device().type
    for stage in recipe.stages:
        if (only and stage.name not in only) or (not only and stage.name in progress.done):
            continue
        print(f"== {stage.name} ({stage.kind}) ==", flush=True)
        started = time.monotonic()
        STEPS[stage.kind](recipe, stage)
        progress.finish(stage, (time.monotonic() - started) / 60, device)


def _cache(recipe: Recipe, stage: Stage) -> None:
    from trainer.cache import build_cache

    print(build_cache(str(recipe.data), str(recipe.noise) if recipe.noise else None, str(recipe.cache)), flush=True)


def _train(recipe: Recipe, stage: Stage) -> None:
    from trainer.loop import Run, TrainConfig, Trainer

    opts = {**recipe.train, **stage.options}
    init = opts.pop("init_from", None)
    folder = recipe.run_folder(stage.name)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise RecipeError(f"{recipe.path}: stage {stage.name!r}: unknown training options {', '.join(unknown)}")
    if (folder / "run.json").exists():
        run = Run(folder)
    else:
        run = Run.create(TrainConfig(data=str(recipe.data.resolve()), out=str(folder), cache=str(recipe.cache),
                                     noise=str(recipe.noise.resolve()) if recipe.noise else None, **opts))
    run.make_room_views()  # finishes copies an interrupted start left undone
    trainer = Trainer(run)
    if trainer.resume():
        print(f"resumed at step {trainer.step} ({trainer.elapsed / 60:.1f} min trained)", flush=True)
    elif init:
        trainer.init_from(recipe.run_folder(init))
    trainer.train()


def _variant(opts: dict) -> Variant:
    return Variant(tile_dim=opts.get("tile_dim", 0), tile_weight=opts.get("tile_weight", Variant.tile_weight),
                   tile_residual=opts.get("residual", 0))


def _tune_tiles(recipe: Recipe, stage: Stage) -> None:
    from trainer.loop import Run
    from trainer.tune_tiles import TuneConfig, tune_tiles

    o = stage.options
    tune_tiles(Run(recipe.run_folder(o["run"])), TuneConfig(tile_dim=o["tile_dim"], minutes=o["minutes"],
                                                            residual=o.get("residual", 0)))


def _evaluate(recipe: Recipe, stage: Stage) -> None:
    from trainer.evaluate import EvalConfig, evaluate_run

    o = stage.options
    model = str(recipe.model) if o.get("model") else None
    for draw in o.get("draws", [0]):
        evaluate_run(recipe.run_folder(o["run"]), EvalConfig(seed=draw, variant=Variant() if model else _variant(o)),
                     model=model)


def _export(recipe: Recipe, stage: Stage) -> None:
    from trainer.export import export_run

    o = stage.options
    recipe.model.parent.mkdir(parents=True, exist_ok=True)
    print(export_run(recipe.run_folder(o["run"]), recipe.model, variant=_variant(o)), flush=True)


def _style(recipe: Recipe, stage: Stage) -> None:
    from trainer.style import style_run

    style_run(recipe.run_folder(stage.options["run"]), recipe.model)


def _card(recipe: Recipe, stage: Stage) -> None:
    from trainer.card import write_card

    print(write_card(recipe.run_folder(stage.options["run"]), recipe.model, recipe.card, recipe), flush=True)


STEPS = {"cache": _cache, "train": _train, "tune-tiles": _tune_tiles, "evaluate": _evaluate, "export": _export,
         "style": _style, "card": _card}
