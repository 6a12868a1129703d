#!/bin/sh
# Reproduce the shipped default model from nothing: corpus -> cache -> train -> evaluate -> export -> report.
# Usage: trainer/train_default.sh [DATA_ROOT]   (default /work/data; hours on 2 CPU cores, minutes on a GPU)
set -eu
ROOT=${1:-/work/data}
RUN=runs/main-contrastive-cls
[ -f "$ROOT/corpus/manifest.tsv" ] || /work/shared/corpus/build.sh "$ROOT/corpus" "$ROOT/noise"
python -m trainer train --data "$ROOT/corpus" --noise "$ROOT/noise" --cache "$ROOT/cache" \
    --objective contrastive+classifier --epochs 12 --steps-per-epoch 200 --batch 128 --temperature 0.05 \
    --out "$RUN" --resume
python -m trainer evaluate "$RUN"
python -m trainer export "$RUN"
python -m trainer evaluate "$RUN" --model resources/shazamlet-default.pt
python -m trainer report runs/* --shipped "$RUN"
