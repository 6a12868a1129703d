"""The library map: a PCA of the library's fingerprints coloured by genre, with the live query on it.

The projection is computed in the core thread (`core_worker.pca_map`); projecting a query's few
fingerprints with the same axes is a small matrix product done here.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from shazamlet.gui import theme
from shazamlet.gui.genres import GenrePalette
from shazamlet.gui.messages import LibraryMap

TRAIL = 12


class MapView(QWidget):
    def __init__(self, palette: GenrePalette | None = None, parent=None) -> None:
        super().__init__(parent)
        self.palette = palette or GenrePalette()  # the window's: the same colour per genre as its other views
        self.plot = pg.PlotWidget(background=theme.PLOT)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.getPlotItem().hideAxis("left")
        self.plot.getPlotItem().hideAxis("bottom")
        self.plot.setAspectLocked(True)
        self.legend = self.plot.addLegend(offset=(8, 8), labelTextColor=theme.TEXT, brush=pg.mkBrush(theme.translucent(theme.PLOT, 0xC0)))
        self.points = pg.ScatterPlotItem(size=5, pen=None, hoverable=True, hoverSize=9,
                                         hoverPen=pg.mkPen(theme.BRIGHT, width=1))
        self.points.sigHovered.connect(self._hovered)
        self.plot.addItem(self.points)
        self.trail = pg.PlotDataItem(pen=pg.mkPen(theme.BRIGHT, width=1.5, style=pg.QtCore.Qt.DashLine))
        self.query = pg.ScatterPlotItem(size=11, symbol="o", pen=pg.mkPen(theme.TOOLTIP, width=1),
                                        brush=pg.mkBrush(theme.translucent(theme.WHITE, 0xC0)))
        self.centre = pg.ScatterPlotItem(size=26, symbol="star", pen=pg.mkPen(theme.TOOLTIP, width=1.5),
                                         brush=pg.mkBrush(theme.STAR))
        for item in (self.trail, self.query, self.centre):
            item.setZValue(20)
            self.plot.addItem(item)
        self.note = QLabel("The map appears once the library has songs.")
        self.note.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.note)
        self.map: LibraryMap | None = None
        self.history: list[np.ndarray] = []
        self.pending: np.ndarray | None = None
        self.genre_colour: dict[str, str] = {}

    def set_map(self, m: LibraryMap) -> None:
        self.map = m
        self.legend.clear()
        pending, self.history = self.pending, []  # a query that arrived before its map
        if len(m.xy) == 0:
            self.map = None
            self.points.setData([], [])
            self.note.setText(m.note)
            return
        genres = sorted(set(m.genre))
        self.genre_colour = {g: self.palette.colour(g) for g in genres}
        brushes = [pg.mkBrush(self.genre_colour[g] + "a0") for g in m.genre]
        self.points.setData(pos=m.xy, brush=brushes, data=[m.titles.get(int(i), "") for i in m.song_id])
        for g in genres:
            self.legend.addItem(pg.ScatterPlotItem(size=9, pen=None, brush=pg.mkBrush(self.genre_colour[g])), g)
        self.note.setText(f"{len(m.xy)} library tiles of {len(m.titles)} songs, projected on their two main axes "
                          "(PCA). The star is what you are listening to.")
        self.plot.autoRange()
        if pending is not None:
            self.show_query(pending)

    def _hovered(self, _item, points, _event) -> None:
        """The song of the tile under the mouse, as a tooltip."""
        self.plot.setToolTip(str(points[0].data()) if len(points) else "")

    def clear_query(self) -> None:
        self.history = []
        self.pending = None
        self.query.setData([], [])
        self.centre.setData([], [])
        self.trail.setData([], [])

    def show_query(self, fingerprints: np.ndarray) -> np.ndarray | None:
        """Place the query's tiles (dots) and their centre (star); returns the projected points."""
        if fingerprints is None or len(fingerprints) == 0:
            return None
        self.pending = fingerprints
        if self.map is None:
            return None
        xy = self.map.project(fingerprints)
        if len(xy) == 0:
            return None
        centre = xy.mean(axis=0)
        self.history = (self.history + [centre])[-TRAIL:]
        trail = np.array(self.history)
        self.query.setData(pos=xy)
        self.centre.setData(pos=[centre])
        self.trail.setData(trail[:, 0], trail[:, 1])
        return xy
