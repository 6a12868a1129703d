"""Trainer tests on a tiny synthesised GTZAN-style corpus (tests/trainer_corpus.py): splits, degradations,
a step or two per objective, resume, export, the recipe and the model card (fast on 2 cores). The fingerprint of
the tile itself that `tune-tiles` adds to a trained encoder is in test_tile_projection.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from shazamlet.config import FeatureConfig
from shazamlet.model import load_model
from trainer.augment import DegradeParams, MelDegrader, NoiseBank, paper_augment, to_tiles
from trainer.cache import SpectrogramCache
from trainer.loop import Run, Trainer, run_views
from trainer.objectives import OBJECTIVES, nt_xent
from trainer.songs import Song, scan_songs, split_songs
from trainer.variant import Variant
from trainer_corpus import RATE, make_run, song

def test_split_by_song_group_is_leak_free_and_reproducible():
    songs = [Song(f"/x/{g}/{i}.ogg", f"{g}/{i}.ogg", g, f"grp{i // 2}-{g}", f"pkg{i // 4}-{g}")
             for g in ("a", "b", "c") for i in range(24)]
    s1, s2 = split_songs(songs, seed=3), split_songs(songs, seed=3)
    assert [x.rel for x in s1.test] == [x.rel for x in s2.test]
    sides = [{x.group for x in side} for side in (s1.train, s1.val, s1.test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert len(s1.train) + len(s1.val) + len(s1.test) == len(songs)
    assert s1.test and s1.train
    held = set(s1.held_out_packages)
    assert held and not any(x.package in held for x in s1.train + s1.val)
    assert [x.rel for x in split_songs(songs, seed=4).test] != [x.rel for x in s1.test]


def test_scan_reads_genre_folders_and_manifest(tmp_path):
    (tmp_path / "pop").mkdir()
    sf.write(tmp_path / "pop" / "a.wav", np.zeros(RATE, np.float32), RATE)
    sf.write(tmp_path / "pop" / "b.wav", np.zeros(RATE, np.float32), RATE)
    (tmp_path / "manifest.tsv").write_text("style\tpackage\tfile\tsong_group\npop\tp1\tpop/a.wav\tg1\npop\tp1\tpop/b.wav\tg1\n")
    songs = scan_songs(tmp_path)
    assert [(s.genre, s.group, s.package) for s in songs] == [("pop", "g1", "p1")] * 2


def test_mel_degradations_keep_shape_and_range(corpus):
    cache = SpectrogramCache(corpus["cache"])
    bank = NoiseBank([(cat, cache.noise(rel)) for rel, cat in cache.noise_items("noise")])
    assert bank.speech and bank.other
    cfg = FeatureConfig()
    power = 10 ** (torch.rand(5, 64, 100) * 6 - 8)
    deg = MelDegrader(cfg, bank)(power, np.random.default_rng(0), slice(20, 84))
    assert deg.shape == power.shape and torch.isfinite(deg).all() and (deg > 0).all()
    assert not torch.allclose(deg, power)
    tiles = to_tiles(deg[..., 20:84], cfg.top_db)
    assert tiles.min() >= 0 and tiles.max() <= 1 and torch.allclose(tiles.amax((1, 2)), torch.ones(5))
    aug, shifts = paper_augment(power[..., :64], bank, np.random.default_rng(1), cfg.top_db)
    assert aug.shape == (5, 64, 64) and aug.min() >= 0 and aug.max() <= 1 and len(shifts) == 5


def test_colouration_is_a_per_band_gain_within_its_range_and_off_by_default():
    cfg = FeatureConfig()
    power = torch.rand(16, cfg.n_mels, 40) + 0.5
    rng = np.random.default_rng(0)
    coloured = MelDegrader(cfg, params=DegradeParams(p_colour=1.0, colour_db=30.0)).colour(power, rng)
    gain_db = 10 * torch.log10(coloured / power)
    assert torch.allclose(gain_db, gain_db[..., :1].expand_as(gain_db), atol=1e-3)  # the same at every frame
    per_tile = gain_db[..., 0]
    assert per_tile.max(dim=1).values.max() <= 1e-4 and per_tile.max(dim=1).values.min() > -2.0  # the loudest knot sits between bands
    assert per_tile.min() >= -30.0 - 1e-3 and (per_tile.max(1).values - per_tile.min(1).values).mean() > 15
    assert torch.equal(MelDegrader(cfg).colour(power, rng), power)


def test_nt_xent_rewards_matching_pairs():
    a = torch.nn.functional.normalize(torch.randn(16, 8), dim=1)
    good = nt_xent(a, a, 0.1)
    bad = nt_xent(a, torch.nn.functional.normalize(torch.randn(16, 8), dim=1), 0.1)
    assert good < bad


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_one_training_step_per_objective(corpus, objective):
    run = make_run(corpus, objective, objective.replace("+", "_"))
    assert run.genres == ["jazz", "rock"]  # `mixed` is unlabelled
    trainer = Trainer(run, progress=False)
    before = [p.detach().clone() for p in trainer.mods["encoder"].parameters()]
    trainer.train()
    assert trainer.step == 1
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.mods["encoder"].parameters()))
    hist = json.loads((run.folder / "metrics.json").read_text())
    assert hist[0]["epoch"] == 1 and np.isfinite(hist[0]["train_loss"]) and "val_mic_top1" in hist[0]
    assert (run.folder / "metrics.csv").exists() and (run.folder / "curves.png").exists()


def test_resume_continues_from_checkpoint(corpus):
    run = make_run(corpus, "contrastive", "resume")
    t1 = Trainer(run, progress=False)
    t1.train()
    saved = {k: v.clone() for k, v in t1.mods.state_dict().items()}
    run.config.epochs = 2  # as if the first call had been interrupted after epoch 1
    t2 = Trainer(run, progress=False)
    assert t2.resume() and t2.step == 1
    assert all(torch.equal(saved[k], v) for k, v in t2.mods.state_dict().items())
    t2.train()
    assert t2.step == 2 and len(t2.history) == 2


def test_export_writes_a_loadable_model_with_its_graph(corpus, tmp_path):
    from synth import STYLES, make_song

    from shazamlet.features import LogMelFrontEnd
    from shazamlet.model import TileEmbedder
    from trainer.export import export_run

    run = make_run(corpus, "contrastive+classifier", "export")
    Trainer(run, progress=False).train()
    (run.folder / "eval").mkdir()
    (run.folder / "eval" / "eval.json").write_text(json.dumps({"threshold": 0.61, "conditions": {}}))
    path = export_run(run.folder, tmp_path / "m.pt", half=True)
    m = load_model(path)
    assert m.meta.threshold == pytest.approx(0.61) and m.meta.genres == ["jazz", "rock"]
    assert m.meta.fingerprint_dim == 128 and m.meta.objective == "contrastive+classifier"
    x = torch.rand(2, 64, 64)
    assert m.encoder.fingerprint(x).shape == (2, 128)
    # the file's graph, run by ONNX Runtime, makes the fingerprints and genre probabilities PyTorch makes
    assert m.graph is not None
    tiles = LogMelFrontEnd(m.meta.feature_config()).tiles(make_song(5, STYLES[0], 8.0), 16).tiles
    with_graph = TileEmbedder(load_model(path))
    assert with_graph.graph is not None
    m.graph = None
    fps, probs = with_graph.encode(tiles)
    want_fps, want_probs = TileEmbedder(m).encode(tiles)
    assert len(tiles) >= 5 and np.abs(fps - want_fps).max() < 1e-5 and np.abs(probs - want_probs).max() < 1e-5


def test_time_budget_stops_with_a_logged_partial_epoch(corpus):
    run = make_run(corpus, "contrastive", "budget", minutes=1e-4)
    run.config.epochs, run.config.steps_per_epoch = 3, 4
    t = Trainer(run, progress=False)
    t.train()
    assert t.step == 1 and t.schedule_position() == 1.0
    assert t.history[-1]["epoch"] == 0.25 and "val_mic_top1" in t.history[-1]
    assert run.checkpoint_path.exists()


def test_on_a_cpu_the_time_budget_counts_compute_not_waiting():
    """A machine busy with other work must not shorten training: waiting does not count, working does."""
    import time

    from trainer.loop import training_clock

    clock = training_clock(torch.device("cpu"))
    t0 = clock()
    time.sleep(0.3)  # the process gets no CPU, as when others hold the cores
    waited = clock() - t0
    t0, x = clock(), torch.rand(256, 256)
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        x = (x @ x).clamp(-1, 1)
    worked = clock() - t0
    assert waited < 0.05 and worked > max(0.02, 5 * waited)
    assert training_clock(torch.device("cuda")) is time.monotonic  # a GPU's budget is wall time


def test_exported_model_carries_the_genre_classifier_for_songs_not_in_the_library(corpus, tmp_path):
    """A model trained with the classifier ships it: one pass of the encoder gives the fingerprints
    and the classifier's genre probabilities, as the run computes them, and a query the library does
    not hold is given the model's genre."""
    from shazamlet.library import Library
    from shazamlet.recognition import DecideConfig
    from shazamlet.recognition.decide import genre_from_model, merge_genre_votes, vote_for_genre
    from shazamlet.model import TileEmbedder
    from shazamlet.recognition import Recognizer
    from trainer.export import export_run
    from trainer.objectives import build_modules
    from trainer.export import run_tiles

    run = make_run(corpus, "contrastive+classifier", "genre-head", fingerprint_dim=16)
    Trainer(run, progress=False).train()
    m = load_model(export_run(run.folder, tmp_path / "g.pt", half=False, graph=False))
    assert m.meta.genre_head and m.meta.genres == Run(run.folder).genres and len(m.meta.genres) >= 2
    emb = TileEmbedder(m)
    tiles = run_tiles(Run(run.folder), 16, seed=2, side="test")
    fps, probs = emb.encode(tiles)
    mods = build_modules("contrastive+classifier", len(m.meta.genres), fingerprint_dim=16)
    mods.load_state_dict(torch.load(run.checkpoint_path, weights_only=True)["modules"])
    mods.eval()
    with torch.no_grad():
        expected_probs = torch.softmax(mods["classifier"](mods["encoder"](tiles)), dim=-1).numpy()
    assert np.allclose(probs, expected_probs, atol=1e-5) and np.allclose(fps, emb.embed(tiles))
    wave = song(np.random.default_rng(5), 4.0)
    answer = Recognizer(Library.open(tmp_path / "lib", emb), emb).identify_wave(wave)
    heard = emb.encode(emb.frontend.tiles(wave, 11).tiles)[1].mean(0)
    assert answer.song is None and answer.genre.label == m.meta.genres[int(np.argmax(heard))]
    assert sum(answer.genre.votes.values()) == pytest.approx(1.0, abs=1e-4)
    # with a library that has genres, a song it does not accept gets the mean of both votes
    lib = Library.open(tmp_path / "lib2", emb)
    lib.add([str(corpus["data"] / g / f"{g}0.wav") for g in m.meta.genres], genre_from="folder",
            root=str(corpus["data"]))
    answer = Recognizer(lib, emb, threshold=1.01).identify_wave(wave)
    t = emb.frontend.tiles(wave, lib.cfg.query_hop_frames)
    fps, probs = emb.encode(t.tiles[torch.as_tensor(t.audible)])
    nb = lib.neighbours(fps, t.start_frames[t.audible])
    model_vote = genre_from_model(probs, emb.genres, set(m.meta.genres))
    expected = merge_genre_votes(vote_for_genre(nb.nearest(DecideConfig().genre_k), lib.genres()), model_vote)
    assert answer.song is None and answer.genre.votes == pytest.approx(expected.votes)
    assert answer.genre.votes != pytest.approx(genre_from_model(probs, emb.genres).votes)  # the neighbours count too
    # the float16 file carries the head too
    m16 = load_model(export_run(run.folder, tmp_path / "g16.pt", half=True, graph=False))
    assert m16.meta.genre_head and np.allclose(TileEmbedder(m16).encode(tiles)[1], expected_probs, atol=2e-2)


def test_room_views_are_frame_aligned_degraded_copies_used_as_positives(corpus):
    from trainer.data import TileSampler
    from trainer.objectives import Objective
    from trainer.wave_views import view_path

    run = make_run(corpus, "contrastive", "rooms", room_views=2, p_room=1.0)
    cache = SpectrogramCache(run.info["cache"])
    for track in run.songs("train"):
        clean = np.asarray(cache.song(track.rel), np.float32)
        a, b = (np.asarray(np.load(view_path(cache.root, track.rel, v)), np.float32) for v in (0, 1))
        assert a.shape == b.shape == clean.shape
        # the same music, aligned frame for frame (better correlated than with a time-shifted copy),
        # but not the same spectrogram
        # (of the changes in time: each band's mean level is taken out)
        corr = lambda x, y: np.corrcoef((x - x.mean(1, keepdims=True)).ravel(), (y - y.mean(1, keepdims=True)).ravel())[0, 1]
        assert corr(clean, a) > corr(clean, np.roll(a, 20, axis=1)) + 0.1
        assert np.abs(a - clean).mean() > 1.0 and np.abs(a - b).mean() > 0.5
    # the evaluation's rooms were not used: with every impulse response held out, no real room is loaded
    from trainer.wave_views import WaveChain

    everything = [str(p.relative_to(corpus["noise"])) for p in (corpus["noise"] / "rir_real").iterdir()]
    assert not WaveChain(corpus["noise"], {Path(r).stem for r in everything}, RATE).rirs
    assert WaveChain(corpus["noise"], set(), RATE).rirs

    feats = cache.features
    sampler = TileSampler(cache, run.songs("train"), run.genres, feats.tile_frames, views=2)
    batch = sampler.sample(6, np.random.default_rng(0))
    assert batch.room is not None and bool(batch.has_room.all())
    degrader = run_views(run).objective.degrader
    obj = Objective("contrastive", feats.top_db, feats.tile_frames, degrader, None, p_room=1.0)
    rng = np.random.default_rng(1)
    _, pos = obj.views(batch, rng)
    # every positive is a (shifted) tile of the waveform-degraded copy, not of the mel shortcut
    a0, t = batch.anchor, feats.tile_frames
    candidates = [to_tiles(batch.room[i : i + 1, :, a0 + s : a0 + s + t], feats.top_db)[0]
                  for i in range(6) for s in range(-batch.max_shift, batch.max_shift + 1)]
    for i in range(6):
        assert any(torch.allclose(pos[i], c, atol=1e-5) for c in candidates)
    Trainer(run, progress=False).train()  # and a training step runs with them


def test_a_stage_can_start_from_a_model_file(corpus, tmp_path, monkeypatch):
    """Also from a shipped-like file: its genre head seeds the classifier, its tile projection is left
    out (`tune-tiles` trains one for the new run)."""
    from trainer import tune_tiles as tt
    from trainer.evaluate import run_meta
    from trainer.export import export_run

    monkeypatch.setattr(tt, "TILE_FIT_PAIRS", 1024)
    first = make_run(corpus, "contrastive+classifier", "stage1", fingerprint_dim=32)
    Trainer(first, progress=False).train()
    tt.tune_tiles(first, tt.TuneConfig(tile_dim=8, steps=1, batch=64, val_tiles=256), progress=False)
    model = export_run(first.folder, tmp_path / "stage1.pt", half=False, variant=Variant(tile_dim=8, tile_weight=0.5), graph=False)
    second = Trainer(make_run(corpus, "contrastive+classifier", "stage2", fingerprint_dim=32), progress=False)
    second.init_from(model)
    loaded = load_model(model).encoder.state_dict()
    assert any(k.startswith("tile_projection.") for k in loaded) and any(k.startswith("genre_head.") for k in loaded)
    assert all(torch.equal(v, loaded[k]) for k, v in second.mods["encoder"].state_dict().items())
    assert all(torch.equal(v, loaded["genre_head." + k]) for k, v in second.mods["classifier"].state_dict().items())
    second.train()
    ck = torch.load(second.run.checkpoint_path, weights_only=True)
    trained_on = run_meta(Run(second.run.folder), ck, 0.5).trained_on
    encoder, tiles = load_model(model).meta.trained_on.split("; tile projection")  # the run starts from the encoder
    assert trained_on.endswith(f"fine-tuned from stage1 ({encoder})") and tiles.startswith(" trained")


def test_centred_bands_make_a_fixed_filter_invisible_and_travel_in_the_model_file(corpus, tmp_path):
    """A run trained with `centre_bands` exports a model that rebuilds the same input step, and
    its fingerprints of a song heard through a fixed, smooth EQ (a laptop microphone's colouring,
    +-6 dB over the spectrum, applied to the waveform) are those of the clean song."""
    from shazamlet.features import LogMelFrontEnd
    from trainer.export import export_run

    run = make_run(corpus, "contrastive", "centred", fingerprint_dim=32, centre_bands=True)
    Trainer(run, progress=False).train()
    m = load_model(export_run(run.folder, tmp_path / "centred.pt", half=False, graph=False))
    assert m.meta.centre_bands and m.encoder.centre_bands
    wave = song(np.random.default_rng(5), 3.2)
    spec = np.fft.rfft(wave)
    f = np.fft.rfftfreq(len(wave), 1 / RATE)
    eq = 10 ** (6 * np.sin(np.log2(np.maximum(f, 20) / 20)) / 20)  # +-6 dB, a few wide bumps
    coloured = np.fft.irfft(spec * eq, len(wave)).astype(np.float32)
    fe = LogMelFrontEnd()
    clean_t, col_t = fe.tiles(wave, 64).tiles[:1], fe.tiles(coloured, 64).tiles[:1]
    with torch.no_grad():
        centred = float(m.encoder.fingerprint(clean_t) @ m.encoder.fingerprint(col_t).T)
        m.encoder.centre_bands = False  # the same weights seeing raw tiles
        raw = float(m.encoder.fingerprint(clean_t) @ m.encoder.fingerprint(col_t).T)
    # (a model this small barely moves either way: both can sit within float rounding of 1)
    assert centred > 0.995 and 1 - centred <= max(1 - raw, 1e-5), (centred, raw)


def test_speed_warp_matches_the_waveform_played_at_that_speed(monkeypatch):
    """The training shortcut for speed changes (`augment.speed_warp`, checked by research/shortcut_check.py)
    against the waveform resampled."""
    from synth import STYLES, make_song

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "research"))
    from shortcut_check import speed_check

    songs = [make_song(40 + i, STYLES[i % len(STYLES)], 20.0) for i in range(3)]
    result = speed_check(FeatureConfig(), songs, n=6)
    for speed, r in result.items():  # the warp halves the difference (at most) that the speed change makes
        assert r["tile_mae_warp"] < 0.6 * r["tile_mae_unwarped"], (speed, r)


def test_speed_changed_positives_are_warped_copies_within_the_range(corpus):
    run = make_run(corpus, "contrastive", "speed", p_speed=1.0, max_speed_change=0.1)
    views = run_views(run)
    batch = views.train_data.sample(4, np.random.default_rng(0))
    views.objective.degrader.p = DegradeParams(p_reverb=0.0, p_babble=0.0, p_env=0.0, p_pink=0.0,
                                               noise_snr_db=(90.0, 90.0), floor_db=(90.0, 90.0), p_clip=0.0,
                                               hp_hz=(1.0, 1.0), lp_hz=(20000.0, 20000.0), eq_db=0.0)
    views.objective.degrader.rirs = None
    batch.max_shift = 0
    anchor, pos = views.objective.views(batch, np.random.default_rng(1))
    views.objective.p_speed = 0.0
    _, plain = views.objective.views(batch, np.random.default_rng(1))
    assert (plain - anchor).abs().mean() < 0.01  # with nothing else degraded, the positive is the anchor ...
    assert (pos - anchor).abs().mean() > 0.03  # ... unless it is played off-speed
    trainer = Trainer(run, progress=False)
    trainer.train()
    assert trainer.step == 1


RECIPE = """
data = "{data}"
noise = "{noise}"
cache = "{cache}"
runs = "{runs}"
model = "{model}"
card = "{card}"
limits = "Gated sines only."

[train]
objective = "contrastive+classifier"
batch = 4
val_pairs = 8
warmup = 1
steps_per_epoch = 1
p_speed = 0.5

[[stage]]
kind = "cache"

[[stage]]
name = "base"
kind = "train"
epochs = 1

[[stage]]
name = "room"
kind = "train"
init_from = "base"
epochs = 2
lr = 3e-4
"""


def _recipe(corpus, tmp_path, text: str = RECIPE) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text.format(data=corpus["data"], noise=corpus["noise"], cache=corpus["root"] / "cache",
                                runs=tmp_path / "runs", model=tmp_path / "m.pt", card=tmp_path / "card"))
    return path


def test_recipe_runs_every_stage_once_and_resumes_where_it_stopped(corpus, tmp_path, capsys):
    from trainer.cli import main

    path = _recipe(corpus, tmp_path)
    assert main(["recipe", str(path), "--only", "cache", "base"]) == 0  # as if stopped after `base`
    done = json.loads((tmp_path / "runs" / "recipe.json").read_text())
    assert sorted(done) == ["base", "cache"] and done["base"]["device"] == "cpu"
    base = tmp_path / "runs" / "base" / "checkpoint.pt"
    stamp = base.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["recipe", str(path)]) == 0  # the rest only
    out = capsys.readouterr().out
    assert "== room (train) ==" in out and "== base" not in out and base.stat().st_mtime_ns == stamp
    room = Run(tmp_path / "runs" / "room")
    assert room.info["init_from"]["run"] == str(tmp_path / "runs" / "base") and room.config.p_speed == 0.5
    assert json.loads((room.folder / "metrics.json").read_text())[-1]["step"] == 2
    assert sorted(json.loads((tmp_path / "runs" / "recipe.json").read_text())) == ["base", "cache", "room"]
    assert main(["recipe", str(path)]) == 0
    out = capsys.readouterr().out
    assert "==" not in out and "all 3 stages are done" in out  # nothing left to do, and it says so


@pytest.mark.parametrize("change, message", [
    (('kind = "cache"', 'kind = "bake"'), "has kind 'bake'"),
    (('init_from = "base"', 'init_from = "later"'), "refers to 'later', which is not an earlier stage"),
    (("epochs = 1", "epochs = 1\nlearning_rate = 1"), "unknown training options learning_rate"),
    (("[[stage]]", "[[stage]"), "r.toml"),
])
def test_a_recipe_that_cannot_run_says_why_in_one_line(corpus, tmp_path, capsys, change, message):
    from trainer.cli import main

    path = _recipe(corpus, tmp_path, RECIPE.replace(*change, 1))
    assert main(["recipe", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_the_model_card_shows_both_draws_at_the_threshold_and_the_limits(corpus, tmp_path):
    from trainer.card import write_card
    from trainer.evaluate import CONDITIONS
    from trainer.export import export_run
    from trainer.recipe_file import load_recipe

    run = make_run(corpus, "contrastive+classifier", "card")
    Trainer(run, progress=False).train()
    model = export_run(run.folder, tmp_path / "m.pt", half=True, graph=False)
    for i, name in enumerate(("eval-m", "eval-m-draw1")):
        conds = {c: {"top1": 0.9 - 0.1 * i, "top2": 1.0, "accepted_correct": 0.8 - 0.1 * i, "unknown_rejected": 0.97,
                     "genre_known": 0.5, "genre_unknown": 0.4, "n_known": 12, "n_unknown": 6} for c, _ in CONDITIONS}
        (run.folder / name).mkdir()
        (run.folder / name / "eval.json").write_text(json.dumps({"threshold": 0.2, "conditions": conds,
                                                                 "library_songs": 6, "unknown_songs": 2}))
    (run.folder / "eval-m" / "confusion.png").write_bytes(b"png")
    card = write_card(run.folder, model, tmp_path / "card", load_recipe(_recipe(corpus, tmp_path)))
    text = card.read_text()
    assert "| speed3: 3 s, played 0.92-1.08x as fast, room | 90.0% | 80.0% | 97.0% | 80.0% | 70.0% | 97.0% |" in text
    assert "Gated sines only." in text and "made before" in text  # this model was not made by that recipe
    assert "![confusion](confusion.png)" in text and (tmp_path / "card" / "confusion.png").exists()
    # a user's genre folders are told as theirs, not as the project's corpus
    assert "The music of `data/`, one folder per style (jazz, rock)" in text and "Debian" not in text
    assert "split by file (no `manifest.tsv` groups them)" in text
    assert len(text.splitlines()) <= 200
