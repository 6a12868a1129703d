"""A command's start-up: the library folder, the model and the library opened, and start-up's end.

Shared by `shazamlet.cli` (identify, listen) and `shazamlet.library_commands`.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only by the commands that need it
    from shazamlet.library import Library
    from shazamlet.model import TileEmbedder


class UsageError(Exception):
    """A mistake on the command line the user can fix (a `--library` that is a file); one line, exit 2."""


def library_folder(arg: str | None, create: bool) -> Path:
    """The library folder `--library` names (or the default), made when `create`.

    Checked here so that a file or an impossible place is one line, not Library.open's traceback.
    """
    from shazamlet.library.library import default_library_dir

    folder = Path(arg).expanduser() if arg else default_library_dir()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--library {folder} is a file, not a library folder")
    if create and not folder.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create library folder {folder}: {exc.strerror or exc}") from None
    return folder


def open_library(args: argparse.Namespace, create: bool = True, check_model: bool = True,
                 missing_ok: bool = False, graph: bool = False) -> tuple[Library, TileEmbedder]:
    """The library `--library` names and the model `--model` names (or the defaults), opened; start-up ends.
    `graph`: the command embeds enough to repay preparing the model's graph (`TileEmbedder`)."""
    from shazamlet.library import Library
    from shazamlet.model import TileEmbedder

    folder = library_folder(args.library, create)
    embedder = TileEmbedder(args.model, graph=graph)
    library = Library.open(folder, embedder, create=create, check_model=check_model, missing_ok=missing_ok)
    embedder.check_ready()  # a graph that does not run says so now, in one line
    started()
    return library, embedder


def started() -> None:
    """Start-up is over: collect garbage again (`run_command` stopped it: importing torch and loading the
    model made the collector go over the same ~270 000 long-lived objects again and again), skipping what
    start-up made (docs/decisions.md, start-up)."""
    gc.freeze()
    gc.enable()
