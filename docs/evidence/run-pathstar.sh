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
# Whether the critic ranks a graph's right answers above its wrong ones (8 samples each), and
# the best of 8 by its value.
"${CT[@]}" critic-probe "${grid[@]}" "${P[@]}" --samples 8 --device cpu > $OUT/pathstar-critic-probe.md
# Latency with nothing else running: seed 0, 300 problems, variants interleaved; with nothing
# applied; and a plain generation alone and beside a second one that keeps the other core busy.
L=(--model runs/pathstar/crsm "${P[@]}" --simulations "$SIMS" "${common[@]}")
"${CT[@]}" eval "${L[@]}" --deliberate off,async --lag 1 --out $OUT/pathstar-latency-interleaved.md
"${CT[@]}" eval "${L[@]}" --deliberate off,async --lag 1 --injection-rate 0 --guidance 0 \
  --out $OUT/pathstar-latency-nothing-applied.md
"${CT[@]}" eval "${L[@]}" --deliberate off --out $OUT/pathstar-off-alone.md
"${CT[@]}" eval "${L[@]}" --deliberate off --seeds 6 --json > /dev/null &
sleep 1.5
"${CT[@]}" eval "${L[@]}" --deliberate off --out $OUT/pathstar-off-beside-a-busy-core.md
wait
