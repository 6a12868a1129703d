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
import re
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from trainer.atomic import write_json
from trainer.variant import Variant, check_tile_dim

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
    threads: int = 0  # CPU threads of the training stages (0: all cores); `run_recipe` sets it

    def run_folder(self, stage: str) -> Path:
        return self.runs / stage


def load_recipe(path: str | Path, overrides: dict | None = None) -> Recipe:
    """The recipe at `path`, with folders from `overrides` (the command line) instead of its own; relative
    folders are taken from the current directory, as the other trainer commands take them. Everything a stage
    will read from it is checked here, so a typo is told in one line before hours of earlier stages run."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{path}: {exc}") from None
    doc.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for key in ("data", "cache", "runs", "model", "card", "stage"):
        if key not in doc:
            raise RecipeError(f"{path}: no `{key}`")
    for key in ("data", "cache", "runs", "model", "card", "noise"):
        if key in doc and not isinstance(doc[key], str):
            raise RecipeError(f"{path}: `{key}` is not a folder name (got {doc[key]!r})")
    if not isinstance(doc["stage"], list) or not all(isinstance(raw, dict) for raw in doc["stage"]):
        raise RecipeError(f"{path}: `stage` is not a list of tables (write each stage as [[stage]])")
    if not isinstance(doc.get("train", {}), dict):
        raise RecipeError(f"{path}: `train` is not a table (write the shared training options under [train])")
    if unknown := sorted(set(doc) - _TOP_KEYS):
        raise RecipeError(f"{path}: unknown {', '.join(unknown)} (a recipe holds {', '.join(sorted(_TOP_KEYS))})")
    stages: list[Stage] = []
    for i, raw in enumerate(doc["stage"]):
        raw = dict(raw)
        name, kind = raw.pop("name", None), raw.pop("kind", None)
        if kind is None:
            raise RecipeError(f"{path}: stage {i + 1} has no `kind` (one of {', '.join(KINDS)})")
        if kind not in KINDS:
            raise RecipeError(f"{path}: stage {i + 1} has kind {kind!r}; one of {', '.join(KINDS)}")
        if name is not None and not (isinstance(name, str) and re.fullmatch(r"[\w-]+", name, re.ASCII)):
            raise RecipeError(f"{path}: stage {i + 1} has name {name!r}; a name is a word of letters, digits, "
                              "- and _ (its run's folder)")
        name = name or kind
        if name in (st.name for st in stages):
            raise RecipeError(f"{path}: two stages are named {name!r}")
        stage = Stage(name, kind, raw)
        _check_stage(path, stage, stages, dict(doc.get("train", {})))
        stages.append(stage)
    return Recipe(path, Path(doc["data"]), Path(doc["noise"]) if doc.get("noise") else None, Path(doc["cache"]),
                  Path(doc["runs"]), Path(doc["model"]), Path(doc["card"]), dict(doc.get("train", {})), stages,
                  str(doc.get("limits", "")))


# what a stage of each kind reads from its options: (name, type, required); `run` names a training stage
_STAGE_OPTIONS = {
    "tune-tiles": (("tile_dim", "int", True), ("minutes", "float", True), ("residual", "int", False)),
    "evaluate": (("tile_dim", "int", False), ("tile_weight", "float", False), ("residual", "int", False),
                 ("model", "bool", False), ("draws", "list[int]", False), ("queries", "int", False)),
    "export": (("tile_dim", "int", False), ("tile_weight", "float", False), ("residual", "int", False)),
}
_ON_A_RUN = ("tune-tiles", "evaluate", "export", "style", "card")
_TOP_KEYS = {"data", "noise", "cache", "runs", "model", "card", "limits", "train", "stage"}


def _check_stage(path: Path, stage: Stage, earlier: list[Stage], shared: dict) -> None:
    """RecipeError, one line, for what `stage` would otherwise fail on with a traceback when it runs."""
    where = f"{path}: stage {stage.name!r}"
    trained = {st.name for st in earlier if st.kind == "train"}
    refs = ["init_from"] if stage.kind == "train" else ["run"] if stage.kind in _ON_A_RUN else []
    for ref in refs:
        target = stage.options.get(ref)
        if target is None and ref == "run":
            raise RecipeError(f"{where}: no `run` (the training stage whose run it works on)")
        if target is None:
            continue
        if not isinstance(target, str) or target not in {st.name for st in earlier}:
            raise RecipeError(f"{where} refers to {target!r}, which is not an earlier stage")
        if target not in trained:
            raise RecipeError(f"{where}: `{ref} = {target!r}` is not a training stage")
    if stage.kind != "train":  # a training stage's options are TrainConfig's, checked below
        known = set(refs) | {key for key, _, _ in _STAGE_OPTIONS.get(stage.kind, ())}
        if unknown := sorted(set(stage.options) - known):
            raise RecipeError(f"{where}: unknown {', '.join(unknown)} (a {stage.kind} stage takes "
                              f"{', '.join(sorted(known)) or 'no options'})")
    for key, kind, required in _STAGE_OPTIONS.get(stage.kind, ()):
        if key not in stage.options and required:
            raise RecipeError(f"{where}: no `{key}`")
        if key in stage.options and not _of_type(stage.options[key], kind):
            raise RecipeError(f"{where}: `{key} = {stage.options[key]!r}` is not {_WORDS[kind]}")
    if stage.kind == "train":
        _check_training(where, {**shared, **stage.options})
    else:
        _check_options(where, stage)


def _check_training(where: str, opts: dict) -> None:
    """A training stage's options are TrainConfig's, each of its type (`epochs = "ten"` is told now, not as
    a traceback minutes into training, nor written into the stage's run.json)."""
    from trainer.loop import TrainConfig, setting_problem
    from trainer.objectives import OBJECTIVES

    opts = {k: v for k, v in opts.items() if k != "init_from"}
    types = {f.name: f.type for f in fields(TrainConfig) if f.name not in ("data", "out", "cache", "noise")}
    unknown = sorted(set(opts) - set(types))
    if unknown:
        folders = " (the recipe's folders are set at its top)" if set(unknown) & {"data", "noise", "cache", "out"} else ""
        raise RecipeError(f"{where}: unknown training options {', '.join(unknown)}{folders}")
    if "objective" not in opts:
        raise RecipeError(f"{where}: no `objective` (one of {', '.join(OBJECTIVES)}), in [train] or the stage")
    if opts["objective"] not in OBJECTIVES:
        raise RecipeError(f"{where}: `objective = {opts['objective']!r}`; one of {', '.join(OBJECTIVES)}")
    for key, value in opts.items():
        if not _of_type(value, types[key]):
            raise RecipeError(f"{where}: `{key} = {value!r}` is not {_WORDS.get(types[key], types[key])}")
    if problem := setting_problem(opts):
        raise RecipeError(f"{where}: `{problem[0]} = {opts[problem[0]]!r}`: {problem[1]}")


# the range of a number another stage reads, as `setting_problem` reads them; the command line's flags of the same
# name are held to it too (an evaluation's unknown songs get half its `queries`)
STAGE_RANGES = {"tune-tiles": {"minutes": (0, None, True), "residual": (0, None, False)},
                "evaluate": {"queries": (2, None, False)}}


def _check_options(where: str, stage: Stage) -> None:
    """A non-training stage's options in range, and its tile fingerprint one that can exist."""
    from trainer.loop import setting_problem

    o = stage.options
    if problem := setting_problem(o, STAGE_RANGES.get(stage.kind, {})):
        raise RecipeError(f"{where}: `{problem[0]} = {o[problem[0]]!r}`: {problem[1]}")
    if any(d < 0 for d in o.get("draws", [])):
        raise RecipeError(f"{where}: `draws = {o['draws']!r}`: draws are numbered from 0")
    try:
        Variant(o.get("tile_dim", 0), o.get("tile_weight", Variant.tile_weight), o.get("residual", 0))
        if stage.kind == "tune-tiles":
            check_tile_dim(o["tile_dim"])
    except ValueError as exc:
        raise RecipeError(f"{where}: {exc}") from None


_WORDS = {"int": "a whole number", "float": "a number", "float | None": "a number", "bool": "true or false",
          "str": "a string", "dict": "a table", "list[int]": "a list of whole numbers",
          "tuple[int, int]": "a pair of whole numbers [low, high]", "tuple[float, float]": "a pair of numbers [low, high]"}


def _of_type(value: object, kind: str) -> bool:
    """Whether a TOML value is of the (annotation) type `kind`; TOML has no null, so `X | None` takes an X."""
    kind = kind.removesuffix(" | None")
    if kind.startswith(("tuple[", "list[")):
        items = [k.strip() for k in kind[kind.index("[") + 1 : -1].split(",")]
        if not isinstance(value, list) or (kind.startswith("tuple[") and len(value) != len(items)):
            return False
        return all(_of_type(v, items[min(i, len(items) - 1)]) for i, v in enumerate(value))
    if kind in ("int", "float"):
        return isinstance(value, int if kind == "int" else (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool, "dict": dict}.get(kind, object))


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
    from trainer.loop import Run, TrainConfig, Trainer

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
    from trainer.loop import TrainConfig

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
