#!/usr/bin/env bash
# Packaging check (CI): build the wheel, install it into a fresh venv outside the checkout, and let the
# installed command add two songs and identify a clip with the model bundled in the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PY=${PYTHON:-python3}
"$PY" -m venv "$WORK/build" && "$WORK/build/bin/python" -m pip install -q --upgrade pip build >/dev/null
"$WORK/build/bin/python" -m build -q --wheel --outdir "$WORK/dist" . >/dev/null
WHEEL=$(ls "$WORK"/dist/shazamlet-*.whl)
# read the listing in Python: `zipfile -l | grep -q` dies of SIGPIPE under pipefail when grep exits early
"$WORK/build/bin/python" -c "import sys, zipfile; sys.exit('shazamlet/model/shazamlet-default.pt' not in zipfile.ZipFile(sys.argv[1]).namelist())" "$WHEEL" \
  || { echo "check_wheel: the wheel holds no bundled model" >&2; exit 1; }
"$WORK/build/bin/python" -c "import sys, zipfile; sys.exit('shazamlet/gui/icons/shazamlet.png' not in zipfile.ZipFile(sys.argv[1]).namelist())" "$WHEEL" \
  || { echo "check_wheel: the wheel holds no window icon" >&2; exit 1; }
FROM_WHEEL="$WHEEL" VENV="$WORK/venv" bash scripts/install.sh >/dev/null
cd "$WORK"  # away from the checkout: only the installed package can be imported
"$WORK/venv/bin/python" - <<PY
import sys
sys.path.insert(0, "$ROOT/tests")
from pathlib import Path
import soundfile as sf
from synth import STYLES, make_song
Path("music/Demo").mkdir(parents=True)
for i in range(2):
    sf.write(f"music/Demo/song{i}.wav", make_song(900 + i, STYLES[i], 30.0), 22050)
sf.write("clip.wav", make_song(901, STYLES[1], 30.0)[22050 * 10 : 22050 * 15], 22050)
PY
"$WORK/venv/bin/shazamlet" --library "$WORK/lib" library add -q music
out=$("$WORK/venv/bin/shazamlet" --library "$WORK/lib" identify --json clip.wav)
echo "$out"
"$WORK/venv/bin/python" -c "import json, sys; a = json.loads(sys.argv[1]); sys.exit(0 if a['song'] and a['song']['path'].endswith('song1.wav') else 1)" "$out" \
  || { echo "check_wheel: the installed wheel did not name the clip" >&2; exit 1; }
echo "check_wheel: OK ($(basename "$WHEEL"), the bundled model named the clip)"
