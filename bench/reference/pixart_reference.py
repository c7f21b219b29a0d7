#!/usr/bin/python3
"""PyTorch-eager PixArtTransformer2DModel (diffusers' semantics: adaLN-single, sin-cos positions for the input grid,
caption projection, masked cross-attention, learned-sigma output), our own code on Debian's torch 1.13, used as the
reference for bench/bench_pixart.cpp.

  pixart_reference.py check [FIXTURE_DIR]   compare with every pixart_transformer_forward fixture (sample and tap)
  pixart_reference.py bench [--batch 4] [--latent 32] [--depth 4] [--heads 6] [--head-dim 64] [--caption 4096]
                            [--tokens 300] [--tap 1] [--iters 5] [--warmup 1] [--threads N]

`bench` times the step bench_pixart times, the one the studio's pixart runs take: epsilon noising on PixArt-Σ's
linear betas (1e-4 .. 0.02, 1000 steps) at uniform integer steps, forward in train mode on T5-shaped caption states
(`tokens` x `caption`) with a padding mask, the block `tap` kept, the first half of the 8 output channels (the noise;
the variance half is dropped as SimpleTuner does) against the noise by MSE, backward, AdamW (lr 1e-4, no weight
decay); weights drawn from N(0, 0.02).
"""
import argparse
import glob
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import read_safetensors, set_threads, time_steps  # noqa: E402

DEFAULT_FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "text2image")


def sinusoid(t, dim=256):
    # Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0): cos first.
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def positions(dim, grid_h, grid_w, base_size, scale):
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    h = np.arange(grid_h, dtype=np.float32) / (grid_h / base_size) / scale
    w = np.arange(grid_w, dtype=np.float32) / (grid_w / base_size) / scale
    ww, hh = np.meshgrid(w, h)  # (grid_h, grid_w) each: the first half of the features encodes the column
    table = np.concatenate([one_d(dim // 2, ww.astype(np.float64)), one_d(dim // 2, hh.astype(np.float64))], axis=1)
    return torch.from_numpy(table).float()[None]


class Embedding(nn.Module):  # TimestepEmbedding: linear_1, SiLU, linear_2
    def __init__(self, dim_in, dim):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(dim_in, dim), nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class Attention(nn.Module):
    def __init__(self, dim, heads, context_dim=None):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(context_dim or dim, dim)
        self.to_v = nn.Linear(context_dim or dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, context=None, bias=None):
        context = x if context is None else context
        b, n, d = x.shape
        split = lambda t: t.reshape(b, -1, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        if bias is not None:
            scores = scores + bias
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        return self.to_out[0](out)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([nn.Module(), nn.Identity(), nn.Linear(4 * dim, dim)])
        self.net[0].proj = nn.Linear(dim, 4 * dim)

    def forward(self, x):
        return self.net[2](F.gelu(self.net[0].proj(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.attn1 = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.attn2 = Attention(dim, heads)
        self.ff = FeedForward(dim)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim ** 0.5)

    def forward(self, x, modulation, context, bias):
        m = (self.scale_shift_table[None] + modulation.reshape(x.shape[0], 6, -1)).chunk(6, dim=1)
        x = m[2] * self.attn1(self.norm1(x) * (1 + m[1]) + m[0]) + x
        x = self.attn2(x, context, bias) + x
        return m[5] * self.ff(self.norm2(x) * (1 + m[4]) + m[3]) + x


class PixArt(nn.Module):
    def __init__(self, c):
        super().__init__()
        dim = c["num_attention_heads"] * c["attention_head_dim"]
        self.c, self.dim, self.p = c, dim, c["patch_size"]
        self.out_channels = c.get("out_channels") or c["in_channels"]
        self.extra = c.get("use_additional_conditions", c["sample_size"] == 128)
        self.scale = c.get("interpolation_scale") or max(c["sample_size"] // 64, 1)
        self.pos_embed = nn.Module()
        self.pos_embed.proj = nn.Conv2d(c["in_channels"], dim, self.p, self.p)
        self.transformer_blocks = nn.ModuleList([Block(dim, c["num_attention_heads"]) for _ in range(c["num_layers"])])
        self.norm_out = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim ** 0.5)
        self.proj_out = nn.Linear(dim, self.p * self.p * self.out_channels)
        self.adaln_single = nn.Module()
        self.adaln_single.emb = nn.Module()
        self.adaln_single.emb.timestep_embedder = Embedding(256, dim)
        if self.extra:
            self.adaln_single.emb.resolution_embedder = Embedding(256, dim // 3)
            self.adaln_single.emb.aspect_ratio_embedder = Embedding(256, dim // 3)
        self.adaln_single.linear = nn.Linear(dim, 6 * dim)
        self.caption_projection = nn.Module()
        self.caption_projection.linear_1 = nn.Linear(c["caption_channels"], dim)
        self.caption_projection.linear_2 = nn.Linear(dim, dim)

    def forward(self, x, t, context, mask, resolution=None, aspect_ratio=None, tap=-1):
        b, _, height, width = x.shape
        gh, gw = height // self.p, width // self.p
        h = self.pos_embed.proj(x).flatten(2).transpose(1, 2)
        h = h + positions(self.dim, gh, gw, self.c["sample_size"] // self.p, self.scale)
        emb = self.adaln_single.emb.timestep_embedder(sinusoid(t))
        if self.extra:
            res = self.adaln_single.emb.resolution_embedder(sinusoid(resolution.flatten())).reshape(b, -1)
            ar = self.adaln_single.emb.aspect_ratio_embedder(sinusoid(aspect_ratio.flatten())).reshape(b, -1)
            emb = emb + torch.cat([res, ar], dim=1)
        modulation = self.adaln_single.linear(F.silu(emb))
        cap = self.caption_projection
        context = cap.linear_2(F.gelu(cap.linear_1(context), approximate="tanh"))
        bias = ((1 - mask.float()) * -10000.0)[:, None, None, :]
        tapped = None
        for i, block in enumerate(self.transformer_blocks):
            h = block(h, modulation, context, bias)
            if i == tap:
                tapped = h
        shift, scale = (self.scale_shift_table[None] + emb[:, None]).chunk(2, dim=1)
        h = self.proj_out(self.norm_out(h) * (1 + scale) + shift)
        h = h.reshape(b, gh, gw, self.p, self.p, self.out_channels)
        return torch.einsum("nhwpqc->nchpwq", h).reshape(b, self.out_channels, gh * self.p, gw * self.p), tapped


def check(fixture_dir):
    checked = 0
    for path in sorted(glob.glob(os.path.join(fixture_dir, "pixart_transformer_forward_*.safetensors"))):
        tensors, meta = read_safetensors(path)
        model = PixArt(json.loads(meta["config"]))
        params = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
        missing, unexpected = model.load_state_dict(params, strict=False)
        if missing or unexpected:
            sys.exit("pixart_reference: %s: missing %s unexpected %s" % (path, missing, unexpected))
        model.eval()
        with torch.no_grad():
            sample, tapped = model(tensors["in.hidden_states"], tensors["in.timestep"],
                                   tensors["in.encoder_hidden_states"], tensors["in.encoder_attention_mask"],
                                   tensors.get("in.added_cond_kwargs.resolution", tensors.get("in.resolution")),
                                   tensors.get("in.added_cond_kwargs.aspect_ratio", tensors.get("in.aspect_ratio")),
                                   int(meta["crepa_block_index"]))
        worst = max((sample - tensors["out.sample"]).abs().max().item(),
                    (tapped - tensors["out.crepa_hidden_states"]).abs().max().item())
        if worst > float(meta.get("atol", "1e-4")):
            sys.exit("pixart_reference: %s differs from the fixture by %.3e" % (os.path.basename(path), worst))
        print("reference %-40s PASS (max error %.3e)" % (os.path.basename(path), worst))
        checked += 1
    if checked == 0:
        sys.exit("pixart_reference: no pixart_transformer_forward fixtures in " + fixture_dir)


def bench(a):
    set_threads(a.threads)
    torch.manual_seed(0)
    config = {"num_attention_heads": a.heads, "attention_head_dim": a.head_dim, "in_channels": 4, "out_channels": 8,
              "num_layers": a.depth, "sample_size": a.latent, "patch_size": 2, "caption_channels": a.caption,
              "use_additional_conditions": False}
    model = PixArt(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    alphas_cumprod = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)
    x0 = torch.randn(a.batch, 4, a.latent, a.latent)
    context = torch.randn(a.batch, a.tokens, a.caption)
    lengths = torch.randint(8, a.tokens, (a.batch,))
    mask = (torch.arange(a.tokens)[None] < lengths[:, None]).long()

    def step():
        t = torch.randint(0, 1000, (a.batch,))
        eps = torch.randn_like(x0)
        ab = alphas_cumprod[t][:, None, None, None]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        out, _ = model(x_t, t.float(), context, mask, tap=a.tap)
        loss = (out.chunk(2, dim=1)[0] - eps).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    times = time_steps(step, a.warmup, a.iters)
    params = sum(p.numel() for p in model.parameters())
    print("pytorch   pixart depth %d width %d heads %d latent %dx%d tokens %d caption %d batch %d params %.2fM "
          "threads %d: median %.1f ms/step (min %.1f, max %.1f, %d iters)"
          % (a.depth, a.heads * a.head_dim, a.heads, a.latent, a.latent, a.tokens, a.caption, a.batch, params / 1e6,
             torch.get_num_threads(), times.median_ms, times.min_ms, times.max_ms, a.iters))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("fixture_dir", nargs="?", default=DEFAULT_FIXTURES)
    b = sub.add_parser("bench")
    for name, default in [("batch", 4), ("latent", 32), ("depth", 4), ("heads", 6), ("head-dim", 64),
                          ("caption", 4096), ("tokens", 300), ("tap", 1), ("iters", 5), ("warmup", 1), ("threads", 0)]:
        b.add_argument("--" + name, type=int, default=default)
    a = parser.parse_args()
    check(a.fixture_dir) if a.command == "check" else bench(a)


if __name__ == "__main__":
    main()
