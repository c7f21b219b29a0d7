#!/usr/bin/python3
"""Writes extra crepa_image_loss / urepa_loss / coefficient_schedule fixtures (other seeds, shapes, schedules
and the iREPA paths) by running SimpleTuner's own simpletuner/helpers/training/crepa.py
(bghira/SimpleTuner@bc8e6ab) with its encoder and VAE stages replaced by stubs that return the given
teacher tokens, in the format of ../../fixtures (README there).

  make_alignment_fixtures.py PATH/TO/crepa.py OUT_DIR
"""
import importlib.util, sys, json, math, struct, types, random
import torch, torch.nn as nn

_spec = importlib.util.spec_from_file_location("crepa", sys.argv[1])
st = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(st)

def save(path, tensors, meta):
    header = {"__metadata__": {k: str(v) for k, v in meta.items()}}
    blobs = []; off = 0
    names = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
    for k, t in tensors.items():
        t = t.contiguous(); b = t.numpy().tobytes()
        header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]

class Acc: device = torch.device("cpu")

def sched_cfg(prefix, rng):
    return {f"{prefix}_scheduler": rng.choice(["constant", "linear", "cosine", "polynomial"]),
            f"{prefix}_lambda": rng.choice([0.25, 0.5, 0.8, 1.0]),
            f"{prefix}_warmup_steps": rng.choice([0, 0, 3, 5]),
            f"{prefix}_decay_steps": rng.choice([0, 8, 12]),
            f"{prefix}_lambda_end": rng.choice([0.0, 0.1]),
            f"{prefix}_power": rng.choice([1.0, 2.0]),
            f"{prefix}_cutoff_step": rng.choice([0, 0, 9]),
            f"{prefix}_similarity_threshold": rng.choice([None, 0.2, -0.5, 0.05]),
            f"{prefix}_similarity_ema_decay": rng.choice([0.5, 0.9, 0.99]),
            f"{prefix}_threshold_mode": rng.choice(["permanent", "recoverable"])}

def steps_seq(rng, k):
    s = sorted(rng.sample(range(0, 20), k)); return s

def crepa_case(seed, idx, irepa, out_dir):
    rng = random.Random(seed * 100 + idx); torch.manual_seed(seed * 100 + idx)
    B = rng.choice([1, 2, 3]); Dh = rng.choice([8, 16]); De = rng.choice([6, 12])
    if irepa:
        S = rng.choice([16, 9, 36, 24]); N = rng.choice([16, 25, 36, 12])
    else:
        S = rng.choice([9, 12, 16, 42]); N = rng.choice([16, 24, 25, 36, 9])
    cfg = {"crepa_enabled": True, "crepa_block_index": 1, "crepa_encoder_image_size": 28,
           "crepa_spatial_align": rng.choice([True, False]) if not irepa else True, **sched_cfg("crepa", rng)}
    if irepa:
        cfg.update({"irepa_enabled": True, "irepa_projector_kernel_size": rng.choice([1, 3, 5]),
                    "irepa_spatial_norm_alpha": rng.choice([0.6, 1.0, 0.0])})
    max_steps = rng.choice([0, 20, 50])
    ns = types.SimpleNamespace(**cfg)
    mf = types.SimpleNamespace(crepa_mode=st.CrepaMode.IMAGE)
    reg = st.CrepaRegularizer(ns, Acc(), Dh, model_foundation=None, max_train_steps=max_steps)
    reg.mode = st.CrepaMode.IMAGE
    if irepa:
        reg.projector = st.SpatialConvProjector(Dh, De, kernel_size=cfg["irepa_projector_kernel_size"])
    else:
        reg.projector = nn.Sequential(nn.LayerNorm(Dh), nn.Linear(Dh, De))
    K = 10
    hidden = torch.randn(K, B, S, Dh); teacher = torch.randn(K, B, N, De)
    steps = steps_seq(rng, K)
    cur = {}
    reg._decode_latents_unified = lambda latents, vae: latents
    reg._encode_frames = lambda video: cur["teacher"].unsqueeze(1)
    hs = int(math.isqrt(S))
    grid = st.CrepaRegularizer._infer_spatial_shape(S, (1, 1))
    latents = torch.zeros(B, 4, grid[0] * 2, grid[1] * 2)
    out = {k: [] for k in ["loss", "weight", "cutoff", "alignment_score", "similarity_self", "similarity_ema"]}
    grads = {}
    for k in range(K):
        cur["teacher"] = teacher[k]
        h = hidden[k].clone().requires_grad_(k == 0)
        loss, log = reg.compute_loss(h, latents, vae=object(), step=steps[k])
        out["loss"].append(log["crepa_loss"]); out["weight"].append(log["crepa_weight"])
        out["cutoff"].append(int(log["crepa_cutoff"])); out["alignment_score"].append(log["crepa_alignment_score"])
        out["similarity_self"].append(log["crepa_similarity_self"])
        out["similarity_ema"].append(log.get("crepa_alignment_score_ema", float("nan")))
        if k == 0 and loss is not None:
            loss.backward(); grads["out.grad.hidden"] = h.grad
            for n, p in reg.projector.named_parameters(): grads["out.grad." + pname(n, irepa)] = p.grad
    tensors = {"in.hidden": hidden, "in.teacher": teacher, "in.step": torch.tensor(steps)}
    for k, v in out.items():
        tensors["out." + k] = torch.tensor(v, dtype=torch.int64 if k == "cutoff" else torch.float64)
    tensors.update(grads)
    for n, p in reg.projector.named_parameters(): tensors["param." + pname(n, irepa)] = p.detach()
    save(f"{out_dir}/crepa_image_loss_{'irepa_' if irepa else ''}{seed}_{idx}.safetensors", tensors,
         {"kind": "crepa_image_loss", "source": "SimpleTuner crepa.py @bc8e6ab (stubbed encoder)", "config": json.dumps(cfg),
          "max_train_steps": max_steps, "atol": "1e-5", "rtol": "1e-4", "description": "generated"})

def pname(n, irepa):
    if irepa: return "projector." + n
    return "projector." + n.replace("0.", "norm.", 1).replace("1.", "linear.", 1)

def urepa_case(seed, idx, irepa, out_dir):
    rng = random.Random(seed * 1000 + idx); torch.manual_seed(seed * 1000 + idx)
    B = rng.choice([1, 2, 3]); C = rng.choice([8, 16]); De = rng.choice([6, 12])
    h, w = rng.choice([(2, 2), (2, 3), (4, 4), (3, 3), (4, 6)]); N = rng.choice([6, 9, 16, 25, 36])
    cfg = {"urepa_enabled": True, "urepa_encoder_image_size": 28,
           "urepa_manifold_weight": rng.choice([0.5, 1.0, 3.0]), **sched_cfg("urepa", rng)}
    if irepa:
        cfg.update({"irepa_enabled": True, "irepa_projector_kernel_size": rng.choice([1, 3, 7]),
                    "irepa_spatial_norm_alpha": rng.choice([0.6, 1.0])})
    max_steps = rng.choice([0, 16])
    reg = st.UrepaRegularizer(types.SimpleNamespace(**cfg), Acc(), C, max_train_steps=max_steps)
    reg.projector = (st.SpatialConvProjector(C, De, kernel_size=cfg["irepa_projector_kernel_size"]) if irepa
                     else nn.Sequential(nn.LayerNorm(C), nn.Linear(C, De)))
    K = 8
    hidden = torch.randn(K, B, C, h, w); teacher = torch.randn(K, B, N, De); steps = steps_seq(rng, K)
    cur = {}
    reg._decode_latents = lambda latents, vae: latents
    reg._encode_pixels = lambda px: cur["teacher"]
    out = {k: [] for k in ["loss", "alignment_loss", "manifold_loss", "similarity", "weight", "cutoff"]}
    grads = {}
    for k in range(K):
        cur["teacher"] = teacher[k]
        x = hidden[k].clone().requires_grad_(k == 0)
        loss, log = reg.compute_loss(x, torch.zeros(1), vae=object(), step=steps[k])
        for key in ["loss", "alignment_loss", "manifold_loss", "similarity", "weight"]:
            out[key].append(log["urepa_" + key])
        out["cutoff"].append(int(log["urepa_cutoff"]))
        if k == 0 and loss is not None:
            loss.backward(); grads["out.grad.hidden"] = x.grad
            for n, p in reg.projector.named_parameters(): grads["out.grad." + pname(n, irepa)] = p.grad
    tensors = {"in.hidden": hidden, "in.teacher": teacher, "in.step": torch.tensor(steps)}
    for k, v in out.items():
        tensors["out." + k] = torch.tensor(v, dtype=torch.int64 if k == "cutoff" else torch.float64)
    tensors.update(grads)
    for n, p in reg.projector.named_parameters(): tensors["param." + pname(n, irepa)] = p.detach()
    save(f"{out_dir}/urepa_loss_{'irepa_' if irepa else ''}{seed}_{idx}.safetensors", tensors,
         {"kind": "urepa_loss", "source": "SimpleTuner crepa.py @bc8e6ab (stubbed encoder)", "config": json.dumps(cfg),
          "max_train_steps": max_steps, "atol": "1e-5", "rtol": "1e-4", "description": "generated"})

def schedule_case(seed, idx, out_dir):
    rng = random.Random(seed * 7 + idx)
    prefix = rng.choice(["crepa", "urepa"])
    cfg = sched_cfg(prefix, rng); max_steps = rng.choice([0, 30, 60])
    ns = types.SimpleNamespace(**{k.replace(prefix, "crepa", 1): v for k, v in cfg.items()})
    s = st.CrepaScheduler(ns, max_steps)
    steps = sorted(rng.randint(0, 70) for _ in range(40)); sims = []; w = []; ema = []; latch = []
    for st_ in steps:
        sim = rng.choice([None, rng.uniform(-0.6, 0.6)])
        sims.append(float("nan") if sim is None else sim)
        w.append(s.get_weight(st_, sim)); e = s.get_similarity_ema(); ema.append(float("nan") if e is None else e)
        latch.append(int(s.is_cutoff()))
    save(f"{out_dir}/coefficient_schedule_{seed}_{idx}.safetensors",
         {"in.step": torch.tensor(steps), "in.similarity": torch.tensor(sims, dtype=torch.float64),
          "out.weight": torch.tensor(w, dtype=torch.float64), "out.similarity_ema": torch.tensor(ema, dtype=torch.float64),
          "out.cutoff_latched": torch.tensor(latch)},
         {"kind": "coefficient_schedule", "source": "SimpleTuner crepa.py @bc8e6ab", "config": json.dumps(cfg),
          "max_train_steps": max_steps, "atol": "1e-9", "rtol": "1e-9", "description": "generated"})

if __name__ == "__main__":
    out_dir = sys.argv[2]
    for seed in (2, 3):
        for idx in range(6):
            crepa_case(seed, idx, False, out_dir); urepa_case(seed, idx, False, out_dir)
            schedule_case(seed, idx, out_dir)
        for idx in range(4):
            crepa_case(seed, idx, True, out_dir); urepa_case(seed, idx, True, out_dir)
