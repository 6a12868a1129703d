"""The fingerprint of the tile itself that `tune-tiles` adds to a trained encoder (`trainer.tune_tiles`): its
closed-form start, the trained linear projection and its convolutional residual; and that each travels in the
model file the app loads."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from shazamlet.model import load_model
from trainer.loop import Trainer, run_views
from trainer.variant import Variant
from trainer_corpus import RATE, make_run, song


def test_tile_projection_keeps_what_a_room_leaves_alone_not_what_is_loudest():
    """The closed-form start whitens the microphone's changes: of a loud pattern that a room also changes
    loudly and a quiet one it leaves alone, a one-dimensional projection keeps the quiet one."""
    from trainer.tune_tiles import whitened_projection

    rng = np.random.default_rng(4)
    loud, quiet = torch.zeros(64, 64), torch.zeros(64, 64)
    loud[10, ::2], loud[10, 1::2] = 1.0, -1.0  # band-centred patterns: zero mean along time
    quiet[40, :32], quiet[40, 32:] = 1.0, -1.0
    a, b = (torch.from_numpy(rng.standard_normal((3000, 1, 1))).float() for _ in range(2))
    clean = 0.5 + 0.2 * a * loud + 0.05 * b * quiet + 0.002 * torch.randn(3000, 64, 64)
    degraded = clean + 0.2 * torch.from_numpy(rng.standard_normal((3000, 1, 1))).float() * loud
    proj, fit = whitened_projection(clean, degraded, 1)
    w = proj.basis[:, 0].reshape(64, 64)
    assert fit["method"] == "noise-whitened" and fit["fit_pairs"] == 3000
    assert abs(float((w * quiet).sum())) > 5 * abs(float((w * loud).sum()))


def test_tile_projection_travels_in_the_model_file_and_finds_a_coloured_tile(corpus, tmp_path, monkeypatch):
    """Exported with `tile_dim`, a model file appends the run's fingerprint of the band-centred tile
    (a few steps from its closed-form fit on the run's training tiles): fingerprints stay unit-length,
    and a song heard through a fixed EQ finds its own tile among all tiles of the library's songs."""
    from shazamlet.features import LogMelFrontEnd
    from trainer import tune_tiles as tt
    from trainer.evaluate import eval_folder
    from trainer.export import export_run

    monkeypatch.setattr(tt, "TILE_FIT_PAIRS", 2048)  # enough for the test's few songs
    run = make_run(corpus, "contrastive", "tiles", fingerprint_dim=16)
    Trainer(run, progress=False).train()
    tt.tune_tiles(run, tt.TuneConfig(tile_dim=24, steps=2, batch=64, val_tiles=256), progress=False)
    m = load_model(export_run(run.folder, tmp_path / "tiles.pt", half=True, variant=Variant(tile_dim=24, tile_weight=0.8)))
    assert (m.meta.tile_dim, m.meta.tile_weight, m.encoder.output_dim) == (24, 0.8, 40)
    assert m.meta.extra["tile_projection"]["fit"]["fit_pairs"] == 2048
    assert eval_folder(run, None, Variant(tile_dim=24, tile_weight=0.8)).name == "eval-tile24w0.8-tuned"
    fe = LogMelFrontEnd()
    rng = np.random.default_rng(9)
    songs = [song(rng, 6.0) for _ in range(4)]
    library = torch.cat([fe.tiles(w, 16).tiles for w in songs])
    owner = np.concatenate([[i] * len(fe.tiles(w, 16).tiles) for i, w in enumerate(songs)])
    f = np.fft.rfftfreq(len(songs[2]), 1 / RATE)
    eq = 10 ** (6 * np.sin(np.log2(np.maximum(f, 20) / 20)) / 20)
    heard = np.fft.irfft(np.fft.rfft(songs[2]) * eq, len(songs[2])).astype(np.float32)
    query = fe.tiles(heard, 16).tiles
    with torch.no_grad():
        lib_fp, q_fp = m.encoder.fingerprint(library), m.encoder.fingerprint(query)
    assert torch.allclose(q_fp.norm(dim=1), torch.ones(len(q_fp)), atol=1e-3)
    assert (owner[(q_fp @ lib_fp.T).argmax(1).numpy()] == 2).mean() >= 0.9


def test_tuned_tile_projection_learns_resumes_and_ships(corpus, tmp_path, monkeypatch):
    """`tune-tiles` starts from the closed-form fit, lowers the contrastive loss of fresh pairs it never
    trained on, continues where it stopped (projection and optimizer state; this run's learning rate), does
    nothing once its budget is spent, and `export --tile-dim` ships exactly what it trained, refusing a
    threshold calibrated on an earlier state."""
    from trainer import tune_tiles as tt
    from trainer.evaluate import eval_folder
    from trainer.export import StaleEvaluation, export_run
    from trainer.objectives import nt_xent
    from trainer.tune_tiles import TuneConfig, _projection, tune_tiles, tuned_path

    monkeypatch.setattr(tt, "TILE_FIT_PAIRS", 1024)
    run = make_run(corpus, "contrastive", "tuned", fingerprint_dim=16)
    Trainer(run, progress=False).train()
    tuned = Variant(tile_dim=8)
    with pytest.raises(FileNotFoundError, match="tune-tiles"):
        export_run(run.folder, tmp_path / "early.pt", half=False, variant=tuned)

    fits, closed_form = [], tt.whitened_projection
    monkeypatch.setattr(tt, "whitened_projection", lambda *a, **k: fits.append(closed_form(*a, **k)) or fits[-1])
    state = tune_tiles(run, TuneConfig(tile_dim=8, steps=30, lr=3e-3, batch=64, val_every=10, val_tiles=256),
                       progress=False)
    start = fits[0][0]
    rng = np.random.default_rng(12345)  # pairs no training step drew
    views = run_views(run)
    anchor, view = views.objective.views(views.train_data.sample(256, rng), rng)
    with torch.no_grad():
        trained = _projection(state)
        before, after = nt_xent(start(anchor), start(view), 0.05), nt_xent(trained(anchor), trained(view), 0.05)
    assert state["step"] == 30 and [r["step"] for r in state["history"]] == [0, 10, 20, 30]
    assert float(after) < float(before)

    again = tune_tiles(run, TuneConfig(tile_dim=8, steps=35, lr=1e-3, batch=64, val_tiles=256), progress=False)
    saved = torch.load(tuned_path(run, 8), weights_only=True)
    assert again["step"] == 35 and again["history"][:4] == state["history"] and len(fits) == 1  # no second fit
    assert saved["optim"]["state"][0]["step"] == 35 and saved["optim"]["param_groups"][0]["lr"] == 1e-3
    done = tune_tiles(run, TuneConfig(tile_dim=8, steps=35, val_tiles=256), progress=False)  # budget spent
    assert done["step"] == 35 and done["history"] == again["history"] and torch.equal(done["basis"], saved["basis"])

    m = load_model(export_run(run.folder, tmp_path / "tuned.pt", half=False, variant=tuned))
    assert torch.equal(m.encoder.tile_projection.basis, again["basis"])
    with torch.no_grad():  # the app's projection is the one trained
        assert torch.allclose(m.encoder.tile_projection(anchor), _projection(again)(anchor), atol=1e-5)
    assert m.meta.extra["tile_projection"]["tuned_steps"] == 35 and m.meta.tile_dim == 8
    assert re.search(r"tile projection trained \d+ min \(35 steps\)$", m.meta.trained_on), m.meta.trained_on  # minutes: the machine's speed
    folder = eval_folder(run, None, tuned)
    assert folder.name == "eval-tile8w0.85-tuned"
    folder.mkdir()
    (folder / "eval.json").write_text(json.dumps({"threshold": 0.4, "conditions": {},
                                                  "tile_projection": m.meta.extra["tile_projection"]}))
    assert load_model(export_run(run.folder, tmp_path / "t2.pt", half=False, variant=tuned)).meta.threshold == 0.4
    tune_tiles(run, TuneConfig(tile_dim=8, steps=37, batch=64, val_tiles=256), progress=False)
    with pytest.raises(StaleEvaluation, match="after 35 steps.*37 now"):
        export_run(run.folder, tmp_path / "t3.pt", half=False, variant=tuned)


def test_tile_residual_starts_at_the_linear_projection_learns_and_ships(corpus, tmp_path, monkeypatch):
    """`tune-tiles --residual C` starts from the run's trained linear projection with the residual's output at
    zero (the same fingerprints), trains both on fresh pairs (the contrastive loss of pairs no step drew goes
    down, the residual moves off zero), keeps its own file beside the linear one, and `export --tile-dim D
    --tile-residual C` ships a model file whose app-side projection gives exactly what was trained; a purely
    linear file without the `tile_residual` field still loads with no residual."""
    from trainer import tune_tiles as tt
    from trainer.export import export_run
    from trainer.objectives import nt_xent
    from shazamlet.model.resnet import centre_bands
    from trainer.tune_tiles import TuneConfig, _projection, tune_tiles, tuned_path

    monkeypatch.setattr(tt, "TILE_FIT_PAIRS", 1024)
    run = make_run(corpus, "contrastive", "residual", fingerprint_dim=16)
    Trainer(run, progress=False).train()
    linear = tune_tiles(run, TuneConfig(tile_dim=8, steps=5, batch=64, val_every=5, val_tiles=256), progress=False)
    with pytest.raises(ValueError, match="belongs to a tile fingerprint"):
        Variant(tile_residual=4)

    rng = np.random.default_rng(777)  # pairs no training step drew
    views = run_views(run)
    anchor, view = views.objective.views(views.train_data.sample(256, rng), rng)
    first = tune_tiles(run, TuneConfig(tile_dim=8, steps=1, batch=64, lr=1e-12, residual_lr=1e-12, residual=4,
                                       val_tiles=256), progress=False)
    with torch.no_grad():  # a residual that has barely moved from zero: the linear projection's fingerprints
        assert torch.allclose(_projection(first)(anchor), _projection(linear)(anchor), atol=1e-4)
    assert first["start"].startswith("tiles8.pt after 5 steps") and tuned_path(run, 8, 4).name == "tiles8r4.pt"

    # the basis stays where the linear tune left it (lr 0): whatever the loss gains, the residual gained
    state = tune_tiles(run, TuneConfig(tile_dim=8, steps=40, batch=64, lr=0.0, residual_lr=3e-3, residual=4,
                                       val_every=20, val_tiles=256), progress=False)
    trained = _projection(state)
    with torch.no_grad():
        before = nt_xent(_projection(linear)(anchor), _projection(linear)(view), 0.05)
        after = nt_xent(trained(anchor), trained(view), 0.05)
        centred = centre_bands(anchor)
        share = trained.residual(centred).norm(dim=1) / ((centred.flatten(1) - trained.mean) @ trained.basis).norm(dim=1)
    assert float(after) < float(before)
    assert torch.allclose(state["basis"], linear["basis"], atol=1e-6) and float(share.mean()) > 1e-2
    again = tune_tiles(run, TuneConfig(tile_dim=8, steps=40, residual=4, val_tiles=256), progress=False)  # spent
    assert all(torch.equal(again["residual"][k], v) for k, v in trained.residual.state_dict().items())
    assert torch.equal(torch.load(tuned_path(run, 8), weights_only=True)["basis"], linear["basis"])  # left alone

    variant = Variant(tile_dim=8, tile_weight=0.85, tile_residual=4)
    m = load_model(export_run(run.folder, tmp_path / "residual.pt", half=False, variant=variant))
    assert (m.meta.tile_residual, m.encoder.tile_residual, m.encoder.output_dim) == (4, 4, 24)
    assert "residual" in m.meta.trained_on and m.meta.extra["tile_projection"]["residual"] == 4
    with torch.no_grad():
        assert torch.allclose(m.encoder.tile_projection(anchor), trained(anchor), atol=1e-5)
    plain = export_run(run.folder, tmp_path / "linear.pt", half=True, variant=Variant(tile_dim=8))
    payload = torch.load(plain, weights_only=True)
    del payload["meta"]["tile_residual"]  # a file that does not name the field
    torch.save(payload, plain)
    old = load_model(plain)
    assert old.meta.tile_residual == 0 and old.encoder.tile_projection.residual is None
