"""Does the trainer's mel-domain shortcut (`trainer.augment`) match real waveform degradations?

    python research/shortcut_check.py RUN [--model FILE] [--seed 0]

`shortcut_check`: for excerpts of the evaluation's library songs, the clean tile, the tile of the waveform
mic3 chain (`trainer.degrade_wave.mic_chain`: held-out real room, pink noise 10 dB, 120 Hz-7 kHz,
gain/clip) and the tile of the mel shortcut configured like mic3 (the same room's per-band energy
envelope, pink noise 10 dB, band-limiting 120 Hz-7 kHz). Reports how far each degraded tile is from the
clean one (mean absolute difference of normalised tiles, fingerprint cosine), how often each finds its own
clean tile among all clean tiles (top-1), and how far the two degraded versions are from each other.

`speed_check`: does `augment.speed_warp` of a tile match the tile of the waveform played at that speed?

Prints both as JSON. Research tool: not part of the product.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from shazamlet.config import FeatureConfig
from shazamlet.features import LogMelFrontEnd
from trainer.augment import DegradeParams, MelDegrader, speed_warp, to_tiles
from trainer.cache import rir_envelope
from trainer.degrade_wave import at_speed, mic_chain

MIC3_LIKE = DegradeParams(p_reverb=1.0, p_real_rir=1.0, p_babble=0.0, p_env=0.0, p_pink=1.0,
                          noise_snr_db=(10.0, 10.0), hp_hz=(120.0, 120.0), lp_hz=(7000.0, 7000.0), eq_db=0.0,
                          p_cabinet=0.0, floor_db=(70.0, 70.0), p_clip=0.0)


@torch.no_grad()
def shortcut_check(embedder, waves: list[np.ndarray], rirs: list[np.ndarray], n: int = 96, seed: int = 0) -> dict:
    feats = embedder.features
    rate, t = feats.sample_rate, feats.tile_samples
    rng = np.random.default_rng(seed)
    pre = rate  # one second of room history
    fe = embedder.frontend
    clean, wave_deg, mel_deg = [], [], []
    for i in range(n):
        w = waves[i % len(waves)]
        s = int(rng.integers(pre, len(w) - t))
        r = int(rng.integers(len(rirs)))
        music = w[s - pre : s + t]
        clean.append(fe.tiles(music[pre:], feats.tile_frames).tiles[0])
        wave_deg.append(fe.tiles(mic_chain(music, rate, rirs[r], rng, pre), feats.tile_frames).tiles[0])
        env = torch.from_numpy(rir_envelope(rirs[r], feats))[None]
        deg = MelDegrader(feats, None, env, None, MIC3_LIKE)
        power = fe(torch.from_numpy(np.ascontiguousarray(music)))[None]  # (1, mels, frames incl. history)
        k = power.shape[-1] - feats.tile_frames
        mel_deg.append(to_tiles(deg(power, rng, slice(k, None))[..., k:], feats.top_db)[0])
    c, wd, md = torch.stack(clean), torch.stack(wave_deg), torch.stack(mel_deg)
    fc, fw, fm = (embedder.embed(x) for x in (c, wd, md))

    def top1(f):
        return float(np.mean((f @ fc.T).argmax(1) == np.arange(len(fc))))

    return {"n": n,
            "tile_mae_wave_vs_clean": float((wd - c).abs().mean()), "tile_mae_mel_vs_clean": float((md - c).abs().mean()),
            "tile_mae_wave_vs_mel": float((wd - md).abs().mean()),
            "cos_wave_vs_clean": float(np.mean(np.sum(fw * fc, 1))), "cos_mel_vs_clean": float(np.mean(np.sum(fm * fc, 1))),
            "top1_wave": top1(fw), "top1_mel": top1(fm)}


@torch.no_grad()
def speed_check(feats: FeatureConfig, waves: list[np.ndarray], speeds: tuple[float, ...] = (0.92, 0.95, 1.05, 1.08),
                n: int = 32, seed: int = 0) -> dict:
    """Per speed: mean absolute difference between the tile of an excerpt played at that speed (resampled
    waveform) and (a) `speed_warp` of the excerpt's mel power, (b) the excerpt's tile unchanged. The warp is
    centred so that its frames land on the resampled audio's frame grid (no sub-frame misalignment)."""
    fe = LogMelFrontEnd(feats)
    rng = np.random.default_rng(seed)
    t, hop = feats.tile_frames, feats.hop_length
    out = {}
    first = 8  # tile start inside the excerpt: room for the warp to read earlier frames
    for s in speeds:
        shift = int(round((first + t / 2) * (1 / s - 1)))  # frames the tile moves by when played at s
        centre = shift / (1 / s - 1)  # near the tile's middle, where output and played frames coincide
        warp_err, plain_err = [], []
        for i in range(n):
            w = waves[i % len(waves)]
            span = (first + 2 * t + 8) * hop
            st = int(rng.integers(0, max(1, len(w) - span)))
            seg = np.ascontiguousarray(w[st : st + span])
            power = fe(torch.from_numpy(seg))[None]
            played = fe(torch.from_numpy(np.ascontiguousarray(at_speed(seg, s))))[None]
            ref = to_tiles(played[..., first + shift : first + shift + t], feats.top_db)
            warped = speed_warp(power, torch.tensor([s]), feats, centre)[..., first : first + t]
            warp_err.append(float((to_tiles(warped, feats.top_db) - ref).abs().mean()))
            plain_err.append(float((to_tiles(power[..., first : first + t], feats.top_db) - ref).abs().mean()))
        out[f"{s:g}"] = {"tile_mae_warp": float(np.mean(warp_err)), "tile_mae_unwarped": float(np.mean(plain_err))}
    return out


def main(argv: list[str] | None = None) -> int:
    from shazamlet.audio.decode import load_audio
    from shazamlet.model import TileEmbedder, load_model
    from trainer.evaluate import EvalConfig, load_eval_rirs, pick_sets
    from trainer.loop import Run

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a run folder: its evaluation's library songs and held-out rooms are used")
    p.add_argument("--model", default="shazamlet/model/shazamlet-default.pt")
    p.add_argument("--seed", type=int, default=0, help="the evaluation's draw of songs (and of excerpts)")
    a = p.parse_args(argv)
    run = Run(a.run)
    embedder = TileEmbedder(load_model(a.model))
    rate = embedder.features.sample_rate
    songs, _ = pick_sets(run, EvalConfig(seed=a.seed))
    waves = [load_audio(Path(run.config.data) / s.rel, rate) for s in songs]
    rirs = load_eval_rirs(run, rate, np.random.default_rng(a.seed + 1))
    print(json.dumps({"shortcut_check": shortcut_check(embedder, waves, rirs, seed=a.seed),
                      "speed_check": speed_check(embedder.features, waves, seed=a.seed)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
