"""The `shazamlet library ...` commands: add, list, info, remove, reindex (`shazamlet.cli` parses and runs them)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from shazamlet.names import clock
from shazamlet.startup import open_library
from shazamlet.terminal import one_line, say


def cmd_add(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    library, _ = open_library(args, graph=True)
    library.check_writable("add songs")  # before the bar: a refusal is one line
    bar = tqdm(total=0, unit="file", dynamic_ncols=True, disable=args.quiet)
    started = time.perf_counter()

    def progress(p) -> None:
        if p.phase == "embed":
            bar.total = p.total
            bar.n = p.done
            elapsed = time.perf_counter() - started
            bar.set_postfix_str(f"{p.audio_seconds / 3600:.2f} h audio, {p.audio_seconds / max(elapsed, 1e-6):.0f}x realtime")
        elif p.phase == "index" and p.done == 1:
            bar.set_description("building index")
        bar.refresh()

    try:
        report = library.add(args.paths, genre_from=args.genre_from, genre=args.genre, progress=progress)
    except KeyboardInterrupt:
        bar.close()
        say("interrupted: the songs stored so far are kept and the library still answers with its previous "
              "index; run the same command again to finish", file=sys.stderr)
        return 130
    bar.close()
    for e in report.errors + report.duplicates:
        say(f"skipped: {e}", file=sys.stderr)
    say(f"added {len(report.added)}, updated {len(report.updated)}, unchanged {len(report.unchanged)}, "
          f"duplicates {len(report.duplicates)}, errors {len(report.errors)}; "
          f"{report.audio_seconds / 3600:.2f} h of audio in {report.elapsed_s:.1f} s; "
          f"library: {library.catalog.count()} songs")
    return 1 if report.errors and not (report.added or report.updated or report.unchanged) else 0


def cmd_list(args: argparse.Namespace) -> int:
    library, _ = open_library(args, create=False, check_model=False)
    songs = library.songs()
    if args.json:
        for s in songs:
            say(json.dumps({"path": s.path, "title": s.title, "artist": s.artist, "album": s.album,
                              "genre": s.genre, "duration_s": round(s.duration_s, 2)}))
        return 0
    for s in songs:
        title, artist, genre = one_line(s.title), one_line(s.artist), one_line(s.genre) or "-"
        say(f"{title[:40]:40s}  {artist[:24]:24s}  {genre[:16]:16s}  {clock(s.duration_s):>6s}  {s.path}")
    say(f"{len(songs)} songs")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from shazamlet.library.writing import TEMP_PREFIX

    library, embedder = open_library(args, create=False, check_model=False)
    songs = library.songs()
    record = library.index_record()
    genres: dict[str, int] = {}
    for s in songs:
        genres[s.genre or "-"] = genres.get(s.genre or "-", 0) + 1
    files = [f for f in library.folder.rglob("*") if f.is_file() and not f.is_symlink()]
    temps = [f for f in files if f.name.startswith(TEMP_PREFIX)]
    temp_bytes = sum(f.stat().st_size for f in temps)
    size = sum(f.stat().st_size for f in files) - temp_bytes
    say(f"library:   {library.folder}")
    say(f"songs:     {len(songs)} ({sum(s.duration_s for s in songs) / 3600:.2f} h), "
          + ", ".join(f"{g} {n}" for g, n in sorted(genres.items())))
    kind = "" if not record else (f", ANNOY ({record.n_trees} trees)" if record.kind == "annoy" else ", int8 IVF lists")
    say(f"index:     {record.n_items if record else 0} tiles, {record.dim if record else '-'}-d{kind}, "
          f"{size / 1e6:.1f} MB on disk")
    say(f"model:     {library.catalog.get_meta('model_name')} ({(library.catalog.get_meta('model_sha256') or '')[:12]})"
          + ("" if library.model_matches() else f"  <- differs from the current model {embedder.model.short_hash}: "
             "run `shazamlet library reindex`"))
    if args.verify and record:
        from shazamlet.library.index import IndexCorrupt, LibraryIndex

        try:
            LibraryIndex(library.folder, record, verify="full")
            say("verified:  index files match their recorded sha256")
        except IndexCorrupt as exc:
            if library.read_only:
                say(f"damaged:   {exc}; not rebuilt: the library is read-only")
            else:
                library.rebuild_index()
                say(f"damaged:   {exc}; rebuilt from the stored fingerprints")
    if library.model_matches() and (older := library.songs_from_older_version()):
        say(f"re-scoring: {len(older)} songs lack in-between tiles or landmarks (added by an older version; "
              "they are recognised less well through a microphone): run `shazamlet library reindex`")
    for s in library.damaged_songs() if args.verify else []:
        say(f"damaged:   fingerprints of {s.path} (set aside; `shazamlet library add` of its folder re-embeds it)")
    if temps:
        say(f"temp files: {len(temps)} left by an interrupted write ({temp_bytes / 1e6:.1f} MB); "
            "the next `shazamlet library add` removes them")
    pending = library.unindexed_songs()
    if pending:
        say(f"pending:   {len(pending)} songs not in the index yet or without fingerprints (run `shazamlet library add` "
              "on their folders again)")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    library, _ = open_library(args, create=False, check_model=False)
    gone = library.remove(args.paths)
    for s in gone:
        say(f"removed {s.path}")
    if not gone:
        say("nothing matched those paths", file=sys.stderr)
        return 1
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    library, _ = open_library(args, create=False, check_model=False, graph=True)
    library.check_writable("re-embed its songs")
    bar = tqdm(total=library.catalog.count(), unit="file", dynamic_ncols=True)
    try:  # the bar is closed however this ends, so that a message after it starts a line of its own
        report = library.reindex(progress=lambda p: (setattr(bar, "n", p.done), bar.refresh()) if p.phase == "embed" else None)
    except KeyboardInterrupt:
        bar.close()
        say("interrupted: the library still answers as before; run `shazamlet library reindex` again to finish",
              file=sys.stderr)
        return 130
    finally:
        bar.close()
    for e in report.errors:
        say(f"warning: {e}", file=sys.stderr)
    say(f"re-embedded {len(report.added) + len(report.updated)} songs with {library.embedder.model.meta.name} "
          f"in {report.elapsed_s:.1f} s")
    return 1 if report.errors else 0
