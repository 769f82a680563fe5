#!/usr/bin/env bash
# Reproduces the path-star tables of docs/EVIDENCE.md: trains the reasoning config under each
# training seed (seed 0 is the config as shipped, in runs/pathstar; seed k in runs/pathstar-seedk),
# then evaluates. Settings of the planner were chosen on the `val` split, never on held-out ones.
#   SEEDS="0 1 2 3 4" (default)   training seeds of the headline comparison
#   GRID_SEEDS="0 1 2 3 4"        training seeds of the ablation grid
#   SIMS=8 TOPK=4                 the search the headline uses
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${SEEDS:-"0 1 2 3 4"}
GRID_SEEDS=${GRID_SEEDS:-"0 1 2 3 4"}
SIMS=${SIMS:-8}
TOPK=${TOPK:-4}
CT=(cargo run --release -q -p crsm-train --)
CONFIG=configs/reasoning-pathstar.json
OUT=docs/evidence
TASKS=runs/pathstar/tasks

model() { if [ "$1" = 0 ]; then echo runs/pathstar/crsm; else echo "runs/pathstar-seed$1/crsm"; fi; }
for k in $SEEDS; do
  if [ "$k" = 0 ]; then "${CT[@]}" full --config $CONFIG; else "${CT[@]}" full --config $CONFIG --seed "$k"; fi
done
models=(); for k in $SEEDS; do models+=(--model "$(model "$k")"); done
grid=(); for k in $GRID_SEEDS; do grid+=(--model "$(model "$k")"); done
common=(--plan-top-k "$TOPK" --device cpu)

# Headline: off against deliberation on 1,000 new graphs at the training parameters.
"${CT[@]}" eval "${models[@]}" --tasks $TASKS/held-out-same.jsonl --deliberate off,sync,async \
  --lag 1 --simulations "$SIMS" "${common[@]}" --out $OUT/pathstar-headline.md
# Held out by generator parameters: d = 3 and l = 6.
for split in d3 l6; do
  "${CT[@]}" eval "${models[@]}" --tasks $TASKS/held-out-$split.jsonl --deliberate off,sync \
    --simulations "$SIMS" "${common[@]}" --out $OUT/pathstar-$split.md
done
# The grid on 300 problems: modes and lags; steering; dynamics and leaf values; budgets.
P=(--tasks $TASKS/held-out-same.jsonl --limit 300)
"${CT[@]}" eval "${grid[@]}" "${P[@]}" --deliberate off,sync,async --lag 1,2,4 \
  --simulations "$SIMS" "${common[@]}" --out $OUT/pathstar-modes.md
"${CT[@]}" eval "${grid[@]}" "${P[@]}" --deliberate off,sync \
  --ablate none,no-injection,no-guidance,identity-dynamics,exact-dynamics,no-critic \
  --simulations "$SIMS" "${common[@]}" --out $OUT/pathstar-ablations.md
"${CT[@]}" eval "${grid[@]}" "${P[@]}" --deliberate off,sync --simulations 2,8,32 \
  "${common[@]}" --out $OUT/pathstar-budgets.md
# What a search with the exact model could gain: which arm the model's own likelihood prefers.
"${CT[@]}" arms "${models[@]}" --tasks $TASKS/held-out-same.jsonl --device cpu > $OUT/pathstar-arms.md
# Latency with nothing else running: seed 0, 300 problems.
"${CT[@]}" eval --model runs/pathstar/crsm "${P[@]}" --deliberate off,async,sync --lag 1 \
  --simulations "$SIMS" "${common[@]}" --out $OUT/pathstar-latency-quiet.md
