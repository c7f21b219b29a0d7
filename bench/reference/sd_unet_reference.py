#!/usr/bin/python3
"""PyTorch-eager reference for bench/bench_sd_unet.cpp: SD-shaped and SDXL-shaped UNet2DConditionModel training
steps, full fine-tuning or LoRA, and the peak resident memory of one full-size SDXL LoRA step.

The UNet is unet_reference.py's (diffusers v0.21's module tree and names, SDXL's text_time addition embedding,
transformer_layers_per_block, linear projections), which `check` first proves on the unet2d_forward fixtures.
The LoRA is peft's plain one, y = W x + b + (alpha / r) B A x with A kaiming-uniform (a = sqrt(5)), B zero, on the
modules named to_q, to_k, to_v, to_out.0, the base frozen and AdamW on the adapters only. Gradient checkpointing
wraps every ResNet block and every transformer block in torch.utils.checkpoint (non-reentrant), the granularity of
diffusers' UNet blocks and of the studio's.

  sd_unet_reference.py check [--fixtures DIR]
  sd_unet_reference.py bench --case sd|sdxl|sdxl_full_size [--mode full|lora] [--size 64] [--batch 1] [--iters 3]
                             [--warmup 1] [--threads N] [--checkpointing]
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import unet_reference as ref  # noqa: E402
from common import peak_rss_mib, set_threads, time_steps  # noqa: E402

# Keep in sync with bench/bench_sd_unet.cpp.
_XL = {"down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
       "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
       "block_out_channels": [320, 640, 1280], "attention_head_dim": [5, 10, 20], "cross_attention_dim": 2048,
       "use_linear_projection": True, "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
       "projection_class_embeddings_input_dim": 2816, "norm_num_groups": 32, "in_channels": 4, "out_channels": 4}
CASES = {
    "sd": {"block_out_channels": [320, 640, 1280, 1280],
           "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
           "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
           "layers_per_block": 1, "attention_head_dim": 8, "cross_attention_dim": 768,
           "norm_num_groups": 32, "in_channels": 4, "out_channels": 4},
    "sdxl": dict(_XL, layers_per_block=1, transformer_layers_per_block=[1, 1, 2]),
    "sdxl_full_size": dict(_XL, layers_per_block=2, transformer_layers_per_block=[1, 2, 10]),
}
TOKENS = 77
POOLED = 1280  # SDXL's pooled text embedding; 1280 + 6 * 256 = 2816
TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


class LoraLinear(nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / rank

    def forward(self, x):
        return self.base(x) + self.scaling * self.lora_B(self.lora_A(x))


def add_lora(model, rank=16, alpha=16.0):
    for p in model.parameters():
        p.requires_grad_(False)
    paths = [name for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and any(name == t or name.endswith("." + t) for t in TARGETS)]
    for path in paths:
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path)
        wrapped = LoraLinear(getattr(parent, child) if not child.isdigit() else parent[int(child)], rank, alpha)
        if child.isdigit():
            parent[int(child)] = wrapped
        else:
            setattr(parent, child, wrapped)
    adapters = [p for name, p in model.named_parameters() if ".lora_" in name]
    return paths, adapters


def enable_checkpointing(model):
    for m in model.modules():
        if isinstance(m, (ref.Resnet, ref.TransformerBlock)):
            inner = m.forward

            def run(*args, _inner=inner, _m=m):
                if _m.training and torch.is_grad_enabled():
                    return checkpoint(_inner, *args, use_reentrant=False)
                return _inner(*args)

            m.forward = run


def bench(args):
    set_threads(args.threads)
    cfg = CASES[args.case]
    xl = args.case != "sd"
    torch.manual_seed(0)
    build_start = time.perf_counter()
    model = ref.UNet(cfg)
    build_s = time.perf_counter() - build_start
    params = sum(p.numel() for p in model.parameters())
    model.train()
    if args.checkpointing:
        enable_checkpointing(model)
    if args.mode == "lora":
        _, trainable = add_lora(model)
    else:
        trainable = list(model.parameters())
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    b, s = args.batch, args.size
    x = torch.randn(b, 4, s, s)
    noise = torch.randn_like(x)
    t = torch.randint(0, 1000, (b,))
    ctx = torch.randn(b, TOKENS, cfg["cross_attention_dim"])
    text_embeds = torch.randn(b, POOLED) if xl else None
    px = float(8 * s)
    time_ids = torch.tensor([px, px, 0.0, 0.0, px, px]).repeat(b, 1) if xl else None

    def step():
        opt.zero_grad(set_to_none=True)
        pred, _ = model(x, t, ctx, None, text_embeds, time_ids)
        F.mse_loss(pred, noise).backward()
        opt.step()

    rss_built = peak_rss_mib()
    times = time_steps(step, args.warmup, args.iters)
    print(f"pytorch-eager {args.case:14s} {args.mode:4s} params {params:10d} trainable "
          f"{sum(p.numel() for p in trainable):10d} batch {b} {s}x{s}{' ckpt' if args.checkpointing else ''}: "
          f"median {times.median_ms:9.1f} ms/step, min {times.min_ms:9.1f}, "
          f"cpu {times.median_cpu_ms:9.1f} ms/step, peak rss {peak_rss_mib():.0f} MiB (built {rss_built:.0f} MiB "
          f"in {build_s:.1f} s; after each step: {' '.join(str(int(p)) for p in times.rss_mib)})  "
          f"(torch {torch.__version__}, {torch.get_num_threads()} threads)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("--fixtures", default=ref.DEFAULT_FIXTURES)
    b = sub.add_parser("bench")
    b.add_argument("--case", required=True, choices=sorted(CASES))
    b.add_argument("--mode", default="full", choices=["full", "lora"])
    b.add_argument("--size", type=int, default=64)
    b.add_argument("--batch", type=int, default=1)
    b.add_argument("--iters", type=int, default=3)
    b.add_argument("--warmup", type=int, default=1)
    b.add_argument("--threads", type=int, default=0)
    b.add_argument("--checkpointing", action="store_true")
    args = parser.parse_args()
    if args.command == "check":
        ref.check(args.fixtures)
    else:
        bench(args)


if __name__ == "__main__":
    main()
