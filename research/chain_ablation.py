"""Which part of the microphone chain costs the most? One stage of `mic3` at a time.

    python research/chain_ablation.py runs/NAME [--model FILE] [--n 240] [--raw | --raw-centred]

`evaluate` says how often a model identifies a song through the whole chain; this says which stage
of it takes the accuracy away, so the next training run knows what to work on. On the evaluation's
library (`runs/NAME/eval*/library`, built by `evaluate`), excerpts of library songs at random
offsets (never aligned with library tiles, as in `evaluate`) are degraded by one stage only, with
the parameters `degrade_wave.mic_chain` uses, and each single 3-s tile is searched exhaustively
among all library tiles: song top-1 (the first neighbour's song), and the fingerprint cosine to the
nearest library tile of the right song. A single tile searched exhaustively is what mic3 measures;
the matcher adds nothing to one tile (seen in this session: exhaustive aligned search over every
song and offset found what the matcher found, mic3 30 / 30 %, mic10 53 / 54 %).
Writes `chain_ablation.json` next to the library.

`--raw` and `--raw-centred` search the raw tiles instead of fingerprints (4096 values each, minus the
tile's mean; `--raw-centred` takes each band's own mean out, `shazamlet.model.resnet.centre_bands`):
no training at all, a floor for what a model must beat, and the measurement that showed band
centring to be worth training for (`chain_ablation-raw*.json`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from shazamlet.audio.decode import load_audio
from shazamlet.features import cut_tiles, normalise_tiles, power_to_db
from shazamlet.model.resnet import centre_bands
from trainer.degrade_wave import band_limit, gain_and_clip, mic_chain, mix_at_snr, pink_noise, reverberate
from trainer.evaluate import PRE_S, EvalConfig, eval_folder, load_eval_rirs, pick_sets
from trainer.loop import Run


def stages(rirs: list[np.ndarray], rate: int) -> dict:
    """name -> f(music with PRE_S of history, rng) -> the degraded query (history cut off)."""
    pre = int(PRE_S * rate)
    out = {
        "clean (random offset)": lambda m, rng: m[pre:],
        "band-limit 120 Hz-7 kHz": lambda m, rng: band_limit(m, rate)[pre:],
        "gain -12..+12 dB + clipping": lambda m, rng: gain_and_clip(m[pre:], rng),
        "pink noise 10 dB": lambda m, rng: mix_at_snr(m[pre:], pink_noise(len(m) - pre, rng), 10.0),
        "pink noise 20 dB": lambda m, rng: mix_at_snr(m[pre:], pink_noise(len(m) - pre, rng), 20.0),
    }
    for i, rir in enumerate(rirs):
        out[f"reverb, evaluation room {i + 1}"] = lambda m, rng, h=rir: reverberate(m, h)[pre:]
    out["mic3 (all of it)"] = lambda m, rng: mic_chain(m, rate, rirs[int(rng.integers(len(rirs)))], rng, pre)
    return out


RAW = {"raw": lambda t: t - t.mean(dim=(-2, -1), keepdim=True), "raw-centred": centre_bands}


def raw_vectors(tiles: torch.Tensor, kind: str) -> torch.Tensor:
    """Raw tiles `(n, n_mels, frames)` as unit vectors for a cosine search (`RAW[kind]` first)."""
    return torch.nn.functional.normalize(RAW[kind](tiles).flatten(1), dim=1)


@torch.no_grad()
def ablate(run_dir: str, model: str | None = None, n: int = 240, seed: int = 0, raw: str | None = None) -> dict:
    """Single-tile top-1 per stage; with `raw` ("raw" / "raw-centred") on raw tiles, not fingerprints."""
    from shazamlet.library import Library
    from shazamlet.model import TileEmbedder, load_model
    torch.set_num_threads(max(1, torch.get_num_threads()))
    run = Run(run_dir)
    folder = eval_folder(run, model)
    model_path = Path(model) if model else folder / "model.pt"
    if not (folder / "library").exists() or not model_path.exists():
        raise SystemExit(f"no evaluation library in {folder}: run `python -m trainer evaluate {run_dir}` first")
    embedder = TileEmbedder(load_model(model_path))
    feats = embedder.features
    rate = feats.sample_rate
    cfg = EvalConfig()
    lib_songs, _ = pick_sets(run, cfg)
    root = Path(run.config.data).resolve()
    waves = {str((root / s.rel).resolve()): load_audio(root / s.rel, rate) for s in lib_songs}  # decoded once
    lib = Library.open(folder / "library", embedder, create=False)
    by_path = {str(Path(s.path).resolve()): s for s in lib.songs()}
    ids, starts, fps = [], [], []
    for s in lib.songs():
        f, st, _ = lib.store.read(s.emb_file)
        ids.append(np.full(len(st), s.id))
        starts.append(st)
        if raw:  # the library's tiles themselves, cut where its fingerprints were taken
            power = embedder.frontend.forward(torch.from_numpy(waves[str(Path(s.path).resolve())]))
            f = raw_vectors(normalise_tiles(cut_tiles(power_to_db(power), st, feats.tile_frames), feats.top_db), raw)
            f = f.numpy()
        fps.append(f.astype(np.float32))
    ids, starts, fps = np.concatenate(ids), np.concatenate(starts), torch.from_numpy(np.concatenate(fps))
    lib.close()
    rirs = load_eval_rirs(run, rate, np.random.default_rng(cfg.seed + 1))
    rng = np.random.default_rng(seed)
    pre, t = int(PRE_S * rate), feats.tile_samples
    excerpts = []  # (song id, start sample, wave)
    for i in range(n):
        path = str((root / lib_songs[i % len(lib_songs)].rel).resolve())
        start = int(rng.integers(pre, len(waves[path]) - t))
        excerpts.append((by_path[path].id, start, waves[path]))
    results = {}
    for name, degrade in stages(rirs, rate).items():
        srng = np.random.default_rng([seed, len(name)])
        tiles = [embedder.frontend.tiles(degrade(w[start - pre: start + t], srng), feats.tile_frames).tiles[0]
                 for _, start, w in excerpts]
        tiles = torch.stack(tiles)
        q = raw_vectors(tiles, raw) if raw else torch.from_numpy(embedder.embed(tiles).astype(np.float32))
        sims = q @ fps.T
        truth = np.array([sid for sid, _, _ in excerpts])
        top = ids[sims.argmax(1).numpy()]
        frame = np.array([start / feats.hop_length for _, start, _ in excerpts])
        own = [(ids == sid) & (np.abs(starts - f) <= feats.tile_frames / 2) for sid, f in zip(truth, frame)]
        cos = [float(sims[i][torch.from_numpy(m)].max()) for i, m in enumerate(own)]
        results[name] = {"top1": float(np.mean(top == truth)), "cos_to_own_tile": float(np.mean(cos))}
        print(f"{name:32s} top-1 {results[name]['top1']:.3f}  cosine to its own tile {results[name]['cos_to_own_tile']:.3f}",
              flush=True)
    out = {"model": raw or str(model_path), "n": n, "library_tiles": int(len(ids)), "stages": results}
    (folder / f"chain_ablation{'-' + raw if raw else ''}.json").write_text(json.dumps(out, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--model", help="a model file evaluated on this run's split (default: the run's own)")
    ap.add_argument("--n", type=int, default=240, help="excerpts per stage")
    kind = ap.add_mutually_exclusive_group()
    kind.add_argument("--raw", dest="raw", action="store_const", const="raw", help="search raw tiles, no model")
    kind.add_argument("--raw-centred", dest="raw", action="store_const", const="raw-centred",
                      help="search raw tiles with each band's mean taken out, no model")
    a = ap.parse_args()
    ablate(a.run, a.model, a.n, raw=a.raw)


if __name__ == "__main__":
    main()
