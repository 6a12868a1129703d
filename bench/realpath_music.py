"""Which corpus music `bench.realpath` uses: the libraries, the music `library add` is timed on, the clips.

All choices are fixed by a seed and the corpus manifest, so every run (and every tree) gets the same
songs. The 1 000-song library is the whole corpus (451 tracks, 23 h) cut into parts of about 1.4 min,
each a file and a song of its own; the 100-song library is 100 whole tracks of distinct songs; the
music `library add` is timed on is none of those 100.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.realpath_trees import CACHE, link_tree, run_python

CORPUS = Path("/work/corpus")
NOISE = Path("/work/corpus_NOISE")
SEED = 21  # issue 21


@dataclass(frozen=True)
class Track:
    rel: str  # path under the corpus, e.g. "metal/pkg__song.ogg"
    style: str
    seconds: float
    group: str  # recordings that are variants of one song share it


@dataclass(frozen=True)
class Music:
    folder: Path  # what `library add` is given
    files: list[Path]  # its songs, in the order clips are drawn from
    seconds: float


def tracks() -> list[Track]:
    with open(CORPUS / "manifest.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [Track(r["file"], r["style"], float(r["duration_s"]), r["song_group"]) for r in rows
            if (CORPUS / r["file"]).exists()]


def shuffled(items: list, seed: int = SEED) -> list:
    return [items[i] for i in np.random.default_rng(seed).permutation(len(items))]


def _distinct(n: int) -> list[Track]:
    """The first `n` tracks of distinct songs in one fixed draw (so 10 songs are a prefix of 100)."""
    seen, chosen = set(), []
    for t in shuffled(tracks()):
        if t.group not in seen and len(chosen) < n:
            seen.add(t.group)
            chosen.append(t)
    return chosen


def whole_tracks(n: int) -> Music:
    """`n` whole tracks of distinct songs, linked into a folder of their styles."""
    chosen = _distinct(n)
    folder = CACHE / "music" / f"tracks{n}"
    files = [(CORPUS / t.rel, Path(t.style) / Path(t.rel).name) for t in chosen]
    link_tree(files, folder)
    return Music(folder, [folder / rel for _, rel in files], sum(t.seconds for t in chosen))


def add_music(minutes: float, exclude: int = 100) -> Music:
    """Tracks none of the `exclude`-song library holds, about `minutes` of them, for timing `library add`."""
    held = {t.rel for t in _distinct(exclude)}
    chosen, total = [], 0.0
    for t in shuffled(tracks(), SEED + 1):
        if t.rel not in held and total < minutes * 60 and t.seconds < 8 * 60:
            chosen.append(t)
            total += t.seconds
    folder = CACHE / "music" / f"add{minutes:g}min"
    files = [(CORPUS / t.rel, Path(t.style) / Path(t.rel).name) for t in chosen]
    link_tree(files, folder)
    return Music(folder, [folder / rel for _, rel in files], total)


def parts_plan(target: int = 1000) -> list[tuple[Track, list[tuple[str, float, float]]]]:
    """Every corpus track cut into equal parts of about the length that makes `target` parts in all."""
    all_tracks = shuffled(tracks())
    lo, hi = 10.0, 600.0
    for _ in range(60):  # bisect the part length
        mid = (lo + hi) / 2
        if sum(max(1, round(t.seconds / mid)) for t in all_tracks) > target:
            lo = mid
        else:
            hi = mid
    plan = []
    for t in all_tracks:
        n = max(1, round(t.seconds / hi))
        step = t.seconds / n
        stem = Path(t.rel).stem
        plan.append((t, [(f"{t.style}/{stem}__p{i + 1:02d}.flac", i * step, (i + 1) * step) for i in range(n)]))
    return plan


def parts(n: int, tree_root: Path) -> Music:
    """The first `n` parts of the plan (1 000: the whole corpus), cut once by `realpath_prep` in `tree_root`."""
    store = CACHE / "music" / "parts"
    chosen, tasks = [], []
    for track, cuts in parts_plan():
        if len(chosen) >= n:
            break
        cuts = cuts[: n - len(chosen)]
        chosen += [(c, end - start) for c, start, end in cuts]
        tasks.append([str(CORPUS / track.rel), [[str(store / c), s, e] for c, s, e in cuts]])
    if any(not Path(p[0]).exists() for _, ps in tasks for p in ps):
        run_python(tree_root, "realpath_prep.py", {"kind": "parts", "tracks": tasks}, show=True)
    folder = CACHE / "music" / f"parts{n}"
    link_tree([(store / c, Path(c)) for c, _ in chosen], folder)
    return Music(folder, [folder / c for c, _ in chosen], sum(s for _, s in chosen))


def clips(name: str, music: Music, positions: int, tree_root: Path, stream_s: float = 60.0) -> Path:
    """Clips of `music` (clean3/mic3/babble3, `positions` each) and a listening stream; made once."""
    out = CACHE / "clips" / f"{name}-{positions}"
    if not (out / "clips.json").exists():
        run_python(tree_root, "realpath_prep.py",
                   {"kind": "clips", "songs": [str(f) for f in music.files], "positions": positions,
                    "seconds": 3.0, "out": str(out), "noise": str(NOISE), "seed": SEED, "stream_s": stream_s},
                   show=True)
    return out

