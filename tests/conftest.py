"""Shared fixtures: synthetic music on disk and model files.

Two kinds of model:
- `random_model`: fixed random weights (BatchNorm statistics estimated on synthetic tiles). It is
  enough for everything that does not need a *trained* ear: a clip cut exactly where a library tile
  starts comes back with similarity ~1, so plumbing (adding, removing, crashes, corrupt files,
  model mismatch) is tested independently of training.
- `trained_model`: the bundled default model, for what needs robustness (random offsets, noise,
  open-set rejection).
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))

from synth import make_random_model, write_library  # noqa: E402
from trainer_corpus import write_corpus  # noqa: E402

from shazamlet.config import FeatureConfig, IndexConfig  # noqa: E402
from shazamlet.model import TileEmbedder  # noqa: E402
from shazamlet.model.checkpoint import BUNDLED_MODEL  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

LIB_HOP_SAMPLES = IndexConfig().library_hop_frames * FeatureConfig().hop_length


@pytest.fixture(autouse=True)
def _collect_as_usual():
    """`shazamlet.cli.main` run in the test process freezes what exists when its start-up ends (as it
    should in the app's own process); the objects of later tests must still be collected."""
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def random_model(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("models") / "random.pt")


@pytest.fixture(scope="session")
def other_random_model(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("models2") / "random2.pt", seed=1, name="another-model")


@pytest.fixture(scope="session")
def trained_model() -> Path:
    path = BUNDLED_MODEL
    assert path.exists(), f"the bundled model {path} is missing"
    return path


@pytest.fixture(scope="session")
def trained_library(tmp_path_factory, trained_model):
    """(library, embedder, song paths): 20 synthesised songs of 24 s added with the bundled model, built
    once for the test modules that only read it."""
    from shazamlet.library import Library

    root = tmp_path_factory.mktemp("music20")
    paths = write_library(root, n_per_style=5, seconds=24.0, seed=300)
    embedder = TileEmbedder(str(trained_model))
    lib = Library.open(tmp_path_factory.mktemp("lib20"), embedder)
    lib.add([root])
    yield lib, embedder, paths
    lib.close()


@pytest.fixture(scope="session")
def random_embedder(random_model) -> TileEmbedder:
    return TileEmbedder(str(random_model))


@pytest.fixture(scope="session")
def synth_music(tmp_path_factory) -> Path:
    """MUSIC/<style>/<style>_song_XX.wav: 3 songs of 16 s in each of 4 styles."""
    root = tmp_path_factory.mktemp("music")
    write_library(root, n_per_style=3, seconds=16.0)
    return root


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict:
    """The trainer's tiny corpus and its spectrogram cache (tests/trainer_corpus.py); runs made on it
    take unique names, so the trainer's test modules share one."""
    return write_corpus(tmp_path_factory.mktemp("trainer"))


def aligned_clip(wave: np.ndarray, tile_index: int, seconds: float = 3.1) -> np.ndarray:
    """A clip that starts exactly where library tile `tile_index` starts."""
    start = tile_index * LIB_HOP_SAMPLES
    return wave[start : start + int(seconds * FeatureConfig().sample_rate)]
