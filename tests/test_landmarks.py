"""Spectral-peak landmarks (shazamlet/landmarks.py): the second check of the re-scored candidates.

A clip played through a room (reverb, pink noise, band-limiting, gain) shares landmarks with its own
song at its own offset, far more than with other songs; the recognizer ranks by fingerprints and
landmarks when every candidate has peaks, places the answer to a frame, and nominates by the peaks'
presence while unsure. How the library keeps the peaks: tests/test_library_peaks.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from synth import STYLES, add_noise, make_song

from shazamlet.config import LandmarkConfig
from shazamlet.landmarks import BIN_BITS, aligned_evidence, landmarks, pair, peaks, shared_peaks
from shazamlet.library import Library
from shazamlet.recognition import NominateConfig, RecognitionConfig, Trace, VerifyConfig
from shazamlet.recognition.decide import peaks_above_chance
from shazamlet.recognition.nominate import Nominees, SongVote, join_presence_nominees
from shazamlet.recognition.verify import PeakEvidence, blend_evidence, blended_similarity, verify
from shazamlet.model import TileEmbedder
from shazamlet.recognition import Recognizer
from trainer.degrade_wave import mic_chain

SR = 22_050
LC = LandmarkConfig()


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    return [make_song(900 + i, STYLES[i % len(STYLES)], 20.0) for i in range(4)]


@pytest.fixture(scope="module")
def songs(tmp_path_factory, waves):
    root = tmp_path_factory.mktemp("landmark-music")
    paths = []
    for i, w in enumerate(waves):
        p = root / STYLES[i % len(STYLES)].name / f"song_{i}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, w, SR)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def embedder(trained_model) -> TileEmbedder:
    return TileEmbedder(str(trained_model))


def room(rng: np.random.Generator, rt60: float = 0.3) -> np.ndarray:
    """A synthetic room impulse response: the direct sound, then exponentially decaying noise."""
    t = np.arange(int(rt60 * SR)) / SR
    rir = (rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)).astype(np.float32)
    rir[0] = 3.0
    return rir


def through_room(wave: np.ndarray, start: int, rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    pre = SR // 2
    return mic_chain(wave[start - pre : start + int(seconds * SR)], SR, room(rng), rng, pre)


def test_a_clip_through_a_room_shares_landmarks_with_its_song_at_its_own_offset(waves):
    song_peaks = [peaks(w) for w in waves]
    assert all(80 <= len(p) / 20.0 <= LC.peaks_per_second for p in song_peaks), "about 100 peaks a second"
    rng = np.random.default_rng(3)
    right, wrong, first, placed = [], [], 0, []
    for trial in range(12):
        i, start = trial % 4, int(rng.integers(SR, 14 * SR))
        query = landmarks(through_room(waves[i], start, rng))
        expected = start / LC.hop + 15  # the fingerprints place a query to ~0.3 s
        ev = [aligned_evidence(query, p, expected, 1.2 / LC.frame_seconds) for p in song_peaks]
        right.append(ev[i].excess)
        wrong += [e.excess for j, e in enumerate(ev) if j != i]
        first += int(np.argmax([e.excess for e in ev]) == i)
        if ev[i].excess >= 6:
            placed.append(abs(ev[i].offset - start / LC.hop))
    assert np.mean(right) > 2 * np.mean(wrong), (right, wrong)
    assert first >= 8, f"the clip's own song has the most evidence for {first} of 12 clips"
    assert placed and np.median(placed) <= 2, f"where the evidence is strong it places the clip to a frame: {placed}"


def test_the_peak_neighbourhood_is_scipys_maximum_filter():
    from scipy.ndimage import maximum_filter

    from shazamlet.landmarks import _running_max

    a = np.random.default_rng(0).standard_normal((90, 60)).astype(np.float32)
    assert np.array_equal(_running_max(_running_max(a, 3, 1), 2, 0), maximum_filter(a, size=(5, 7)))


def test_long_files_are_analysed_in_pieces_with_the_same_result(waves):
    """A one-hour mix must not need a gigabyte for its spectrogram: pieces give exactly the same peaks."""
    wave = np.concatenate(waves)
    whole = peaks(wave, chunk_frames=10**6)
    assert np.array_equal(peaks(wave, chunk_frames=97), whole)
    from shazamlet.landmarks import pair

    a, b = pair(whole), pair(whole, chunk=333)
    assert len(a) > 1000 and np.array_equal(a.times, b.times) and np.array_equal(a.hashes, b.hashes)


def test_each_peak_pairs_with_the_next_fan_out_peaks_within_reach():
    """`pair` against the definition, peak by peak, across its chunks' edges and at the end of the peaks."""
    rng = np.random.default_rng(4)
    t = np.sort(rng.integers(0, 400, 900))
    f = rng.integers(0, 300, len(t))
    order = np.lexsort((f, t))
    packed = (t[order].astype(np.int64) << BIN_BITS) | f[order]
    t, f = t[order], f[order]
    want = []
    for i in range(len(t)):
        later = [j for j in range(i + 1, min(len(t), i + 1 + 4 * LC.fan_out))
                 if 0 < t[j] - t[i] <= LC.max_dt and abs(f[j] - f[i]) <= LC.max_df][: LC.fan_out]
        want += [(t[i], ((f[i] // LC.bin_step) << 12) | (((f[j] - f[i] + LC.max_df) // LC.bin_step) << 6)
                  | ((t[j] - t[i]) // LC.frame_step)) for j in later]
    for chunk in (20_000, 97):
        got = pair(packed, LC, chunk)
        assert list(zip(got.times.tolist(), got.hashes.tolist())) == [(int(a), int(b)) for a, b in want]


def test_silence_and_short_audio_have_no_landmarks():
    assert len(peaks(np.zeros(5 * SR, np.float32))) == 0
    assert len(landmarks(np.zeros(100, np.float32))) == 0
    tone = np.sin(2 * np.pi * 440 * np.arange(5 * SR) / SR).astype(np.float32)
    quiet = np.r_[np.zeros(2 * SR, np.float32), tone[: 3 * SR]]
    assert len(peaks(quiet)) and (peaks(quiet) >> BIN_BITS).min() >= int(1.9 * SR / LC.hop), "none in the silence"


def test_a_candidate_with_landmark_evidence_outranks_a_slightly_closer_look_alike():
    votes = [SongVote(1, 0.62, 100.0, 5), SongVote(2, 0.58, 40.0, 4)]
    cfg = VerifyConfig()
    ranked = blend_evidence(votes, [PeakEvidence(0.5), PeakEvidence(20.0)], [None, 41.5], cfg)
    assert [v.song_id for v in ranked] == [2, 1]
    assert ranked[0].offset_frames == 41.5 and ranked[1].offset_frames == 100.0
    assert all(0.0 <= v.similarity <= 1.0 for v in ranked)
    # without evidence for anyone, the fingerprints' order stands
    assert [v.song_id for v in blend_evidence(votes, [PeakEvidence(0.0)] * 2, [None, None], cfg)] == [1, 2]
    # presence at chance level (under the floor) changes nothing; clear presence does what landmarks do
    assert [v.song_id for v in blend_evidence(votes, [PeakEvidence(0.0, 2.9), PeakEvidence(0.0, 2.5)], [None] * 2,
                                              cfg)] == [1, 2]
    assert [v.song_id for v in blend_evidence(votes, [PeakEvidence(0.0, 2.0), PeakEvidence(0.0, 9.0)], [None] * 2,
                                              cfg)] == [2, 1]
    # evidence that says nothing (a drone: every offset alike) leaves the fingerprints' score as it is, and a
    # clean match with strong evidence scores near 1
    assert blended_similarity(0.8, PeakEvidence(0.0, 1.0), cfg) == pytest.approx(0.8)
    assert 0.97 < blended_similarity(0.9, PeakEvidence(60.0, 20.0), cfg) < 1.0


def checking(lib: Library, embedder: TileEmbedder) -> Recognizer:
    """A recognizer that checks every answer's peaks (the app skips answers its fingerprints are sure of)."""
    return Recognizer(lib, embedder, config=RecognitionConfig(verify=VerifyConfig(sure_margin=0.0)))


def test_a_clear_lead_is_answered_without_the_peak_checks_but_a_lone_song_never(tmp_path, embedder, songs, waves):
    lib = Library.open(tmp_path / "lib", embedder)
    lib.add(songs)
    clip = waves[1][5 * SR : 8 * SR]
    trace = Trace()
    sure = Recognizer(lib, embedder).identify_wave(clip, trace)
    assert sure.song is not None and sure.song.path == str(songs[1])
    assert trace.fingerprint_raw_score >= VerifyConfig().sure_margin and not trace.landmarks
    assert sure.song.landmarks is None and sure.song.presence is None, "its peaks were not looked at"
    checked = checking(lib, embedder).identify_wave(clip)
    assert checked.song.path == sure.song.path and checked.song.landmarks is not None
    lib.close()
    alone = Library.open(tmp_path / "one", embedder)
    alone.add(songs[1:2])
    answer = Recognizer(alone, embedder).identify_wave(clip)
    assert answer.candidates[0].landmarks is not None, "a song without rivals is always checked"
    alone.close()


def test_answers_are_ranked_and_placed_by_landmarks(tmp_path, embedder, songs, waves):
    lib = Library.open(tmp_path / "lib", embedder)
    lib.add(songs)
    rec = checking(lib, embedder)
    rng = np.random.default_rng(11)
    errors = []
    for i in range(4):
        start = int(rng.integers(2 * SR, 14 * SR))
        answer = rec.identify_wave(add_noise(waves[i][start : start + 4 * SR], 10.0, seed=i))
        assert answer.candidates[0].landmarks is not None and answer.candidates[0].path == str(songs[i])
        top = answer.candidates[0]
        assert top.landmarks is not None and all(top.landmarks > c.landmarks for c in answer.candidates[1:])
        errors.append(abs(top.offset_s - start / SR))
    # the fingerprints alone place a query to about a third of a second; landmarks to a few frames
    assert np.median(errors) < 0.1, errors
    lib.close()


def test_a_candidate_aligned_to_the_wrong_place_is_moved_where_its_landmarks_line_up(tmp_path, embedder, songs, waves):
    lib = Library.open(tmp_path / "lib", embedder)
    lib.add(songs)
    rec = Recognizer(lib, embedder)
    clip = add_noise(waves[1][8 * SR : 11 * SR + SR // 10], 30.0, seed=3)  # one full tile
    song_id = next(s.id for s in lib.songs() if s.path == str(songs[1]))
    frame_s = embedder.features.frame_seconds
    wrong = SongVote(song_id, 0.3, 2.0 / frame_s, 1)  # as if the fingerprints had matched a repeat at 2 s
    query = rec.encode(clip)
    checked = verify(query, [wrong], lib, rec.cfg.verify, rec.cfg.nominate.rescore_tolerance_frames, True,
                     lambda e: peaks_above_chance(e, rec.cfg.decide))
    moved, counts = checked.votes[0], checked.landmarks
    assert abs(moved.offset_frames * frame_s - 8.0) < 0.1, moved
    stay = blend_evidence([wrong], [PeakEvidence(0.0)], [None], rec.cfg.verify)[0]
    assert moved.similarity > stay.similarity + 0.2 and counts[song_id] > 20
    lib.close()


def test_a_model_calibrated_for_another_ranking_gets_the_cautious_threshold(tmp_path, random_model):
    """The peak checks' scores are never below the fingerprints' own, so a landmark threshold calibrated on
    another ranking (stop 16's linear blend, or none recorded) would accept too easily: the higher one serves."""
    from shazamlet.recognition.verify import RANKING
    from shazamlet.model import load_model, save_model

    m = load_model(random_model)
    got = {}
    for ranking in (None, "linear landmarks/1", RANKING):
        m.meta.threshold, m.meta.landmark_threshold = 0.19, 0.12
        m.meta.extra = {} if ranking is None else {"ranking": ranking}
        save_model(tmp_path / "m.pt", m.encoder, m.meta)
        emb = TileEmbedder(str(tmp_path / "m.pt"))
        lib = Library.open(tmp_path / f"lib-{len(got)}", emb)
        got[ranking] = Recognizer(lib, emb).landmark_threshold
        lib.close()
    assert got == {None: 0.19, "linear landmarks/1": 0.19, RANKING: 0.12}


def test_the_presence_search_nominates_the_song_the_fingerprints_left_out(tmp_path, embedder, songs, waves, monkeypatch):
    """With the right song's tiles taken out of every neighbour list (as when a clip's fingerprint lands far
    from it), only the presence search can bring it back: with the search the app names it, without it not.
    A library larger than `presence_search_songs` searches only that many songs, those nearest the clip.
    The search runs only while the answer is unsure (here: an acceptance threshold no answer reaches); an
    answer accepted without it is not searched."""
    import shazamlet.recognition.nominate as nominate_module

    lib = Library.open(tmp_path / "lib", embedder)
    lib.add(songs)
    right = next(s.id for s in lib.songs() if s.path == str(songs[2]))
    found_by = lib.neighbours

    def without_right_song(fps, starts, k=None):
        nb = found_by(fps, starts, k)
        nb.song_ids = np.where(nb.song_ids == right, -1, nb.song_ids)
        return nb

    monkeypatch.setattr(lib, "neighbours", without_right_song)
    searched = []
    search = nominate_module.presence_search

    def spy(heard, candidates, *args, **kwargs):
        searched.append(len(candidates))
        return search(heard, candidates, *args, **kwargs)

    monkeypatch.setattr(nominate_module, "presence_search", spy)
    clip = through_room(waves[2], 9 * SR, np.random.default_rng(21))
    accepted = Recognizer(lib, embedder, landmark_threshold=0.0).identify_wave(clip)
    assert accepted.song is not None and searched == [], "an accepted answer is not searched"
    unsure = 0.99
    import shazamlet.recognition.recognizer as stages
    import shazamlet.recognition.verify as verify_module

    checks, verified = [], []
    real_check, real_verify = verify_module.aligned_evidence, stages.verify
    monkeypatch.setattr(verify_module, "aligned_evidence",
                        lambda q, p, at, *a: checks.append((p.tobytes(), at)) or real_check(q, p, at, *a))
    monkeypatch.setattr(stages, "verify", lambda *a, **k: verified.append(1) or real_verify(*a, **k))
    with_search = Recognizer(lib, embedder, landmark_threshold=unsure).identify_wave(clip)
    assert searched == [4], "a small library is searched whole"
    # the candidates are checked again with the search's nominee among them: each one's peaks only once
    assert len(verified) >= 2 and checks and len(set(checks)) == len(checks)
    assert with_search.candidates and with_search.candidates[0].song_id == right, with_search.candidates
    assert abs(with_search.candidates[0].offset_s - 9.0) < 0.5
    without = Recognizer(lib, embedder, config=RecognitionConfig(nominate=NominateConfig(presence_search_top=0)),
                         landmark_threshold=unsure).identify_wave(clip)
    assert right not in [c.song_id for c in without.candidates]
    bounded = Recognizer(lib, embedder, config=RecognitionConfig(nominate=NominateConfig(presence_search_songs=2)),
                         landmark_threshold=unsure).identify_wave(clip)
    assert 1 <= searched[-1] <= 2 and right not in [c.song_id for c in bounded.candidates], "only the 2 nearest songs"


def test_a_nominee_the_fingerprints_ranked_last_is_not_pushed_out_by_the_other_nominees(monkeypatch):
    """The search names the fingerprints' weakest candidate first and two songs they did not hold: all
    three are checked, and the fingerprints' weakest other candidates make room (a review finding)."""
    import types

    import shazamlet.recognition.nominate as nominate_module
    from shazamlet.presence import Nominee, PresenceMap

    cfg = NominateConfig()
    top = 8  # room for the three nominees and the three strongest others (the shipped setting checks 5)
    votes = [SongVote(i, 0.9 - 0.01 * i, 10.0, 5) for i in range(top)]
    weakest = votes[-1].song_id
    monkeypatch.setattr(nominate_module, "rescore_aligned",
                        lambda vs, *a, **k: [SongVote(vs[0].song_id, 0.5, vs[0].offset_frames, 3)])
    library = types.SimpleNamespace(genres=lambda: {i: None for i in range(200)}, landmark_config=LC,
                                    song_peaks=lambda i: np.ones(30, np.int64), song_tiles=None,
                                    song=lambda i: types.SimpleNamespace(id=i))
    query = types.SimpleNamespace(presence_map=PresenceMap(np.zeros((5, 3), np.float32), 0), fingerprints=None,
                                  landmark_frames_per_frame=2.0)
    nominees = Nominees(types.SimpleNamespace(query_starts=None), votes, {}, {})
    found = [Nominee(weakest, 20, 9.0), Nominee(100, 0, 3.0), Nominee(101, 0, 2.5)]
    out = join_presence_nominees(query, nominees, found, library, cfg, top)
    ids = [v.song_id for v in out]
    assert len(ids) == top and {weakest, 100, 101} <= set(ids), ids
    assert ids[:3] == [0, 1, 2], "the fingerprints' strongest stay"


def test_a_library_of_one_song_names_that_song_and_no_other(tmp_path, embedder, songs, waves):
    """With no other song to be the runner-up, only the peaks' own evidence can accept an answer:
    before, any clip of other music was named as the library's one song."""
    lib = Library.open(tmp_path / "lib", embedder)
    lib.add(songs[:1])
    rec = Recognizer(lib, embedder)
    rng = np.random.default_rng(11)
    own = [rec.identify_wave(clip) for clip in
           [waves[0][s : s + 3 * SR] for s in (2 * SR, 9 * SR)]
           + [through_room(waves[0], s, rng) for s in (4 * SR, 12 * SR)]]
    assert sum(a.song is not None and a.song.path == str(songs[0]) for a in own) >= 3, [a.raw_score for a in own]
    others = [rec.identify_wave(clip) for i in (1, 2, 3) for clip in
              (waves[i][5 * SR : 8 * SR], through_room(waves[i], 11 * SR, rng))]
    assert all(a.song is None for a in others), [a.raw_score for a in others]


def test_a_song_kept_twice_is_named_and_its_copy_is_no_rival(tmp_path, embedder, songs, waves):
    """The same recording in two files (another encode, another gain) shares its peaks with itself; as
    each other's runner-up the two copies were never named."""
    copy = tmp_path / "compilation" / "copy.flac"
    copy.parent.mkdir()
    sf.write(copy, (0.7 * waves[1]).astype(np.float32), SR)
    lib = Library.open(tmp_path / "lib", embedder)
    lib.add(songs + [copy])
    ids = {s.path: s.id for s in lib.songs()}
    a, b = lib.song_peaks(ids[str(songs[1])]), lib.song_peaks(ids[str(copy)])
    assert shared_peaks(a, 100, b, 100, 130) > 0.8
    assert shared_peaks(a, 100, lib.song_peaks(ids[str(songs[2])]), 100, 130) < 0.2
    rec = Recognizer(lib, embedder)
    rng = np.random.default_rng(12)
    answers = [rec.identify_wave(clip) for clip in
               [waves[1][s : s + 3 * SR] for s in (3 * SR, 10 * SR)] + [through_room(waves[1], s, rng) for s in (6 * SR, 13 * SR)]]
    named = [a.song.path for a in answers if a.song is not None]
    assert len(named) >= 3 and set(named) <= {str(songs[1]), str(copy)}, [a.raw_score for a in answers]
    # the other songs are named as before, their copy-free rivals unchanged
    other = rec.identify_wave(waves[3][4 * SR : 7 * SR])
    assert other.song is not None and other.song.path == str(songs[3])
