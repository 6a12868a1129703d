"""What the command line prints: one line per thing, whatever the file names and tags hold.

A file name may hold a newline or an escape sequence; printed as it is, it splits a `skipped:` line,
forges an `added 99` line, or recolours the terminal. Every line the CLI prints goes through `say`,
and warnings from the library through `EscapingFormatter`, which show such characters escaped
(`\\n`, `\\x1b`), so the name can still be read and typed.
"""

from __future__ import annotations

import logging
import sys
import unicodedata
from typing import TextIO

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# bidirectional overrides and isolates reorder what follows them on screen (a name can pose as another)
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def escaped(text: object) -> str:
    """`text` with control characters, line separators and bidi overrides written as escapes."""
    out = []
    for c in str(text):
        if c in _NAMED:
            out.append(_NAMED[c])
        elif c in _BIDI or unicodedata.category(c) in ("Cc", "Zl", "Zp"):
            code = ord(c)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(c)
    return "".join(out)


def say(text: str = "", file: TextIO | None = None) -> None:
    """Print one line (stdout unless `file`), its control characters escaped, and flush it."""
    print(escaped(text), file=file or sys.stdout, flush=True)


class EscapingFormatter(logging.Formatter):
    """The message alone, escaped: a library warning naming a file stays one line."""

    def format(self, record: logging.LogRecord) -> str:
        return escaped(record.getMessage())


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a warning comes (it may be replaced after set-up)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def log_warnings_to_stderr() -> None:
    """Send the package's warnings to stderr, one escaped line each (Python's fallback prints them raw)."""
    logger = logging.getLogger("shazamlet")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(EscapingFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def one_line(text: str | None) -> str:
    """`text` with line breaks and other control characters as spaces: a tag or file name holding a
    newline must not break the one-line-per-song output (the JSON output keeps the text as it is)."""
    if not text:
        return text or ""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
