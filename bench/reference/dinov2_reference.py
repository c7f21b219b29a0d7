#!/usr/bin/python3
"""PyTorch-eager DINOv2 forward_features: the reference the LibTorch encoder is timed against.

Written for Debian's python3-torch (1.13), with no other dependency: it reads safetensors itself and accepts
both weight namings (Hugging Face facebook/dinov2-* and torch.hub state-dict names), like the C++ loader.

  dinov2_reference.py check [FIXTURE_DIR]      run every dinov2_forward conformance fixture; exit 1 on failure
  dinov2_reference.py bench --weights F.safetensors [--image 224] [--batch 8] [--iters 5] [--warmup 1]
                            [--threads N]      images per second, fp32, eval, no grad
"""
import argparse
import json
import math
import os
import re
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from common import read_safetensors, set_threads


HF_TO_HUB = [
    (r"^embeddings\.cls_token$", "cls_token"),
    (r"^embeddings\.mask_token$", "mask_token"),
    (r"^embeddings\.position_embeddings$", "pos_embed"),
    (r"^embeddings\.register_tokens$", "register_tokens"),
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^layernorm\.", "norm."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layer\.(\d+)\.layer_scale1\.lambda1$", r"blocks.\1.ls1.gamma"),
    (r"^encoder\.layer\.(\d+)\.layer_scale2\.lambda1$", r"blocks.\1.ls2.gamma"),
    (r"^encoder\.layer\.(\d+)\.mlp\.weights_in\.", r"blocks.\1.mlp.w12."),
    (r"^encoder\.layer\.(\d+)\.mlp\.weights_out\.", r"blocks.\1.mlp.w3."),
    (r"^encoder\.layer\.(\d+)\.", r"blocks.\1."),
]


def to_hub_names(state):
    """Maps Hugging Face names onto torch.hub ones; query/key/value are stacked into the fused qkv."""
    if "patch_embed.proj.weight" in state:
        return dict(state)
    out, qkv = {}, {}
    for name, t in state.items():
        m = re.match(r"^encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$", name)
        if m:
            qkv.setdefault(f"blocks.{m[1]}.attn.qkv.{m[3]}", {})[m[2]] = t
            continue
        for pattern, repl in HF_TO_HUB:
            if re.search(pattern, name):
                out[re.sub(pattern, repl, name)] = t
                break
    for name, parts in qkv.items():
        out[name] = torch.cat([parts["query"], parts["key"], parts["value"]], 0)
    return out


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class SwiGLU(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w12, self.w3 = nn.Linear(dim, 2 * hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, dim, heads, ffn, hidden):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1, self.ls2 = LayerScale(dim), LayerScale(dim)
        self.mlp = SwiGLU(dim, hidden) if ffn == "swiglu" else Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class Dinov2(nn.Module):
    def __init__(self, dim, depth, heads, patch, grid, registers, ffn, hidden, offset, antialias):
        super().__init__()
        self.patch, self.registers, self.offset, self.antialias = patch, registers, offset, antialias
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, registers, dim)) if registers else None
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, ffn, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    @staticmethod
    def from_state(state, heads=None, offset=None, antialias=None):
        s = to_hub_names(state)
        dim, _, patch, _ = s["patch_embed.proj.weight"].shape
        grid = math.isqrt(s["pos_embed"].shape[1] - 1)
        registers = s["register_tokens"].shape[1] if "register_tokens" in s else 0
        depth = len({k.split(".")[1] for k in s if k.startswith("blocks.")})
        if "blocks.0.mlp.w12.weight" in s:
            ffn, hidden = "swiglu", s["blocks.0.mlp.w3.weight"].shape[1]
        else:
            ffn, hidden = "mlp", s["blocks.0.mlp.fc1.weight"].shape[0]
        model = Dinov2(dim, depth, heads or dim // 64, patch, grid, registers, ffn, hidden,
                       (0.0 if registers else 0.1) if offset is None else offset,
                       bool(registers) if antialias is None else antialias)
        model.load_state_dict(s, strict=True)
        return model.eval().requires_grad_(False)

    def interpolate_pos_encoding(self, x, h, w):
        n = self.pos_embed.shape[1] - 1
        h0, w0 = h // self.patch, w // self.patch
        if h0 * w0 == n and h == w:
            return self.pos_embed
        m = math.isqrt(n)
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2)
        if self.offset:
            kwargs = {"scale_factor": ((h0 + self.offset) / m, (w0 + self.offset) / m)}
        else:
            kwargs = {"size": (h0, w0)}
        grid = F.interpolate(grid, mode="bicubic", antialias=self.antialias, **kwargs)
        grid = grid.permute(0, 2, 3, 1).reshape(1, h0 * w0, -1)
        return torch.cat((pos[:, :1], grid), 1).to(x.dtype)

    def forward_features(self, pixels):
        b, _, h, w = pixels.shape
        x = self.patch_embed.proj(pixels).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), 1)
        x = x + self.interpolate_pos_encoding(x, h, w)
        if self.registers:
            x = torch.cat((x[:, :1], self.register_tokens.expand(b, -1, -1), x[:, 1:]), 1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        r = self.registers
        return {"x_norm_clstoken": x[:, 0], "x_norm_regtokens": x[:, 1:r + 1], "x_norm_patchtokens": x[:, r + 1:]}


def check(fixture_dir):
    failed = checked = 0
    for name in sorted(os.listdir(fixture_dir)):
        if not name.endswith(".safetensors"):
            continue
        tensors, meta = read_safetensors(os.path.join(fixture_dir, name))
        if meta.get("kind") != "dinov2_forward":
            continue
        cfg = json.loads(meta["config"])
        atol, rtol = float(meta["atol"]), float(meta["rtol"])
        params = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
        model = Dinov2.from_state(params, cfg["num_heads"], cfg["interpolate_offset"], cfg["interpolate_antialias"])
        worst, ok = 0.0, True
        with torch.no_grad():
            for j in range(int(meta.get("inputs", "1"))):
                out = model.forward_features(tensors[f"in.pixels.{j}"])
                for key in ("x_norm_clstoken", "x_norm_patchtokens", "x_norm_regtokens"):
                    want = tensors.get(f"out.{key}.{j}")
                    if want is None:
                        continue
                    got = out[key]
                    if got.shape != want.shape:
                        ok = False
                        continue
                    err = (got.double() - want.double()).abs()
                    worst = max(worst, err.max().item())
                    ok &= bool((err <= atol + rtol * want.double().abs()).all())
        checked += 1
        failed += not ok
        print(f"{name:48s} {worst:12.3e}  {'PASS' if ok else 'FAIL'}")
    print(f"reference: {checked} dinov2_forward fixtures, {failed} failed")
    return 1 if failed or not checked else 0


def bench(args):
    set_threads(args.threads)
    state, _ = read_safetensors(args.weights)
    model = Dinov2.from_state(state)
    gen = torch.Generator().manual_seed(7)
    pixels = torch.randn(args.batch, 3, args.image, args.image, generator=gen)
    name = os.path.splitext(os.path.basename(args.weights))[0]
    with torch.no_grad():
        checksum = 0.0
        for _ in range(args.warmup):
            checksum += model.forward_features(pixels)["x_norm_patchtokens"].sum().item()
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(args.iters):
            checksum += model.forward_features(pixels)["x_norm_patchtokens"].sum().item()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    images = args.batch * args.iters
    print(f"pytorch   {name:15s} {images / seconds:8.2f} images/s  {1000 * seconds / args.iters:8.1f} ms/batch  "
          f"{cpu_seconds / images:7.2f} cpu-s/image  (torch {torch.__version__}, {torch.get_num_threads()} threads)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("fixture_dir", nargs="?",
                   default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/fixtures/conformance"))
    b = sub.add_parser("bench")
    b.add_argument("--weights", required=True)
    b.add_argument("--image", type=int, default=224)
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--iters", type=int, default=5)
    b.add_argument("--warmup", type=int, default=1)
    b.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.command == "check":
        return check(args.fixture_dir)
    bench(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
