"""What needs a trained ear, with the bundled model: random offsets, noise, speech, open set.

The music here is synthesised in the test (never heard in training): twenty songs in four styles.
The bars are set below what the model measures (see the trainer's report for the real accuracy on
real music), so a failure means something broke, not that the weather changed.

"Identified" is the best candidate; "accepted" is `song` not null, i.e. above the model's calibrated
threshold. The threshold was calibrated on real music. Measured with the bundled model (`centre-ft` with
a 128-d noise-whitened, trained tile projection and its convolutional residual, at weight 0.85): 20/20
clean excerpts ranked first, 20 accepted, the offset right for 19, no wrong song accepted; 20/20 through
noise at 10 dB; 18/20 with a voice 6 dB under the music; 9/12 unknown songs rejected (11/12 before the
library kept in-between tiles: two synthetic unknowns find an in-between tile of a look-alike song at cosine
0.66-0.72; on real music rejection stayed at 98%; the linear projection before the residual: 20, 20, 19, 0;
19; 17; 11). (An older projection, onto principal directions of
clean tiles, matched identical repeats of these songs' 8-note motif as well as the excerpt's own place,
and got 13 offsets of 19 right.) Real music: resources/report/MODEL_CARD.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from synth import STYLES, add_noise, make_song, speech

from shazamlet.recognition import Recognizer

SR = 22_050


@pytest.fixture(scope="module")
def setup(trained_library):
    lib, embedder, paths = trained_library
    return Recognizer(lib, embedder), paths


def excerpts(paths, seed):
    """One 3-s excerpt per song at a random offset that is not a multiple of the library hop."""
    rng = np.random.default_rng(seed)
    for p in paths:
        wave, _ = sf.read(p, dtype="float32")
        offset = rng.uniform(0.2, 20.0)
        start = int(offset * SR)
        yield p, offset, wave[start : start + 3 * SR]


def test_clean_3s_excerpts_at_random_offsets_give_song_and_offset(setup):
    rec, paths = setup
    right, accepted, offsets_ok, wrong_accepted = 0, 0, 0, 0
    for p, offset, clip in excerpts(paths, 1):
        answer = rec.identify_wave(clip)
        best = answer.candidates[0]
        if best.path == str(p):
            right += 1
            # within about one library hop (1.02 s); repetitive synthetic songs can also match a repeat
            offsets_ok += abs(best.offset_s - offset) < 1.1
            accepted += answer.song is not None and answer.song.path == str(p)
        else:
            wrong_accepted += answer.song is not None
    assert right >= 17, f"{right}/20 clean excerpts identified"
    assert offsets_ok >= right - 2, f"offset right for {offsets_ok} of {right}"
    assert accepted >= 8, f"{accepted}/20 accepted"
    # Known weakness of the current model: two synthetic chiptune songs (same timbre, same tempo
    # range) can be confused with high similarity; one such false acceptance was measured.
    assert wrong_accepted <= 1, f"{wrong_accepted} wrong songs accepted"


def test_3s_excerpts_with_noise_at_10_db(setup):
    rec, paths = setup
    right = sum(rec.identify_wave(add_noise(clip, 10.0, seed=i)).candidates[0].path == str(p)
                for i, (p, _, clip) in enumerate(excerpts(paths, 2)))
    assert right >= 15, f"{right}/20 noisy excerpts identified"


def test_excerpts_with_a_voice_talking_over_them(setup, tmp_path):
    rec, paths = setup
    voice = speech("Hello, could you turn the music down a little? I am trying to read the news, thank you.",
                   tmp_path / "voice.wav")
    assert voice is not None, "espeak-ng is needed for this test (installed by scripts/install.sh)"
    voice = np.tile(voice, 3)[: 3 * SR]
    right = 0
    for p, _, clip in excerpts(paths, 3):
        gain = np.sqrt(np.mean(clip ** 2) / np.mean(voice ** 2) / 10 ** (6 / 10))  # music 6 dB over the voice
        right += rec.identify_wave(clip + gain * voice).candidates[0].path == str(p)
    assert right >= 12, f"{right}/20 excerpts identified through speech"


def test_songs_not_in_the_library_come_back_null_with_a_genre(setup):
    rec, _ = setup
    rejected, with_genre = 0, 0
    for i in range(12):
        style = STYLES[i % len(STYLES)]
        clip = make_song(90_000 + i, style, 8.0)[SR : 4 * SR]
        answer = rec.identify_wave(clip)
        rejected += answer.song is None
        with_genre += answer.genre is not None and answer.genre.label in {s.name for s in STYLES}
    assert rejected >= 8, f"{rejected}/12 unknown songs rejected"
    assert with_genre == 12


def test_a_window_that_is_mostly_silence_names_no_song(setup):
    """Listening as the music starts: a second of silence and then two of a song is one tile half silent,
    which matched the start of another song that begins the same way (seen end to end). It is not matched;
    the same excerpt after room noise instead of silence is, and so is the excerpt alone."""
    rec, paths = setup
    wave, _ = sf.read(paths[4], dtype="float32")
    music = wave[5 * SR : int(7.1 * SR)]
    answer = rec.identify_wave(np.concatenate([np.zeros(SR, np.float32), music]))
    assert answer.silent and answer.song is None and not answer.candidates
    room = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    room *= np.sqrt(np.mean(music ** 2) / np.mean(room ** 2)) * 10 ** (-30 / 20)  # 30 dB under the music
    assert not rec.identify_wave(np.concatenate([room, music])).silent
    alone = rec.identify_wave(wave[5 * SR : int(8.1 * SR)])
    assert not alone.silent and alone.candidates[0].path == str(paths[4])
