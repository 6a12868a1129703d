"""Which songs a data folder holds, and reproducible splits by song group.

A data folder is one sub-folder per genre (the GTZAN layout). An optional `manifest.tsv` (columns
`style`, `package`, `file`, `song_group`) groups variants of one song: a group never straddles a
split. Without a manifest every file is its own group and its own package. Folders listed in
`UNLABELLED` (the corpus' `mixed`) are songs without a style label: used for song ID, never for
genre training or genre scoring.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

from shazamlet.audio.decode import is_audio_file

UNLABELLED = frozenset({"mixed"})


@dataclass(frozen=True)
class Song:
    path: str  # absolute
    rel: str  # relative to the data folder: "<genre>/<file>"
    genre: str  # folder name
    group: str  # song group: variants of one song share it
    package: str  # source collection (album, game, ...); style honesty holds out whole packages

    @property
    def labelled(self) -> bool:
        return self.genre not in UNLABELLED


def scan_songs(data_dir: str | Path) -> list[Song]:
    """All audio files in the genre folders of `data_dir`, their subfolders (albums) included, sorted by
    relative path. A manifest's rows that name no such file are counted in a note."""
    root = Path(data_dir).resolve()
    manifest = _manifest(root / "manifest.tsv")
    songs = []
    for genre_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        for f in _audio_files(genre_dir):
            rel = f.relative_to(root).as_posix()
            row = manifest.get(rel, {})
            group = row.get("song_group") or rel
            package = row.get("package") or rel
            songs.append(Song(str(f), rel, genre_dir.name, group, package))
    if not songs:
        loose = sum(1 for f in root.iterdir() if f.is_file() and is_audio_file(f))
        hint = f": {loose} audio files lie in the folder itself, move them into one folder per genre" if loose else ""
        raise ValueError(f"no audio files in the genre folders of {root} (laid out as {root}/<genre>/<file>){hint}")
    if unmatched := len(set(manifest) - {s.rel for s in songs}):
        print(f"note: {unmatched} rows of {root / 'manifest.tsv'} name no audio file of its genre folders (`file` is "
              f"relative to {root}, e.g. {songs[0].rel})", flush=True)
    return songs


def _audio_files(folder: Path) -> list[Path]:
    """The audio files in `folder` and its subfolders (not those starting with `_` or `.`, nor symlinked
    ones, which could loop), sorted; files being written (`.tmp`) are left out."""
    found = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        found += [Path(here) / f for f in files if ".tmp" not in f and is_audio_file(Path(here) / f)]
    return sorted(found)


def _manifest(path: Path) -> dict[str, dict]:
    """The rows of a tab-separated manifest by their `file`; {} without one."""
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        columns = reader.fieldnames or []
        if "file" not in columns:
            comma = " (it is read tab-separated, and holds commas)" if any("," in c for c in columns) else ""
            raise ValueError(f"{path}: no `file` column (its columns: {', '.join(columns) or 'none'}){comma}")
        return {row["file"]: row for row in reader}


def genres_of(songs: list[Song]) -> list[str]:
    """Sorted labels that can be trained and scored (unlabelled folders excluded)."""
    return sorted({s.genre for s in songs if s.labelled})


def _stable_fraction(key: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


@dataclass
class Split:
    train: list[Song]
    val: list[Song]
    test: list[Song]
    held_out_packages: list[str]

    def summary(self) -> str:
        return (f"train {len(self.train)} / val {len(self.val)} / test {len(self.test)} songs; "
                f"packages held out whole for test: {len(self.held_out_packages)}")


def split_songs(songs: list[Song], seed: int = 0, val_frac: float = 0.08, test_frac: float = 0.2,
                package_frac: float = 0.5) -> Split:
    """Split by song group, reproducibly from `seed`.

    Roughly `test_frac * package_frac` of the songs come from packages held out whole (their style
    is judged on collections the model never heard); the rest of the test set and the validation set
    are drawn by song group from the remaining packages. Multi-package packs: a group is assigned
    with its first package, so no group is ever on two sides.
    """
    rng = random.Random(seed)
    by_pkg: dict[str, list[Song]] = {}
    for s in songs:
        by_pkg.setdefault(s.package, []).append(s)
    group_pkg: dict[str, str] = {}
    for s in songs:
        group_pkg.setdefault(s.group, s.package)
    # Hold out whole packages per genre, smallest packages first (keep most data for training),
    # but never a genre's only package.
    held: set[str] = set()
    target = test_frac * package_frac
    for genre in sorted({s.genre for s in songs}):
        pkgs = sorted({s.package for s in songs if s.genre == genre})
        n_genre = sum(1 for s in songs if s.genre == genre)
        if len(pkgs) < 2:
            continue
        rng.shuffle(pkgs)
        taken = 0
        for p in pkgs:
            size = sum(1 for s in by_pkg[p] if s.genre == genre)
            too_big = size > 0.3 * n_genre or (taken and taken + size > 1.5 * target * n_genre)
            if too_big or len(held & set(pkgs)) >= len(pkgs) - 1:
                continue
            held.add(p)
            taken += size
            if taken >= target * n_genre:
                break
    side: dict[str, str] = {}
    for g, pkg in group_pkg.items():
        if pkg in held:
            side[g] = "test"
            continue
        u = _stable_fraction(g, seed)
        rest_test = test_frac * (1 - package_frac)
        side[g] = "test" if u < rest_test else "val" if u < rest_test + val_frac else "train"
    out = Split([], [], [], sorted(held))
    for s in songs:
        getattr(out, side[s.group]).append(s)
    return out
