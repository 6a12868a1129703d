"""A recipe file (TOML, e.g. `trainer/recipes/default.toml`): its folders and stages, read and checked.

Everything a stage will read from the file is checked when it is loaded, so a typo or a value out of range
is told in one line before hours of earlier stages run (`trainer.recipe` runs the stages).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

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
    from trainer.settings import TrainConfig, setting_problem
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
    from trainer.settings import setting_problem

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
