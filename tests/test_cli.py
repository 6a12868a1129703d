"""The `shazamlet` command run as a user runs it: subprocesses, real files, exit codes, JSON lines."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import LIB_HOP_SAMPLES, aligned_clip
from synth import write_library

from shazamlet.config import MatchConfig

SR = 22_050


def run(*args: str, model: Path, library: Path, check: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "shazamlet", "--library", str(library), "--model", str(model), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=300)


def test_identify_json_one_line_per_file_in_order_with_errors(tmp_path, random_model, synth_music):
    lib = tmp_path / "lib"
    out = run("library", "add", str(synth_music / "techno"), str(synth_music / "rock"), model=random_model, library=lib)
    assert out.returncode == 0, out.stderr
    assert "added 6" in out.stdout
    wave, _ = sf.read(synth_music / "rock" / "rock_song_01.wav", dtype="float32")
    sf.write(tmp_path / "clip.ogg", aligned_clip(wave, 8), SR)  # ogg/vorbis: lossy, still the same song
    sf.write(tmp_path / "short.wav", wave[: SR], SR)
    (tmp_path / "broken.mp3").write_bytes(b"ID3\x03\x00not really an mp3" * 20)
    files = ["clip.ogg", "broken.mp3", "short.wav", "missing.flac"]
    res = subprocess.run([sys.executable, "-m", "shazamlet", "--library", str(lib), "--model", str(random_model),
                          "identify", "--json", *files], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 1
    lines = [json.loads(line) for line in res.stdout.strip().splitlines()]
    assert [d["file"] for d in lines] == files
    first = lines[0]
    assert set(first) == {"file", "song", "candidates", "genre", "elapsed_ms"}
    assert first["song"]["path"] == str((synth_music / "rock" / "rock_song_01.wav").resolve())
    assert set(first["song"]) == {"path", "title", "artist", "score", "offset_s", "landmarks", "presence"}
    assert first["song"]["landmarks"] > 20, "a clean clip shares many landmarks with its song"
    assert first["song"]["presence"] > MatchConfig().presence_floor, "and its peaks stand out in the clip"
    assert 0.0 <= first["song"]["score"] <= 1.0
    assert first["song"]["offset_s"] == pytest.approx(8 * LIB_HOP_SAMPLES / SR, abs=0.3)
    assert 1 <= len(first["candidates"]) <= 5 and first["candidates"][0]["path"] == first["song"]["path"]
    assert first["genre"]["label"] == "rock"
    for bad in lines[1:]:
        assert set(bad) == {"file", "error"} and "\n" not in bad["error"]
    assert "too short" in lines[2]["error"] and "no such file" in lines[3]["error"]


def test_human_output_and_library_commands(tmp_path, random_model, synth_music):
    lib = tmp_path / "lib"
    run("library", "add", str(synth_music / "ballad"), model=random_model, library=lib, check=True)
    listing = run("library", "list", "--json", model=random_model, library=lib, check=True)
    songs = [json.loads(x) for x in listing.stdout.splitlines()]
    assert len(songs) == 3 and {s["genre"] for s in songs} == {"ballad"}
    info = run("library", "info", "--verify", model=random_model, library=lib, check=True)
    assert "3 " in info.stdout and "ballad 3" in info.stdout and "verified" in info.stdout
    assert "ANNOY (16 trees)" in info.stdout
    wave, _ = sf.read(synth_music / "ballad" / "ballad_song_02.wav", dtype="float32")
    sf.write(tmp_path / "clip.wav", aligned_clip(wave, 3), SR)
    human = run("identify", str(tmp_path / "clip.wav"), model=random_model, library=lib, check=True)
    assert "ballad_song_02" in human.stdout and "ballad" in human.stdout
    removed = run("library", "remove", str(synth_music / "ballad" / "ballad_song_02.wav"), model=random_model, library=lib)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert len(run("library", "list", "--json", model=random_model, library=lib).stdout.splitlines()) == 2


def test_missing_model_and_other_model_are_one_line_errors(tmp_path, random_model, other_random_model, synth_music):
    lib = tmp_path / "lib"
    res = run("library", "list", model=tmp_path / "nope.pt", library=lib)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "model file not found" in res.stderr
    (tmp_path / "fake.pt").write_bytes(b"\x80\x04not a model")
    res = run("identify", "x.wav", model=tmp_path / "fake.pt", library=lib)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    run("library", "add", str(synth_music / "ballad"), model=random_model, library=lib, check=True)
    res = run("identify", str(synth_music / "ballad" / "ballad_song_00.wav"), model=other_random_model, library=lib)
    assert res.returncode == 2 and "reindex" in res.stderr and res.stderr.count("\n") == 1


def test_add_killed_halfway_leaves_the_old_library_answering(tmp_path, random_model, synth_music):
    lib = tmp_path / "lib"
    run("library", "add", str(synth_music / "techno"), model=random_model, library=lib, check=True)
    big = tmp_path / "more"
    write_library(big, n_per_style=4, seconds=20.0, seed=500)
    proc = subprocess.Popen([sys.executable, "-m", "shazamlet", "--library", str(lib), "--model", str(random_model),
                             "library", "add", str(big)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = sqlite3.connect(lib / "catalog.sqlite", timeout=30)
    deadline = time.time() + 240
    while time.time() < deadline and db.execute("SELECT COUNT(*) FROM songs").fetchone()[0] < 5:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # power loss halfway through the import
    proc.wait()
    n_stored = db.execute("SELECT COUNT(*) FROM songs").fetchone()[0]
    db.close()
    assert 3 < n_stored < 3 + 16, "the kill should land in the middle of the import"
    wave, _ = sf.read(synth_music / "techno" / "techno_song_02.wav", dtype="float32")
    sf.write(tmp_path / "clip.wav", aligned_clip(wave, 6), SR)
    res = run("identify", "--json", str(tmp_path / "clip.wav"), model=random_model, library=lib)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["song"]["path"].endswith("techno_song_02.wav")
    again = run("library", "add", str(big), model=random_model, library=lib, check=True)
    assert "errors 0" in again.stdout
    listing = run("library", "list", "--json", model=random_model, library=lib, check=True).stdout.splitlines()
    assert len(listing) == 3 + 16
    new_wave, _ = sf.read(sorted(big.rglob("*.wav"))[-1], dtype="float32")
    sf.write(tmp_path / "clip2.wav", aligned_clip(new_wave, 10), SR)
    res = run("identify", "--json", str(tmp_path / "clip2.wav"), model=random_model, library=lib, check=True)
    assert json.loads(res.stdout)["song"]["path"] == str(sorted(big.rglob("*.wav"))[-1].resolve())


def test_listen_without_that_microphone_is_one_clear_line(tmp_path, random_model, synth_music):
    lib = tmp_path / "lib"
    run("library", "add", str(synth_music / "techno" / "techno_song_00.wav"), model=random_model, library=lib, check=True)
    res = run("listen", "--device", "9999", model=random_model, library=lib)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and ("no input device" in res.stderr or "audio input unavailable" in res.stderr)
