"""Faults a library must survive without harm: a catalog turned against the user, a full disk, a
read-only library, linked folders, a model file with impossible settings, control characters in
names, temp files left by a kill, and the smaller cases of issue 23. Each test reproduces a case
that did harm before (a file outside the library renamed or deleted, a traceback, a SIGBUS, a
forged output line) and checks that the library answers as before."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import aligned_clip
from synth import STYLES, make_song

from shazamlet.audio import decode
from shazamlet.audio.decode import AudioError, open_source
from shazamlet.cli import main
from shazamlet.library import Library, collect_audio_files
from shazamlet.library.errors import DiskFull, LibraryReadOnly
from shazamlet.library.writing import TEMP_PREFIX
from shazamlet.recognition import Recognizer

SR = 22_050


@pytest.fixture()
def music(tmp_path) -> Path:
    """MUSIC/Pop: three songs of 8 s."""
    root = tmp_path / "music" / "Pop"
    root.mkdir(parents=True)
    for i in range(3):
        sf.write(root / f"song{i}.wav", make_song(500 + i, STYLES[i % len(STYLES)], 8.0), SR)
    return root


@pytest.fixture()
def lib(tmp_path, random_embedder, music) -> Library:
    library = Library.open(tmp_path / "lib", random_embedder)
    assert len(library.add([music]).added) == 3
    yield library
    library.close()


def named(library: Library, path: Path) -> str | None:
    wave, _ = sf.read(path, dtype="float32")
    answer = Recognizer(library, library.embedder).identify_wave(aligned_clip(wave, 2))
    return answer.song.path if answer.song else None


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` and its content hash (SQLite's WAL files aside: a reader makes them where it can)."""
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file() and not f.name.endswith(("-shm", "-wal"))}


def cli(library: Path, model: Path, *args: str) -> int:
    return main(["--library", str(library), "--model", str(model), *args])


def set_emb_file(library: Library, song_path: Path, name: str) -> None:
    with sqlite3.connect(library.folder / "catalog.sqlite") as db:
        db.execute("UPDATE songs SET emb_file=? WHERE path=?", (name, str(song_path)))


# -- 1. path traversal through the catalog ---------------------------------------------------------
@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_a_catalog_naming_files_outside_the_library_touches_none_of_them(lib, music, tmp_path, random_model,
                                                                        capsys, how):
    victim = tmp_path / "precious.flac"
    victim.write_bytes(b"the user's own music" * 100)
    fingerprints = lib.folder / "fingerprints"
    name = {"absolute": str(victim), "dotdot": "../../precious.flac", "symlink": "0" * 32 + ".npz"}[how]
    if how == "symlink":
        (fingerprints / name).symlink_to(victim)
    song = music / "song0.wav"
    set_emb_file(lib, song, name)
    lib.close()
    before = victim.read_bytes()
    for args in (("library", "info", "--verify"), ("identify", str(song)), ("library", "add", str(music)),
                 ("library", "list"), ("library", "remove", str(song))):
        assert cli(lib.folder, random_model, *args) == 0, args
        assert victim.read_bytes() == before, args
        assert not victim.with_name(victim.name + ".damaged").exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err and "left untouched" in err
    assert all(len(line) < 400 for line in err.splitlines())


def test_an_index_record_naming_files_outside_the_library_is_rebuilt_not_followed(lib, music, tmp_path):
    victim = tmp_path / "precious.flac"
    victim.write_bytes(b"x" * 1000)
    raw = lib.catalog.get_json("index")
    lib.catalog.set_json("index", {**raw, "ann_file": "../precious.flac"})
    lib.close()
    library = Library.open(lib.folder, lib.embedder)
    assert named(library, music / "song1.wav") == str(music / "song1.wav")  # rebuilt from the fingerprints
    assert victim.read_bytes() == b"x" * 1000
    library.close()


# -- 3. a full disk ---------------------------------------------------------------------------------
def temps(folder: Path) -> list[Path]:
    return [f for f in folder.rglob("*") if f.name.startswith(TEMP_PREFIX)]


def test_no_room_for_the_index_is_said_before_writing_and_loses_nothing(lib, music, monkeypatch):
    extra = music / "song9.wav"
    sf.write(extra, make_song(599, STYLES[0], 8.0), SR)
    record = lib.index_record()
    monkeypatch.setattr("shazamlet.library.writing.free_bytes", lambda folder: 1_000_000)
    with pytest.raises(DiskFull, match="not enough disk space to build the index"):
        lib.add([extra])
    assert not temps(lib.folder) and lib.index_record() == record
    assert named(lib, music / "song1.wav") == str(music / "song1.wav")  # the index in use still answers
    monkeypatch.undo()
    assert lib.add([extra]).unchanged == [str(extra)]  # stored before; now indexed
    assert named(lib, extra) == str(extra)


def test_a_disk_that_fills_while_fingerprints_are_written_is_one_error_and_no_temp_files(lib, music, monkeypatch):
    from shazamlet.library import store

    def full(f, arrays, compressed):
        f.write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    extra = music / "song9.wav"
    sf.write(extra, make_song(599, STYLES[0], 8.0), SR)
    monkeypatch.setattr(store, "_savez", full)
    with pytest.raises(DiskFull, match="is full: could not add songs"):
        lib.add([extra])
    assert not temps(lib.folder) and lib.catalog.count() == 3
    assert named(lib, music / "song2.wav") == str(music / "song2.wav")


def test_sqlite_saying_the_disk_is_full_is_the_same_one_error(lib, music, monkeypatch):
    def full(song):
        raise sqlite3.OperationalError("database or disk is full")

    extra = music / "song9.wav"
    sf.write(extra, make_song(599, STYLES[0], 8.0), SR)
    monkeypatch.setattr(lib.catalog, "upsert_song", full)
    with pytest.raises(DiskFull):
        lib.add([extra])
    assert not temps(lib.folder)


def in_mount_namespace(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `script` (sh) in a mount namespace of its own, where it may mount a small tmpfs or a
    read-only bind; skipped where this machine allows neither (not root, no unshare)."""
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {tmp_path}"],
                           capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("mounting in a namespace of our own is not allowed here (the injected tests cover the logic)")
    return subprocess.run(["unshare", "-m", "sh", "-ec", script], capture_output=True, text=True, timeout=300)


def test_a_real_full_disk_gives_one_line_no_sigbus_and_the_library_keeps_answering(tmp_path, music, random_model):
    disk = tmp_path / "disk"
    disk.mkdir()
    shazamlet = f"{sys.executable} -m shazamlet --model {random_model} --library {disk}/lib"
    res = in_mount_namespace(f"""
        mount -t tmpfs -o size=4m tmpfs {disk}
        {shazamlet} library add -q {music}/song0.wav {music}/song1.wav
        dd if=/dev/zero of={disk}/fill bs=4k 2>/dev/null || true
        {shazamlet} library add -q {music} || echo "add: $?"
        {shazamlet} identify {music}/song0.wav
        {shazamlet} library remove {music}/song1.wav || echo "remove: $?"
        ls -a {disk}/lib {disk}/lib/fingerprints
        """, tmp_path)
    out, err = res.stdout, res.stderr
    assert res.returncode == 0 and "Traceback" not in err, err
    assert "add: 2" in out and "remove: 2" in out
    assert "song 0" in out  # identified on the full disk
    assert TEMP_PREFIX not in out
    assert all(line.startswith("shazamlet: ") for line in err.splitlines() if line.strip()), err


# -- 4. a read-only library -------------------------------------------------------------------------
def test_a_read_only_library_answers_and_says_it_is_read_only_for_writes(lib, music, random_model, monkeypatch, capsys):
    lib.close()
    before = snapshot(lib.folder)
    real_access = os.access
    inside = str(lib.folder)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode == os.W_OK and str(p).startswith(inside)
                        else real_access(p, mode, **kw))
    assert cli(lib.folder, random_model, "library", "list") == 0
    assert cli(lib.folder, random_model, "library", "info", "--verify") == 0
    assert cli(lib.folder, random_model, "identify", str(music / "song1.wav")) == 0
    out = capsys.readouterr()
    assert "song 1" in out.out and "Traceback" not in out.err
    for args in (("library", "add", str(music)), ("library", "remove", str(music / "song1.wav")),
                 ("library", "reindex")):
        assert cli(lib.folder, random_model, *args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "cannot be written" in err[0], err
    assert snapshot(lib.folder) == before
    library = Library.open(lib.folder, lib.embedder)
    with pytest.raises(LibraryReadOnly):
        library.rebuild_index()
    library.close()


def test_a_read_only_mount_answers_reading_commands(lib, music, random_model, tmp_path):
    lib.close()
    shazamlet = f"{sys.executable} -m shazamlet --model {random_model} --library {lib.folder}"
    res = in_mount_namespace(f"""
        mount --bind {lib.folder} {lib.folder} && mount -o remount,ro,bind {lib.folder}
        {shazamlet} library list
        {shazamlet} identify {music}/song2.wav
        {shazamlet} library add {music} || echo "add: $?"
        """, tmp_path)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "3 songs" in res.stdout and "song 2 (" in res.stdout and "add: 2" in res.stdout
    assert "cannot be written" in res.stderr


# -- 5. linked folders ------------------------------------------------------------------------------
def test_linked_folders_are_followed_once_and_loops_are_said(tmp_path):
    elsewhere = tmp_path / "nas" / "jazz"
    elsewhere.mkdir(parents=True)
    sf.write(elsewhere / "a.wav", np.zeros(100, np.float32), SR)
    root = tmp_path / "Music"
    (root / "Rock").mkdir(parents=True)
    sf.write(root / "Rock" / "b.wav", np.zeros(100, np.float32), SR)
    (root / "Jazz").symlink_to(elsewhere)
    (root / "Jazz2").symlink_to(elsewhere)  # the same folder twice: its files once
    (elsewhere / "loop").symlink_to(root)  # back up to the root: a loop
    (root / "gone.wav").symlink_to(tmp_path / "nothing.wav")
    found, errors = collect_audio_files([root])
    assert sorted(str(f.relative_to(root)) for f, _ in found) == ["Jazz/a.wav", "Rock/b.wav"]
    assert any("a loop" in e for e in errors) and any("gone.wav: a link to nothing" in e for e in errors)


def test_a_linked_folder_is_added_with_the_link_s_name_as_genre(tmp_path, random_embedder):
    elsewhere = tmp_path / "nas" / "jazz-collection"
    elsewhere.mkdir(parents=True)
    sf.write(elsewhere / "tune.wav", make_song(510, STYLES[1], 8.0), SR)
    root = tmp_path / "Music"
    root.mkdir()
    (root / "Jazz").symlink_to(elsewhere)
    library = Library.open(tmp_path / "lib", random_embedder)
    report = library.add([root])
    assert report.added == [str(elsewhere / "tune.wav")]  # kept by its real path
    assert [s.genre for s in library.songs()] == ["Jazz"]
    library.close()


# -- 7. a model file with impossible settings -------------------------------------------------------
@pytest.mark.parametrize("key,value", [("sample_rate", 0), ("hop_length", -1), ("n_mels", 0.5), ("f_max", "high")])
def test_a_model_file_with_impossible_settings_is_one_line_naming_it(tmp_path, random_model, music, capsys, key, value):
    payload = torch.load(random_model, weights_only=True)
    payload["meta"]["features"][key] = value
    bad = tmp_path / "bad-settings.pt"
    torch.save(payload, bad)
    for args in (("identify", str(music / "song0.wav")), ("library", "add", str(music))):
        assert cli(tmp_path / "lib", bad, *args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(bad) in err[0] and key in err[0] and "invalid model settings" in err[0], err


# -- 8. control characters in what the CLI prints ---------------------------------------------------
def test_control_characters_in_file_names_cannot_forge_or_split_lines(tmp_path, random_model, capsys):
    music = tmp_path / "music"
    music.mkdir()
    (music / "x.wav\nadded 99, updated 0.wav").write_bytes(b"not audio at all")
    odd = music / "two\nlines\x1b[31m.wav"
    sf.write(odd, make_song(520, STYLES[2], 8.0), SR)
    lib = tmp_path / "lib"
    assert cli(lib, random_model, "library", "add", str(music)) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines() + out.err.splitlines()
    assert not any(line.startswith("added 99") for line in lines)
    assert any(line.startswith("skipped: ") and "x.wav\\nadded 99" in line for line in lines), lines
    assert cli(lib, random_model, "library", "remove", str(odd)) == 0
    assert capsys.readouterr().out.strip() == f"removed {music}/two\\nlines\\x1b[31m.wav"


# -- 9. temp files left by a kill -------------------------------------------------------------------
def test_temp_files_left_by_a_kill_are_said_by_info_and_removed_by_the_next_write(lib, music, random_model, capsys):
    stale = [lib.folder / "fingerprints" / f"{TEMP_PREFIX}abc.npz", lib.folder / f"{TEMP_PREFIX}index-x.ann"]
    for f in stale:
        f.write_bytes(b"\0" * 5_000_000)
    lib.close()
    assert cli(lib.folder, random_model, "library", "info") == 0
    out = capsys.readouterr().out
    assert "temp files: 2 left by an interrupted write" in out
    size_mb = float(out.split(" MB on disk")[0].rsplit(", ", 1)[1])
    assert size_mb < 5  # the 10 MB of temp files are not the library's size
    assert cli(lib.folder, random_model, "library", "add", str(music)) == 0
    assert not any(f.exists() for f in stale)


# -- 10. the smaller cases --------------------------------------------------------------------------
def test_an_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    clip = tmp_path / "clip.wav"
    sf.write(clip, np.zeros(1000, np.float32), SR)

    def no(path, mode="r", *a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(decode, "open", no, raising=False)  # (root reads any file: chmod would not do)
    with pytest.raises(AudioError, match="permission denied"):
        open_source(clip)


def test_a_loop_of_links_is_called_a_loop_not_a_missing_file(tmp_path):
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    with pytest.raises(AudioError, match="a loop of symbolic links"):
        open_source(tmp_path / "a.wav")


def test_identify_with_a_mistyped_library_creates_nothing(tmp_path, random_model, music, capsys):
    typo = tmp_path / "libary"
    assert cli(typo, random_model, "identify", str(music / "song0.wav")) == 0
    assert not typo.exists()
    out = capsys.readouterr()
    assert "not in your library" in out.out and f"the library at {typo} does not exist" in out.err
    assert cli(typo, random_model, "library", "list") == 2 and not typo.exists()
