#!/usr/bin/env bash
# Install Shazamlet into ./.venv (or $VENV) on a fresh machine; safe to run again.
#   bash scripts/install.sh                # the app (editable, from this checkout)
#   WITH_TESTS=1 bash scripts/install.sh   # + test tools, the trainer's extras and the Debian packages the tests use
#   WITH_TRAIN=1 bash scripts/install.sh   # + what the trainer needs (matplotlib, scikit-learn)
#   FROM_WHEEL=dist/x.whl VENV=/tmp/v bash scripts/install.sh   # the app from a built wheel (CI's packaging check)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

# Debian packages: PortAudio for the microphone; sox/espeak-ng make test audio; Xvfb etc. for the e2e script.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  pkgs="libportaudio2 libsndfile1 libxkbcommon0 libegl1 libgl1 libfontconfig1 libdbus-1-3"
  [ "${WITH_TESTS:-0}" = 1 ] && pkgs="$pkgs espeak-ng sox"
  missing=$(for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
  fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip >/dev/null
# The CPU build of torch first: a plain `torch` requirement would pull GBs of CUDA packages on a
# machine without a GPU. On a machine with an NVIDIA GPU, install torch the usual way instead.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then $PIP install -q torch
  # a local CPU wheel (PIP_FIND_LINKS) if there is one, else PyTorch's CPU index
  elif $PIP install -q --no-index --no-deps torch==2.13.0 2>/dev/null; then $PIP install -q torch==2.13.0
  else $PIP install -q torch --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple; fi
fi
extras=""
[ "${WITH_TRAIN:-0}" = 1 ] && extras="[train]"
[ "${WITH_TESTS:-0}" = 1 ] && extras="[test]"
if [ -n "${FROM_WHEEL:-}" ]; then $PIP install -q "$FROM_WHEEL"
else $PIP install -q -e ".${extras}"; fi

# torchaudio: where the registry only offers a CUDA build beside the CPU torch, its compiled
# extensions fail to load (libc10_cuda.so); the parts we use are pure PyTorch, so drop them.
if ! "$VENV/bin/python" -c "import torchaudio" 2>/dev/null; then
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  rm -f "$site"/torchaudio/lib/*.so
  "$VENV/bin/python" -c "import torchaudio.functional" || { echo "torchaudio does not import" >&2; exit 1; }
fi
echo "installed: $("$VENV/bin/python" -c 'import torch, torchaudio, shazamlet; print("shazamlet", shazamlet.__version__, "torch", torch.__version__, "torchaudio", torchaudio.__version__)')"
