#!/usr/bin/python3
"""PyTorch-eager REPA and U-REPA losses (LayerNorm + Linear projector, token alignment, manifold loss,
coefficient schedule): the reference the LibTorch regularizers are timed against.

Written for Debian's python3-torch (1.13) with no other dependency.

  align_reference.py check [FIXTURE_DIR]   run every crepa_image_loss and urepa_loss fixture; exit 1 on failure
  align_reference.py bench [--batch 32] [--tokens 256] [--hidden 1152] [--teacher-dim 768]
                           [--teacher-tokens 256,1369] [--iters 10] [--warmup 2] [--threads N]
                           forward + backward, median ms, one JSON line per case (as bench_align prints)
"""
import argparse
import glob
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from common import read_safetensors


class Schedule:
    """The coefficient schedule with SimpleTuner's conventions (see docs/alignment.md)."""

    def __init__(self, config, prefix, max_train_steps):
        def get(key, default):
            value = config.get(f"{prefix}_{key}")
            return default if value is None else value

        self.shape = str(get("scheduler", "constant") or "constant").lower()
        self.lam = float(get("lambda", 0.5))
        self.warmup = int(get("warmup_steps", 0))
        decay = int(get("decay_steps", 0))
        self.decay_end = decay if decay > 0 else max_train_steps
        self.end = float(get("lambda_end", 0.0))
        self.power = float(get("power", 1.0)) or 1.0
        self.cutoff_step = int(get("cutoff_step", 0))
        threshold = config.get(f"{prefix}_similarity_threshold")
        self.threshold = None if threshold is None else float(threshold)
        self.ema_decay = float(get("similarity_ema_decay", 0.99))
        self.permanent = str(get("threshold_mode", "permanent")).lower() == "permanent"
        self.ema = None
        self.latched = False

    def scheduled(self, step):
        if self.warmup > 0 and step < self.warmup:
            return self.lam * step / self.warmup
        if self.shape == "constant":
            return self.lam
        progress = min((step - self.warmup) / max(self.decay_end - self.warmup, 1), 1.0)
        if self.shape == "linear":
            return self.lam + (self.end - self.lam) * progress
        if self.shape == "cosine":
            return self.end + (self.lam - self.end) * (1 + math.cos(math.pi * progress)) / 2
        return (self.lam - self.end) * (1 - progress) ** self.power + self.end

    def weight(self, step, similarity):
        self.ema = similarity if self.ema is None else self.ema_decay * self.ema + (1 - self.ema_decay) * similarity
        if self.latched and self.permanent:
            return 0.0
        cut = (self.cutoff_step > 0 and step >= self.cutoff_step) or (
            self.threshold is not None and self.ema >= self.threshold)
        if cut:
            self.latched = self.latched or self.permanent
            return 0.0
        self.latched = False
        return self.scheduled(step)


class Projector(nn.Module):
    def __init__(self, hidden, out):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, eps=1e-5)
        self.linear = nn.Linear(hidden, out)

    def forward(self, x):
        return self.linear(self.norm(x.float()))


def resample(tokens, target):
    b, n, d = tokens.shape
    if n == target:
        return tokens
    x = tokens.transpose(1, 2)
    s, t = math.isqrt(n), math.isqrt(target)
    if s * s == n and t * t == target:
        x = F.interpolate(x.reshape(b, d, s, s), size=(t, t), mode="bilinear", align_corners=False).reshape(b, d, target)
    else:
        x = F.interpolate(x, size=target, mode="linear", align_corners=False)
    return x.transpose(1, 2)


def align(p, e, spatial_align=True):
    if p.shape[1] == e.shape[1]:
        return p, e
    if not spatial_align:
        return p.mean(1, keepdim=True), e.mean(1, keepdim=True)
    target = min(p.shape[1], e.shape[1])
    return resample(p, target), resample(e, target)


def repa_loss(projector, schedule, hidden, teacher, step, spatial_align=True):
    p, e = align(projector(hidden), teacher.detach().float(), spatial_align)
    p, e = F.normalize(p, dim=-1), F.normalize(e, dim=-1)
    similarity = (p * e).sum(-1).mean(-1).mean()
    score = similarity.item()
    weight = schedule.weight(step, score)
    return (-similarity * weight if weight != 0 else None), score, weight


def urepa_loss(projector, schedule, mid, teacher, step, manifold_weight):
    b, c, h, w = mid.shape
    p, e = align(projector(mid.permute(0, 2, 3, 1).reshape(b, h * w, c)), teacher.detach().float())
    p, e = F.normalize(p, dim=-1), F.normalize(e, dim=-1)
    similarity = (p * e).sum(-1).mean(-1).mean()
    manifold = (torch.bmm(p, p.transpose(1, 2)) - torch.bmm(e, e.transpose(1, 2))).pow(2).mean()
    weight = schedule.weight(step, similarity.item())
    loss = weight * (-similarity + manifold_weight * manifold) if weight != 0 else None
    return loss, similarity, manifold, weight


def close(got, want, atol, rtol):
    got, want = torch.as_tensor(got, dtype=torch.float64), want.to(torch.float64)
    both_nan = torch.isnan(got) & torch.isnan(want)
    ok = both_nan | ((got - want).abs() <= atol + rtol * want.abs())
    return bool(ok.all())


def check_fixture(path):
    t, meta = read_safetensors(path)
    kind, config = meta["kind"], json.loads(meta["config"])
    atol, rtol = float(meta["atol"]), float(meta["rtol"])
    max_steps = int(meta.get("max_train_steps", "0"))
    hidden, teacher, steps = t["in.hidden"], t["in.teacher"], t["in.step"]
    prefix = "crepa" if kind == "crepa_image_loss" else "urepa"
    schedule = Schedule(config, prefix, max_steps)
    width = hidden.shape[3] if kind == "crepa_image_loss" else hidden.shape[2]
    projector = Projector(width, teacher.shape[3])
    with torch.no_grad():
        for name, param in projector.named_parameters():
            param.copy_(t["param.projector." + name])
    ok = True
    losses, weights = [], []
    for k in range(steps.numel()):
        h = hidden[k].clone().requires_grad_(k == 0 and "out.grad.hidden" in t)
        if kind == "crepa_image_loss":
            loss, score, weight = repa_loss(projector, schedule, h, teacher[k], int(steps[k]),
                                            bool(config.get("crepa_spatial_align", True)))
            ok &= close(score, t["out.alignment_score"][k], atol, rtol)
        else:
            manifold_weight = float(config.get("urepa_manifold_weight") or 3.0)
            loss, similarity, manifold, weight = urepa_loss(projector, schedule, h, teacher[k], int(steps[k]),
                                                            manifold_weight)
            ok &= close(similarity.item(), t["out.similarity"][k], atol, rtol)
            ok &= close(manifold.item() if weight != 0 else 0.0, t["out.manifold_loss"][k], atol, rtol)
        losses.append(loss.item() if loss is not None else 0.0)
        weights.append(weight)
        if h.requires_grad and loss is not None:
            loss.backward()
            ok &= close(h.grad, t["out.grad.hidden"], atol, rtol)
            for name, param in projector.named_parameters():
                ok &= close(param.grad, t["out.grad.projector." + name], atol, rtol)
    ok &= close(losses, t["out.loss"], atol, rtol) and close(weights, t["out.weight"], atol, rtol)
    return ok


def check(directory):
    files = sorted(glob.glob(os.path.join(directory, "*.safetensors")))
    failed = checked = 0
    for path in files:
        _, meta = read_safetensors(path)
        if meta.get("kind") not in ("crepa_image_loss", "urepa_loss"):
            continue
        checked += 1
        ok = check_fixture(path)
        failed += not ok
        print(f"{os.path.basename(path):48s} {meta['kind']:22s} {'PASS' if ok else 'FAIL'}")
    print(f"align_reference: {checked} fixtures, {failed} failed")
    return 1 if failed or not checked else 0


def bench(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    side = math.isqrt(args.tokens)
    config = {}
    for n_teacher in [int(v) for v in args.teacher_tokens.split(",")]:
        teacher = F.normalize(torch.randn(args.batch, n_teacher, args.teacher_dim), dim=-1)
        for loss_name in ("repa", "urepa"):
            projector = Projector(args.hidden, args.teacher_dim)
            schedule = Schedule(config, loss_name, 0)
            if loss_name == "repa":
                x = torch.randn(args.batch, args.tokens, args.hidden, requires_grad=True)
            else:
                x = torch.randn(args.batch, args.hidden, side, side, requires_grad=True)
            times = []
            for i in range(args.warmup + args.iters):
                start = time.perf_counter()
                if loss_name == "repa":
                    loss = repa_loss(projector, schedule, x, teacher, 100 + i)[0]
                else:
                    loss = urepa_loss(projector, schedule, x, teacher, 100 + i, 3.0)[0]
                loss.backward()
                if i >= args.warmup:
                    times.append((time.perf_counter() - start) * 1000)
            times.sort()
            median = times[len(times) // 2] if len(times) % 2 else 0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2])
            print(json.dumps({"bench": "align_reference", "loss": loss_name, "batch": args.batch, "tokens": args.tokens,
                              "hidden": args.hidden, "teacher_tokens": n_teacher, "teacher_dim": args.teacher_dim,
                              "threads": torch.get_num_threads(), "iters": args.iters,
                              "median_ms": round(median, 3), "min_ms": round(times[0], 3)}), flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("directory", nargs="?",
                   default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "conformance"))
    b = sub.add_parser("bench")
    b.add_argument("--batch", type=int, default=32)
    b.add_argument("--tokens", type=int, default=256)
    b.add_argument("--hidden", type=int, default=1152)
    b.add_argument("--teacher-dim", type=int, default=768)
    b.add_argument("--teacher-tokens", default="256,1369")
    b.add_argument("--iters", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    return check(args.directory) if args.command == "check" else bench(args)


if __name__ == "__main__":
    sys.exit(main())
