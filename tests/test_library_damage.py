"""A library meets damage and odd input with one line each and loses nothing: a file name that is not
UTF-8, a damaged or lost catalog, a damaged fingerprint file, a reindex stopped halfway or run while
some files are gone."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import aligned_clip
from synth import STYLES, make_song

from shazamlet.cli import main
from shazamlet.library import Library, LibraryError, ModelMismatch
from shazamlet.model import TileEmbedder
from shazamlet.recognition import Recognizer

SR = 22_050
NOT_UTF8 = os.fsdecode(b"Caf\xe9.wav")  # what Python makes of that name on Linux: 'Caf\udce9.wav'


@pytest.fixture()
def music(tmp_path) -> Path:
    """MUSIC/Pop: four songs of 8 s."""
    root = tmp_path / "music" / "Pop"
    root.mkdir(parents=True)
    for i, name in enumerate(["a.wav", "b.wav", "c.wav", "d.wav"]):
        sf.write(root / name, make_song(300 + i, STYLES[i % len(STYLES)], 8.0), SR)
    return root


@pytest.fixture()
def lib(tmp_path, random_embedder, music) -> Library:
    library = Library.open(tmp_path / "lib", random_embedder)
    report = library.add([music])
    assert len(report.added) == 4 and not report.errors, report.errors
    yield library
    library.close()


def found(library: Library, path: Path, tile: int = 3) -> str | None:
    """The path of the song a clip of `path` (cut where library tile `tile` starts) is identified as."""
    wave, _ = sf.read(os.fsencode(path), dtype="float32")  # (soundfile takes a name that is not UTF-8 as bytes)
    answer = Recognizer(library, library.embedder).identify_wave(aligned_clip(wave, tile))
    return answer.song.path if answer.song else None


def reopened(library: Library, embedder: TileEmbedder | None = None, **kw) -> Library:
    library.close()
    return Library.open(library.folder, embedder or library.embedder, **kw)


def cli(library: Path, model: Path, *args: str) -> int:
    return main(["--library", str(library), "--model", str(model), *args])


# -- 1. a file name that is not valid UTF-8 ----------------------------------------------------------
def add_not_utf8(library: Library, music: Path) -> Path:
    odd = music / NOT_UTF8
    sf.write(os.fsencode(odd), make_song(399, STYLES[0], 8.0), SR)
    report = library.add([music])
    assert report.added == [str(odd)] and not report.errors, report.errors
    return odd


def test_a_file_name_that_is_not_utf8_is_added_identified_listed_and_removed(lib, music):
    odd = add_not_utf8(lib, music)
    assert found(lib, odd) == str(odd)
    lib = reopened(lib)
    song = next(s for s in lib.songs() if s.path == str(odd))  # the path round-trips through the catalog
    assert song.title == "Caf\ufffd" and os.fsencode(song.path).endswith(b"Caf\xe9.wav")
    assert str(odd) in lib.add([music]).unchanged  # found again by its path
    assert [s.path for s in lib.remove([odd])] == [str(odd)]
    assert len(lib.songs()) == 4 and found(lib, odd) != str(odd)


def test_the_command_line_lists_and_removes_a_name_that_is_not_utf8(lib, music, random_model):
    add_not_utf8(lib, music)
    lib.close()
    # a process of its own, as a user runs it, with stdout strict about UTF-8 as in a UTF-8 locale
    base = [sys.executable, "-m", "shazamlet", "--library", str(lib.folder), "--model", str(random_model), "library"]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    listing = subprocess.run([*base, "list"], capture_output=True, env=env, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert b"Caf\xe9.wav" in listing.stdout and "Caf\ufffd".encode() in listing.stdout  # the name's own bytes
    removal = subprocess.run([*base, "remove", os.fsencode(music / NOT_UTF8)], capture_output=True, env=env,
                             timeout=120)
    assert removal.returncode == 0 and removal.stdout.startswith(b"removed ") and b"Caf\xe9.wav" in removal.stdout


# -- 2. a damaged or lost catalog --------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "random pages"])
def test_a_damaged_catalog_is_one_line_that_says_what_to_do(lib, random_model, random_embedder, damage, capsys):
    catalog = lib.folder / "catalog.sqlite"
    lib.close()
    data = catalog.read_bytes()
    if damage == "truncated":
        catalog.write_bytes(data[: len(data) // 2])
    else:  # the header is intact, every page after the first is noise
        catalog.write_bytes(data[:4096] + np.random.default_rng(0).bytes(len(data) - 4096))
    with pytest.raises(LibraryError) as exc:
        Library.open(lib.folder, random_embedder)
    msg = str(exc.value)
    assert "damaged" in msg and str(catalog) in msg and "library add" in msg and "\n" not in msg
    for command in (["library", "list"], ["library", "info"], ["library", "add", str(lib.folder)]):
        assert cli(lib.folder, random_model, *command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "damaged" in err, err


def test_an_emptied_or_deleted_catalog_beside_fingerprints_is_said(lib, random_embedder, caplog):
    catalog = lib.folder / "catalog.sqlite"
    lib.close()
    catalog.write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        Library.open(lib.folder, random_embedder).close()
    assert len(caplog.records) == 1 and "4 songs' fingerprints" in caplog.text and "library add" in caplog.text
    catalog.unlink()
    with pytest.raises(LibraryError, match="missing though 4 songs' fingerprints"):
        Library.open(lib.folder, random_embedder, create=False)


# -- 3. a damaged fingerprint file -------------------------------------------------------------------
def damage_fingerprints(library: Library, song_path: Path, how: str, drop_index: bool = True) -> None:
    """Damage one song's fingerprint file; with `drop_index`, delete the index too, so that the next
    search rebuilds it from the fingerprint files."""
    song = library.catalog.song_by_path(str(song_path))
    file = library.store.folder / song.emb_file
    data = file.read_bytes()
    if how == "truncated":
        file.write_bytes(data[:1000])
    elif how == "random bytes":
        file.write_bytes(np.random.default_rng(1).bytes(len(data)))
    else:  # "altered inside": same size, the zip directory intact, a bad CRC
        file.write_bytes(data[:1500] + bytes(64) + data[1564:])
    for f in library.folder.glob("index-*") if drop_index else []:
        f.unlink()


@pytest.mark.parametrize("how", ["truncated", "random bytes"])
def test_a_damaged_fingerprint_file_leaves_its_song_pending_until_add_reembeds_it(lib, music, how, caplog):
    damaged, other = music / "b.wav", music / "c.wav"
    damage_fingerprints(lib, damaged, how)
    lib = reopened(lib)
    with caplog.at_level(logging.WARNING):
        assert found(lib, other) == str(other)  # the index is rebuilt without it
    assert len(caplog.records) == 1 and str(damaged) in caplog.text and "damaged" in caplog.text
    assert [s.path for s in lib.unindexed_songs()] == [str(damaged)]
    report = lib.add([music])
    assert report.updated == [str(damaged)] and str(damaged) not in report.unchanged
    assert found(lib, damaged) == str(damaged) and not lib.unindexed_songs()


def test_add_and_remove_go_on_past_a_damaged_fingerprint_file(lib, music):
    damage_fingerprints(lib, music / "b.wav", "truncated")
    lib = reopened(lib)
    assert [s.path for s in lib.remove([music / "a.wav"])] == [str(music / "a.wav")]
    assert found(lib, music / "c.wav") == str(music / "c.wav")
    damage_fingerprints(lib, music / "c.wav", "random bytes")
    report = lib.add([music])  # b was set aside by remove's rebuild; c is found by add itself
    assert report.updated == [str(music / "b.wav"), str(music / "c.wav")] and report.added == [str(music / "a.wav")]
    assert all(found(lib, music / n) == str(music / n) for n in ("a.wav", "b.wav", "c.wav"))


def test_verify_names_a_fingerprint_file_damaged_inside(lib, music, random_model, capsys):
    damage_fingerprints(lib, music / "b.wav", "altered inside", drop_index=False)  # only a full read sees it
    folder = lib.folder
    lib.close()
    assert cli(folder, random_model, "library", "info", "--verify") == 0
    damaged = [line for line in capsys.readouterr().out.splitlines() if line.startswith("damaged")]
    assert len(damaged) == 1 and str(music / "b.wav") in damaged[0]
    lib = Library.open(folder, lib.embedder)
    assert lib.add([music]).updated == [str(music / "b.wav")]


# -- 4. a reindex stopped halfway --------------------------------------------------------------------
def interrupt_after(n: int):
    """A progress callback that presses Ctrl-C after `n` songs were re-embedded."""
    def progress(p) -> None:
        if p.phase == "embed" and p.done >= n:
            raise KeyboardInterrupt
    return progress


def test_a_reindex_stopped_halfway_with_the_same_model_leaves_the_library_answering(lib, music):
    with pytest.raises(KeyboardInterrupt):
        lib.reindex(progress=interrupt_after(2))
    lib = reopened(lib)  # the library still belongs to the model: no ModelMismatch
    assert all(found(lib, p) == str(p) for p in music.iterdir())
    assert len(lib.reindex().added) == 4


def test_a_reindex_to_another_model_stopped_halfway_leaves_the_old_library_whole(lib, music, random_embedder,
                                                                                 other_random_model):
    other = TileEmbedder(str(other_random_model))
    lib = reopened(lib, other, check_model=False)
    with pytest.raises(KeyboardInterrupt):
        lib.reindex(progress=interrupt_after(2))
    with pytest.raises(ModelMismatch):  # as before the reindex: not half one model and half the other
        reopened(lib, other)
    lib = Library.open(lib.folder, random_embedder)  # the old model still answers, every song
    assert all(found(lib, p) == str(p) for p in music.iterdir())
    lib = reopened(lib, other, check_model=False)
    assert len(lib.reindex().added) == 4
    lib = reopened(lib, other)
    assert all(found(lib, p) == str(p) for p in music.iterdir())
    assert len(list(lib.store.folder.glob("*.npz"))) == 4, "the old model's files are gone"


def test_ctrl_c_during_reindex_is_one_line(lib, random_model, monkeypatch, capsys):
    folder = lib.folder
    lib.close()

    def pressed(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Library, "reindex", pressed)
    assert cli(folder, random_model, "library", "reindex") == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("interrupted") and "library reindex" in err[-1] and "Traceback" not in "".join(err)


# -- 5. a reindex while some files are gone or unreadable --------------------------------------------
@pytest.mark.parametrize("model_changes", [False, True])
def test_reindex_keeps_songs_whose_file_is_gone_or_unreadable(lib, music, tmp_path, other_random_model, model_changes):
    gone, broken = music / "a.wav", music / "b.wav"
    moved = tmp_path / "unmounted.wav"
    shutil.move(gone, moved)
    saved = broken.read_bytes()
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    embedder = TileEmbedder(str(other_random_model)) if model_changes else lib.embedder
    lib = reopened(lib, embedder, check_model=False)
    report = lib.reindex()
    assert len(report.added) == 2 and len(report.errors) == 2
    assert all("kept" in e and "\n" not in e for e in report.errors)
    assert len(lib.songs()) == 4, "only `library remove` removes songs"
    lib = reopened(lib, embedder)
    if model_changes:  # their old fingerprints belong to another model: pending until `add` finds the files
        assert sorted(s.path for s in lib.unindexed_songs()) == [str(gone), str(broken)]
        shutil.move(moved, gone)
        broken.write_bytes(saved)
        assert sorted(lib.add([music]).updated) == [str(gone), str(broken)]
    else:  # still searchable by its old fingerprints
        shutil.move(moved, gone)
    assert found(lib, gone) == str(gone) and not lib.unindexed_songs()
    assert found(lib, music / "c.wav") == str(music / "c.wav")


def test_reindex_with_a_file_gone_exits_non_zero_and_info_advises_add_for_pending(lib, music, tmp_path,
                                                                                  other_random_model, capsys):
    shutil.move(music / "a.wav", tmp_path / "away.wav")
    folder = lib.folder
    lib.close()
    assert cli(folder, other_random_model, "library", "reindex") == 1
    assert "a.wav: file is gone" in capsys.readouterr().err
    assert cli(folder, other_random_model, "library", "info") == 0
    pending = [line for line in capsys.readouterr().out.splitlines() if line.startswith("pending")]
    assert len(pending) == 1 and "library add" in pending[0] and "reindex" not in pending[0]


def test_the_windows_library_map_leaves_a_damaged_fingerprint_file_out(lib, music):
    """The window's map reads the fingerprint files itself: a damaged one is left out, not a failure."""
    from shazamlet.gui.core_worker import pca_map

    damage_fingerprints(lib, music / "b.wav", "random bytes", drop_index=False)
    shown = pca_map(lib)
    damaged = lib.catalog.song_by_path(str(music / "b.wav")).id
    assert len(set(shown.song_id.tolist())) == 3 and damaged not in shown.song_id
