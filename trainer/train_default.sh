#!/bin/sh
# Reproduce the shipped default model: corpus -> cache -> train -> fine-tune -> evaluate -> export -> report.
# Usage: trainer/train_default.sh [DATA_ROOT]   (default /work/data; ~1.5 h of training on 2 CPU cores)
set -eu
ROOT=${1:-/work/data}
MAIN=runs/main-contrastive-cls
RUN=runs/main-ft-room
[ -f "$ROOT/corpus/manifest.tsv" ] || /work/shared/corpus/build.sh "$ROOT/corpus" "$ROOT/noise"
COMMON="--data $ROOT/corpus --noise $ROOT/noise --cache $ROOT/cache --objective contrastive+classifier --batch 128 --temperature 0.05"
python -m trainer train $COMMON --epochs 30 --steps-per-epoch 200 --minutes 76 --out "$MAIN" --resume
python -m trainer train $COMMON --epochs 10 --steps-per-epoch 200 --minutes 14 --lr 3e-4 \
    --init-from "$MAIN" --out "$RUN" --resume
for r in "$MAIN" "$RUN"; do python -m trainer evaluate "$r"; done
python -m trainer export "$RUN"
python -m trainer evaluate "$RUN" --model resources/shazamlet-default.pt
python -m trainer report "$RUN" "$MAIN" runs/quick-* --shipped "$RUN"
