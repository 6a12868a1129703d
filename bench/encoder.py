"""The encoder alone: CPU per tile of a model file through PyTorch and through its ONNX graph (ONNX Runtime).

    python -m bench.encoder [--model M.pt] [--rounds 3]

For a query (4 tiles) and for `library add` (128 tiles), on 1 thread and on all cores: process CPU and
wall time per tile, median of the rounds, both backends alternating within each round; and how far their
fingerprints differ. The end-to-end effect is `python -m bench.realpath`'s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from shazamlet.model import TileEmbedder, load_model


def _per_tile(embedder: TileEmbedder, tiles: torch.Tensor, reps: int) -> tuple[float, float]:
    embedder.encode(tiles)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(reps):
        embedder.encode(tiles)
    n = reps * len(tiles)
    return (time.perf_counter() - wall) / n * 1000, (time.process_time() - cpu) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a model file with a graph (default: the bundled one)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cores = torch.get_num_threads()
    print("| threads | tiles | PyTorch CPU ms/tile | graph CPU ms/tile | PyTorch wall | graph wall | max fingerprint difference |")
    print("|---|---|---|---|---|---|---|")
    for threads in sorted({1, cores}):
        torch.set_num_threads(threads)  # before the embedders: the graph's session takes this many threads
        plain_model = load_model(args.model)
        plain_model.graph = None
        plain, graph = TileEmbedder(plain_model), TileEmbedder(load_model(args.model))
        if graph.graph is None:
            raise SystemExit(f"{graph.model.path} has no graph: `python -m trainer graph` adds one")
        rng = torch.Generator().manual_seed(0)
        for n, reps in ((4, 50), (128, 3)):
            tiles = torch.rand(n, plain.features.n_mels, plain.features.tile_frames, generator=rng)
            rows = [(_per_tile(plain, tiles, reps), _per_tile(graph, tiles, reps)) for _ in range(args.rounds)]
            med = lambda pick: statistics.median(pick(r) for r in rows)  # noqa: E731
            diff = float(np.abs(plain.encode(tiles)[0] - graph.encode(tiles)[0]).max())
            print(f"| {threads} | {n} | {med(lambda r: r[0][1]):.2f} | {med(lambda r: r[1][1]):.2f} | "
                  f"{med(lambda r: r[0][0]):.2f} | {med(lambda r: r[1][0]):.2f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
