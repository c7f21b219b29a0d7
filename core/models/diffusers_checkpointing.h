// Gradient (activation) checkpointing: a block runs without keeping its activations, and backward reruns it
// under grad to get them back. Trades one extra forward per block for the memory SDXL-sized UNets need.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <vector>

namespace repa::models::diffusers {

using CheckpointedBlock = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

// Runs `block(inputs)` without recording a graph; in backward, reruns it (with the autocast state of the
// forward) and returns the gradients of `inputs` and of `parameters` (the block's trainable tensors, which
// the block must read directly). Inputs must all be defined. The block must be deterministic (no dropout
// with a non-zero rate), as the rerun draws no random numbers of its own.
torch::Tensor checkpointed(const CheckpointedBlock& block, const std::vector<torch::Tensor>& inputs,
                           const std::vector<torch::Tensor>& parameters);

// True when checkpointing is asked for and would help: training, with grad recording on.
bool checkpointing_active(const torch::nn::Module& module, bool requested);

// The trainable parameters of a module (those that require grad), in registration order, then those of the
// adapters (LoRA, DoRA) hooked into its layers.
std::vector<torch::Tensor> trainable_parameters(const torch::nn::Module& module);

}  // namespace repa::models::diffusers
