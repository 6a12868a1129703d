"""What the window remembers between runs (QSettings, each value read with its type and default)."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

SETTINGS_VERSION = 1


class AppSettings:
    def __init__(self, settings: QSettings | None = None) -> None:
        self.s = settings if settings is not None else QSettings("shazamlet", "shazamlet")
        if int(self.s.value("version", 0, type=int)) < SETTINGS_VERSION:
            self.s.setValue("version", SETTINGS_VERSION)  # no older format to migrate from yet

    def _str(self, key: str) -> str:
        return str(self.s.value(key, "", type=str) or "")

    def device(self) -> str:
        return self._str("input/device")

    def set_device(self, name: str) -> None:
        self.s.setValue("input/device", name)

    def library_folder(self) -> str:
        return self._str("library/folder")

    def set_library_folder(self, folder: str) -> None:
        self.s.setValue("library/folder", folder)

    def model_path(self) -> str:
        return self._str("model/path")

    def set_model_path(self, path: str) -> None:
        self.s.setValue("model/path", path)

    def continuous(self) -> bool:
        return bool(self.s.value("listen/continuous", False, type=bool))

    def set_continuous(self, on: bool) -> None:
        self.s.setValue("listen/continuous", on)

    def details(self) -> bool:
        return bool(self.s.value("view/details", False, type=bool))

    def set_details(self, on: bool) -> None:
        self.s.setValue("view/details", on)

    def genre_from(self) -> str:
        value = self._str("library/genre_from")
        return value if value in ("folder", "tag") else "folder"

    def set_genre_from(self, value: str) -> None:
        self.s.setValue("library/genre_from", value)

    def geometry(self) -> QByteArray | None:
        g = self.s.value("window/geometry", None)
        return g if isinstance(g, QByteArray) and not g.isEmpty() else None

    def set_geometry(self, g: QByteArray) -> None:
        self.s.setValue("window/geometry", g)
        self.s.sync()

    def splitter(self) -> QByteArray | None:
        g = self.s.value("window/splitter", None)
        return g if isinstance(g, QByteArray) and not g.isEmpty() else None

    def set_splitter(self, state: QByteArray) -> None:
        self.s.setValue("window/splitter", state)

    def tab(self) -> int:
        return int(self.s.value("window/tab", 0, type=int))

    def set_tab(self, index: int) -> None:
        self.s.setValue("window/tab", index)
