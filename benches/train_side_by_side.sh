#!/usr/bin/env bash
# Training tokens/s of crsm and of PyTorch models of the same size, back to back in one run, and a
# table of the ratios (the issue's bar: crsm's cpu at 10x PyTorch's Mamba and on par with a
# same-size causal Transformer). Shape: `crsm-train bench train`'s default (batch 8 x 256, d 256,
# 4 layers, d_state 16, expand 2, vocab 256); PyTorch on as many threads as this machine has cores.
#
#   benches/train_side_by_side.sh            # PYTHON=/path/to/python with torch + transformers
#
# Run it on a quiet machine: both sides are CPU-bound and share the cores with anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-5}
# The transformers Mambas take minutes per step here: MODELS=gpt2 or WARMUP=1 STEPS=1 for a quick run.
WARMUP=${WARMUP:-2}
MODELS=${MODELS:-mamba-hf,mamba-hf-pscan,gpt2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cargo build --release -p crsm-train >&2
bin=target/release/crsm-train
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
RAYON_NUM_THREADS=$THREADS "$bin" bench train --device cpu --steps "$STEPS" --json >"$out/crsm.jsonl"
# A real GPU when one is present; lavapipe is for correctness only and is not timed here.
if "$bin" bench train --device gpu --steps "$STEPS" --json >>"$out/crsm.jsonl" 2>"$out/gpu.err"; then :; else
    echo "no GPU adapter: $(head -c 200 "$out/gpu.err")" >&2
fi
HF_HUB_OFFLINE=1 "$PYTHON" benches/pytorch_train.py --threads "$THREADS" --steps "$STEPS" \
    --warmup "$WARMUP" --models "$MODELS" \
    2> >(grep -v '^\[transformers\]' >&2) >"$out/torch.jsonl"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$PYTHON" - "$out/crsm.jsonl" "$out/torch.jsonl" <<'EOF'
import json, sys
crsm = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
torch = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
torch_ok = [t for t in torch if "tokens_per_s" in t]
rows = [("crsm " + c["device"], c["tokens_per_s"], c["params"], c["batch"] * c["seq"] / c["tokens_per_s"] * 1e3)
        for c in crsm]
rows += [("pytorch " + t["model"], t["tokens_per_s"], t["params"], t["ms_per_step"]) for t in torch_ok]
head = "| model | params | tokens/s | ms/step | " + " | ".join(
    "crsm / " + t["model"] for t in torch_ok) + " |"
print(head)
print("|" + "---|" * (4 + len(torch_ok)))
for name, tps, params, ms in rows:
    ratios = [f"{tps / t['tokens_per_s']:.2f}x" if name.startswith("crsm") else "" for t in torch_ok]
    print(f"| {name} | {params:,} | {tps:,.0f} | {ms:,.0f} | " + " | ".join(ratios) + " |")
for t in torch:
    if "skipped" in t:
        print(f"(pytorch {t['model']} skipped: {t['skipped']})")
EOF
