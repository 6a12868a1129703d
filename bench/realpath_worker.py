"""The measuring side of `bench.realpath`: runs inside ONE tree (PYTHONPATH=<tree>), one job per process.

Run as `python -P bench/realpath_worker.py JOB.json OUT.json` (`-P`: bench/ itself is not put on the
path, so every `shazamlet` import resolves to the tree under test). It reaches the product only through
what a user's command reaches, behind small adapters (`_first`, `_call`), so the same worker measures
a tree from before a refactor and one after it: a name that moved is looked up where it went.

Jobs:
- identify: CPU per answer of `Recognizer(library, embedder).identify_file(clip)` on one torch thread,
  loaded as `shazamlet identify` loads (`startup.open_library`), after one warm-up answer;
- profile: the same under cProfile, the top entries by cumulative time;
- gui: the real window offscreen, listening in continuous mode to a file-backed stream at real time:
  process CPU per wall second, and the listen thread's CPU per live answer (`Listener.push`).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import inspect
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable


def _first(*names: str) -> Any:
    """The first of "module:attr" that imports: where a name lives in this tree."""
    for name in names:
        module, attr = name.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {names} in this tree")


def _call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """`fn` with only the keyword arguments its signature has (older trees lack newer options)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


def open_recognizer(library: str) -> Any:
    """A recognizer built the way `shazamlet identify` builds it (read-only, the default model)."""
    import torch

    torch.set_num_threads(1)
    recognizer_cls = _first("shazamlet.recognizer:Recognizer", "shazamlet.recognition:Recognizer",
                            "shazamlet.recognition.recognizer:Recognizer")
    try:
        load = _first("shazamlet.startup:open_library", "shazamlet.cli:_load")
        lib, embedder = _call(load, argparse.Namespace(library=library, model=None), create=False, missing_ok=True)
    except ImportError:
        library_cls = _first("shazamlet.library:Library", "shazamlet.library.library:Library")
        embedder = _first("shazamlet.model:TileEmbedder")(None)
        lib = _call(library_cls.open, Path(library), embedder, create=False)
    return recognizer_cls(lib, embedder)


def _answer(clip: str, answer: Any) -> dict:
    song = getattr(answer, "song", None)
    return {"clip": clip, "song": getattr(song, "path", None), "score": getattr(song, "score", None)}


def job_identify(job: dict) -> dict:
    """CPU ms of process time per `identify_file`, one answer per clip, after a warm-up answer."""
    rec = open_recognizer(job["library"])
    rec.identify_file(job["warmup"])
    rows = []
    for clip in job["clips"]:
        c0, w0 = time.process_time(), time.perf_counter()
        answer = rec.identify_file(clip)
        rows.append({**_answer(clip, answer), "cpu_ms": (time.process_time() - c0) * 1000,
                     "wall_ms": (time.perf_counter() - w0) * 1000})
    return {"rows": rows}


def job_profile(job: dict) -> dict:
    """The clips' answers under cProfile (after the warm-up): where the CPU of an answer goes."""
    rec = open_recognizer(job["library"])
    rec.identify_file(job["warmup"])
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    for clip in job["clips"]:
        rec.identify_file(clip)
    prof.disable()
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    stats.sort_stats("cumulative").print_stats(int(job.get("top", 10)) + 15)
    return {"text": text.getvalue(), "clips": len(job["clips"])}


def job_gui(job: dict) -> dict:
    """The window listening to `stream` (looped, real time) for `seconds`, after `warmup_s` of listening."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import soundfile as sf
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    main_window = _first("shazamlet.gui.main_window:MainWindow", "shazamlet.gui:MainWindow")
    file_stream = _first("shazamlet.gui.sources:FileInputStream", "shazamlet.audio.sources:FileInputStream")
    input_device = _first("shazamlet.audio.capture:InputDevice")
    listener_cls = _first("shazamlet.listen:Listener", "shazamlet.recognition.listen:Listener")
    wave, rate = sf.read(job["stream"], dtype="float32")

    answers: list[tuple[float, float]] = []  # (when, listen-thread CPU ms) of each live answer
    push = listener_cls.push

    def timed_push(self, samples):  # runs in the listen thread: thread CPU is this answer's own
        c0 = time.thread_time()
        event = push(self, samples)
        if event is not None:
            answers.append((time.perf_counter(), (time.thread_time() - c0) * 1000))
        return event

    listener_cls.push = timed_push
    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="realpath-gui-"))
    settings = QSettings(str(tmp / "settings.ini"), QSettings.IniFormat)
    device = _call(input_device, 0, "Bench microphone", 1, float(rate), True, False)
    w = _call(main_window, job["library"], None, settings=settings,
              open_stream=lambda _dev: file_stream(wave, rate, name="bench stream", loop=True).start(),
              list_devices=lambda *_: [device], history_path=tmp / "history.json",
              list_pulse_sources=lambda: [], tray_available=False)
    w.show()
    out: dict = {}
    t = {"ready": time.perf_counter()}

    def wait_ready() -> None:  # ready, and the library map drawn (its PCA must not count as listening)
        mapped = getattr(getattr(w, "map_view", None), "map", 1) is not None
        if not (getattr(w, "ready", True) and mapped) and time.perf_counter() - t["ready"] < 120:
            QTimer.singleShot(200, wait_ready)
            return
        w.continuous.setChecked(True)
        w.start_listening()
        QTimer.singleShot(int(job["warmup_s"] * 1000), begin)

    prof = cProfile.Profile(time.process_time) if job.get("profile") else None

    def begin() -> None:
        t["w0"], t["c0"], t["n0"] = time.perf_counter(), time.process_time(), len(answers)
        if prof is not None:  # the GUI thread only (cProfile sees one thread): what the window itself costs
            prof.enable()
        QTimer.singleShot(int(job["seconds"] * 1000), end)

    def end() -> None:
        wall, cpu = time.perf_counter() - t["w0"], time.process_time() - t["c0"]
        live = [ms for _, ms in answers[t["n0"]:]]
        if prof is not None:
            prof.disable()
            text = io.StringIO()
            pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
            out["text"] = text.getvalue()
        out.update({"wall_s": wall, "cpu_s": cpu, "cpu_pct": 100 * cpu / wall, "answers": len(live),
                    "answer_cpu_ms": live, "answer_cpu_ms_median": statistics.median(live) if live else None})
        w.stop_listening()
        w.close()
        app.quit()

    QTimer.singleShot(0, wait_ready)
    app.exec()
    return out


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    result = {"identify": job_identify, "profile": job_profile, "gui": job_gui}[job["kind"]](job)
    import shazamlet

    result["shazamlet"] = str(Path(shazamlet.__file__).parent)  # proof of which tree answered
    Path(sys.argv[2]).write_text(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # the window's and the library's threads must not delay (or hang) the exit


if __name__ == "__main__":
    main()
