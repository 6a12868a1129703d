"""`python -m trainer` as a user runs it on bad input: a data folder without music, a run not trained yet,
numbers that cannot work, Ctrl-C, a missing extra, evaluations of another step or file, silent songs: one
line each (or the work kept), never a traceback. The trainer's own behaviour is in test_trainer.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from trainer_corpus import RATE, make_run

from shazamlet.model import load_model
from trainer.loop import Trainer
from trainer.songs import Song


def test_evaluating_a_split_too_small_to_measure_says_so_in_one_line(corpus, capsys):
    from trainer.cli import main

    run = make_run(corpus, "contrastive", "small-split")  # 9 songs: no labelled test song to build a library from
    Trainer(run, progress=False).train()
    assert main(["evaluate", str(run.folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs at least 2 labelled test songs" in err and "\n" not in err and "Traceback" not in err


def test_training_on_a_folder_without_music_says_so_in_one_line(tmp_path, capsys):
    """Genre folders with no audio in them (a wrong path, files not copied yet): one line, not a traceback."""
    from trainer.cli import main

    for genre in ("rock", "jazz"):
        (tmp_path / "music" / genre).mkdir(parents=True)
        (tmp_path / "music" / genre / "notes.txt").write_text("not audio")
    args = ["train", "--data", str(tmp_path / "music"), "--objective", "contrastive", "--epochs", "1",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m trainer train: no audio files in the genre folders") and "\n" not in err
    assert "Traceback" not in err
    (tmp_path / "music" / "loose.wav").write_bytes(b"")  # a user's files not sorted into genre folders yet
    assert main(["cache", "--data", str(tmp_path / "music"), "--cache", str(tmp_path / "cache")]) == 2
    assert "1 audio files lie in the folder itself" in capsys.readouterr().err


def test_the_trainer_without_its_extra_says_what_to_install(monkeypatch, capsys):
    """The app installs without scipy, matplotlib and scikit-learn; the trainer names the extra to add."""
    import runpy

    import trainer.cli

    def missing(argv=None):
        raise ModuleNotFoundError("No module named 'scipy'", name="scipy")

    monkeypatch.setattr(trainer.cli, "main", missing)
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("trainer", run_name="__main__")
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "scipy is not installed" in err and '".[train]"' in err and "\n" not in err
    monkeypatch.setattr(trainer.cli, "main", lambda argv=None: (_ for _ in ()).throw(ModuleNotFoundError("x", name="numpy")))
    with pytest.raises(ModuleNotFoundError):  # anything else is a real error, shown as one
        runpy.run_module("trainer", run_name="__main__")


def test_ctrl_c_while_training_keeps_the_steps_done_and_resume_goes_on(corpus, monkeypatch, capsys):
    """Ctrl-C mid-epoch saves the steps done so far (one line, no traceback); `--resume` starts there."""
    from trainer.cli import main
    from trainer.objectives import Objective

    run = make_run(corpus, "contrastive", "interrupted", steps_per_epoch=6)  # one epoch: no checkpoint before its end
    real, calls = Objective.loss, []

    def loss(self, *args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(Objective, "loss", loss)
    assert main(["train", "--resume", "--out", str(run.folder)]) == 130
    err = capsys.readouterr().err
    assert "interrupted at step 3: saved" in err and "Traceback" not in err, err
    monkeypatch.setattr(Objective, "loss", real)
    trainer = Trainer(run, progress=False)
    assert trainer.resume() and trainer.step == 3


def test_what_a_user_can_get_wrong_on_the_command_line_is_one_line(corpus, tmp_path, capsys):
    """Paths that are missing or files, impossible numbers, a run never trained, a manifest without its
    `file` column: each one line naming what is wrong, nothing written where it should not be."""
    from trainer.cli import main

    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    (tmp_path / "bad" / "rock").mkdir(parents=True)
    (tmp_path / "bad" / "manifest.tsv").write_text("path\tgenre\nrock/a.wav\trock\n")
    half = make_run(corpus, "contrastive", "never-trained")  # run.json, no checkpoint
    cases = [
        (["train", "--data", str(tmp_path / "nope"), "--objective", "contrastive", "--out", str(tmp_path / "r1")],
         "nope"),
        (["train", "--data", str(corpus["data"]), "--objective", "contrastive", "--out", str(afile)], "afile.txt"),
        (["train", "--data", str(corpus["data"]), "--objective", "contrastive", "--batch", "0"], "--batch"),
        (["train", "--data", str(corpus["data"]), "--objective", "contrastive", "--epochs", "-3"], "--epochs"),
        (["train", "--data", str(corpus["data"]), "--objective", "contrastive", "--epochs", "0"], "--epochs"),
        (["train", "--data", str(tmp_path / "bad"), "--objective", "contrastive", "--out", str(tmp_path / "r2")],
         "no `file` column"),
        (["evaluate", str(half.folder)], "has not been trained yet"),
        (["export", str(half.folder)], "has not been trained yet"),
    ]
    for args, says in cases:
        try:
            code = main(args)
        except SystemExit as stop:  # what argparse can tell before any work
            code = stop.code
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and says in err[-1] and not any("Traceback" in line for line in err), (args, err)
    assert afile.read_text() == "x"


def test_export_writes_into_the_run_unless_told_where(corpus, tmp_path, monkeypatch):
    """Run from anywhere, `export RUN` must not write a `shazamlet/` folder there (it would hide the app's
    package, or replace the shipped model in a checkout)."""
    from trainer.cli import main

    run = make_run(corpus, "contrastive", "export-here")
    Trainer(run, progress=False).train()
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(run.folder)]) == 0
    assert (run.folder / "model.pt").exists() and not (tmp_path / "shazamlet").exists()
    load_model(run.folder / "model.pt")


def test_an_evaluation_of_another_step_or_another_file_is_not_used(corpus, tmp_path):
    """export's threshold comes only from an evaluation of the step it exports; a card's numbers only from
    evaluations of that very model file (two files named m.pt share a folder name)."""
    from shazamlet.files import file_sha256
    from trainer.card import write_card
    from trainer.evaluate import CONDITIONS
    from trainer.export import StaleEvaluation, export_run

    run = make_run(corpus, "contrastive", "stale")
    Trainer(run, progress=False).train()
    conds = {c: {"top1": 0.9, "top2": 1.0, "accepted_correct": 0.8, "unknown_rejected": 0.97, "genre_known": 0.5,
                 "genre_unknown": 0.4, "n_known": 12, "n_unknown": 6}
             for c, _ in CONDITIONS}
    (run.folder / "eval").mkdir()
    (run.folder / "eval" / "eval.json").write_text(json.dumps({"threshold": 0.3, "conditions": conds, "step": 99}))
    with pytest.raises(StaleEvaluation, match="measured step 99"):
        export_run(run.folder, tmp_path / "m.pt")
    (run.folder / "eval" / "eval.json").write_text(json.dumps({"threshold": 0.3, "conditions": conds, "step": 1}))
    model = export_run(run.folder, tmp_path / "m.pt")
    assert load_model(model).meta.threshold == 0.3
    other = tmp_path / "other.pt"
    other.write_bytes(b"another file")
    (run.folder / "eval-m").mkdir()
    doc = {"threshold": 0.3, "conditions": conds, "library_songs": 6, "unknown_songs": 2}
    (run.folder / "eval-m" / "eval.json").write_text(json.dumps({**doc, "model_sha256": file_sha256(other)}))
    with pytest.raises(ValueError, match="measured another model file"):
        write_card(run.folder, model, tmp_path / "card")
    (run.folder / "eval-m" / "eval.json").write_text(json.dumps({**doc, "model_sha256": file_sha256(model)}))
    assert write_card(run.folder, model, tmp_path / "card").exists()


def test_silent_songs_leave_no_tsne_map_and_no_error(random_embedder, tmp_path):
    """An evaluation of songs without sound (a user's broken files) must not end in t-SNE's error."""
    from trainer.plots import tsne_png

    songs = [Song(f"/x/{g}/{i}.wav", f"{g}/{i}.wav", g, f"{g}/{i}", f"{g}/{i}") for g in ("a", "b") for i in range(2)]
    waves = {s.rel: np.zeros(10 * RATE, np.float32) for s in songs}
    tsne_png(random_embedder, songs[:2], songs[2:], waves, tmp_path / "tsne.png", 8, "silent")
    assert not (tmp_path / "tsne.png").exists()
