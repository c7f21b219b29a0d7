// Element-wise operators that LibTorch 1.13 runs slowly on CPU, fused into one pass each way.
#pragma once
#include <torch/torch.h>

namespace repa::nn {

// GELU with the tanh approximation, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), as torch::gelu(x, "tanh").
// On contiguous fp32 CPU tensors the forward and the backward are single passes (AVX2+FMA when the CPU has
// them) instead of ATen's tanh kernel, which costs several times a GEMM's epilogue; everywhere else, and
// under double backward, it is ATen's own operator.
// With `bias` (W,), gelu_tanh(x + bias) over the last dimension in the same pass: a Linear without its bias
// followed by this saves the pass that adds the bias to the GEMM's output.
torch::Tensor gelu_tanh(const torch::Tensor& x, const torch::Tensor& bias = {});

// Whether gelu_tanh takes the fused CPU path on this machine (AVX2 and FMA present).
bool fused_cpu_kernels_vectorised();

}  // namespace repa::nn
