#!/usr/bin/env bash
# End to end, for real: the app listens through sounddevice to a PulseAudio null sink's monitor
# while `paplay` plays a library song into that sink, and must name the song.
#
#   scripts/e2e_listen.sh [OUT_DIR] [SONG_INDEX]
#   E2E_CONTINUOUS=12 scripts/e2e_listen.sh ...   # continuous mode for 12 s (screenshots of a longer run)
#   E2E_PLAY_SECONDS=7 ...     # play only the song's first 7 s (then the room is silent: the "Last heard" card)
#   E2E_RECORDINGS=1 ...       # at the end, identify a folder of recordings (library excerpts and a song
#                              # not in it) into the history, which writes shazamlet-not-found.csv
#
# Needs (Debian): xvfb libxcb-icccm4 libxcb-keysyms1 pulseaudio pulseaudio-utils libportaudio2 imagemagick;
# with `trayer` installed it also runs a system tray, so the tray icon and its notification show.
# Uses the bundled model (shazamlet/model/shazamlet-default.pt, or $SHAZAMLET_MODEL) when there is one,
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
  [ -n "${TRAY_PID:-}" ] && kill "$TRAY_PID" 2>/dev/null || true
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

# -- a system tray (for the tray icon and its notifications), when trayer is there ---------------
if command -v trayer >/dev/null 2>&1; then
  trayer --edge bottom --align right --widthtype pixel --width 80 --height 28 --transparent false \
    --tint 0x202030 >/dev/null 2>&1 &
  TRAY_PID=$!
  sleep 0.5
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
# a second input, a microphone that hears the room (the sink): the input list shows microphones first
pactl list short sources | grep -q room_mic || pactl load-module module-remap-source master=v.monitor \
  source_name=room_mic source_properties=device.description=Room-Microphone >/dev/null || true

# -- a model and a library ----------------------------------------------------------------------
MODEL="${SHAZAMLET_MODEL:-$ROOT/shazamlet/model/shazamlet-default.pt}"
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
    names = {"techno": ("Kilohertz Club", ["Neon Drive", "Night Bus (Extended Warehouse Mix)", "Warehouse 9"]),
             "ballad": ("Amelia Stone & The Northern Lights Chamber Orchestra",
                        ["Slow Rain", "Letters Home", "The Long Goodbye (Live at the Royal Albert Hall, 1974)"]),
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
PLAY="$SONG"
if [ -n "${E2E_PLAY_SECONDS:-}" ]; then  # only the start of it, then silence
  PLAY="$OUT/excerpt.wav"
  "$PY" -c "import sys, soundfile as sf; d, r = sf.read(sys.argv[1]); sf.write(sys.argv[2], d[: int(float(sys.argv[3]) * r)], r)" \
    "$SONG" "$PLAY" "$E2E_PLAY_SECONDS"
fi
RECORDINGS=""
if [ -n "${E2E_RECORDINGS:-}" ]; then  # excerpts of three library songs and one song that is not in it
  RECORDINGS="$OUT/recordings"
  rm -rf "$RECORDINGS"
  "$PY" - "$MUSIC" "$RECORDINGS" <<'PYEOF'
import sys
from pathlib import Path
import soundfile as sf
sys.path.insert(0, "tests")
from synth import write_library
music, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True)
songs = sorted(p for p in music.rglob("*") if p.suffix in (".flac", ".wav"))
for i, p in enumerate(songs[k] for k in (2, 10, 7) if k < len(songs)):  # two of them with long names
    d, r = sf.read(p)
    sf.write(out / f"voice-memo-{i + 1}.wav", d[5 * r : 11 * r], r)
other = write_library(out / "tmp", n_per_style=1, seconds=8.0, seed=4321)[0]
d, r = sf.read(other)
sf.write(out / "radio-clip.wav", d, r)
import shutil; shutil.rmtree(out / "tmp")
PYEOF
fi

# -- the app listens; the song plays -------------------------------------------------------------
SHAZAMLET_E2E="$OUT/shots" SHAZAMLET_E2E_TIMEOUT="${E2E_TIMEOUT:-60}" SHAZAMLET_E2E_CONTINUOUS="${E2E_CONTINUOUS:-}" \
  SHAZAMLET_E2E_RECORDINGS="$RECORDINGS" \
  QT_QPA_PLATFORM=xcb \
  "$PY" -m shazamlet --library "$OUT/lib" --model "$MODEL" >"$OUT/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 300); do [ -e "$OUT/shots/listening" ] && break; sleep 0.1; done
[ -e "$OUT/shots/listening" ] || { echo "the app did not start listening"; cat "$OUT/app.log"; exit 1; }
sleep 1.2  # the first input stream of a process delivers its first samples ~0.6 s late
paplay "$PLAY" &
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
