#!/usr/bin/env bash
# The test suite, offscreen (no display needed).
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen
exec "${VENV:-.venv}/bin/python" -m pytest -q "$@"
