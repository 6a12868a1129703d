"""Does a coarser library hop cost identifications? Top-1 accuracy by library hop, real audio.

    python -m bench.hop_accuracy --model shazamlet/model/shazamlet-default.pt [--songs 20] [--queries 80]

Needs a trained model: with random weights the answer means nothing. Excerpts of corpus songs
(60 s each) are added to one library per hop with the product's `Library.add`. Then 3-s clips, cut
at random offsets that are not aligned to any hop, with white noise at a given SNR, go through
`Recognizer.identify_wave`. The score is the share of clips whose best candidate is the right song,
plus the median raw score of that candidate. The same clips are used for every hop.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import OUT, Results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--songs", type=int, default=20)
    ap.add_argument("--queries", type=int, default=80)
    ap.add_argument("--snr", default="inf,10,0", help="comma-separated SNRs in dB (inf = clean)")
    ap.add_argument("--hops", default="11,16,22")
    args = ap.parse_args()
    import shutil

    import soundfile as sf
    import torch

    from bench.throughput import corpus_files
    from shazamlet.audio.decode import load_audio
    from shazamlet.config import IndexConfig
    from shazamlet.library import Library
    from shazamlet.model import TileEmbedder
    from shazamlet.recognition import Recognizer
    from tests.synth import add_noise

    torch.set_num_threads(1)
    res = Results("hop_accuracy", "1d. Identification accuracy by library hop (trained model, real audio)")
    emb = TileEmbedder(args.model)
    sr = emb.features.sample_rate
    work = OUT / "hop-accuracy"
    shutil.rmtree(work, ignore_errors=True)
    (work / "songs").mkdir(parents=True)
    excerpts = []
    for i, p in enumerate(corpus_files(args.songs * 2, max_mb=12.0)):
        w = load_audio(p, sr, max_seconds=90.0)
        if len(w) < 70 * sr:
            continue
        w = w[10 * sr: 70 * sr]  # skip intros
        out = work / "songs" / f"song_{i:03d}.wav"
        sf.write(out, w, sr)
        excerpts.append((out, w))
        if len(excerpts) == args.songs:
            break
    rng = np.random.default_rng(0)
    clip_n = int(3.1 * sr)
    clips = []
    for _ in range(args.queries):
        j = int(rng.integers(len(excerpts)))
        start = int(rng.integers(0, len(excerpts[j][1]) - clip_n))
        clips.append((j, excerpts[j][1][start: start + clip_n]))
    snrs = [float(x) for x in args.snr.split(",")]
    res.note(f"{len(excerpts)} corpus songs (60-s excerpts), {len(clips)} clips of 3.1 s at random offsets, "
             f"model {Path(args.model).name} ({emb.model.meta.name}, {emb.model.meta.objective}).")
    rows = []
    for h in (int(x) for x in args.hops.split(",")):
        lib = Library.open(work / f"lib-h{h}", emb, index_cfg=IndexConfig(library_hop_frames=h))
        lib.add([str(e[0]) for e in excerpts], genre="x")
        rec = Recognizer(lib, emb)
        path_of = {str(e[0].resolve()): k for k, e in enumerate(excerpts)}
        for snr in snrs:
            ok, scores = 0, []
            for q, (j, c) in enumerate(clips):
                x = c if snr == float("inf") else add_noise(c, snr, seed=q)
                a = rec.identify_wave(x)
                best = a.candidates[0] if a.candidates else None
                if best is not None and path_of.get(str(Path(best.path).resolve())) == j:
                    ok += 1
                    scores.append(best.similarity)
            rows.append([f"{h * 1024 / sr:.2f} s ({h})", "clean" if snr == float("inf") else f"{snr:.0f} dB",
                         ok / len(clips), float(np.median(scores)) if scores else float("nan"),
                         lib.index_record().n_items])
        lib.close()
    res.table("Top-1 song among the candidates (threshold not applied) and the median raw score of correct "
              "answers, by library hop and white-noise SNR",
              ["library hop", "noise", "top-1 accuracy", "median raw score (correct)", "library tiles"], rows)
    res.value("rows", rows)
    res.save()


if __name__ == "__main__":
    main()
