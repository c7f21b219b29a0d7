// Loading diffusers-named weights into a DiT backbone whose named_parameters() are diffusers' keys: from a map of
// tensors (a fixture's param.*, a state dict) or from a safetensors file / sharded index / diffusers model folder.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

namespace repa::models::dit {

// Missing, unexpected and mis-shaped tensors are all named in one InputError that names `origin`.
void load_weights(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& tensors,
                  const std::string& origin);
// `path`: a .safetensors file, a .safetensors.index.json, or a folder holding diffusion_pytorch_model[.fp16]
// .safetensors (sharded or not).
void load_weights(torch::nn::Module& model, const std::string& path);

}  // namespace repa::models::dit
