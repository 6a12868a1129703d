"""Small display widgets: the level meter, vote bar charts, the status banner."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QFrame, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSizePolicy, QTableView, QWidget

from shazamlet.gui import theme

SILENT_DBFS = -70.0
CLIP_PEAK = 0.99
# Clipping is a flat top: runs of samples stuck at full scale. A single peak at 0 dBFS is a loud, well
# mastered song (normal on the computer's own audio) and said "Clipping!" at ordinary playback.
CLIP_RUN = 3  # samples in a row at full scale
CLIP_FRACTION = 1e-3  # of a block's samples in such runs


def clipped_fraction(samples: np.ndarray, level: float = CLIP_PEAK, run: int = CLIP_RUN) -> float:
    """The share of `samples` that lie in runs of at least `run` consecutive samples at or above `level`."""
    hot = np.abs(samples) >= level
    if len(hot) < run or not hot.any():
        return 0.0
    edges = np.diff(np.concatenate([[0], hot.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    return float(lengths[lengths >= run].sum() / len(samples))


class LevelMeter(QWidget):
    """Input level in dBFS (RMS bar, peak tick with decay); knows when it is silent or clipping."""

    def __init__(self, floor_db: float = -70.0, parent=None) -> None:
        super().__init__(parent)
        self.floor = floor_db
        self.rms_db = self.peak_db = floor_db
        self.silent_s = 0.0
        self.clip_hold_s = 0.0
        self.setMinimumHeight(16)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def reset(self) -> None:
        self.rms_db = self.peak_db = self.floor
        self.silent_s = self.clip_hold_s = 0.0
        self.update()

    def feed(self, samples: np.ndarray, seconds: float) -> None:
        if len(samples):
            peak = float(np.max(np.abs(samples)))
            rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
            rms_db = 20 * np.log10(max(rms, 1e-7))
            self.rms_db = max(rms_db, self.rms_db - 40 * seconds)  # fast attack, slow release
            self.peak_db = max(20 * np.log10(max(peak, 1e-7)), self.peak_db - 15 * seconds)
            self.silent_s = self.silent_s + seconds if rms_db < SILENT_DBFS else 0.0
            clipped = peak >= CLIP_PEAK and clipped_fraction(samples) > CLIP_FRACTION
            self.clip_hold_s = 1.5 if clipped else max(0.0, self.clip_hold_s - seconds)
        self.update()

    @property
    def silent(self) -> bool:
        return self.silent_s >= 1.5

    @property
    def clipping(self) -> bool:
        return self.clip_hold_s > 0

    def _x(self, db: float) -> float:
        return (min(0.0, max(self.floor, db)) - self.floor) / -self.floor * self.width()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        r = self.rect()
        p.fillRect(r, QColor(theme.METER))
        x = self._x(self.rms_db)
        colour = theme.CLIPPING if self.clipping else (theme.LOUD if self.rms_db > -12 else theme.GOOD)
        p.fillRect(QRectF(0, 2, x, r.height() - 4), QColor(colour))
        p.fillRect(QRectF(self._x(self.peak_db) - 1, 0, 2, r.height()), QColor(theme.BRIGHT))
        p.setPen(QColor(theme.FAINT))
        for db in range(int(self.floor), 1, 10):
            xx = self._x(db)
            p.drawLine(int(xx), r.height() - 4, int(xx), r.height())
        p.end()


class VoteChart(pg.PlotWidget):
    """Horizontal bars, best on top; each bar carries its label, the value (0..1) sits at the right."""

    def __init__(self, title: str, colour: str = theme.GENRE_VOTES, parent=None) -> None:
        super().__init__(parent=parent, background=theme.CHART)
        self.colour = colour
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setTitle(f"<span style='color:{theme.SOFT}'>{title}</span>")
        plot = self.getPlotItem()
        plot.getViewBox().invertY(True)
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        self.setXRange(0, 1.0, padding=0.01)
        self.setMinimumSize(160, 150)
        # the bars and texts are made once and updated in place: made anew for every answer they cost
        # ~10 ms of the GUI thread each time (two charts, an answer a second while listening)
        no_bars = dict(x0=np.zeros(0), y=np.zeros(0), height=0.78, width=np.zeros(0), pen=pg.mkPen(None))
        self.track = pg.BarGraphItem(brush=pg.mkBrush(theme.TRACK), **no_bars)  # 100 % has a place to be read against
        self.bars = pg.BarGraphItem(brushes=[], **no_bars)
        self.addItem(self.track)
        self.addItem(self.bars)
        self.names: list[pg.TextItem] = []
        self.shares: list[pg.TextItem] = []
        self.labels: list[str] = []
        self.values: list[float] = []
        self.empty_note = pg.TextItem("no votes yet", color=theme.FAINT, anchor=(0.5, 0.5))
        self.addItem(self.empty_note)
        self.empty_note.setPos(0.5, 2)
        self.set_votes([], [])

    def set_votes(self, labels: list[str], values: list[float], highlight: int | None = 0,
                  colours: list[str] | None = None) -> None:
        """`colours`: one per bar (a genre's own colour), the highlighted bar solid and the others dimmed;
        without them the highlighted bar takes the chart's colour and the others grey."""
        self.labels, self.values = list(labels), [float(v) for v in values]
        self.colours = list(colours) if colours else []
        n = len(values)
        self.empty_note.setVisible(n == 0)
        if colours:
            brushes = [pg.mkBrush(c if i == highlight else c + "80") for i, c in enumerate(colours)]
        else:
            brushes = [pg.mkBrush(self.colour if i == highlight else theme.OUTLINE) for i in range(n)]
        y = np.arange(n)
        self.track.setOpts(x0=np.zeros(n), y=y, width=np.ones(n))
        self.bars.setOpts(x0=np.zeros(n), y=y, width=np.clip(self.values, 0, 1), brushes=brushes)
        while len(self.names) < n:
            for items, anchor, colour in ((self.names, (0, 0.5), theme.BRIGHT), (self.shares, (1, 0.5), theme.SOFT)):
                item = pg.TextItem("", color=colour, anchor=anchor)
                item.setZValue(5)
                self.addItem(item)
                items.append(item)
        for i, (name, share) in enumerate(zip(self.names, self.shares)):
            shown = i < n
            name.setVisible(shown)
            share.setVisible(shown)
            if shown:
                label = labels[i]
                name.setText(label if len(label) <= 40 else label[:39] + "…")
                name.setPos(0.01, i)
                share.setText(f"{self.values[i]:.0%}")
                share.setPos(0.995, i)
        self.setYRange(-0.5, max(n, 5) - 0.5, padding=0.02)


class Banner(QFrame):
    """A coloured line across the window with a message and an optional action button."""

    action = Signal(str)

    STYLES = theme.BANNERS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.kind = ""
        self.action_id = ""
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 6, 12, 6)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.button = QPushButton()
        self.button.clicked.connect(lambda: self.action.emit(self.action_id))
        close = QPushButton("✕")
        close.setFlat(True)
        close.setFixedWidth(28)
        close.clicked.connect(self.hide)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.button)
        lay.addWidget(close)
        self.hide()

    def show_message(self, kind: str, message: str, action_text: str = "", action_id: str = "") -> None:
        self.kind, self.action_id = kind, action_id
        self.setStyleSheet(f"Banner {{ background: {self.STYLES.get(kind, theme.DISABLED)}; border-radius: 6px; }}"
                           "QLabel { color: white; }")
        self.text.setText(message)
        self.button.setText(action_text)
        self.button.setVisible(bool(action_text))
        self.show()

    def clear(self, *action_ids: str) -> None:
        """Hide the banner (only if it shows one of `action_ids`, when given)."""
        if not action_ids or self.action_id in action_ids:
            self.kind = self.action_id = ""
            self.hide()


def big_font(widget: QWidget, points: float, bold: bool = False) -> QFont:
    f = QFont(widget.font())
    f.setPointSizeF(points)
    f.setBold(bold)
    return f


class ShareTable(QTableView):
    """A table whose title column takes what is left of its width once the columns with long text (artist,
    genre, source) have their share of it, on every resize: sized to their contents, those squeezed the
    title to a few letters. The share columns can be dragged wider until the next resize; the others fit
    their contents."""

    def __init__(self, title: int, shares: dict[int, float], min_width: dict[int, int], parent=None) -> None:
        super().__init__(parent)
        self.title, self.shares, self.min_width = title, shares, min_width
        self.horizontalHeader().setStretchLastSection(False)
        self.horizontalHeader().setMinimumSectionSize(40)

    def setModel(self, model) -> None:
        """Sets the columns' modes too: a header keeps them per section, and has none before its model."""
        super().setModel(model)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(self.title, QHeaderView.Stretch)
        for col in self.shares:
            header.setSectionResizeMode(col, QHeaderView.Interactive)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        width = event.size().width()
        for col, share in self.shares.items():
            self.horizontalHeader().resizeSection(col, max(self.min_width.get(col, 40), int(share * width)))
