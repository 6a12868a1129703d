"""The model file's encoder graph (`shazamlet.model.graph`): run on the file's own weights, the same
fingerprints as PyTorch, and a graph that is damaged or exported from another encoder is one line
naming the file, never other fingerprints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from synth import STYLES, make_song

from shazamlet.cli import main
from shazamlet.features import LogMelFrontEnd
from shazamlet.model import ModelError, TileEmbedder, load_model
from shazamlet.model.checkpoint import BUNDLED_MODEL
from shazamlet.model.graph import fused, fused_weights


@pytest.fixture(scope="module")
def payload() -> dict:
    return torch.load(BUNDLED_MODEL, map_location="cpu", weights_only=True)


def _tampered(payload: dict, path: Path, graph=None, meta=None) -> Path:
    changed = dict(payload)
    if graph is not None:
        changed["graph"] = graph
    if meta is not None:
        changed["meta"] = payload["meta"] | meta
    torch.save(changed, path)
    return path


def test_the_bundled_graph_makes_pytorchs_fingerprints_of_music():
    model = load_model(BUNDLED_MODEL)
    assert model.graph is not None
    tiles = LogMelFrontEnd(model.meta.feature_config()).tiles(make_song(11, STYLES[2], 12.0), 8).tiles
    with_graph = TileEmbedder(load_model(BUNDLED_MODEL))
    fps, probs = with_graph.encode(tiles)
    model.graph = None
    plain = TileEmbedder(model)
    assert plain.graph is None and with_graph.graph is not None
    want_fps, want_probs = plain.encode(tiles)
    assert len(tiles) >= 20
    assert np.abs(fps - want_fps).max() < 1e-5 and np.abs(probs - want_probs).max() < 1e-5


def test_the_weights_the_graph_reads_are_the_exported_modules():
    """`fused_weights` (every load) folds the batch norms exactly as `fused` (the export) does."""
    encoder = load_model(BUNDLED_MODEL).encoder
    exported = {k: v.numpy() for k, v in fused(encoder).state_dict().items()}
    loaded = fused_weights(encoder)
    assert sorted(exported) == sorted(loaded)
    assert all(np.array_equal(exported[k], loaded[k]) for k in exported)


@pytest.mark.parametrize("what, message", [
    ("garbage", "its encoder graph does not run"),
    ("unknown weight", "its encoder graph reads weights the file does not have"),
    ("not a graph", "its encoder graph is damaged"),
    ("another encoder", "does not compute its encoder"),
])
def test_a_bad_graph_is_one_line_naming_the_file(payload, tmp_path, capsys, what, message):
    onnx, reads = payload["graph"]["onnx"], payload["graph"]["reads"]
    path = tmp_path / "bad.pt"
    if what == "garbage":
        _tampered(payload, path, {"onnx": torch.randint(0, 255, (5000,), dtype=torch.uint8), "reads": reads})
    elif what == "unknown weight":
        _tampered(payload, path, {"onnx": onnx, "reads": reads + ["encoder.trunk.nothing.weight"]})
    elif what == "not a graph":
        _tampered(payload, path, {"onnx": "print('hello')", "reads": reads})
    else:  # the graph exported without band-centring, the file's weights with it: other fingerprints
        _tampered(payload, path, meta={"centre_bands": not payload["meta"]["centre_bands"]})
    with pytest.raises(ModelError, match=message):
        TileEmbedder(str(path)).check_ready()
    (tmp_path / "music").mkdir()
    sf.write(tmp_path / "music" / "song.wav", make_song(3, STYLES[0], 8.0), 22050)
    assert main(["--library", str(tmp_path / "lib"), "--model", str(path), "library", "add", str(tmp_path / "music")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and message in err
    assert not (tmp_path / "lib" / "fingerprints").exists() or not any((tmp_path / "lib" / "fingerprints").iterdir())


def test_the_graph_is_prepared_only_when_asked_for(tmp_path):
    """Preparing the graph (~0.3 s of CPU) pays off only where many answers or tiles follow: a one-off
    `identify` asks for PyTorch (`startup.open_library(graph=False)`)."""
    assert TileEmbedder(str(BUNDLED_MODEL), graph=False).graph is None
    assert TileEmbedder(str(BUNDLED_MODEL)).graph is not None
