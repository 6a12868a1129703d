"""The window's colours, named once by what they mean: one dark theme (Tailwind's slate scale).

Every widget takes its colours from here, so a colour that means "sure" or "muted" is the same
colour everywhere, and changing the theme is one file.
"""

from __future__ import annotations

from PySide6.QtGui import QColor

# surfaces, darkest first
PLOT = "#14141c"  # the spectrogram's and the map's background
BASE = "#15151d"  # lists and text fields
ALTERNATE = "#1c1c26"  # every second row of a list
CHART = "#1b1b24"  # the vote charts' background
WINDOW = "#1e1e28"
METER = "#23232e"  # the level meter's track
TRACK = "#262633"  # a vote bar's 100%, so a share reads against a whole
BUTTON = "#2a2a38"
TOOLTIP = "#0f172a"
DISABLED = "#334155"  # a disabled button; a banner of no known kind

# text and lines, brightest first
WHITE = "#ffffff"  # text on the accent, the query on the map
BRIGHT = "#f8fafc"
TEXT = "#e2e8f0"
SOFT = "#cbd5e1"  # titles and values beside bright text
MUTED = "#94a3b8"  # details, hints, songs without a genre
FAINT = "#64748b"  # placeholders, disabled text, axis labels
OUTLINE = "#475569"  # dashed outlines; the bars that are not the leader

# what a colour says
ACCENT = "#2563eb"  # the Listen button, selections, the tray icon
ACCENT_EDGE = "#93c5fd"
STOP = "#dc2626"  # the Listen button while listening
STOP_EDGE = "#fca5a5"
GOOD = "#22c55e"  # a confident answer; a healthy level
GOOD_TEXT = "#4ade80"
WARN = "#fbbf24"  # a doubtful answer, a quiet input, a window that matched nothing
CAUTION = "#f59e0b"  # a confidence under one half
LOUD = "#facc15"  # a level near clipping
CLIPPING = "#ef4444"
LIVE = "#38bdf8"  # the newest tile; a drop target
MATCHED = "#7cfc9a"  # the window an answer came from, when it named a song
UNDECIDED = "#a5b4fc"  # that window while the answer is not decided
SONG_VOTES = "#10b981"
GENRE_VOTES = "#60a5fa"
STAR = "#fde047"  # the map's centre of the query
GENRES = ("#60a5fa", "#f472b6", "#34d399", "#fbbf24", "#a78bfa", "#f87171", "#22d3ee", "#a3e635",
          "#fb923c", "#e879f9", "#2dd4bf", "#facc15")  # one per genre, told apart on the dark surfaces
BANNERS = {"error": "#7f1d1d", "warning": "#78350f", "info": "#1e3a8a"}


def translucent(colour: str, alpha: int) -> QColor:
    """`colour` with an alpha of 0-255: one spelling for Qt (`#AARRGGBB`) and pyqtgraph (`#RRGGBBAA`)."""
    c = QColor(colour)
    c.setAlpha(alpha)
    return c
