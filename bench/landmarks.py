"""Landmarks (shazamlet/landmarks.py): what keeping each song's spectral peaks costs at indexing, on
disk and per answer.

    python -m bench.landmarks [--model shazamlet/model/shazamlet-default.pt] [--songs 4] [--rounds 3]

One thread, CPU time, libraries with and without peaks built interleaved round by round (both with the
app's other defaults, in-between tiles included), so the ratio shares the machine's load:

A. `Library.add` of the same songs into a fresh library: CPU ms per second of audio, and the
   fingerprint store's bytes per second of music, projected to issue 6's 10 000 songs of 4 min.
B. A 3-s clip to an answer (`Recognizer.identify_wave`): without peaks the fingerprints alone rank;
   with them the landmark check runs on the re-scored candidates, their peaks read from the song files
   (first answer) or from the library's cache (the listener's case).
"""

from __future__ import annotations

from bench.between import bench_args, compare_libraries
from bench.common import Results


def main() -> None:
    args = bench_args(__doc__)
    from shazamlet.config import IndexConfig
    from shazamlet.model import TileEmbedder

    embedder = TileEmbedder(args.model)
    res = Results("landmarks", "6c. Landmarks: indexing, disk, answers")
    compare_libraries(res, embedder, args, {"without peaks": IndexConfig(landmarks=False),
                                            "with peaks (the app's default)": IndexConfig(landmarks=True)})


if __name__ == "__main__":
    main()
