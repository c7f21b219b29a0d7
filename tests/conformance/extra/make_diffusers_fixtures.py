#!/usr/bin/python3
"""Writes extra unet2d_forward and autoencoder_kl fixtures (other seeds and shapes) by running
huggingface/diffusers' own UNet2DConditionModel, UNet2DModel and AutoencoderKL with random weights, in the
format of ../../fixtures (README there).

  make_diffusers_fixtures.py DIFFUSERS_CHECKOUT [OUT_DIR]

DIFFUSERS_CHECKOUT is a checkout of huggingface/diffusers at tag v0.21.4 (its src/ is put on sys.path).
Debian 12 packages neither huggingface_hub nor safetensors; diffusers only needs them for downloading and
checkpoint files, which this script never uses, so both are entered as inert placeholder modules and the
fixture files are written by the small safetensors writer below. Before writing anything the script
reproduces every shared unet2d_forward and autoencoder_kl fixture from its own config, weights and inputs.
"""
import glob
import importlib.machinery
import json
import os
import struct
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "fixtures", "conformance")


class _Inert(types.ModuleType):
    """A module whose every attribute is a harmless callable/class: enough for import-time names."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name.isupper():
            return "placeholder"
        return type(name, (Exception,), {"__call__": lambda self, *a, **k: None})


def _placeholder_modules():
    for top, subs in (("huggingface_hub", ("constants", "utils", "file_download", "repocard")),
                      ("safetensors", ("torch",))):
        if top in sys.modules:
            continue
        try:
            __import__(top)
            continue
        except ImportError:
            pass
        mod = _Inert(top)
        mod.__spec__ = importlib.machinery.ModuleSpec(top, None, is_package=True)
        mod.__path__ = []
        mod.__version__ = "0.0"
        sys.modules[top] = mod
        for sub in subs:
            child = _Inert(top + "." + sub)
            child.__spec__ = importlib.machinery.ModuleSpec(top + "." + sub, None)
            sys.modules[top + "." + sub] = child
            setattr(mod, sub, child)
    sys.modules["huggingface_hub.constants"].hf_cache_home = "/nonexistent"
    sys.modules["huggingface_hub.constants"].HUGGINGFACE_HUB_CACHE = "/nonexistent"
    sys.modules["huggingface_hub.file_download"].REGEX_COMMIT_HASH = __import__("re").compile("^[0-9a-f]{40}$")


DTYPES = {"F32": (np.float32, torch.float32), "I64": (np.int64, torch.int64)}


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[8 + n + begin:8 + n + end], dtype=DTYPES[info["dtype"]][0])
        tensors[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return meta, tensors


def write_safetensors(path, tensors, meta):
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        code = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        raw = t.numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def randomise(model, gen):
    """Random weights everywhere (the default init leaves norms at 1/0 and some layers at zero)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            is_norm_scale = p.dim() == 1 and name.endswith("weight") and "norm" in name.split(".")[-2]
            p.copy_(1.0 + 0.15 * noise if is_norm_scale else 0.05 * noise)


def run_unet(diffusers, cls_name, config, params, inputs):
    cls = getattr(diffusers, cls_name)
    model = cls(**config).eval()
    if params is not None:
        model.load_state_dict(params, strict=True)
    captured = {}
    model.mid_block.register_forward_hook(lambda m, i, o: captured.__setitem__("mid", o))
    with torch.no_grad():
        if cls_name == "UNet2DModel":
            out = model(inputs["in.sample"], inputs["in.timestep"],
                        class_labels=inputs.get("in.class_labels")).sample
        else:
            added = None
            if "in.text_embeds" in inputs:
                added = {"text_embeds": inputs["in.text_embeds"], "time_ids": inputs["in.time_ids"]}
            out = model(inputs["in.sample"], inputs["in.timestep"], inputs["in.encoder_hidden_states"],
                        class_labels=inputs.get("in.class_labels"), added_cond_kwargs=added).sample
    return model, {"out.sample": out, "out.mid_block": captured["mid"]}


def run_vae(diffusers, config, params, inputs):
    model = diffusers.AutoencoderKL(**config).eval()
    if params is not None:
        model.load_state_dict(params, strict=True)
    with torch.no_grad():
        dist = model.encode(inputs["in.pixels"]).latent_dist
        decoded = model.decode(inputs["in.latents"]).sample
    return model, {"out.mean": dist.mean, "out.logvar": dist.logvar, "out.decoded": decoded}


def run(diffusers, meta, params, inputs):
    config = json.loads(meta["config"])
    if meta["kind"] == "autoencoder_kl":
        return run_vae(diffusers, config, params, inputs)
    return run_unet(diffusers, meta["class"], config, params, inputs)


def split(tensors):
    params = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
    inputs = {k: v for k, v in tensors.items() if k.startswith("in.")}
    return params, inputs


def verify_shared(diffusers):
    worst = 0.0
    paths = sorted(glob.glob(os.path.join(SHARED, "unet2d_forward_*.safetensors")) +
                   glob.glob(os.path.join(SHARED, "autoencoder_kl_*.safetensors")))
    if not paths:
        sys.exit("no shared unet2d_forward/autoencoder_kl fixtures under " + SHARED)
    for path in paths:
        meta, tensors = read_safetensors(path)
        params, inputs = split(tensors)
        _, outs = run(diffusers, meta, params, inputs)
        atol, rtol = float(meta["atol"]), float(meta["rtol"])
        for name, got in outs.items():
            want = tensors[name]
            err = (got - want).abs().max().item()
            worst = max(worst, err)
            if not torch.allclose(got, want, atol=atol, rtol=rtol):
                sys.exit("%s: %s differs from diffusers by %.3g (atol %g)" % (path, name, err, atol))
        print("reproduced", os.path.basename(path))
    print("shared fixtures reproduced, worst abs diff %.3g" % worst)


SOURCE = "huggingface/diffusers v0.21.4 UNet2DConditionModel / AutoencoderKL, random weights"

# name, seed, class, config, batch, sample (C,H,W) or VAE pixel size, extra (tokens, text dim, classes).
SD15_A = dict(attention_head_dim=4, block_out_channels=[16, 32], cross_attention_dim=12,
              down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"], in_channels=4, layers_per_block=1,
              norm_num_groups=4, out_channels=4, sample_size=8, up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
              use_linear_projection=False)
SD15_B = dict(attention_head_dim=8, block_out_channels=[16, 16, 32], cross_attention_dim=20,
              down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"], in_channels=3,
              layers_per_block=1, norm_num_groups=8, out_channels=5, sample_size=16,
              up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], use_linear_projection=False)
SDXL_A = dict(addition_embed_type="text_time", addition_time_embed_dim=4, attention_head_dim=[2, 4],
              block_out_channels=[16, 32], cross_attention_dim=16,
              down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"], in_channels=4, layers_per_block=1,
              norm_num_groups=8, out_channels=4, projection_class_embeddings_input_dim=12 + 6 * 4, sample_size=8,
              transformer_layers_per_block=[1, 2], up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
              use_linear_projection=True)
SDXL_B = dict(addition_embed_type="text_time", addition_time_embed_dim=8, attention_head_dim=[2, 2, 4],
              block_out_channels=[16, 24, 24], cross_attention_dim=8,
              down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], in_channels=4,
              layers_per_block=2, norm_num_groups=8, out_channels=4, projection_class_embeddings_input_dim=20 + 6 * 8,
              sample_size=16, transformer_layers_per_block=[1, 1, 2],
              up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], use_linear_projection=True)
CLS_A = dict(attention_head_dim=4, block_out_channels=[16, 32], down_block_types=["DownBlock2D", "AttnDownBlock2D"],
             in_channels=4, layers_per_block=1, norm_num_groups=4, num_class_embeds=7, out_channels=4,
             sample_size=8, up_block_types=["AttnUpBlock2D", "UpBlock2D"])
CLS_B = dict(attention_head_dim=8, block_out_channels=[16, 16, 24],
             down_block_types=["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"], in_channels=3,
             layers_per_block=2, norm_num_groups=8, num_class_embeds=20, out_channels=3, sample_size=16,
             up_block_types=["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"])
VAE_A = dict(block_out_channels=[8, 16], down_block_types=["DownEncoderBlock2D"] * 2, in_channels=3,
             latent_channels=4, layers_per_block=1, norm_num_groups=4, out_channels=3, sample_size=16,
             scaling_factor=0.18215, up_block_types=["UpDecoderBlock2D"] * 2)
VAE_B = dict(block_out_channels=[8, 16, 16], down_block_types=["DownEncoderBlock2D"] * 3, in_channels=3,
             latent_channels=4, layers_per_block=2, norm_num_groups=8, out_channels=3, sample_size=24,
             scaling_factor=0.13025, up_block_types=["UpDecoderBlock2D"] * 3)

CASES = [
    # file name, seed, flavour, class, config, batch, (H, W), tokens, text_embeds dim
    ("unet2d_forward_sd15_2_0", 20, "sd15", "UNet2DConditionModel", SD15_A, 3, (8, 8), 7, 0),
    ("unet2d_forward_sd15_3_0", 31, "sd15", "UNet2DConditionModel", SD15_B, 2, (16, 8), 3, 0),
    ("unet2d_forward_sdxl_2_1", 22, "sdxl", "UNet2DConditionModel", SDXL_A, 2, (8, 8), 4, 12),
    ("unet2d_forward_sdxl_3_1", 33, "sdxl", "UNet2DConditionModel", SDXL_B, 1, (16, 16), 6, 20),
    ("unet2d_forward_classcond_2_2", 24, "classcond", "UNet2DModel", CLS_A, 3, (8, 8), 0, 0),
    ("unet2d_forward_classcond_3_2", 35, "classcond", "UNet2DModel", CLS_B, 2, (8, 16), 0, 0),
    ("autoencoder_kl_2_3", 26, "", "AutoencoderKL", VAE_A, 2, (16, 16), 0, 0),
    ("autoencoder_kl_3_3", 37, "", "AutoencoderKL", VAE_B, 1, (24, 16), 0, 0),
]


def make(diffusers, descriptions, out_dir, case):
    name, seed, flavour, cls_name, config, batch, (h, w), tokens, text_dim = case
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    meta = {"source": SOURCE, "config": json.dumps(config, sort_keys=True), "atol": "1e-4", "rtol": "1e-4"}
    inputs = {}
    if cls_name == "AutoencoderKL":
        meta["kind"] = "autoencoder_kl"
        down = 2 ** (len(config["block_out_channels"]) - 1)
        inputs["in.pixels"] = torch.rand((batch, config["in_channels"], h, w), generator=gen) * 2 - 1
        inputs["in.latents"] = torch.randn((batch, config["latent_channels"], h // down, w // down), generator=gen)
    else:
        meta.update(kind="unet2d_forward", flavour=flavour, **{"class": cls_name})
        inputs["in.sample"] = torch.randn((batch, config["in_channels"], h, w), generator=gen)
        inputs["in.timestep"] = torch.randint(0, 1000, (batch,), generator=gen, dtype=torch.int64)
        if tokens:
            inputs["in.encoder_hidden_states"] = torch.randn((batch, tokens, config["cross_attention_dim"]),
                                                             generator=gen)
        if text_dim:
            inputs["in.text_embeds"] = torch.randn((batch, text_dim), generator=gen)
            # original (h, w), crop top-left, target (h, w), as SDXL's pipelines build time_ids
            inputs["in.time_ids"] = torch.tensor([[float(h * 8), float(w * 8), 0.0, 0.0, float(h * 8), float(w * 8)]]
                                                 * batch)
        if "num_class_embeds" in config:
            inputs["in.class_labels"] = torch.randint(0, config["num_class_embeds"], (batch,), generator=gen,
                                                      dtype=torch.int64)
    meta["description"] = descriptions[meta["kind"]]
    cls = diffusers.AutoencoderKL if cls_name == "AutoencoderKL" else getattr(diffusers, cls_name)
    model = cls(**config)
    randomise(model, gen)
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    _, outs = run(diffusers, meta, params, inputs)
    tensors = dict(inputs)
    tensors.update({"param." + k: v for k, v in params.items()})
    tensors.update(outs)
    path = os.path.join(out_dir, name + ".safetensors")
    write_safetensors(path, tensors, meta)
    print("wrote", path, os.path.getsize(path), "bytes",
          " ".join("%s%s" % (k, list(v.shape)) for k, v in sorted(outs.items())))


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.path.insert(0, os.path.join(os.path.abspath(sys.argv[1]), "src"))
    out_dir = sys.argv[2] if len(sys.argv) == 3 else HERE
    _placeholder_modules()
    torch.set_num_threads(1)
    import diffusers
    print("diffusers", diffusers.__version__, "torch", torch.__version__)
    verify_shared(diffusers)
    descriptions = {}
    for kind, pattern in (("unet2d_forward", "unet2d_forward_*"), ("autoencoder_kl", "autoencoder_kl_*")):
        meta, _ = read_safetensors(sorted(glob.glob(os.path.join(SHARED, pattern + ".safetensors")))[0])
        descriptions[kind] = meta["description"]
    for case in CASES:
        make(diffusers, descriptions, out_dir, case)


if __name__ == "__main__":
    main()
