"""A library keeps every song's spectral peaks: in its fingerprint file, and in one file beside each index
generation (the peak pack) that the checks read. Damage to either never costs an answer more than its
peaks; songs added by a version without peaks are matched by fingerprints until reindexed."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import soundfile as sf
from test_landmarks import SR, checking, embedder, songs, waves  # noqa: F401  (fixtures)

from shazamlet.config import IndexConfig
from shazamlet.landmarks import BIN_BITS, peaks
from shazamlet.library import Library


def test_the_library_keeps_each_songs_peaks_compactly(tmp_path, embedder, songs):
    lib = Library.open(tmp_path / "lib", embedder)
    assert len(lib.add(songs).added) == len(songs)
    by_path = {s.path: s for s in lib.songs()}
    for path in songs:
        s = by_path[str(path)]
        stored = lib.song_peaks(s.id)
        wave, _ = sf.read(path, dtype="float32")  # as written: 16-bit
        assert np.array_equal(stored, peaks(wave)), "the index's pack gives back exactly the peaks found"
        assert np.array_equal(lib.store.read_peaks(s.emb_file), stored), "and so does the song's own file"
        assert np.all(np.diff(stored >> BIN_BITS) >= 0)
        peak_bytes = sum(zi.compress_size for zi in zipfile.ZipFile(lib.store.folder / s.emb_file).infolist()
                         if zi.filename.startswith("peak_"))
        assert peak_bytes < 0.6 * 4 * len(stored), "deflated to well under the int32s"
    assert lib.songs_from_older_version() == []
    lib.close()


def test_songs_added_without_peaks_are_matched_by_fingerprints_until_reindexed(tmp_path, embedder, songs, waves):
    folder = tmp_path / "old"
    lib = Library.open(folder, embedder, index_cfg=IndexConfig(landmarks=False))
    lib.add(songs[:2])
    lib.close()
    lib = Library.open(folder, embedder)  # a version that keeps peaks
    lib.add(songs[2:])
    assert sorted(s.path for s in lib.songs_from_older_version()) == sorted(map(str, songs[:2]))
    rec = checking(lib, embedder)
    clip = waves[1][5 * SR : 8 * SR]
    answer = rec.identify_wave(clip)
    assert answer.candidates[0].path == str(songs[1])
    assert answer.candidates[0].landmarks is None, "a candidate without peaks: the candidates are ranked by fingerprints alone"
    lib.reindex()
    assert lib.songs_from_older_version() == []
    answer = checking(lib, embedder).identify_wave(clip)
    assert answer.candidates[0].landmarks is not None and answer.candidates[0].path == str(songs[1])
    lib.close()


def test_the_peak_pack_is_checked_and_a_damaged_one_rebuilt(tmp_path, embedder, songs, waves):
    lib = Library.open(tmp_path / "lib", embedder)
    lib.add(songs)
    record = lib.index_record()
    pack = lib.folder / record.peaks_file
    assert pack.name in {name for name, *_ in record.files()}, "checked with the index's other files"
    lib.close()
    pack.write_bytes(pack.read_bytes()[:-400])  # truncated
    lib = Library.open(lib.folder, embedder)
    answer = checking(lib, embedder).identify_wave(waves[1][5 * SR : 8 * SR])
    assert answer.song.path == str(songs[1]) and answer.song.landmarks
    assert lib.index_record().generation == record.generation + 1, "rebuilt from the fingerprint files"
    with lib.catalog.db:  # a record edited by hand: its spans no longer fit the file
        raw = lib.catalog.get_json("index")
        raw["peak_bounds"][-1] += 7
        lib.catalog.set_json("index", raw)
    lib.close()
    lib = Library.open(lib.folder, embedder)
    assert checking(lib, embedder).identify_wave(waves[1][5 * SR : 8 * SR]).song.path == str(songs[1])
    assert lib.index_record().generation == record.generation + 2
    lib.close()


@pytest.mark.parametrize("damage", ["truncated", "bit flips in the peaks"])
def test_a_damaged_fingerprint_file_leaves_the_answer_to_the_fingerprints(tmp_path, embedder, songs, waves, damage):
    lib = Library.open(tmp_path / "lib", embedder)
    lib.add(songs)
    with lib.catalog.db:  # an index from before the peak pack: the peaks are read from the songs' files
        raw = lib.catalog.get_json("index")
        raw.update(peaks_file="", peak_songs=[], peak_bounds=[])
        lib.catalog.set_json("index", raw)
    lib.close()
    lib = Library.open(tmp_path / "lib", embedder)
    damaged = next(s for s in lib.songs() if s.path == str(songs[2]))
    path = lib.store.folder / damaged.emb_file
    data = bytearray(path.read_bytes())
    if damage == "truncated":  # e.g. a disk that filled up
        data = data[:200]
    else:
        member = next(zi for zi in zipfile.ZipFile(path).infolist() if zi.filename == "peak_bins.npy")
        at = member.header_offset + 30 + len(member.filename) + member.compress_size // 2
        data[at : at + 8] = bytes(b ^ 0xFF for b in data[at : at + 8])
    path.write_bytes(bytes(data))
    answer = checking(lib, embedder).identify_wave(waves[2][5 * SR : 8 * SR])
    assert answer.candidates and answer.candidates[0].landmarks is None
    assert answer.candidates[0].path == str(songs[2]), "the index still holds its fingerprints"
    if damage == "truncated":  # its directory is unreadable (flipped bits show only when the member is read)
        assert lib.songs_from_older_version() == [], "set aside as damaged, not older"
        assert [s.path for s in lib.unindexed_songs()] == [str(songs[2])], "`library info` says: pending, `library add`"
    lib.close()


def test_a_library_from_before_landmarks_keeps_peaks_for_the_songs_added_now(tmp_path, embedder, songs, waves):
    lib = Library.open(tmp_path / "lib", embedder, index_cfg=IndexConfig(landmarks=False))
    lib.add(songs[:2])
    with lib.catalog.db:  # as a catalog written before landmarks existed
        lib.catalog.db.execute("DELETE FROM meta WHERE key = 'landmarks'")
    lib.close()
    lib = Library.open(tmp_path / "lib", embedder)
    lib.add(songs[2:])
    assert sorted(s.path for s in lib.songs_from_older_version()) == sorted(map(str, songs[:2]))
    assert lib.song_peaks(next(s.id for s in lib.songs() if s.path == str(songs[3]))) is not None
    lib.reindex()
    answer = checking(lib, embedder).identify_wave(waves[0][5 * SR : 8 * SR])
    assert answer.candidates[0].landmarks is not None and answer.candidates[0].path == str(songs[0])
    lib.close()
