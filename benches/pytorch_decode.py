"""Prefill and decode tokens/s of transformers' MambaForCausalLM on the CPU, for comparison with
`crsm-train bench decode` (same shape, same prompt length, same way of timing).

    pip install torch transformers      # once; CPU wheels are enough
    python benches/pytorch_decode.py --threads 2 --prompt 512 --steps 32

Prints one JSON line: {"implementation": "transformers", "prefill_tokens_per_s": .., "decode_tokens_per_s": ..}.
The model is random (mamba-130m's shape by default: d 768, 24 layers, vocab 50280); speed does
not depend on the weights. Prefill is one forward over the prompt with a cache (the parallel
path); decode feeds one token at a time with that cache (the recurrent path), picking the argmax
each step as greedy generation does. The slow (pure PyTorch) path is what transformers runs on a
CPU: its CUDA kernels are not available there.
"""

import argparse
import json
import statistics
import time

import torch
from transformers import MambaConfig, MambaForCausalLM


def timed(work, warmup, min_iters, min_seconds):
    """Median seconds per call after `warmup` untimed calls (as crsm-train bench's time_per_call)."""
    for _ in range(warmup):
        work()
    start, times = time.perf_counter(), []
    while len(times) < min_iters or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--d-model", type=int, default=768)
    p.add_argument("--layers", type=int, default=24)
    p.add_argument("--vocab", type=int, default=50280)
    p.add_argument("--prompt", type=int, default=512)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    config = MambaConfig(vocab_size=a.vocab, hidden_size=a.d_model, num_hidden_layers=a.layers)
    model = MambaForCausalLM(config).eval()
    prompt = (torch.arange(a.prompt) * 7919 + 13) % a.vocab
    prompt = prompt.unsqueeze(0)

    with torch.no_grad():
        prefill_s = timed(lambda: model(prompt, use_cache=True), 1, 2, 2.0)
        out = model(prompt, use_cache=True)
        cache = out.cache_params
        next_id = out.logits[:, -1].argmax(-1, keepdim=True)

        def step():
            nonlocal next_id
            o = model(next_id, cache_params=cache, use_cache=True)
            next_id = o.logits[:, -1].argmax(-1, keepdim=True)

        step_s = timed(step, 3, a.steps, 2.0)

    print(json.dumps({
        "implementation": "transformers " + __import__("transformers").__version__ + ", torch " + torch.__version__,
        "device": "cpu",
        "threads": a.threads,
        "prompt": a.prompt,
        "prefill_tokens_per_s": a.prompt / prefill_s,
        "decode_tokens_per_s": 1.0 / step_s,
    }))


if __name__ == "__main__":
    main()
