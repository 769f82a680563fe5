#!/usr/bin/env bash
# Reproduces the countdown or ARC tables of docs/EVIDENCE.md: trains configs/reasoning-FAMILY.json
# under training seeds 0, 1, 2 (seed 0 in runs/FAMILY, seed k in runs/FAMILY-seedk), then runs
# the grid on every held-out problem of the `same` split (new problems at the training
# parameters) and off against sync on the splits held out by generator parameters.
#   bash docs/evidence/run-family.sh countdown|arc
#   SEEDS="0 1 2" SIMS=8 TOPK=4; CRSM_TRAIN=path/to/crsm-train runs a built binary instead of cargo
set -euo pipefail
cd "$(dirname "$0")/../.."
FAMILY=${1:?usage: run-family.sh countdown|arc}
SEEDS=${SEEDS:-"0 1 2"}
SIMS=${SIMS:-8}
TOPK=${TOPK:-4}
if [ -n "${CRSM_TRAIN:-}" ]; then CT=("$CRSM_TRAIN"); else CT=(cargo run --release -q -p crsm-train --); fi
CONFIG=configs/reasoning-$FAMILY.json
OUT=docs/evidence
TASKS=runs/$FAMILY/tasks

for k in $SEEDS; do
  if [ "$k" = 0 ]; then "${CT[@]}" full --config "$CONFIG"; else "${CT[@]}" full --config "$CONFIG" --seed "$k"; fi
done
models=()
for k in $SEEDS; do
  if [ "$k" = 0 ]; then models+=(--model "runs/$FAMILY/crsm"); else models+=(--model "runs/$FAMILY-seed$k/crsm"); fi
done
common=(--plan-top-k "$TOPK" --device cpu)
P=(--tasks "$TASKS/held-out-same.jsonl")

"${CT[@]}" eval "${models[@]}" "${P[@]}" --deliberate off,sync,async --lag 1,2,4 \
  --simulations "$SIMS" "${common[@]}" --out "$OUT/$FAMILY-modes.md"
"${CT[@]}" eval "${models[@]}" "${P[@]}" --deliberate off,sync \
  --ablate none,no-injection,no-guidance,identity-dynamics,exact-dynamics,no-critic \
  --simulations "$SIMS" "${common[@]}" --out "$OUT/$FAMILY-ablations.md"
"${CT[@]}" eval "${models[@]}" "${P[@]}" --deliberate off,sync --simulations 2,8,32 \
  "${common[@]}" --out "$OUT/$FAMILY-budgets.md"
# Every other held-out split (held out by generator parameters): off against sync.
for f in "$TASKS"/held-out-*.jsonl; do
  split=$(basename "$f" .jsonl); split=${split#held-out-}
  [ "$split" = same ] && continue
  "${CT[@]}" eval "${models[@]}" --tasks "$f" --deliberate off,sync --simulations "$SIMS" \
    "${common[@]}" --out "$OUT/$FAMILY-$split.md"
done
# Whether the critic ranks a problem's right answers above its wrong ones, the best of 8 by it.
"${CT[@]}" critic-probe "${models[@]}" "${P[@]}" --limit 300 --samples 8 --device cpu \
  > "$OUT/$FAMILY-critic-probe.md"
if [ "$FAMILY" = countdown ]; then
  "${CT[@]}" eval "${models[@]}" "${P[@]}" --deliberate off,sync --simulations "$SIMS" --guidance 1 \
    "${common[@]}" --out "$OUT/countdown-guidance1.md"
  "${CT[@]}" eval --model "runs/$FAMILY/crsm" "${P[@]}" --limit 300 --deliberate off,async --lag 1 \
    --simulations "$SIMS" "${common[@]}" --out "$OUT/countdown-latency-interleaved.md"
fi
# ARC: the ARC-AGI-1 evaluation pairs that fit 2,048 characters (one attempt counts).
if [ "$FAMILY" = arc ]; then
  "${CT[@]}" tasks arc-agi --out "$TASKS/arc-agi-evaluation.jsonl"
  "${CT[@]}" eval "${models[@]}" --tasks "$TASKS/arc-agi-evaluation.jsonl" --deliberate off,sync \
    --simulations "$SIMS" --max-answer-tokens 512 "${common[@]}" --out "$OUT/arc-agi-evaluation.md"
fi
