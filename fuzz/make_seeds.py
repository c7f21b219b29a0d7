#!/usr/bin/env python3
"""Writes the hand-made part of the seed corpora under fuzz/corpus/<harness>/ (standard library only).

The image seeds made by stb's writer (JPEG, PNG, BMP, TGA, HDR) and the files libFuzzer minimised from its
runs are kept as they are; this script only (re)writes the files it names. Run from the repository root.
"""
import json
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(harness, name, data):
    folder = os.path.join(ROOT, harness)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# --- safetensors_header ------------------------------------------------------------------------------------
def safetensors(header, data=b"", pad=True, length=None):
    text = json.dumps(header, separators=(",", ":")).encode() if not isinstance(header, bytes) else header
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def tensors(*specs, metadata=None):
    header, data, offset = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, size in specs:
        n = 1
        for d in shape:
            n *= d
        nbytes = n * size
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        data += bytes((offset + i) % 251 for i in range(nbytes))
        offset += nbytes
    return safetensors(header, data)


S = "safetensors_header"
put(S, "ok_f32_2x3", tensors(("w", "F32", [2, 3], 4)))
put(S, "ok_all_dtypes", tensors(("a", "F64", [2], 8), ("b", "F16", [3], 2), ("c", "BF16", [1, 2], 2),
                                ("d", "I64", [1], 8), ("e", "I32", [2], 4), ("f", "I16", [2], 2),
                                ("g", "I8", [3], 1), ("h", "U8", [4], 1), ("i", "BOOL", [2], 1)))
put(S, "ok_metadata", tensors(("x", "F32", [4], 4), metadata={"format": "pt", "step": "12"}))
put(S, "ok_empty_tensor", tensors(("empty", "F32", [0, 5], 4), ("s", "F32", [], 4)))
put(S, "ok_only_metadata", safetensors({"__metadata__": {"a": "b"}}))
put(S, "ok_unpadded", safetensors({"t": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]}}, b"abc", pad=False))
put(S, "ok_misaligned_view", safetensors({"p": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                                          "q": {"dtype": "F32", "shape": [2], "data_offsets": [1, 9]}}, bytes(9)))
put(S, "bad_short", b"\x10\x00\x00")
put(S, "bad_len_past_end", safetensors({"t": 1}, length=4096))
put(S, "bad_len_huge", struct.pack("<Q", 2**63) + b"{}")
put(S, "bad_not_json", safetensors(b"{not json at all}"))
put(S, "bad_not_object", safetensors([1, 2, 3]))
put(S, "bad_dtype", safetensors({"t": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, b"x"))
put(S, "bad_negative_dim", safetensors({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4)))
put(S, "bad_overflow_shape", safetensors({"t": {"dtype": "F32", "shape": [2**62], "data_offsets": [0, 0]}}))
put(S, "bad_offsets_reversed", safetensors({"t": {"dtype": "U8", "shape": [2], "data_offsets": [4, 2]}}, bytes(4)))
put(S, "bad_offsets_past_end", safetensors({"t": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}, bytes(4)))
put(S, "bad_overlap", safetensors({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                                   "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, bytes(6)))
put(S, "bad_duplicate", safetensors(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                    b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"))
put(S, "bad_metadata_value", safetensors({"__metadata__": {"k": 3}}))
put(S, "bad_offsets_float", safetensors({"t": {"dtype": "U8", "shape": [1], "data_offsets": [0.0, 1.5]}}, b"x"))
put(S, "bad_size_mismatch", safetensors({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)))
put(S, "bad_nested_shape", safetensors({"t": {"dtype": "F32", "shape": [[[[1]]]], "data_offsets": [0, 4]}}, bytes(4)))

# --- config_file -------------------------------------------------------------------------------------------
C = "config_file"
put(C, "ok_minimal.json", json.dumps({"learning_rate": 1e-4, "max_train_steps": 10}))
put(C, "ok_repa.json", json.dumps({"crepa_enabled": True, "crepa_block_index": 2, "crepa_lambda": 0.5,
                                   "crepa_encoder": "dinov2_vitb14", "resolution": 64, "train_batch_size": 4,
                                   "studio": {"architecture": "sit", "depth": 4, "run_name": "x"}}, indent=2))
put(C, "ok_urepa.json", json.dumps({"urepa_enabled": True, "urepa_lambda": 0.5, "urepa_manifold_weight": 3.0,
                                    "studio": {"architecture": "unet"}}))
put(C, "ok_dashes_and_alias.json", json.dumps({"--learning_rate": 0.001, "validation_steps": 50,
                                               "studio.run_name": "alias"}))
put(C, "ok_empty_object.json", "{}")
put(C, "ok_null.json", "null")
put(C, "bad_unknown_key.json", json.dumps({"learnin_rate": 0.1, "studio": {"architecure": "sit"}}))
put(C, "bad_types.json", json.dumps({"learning_rate": "fast", "max_train_steps": -3, "crepa_enabled": "yes",
                                     "train_batch_size": 1.5, "studio": 5}))
put(C, "bad_twice.json", '{"validation_steps": 10, "validation_step_interval": 20}')
put(C, "bad_syntax.json", '{"learning_rate": 1e-4,,}')
put(C, "bad_array.json", "[1, 2, 3]")
put(C, "bad_big_numbers.json", '{"learning_rate": 1e400, "max_train_steps": 18446744073709551615, "seed": -1e309}')
put(C, "bad_nested_value.json", '{"learning_rate": {"a": [[[[{"b": null}]]]]}}')
put(C, "bad_nul_after.json", b'{"learning_rate": 0.1}\x00{"x": 1}')
put(C, "bad_run_name.json", json.dumps({"studio": {"run_name": "../x", "output_dir": "/"}}))

# --- config_set (arguments, one per line) -----------------------------------------------------------------
A = "config_set"
put(A, "set_numbers", "run.json\n--set\nlearning_rate=0.0002\n--set=max_train_steps=100\n")
put(A, "set_studio", "--set\nstudio.architecture=unet\n--set\nstudio.run_name=demo-2\n")
put(A, "set_preset", "--preset\ndemo\n--set\ncrepa_lambda=0.25\n")
put(A, "set_preset_eq", "--preset=flux\n--set=resolution=512\n--events\nstdio\n")
put(A, "set_json_object", '--set\nstudio={"depth": 2, "hidden_size": 32}\n')
put(A, "set_text_value", "--set\ncrepa_encoder=dinov2_vits14\n--set\nlr_scheduler=cosine\n")
put(A, "bad_no_value", "--set\n")
put(A, "bad_two_configs", "a.json\nb.json\n")
put(A, "bad_no_equals", "--set\nlearning_rate\n--set\n=3\n")
put(A, "bad_unknown_preset", "--preset\nnope\n")
put(A, "bad_unknown_key", "--set\nlearnin_rate=1\n--set\nstudio.nope=1\n")
put(A, "bad_big", "--set\nmax_train_steps=18446744073709551615\n--set\nlearning_rate=1e400\n")
put(A, "bad_null", "--set\nlearning_rate=null\n--set\nstudio=null\n")
put(A, "bad_deep", "--set\nstudio=" + "[" * 40 + "]" * 40 + "\n")

# --- checkpoint_state --------------------------------------------------------------------------------------
K = "checkpoint_state"
state = {"format": "repa-studio checkpoint", "version": 1, "step": 200, "max_train_steps": 600,
         "config_hash": "3f2a9c", "config": {"learning_rate": 0.002, "studio": {"architecture": "sit"}},
         "align": {"schedule": {"ema": 0.5, "cut": False}}, "optimizer_steps": [200, 200, 0],
         "lr": 0.002, "lr_scheduler": "constant_with_warmup",
         "data_position": {"epoch": 3, "offset": 7, "dataset_size": 64}, "num_classes": 3,
         "class_names": ["circle", "square", "triangle"]}
put(K, "ok_state.json", json.dumps(state, indent=2) + "\n")
lora = dict(state, lora={"base_fingerprint": 0.125, "adapter": "LoRA rank 4"})
put(K, "ok_lora.json", json.dumps(lora))
put(K, "bad_negative_step.json", json.dumps(dict(state, step=-5)))
put(K, "bad_huge_step.json", json.dumps(dict(state, step=10**12)))
put(K, "bad_step_type.json", json.dumps(dict(state, step="200")))
put(K, "bad_missing_data_position.json", json.dumps({k: v for k, v in state.items() if k != "data_position"}))
put(K, "bad_array.json", "[]")
put(K, "bad_truncated.json", json.dumps(state)[:97])
put(K, "bad_empty.json", "")

# --- image_decode: hand-made headers (stb's writer made the others) -----------------------------------------
I = "image_decode"
put(I, "gif_1x1.gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
                       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
put(I, "p6_3x2.ppm", b"P6\n3 2\n255\n" + bytes(range(18)))
put(I, "p5_2x2.pgm", b"P5 2 2 255\n\x00\x40\x80\xff")
psd = (b"8BPS" + struct.pack(">H", 1) + bytes(6) + struct.pack(">HIIHH", 3, 2, 2, 8, 3) +
       struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + bytes(range(12)))
put(I, "rgb_2x2.psd", psd)


def png(width, height, color_type, bit_depth, raw):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


put(I, "png16_2x2.png", png(2, 2, 2, 16, b"".join(b"\x00" + bytes(range(12)) for _ in range(2))))
put(I, "png_palette_missing_plte.png", png(2, 1, 3, 8, b"\x00\x00\x01"))
put(I, "png_huge_dims.png", png(1 << 24, 1 << 24, 2, 8, b"\x00"))
put(I, "bad_text.jpg", b"this is not an image\n")
put(I, "bad_truncated.png", png(4, 4, 2, 8, bytes(4 * 13))[:40])

# --- jsonl_follower (first byte: piece size - 1) ------------------------------------------------------------
J = "jsonl_follower"


def lines(*events, piece=255):
    return bytes([piece]) + b"".join((json.dumps(e) if not isinstance(e, str) else e).encode() + b"\n"
                                     for e in events)


put(J, "run", lines({"type": "run_started", "schema": 1, "run_dir": "/r", "step": 0, "max_train_steps": 10,
                     "device": "cpu", "config": {"max_train_steps": 10}, "run_name": "demo"},
                    {"type": "state", "state": "running", "step": 0},
                    {"type": "metrics", "step": 1, "wall_time": 0.5, "loss": 0.9, "step_time_ms": 120,
                     "memory_bytes": 123456789, "images_per_sec": 33.0},
                    {"type": "metrics", "step": 2, "wall_time": 1.0, "loss": 0.8},
                    {"type": "checkpoint", "step": 2, "path": "/r/checkpoints/checkpoint-2"},
                    {"type": "state", "state": "finished", "step": 2, "reason": "stopped"}))
put(J, "split_small_pieces", lines({"type": "metrics", "step": 5, "wall_time": 2.0}, {"type": "heartbeat"},
                                   piece=2))
put(J, "torn_last_line", bytes([255]) + b'{"type":"metrics","step":3}\n{"type":"metr')
put(J, "plain_text_and_commands", lines("stop", '"pause"', '{"command": "resume"}', '{"type": "sample"}',
                                        "Segmentation fault", "{not json", "   ", "checkpoint"))
put(J, "error_event", lines({"type": "error", "message": "NaN loss", "step": 7, "last_checkpoint": ""},
                            {"type": "state", "state": "failed"}))
put(J, "wrong_types", lines({"type": "metrics", "step": "x", "wall_time": None, "memory_bytes": -1},
                            {"type": "run_started", "max_train_steps": 1e300, "step": -1, "config": 5},
                            {"type": "log", "level": "warning", "message": ["a"]}))
put(J, "crlf", bytes([64]) + b'{"type":"state","state":"paused"}\r\n{"command":"stop"}\r\n')
put(J, "metrics_rates", lines({"type": "metrics", "step": 1, "steps_per_sec": 4.0},
                              {"type": "metrics", "step": 2.5e9, "wall_time": 1e300, "memory_bytes": 1e12}))

# Preset configs as whole config files (what a user copies and edits).
PRESETS = os.path.join(os.path.dirname(ROOT), "..", "presets")
for name in ("demo", "flux-lowvram", "sdxl"):
    path = os.path.join(PRESETS, name + ".json")
    if os.path.exists(path):
        with open(path) as f:
            put(C, "ok_preset_" + name + ".json", json.dumps(json.load(f)["config"], indent=1))
