"""The live log-mel spectrogram: time in seconds, frequency in Hz, the current 3-s window marked; with
View > Analysis Details, also the window the last answer is based on and each of its 64x64 tiles.
After a dropped file is identified it shows that file instead (`show_file`).

Display only: it pulls the newest samples from the capture ring on the window's timer and computes
the new frames with the core's mel filterbank and power scaling (`shazamlet.features`), in numpy so
the GUI thread never queues behind the encoder in torch's thread pool. At the front end's rate the
frames equal `LogMelFrontEnd.forward` (tested); at another device rate the filterbank is built for
that rate with the same frame duration, so the picture is the same.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem

from shazamlet.gui import theme
from shazamlet.config import FeatureConfig, htk_mel

LEVELS_DB = (-95.0, -10.0)  # the colour map's ends
FREQ_TICKS = (100, 500, 1000, 2000, 4000, 8000)  # (200 Hz sat on top of 100 Hz's label)


def colour_table() -> np.ndarray:
    """The 256 colours of the picture (inferno), and the background's last: what is not heard yet."""
    table = pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=True)
    background = QColor(theme.PLOT)
    return np.vstack([table, [[background.red(), background.green(), background.blue(), 255]]]).astype(np.uint8)


def colours(mel_db: np.ndarray, table: np.ndarray) -> np.ndarray:
    """RGBA pixels `(n_mels, frames, 4)` of dB values, NaN (not heard yet) as the background."""
    lo, hi = LEVELS_DB
    index = np.clip((np.nan_to_num(mel_db, nan=lo) - lo) * (256.0 / (hi - lo)), 0, 255).astype(np.intp)
    index[np.isnan(mel_db)] = 256
    return table[index]


def hz_label(f: float) -> str:
    return f"{f / 1000:g} kHz" if f >= 1000 else f"{f:g} Hz"


def band_position(f: float, features: FeatureConfig) -> float:
    """Where frequency `f` (Hz) lies on the image's band axis (band i spans [i, i+1]): the front end's
    HTK mel scale, whose band i is centred on the (i+1)-th of n_mels+2 points from f_min to f_max."""
    lo, hi = htk_mel(features.f_min), htk_mel(features.f_max)
    return float((htk_mel(float(f)) - lo) / (hi - lo) * (features.n_mels + 1) - 0.5)


def frequency_ticks(features: FeatureConfig) -> list[tuple[float, str]]:
    return [(band_position(f, features), hz_label(f)) for f in FREQ_TICKS if features.f_min < f < features.f_max]


class StreamingMel:
    """Incremental mel power in dB, `(n_mels, new_frames)` per `push` of mono samples at `rate`."""

    def __init__(self, features: FeatureConfig, rate: int) -> None:
        from shazamlet.features import POWER_FLOOR, mel_filterbank  # (torch: build this off the GUI thread)

        ratio = rate / features.sample_rate
        self.n_fft = int(round(features.n_fft * ratio))
        self.hop = int(round(features.hop_length * ratio))
        self.rate = rate
        cfg = replace(features, sample_rate=rate, n_fft=self.n_fft, hop_length=self.hop,
                      f_max=min(features.f_max, rate / 2))
        self.fbanks = mel_filterbank(cfg).numpy().astype(np.float32)  # (n_freqs, n_mels)
        n = np.arange(self.n_fft)
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * n / self.n_fft)).astype(np.float32)  # periodic Hann
        self.scale = 2.0 / self.window.sum()
        self.floor = POWER_FLOOR
        self.pending = np.zeros(0, np.float32)
        self.frames_done = 0

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.rate

    def push(self, samples: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, samples.astype(np.float32, copy=False)])
        if len(self.pending) < self.n_fft:
            return np.zeros((self.fbanks.shape[1], 0), np.float32)
        k = (len(self.pending) - self.n_fft) // self.hop + 1
        frames = np.lib.stride_tricks.sliding_window_view(self.pending, self.n_fft)[:: self.hop][:k]
        power = (np.abs(np.fft.rfft(frames * self.window, axis=1)) * self.scale) ** 2
        mel = power.astype(np.float32) @ self.fbanks
        self.pending = self.pending[k * self.hop :]
        self.frames_done += k
        return (10.0 * np.log10(np.maximum(mel, self.floor))).T


def _rect(color: str, width: float = 2.0, fill: str | None = None, style=Qt.SolidLine) -> QGraphicsRectItem:
    item = QGraphicsRectItem()
    pen = QPen(QColor(color))
    pen.setWidthF(width)
    pen.setCosmetic(True)
    pen.setStyle(style)
    item.setPen(pen)
    item.setBrush(QColor(fill) if fill else Qt.NoBrush)
    item.setZValue(10)
    return item


class SpectrogramView(pg.PlotWidget):
    """Scrolling log-mel image; x is seconds before now (a dropped file: its own time), y frequency (the 64 mel bands)."""

    def __init__(self, features: FeatureConfig = FeatureConfig(), seconds: float = 12.0, parent=None) -> None:
        super().__init__(parent=parent, background=theme.PLOT)
        self.features = features
        self.seconds = seconds
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setMinimumHeight(150)
        plot = self.getPlotItem()
        plot.getAxis("left").setTicks([frequency_ticks(features)])
        plot.getAxis("left").setWidth(52)
        for name in ("left", "bottom"):  # a pixmap blitted each frame, not the axis' text drawn again (-7% of the frame)
            plot.getAxis(name).setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.details = False  # the analysed window, its tiles and their labels (View > Analysis Details)
        # While listening the axis stands still ("seconds ago"): the picture scrolls inside a still image
        # (a moving view range made pyqtgraph regenerate the axis and paint the view twice per frame, ~10% of
        # a core), and the marks of an answer, placed in seconds since listening started, sit in a group
        # that slides left, moved only while they are shown (moving it moved ~20 items every frame).
        self.scroller = pg.ItemGroup()
        self.addItem(self.scroller)
        # The picture is kept as RGBA pixels and only the new frames are coloured: handing pyqtgraph dB values
        # made it colour the whole picture (and build a Qt colour table) on every frame.
        self.image = pg.ImageItem(axisOrder="row-major")
        self.table = colour_table()
        self.addItem(self.image)
        self.window_box = _rect(theme.MATCHED, 2.0, fill=theme.translucent(theme.MATCHED, 0x18))
        self.live_box = _rect(theme.LIVE, 1.5, style=Qt.DashLine)  # the newest tile's 3 s, ending now
        self.tile_marks: list[QGraphicsRectItem] = []
        self.window_label = pg.TextItem("", color=theme.MATCHED, anchor=(1, 0), fill=theme.translucent(theme.PLOT, 0xB0))
        self.live_label = pg.TextItem("next tile", color=theme.LIVE, anchor=(0, 1))
        for item in (self.window_box, self.window_label):
            item.setParentItem(self.scroller)
        for item in (self.live_box, self.live_label):
            self.addItem(item)
        self.live_box.setRect(QRectF(-features.tile_seconds, 1, features.tile_seconds, features.n_mels - 2))
        self.live_label.setPos(-features.tile_seconds, 1)
        self.now_s = 0.0  # seconds since listening started, at the picture's right edge
        self.window_label.setZValue(11)
        self.live_label.setZValue(11)
        self.title = pg.TextItem("", color=theme.SOFT, anchor=(0, 0), fill=theme.translucent(theme.PLOT, 0xB0))  # the file shown
        self.title.setZValue(11)
        self.addItem(self.title)
        self.mel: StreamingMel | None = None
        self.reset(features.sample_rate, 0, None)

    def set_details(self, on: bool) -> None:
        """Show or hide what only someone studying the matcher needs: the analysed window's box and label,
        each tile of it, and the "next tile" label."""
        self.details = on
        if on and self.mel is not None:  # listening (not a dropped file's own picture)
            self.scroller.setPos(-self.now_s, 0)  # it stands still while hidden
        marked = self.window_label.toPlainText() != ""
        self.window_box.setVisible(on and marked)
        self.window_label.setVisible(on and marked)
        for i, m in enumerate(self.tile_marks):
            m.setVisible(on and i < self.n_marked)
        self.live_label.setVisible(on and self.live_box.isVisible())

    def reset(self, rate: int, start_sample: int, mel: StreamingMel | None) -> None:
        """Start a new picture for a stream at `rate`; `mel` computes its frames (None: nothing to show)."""
        self.rate, self.start_sample, self.mel = rate, start_sample, mel
        self.frame_seconds = mel.frame_seconds if mel else self.features.frame_seconds
        self.width_frames = int(self.seconds / self.frame_seconds)
        # NaN (not yet heard) draws as the background rather than as the quietest colour
        self.data = np.full((self.features.n_mels, self.width_frames), np.nan, np.float32)
        self.pixels = colours(self.data, self.table)
        self.window_box.setVisible(False)
        self.window_label.setText("")
        self.n_marked = 0
        for m in self.tile_marks:
            m.setVisible(False)
        self.live_box.setVisible(False)
        self.live_label.setVisible(False)
        self.title.setText("")
        self.title.setVisible(False)  # (an empty title still painted its backdrop every frame)
        self._live_axis(True)
        self.image.setRect(QRectF(-self.width_frames * self.frame_seconds, 0, self.width_frames * self.frame_seconds,
                                  self.features.n_mels))
        self._place(0.0)

    def _live_axis(self, live: bool) -> None:
        """Live: a fixed axis of seconds before now. A file: its own time from 0 s."""
        plot, bottom = self.getPlotItem(), self.getPlotItem().getAxis("bottom")
        if live:
            step = 2 if self.seconds <= 16 else 5
            ticks = [(-float(t), f"{t}") for t in range(step, int(self.seconds) + 1, step)]
            bottom.setTicks([ticks])
            plot.setLabel("bottom", "seconds ago")
            self.setXRange(-self.seconds, 0, padding=0)
        else:
            bottom.setTicks(None)
            plot.setLabel("bottom", "time in the file (s)")
            self.scroller.setPos(0, 0)
        self.setYRange(0, self.features.n_mels, padding=0)

    def show_file(self, mel_db: np.ndarray, frame_seconds: float, name: str) -> None:
        """A dropped file's spectrogram `(n_mels, frames)` (the part that was identified), from 0 s."""
        self.reset(self.features.sample_rate, 0, None)
        self.frame_seconds = frame_seconds
        n = mel_db.shape[1]
        self.data = mel_db.astype(np.float32)
        self.pixels = colours(self.data, self.table)
        self.image.setImage(self.pixels, autoLevels=False)
        self.image.setRect(QRectF(0, 0, n * frame_seconds, self.features.n_mels))
        self._live_axis(False)
        self.setXRange(0, max(n * frame_seconds, 1e-3), padding=0)
        self.title.setText(name)
        self.title.setVisible(True)
        self.title.setPos(0, self.features.n_mels)

    def push(self, samples: np.ndarray, live_sample: int) -> None:
        """New samples from the ring; `live_sample` is the ring position they end at."""
        if self.mel is None:
            return
        cols = self.mel.push(samples)
        k = cols.shape[1]
        if k:
            if k >= self.width_frames:
                self.data[:] = cols[:, -self.width_frames :]
                self.pixels[:] = colours(self.data, self.table)
            else:
                self.data[:, :-k] = self.data[:, k:]
                self.data[:, -k:] = cols
                self.pixels[:, :-k] = self.pixels[:, k:]
                self.pixels[:, -k:] = colours(cols, self.table)
        self._place((live_sample - self.start_sample) / self.rate)

    def _place(self, live_s: float) -> None:
        """The newest frames at "now" (0 on the axis; a frame computed is at most ~50 ms behind the input)."""
        self.now_s = max((self.mel.frames_done if self.mel else 0) * self.frame_seconds, live_s)
        self.image.setImage(self.pixels, autoLevels=False)
        if self.details and self.window_label.toPlainText():  # an answer's marks are shown
            self.scroller.setPos(-self.now_s, 0)
        if live_s >= 0.5 and not self.live_box.isVisible():
            self.live_box.setVisible(True)
            self.live_label.setVisible(self.details)

    def mark_window(self, end_sample: int, window_s: float, tile_starts: np.ndarray, matched: bool | None) -> None:
        """Mark the window the last answer is based on and the 64x64 tiles it matched (`Answer.tile_starts`,
        frames from the window's start: silent and half-silent tiles are left out)."""
        end = (end_sample - self.start_sample) / self.rate
        start = end - window_s
        colour = theme.MATCHED if matched else (theme.WARN if matched is False else theme.UNDECIDED)
        pen = self.window_box.pen()
        pen.setColor(QColor(colour))
        self.window_box.setPen(pen)
        fill = QColor(colour)
        fill.setAlpha(28)
        self.window_box.setBrush(fill)
        self.window_box.setRect(QRectF(start, 0, window_s, self.features.n_mels))
        self.window_box.setVisible(self.details)
        f = self.features
        starts = np.asarray(tile_starts)
        while len(self.tile_marks) < len(starts):
            m = _rect(colour, 1.0)
            m.setParentItem(self.scroller)
            self.tile_marks.append(m)
        # Each tile (64 frames, overlapping its neighbours) as a thin bar in a staircase under the top
        # edge, like a Gantt chart, so overlapping tiles stay readable.
        band = min(2.0, 24.0 / max(1, len(starts)))
        top = f.n_mels - 5.0
        for i, mark in enumerate(self.tile_marks):
            if i < len(starts):
                x = start + starts[i] * f.frame_seconds
                mark.setPen(QPen(QColor(colour), 0))
                c = QColor(colour)
                c.setAlpha(110)
                mark.setBrush(c)
                mark.setRect(QRectF(x, top - (i + 1) * band, f.tile_seconds, band * 0.7))
                mark.setVisible(self.details)
            else:
                mark.setVisible(False)
        self.n_marked = len(starts)
        tiles = f"{len(starts)} tile{'s' if len(starts) != 1 else ''}"
        self.window_label.setText(f"{window_s:.1f} s analysed · {tiles} of 64×64")
        self.window_label.setColor(QColor(colour))
        self.window_label.setPos(end, f.n_mels)
        self.window_label.setVisible(self.details)
        if self.details and self.mel is not None:
            self.scroller.setPos(-self.now_s, 0)
