"""Long files are added a block at a time: the same fingerprints, tiles and peaks as decoded whole, in
bounded memory (a 2-hour mix decoded whole took 15.9 GB)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF
from synth import STYLES, make_song

from shazamlet.audio.decode import BlockResampler, resample, to_mono
from shazamlet.config import FeatureConfig, IndexConfig, LandmarkConfig
from shazamlet.features import LogMelFrontEnd
from shazamlet.landmarks import peaks as spectral_peaks
from shazamlet.library.prepare import PreparedSong, prepare_song

SR = 22_050
FILE_RATE = 44_100


def write_blocks(path: Path, music: np.ndarray, rate: int) -> None:
    """Write `(frames, channels)` in blocks (libsndfile's Vorbis encoder crashes on one huge write)."""
    with sf.SoundFile(path, "w", rate, music.shape[1]) as out:
        for i in range(0, len(music), 1 << 16):
            out.write(music[i : i + (1 << 16)])


def stereo_44k(wave: np.ndarray) -> np.ndarray:
    up = resample(wave, SR, FILE_RATE)
    return np.stack([up, 0.6 * np.roll(up, 29)], axis=1)


@pytest.mark.parametrize("rate", [44_100, 48_000, 8_000])
def test_block_resampler_gives_the_whole_signal_resampled_whatever_the_blocks(rate):
    rng = np.random.default_rng(rate)
    x = rng.standard_normal(int(7.3 * rate)).astype(np.float32)
    whole = resample(x, rate, SR)
    np.testing.assert_allclose(whole, AF.resample(torch.from_numpy(x), rate, SR).numpy(), atol=1e-6)
    for cuts in (np.arange(1_000, len(x), 1_000), np.sort(rng.integers(0, len(x), 50))):
        rs = BlockResampler(rate, SR)
        out = np.concatenate([rs.push(b) for b in np.split(x, cuts)] + [rs.finish()])
        assert np.array_equal(out, whole)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_mono_is_the_channels_mean_to_the_bit(channels):
    """Libraries made before and after the channel-by-channel average hold the same fingerprints."""
    data = np.random.default_rng(channels).standard_normal((10_000, channels)).astype(np.float32)
    assert np.array_equal(to_mono(data), data.mean(axis=1, dtype=np.float32))
    assert np.array_equal(to_mono(data[:, 0]), data[:, 0])


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_a_file_analysed_in_small_blocks_equals_the_whole_file_analysed_at_once(tmp_path, fmt, random_embedder):
    music = np.concatenate([make_song(41, STYLES[0], 50.0), np.zeros(4 * SR, np.float32),  # a silent stretch
                            make_song(42, STYLES[2], 30.0)])
    path = tmp_path / f"mix.{fmt}"
    write_blocks(path, stereo_44k(music), FILE_RATE)
    feats, lc, hop = FeatureConfig(), LandmarkConfig(), IndexConfig().library_hop_frames
    # the whole-file path: decode all, resample, one spectrogram, tiles cut from it, peaks of the waveform
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    wave = resample(to_mono(data), rate, SR)
    fe = LogMelFrontEnd(feats)
    with torch.no_grad():
        power = fe(torch.from_numpy(wave))
    tiles, mid = fe.tiles_from_power(power, hop), fe.tiles_from_power(power, hop, first_frame=hop // 2)
    for block_frames in (997, 1 << 17):  # blocks much shorter than an STFT window or a tile, and the default
        song = prepare_song(str(path), feats.to_dict(), hop, "folder", str(tmp_path), None, True, lc.to_dict(),
                            block_frames=block_frames)
        assert isinstance(song, PreparedSong), song
        assert song.duration_s == len(wave) / SR
        assert np.array_equal(song.start_frames, tiles.start_frames[tiles.audible])
        assert 0 < len(song.start_frames) < len(tiles.start_frames)  # the silent stretch has no tiles
        assert torch.equal(song.tiles[:], tiles.tiles[torch.as_tensor(tiles.audible)])
        assert np.array_equal(song.between_starts, mid.start_frames[mid.audible])
        assert torch.equal(song.between_tiles[:], mid.tiles[torch.as_tensor(mid.audible)])
        assert np.array_equal(song.peaks, spectral_peaks(wave, lc))
        # the encoder reads the tiles a batch at a time: the fingerprints of the whole file's tiles
        assert np.array_equal(random_embedder.embed(song.tiles),
                              random_embedder.embed(tiles.tiles[torch.as_tensor(tiles.audible)]))


MEMORY_LIMIT_MB = 1_000  # the whole process, model and index included; decoded whole this file took ~1.8 GB


def test_adding_a_long_file_keeps_the_process_under_a_memory_bound(tmp_path, trained_model):
    minutes = 12
    songs = [stereo_44k(make_song(60 + i, STYLES[i % len(STYLES)], 30.0)) for i in range(4)]
    path = tmp_path / "two_sets.flac"
    with sf.SoundFile(path, "w", FILE_RATE, 2) as out:
        for i in range(minutes * 2):
            out.write(songs[i % len(songs)] * (0.4 + 0.15 * (i % 4)))
    # the command as a user runs it, in a process of its own, reporting its own peak resident memory
    script = textwrap.dedent(f"""
        import resource, runpy, sys
        sys.argv = ["shazamlet", "--library", {str(tmp_path / "lib")!r}, "--model", {str(trained_model)!r},
                    "library", "add", {str(path)!r}]
        try:
            runpy.run_module("shazamlet", run_name="__main__")
        except SystemExit as exc:
            assert not exc.code, exc.code
        # VmHWM: this process's own peak (ru_maxrss would carry over what the forking test runner held,
        # which Linux keeps across exec: the same command measured 0.64 GB alone and 1.1 GB late in the suite)
        hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")] if sys.platform == "linux" else []
        print("peak_mb", int(hwm[0].split()[1]) // 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "added 1," in res.stdout and "errors 0" in res.stdout
    peak = int(res.stdout.split("peak_mb")[-1])
    print(f"adding {minutes} min of audio peaked at {peak} MB")
    assert peak < MEMORY_LIMIT_MB, f"adding {minutes} min of audio peaked at {peak} MB"
