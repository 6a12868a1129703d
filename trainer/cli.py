"""`python -m trainer COMMAND`: the Shazamlet trainer. `recipe` runs every stage that makes a model file
(cache, train, tune-tiles, evaluate, export, style, report); each stage is also a command of its own."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shazamlet.config import IndexConfig
from trainer.objectives import OBJECTIVES


def _train(a: argparse.Namespace) -> int:
    from trainer.loop import Run, Trainer, TrainingDiverged
    from trainer.settings import TrainConfig

    out = Path(a.out or f"runs/{a.objective.replace('+', '_')}")
    if a.resume and (out / "run.json").exists():
        run = Run(out)
        if a.epochs is not None and a.epochs != run.config.epochs:  # a longer (or shorter) schedule from here on
            print(f"note: epochs {run.config.epochs} -> {a.epochs} (the cosine schedule stretches)", file=sys.stderr)
            run.set_epochs(a.epochs)
        run.make_room_views()  # finishes copies an interrupted start left undone
    else:
        if (out / "checkpoint.pt").exists():
            print(f"{out} already holds a run: pass --resume to continue it, or another --out", file=sys.stderr)
            return 2
        if not a.data or not a.objective:
            print(f"{out} is not a run to resume (no run.json): a new one needs --data and --objective" if a.resume
                  else "train needs --data and --objective", file=sys.stderr)
            return 2
        cfg = TrainConfig(data=str(Path(a.data).resolve()), objective=a.objective, out=str(out),
                          noise=str(Path(a.noise).resolve()) if a.noise else None, cache=a.cache,
                          epochs=10 if a.epochs is None else a.epochs, steps_per_epoch=a.steps_per_epoch, batch=a.batch, lr=a.lr,
                          temperature=a.temperature, cls_weight=a.cls_weight, seed=a.seed, max_songs=a.max_songs,
                          minutes=a.minutes, fingerprint_dim=a.fingerprint_dim, room_views=a.room_views,
                          p_room=a.p_room, p_colour=a.p_colour, centre_bands=a.centre_bands)
        try:
            run = Run.create(cfg)
        except ValueError as exc:  # the data folder: a manifest that does not read, no genre folders
            print(f"python -m trainer train: {exc}", file=sys.stderr)
            return 2
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    try:
        trainer = Trainer(run, threads=a.threads)
    except (ValueError, FileNotFoundError) as exc:  # the data: no songs, none cached, a genre of one song
        print(f"python -m trainer train: {exc}", file=sys.stderr)
        return 2
    if trainer.resume():
        print(f"resumed at step {trainer.step} ({trainer.elapsed / 60:.1f} min trained)", flush=True)
    elif a.init_from:
        trainer.init_from(a.init_from)
        print(f"weights initialised from {a.init_from} (fresh optimizer and schedule)", flush=True)
    if a.minutes and a.resume:
        trainer.cfg.minutes = a.minutes
    print(f"{run.folder}: {trainer.cfg.objective}, {len(trainer.train_data)} training songs, "
          f"{trainer.steps_per_epoch} steps/epoch x {trainer.cfg.epochs} epochs, batch {trainer.cfg.batch}, "
          f"device {trainer.device}", flush=True)
    try:
        trainer.train()
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {trainer.step}: saved; `--resume` continues", file=sys.stderr)
        return 130
    except TrainingDiverged as exc:
        print(f"python -m trainer train: {exc}", file=sys.stderr)
        return 2
    return 0


def _cache(a: argparse.Namespace) -> int:
    from trainer.cache import build_cache

    try:
        print(build_cache(a.data, a.noise, a.cache))
    except ValueError as exc:  # no music where it was looked for
        print(f"python -m trainer cache: {exc}", file=sys.stderr)
        return 2
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    from trainer.evaluate import EvalConfig, evaluate_run

    try:
        evaluate_run(a.run, EvalConfig(library_songs=a.library_songs, unknown_songs=a.unknown_songs,
                                       queries=a.queries, seed=a.seed, data=a.data, variant=_variant(a),
                                       library_hop_frames=a.library_hop, between_tiles=not a.no_between_tiles,
                                       landmarks=not a.no_landmarks),
                     model=a.model)
    except ValueError as exc:  # a split too small to measure
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _export(a: argparse.Namespace) -> int:
    from trainer.export import StaleEvaluation, export_run

    try:
        path = export_run(a.run, a.to or Path(a.run) / "model.pt", half=not a.fp32, variant=_variant(a))
    except StaleEvaluation as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _tune_tiles(a: argparse.Namespace) -> int:
    from trainer.loop import Run
    from trainer.tune_tiles import TuneConfig, tune_tiles, tuned_path

    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    run = Run(a.run)
    state = tune_tiles(run, TuneConfig(tile_dim=a.tile_dim, minutes=a.minutes, steps=a.steps, lr=a.lr, batch=a.batch,
                                       residual=a.residual, residual_lr=a.residual_lr))
    first, last = state["history"][0], state["history"][-1]
    print(f"{tuned_path(run, a.tile_dim, a.residual)}: {state['step']} steps, {state['minutes']:.1f} min; validation "
          f"top-1 {first['val_top1']:.3f} ({state.get('start', 'closed form')}) -> {last['val_top1']:.3f}")
    return 0


def _graph(a: argparse.Namespace) -> int:
    from trainer.export import add_graph

    print(add_graph(Path(a.model), Path(a.to) if a.to else None))
    return 0


def _style(a: argparse.Namespace) -> int:
    from shazamlet.model import ModelError
    from trainer.style import StyleConfig, style_run

    try:
        style_run(a.run, a.model, a.to, StyleConfig(tiles_per_song=a.tiles_per_song, c=a.c, seed=a.seed))
    except (ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _variant(a: argparse.Namespace):
    from trainer.variant import Variant

    return Variant(tile_dim=a.tile_dim, tile_weight=a.tile_weight, tile_residual=a.tile_residual)


def _variant_args(p: argparse.ArgumentParser) -> None:
    from trainer.variant import TILE_WEIGHT

    p.add_argument("--tile-dim", type=int, default=0,
                   help="append the run's tile fingerprint with this many dimensions (`tune-tiles --tile-dim D`)")
    p.add_argument("--tile-weight", type=float, default=TILE_WEIGHT,
                   help=f"its share of the cosine (default {TILE_WEIGHT})")
    p.add_argument("--tile-residual", type=int, default=0, metavar="C",
                   help="the one trained with a C-channel convolutional residual (`tune-tiles --residual C`)")


def _report(a: argparse.Namespace) -> int:
    from shazamlet.model import ModelError
    from trainer.card import write_card
    from trainer.recipe_file import load_recipe

    try:
        recipe = load_recipe(a.recipe) if a.recipe else None
        print(write_card(a.run, a.model, a.out, recipe))
    except (ValueError, FileNotFoundError, ModelError) as exc:  # RecipeError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _recipe(a: argparse.Namespace) -> int:
    from trainer.recipe import run_recipe
    from trainer.recipe_file import RecipeError, load_recipe

    try:
        recipe = load_recipe(a.file, {"data": a.data, "noise": a.noise, "cache": a.cache, "runs": a.runs,
                                        "model": a.model, "card": a.card})
        run_recipe(recipe, only=a.only, threads=a.threads)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train (or --resume) an encoder")
    t.add_argument("--data", help="one folder per genre (optional manifest.tsv)")
    t.add_argument("--noise", help="noise corpus (one folder per category)")
    t.add_argument("--objective", choices=OBJECTIVES)
    t.add_argument("--epochs", type=int, help="passes over the training songs (default 10)")
    t.add_argument("--steps-per-epoch", type=int, default=0)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--temperature", type=float, default=0.07)
    t.add_argument("--cls-weight", type=float, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-songs", type=int, default=0, help="train on a subset of the training songs")
    t.add_argument("--minutes", type=float, default=0.0, help="stop after this much training time")
    t.add_argument("--cache", default="cache", help="spectrogram cache folder")
    t.add_argument("--out", help="run folder (default runs/<objective>)")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--init-from", help="start from another run's weights, or a model file's encoder (fine-tuning)")
    t.add_argument("--fingerprint-dim", type=int, default=128, help="fingerprint size (contrastive objectives)")
    t.add_argument("--room-views", type=int, default=0,
                   help="waveform-degraded copies of each training song to draw positives from (computed once)")
    t.add_argument("--p-room", type=float, default=0.5, help="share of positives taken from those copies")
    t.add_argument("--p-colour", type=float, default=0.0,
                   help="share of mel-domain views strongly coloured (loudspeaker, resonant room)")
    t.add_argument("--centre-bands", action="store_true",
                   help="the encoder takes each band's mean out of a tile, so no fixed filter (microphone, "
                        "loudspeaker, room colouration) can move a fingerprint")
    t.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    t.set_defaults(fn=_train)

    c = sub.add_parser("cache", help="compute the spectrogram cache only")
    c.add_argument("--data", required=True)
    c.add_argument("--noise")
    c.add_argument("--cache", default="cache")
    c.set_defaults(fn=_cache)

    e = sub.add_parser("evaluate", help="a run's encoder (or --model file) through the app's recognizer: accuracy "
                                        "per condition and the threshold")
    e.add_argument("run")
    e.add_argument("--data", help="data folder (default: the run's)")
    e.add_argument("--model", help="evaluate this model file instead of the run's checkpoint")
    e.add_argument("--library-songs", type=int, default=60)
    e.add_argument("--unknown-songs", type=int, default=20)
    e.add_argument("--queries", type=int, default=120, help="queries per condition")
    e.add_argument("--seed", type=int, default=0)
    _variant_args(e)
    e.add_argument("--library-hop", type=int, default=IndexConfig.library_hop_frames,
                   help=f"library tile hop in frames (default: the app's, {IndexConfig.library_hop_frames})")
    e.add_argument("--no-between-tiles", action="store_true",
                   help="build the library without in-between tiles (the app keeps them; shazamlet/library/between.py)")
    e.add_argument("--no-landmarks", action="store_true",
                   help="build the library without spectral peaks: the fingerprints alone rank (shazamlet/landmarks.py)")
    e.set_defaults(fn=_evaluate)

    x = sub.add_parser("export", help="write the run's encoder as the app's model file")
    x.add_argument("run")
    x.add_argument("--to", help="the model file to write (default RUN/model.pt; the app's bundled one is "
                                "shazamlet/model/shazamlet-default.pt in a checkout)")
    x.add_argument("--fp32", action="store_true", help="keep float32 weights (default: float16)")
    _variant_args(x)
    x.set_defaults(fn=_export)

    u = sub.add_parser("tune-tiles", help="train a run's fingerprint of the tile itself contrastively (resumable)")
    u.add_argument("run")
    u.add_argument("--tile-dim", type=int, required=True)
    u.add_argument("--minutes", type=float, default=30.0,
                   help="training time in all, the steps' own time as in `train` (run again with more to continue)")
    u.add_argument("--steps", type=int, default=0, help="or stop after this many steps in all")
    u.add_argument("--lr", type=float, default=1e-4)
    u.add_argument("--batch", type=int, default=512)
    u.add_argument("--residual", type=int, default=0, metavar="C",
                   help="train a C-channel convolutional residual with the linear map, from the trained linear "
                        "projection if there is one, else from the closed form (RUN/tiles<D>r<C>.pt)")
    u.add_argument("--residual-lr", type=float, default=3e-4)
    u.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    u.set_defaults(fn=_tune_tiles)

    s = sub.add_parser("style", help="fit the style head (genre of songs not in the library) into a model file")
    s.add_argument("run", help="the run whose training songs it learns from (and whose held-out packages judge it)")
    s.add_argument("--model", default="shazamlet/model/shazamlet-default.pt", help="the model file to add it to")
    s.add_argument("--to", help="write here instead of replacing --model")
    s.add_argument("--tiles-per-song", type=int, default=16, help="tiles drawn per song (each clean and degraded)")
    s.add_argument("--c", type=float, default=0.01, help="inverse regularisation of the logistic regression")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=_style)

    g = sub.add_parser("graph", help="write the encoder's ONNX graph into a model file (the app runs it on a CPU)")
    g.add_argument("model", help="the model file, e.g. shazamlet/model/shazamlet-default.pt")
    g.add_argument("--to", help="write here instead of replacing MODEL")
    g.set_defaults(fn=_graph)

    r = sub.add_parser("report", help="the model card of a model file evaluated on a run (both draws)")
    r.add_argument("run")
    r.add_argument("--model", default="shazamlet/model/shazamlet-default.pt")
    r.add_argument("--out", default="resources/report", help="folder of MODEL_CARD.md and its figures")
    r.add_argument("--recipe", help="the recipe that makes it: its stages and known limits go in the card")
    r.set_defaults(fn=_report)

    rc = sub.add_parser("recipe", help="every stage of a model, from music folders to model file and card (resumes)")
    rc.add_argument("file", help="a recipe, e.g. trainer/recipes/default.toml")
    rc.add_argument("--data", help="music, one folder per genre (instead of the recipe's)")
    rc.add_argument("--noise", help="noise recordings and impulse responses (instead of the recipe's)")
    rc.add_argument("--cache", help="spectrogram cache folder (instead of the recipe's)")
    rc.add_argument("--runs", help="folder of the stages' runs (instead of the recipe's)")
    rc.add_argument("--model", help="the model file to write (instead of the recipe's, e.g. to keep the bundled one)")
    rc.add_argument("--card", help="folder of the model card and its figures (instead of the recipe's)")
    rc.add_argument("--only", nargs="+", metavar="STAGE", help="run just these stages, done or not")
    rc.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    rc.set_defaults(fn=_recipe)

    a = p.parse_args(argv)
    run = getattr(a, "run", None)
    if a.cmd != "train" and isinstance(run, str) and not (Path(run) / "run.json").exists():
        p.error(f"{run} is not a run folder (no run.json): make one with `python -m trainer train`")
    _check(p, a)
    from shazamlet.model import ModelError

    try:
        return a.fn(a)
    except (OSError, ModelError) as exc:  # a path that is missing, a file, not writable; not a model file
        print(f"python -m trainer {a.cmd}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\npython -m trainer {a.cmd}: interrupted", file=sys.stderr)
        return 130


def _check(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """One line, not a traceback, for what can be told before any work starts."""
    if a.cmd == "train":
        from trainer.settings import SETTING_RANGES, setting_problem

        if problem := setting_problem({k: v for k, v in vars(a).items() if k in SETTING_RANGES}):
            key, words = problem
            p.error(f"train: --{key.replace('_', '-')} {getattr(a, key)}: {words}")
        if not a.objective and not (a.resume and a.out):
            p.error(f"train needs --objective (one of {', '.join(OBJECTIVES)}) and --data, or --resume --out RUN")
    if getattr(a, "threads", 0) < 0:
        p.error(f"{a.cmd}: --threads {a.threads}: at least 1 (0: all cores)")
    if a.cmd in ("evaluate", "tune-tiles"):
        from trainer.settings import setting_problem
        from trainer.recipe_file import STAGE_RANGES

        ranges = {**STAGE_RANGES[a.cmd], **({"library_songs": (1, None, False), "unknown_songs": (0, None, False),
                                              "seed": (0, None, False)} if a.cmd == "evaluate" else {})}
        if problem := setting_problem(vars(a), ranges):
            p.error(f"{a.cmd}: --{problem[0].replace('_', '-')} {getattr(a, problem[0])}: {problem[1]}")
    if a.cmd == "tune-tiles":
        from trainer.variant import check_tile_dim

        try:
            check_tile_dim(a.tile_dim)
        except ValueError as exc:
            p.error(f"tune-tiles: --tile-dim: {exc}")
    run = getattr(a, "run", None)
    if (a.cmd in ("evaluate", "export", "tune-tiles") and isinstance(run, str) and not getattr(a, "model", None)
            and not (Path(run) / "checkpoint.pt").exists()):
        p.error(f"{run} has not been trained yet (no checkpoint.pt): `python -m trainer train --resume --out {run}`")
    if hasattr(a, "tile_residual") and not getattr(a, "model", None):  # evaluate/export RUN: its tile fingerprint exists
        from trainer.loop import Run
        from trainer.tune_tiles import require_tuned

        try:
            variant = _variant(a)
            if variant.tile_dim:
                require_tuned(Run(a.run), variant.tile_dim, variant.tile_residual)
        except (ValueError, FileNotFoundError) as exc:
            p.error(str(exc))
