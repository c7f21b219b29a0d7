#!/usr/bin/python3
"""PyTorch-eager SiT (as REPA's models/sit.py defines it), our own code on Debian's torch 1.13, used as the
reference for bench/bench_sit.cpp.

  sit_reference.py check [FIXTURE_DIR]   compare with every sit_forward fixture (prediction and projector)
  sit_reference.py bench [--batch 8] [--input 32] [--channels 4] [--depth 4] [--width 256] [--heads 4]
                         [--patch 2] [--tap 1] [--iters 10] [--warmup 2] [--threads N]

`bench` times the same training step as bench_sit: linear-path noising x_t = (1 - t) x + t eps with uniform
t, forward in train mode (label dropout 0.1, hidden state of block `tap` kept), velocity MSE to eps - x,
backward, AdamW (lr 1e-4, no weight decay), weights drawn from N(0, 0.02).
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

from common import read_safetensors, set_threads, time_steps

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "conformance")


def timestep_features(t, dim, max_period=10000.0):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def sincos_2d(dim, grid):
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    rows, cols = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")
    return torch.from_numpy(np.concatenate([one_d(dim // 2, cols), one_d(dim // 2, rows)], axis=1)).float()


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        return self.proj((w @ v).transpose(1, 2).reshape(b, s, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.attn = Attention(dim, heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        sa, ca, ga, sm, cm, gm = self.adaLN_modulation(c).chunk(6, dim=-1)
        d = x.shape[-1]
        x = x + ga[:, None] * self.attn(modulate(F.layer_norm(x, (d,), eps=1e-6), sa, ca))
        return x + gm[:, None] * self.mlp(modulate(F.layer_norm(x, (d,), eps=1e-6), sm, cm))


class FinalLayer(nn.Module):
    def __init__(self, dim, patch, out_channels):
        super().__init__()
        self.linear = nn.Linear(dim, patch * patch * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(F.layer_norm(x, (x.shape[-1],), eps=1e-6), shift, scale))


class Embedder(nn.Module):
    def __init__(self, module_name, module):
        super().__init__()
        self.add_module(module_name, module)


class SiT(nn.Module):
    def __init__(self, input_size, patch_size, in_channels, hidden_size, depth, num_heads, mlp_ratio=4.0,
                 num_classes=1000, class_dropout_prob=0.1, z_dims=(), projector_dim=2048):
        super().__init__()
        self.patch, self.channels, self.num_classes, self.dropout = patch_size, in_channels, num_classes, class_dropout_prob
        self.x_embedder = Embedder("proj", nn.Conv2d(in_channels, hidden_size, patch_size, stride=patch_size))
        self.t_embedder = Embedder("mlp", nn.Sequential(nn.Linear(256, hidden_size), nn.SiLU(),
                                                        nn.Linear(hidden_size, hidden_size)))
        self.y_embedder = Embedder("embedding_table", nn.Embedding(num_classes + int(class_dropout_prob > 0), hidden_size))
        self.register_buffer("pos_embed", sincos_2d(hidden_size, input_size // patch_size)[None])
        self.blocks = nn.ModuleList([Block(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.projectors = nn.ModuleList([
            nn.Sequential(nn.Linear(hidden_size, projector_dim), nn.SiLU(), nn.Linear(projector_dim, projector_dim),
                          nn.SiLU(), nn.Linear(projector_dim, z)) for z in z_dims])
        self.final_layer = FinalLayer(hidden_size, patch_size, in_channels)

    def forward(self, x, t, y, tap=-1):
        n, _, h, w = x.shape
        tokens = self.x_embedder.proj(x).flatten(2).transpose(1, 2) + self.pos_embed
        if self.training and self.dropout > 0:
            y = torch.where(torch.rand(n) < self.dropout, torch.full_like(y, self.num_classes), y)
        c = self.t_embedder.mlp(timestep_features(t, 256)) + self.y_embedder.embedding_table(y)
        hidden = None
        for i, block in enumerate(self.blocks):
            tokens = block(tokens, c)
            if i == tap:
                hidden = tokens
        out = self.final_layer(tokens, c)
        g, p = h // self.patch, self.patch
        out = out.reshape(n, g, g, p, p, self.channels).permute(0, 5, 1, 3, 2, 4).reshape(n, self.channels, h, w)
        return out, hidden


def check(fixture_dir):
    files = sorted(glob.glob(os.path.join(fixture_dir, "*.safetensors")))
    checked = 0
    for path in files:
        tensors, meta = read_safetensors(path)
        if meta.get("kind") != "sit_forward":
            continue
        cfg = json.loads(meta["config"])
        model = SiT(cfg["input_size"], cfg["patch_size"], cfg["in_channels"], cfg["hidden_size"], cfg["depth"],
                    cfg["num_heads"], cfg.get("mlp_ratio", 4.0), cfg["num_classes"], cfg["class_dropout_prob"],
                    cfg.get("z_dims", []), cfg.get("projector_dim", 2048))
        state = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
        model.load_state_dict(state, strict=True)  # every name and shape must match
        model.eval()
        with torch.no_grad():
            out, hidden = model(tensors["in.x"], tensors["in.t"], tensors["in.y"], cfg["encoder_depth"] - 1)
            zs = [projector(hidden) for projector in model.projectors]
        atol, rtol = float(meta["atol"]), float(meta["rtol"])
        worst = 0.0
        for name, got in [("out.x", out)] + [("out.zs.%d" % i, z) for i, z in enumerate(zs)]:
            want = tensors[name]
            err = (got.double() - want.double()).abs()
            if not bool((err <= atol + rtol * want.double().abs()).all()):
                sys.exit("sit_reference: %s %s differs (max error %.3e)" % (os.path.basename(path), name, err.max()))
            worst = max(worst, float(err.max()))
        print("reference %-34s PASS (max error %.3e)" % (os.path.basename(path), worst))
        checked += 1
    if checked == 0:
        sys.exit("sit_reference: no sit_forward fixtures in " + fixture_dir)


def bench(a):
    set_threads(a.threads)
    torch.manual_seed(0)
    model = SiT(a.input, a.patch, a.channels, a.width, a.depth, a.heads)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    x0 = torch.randn(a.batch, a.channels, a.input, a.input)
    labels = torch.randint(0, 1000, (a.batch,))

    def step():
        t = torch.rand(a.batch)
        eps = torch.randn_like(x0)
        tt = t[:, None, None, None]
        x_t, target = (1 - tt) * x0 + tt * eps, eps - x0
        out, _ = model(x_t, t, labels, a.tap)
        loss = (out - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    times = time_steps(step, a.warmup, a.iters)
    params = sum(p.numel() for p in model.parameters())
    print("pytorch   sit depth %d width %d heads %d patch %d input %dx%dx%d batch %d params %.2fM threads %d: "
          "median %.1f ms/step (min %.1f, max %.1f, %d iters)"
          % (a.depth, a.width, a.heads, a.patch, a.channels, a.input, a.input, a.batch, params / 1e6,
             torch.get_num_threads(), times.median_ms, times.min_ms, times.max_ms, a.iters))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("fixture_dir", nargs="?", default=os.environ.get("REPA_CONFORMANCE_DIR", DEFAULT_FIXTURES))
    b = sub.add_parser("bench")
    for name, default in [("batch", 8), ("input", 32), ("channels", 4), ("depth", 4), ("width", 256), ("heads", 4),
                          ("patch", 2), ("tap", 1), ("iters", 10), ("warmup", 2), ("threads", 0)]:
        b.add_argument("--" + name, type=int, default=default)
    a = parser.parse_args()
    check(a.fixture_dir) if a.command == "check" else bench(a)


if __name__ == "__main__":
    main()
