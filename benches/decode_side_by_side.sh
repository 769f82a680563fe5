#!/usr/bin/env bash
# Prefill and decode tokens/s of a mamba-130m-shaped random model (d 768, 24 layers, vocab 50280):
# crsm on the cpu with f32 and bf16 weights, and transformers' MambaForCausalLM on the cpu,
# side by side in ROUNDS rounds; then a markdown table with crsm's ratios to transformers.
#
#   PYTHON=/path/to/python benches/decode_side_by_side.sh     # python with torch, transformers
#
# Fair as benches/train_side_by_side.sh is: one allocator policy for both processes (glibc's mmap
# threshold 32 MiB, no trimming), the same warm-up and the median call on both sides, and one
# statistic per ratio: the pooled median of every run of each side in this run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-3}
PROMPT=${PROMPT:-512}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release -q -p crsm-train
bin=target/release/crsm-train
export MALLOC_MMAP_THRESHOLD_=$((32 << 20)) MALLOC_TRIM_THRESHOLD_=2147483647
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    for weights in f32 bf16; do
        RAYON_NUM_THREADS=$THREADS "$bin" bench decode --device cpu --weights "$weights" \
            --prompt "$PROMPT" --json >>"$out/crsm-$weights.jsonl"
    done
    "$PYTHON" benches/pytorch_decode.py --threads "$THREADS" --prompt "$PROMPT" >>"$out/torch.jsonl"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$PYTHON" - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def lines(path):
    return [json.loads(l) for l in open(path) if l.strip()]
med = statistics.median
torch = lines(f"{out}/torch.jsonl")
ref_pre = med(r["prefill_tokens_per_s"] for r in torch)
ref_dec = med(r["decode_tokens_per_s"] for r in torch)
print("| implementation | runs | prefill tokens/s | decode tokens/s | decode / f32 roofline | prefill vs transformers | decode vs transformers |")
print("|---|---|---|---|---|---|---|")
for w in ["f32", "bf16"]:
    rs = lines(f"{out}/crsm-{w}.jsonl")
    pre, dec = med(r["prefill_tokens_per_s"] for r in rs), med(r["decode_tokens_per_s"] for r in rs)
    # The roofline of the f32 weights' bytes, so the two rows compare on one scale.
    f32_bytes = lines(f"{out}/crsm-f32.jsonl")[0]["weight_bytes_per_token"]
    roof = med(r["copy_gb_per_s"] for r in rs) * 1e9 / f32_bytes
    print(f"| crsm cpu, {w} weights | {len(rs)} | {pre:,.0f} | {dec:.1f} | {dec / roof:.2f} | "
          f"{pre / ref_pre:.2f}x | {dec / ref_dec:.2f}x |")
print(f"| {torch[0]['implementation']}, cpu | {len(torch)} | {ref_pre:,.0f} | {ref_dec:.1f} | - | 1.00x | 1.00x |")
PY
