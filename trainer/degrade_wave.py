"""Waveform degradations for evaluation: a laptop microphone in a room, done the real way.

Unlike the training shortcut (`trainer.augment`, mel power domain) these run on samples: band-pass
filter (Butterworth, 120 Hz-7 kHz), convolution with a real room impulse response held out of
training, pink noise and several espeak-ng voices at given SNRs, random gain and clipping.
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

from shazamlet.audio.decode import load_audio

# Texts the training TTS never spoke (training used the GPL-3 / Apache-2.0 paragraphs).
BABBLE_TEXTS = ("/usr/share/common-licenses/LGPL-2.1", "/usr/share/common-licenses/MPL-2.0",
                "/usr/share/common-licenses/Artistic", "/usr/share/common-licenses/GFDL-1.3")
BABBLE_VOICES = (("en-us+m3", 160), ("en-gb+f2", 150), ("de", 150), ("fr", 155), ("es+f4", 165),
                 ("it+m5", 150), ("nl", 145), ("en-gb-x-rp+f5", 170))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def band_limit(wave: np.ndarray, rate: int, low_hz: float = 120.0, high_hz: float = 7000.0, order: int = 4) -> np.ndarray:
    sos = butter(order, [low_hz, min(high_hz, rate / 2 * 0.99)], btype="bandpass", fs=rate, output="sos")
    return sosfilt(sos, wave).astype(np.float32)


def reverberate(wave: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response (aligned on its peak), same length and RMS as the input."""
    start = int(np.argmax(np.abs(rir)))
    h = rir[max(0, start - 16):]
    y = fftconvolve(wave, h)[: len(wave)]
    return (y * (rms(wave) / rms(y))).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return (x / rms(x)).astype(np.float32)


def looped(wave: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of a recording played in a loop, from a random point in it."""
    reps = int(np.ceil(n / len(wave))) + 1
    s = int(rng.integers(0, len(wave)))
    return np.tile(wave, reps)[s : s + n]


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    return signal + noise * (rms(signal) / rms(noise) * 10 ** (-snr_db / 20))


def gain_and_clip(wave: np.ndarray, rng: np.random.Generator, gain_db: tuple[float, float] = (-12.0, 12.0),
                  level_dbfs: float = -18.0) -> np.ndarray:
    """Random gain around a nominal level, then clip at full scale (mild clipping at high gains)."""
    g = 10 ** ((level_dbfs + rng.uniform(*gain_db)) / 20) / rms(wave)
    return np.clip(wave * g, -1.0, 1.0).astype(np.float32)


class Babble:
    """Several espeak-ng voices reading texts unseen in training; rendered once into a folder."""

    def __init__(self, folder: str | Path, rate: int) -> None:
        self.folder = Path(folder)
        self.rate = rate
        self.voices: list[np.ndarray] = []

    def prepare(self) -> "Babble":
        self.folder.mkdir(parents=True, exist_ok=True)
        exe = shutil.which("espeak-ng")
        paras = []
        for f in BABBLE_TEXTS:
            if Path(f).exists():
                text = Path(f).read_text(errors="replace")
                paras += [" ".join(p.split()) for p in text.split("\n\n") if len(p) > 400]
        for i, (voice, speed) in enumerate(BABBLE_VOICES):
            out = self.folder / f"voice{i}.wav"
            if not out.exists() and exe and paras:
                subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(out), paras[(7 * i) % len(paras)][:1500]],
                               check=False, capture_output=True, timeout=120)
            if out.exists():
                w = load_audio(out, self.rate)
                if len(w) > self.rate * 4:
                    self.voices.append(w / rms(w))
        if not self.voices:
            raise RuntimeError("no babble voices: is espeak-ng installed (`which espeak-ng`)?")
        return self

    def draw(self, n: int, rng: np.random.Generator, voices: int = 4) -> np.ndarray:
        """Sum of `voices` different talkers (equal level), `n` samples."""
        idx = rng.choice(len(self.voices), size=min(voices, len(self.voices)), replace=False)
        out = np.zeros(n, np.float32)
        for i in idx:
            out += looped(self.voices[i], n, rng)
        return out


def at_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """`wave` played `factor` times as fast, tempo and pitch together (a turntable, tape or pitch control at
    the wrong speed): resampled by the nearest ratio with a denominator <= 200."""
    ratio = Fraction(factor).limit_denominator(200)
    return resample_poly(wave, ratio.denominator, ratio.numerator).astype(np.float32)


def synthetic_rooms(rate: int, rng: np.random.Generator, rt60s: tuple[float, ...] = (0.3, 0.5, 0.8)) -> list[np.ndarray]:
    """Exponentially decaying noise with a direct-path spike: one impulse response per reverberation time
    (seconds to -60 dB), for when no real one is held out."""
    out = []
    for rt60 in rt60s:
        n = int(rt60 * rate)
        h = rng.standard_normal(n) * np.exp(-6.91 * np.arange(n) / n)
        h[0] = 3.0
        out.append(h.astype(np.float32))
    return out


def mic_chain(music: np.ndarray, rate: int, rir: np.ndarray, rng: np.random.Generator, pre: int,
              babble: np.ndarray | None = None, pink_snr_db: float = 10.0, babble_snr_db: float = 0.0) -> np.ndarray:
    """mic3 / babble3: room reverb, (voices), pink noise, band-limit, random gain + clipping.

    `music` includes `pre` samples before the query so the room's tail from earlier sound is there;
    the returned query starts after them. SNRs are measured against the reverberant music.
    """
    wet = reverberate(music, rir)
    q = wet[pre:]
    if babble is not None:
        voices = reverberate(babble, rir)[pre:]
        q = mix_at_snr(q, voices, babble_snr_db) if rms(voices) > 0 else q
        q = q + (pink_noise(len(q), rng) * rms(wet[pre:]) * 10 ** (-pink_snr_db / 20))
    else:
        q = mix_at_snr(q, pink_noise(len(q), rng), pink_snr_db)
    return gain_and_clip(band_limit(q, rate), rng)
