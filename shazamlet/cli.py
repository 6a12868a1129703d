"""The `shazamlet` command: the same core as the window, headless.

With no arguments it opens the window. Every failure a user can cause (a bad file, no microphone, a
missing or mismatched model, a bad `--library`, no display, Ctrl-C) ends in one line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from shazamlet.names import clock, song_line
from shazamlet.startup import UsageError, open_library
from shazamlet.terminal import log_warnings_to_stderr, one_line, say

if TYPE_CHECKING:  # torch is imported only by the commands that need it: the window opens fast
    from shazamlet.recognition import Answer


# Qt platforms that draw without a display server (QT_QPA_PLATFORM=offscreen for tests and screenshots)
HEADLESS_QT_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb", "vkkhrdisplay"})


def answer_json(file: str, answer: Answer) -> dict:
    """The stable `identify --json` record (relied on by tools outside the project)."""
    song = None
    if answer.song:
        s = answer.song
        song = {"path": s.path, "title": s.title, "artist": s.artist, "score": round(s.score, 4),
                "offset_s": round(s.offset_s, 2), "landmarks": s.landmarks,
                "presence": None if s.presence is None else round(s.presence, 2)}
    genre = None
    if answer.genre:
        genre = {"label": answer.genre.label, "score": round(answer.genre.score, 4),
                 "votes": {k: round(v, 4) for k, v in answer.genre.votes.items()}}
    return {"file": file, "song": song,
            "candidates": [{"path": c.path, "title": c.title, "score": round(c.score, 4)} for c in answer.candidates],
            "genre": genre, "silent": answer.silent, "elapsed_ms": round(answer.elapsed_ms, 1)}


def answer_line(name: str, answer: Answer) -> str:
    genre = f"sounds like {one_line(answer.genre.label)} ({answer.genre.score:.0%})" if answer.genre else "no genre"
    if answer.silent:
        return f"{name}: silence (or too little sound), nothing to identify"
    if answer.song:
        s = answer.song
        who = one_line(song_line(s.title, s.artist, s.path))
        return f"{name}: {who} ({s.score:.0%} sure, at {clock(s.offset_s)}) · {genre}"
    return f"{name}: not in your library · {genre}"


def cmd_identify(args: argparse.Namespace) -> int:
    from shazamlet.audio.decode import AudioError
    from shazamlet.recognition import Recognizer

    # a reading command: a mistyped --library makes no folder
    library, embedder = open_library(args, create=False, missing_ok=True)
    recognizer = Recognizer(library, embedder)
    if library.catalog.count() == 0:
        where = "is empty" if (library.folder / "catalog.sqlite").exists() else f"at {library.folder} does not exist"
        say(f"warning: the library {where}; add music with `shazamlet library add FOLDER`", file=sys.stderr)
    status = 0
    for f in args.files:
        Interrupted.check()
        try:
            answer = recognizer.identify_file(f)
        except AudioError as exc:
            status = 1
            say(json.dumps({"file": f, "error": str(exc)}) if args.json else f"error: {exc}",
                  file=sys.stdout if args.json else sys.stderr)
            continue
        say(json.dumps(answer_json(f, answer)) if args.json else answer_line(f, answer))
    return status


def cmd_devices(args: argparse.Namespace) -> int:
    from shazamlet.audio.capture import list_input_devices

    devices = list_input_devices()
    if not devices:
        say("no input devices found", file=sys.stderr)
        return 1
    for d in devices:
        flags = ("default " if d.is_default else "") + ("monitor" if d.is_monitor else "")
        say(f"{d.index:3d}  {d.name}  ({d.channels} ch, {d.default_rate:.0f} Hz) {flags}")
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    from shazamlet.audio.capture import MicrophoneStream
    from shazamlet.listen import Listener, listen_stream
    from shazamlet.recognition import Recognizer

    library, embedder = open_library(args, create=False, graph=True)
    if library.catalog.count() == 0:
        say("the library is empty: add music with `shazamlet library add FOLDER` first", file=sys.stderr)
        return 1
    recognizer = Recognizer(library, embedder)
    device = int(args.device) if args.device is not None and str(args.device).isdigit() else args.device
    stream = MicrophoneStream(device)
    listener = Listener(recognizer, stream.rate)
    say(f"listening on {stream.device_name} ... (Ctrl-C to stop)", file=sys.stderr)
    last_song = None
    with stream:
        try:
            for event in listen_stream(stream, listener, continuous=args.continuous):
                if args.json:
                    say(json.dumps({"event": event.kind, "heard_s": round(event.heard_s, 1),
                                      **answer_json("microphone", event.answer)}))
                elif event.kind == "final" or args.verbose:
                    song_id = event.answer.song.song_id if event.answer.song else None
                    if not args.continuous or song_id != last_song:
                        say(answer_line(f"[{event.heard_s:4.1f} s]", event.answer))
                    last_song = song_id
        except KeyboardInterrupt:
            pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    from shazamlet import library_commands as library

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--library", metavar="DIR", default=argparse.SUPPRESS,
                        help="library folder (default: in the user's data dir)")
    common.add_argument("--model", metavar="FILE", default=argparse.SUPPRESS,
                        help="model file (default: the bundled model, or $SHAZAMLET_MODEL)")
    parser = argparse.ArgumentParser(prog="shazamlet", parents=[common],
                                     description="Which song of your library is playing, and what genre it sounds like.")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("identify", parents=[common], help="identify audio files")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("listen", parents=[common], help="identify what the microphone hears")
    p.add_argument("--device", help="input device index or name (see `shazamlet devices`)")
    p.add_argument("--continuous", action="store_true", help="keep listening; print each new song")
    p.add_argument("--json", action="store_true")
    p.add_argument("--verbose", "-v", action="store_true", help="also print partial answers")
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("devices", help="list audio input devices")
    p.set_defaults(func=cmd_devices)

    lib = sub.add_parser("library", parents=[common], help="manage the music library")
    lsub = lib.add_subparsers(dest="library_command", required=True)
    p = lsub.add_parser("add", parents=[common], help="add files or folders (recursive)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--genre-from", choices=("folder", "tag"), default="folder",
                   help="genre from the folder under each given folder, or from tags (folder as fallback)")
    p.add_argument("--genre", help="give every added file this genre")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=library.cmd_add)
    p = lsub.add_parser("list", parents=[common], help="list songs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=library.cmd_list)
    p = lsub.add_parser("info", parents=[common], help="library summary")
    p.add_argument("--verify", action="store_true", help="check the index files' full sha256 (rebuild if damaged)")
    p.set_defaults(func=library.cmd_info)
    p = lsub.add_parser("remove", parents=[common], help="remove songs (files or whole folders)")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=library.cmd_remove)
    p = lsub.add_parser("reindex", parents=[common], help="re-embed all songs with the current model")
    p.set_defaults(func=library.cmd_reindex)
    return parser


def missing_display() -> bool:
    """Whether the window has nowhere to appear: on Linux and the BSDs, no X11 or Wayland display and
    no Qt platform that draws without one. Qt would otherwise abort the process (a core dump, after a
    misleading hint to install libxcb-cursor0)."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return False  # macOS and Windows always have their own platform
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip().lower()
    if platform in HEADLESS_QT_PLATFORMS:
        return False
    if platform.startswith("wayland"):
        return not os.environ.get("WAYLAND_DISPLAY")
    if platform == "xcb":
        return not os.environ.get("DISPLAY")
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_window(args: argparse.Namespace) -> int:
    if missing_display():
        say("shazamlet: no display found: run the window in a desktop session, or use the command line "
              "(shazamlet --help)", file=sys.stderr)
        return 2
    from shazamlet.gui.app import run_app

    return run_app(library=args.library, model=args.model)


def run_command(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.library = getattr(args, "library", None)
    args.model = getattr(args, "model", None)
    if args.command is None:
        return open_window(args)
    log_warnings_to_stderr()
    gc.disable()  # until `started`
    try:
        from shazamlet.audio.capture import CaptureError
        from shazamlet.audio.decode import AudioError
        from shazamlet.library import LibraryError
        from shazamlet.model import ModelError

        try:
            return args.func(args)
        except (ModelError, LibraryError, CaptureError, AudioError, UsageError) as exc:
            say(f"shazamlet: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    finally:
        gc.enable()  # a command that ended (or failed to start) before `started`


class Interrupted:
    """Ctrl-C, raised as KeyboardInterrupt and remembered. Python drops an exception raised while a finalizer
    runs (a decoder's file closing as its object goes), so a Ctrl-C landing there was lost and `identify`
    went on through every file: the loop over files asks `Interrupted.check()` too."""

    seen = False

    @classmethod
    def handle(cls, signum, frame) -> None:
        cls.seen = True
        raise KeyboardInterrupt

    @classmethod
    def check(cls) -> None:
        if cls.seen:
            raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the command; Ctrl-C anywhere (a long `identify`, loading the model) ends in one line and the
    shell's code for an interrupt. `library add` and `listen` handle it themselves first: the one says
    what was kept, the other stops listening as asked."""
    if hasattr(sys.stdout, "reconfigure"):  # a file name that is not UTF-8 prints as its own bytes
        sys.stdout.reconfigure(errors="surrogateescape")
    previous = signal.getsignal(signal.SIGINT)
    Interrupted.seen = False
    ours = previous is signal.default_int_handler and threading.current_thread() is threading.main_thread()
    if ours:  # (not when the shell ignores it: `shazamlet ... &`)
        signal.signal(signal.SIGINT, Interrupted.handle)
    try:
        return run_command(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        say("interrupted", file=sys.stderr)
        return 130
    finally:
        if ours:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
