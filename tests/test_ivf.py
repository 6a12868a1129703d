"""The int8 IVF index that takes over from ANNOY in large libraries: the search itself, and a
library indexed by it (forced on a small library by lowering `ivf_min_items`) answering like ANNOY."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import LIB_HOP_SAMPLES, aligned_clip

from shazamlet.config import IndexConfig
from shazamlet.library import Library
from shazamlet.library.ivf import IvfVectors, quantise, write_ivf
from shazamlet.recognition import Recognizer

SR = 22_050


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_int8_codes_keep_the_cosine():
    v = unit(np.random.default_rng(0).standard_normal((2000, 64)).astype(np.float32))
    back = quantise(v).astype(np.float32) / 127.0
    assert np.abs(np.sum(v * back, axis=1) - 1.0).max() < 0.01
    assert np.abs((back[:100] @ back[100:200].T) - (v[:100] @ v[100:200].T)).max() < 0.02


def test_search_finds_what_exact_search_finds(tmp_path):
    # 20 000 fingerprints of 200 "songs" (a random walk each, as neighbouring tiles of a song are
    # alike), queried with noisy copies: the IVF lists must return exact search's neighbours.
    rng = np.random.default_rng(1)
    songs = [unit(np.cumsum(rng.standard_normal((100, 64)), axis=0).astype(np.float32)) for _ in range(200)]
    data = np.concatenate(songs)
    mapping = np.stack([np.repeat(np.arange(200), 100), np.tile(np.arange(100) * 22, 200)]).astype(np.int32)
    written = write_ivf(quantise(data), tmp_path / "c.npy", tmp_path / "l.npz")
    ivf = IvfVectors(tmp_path / "c.npy", tmp_path / "l.npz")
    assert np.array_equal(np.sort(written), np.arange(len(data)))  # every input row written once
    assert np.array_equal(ivf.codes, quantise(data)[written])
    row_map = mapping[:, written]
    recall, hits = [], 0
    for _ in range(200):
        i = int(rng.integers(len(data)))
        q = unit(data[i] + 0.03 * rng.standard_normal(64).astype(np.float32))
        exact = {tuple(mapping[:, j]) for j in np.argsort(-(data @ q))[:10]}
        rows, sims = ivf.search(q, 10, nprobe=16)
        found = {tuple(row_map[:, r]) for r in rows}
        recall.append(len(found & exact) / 10)
        hits += tuple(mapping[:, i]) in found
        assert np.all(np.diff(sims) <= 1e-6)  # best first
    assert np.mean(recall) > 0.9 and hits >= 195
    # `order` lists one song's rows in start order, for re-scoring
    song7 = ivf.order[row_map[0, ivf.order] == 7]
    assert np.array_equal(row_map[1, song7], np.arange(100) * 22)


@pytest.fixture()
def ivf_library(tmp_path, random_embedder, synth_music) -> Library:
    lib = Library.open(tmp_path / "lib", random_embedder, index_cfg=IndexConfig(ivf_min_items=0))
    assert len(lib.add([synth_music]).added) == 12
    yield lib
    lib.close()


def test_ivf_library_identifies_like_annoy(ivf_library, synth_music):
    record = ivf_library.index_record()
    assert record.kind == "ivf" and record.lists_file
    assert sorted(p.name for p in ivf_library.folder.glob("index-*")) == sorted(n for n, *_ in record.files())
    for path in sorted(synth_music.rglob("*.wav"))[::2]:
        wave, _ = sf.read(path, dtype="float32")
        answer = Recognizer(ivf_library, ivf_library.embedder).identify_wave(aligned_clip(wave, 6))
        assert answer.song is not None and answer.song.path == str(path)
        assert answer.song.offset_s == pytest.approx(6 * LIB_HOP_SAMPLES / SR, abs=0.1)
        assert answer.song.score > 0.9


def test_damaged_ivf_files_are_rebuilt(ivf_library, synth_music, random_embedder):
    record = ivf_library.index_record()
    folder = ivf_library.folder
    ivf_library.close()
    lists = folder / record.lists_file
    lists.write_bytes(lists.read_bytes()[:100])
    cfg = IndexConfig(ivf_min_items=0)
    lib = Library.open(folder, random_embedder, index_cfg=cfg)
    wave, _ = sf.read(synth_music / "rock" / "rock_song_00.wav", dtype="float32")
    assert Recognizer(lib, lib.embedder).identify_wave(aligned_clip(wave, 3)).song.path.endswith("rock_song_00.wav")
    rebuilt = lib.index_record()
    assert rebuilt.generation == record.generation + 1 and rebuilt.kind == "ivf"
    assert not lists.exists()  # the damaged generation's files are gone
    lib.close()
