// How the process's heap treats the large, short-lived blocks of a training step.
#pragma once
#include <string>

namespace repa {

// glibc's malloc gives freed blocks above its trim threshold back to the kernel and maps blocks above its
// (moving) mmap threshold afresh, so every step of a model whose activations are a few MB each touches new
// pages: thousands of page faults a step (7,000 for the bench's SiT step, ~10 % of its time on 1 core).
// This raises both thresholds (mmap 32 MB, the largest glibc accepts; trim 1 GB) so the step's memory is
// reused instead. Returns what it did, for logs; does nothing without glibc or when REPA_MALLOC_DEFAULT is set.
std::string keep_freed_memory();

// What the machine can still give this process: MemAvailable plus free swap from /proc/meminfo, in bytes
// (0 when unknown, e.g. not Linux).
double available_memory_bytes();
// Physical memory plus swap, in bytes (0 when unknown).
double total_memory_bytes();

// Free and total memory of the current CUDA device, from the CUDA runtime the process has loaded (a CUDA
// LibTorch loads it). False, and nothing set, without a CUDA runtime or device.
bool cuda_memory_bytes(double* free_bytes, double* total_bytes);

}  // namespace repa
