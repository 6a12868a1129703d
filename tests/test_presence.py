"""Peak presence (shazamlet/presence.py): a song's peaks read off the query's spectrogram, on synthesised
songs through a room with several espeak-ng voices talking as loud as the music."""

from __future__ import annotations

import numpy as np
import pytest
from synth import STYLES, make_song, speech

from shazamlet.config import LandmarkConfig
from shazamlet.recognition import VerifyConfig
from shazamlet.landmarks import aligned_evidence, landmarks, peaks
from shazamlet.presence import _offset_totals, presence, presence_map, presence_search
from trainer.degrade_wave import mic_chain, rms

SR = 22_050
LC = LandmarkConfig()
SLACK = 1.2 / LC.frame_seconds


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    return [make_song(700 + i, STYLES[i % len(STYLES)], 20.0) for i in range(4)]


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> np.ndarray:
    """Four talkers at once: espeak-ng voices saying different things, each looped to 20 s."""
    d = tmp_path_factory.mktemp("voices")
    texts = ["Could you turn the music down a little, I am trying to read the news.",
             "The train to the city leaves at seven, and the next one only after nine tonight.",
             "We should buy bread, milk and some apples on the way back from work tomorrow.",
             "Nobody told me the meeting had been moved to the room on the second floor."]
    out = np.zeros(20 * SR, np.float32)
    for i, text in enumerate(texts):
        v = speech(text, d / f"v{i}.wav")
        assert v is not None, "espeak-ng is needed for this test (installed by scripts/install.sh)"
        out += np.roll(np.tile(v / rms(v), 20 * SR // len(v) + 1)[: 20 * SR], i * 7919)
    return out


def room(rng: np.random.Generator, rt60: float = 0.4) -> np.ndarray:
    t = np.arange(int(rt60 * SR)) / SR
    rir = (rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)).astype(np.float32)
    rir[0] = 3.0
    return rir


def babble_clip(wave: np.ndarray, voices: np.ndarray, start: int, rng: np.random.Generator) -> np.ndarray:
    """3 s of the song from `start`, with the four voices at 0 dB, through a room (its reverb fed by 0.5 s before)."""
    pre = SR // 2
    music = wave[start - pre : start + 3 * SR]
    talk = voices[int(rng.integers(0, 16 * SR)) :][: len(music)]
    return mic_chain(music, SR, room(rng), rng, pre, babble=talk, babble_snr_db=0.0)


def test_a_songs_peaks_stand_out_in_a_clip_drowned_by_voices(waves, voices):
    """Four voices at 0 dB, through a room: the right song's presence beats every other song's, at its own
    offset, for most clips; the landmarks (which need the query's own peaks) are the weaker judge here."""
    song_peaks = [peaks(w) for w in waves]
    rng = np.random.default_rng(5)
    first, placed, landmark_first, right, wrong = 0, [], 0, [], []
    for trial in range(12):
        i, start = trial % 4, int(rng.integers(SR, 14 * SR))
        clip = babble_clip(waves[i], voices, start, rng)
        heard, query = presence_map(clip, LC), landmarks(clip, LC)
        expected = start / LC.hop + 15  # the fingerprints place a query to ~0.3 s
        found = [presence(heard, p, expected, SLACK) for p in song_peaks]
        scores = [f.score for f in found]
        right.append(scores[i])
        wrong += [s for j, s in enumerate(scores) if j != i]
        first += int(np.argmax(scores) == i)
        placed.append(abs(found[i].offset - start / LC.hop))
        landmark_first += int(np.argmax([aligned_evidence(query, p, expected, SLACK).excess for p in song_peaks]) == i)
    assert first >= 10, f"the clip's own song is the most present for {first} of 12 clips"
    floor = VerifyConfig().presence_floor
    assert np.median(wrong) < floor < np.median(right) - 1.0, ("chance stays under the blend's floor", right, wrong)
    assert np.median(placed) <= 2, f"it places the clip to a frame or two: {placed}"
    assert first >= landmark_first, (first, landmark_first)
    print(f"presence first {first}/12, landmarks first {landmark_first}/12")


def test_a_gain_or_a_coloured_room_does_not_change_the_map(waves):
    """Each bin is standardised over the clip: a louder clip, or one through a strong EQ, reads the same."""
    clip = waves[0][2 * SR : 5 * SR]
    ref = presence_map(clip, LC).z
    same = np.abs(presence_map(0.05 * clip, LC).z - ref) < 0.01
    assert same.mean() > 0.99, "all but the near-silent bins (the log's floor) read the same"
    tilted = np.convolve(clip, [1.0, -0.9])[: len(clip)].astype(np.float32)  # +19 dB from bass to treble
    song = peaks(waves[0])
    at = 2 * SR / LC.hop
    a, b = presence(presence_map(clip, LC), song, at, SLACK), presence(presence_map(tilted, LC), song, at, SLACK)
    assert a.offset == b.offset and abs(a.score - b.score) < 0.25 * a.score, (a, b)


def test_silence_short_clips_and_songs_without_peaks_there_give_no_presence(waves):
    song = peaks(waves[1])
    assert presence(presence_map(np.zeros(100, np.float32), LC), song, 50.0, SLACK).score == 0.0
    heard = presence_map(waves[1][SR : 4 * SR], LC)
    assert presence(heard, np.zeros(0, np.int64), 50.0, SLACK).score == 0.0
    assert presence(heard, song, 10**6, SLACK).score == 0.0, "past the song's end"
    silent = presence(presence_map(np.zeros(3 * SR, np.float32), LC), song, 50.0, SLACK)
    assert silent.score < 1.0, "a silent clip's map is flat: nothing stands out"


def test_a_long_query_is_judged_in_blocks_with_the_same_result(waves, monkeypatch):
    """A whole file dropped on the window is one query: its song frames are read a block at a time."""
    import shazamlet.presence as P

    heard, song = presence_map(waves[2][SR : 13 * SR], LC), peaks(waves[2])
    whole = presence(heard, song, SR / LC.hop + 7, SLACK)
    monkeypatch.setattr(P, "SEARCH_BLOCK_FRAMES", 7)
    blocks = presence(heard, song, SR / LC.hop + 7, SLACK)  # (torch sums a row in another order: rounding)
    assert blocks.offset == whole.offset and blocks.score == pytest.approx(whole.score, rel=1e-5)
    assert whole.score > 2 * VerifyConfig().presence_floor and abs(whole.offset - SR / LC.hop) <= 1


def test_knocks_in_a_quiet_room_and_leading_silence_do_not_make_songs_present(waves):
    """A knock is loud in every bin of its frames at once: no song may look present because its peaks
    happen to fall there. And a clip that starts with digital silence still finds its own song."""
    rng = np.random.default_rng(9)
    song_peaks = [peaks(w) for w in waves]
    floor = VerifyConfig().presence_floor
    scores = []
    for trial in range(8):
        clip = 0.003 * rng.standard_normal(3 * SR).astype(np.float32)
        for at in rng.integers(0, 3 * SR - 600, 3):
            clip[at : at + 500] += 0.5 * rng.standard_normal(500).astype(np.float32) * np.hanning(500)
        heard = presence_map(clip, LC)
        scores += [presence(heard, p, float(rng.integers(100, 600)), SLACK).score for p in song_peaks]
    assert max(scores) < floor + 1.0 and np.median(scores) < floor, sorted(scores)[-5:]
    start = 6 * SR
    clip = np.r_[np.zeros(SR, np.float32), waves[3][start : start + 2 * SR]]
    found = [presence(presence_map(clip, LC), p, (start - SR) / LC.hop, SLACK).score for p in song_peaks]
    assert int(np.argmax(found)) == 3 and found[3] > floor + 2, found


def test_the_search_finds_the_song_and_its_place_without_being_told_where(waves, voices):
    """`presence_search` scans every offset of every song: through a room with four voices at 0 dB it names
    the clip's own song first, placed to a few frames, for most clips; noise alone stands out less."""
    songs = [(100 + i, peaks(w)) for i, w in enumerate(waves)]
    rng = np.random.default_rng(11)
    first, placed, right = 0, [], []
    for trial in range(12):
        i, start = trial % 4, int(rng.integers(SR, 14 * SR))
        clip = babble_clip(waves[i], voices, start, rng)
        found = presence_search(presence_map(clip, LC), songs, 2, SLACK)
        assert len(found) == 2 and found[0].score >= found[1].score
        if found[0].song_id == 100 + i:
            first += 1
            placed.append(abs(found[0].offset - start / LC.hop))
            right.append(found[0].score)
    assert first >= 9, f"its own song first for {first} of 12 clips"
    assert np.median(placed) <= 3, placed
    noise = [presence_search(presence_map(0.1 * rng.standard_normal(3 * SR).astype(np.float32), LC), songs, 1,
                             SLACK)[0].score for _ in range(6)]
    assert np.median(noise) < np.median(right), (noise, right)


def test_songs_searched_together_score_as_each_searched_alone(waves, monkeypatch):
    """The search lays the songs end to end, a group at a time: no song's offsets read another song's peaks
    or count its offsets in their baseline, so each song's nominee is the one it gets searched alone,
    however the songs fall into groups."""
    import shazamlet.presence as presence_module

    songs = [(10 + i, peaks(w)) for i, w in enumerate(waves)] + [(20, peaks(waves[0][: 2 * SR]))]
    clip = presence_map(waves[2][5 * SR : 8 * SR], LC)
    alone = {i: presence_search(clip, [(i, p)], 1, SLACK)[0] for i, p in songs}
    for group in (1 << 17, 2500, 1):  # all in one group, about two songs a group, one song a group
        monkeypatch.setattr(presence_module, "SEARCH_GROUP_OFFSETS", group)
        together = presence_search(clip, songs, len(songs), SLACK)
        # the same offsets; the scores to float32 rounding (sums over another number of rows at a time)
        assert {n.song_id: n.offset for n in together} == {i: n.offset for i, n in alone.items()}, group
        assert {n.song_id: n.score for n in together} == \
            pytest.approx({i: n.score for i, n in alone.items()}, abs=1e-4), group
    assert together[0].song_id == 12


def test_the_search_with_nothing_to_search_or_nothing_heard_names_nothing(waves):
    song = peaks(waves[0])
    assert presence_search(presence_map(waves[0][SR : 4 * SR], LC), [], 3, SLACK) == []
    assert presence_search(presence_map(np.zeros(100, np.float32), LC), [(1, song)], 3, SLACK) == []
    assert presence_search(presence_map(waves[0][SR : 4 * SR], LC), [(1, song)], 0, SLACK) == []
    assert presence_search(presence_map(waves[0][SR : 4 * SR], LC), [(1, np.zeros(0, np.int64))], 3, SLACK) == []


def test_the_search_places_a_long_query_where_it_starts(waves):
    """Only a long query's last ~3 s are read; the offset is still where the query itself starts."""
    songs = [(i, peaks(w)) for i, w in enumerate(waves)]
    for start_s, seconds in ((4.0, 3.0), (3.0, 10.0)):
        clip = waves[1][int(start_s * SR) : int((start_s + seconds) * SR)]
        found = presence_search(presence_map(clip, LC), songs, 1, SLACK)
        assert found[0].song_id == 1 and abs(found[0].offset - start_s * SR / LC.hop) <= 1, (seconds, found)


def test_the_offset_totals_sum_what_each_peak_reads_at_every_offset():
    """`_offset_totals` (an embedding bag and strided diagonals, in blocks) against the definition: offset
    o's total is the sum over the peaks at row o + q of the map's value at (q, the peak's bin)."""
    rng = np.random.default_rng(3)
    n, n_bins = 7, 11
    zt = rng.standard_normal((n_bins, n)).astype(np.float32)
    for song_frames, n_peaks in ((40, 90), (3, 5)):  # the second is shorter than the query
        frames = song_frames + n  # rows start n on, as in the search: room for offsets before the song
        t = np.sort(rng.integers(n, frames, n_peaks))
        f = rng.integers(0, n_bins, n_peaks)
        cum = np.concatenate([[0], np.cumsum(np.bincount(t, minlength=frames + n))])
        want = [sum(zt[b, r - o] for r, b in zip(t, f) if 0 <= r - o < n) for o in range(frames)]
        for block in (frames, 6, 1):  # blocks end mid-song and their diagonals reach into the next
            np.testing.assert_allclose(_offset_totals(f, cum, frames, zt, block), want, rtol=1e-5, atol=1e-5)
