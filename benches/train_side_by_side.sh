#!/usr/bin/env bash
# Training tokens/s of crsm and of PyTorch models of the same size, back to back, and a table of
# the ratios (the issue's bar: crsm's cpu at 10x PyTorch's Mamba and on par with a same-size causal
# Transformer). Shape: `crsm-train bench train`'s default (batch 8 x 256, d 256, 4 layers, d_state
# 16, expand 2, vocab 256); PyTorch on as many threads as this machine has cores.
#
#   benches/train_side_by_side.sh            # PYTHON=/path/to/python with torch + transformers
#
# Each of ROUNDS rounds runs crsm, then the PyTorch models, then crsm again, and compares each
# PyTorch model with the mean of the two crsm runs around it: on a machine whose speed drifts from
# minute to minute (a shared VM), a ratio of runs far apart in time measures the drift. The table
# gives every round's ratios and their median. Run it on a quiet machine: both sides are CPU-bound
# and share the cores with anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-5}
ROUNDS=${ROUNDS:-3}
# The transformers Mambas take minutes per step here: MODELS=gpt2 or WARMUP=1 STEPS=1 for a quick run.
WARMUP=${WARMUP:-2}
MODELS=${MODELS:-mamba-hf,mamba-hf-pscan,gpt2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cargo build --release -p crsm-train >&2
bin=target/release/crsm-train
crsm_cpu() {
    RAYON_NUM_THREADS=$THREADS "$bin" bench train --device cpu --steps "$STEPS" --json
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# A real GPU when one is present (once; lavapipe is for correctness only and is not timed here).
if "$bin" bench train --device gpu --steps "$STEPS" --json >"$out/gpu.jsonl" 2>"$out/gpu.err"; then :; else
    echo "no GPU adapter: $(head -c 200 "$out/gpu.err")" >&2
fi
for round in $(seq "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    crsm_cpu >"$out/crsm-before-$round.json"
    HF_HUB_OFFLINE=1 "$PYTHON" benches/pytorch_train.py --threads "$THREADS" --steps "$STEPS" \
        --warmup "$WARMUP" --models "$MODELS" \
        2> >(grep -v '^\[transformers\]' >&2) >"$out/torch-$round.jsonl"
    crsm_cpu >"$out/crsm-after-$round.json"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$PYTHON" - "$out" "$ROUNDS" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def lines(path):
    try:
        return [json.loads(l) for l in open(path) if l.strip()]
    except FileNotFoundError:
        return []
per_round = []
for r in range(1, rounds + 1):
    before, after = lines(f"{out}/crsm-before-{r}.json")[0], lines(f"{out}/crsm-after-{r}.json")[0]
    crsm = (before["tokens_per_s"] + after["tokens_per_s"]) / 2
    torch = [t for t in lines(f"{out}/torch-{r}.jsonl") if "tokens_per_s" in t]
    per_round.append((before, after, crsm, torch))
models = [t["model"] for t in per_round[0][3]]
print("| round | crsm cpu tokens/s (before, after) | " + " | ".join(
    f"{m} tokens/s | crsm / {m}" for m in models) + " |")
print("|---|---|" + "---|---|" * len(models))
for r, (before, after, crsm, torch) in enumerate(per_round, 1):
    cells = [f"{t['tokens_per_s']:,.0f} | {crsm / t['tokens_per_s']:.2f}x" for t in torch]
    print(f"| {r} | {crsm:,.0f} ({before['tokens_per_s']:,.0f}, {after['tokens_per_s']:,.0f}) | "
          + " | ".join(cells) + " |")
med = statistics.median
cells = []
for i, m in enumerate(models):
    tps = [t[i]["tokens_per_s"] for *_, t in per_round]
    ratios = [c / t[i]["tokens_per_s"] for _, _, c, t in per_round]
    cells.append(f"{med(tps):,.0f} | **{med(ratios):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f})")
print(f"| median | {med(c for _, _, c, _ in per_round):,.0f} | " + " | ".join(cells) + " |")
first = per_round[0]
print(f"\ncrsm: {first[0]['params']:,} parameters, batch {first[0]['batch']} x {first[0]['seq']}; "
      + "; ".join(f"{t['model']}: {t['params']:,} parameters" for t in first[3]))
for g in lines(f"{out}/gpu.jsonl"):
    print(f"crsm {g['device']}: {g['tokens_per_s']:,.0f} tokens/s")
for t in lines(f"{out}/torch-1.jsonl"):
    if "skipped" in t:
        print(f"(pytorch {t['model']} skipped: {t['skipped']})")
EOF
