#!/usr/bin/env bash
# The explanation experiments in one go (docs/experiments.md); about 8 minutes on one H200
# with the defaults, or a stated CPU budget (STEPS=..., see docs/experiments.md):
#   (a) five models with the same data, recipe (config/train_demo.yaml, LSTM 64), fp32 and step
#       budget, trained in parallel: sign (paper), mean_field, gated, soft (Kim & Canny), none;
#   (b) the bits sweep (2..24) and the temperature sweep (0.1..10), fp32, --jobs parallel runs,
#       each point scored with the output-change deletion AUC (attention + random floor);
#   (c) OUT/<model>.pt or <model>.pt.gz (the five best.pt; gzipped when over 16 MB) and
#       OUT/results.tar.gz (metrics, configs, logs,
#       sweep JSON/Markdown/PNGs, sweep reports). Nothing else lands in OUT.
#
# Usage: PYTHONPATH=<repo root> benchmarks/experiments.sh DATA OUT
#   DATA  dataset folder (manifest.json; drives of split train and val). Models hold out the
#         val drives (val_drives), so `signattn evaluate --split val` scores unseen frames.
# Environment: STEPS (model steps, default 2400), SWEEP_STEPS (700), BATCH (16), JOBS (8),
#   EVAL_FRAMES (sweep points, 100), DEVICE (auto), WORK (scratch folder, default mktemp),
#   SMOKE=1 (a few steps and two values per sweep: checks the whole path on a CPU in minutes),
#   PHASES ("models sweeps": which of (a) and (b) to run), BITS and TEMPS (sweep values),
#   SWEEP_INIT (a checkpoint the sweep runs fine-tune from, e.g. the shipped model, instead of
#   training from scratch: the CPU budget), SWEEP_LR (their learning rate).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 DATA OUT" >&2
    exit 2
fi
DATA=$(cd "$1" && pwd)
OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
CLI="python3 $HERE/experiment_cli.py"

SMOKE=${SMOKE:-0}
STEPS=${STEPS:-2400}
SWEEP_STEPS=${SWEEP_STEPS:-700}
BATCH=${BATCH:-16}
JOBS=${JOBS:-8}
EVAL_FRAMES=${EVAL_FRAMES:-100}
DEVICE=${DEVICE:-auto}
BITS=${BITS:-2,4,6,8,10,12,16,20,24}
TEMPS=${TEMPS:-0.1,0.3,1,3,10}
PHASES=${PHASES:-models sweeps}
SWEEP_INIT=${SWEEP_INIT:-}
SWEEP_LR=${SWEEP_LR:-}
STEP_PERCENT=${STEP_PERCENT:-1}
if [ "$SMOKE" = 1 ]; then
    STEPS=${SMOKE_STEPS:-4}
    SWEEP_STEPS=2
    BATCH=2
    EVAL_FRAMES=4
    BITS=4,10
    TEMPS=0.1,1
    STEP_PERCENT=25
fi
WORK=${WORK:-$(mktemp -d /tmp/signattn_gpu.XXXXXX)}
mkdir -p "$OUT" "$WORK/configs" "$WORK/runs" "$WORK/logs"
CORES=$(nproc)
START=$(date +%s)
stamp() { echo "[$(( $(date +%s) - START )) s] $*"; }

pack() {
    # Runs on exit, also after a failure: whatever was produced comes back.
    local rc=$?
    stamp "packing (exit status $rc)"
    # Map overlays (about 1 MB each) stay behind: `signattn evaluate` redraws them on the CPU.
    (cd "$WORK" && find . \( -name '*.csv' -o -name '*.yaml' -o -name '*.json' -o \
        -name '*.md' -o -name '*.png' -o -name '*.log' \) ! -name 'overlays_*' -print0 |
        tar --null -czf "$OUT/results.tar.gz" -T -) || true
    # soft/none hold a 12800-input LSTM (~17 MB of fp32): over the 16 MiB a returned file may
    # have, so those come back gzipped (gunzip before `signattn evaluate`).
    for m in sign mean_field gated soft none; do
        if [ -f "$WORK/runs/$m/best.pt" ]; then
            if [ "$(stat -c %s "$WORK/runs/$m/best.pt")" -gt 16000000 ]; then
                gzip -6 -c "$WORK/runs/$m/best.pt" > "$OUT/$m.pt.gz"
            else
                cp "$WORK/runs/$m/best.pt" "$OUT/$m.pt"
            fi
        fi
    done
    ls -la "$OUT"
}
trap pack EXIT

# One config file per model: config/train_demo.yaml plus the model's attention/binarize, fp32,
# the val drives of the manifest held out, and a validation every quarter of the budget.
python3 - "$REPO/config/train_demo.yaml" "$DATA" "$WORK/configs" "$STEPS" "$BATCH" \
    "$SWEEP_INIT" "$SWEEP_LR" <<'PY'
import json, sys
from pathlib import Path
import yaml
base, data, out, steps, batch, sweep_init, sweep_lr = sys.argv[1:8]
cfg = yaml.safe_load(Path(base).read_text())
drives = json.loads((Path(data) / 'manifest.json').read_text())['drives']
val = sorted(name for name, d in drives.items() if d['split'] in ('val', 'test'))
cfg.update(amp=False, batch_size=int(batch), max_steps=int(steps),
           val_every=max(1, int(steps) // 4), log_every=max(1, int(steps) // 40),
           num_workers=2, val_split='drive', val_drives=val,
           val_fraction=0.0 if not val else cfg.get('val_fraction', 0.2))
models = {'sign': dict(attention='sign', binarize='deterministic'),
          'mean_field': dict(attention='sign', binarize='mean_field'),
          'gated': dict(attention='sign', binarize='gated'),
          'soft': dict(attention='soft'), 'none': dict(attention='none')}
for name, fields in models.items():
    (Path(out) / f'{name}.yaml').write_text(yaml.safe_dump({**cfg, **fields}, sort_keys=False))
sweep = {**cfg, **models['sign']}
if sweep_init:
    sweep['init_checkpoint'] = str(Path(sweep_init).resolve())
if sweep_lr:
    sweep['lr'] = float(sweep_lr)
(Path(out) / 'sweep.yaml').write_text(yaml.safe_dump(sweep, sort_keys=False))
print(f'val drives held out: {val}')
PY

if [[ " $PHASES " == *' models '* ]]; then
# (a) five models in parallel, CPU threads shared out.
stamp "training 5 models, $STEPS steps each, batch $BATCH, device $DEVICE"
pids=()
for m in sign mean_field gated soft none; do
    OMP_NUM_THREADS=$(( CORES / 5 > 0 ? CORES / 5 : 1 )) \
        $CLI train --config "$WORK/configs/$m.yaml" --data "$DATA" --out "$WORK/runs/$m" \
        --device "$DEVICE" --no-progress > "$WORK/logs/train_$m.log" 2>&1 &
    pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
for m in sign mean_field gated soft none; do tail -n 3 "$WORK/logs/train_$m.log"; done
if [ "$fail" != 0 ]; then
    echo "a training run failed; see logs/ in results.tar.gz" >&2
    exit 1
fi
stamp "models trained"
fi

# (b) sweeps, fp32, JOBS runs at a time, scored on the held-out val frames.
sweep() {
    local what=$1 values=$2
    $CLI sweep "$what" --data "$DATA" --out "$WORK/sweep_$what" \
        --config "$WORK/configs/sweep.yaml" --values "$values" --max-steps "$SWEEP_STEPS" \
        --jobs "$JOBS" --device "$DEVICE" --methods attention,random --split val \
        --limit-frames "$EVAL_FRAMES" --step-percent "$STEP_PERCENT" --fill black \
        --no-progress > "$WORK/logs/sweep_$what.log" 2>&1
}
if [[ " $PHASES " == *' sweeps '* ]]; then
stamp "sweeps: bits $BITS, temperature $TEMPS; $SWEEP_STEPS steps each, $JOBS jobs"
sweep bits "$BITS"
stamp "bits sweep done"
sweep temperature "$TEMPS"
stamp "temperature sweep done"
tail -n 12 "$WORK/logs/sweep_bits.log" "$WORK/logs/sweep_temperature.log"
fi
