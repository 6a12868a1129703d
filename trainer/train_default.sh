#!/bin/sh
# Reproduce the shipped default model: corpus -> cache -> train in seven stages -> evaluate -> export -> report.
# Usage: trainer/train_default.sh [DATA_ROOT]   (default /work/data; ~9 h of training on 2 CPU cores)
# Every stage resumes where it stopped (--resume), so the script can simply be run again after an
# interruption. Stages 1-2 use 128-d fingerprints; stage 3 is reduced to 64-d by a PCA folded into the
# head; stage 4 trains at 64-d with positives from waveform-degraded copies of the songs (room views);
# stage 5 with 6 copies per song instead of 2; stage 6 adds strong colouration (loudspeakers, resonant rooms);
# stage 7 gives the encoder band-centred input. The export appends a 128-d linear fingerprint of the
# band-centred tile worth 0.85 of the cosine, and the genre classifier: its directions are fitted in closed
# form (noise-whitened directions of training pairs), then trained contrastively for 50 min (`tune-tiles`)
# and 70 min more with a convolutional residual (`--residual 8`; `--tile-dim 128 --tile-weight 0.85
# --tuned-tiles --tile-residual 8`). Last, `style` fits the style head (a package-balanced logistic regression
# on each tile's spectral envelope and rhythm) that names the genre of songs not in the library.
set -eu
ROOT=${1:-/work/data}
S1=runs/main-contrastive-cls
S2=runs/main-ft-room
S3=runs/long-ft
S4=runs/room-ft
S5=runs/room6-ft
S6=runs/colour-ft
S7=runs/centre-ft
[ -f "$ROOT/corpus/manifest.tsv" ] || /work/shared/corpus/build.sh "$ROOT/corpus" "$ROOT/noise"
COMMON="--data $ROOT/corpus --noise $ROOT/noise --cache $ROOT/cache --objective contrastive+classifier --batch 128 --temperature 0.05"
python -m trainer train $COMMON --epochs 30 --steps-per-epoch 200 --minutes 76 --out "$S1" --resume
python -m trainer train $COMMON --epochs 10 --steps-per-epoch 200 --minutes 14 --lr 3e-4 --init-from "$S1" --out "$S2" --resume
python -m trainer train $COMMON --epochs 20 --steps-per-epoch 200 --minutes 100 --lr 3e-4 --init-from "$S2" --out "$S3" --resume
python -m trainer evaluate "$S3" --fingerprint-dim 64
python -m trainer export "$S3" --fingerprint-dim 64 --to "$S3/long-ft.pt"
python -m trainer train $COMMON --fingerprint-dim 64 --room-views 2 --p-room 0.5 --epochs 20 --steps-per-epoch 200 \
    --minutes 70 --lr 3e-4 --init-from "$S3/long-ft.pt" --out "$S4" --resume
python -m trainer evaluate "$S4"
python -m trainer evaluate "$S4" --model "$S3/long-ft.pt"   # the previous stage, on the same split, for the table
python -m trainer train $COMMON --fingerprint-dim 64 --room-views 6 --p-room 0.7 --epochs 15 --steps-per-epoch 200 \
    --minutes 80 --lr 3e-4 --init-from "$S4" --out "$S5" --resume
python -m trainer evaluate "$S5"
python -m trainer train $COMMON --fingerprint-dim 64 --room-views 6 --p-room 0.4 --p-colour 0.5 --epochs 6 \
    --steps-per-epoch 200 --minutes 29 --lr 2e-4 --init-from "$S5" --out "$S6" --resume
python -m trainer evaluate "$S6"
python -m trainer evaluate "$S6" --tile-dim 192 --tile-weight 0.7
python -m trainer train $COMMON --fingerprint-dim 64 --room-views 6 --p-room 0.5 --p-colour 0.3 --centre-bands \
    --epochs 25 --steps-per-epoch 200 --minutes 120 --lr 3e-4 --init-from "$S6" --out "$S7" --resume
python -m trainer evaluate "$S7"
python -m trainer evaluate "$S7" --tile-dim 192 --tile-weight 0.5
python -m trainer evaluate "$S7" --tile-dim 192 --tile-weight 0.7
python -m trainer evaluate "$S7" --tile-dim 192 --tile-weight 0.85
python -m trainer evaluate "$S7" --tile-dim 128 --tile-weight 0.7
python -m trainer export "$S7" --tile-dim 128 --tile-weight 0.7 --to "$S7/centre-ft-tile128-fp16.pt"
python -m trainer evaluate "$S7" --model "$S7/centre-ft-tile128-fp16.pt"   # the file shipped before tune-tiles
python -m trainer tune-tiles "$S7" --tile-dim 128 --minutes 50   # 50 min in all: run again, it resumes
for W in 0.7 0.85 0.95; do python -m trainer evaluate "$S7" --tile-dim 128 --tile-weight $W --tuned-tiles; done
python -m trainer export "$S7" --tile-dim 128 --tile-weight 0.85 --tuned-tiles --to "$S7/centre-ft-tile128-tuned-fp16.pt"
python -m trainer evaluate "$S7" --model "$S7/centre-ft-tile128-tuned-fp16.pt"   # the file shipped before the residual
python -m trainer tune-tiles "$S7" --tile-dim 128 --residual 8 --minutes 70   # from tiles128.pt, + a convolutional residual
for W in 0.85 0.95; do python -m trainer evaluate "$S7" --tile-dim 128 --tile-weight $W --tuned-tiles --tile-residual 8; done
python -m trainer export "$S7" --tile-dim 128 --tile-weight 0.85 --tuned-tiles --tile-residual 8
python -m trainer style "$S7"   # the style head (genre of songs not in the library), fitted into that file
python -m trainer evaluate "$S7" --model shazamlet/model/shazamlet-default.pt
python -m trainer evaluate "$S7" --model shazamlet/model/shazamlet-default.pt --no-between-tiles   # the library as before in-between tiles
python -m trainer evaluate "$S7" --model shazamlet/model/shazamlet-default.pt --no-landmarks   # fingerprints alone rank
python -m trainer tune-tiles "$S7" --tile-dim 128 --residual 16 --widen-from 8 --minutes 80   # measured, not shipped
python -m trainer evaluate "$S7" --tile-dim 128 --tile-weight 0.85 --tuned-tiles --tile-residual 16
python research/chain_ablation.py "$S6"
python research/chain_ablation.py "$S6" --raw
python research/chain_ablation.py "$S6" --raw-centred
python research/chain_ablation.py "$S7" --model shazamlet/model/shazamlet-default.pt
python -m trainer report "$S7" "$S6" "$S5" "$S4" --model-eval "$S4/eval-long-ft" \
    --model-eval "$S6/eval-tile192w0.7" --model-eval "$S7/eval-tile192w0.5" --model-eval "$S7/eval-tile192w0.7" \
    --model-eval "$S7/eval-tile192w0.85" --model-eval "$S7/eval-tile128w0.7" --model-eval "$S7/eval-centre-ft-tile128-fp16" \
    --model-eval "$S7/eval-tile128w0.7-tuned" --model-eval "$S7/eval-tile128w0.85-tuned" \
    --model-eval "$S7/eval-tile128w0.95-tuned" --model-eval "$S7/eval-centre-ft-tile128-tuned-fp16" \
    --model-eval "$S7/eval-tile128w0.85-tuned-r8" --model-eval "$S7/eval-tile128w0.95-tuned-r8" \
    --model-eval "$S7/eval-shazamlet-default-no-between" --model-eval "$S7/eval-tile128w0.85-tuned-r16" \
    --model-eval "$S7/eval-shazamlet-default-no-landmarks" \
    --model-eval "$S7/eval-shazamlet-default" \
    --shipped "$S7/eval-shazamlet-default" --notes resources/report/notes.md
