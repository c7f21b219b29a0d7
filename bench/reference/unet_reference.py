#!/usr/bin/python3
"""PyTorch-eager reference for the diffusers-layout UNets (bench/bench_unet.cpp's counterpart).

Our own compact implementation of diffusers v0.21's UNet2DConditionModel and UNet2DModel structure (same
module tree and parameter names), run on Debian's torch. It first proves itself on the unet2d_forward
conformance fixtures, then times training steps of the same small UNets the C++ benchmark times.

  unet_reference.py check [--fixtures DIR]            every unet2d_forward fixture must match
  unet_reference.py bench [--batch 4] [--size 32] [--iters 5] [--warmup 2] [--threads N]
                                                      ms per training step (forward, MSE, backward, AdamW)
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import read_safetensors, set_threads, time_steps

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "conformance")

# The two UNets both benchmarks time (keep in sync with bench/bench_unet.cpp).
BENCH_CONFIGS = {
    "sd-shaped": {"_class_name": "UNet2DConditionModel", "block_out_channels": [64, 128, 256],
                  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                  "layers_per_block": 1, "attention_head_dim": 4, "cross_attention_dim": 64,
                  "norm_num_groups": 32, "in_channels": 4, "out_channels": 4},
    "classcond": {"_class_name": "UNet2DModel", "block_out_channels": [64, 128, 256],
                  "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
                  "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
                  "layers_per_block": 1, "attention_head_dim": 32, "num_class_embeds": 10,
                  "norm_num_groups": 32, "in_channels": 4, "out_channels": 4},
}
BENCH_CONTEXT_TOKENS = 16


def timestep_embedding(t, dim, flip=True, shift=0.0):
    half = dim // 2
    exponent = -math.log(10000.0) * torch.arange(0, half, dtype=torch.float32) / (half - shift)
    args = t.reshape(-1, 1).float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if flip:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(cin, dim), nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class Resnet(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Attention(nn.Module):
    def __init__(self, dim, heads, kv_dim=None, bias=False, groups=None, eps=1e-5):
        super().__init__()
        self.heads = heads
        self.group_norm = nn.GroupNorm(groups, dim, eps) if groups else None
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_k = nn.Linear(kv_dim or dim, dim, bias=bias)
        self.to_v = nn.Linear(kv_dim or dim, dim, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])

    def attend(self, h, ctx):
        b = h.shape[0]
        split = lambda t: t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2)
        q, k, v = split(self.to_q(h)), split(self.to_k(ctx)), split(self.to_v(ctx))
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
        return self.to_out[0]((w @ v).transpose(1, 2).reshape(b, -1, self.heads * q.shape[-1]))

    def forward(self, x, ctx=None):
        if x.dim() == 4:  # spatial self-attention with its own norm and residual
            b, c, hh, ww = x.shape
            h = self.group_norm(x.reshape(b, c, hh * ww)).transpose(1, 2)
            return self.attend(h, h).transpose(1, 2).reshape(b, c, hh, ww) + x
        return self.attend(x, x if ctx is None else ctx)


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class TransformerBlock(nn.Module):
    def __init__(self, dim, heads, cross_dim):
        super().__init__()
        self.norm1, self.attn1 = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.attn2 = nn.LayerNorm(dim), Attention(dim, heads, cross_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = nn.Module()
        self.ff.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim)])

    def forward(self, x, ctx):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), ctx)
        return x + self.ff.net[2](self.ff.net[0](self.norm3(x)))


class Transformer2D(nn.Module):
    def __init__(self, ch, heads, cross_dim, layers, groups, linear):
        super().__init__()
        self.linear = linear
        self.norm = nn.GroupNorm(groups, ch, 1e-6)
        self.proj_in = nn.Linear(ch, ch) if linear else nn.Conv2d(ch, ch, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(ch, heads, cross_dim) for _ in range(layers)])
        self.proj_out = nn.Linear(ch, ch) if linear else nn.Conv2d(ch, ch, 1)

    def forward(self, x, ctx):
        b, c, hh, ww = x.shape
        h = self.norm(x)
        if not self.linear:
            h = self.proj_in(h)
        h = h.permute(0, 2, 3, 1).reshape(b, hh * ww, c)
        if self.linear:
            h = self.proj_in(h)
        for block in self.transformer_blocks:
            h = block(h, ctx)
        if self.linear:
            h = self.proj_out(h)
        h = h.reshape(b, hh, ww, c).permute(0, 3, 1, 2)
        if not self.linear:
            h = self.proj_out(h)
        return h + x


class Sampler(nn.Module):
    def __init__(self, ch, down):
        super().__init__()
        self.down = down
        self.conv = nn.Conv2d(ch, ch, 3, stride=2 if down else 1, padding=1)

    def forward(self, x):
        return self.conv(x if self.down else F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Block(nn.Module):
    """A down, mid or up block: resnets, optional attentions, optional sampler."""

    def __init__(self, kind, resnet_ins, cout, temb, groups, eps, attn, sampler=None):
        super().__init__()
        self.kind = kind
        self.resnets = nn.ModuleList([Resnet(cin, cout, temb, groups, eps) for cin in resnet_ins])
        if attn is not None:
            self.attentions = nn.ModuleList([attn() for _ in range(len(resnet_ins) - (kind == "mid"))])
        else:
            self.attentions = None
        if sampler == "down":
            self.downsamplers = nn.ModuleList([Sampler(cout, True)])
        elif sampler == "up":
            self.upsamplers = nn.ModuleList([Sampler(cout, False)])

    def run_attn(self, i, h, ctx):
        if self.attentions is None:
            return h
        a = self.attentions[i]
        return a(h, ctx) if isinstance(a, Transformer2D) else a(h)

    def forward(self, h, temb, ctx, skips=None):
        if self.kind == "mid":
            h = self.resnets[0](h, temb)
            for i, r in enumerate(self.resnets[1:]):
                h = r(self.run_attn(i, h, ctx), temb)
            return h
        outs = []
        for i, r in enumerate(self.resnets):
            if self.kind == "up":
                h = torch.cat([h, skips.pop()], dim=1)
            h = self.run_attn(i, r(h, temb), ctx)
            outs.append(h)
        if hasattr(self, "downsamplers"):
            h = self.downsamplers[0](h)
            outs.append(h)
        if hasattr(self, "upsamplers"):
            h = self.upsamplers[0](h)
        return h, outs


def per_block(value, n):
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


class UNet(nn.Module):
    """UNet2DConditionModel (conditional=True) or UNet2DModel, for the configs of the fixtures and the bench."""

    def __init__(self, cfg):
        super().__init__()
        self.conditional = cfg.get("_class_name", "UNet2DConditionModel") == "UNet2DConditionModel"
        boc, n = cfg["block_out_channels"], len(cfg["block_out_channels"])
        groups, eps = cfg.get("norm_num_groups", 32), cfg.get("norm_eps", 1e-5)
        temb = 4 * boc[0]
        layers = per_block(cfg.get("layers_per_block", 2), n)
        heads = per_block(cfg.get("attention_head_dim", 8), n)  # cross-attention heads (diffusers' quirk)
        tlayers = per_block(cfg.get("transformer_layers_per_block", 1), n)
        cross = cfg.get("cross_attention_dim")
        linear = cfg.get("use_linear_projection", False)
        self.conv_in = nn.Conv2d(cfg["in_channels"], boc[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(boc[0], temb)
        if cfg.get("num_class_embeds"):
            self.class_embedding = nn.Embedding(cfg["num_class_embeds"], temb)
        self.text_time = cfg.get("addition_embed_type") == "text_time"
        if self.text_time:
            self.add_time_dim = cfg["addition_time_embed_dim"]
            self.add_embedding = TimestepEmbedding(cfg["projection_class_embeddings_input_dim"], temb)

        def attention(kind, ch, i):
            if "CrossAttn" in kind:
                return lambda: Transformer2D(ch, heads[i], cross, tlayers[i], groups, linear)
            if kind.startswith("Attn"):
                return lambda: Attention(ch, ch // cfg.get("attention_head_dim", 8), None, True, groups, eps)
            return None

        self.down_blocks = nn.ModuleList()
        out = boc[0]
        for i, kind in enumerate(cfg["down_block_types"]):
            cin, out = out, boc[i]
            ins = [cin] + [out] * (layers[i] - 1)
            self.down_blocks.append(Block("down", ins, out, temb, groups, eps, attention(kind, out, i),
                                          "down" if i < n - 1 else None))
        mid_attn = (lambda: Transformer2D(boc[-1], heads[-1], cross, tlayers[-1], groups, linear)) \
            if self.conditional else (lambda: Attention(boc[-1], boc[-1] // cfg.get("attention_head_dim", 8),
                                                        None, True, groups, eps))
        self.mid_block = Block("mid", [boc[-1]] * 2, boc[-1], temb, groups, eps, mid_attn)
        self.up_blocks = nn.ModuleList()
        out = boc[-1]
        for i, kind in enumerate(cfg["up_block_types"]):
            prev, out, cin = out, boc[n - 1 - i], boc[max(n - 2 - i, 0)]
            k = layers[n - 1 - i] + 1
            ins = [(prev if j == 0 else out) + (cin if j == k - 1 else out) for j in range(k)]
            self.up_blocks.append(Block("up", ins, out, temb, groups, eps, attention(kind, out, n - 1 - i),
                                        "up" if i < n - 1 else None))
        self.conv_norm_out = nn.GroupNorm(groups, boc[0], eps)
        self.conv_out = nn.Conv2d(boc[0], cfg["out_channels"], 3, padding=1)
        self.boc0 = boc[0]

    def forward(self, x, t, ctx=None, class_labels=None, text_embeds=None, time_ids=None):
        emb = self.time_embedding(timestep_embedding(t.expand(x.shape[0]), self.boc0))
        if hasattr(self, "class_embedding"):
            emb = emb + self.class_embedding(class_labels)
        if self.text_time:
            tid = timestep_embedding(time_ids.flatten(), self.add_time_dim).reshape(x.shape[0], -1)
            emb = emb + self.add_embedding(torch.cat([text_embeds, tid], dim=-1))
        h = self.conv_in(x)
        skips = [h]
        for block in self.down_blocks:
            h, outs = block(h, emb, ctx)
            skips += outs
        h = mid = self.mid_block(h, emb, ctx)
        for block in self.up_blocks:
            h, _ = block(h, emb, ctx, skips)
        return self.conv_out(F.silu(self.conv_norm_out(h))), mid


def check(fixture_dir):
    names = sorted(f for f in os.listdir(fixture_dir) if f.endswith(".safetensors"))
    checked = 0
    for name in names:
        tensors, meta = read_safetensors(os.path.join(fixture_dir, name))
        if meta.get("kind") != "unet2d_forward":
            continue
        cfg = json.loads(meta["config"])
        cfg["_class_name"] = meta.get("class", "UNet2DConditionModel")
        model = UNet(cfg).eval()
        state = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
        model.load_state_dict(state, strict=True)
        with torch.no_grad():
            sample, mid = model(tensors["in.sample"], tensors["in.timestep"], tensors.get("in.encoder_hidden_states"),
                                tensors.get("in.class_labels"), tensors.get("in.text_embeds"),
                                tensors.get("in.time_ids"))
        atol, rtol = float(meta["atol"]), float(meta["rtol"])
        worst = 0.0
        for got, key in ((sample, "out.sample"), (mid, "out.mid_block")):
            want = tensors[key]
            err = (got.double() - want.double()).abs()
            worst = max(worst, err.max().item())
            if got.shape != want.shape or bool((err > atol + rtol * want.double().abs()).any()):
                print(f"reference check FAILED on {name} ({key}): max error {err.max().item():.3e}")
                sys.exit(1)
        print(f"reference check: {name} max error {worst:.3e} PASS")
        checked += 1
    if not checked:
        print(f"reference check: no unet2d_forward fixtures in {fixture_dir}")
        sys.exit(1)


def bench(args):
    set_threads(args.threads)
    for name, cfg in BENCH_CONFIGS.items():
        torch.manual_seed(0)
        model = UNet(cfg).train()
        params = sum(p.numel() for p in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        b, s = args.batch, args.size
        x = torch.randn(b, cfg["in_channels"], s, s)
        noise = torch.randn_like(x)
        t = torch.randint(0, 1000, (b,))
        ctx = torch.randn(b, BENCH_CONTEXT_TOKENS, cfg["cross_attention_dim"]) if "cross_attention_dim" in cfg else None
        labels = torch.randint(0, cfg.get("num_class_embeds") or 1, (b,))

        def step():
            opt.zero_grad(set_to_none=True)
            pred, mid = model(x, t, ctx, labels if "num_class_embeds" in cfg else None)
            loss = F.mse_loss(pred, noise) + 0.0 * mid.mean()
            loss.backward()
            opt.step()

        times = time_steps(step, args.warmup, args.iters)
        print(f"pytorch-eager {name:10s} params {params:9d}  batch {b} {s}x{s}: median {times.median_ms:8.1f}"
              f" ms/step, min {times.min_ms:8.1f}, cpu {times.median_cpu_ms:8.1f} ms/step"
              f"  (torch {torch.__version__}, {torch.get_num_threads()} threads)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("--fixtures", default=DEFAULT_FIXTURES)
    b = sub.add_parser("bench")
    b.add_argument("--batch", type=int, default=4)
    b.add_argument("--size", type=int, default=32)
    b.add_argument("--iters", type=int, default=5)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.command == "check":
        check(args.fixtures)
    else:
        bench(args)


if __name__ == "__main__":
    main()
