"""The library as a user drives it: adding, genres, duplicates, changes, removal, bad files, crashes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import LIB_HOP_SAMPLES, aligned_clip
from synth import STYLES, make_song

from shazamlet.library import Library, ModelMismatch
from shazamlet.model import TileEmbedder
from shazamlet.recognition import Recognizer

SR = 22_050


@pytest.fixture()
def library(tmp_path, random_embedder, synth_music) -> Library:
    lib = Library.open(tmp_path / "lib", random_embedder)
    report = lib.add([synth_music])
    assert len(report.added) == 12 and not report.errors
    yield lib
    lib.close()


def identify(lib: Library, wave: np.ndarray):
    return Recognizer(lib, lib.embedder).identify_wave(wave)


def test_add_folder_identifies_aligned_clips_with_offset(library, synth_music):
    for path in sorted(synth_music.rglob("*.wav"))[::3]:
        wave, _ = sf.read(path, dtype="float32")
        answer = identify(library, aligned_clip(wave, 9))
        assert answer.song is not None and answer.song.path == str(path)
        assert answer.song.offset_s == pytest.approx(9 * LIB_HOP_SAMPLES / SR, abs=0.1)


def test_genre_from_top_folder_and_votes(library, synth_music):
    songs = library.songs()
    assert {s.genre for s in songs} == {st.name for st in STYLES}
    for s in songs:
        assert Path(s.path).parent.name == s.genre
    wave, _ = sf.read(synth_music / "techno" / "techno_song_01.wav", dtype="float32")
    answer = identify(library, aligned_clip(wave, 4))
    assert answer.genre is not None and answer.genre.label == "techno"
    assert sum(answer.genre.votes.values()) == pytest.approx(1.0)


def test_genre_from_folder_directly_under_root(tmp_path, random_embedder, synth_music):
    root = tmp_path / "Music"
    (root / "Jazz" / "album one").mkdir(parents=True)
    shutil.copy(synth_music / "ballad" / "ballad_song_00.wav", root / "Jazz" / "album one" / "a.wav")
    lib = Library.open(tmp_path / "lib", random_embedder)
    lib.add([root])
    assert [s.genre for s in lib.songs()] == ["Jazz"]


def test_genre_from_tags_with_folder_fallback(tmp_path, random_embedder):
    from mutagen.flac import FLAC

    root = tmp_path / "Music" / "Unsorted"
    root.mkdir(parents=True)
    tagged, untagged = root / "tagged.flac", root / "plain.flac"
    sf.write(tagged, make_song(11, STYLES[0], 8.0), SR)
    sf.write(untagged, make_song(12, STYLES[1], 8.0), SR)
    f = FLAC(tagged)
    f["genre"], f["title"], f["artist"] = "Bossa Nova", "Garota", "Someone"
    f.save()
    lib = Library.open(tmp_path / "lib", random_embedder)
    lib.add([tmp_path / "Music"], genre_from="tag")
    by_name = {Path(s.path).name: s for s in lib.songs()}
    assert by_name["tagged.flac"].genre == "Bossa Nova"
    assert (by_name["tagged.flac"].title, by_name["tagged.flac"].artist) == ("Garota", "Someone")
    assert by_name["plain.flac"].genre == "Unsorted"  # the folder under the given root


def test_same_file_twice_is_not_duplicated_and_changed_file_is_reembedded(library, synth_music):
    n = len(library.songs())
    again = library.add([synth_music])
    assert len(again.unchanged) == n and not again.added
    assert len(library.songs()) == n
    target = synth_music / "rock" / "rock_song_02.wav"
    new_audio = make_song(4242, STYLES[2], 16.0)
    sf.write(target, new_audio, SR)
    report = library.add([target])
    assert report.updated == [str(target)]
    answer = identify(library, aligned_clip(new_audio, 6))
    assert answer.song is not None and answer.song.path == str(target)


def test_remove_and_readd(library, synth_music):
    target = synth_music / "chiptune" / "chiptune_song_00.wav"
    wave, _ = sf.read(target, dtype="float32")
    clip = aligned_clip(wave, 5)
    gone = library.remove([synth_music / "chiptune"])
    assert len(gone) == 3 and all("chiptune" not in s.path for s in library.songs())
    answer = identify(library, clip)
    assert answer.song is None or answer.song.path != str(target)
    library.add([target])
    assert identify(library, clip).song.path == str(target)


def test_bad_files_are_reported_one_line_each_and_the_rest_is_added(tmp_path, random_embedder):
    root = tmp_path / "Mixed"
    root.mkdir()
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    (root / "empty.flac").write_bytes(b"")
    sf.write(root / "short.wav", make_song(1, STYLES[0], 1.5), SR)
    sf.write(root / "silence.wav", np.zeros(SR * 5, np.float32), SR)
    song = make_song(2, STYLES[1], 10.0)
    from shazamlet.audio.decode import resample

    sf.write(root / "phone_8k.wav", resample(song, SR, 8000), 8000)
    sf.write(root / "surround_6ch.wav", np.stack([song * g for g in (1, .8, .6, .4, .2, .1)], axis=1), SR)
    lib = Library.open(tmp_path / "lib", random_embedder)
    report = lib.add([root])
    assert sorted(Path(p).name for p in report.added) == ["phone_8k.wav", "surround_6ch.wav"]
    msgs = {Path(e.split(":")[0]).name: e for e in report.errors}
    assert set(msgs) == {"corrupt.wav", "empty.flac", "short.wav", "silence.wav"}
    assert all("\n" not in m for m in msgs.values())
    assert "too short" in msgs["short.wav"] and "silent" in msgs["silence.wav"]
    # both odd files are usable: a 6-channel clip at 22.05 kHz finds its song
    answer = identify(lib, aligned_clip(song, 3))
    assert answer.song is not None and answer.song.path.endswith("surround_6ch.wav")


def test_library_opened_with_another_model_says_so_and_reindex_fixes_it(library, other_random_model, synth_music):
    other = TileEmbedder(str(other_random_model))
    with pytest.raises(ModelMismatch) as exc:
        Library.open(library.folder, other)
    assert "reindex" in str(exc.value) and "\n" not in str(exc.value)
    lib2 = Library.open(library.folder, other, check_model=False)
    report = lib2.reindex()
    assert len(report.added) == 12
    lib3 = Library.open(library.folder, other)  # no longer raises
    wave, _ = sf.read(synth_music / "ballad" / "ballad_song_02.wav", dtype="float32")
    assert identify(lib3, aligned_clip(wave, 7)).song.path.endswith("ballad_song_02.wav")


def test_a_model_file_recalibrated_since_keeps_its_library_but_changed_weights_do_not(library, random_model,
                                                                                      tmp_path, synth_music):
    """A library records what makes the fingerprints, not the file: new thresholds or a new description
    (what the trainer's `export` writes after another evaluation) need no reindex; one changed weight does."""
    import torch

    from shazamlet.model import load_model, save_model

    m = load_model(random_model)
    m.meta.threshold, m.meta.landmark_threshold, m.meta.trained_on = 0.31, 0.27, "recalibrated"
    recal = tmp_path / "recalibrated.pt"
    save_model(recal, m.encoder, m.meta)
    emb = TileEmbedder(str(recal))
    assert emb.model.sha256 != library.embedder.model.sha256, "another file"
    lib = Library.open(library.folder, emb)  # no ModelMismatch
    wave, _ = sf.read(synth_music / "rock" / "rock_song_01.wav", dtype="float32")
    answer = Recognizer(lib, emb).identify_wave(aligned_clip(wave, 5))
    assert answer.song.path.endswith("rock_song_01.wav") and Recognizer(lib, emb).threshold == 0.31
    lib.close()
    # a library that recorded the file's own sha256 (an earlier version did) is recognised as this file's
    with library.catalog.db:
        library.catalog.db.execute("UPDATE meta SET value = ? WHERE key = 'model_sha256'", (m.sha256,))
    Library.open(library.folder, TileEmbedder(str(random_model))).close()
    assert library.catalog.get_meta("model_sha256") == m.fingerprints
    with torch.no_grad():
        next(m.encoder.parameters()).view(-1)[0] += 1e-3
    save_model(tmp_path / "changed.pt", m.encoder, m.meta)
    with pytest.raises(ModelMismatch):
        Library.open(library.folder, TileEmbedder(str(tmp_path / "changed.pt")))


def test_truncated_or_corrupted_index_is_rebuilt(library, synth_music, random_embedder):
    record = library.index_record()
    ann = library.folder / record.ann_file
    library.close()
    ann.write_bytes(ann.read_bytes()[: ann.stat().st_size // 3])  # truncated
    lib = Library.open(library.folder, random_embedder)
    wave, _ = sf.read(synth_music / "rock" / "rock_song_00.wav", dtype="float32")
    assert identify(lib, aligned_clip(wave, 2)).song.path.endswith("rock_song_00.wav")
    record2 = lib.index_record()
    assert record2.generation == record.generation + 1
    lib.close()
    ann2 = lib.folder / record2.ann_file
    data = bytearray(ann2.read_bytes())
    data[100:400] = bytes(300)  # same size, altered content
    ann2.write_bytes(bytes(data))
    lib = Library.open(library.folder, random_embedder)
    assert identify(lib, aligned_clip(wave, 2)).song.path.endswith("rock_song_00.wav")
    assert lib.index_record().generation == record.generation + 2


def test_identification_goes_on_while_songs_are_added_and_removed(library, synth_music, tmp_path):
    # The window identifies on its listen thread while the core thread adds songs: every add ends
    # by swapping in a new index generation and unloading the old one, under a query's feet.
    import threading

    wave, _ = sf.read(synth_music / "techno" / "techno_song_01.wav", dtype="float32")
    clip = aligned_clip(wave, 5)
    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(3):
        sf.write(extra / f"new_{i}.wav", make_song(100 + i, STYLES[i % len(STYLES)], seconds=12), SR)
    answers, failures, stop = [], [], threading.Event()

    def listen() -> None:
        rec = Recognizer(library, library.embedder)
        while not stop.is_set():
            try:
                answers.append(rec.identify_wave(clip))
            except Exception as exc:  # noqa: BLE001 - any failure on this thread is the bug
                failures.append(exc)
                return

    thread = threading.Thread(target=listen)
    thread.start()
    try:
        for _ in range(2):
            library.add([extra])
            library.remove([extra])
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failures
    assert len(answers) >= 2
    assert all(a.song is not None and a.song.title == answers[0].song.title for a in answers)
