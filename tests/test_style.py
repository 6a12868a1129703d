"""The style head (shazamlet/model/style.py, trainer/style.py): fitted on some collections of two
synthesised styles, it names the style of collections it never heard, travels in the model file
without changing the fingerprints a library recorded, and names the genre of songs not in a library."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
import torch

from shazamlet.model import TileEmbedder, load_model
from shazamlet.model.style import n_style_features, style_features
from trainer.loop import Run, Trainer
from trainer.settings import TrainConfig
from trainer.style import StyleConfig, package_balanced_weights, style_run
from trainer_corpus import RATE

SECONDS = 8.0


def drums(rng: np.random.Generator, bpm: float, decay_s: float) -> np.ndarray:
    """Kick on the beat, noise hits off it: broadband onsets at a steady tempo."""
    n = int(SECONDS * RATE)
    out = np.zeros(n, np.float32)
    beat = int(60 / bpm * RATE)
    t = np.arange(int(0.4 * RATE)) / RATE
    kick = np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.08)
    hit = rng.standard_normal(len(t)) * np.exp(-t / decay_s)
    for i, start in enumerate(range(0, n - len(t), beat // 2)):
        out[start : start + len(t)] += 0.5 * (kick if i % 2 == 0 else hit * rng.uniform(0.2, 0.4))
    return out


def strings(rng: np.random.Generator, base_hz: float, harmonics: int) -> np.ndarray:
    """Slow chords of harmonic tones, swelling in and out: no onsets, a harmonic envelope."""
    n = int(SECONDS * RATE)
    t = np.arange(n) / RATE
    out = np.zeros(n)
    for _ in range(3):
        f0 = base_hz * 2 ** (rng.integers(0, 12) / 12)
        swell = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 6))
        out += swell * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, harmonics + 1))
    return (0.1 * out).astype(np.float32)


def write_styles(root) -> str:
    """Two styles of four collections each (three songs per collection), with a manifest naming them."""
    data = root / "styles"
    rng = np.random.default_rng(3)
    rows = []
    for style, make, params in (("drums", drums, [(90, 0.05), (120, 0.12), (140, 0.03), (105, 0.08)]),
                                ("strings", strings, [(110, 6), (220, 3), (165, 8), (330, 4)])):
        (data / style).mkdir(parents=True)
        for p, args in enumerate(params):
            for i in range(3):
                name = f"{style}{p}__{i}.wav"
                sf.write(data / style / name, make(rng, *args), RATE)
                rows.append({"style": style, "package": f"{style}{p}", "file": f"{style}/{name}",
                             "song_group": f"{style}{p}-{i}"})
    with open(data / "manifest.tsv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["style", "package", "file", "song_group"], delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    return str(data)


def test_style_features_describe_a_tile_and_ignore_its_surroundings():
    tiles = torch.rand(3, 64, 64)
    f = style_features(tiles)
    assert f.shape == (3, n_style_features(64, 64))
    assert torch.allclose(style_features(tiles.unsqueeze(1)), f)
    assert torch.allclose(style_features(tiles[1:2]), f[1:2], atol=1e-6)  # no batch statistics: a tile alone gives the same numbers
    # a steady pulse every 8 frames shows in the loudness autocorrelation at lag 8, not at lag 4
    pulse = torch.zeros(1, 64, 64)
    pulse[..., ::8] = 1.0
    ac = style_features(pulse)[0, 3 * 64 : 3 * 64 + 32]
    assert ac[7] > 0.9 and ac[3] < 0.0


def test_package_balanced_weights_give_each_style_and_each_collection_of_it_the_same_total():
    genres = ["a"] * 6 + ["b"] * 2
    packages = ["p"] * 5 + ["q"] + ["r"] * 2
    w = package_balanced_weights(genres, packages)
    assert w.mean() == pytest.approx(1.0)
    assert w[:5].sum() == pytest.approx(w[5]) and w[:6].sum() == pytest.approx(w[6:].sum())


def test_style_head_names_the_style_of_collections_it_never_heard(corpus, tmp_path):
    from shazamlet.library import Library
    from shazamlet.recognition import Recognizer, Trace
    from trainer.export import export_run

    data = write_styles(tmp_path)
    cfg = TrainConfig(data=data, noise=str(corpus["noise"]), objective="contrastive+classifier",
                      out=str(tmp_path / "run"), cache=str(tmp_path / "cache"), epochs=1, steps_per_epoch=1,
                      batch=4, val_pairs=8, warmup=1, fingerprint_dim=16)
    run = Run.create(cfg, progress=False)
    held = run.info["split"]["held_out_packages"]
    assert {p.rstrip("0123456789") for p in held} == {"drums", "strings"}  # one collection of each never heard
    Trainer(run, progress=False).train()
    before = load_model(export_run(run.folder, tmp_path / "m.pt", half=True))
    assert not before.meta.style_head

    result = style_run(run.folder, tmp_path / "m.pt", tmp_path / "styled.pt", StyleConfig(tiles_per_song=8),
                       progress=False)
    assert result["held_out_packages"] == sorted(held)
    assert result["held_out"]["balanced"] >= 0.9  # a 1-step genre head is near chance; the style head is not
    m = load_model(tmp_path / "styled.pt")
    assert m.meta.style_head and m.meta.extra["style_head"]["held_out"] == result["held_out"]
    # same fingerprints (a library keeps its songs), float16 as the file it came from
    assert m.fingerprints == before.fingerprints
    assert next(iter(torch.load(tmp_path / "styled.pt", weights_only=True)["encoder"].values())).dtype == torch.float16

    # in the app: a song of a collection never heard, not in the library, gets its style from the head
    emb = TileEmbedder(m)
    assert emb.genres == m.meta.genres
    lib = Library.open(tmp_path / "lib", emb)
    recognizer = Recognizer(lib, emb)
    rng = np.random.default_rng(11)
    for style, wave in (("drums", drums(rng, 132, 0.06)), ("strings", strings(rng, 260, 5))):
        trace = Trace()
        answer = recognizer.identify_wave(wave, trace)
        assert answer.song is None and answer.genre.label == style
        assert trace.model_genre.label == style and trace.library_genre is None  # an empty library has no vote


def test_trainer_commands_on_a_folder_that_is_not_a_run_say_so_in_one_line(tmp_path, capsys):
    from trainer.cli import main

    for cmd in ("style", "evaluate", "export"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, str(tmp_path / "nope")])
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and "is not a run folder" in err[-1] and "Traceback" not in "".join(err)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_fitted_head_gives_the_logistic_regressions_probabilities_and_nothing_to_genres_without_songs(n_classes):
    from sklearn.linear_model import LogisticRegression

    from trainer.style import fit_style_head

    torch.manual_seed(0)
    x = torch.rand(300, 64, 64)
    labels = np.array([0, 2, 3][:n_classes])[np.arange(300) % n_classes]
    x[labels == 2] *= 0.5
    x[labels == 3, :, ::4] = 1.0
    w = np.random.default_rng(0).uniform(0.5, 1.5, 300)
    head = fit_style_head(x, labels, w, 5, 0.01)  # genres 1 and 4 have no songs
    f = style_features(x).double().numpy()
    z = (f - f.mean(0)) / (f.std(0) + 1e-6)
    ref = LogisticRegression(C=0.01, max_iter=3000).fit(z, labels, sample_weight=w)
    with torch.no_grad():
        p = torch.softmax(head(x), -1).double().numpy()
    assert np.abs(p[:, ref.classes_] - ref.predict_proba(z)).max() < 1e-4
    assert p[:, [1, 4]].max() < 1e-6
