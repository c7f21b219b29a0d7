// Loading diffusers weights into a module whose named_parameters() are the checkpoint's keys, and finding
// the weights of a diffusers model folder (single file, sharded index, or the fp16 variant).
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "core/io/safetensors.h"

namespace repa::models::diffusers {

using TensorSource = std::function<torch::Tensor(const std::string&)>;

// Copies every tensor named in `names` into the module's parameter/buffer of that name (converted to its
// dtype and device). Missing, unexpected and mis-shaped tensors are all collected and reported in one
// InputError naming each (and `source`, the file). Old diffusers attention names (query, key, value,
// proj_attn) are read as to_q, to_k, to_v, to_out.0.
void load_named_tensors(torch::nn::Module& module, const std::vector<std::string>& names, const TensorSource& tensor,
                        const std::string& source);

void load_checkpoint(torch::nn::Module& module, const io::SafetensorsCheckpoint& checkpoint);

// The weights file of a diffusers model folder: diffusion_pytorch_model.safetensors, its sharded
// .safetensors.index.json, or the .fp16 variants of either. InputError naming the folder when none exists.
std::string find_weights_file(const std::string& folder);

}  // namespace repa::models::diffusers
