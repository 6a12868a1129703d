"""Shazamlet: offline song and genre identification against your own music library."""

__version__ = "0.1.0"
