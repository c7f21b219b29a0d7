#!/usr/bin/python3
"""PyTorch-eager SD3Transformer2DModel and FluxTransformer2DModel (diffusers' semantics and parameter names: joint
blocks with SD3.5's dual attention and RMS qk-norm; Flux's double- and single-stream blocks with the 3-axis rotary
embedding and the guidance embedding), our own code on Debian's torch 1.13, used as the reference for
bench/bench_flow_dit.cpp.

  flow_dit_reference.py check [FIXTURE_DIR]   compare with every sd3_transformer_forward and flux_transformer_forward
                                              fixture (sample and REPA tap)
  flow_dit_reference.py bench [--case sd3|flux] [--depth 2|1] [--single 1] [--latent 32] [--tokens 154|512]
                              [--batch 1] [--tap 0] [--qk-norm none|rms_norm] [--dual-blocks 0] [--iters 3]
                              [--warmup 1] [--threads N] [--profile 0|1]

`bench` times the step bench_flow_dit times, the one the studio's sd3 and flux runs take: σ = sigmoid(N(0, 1)),
x_t = (1 - σ)·x0 + σ·noise, forward in train mode on T5-shaped text states (`tokens` x 4096) and a pooled CLIP
embedding, the block `tap` kept, the prediction against noise - x0 by MSE, backward, AdamW (lr 1e-4, no weight decay);
weights drawn from N(0, 0.02). sd3: SD3-medium's width (24 heads of 64, pooled 2048, pos_embed_max_size 192), `depth`
joint blocks, timestep 1000·σ. flux: Flux.1's width (24 heads of 128, pooled 768, rotary axes 16/56/56, guidance
embedding), `depth` double + `single` single blocks, latents packed 2x2 into 64-channel tokens, timestep σ,
guidance 1.0.
"""
import argparse
import glob
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import read_safetensors, set_threads, time_steps  # noqa: E402
from pixart_reference import Embedding, FeedForward, positions, sinusoid  # noqa: E402

DEFAULT_FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "text2image")


def layer_norm(x, eps=1e-6):
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def modulate(x, shift, scale):
    return layer_norm(x) * (1 + scale[:, None]) + shift[:, None]


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class AdaZero(nn.Module):  # AdaLayerNormZero / ...Single / SD35AdaLayerNormZeroX: only the linear holds weights
    def __init__(self, dim, chunks):
        super().__init__()
        self.chunks, self.linear = chunks, nn.Linear(dim, chunks * dim)

    def forward(self, emb):
        return self.linear(F.silu(emb)).chunk(self.chunks, dim=1)


class AdaContinuous(nn.Module):  # AdaLayerNormContinuous: scale first, then shift
    def __init__(self, dim):
        super().__init__()
        self.linear = nn.Linear(dim, 2 * dim)

    def forward(self, x, cond):
        scale, shift = self.linear(F.silu(cond)).chunk(2, dim=1)
        return modulate(x, shift, scale)


class TextProjection(nn.Module):  # PixArtAlphaTextProjection(act_fn="silu")
    def __init__(self, dim_in, dim):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(dim_in, dim), nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class TimeTextEmbed(nn.Module):  # CombinedTimestep(Guidance)TextProjEmbeddings
    def __init__(self, dim, pooled_dim, guidance):
        super().__init__()
        self.timestep_embedder = Embedding(256, dim)
        if guidance:
            self.guidance_embedder = Embedding(256, dim)
        self.text_embedder = TextProjection(pooled_dim, dim)

    def forward(self, t, guidance, pooled):
        emb = self.timestep_embedder(sinusoid(t))
        if guidance is not None:
            emb = emb + self.guidance_embedder(sinusoid(guidance))
        return emb + self.text_embedder(pooled)


def rotary_table(ids, axes_dims, theta=10000.0):
    pos = ids.float().double()
    cos, sin = [], []
    for i, d in enumerate(axes_dims):
        freqs = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        angles = torch.outer(pos[:, i], freqs)
        cos.append(angles.cos().repeat_interleave(2, dim=1).float())
        sin.append(angles.sin().repeat_interleave(2, dim=1).float())
    return torch.cat(cos, dim=1), torch.cat(sin, dim=1)


def rotate(x, table):  # x (B, H, S, Dh), interleaved (real, imaginary) pairs
    cos, sin = table
    real, imag = x.unflatten(-1, (-1, 2)).unbind(-1)
    return x * cos + torch.stack([-imag, real], dim=-1).flatten(-2) * sin


def attention(q, k, v, rotary=None):  # (B, H, S, Dh) each → (B, S, H·Dh)
    if rotary is not None:
        q, k = rotate(q, rotary), rotate(k, rotary)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
    out = scores.softmax(-1) @ v
    return out.transpose(1, 2).flatten(2)


class JointAttention(nn.Module):
    """to_q/k/v (+ norm_q/k) on the image stream, add_*_proj (+ norm_added_*) on the text stream, one attention over
    both ([image, text] for SD3, [text, image] for Flux), to_out.0 and to_add_out."""

    def __init__(self, dim, heads, qk_norm, added_kv=True, context_pre_only=False, pre_only=False, text_first=False):
        super().__init__()
        self.heads, self.text_first, self.pre_only = heads, text_first, pre_only
        head = dim // heads
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        if qk_norm:
            self.norm_q, self.norm_k = RMSNorm(head), RMSNorm(head)
        if not pre_only:
            self.to_out = nn.ModuleList([nn.Linear(dim, dim)])
        if added_kv:
            self.add_q_proj, self.add_k_proj, self.add_v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
            if qk_norm:
                self.norm_added_q, self.norm_added_k = RMSNorm(head), RMSNorm(head)
            if not context_pre_only:
                self.to_add_out = nn.Linear(dim, dim)
        self.qk_norm, self.context_pre_only = qk_norm, context_pre_only

    def heads_of(self, t, norm=None):
        t = t.unflatten(-1, (self.heads, -1))
        return (norm(t) if norm is not None else t).transpose(1, 2)

    def forward(self, x, context=None, rotary=None):
        n = self.norm_q if self.qk_norm else None
        m = self.norm_k if self.qk_norm else None
        q, k, v = self.heads_of(self.to_q(x), n), self.heads_of(self.to_k(x), m), self.heads_of(self.to_v(x))
        if context is None:
            out = attention(q, k, v, rotary)
            return (out if self.pre_only else self.to_out[0](out)), None
        n = self.norm_added_q if self.qk_norm else None
        m = self.norm_added_k if self.qk_norm else None
        cq, ck = self.heads_of(self.add_q_proj(context), n), self.heads_of(self.add_k_proj(context), m)
        cv = self.heads_of(self.add_v_proj(context))
        join = (lambda a, b: torch.cat([b, a], dim=2)) if self.text_first else (lambda a, b: torch.cat([a, b], dim=2))
        out = attention(join(q, cq), join(k, ck), join(v, cv), rotary)
        n_image, n_text = x.shape[1], context.shape[1]
        image = out[:, n_text:] if self.text_first else out[:, :n_image]
        text = out[:, :n_text] if self.text_first else out[:, n_image:]
        image = image if self.pre_only else self.to_out[0](image)
        return image, (text if self.context_pre_only else self.to_add_out(text))


class SD3Block(nn.Module):
    def __init__(self, dim, heads, qk_norm, context_pre_only, dual):
        super().__init__()
        self.context_pre_only, self.dual = context_pre_only, dual
        self.norm1 = AdaZero(dim, 9 if dual else 6)
        self.norm1_context = AdaContinuous(dim) if context_pre_only else AdaZero(dim, 6)
        self.attn = JointAttention(dim, heads, qk_norm, context_pre_only=context_pre_only)
        if dual:
            self.attn2 = JointAttention(dim, heads, qk_norm, added_kv=False)  # SD3.5's attn2: self-attention
        self.ff = FeedForward(dim)
        if not context_pre_only:
            self.ff_context = FeedForward(dim)

    def forward(self, x, context, temb):
        m = self.norm1(temb)
        normed = layer_norm(x)
        if self.context_pre_only:
            norm_context = self.norm1_context(context, temb)
        else:
            cm = self.norm1_context(temb)
            norm_context = modulate(context, cm[0], cm[1])
        attn_x, attn_context = self.attn(normed * (1 + m[1][:, None]) + m[0][:, None], norm_context)
        h = x + m[2][:, None] * attn_x
        if self.dual:
            h = h + m[8][:, None] * self.attn2(normed * (1 + m[7][:, None]) + m[6][:, None])[0]
        h = h + m[5][:, None] * self.ff(modulate(h, m[3], m[4]))
        if self.context_pre_only:
            return None, h
        c = context + cm[2][:, None] * attn_context
        return c + cm[5][:, None] * self.ff_context(modulate(c, cm[3], cm[4])), h


class SD3(nn.Module):
    def __init__(self, c):
        super().__init__()
        dim = c["num_attention_heads"] * c["attention_head_dim"]
        self.c, self.p = c, c.get("patch_size", 2)
        self.out_channels = c.get("out_channels") or c["in_channels"]
        self.pos_embed = nn.Module()
        self.pos_embed.proj = nn.Conv2d(c["in_channels"], dim, self.p, self.p)
        m = c["pos_embed_max_size"]
        self.pos_embed.register_buffer("pos_embed", positions(dim, m, m, c["sample_size"] // self.p, 1.0))
        self.time_text_embed = TimeTextEmbed(dim, c["pooled_projection_dim"], False)
        self.context_embedder = nn.Linear(c["joint_attention_dim"], c["caption_projection_dim"])
        dual = c.get("dual_attention_layers") or []
        self.transformer_blocks = nn.ModuleList([
            SD3Block(dim, c["num_attention_heads"], c.get("qk_norm") == "rms_norm", i == c["num_layers"] - 1, i in dual)
            for i in range(c["num_layers"])])
        self.norm_out = AdaContinuous(dim)
        self.proj_out = nn.Linear(dim, self.p * self.p * self.out_channels)

    def forward(self, x, context, pooled, t, tap=-1):
        b, _, height, width = x.shape
        gh, gw, m = height // self.p, width // self.p, self.c["pos_embed_max_size"]
        table = self.pos_embed.pos_embed.reshape(1, m, m, -1)[:, (m - gh) // 2:(m - gh) // 2 + gh,
                                                              (m - gw) // 2:(m - gw) // 2 + gw]
        h = self.pos_embed.proj(x).flatten(2).transpose(1, 2) + table.reshape(1, gh * gw, -1)
        temb = self.time_text_embed(t, None, pooled)
        context = self.context_embedder(context)
        tapped = None
        for i, block in enumerate(self.transformer_blocks):
            context, h = block(h, context, temb)
            if i == tap:
                tapped = h
        h = self.proj_out(self.norm_out(h, temb)).reshape(b, gh, gw, self.p, self.p, self.out_channels)
        return torch.einsum("nhwpqc->nchpwq", h).reshape(b, self.out_channels, height, width), tapped


class FluxDouble(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.norm1_context = AdaZero(dim, 6), AdaZero(dim, 6)
        self.attn = JointAttention(dim, heads, True, text_first=True)
        self.ff, self.ff_context = FeedForward(dim), FeedForward(dim)

    def forward(self, x, context, temb, rotary):
        m, cm = self.norm1(temb), self.norm1_context(temb)
        attn_x, attn_context = self.attn(modulate(x, m[0], m[1]), modulate(context, cm[0], cm[1]), rotary)
        h = x + m[2][:, None] * attn_x
        h = h + m[5][:, None] * self.ff(modulate(h, m[3], m[4]))
        c = context + cm[2][:, None] * attn_context
        return c + cm[5][:, None] * self.ff_context(modulate(c, cm[3], cm[4])), h


class FluxSingle(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm = AdaZero(dim, 3)
        self.proj_mlp, self.proj_out = nn.Linear(dim, 4 * dim), nn.Linear(5 * dim, dim)
        self.attn = JointAttention(dim, heads, True, added_kv=False, pre_only=True)

    def forward(self, hidden, temb, rotary):
        m = self.norm(temb)
        normed = modulate(hidden, m[0], m[1])
        mlp = F.gelu(self.proj_mlp(normed), approximate="tanh")
        attended = self.attn(normed, None, rotary)[0]
        return hidden + m[2][:, None] * self.proj_out(torch.cat([attended, mlp], dim=2))


class Flux(nn.Module):
    def __init__(self, c):
        super().__init__()
        dim = c["num_attention_heads"] * c["attention_head_dim"]
        self.c = c
        self.out_channels = c.get("out_channels") or c["in_channels"]
        self.time_text_embed = TimeTextEmbed(dim, c["pooled_projection_dim"], c.get("guidance_embeds", False))
        self.context_embedder = nn.Linear(c["joint_attention_dim"], dim)
        self.x_embedder = nn.Linear(c["in_channels"], dim)
        self.transformer_blocks = nn.ModuleList([FluxDouble(dim, c["num_attention_heads"])
                                                 for _ in range(c["num_layers"])])
        self.single_transformer_blocks = nn.ModuleList([FluxSingle(dim, c["num_attention_heads"])
                                                        for _ in range(c["num_single_layers"])])
        self.norm_out = AdaContinuous(dim)
        self.proj_out = nn.Linear(dim, c.get("patch_size", 1) ** 2 * self.out_channels)

    def forward(self, x, context, pooled, t, img_ids, txt_ids, guidance=None, tap=-1):
        h = self.x_embedder(x)
        temb = self.time_text_embed(t * 1000, None if guidance is None else guidance * 1000, pooled)
        context = self.context_embedder(context)
        rotary = rotary_table(torch.cat([txt_ids, img_ids], dim=0), self.c["axes_dims_rope"])
        tapped = None
        for i, block in enumerate(self.transformer_blocks):
            context, h = block(h, context, temb, rotary)
            if i == tap:
                tapped = h
        n_text, n_double = context.shape[1], len(self.transformer_blocks)
        hidden = torch.cat([context, h], dim=1)
        for i, block in enumerate(self.single_transformer_blocks):
            hidden = block(hidden, temb, rotary)
            if n_double + i == tap:
                tapped = hidden[:, n_text:]
        return self.proj_out(self.norm_out(hidden[:, n_text:], temb)), tapped


def pack(x):  # (B, C, H, W) → (B, H/2·W/2, 4C), FluxPipeline._pack_latents
    b, c, h, w = x.shape
    return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens, c, h, w):
    b = tokens.shape[0]
    return tokens.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def image_ids(h, w):
    rows = torch.arange(h // 2, dtype=torch.float32)[:, None].expand(h // 2, w // 2)
    cols = torch.arange(w // 2, dtype=torch.float32)[None, :].expand(h // 2, w // 2)
    return torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).reshape(-1, 3)


def check(fixture_dir):
    checked = 0
    for kind in ["sd3", "flux"]:
        for path in sorted(glob.glob(os.path.join(fixture_dir, kind + "_transformer_forward_*.safetensors"))):
            tensors, meta = read_safetensors(path)
            config = json.loads(meta["config"])
            model = SD3(config) if kind == "sd3" else Flux(config)
            params = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
            if kind == "sd3":  # the stored sin-cos table must be the one this reference computes
                table_error = (model.pos_embed.pos_embed - params["pos_embed.pos_embed"]).abs().max().item()
                if table_error > 1e-6:
                    sys.exit("flow_dit_reference: %s: sin-cos table differs by %.3e" % (path, table_error))
            missing, unexpected = model.load_state_dict(params, strict=False)
            if missing or unexpected:
                sys.exit("flow_dit_reference: %s: missing %s unexpected %s" % (path, missing, unexpected))
            model.eval()
            tap = int(meta["crepa_block_index"])
            with torch.no_grad():
                if kind == "sd3":
                    sample, tapped = model(tensors["in.hidden_states"], tensors["in.encoder_hidden_states"],
                                           tensors["in.pooled_projections"], tensors["in.timestep"], tap)
                else:
                    sample, tapped = model(tensors["in.hidden_states"], tensors["in.encoder_hidden_states"],
                                           tensors["in.pooled_projections"], tensors["in.timestep"],
                                           tensors["in.img_ids"], tensors["in.txt_ids"], tensors.get("in.guidance"),
                                           tap)
            worst = max((sample - tensors["out.sample"]).abs().max().item(),
                        (tapped - tensors["out.crepa_hidden_states"]).abs().max().item())
            limit = min(float(meta.get("atol", "1e-4")), 1e-5)  # tighter than the fixtures' own 1e-4
            if worst > limit:
                sys.exit("flow_dit_reference: %s differs from the fixture by %.3e (limit %.0e)"
                         % (os.path.basename(path), worst, limit))
            print("reference %-40s PASS (max error %.3e)" % (os.path.basename(path), worst))
            checked += 1
    if checked == 0:
        sys.exit("flow_dit_reference: no sd3/flux_transformer_forward fixtures in " + fixture_dir)


def bench(a):
    set_threads(a.threads)
    torch.manual_seed(0)
    if a.depth < 0:
        a.depth = 2 if a.case == "sd3" else 1
    if a.tokens < 0:
        a.tokens = 154 if a.case == "sd3" else 512
    if a.case == "sd3":
        model = SD3({"sample_size": 128, "patch_size": 2, "in_channels": 16, "out_channels": 16,
                     "num_layers": a.depth, "attention_head_dim": 64, "num_attention_heads": 24,
                     "joint_attention_dim": 4096, "caption_projection_dim": 1536, "pooled_projection_dim": 2048,
                     "pos_embed_max_size": 192, "qk_norm": None if a.qk_norm == "none" else a.qk_norm,
                     "dual_attention_layers": list(range(a.dual_blocks))})
        pooled_dim = 2048
    else:
        model = Flux({"patch_size": 1, "in_channels": 64, "out_channels": 64, "num_layers": a.depth,
                      "num_single_layers": a.single, "attention_head_dim": 128, "num_attention_heads": 24,
                      "joint_attention_dim": 4096, "pooled_projection_dim": 768, "guidance_embeds": True,
                      "axes_dims_rope": [16, 56, 56]})
        pooled_dim = 768
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    side = a.latent
    x0 = torch.randn(a.batch, 16, side, side)
    context = torch.randn(a.batch, a.tokens, 4096)
    pooled = torch.randn(a.batch, pooled_dim)
    img_ids, txt_ids, guidance = image_ids(side, side), torch.zeros(a.tokens, 3), torch.ones(a.batch)

    def step():
        sigma = torch.sigmoid(torch.randn(a.batch))
        noise = torch.randn_like(x0)
        s = sigma[:, None, None, None]
        x_t = (1 - s) * x0 + s * noise
        if a.case == "sd3":
            prediction, _ = model(x_t, context, pooled, sigma * 1000.0, a.tap)
        else:
            out, _ = model(pack(x_t), context, pooled, sigma, img_ids, txt_ids, guidance, a.tap)
            prediction = unpack(out, 16, side, side)
        loss = (prediction - (noise - x0)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    times = time_steps(step, a.warmup, a.iters)
    if a.profile:  # one more step under the profiler: the operators with the most self time, to stderr
        with torch.autograd.profiler.profile() as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
    params = sum(p.numel() for p in model.parameters())
    if a.case == "sd3":
        shape = "depth %d width 1536 heads 24 qk-norm %s dual %d" % (a.depth, a.qk_norm, a.dual_blocks)
    else:
        shape = "double %d single %d width 3072 heads 24 guidance" % (a.depth, a.single)
    print("pytorch   %s %s latent %dx%d tokens %d batch %d tap %d params %.2fM threads %d: median %.1f ms/step "
          "(min %.1f, max %.1f, %d iters)"
          % (a.case, shape, side, side, a.tokens, a.batch, a.tap, params / 1e6, torch.get_num_threads(),
             times.median_ms, times.min_ms, times.max_ms, a.iters))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("fixture_dir", nargs="?", default=DEFAULT_FIXTURES)
    b = sub.add_parser("bench")
    b.add_argument("--case", choices=["sd3", "flux"], default="sd3")
    b.add_argument("--qk-norm", choices=["none", "rms_norm"], default="none")
    for name, default in [("depth", -1), ("single", 1), ("latent", 32), ("tokens", -1), ("batch", 1), ("tap", 0),
                          ("dual-blocks", 0), ("iters", 3), ("warmup", 1), ("threads", 0), ("profile", 0)]:
        b.add_argument("--" + name, type=int, default=default)
    a = parser.parse_args()
    check(a.fixture_dir) if a.command == "check" else bench(a)


if __name__ == "__main__":
    main()
