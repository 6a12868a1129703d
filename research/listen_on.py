"""Listening on (the window's "Keep listening", `shazamlet listen --continuous`), measured: a stream of two
library songs then a song outside the library, each `--part` seconds, through one room (optionally with
voices), heard as the listener hears it, a new attempt after each final answer. Compares the shipped
attempts, each afresh, with attempts in which the last song named is confirmed by the next attempt's first
answer naming it (measured, not taken: docs/decisions.md).

    python research/listen_on.py LIBRARY KNOWN_DIR UNKNOWN_DIR OUT.json [--streams 10] [--voices]
    python research/listen_on.py --report OUT.json

Per stream and way: each final answer (when, which song), the listen thread's CPU. Reported: how soon after
each change the new song was named, final answers that named a song not playing in their window (wrong),
final answers during the unknown song (accepted), answers and CPU. Research tool: not part of the product.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from listen_streams import main  # noqa: E402
from replay import rooms  # noqa: E402

WAYS = ("shipped", "confirming")


def streams(known: list[Path], unknown: list[Path], n: int, part_s: float, rate: int, noise: Path, babble_dir: Path,
            voices: bool, seed: int):
    from shazamlet.audio.decode import load_audio
    from trainer.degrade_wave import Babble, mic_chain

    rng = np.random.default_rng(seed)
    rirs = rooms(noise, rate, rng)
    babble = Babble(babble_dir, rate).prepare() if voices else None
    need = int(part_s * rate)
    made = 0
    while made < n:
        paths = [*rng.choice(known, 2, replace=False), rng.choice(unknown)]
        waves = [load_audio(p, rate) for p in paths]
        if any(len(w) < need + rate for w in waves):
            continue
        parts = []
        for w in waves:
            start = int(rng.integers(0, len(w) - need))
            parts.append(w[start: start + need])
        music = np.concatenate([waves[0][:rate]] + parts)  # the room hears a second before the stream starts
        talk = babble.draw(len(music), rng) if babble is not None else None
        rir = rirs[int(rng.integers(len(rirs)))]
        yield [str(p) for p in paths], mic_chain(music, rate, rir, rng, rate, talk)
        made += 1


def confirming(listener) -> None:
    """A new attempt in which the song the last final answer named needs only one answer at `confirm_score`."""
    named = listener.previous if listener.done and listener.previous is not None and listener.previous.song else None
    listener.reset()
    listener.previous = named


def listen_on(listener, wave: np.ndarray, rate: int, confirm: bool, chunk_s: float = 0.1) -> dict:
    listener.reset()
    chunk = int(rate * chunk_s)
    finals, cpu, answers, heard = [], 0.0, 0, 0
    for i in range(0, len(wave), chunk):
        c0 = time.thread_time()
        event = listener.push(wave[i: i + chunk])
        heard += len(wave[i: i + chunk])
        if event is not None:
            answers += 1
            if event.kind == "final":
                song = event.answer.song
                finals.append((heard / rate, event.window_s, song.path if song else None))
                confirming(listener) if confirm else listener.reset()
        cpu += time.thread_time() - c0
    return {"finals": finals, "cpu_s": cpu, "answers": answers, "seconds": len(wave) / rate}


def run(args) -> list[dict]:
    import torch

    from shazamlet.audio.decode import is_audio_file
    from shazamlet.library import Library
    from shazamlet.listen import Listener
    from shazamlet.model import TileEmbedder
    from shazamlet.recognition import Recognizer

    torch.set_num_threads(1)
    emb = TileEmbedder(None)
    rate = emb.features.sample_rate
    lib = Library.open(Path(args.library), emb, create=False)
    listener = Listener(Recognizer(lib, emb), rate)
    known = sorted(p for p in Path(args.known).rglob("*") if is_audio_file(p))
    unknown = sorted(p for p in Path(args.unknown).rglob("*") if is_audio_file(p))
    out = []
    for paths, wave in streams(known, unknown, args.streams, args.part, rate, Path(args.noise), Path(args.babble),
                               args.voices, args.seed):
        for way in WAYS:
            r = listen_on(listener, wave, rate, way == "confirming")
            out.append({"way": way, "songs": [str(Path(p).resolve()) for p in paths], "part_s": args.part, **r})
            print(way, [(round(t, 1), n and Path(n).stem[:20]) for t, _, n in r["finals"]], flush=True)
    return out


def report(records: list[dict]) -> None:
    for way in WAYS:
        rs = [r for r in records if r["way"] == way]
        lags, wrong, accepted, missed = [], 0, 0, 0
        for r in rs:
            part, pre = r["part_s"], 1.0  # the second before the stream is part of the first song
            songs = r["songs"]
            for t, window, named in r["finals"]:
                if named is None:
                    continue
                named = str(Path(named).resolve())
                playing = {songs[min(2, int(max(0.0, s - pre) // part))] for s in (t - window, t)}
                if named not in playing:
                    wrong += 1
                elif t - pre > 2 * part and named == songs[2]:
                    accepted += 1
            named_b = [t for t, _, n in r["finals"] if n and str(Path(n).resolve()) == songs[1] and t - pre > part]
            if named_b:
                lags.append(named_b[0] - pre - part)
            else:
                missed += 1
        unknown_accepted = sum(1 for r in rs for t, w, n in r["finals"]
                               if n and t - w - 1.0 > 2 * r["part_s"])  # a window wholly in the unknown song
        answers, cpu, secs = (sum(r[k] for r in rs) for k in ("answers", "cpu_s", "seconds"))
        if not rs:
            continue
        print(f"{way:8s} second song named {len(lags)}/{len(rs)} after {statistics.median(lags or [float('nan')]):.1f} s "
              f"(median; max {max(lags or [float('nan')]):.1f}) | wrong finals {wrong} | finals inside the unknown "
              f"song {unknown_accepted} | {answers} answers, {100 * cpu / secs:.1f}% of a core")


def _arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--part", type=float, default=30.0, help="seconds of each song")
    ap.add_argument("--voices", action="store_true", help="four voices at 0 dB over the music")


if __name__ == "__main__":
    main(__doc__, run, report, _arguments, seed=7)
