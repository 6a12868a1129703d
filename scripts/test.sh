#!/usr/bin/env bash
# The test suite, offscreen (no display needed). On a fresh machine it first installs what the tests
# need (the app, pytest, pytest-qt, the trainer's extras, espeak-ng and sox): it works on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if ! "$VENV/bin/python" -c "import shazamlet, pytest, pytestqt, matplotlib, sklearn, filelock" 2>/dev/null \
   || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! { command -v espeak-ng && command -v sox; } >/dev/null; }; then
  WITH_TESTS=1 VENV="$VENV" bash scripts/install.sh
fi
export QT_QPA_PLATFORM=offscreen
exec "$VENV/bin/python" -m pytest -q "$@"
