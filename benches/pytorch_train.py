#!/usr/bin/env python3
"""Training tokens/s of PyTorch models the size of `crsm-train bench train`'s default, on the CPU.

The counterpart of `crsm-train bench train --device cpu` for benches/train_side_by_side.sh: batch
8 x 256 random tokens, vocab 256, forward + backward (next-token cross-entropy) + AdamW, timed the
same way (--warmup untimed steps, 2 by default, then at least --steps steps and 3 seconds), on --threads CPU threads.

Models:
  mamba-hf         transformers' MambaForCausalLM (d 256, 4 layers, d_state 16, expand 2) as it
                   runs on CPU by default: `slow_forward`, a Python loop over time steps.
  mamba-hf-pscan   the same with `use_mambapy=True`: mambapy's parallel scan (Blelloch-style, in
                   PyTorch ops) instead of the loop. Skipped when mambapy is not installed.
  gpt2             a causal Transformer of about the same size (GPT2LMHeadModel: d 256, 4 layers,
                   4 heads, MLP width 320, 256 positions: ~1.8M parameters).

Prints one JSON line per model: {"model", "tokens_per_s", "ms_per_step", "params", "threads"}.

Install: pip install torch transformers mambapy   (mambapy only for mamba-hf-pscan)
"""

import argparse
import json
import time

import torch


def mamba(use_mambapy):
    from transformers import MambaConfig, MambaForCausalLM

    cfg = MambaConfig(
        vocab_size=256,
        hidden_size=256,
        num_hidden_layers=4,
        state_size=16,
        expand=2,
        conv_kernel=4,
        use_mambapy=use_mambapy,
        tie_word_embeddings=True,
    )
    return MambaForCausalLM(cfg)


def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=256,
        n_positions=256,
        n_embd=256,
        n_layer=4,
        n_head=4,
        n_inner=320,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return GPT2LMHeadModel(cfg)


def have_mambapy():
    try:
        import mambapy.pscan  # noqa: F401

        return True
    except ImportError:
        return False


def bench(model, batch, seq, steps, warmup, min_seconds):
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(0, 256, (batch, seq), generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        # labels=ids: transformers shifts them, so this is next-token cross-entropy.
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    n = 0
    while n < steps or time.perf_counter() - start < min_seconds:
        step()
        n += 1
    return (time.perf_counter() - start) / n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default="mamba-hf,mamba-hf-pscan,gpt2")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    builders = {
        "mamba-hf": lambda: mamba(False),
        "mamba-hf-pscan": lambda: mamba(True),
        "gpt2": gpt2,
    }
    for name in args.models.split(","):
        if name == "mamba-hf-pscan" and not have_mambapy():
            print(json.dumps({"model": name, "skipped": "mambapy is not installed"}), flush=True)
            continue
        model = builders[name]()
        params = sum(t.numel() for t in model.parameters())
        s = bench(model, args.batch, args.seq, args.steps, args.warmup, 3.0)
        print(
            json.dumps(
                {
                    "model": name,
                    "tokens_per_s": args.batch * args.seq / s,
                    "ms_per_step": s * 1e3,
                    "params": params,
                    "threads": args.threads,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
