"""Drive the real window for the end-to-end script: listen, take screenshots, report, quit.

Environment: SHAZAMLET_E2E=DIR (turns it on), SHAZAMLET_E2E_TIMEOUT (s, default 45),
SHAZAMLET_E2E_CONTINUOUS=SECONDS to listen in continuous mode for that long instead of stopping at
the first final answer, and SHAZAMLET_E2E_RECORDINGS=FOLDER to identify that folder into the history
at the end. Besides the window it grabs the whole screen (`screen_shot`) where what matters is
outside it: the open input list, the tray's notification.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from shazamlet.gui import messages as m


class E2EDriver:
    def __init__(self, window, out: Path, timeout_s: float) -> None:
        self.w, self.out = window, out
        out.mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        self.events: list[dict] = []
        self.first = True
        self.done = False
        self.continuous_s = float(os.environ.get("SHAZAMLET_E2E_CONTINUOUS", "0") or 0)
        self.recordings = os.environ.get("SHAZAMLET_E2E_RECORDINGS", "")
        self.notified = False
        notify = window.tray.notify

        def notify_and_shoot(title: str, text: str) -> bool:  # the first notification, on the screen
            sent = notify(title, text)
            if sent and not self.notified:
                self.notified = True
                QTimer.singleShot(900, lambda: self.screen_shot("7-notification.png"))
            return sent

        window.tray.notify = notify_and_shoot
        window.library_changed.connect(self._library_ready)
        window.answered.connect(self._answered)
        QTimer.singleShot(int(timeout_s * 1000), self._timeout)

    def shot(self, name: str) -> None:
        self.w.grab().save(str(self.out / name))

    def screen_shot(self, name: str) -> None:
        QGuiApplication.primaryScreen().grabWindow(0).save(str(self.out / name))

    def _library_ready(self, songs) -> None:
        if songs and not self.done:
            self.w.library_changed.disconnect(self._library_ready)
            self.waited = 0
            self._when_map_ready()

    def _when_map_ready(self) -> None:
        """Listen once the library map is drawn (or after 10 s without it), for complete screenshots."""
        self.waited += 1
        if self.w.map_view.map is None and self.waited < 50:
            QTimer.singleShot(200, self._when_map_ready)
            return
        if not self.w.listening:
            self.w.continuous.setChecked(self.continuous_s > 0)
            self.w.start_listening()
            if self.continuous_s > 0:
                QTimer.singleShot(int(self.continuous_s * 1000), self._finish)
            (self.out / "listening").write_text(f"{time.time()}\n")  # the script starts playback now
            QTimer.singleShot(2500, lambda: self.shot("1-listening.png"))

    def _answered(self, msg) -> None:
        if not isinstance(msg, m.ListenUpdate):
            return
        a = msg.answer
        self.events.append({"kind": msg.kind, "heard_s": round(msg.heard_s, 2), "silent": a.silent,
                            "song": a.song.path if a.song else None, "score": round(a.song.score, 3) if a.song else None,
                            "best": a.candidates[0].path if a.candidates else None,
                            "genre": a.genre.label if a.genre else None})
        if self.first and not a.silent:
            self.first = False
            self.shot("2-first-answer.png")
        if msg.kind == "final" and not a.silent and not self.done and self.continuous_s <= 0:
            QTimer.singleShot(600, self._finish)  # let the spectrogram scroll on a little

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.shot("3-last-heard.png" if self.continuous_s > 0 else "3-answer.png")
        self.w.inputs.box.showPopup()  # the input list, open
        QTimer.singleShot(500, self._inputs_shot)

    def _inputs_shot(self) -> None:
        self.screen_shot("6-inputs.png")
        self.w.inputs.box.hidePopup()
        self.w.stop_listening()
        if self.recordings:
            self.w.folder_identified.connect(lambda _msg: QTimer.singleShot(300, self._tabs))
            self.w.identify_folder(self.recordings)
        else:
            self._tabs()

    def _tabs(self) -> None:
        self.w.tabs.setCurrentWidget(self.w.history)
        QApplication.processEvents()
        self.shot("4-history.png")
        self.w.tabs.setCurrentWidget(self.w.library)
        QApplication.processEvents()
        self.shot("5-library.png")
        self.w.tabs.setCurrentWidget(self.w.map_view)
        QApplication.processEvents()
        self._report(ok=True)

    def _timeout(self) -> None:
        if not self.done:
            self.done = True
            self.shot("timeout.png")
            self._report(ok=False)

    def _report(self, ok: bool) -> None:
        finals = [e for e in self.events if e["kind"] == "final"]
        # the answer to judge: the last final, or in continuous mode the first final that named a song
        final = next((e for e in finals if e["song"]), finals[-1] if finals else None) if self.continuous_s > 0 \
            else (finals[-1] if finals else None)
        (self.out / "result.json").write_text(json.dumps(
            {"finished": ok, "final": final, "events": self.events, "elapsed_s": round(time.time() - self.started, 1)},
            indent=1))
        self.w.stop_listening()
        QTimer.singleShot(300, self.w.quit)
