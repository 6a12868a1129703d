"""The tray icon: Listen/Stop, Show, Quit; and the desktop notification when a song is named.

With a system tray, closing the window while it listens only hides it: listening goes on, the icon's
menu stops it or brings the window back. Without one (a desktop that has none, the offscreen platform)
closing quits as before, since nothing would be left to reach the app by. Notifications go through
`QSystemTrayIcon.showMessage`, which uses the desktop's notification service where there is one and
Qt's own balloon by the icon otherwise.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from shazamlet.gui import theme

NOTIFY_MS = 6000


def fallback_icon() -> QIcon:
    """A plain blue disc, for a run without the app's icon file (the tray needs some icon)."""
    pix = QPixmap(64, 64)
    pix.fill(QColor(0, 0, 0, 0))
    p = QPainter(pix)
    p.setRenderHint(QPainter.Antialiasing)
    p.setBrush(QColor(theme.ACCENT))
    p.setPen(QColor(theme.ACCENT_EDGE))
    p.drawEllipse(4, 4, 56, 56)
    p.end()
    return QIcon(pix)


class Tray(QObject):
    listen_toggled = Signal()
    show_requested = Signal()
    quit_requested = Signal()

    def __init__(self, window: QWidget, available: bool | None = None) -> None:
        super().__init__(window)
        self.available = QSystemTrayIcon.isSystemTrayAvailable() if available is None else available
        icon = window.windowIcon()
        self.icon = QSystemTrayIcon(fallback_icon() if icon.isNull() else icon, self)
        self.icon.setToolTip("Shazamlet")
        self.menu = QMenu(window)
        self.listen_action = QAction("Listen", self.menu)
        self.listen_action.triggered.connect(self.listen_toggled)
        self.menu.addAction(self.listen_action)
        self.menu.addAction("Show Window", self.show_requested.emit)
        self.menu.addSeparator()
        self.menu.addAction("Quit", self.quit_requested.emit)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        if self.available:
            self.icon.show()

    def _activated(self, reason) -> None:
        if reason in (QSystemTrayIcon.Trigger, QSystemTrayIcon.DoubleClick):
            self.show_requested.emit()

    def set_listening(self, on: bool) -> None:
        self.listen_action.setText("Stop Listening" if on else "Listen")
        self.icon.setToolTip("Shazamlet — listening" if on else "Shazamlet")

    def set_song(self, text: str) -> None:
        self.icon.setToolTip(f"Shazamlet — {text}")

    def notify(self, title: str, text: str) -> bool:
        """A desktop notification (False where there is no tray to send it from)."""
        if not self.available:
            return False
        self.icon.showMessage(title, text, QSystemTrayIcon.Information, NOTIFY_MS)
        return True
