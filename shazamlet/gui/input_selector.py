"""The input selector: each input once (`sources.input_choices`), remembered by name.

It only shows what the listen thread listed (`ListenWorker.list_inputs`): listing asks PortAudio and
`pactl`, which can take seconds, and the GUI thread never waits on audio."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from shazamlet.audio.capture import InputDevice
from shazamlet.gui.sources import InputChoice, input_choices

DEFAULT_CHOICE = InputChoice("", "System default input", -1)


class InputSelector(QWidget):
    changed = Signal(object)  # InputChoice, when the user picks another input
    refreshed = Signal(bool)  # True when at least one input device exists
    refresh_requested = Signal()  # the user asked to look for inputs again

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.devices: list[InputDevice] = []
        self.choices: list[InputChoice] = []
        self.box = QComboBox()
        self.box.setToolTip("Where to listen: a microphone, or a monitor source that hears this computer's playback")
        self.box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.box.setMinimumContentsLength(34)  # the popup list still shows whole names
        self.box.currentIndexChanged.connect(lambda _i: self.changed.emit(self.current()))
        refresh = QPushButton("↻")
        refresh.setToolTip("Look for input devices again")
        refresh.setFixedWidth(32)
        refresh.clicked.connect(self.refresh_requested)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Input"))
        lay.addWidget(self.box)
        lay.addWidget(refresh)

    def show_inputs(self, devices: list[InputDevice], sources: list[tuple], wanted: str) -> None:
        """Show the inputs listed and select the one remembered as `wanted` (a key) if it is there."""
        self.devices = devices
        self.choices = input_choices(devices, sources)
        self.box.blockSignals(True)
        self.box.clear()
        for c in self.choices:
            self.box.addItem(c.label, c.key)
        i = self.box.findData(wanted) if wanted else -1
        if i < 0:  # nothing remembered, or it is gone: the system's default input
            i = next((k for k, c in enumerate(self.choices) if c.is_default), 0)
        self.box.setCurrentIndex(i)
        self.box.blockSignals(False)
        self.refreshed.emit(bool(self.devices))

    def current(self) -> InputChoice:
        i = self.box.currentIndex()
        return self.choices[i] if 0 <= i < len(self.choices) else DEFAULT_CHOICE

    def labels(self) -> list[str]:
        return [self.box.itemText(i) for i in range(self.box.count())]
