"""What the PyTorch-eager references share: reading a safetensors file, the thread count, timing a step over
warm-up and measured rounds, and the peak resident set. Imported by the *_reference.py scripts beside it."""
import json
import os
import resource
import struct
import time

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}


def read_safetensors(path):
    """Returns (tensors by name, metadata) of a safetensors file; each tensor owns its memory."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    meta = header.pop("__metadata__", {})
    body = memoryview(data)[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"])
    return tensors, meta


def set_threads(threads):
    """LibTorch's intra-op threads: `threads`, or one per core when it is 0."""
    torch.set_num_threads(threads or os.cpu_count())


class StepTimes:
    """The measured rounds of a step: wall and process CPU milliseconds, each sorted, and the peak resident set in
    MiB after every round (warm-up rounds included, in order)."""

    def __init__(self):
        self.wall_ms, self.cpu_ms, self.rss_mib = [], [], []

    @property
    def median_ms(self):
        return self.wall_ms[len(self.wall_ms) // 2]

    @property
    def min_ms(self):
        return self.wall_ms[0]

    @property
    def max_ms(self):
        return self.wall_ms[-1]

    @property
    def median_cpu_ms(self):
        return self.cpu_ms[len(self.cpu_ms) // 2]


def time_steps(step, warmup, iters):
    """Runs `step` `warmup` times unmeasured, then `iters` (at least 1) times measured; returns their StepTimes."""
    if iters < 1 or warmup < 0:
        raise ValueError("--iters must be at least 1 and --warmup at least 0")
    times = StepTimes()
    for i in range(warmup + iters):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        cpu, wall = (time.process_time() - cpu_start) * 1000.0, (time.perf_counter() - start) * 1000.0
        times.rss_mib.append(peak_rss_mib())
        if i >= warmup:
            times.wall_ms.append(wall)
            times.cpu_ms.append(cpu)
    times.wall_ms.sort()
    times.cpu_ms.sort()
    return times


def peak_rss_mib():
    """The process's peak resident set so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
