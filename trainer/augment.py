"""Cheap degradations in the mel POWER domain, batched in torch (shapes `(B, n_mels, frames)`).

A laptop microphone in a room, approximated per mel band: room reverb = convolution along time with
per-band energy envelopes of impulse responses (real ones from the noise corpus, or synthetic
exponential decays); background noise = added noise powers at a per-tile SNR (recorded environments,
several people talking, pink noise); the microphone = per-band gains (band-limiting ~120 Hz-7 kHz with
random corners, a random smooth EQ, sometimes a loudspeaker cabinet response) plus a self-noise floor;
mild clipping = a little energy spread across bands. Gain changes vanish in the per-tile
normalisation, so they need no simulation here. `trainer.evaluate` checks all this against real
waveform degradations (`trainer.degrade_wave`).

The paper's augmentation (`paper_augment`) is kept apart: roll, one noise recording added, frequency
and time masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shazamlet.config import FeatureConfig, htk_hz, htk_mel
from shazamlet.features import mel_filterbank, normalise_tiles, power_to_db

SPEECH_PREFIX = "speech"


def mel_centres_hz(cfg: FeatureConfig) -> torch.Tensor:
    """Centre frequency of every mel band `(n_mels,)` (HTK scale, like the front end)."""
    m = np.linspace(htk_mel(cfg.f_min), htk_mel(cfg.f_max), cfg.n_mels + 2)[1:-1]
    return torch.tensor(htk_hz(m), dtype=torch.float32)


def coloured_noise_bands(cfg: FeatureConfig, exponent: float) -> torch.Tensor:
    """Mel-band power `(n_mels,)` of noise with PSD ~ f^-exponent (0 white, 1 pink), total 1."""
    fb = mel_filterbank(cfg)  # (freqs, mels)
    f = torch.linspace(0, cfg.sample_rate / 2, fb.shape[0]).clamp(min=20.0)
    p = (f ** -exponent) @ fb
    return p / p.sum()


def to_tiles(power: torch.Tensor, top_db: float) -> torch.Tensor:
    """Mel power tiles -> the app's normalised [0, 1] tiles."""
    return normalise_tiles(power_to_db(power), top_db)


class NoiseBank:
    """Cached noise spectrograms (dB, memory-mapped) grouped into speech and other recordings."""

    def __init__(self, items: list[tuple[str, np.ndarray]]) -> None:
        self.speech = [a for c, a in items if c.startswith(SPEECH_PREFIX) and a.shape[-1] > 8]
        self.other = [a for c, a in items if not c.startswith(SPEECH_PREFIX) and a.shape[-1] > 8]

    def __bool__(self) -> bool:
        return bool(self.speech or self.other)

    @staticmethod
    def _segment(arr: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
        n = arr.shape[-1]
        if n >= frames:
            s = int(rng.integers(0, n - frames + 1))
            return np.asarray(arr[:, s : s + frames], dtype=np.float32)
        reps = int(np.ceil(frames / n)) + 1
        s = int(rng.integers(0, n))
        return np.tile(np.asarray(arr, dtype=np.float32), reps)[:, s : s + frames]

    def draw(self, pool: str, frames: int, rng: np.random.Generator) -> torch.Tensor:
        """Power `(n_mels, frames)` of one random recording, unit mean power (zeros if pool empty)."""
        arrs = self.speech if pool == "speech" else self.other
        if not arrs:
            arrs = self.speech or self.other
        seg = self._segment(arrs[int(rng.integers(len(arrs)))], frames, rng)
        p = torch.from_numpy(10.0 ** (seg / 10.0))
        return p / p.mean().clamp(min=1e-12)

    def babble(self, frames: int, rng: np.random.Generator, voices: tuple[int, int] = (2, 4)) -> torch.Tensor:
        n = int(rng.integers(voices[0], voices[1] + 1))
        p = sum(self.draw("speech", frames, rng) * float(rng.uniform(0.5, 1.5)) for _ in range(n))
        return p / p.mean().clamp(min=1e-12)


@dataclass(frozen=True)
class DegradeParams:
    p_reverb: float = 0.8
    p_real_rir: float = 0.4
    rt60_s: tuple[float, float] = (0.15, 2.0)
    drr_db: tuple[float, float] = (-12.0, 8.0)
    p_babble: float = 0.6
    babble_snr_db: tuple[float, float] = (-6.0, 12.0)
    babble_voices: tuple[int, int] = (2, 4)  # people talking at once
    p_env: float = 0.5
    p_pink: float = 0.5
    noise_snr_db: tuple[float, float] = (0.0, 25.0)
    hp_hz: tuple[float, float] = (60.0, 300.0)
    lp_hz: tuple[float, float] = (3000.0, 9000.0)
    eq_db: float = 4.0
    p_cabinet: float = 0.15
    floor_db: tuple[float, float] = (30.0, 60.0)
    p_clip: float = 0.25
    clip_db: tuple[float, float] = (15.0, 30.0)
    # strong colouration of what reaches the microphone (a phone or laptop loudspeaker, a resonant
    # corner): a ragged response with one region loud and the rest down to `colour_db` below it
    p_colour: float = 0.0
    colour_db: float = 30.0
    colour_knots: int = 12


class MelDegrader:
    """Degrade batches of mel power spectrograms like a laptop microphone in a room."""

    def __init__(self, cfg: FeatureConfig, noises: NoiseBank | None = None, rirs: torch.Tensor | None = None,
                 eqs: torch.Tensor | None = None, params: DegradeParams = DegradeParams()) -> None:
        self.cfg = cfg
        self.p = params
        self.noises = noises
        self.rirs = rirs if rirs is not None and len(rirs) else None  # (R, n_mels, K), sum 1 per band
        self.eqs = eqs if eqs is not None and len(eqs) else None  # (E, n_mels)
        self.centres = mel_centres_hz(cfg)
        self.pink = coloured_noise_bands(cfg, 1.0)
        self.white = coloured_noise_bands(cfg, 0.0)
        self.k = rirs.shape[-1] if self.rirs is not None else 24
        if self.rirs is not None:
            self.rirs = torch.where(self.rirs < 1e-6, torch.zeros_like(self.rirs), self.rirs)
        torch.set_flush_denormal(True)

    # --- pieces (each: power (B, M, T) -> power) -------------------------------------------------
    def synthetic_rir(self, b: int, rng: np.random.Generator) -> torch.Tensor:
        """Per-band exponential decays `(b, n_mels, K)`: RT60 longer in the bass, a random DRR."""
        p = self.p
        rt = torch.from_numpy(rng.uniform(*p.rt60_s, size=(b, 1, 1))).float()
        tilt = torch.linspace(1.3, 0.7, self.cfg.n_mels).view(1, -1, 1)
        lag = torch.arange(self.k, dtype=torch.float32).view(1, 1, -1) * self.cfg.frame_seconds
        tail = torch.exp(-6.91 * lag / (rt * tilt))
        tail[..., 0] = 0.0
        tail = tail / tail.sum(-1, keepdim=True)
        drr = torch.from_numpy(rng.uniform(*p.drr_db, size=(b, 1, 1))).float()
        h = tail * 10 ** (-drr / 10)
        h[..., 0] += 1.0
        h = h / h.sum(-1, keepdim=True)
        # room colouration: a random smooth per-band gain (+-6 dB) on the whole response
        knots = torch.from_numpy(rng.uniform(-6.0, 6.0, size=(b, 1, 8))).float()
        colour = torch.nn.functional.interpolate(knots, size=self.cfg.n_mels, mode="linear", align_corners=True)
        h = h * 10 ** (colour.transpose(1, 2) / 10)
        return torch.where(h < 1e-6, torch.zeros_like(h), h)  # no denormals (they are 100x slower)

    def reverb(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        b = x.shape[0]
        h = self.synthetic_rir(b, rng)
        if self.rirs is not None:
            use_real = torch.from_numpy(rng.random(b) < self.p.p_real_rir)
            real = self.rirs[torch.from_numpy(rng.integers(0, len(self.rirs), b))]
            h = torch.where(use_real.view(-1, 1, 1), real, h)
        on = torch.from_numpy(rng.random(b) < self.p.p_reverb).view(-1, 1, 1)
        y = torch.zeros_like(x)
        for k in range(min(self.k, x.shape[-1])):
            y[..., k:] += h[..., k : k + 1] * x[..., : x.shape[-1] - k]
        return torch.where(on, y, x)

    def noise(self, x: torch.Tensor, rng: np.random.Generator, signal: torch.Tensor) -> torch.Tensor:
        """Add babble / recorded noise / pink noise at per-item SNRs relative to `signal` (B,) power."""
        b, m, t = x.shape
        p = self.p
        total = torch.zeros_like(x)
        for i in range(b):
            parts = []
            if self.noises and rng.random() < p.p_babble and self.noises.speech:
                parts.append((self.noises.babble(t, rng, p.babble_voices), rng.uniform(*p.babble_snr_db)))
            if self.noises and rng.random() < p.p_env and self.noises.other:
                parts.append((self.noises.draw("other", t, rng), rng.uniform(*p.noise_snr_db)))
            if rng.random() < p.p_pink or not parts:
                fluct = torch.from_numpy(rng.gamma(16.0, 1 / 16.0, size=(1, t))).float()
                parts.append((self.pink.view(-1, 1) * m * fluct, rng.uniform(*p.noise_snr_db)))
            for n, snr in parts:
                total[i] += n * (signal[i] * 10 ** (-snr / 10))
        return x + total

    def mic(self, x: torch.Tensor, rng: np.random.Generator, signal: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        p = self.p
        f = self.centres.view(1, -1)
        hp = torch.from_numpy(rng.uniform(*p.hp_hz, size=(b, 1))).float()
        lp = torch.from_numpy(rng.uniform(*p.lp_hz, size=(b, 1))).float()
        n_hp = torch.from_numpy(rng.integers(1, 5, size=(b, 1))).float()
        n_lp = torch.from_numpy(rng.integers(1, 5, size=(b, 1))).float()
        g = 1 / (1 + (hp / f) ** (2 * n_hp)) / (1 + (f / lp) ** (2 * n_lp))
        # smooth random EQ: a few random cosine bumps across the bands
        knots = torch.from_numpy(rng.uniform(-p.eq_db, p.eq_db, size=(b, 1, 6))).float()
        eq = torch.nn.functional.interpolate(knots, size=self.cfg.n_mels, mode="linear", align_corners=True)
        g = g * 10 ** (eq.squeeze(1) / 10)
        if self.eqs is not None:
            cab = self.eqs[torch.from_numpy(rng.integers(0, len(self.eqs), b))]
            use = torch.from_numpy(rng.random(b) < p.p_cabinet).view(-1, 1)
            g = torch.where(use, g * cab, g)
        floor = torch.from_numpy(rng.uniform(*p.floor_db, size=(b, 1, 1))).float()
        x = x * g.unsqueeze(-1) + self.white.view(1, -1, 1) * self.cfg.n_mels * signal.view(-1, 1, 1) * 10 ** (-floor / 10)
        clip = torch.from_numpy(rng.random(b) < p.p_clip).view(-1, 1, 1)
        spread = x.mean(1, keepdim=True) * 10 ** (-torch.from_numpy(rng.uniform(*p.clip_db, size=(b, 1, 1))).float() / 10)
        return torch.where(clip, x + spread, x)

    def colour(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """With probability `p_colour`, per-band gains from `colour_knots` random levels in
        [-colour_db, 0] dB spread linearly over the bands: applied to the music before noise is
        added, as a loudspeaker or a resonant room colours the music and not the room's noise."""
        p = self.p
        b = x.shape[0]
        if p.p_colour <= 0:
            return x
        knots = torch.from_numpy(rng.uniform(-p.colour_db, 0.0, size=(b, 1, p.colour_knots))).float()
        knots = knots - knots.amax(dim=-1, keepdim=True)  # the loudest region passes unchanged
        db = torch.nn.functional.interpolate(knots, size=self.cfg.n_mels, mode="linear", align_corners=True)
        use = torch.from_numpy(rng.random(b) < p.p_colour).view(-1, 1, 1)
        return torch.where(use, x * 10 ** (db.transpose(1, 2) / 10), x)

    def __call__(self, power: torch.Tensor, rng: np.random.Generator, region: slice | None = None) -> torch.Tensor:
        """Degraded copy of mel power `(B, n_mels, T)`. SNRs are measured over `region` of time."""
        x = self.colour(self.reverb(power, rng), rng)
        sig = x[..., region] if region is not None else x
        signal = sig.mean(dim=(1, 2)).clamp(min=1e-10)
        x = self.noise(x, rng, signal)
        return self.mic(x, rng, signal)


def speed_warp(power: torch.Tensor, factors: torch.Tensor, cfg: FeatureConfig, centre: float) -> torch.Tensor:
    """Mel power `(B, n_mels, T)` as if the audio had been played `factors` `(B,)` times as fast, tempo
    and pitch together (a turntable or a DJ's pitch control): frame j takes the input at
    `centre + (j - centre) * s`, band m (centre f) the input at f / s, and the band's power is scaled by
    how much wider the band is than the one it reads (power density is kept). Bands read from above the
    top band fade out (slowed-down audio has nothing there). Interpolated in log power;
    `research/shortcut_check.py` (`speed_check`) measures it against resampling the waveform."""
    b, m, t = power.shape
    s = factors.to(power).view(-1, 1)
    f = mel_centres_hz(cfg).to(power).view(1, -1)
    lo, hi = htk_mel(cfg.f_min), htk_mel(cfg.f_max)
    band = (htk_mel(f / s) - lo) / ((hi - lo) / (m + 1)) - 1  # (B, M) fractional index
    frame = centre + (torch.arange(t, dtype=power.dtype, device=power.device).view(1, -1) - centre) * s  # (B, T)
    grid = torch.stack([(frame / (t - 1) * 2 - 1).unsqueeze(1).expand(b, m, t),
                        (band / (m - 1) * 2 - 1).unsqueeze(2).expand(b, m, t)], dim=-1)
    logp = torch.log(power.clamp(min=1e-12)).unsqueeze(1)
    out = torch.nn.functional.grid_sample(logp, grid, mode="bilinear", padding_mode="border", align_corners=True)[:, 0]
    fade = (band - (m - 1)).clamp(min=0.0) * np.log(1e3)  # -30 dB per band above the top one
    density = torch.log((700 + f) / (700 * s + f))
    return torch.exp(out - fade.unsqueeze(-1) + density.unsqueeze(-1))


def light_lowpass(power: torch.Tensor, cfg: FeatureConfig, rng: np.random.Generator, p: float = 0.3) -> torch.Tensor:
    """Sometimes cut the top octave (8-11 kHz), so bandwidth (codec, sample rate) tells nothing."""
    b = power.shape[0]
    f = mel_centres_hz(cfg).view(1, -1)
    lp = torch.from_numpy(rng.uniform(7000, 11000, size=(b, 1))).float()
    g = 1 / (1 + (f / lp) ** 8)
    use = torch.from_numpy(rng.random(b) < p).view(-1, 1)
    return power * torch.where(use, g, torch.ones_like(g)).unsqueeze(-1)


def mask_tiles(tiles: torch.Tensor, rng: np.random.Generator, max_f: int = 8, max_t: int = 8) -> torch.Tensor:
    """One frequency mask and one time mask per tile (set to 0), widths up to `max_f` / `max_t`."""
    out = tiles.clone()
    b, m, t = out.shape
    for i in range(b):
        wf, wt = int(rng.integers(0, max_f + 1)), int(rng.integers(0, max_t + 1))
        f0, t0 = int(rng.integers(0, m - wf + 1)), int(rng.integers(0, t - wt + 1))
        out[i, f0 : f0 + wf, :] = 0.0
        out[i, :, t0 : t0 + wt] = 0.0
    return out


def paper_augment(power: torch.Tensor, noises: NoiseBank | None, rng: np.random.Generator,
                  top_db: float, snr_db: tuple[float, float] = (0.0, 20.0), max_roll: int = 16) -> tuple[torch.Tensor, np.ndarray]:
    """The paper's online augmentation of tiles `(B, n_mels, tile_frames)` of mel power.

    Random roll left/right, one real noise recording added (in power, at a random per-tile SNR),
    then frequency and time masking on the normalised tile. Returns (normalised tiles, the rolls)
    so that a reconstruction target can be rolled the same way.
    """
    b, m, t = power.shape
    shifts = rng.integers(-max_roll, max_roll + 1, size=b)
    x = torch.stack([torch.roll(power[i], int(shifts[i]), dims=-1) for i in range(b)])
    if noises:
        sig = x.mean(dim=(1, 2))
        n = torch.stack([noises.draw("speech" if rng.random() < 0.3 else "other", t, rng) for _ in range(b)])
        snr = torch.from_numpy(rng.uniform(*snr_db, size=b)).float()
        x = x + n * (sig * 10 ** (-snr / 10)).view(-1, 1, 1)
    return mask_tiles(to_tiles(x, top_db), rng), shifts
