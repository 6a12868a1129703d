#!/usr/bin/env bash
# End to end, for real: the app listens through sounddevice to a PulseAudio null sink's monitor
# while `paplay` plays a library song into that sink, and must name the song.
#
#   scripts/e2e_listen.sh [OUT_DIR] [SONG_INDEX]
#   E2E_CONTINUOUS=12 scripts/e2e_listen.sh ...   # continuous mode for 12 s (screenshots of a longer run)
#
# Needs (Debian): xvfb libxcb-icccm4 libxcb-keysyms1 pulseaudio pulseaudio-utils libportaudio2 imagemagick.
# Uses the bundled model (resources/shazamlet-default.pt, or $SHAZAMLET_MODEL) when there is one,
# otherwise a fixed random model made here (good enough only for clean, exact playback).
# Music: $E2E_MUSIC if set (a folder), otherwise a small synthetic library written here.
# Leaves in OUT_DIR: shots/*.png (the window, taken by the app), screen-*.png (the whole X screen),
# shots/result.json (every answer), app.log; exit status 0 when the played song was identified.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "${1:-/tmp/shazamlet-e2e}" && cd "${1:-/tmp/shazamlet-e2e}" && pwd)"
SONG_INDEX="${2:-5}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export DISPLAY="${E2E_DISPLAY:-:99}"
rm -rf "$OUT/shots" "$OUT/lib"
mkdir -p "$OUT/shots"

started_xvfb="" started_pulse=""
cleanup() {
  [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null || true
  [ -n "${PLAY_PID:-}" ] && kill "$PLAY_PID" 2>/dev/null || true
  [ -n "$started_pulse" ] && pulseaudio -k 2>/dev/null || true
  [ -n "$started_xvfb" ] && kill "$started_xvfb" 2>/dev/null || true
}
trap cleanup EXIT

# -- a screen ---------------------------------------------------------------------------------
if ! xdpyinfo >/dev/null 2>&1 && ! [ -e "/tmp/.X11-unix/X${DISPLAY#:}" ]; then
  Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
  started_xvfb=$!
  sleep 1
fi

# -- a sound card that plays into a microphone (PulseAudio null sink; its monitor is the input) --
if ! pactl info >/dev/null 2>&1; then
  pulseaudio -D -n --exit-idle-time=-1 --load=module-native-protocol-unix --load="module-null-sink sink_name=v"
  started_pulse=1
  for _ in $(seq 25); do pactl info >/dev/null 2>&1 && break; sleep 0.2; done
fi
pactl list short sinks | grep -q '^[0-9]*\sv\s' || pactl load-module module-null-sink sink_name=v >/dev/null
pactl set-default-sink v
pactl set-default-source v.monitor

# -- a model and a library ----------------------------------------------------------------------
MODEL="${SHAZAMLET_MODEL:-$ROOT/resources/shazamlet-default.pt}"
MUSIC="${E2E_MUSIC:-$OUT/music}"
cd "$ROOT"
"$PY" - "$MODEL" "$OUT" "$MUSIC" <<'PYEOF'
import sys
from pathlib import Path
sys.path.insert(0, "tests")  # the synthetic music of the test suite
model, out, music = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
from synth import make_random_model, write_library
if not music.exists():  # FLAC with tags, so the window shows titles and artists like a real library's
    from mutagen.flac import FLAC
    names = {"techno": ("Kilohertz Club", ["Neon Drive", "Night Bus", "Warehouse 9"]),
             "ballad": ("Amelia Stone", ["Slow Rain", "Letters Home", "The Long Goodbye"]),
             "rock": ("The Overdrives", ["Gasoline Sky", "Broken Amp", "Highway Static"]),
             "chiptune": ("8-Bit Ghost", ["Level Up", "Pixel Heart", "Boss Fight"])}
    for p in write_library(music, n_per_style=3, seconds=30.0, seed=400, fmt="flac"):
        artist, titles = names[p.parent.name]
        tags = FLAC(p)
        tags["title"], tags["artist"], tags["album"] = titles[int(p.stem[-2:]) % 3], artist, "Synthetic Sessions"
        tags.save()
if not model.exists():
    make_random_model(out / "random-model.pt", name="random-e2e")
PYEOF
[ -f "$MODEL" ] || MODEL="$OUT/random-model.pt"
echo "model: $MODEL"
"$PY" -m shazamlet --library "$OUT/lib" --model "$MODEL" library add "$MUSIC" -q
SONG="$(find -L "$MUSIC" -type f \( -name '*.wav' -o -name '*.flac' -o -name '*.mp3' -o -name '*.ogg' \) | sort | sed -n "$((SONG_INDEX + 1))p")"
[ -n "$SONG" ] || { echo "no song number $SONG_INDEX in $MUSIC" >&2; exit 2; }
echo "playing: $SONG"

# -- the app listens; the song plays -------------------------------------------------------------
SHAZAMLET_E2E="$OUT/shots" SHAZAMLET_E2E_TIMEOUT="${E2E_TIMEOUT:-60}" SHAZAMLET_E2E_CONTINUOUS="${E2E_CONTINUOUS:-}" \
  QT_QPA_PLATFORM=xcb \
  "$PY" -m shazamlet --library "$OUT/lib" --model "$MODEL" >"$OUT/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 300); do [ -e "$OUT/shots/listening" ] && break; sleep 0.1; done
[ -e "$OUT/shots/listening" ] || { echo "the app did not start listening"; cat "$OUT/app.log"; exit 1; }
sleep 1.2  # the first input stream of a process delivers its first samples ~0.6 s late
paplay "$SONG" &
PLAY_PID=$!
sleep 4.5
import -window root "$OUT/screen-listening.png" || true
wait "$APP_PID" || true
APP_PID=""
import -window root "$OUT/screen-end.png" 2>/dev/null || true

"$PY" - "$OUT/shots/result.json" "$SONG" <<'PYEOF'
import json, os, sys
r = json.load(open(sys.argv[1]))
final = r.get("final") or {}
for e in r["events"]:
    print(f"  {e['kind']:7s} {e['heard_s']:5.1f} s  song={e['song']}  score={e['score']}  best={e['best']}  genre={e['genre']}")
# the library stores resolved paths (a music folder of symlinks names the files they point to)
ok = bool(final.get("song")) and os.path.realpath(final["song"]) == os.path.realpath(sys.argv[2])
print(("PASS: identified " if ok else "FAIL: expected ") + sys.argv[2])
sys.exit(0 if ok else 1)
PYEOF
