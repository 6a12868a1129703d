"""Start the window: `shazamlet` with no arguments calls `run_app`.

The window appears at once; the model and the library load in the core thread behind it.

For demos and the end-to-end test, `SHAZAMLET_E2E=DIR` makes the window listen as soon as the
library is ready, save screenshots and a `result.json` into DIR, and quit after the final answer
(or after `SHAZAMLET_E2E_TIMEOUT` seconds, default 45).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shazamlet.config import data_dir


def apply_dark_theme(app) -> None:
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    pal = QPalette()
    from shazamlet.gui import theme

    for role, colour in ((QPalette.Window, theme.WINDOW), (QPalette.WindowText, theme.TEXT), (QPalette.Base, theme.BASE),
                         (QPalette.AlternateBase, theme.ALTERNATE), (QPalette.Text, theme.TEXT),
                         (QPalette.Button, theme.BUTTON), (QPalette.ButtonText, theme.TEXT),
                         (QPalette.Highlight, theme.ACCENT), (QPalette.HighlightedText, theme.WHITE),
                         (QPalette.ToolTipBase, theme.TOOLTIP), (QPalette.ToolTipText, theme.TEXT),
                         (QPalette.PlaceholderText, theme.FAINT)):
        pal.setColor(role, QColor(colour))
    pal.setColor(QPalette.Disabled, QPalette.Text, QColor(theme.FAINT))
    pal.setColor(QPalette.Disabled, QPalette.ButtonText, QColor(theme.FAINT))
    app.setPalette(pal)


def guard_none_refcount(probe) -> bool:
    """Survive PySide6 6.12.0 on Python < 3.12, which drops a reference to None on every call of a
    method that returns nothing (a window at 25 fps ends in "deallocating None" within seconds).

    `probe()` makes such calls; if None's reference count falls while it runs, None is made
    effectively immortal (what Python 3.12 does for every interpreter) by raising its count once.
    Returns True when the workaround was needed. The cure is another PySide6: see the message.
    """
    if sys.version_info >= (3, 12):
        return False  # None is immortal there
    before = sys.getrefcount(None)
    probe()
    if before - sys.getrefcount(None) < 50:
        return False
    import ctypes

    ctypes.c_ssize_t.from_address(id(None)).value += 1 << 60  # ob_refcnt is the first field
    print("shazamlet: this PySide6 leaks references to None (a known 6.12.0 bug); working around it. "
          "Better: pip install 'PySide6-Essentials!=6.12.0'", file=sys.stderr)
    return True


def history_file() -> Path:
    return data_dir() / "history.json"


def run_app(library: str | None = None, model: str | None = None) -> int:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from shazamlet.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    guard_none_refcount(lambda: [app.processEvents() for _ in range(100)])
    app.setApplicationName("Shazamlet")
    app.setOrganizationName("shazamlet")
    icon = Path(__file__).resolve().parent / "icons" / "shazamlet.png"  # package data: in a wheel too
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    apply_dark_theme(app)
    e2e = os.environ.get("SHAZAMLET_E2E")
    if e2e:
        from PySide6.QtCore import QSettings

        settings = QSettings(str(Path(e2e) / "settings.ini"), QSettings.IniFormat)  # leave the user's alone
        window = MainWindow(library, model, settings=settings, history_path=Path(e2e) / "history.json")
        window.resize(1280, 800)
    else:
        window = MainWindow(library, model, history_path=history_file())
    window.show()
    if e2e:
        from shazamlet.gui.e2e import E2EDriver

        window._e2e = E2EDriver(window, Path(e2e), float(os.environ.get("SHAZAMLET_E2E_TIMEOUT", "45")))
    return app.exec()
