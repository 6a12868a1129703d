"""Live listening, measured: how soon `Listener` names a song through a room (and with people talking), whether
it stays quiet for music outside the library, and the CPU it spends doing so, for recognition settings side by
side on the same streams.

    python research/listen_streams.py LIBRARY KNOWN_DIR UNKNOWN_DIR OUT.json \
        --variant shipped --variant "no-presence-search:nominate.presence_search_top=0" \
        --variant "search-each-answer:listen.search_every_s=0"
    python research/listen_streams.py --report OUT.json

LIBRARY is a library folder whose songs are the files under KNOWN_DIR (e.g. the bench's 100-song library and
`~/.cache/shazamlet-bench/realpath/music/tracks100`); UNKNOWN_DIR holds music the library does not (the bench's
`add60min`). Each stream is `--seconds` of a song from a random place, through a room (a real impulse
response of the noise corpus or a synthetic one), in three kinds: a library song, a library song with four
voices at 0 dB, a song outside the library. Each is heard once from its start, as after pressing Listen: the
first final answer, when it came, and the listen thread's CPU until then (and for a song outside the library,
whether anything was named within `--seconds`). Research tool: not part of the product.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay import rooms  # noqa: E402
from sweep import _literal, parse_variant  # noqa: E402

KINDS = ("room", "voices", "unknown")


def streams(known: list[Path], unknown: list[Path], n: int, seconds: float, rate: int, noise: Path, babble_dir: Path,
            seed: int):
    from shazamlet.audio.decode import load_audio
    from trainer.degrade_wave import Babble, mic_chain

    rng = np.random.default_rng(seed)
    rirs = rooms(noise, rate, rng)
    babble = Babble(babble_dir, rate).prepare()
    pre = rate  # the room hears a second before the stream starts
    for kind in KINDS:
        pool = unknown if kind == "unknown" else known
        for path in rng.choice(pool, n, replace=False):
            wave = load_audio(path, rate)
            need = int((seconds + 1) * rate)
            if len(wave) < need:
                continue
            start = int(rng.integers(0, len(wave) - need))
            music = wave[start : start + need]
            voices = babble.draw(len(music), rng) if kind == "voices" else None
            rir = rirs[int(rng.integers(len(rirs)))]
            yield kind, str(path), start / rate, mic_chain(music, rate, rir, rng, pre, voices)


def listen_variant(text: str):
    """As `sweep.parse_variant`, and `listen.key=value` items set the `ListenPolicy`."""
    from dataclasses import replace

    from shazamlet.listen import ListenPolicy

    name, _, settings = text.partition(":")
    items = [i for i in settings.split(",") if i]
    policy = ListenPolicy()
    for item in (i for i in items if i.startswith("listen.")):
        key, value = item[len("listen."):].split("=", 1)
        policy = replace(policy, **{key: _literal(value)})
    _, config = parse_variant(name + ":" + ",".join(i for i in items if not i.startswith("listen.")))
    return name, config, policy


def listen_once(listener, wave: np.ndarray, rate: int, chunk_s: float = 0.1) -> dict:
    """Feed the stream as a microphone would until the first final answer (or its end)."""
    listener.reset()
    chunk = int(rate * chunk_s)
    cpu = 0.0
    answers = 0
    for i in range(0, len(wave), chunk):
        c0 = time.thread_time()
        event = listener.push(wave[i : i + chunk])
        cpu += time.thread_time() - c0
        if event is None:
            continue
        answers += 1
        if event.kind == "final":
            song = event.answer.song
            return {"final_s": event.heard_s, "named": song.path if song else None, "cpu_s": cpu, "answers": answers}
    return {"final_s": None, "named": None, "cpu_s": cpu, "answers": answers}


def run(args) -> list[dict]:
    import torch

    from shazamlet.library import Library
    from shazamlet.listen import Listener
    from shazamlet.model import TileEmbedder
    from shazamlet.recognition import Recognizer

    torch.set_num_threads(1)
    emb = TileEmbedder(None)
    rate = emb.features.sample_rate
    lib = Library.open(Path(args.library), emb, create=False)
    listeners = {name: Listener(Recognizer(lib, emb, config=cfg), rate, policy)
                 for name, cfg, policy in (listen_variant(v) for v in args.variant or ["shipped"])}
    from shazamlet.audio.decode import is_audio_file

    known = sorted(p for p in Path(args.known).rglob("*") if is_audio_file(p))
    unknown = sorted(p for p in Path(args.unknown).rglob("*") if is_audio_file(p))
    out = []
    for kind, path, at_s, wave in streams(known, unknown, args.streams, args.seconds, rate, Path(args.noise),
                                         Path(args.babble), args.seed):
        truth = str(Path(path).resolve())
        for name, listener in listeners.items():
            r = listen_once(listener, wave, rate)
            right = r["named"] is not None and str(Path(r["named"]).resolve()) == truth
            out.append({"variant": name, "kind": kind, "song": path, "at_s": at_s, "right": right, **r})
        print(kind, Path(path).name, " ".join(f"{o['variant']}:{o['final_s']}:{'ok' if o['right'] else o['named'] and 'WRONG'}"
                                              for o in out[-len(listeners):]), flush=True)
    return out


def report(records: list[dict]) -> None:
    print("per kind: named right / named wrong / streams; seconds to the final answer (median); listen-thread "
          "CPU until then, % of the time heard (median) and seconds in all")
    for v in dict.fromkeys(r["variant"] for r in records):
        cells = []
        for kind in KINDS:
            rs = [r for r in records if r["variant"] == v and r["kind"] == kind]
            if not rs:
                continue
            right = sum(r["right"] for r in rs)
            wrong = sum(r["named"] is not None and not r["right"] for r in rs)
            heard = [r["final_s"] or 0 for r in rs]
            when = statistics.median([r["final_s"] for r in rs if r["final_s"]] or [float("nan")])
            pct = statistics.median([100 * r["cpu_s"] / h for r, h in zip(rs, heard) if h] or [float("nan")])
            cells.append(f"{kind} {right}/{wrong}/{len(rs)} {when:.1f} s {pct:.1f}% {sum(r['cpu_s'] for r in rs):.1f} s")
        print(f"{v:20s} " + " | ".join(cells))


def main(doc: str, run, report, add_arguments, seed: int) -> None:
    """The command line the listening studies share: LIBRARY KNOWN_DIR UNKNOWN_DIR OUT.json, or --report OUT.json."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("library", nargs="?")
    ap.add_argument("known", nargs="?")
    ap.add_argument("unknown", nargs="?")
    ap.add_argument("out")
    add_arguments(ap)
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--noise", default="/work/corpus_NOISE")
    ap.add_argument("--babble", default="/work/cache/eval_babble")
    ap.add_argument("--report", action="store_true", help="only print the table of OUT")
    a = ap.parse_args()
    if not a.report:
        Path(a.out).write_text(json.dumps(run(a)))
    report(json.loads(Path(a.out).read_text()))


def _arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--variant", action="append", default=[], help="NAME[:stage.key=value,...] as research/sweep.py")
    ap.add_argument("--streams", type=int, default=12, help="streams of each kind")
    ap.add_argument("--seconds", type=float, default=14.0)


if __name__ == "__main__":
    main(__doc__, run, report, _arguments, seed=22)
