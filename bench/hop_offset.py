"""What a coarser library hop costs: how fast a tile (or its fingerprint) drifts with time offset.

    python -m bench.hop_offset [--model shazamlet/model/shazamlet-default.pt] [--files 6]

With a library hop of h frames, a query tile starts at most h/2 frames from the nearest library tile.
For offsets of 0 to 11 frames (0 to 0.51 s) this measures the cosine similarity between a tile and
the tile `offset` frames later in the same recording: on the normalised log-mel tiles themselves
(no model), and on the fingerprints when a trained model is given. Offsets 5, 8 and 11 frames are
the worst cases of the 0.51-s (11), 0.74-s (16) and 1.02-s (22) hops. For context, the similarity
of tiles from two different recordings is given too. Audio: a few files of /work/data/corpus, or
synthesized songs when the corpus is absent.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench.common import Results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a trained model file (fingerprint similarity)")
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds read from each file")
    args = ap.parse_args()
    from shazamlet.audio.decode import load_audio
    from shazamlet.config import FeatureConfig
    from shazamlet.features import LogMelFrontEnd

    from bench.throughput import corpus_files

    res = (Results("hop_offset", "1b. What a coarser library hop costs: similarity against time offset")
           if not args.model else
           Results("hop_offset_model", "1c. The same with fingerprints of a trained model"))
    cfg = FeatureConfig()
    fe = LogMelFrontEnd(cfg)
    files = corpus_files(args.files)
    waves = [load_audio(p, cfg.sample_rate, max_seconds=args.seconds) for p in files]
    if not waves:
        from tests.synth import STYLES, make_song

        waves = [make_song(300 + i, STYLES[i % 4], args.seconds) for i in range(args.files)]
    res.note(f"{len(waves)} recordings ({'corpus' if files else 'synthesized'}), {args.seconds:.0f} s each, every "
             f"tile start (hop 1 frame).")
    embed = None
    if args.model:
        from shazamlet.model import TileEmbedder

        emb = TileEmbedder(args.model)
        embed = emb.embed
        res.note(f"Fingerprints from {args.model} ({emb.model.meta.name}).")
    offsets = list(range(0, 12))
    sims_tile = {d: [] for d in offsets}
    sims_fp = {d: [] for d in offsets}
    firsts_t, firsts_f = [], []
    for w in waves:
        t = fe.tiles(w, 1)
        tiles = t.tiles[torch.as_tensor(t.audible)]
        flat = tiles.reshape(len(tiles), -1)
        flat = flat - flat.mean(1, keepdim=True)
        flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-9)
        fps = torch.from_numpy(embed(tiles[::1])) if embed else None
        for d in offsets:
            sims_tile[d].append((flat[: len(flat) - d] * flat[d:]).sum(1).mean().item())
            if fps is not None:
                sims_fp[d].append((fps[: len(fps) - d] * fps[d:]).sum(1).mean().item())
        firsts_t.append(flat[::50])
        if fps is not None:
            firsts_f.append(fps[::50])

    def across(xs: list[torch.Tensor]) -> float:
        vals = []
        for i in range(len(xs)):
            for j in range(i + 1, len(xs)):
                vals.append((xs[i] @ xs[j].T).mean().item())
        return float(np.mean(vals)) if vals else float("nan")

    rows = []
    for d in offsets:
        worst_for = {5: "0.51-s hop (11)", 8: "0.74-s hop (16)", 11: "1.02-s hop (22)"}.get(d, "")
        rows.append([d, d * cfg.frame_seconds, float(np.mean(sims_tile[d])),
                     float(np.mean(sims_fp[d])) if embed else float("nan"), worst_for])
    rows.append(["other recording", "", across(firsts_t), across(firsts_f) if embed else float("nan"), ""])
    res.table("Mean cosine similarity between a tile and the tile `offset` frames later (tiles: mean-removed "
              "normalised log-mel)", ["offset frames", "offset s", "tile cosine", "fingerprint cosine",
                                      "worst case of"], rows)
    res.value("rows", rows)
    res.save()


if __name__ == "__main__":
    main()
