"""Replay a fixed set of queries through the recognizer and keep every answer, to show that a change
to the recognition path gives the same answers (or which ones it changes).

    python research/replay.py run --out /tmp/replay/after.json [--songs 100 --clips 80]
    PYTHONPATH=/tmp/before python research/replay.py run --out /tmp/replay/before.json
    python research/replay.py compare /tmp/replay/before.json /tmp/replay/after.json
    python research/replay.py run --out null1.json --library /tmp/lib-null1 --fingerprint-noise 3e-7 --noise-seed 1

Library: `--songs` corpus tracks (every k-th of the manifest, `mixed` included), built once per code tree
into `--cache`; unknown songs: the next tracks. Queries: 3-s clips of known songs (and half as many of
unknown ones) clean, through a room (`trainer.degrade_wave.mic_chain`), with four voices at 0 dB (babble)
and played 0.92-1.08x as fast before the room (speed3, `trainer.evaluate.make_query`), the evaluation's
conditions, drawn from a fixed seed. Research tool: not part of the product.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

CONDITIONS = ("clean3", "mic3", "babble3", "speed3")


def corpus_tracks(corpus: Path) -> list[Path]:
    rows = [line.split("\t") for line in (corpus / "manifest.tsv").read_text().splitlines()[1:] if line.strip()]
    return sorted(corpus / r[2] for r in rows if (corpus / r[2]).is_file())


def rooms(noise: Path, rate: int, rng: np.random.Generator) -> list[np.ndarray]:
    from shazamlet.audio.decode import load_audio

    from trainer.degrade_wave import synthetic_rooms

    real = [load_audio(f, rate) for f in sorted((noise / "rir_real").glob("*"))[:4]] if (noise / "rir_real").exists() else []
    return real + synthetic_rooms(rate, rng)


@contextmanager
def fingerprint_noise(embedder, sigma: float, seed: int):
    """While the library is built, N(0, sigma) added to each fingerprint: with sigma at float rounding's size
    (3e-7) a library differs from another only as one built by other arithmetic does (docs/decisions.md)."""
    if not sigma:
        yield
        return
    rng, encode = np.random.default_rng(seed), embedder.encode

    def noisy(tiles):
        fps, probs = encode(tiles)
        return (fps + rng.normal(0.0, sigma, fps.shape)).astype(np.float32), probs

    embedder.encode = noisy
    try:
        yield
    finally:
        del embedder.encode


def setup(args: argparse.Namespace):
    """The library (built once into the cache), the recognizer (`--set` applied) and what the queries are
    made of: the plan of (song, known) and the rooms and voices, drawn from `--seed`."""
    import shazamlet
    from shazamlet.audio.decode import load_audio
    from shazamlet.library import Library
    from shazamlet.model import TileEmbedder
    from trainer.degrade_wave import Babble

    try:
        from shazamlet.recognition import Recognizer
    except ImportError:  # a tree from before the stages
        from shazamlet.recognizer import Recognizer

    torch.set_num_threads(1)
    tree = Path(shazamlet.__file__).resolve().parent.parent
    tracks = corpus_tracks(args.corpus)
    step = max(1, len(tracks) // (args.songs + args.unknown))
    picked = tracks[::step]
    known, unknown = picked[: args.songs], picked[args.songs : args.songs + args.unknown]
    embedder = TileEmbedder(None)
    rate = embedder.features.sample_rate
    key = hashlib.sha1(f"{tree}:{args.songs}:{embedder.model_hash}".encode()).hexdigest()[:10]
    libdir = args.library or args.cache / f"lib-{key}"
    lib = Library.open(libdir, embedder)
    if lib.catalog.count() < len(known):
        started = time.time()
        with fingerprint_noise(embedder, args.fingerprint_noise, args.noise_seed):
            lib.add([str(p) for p in known], root=str(args.corpus))
        print(f"library of {len(known)} songs built in {time.time() - started:.0f} s", file=sys.stderr)
    config = None
    if args.set:  # stage.key=value, read as sweep.py reads its variants (one literal parser)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from sweep import parse_variant

        config = parse_variant("set:" + ",".join(args.set))[1]
    rec = Recognizer(lib, embedder) if config is None else Recognizer(lib, embedder, config=config)
    rng = np.random.default_rng(args.seed)
    rirs = rooms(args.noise, rate, rng)
    babble = Babble(args.cache / "babble", rate).prepare()
    plan = [(p, True) for p in rng.choice(known, args.clips)] + [(p, False) for p in rng.choice(unknown, args.clips // 2)]
    return tree, lib, rec, rate, plan, rirs, babble, load_audio


def queries(args: argparse.Namespace, rate: int, plan, rirs, babble, load_audio):
    """(cond, i, song path, known, query wave, speed, start sample) for every condition and plan entry."""
    from trainer.degrade_wave import mic_chain
    from trainer.evaluate import make_query

    waves: dict[Path, np.ndarray] = {}
    for cond in CONDITIONS:
        crng = np.random.default_rng([args.seed, len(cond)] + ([1] if cond == "speed3" else []))  # not clean3's draws
        for i, (path, is_known) in enumerate(tqdm(plan, desc=cond, mininterval=30)):
            wave = waves.get(path)
            if wave is None:
                wave = waves[path] = load_audio(path, rate)
            n, pre = 3 * rate, rate // 2
            start = int(crng.integers(pre, max(pre + 1, len(wave) - n)))
            music = wave[start - pre : start + n]
            speed = 1.0
            if cond == "speed3":
                q, speed = make_query(cond, 3.0, wave, start, rate, rirs, babble, crng)
            elif cond == "clean3":
                q = music[pre:]
            else:
                rir = rirs[int(crng.integers(len(rirs)))]
                q = mic_chain(music, rate, rir, crng, pre, babble=babble.draw(len(music), crng) if cond == "babble3" else None)
            yield cond, i, path, is_known, q.astype(np.float32), speed, start


def run(args: argparse.Namespace) -> None:
    try:
        from shazamlet.recognition import Trace
    except ImportError:  # a tree from before the stages
        Trace = None

    tree, lib, rec, rate, plan, rirs, babble, load_audio = setup(args)
    records = []
    for cond, i, path, is_known, q, speed, start in queries(args, rate, plan, rirs, babble, load_audio):
        trace = Trace() if Trace else None
        t0 = time.process_time()
        a = rec.identify_wave(q, trace) if trace else rec.identify_wave(q)
        cpu_ms = (time.process_time() - t0) * 1000
        fp_song = trace and trace.fingerprint_song_id is not None and lib.song(trace.fingerprint_song_id)
        records.append({
            "cond": cond, "i": i, "truth": str(path), "known": is_known, "cpu_ms": round(cpu_ms, 2),
            "start_s": round(start / rate, 2), "speed": speed,
            "song": a.song.path if a.song else None, "silent": a.silent,
            "genre": a.genre.label if a.genre else None,
            "fingerprint": [fp_song.path if fp_song else None, round(trace.fingerprint_raw_score, 5)] if trace else None,
            "candidates": [[c.path, round(c.raw_score, 5), round(c.offset_s, 2), c.landmarks,
                            None if c.presence is None else round(c.presence, 3)] for c in a.candidates],
        })
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"tree": str(tree), "records": records}))
    summary(records)


def summary(records: list[dict]) -> None:
    for cond in CONDITIONS:
        rs = [r for r in records if r["cond"] == cond]
        known = [r for r in rs if r["known"]]
        unknown = [r for r in rs if not r["known"]]
        top1 = np.mean([bool(r["candidates"]) and r["candidates"][0][0] == r["truth"] for r in known])
        accepted = np.mean([r["song"] == r["truth"] for r in known])
        placed = np.mean([r["song"] == r["truth"] and abs(r["candidates"][0][2] - r.get("start_s", -9)) <= 0.5
                          for r in known])  # where the answer places the query in its song, to 0.5 s
        rejected = np.mean([r["song"] is None for r in unknown]) if unknown else float("nan")
        cpu = np.array([r["cpu_ms"] for r in rs])
        print(f"{cond:8s} top-1 {top1:6.1%}  named {accepted:6.1%} (placed to 0.5 s {placed:6.1%})  unknown rejected {rejected:6.1%}  "
              f"CPU ms median {np.median(cpu):6.1f}  p95 {np.percentile(cpu, 95):6.1f}  mean {cpu.mean():6.1f}")


def gate(path: Path) -> None:
    """What answering without the peak checks when the fingerprints alone lead by a margin would do,
    simulated from one replay's records (the fingerprints' top song and margin are in the trace)."""
    records = json.loads(path.read_text())["records"]
    for m in (0.2, 0.3, 0.4, 0.5, 0.6, 0.8):
        print(f"sure above {m}:")
        for cond in CONDITIONS:
            rs = [r for r in records if r["cond"] == cond]
            sure = {id(r) for r in rs if r["fingerprint"] and r["fingerprint"][1] >= m}
            answer = {id(r): r["fingerprint"][0] if id(r) in sure else r["song"] for r in rs}
            named = [answer[id(r)] == r["truth"] for r in rs if r["known"]]
            rejected = [answer[id(r)] is None for r in rs if not r["known"]]
            print(f"  {cond:8s} skipped {len(sure) / len(rs):5.1%}  named {np.mean(named):6.1%}  "
                  f"unknown rejected {np.mean(rejected):6.1%}")


def compare(a: Path, b: Path) -> None:
    ra, rb = json.loads(a.read_text())["records"], json.loads(b.read_text())["records"]
    assert len(ra) == len(rb), "different query sets"
    fields = ("song", "silent", "genre", "candidates")
    same = [all(x[f] == y[f] for f in fields) for x, y in zip(ra, rb)]
    print(f"identical answers: {sum(same)} of {len(same)}")
    for x, y, s in zip(ra, rb, same):
        if not s:
            print(f"  {x['cond']} #{x['i']} {Path(x['truth']).name}: song {x['song'] and Path(x['song']).name} -> "
                  f"{y['song'] and Path(y['song']).name}; top {x['candidates'][:1]} -> {y['candidates'][:1]}")
    print("before:")
    summary(ra)
    print("after:")
    summary(rb)


def add_run_args(r: argparse.ArgumentParser) -> None:
    """The `run` subcommand's arguments (`setup` reads them; research/speed_chance.py shares them)."""
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    r.add_argument("--noise", type=Path, default=Path("/work/corpus_NOISE"))
    r.add_argument("--cache", type=Path, default=Path("/tmp/replay-cache"))
    r.add_argument("--library", type=Path, help="use this library (built by another tree of the same format)")
    r.add_argument("--set", action="append", help="a recognition setting, e.g. verify.landmark_search_top=0")
    r.add_argument("--songs", type=int, default=100)
    r.add_argument("--unknown", type=int, default=30)
    r.add_argument("--clips", type=int, default=80)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--fingerprint-noise", type=float, default=0.0, metavar="SIGMA",
                   help="build the library with N(0, SIGMA) added to its fingerprints (a null for arithmetic changes)")
    r.add_argument("--noise-seed", type=int, default=1, help="the seed of --fingerprint-noise")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_run_args(sub.add_parser("run"))
    g = sub.add_parser("gate")
    g.add_argument("a", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = ap.parse_args()
    if args.cmd == "run":
        run(args)
    elif args.cmd == "gate":
        gate(args.a)
    else:
        compare(args.a, args.b)


if __name__ == "__main__":
    main()
