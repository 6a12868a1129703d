"""Giving freed C heap back to the system while a long file is worked through.

Analysing and embedding a long file allocates and frees megabytes of temporaries per block or batch
(STFT, resampler, the encoder's activations) between the small pieces that are kept (spectrogram, peak
candidates, fingerprints). glibc keeps the freed heap between those mapped, so a 2-hour file's process
held several hundred MB it no longer used; `malloc_trim` hands the free pages back.
"""

from __future__ import annotations

import ctypes

_malloc_trim = None


def release_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's `malloc_trim`; elsewhere nothing)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (AttributeError, OSError):  # not glibc (macOS, Windows, musl)
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)
