"""Properties of the front end and of the votes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synth import STYLES, make_song

from shazamlet.config import FeatureConfig
from shazamlet.features import LogMelFrontEnd
from shazamlet.library.index import Neighbours
from shazamlet.recognition.decide import (GenreVote, calibrate, genre_from_model, margin_scores, merge_genre_votes,
                                          vote_for_genre)
from shazamlet.recognition.nominate import SongVote, rescore_aligned, vote_for_song


def majority_song(nb) -> int | None:
    """The paper's rule: the most frequent song among all neighbours, alignment ignored."""
    ids = nb.song_ids[nb.song_ids >= 0]
    if ids.size == 0:
        return None
    values, counts = np.unique(ids, return_counts=True)
    return int(values[np.argmax(counts)])


def test_tile_cut_from_a_long_file_equals_the_excerpt_decoded_alone():
    cfg = FeatureConfig()
    fe = LogMelFrontEnd(cfg)
    song = make_song(3, STYLES[0], 12.0)
    whole = fe.tiles(song, 1)
    start = 37
    excerpt = song[start * cfg.hop_length : start * cfg.hop_length + cfg.tile_samples]
    alone = fe.tiles(excerpt, 1)
    assert len(alone) == 1
    assert torch.equal(alone.tiles[0], whole.tiles[start])


def test_tiles_are_in_unit_range_and_gain_invariant_and_silence_is_flagged():
    fe = LogMelFrontEnd()
    song = make_song(4, STYLES[1], 8.0)
    loud, quiet = fe.tiles(song, 11), fe.tiles(song * 0.05, 11)
    assert loud.tiles.min() >= 0 and loud.tiles.max() == 1.0
    assert torch.allclose(loud.tiles, quiet.tiles, atol=1e-4)
    silent = fe.tiles(np.zeros(22050 * 4, np.float32), 11)
    assert len(silent) > 0 and not silent.audible.any() and loud.audible.all()


def test_batched_front_end_equals_one_by_one():
    fe = LogMelFrontEnd()
    a, b = make_song(5, STYLES[2], 4.0), make_song(6, STYLES[3], 4.0)
    both = fe(torch.from_numpy(np.stack([a, b])))
    assert torch.allclose(both[0], fe(torch.from_numpy(a)), atol=1e-5)
    assert torch.allclose(both[1], fe(torch.from_numpy(b)), atol=1e-5)


def _nb(rows, query_starts):
    ids = np.array([[r[0] for r in row] for row in rows])
    starts = np.array([[r[1] for r in row] for row in rows])
    sims = np.array([[r[2] for r in row] for row in rows], dtype=np.float32)
    return Neighbours(ids, starts, sims, np.array(query_starts))


def test_time_consistent_votes_beat_more_numerous_scattered_votes():
    # Song 1 is matched by every query tile at the same alignment (start 100); song 2 has more
    # neighbours in total, but at alignments that disagree.
    rows = [
        [(1, 100 + q * 11, 0.8), (2, 5 + 200 * q, 0.85), (2, 900 - 70 * q, 0.84)] for q in range(4)
    ]
    nb = _nb(rows, [q * 11 for q in range(4)])
    assert majority_song(nb) == 2  # the paper's rule is fooled
    votes = vote_for_song(nb, tolerance_frames=11)
    assert votes[0].song_id == 1 and votes[0].support == 4
    assert abs(votes[0].offset_frames - 100) < 1e-6
    assert votes[0].similarity > votes[1].similarity


def test_rescoring_judges_a_candidate_on_every_query_tile():
    # Song 1 is the right one: each of its library tiles (every 22 frames from 0) resembles the query
    # tile placed there, but noise left it among the k nearest for one query tile only. Song 2, a
    # look-alike, was the nearest tile for two query tiles by chance and resembles nothing else.
    rng = np.random.default_rng(0)
    d, hop, offset = 32, 22, 44
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    song1 = unit(rng.standard_normal((20, d)))
    song2 = unit(rng.standard_normal((20, d)))
    qstarts = np.arange(4) * hop
    query = unit(song1[(qstarts + offset) // hop] + 0.6 * unit(rng.standard_normal((4, d))))
    library = {1: (song1, np.arange(20) * hop), 2: (song2, np.arange(20) * hop)}

    def lookup(song_id, first, last):
        fps, starts = library[song_id]
        keep = (starts >= first) & (starts <= last)
        return fps[keep], starts[keep]

    rows = [[(2, 110, 0.9), (1, offset, 0.7)], [(2, 110 + hop, 0.9), (-1, 0, 0.0)],
            [(3, 5, 0.5), (-1, 0, 0.0)], [(3, 9, 0.5), (-1, 0, 0.0)]]
    nb = _nb(rows, qstarts)
    votes = vote_for_song(nb, tolerance_frames=hop)
    assert votes[0].song_id == 2  # the k-NN votes alone pick the look-alike
    rescored = rescore_aligned(votes, query, qstarts, lambda s, a, b: lookup(s, a, b) if s in library
                               else (np.zeros((0, d)), np.zeros(0)), tolerance_frames=hop, top=5)
    assert rescored[0].song_id == 1 and rescored[0].support == 4
    assert abs(rescored[0].offset_frames - offset) < 1e-6
    expected = np.mean(np.sum(query * song1[(qstarts + offset) // hop], axis=1))
    assert rescored[0].similarity >= expected - 1e-6  # at least the aligned tile's cosine, on average
    assert rescored[1].similarity < 0.5 and {v.song_id for v in rescored} == {1, 2, 3}


def test_margin_score_accepts_a_clear_winner_in_noise_not_a_crowd_of_look_alikes():
    noisy_known = [SongVote(1, 0.80, 0, 9), SongVote(2, 0.45, 0, 2), SongVote(3, 0.40, 0, 1)]
    clean_unknown = [SongVote(4, 0.96, 0, 3), SongVote(5, 0.955, 0, 3), SongVote(6, 0.95, 0, 2)]
    known, unknown = margin_scores(noisy_known), margin_scores(clean_unknown)
    assert known[0] > 0.5 > unknown[0]  # whereas the similarities rank them the other way round
    assert known[1] < 0 and unknown[1] < 0  # a runner-up is never more sure than the winner
    assert margin_scores([SongVote(7, 0.7, 0, 1)]) == [pytest.approx(0.7)]


def test_genre_shares_and_calibration():
    nb = _nb([[(1, 0, 0.9), (2, 0, 0.5), (3, 0, 0.1)]], [0])
    g = vote_for_genre(nb, {1: "jazz", 2: "rock", 3: "jazz"})
    assert g.label == "jazz" and abs(sum(g.votes.values()) - 1) < 1e-9 and abs(g.score - 1.0 / 1.5) < 1e-3
    assert vote_for_genre(nb, {1: None, 2: None, 3: None}) is None
    assert calibrate(0.7, 0.7) == 0.5 and calibrate(1.0, 0.7) == 1.0 and calibrate(0.0, 0.7) == 0.0
    assert calibrate(0.6, 0.7) < 0.5 < calibrate(0.8, 0.7)


def test_model_genre_and_merged_votes():
    """The classifier's vote is the mean of its tiles' probabilities; merged with the neighbours' vote,
    a confident side outweighs a spread one, and a missing side leaves the other."""
    model = genre_from_model(np.array([[0.8, 0.1, 0.1], [0.6, 0.1, 0.3]]), ["metal", "jazz", "rock"])
    assert model.label == "metal" and model.score == pytest.approx(0.7)
    assert list(model.votes) == ["metal", "rock", "jazz"]
    assert genre_from_model(None, ["metal"]) is None and genre_from_model(np.zeros((0, 1)), ["metal"]) is None
    spread = GenreVote("jazz", 0.4, {"jazz": 0.4, "rock": 0.35, "pop": 0.25})
    merged = merge_genre_votes(spread, model)
    assert merged.label == "metal" and merged.score == pytest.approx(0.35)
    assert sum(merged.votes.values()) == pytest.approx(1.0) and merged.votes["pop"] == pytest.approx(0.125)
    assert merge_genre_votes(None, spread).votes == spread.votes
    assert merge_genre_votes(None, None) is None
    # only the genres the library uses, as it spells them, without the dropped labels' probability
    # (the model mostly hears metal: it is unsure among the library's genres); none shared -> no vote
    mine = genre_from_model(np.array([[0.8, 0.1, 0.1], [0.6, 0.1, 0.3]]), ["metal", "jazz", "rock"], {"Jazz", "Rock"})
    assert mine.label == "Rock" and mine.votes == pytest.approx({"Rock": 0.2, "Jazz": 0.1})
    assert genre_from_model(np.array([[1.0, 0.0, 0.0]]), ["metal", "jazz", "rock"], {"techno"}) is None
    # shared labels that hold (almost) none of the probability are no vote either, not an arbitrary winner
    assert genre_from_model(np.array([[1.0 - 2e-4, 1e-4, 1e-4]]), ["metal", "jazz", "rock"], {"Jazz", "Rock"}) is None
    assert genre_from_model(np.array([[0.99, 0.004, 0.006]]), ["metal", "jazz", "rock"], {"Jazz", "Rock"}).label == "Rock"
