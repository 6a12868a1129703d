"""In-between tiles (shazamlet/library/between.py): kept per song, used by re-scoring, never indexed.

With the bundled model (it has a tile projection): the library keeps the tiles halfway between its
indexed ones, their fingerprints are close to what the full encoder gives at those places (closer than
the indexed neighbours are), a clip that starts there is re-scored higher than without them, the index
does not grow, and a library written without them (or a model without a tile projection) still works.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from synth import STYLES, make_song

from shazamlet.config import IndexConfig
from shazamlet.recognition import RecognitionConfig, VerifyConfig
from shazamlet.library import Library
from shazamlet.model import TileEmbedder
from shazamlet.recognition import Recognizer

SR = 22_050
HOP = IndexConfig().library_hop_frames


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    root = tmp_path_factory.mktemp("between-music")
    paths = []
    for i in range(4):
        p = root / STYLES[i % len(STYLES)].name / f"song_{i}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, make_song(900 + i, STYLES[i % len(STYLES)], 20.0), SR)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def trained_embedder(trained_model) -> TileEmbedder:
    return TileEmbedder(str(trained_model))


def build(folder, embedder, songs, between: bool) -> Library:
    lib = Library.open(folder, embedder, index_cfg=IndexConfig(between_tiles=between))
    report = lib.add(songs)
    assert len(report.added) == len(songs) and not report.errors
    return lib


def test_in_between_tiles_are_kept_close_to_the_full_encoder_and_not_indexed(tmp_path, trained_embedder, songs):
    lib = build(tmp_path / "lib", trained_embedder, songs, between=True)
    assert lib.keeps_between_tiles
    song = lib.songs()[0]
    fps, starts = lib.song_tiles(song.id, 0, 10_000)
    indexed = starts % HOP == 0
    assert set(np.diff(starts)) == {HOP // 2}, "indexed and in-between tiles alternate"
    # one between each two indexed tiles, and one after the last where the song goes on long enough
    assert indexed.sum() == song.n_tiles and (~indexed).sum() in (song.n_tiles - 1, song.n_tiles)
    assert np.allclose(np.linalg.norm(fps, axis=1), 1.0, atol=2e-3)
    assert lib.index_record().n_items == sum(s.n_tiles for s in lib.songs()), "the index holds indexed tiles only"

    # against the full encoder run on the very tiles at the in-between places
    wave, _ = sf.read(song.path, dtype="float32")
    exact_tiles = trained_embedder.frontend.tiles(wave, HOP // 2)
    exact = dict(zip(exact_tiles.start_frames.tolist(), trained_embedder.embed(exact_tiles.tiles)))
    mid = np.flatnonzero(~indexed)
    to_self = np.array([fps[i] @ exact[int(starts[i])] for i in mid])
    to_neighbour = np.array([fps[i - 1] @ exact[int(starts[i])] for i in mid])
    assert to_self.mean() > 0.95, f"in-between fingerprints vs the full encoder: mean cosine {to_self.mean():.3f}"
    assert (to_self > to_neighbour).mean() > 0.9, "an in-between tile is nearer its place than its indexed neighbour"

    # a range query returns only what starts inside it, in order
    part_fps, part_starts = lib.song_tiles(song.id, 3 * HOP + 1, 6 * HOP)
    assert part_starts.tolist() == [3 * HOP + HOP // 2, 4 * HOP, 4 * HOP + HOP // 2, 5 * HOP, 5 * HOP + HOP // 2, 6 * HOP]
    assert np.allclose(part_fps, fps[np.searchsorted(starts, part_starts)])
    lib.close()


def test_a_clip_starting_between_library_tiles_scores_higher_with_them(tmp_path, trained_embedder, songs):
    scores = {}
    for between in (False, True):
        lib = build(tmp_path / f"lib-{between}", trained_embedder, songs, between)
        # the fingerprints' own similarity: the peak checks' blend would lift both libraries toward 1
        rec = Recognizer(lib, trained_embedder, config=RecognitionConfig(verify=VerifyConfig(landmark_weight=0.0, presence_weight=0.0)))
        sims = []
        for p in songs:
            wave, _ = sf.read(p, dtype="float32")
            for k in (3, 7, 11):  # clips starting halfway between two library tiles
                start = (k * HOP + HOP // 2) * trained_embedder.features.hop_length
                answer = rec.identify_wave(wave[start : start + trained_embedder.features.tile_samples])
                assert answer.candidates[0].path == str(p)
                sims.append(answer.candidates[0].similarity)
        scores[between] = np.array(sims)
        lib.close()
    assert np.all(scores[True] >= scores[False] - 1e-3)
    # at the clip's own place the in-between tile is the clip's tile; the synthetic songs repeat their
    # motif, so some clips are re-scored at a repeat, where there is no exact tile either way
    assert np.median(scores[True]) > 0.98 > np.median(scores[False]), scores
    assert scores[True].mean() > scores[False].mean() + 0.1, scores


def test_libraries_without_in_between_tiles_still_answer(tmp_path, trained_embedder, random_embedder, songs):
    # written without them (as before they existed), then opened by an app that keeps them
    lib = build(tmp_path / "old", trained_embedder, songs, between=False)
    lib.close()
    lib = Library.open(tmp_path / "old", trained_embedder)
    assert len(lib.songs_from_older_version()) == len(songs), "`library info` can say which songs lack them"
    fps, starts = lib.song_tiles(lib.songs()[0].id, 0, 10_000)
    assert np.all(starts % HOP == 0) and len(fps) == lib.songs()[0].n_tiles
    wave, _ = sf.read(songs[1], dtype="float32")
    assert Recognizer(lib, trained_embedder).identify_wave(wave[SR * 5 : SR * 8]).candidates[0].path == str(songs[1])
    lib.reindex()  # what `library info` tells the user to run
    assert lib.songs_from_older_version() == []
    assert len(lib.song_tiles(lib.songs()[0].id, 0, 10_000)[1]) > len(fps)
    lib.close()
    # a model without a tile projection has nothing to keep
    lib = build(tmp_path / "plain", random_embedder, songs[:1], between=True)
    assert not lib.keeps_between_tiles and lib.songs_from_older_version() == []
    assert lib.store.read_between(lib.songs()[0].emb_file) is None
    lib.close()
