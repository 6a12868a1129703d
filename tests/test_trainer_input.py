"""The trainer on what users hand it: files the cache cannot read, settings out of range, a run folder
reused with other music, a moved corpus, training that diverges. Each is one line, told before the
hours of training it would otherwise cost, and nothing is recorded as done that is not."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from test_recipe import _fails_in_one_line
from test_trainer import RECIPE, _recipe
from trainer_corpus import RATE, make_run, song

from trainer.cache import build_cache
from trainer.cli import main
from trainer.loop import Run, Trainer, TrainingDiverged
from trainer.objectives import Objective
from trainer.settings import TrainConfig


def test_songs_the_cache_could_not_read_are_in_no_part_of_the_split(corpus, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(corpus["data"], data)
    (data / "jazz" / "empty.wav").write_bytes(b"")
    (data / "rock" / "notes.mp3").write_text("not audio")
    sf.write(data / "rock" / "short.wav", song(np.random.default_rng(1), 0.5), RATE)
    run = Run.create(TrainConfig(data=str(data), objective="contrastive", out=str(tmp_path / "run"),
                                 cache=str(tmp_path / "cache")), progress=False)
    in_split = [rel for side in ("train", "val", "test") for rel in run.info["split"][side]]
    assert sorted(in_split) == sorted(run.info["songs"]) and len(in_split) == 9  # the 9 readable songs
    assert not {"jazz/empty.wav", "rock/notes.mp3", "rock/short.wav"} & set(run.info["songs"])


def test_a_genre_classifier_needs_two_genres(corpus, tmp_path):
    data = tmp_path / "one"
    shutil.copytree(corpus["data"] / "rock", data / "rock")
    with pytest.raises(ValueError, match="at least 2 genre folders"):
        Run.create(TrainConfig(data=str(data), objective="contrastive+classifier", out=str(tmp_path / "run"),
                               cache=str(tmp_path / "cache")), progress=False)


@pytest.mark.parametrize("setting, message", [
    ("temperature = 0", "`temperature = 0`: more than 0"),
    ("lr = -1e-3", "`lr = -0.001`: more than 0 and at most 1"),
    ("max_speed_change = 2.0", "`max_speed_change = 2.0`: between 0 and 0.5"),
    ("babble_voices = [6, 2]", "the low end first"),
    ("p_colour = 3", "`p_colour = 3`: between 0 and 1"),
    ("fingerprint_dim = 0", "`fingerprint_dim = 0`: at least 1"),
])
def test_training_settings_out_of_range_are_told_before_anything_runs(corpus, tmp_path, capsys, setting, message):
    path = _recipe(corpus, tmp_path, RECIPE.replace("epochs = 1", f"epochs = 1\n{setting}", 1))
    _fails_in_one_line(["recipe", str(path)], capsys, message)
    assert not (tmp_path / "runs" / "base").exists()


@pytest.mark.parametrize("flags, message", [
    ([], "train needs --objective"),
    (["--objective", "contrastive", "--temperature", "0"], "--temperature 0.0: more than 0"),
    (["--objective", "contrastive", "--fingerprint-dim", "-3"], "--fingerprint-dim -3: at least 1"),
    (["--objective", "contrastive", "--threads", "-1"], "--threads -1: at least 1"),
])
def test_train_on_the_command_line_checks_its_flags_as_a_recipe_does(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err


def test_a_run_folder_is_not_resumed_with_other_music_and_follows_a_moved_corpus(corpus, tmp_path, capsys):
    path = _recipe(corpus, tmp_path)
    assert main(["recipe", str(path), "--only", "cache", "base"]) == 0
    other = tmp_path / "other"
    for g in ("jazz", "rock"):
        (other / g).mkdir(parents=True)
        for i in range(2):
            sf.write(other / g / f"new{i}.wav", song(np.random.default_rng(10 + i), 9.0), RATE)
    capsys.readouterr()
    _fails_in_one_line(["recipe", str(path), "--data", str(other)], capsys,
                       f"stage 'base' was made from the songs of {corpus['data']}")
    grown = tmp_path / "grown"
    shutil.copytree(corpus["data"], grown)  # the same songs and one more
    _write_songs(grown, ["rock/extra.wav"])
    _fails_in_one_line(["recipe", str(path), "--data", str(grown)], capsys, "(0 of its 9 missing, 1 new)")
    moved = tmp_path / "moved"
    shutil.copytree(corpus["data"], moved)  # the same songs elsewhere
    assert main(["recipe", str(path), "--data", str(moved), "--only", "cache"]) == 0
    assert "base's songs are now read from" in capsys.readouterr().out
    assert Run(tmp_path / "runs" / "base").config.data == str(moved.resolve())


def test_evaluating_a_run_whose_music_moved_says_where_to_find_it(corpus, tmp_path, capsys):
    run = make_run(corpus, "contrastive", "moved-eval")
    Trainer(run, progress=False).train()
    split = run.info["split"]  # the tiny corpus' split tests nothing: four of its songs are made test songs
    split["test"] = [rel for rel in run.info["songs"] if not rel.startswith("mixed/")][:4]
    (run.folder / "run.json").write_text(json.dumps(run.info))
    data = run.config.data
    assert main(["evaluate", str(run.folder), "--queries", "4", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{run.folder} was trained on the songs of {data}; --data names where they are now" in err
    assert "\n" not in err and not list(run.folder.glob("eval*"))  # nothing written


def test_training_that_diverges_stops_before_its_weights_do_and_is_not_done(corpus, tmp_path, monkeypatch, capsys):
    real = Objective.loss

    def nan_from_the_second_step(self, mods, batch, rng):
        loss, stats = real(self, mods, batch, rng)
        if nan_from_the_second_step.calls:
            loss, stats = loss * float("nan"), {**stats, "loss": float("nan")}
        nan_from_the_second_step.calls += 1
        return loss, stats

    nan_from_the_second_step.calls = 0
    monkeypatch.setattr(Objective, "loss", nan_from_the_second_step)
    trainer = Trainer(make_run(corpus, "contrastive", "diverges", steps_per_epoch=3), progress=False)
    with pytest.raises(TrainingDiverged, match="training diverged at step 1"):
        trainer.train()
    assert trainer.step == 1 and all(torch.isfinite(p).all() for p in trainer.mods.parameters())
    with torch.no_grad():  # a finite loss with infinite gradients: the weights themselves go
        next(trainer.mods.parameters()).fill_(float("inf"))
    with pytest.raises(TrainingDiverged, match="weights no longer numbers"):
        trainer.save()
    assert not trainer.run.checkpoint_path.exists()

    nan_from_the_second_step.calls = 0
    path = _recipe(corpus, tmp_path, RECIPE.replace("steps_per_epoch = 1", "steps_per_epoch = 3"))
    assert main(["recipe", str(path)]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # under the training's progress bar, ended
    assert last.startswith("error: stage 'base'") and "training diverged at step 1" in last and "Traceback" not in err
    assert "base" not in json.loads((tmp_path / "runs" / "recipe.json").read_text())


def test_the_app_tells_a_training_checkpoint_from_a_model_file(corpus):
    from shazamlet.model import ModelError, load_model

    run = make_run(corpus, "contrastive", "not-a-model")
    Trainer(run, progress=False).train()
    with pytest.raises(ModelError, match="a training run's checkpoint, not a model file: `python -m trainer export"):
        load_model(run.checkpoint_path)


def _write_songs(folder, names: list[str], seed: int = 20, seconds: float = 9.0) -> None:
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(folder / name, song(np.random.default_rng(seed + i), seconds), RATE)


def test_album_folders_inside_genre_folders_are_read_and_a_folder_of_genre_folders_is_pointed_at(tmp_path):
    from trainer.songs import scan_songs

    data = tmp_path / "music"
    _write_songs(data, ["rock/album one/a.wav", "rock/album two/b.flac", "jazz/c.wav", "jazz/_unused/d.wav"])
    assert [(s.rel, s.genre) for s in scan_songs(data)] == [
        ("jazz/c.wav", "jazz"), ("rock/album one/a.wav", "rock"), ("rock/album two/b.flac", "rock")]
    kaggle = tmp_path / "Data"  # GTZAN as Kaggle ships it: Data/genres_original/<genre>/...
    _write_songs(kaggle, ["genres_original/blues/b0.wav", "genres_original/jazz/j0.wav"])
    with pytest.raises(ValueError, match=f"are the genres, --data {kaggle / 'genres_original'}"):
        Run.create(TrainConfig(data=str(kaggle), objective="contrastive+classifier", out=str(tmp_path / "run"),
                               cache=str(tmp_path / "cache")), progress=False)


def test_silent_songs_and_noise_folders_without_categories_are_told(tmp_path, capsys):
    data, noise = tmp_path / "music", tmp_path / "noise"
    _write_songs(data, ["rock/a.wav", "jazz/b.wav"])
    sf.write(data / "rock" / "silence.wav", np.zeros(9 * RATE, np.float32), RATE)
    noise.mkdir()
    sf.write(noise / "talk.wav", song(np.random.default_rng(3), 3.0), RATE)  # loose: no category folder
    with pytest.raises(ValueError, match="no recordings in the category folders .*; 1 recordings lie in the folder"):
        build_cache(data, noise, tmp_path / "cache", progress=False)
    build_cache(data, None, tmp_path / "cache", progress=False)
    assert "rock/silence.wav: silent" in capsys.readouterr().out


def test_a_manifest_that_names_no_file_or_is_comma_separated_says_so(tmp_path, capsys):
    from trainer.songs import scan_songs

    data = tmp_path / "music"
    _write_songs(data, ["rock/a.wav", "jazz/b.wav"])
    (data / "manifest.tsv").write_text("file\tpackage\tsong_group\n/abs/rock/a.wav\tp\tg\nrock/a.wav\tp\tg\n")
    assert {s.rel: s.package for s in scan_songs(data)} == {"jazz/b.wav": "jazz/b.wav", "rock/a.wav": "p"}
    assert "note: 1 rows of" in capsys.readouterr().out
    (data / "manifest.tsv").write_text("file,package,song_group\nrock/a.wav,p,g\n")
    with pytest.raises(ValueError, match="it is read tab-separated, and holds commas"):
        scan_songs(data)


@pytest.mark.parametrize("where, message", [("folder", "is a folder"), ("file/m.pt", "is a file")])
def test_a_model_file_that_cannot_be_written_is_told_before_training(corpus, tmp_path, capsys, where, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    path = _recipe(corpus, tmp_path, RECIPE + '\n[[stage]]\nkind = "export"\nrun = "base"\n')
    _fails_in_one_line(["recipe", str(path), "--model", str(tmp_path / where)], capsys, message)
    assert not (tmp_path / "runs" / "base").exists()


def test_tuning_tiles_interrupted_keeps_its_fit_and_its_steps(corpus, monkeypatch, capsys):
    import trainer.tune_tiles as tt

    monkeypatch.setattr(tt, "TILE_FIT_PAIRS", 1024)
    run = make_run(corpus, "contrastive", "tiles-interrupted", fingerprint_dim=16)
    Trainer(run, progress=False).train()
    validate = tt._val_top1
    monkeypatch.setattr(tt, "_val_top1", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    cfg = tt.TuneConfig(tile_dim=8, steps=30, batch=64, val_every=100, val_tiles=256)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after the closed-form fit, before anything was trained
        tt.tune_tiles(run, cfg, progress=False)
    assert tt.load_tuned(run, 8)["start"] == "closed form" and tt.load_tuned(run, 8)["step"] == 0
    with pytest.raises(FileNotFoundError, match="interrupted before its first validation: run `python -m trainer"):
        tt.require_tuned(run, 8)  # what evaluate and export read: not a tuned projection yet

    monkeypatch.setattr(tt, "_val_top1", validate)
    monkeypatch.setattr("trainer.objectives.nt_xent", _interrupting_after(5))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C between validations
        tt.tune_tiles(run, cfg, progress=False)
    assert tt.load_tuned(run, 8)["step"] == 5 and "interrupted at step 5: saved" in capsys.readouterr().out


def _interrupting_after(steps: int):
    from trainer.objectives import nt_xent

    calls = []

    def loss(*args, **kw):
        if len(calls) == steps:
            raise KeyboardInterrupt
        calls.append(1)
        return nt_xent(*args, **kw)
    return loss
