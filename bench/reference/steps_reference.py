#!/usr/bin/python3
"""PyTorch-eager counterpart of `repa-train bench`: the same training steps, built from the reference modules
beside this file (sit_reference, align_reference, dinov2_reference, unet_reference), each of which is shown
equal to the LibTorch code by the conformance fixtures (`check` runs all four checks).

  steps_reference.py check [FIXTURE_DIR]
  steps_reference.py bench [--case sit,sit_repa,...] [--threads N] [--iters 10] [--warmup 3] [--batch 8]
                           [--depth 4] [--width 256] [--heads 4] [--tap 1] [--teacher-image 224] [--unet-batch 8]
                           [--profile N]

`bench` prints one JSON object shaped like `repa-train bench --json` (side "pytorch"); with --profile N it prints
instead, per case, the N operators with the most self time per step, like `repa-train bench --profile N`.
Cases: sit, sit_repa (teacher tokens from a cache tensor), sit_repa_teacher (DINOv2 under no_grad every step),
unet_urepa (UNet2DModel + U-REPA on the mid-block), dinov2 (the teacher's forward alone).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import align_reference  # noqa: E402
import dinov2_reference  # noqa: E402
import sit_reference  # noqa: E402
import unet_reference  # noqa: E402

# Keep in sync with kUnetConfig in app/train_bench.cpp.
UNET_CONFIG = dict(unet_reference.BENCH_CONFIGS["classcond"])
CASES = ["sit", "sit_repa", "sit_repa_teacher", "unet_urepa", "dinov2"]


def randomise(module):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.02)


def teacher():
    # DINOv2-S/14 (the 518 px table of 37x37 positions, interpolated as the official code does).
    model = dinov2_reference.Dinov2(384, 12, 6, 14, 37, 0, "mlp", 1536, 0.1, False)
    randomise(model)
    return model.eval().requires_grad_(False)


def teacher_tokens(model, pixels):
    with torch.no_grad():
        return model.forward_features(pixels)["x_norm_patchtokens"]


def profile_operators(step, steps, top):
    """The `top` operators by self CPU time per step, as `repa-train bench --profile` reports them."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    rows = [{"op": e.key, "self_ms": e.self_cpu_time_total / 1000.0 / steps,
             "total_ms": e.cpu_time_total / 1000.0 / steps, "calls": e.count / steps}
            for e in prof.key_averages()]
    rows.sort(key=lambda r: -r["self_ms"])
    return rows[:top]


def time_step(a, step):
    for _ in range(a.warmup):
        step()
    ms = []
    for _ in range(a.iters):
        start = time.perf_counter()
        step()
        ms.append((time.perf_counter() - start) * 1000.0)
    ms.sort()
    n = len(ms)
    median = ms[n // 2] if n % 2 else 0.5 * (ms[n // 2 - 1] + ms[n // 2])
    result = {"median_ms": median, "min_ms": ms[0], "max_ms": ms[-1]}
    if a.profile:
        result["profile"] = profile_operators(step, min(a.iters, 5), a.profile)
    return result


def sit_case(a, repa, live):
    model = sit_reference.SiT(32, 2, 4, a.width, a.depth, a.heads, 4.0, 1000, 0.1)
    randomise(model)
    model.train()
    params = list(model.parameters())
    if repa:
        encoder = teacher()
        pixels = torch.randn(a.batch, 3, a.teacher_image, a.teacher_image)
        cached = teacher_tokens(encoder, pixels).clone()
        projector = align_reference.Projector(a.width, 384)
        schedule = align_reference.Schedule({"crepa_lambda": 0.5}, "crepa", 0)
        params += list(projector.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    x0 = torch.randn(a.batch, 4, 32, 32)
    labels = torch.randint(0, 1000, (a.batch,))
    state = {"step": 0}

    def step():
        t = torch.rand(a.batch)
        eps = torch.randn_like(x0)
        tt = t[:, None, None, None]
        x_t, target = (1 - tt) * x0 + tt * eps, eps - x0
        out, hidden = model(x_t, t, labels, a.tap if repa else -1)
        loss = F.mse_loss(out, target)
        if repa:
            tokens = teacher_tokens(encoder, pixels) if live else cached
            extra, _, _ = align_reference.repa_loss(projector, schedule, hidden, tokens, state["step"])
            state["step"] += 1
            if extra is not None:
                loss = loss + extra
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    result = time_step(a, step)
    result["params_m"] = sum(p.numel() for p in params) / 1e6
    return result


def unet_case(a):
    model = unet_reference.UNet(UNET_CONFIG)
    randomise(model)
    model.train()
    encoder = teacher()
    cached = teacher_tokens(encoder, torch.randn(a.unet_batch, 3, a.teacher_image, a.teacher_image)).clone()
    projector = align_reference.Projector(UNET_CONFIG["block_out_channels"][-1], 384)
    schedule = align_reference.Schedule({"urepa_lambda": 0.5}, "urepa", 0)
    params = list(model.parameters()) + list(projector.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    x0 = torch.randn(a.unet_batch, 4, 32, 32)
    labels = torch.randint(0, 10, (a.unet_batch,))
    state = {"step": 0}

    def step():
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (a.unet_batch,))
        x_t = x0 * 0.7 + noise * 0.7
        out, mid = model(x_t, t, class_labels=labels)
        loss = F.mse_loss(out, noise)
        extra, _, _, _ = align_reference.urepa_loss(projector, schedule, mid, cached, state["step"], 3.0)
        state["step"] += 1
        if extra is not None:
            loss = loss + extra
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    result = time_step(a, step)
    result["params_m"] = sum(p.numel() for p in params) / 1e6
    return result


def dinov2_case(a):
    encoder = teacher()
    pixels = torch.randn(a.batch, 3, a.teacher_image, a.teacher_image)
    result = time_step(a, lambda: teacher_tokens(encoder, pixels))
    result["images_per_s"] = a.batch / (result["median_ms"] * 1e-3)
    return result


def bench(a):
    torch.set_num_threads(a.threads or os.cpu_count())
    with open("/proc/loadavg") as f:
        load_before = " ".join(f.read().split()[:3])
    results = {}
    for case in a.case.split(","):
        torch.manual_seed(0)
        if case == "sit":
            results[case] = sit_case(a, False, False)
        elif case == "sit_repa":
            results[case] = sit_case(a, True, False)
        elif case == "sit_repa_teacher":
            results[case] = sit_case(a, True, True)
        elif case == "unet_urepa":
            results[case] = unet_case(a)
        elif case == "dinov2":
            results[case] = dinov2_case(a)
        else:
            sys.exit(f"steps_reference: unknown case {case!r} ({', '.join(CASES)})")
    with open("/proc/loadavg") as f:
        load_after = " ".join(f.read().split()[:3])
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "unknown")
    report = {"side": "pytorch", "torch": torch.__version__, "device": "cpu",
              "machine": {"cpu": cpu, "cores": os.cpu_count(), "load_before": load_before, "load_after": load_after},
              "threads": torch.get_num_threads(), "iters": a.iters, "warmup": a.warmup, "results": results}
    ratios = {}
    if "sit" in results and "sit_repa" in results:
        ratios["repa_cached_over_vanilla"] = results["sit_repa"]["median_ms"] / results["sit"]["median_ms"]
    if "sit_repa" in results and "sit_repa_teacher" in results:
        ratios["teacher_live_over_cached"] = results["sit_repa_teacher"]["median_ms"] / results["sit_repa"]["median_ms"]
    if ratios:
        report["ratios"] = ratios
    if not a.profile:
        print(json.dumps(report))
        return
    print(json.dumps(report), file=sys.stderr) if a.json else None
    for case, r in results.items():
        print("%s: operators by self time per step (%.1f ms measured per step)" % (case, r["median_ms"]))
        for op in r.get("profile", []):
            print("    %-44s self %8.2f ms %5.1f%%  total %8.2f ms  %6.1f calls" % (
                op["op"], op["self_ms"], 100.0 * op["self_ms"] / r["median_ms"], op["total_ms"], op["calls"]))


def check(fixture_dir):
    sit_reference.check(fixture_dir)  # exits on a mismatch
    failed = dinov2_reference.check(fixture_dir)
    failed |= align_reference.check(fixture_dir) or 0
    failed |= unet_reference.check(fixture_dir) or 0
    if failed:
        sys.exit("steps_reference: a reference module differs from its fixtures")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("fixture_dir", nargs="?", default=os.environ.get("REPA_CONFORMANCE_DIR",
                                                                    sit_reference.DEFAULT_FIXTURES))
    b = sub.add_parser("bench")
    b.add_argument("--case", default=",".join(CASES))
    for name, default in [("threads", 0), ("iters", 10), ("warmup", 3), ("batch", 8), ("depth", 4), ("width", 256),
                          ("heads", 4), ("tap", 1), ("teacher-image", 224), ("unet-batch", 8), ("profile", 0)]:
        b.add_argument("--" + name, type=int, default=default)
    b.add_argument("--json", action="store_true", help="with --profile: the JSON report on stderr as well")
    a = parser.parse_args()
    check(a.fixture_dir) if a.command == "check" else bench(a)


if __name__ == "__main__":
    main()
