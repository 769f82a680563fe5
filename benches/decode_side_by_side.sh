#!/usr/bin/env bash
# Prefill and decode tokens/s of a mamba-130m-shaped random model: crsm on the cpu and on the
# adapter present (lavapipe when there is no GPU), then transformers on the cpu, back to back on
# one machine; prints a markdown table with crsm's ratio to transformers.
#   bash benches/decode_side_by_side.sh [PYTHON]     (PYTHON defaults to python3; needs torch, transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
THREADS=$(nproc)
cargo build --release -q -p crsm-train
BIN=target/release/crsm-train
rows=()
rows+=("$($BIN bench decode --device cpu --json 2>/dev/null)")
if gpu=$($BIN bench decode --device gpu --json 2>/dev/null); then rows+=("$gpu");
# lavapipe runs the same model (its 147 MiB embedding bound in two chunks under lavapipe's 128 MiB
# binding limit) with a short prompt: it is slow.
elif lvp=$($BIN bench decode --device lavapipe --prompt 64 --steps 8 --json 2>/dev/null); then rows+=("$lvp"); fi
rows+=("$($PY benches/pytorch_decode.py --threads "$THREADS" 2>/dev/null)")
printf '%s\n' "${rows[@]}" | $PY -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
ref = rows[-1]
print("| implementation | device | prompt | prefill tokens/s | decode tokens/s | prefill vs transformers | decode vs transformers |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    name = r.get("implementation", "crsm")
    pre, dec = r["prefill_tokens_per_s"], r["decode_tokens_per_s"]
    pre_ratio, dec_ratio = pre / ref["prefill_tokens_per_s"], dec / ref["decode_tokens_per_s"]
    device, prompt = r["device"], r["prompt"]
    if r.get("vocab", 50280) != 50280:
        device += " (vocab " + str(r["vocab"]) + ")"
    print(f"| {name} | {device} | {prompt} | {pre:.3g} | {dec:.3g} | {pre_ratio:.2f}x | {dec_ratio:.2f}x |")
'
