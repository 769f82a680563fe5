#!/usr/bin/env bash
# Training tokens/s of crsm and of PyTorch models of the same size, side by side, and a table of
# ratios. Shape: `crsm-train bench train`'s default (d 256, 4 layers, d_state 16, expand 2, vocab
# 256) at 2048 tokens per step, as batch 8 x 256 and, where a linear-time model should pull
# ahead of attention, 2 x 1024 and 1 x 2048 (SEQS); PyTorch on as many threads as the machine has.
#
#   PYTHON=/path/to/python benches/train_side_by_side.sh     # python with torch, transformers, mambapy
#
# Fair to both sides:
# - one allocator policy: crsm-train sets glibc's mmap threshold to 32 MiB and never trims
#   (crsm-train/src/allocator.rs); PyTorch's process gets the same through glibc's environment
#   variables (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_);
# - the same warm-up (WARMUP untimed steps) and timing: at least STEPS steps and 3 s, each step
#   timed alone, the median step reported;
# - one statistic per ratio: every crsm run of a shape (two per round, one on each side of the
#   PyTorch run, since this machine's speed drifts minute to minute) and every PyTorch run of a
#   model are pooled, and the ratio is the ratio of the two pooled medians.
# Run it on a quiet machine: both sides are CPU-bound and share the cores with anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-5}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
SEQS=${SEQS:-256 1024 2048}
TOKENS=${TOKENS:-2048}
# transformers' own Mamba (mamba-hf, a Python loop over time) takes minutes per step here.
MODELS=${MODELS:-mamba-hf-pscan,mamba-fn,gpt2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cargo build --release -p crsm-train >&2
bin=target/release/crsm-train
export MALLOC_MMAP_THRESHOLD_=$((32 << 20)) MALLOC_TRIM_THRESHOLD_=2147483647
"$PYTHON" benches/pytorch_train.py --check >&2
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
    for seq in $SEQS; do
        batch=$((TOKENS / seq))
        echo "round $round of $ROUNDS, batch $batch x $seq" >&2
        crsm() {
            RAYON_NUM_THREADS=$THREADS "$bin" bench train --device cpu --batch "$batch" --seq "$seq" \
                --steps "$STEPS" --warmup "$WARMUP" --json >>"$out/crsm-$seq.jsonl"
        }
        crsm
        HF_HUB_OFFLINE=1 "$PYTHON" benches/pytorch_train.py --threads "$THREADS" --steps "$STEPS" \
            --warmup "$WARMUP" --models "$MODELS" --batch "$batch" --seq "$seq" \
            2> >(grep -v '^\[transformers\]' >&2) >>"$out/torch-$seq.jsonl"
        crsm
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$PYTHON" - "$out" "$SEQS" <<'PY'
import json, statistics, sys
out, seqs = sys.argv[1], sys.argv[2].split()
def lines(path):
    return [json.loads(l) for l in open(path) if l.strip()]
med = statistics.median
print("| batch x seq | crsm cpu tokens/s (runs) | PyTorch model | its tokens/s (runs) | crsm / it |")
print("|---|---|---|---|---|")
for seq in seqs:
    crsm = [r["tokens_per_s"] for r in lines(f"{out}/crsm-{seq}.jsonl")]
    torch = [t for t in lines(f"{out}/torch-{seq}.jsonl") if "tokens_per_s" in t]
    shape = f"{torch[0]['batch']} x {seq}" if torch else seq
    for model in dict.fromkeys(t["model"] for t in torch):
        theirs = [t["tokens_per_s"] for t in torch if t["model"] == model]
        print(f"| {shape} | {med(crsm):,.0f} ({len(crsm)}) | {model} | {med(theirs):,.0f} ({len(theirs)}) "
              f"| **{med(crsm) / med(theirs):.2f}x** |")
for seq in seqs:
    for t in lines(f"{out}/torch-{seq}.jsonl"):
        if "skipped" in t:
            print(f"(pytorch {t['model']} skipped at seq {seq}: {t['skipped']})")
PY
