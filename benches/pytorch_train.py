#!/usr/bin/env python3
"""Training tokens/s of PyTorch models the size of `crsm-train bench train`'s default, on the CPU.

The counterpart of `crsm-train bench train --device cpu` for benches/train_side_by_side.sh: batch
8 x 256 random tokens, vocab 256, forward + backward (next-token cross-entropy) + AdamW, timed the
same way (--warmup untimed steps, 2 by default, then at least --steps steps and 3 seconds, the
median step reported), on --threads CPU threads.

Models:
  mamba-hf         transformers' MambaForCausalLM (d 256, 4 layers, d_state 16, expand 2) as it
                   runs on CPU by default: `slow_forward`, a Python loop over time steps.
  mamba-hf-pscan   the same with `use_mambapy=True`: mambapy's parallel scan (Blelloch-style, in
                   PyTorch ops) instead of the loop. Skipped when mambapy is not installed.
  mamba-fn         the same Mamba-1 written here in plain PyTorch, its selective scan one
                   autograd.Function: a sequential loop over time for the states (the only serial
                   part), everything else batched over [B, L, E, N], and a hand-written backward,
                   so autograd records one node per scan instead of one per time step. The
                   fastest CPU Mamba training we could write in PyTorch (`--check` tests its
                   gradient against autograd with gradcheck in float64).
  gpt2             a causal Transformer of about the same size (GPT2LMHeadModel: d 256, 4 layers,
                   4 heads, MLP width 320, as many positions as --seq: ~1.8M parameters).

Prints one JSON line per model: {"model", "tokens_per_s", "ms_per_step", "params", "threads",
"batch", "seq"}.

Install: pip install torch transformers mambapy   (mambapy only for mamba-hf-pscan)
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn


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


class SelectiveScan(torch.autograd.Function):
    """y = silu(z) * (C . h_t + D u), h_t = exp(delta A) h_{t-1} + delta B u (mamba-ssm's
    selective_scan_ref). u, delta, z: [b, l, e]; A: [e, n]; B, C: [b, l, n]; D: [e]."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z):
        b, l, e = u.shape
        decay = torch.exp(delta.unsqueeze(-1) * A)  # [b, l, e, n]
        drive = (delta * u).unsqueeze(-1) * B.unsqueeze(2)  # [b, l, e, n]
        hs = torch.empty_like(decay)
        h = torch.zeros_like(decay[:, 0])
        for t in range(l):
            h = torch.addcmul(drive[:, t], decay[:, t], h)
            hs[:, t] = h
        y = (hs @ C.unsqueeze(-1)).squeeze(-1) + D * u
        ctx.save_for_backward(u, delta, A, B, C, D, z, decay, hs)
        return y * F.silu(z)

    @staticmethod
    def backward(ctx, g):
        u, delta, A, B, C, D, z, decay, hs = ctx.saved_tensors
        sz = torch.sigmoid(z)
        y = (hs @ C.unsqueeze(-1)).squeeze(-1) + D * u
        dz = g * y * sz * (1 + z * (1 - sz))
        gy = g * z * sz
        dC = (hs * gy.unsqueeze(-1)).sum(2)
        dD = (gy * u).sum((0, 1))
        du = gy * D
        into = gy.unsqueeze(-1) * C.unsqueeze(2)  # dL/dh_t from y_t: [b, l, e, n]
        dhs = torch.empty_like(hs)
        dh = torch.zeros_like(hs[:, 0])
        for t in reversed(range(u.shape[1])):
            dh = dh + into[:, t]
            dhs[:, t] = dh
            dh = dh * decay[:, t]
        h_prev = torch.cat([torch.zeros_like(hs[:, :1]), hs[:, :-1]], 1)
        through_decay = dhs * h_prev * decay  # d/d(delta A) of exp(delta A) h_{t-1}
        ddelta = (through_decay * A).sum(-1)
        dA = (through_decay * delta.unsqueeze(-1)).sum((0, 1))
        dh_b = (dhs * B.unsqueeze(2)).sum(-1)  # sum_n dh B: [b, l, e]
        ddelta = ddelta + dh_b * u
        du = du + dh_b * delta
        dB = (dhs * (delta * u).unsqueeze(-1)).sum(2)
        return du, ddelta, dA, dB, dC, dD, dz


class MambaBlock(nn.Module):
    """x + Mixer(RMSNorm(x)), HF's MambaMixer with the scan above."""

    def __init__(self, d, e, n, r, k):
        super().__init__()
        self.e, self.n, self.r = e, n, r
        self.norm = nn.RMSNorm(d, eps=1e-5)
        self.in_proj = nn.Linear(d, 2 * e, bias=False)
        self.conv1d = nn.Conv1d(e, e, k, groups=e, padding=k - 1)
        self.x_proj = nn.Linear(e, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, e)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(e, 1))
        self.D = nn.Parameter(torch.ones(e))
        self.out_proj = nn.Linear(e, d, bias=False)

    def forward(self, x):
        l = x.shape[1]
        xb, z = self.in_proj(self.norm(x)).chunk(2, -1)
        u = F.silu(self.conv1d(xb.transpose(1, 2))[..., :l].transpose(1, 2))
        dt, B, C = self.x_proj(u).split([self.r, self.n, self.n], -1)
        delta = F.softplus(self.dt_proj(dt))
        y = SelectiveScan.apply(u, delta, -torch.exp(self.A_log), B, C, self.D, z)
        return x + self.out_proj(y)


class MambaFn(nn.Module):
    """The whole model (tied embeddings) with a next-token loss, called as transformers' models are."""

    def __init__(self, vocab=256, d=256, layers=4, n=16, expand=2, k=4):
        super().__init__()
        e, r = expand * d, math.ceil(d / 16)
        self.embeddings = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(MambaBlock(d, e, n, r, k) for _ in range(layers))
        self.norm_f = nn.RMSNorm(d, eps=1e-5)

    def forward(self, input_ids, labels):
        x = self.embeddings(input_ids)
        for block in self.layers:
            x = block(x)
        logits = self.norm_f(x) @ self.embeddings.weight.t()
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        return type("Output", (), {"loss": loss})


def check_scan_gradient():
    """gradcheck of SelectiveScan's hand-written backward against finite differences (float64)."""
    g = torch.Generator().manual_seed(3)
    b, l, e, n = 2, 5, 3, 4
    r = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)
    args = (r(b, l, e) - 0.5, r(b, l, e) * 0.5 + 0.05, -r(e, n) - 0.5, r(b, l, n) - 0.5,
            r(b, l, n) - 0.5, r(e), r(b, l, e) - 0.5)
    args = tuple(a.requires_grad_() for a in args)
    assert torch.autograd.gradcheck(SelectiveScan.apply, args), "SelectiveScan backward is wrong"
    print(json.dumps({"check": "SelectiveScan gradcheck passed"}))


def gpt2(seq):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=256,
        n_positions=seq,
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
    times = []
    while len(times) < steps or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default="mamba-hf,mamba-hf-pscan,mamba-fn,gpt2")
    p.add_argument("--check", action="store_true", help="gradcheck mamba-fn's scan and exit")
    args = p.parse_args()
    if args.check:
        check_scan_gradient()
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    builders = {
        "mamba-hf": lambda: mamba(False),
        "mamba-hf-pscan": lambda: mamba(True),
        "mamba-fn": MambaFn,
        "gpt2": lambda: gpt2(args.seq),
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
                    "batch": args.batch,
                    "seq": args.seq,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
