"""`python -m trainer recipe` and `report` on bad input: a recipe that cannot run (or cannot resume as written)
says why in one line, before any stage runs; and the default recipe run end to end at a tiny scale. Resuming a
recipe is in test_trainer.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_trainer import RECIPE, _recipe

from trainer.cli import main


def _fails_in_one_line(argv: list[str], capsys, message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err, err


def test_only_naming_an_unknown_stage_says_so(corpus, tmp_path, capsys):
    path = _recipe(corpus, tmp_path)
    _fails_in_one_line(["recipe", str(path), "--only", "cache", "rooom"], capsys, "no stage named 'rooom'")
    assert not (tmp_path / "runs" / "recipe.json").exists()  # nothing ran


@pytest.mark.parametrize("change, message", [
    (("[train]", 'train = "fast"\n[other]'), "`train` is not a table"),
    (('kind = "cache"', 'kind = "cache"\nname = 3'), "stage 1 has name 3"),
    (('kind = "cache"', 'kind = "cache"\nname = "../escaped"'), "has name '../escaped'; a name is a word"),
    (('kind = "cache"', 'cache = true'), "stage 1 has no `kind`"),
    (("epochs = 1", 'epochs = "ten"'), "epochs = 'ten'"),
    (("batch = 4", "batch = 4.5"), "batch = 4.5"),
    (("[train]", 'colour = "blue"\n[train]'), "unknown colour"),  # a top-level typo
    (('kind = "cache"', 'kind = "cache"\nqueries = 4'), "unknown queries (a cache stage takes no options)"),
    (("epochs = 1", "epochs = -1"), "`epochs = -1`: at least 1"),
    (("p_speed = 0.5", 'p_speed = "half"'), "p_speed = 'half'"),
    (('objective = "contrastive+classifier"', 'objective = "contrastive+cls"'), "objective"),
    (('objective = "contrastive+classifier"', ""), "no `objective`"),
    (("epochs = 1", "epochs = 1\nout = 'x'"), "unknown training options out"),
    (('init_from = "base"', "init_from = 1"), "refers to 1"),
    (('init_from = "base"', 'init_from = "cache"'), "not a training stage"),
])
def test_a_malformed_recipe_is_told_in_one_line_before_anything_runs(corpus, tmp_path, capsys, change, message):
    path = _recipe(corpus, tmp_path, RECIPE.replace(*change, 1))
    _fails_in_one_line(["recipe", str(path)], capsys, message)
    assert not (tmp_path / "runs" / "base").exists() and not (tmp_path / "runs" / "recipe.json").exists()


@pytest.mark.parametrize("text, message", [
    ('stage = "cache"\n', "`stage` is not a list of tables"),
    ("stage = [1, 2]\n", "`stage` is not a list of tables"),
    ('data = 3\nstage = []\n', "`data` is not a folder name"),
])
def test_a_recipe_that_is_not_made_of_tables_says_so(tmp_path, capsys, text, message):
    path = tmp_path / "r.toml"
    folders = "".join(f'{k} = "{tmp_path / k}"\n' for k in ("data", "cache", "runs", "model", "card") if k + " =" not in text)
    path.write_text(folders + text)
    _fails_in_one_line(["recipe", str(path)], capsys, message)


@pytest.mark.parametrize("extra, message", [
    ("", "no `run`"),
    ('run = "cache"', "not a training stage"),
    ('run = "base"\ntile_dim = "big"\nminutes = 1', "tile_dim"),
    ('run = "base"\ntile_dim = 8', "no `minutes`"),
    ('run = "base"\ntile_dim = -5\nminutes = 1', "1 to 4096 dimensions"),
    ('run = "base"\ntile_dim = 0\nminutes = 1', "1 to 4096 dimensions"),
    ('run = "base"\ntile_dim = 8\nresidual = -2\nminutes = 1', "`residual = -2`: at least 0"),
    ('run = "base"\ntile_dim = 8\nminutes = 0', "`minutes = 0`: more than 0"),
    ('run = "base"\nkind = "evaluate"\ntile_dim = 8\ntile_weight = 7.5', "between 0 and 1"),
    ('run = "base"\nkind = "evaluate"\nmodel = true\ndraws = [5, -1]', "`draws = [5, -1]`: draws are numbered from 0"),
])
def test_a_stage_on_a_run_names_a_training_stage_and_its_numbers(corpus, tmp_path, capsys, extra, message):
    kind = "" if "kind =" in extra else 'kind = "tune-tiles"\n'
    path = _recipe(corpus, tmp_path, RECIPE + f'\n[[stage]]\nname = "tiles"\n{kind}{extra}\n')
    _fails_in_one_line(["recipe", str(path)], capsys, message)


def test_a_trained_stage_whose_options_changed_is_not_resumed_or_skipped_as_if_they_had_not(corpus, tmp_path, capsys):
    path = _recipe(corpus, tmp_path)
    assert main(["recipe", str(path), "--only", "cache", "base"]) == 0
    capsys.readouterr()
    path.write_text(path.read_text().replace("epochs = 1", "epochs = 1\nlr = 0.01", 1))
    _fails_in_one_line(["recipe", str(path)], capsys, "lr = 0.01 (its run has 0.001)")
    _fails_in_one_line(["recipe", str(path), "--only", "base"], capsys, "lr = 0.01 (its run has 0.001)")
    assert not (tmp_path / "runs" / "room").exists()
    path.write_text(path.read_text().replace("lr = 0.01\n", "", 1).replace("epochs = 1", "epochs = 2", 1))
    _fails_in_one_line(["recipe", str(path)], capsys, "`--only base`")  # done: more epochs only when asked
    assert main(["recipe", str(path), "--only", "base"]) == 0  # ... which continues the run
    assert json.loads((tmp_path / "runs" / "base" / "metrics.json").read_text())[-1]["step"] == 2
    assert json.loads((tmp_path / "runs" / "base" / "run.json").read_text())["config"]["epochs"] == 2


def test_training_stages_keep_the_threads_asked_for(corpus, tmp_path, monkeypatch):
    import torch

    calls, real, before = [], torch.set_num_threads, torch.get_num_threads()
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n)))
    try:
        assert main(["recipe", str(_recipe(corpus, tmp_path)), "--only", "base", "--threads", "1"]) == 0
    finally:
        real(before)
    assert calls and set(calls) == {1}, calls


def test_a_missing_noise_folder_a_damaged_progress_file_or_an_untrained_stage_are_told_in_one_line(
        corpus, tmp_path, capsys):
    path = _recipe(corpus, tmp_path)
    _fails_in_one_line(["recipe", str(path), "--noise", str(tmp_path / "nowhere")], capsys, "nowhere is not a folder")
    _fails_in_one_line(["recipe", str(path), "--only", "room"], capsys, "'base' has not been trained")
    assert not (tmp_path / "runs" / "room").exists()  # told before its run was made
    (tmp_path / "runs" / "recipe.json").write_text("[1, 2")
    _fails_in_one_line(["recipe", str(path)], capsys, "recipe.json")


def test_report_on_a_damaged_evaluation_or_a_missing_model_file_says_so(corpus, tmp_path, capsys):
    from trainer_corpus import make_run

    from trainer.export import export_run
    from trainer.loop import Trainer

    run = make_run(corpus, "contrastive", "report-bad")
    argv = ["report", str(run.folder), "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "card")]
    _fails_in_one_line(argv, capsys, "model file not found")
    (tmp_path / "m.pt").write_text("a clip, say")
    _fails_in_one_line(argv, capsys, "m.pt: not a readable Shazamlet model file")  # not "no evaluation of m.pt"
    Trainer(run, progress=False).train()
    export_run(run.folder, tmp_path / "m.pt", graph=False)
    (run.folder / "eval-m").mkdir()
    (run.folder / "eval-m" / "eval.json").write_text('{"conditions": ')
    _fails_in_one_line(argv, capsys, "eval.json")


def test_the_card_gives_a_training_stage_its_training_time_over_all_its_runs(corpus, tmp_path):
    """An interrupted stage is finished by a later run of the recipe, whose record holds only that run's
    wall time: the card reads the stage's own training time instead."""
    from trainer.card import _stage_minutes
    from trainer.recipe_file import load_recipe

    recipe = load_recipe(_recipe(corpus, tmp_path))
    stages = {st.name: st for st in recipe.stages}
    (recipe.runs / "base").mkdir(parents=True)
    (recipe.runs / "base" / "metrics.json").write_text(json.dumps([{"minutes": 30.0}, {"minutes": 200.0}]))
    done = {"cache": {"minutes": 20.4}, "base": {"minutes": 109.0}}
    assert _stage_minutes(recipe, stages["base"], done) == "200"
    assert _stage_minutes(recipe, stages["cache"], done) == "20"
    assert _stage_minutes(recipe, stages["room"], done) == "-"  # not run yet


def test_the_command_line_can_send_the_model_and_its_card_elsewhere(corpus, tmp_path, monkeypatch):
    """A rebuild beside the bundled model: `--model` and `--card` replace the recipe's own paths."""
    import trainer.recipe

    seen = {}
    monkeypatch.setattr(trainer.recipe, "run_recipe", lambda recipe, only, threads: seen.update(recipe=recipe))
    path = _recipe(corpus, tmp_path)
    assert main(["recipe", str(path), "--model", str(tmp_path / "new.pt"), "--card", str(tmp_path / "new")]) == 0
    assert seen["recipe"].model == tmp_path / "new.pt" and seen["recipe"].card == tmp_path / "new"
    assert main(["recipe", str(path)]) == 0 and seen["recipe"].model == tmp_path / "m.pt"  # the recipe's own


def test_the_default_recipe_runs_every_stage_to_a_model_the_app_loads(tmp_path):
    """`trainer/recipes/default.toml` itself, every stage at a tiny scale (one step each, 6 queries per
    evaluation) on 32 gated-sine songs: the stages after training (tune-tiles, calibrate, export, style,
    measure, card) run only here before a full rebuild reaches them hours in."""
    import re

    import soundfile as sf
    from trainer_corpus import RATE, song, write_corpus

    from shazamlet.model.checkpoint import load_model

    small = write_corpus(tmp_path / "small")  # its noise folder
    rng = np.random.default_rng(1)
    for genre in ("jazz", "rock", "metal", "mixed"):
        (tmp_path / "data" / genre).mkdir(parents=True)
        for i in range(8):
            sf.write(tmp_path / "data" / genre / f"{genre}{i}.wav", song(rng, 12.0), RATE)
    text = (Path(__file__).parents[1] / "trainer" / "recipes" / "default.toml").read_text()
    for pattern, tiny in ((r"^batch = \d+", "batch = 4\nval_pairs = 8\nwarmup = 1"), (r"^steps_per_epoch = \d+", "steps_per_epoch = 1"),
                          (r"^epochs = \d+", "epochs = 1"), (r"^minutes = \d+", "minutes = 0.05"),
                          (r'^kind = "evaluate"', 'kind = "evaluate"\nqueries = 6')):
        text, n = re.subn(pattern, tiny, text, flags=re.M)
        assert n, pattern  # the recipe still sets it
    (tmp_path / "r.toml").write_text(text)
    argv = ["recipe", str(tmp_path / "r.toml"), "--data", str(tmp_path / "data"), "--noise", str(small["noise"]),
            "--cache", str(tmp_path / "cache"), "--runs", str(tmp_path / "runs"), "--model", str(tmp_path / "m.pt"),
            "--card", str(tmp_path / "card")]
    assert main(argv) == 0
    done = json.loads((tmp_path / "runs" / "recipe.json").read_text())
    assert list(done) == [st["name"] if "name" in st else st["kind"] for st in _stages(text)]
    assert done["style"]["model"] == str(tmp_path / "m.pt") and done["card"]["card"] == str(tmp_path / "card")
    model = load_model(tmp_path / "m.pt")
    calibrated = json.loads(next((tmp_path / "runs" / "room").glob("eval-tile*/eval.json")).read_text())
    assert model.graph is not None and model.meta.extra.get("style_head")
    assert model.meta.landmark_threshold == pytest.approx(calibrated["threshold"])  # the calibrate stage's, not a default
    card = (tmp_path / "card" / "MODEL_CARD.md").read_text()
    assert "| mic3: 3 s, laptop microphone in a room |" in card and "The music of `data/`" in card
    assert "6 queries of library songs" in card  # the stages' own `queries`


def _stages(text: str) -> list[dict]:
    import tomllib

    return tomllib.loads(text)["stage"]


@pytest.mark.parametrize("queries, message", [("1", "at least 2"), ('"6"', "is not")])
def test_an_evaluation_asks_for_at_least_two_queries(corpus, tmp_path, capsys, queries, message):
    path = _recipe(corpus, tmp_path, RECIPE + f'\n[[stage]]\nkind = "evaluate"\nrun = "room"\nqueries = {queries}\n')
    _fails_in_one_line(["recipe", str(path)], capsys, message)


def test_a_recipe_resumed_with_another_model_file_says_so_before_anything_runs(corpus, tmp_path, capsys):
    """`style` adds its head to the model file `export` wrote: a resume naming another one would mix them."""
    path = _recipe(corpus, tmp_path)
    (tmp_path / "runs").mkdir()
    done = {name: {"kind": kind, "minutes": 0.0, "device": "cpu", "finished": "-"} for name, kind in
            (("cache", "cache"), ("base", "train"), ("room", "train"))}
    done["room"]["model"] = str(tmp_path / "other.pt")  # as an `export` stage records it
    (tmp_path / "runs" / "recipe.json").write_text(json.dumps(done))
    _fails_in_one_line(["recipe", str(path)], capsys, f"used --model {tmp_path / 'other.pt'}, not {tmp_path / 'm.pt'}")
    assert main(["recipe", str(path), "--model", str(tmp_path / "other.pt")]) == 0  # the same file: nothing left to do
