"""Goal 5 - memory of the app: peak RSS while listening with a 1 000-song library.

    python -m bench.memory [--songs 1000] [--answers 40]

Run in a fresh process (bench.all runs each benchmark as its own process, so nothing else has
inflated the peak). Synthesized music at 44.1 kHz is pushed into the product's `Listener` in 0.1-s
chunks, as the microphone ring would hand it over; every answer runs `Recognizer.identify_wave` on
the synthetic 1 000-song library of bench/synthlib.py at the product's settings (1.02-s library hop,
64-d fingerprints). RSS (VmRSS) and peak RSS (VmHWM) from
/proc/self/status after each step; the ANNOY file is memory-mapped, so its pages count in RSS once
they were touched (they are shared with the page cache and can be dropped by the kernel).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import Results, peak_rss_mb, proc_status_mb, random_model_path, rss_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=1000)
    ap.add_argument("--answers", type=int, default=300, help="identify_wave calls to make")
    args = ap.parse_args()
    from bench.synthlib import ensure_library, library_folder
    from shazamlet.config import IndexConfig

    hop, dim = IndexConfig().library_hop_frames, 64

    def snap(label: str) -> list:
        """RSS, peak RSS, and RSS split into anonymous (the process's own memory) and file-backed
        pages (memory-mapped files: the ANNOY index, shared libraries; the kernel can drop them)."""
        return [label, rss_mb(), peak_rss_mb(), proc_status_mb("RssAnon"), proc_status_mb("RssFile")]

    steps = [snap("python + bench imports")]
    folder = library_folder(args.songs, hop, dim)
    if not (folder / "catalog.sqlite").exists():
        # build in a child process so that building does not count in this one's peak
        import subprocess
        import sys

        subprocess.run([sys.executable, "-c", f"from bench.synthlib import ensure_library; ensure_library({args.songs}, {hop}, {dim})"],
                       check=True)
    import torch  # noqa: F401

    from shazamlet.audio.decode import resample
    from shazamlet.library import Library
    from shazamlet.listen import Listener
    from shazamlet.model import TileEmbedder
    from shazamlet.recognition import Recognizer
    from tests.synth import STYLES, make_song

    steps.append(snap("+ import torch, shazamlet"))
    res = Results("memory", "5. Memory of the app while listening")
    built = ensure_library(args.songs, hop, dim)  # reuses the library on disk
    emb = TileEmbedder(str(random_model_path(dim)))
    steps.append(snap("+ model loaded (TileEmbedder)"))
    lib = Library.open(built.folder, emb)
    lib.index()
    steps.append(snap("+ library open, index loaded (mmap, size + sampled hash checked)"))
    rec = Recognizer(lib, emb)
    rate = 44_100
    listener = Listener(rec, rate)
    audio = np.concatenate([resample(make_song(200 + i, STYLES[i % 4], 20.0), 22_050, rate) for i in range(3)])
    steps.append(snap("+ 60 s of test audio in memory"))
    chunk = rate // 10
    answers, finals, pos = 0, 0, 0
    latencies = []
    rss_trace = []
    t0 = time.perf_counter()
    while answers < args.answers:
        ev = listener.push(audio[pos: pos + chunk])
        pos = (pos + chunk) % (len(audio) - chunk)
        if ev is None:
            continue
        answers += 1
        latencies.append(ev.answer.elapsed_ms)
        rss_trace.append(rss_mb())
        if ev.kind == "final":
            finals += 1
            listener.reset()
        if answers in (1, 10, 30, 100, 200, 500, 1000):
            steps.append(snap(f"after {answers} answer{'s' if answers > 1 else ''}"))
    wall = time.perf_counter() - t0
    if steps[-1][0] != f"after {answers} answers":
        steps.append(snap(f"after {answers} answers"))
    # A random-weight model maps all music to a small region of the fingerprint space, so the loop
    # above touches few ANNOY pages. A trained model on varied music touches them all over time:
    # 500 searches with varied unit vectors show that upper bound.
    rng = np.random.default_rng(0)
    q = rng.standard_normal((500, emb.dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    lib.neighbours(q, np.zeros(500, np.int64))
    steps.append(snap("+ 500 searches with varied fingerprints (touch the whole index)"))
    res.note(f"{answers} answers, {finals} of them final (the listener then starts over); each answer embeds the "
             f"tiles that are new since the last one (the window is 3 to 10 s of audio), on one torch thread.")
    res.table(f"RSS while listening with a {args.songs:,}-song library ({built.n_items:,} tiles; MiB)",
              ["step", "RSS", "peak RSS so far", "anonymous", "file-backed (mmap, libraries)"], steps)
    idx_mb = (built.folder / lib.index_record().ann_file).stat().st_size / 2**20
    res.table("Listening", ["answers", "median identify_wave ms (loaded, one thread)",
                            "RSS min..max during listening MiB", "peak RSS MiB (incl. varied searches)",
                            "ANNOY file MiB (mmap)", "wall s"],
              [[answers, float(np.median(latencies)), f"{min(rss_trace):.0f}..{max(rss_trace):.0f}", peak_rss_mb(),
                idx_mb, wall]])
    res.value("peak_rss_mb", peak_rss_mb())
    res.value("steps", steps)
    res.value("ann_mb", idx_mb)
    lib.close()
    res.save()


if __name__ == "__main__":
    main()
