"""The `shazamlet` command run as a user runs it: subprocesses, real files, exit codes, JSON lines."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import LIB_HOP_SAMPLES, aligned_clip
from synth import STYLES, make_song, write_library

from shazamlet.config import FeatureConfig

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
    assert set(first) == {"file", "song", "candidates", "genre", "silent", "elapsed_ms"}
    assert first["silent"] is False
    assert first["song"]["path"] == str((synth_music / "rock" / "rock_song_01.wav").resolve())
    assert set(first["song"]) == {"path", "title", "artist", "score", "offset_s", "landmarks", "presence"}
    # a clean clip whose fingerprints lead clearly is answered without the peak checks: both are null
    assert first["song"]["landmarks"] is None and first["song"]["presence"] is None
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
    assert "ballad song 02" in human.stdout and "ballad" in human.stdout
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


def one_line_error(res: subprocess.CompletedProcess) -> str:
    """The single line a failure may print on stderr (never a traceback, never a library's chatter)."""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
    return res.stderr.strip()


def test_library_that_is_a_file_or_cannot_be_made_is_one_line(tmp_path, random_model):
    a_file = tmp_path / "afile"
    a_file.write_text("not a library")
    for command in (("library", "list"), ("identify", "x.wav")):
        res = run(*command, model=random_model, library=a_file)
        assert res.returncode == 2
        assert one_line_error(res) == f"shazamlet: --library {a_file} is a file, not a library folder"
    res = run("library", "add", "x.wav", model=random_model, library=a_file / "lib")  # under a file: cannot be made
    assert res.returncode == 2
    assert one_line_error(res).startswith(f"shazamlet: cannot create library folder {a_file / 'lib'}: ")


def test_ctrl_c_is_one_line_and_exit_code_130(tmp_path, random_model):
    lib = tmp_path / "lib"
    sf.write(tmp_path / "clip.wav", make_song(3, STYLES[0], 10.0), SR)
    cmd = [sys.executable, "-m", "shazamlet", "--library", str(lib), "--model", str(random_model),
           "identify", *["clip.wav"] * 2000]  # minutes of work
    # as from a terminal: a test run started in the background (`cmd &`) hands its children SIGINT ignored
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stderr.readline()  # the model and library are loaded and identifying begins: it says the library is missing
    assert "warning: the library at" in first, first
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and err.splitlines()[-1] == "interrupted", err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the interrupt Python drops
def test_ctrl_c_landing_in_a_finalizer_still_ends_identify(tmp_path, random_model, monkeypatch, capsys):
    """Python drops a KeyboardInterrupt raised while a finalizer runs (a decoder's file closing): the
    interrupt used to be lost there and `identify` went on through every file."""
    from shazamlet import cli
    from shazamlet.recognition import Recognizer

    sf.write(tmp_path / "clip.wav", make_song(3, STYLES[0], 4.0), SR)
    heard = []
    real = Recognizer.identify_file

    class Closing:  # a Ctrl-C arrives while its finalizer runs
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between these bytecodes, inside the finalizer
                pass

    def identify(self, path):
        heard.append(path)
        Closing()
        return real(self, path)

    monkeypatch.setattr(Recognizer, "identify_file", identify)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal (see above)
    try:
        code = cli.main(["--library", str(tmp_path / "lib"), "--model", str(random_model), "identify",
                        *[str(tmp_path / "clip.wav")] * 50])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    finally:
        signal.signal(signal.SIGINT, before)
    err = capsys.readouterr().err
    assert code == 130 and err.splitlines()[-1] == "interrupted", err
    assert len(heard) == 1, "the next file was not begun"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland displays are a Linux matter")
def test_window_without_a_display_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    res = subprocess.run([sys.executable, "-m", "shazamlet", "--library", str(tmp_path / "lib")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 2
    assert one_line_error(res) == ("shazamlet: no display found: run the window in a desktop session, "
                                   "or use the command line (shazamlet --help)")


def test_corrupt_mp3_is_one_clear_line_without_decoder_chatter(tmp_path, random_model):
    (tmp_path / "corrupt.mp3").write_bytes(np.random.default_rng(0).bytes(50_000))
    res = run("identify", str(tmp_path / "corrupt.mp3"), model=random_model, library=tmp_path / "lib")
    assert res.returncode == 1
    lines = [x for x in res.stderr.splitlines() if not x.startswith("warning: the library ")]
    assert lines == [f"error: {tmp_path / 'corrupt.mp3'}: cannot decode audio "
                     "(not a valid MP3 file, or an unsupported or damaged one)"], res.stderr


def test_a_front_end_with_empty_mel_bands_loads_without_torchaudio_warnings():
    from shazamlet.features import mel_filterbank

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a model file recorded at 16 kHz: the bands above 8 kHz are empty
        fb = mel_filterbank(FeatureConfig(sample_rate=16_000))
    assert fb.shape == (1025, 64) and (fb.sum(0) == 0).any()


def test_long_file_is_identified_from_its_start_by_windows(tmp_path, random_model, synth_music):
    lib = tmp_path / "lib"
    songs = [synth_music / "chiptune" / f"chiptune_song_0{i}.wav" for i in range(3)]
    run("library", "add", *map(str, songs), model=random_model, library=lib, check=True)
    waves = [sf.read(p, dtype="float32")[0] for p in songs]
    tail = 0.01 * np.random.default_rng(1).standard_normal(SR * 240).astype(np.float32)  # 4 minutes more
    sf.write(tmp_path / "mix.flac", np.concatenate([*waves, tail]), SR)
    res = run("identify", "--json", str(tmp_path / "mix.flac"), model=random_model, library=lib)
    assert res.returncode == 0, res.stderr
    answer = json.loads(res.stdout)
    assert answer["song"]["path"] == str(songs[0].resolve()) and answer["song"]["offset_s"] < 0.6
    assert answer["silent"] is False


def test_windows_cover_the_file_from_start_to_end():
    from shazamlet.recognition import QueryConfig
    from shazamlet.recognition import file_window_starts

    MAX_WINDOWS, WINDOW_SECONDS = QueryConfig().file_max_windows, QueryConfig().file_window_s

    def window_starts(duration_s: float) -> list[float]:
        return file_window_starts(duration_s, WINDOW_SECONDS, MAX_WINDOWS)

    assert window_starts(5.0) == [0.0] and window_starts(WINDOW_SECONDS) == [0.0]
    starts = window_starts(25 * 60.0)
    assert len(starts) == MAX_WINDOWS and starts[0] == 0.0
    assert starts[-1] + WINDOW_SECONDS == pytest.approx(25 * 60.0)


def test_silence_is_said_in_json(tmp_path, random_model):
    sf.write(tmp_path / "silence.wav", np.zeros(SR * 5, np.float32), SR)
    res = run("identify", "--json", str(tmp_path / "silence.wav"), model=random_model, library=tmp_path / "lib")
    assert res.returncode == 0, res.stderr
    answer = json.loads(res.stdout)
    assert answer["silent"] is True and answer["song"] is None
    human = run("identify", str(tmp_path / "silence.wav"), model=random_model, library=tmp_path / "lib")
    assert "silence" in human.stdout


def test_identify_from_a_pipe_and_an_empty_path(tmp_path, random_model, synth_music):
    lib = tmp_path / "lib"
    song = synth_music / "ballad" / "ballad_song_01.wav"
    run("library", "add", str(song), model=random_model, library=lib, check=True)
    wave, _ = sf.read(song, dtype="float32")
    sf.write(tmp_path / "clip.wav", aligned_clip(wave, 4), SR)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)  # what `identify <(cat clip.wav)` hands over: a pipe, not a file
    writer = threading.Thread(target=lambda: pipe.write_bytes((tmp_path / "clip.wav").read_bytes()), daemon=True)
    writer.start()
    res = run("identify", "--json", str(pipe), "", model=random_model, library=lib)
    writer.join(timeout=30)
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert lines[0]["song"]["path"] == str(song.resolve())
    assert lines[1] == {"file": "", "error": "empty path: give the name of an audio file"}
    assert res.returncode == 1


def test_tags_with_newlines_keep_the_output_one_line_per_song(tmp_path, random_model, synth_music):
    from mutagen.flac import FLAC

    lib = tmp_path / "lib"
    wave, _ = sf.read(synth_music / "rock" / "rock_song_00.wav", dtype="float32")
    song = tmp_path / "music" / "tagged.flac"
    song.parent.mkdir()
    sf.write(song, wave, SR)
    tags = FLAC(song)
    tags["title"], tags["artist"] = "Two\nLines\r", "The\tBand\x1b[31m"
    tags.save()
    others = [str(synth_music / "rock" / f"rock_song_0{i}.wav") for i in (1, 2)]  # a runner-up to be sure against
    run("library", "add", str(song), *others, model=random_model, library=lib, check=True)
    listing = run("library", "list", model=random_model, library=lib, check=True).stdout.splitlines()
    assert len(listing) == 4 and listing[-1] == "3 songs"
    tagged = [x for x in listing if x.endswith("tagged.flac")]
    assert len(tagged) == 1 and tagged[0].startswith("Two Lines") and "The Band [31m" in tagged[0]
    raw = [json.loads(x) for x in run("library", "list", "--json", model=random_model, library=lib,
                                      check=True).stdout.splitlines()]
    assert "Two\nLines" in [x["title"] for x in raw]  # the JSON keeps the tag as it is
    sf.write(tmp_path / "clip.wav", aligned_clip(wave, 2), SR)
    human = run("identify", str(tmp_path / "clip.wav"), model=random_model, library=lib, check=True).stdout
    assert human.count("\n") == 1 and "The Band" in human and "– Two Lines (" in human


def test_the_collector_is_off_only_while_starting(tmp_path, random_model, synth_music, monkeypatch, capsys):
    """Start-up runs without the cyclic garbage collector (it went over torch's objects again and again);
    the work after it, a long `library add` or `listen`, runs with it, and so does what follows an error."""
    import gc

    from shazamlet import cli
    from shazamlet.recognition import Recognizer

    from shazamlet.library import Library

    seen, loading = [], []
    identify, open_library = Recognizer.identify_file, Library.open.__func__
    monkeypatch.setattr(Recognizer, "identify_file", lambda self, p: (seen.append(gc.isenabled()), identify(self, p))[1])
    monkeypatch.setattr(Library, "open", classmethod(lambda cls, *a, **k: (loading.append(gc.isenabled()),
                                                                          open_library(cls, *a, **k))[1]))
    lib = tmp_path / "lib"
    assert cli.main(["--library", str(lib), "--model", str(random_model), "library", "add", "-q",
                     str(synth_music / "ballad")]) == 0
    assert gc.isenabled()
    clip = synth_music / "ballad" / "ballad_song_01.wav"
    assert cli.main(["--library", str(lib), "--model", str(random_model), "identify", str(clip)]) == 0
    assert seen == [True] and gc.isenabled()
    assert loading == [False, False], "the collector ran while the library and model were being loaded"
    (tmp_path / "a file").write_text("not a library")  # an error before start-up is over
    assert cli.main(["--library", str(tmp_path / "a file"), "--model", str(random_model), "identify", str(clip)]) == 2
    assert gc.isenabled()
    capsys.readouterr()
