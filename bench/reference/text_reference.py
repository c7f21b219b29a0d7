#!/usr/bin/python3
"""PyTorch-eager counterparts of the studio's CLIP text encoder and T5 encoder, for bench/bench_text.cpp.

  text_reference.py check [--fixtures DIR]   compare with the clip_text_forward / t5_encoder_forward fixtures
  text_reference.py bench --model clip_l|t5_xxl_2 [--batch B] [--tokens L] [--iters N] [--warmup W] [--threads T]

Written from transformers' documented behaviour (CLIPTextModel, T5EncoderModel v1.1), no transformers needed:
pre-LN CLIP with causal mask and EOS pooling; T5 with RMS norm, unscaled attention, bidirectional relative
position buckets in block 0 and gated GELU. `bench` prints one JSON line (tokens per second of the forward).
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
DEFAULT_FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "text2image")

# Keep in sync with bench/bench_text.cpp.
BENCH_MODELS = {
    "clip_l": {"kind": "clip", "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
               "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 77,
               "hidden_act": "quick_gelu", "eos_token_id": 2},
    "t5_xxl_2": {"kind": "t5", "vocab_size": 32128, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 2,
                 "num_heads": 64, "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
                 "dense_act_fn": "gelu_new", "is_gated_act": True, "layer_norm_epsilon": 1e-6},
}


def activation(name):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return lambda x: F.gelu(x)
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError(name)


class ClipLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.self_attn = nn.Module()
        for p in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self.self_attn, p, nn.Linear(h, h))
        self.layer_norm1 = nn.LayerNorm(h, eps=c.get("layer_norm_eps", 1e-5))
        self.layer_norm2 = nn.LayerNorm(h, eps=c.get("layer_norm_eps", 1e-5))
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(h, c["intermediate_size"])
        self.mlp.fc2 = nn.Linear(c["intermediate_size"], h)
        self.act = activation(c.get("hidden_act", "quick_gelu"))

    def forward(self, x, mask):
        b, n, h = x.shape
        d = h // self.heads
        y = self.layer_norm1(x)
        a = self.self_attn
        q = (a.q_proj(y) * d ** -0.5).view(b, n, self.heads, d).transpose(1, 2)
        k = a.k_proj(y).view(b, n, self.heads, d).transpose(1, 2)
        v = a.v_proj(y).view(b, n, self.heads, d).transpose(1, 2)
        w = torch.softmax(q @ k.transpose(-1, -2) + mask, dim=-1)
        x = x + a.out_proj((w @ v).transpose(1, 2).reshape(b, n, h))
        return x + self.mlp.fc2(self.act(self.mlp.fc1(self.layer_norm2(x))))


class ClipText(nn.Module):
    def __init__(self, c, projection_dim=None):
        super().__init__()
        self.c = c
        tm = nn.Module()
        tm.embeddings = nn.Module()
        tm.embeddings.token_embedding = nn.Embedding(c["vocab_size"], c["hidden_size"])
        tm.embeddings.position_embedding = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        tm.encoder = nn.Module()
        tm.encoder.layers = nn.ModuleList([ClipLayer(c) for _ in range(c["num_hidden_layers"])])
        tm.final_layer_norm = nn.LayerNorm(c["hidden_size"], eps=c.get("layer_norm_eps", 1e-5))
        self.text_model = tm
        self.text_projection = nn.Linear(c["hidden_size"], projection_dim, bias=False) if projection_dim else None

    def forward(self, ids, attention_mask=None):
        b, n = ids.shape
        e = self.text_model.embeddings
        x = e.token_embedding(ids) + e.position_embedding(torch.arange(n))
        lowest = torch.finfo(x.dtype).min
        mask = torch.full((n, n), lowest).triu(1)[None, None]
        if attention_mask is not None:
            mask = mask + (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * lowest
        hidden = [x]
        for layer in self.text_model.encoder.layers:
            x = layer(x, mask)
            hidden.append(x)
        last = self.text_model.final_layer_norm(x)
        eos = self.c.get("eos_token_id", 49407)
        if eos == 2:
            pos = ids.argmax(-1)
        else:
            pos = (ids == eos).int().argmax(-1)
        pooled = last[torch.arange(b), pos]
        out = {"hidden_states": hidden, "last_hidden_state": last, "pooler_output": pooled}
        if self.text_projection is not None:
            out["text_embeds"] = self.text_projection(pooled)
        return out


def relative_buckets(relative, num_buckets, max_distance):
    num_buckets //= 2
    buckets = (relative > 0).long() * num_buckets
    n = relative.abs()
    max_exact = num_buckets // 2
    large = max_exact + (torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).long()
    large = torch.minimum(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(n < max_exact, n, large)


class T5RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class T5Block(nn.Module):
    def __init__(self, c, has_bias):
        super().__init__()
        d, inner = c["d_model"], c["num_heads"] * c["d_kv"]
        self.c = c
        attn = nn.Module()
        for p in ("q", "k", "v"):
            setattr(attn, p, nn.Linear(d, inner, bias=False))
        attn.o = nn.Linear(inner, d, bias=False)
        if has_bias:
            attn.relative_attention_bias = nn.Embedding(c["relative_attention_num_buckets"], c["num_heads"])
        l0 = nn.Module()
        l0.SelfAttention = attn
        l0.layer_norm = T5RMSNorm(d, c["layer_norm_epsilon"])
        l1 = nn.Module()
        ff = nn.Module()
        if c["is_gated_act"]:
            ff.wi_0 = nn.Linear(d, c["d_ff"], bias=False)
            ff.wi_1 = nn.Linear(d, c["d_ff"], bias=False)
        else:
            ff.wi = nn.Linear(d, c["d_ff"], bias=False)
        ff.wo = nn.Linear(c["d_ff"], d, bias=False)
        l1.DenseReluDense = ff
        l1.layer_norm = T5RMSNorm(d, c["layer_norm_epsilon"])
        self.layer = nn.ModuleList([l0, l1])
        self.act = activation(c["dense_act_fn"])

    def forward(self, x, bias):
        b, n, _ = x.shape
        h, dk = self.c["num_heads"], self.c["d_kv"]
        a = self.layer[0].SelfAttention
        y = self.layer[0].layer_norm(x)
        q = a.q(y).view(b, n, h, dk).transpose(1, 2)
        k = a.k(y).view(b, n, h, dk).transpose(1, 2)
        v = a.v(y).view(b, n, h, dk).transpose(1, 2)
        w = torch.softmax((q @ k.transpose(-1, -2) + bias).float(), dim=-1).type_as(q)
        x = x + a.o((w @ v).transpose(1, 2).reshape(b, n, h * dk))
        ff = self.layer[1].DenseReluDense
        y = self.layer[1].layer_norm(x)
        y = self.act(ff.wi_0(y)) * ff.wi_1(y) if self.c["is_gated_act"] else self.act(ff.wi(y))
        return x + ff.wo(y)


class T5Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.shared = nn.Embedding(c["vocab_size"], c["d_model"])
        self.encoder = nn.Module()
        self.encoder.block = nn.ModuleList([T5Block(c, i == 0) for i in range(c["num_layers"])])
        self.encoder.final_layer_norm = T5RMSNorm(c["d_model"], c["layer_norm_epsilon"])

    def forward(self, ids, attention_mask=None):
        b, n = ids.shape
        x = self.shared(ids)
        pos = torch.arange(n)
        buckets = relative_buckets(pos[None, :] - pos[:, None], self.c["relative_attention_num_buckets"],
                                   self.c["relative_attention_max_distance"])
        bias = self.encoder.block[0].layer[0].SelfAttention.relative_attention_bias(buckets).permute(2, 0, 1)[None]
        if attention_mask is not None:
            bias = bias + (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        hidden = [x]
        for i, block in enumerate(self.encoder.block):
            x = block(x, bias)
            if i + 1 < len(self.encoder.block):
                hidden.append(x)
        x = self.encoder.final_layer_norm(x)
        hidden.append(x)
        return {"hidden_states": hidden, "last_hidden_state": x}


def t5_config(cfg):
    c = dict(cfg)
    proj = c.get("feed_forward_proj", "relu")
    c.setdefault("is_gated_act", proj.startswith("gated-"))
    c.setdefault("dense_act_fn", proj.split("-")[-1] if proj != "gated-gelu" else "gelu_new")
    c.setdefault("layer_norm_epsilon", 1e-6)
    return c


def compare(name, key, got, want, atol, rtol):
    err = (got.double() - want.double()).abs()
    if got.shape != want.shape or bool((err > atol + rtol * want.double().abs()).any()):
        print(f"reference check FAILED on {name} ({key}): max error {err.max().item():.3e}")
        sys.exit(1)
    return err.max().item()


def check(fixture_dir):
    checked = 0
    for name in sorted(os.listdir(fixture_dir)):
        if not name.endswith(".safetensors"):
            continue
        tensors, meta = read_safetensors(os.path.join(fixture_dir, name))
        kind = meta.get("kind")
        if kind not in ("clip_text_forward", "t5_encoder_forward"):
            continue
        cfg = json.loads(meta["config"])
        atol, rtol = float(meta["atol"]), float(meta["rtol"])
        state = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
        worst = 0.0
        if kind == "clip_text_forward":
            proj = cfg.get("projection_dim") if meta.get("class") == "CLIPTextModelWithProjection" else None
            model = ClipText(cfg, proj).eval()
            model.load_state_dict(state, strict=True)
            for i in range(int(meta.get("inputs", "1"))):
                mask = tensors.get(f"in.attention_mask.{i}")
                with torch.no_grad():
                    out = model(tensors[f"in.input_ids.{i}"], mask)
                for key in ("last_hidden_state", "pooler_output", "text_embeds"):
                    if f"out.{key}.{i}" in tensors:
                        worst = max(worst, compare(name, key, out[key], tensors[f"out.{key}.{i}"], atol, rtol))
                for j, h in enumerate(out["hidden_states"]):
                    worst = max(worst, compare(name, f"hidden_states.{j}", h, tensors[f"out.hidden_states.{i}.{j}"],
                                               atol, rtol))
        else:
            model = T5Encoder(t5_config(cfg)).eval()
            if "encoder.embed_tokens.weight" in state:
                state.setdefault("shared.weight", state.pop("encoder.embed_tokens.weight"))
            model.load_state_dict(state, strict=True)
            with torch.no_grad():
                out = model(tensors["in.input_ids"], tensors.get("in.attention_mask"))
            worst = compare(name, "last_hidden_state", out["last_hidden_state"], tensors["out.last_hidden_state"],
                            atol, rtol)
            for j, h in enumerate(out["hidden_states"]):
                worst = max(worst, compare(name, f"hidden_states.{j}", h, tensors[f"out.hidden_states.{j}"], atol, rtol))
        print(f"reference check: {name} max error {worst:.3e} PASS")
        checked += 1
    if not checked:
        print(f"reference check: no text encoder fixtures in {fixture_dir}")
        sys.exit(1)


def bench(args):
    set_threads(args.threads)
    c = BENCH_MODELS[args.model]
    torch.manual_seed(0)
    model = (ClipText(c) if c["kind"] == "clip" else T5Encoder(t5_config(c))).eval()
    params = sum(p.numel() for p in model.parameters())
    tokens = min(args.tokens, c.get("max_position_embeddings", args.tokens))
    ids = torch.randint(3, c["vocab_size"] - 1, (args.batch, tokens))
    with torch.no_grad():
        times = time_steps(lambda: model(ids), args.warmup, args.iters)
    median = times.median_ms / 1000.0
    print(json.dumps({"side": "pytorch-eager", "model": args.model, "parameters": params, "batch": args.batch,
                      "tokens": tokens, "median_ms": times.median_ms, "min_ms": times.min_ms,
                      "tokens_per_sec": args.batch * tokens / median, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("--fixtures", default=DEFAULT_FIXTURES)
    b = sub.add_parser("bench")
    b.add_argument("--model", choices=sorted(BENCH_MODELS), required=True)
    b.add_argument("--batch", type=int, default=4)
    b.add_argument("--tokens", type=int, default=77)
    b.add_argument("--iters", type=int, default=3)
    b.add_argument("--warmup", type=int, default=1)
    b.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.command == "check":
        check(args.fixtures)
    else:
        bench(args)


if __name__ == "__main__":
    main()
